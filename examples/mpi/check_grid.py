#!/usr/bin/env python3
"""Compares two runs of secret_grid_mpi (e.g. `mpirun -np 2` and `mpirun -np 1`) item by item,
bit for bit. Needs NumPy only.

    python3 check_grid.py RUN_A RUN_B [--items N]

Checks in each run: the manifests (manifest_rank*.csv) list every item 0..N-1 exactly once,
item i was done by rank i mod size, each shard is a float64 .npy of shape
[count, n_energies] with finite, non-negative fluxes; then that both runs hold the same items
with the same parameters and bit-identical arrays.
"""

import argparse
import csv
import glob
import os
import sys

import numpy as np

PARAMS = ("point", "sn_rate_per_Myr", "cutoff_GeV", "seed", "first_realisation", "count", "n_energies")


def load_run(directory):
    rows = []
    files = sorted(glob.glob(os.path.join(directory, "manifest_rank*.csv")))
    if not files:
        raise SystemExit(f"{directory}: no manifest_rank*.csv")
    for path in files:
        with open(path, newline="") as f:
            rows.extend(csv.DictReader(f))
    size = len(files)
    items = {}
    for row in rows:
        item = int(row["item"])
        if item in items:
            raise SystemExit(f"{directory}: item {item} listed twice")
        if int(row["rank"]) != item % size:
            raise SystemExit(f"{directory}: item {item} done by rank {row['rank']}, expected {item % size}")
        arr = np.load(os.path.join(directory, row["file"]), allow_pickle=False)
        shape = (int(row["count"]), int(row["n_energies"]))
        if arr.dtype != np.float64 or arr.shape != shape:
            raise SystemExit(f"{directory}/{row['file']}: {arr.dtype} {arr.shape}, expected float64 {shape}")
        if not (np.isfinite(arr).all() and (arr >= 0).all() and (arr > 0).any()):
            raise SystemExit(f"{directory}/{row['file']}: non-finite, negative or all-zero flux")
        items[item] = (row, arr)
    return items, size


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a")
    ap.add_argument("run_b")
    ap.add_argument("--items", type=int, default=None, help="expected number of items (default: as run A)")
    args = ap.parse_args()

    a, size_a = load_run(args.run_a)
    b, size_b = load_run(args.run_b)
    n = args.items if args.items is not None else len(a)
    for name, run in ((args.run_a, a), (args.run_b, b)):
        if sorted(run) != list(range(n)):
            raise SystemExit(f"{name}: items {sorted(run)}, expected 0..{n - 1}")

    failures = 0
    for item in range(n):
        (ra, xa), (rb, xb) = a[item], b[item]
        diff = [p for p in PARAMS if ra[p] != rb[p]]
        same_bits = xa.shape == xb.shape and np.array_equal(xa.view(np.uint64), xb.view(np.uint64))
        status = "ok" if not diff and same_bits else "DIFFERENT"
        if status != "ok":
            failures += 1
        print(f"item {item}: point {ra['point']} (R_SN {ra['sn_rate_per_Myr']}/Myr, E_cut {ra['cutoff_GeV']} GeV) "
              f"realisations {ra['first_realisation']}+{ra['count']}: ranks {ra['rank']}/{size_a} vs "
              f"{rb['rank']}/{size_b}: {status}" + (f" (parameters {diff})" if diff else ""))

    # The grid is not degenerate: different ranges and points give different spectra.
    firsts = [a[i][1][0] for i in range(n)]
    if any(np.array_equal(firsts[i], firsts[j]) for i in range(n) for j in range(i)):
        print("two items start with the same realisation: the grid is degenerate")
        failures += 1

    if failures:
        print(f"FAILED: {failures} item(s) differ")
        return 1
    print(f"all {n} items bit-identical between {size_a} and {size_b} rank(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
