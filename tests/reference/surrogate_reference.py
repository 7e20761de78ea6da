#!/usr/bin/env python3
"""Reference for the polynomial ridge surrogate and its gradient step (issue 6, item 3).

The algorithm (seed 000, "Method" / "Gradient Steps"; agreed with the Rust side):

  inputs   X [n][p] (original units), NLL values y [n], start index s (default argmin y),
           weighting scheme, candidate degrees, candidate alphas, Delta_max (scaled units)
  scaling  z = (X - mean) / std   (StandardScaler: population std, ddof 0; a zero std -> 1)
  shift    z' = z - z[s];   y' = (y - y[s]) / std(y)   (population std)
  features PolynomialFeatures(degree=d, include_bias=False)(z'): all monomials of total degree
           1..d; grouped by degree, inside a degree itertools.combinations_with_replacement
           (range(p), deg) order (the `monomial` column of the coef file lists the variable
           indices); C(p+d, d) - 1 features
  weights  none: 1;  distance: 1 / (1 + |z'|^2);  exponential: exp(-(y - min y))
  ridge    beta = argmin sum_i w_i (y'_i - Phi_i beta)^2 + alpha |beta|^2 (no intercept), i.e.
           (Phi^T W Phi + alpha I) beta = Phi^T W y'   (= sklearn Ridge(alpha,
           fit_intercept=False).fit(Phi, y', sample_weight=w))
  hyper    validation rows: i % 10 == 9, training: the rest (mean, std, start, y-scaling and
           weights are computed ONCE from all n points; the split only selects the rows of the
           normal equations); score = unweighted mean of (y'_i - Phi_i beta)^2 over the
           validation rows; minimum wins, ties: lower degree, then larger alpha; refit on all
           n rows with the chosen (degree, alpha)
  gradient g = the p linear coefficients (d f / d z' at z' = 0);  u = -g / |g|
  line     p(t) = f(t u) = sum_k c_k t^k, c_k = sum over degree-k monomials of
           beta_m prod_{i in m} u_i (exact expansion); candidates: real roots of p'(t) in
           (0, Delta_max) and Delta_max; t* = the candidate with the smallest p (no root: t* =
           Delta_max)
  step     x_new = mean + std * (z[s] + t* u);  predicted NLL = y[s] + std(y) * p(t*)
  predict  f_orig(x) = y[s] + std(y) * f((x - mean)/std - z[s])

Precision. The reference numbers ("exact") are the exact result of the algorithm applied to the
float64 inputs, computed with mpmath (mp.dps = 40): mean/std/features/Gram matrices in mpmath;
the linear systems by iterative refinement (float64 Cholesky of the rounded matrix as
preconditioner, residuals in mpmath) until the correction is below 1e-34, so all printed
30 digits are correct unless the system is too ill-conditioned (then mpmath LU is used).
The same algorithm is run in plain float64 with numpy (numpy.linalg.solve) and with scikit-learn
(StandardScaler, PolynomialFeatures, Ridge(solver="cholesky")); the coef file keeps both, and
the script prints their largest deviation from the exact values.

Files per data set <name> in tests/data/fit/ (all CSV, first line = column names):
  surrogate_<name>_points.csv  x0..x{p-1},y          float64 inputs (repr)
  surrogate_<name>_config.csv  key,index,value       inputs: p, n, start, scheme, degree[k],
                                                     alpha[k], delta_max, val_mod, val_rem
  surrogate_<name>_mse.csv     degree,alpha,n_features,mse,mse_f64,mse_sklearn
  surrogate_<name>_coef.csv    index,degree,monomial,coef,coef_f64,coef_sklearn  (final fit)
  surrogate_<name>_pred.csv    x0..x{p-1},pred       predictions (original units) at given x
  surrogate_<name>_result.csv  key,index,value       outputs: chosen_degree, chosen_alpha,
                               n_features, mse_best, mse_second, mean[j], std[j], z_start[j],
                               y_start, y_std, grad[j], u[j], line_coef[k] (k = 0..d),
                               t_star, x_new[j], pred_nll, and t_star_sklearn,
                               x_new_sklearn[j], pred_nll_sklearn (float64 pipeline)
Scalars have index 0. Exact values: 30 significant digits; float64 values: repr.

Run from the repository root:  .venv-fit/bin/python tests/reference/surrogate_reference.py
"""
import csv
import itertools
import os
import sys
import time

