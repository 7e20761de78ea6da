"""Stochastic source ensembles (crk_ensemble_*, crk_flux_from_sources).

Units: energy GeV, time Myr, distance kpc, rate 1/Myr, source energy erg, flux
phi(E) in GeV^-1 m^-2 s^-1 sr^-1.
"""

import ctypes
from dataclasses import dataclass

import numpy as np

from . import _native
from ._native import (
    _lib,
    check,
    crk_ensemble_params,
    crk_progress_fn,
    crk_source_spectrum,
    dptr,
    f64,
)

SPATIAL_MODELS = {"uniform_disc": 0, "radial_cb98": 1, "spiral_arms": 2}
CRK_SPATIAL_UNIFORM_DISC, CRK_SPATIAL_RADIAL_CB98, CRK_SPATIAL_SPIRAL_ARMS = 0, 1, 2


@dataclass(frozen=True)
class SourceSpectrum:
    """Q(E) = q* (E / 1 GeV)^-gamma exp(-E / E_cut) [GeV^-1] of one burst-like source;
    cutoff_GeV = inf means no cut-off."""

    q_star_per_GeV: float
    gamma: float
    cutoff_GeV: float = float("inf")

    @classmethod
    def from_energy(cls, energy_erg, energy_min_GeV, gamma, cutoff_GeV=float("inf")):
        """The spectrum whose source puts `energy_erg` [erg] into electrons above
        `energy_min_GeV` [GeV], for index `gamma` and cut-off [GeV]
        (crk_source_spectrum_from_energy)."""
        out = crk_source_spectrum()
        check(
            _lib.crk_source_spectrum_from_energy(
                float(energy_erg), float(energy_min_GeV), float(gamma), float(cutoff_GeV), ctypes.byref(out)
            ),
            "crk_source_spectrum_from_energy",
        )
        return cls(out.q_star_per_GeV, out.gamma, out.cutoff_GeV)

    def _c(self):
        return crk_source_spectrum(float(self.q_star_per_GeV), float(self.gamma), float(self.cutoff_GeV))


def _spectrum(spectrum):
    if isinstance(spectrum, SourceSpectrum):
        return spectrum._c()
    if isinstance(spectrum, crk_source_spectrum):
        return spectrum
    return SourceSpectrum(*spectrum)._c()


def _params(sn_rate_per_Myr, t_max_Myr, s_max_kpc, spectrum, spatial, poisson_count):
    if isinstance(spatial, str):
        try:
            spatial = SPATIAL_MODELS[spatial.lower()]
        except KeyError:
            raise _native.InvalidArgument(f"unknown spatial model {spatial!r}") from None
    return crk_ensemble_params(
        float(sn_rate_per_Myr),
        float(t_max_Myr),
        float(s_max_kpc),
        int(spatial),
        int(bool(poisson_count)),
        _spectrum(spectrum),
    )


def flux_from_sources(transport, spectrum, distance_kpc, age_Myr, energy_GeV):
    """The flux phi(E) [GeV^-1 m^-2 s^-1 sr^-1] at energies E [GeV] (1-D) of sources at
    distances [kpc] and ages [Myr] (1-D, same length), all with `spectrum` (a SourceSpectrum
    or (q*, gamma, E_cut)) (crk_flux_from_sources)."""
    d = f64(distance_kpc).ravel()
    t = f64(age_Myr).ravel()
    if d.size != t.size:
        raise _native.InvalidArgument(f"distance_kpc has {d.size} values, age_Myr {t.size}")
    e = f64(energy_GeV).ravel()
    out = np.empty(e.size, dtype=np.float64)
    spec = _spectrum(spectrum)
    check(
        _lib.crk_flux_from_sources(transport, ctypes.byref(spec), dptr(d), dptr(t), d.size, dptr(e), e.size, dptr(out)),
        "crk_flux_from_sources",
    )
    return out


