#!/usr/bin/env python3
"""Python reference for the loss-rate and transport kernels, timed in the same process as
crkernels (called through its C ABI with ctypes), for the ratios in BENCHMARKS.md.

What is compared, on the field of benches/losses.rs (four greybody components of Delahaye et
al. 2010 plus 3 microgauss) and the transport of benches/transport.rs:
  1. the exact Klein-Nishina loss rate as a physicist would write it with SciPy:
     scipy.integrate.quad of the Planck-weighted f_KN (closed form of PHYSICS.md, with
     scipy.special.spence for Li2) for every energy and component;
  2. the same with a vectorised NumPy fixed grid (trapezoid in ln x, 256 points), the fast
     way, and its error against (1);
  3. the initial energy E0(E, t) from a loss-time table T(E) on a 4000-point log grid
     (cumulative trapezoid of 1/b) inverted with np.interp in log space, the usual table
     approach, against crkernels' crk_transport_initial_energy, with the error of both
     against a high-accuracy solution (brentq on quad);
  4. crkernels through ctypes: crk_losses_rate and crk_transport_initial_energy.

Run from the repository root (builds the shared library first):
    cargo build --release
    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r bench/requirements.txt
    .venv-bench/bin/python bench/reference_python.py
"""

import ctypes
import math
import os
import time
import warnings

import numpy as np
from scipy import integrate, optimize, special

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(REPO, "target", "release", "libcrkernels.so")

# PHYSICS.md constants.
SIGMA_T = 6.6524587321e-25  # cm^2
C_CM_S = 2.99792458e10
ME_GEV = 0.51099895e-3
KB_EV = 8.617333262e-5
MYR_S = 3.15576e13
FIELD = [(2.726, 0.261), (33.07, 0.254), (3249.3, 0.370), (6150.4, 0.229)]  # (K, eV/cm^3)
B_UG = 3.0
THOMSON_PER_EV = 4.0 / 3.0 * SIGMA_T * C_CM_S * 1e-9 / ME_GEV**2  # GeV^-1 s^-1 per eV/cm^3
U_B = (B_UG * 1e-6) ** 2 / (8 * math.pi) * 6.24150907446e11  # eV/cm^3


def f_kn(b):
    """f_KN(b) of PHYSICS.md; the series below b = 1e-3 (the closed form cancels there)."""
    b = np.asarray(b, dtype=float)
    small = b < 1e-3
    bs = np.where(small, 1.0, b)
    closed = 9.0 / bs**3 * ((bs / 2 + 6 + 6 / bs) * np.log1p(bs)
                            - (11 * bs**3 / 12 + 6 * bs**2 + 9 * bs + 4) / (1 + bs) ** 2
                            - 2 + 2 * special.spence(1 + bs))
    series = 1 - 63 * b / 40 + 441 * b**2 / 200 - 101 * b**3 / 35
    return np.where(small, series, closed)


def f_kn_scalar(b):
    """f_KN(b) for one float, with the math module (no NumPy overhead inside quad)."""
    if b < 1e-3:
        return 1 - 63 * b / 40 + 441 * b**2 / 200 - 101 * b**3 / 35
    return 9.0 / b**3 * ((b / 2 + 6 + 6 / b) * math.log1p(b) - (11 * b**3 / 12 + 6 * b**2 + 9 * b + 4) / (1 + b) ** 2
                         - 2 + 2 * float(special.spence(1 + b)))


def r_quad(u):
    """R(u) by scipy.integrate.quad."""
    # The Planck weight is below 1e-80 beyond x = 200.
    value, _ = integrate.quad(lambda x: x**3 / math.expm1(x) * f_kn_scalar(u * x), 0, 200, limit=200, epsrel=1e-12)
    return 15 / math.pi**4 * value


X_GRID = np.exp(np.linspace(math.log(1e-4), math.log(60.0), 256))
X_WEIGHT = X_GRID**4 / np.expm1(X_GRID)  # x^3/(e^x-1) dx with dx = x d(ln x)


def r_grid(u):
    """R(u) for an array of u: trapezoid in ln x on a fixed 256-point grid."""
    integrand = X_WEIGHT[None, :] * f_kn(np.outer(u, X_GRID))
    return 15 / math.pi**4 * np.trapezoid(integrand, np.log(X_GRID), axis=1)


def kn_variable_per_gev(t_k):
    return 4 * KB_EV * t_k / (ME_GEV * 1e9) / ME_GEV


def rate_quad(e):
    return e * e * THOMSON_PER_EV * (U_B + sum(u * r_quad(kn_variable_per_gev(t) * e) for t, u in FIELD))


def rate_grid(e):
    total = U_B + sum(u * r_grid(kn_variable_per_gev(t) * e) for t, u in FIELD)
    return e * e * THOMSON_PER_EV * total