import mpmath as mp
import numpy as np
import scipy.linalg
from sklearn.linear_model import Ridge
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

OUTDIR = os.path.join("tests", "data", "fit")
ALPHAS = [float(a) for a in np.logspace(-6, 2, 10)]
DELTA_MAX = 1.0
VAL_MOD, VAL_REM = 10, 9


def monomials(p, d):
    out = []
    for deg in range(1, d + 1):
        out.extend(itertools.combinations_with_replacement(range(p), deg))
    return out


def fmt(v):
    return mp.nstr(v, 30, strip_zeros=True)


# ----------------------------------------------------------------------------- test problems

def make_problem(seed, p, n, noise=0.1):
    """Random points around a smooth NLL: quadratic + cubic + Gaussian noise.

    Original units: x_j = c_j + s_j xi_j, with centres c_j and scales s_j spread over decades so
    the scaling matters. NLL(xi) = 40 + 0.5 d^T H d + sum_j a_j d_j^3 + noise, d = xi - xi0.
    """
    rng = np.random.default_rng(seed)
    c = rng.uniform(-5.0, 5.0, p) * 10.0 ** rng.integers(-2, 3, p)
    s = 10.0 ** rng.uniform(-2.0, 2.0, p)
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    lam = rng.uniform(0.5, 3.0, p)
    H = (q * lam) @ q.T
    a = rng.uniform(-0.15, 0.15, p)
    xi0 = rng.uniform(-0.7, 0.7, p)
    xi = rng.standard_normal((n, p))
    d = xi - xi0
    y = 40.0 + 0.5 * np.einsum("ij,jk,ik->i", d, H, d) + (d ** 3) @ a
    y = y + noise * rng.standard_normal(n)
    X = c + s * xi
    return X, y


# ----------------------------------------------------------------------------- exact (mpmath)

def solve_refined(A, b):
    """Solve A x = b (A symmetric positive definite, lists of mpf) to ~1e-34 relative."""
    F = len(b)
    Af = np.array([[float(v) for v in row] for row in A])
    try:
        cf = scipy.linalg.cho_factor(Af)
        solve = lambda r: scipy.linalg.cho_solve(cf, r)
    except np.linalg.LinAlgError:
        lu = scipy.linalg.lu_factor(Af)
        solve = lambda r: scipy.linalg.lu_solve(lu, r)
    x = [mp.mpf(float(v)) for v in solve(np.array([float(v) for v in b]))]
    for _ in range(40):
        r = [b[i] - mp.fdot(A[i], x) for i in range(F)]
        dx = solve(np.array([float(v) for v in r]))
        x = [x[i] + mp.mpf(float(dx[i])) for i in range(F)]
        xmax = max(abs(v) for v in x)
        if max(abs(float(v)) for v in dx) <= 1e-35 * float(xmax):
            return x, "refined"
    sol = mp.lu_solve(mp.matrix(A), mp.matrix(b))
    return [sol[i] for i in range(F)], "mp.lu_solve"


def line_coefficients(beta, monos, u, d):
    c = [mp.mpf(0)] * (d + 1)
    for b, m in zip(beta, monos):
        prod = mp.mpf(1)
        for i in m:
            prod *= u[i]
        c[len(m)] += b * prod
    return c


def poly_eval(c, t):
    return mp.polyval(list(reversed(c)), t)


