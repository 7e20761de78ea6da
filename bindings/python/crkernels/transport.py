"""Loss-time and loss-length tables (crk_transport_*).

Units: energy GeV, time Myr, distance kpc, diffusion coefficient cm^2/s.
"""

import ctypes

import numpy as np

from . import _native
from ._native import _lib, check, dptr, f64


class Transport(_native.Handle):
    """Loss-time T(E) and loss-length L(E) tables for `losses` (a Losses), a diffusion
    coefficient kappa(E) = kappa0 (E/GeV)^delta [cm^2/s], a halo half-height z_max [kpc]
    (<= 0 or inf: no boundary) and the energy range [E_min, E_max] [GeV]
    (crk_transport_new). Release with close() or a ``with`` block.
    """

    _free = _lib.crk_transport_free

    def __init__(self, losses, kappa0_cm2_per_s, delta, z_max_kpc, energy_min_GeV, energy_max_GeV):
        out = ctypes.c_void_p()
        check(
            _lib.crk_transport_new(
                losses,
                float(kappa0_cm2_per_s),
                float(delta),
                float(z_max_kpc),
                float(energy_min_GeV),
                float(energy_max_GeV),
                ctypes.byref(out),
            ),
            "crk_transport_new",
        )
        super().__init__(out.value)
        self.losses = losses
        self.energy_min_GeV = float(energy_min_GeV)
        self.energy_max_GeV = float(energy_max_GeV)

    def _binary(self, fn, name, a, b):
        a, b = np.broadcast_arrays(f64(a), f64(b))
        a, b = f64(a), f64(b)
        out = np.empty(a.shape, dtype=np.float64)
        check(fn(self, dptr(a), dptr(b), a.size, dptr(out)), name)
        return out

    def initial_energy(self, energy_GeV, age_Myr):
        """Initial energy E0(E, t) [GeV] of a particle observed at E [GeV] after a time t
        [Myr] (broadcast); +inf where no E0 <= E_max solves T(E) - T(E0) = t
        (crk_transport_initial_energy)."""
        return self._binary(_lib.crk_transport_initial_energy, "crk_transport_initial_energy", energy_GeV, age_Myr)

    def loss_time(self, energy_GeV, initial_energy_GeV):
        """Loss time tau(E, E0) = T(E) - T(E0) [Myr] for E <= E0 [GeV] (broadcast)
        (crk_transport_loss_time)."""
        return self._binary(_lib.crk_transport_loss_time, "crk_transport_loss_time", energy_GeV, initial_energy_GeV)

    def loss_length2(self, energy_GeV, initial_energy_GeV):
        """Squared loss length l^2(E, E0) = L(E) - L(E0) [kpc^2] for E <= E0 [GeV]
        (broadcast) (crk_transport_loss_length2)."""
        return self._binary(_lib.crk_transport_loss_length2, "crk_transport_loss_length2", energy_GeV, initial_energy_GeV)

    def loss_length(self, energy_GeV, initial_energy_GeV):
        """Loss length l(E, E0) = sqrt(L(E) - L(E0)) [kpc] (crk_transport_loss_length2)."""
        return np.sqrt(self.loss_length2(energy_GeV, initial_energy_GeV))

    def max_age(self, energy_GeV):
        """The oldest age [Myr] that still contributes at E [GeV]: T(E)
        (crk_transport_max_age)."""
        e = f64(energy_GeV)
        out = np.empty_like(e)
        check(_lib.crk_transport_max_age(self, dptr(e), e.size, dptr(out)), "crk_transport_max_age")
        return out
