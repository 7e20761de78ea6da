#!/usr/bin/env bash
# The MADE trainer against JAX in one run (issue 16, "Speed"): the JAX reference
# (bench/made_train_jax.py: jit-compiled, the epoch as one lax.scan, CPU) and crkernels'
# criterion benchmark (benches/made_train.rs) on the same shapes, minibatches and thread
# counts, one after the other on the same machine; prints rows/s and the ratios, with the
# CPU model and its widest vector instruction set.
#
#   scripts/bench-train.sh            # needs python3 (makes .venv-bench) and cargo
#
# The JAX run uses 1e5 random rows per epoch, crkernels 1e4; both report training rows per
# second (forward, backward, Adam).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench-train
mkdir -p "$out"
if [ ! -x .venv-bench/bin/python ]; then
    python3 -m venv .venv-bench
    .venv-bench/bin/pip install -q -r bench/requirements-train.txt
fi
isa=baseline
grep -q ' avx2 ' /proc/cpuinfo && isa=avx2
grep -q ' avx512f ' /proc/cpuinfo && isa=avx512f
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs, widest set $isa"
.venv-bench/bin/python bench/made_train_jax.py --shapes secret,single --batches 50,512 --threads 1,2 \
    --epochs 3 --json "$out/jax.json"
cargo bench --bench made_train -- --noplot 2>&1 | grep -E '^made_train|time:|thrpt:' || true
python3 - "$out/jax.json" <<'PY'
import json, sys, pathlib
jax = {(r["shape"], r["batch"], r["threads"]): r["rows_per_s_median"] for r in json.load(open(sys.argv[1]))["results"]}
print(f"{'shape':8} {'batch':>5} {'threads':>7} {'crkernels rows/s':>17} {'JAX rows/s':>11} {'ratio':>6}")
for (shape, batch, threads), jax_rate in sorted(jax.items()):
    est = pathlib.Path(f"target/criterion/made_train_{shape}/batch_{batch}_{threads}_threads/new/estimates.json")
    if not est.exists():
        continue
    seconds = json.load(open(est))["median"]["point_estimate"] * 1e-9
    rate = 10_000 / seconds
    print(f"{shape:8} {batch:5d} {threads:7d} {rate:17.3e} {jax_rate:11.3e} {rate / jax_rate:6.2f}")
PY