def line_search(c, delta_max):
    d = len(c) - 1
    cand = [mp.mpf(delta_max)]
    dc = [k * c[k] for k in range(1, d + 1)]  # p'(t) = sum dc[k-1] t^(k-1)
    while len(dc) > 1 and dc[-1] == 0:
        dc.pop()
    if len(dc) >= 2:
        roots = mp.polyroots(list(reversed(dc)), maxsteps=200, extraprec=200)
        for r in roots:
            r = mp.mpc(r)
            if abs(r.imag) <= mp.mpf(10) ** -30 * (1 + abs(r.real)):
                t = r.real
                if 0 < t < delta_max:
                    cand.append(t)
    vals = [poly_eval(c, t) for t in cand]
    k = min(range(len(cand)), key=lambda i: vals[i])
    return cand[k], vals[k]


def exact_pipeline(X, y, start, scheme, degrees, alphas, delta_max):
    n, p = X.shape
    D = max(degrees)
    monos = monomials(p, D)
    Xm = [[mp.mpf(float(v)) for v in row] for row in X]
    ym = [mp.mpf(float(v)) for v in y]
    N = mp.mpf(n)
    mean = [mp.fsum(Xm[i][j] for i in range(n)) / N for j in range(p)]
    std = []
    for j in range(p):
        var = mp.fsum((Xm[i][j] - mean[j]) ** 2 for i in range(n)) / N
        std.append(mp.sqrt(var) if var > 0 else mp.mpf(1))
    z = [[(Xm[i][j] - mean[j]) / std[j] for j in range(p)] for i in range(n)]
    zs = z[start]
    zp = [[z[i][j] - zs[j] for j in range(p)] for i in range(n)]
    ymean = mp.fsum(ym) / N
    ystd = mp.sqrt(mp.fsum((v - ymean) ** 2 for v in ym) / N)
    yp = [(v - ym[start]) / ystd for v in ym]
    if scheme == "none":
        w = [mp.mpf(1)] * n
    elif scheme == "distance":
        w = [1 / (1 + mp.fsum(v ** 2 for v in row)) for row in zp]
    elif scheme == "exponential":
        ymin = min(ym)
        w = [mp.exp(-(v - ymin)) for v in ym]
    else:
        raise ValueError(scheme)
    # features (degree D; lower degrees are the leading columns)
    feats = []
    for i in range(n):
        row, cache = [], {}
        for m in monos:
            v = (cache[m[:-1]] if len(m) > 1 else mp.mpf(1)) * zp[i][m[-1]]
            cache[m] = v
            row.append(v)
        feats.append(row)
    F = len(monos)
    tr = [i for i in range(n) if i % VAL_MOD != VAL_REM]
    va = [i for i in range(n) if i % VAL_MOD == VAL_REM]
    cols = [[feats[i][k] for i in range(n)] for k in range(F)]
    wcols = [[w[i] * feats[i][k] for i in range(n)] for k in range(F)]

    def gram(rows):
        G = [[None] * F for _ in range(F)]
        for j in range(F):
            wj = [wcols[j][i] for i in rows]
            for k in range(j, F):
                G[j][k] = G[k][j] = mp.fdot(wj, [cols[k][i] for i in rows])
        b = [mp.fdot([wcols[j][i] for i in rows], [yp[i] for i in rows]) for j in range(F)]
        return G, b

    Gtr, btr = gram(tr)
    Gva, bva = gram(va)
    mse = {}
    methods = set()
    for d in degrees:
        Fd = len(monomials(p, d))
        for a in alphas:
            A = [[Gtr[j][k] + (mp.mpf(a) if j == k else 0) for k in range(Fd)] for j in range(Fd)]
            beta, how = solve_refined(A, btr[:Fd])
            methods.add(how)
            res = [yp[i] - mp.fdot(feats[i][:Fd], beta) for i in va]
            mse[(d, a)] = mp.fsum(r ** 2 for r in res) / len(va)
    best = None
    for d in sorted(degrees):
        for a in sorted(alphas, reverse=True):
            if best is None or mse[(d, a)] < mse[best]:
                best = (d, a)
    d, a = best
    Fd = len(monomials(p, d))
    A = [[Gtr[j][k] + Gva[j][k] + (mp.mpf(a) if j == k else 0) for k in range(Fd)]
         for j in range(Fd)]
    beta, how = solve_refined(A, [btr[j] + bva[j] for j in range(Fd)])
    methods.add(how)
    g = beta[:p]
    gn = mp.sqrt(mp.fsum(v ** 2 for v in g))
    u = [-v / gn for v in g]
    c = line_coefficients(beta, monos[:Fd], u, d)
    tstar, pstar = line_search(c, delta_max)
    x_new = [mean[j] + std[j] * (zs[j] + tstar * u[j]) for j in range(p)]
    pred_nll = ym[start] + ystd * pstar

    def predict(x):
        zq = [(mp.mpf(float(x[j])) - mean[j]) / std[j] - zs[j] for j in range(p)]
        val = mp.mpf(0)
        for b_, m in zip(beta, monos[:Fd]):
            prod = b_
            for i in m:
                prod *= zq[i]
            val += prod
        return ym[start] + ystd * val

    others = sorted(mse.values())
    return dict(mse=mse, best=best, beta=beta, monos=monos[:Fd], mean=mean, std=std, zs=zs,
                y_start=ym[start], ystd=ystd, g=g, u=u, c=c, tstar=tstar, x_new=x_new,
                pred_nll=pred_nll, predict=predict, mse_sorted=others, methods=methods)


