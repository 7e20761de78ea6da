#!/usr/bin/env python3
"""Naive NumPy reference of crkernels' stochastic ensemble (SECRET single point), timed in the
same process as crkernels' crk_ensemble_generate (through ctypes), for the ratio in BENCHMARKS.md.

Setup of examples/secret_ensemble.rs, with the uniform-disc source model in both codes (like
for like): exact KN losses on Delahaye 2010 + 3 microgauss; kappa0 = 3e28 cm^2/s, delta = 0.6,
z_max = 4 kpc, table 100 to 1e7 GeV; 19 energies 10^(2.4 + 0.1 i) GeV; R_SN = 4.55e4/Myr,
t_max = 7 Myr, s_max = 10 kpc: 318500 sources; W = 1e48 erg above 1 GeV, gamma 2.2, E_cut 1e4 GeV.

The NumPy code is what a physicist writes: per realisation, draw all sources (ages uniform,
s = s_max sqrt(u)); for every energy, for ALL sources (no thinning of old ones), vectorised:
E0, l^2, Q(E0) b(E0)/b(E), the Gaussian, the halo image sum n = -3..3, the causal cut and
E0 > E_max. Only b(E) comes from crkernels (crk_losses_rate, checked against SciPy quad in
bench/reference_python.py): T(E) = int dE/b and L(E) = int kappa/b dE are built here
(cumulative Simpson on a fine log grid) and read with np.interp in log space; their accuracy
against crk_transport_initial_energy / loss_length2 is printed, and so is a same-sources check.

Run from the repository root (builds the shared library first):
    cargo build --release
    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r bench/requirements.txt
    .venv-bench/bin/python bench/reference_ensemble.py
"""

import ctypes
import math
import os
import time

import numpy as np
from scipy import integrate, stats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(REPO, "target", "release", "libcrkernels.so")

MYR_S = 3.15576e13
KPC_M = 3.0856775814913673e19
C_M_S = 2.99792458e8
C_KPC_MYR = C_M_S * MYR_S / KPC_M  # 306.601394 kpc/Myr
KAPPA0, DELTA, Z_MAX, E_MIN, E_MAX = 3e28, 0.6, 4.0, 100.0, 1e7
R_SN, T_MAX, S_MAX = 4.55e4, 7.0, 10.0
N_SOURCES = round(R_SN * T_MAX)  # uniform disc: P(s < s_max) = 1
ENERGIES = 10.0 ** (2.4 + 0.1 * np.arange(19))
N_NUMPY, N_CRK, SEED = 50, 1000, 2024


class Spectrum(ctypes.Structure):
    _fields_ = [("q_star_per_GeV", ctypes.c_double), ("gamma", ctypes.c_double), ("cutoff_GeV", ctypes.c_double)]


class Params(ctypes.Structure):
    _fields_ = [("sn_rate_per_Myr", ctypes.c_double), ("t_max_Myr", ctypes.c_double), ("s_max_kpc", ctypes.c_double),
                ("spatial", ctypes.c_int32), ("poisson_count", ctypes.c_int32), ("spectrum", Spectrum)]


def load_crkernels():
    lib = ctypes.CDLL(LIB)
    dp, vp, sz, u64 = ctypes.POINTER(ctypes.c_double), ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64
    lib.crk_losses_new_preset.argtypes = [ctypes.c_int32, ctypes.c_int32, ctypes.c_double, ctypes.POINTER(vp)]
    lib.crk_losses_rate.argtypes = [vp, dp, sz, dp]
    lib.crk_transport_new.argtypes = [vp] + [ctypes.c_double] * 5 + [ctypes.POINTER(vp)]
    lib.crk_transport_initial_energy.argtypes = [vp, dp, dp, sz, dp]
    lib.crk_transport_loss_length2.argtypes = [vp, dp, dp, sz, dp]
    lib.crk_source_spectrum_from_energy.argtypes = [ctypes.c_double] * 4 + [ctypes.POINTER(Spectrum)]
    lib.crk_ensemble_new.argtypes = [vp, ctypes.POINTER(Params), dp, sz, ctypes.POINTER(vp)]
    lib.crk_ensemble_sources.argtypes = [vp, u64, u64, dp, dp, sz, ctypes.POINTER(sz)]
    lib.crk_ensemble_generate.argtypes = [vp, ctypes.POINTER(Params), dp, sz, u64, u64, sz, sz, dp]
    lib.crk_ensemble_new_with_precision.argtypes = [vp, ctypes.POINTER(Params), dp, sz, ctypes.c_int32,
                                                    ctypes.POINTER(vp)]
    lib.crk_ensemble_run.argtypes = [vp, u64, u64, sz, sz, dp, vp, vp]
    lib.crk_ensemble_free.argtypes = [vp]
    lib.crk_vector_isa.restype = ctypes.c_char_p
    return lib


