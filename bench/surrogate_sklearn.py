#!/usr/bin/env python3
"""scikit-learn speed anchor for the ridge-surrogate step (issue 6; seed 000's "Method").

Times the whole surrogate step as the talk does it with scikit-learn, for p = 18 parameters,
n = 5000 evaluated points, candidate degrees 1..3 (degree 3: 1329 features), 10 alphas
(np.logspace(-6, 2, 10)), "distance" weights, Delta_max = 1:

  StandardScaler -> shift to the start point (argmin y) -> y' = (y - y[start]) / std(y)
  -> weights -> for each degree: PolynomialFeatures(degree, include_bias=False) and, for each
  alpha, Ridge(alpha, fit_intercept=False, solver="cholesky").fit on the 90% split (rows with
  i % 10 != 9, sample_weight) + validation MSE on the other 10% -> choose (degree, alpha) ->
  refit on all rows -> gradient (linear coefficients) -> line polynomial along -g/|g| and its
  minimum on (0, Delta_max] (np.roots).

The same algorithm as tests/reference/surrogate_reference.py (which checks it against an exact
mpmath solution). Also timed, for context: the same step with plain NumPy, forming the weighted
Gram matrix once per degree and reusing it for the 10 alphas (numpy.linalg.solve).

Each configuration runs in a fresh subprocess with OMP_NUM_THREADS = OPENBLAS_NUM_THREADS =
MKL_NUM_THREADS = threads (1 and 2); best of 3 repetitions; wall-clock time, with the process's
CPU time of that repetition. --methods numpy_gram_reuse skips scikit-learn (for interleaved
repeats against the Rust bench).

Run from the repository root:
    python3 -m venv .venv-fit && .venv-fit/bin/pip install -r bench/requirements-fit.txt
    .venv-fit/bin/python bench/surrogate_sklearn.py            # [--n 5000 --p 18 --reps 3]
"""
import argparse
import json
import os
import subprocess
import sys
import time


def make_problem(n, p, seed=18):
    import numpy as np
    rng = np.random.default_rng(seed)
    c = rng.uniform(-5.0, 5.0, p) * 10.0 ** rng.integers(-2, 3, p)
    s = 10.0 ** rng.uniform(-2.0, 2.0, p)
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    H = (q * rng.uniform(0.5, 3.0, p)) @ q.T
    a = rng.uniform(-0.15, 0.15, p)
    xi0 = rng.uniform(-0.7, 0.7, p)
    d = rng.standard_normal((n, p)) - xi0
    y = 40.0 + 0.5 * np.einsum("ij,jk,ik->i", d, H, d) + (d ** 3) @ a
    y += 0.3 * rng.standard_normal(n)
    return c + s * (d + xi0), y


def line_step(beta, powers, p, d, delta_max):
    import numpy as np
    g = beta[:p]
    u = -g / np.linalg.norm(g)
    deg = powers.sum(axis=1)
    terms = beta * np.prod(u[None, :] ** powers, axis=1)
    c = np.array([terms[deg == k].sum() if k > 0 else 0.0 for k in range(d + 1)])
    cand = [delta_max]
    if d >= 2:
        for r in np.roots((np.arange(1, d + 1) * c[1:])[::-1]):
            if abs(r.imag) < 1e-12 and 0 < r.real < delta_max:
                cand.append(float(r.real))
    vals = [np.polyval(c[::-1], t) for t in cand]
    k = int(np.argmin(vals))
    return g, u, cand[k], vals[k]


def step_sklearn(X, y, degrees, alphas, delta_max):
    import numpy as np
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler
    n, p = X.shape
    start = int(np.argmin(y))
    sc = StandardScaler().fit(X)
    z = sc.transform(X)
    zp = z - z[start]
    ys = y.std()
    yp = (y - y[start]) / ys
    w = 1.0 / (1.0 + np.sum(zp ** 2, axis=1))
    va = np.arange(n) % 10 == 9
    tr = ~va
    best, feats = None, {}
    for d in degrees:
        pf = PolynomialFeatures(degree=d, include_bias=False)
        Phi = pf.fit_transform(zp)
        feats[d] = (Phi, pf.powers_)
        for a in sorted(alphas, reverse=True):
            m = Ridge(alpha=a, fit_intercept=False, solver="cholesky")
            m.fit(Phi[tr], yp[tr], sample_weight=w[tr])
            mse = float(np.mean((yp[va] - m.predict(Phi[va])) ** 2))
            if best is None or mse < best[0]:
                best = (mse, d, a)
    _, d, a = best
    Phi, powers = feats[d]
    beta = Ridge(alpha=a, fit_intercept=False, solver="cholesky").fit(
        Phi, yp, sample_weight=w).coef_
    g, u, t, pt = line_step(beta, powers, p, d, delta_max)
    x_new = sc.mean_ + sc.scale_ * (z[start] + t * u)
    return d, a, t, x_new, y[start] + ys * pt