# ----------------------------------------------------------------------------- float64 paths

def f64_pipeline(X, y, start, scheme, degrees, alphas, delta_max, use_sklearn):
    n, p = X.shape
    z = StandardScaler().fit_transform(X)
    zp = z - z[start]
    ystd = y.std()
    yp = (y - y[start]) / ystd
    if scheme == "none":
        w = np.ones(n)
    elif scheme == "distance":
        w = 1.0 / (1.0 + np.sum(zp ** 2, axis=1))
    else:
        w = np.exp(-(y - y.min()))
    idx = np.arange(n)
    va = idx % VAL_MOD == VAL_REM
    tr = ~va

    def fit(Phi, t, ww, a):
        if use_sklearn:
            return Ridge(alpha=a, fit_intercept=False, solver="cholesky").fit(
                Phi, t, sample_weight=ww).coef_
        A = Phi.T @ (ww[:, None] * Phi) + a * np.eye(Phi.shape[1])
        return np.linalg.solve(A, Phi.T @ (ww * t))

    mse = {}
    feats = {}
    for d in degrees:
        pf = PolynomialFeatures(degree=d, include_bias=False)
        Phi = pf.fit_transform(zp)
        assert [tuple(np.repeat(np.arange(p), row)) for row in pf.powers_] == monomials(p, d)
        feats[d] = Phi
        for a in alphas:
            beta = fit(Phi[tr], yp[tr], w[tr], a)
            mse[(d, a)] = float(np.mean((yp[va] - Phi[va] @ beta) ** 2))
    best = None
    for d in sorted(degrees):
        for a in sorted(alphas, reverse=True):
            if best is None or mse[(d, a)] < mse[best]:
                best = (d, a)
    d, a = best
    beta = fit(feats[d], yp, w, a)
    g = beta[:p]
    u = -g / np.linalg.norm(g)
    monos = monomials(p, d)
    c = np.zeros(d + 1)
    for b, m in zip(beta, monos):
        c[len(m)] += b * np.prod(u[list(m)])
    cand = [delta_max]
    dc = np.array([k * c[k] for k in range(1, d + 1)])
    if d >= 2:
        for r in np.roots(dc[::-1]):
            if abs(r.imag) < 1e-12 and 0 < r.real < delta_max:
                cand.append(float(r.real))
    vals = [np.polyval(c[::-1], t) for t in cand]
    k = int(np.argmin(vals))
    tstar = cand[k]
    sc = StandardScaler().fit(X)
    x_new = sc.mean_ + sc.scale_ * (z[start] + tstar * u)
    return dict(mse=mse, best=best, beta=beta, tstar=tstar, x_new=x_new,
                pred_nll=y[start] + ystd * vals[k])