def timed(f, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = f()
        best = min(best, time.perf_counter() - t0)
    return best, result


class PhotonField(ctypes.Structure):
    _fields_ = [("temperature_K", ctypes.c_double), ("energy_density_eV_per_cm3", ctypes.c_double)]


def load_crkernels():
    lib = ctypes.CDLL(LIB)
    dp = ctypes.POINTER(ctypes.c_double)
    lib.crk_losses_new.argtypes = [ctypes.c_int32, ctypes.POINTER(PhotonField), ctypes.c_size_t,
                                   ctypes.c_double, ctypes.POINTER(ctypes.c_void_p)]
    lib.crk_losses_rate.argtypes = [ctypes.c_void_p, dp, ctypes.c_size_t, dp]
    lib.crk_transport_new.argtypes = [ctypes.c_void_p] + [ctypes.c_double] * 5 + [ctypes.POINTER(ctypes.c_void_p)]
    lib.crk_transport_initial_energy.argtypes = [ctypes.c_void_p, dp, dp, ctypes.c_size_t, dp]
    lib.crk_transport_max_age.argtypes = [ctypes.c_void_p, dp, ctypes.c_size_t, dp]
    return lib


def ptr(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def main():
    # quad warns about round-off at small b, where the closed form of f_KN cancels: that is
    # the reference's own error, reported below.
    warnings.simplefilter("ignore", integrate.IntegrationWarning)
    rng = np.random.default_rng(7)
    energies = np.exp(rng.uniform(0, math.log(1e5), 4096))
    lib = load_crkernels()
    fields = (PhotonField * 4)(*[PhotonField(t, u) for t, u in FIELD])
    losses = ctypes.c_void_p()
    assert lib.crk_losses_new(2, fields, 4, B_UG, ctypes.byref(losses)) == 0

    print(f"machine: {os.uname().machine}, {os.cpu_count()} cores; numpy {np.__version__}")
    print("\n1-2. exact KN loss rate, 4 components + synchrotron")
    few = energies[:64]
    t_quad, ref = timed(lambda: np.array([rate_quad(e) for e in few]), repeat=1)
    t_grid, grid = timed(lambda: rate_grid(energies))
    out = np.empty_like(energies)
    t_crk, _ = timed(lambda: lib.crk_losses_rate(losses, ptr(energies), len(energies), ptr(out)), repeat=50)
    per = {"scipy quad": t_quad / len(few), "numpy grid": t_grid / len(energies), "crkernels": t_crk / len(energies)}
    err_grid = np.max(np.abs(grid[:64] / ref - 1))
    err_crk = np.max(np.abs(out[:64] / ref - 1))
    for name, seconds in per.items():
        print(f"  {name:12s} {seconds * 1e9:12.1f} ns/evaluation   {per[name] / per['crkernels']:10.1f} x crkernels")
    print(f"  max relative difference to scipy quad: numpy grid {err_grid:.1e}, crkernels {err_crk:.1e}")
    print("  (crkernels agrees with mpmath to 4e-15, tests/kn_loss_factor.rs: these differences are the")
    print("   Python versions' own errors, mostly the closed form of f_KN cancelling at small b)")

    print("\n3. initial energy E0(E, t): table T(E) + np.interp against crkernels")
    transport = ctypes.c_void_p()
    assert lib.crk_transport_new(losses, 3e28, 0.6, 4.0, 1.0, 1e7, ctypes.byref(transport)) == 0
    grid_e = np.exp(np.linspace(0, math.log(1e7), 4000))

    def numpy_table():
        inv_b = 1 / (rate_grid(grid_e) * MYR_S)
        return np.concatenate([-integrate.cumulative_trapezoid(inv_b[::-1], grid_e[::-1])[::-1], [0.0]])

    t_build, loss_time = timed(numpy_table, repeat=3)
    obs = np.exp(rng.uniform(math.log(10**2.4), math.log(10**4.2), 4096))
    oldest = np.empty_like(obs)
    assert lib.crk_transport_max_age(transport, ptr(obs), len(obs), ptr(oldest)) == 0
    ages = rng.uniform(0, 0.99, 4096) * oldest

    def numpy_e0():
        y = np.interp(np.log(obs), np.log(grid_e), loss_time) - ages
        # np.interp needs increasing abscissae: T decreases with E.
        return np.exp(np.interp(y, loss_time[::-1], np.log(grid_e[::-1])))

    t_np, e0_np = timed(numpy_e0, repeat=20)
    e0_crk = np.empty_like(obs)
    t_c, _ = timed(lambda: lib.crk_transport_initial_energy(transport, ptr(obs), ptr(ages), len(obs), ptr(e0_crk)),
                   repeat=50)

    # High-accuracy E0 for 24 pairs: brentq on quad of 1/b, with b from crkernels (accurate to
    # 1e-15, tests/transport.rs), so that this checks the two inversions alone.
    one_e, one_b = np.empty(1), np.empty(1)

    def rate_crk(x):
        one_e[0] = x
        lib.crk_losses_rate(losses, ptr(one_e), 1, ptr(one_b))
        return one_b[0]

    def tau_quad(e, e0):
        return integrate.quad(lambda x: 1 / (rate_crk(x) * MYR_S), e, e0, epsrel=1e-13, limit=200)[0]

    exact = [optimize.brentq(lambda e0: tau_quad(e, e0) - t, e, 1e7, xtol=1e-14 * e, rtol=1e-14)
             for e, t in zip(obs[:24], ages[:24])]
    err_np = np.abs(e0_np[:24] / exact - 1)
    err_c = np.abs(e0_crk[:24] / exact - 1)
    print(f"  numpy table build (rates on 4000 points, cumulative trapezoid): {t_build * 1e3:.1f} ms")
    print(f"  numpy interp  {t_np / len(obs) * 1e9:8.1f} ns/look-up   relative error median "
          f"{np.median(err_np):.1e}, max {err_np.max():.1e}")
    print(f"  crkernels     {t_c / len(obs) * 1e9:8.1f} ns/look-up   relative error median "
          f"{np.median(err_c):.1e}, max {err_c.max():.1e}   ({t_np / t_c:.1f}x faster)")


if __name__ == "__main__":
    main()