def step_numpy_gram(X, y, degrees, alphas, delta_max):
    import numpy as np
    from sklearn.preprocessing import PolynomialFeatures
    n, p = X.shape
    start = int(np.argmin(y))
    mean, std = X.mean(axis=0), X.std(axis=0)
    z = (X - mean) / std
    zp = z - z[start]
    ys = y.std()
    yp = (y - y[start]) / ys
    w = 1.0 / (1.0 + np.sum(zp ** 2, axis=1))
    va = np.arange(n) % 10 == 9
    tr = ~va
    pf = PolynomialFeatures(degree=max(degrees), include_bias=False)
    Phi = pf.fit_transform(zp)        # lower degrees = leading columns
    deg = pf.powers_.sum(axis=1)
    WPhi = w[:, None] * Phi
    Gtr = WPhi[tr].T @ Phi[tr]
    Gva = WPhi[va].T @ Phi[va]
    btr, bva = WPhi[tr].T @ yp[tr], WPhi[va].T @ yp[va]
    best = None
    for d in degrees:
        F = int(np.sum(deg <= d))
        for a in sorted(alphas, reverse=True):
            beta = np.linalg.solve(Gtr[:F, :F] + a * np.eye(F), btr[:F])
            mse = float(np.mean((yp[va] - Phi[va, :F] @ beta) ** 2))
            if best is None or mse < best[0]:
                best = (mse, d, a)
    _, d, a = best
    F = int(np.sum(deg <= d))
    beta = np.linalg.solve(Gtr[:F, :F] + Gva[:F, :F] + a * np.eye(F), btr[:F] + bva[:F])
    g, u, t, pt = line_step(beta, pf.powers_[:F], p, d, delta_max)
    return d, a, t, mean + std * (z[start] + t * u), y[start] + ys * pt


def worker(args):
    import numpy as np
    import sklearn
    from threadpoolctl import threadpool_info
    X, y = make_problem(args.n, args.p)
    alphas = [float(a) for a in np.logspace(-6, 2, 10)]
    degrees = [1, 2, 3]
    out = {"threads": int(os.environ["OMP_NUM_THREADS"]),
           "blas": [(i["internal_api"], i["num_threads"]) for i in threadpool_info()],
           "v_numpy": np.__version__, "v_sklearn": sklearn.__version__}
    methods = [("sklearn", step_sklearn), ("numpy_gram_reuse", step_numpy_gram)]
    for name, fn in [m for m in methods if m[0] in args.methods.split(",")]:
        times, cpu, res = [], [], None
        for _ in range(args.reps):
            t0, c0 = time.perf_counter(), time.process_time()
            res = fn(X, y, degrees, alphas, 1.0)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out[name] = {"best_s": min(times), "all_s": times, "cpu_s": cpu[times.index(min(times))],
                     "degree": res[0], "alpha": res[1], "t_star": res[2], "pred_nll": float(res[4])}
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--p", type=int, default=18)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--methods", default="sklearn,numpy_gram_reuse",
                    help="comma-separated subset of sklearn,numpy_gram_reuse")
    ap.add_argument("--worker", action="store_true")
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    print(f"surrogate step: p = {args.p}, n = {args.n}, degrees 1..3, 10 alphas, "
          f"distance weights; best of {args.reps}", flush=True)
    for th in args.threads.split(","):
        env = dict(os.environ, OMP_NUM_THREADS=th, OPENBLAS_NUM_THREADS=th,
                   MKL_NUM_THREADS=th)
        r = subprocess.run([sys.executable, __file__, "--worker", "--n", str(args.n), "--p",
                            str(args.p), "--reps", str(args.reps), "--methods", args.methods],
                           env=env, check=True,
                           capture_output=True, text=True)
        o = json.loads(r.stdout.strip().splitlines()[-1])
        for name in [m for m in ["sklearn", "numpy_gram_reuse"] if m in o]:
            s = o[name]
            print(f"threads={th} {name:17s} best {s['best_s']:.3f} s (CPU {s['cpu_s']:.3f} s)  (all "
                  f"{', '.join(f'{t:.3f}' for t in s['all_s'])}); chose degree {s['degree']}, "
                  f"alpha {s['alpha']:.3g}, t* {s['t_star']:.6g}, pred NLL {s['pred_nll']:.8g}",
                  flush=True)
        print(f"   BLAS {o['blas']}, numpy {o['v_numpy']}, scikit-learn {o['v_sklearn']}", flush=True)


if __name__ == "__main__":
    main()
