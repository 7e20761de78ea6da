#!/usr/bin/env python3
"""Reference values of charge-sign dependent force-field solar modulation (issue 6, item 2).

Written from the formulas (Gleeson & Axford 1968; Cholis, Hooper & Linden 2016 in the form of
seed 000 and shared/PHYSICS.md), not from the Rust code.

Nucleus (A, Z), mean nucleon mass m, kinetic energy per nucleon T [GeV/n] at Earth (top of
the atmosphere, TOA):

    p_n  = sqrt(T (T + 2 m))                 momentum per nucleon [GeV/c]
    R    = A p_n / |Z|                        rigidity AT EARTH [GV]
    beta = p_n / (T + m)                      v/c at Earth
    Phi  = Phi0 + Phi1s (1 + (R/R0)^2) / (beta (R/R0)^3),  R0 = 0.5 GV,
           Phi1s = Phi1p for Z > 0, Phi1m for Z < 0
    T_IS = T + (|Z|/A) Phi                    interstellar kinetic energy per nucleon
    flux_TOA(T) = flux_IS(T_IS) T (T + 2 m) / (T_IS (T_IS + 2 m))

Interstellar spectrum used for the table: flux_IS(T) = T^-2.7 (per kinetic energy per nucleon,
arbitrary units) for every species. Energy conservation per nucleon: E = T + m,
E_IS - E = (|Z|/A) Phi; per nucleus (M = A m, E_tot = A E): E_tot,IS - E_tot = |Z| Phi, and the
Jacobian equals (E_tot^2 - M^2) / (E_tot,IS^2 - M^2) (the total-energy form in PHYSICS.md);
energy_checks() verifies both on every row.

Masses (GeV): proton and antiproton m_p = 0.93827208816 (CODATA 2018); electron and positron
m_e = 0.51099895000e-3 with |Z| = A = 1; nuclei (He-4, B-11, C-12): the atomic mass unit
u = 0.93149410242 (CODATA 2018) as the mean nucleon mass. (The true nuclear masses per nucleon
differ: He-4 0.93182, B-11 0.93099... , C-12 0.93124 GeV - the mass column of the file says
what was used, so a test can take m from there.)

Computed at mp.dps = 40 from the float64 inputs (exact binary values), written with 30
significant digits. Writes tests/data/fit/modulation.csv, columns

    species,A,Z,m,T,Phi0,Phi1p,Phi1m,R,beta,Phi,T_IS,jacobian,flux_TOA,ratio

jacobian = T (T + 2m) / (T_IS (T_IS + 2m)) = flux_TOA(T) / flux_IS(T_IS) (any flux_IS);
flux_TOA = T_IS^-2.7 * jacobian; ratio = flux_TOA(T) / flux_IS(T) = (T_IS/T)^-2.7 * jacobian.

Run from the repository root:  .venv-fit/bin/python tests/reference/modulation_reference.py
"""
import csv
import os
import sys

import mpmath as mp

OUT = os.path.join("tests", "data", "fit", "modulation.csv")

M_P = 0.93827208816
M_E = 0.51099895000e-3
M_U = 0.93149410242
R0 = 0.5
GAMMA_IS = 2.7

# name, A, Z, mean nucleon mass
SPECIES = [
    ("p", 1, 1, M_P),
    ("He4", 4, 2, M_U),
    ("C12", 12, 6, M_U),
    ("B11", 11, 5, M_U),
    ("e-", 1, -1, M_E),
    ("e+", 1, 1, M_E),
    ("pbar", 1, -1, M_P),
]

# (Phi0, Phi1p, Phi1m) in GV
PHI_SETS = [
    (0.0, 0.0, 0.0),
    (0.5, 0.0, 0.0),
    (0.4, 0.8, 0.2),
    (0.3, 0.0, 1.0),
    (0.35, 0.5, 0.5),
]

T_GRID = [10.0 ** (k / 4.0) for k in range(-4, 13)]  # 0.1 .. 1000 GeV/n, 4 per decade


def potential(A, Z, m, T, phi0, phi1p, phi1m):
    """Return (R, beta, Phi) at Earth, all mpf. Inputs converted exactly."""
    A, Z, m, T = mp.mpf(A), mp.mpf(Z), mp.mpf(m), mp.mpf(T)
    pn = mp.sqrt(T * (T + 2 * m))
    R = A * pn / abs(Z)
    beta = pn / (T + m)
    phi1 = mp.mpf(phi1p) if Z > 0 else mp.mpf(phi1m)
    r = R / mp.mpf(R0)
    Phi = mp.mpf(phi0) + phi1 * (1 + r ** 2) / (beta * r ** 3)
    return R, beta, Phi


def modulate(A, Z, m, T, phi0, phi1p, phi1m, flux_is=lambda t: t ** (-mp.mpf(GAMMA_IS))):
    R, beta, Phi = potential(A, Z, m, T, phi0, phi1p, phi1m)
    A_, Z_, m_, T_ = mp.mpf(A), mp.mpf(Z), mp.mpf(m), mp.mpf(T)
    T_is = T_ + abs(Z_) / A_ * Phi
    jac = T_ * (T_ + 2 * m_) / (T_is * (T_is + 2 * m_))
    flux_toa = flux_is(T_is) * jac
    ratio = flux_toa / flux_is(T_)
    return dict(R=R, beta=beta, Phi=Phi, T_IS=T_is, jacobian=jac, flux_TOA=flux_toa, ratio=ratio)


def energy_checks(A, Z, m, T, res, tol=mp.mpf(10) ** -35):
    """E_IS - E = (|Z|/A) Phi per nucleon; per nucleus |Z| Phi; Jacobian in total-energy form."""
    A, Z, m, T = mp.mpf(A), mp.mpf(Z), mp.mpf(m), mp.mpf(T)
    E, E_is = T + m, res["T_IS"] + m
    ok1 = abs((E_is - E) - abs(Z) / A * res["Phi"]) <= tol * (1 + res["Phi"])
    M, Et, Et_is = A * m, A * E, A * E_is
    ok2 = abs((Et_is - Et) - abs(Z) * res["Phi"]) <= tol * A * (1 + res["Phi"])
    jac2 = (Et ** 2 - M ** 2) / (Et_is ** 2 - M ** 2)
    ok3 = abs(jac2 - res["jacobian"]) <= tol * res["jacobian"]
    return ok1 and ok2 and ok3


def fmt(v):
    return mp.nstr(v, 30, strip_zeros=True)


def main():
    mp.mp.dps = 40
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    n = 0
    with open(OUT, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["species", "A", "Z", "m", "T", "Phi0", "Phi1p", "Phi1m", "R", "beta",
                    "Phi", "T_IS", "jacobian", "flux_TOA", "ratio"])
        for name, A, Z, m in SPECIES:
            for phi0, phi1p, phi1m in PHI_SETS:
                for T in T_GRID:
                    res = modulate(A, Z, m, T, phi0, phi1p, phi1m)
                    if not energy_checks(A, Z, m, T, res):
                        sys.exit(f"energy check failed: {name} T={T}")
                    w.writerow([name, A, Z, repr(m), repr(T), repr(phi0), repr(phi1p),
                                repr(phi1m)] + [fmt(res[k]) for k in
                                                ["R", "beta", "Phi", "T_IS", "jacobian",
                                                 "flux_TOA", "ratio"]])
                    n += 1
    print(f"wrote {OUT}: {n} rows (energy conservation checked on every row)")


if __name__ == "__main__":
    main()