# ----------------------------------------------------------------------------- data sets

def datasets():
    out = []
    X3, y3 = make_problem(3, 3, 60)
    for sch in ["none", "distance", "exponential"]:
        out.append((f"p3_{sch}", X3, y3, None, sch, [1, 2, 3]))
    X5, y5 = make_problem(5, 5, 200)
    for sch in ["none", "distance", "exponential"]:
        out.append((f"p5_{sch}", X5, y5, None, sch, [1, 2, 3]))
    X6, y6 = make_problem(6, 6, 400)
    start6 = int(np.random.default_rng(66).integers(0, 400))  # a random start, not argmin
    out.append(("p6_distance_start", X6, y6, start6, "distance", [1, 2, 3]))
    X18, y18 = make_problem(18, 18, 300, noise=0.3)
    out.append(("p18_d2_distance", X18, y18, None, "distance", [1, 2]))
    return out


def write_kv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["key", "index", "value"])
        w.writerows(rows)


def run_one(name, X, y, start, scheme, degrees, only=None):
    n, p = X.shape
    if start is None:
        start = int(np.argmin(y))
    t0 = time.time()
    ex = exact_pipeline(X, y, start, scheme, degrees, ALPHAS, DELTA_MAX)
    nf = f64_pipeline(X, y, start, scheme, degrees, ALPHAS, DELTA_MAX, use_sklearn=False)
    sk = f64_pipeline(X, y, start, scheme, degrees, ALPHAS, DELTA_MAX, use_sklearn=True)
    base = os.path.join(OUTDIR, f"surrogate_{name}")
    with open(base + "_points.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([f"x{j}" for j in range(p)] + ["y"])
        for i in range(n):
            w.writerow([repr(float(v)) for v in X[i]] + [repr(float(y[i]))])
    cfg = [("p", 0, p), ("n", 0, n), ("start", 0, start), ("scheme", 0, scheme)]
    cfg += [("degree", k, d) for k, d in enumerate(degrees)]
    cfg += [("alpha", k, repr(a)) for k, a in enumerate(ALPHAS)]
    cfg += [("delta_max", 0, repr(DELTA_MAX)), ("val_mod", 0, VAL_MOD), ("val_rem", 0, VAL_REM)]
    write_kv(base + "_config.csv", cfg)
    with open(base + "_mse.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["degree", "alpha", "n_features", "mse", "mse_f64", "mse_sklearn"])
        for d in degrees:
            for a in ALPHAS:
                w.writerow([d, repr(a), len(monomials(p, d)), fmt(ex["mse"][(d, a)]),
                            repr(nf["mse"][(d, a)]), repr(sk["mse"][(d, a)])])
    d, a = ex["best"]
    same_choice = nf["best"] == ex["best"] and sk["best"] == ex["best"]
    with open(base + "_coef.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["index", "degree", "monomial", "coef", "coef_f64", "coef_sklearn"])
        for k, (b, m) in enumerate(zip(ex["beta"], ex["monos"])):
            w.writerow([k, len(m), " ".join(str(i) for i in m), fmt(b),
                        repr(float(nf["beta"][k])) if same_choice else "",
                        repr(float(sk["beta"][k])) if same_choice else ""])
    rng = np.random.default_rng(1000 + n + p)
    Xq = [X[start], np.array([float(v) for v in ex["x_new"]]), X[VAL_REM], X[n - 1]]
    Xq += list(X.mean(axis=0) + X.std(axis=0) * rng.standard_normal((3, p)))
    with open(base + "_pred.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([f"x{j}" for j in range(p)] + ["pred"])
        for xq in Xq:
            w.writerow([repr(float(v)) for v in xq] + [fmt(ex["predict"](xq))])
    res = [("chosen_degree", 0, d), ("chosen_alpha", 0, repr(a)),
           ("n_features", 0, len(ex["monos"])), ("mse_best", 0, fmt(ex["mse_sorted"][0])),
           ("mse_second", 0, fmt(ex["mse_sorted"][1]))]
    res += [("mean", j, fmt(v)) for j, v in enumerate(ex["mean"])]
    res += [("std", j, fmt(v)) for j, v in enumerate(ex["std"])]
    res += [("z_start", j, fmt(v)) for j, v in enumerate(ex["zs"])]
    res += [("y_start", 0, fmt(ex["y_start"])), ("y_std", 0, fmt(ex["ystd"]))]
    res += [("grad", j, fmt(v)) for j, v in enumerate(ex["g"])]
    res += [("u", j, fmt(v)) for j, v in enumerate(ex["u"])]
    res += [("line_coef", k, fmt(v)) for k, v in enumerate(ex["c"])]
    res += [("t_star", 0, fmt(ex["tstar"]))]
    res += [("x_new", j, fmt(v)) for j, v in enumerate(ex["x_new"])]
    res += [("pred_nll", 0, fmt(ex["pred_nll"]))]
    res += [("t_star_sklearn", 0, repr(float(sk["tstar"])))]
    res += [("x_new_sklearn", j, repr(float(v))) for j, v in enumerate(sk["x_new"])]
    res += [("pred_nll_sklearn", 0, repr(float(sk["pred_nll"])))]
    write_kv(base + "_result.csv", res)

    # report
    exb = np.array([float(v) for v in ex["beta"]])
    scale = np.max(np.abs(exb))
    msg = (f"{name}: n={n} p={p} start={start} scheme={scheme} -> degree {d}, alpha {a:.3g}, "
           f"F={len(exb)}, t*={float(ex['tstar']):.6g}, pred NLL={float(ex['pred_nll']):.8g}; "
           f"mse gap (2nd/1st - 1) = {float(ex['mse_sorted'][1] / ex['mse_sorted'][0] - 1):.3g}; "
           f"solver {sorted(ex['methods'])}")
    if same_choice:
        msg += (f"\n    max |coef - exact| / max|coef|: numpy {np.max(np.abs(nf['beta'] - exb)) / scale:.2e}, "
                f"sklearn {np.max(np.abs(sk['beta'] - exb)) / scale:.2e}, "
                f"sklearn vs numpy {np.max(np.abs(sk['beta'] - nf['beta'])) / scale:.2e}; "
                f"x_new rel dev sklearn "
                f"{np.max(np.abs(sk['x_new'] - np.array([float(v) for v in ex['x_new']])) / (np.abs(sk['x_new']) + 1e-300)):.2e}")
    else:
        msg += f"\n    WARNING: float64 pipelines chose {nf['best']} (numpy), {sk['best']} (sklearn)"
    mrel = max(abs(nf["mse"][k] / float(ex["mse"][k]) - 1) for k in ex["mse"])
    mrels = max(abs(sk["mse"][k] / float(ex["mse"][k]) - 1) for k in ex["mse"])
    msg += f"\n    max rel dev of validation MSE: numpy {mrel:.2e}, sklearn {mrels:.2e}; {time.time() - t0:.1f} s"
    print(msg, flush=True)


def main():
    mp.mp.dps = 40
    os.makedirs(OUTDIR, exist_ok=True)
    only = set(sys.argv[1:])
    for name, X, y, start, scheme, degrees in datasets():
        if only and name not in only:
            continue
        run_one(name, X, y, start, scheme, degrees)


if __name__ == "__main__":
    main()