def generate(transport, energy_GeV, seed, first_realisation, n_realisations, n_threads=0, *,
             sn_rate_per_Myr, t_max_Myr, s_max_kpc, spectrum, spatial="spiral_arms", poisson_count=False):
    """Realisations first .. first + n - 1 of the flux [GeV^-1 m^-2 s^-1 sr^-1], shape
    [n_realisations, n_energies], without keeping an Ensemble (crk_ensemble_generate);
    n_threads = 0: all cores."""
    p = _params(sn_rate_per_Myr, t_max_Myr, s_max_kpc, spectrum, spatial, poisson_count)
    e = f64(energy_GeV).ravel()
    out = np.empty((int(n_realisations), e.size), dtype=np.float64)
    check(
        _lib.crk_ensemble_generate(transport, ctypes.byref(p), dptr(e), e.size, int(seed), int(first_realisation),
                                   int(n_realisations), int(n_threads), dptr(out)),
        "crk_ensemble_generate",
    )
    return out


def generate_gpu(transport, energy_GeV, seed, first_realisation, n_realisations, device=0, *,
                 sn_rate_per_Myr, t_max_Myr, s_max_kpc, spectrum, spatial="spiral_arms", poisson_count=False):
    """generate() on GPU `device` (crk_ensemble_generate_gpu); raises NoDevice without one."""
    p = _params(sn_rate_per_Myr, t_max_Myr, s_max_kpc, spectrum, spatial, poisson_count)
    e = f64(energy_GeV).ravel()
    out = np.empty((int(n_realisations), e.size), dtype=np.float64)
    check(
        _lib.crk_ensemble_generate_gpu(transport, ctypes.byref(p), dptr(e), e.size, int(seed), int(first_realisation),
                                       int(n_realisations), int(device), dptr(out)),
        "crk_ensemble_generate_gpu",
    )
    return out


def device_count():
    """The number of CUDA devices (0 without a driver, a device or the `cuda` feature)
    (crk_device_count)."""
    n = ctypes.c_int32(0)
    check(_lib.crk_device_count(ctypes.byref(n)), "crk_device_count")
    return n.value


def device_info(device=0):
    """dict(name, total_bytes, free_bytes, compute_capability) of GPU `device`
    (crk_device_info); raises NoDevice without one."""
    name = ctypes.create_string_buffer(256)
    total, free = ctypes.c_uint64(), ctypes.c_uint64()
    major, minor = ctypes.c_int32(), ctypes.c_int32()
    check(
        _lib.crk_device_info(int(device), name, 256, ctypes.byref(total), ctypes.byref(free),
                             ctypes.byref(major), ctypes.byref(minor)),
        "crk_device_info",
    )
    return {
        "name": name.value.decode("utf-8", "replace"),
        "total_bytes": total.value,
        "free_bytes": free.value,
        "compute_capability": (major.value, minor.value),
    }


CRK_PRECISION_EXACT = 0
CRK_PRECISION_F32 = 1
#: The precisions of Ensemble by name.
PRECISIONS = {"exact": CRK_PRECISION_EXACT, "f32": CRK_PRECISION_F32}


