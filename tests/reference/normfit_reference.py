#!/usr/bin/env python3
"""Synthetic data for the normalisation + solar-modulation fit (issue 6, item 4).

Model (everything a Rust test needs to reproduce the clean data exactly):

1. Interstellar spectra per species as TABLES of flux per rigidity J_R [m^-2 s^-1 sr^-1 GV^-1]
   at rigidity nodes R_k = 10^(k/10) GV, k = -15..50 (0.0316 .. 1e5 GV), file
   tests/data/fit/normfit_model.csv. Between nodes: log-log linear interpolation,
       ln J_R(R) = ln J_k + (ln J_{k+1} - ln J_k) (ln R - ln R_k) / (ln R_{k+1} - ln R_k),
   R_k <= R <= R_{k+1} (never extrapolated: all data stay inside the table).
   The table values come from a smoothly broken power law (information only; the table IS
   the model):  J_R(R) = K (R/Rb)^(-g1) (1 + (R/Rb)^((g2 - g1)/s))^(-s).
2. Flux per kinetic energy per nucleon T [GeV/n]: R(T) = (A/|Z|) sqrt(T (T + 2m)) and
       J_T(T) = J_R(R(T)) dR/dT,   dR/dT = (A/|Z|) (T + m) / sqrt(T (T + 2m)) = (A/|Z|) / beta.
3. Solar modulation, Cholis et al. 2016 in the seed's form, R and beta AT EARTH (from the TOA T):
       Phi = Phi0 + Phi1s (1 + (R/R0)^2) / (beta (R/R0)^3), R0 = 0.5 GV, Phi1s = Phi1p (Z > 0),
       Phi1m (Z < 0);  T_IS = T + (|Z|/A) Phi;
       J_TOA(T) = J_T,IS(T_IS) T (T + 2m) / (T_IS (T_IS + 2m))
4. Normalisations: flux of species s = N_s J_TOA,s. Free: N_p, N_He4, N_C12, N_e-, N_e+; tied
   (secondaries follow their parents): N_B11 = N_C12, N_pbar = N_p. Ratios at the same T:
   B11/C12 = (N_C12 J_B11)/(N_C12 J_C12), pbar/p = (N_p J_pbar)/(N_p J_p) (normalisation-free).
   Parameter vector (this order): N_p, N_He4, N_C12, N_e-, N_e+, Phi0, Phi1p, Phi1m.
Masses as in modulation_reference.py: m_p (p, pbar), u = 0.93149410242 GeV (He4, B11, C12),
m_e (e-, e+).

Data: 10 experiments (name, quantity, T range, points, sigma/value) - see EXPERIMENTS.
sigma = frac * true_value. Clean file: value = true_value (the model at the true parameters,
computed with mpmath at dps 30 and rounded to float64). Noisy files (seeds 1, 2, 3):
value = true_value + sigma * N(0, 1) (numpy default_rng(seed).standard_normal, in row order).

Files (CSV; `#` lines = metadata; then the column header):
  normfit_model.csv           species,A,Z,m,R,flux_R
  normfit_data_<tag>.csv      experiment,quantity,T,value,sigma,true_value
                              tag = clean, noisy_s1, noisy_s2, noisy_s3;
                              header lines `# true <param> <value>` and `# seed <s>`
  normfit_fit.csv             dataset,key,value  scipy.optimize.least_squares results:
                              fit_<param>, err_<param> (sqrt diag of (J^T J)^-1, chi2 not
                              rescaled), true_<param>, start_<param>, chi2_fit, chi2_true,
                              ndof (= points - 8), n_points, nfev, status
  normfit_chi2.csv            dataset,experiment,n,chi2_true,chi2_fit,neg_ln_p_fit
                              (per experiment at the fitted parameters, p = Q(n/2, chi2/2),
                              ndof = n per experiment; rows SUM_NLL and MAX_NLL carry the
                              Sum-NLL / Max-NLL in column neg_ln_p_fit)

Run from the repository root:  .venv-fit/bin/python tests/reference/normfit_reference.py
"""
import csv
import os
import sys

import mpmath as mp
import numpy as np
from scipy.optimize import least_squares
from scipy.special import gammaincc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from modulation_reference import M_E, M_P, M_U  # noqa: E402

OUTDIR = os.path.join("tests", "data", "fit")
R0 = 0.5
R_NODES = [10.0 ** (k / 10.0) for k in range(-15, 51)]

