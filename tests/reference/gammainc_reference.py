#!/usr/bin/env python3
"""Reference values of the regularised upper incomplete gamma function (issue 6, item 1).

    Q(a, x) = Gamma(a, x) / Gamma(a) = mpmath.gammainc(a, x, inf, regularized=True)
    P(a, x) = 1 - Q(a, x)             = mpmath.gammainc(a, 0, x, regularized=True)

and -ln Q, the per-experiment NLL of a chi2 with ndof degrees of freedom
(p-value = Q(ndof/2, chi2/2), shared/PHYSICS.md "Propagation ingredients").

Inputs a and x are float64 numbers; the reference is computed for the EXACT binary value of the
float (mpf(float)), so a Rust test that parses the decimal repr gets exactly the same input.
chi2 = 2x and ndof = 2a are exact in float64 too.

-ln Q is computed as -log1p(-P) when P < 1/2 (so that it keeps full relative precision when Q is
close to 1, e.g. x = 1e-300) and as -log(Q) otherwise. Every value is computed at mp.dps = 40
and again at mp.dps = 60; the script fails if the two disagree in the 32nd significant digit.
Values are written with 30 significant digits (mpmath.nstr); Q and P may be outside the double
range (e.g. Q(0.5, 1e5) ~ 1e-43431) - a Rust f64 parse then gives 0 or 1, compare -ln Q instead.

Writes tests/data/fit/gamma_q.csv, columns
    kind,a,x,ndof,chi2,Q,P,neg_ln_Q
kind = "grid" (a from the a-grid times the x-grid) or "chi2" (pairs (chi2, ndof) as a user
would pass them: integer ndof, chi2 = ndof times a factor; a = ndof/2, x = chi2/2).

Run from the repository root:  .venv-fit/bin/python tests/reference/gammainc_reference.py
"""
import csv
import math
import os
import sys

import mpmath as mp

OUT = os.path.join("tests", "data", "fit", "gamma_q.csv")

A_GRID = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.7, 5.0, 10.0, 10.5, 20.0, 50.5, 100.0, 200.5,
          499.5, 500.0]
TINY_X = [1e-300, 1e-100, 1e-30, 1e-10, 1e-5, 1e-3, 0.1]
TAIL_X = [1e3, 1e4, 3e4, 1e5, 3e5, 1e6]


def x_grid(a):
    xs = {0.0}
    xs.update(TINY_X)
    s = math.sqrt(a)
    for k in [-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0]:
        x = a + k * s
        if x > 0:
            xs.add(x)
    for f in [2.0, 5.0, 10.0, 30.0]:
        xs.add(f * a + 1.0)
    xs.update(TAIL_X)
    return sorted(xs)


def chi2_pairs():
    pairs = []
    for ndof in [1, 2, 3, 5, 7, 10, 17, 30, 50, 99, 100, 250, 500, 999, 1000]:
        for fac in [0.0, 0.01, 0.3, 0.9, 1.0, 1.1, 1.5, 2.0, 3.0, 10.0, 100.0]:
            pairs.append((float(ndof), float(ndof) * fac))
    # huge chi2 values (a bad model: NLL in the hundreds of thousands)
    for ndof, chi2 in [(1.0, 2e5), (10.0, 5e5), (72.0, 1e6), (300.0, 2e6)]:
        pairs.append((ndof, chi2))
    return pairs


def q_p_nll(a, x, dps):
    with mp.workdps(dps):
        a = mp.mpf(a)
        x = mp.mpf(x)
        if x == 0:
            return mp.mpf(1), mp.mpf(0), mp.mpf(0)
        q = mp.gammainc(a, x, mp.inf, regularized=True)
        p = mp.gammainc(a, 0, x, regularized=True)
        if p < 0.5:
            nll = -mp.log1p(-p)
        else:
            nll = -mp.log(q)
        return q, p, nll


def agree(u, v, digits=32):
    if u == v:
        return True
    return abs(u - v) <= abs(v) * mp.mpf(10) ** (-digits)


def fmt(v):
    return mp.nstr(v, 30, strip_zeros=True)


def main():
    rows = []
    for a in A_GRID:
        for x in x_grid(a):
            rows.append(("grid", a, x))
    for ndof, chi2 in chi2_pairs():
        rows.append(("chi2", ndof / 2.0, chi2 / 2.0))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    maxnll = 0.0
    with open(OUT, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["kind", "a", "x", "ndof", "chi2", "Q", "P", "neg_ln_Q"])
        for kind, a, x in rows:
            q, p, nll = q_p_nll(a, x, 40)
            q2, p2, nll2 = q_p_nll(a, x, 60)
            for u, v in [(q, q2), (p, p2), (nll, nll2)]:
                if not agree(u, v):
                    sys.exit(f"precision check failed at a={a} x={x}: {u} vs {v}")
            maxnll = max(maxnll, float(nll))
            w.writerow([kind, repr(a), repr(x), repr(2.0 * a), repr(2.0 * x),
                        fmt(q), fmt(p), fmt(nll)])
    print(f"wrote {OUT}: {len(rows)} rows, max -ln Q = {maxnll:.6g}")


if __name__ == "__main__":
    main()