class Ensemble(_native.Handle):
    """A source population on an energy grid [GeV] with its age tables built once
    (crk_ensemble_new): sn_rate_per_Myr [1/Myr], t_max_Myr [Myr], s_max_kpc [kpc],
    spectrum (SourceSpectrum), spatial ("uniform_disc", "radial_cb98", "spiral_arms" or a
    CRK_SPATIAL_* code), poisson_count (False: R_SN t_max P(s < s_max) sources),
    precision ("exact", the default, or "f32": the per-source terms in single precision with
    double accumulation, each flux within 1e-5 relative of the exact tier's for the same
    sources; crk_ensemble_new_with_precision). Release with close() or a ``with`` block.
    """

    _free = _lib.crk_ensemble_free

    def __init__(self, transport, energy_GeV, *, sn_rate_per_Myr, t_max_Myr, s_max_kpc, spectrum,
                 spatial="spiral_arms", poisson_count=False, precision="exact"):
        p = _params(sn_rate_per_Myr, t_max_Myr, s_max_kpc, spectrum, spatial, poisson_count)
        e = f64(energy_GeV).ravel()
        out = ctypes.c_void_p()
        code = PRECISIONS.get(precision, precision)
        if not isinstance(code, int):
            raise ValueError(f"precision {precision!r} is not one of {sorted(PRECISIONS)}")
        if code == CRK_PRECISION_EXACT:
            check(_lib.crk_ensemble_new(transport, ctypes.byref(p), dptr(e), e.size, ctypes.byref(out)),
                  "crk_ensemble_new")
        else:
            check(_lib.crk_ensemble_new_with_precision(transport, ctypes.byref(p), dptr(e), e.size, code,
                                                       ctypes.byref(out)), "crk_ensemble_new_with_precision")
        self.precision = precision
        super().__init__(out.value)
        self.transport = transport
        self.energy_GeV = e.copy()
        self.spectrum = spectrum if isinstance(spectrum, SourceSpectrum) else SourceSpectrum(
            p.spectrum.q_star_per_GeV, p.spectrum.gamma, p.spectrum.cutoff_GeV)

    @property
    def n_energies(self):
        return self.energy_GeV.size

    def run(self, seed, first_realisation, n_realisations, n_threads=0, progress=None):
        """Realisations first .. first + n - 1: flux [GeV^-1 m^-2 s^-1 sr^-1] of shape
        [n_realisations, n_energies] (crk_ensemble_run), on n_threads threads (0: all cores;
        results do not depend on it). `progress(done, total)` (optional) is called about
        every 50 ms; a true return value cancels the run, raising Cancelled (its
        ``partial`` holds the array, unfinished rows NaN)."""
        n = int(n_realisations)
        out = np.empty((n, self.n_energies), dtype=np.float64)
        callback = crk_progress_fn()
        if progress is not None:
            def _cb(done, total, _user):
                try:
                    return 1 if progress(done, total) else 0
                except BaseException:
                    return 1

            callback = crk_progress_fn(_cb)
        status = _lib.crk_ensemble_run(self, int(seed), int(first_realisation), n, int(n_threads), dptr(out),
                                       callback, None)
        try:
            check(status, "crk_ensemble_run")
        except _native.Cancelled as e:
            e.partial = out
            raise
        return out

    def run_gpu(self, seed, first_realisation, n_realisations, device=0):
        """run() on GPU `device` (crk_ensemble_run_gpu): the same realisations to ~1e-13
        relative; raises NoDevice without a GPU."""
        n = int(n_realisations)
        out = np.empty((n, self.n_energies), dtype=np.float64)
        check(_lib.crk_ensemble_run_gpu(self, int(device), int(seed), int(first_realisation), n, dptr(out)),
              "crk_ensemble_run_gpu")
        return out

    def run_gpu_device(self, seed, first_realisation, n_realisations, flux_device, device=0):
        """run_gpu into device memory: `flux_device` is the integer device address (CuPy's
        a.data.ptr, PyTorch's t.data_ptr()) of n_realisations x n_energies float64 on GPU
        `device` (crk_ensemble_run_gpu_device); synchronous."""
        check(_lib.crk_ensemble_run_gpu_device(self, int(device), int(seed), int(first_realisation),
                                               int(n_realisations), int(flux_device) or None),
              "crk_ensemble_run_gpu_device")

    def sources(self, seed, realisation):
        """The young sources of one realisation, (distance [kpc], age [Myr]) arrays: feeding
        them to flux_from_sources reproduces the realisation's flux (crk_ensemble_sources)."""
        n = ctypes.c_size_t(0)
        check(_lib.crk_ensemble_sources(self, int(seed), int(realisation), None, None, 0, ctypes.byref(n)),
              "crk_ensemble_sources")
        d = np.empty(n.value, dtype=np.float64)
        t = np.empty(n.value, dtype=np.float64)
        check(_lib.crk_ensemble_sources(self, int(seed), int(realisation), dptr(d), dptr(t), d.size, ctypes.byref(n)),
              "crk_ensemble_sources")
        return d[: n.value], t[: n.value]