def ptr(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def check(status):
    assert status == 0, f"crkernels error {status}"


class Tables:
    """b(E) from crkernels; T(E), L(E) by cumulative Simpson in ln E; look-ups by np.interp."""

    def __init__(self, lib, losses, n=20001):
        self.ln_e = np.linspace(math.log(E_MIN), math.log(E_MAX), n)
        e = np.exp(self.ln_e)
        b = np.empty_like(e)
        check(lib.crk_losses_rate(losses, ptr(e), len(e), ptr(b)))
        b_myr = b * MYR_S  # GeV/Myr
        kappa = KAPPA0 * MYR_S / (KPC_M * 100) ** 2 * e**DELTA  # kpc^2/Myr
        self.ln_b = np.log(b)
        # integral from E to E_max of g dE = integral of g E dx, x = -ln E, accumulated from the top.
        def from_top(g):
            return integrate.cumulative_simpson((g * e)[::-1], x=-self.ln_e[::-1], initial=0.0)[::-1]
        self.t = from_top(1 / b_myr)  # T(E) [Myr], decreasing, T(E_max) = 0
        self.l = from_top(kappa / b_myr)  # L(E) [kpc^2]

    def at(self, table, ln_e):
        return np.interp(ln_e, self.ln_e, table)

    def ln_initial_energy(self, y):  # ln E0 from y = T(E0); np.interp needs increasing abscissae
        return np.interp(y, self.t[::-1], self.ln_e[::-1])


def numpy_flux(age, s, tab, spec):
    """phi(E) [GeV^-1 m^-2 s^-1 sr^-1] of the sources at distances s [kpc], ages [Myr]."""
    flux = np.empty(len(ENERGIES))
    for k, e in enumerate(ENERGIES):
        ln_e = math.log(e)
        y = tab.at(tab.t, ln_e) - age  # T(E0) = T(E) - t
        alive = (y >= 0) & (C_KPC_MYR * age >= s)  # E0 <= E_max, causal
        ln_e0 = tab.ln_initial_energy(np.maximum(y, 0.0))
        e0 = np.exp(ln_e0)
        l2 = np.maximum(tab.at(tab.l, ln_e) - tab.at(tab.l, ln_e0), 1e-300)
        q = spec.q_star_per_GeV * e0**-spec.gamma * np.exp(-e0 / spec.cutoff_GeV)
        jacobian = np.exp(tab.at(tab.ln_b, ln_e0) - tab.at(tab.ln_b, ln_e))
        theta = sum((-1) ** n * np.exp(-((2 * n * Z_MAX) ** 2) / (4 * l2)) for n in range(-3, 4))
        n_e = q * jacobian * (4 * np.pi * l2) ** -1.5 * np.exp(-(s**2) / (4 * l2)) * theta
        flux[k] = np.sum(np.where(alive, n_e, 0.0))  # GeV^-1 kpc^-3
    return C_M_S / (4 * np.pi) * flux / KPC_M**3  # GeV^-1 m^-2 s^-1 sr^-1


def main():
    lib = load_crkernels()
    losses, transport = ctypes.c_void_p(), ctypes.c_void_p()
    check(lib.crk_losses_new_preset(2, 1, 3.0, ctypes.byref(losses)))  # KN exact, Delahaye 2010
    check(lib.crk_transport_new(losses, KAPPA0, DELTA, Z_MAX, E_MIN, E_MAX, ctypes.byref(transport)))
    spec = Spectrum()
    check(lib.crk_source_spectrum_from_energy(1e48, 1.0, 2.2, 1e4, ctypes.byref(spec)))
    params = Params(R_SN, T_MAX, S_MAX, 0, 0, spec)  # uniform disc, fixed count
    print(f"machine: {os.uname().machine}, {os.cpu_count()} cores; numpy {np.__version__}; "
          f"crkernels on {lib.crk_vector_isa().decode()} (CRKERNELS_ISA picks the set)")
    print(f"{N_SOURCES} sources per realisation, {len(ENERGIES)} energies, q* = {spec.q_star_per_GeV:.4e} /GeV")

    t0 = time.perf_counter()
    tab = Tables(lib, losses)
    print(f"\nNumPy tables T, L, ln b (20001-point log grid, b from crkernels): {time.perf_counter() - t0:.2f} s")
    rng = np.random.default_rng(1)
    e = np.repeat(ENERGIES, 2000)
    age = rng.uniform(0, 1, e.size) * tab.at(tab.t, np.log(e))
    e0_np = np.exp(tab.ln_initial_energy(tab.at(tab.t, np.log(e)) - age))
    e0_c, l2_c = np.empty_like(e), np.empty_like(e)
    check(lib.crk_transport_initial_energy(transport, ptr(e), ptr(age), e.size, ptr(e0_c)))
    l2_np = tab.at(tab.l, np.log(e)) - tab.at(tab.l, np.log(e0_c))  # at the same (E, E0)
    check(lib.crk_transport_loss_length2(transport, ptr(e), ptr(e0_c), e.size, ptr(l2_c)))
    for name, a, ref in [("E0", e0_np, e0_c), ("l^2", l2_np, l2_c)]:
        err = np.abs(a / ref - 1)
        print(f"  {name:4s} vs crkernels over ages in [0, T(E)): median {np.median(err):.1e}, "
              f"99% {np.quantile(err, 0.99):.1e}, max {err.max():.1e}")
    print(f"  largest l = {math.sqrt(tab.at(tab.l, math.log(ENERGIES[0]))):.2f} kpc (z_max = {Z_MAX} kpc)")

    rng = np.random.default_rng(SEED)
    flux_np, times = np.empty((N_NUMPY, len(ENERGIES))), []
    for r in range(N_NUMPY):
        t0 = time.perf_counter()
        age = rng.uniform(0.0, T_MAX, N_SOURCES)
        flux_np[r] = numpy_flux(age, S_MAX * np.sqrt(rng.uniform(0.0, 1.0, N_SOURCES)), tab, spec)
        times.append(time.perf_counter() - t0)
    t_np = float(np.median(times))

    flux_c = np.empty((N_CRK, len(ENERGIES)))
    t_c = {}
    for threads in (1, 0):
        t0 = time.perf_counter()
        check(lib.crk_ensemble_generate(transport, ctypes.byref(params), ptr(ENERGIES), len(ENERGIES), SEED, 0,
                                        N_CRK, threads, ptr(flux_c)))
        t_c[threads] = (time.perf_counter() - t0) / N_CRK

    # The two precision tiers on handles built once (tables outside the timing), best of 3.
    tiers = {}
    for precision, name in ((0, "exact"), (1, "f32")):
        handle = ctypes.c_void_p()
        check(lib.crk_ensemble_new_with_precision(transport, ctypes.byref(params), ptr(ENERGIES), len(ENERGIES),
                                                  precision, ctypes.byref(handle)))
        for threads in (1, 0):
            best = math.inf
            for _ in range(3):
                t0 = time.perf_counter()
                check(lib.crk_ensemble_run(handle, SEED, 0, N_CRK, threads, ptr(flux_c), None, None))
                best = min(best, (time.perf_counter() - t0) / N_CRK)
            tiers[name, threads] = best
        lib.crk_ensemble_free(handle)
    # What both tiers share: the draw, D (the sources are drawn in age-bin order: no sort). A
    # handle on the lowest energy alone draws the same sources as the whole grid (its T(E) sets
    # the young horizon) and evaluates one energy, e: t1 = D + e; one on that energy twice (and
    # 1e-9 above it) takes t2 = D + 2e, so D = 2 t1 - t2. No evaluation can go below D. The f32
    # tier's D also writes its binary32 columns.
    def one_thread_time(energies, precision):
        handle, out = ctypes.c_void_p(), np.empty((N_CRK, energies.size))
        check(lib.crk_ensemble_new_with_precision(transport, ctypes.byref(params), ptr(energies), energies.size,
                                                  precision, ctypes.byref(handle)))
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            check(lib.crk_ensemble_run(handle, SEED, 0, N_CRK, 1, ptr(out), None, None))
            best = min(best, (time.perf_counter() - t0) / N_CRK)
        lib.crk_ensemble_free(handle)
        return best

    shared = {}
    for name, precision in (("exact", 0), ("f32", 1)):
        t1 = one_thread_time(np.ascontiguousarray(ENERGIES[:1]), precision)
        t2 = one_thread_time(np.array([ENERGIES[0], ENERGIES[0] * (1 + 1e-9)]), precision)
        shared[name] = 2 * t1 - t2

    print(f"\nper realisation ({N_NUMPY} NumPy realisations, median; {N_CRK} crkernels realisations):")
    print(f"  NumPy, 1 thread          {t_np * 1e3:10.2f} ms")
    print(f"  crkernels, 1 thread      {t_c[1] * 1e3:10.4f} ms   NumPy / crkernels = {t_np / t_c[1]:8.0f}x")
    print(f"  crkernels, all cores     {t_c[0] * 1e3:10.4f} ms   NumPy / crkernels = {t_np / t_c[0]:8.0f}x")
    for threads, label in ((1, "1 thread "), (0, "all cores")):
        exact, single = tiers["exact", threads], tiers["f32", threads]
        print(f"  handle run, {label}: exact {exact * 1e3:.4f} ms ({t_np / exact:.0f}x), "
              f"f32 tier {single * 1e3:.4f} ms ({t_np / single:.0f}x), f32 / exact speed {exact / single:.2f}x")
    exact, single = tiers["exact", 1], tiers["f32", 1]
    print(f"  draws D (2 t(lowest energy) - t(it twice)), 1 thread: exact {shared['exact'] * 1e3:.4f} ms = "
          f"{shared['exact'] / exact:.0%} of the exact tier (a free evaluation would make it {exact / shared['exact']:.2f}x "
          f"faster, no more); f32 {shared['f32'] * 1e3:.4f} ms")
    print(f"  evaluation (tier - D), 1 thread: exact {(exact - shared['exact']) * 1e3:.4f} ms, f32 "
          f"{(single - shared['f32']) * 1e3:.4f} ms ({(exact - shared['exact']) / (single - shared['f32']):.2f}x); "
          f"f32 tier with a free evaluation: at most {exact / shared['f32']:.2f}x the exact tier")

    print("\nE^3 phi [GeV^2 m^-2 s^-1 sr^-1]: 5% / median / 95% (NumPy from "
          f"{N_NUMPY}, crkernels from {N_CRK} realisations)")
    for k in (0, 9, 18):
        e3 = ENERGIES[k] ** 3
        qn = np.quantile(flux_np[:, k] * e3, [0.05, 0.5, 0.95])
        qc = np.quantile(flux_c[:, k] * e3, [0.05, 0.5, 0.95])
        # Where the crkernels sample puts the NumPy median: near 50% if the physics agrees.
        rank = np.mean(flux_c[:, k] * e3 < qn[1])
        print(f"  E = {ENERGIES[k]:8.1f} GeV  NumPy {qn[0]:.4e} {qn[1]:.4e} {qn[2]:.4e}   "
              f"crkernels {qc[0]:.4e} {qc[1]:.4e} {qc[2]:.4e}   (NumPy median at crkernels' "
              f"{100 * rank:.0f}%)")
    p_ks = [stats.ks_2samp(flux_np[:, k], flux_c[:, k]).pvalue for k in range(len(ENERGIES))]
    print(f"  two-sample KS tests, NumPy vs crkernels, at the 19 energies: p-values {min(p_ks):.2f} to {max(p_ks):.2f}")

    # The same sources in both codes: crkernels' young sources of its first realisations (the
    # older ones it does not draw add exactly zero) through the NumPy code.
    ensemble, n = ctypes.c_void_p(), ctypes.c_size_t()
    check(lib.crk_ensemble_new(transport, ctypes.byref(params), ptr(ENERGIES), len(ENERGIES), ctypes.byref(ensemble)))
    worst = 0.0
    for r in range(3):
        dist, age = np.empty(N_SOURCES), np.empty(N_SOURCES)
        check(lib.crk_ensemble_sources(ensemble, SEED, r, ptr(dist), ptr(age), N_SOURCES, ctypes.byref(n)))
        phi = numpy_flux(age[:n.value], dist[:n.value], tab, spec)
        worst = max(worst, np.max(np.abs(phi / flux_c[r] - 1)))
    print(f"\nsame sources (crkernels' realisations 0-2, {n.value} young sources in the last) through "
          f"the NumPy code: largest relative difference in phi {worst:.1e}")


if __name__ == "__main__":
    main()