# name: A, Z, m, (K, Rb, g1, g2, s)
SPECIES = {
    "p": (1, 1, M_P, (1.0e3, 3.0, 1.0, 2.80, 0.5)),
    "He4": (4, 2, M_U, (1.5e2, 3.0, 1.0, 2.72, 0.5)),
    "C12": (12, 6, M_U, (5.0, 3.0, 1.0, 2.72, 0.5)),
    "B11": (11, 5, M_U, (1.5, 3.0, 1.0, 3.10, 0.5)),
    "e-": (1, -1, M_E, (2.0e1, 4.0, 1.5, 3.20, 0.5)),
    "e+": (1, 1, M_E, (1.5, 4.0, 1.5, 3.00, 0.5)),
    "pbar": (1, -1, M_P, (0.2, 8.0, -0.5, 2.90, 0.5)),
}
PARAMS = ["N_p", "N_He4", "N_C12", "N_e-", "N_e+", "Phi0", "Phi1p", "Phi1m"]
NORM_OF = {"p": 0, "He4": 1, "C12": 2, "B11": 2, "e-": 3, "e+": 4, "pbar": 0}
TRUE = [1.04, 0.96, 1.08, 0.93, 1.06, 0.35, 0.45, 0.15]
START = [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
LOWER = [0.1] * 5 + [0.0, 0.0, 0.0]
UPPER = [10.0] * 5 + [3.0, 5.0, 5.0]

# name, quantity, Tmin, Tmax, points (log spaced, inclusive), sigma / value
EXPERIMENTS = [
    ("p_lowE", "p", 0.5, 10.0, 12, 0.03),
    ("p_highE", "p", 10.0, 1000.0, 15, 0.04),
    ("He4", "He4", 0.5, 500.0, 15, 0.03),
    ("He4_highE", "He4", 50.0, 2000.0, 8, 0.05),
    ("C12", "C12", 1.0, 1000.0, 12, 0.05),
    ("BC", "B11/C12", 0.5, 1000.0, 15, 0.04),
    ("pbar_p", "pbar/p", 1.0, 400.0, 12, 0.05),
    ("eminus", "e-", 0.5, 500.0, 15, 0.03),
    ("eminus_lowE", "e-", 0.3, 5.0, 8, 0.02),
    ("eplus", "e+", 0.5, 500.0, 15, 0.04),
]
NOISE_SEEDS = [1, 2, 3]


def table_value(name, R):
    A, Z, m, (K, Rb, g1, g2, s) = SPECIES[name]
    r = mp.mpf(R) / Rb
    return K * r ** (-mp.mpf(g1)) * (1 + r ** ((mp.mpf(g2) - g1) / s)) ** (-mp.mpf(s))


TABLES = {n: [float(table_value(n, R)) for R in R_NODES] for n in SPECIES}


# ----------------------------------------------------------------------------- mpmath model

def interp_mp(name, R):
    tab = TABLES[name]
    R = mp.mpf(R)
    k = None
    for i in range(len(R_NODES) - 1):
        if R_NODES[i] <= R <= R_NODES[i + 1]:
            k = i
            break
    if k is None:
        raise ValueError(f"{name}: R = {R} outside the table")
    lr0, lr1 = mp.log(R_NODES[k]), mp.log(R_NODES[k + 1])
    lj0, lj1 = mp.log(tab[k]), mp.log(tab[k + 1])
    return mp.exp(lj0 + (lj1 - lj0) * (mp.log(R) - lr0) / (lr1 - lr0))


def flux_toa_mp(name, T, theta):
    A, Z, m, _ = SPECIES[name]
    A, Zabs, m, T = mp.mpf(A), mp.mpf(abs(Z)), mp.mpf(m), mp.mpf(T)
    pn = mp.sqrt(T * (T + 2 * m))
    R, beta = A * pn / Zabs, pn / (T + m)
    phi1 = mp.mpf(theta[6] if Z > 0 else theta[7])
    r = R / R0
    Phi = mp.mpf(theta[5]) + phi1 * (1 + r ** 2) / (beta * r ** 3)
    Tis = T + Zabs / A * Phi
    pis = mp.sqrt(Tis * (Tis + 2 * m))
    Ris = A * pis / Zabs
    J_is_T = interp_mp(name, Ris) * (A / Zabs) * (Tis + m) / pis
    return J_is_T * T * (T + 2 * m) / (Tis * (Tis + 2 * m))


def model_mp(quantity, T, theta):
    if "/" in quantity:
        a, b = quantity.split("/")
        return (theta[NORM_OF[a]] * flux_toa_mp(a, T, theta)) / (
            theta[NORM_OF[b]] * flux_toa_mp(b, T, theta))
    return theta[NORM_OF[quantity]] * flux_toa_mp(quantity, T, theta)


# ----------------------------------------------------------------------------- numpy model

LNR = np.log(np.array(R_NODES))
LNJ = {n: np.log(np.array(TABLES[n])) for n in SPECIES}


def flux_toa_np(name, T, theta):
    A, Z, m, _ = SPECIES[name]
    Za = abs(Z)
    pn = np.sqrt(T * (T + 2 * m))
    R, beta = A * pn / Za, pn / (T + m)
    r = R / R0
    Phi = theta[5] + (theta[6] if Z > 0 else theta[7]) * (1 + r ** 2) / (beta * r ** 3)
    Tis = T + Za / A * Phi
    pis = np.sqrt(Tis * (Tis + 2 * m))
    Ris = A * pis / Za
    J = np.exp(np.interp(np.log(Ris), LNR, LNJ[name], left=np.nan, right=np.nan))
    return J * (A / Za) * (Tis + m) / pis * T * (T + 2 * m) / (Tis * (Tis + 2 * m))


def model_np(quantity, T, theta):
    if "/" in quantity:
        a, b = quantity.split("/")
        return (theta[NORM_OF[a]] * flux_toa_np(a, T, theta)) / (
            theta[NORM_OF[b]] * flux_toa_np(b, T, theta))
    return theta[NORM_OF[quantity]] * flux_toa_np(quantity, T, theta)


# ----------------------------------------------------------------------------- data + fit

def make_rows():
    rows = []
    for name, q, tmin, tmax, npts, frac in EXPERIMENTS:
        for T in np.geomspace(tmin, tmax, npts):
            T = float(T)
            tv = float(model_mp(q, T, TRUE))
            rows.append([name, q, T, tv, frac * tv])
    return rows


def write_data(path, rows, values, seed):
    with open(path, "w", newline="") as f:
        f.write("# synthetic data for the normalisation + modulation fit "
                "(tests/reference/normfit_reference.py; model in its docstring)\n")
        for p, v in zip(PARAMS, TRUE):
            f.write(f"# true {p} {v!r}\n")
        f.write(f"# seed {seed}\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["experiment", "quantity", "T", "value", "sigma", "true_value"])
        for (name, q, T, tv, sig), v in zip(rows, values):
            w.writerow([name, q, repr(T), repr(float(v)), repr(sig), repr(tv)])


def fit(rows, values, start=START):
    qs = [r[1] for r in rows]
    Ts = np.array([r[2] for r in rows])
    sig = np.array([r[4] for r in rows])
    vals = np.array(values)
    groups = {}
    for i, q in enumerate(qs):
        groups.setdefault(q, []).append(i)
    groups = {q: np.array(ix) for q, ix in groups.items()}

    def model(theta):
        out = np.empty(len(rows))
        for q, ix in groups.items():
            out[ix] = model_np(q, Ts[ix], theta)
        return out

    def resid(theta):
        return (model(theta) - vals) / sig

    res = least_squares(resid, start, bounds=(LOWER, UPPER), method="trf", x_scale="jac",
                        ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=2000)
    J = res.jac
    cov = np.linalg.inv(J.T @ J)
    return res, np.sqrt(np.diag(cov)), resid


def main():
    mp.mp.dps = 30
    os.makedirs(OUTDIR, exist_ok=True)
    with open(os.path.join(OUTDIR, "normfit_model.csv"), "w", newline="") as f:
        f.write("# interstellar flux per rigidity tables [m^-2 s^-1 sr^-1 GV^-1]; log-log linear "
                "interpolation in R [GV]\n")
        f.write("# generated from J_R = K (R/Rb)^(-g1) (1 + (R/Rb)^((g2-g1)/s))^(-s):\n")
        for n, (A, Z, m, (K, Rb, g1, g2, s)) in SPECIES.items():
            f.write(f"# {n}: K={K!r} Rb={Rb!r} g1={g1!r} g2={g2!r} s={s!r}\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["species", "A", "Z", "m", "R", "flux_R"])
        for n, (A, Z, m, _) in SPECIES.items():
            for R, J in zip(R_NODES, TABLES[n]):
                w.writerow([n, A, Z, repr(m), repr(R), repr(J)])

    rows = make_rows()
    truev = np.array([r[3] for r in rows])
    # the two model implementations agree
    dev = max(abs(model_np(r[1], np.array([r[2]]), TRUE)[0] / r[3] - 1) for r in rows)
    print(f"numpy model vs mpmath model at the truth: max rel dev {dev:.2e}")
    assert dev < 1e-13
    datasets = [("clean", truev, "none")]
    for s in NOISE_SEEDS:
        g = np.random.default_rng(s).standard_normal(len(rows))
        datasets.append((f"noisy_s{s}", truev + np.array([r[4] for r in rows]) * g, s))
    fitrows, chirows = [], []
    for tag, vals, seed in datasets:
        write_data(os.path.join(OUTDIR, f"normfit_data_{tag}.csv"), rows, vals, seed)
        res, err, resid = fit(rows, vals)
        res2, _, _ = fit(rows, vals, start=TRUE)
        same = float(np.max(np.abs(res2.x - res.x) / err))
        r_true = resid(np.array(TRUE))
        r_fit = res.fun
        n = len(rows)
        out = [(tag, f"fit_{p}", repr(float(v))) for p, v in zip(PARAMS, res.x)]
        out += [(tag, f"err_{p}", repr(float(e))) for p, e in zip(PARAMS, err)]
        out += [(tag, f"true_{p}", repr(v)) for p, v in zip(PARAMS, TRUE)]
        out += [(tag, f"start_{p}", repr(v)) for p, v in zip(PARAMS, START)]
        out += [(tag, "chi2_fit", repr(float(r_fit @ r_fit))),
                (tag, "chi2_true", repr(float(r_true @ r_true))),
                (tag, "ndof", n - len(PARAMS)), (tag, "n_points", n),
                (tag, "nfev", res.nfev), (tag, "status", res.status)]
        fitrows += out
        nlls = []
        for name, *_ in EXPERIMENTS:
            ix = np.array([i for i, r in enumerate(rows) if r[0] == name])
            c2t, c2f = float(r_true[ix] @ r_true[ix]), float(r_fit[ix] @ r_fit[ix])
            # -ln Q(n/2, chi2/2) in mpmath (no underflow)
            a_, x_ = mp.mpf(len(ix)) / 2, mp.mpf(c2f) / 2
            P = mp.gammainc(a_, 0, x_, regularized=True)
            nll = (-mp.log1p(-P) if P < 0.5
                   else -mp.log(mp.gammainc(a_, x_, mp.inf, regularized=True)))
            assert abs(float(nll) + np.log(gammaincc(len(ix) / 2, c2f / 2))) < 1e-9 * (1 + float(nll))
            nlls.append(nll)
            chirows.append([tag, name, len(ix), repr(c2t), repr(c2f), mp.nstr(nll, 20)])
        chirows.append([tag, "SUM_NLL", n, "", "", mp.nstr(mp.fsum(nlls), 20)])
        chirows.append([tag, "MAX_NLL", n, "", "", mp.nstr(max(nlls), 20)])
        print(f"{tag}: chi2_fit = {r_fit @ r_fit:.6g} (ndof {n - len(PARAMS)}), "
              f"chi2_true = {r_true @ r_true:.6g}, nfev {res.nfev}, status {res.status}; "
              f"refit from the truth: max |dtheta|/err = {same:.1e}")
        print("   fit : " + "  ".join(f"{p}={v:.6f}+-{e:.4f}" for p, v, e in zip(PARAMS, res.x, err)))
        print(f"   Sum-NLL {float(mp.fsum(nlls)):.4f}  Max-NLL {float(max(nlls)):.4f}")
    with open(os.path.join(OUTDIR, "normfit_fit.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["dataset", "key", "value"])
        w.writerows(fitrows)
    with open(os.path.join(OUTDIR, "normfit_chi2.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["dataset", "experiment", "n", "chi2_true", "chi2_fit", "neg_ln_p_fit"])
        w.writerows(chirows)


if __name__ == "__main__":
    main()
