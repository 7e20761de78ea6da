//! Energy losses of cosmic-ray electrons: inverse-Compton scattering on greybody photon fields
//! and synchrotron radiation (PHYSICS.md, "Energy losses").
//!
//! The loss rate b(E) = -dE/dt > 0 is in GeV/s for E in GeV; all three models are
//! ultra-relativistic (gamma = E / m_e c^2 >> 1) and include synchrotron losses,
//! (4/3) sigma_T c gamma^2 U_B.

use alloc::vec::Vec;

use crate::batch::map_checked;
use crate::error::{Result, out_of_domain, require_positive};
use crate::math::piecewise::PiecewisePoly;
use crate::physics::klein_nishina::{PLANCK_MEAN_ENERGY_RATIO, loss_factor};
use crate::physics::photon_field::PhotonField;
use crate::units::{BOLTZMANN_EV_PER_K, ELECTRON_MASS_EV, ELECTRON_MASS_GEV, THOMSON_RATE_PER_EV_PER_CM3};

/// Which loss model to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossModel {
    /// Thomson limit: b = (4/3) sigma_T c gamma^2 (sum_r U_r + U_B) = b0 E^2.
    Thomson,
    /// First-order Klein-Nishina expansion (SECRET eq. 2.4; Blumenthal & Gould 1970 eq. 2.50):
    /// b = (4/3) sigma_T c gamma^2 [sum_r U_r (1 - (63/10) gamma <eps^2>_r / (m_e c^2 <eps>_r)) +
    /// U_B]. Valid only for gamma k_B T << m_e c^2; an energy where a bracket is <= 0 is out of
    /// domain.
    KleinNishinaExpansion,
    /// Exact (ultra-relativistic) Klein-Nishina losses on greybody fields, the default:
    /// b = (4/3) sigma_T c gamma^2 [sum_r U_r R(4 gamma k_B T_r / m_e c^2) + U_B], R the
    /// universal function of [`crate::physics::klein_nishina::loss_factor`]. Ultra-relativistic:
    /// Jones' (1965) finite-gamma formula, used by GALPROP and DRAGON2, differs by -1/gamma^2.
    KleinNishina,
}

/// Energies [GeV] between which the exact Klein-Nishina rate is tabulated; outside, each
/// component is evaluated directly (same accuracy, slower).
pub const KN_TABLE_MIN_ENERGY_GEV: f64 = 1e-3;
/// See [`KN_TABLE_MIN_ENERGY_GEV`].
pub const KN_TABLE_MAX_ENERGY_GEV: f64 = 1e9;
/// Coefficients per piece of the tabulated b(E)/E^2 (degree 9).
const KN_TABLE_COEFFICIENTS: usize = 10;

/// One inverse-Compton target of the Klein-Nishina models, in the units of the loss kernel.
#[derive(Clone, Copy, Debug)]
struct Target {
    /// Thomson coefficient of the component, (4/3) sigma_T c U / (m_e c^2)^2 [GeV^-1 s^-1].
    thomson_coefficient: f64,
    /// u / E = 4 k_B T / (m_e c^2)^2 [GeV^-1]: the Klein-Nishina variable per GeV.
    kn_variable_per_gev: f64,
}

#[derive(Clone, Debug)]
enum Rate {
    /// b = b0 E^2.
    Thomson { b0: f64 },
    /// b = E^2 [b_B + sum_r b_r (1 - k_r E)], with k_r = (63/10) (<eps^2>/<eps>)_r / (m_e c^2)^2.
    Expansion { magnetic: f64, terms: Vec<(f64, f64)>, max_energy_gev: f64 },
    /// b = E^2 [b_B + sum_r b_r R(u_r E)], tabulated as b/E^2 in [KN_TABLE_*].
    KleinNishina { magnetic: f64, targets: Vec<Target>, table: PiecewisePoly<KN_TABLE_COEFFICIENTS> },
}

/// An energy-loss model for electrons: b(E) = -dE/dt [GeV/s] for E [GeV].
///
/// Immutable after construction, cheap to evaluate, safe to share across threads.
#[derive(Clone, Debug)]
pub struct EnergyLosses {
    model: LossModel,
    rate: Rate,
}

