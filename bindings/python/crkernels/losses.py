"""Energy losses of electrons (crk_losses_*).

Units: energy GeV, loss rate b(E) = -dE/dt > 0 in GeV/s, temperature K, energy density
eV/cm^3, magnetic field microgauss.
"""

import ctypes

import numpy as np

from . import _native
from ._native import _lib, check, crk_photon_field, dptr, f64

LOSS_MODELS = {"thomson": 0, "kn_expansion": 1, "kn_exact": 2}
ISRF_PRESETS = {"cmb": 0, "delahaye2010": 1, "galprop_6_5kpc": 2, "schlickeiser2002": 3}
CRK_LOSS_THOMSON, CRK_LOSS_KN_EXPANSION, CRK_LOSS_KN_EXACT = 0, 1, 2
CRK_ISRF_CMB, CRK_ISRF_DELAHAYE2010, CRK_ISRF_GALPROP_6_5KPC, CRK_ISRF_SCHLICKEISER2002 = 0, 1, 2, 3


def _enum(value, table, what):
    if isinstance(value, str):
        try:
            return table[value.lower()]
        except KeyError:
            raise _native.InvalidArgument(
                f"unknown {what} {value!r} (one of {sorted(table)})"
            ) from None
    return int(value)


def _fields_array(fields):
    """[(temperature_K, energy_density_eV_per_cm3), ...] as a ctypes array."""
    arr = np.asarray(fields, dtype=np.float64).reshape(-1, 2)
    out = (crk_photon_field * max(len(arr), 1))()
    for i, (t, u) in enumerate(arr):
        out[i].temperature_K = t
        out[i].energy_density_eV_per_cm3 = u
    return out, len(arr)


def isrf_preset_components(preset):
    """The greybody components of an ISRF preset ("cmb", "delahaye2010", "galprop_6_5kpc",
    "schlickeiser2002" or a CRK_ISRF_* code) as an array [n, 2] of
    (temperature [K], energy density [eV/cm^3]) (crk_isrf_preset_components)."""
    code = _enum(preset, ISRF_PRESETS, "ISRF preset")
    n = ctypes.c_size_t(0)
    check(_lib.crk_isrf_preset_components(code, None, 0, ctypes.byref(n)), "crk_isrf_preset_components")
    buf = (crk_photon_field * max(n.value, 1))()
    check(_lib.crk_isrf_preset_components(code, buf, n.value, ctypes.byref(n)), "crk_isrf_preset_components")
    return np.array([(buf[i].temperature_K, buf[i].energy_density_eV_per_cm3) for i in range(n.value)],
                    dtype=np.float64).reshape(-1, 2)


class Losses(_native.Handle):
    """Energy losses b(E) [GeV/s] of electrons: inverse Compton on a photon field plus
    synchrotron in a magnetic field (an opaque crk_losses handle).

    Build with ``Losses(model, fields, magnetic_field_uG)`` (fields: [(T [K], U [eV/cm^3]),
    ...]), ``Losses.preset(model, preset, magnetic_field_uG)`` or ``Losses.thomson(b0)``.
    ``model`` is "thomson", "kn_expansion", "kn_exact" or a CRK_LOSS_* code. Release with
    close() or a ``with`` block.
    """

    _free = _lib.crk_losses_free

    def __init__(self, model, fields=(), magnetic_field_uG=0.0):
        code = _enum(model, LOSS_MODELS, "loss model")
        arr, n = _fields_array(fields)
        out = ctypes.c_void_p()
        check(_lib.crk_losses_new(code, arr, n, float(magnetic_field_uG), ctypes.byref(out)), "crk_losses_new")
        super().__init__(out.value)

    @classmethod
    def preset(cls, model, preset, magnetic_field_uG=0.0):
        """Losses of `model` on an ISRF `preset` plus a magnetic field [microgauss]
        (crk_losses_new_preset)."""
        out = ctypes.c_void_p()
        check(
            _lib.crk_losses_new_preset(
                _enum(model, LOSS_MODELS, "loss model"),
                _enum(preset, ISRF_PRESETS, "ISRF preset"),
                float(magnetic_field_uG),
                ctypes.byref(out),
            ),
            "crk_losses_new_preset",
        )
        self = cls.__new__(cls)
        _native.Handle.__init__(self, out.value)
        return self

    @classmethod
    def thomson(cls, b0_per_GeV_per_s):
        """Thomson losses b(E) = b0 E^2 [GeV/s] from b0 [GeV^-1 s^-1] (crk_losses_new_thomson)."""
        out = ctypes.c_void_p()
        check(_lib.crk_losses_new_thomson(float(b0_per_GeV_per_s), ctypes.byref(out)), "crk_losses_new_thomson")
        self = cls.__new__(cls)
        _native.Handle.__init__(self, out.value)
        return self

    def rate(self, energy_GeV):
        """Loss rates b(E) = -dE/dt > 0 [GeV/s] at energies E [GeV] (any shape; returns a new
        float64 array of the same shape) (crk_losses_rate)."""
        e = f64(energy_GeV)
        out = np.empty_like(e)
        check(_lib.crk_losses_rate(self, dptr(e), e.size, dptr(out)), "crk_losses_rate")
        return out