impl EnergyLosses {
    /// Losses of the given model on a photon field (greybody components plus synchrotron).
    pub fn new(model: LossModel, field: &PhotonField) -> Self {
        let magnetic = THOMSON_RATE_PER_EV_PER_CM3 * field.magnetic_energy_density_ev_per_cm3();
        let components = field.components().iter().filter(|c| c.energy_density_ev_per_cm3 > 0.0);
        let rate = match model {
            LossModel::Thomson => {
                let photons: f64 = components.map(|c| c.energy_density_ev_per_cm3).sum();
                Rate::Thomson { b0: THOMSON_RATE_PER_EV_PER_CM3 * photons + magnetic }
            }
            LossModel::KleinNishinaExpansion => {
                let terms: Vec<(f64, f64)> = components
                    .map(|c| {
                        let b_r = THOMSON_RATE_PER_EV_PER_CM3 * c.energy_density_ev_per_cm3;
                        let k_r = 6.3 * PLANCK_MEAN_ENERGY_RATIO * BOLTZMANN_EV_PER_K * c.temperature_k
                            / ELECTRON_MASS_EV
                            / ELECTRON_MASS_GEV;
                        (b_r, k_r)
                    })
                    .collect();
                // The bracket 1 - k_r E of a component reaches zero at E = 1/k_r.
                let max_energy_gev = terms.iter().map(|&(_, k)| 1.0 / k).fold(f64::INFINITY, f64::min);
                Rate::Expansion { magnetic, terms, max_energy_gev }
            }
            LossModel::KleinNishina => {
                let targets: Vec<Target> = components
                    .map(|c| Target {
                        thomson_coefficient: THOMSON_RATE_PER_EV_PER_CM3 * c.energy_density_ev_per_cm3,
                        kn_variable_per_gev: 4.0 * BOLTZMANN_EV_PER_K * c.temperature_k
                            / ELECTRON_MASS_EV
                            / ELECTRON_MASS_GEV,
                    })
                    .collect();
                let table =
                    PiecewisePoly::interpolate(KN_TABLE_MIN_ENERGY_GEV, KN_TABLE_MAX_ENERGY_GEV, |e| {
                        kn_rate_over_e2(magnetic, &targets, e)
                    });
                Rate::KleinNishina { magnetic, targets, table }
            }
        };
        EnergyLosses { model, rate }
    }

    /// Thomson losses b = b0 E^2 from the coefficient b0 [GeV^-1 s^-1] (finite, > 0).
    pub fn thomson(b0_per_gev_per_s: f64) -> Result<Self> {
        require_positive("Thomson coefficient b0 [1/(GeV s)]", b0_per_gev_per_s)?;
        Ok(EnergyLosses { model: LossModel::Thomson, rate: Rate::Thomson { b0: b0_per_gev_per_s } })
    }

    /// The model.
    pub fn model(&self) -> LossModel {
        self.model
    }

    /// The Thomson coefficient b0 [GeV^-1 s^-1] when the model is Thomson.
    pub fn thomson_coefficient(&self) -> Option<f64> {
        match self.rate {
            Rate::Thomson { b0 } => Some(b0),
            _ => None,
        }
    }

    /// The energy [GeV] above which the model is undefined: for the first-order expansion, the
    /// lowest energy where a component's bracket reaches zero; infinity for the others.
    pub fn max_energy_gev(&self) -> f64 {
        match self.rate {
            Rate::Expansion { max_energy_gev, .. } => max_energy_gev,
            _ => f64::INFINITY,
        }
    }

    /// b(E) [GeV/s] for one energy E [GeV], which the caller has checked (finite, > 0, below
    /// [`EnergyLosses::max_energy_gev`]).
    #[inline]
    pub fn rate_unchecked(&self, energy_gev: f64) -> f64 {
        let e2 = energy_gev * energy_gev;
        match &self.rate {
            Rate::Thomson { b0 } => b0 * e2,
            Rate::Expansion { magnetic, terms, .. } => {
                e2 * (magnetic + terms.iter().map(|&(b_r, k_r)| b_r * (1.0 - k_r * energy_gev)).sum::<f64>())
            }
            Rate::KleinNishina { magnetic, targets, table } => {
                if (KN_TABLE_MIN_ENERGY_GEV..=KN_TABLE_MAX_ENERGY_GEV).contains(&energy_gev) {
                    e2 * table.eval(energy_gev)
                } else {
                    e2 * kn_rate_over_e2(*magnetic, targets, energy_gev)
                }
            }
        }
    }

    /// Checks one energy [GeV]: finite, > 0, and inside the model's domain.
    pub fn check_energy(&self, energy_gev: f64) -> Result<()> {
        require_positive("electron energy [GeV]", energy_gev)?;
        if energy_gev >= self.max_energy_gev() {
            return Err(out_of_domain!(
                "the first-order Klein-Nishina expansion is negative at E = {energy_gev} GeV: a \
                 component's bracket 1 - (63/10) gamma <eps^2>/(m_e c^2 <eps>) is <= 0 above \
                 {} GeV (use the exact Klein-Nishina model)",
                self.max_energy_gev()
            ));
        }
        Ok(())
    }

    /// b(E) [GeV/s] for one energy [GeV].
    pub fn rate(&self, energy_gev: f64) -> Result<f64> {
        self.check_energy(energy_gev)?;
        Ok(self.rate_unchecked(energy_gev))
    }

    /// b(E) [GeV/s] for a batch of energies [GeV], written to `rate_gev_per_s`.
    ///
    /// Errors (nothing is written then): lengths differ; an energy is not finite or <= 0;
    /// an energy is out of the model's domain. The message names the first bad index.
    pub fn rates(&self, energy_gev: &[f64], rate_gev_per_s: &mut [f64]) -> Result<()> {
        map_checked(energy_gev, rate_gev_per_s, |e| self.check_energy(e), |e| self.rate_unchecked(e))
    }
}

/// b(E)/E^2 [GeV^-1 s^-1] of the exact Klein-Nishina model, each component evaluated directly.
fn kn_rate_over_e2(magnetic: f64, targets: &[Target], energy_gev: f64) -> f64 {
    magnetic
        + targets
            .iter()
            .map(|t| t.thomson_coefficient * loss_factor(t.kn_variable_per_gev * energy_gev))
            .sum::<f64>()
}
