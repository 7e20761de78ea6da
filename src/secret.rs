//! The SECRET grid (SECRET table 1; PHYSICS.md, "The stochastic ensemble" and "Training the
//! emulator"): the five parameters of a grid point in table 1's units, the settings the paper
//! holds fixed, and psi = ln(E^3 phi) on the grid's 19 energies.
//!
//! A point is (R_SN [1e4 / Myr], log10(E_cut / GeV), gamma, delta, kappa0 [1e28 cm^2/s]), in
//! that order: the order of the CSV header [`PARAMETER_NAMES`], of `crk grid`'s manifest and
//! of the context of the conditional emulator trained on the grid.
//!
//! The fixed settings are those of the flagship example (the paper states neither the halo
//! nor the source energy): exact Klein-Nishina losses on the Delahaye et al. (2010) ISRF with
//! 3 microgauss, z_max = 4 kpc, W = 1e48 erg in electrons above 1 GeV per source, the four-arm
//! spiral source model out to s_max = 10 kpc, the paper's fixed source count. The paper gives
//! no t_max for the grid: [`GRID_T_MAX_MYR`] is above the oldest age that contributes at the
//! lowest grid energy for every point (tests/secret.rs checks it), so every source that can
//! reach 10^1.5 GeV is simulated, and since only those young sources are drawn, a larger
//! t_max would change nothing but the binomial's N.
//!
//! Realisation r of point p of a grid with seed s is the ensemble's realisation p 2^32 + r of
//! seed s ([`realisation_index`]): a function of (s, p, r) only, independent streams for
//! different points.

use crate::math;
use crate::physics::ensemble::{Ensemble, EnsembleParams, MAX_ENERGIES, Precision};
use crate::physics::green::SourceSpectrum;
use crate::physics::losses::{EnergyLosses, LossModel};
use crate::physics::photon_field::{IsrfPreset, PhotonField};
use crate::physics::sources::SpatialModel;
use crate::physics::transport::Transport;
use crate::{Error, Result};

/// The five grid parameters in table 1's units and order (the CSV header of `crk grid`).
pub const PARAMETER_NAMES: [&str; 5] =
    ["sn_rate_1e4_per_Myr", "log10_ecut_GeV", "gamma", "delta", "kappa0_1e28_cm2_per_s"];
/// Energies of the grid: 19 log-spaced points from 10^1.5 to 10^4.5 GeV.
pub const N_GRID_ENERGIES: usize = 19;
/// The grid's oldest source age t_max [Myr] (see the module docs).
pub const GRID_T_MAX_MYR: f64 = 12.0;
/// Largest source distance [kpc] (SECRET).
pub const GRID_S_MAX_KPC: f64 = 10.0;
/// Halo half-height [kpc] (an assumption: the paper does not state it).
pub const GRID_HALO_KPC: f64 = 4.0;
/// Energy per source in electrons above 1 GeV [erg] (an assumption, as the halo).
pub const GRID_SOURCE_ENERGY_ERG: f64 = 1e48;
/// Magnetic field [microgauss].
pub const GRID_MAGNETIC_FIELD_UG: f64 = 3.0;
/// The transport table's energy range [GeV]: from below the lowest grid energy to 30 times
/// the highest cut-off of table 1 (sources injected above it carry less than e^-30 of their
/// spectrum's weight there).
pub const GRID_TABLE_RANGE_GEV: (f64, f64) = (10.0, 1e7);
/// Realisations per point are at most 2^32 (the low half of the ensemble's index).
pub const MAX_REALISATIONS_PER_POINT: u64 = 1 << 32;
/// Points of a grid are at most 2^32 (the high half).
pub const MAX_POINTS: u64 = 1 << 32;

/// The values of table 1: R_SN, log10 E_cut, gamma, delta, kappa0 (6 x 9 x 5 x 5 x 5 = 6750
/// points). Each is (first, step, count).
pub const TABLE1_AXES: [(f64, f64, usize); 5] =
    [(0.5, 0.5, 6), (3.5, 0.25, 9), (1.8, 0.2, 5), (0.2, 0.2, 5), (1.0, 2.0, 5)];

/// One point of the grid, in table 1's units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridPoint {
    /// Supernova rate R_SN [1e4 / Myr].
    pub sn_rate_1e4_per_myr: f64,
    /// log10 of the spectral cut-off E_cut [GeV].
    pub log10_ecut_gev: f64,
    /// Source spectral index gamma.
    pub gamma: f64,
    /// Diffusion index delta (kappa = kappa0 (E / GeV)^delta).
    pub delta: f64,
    /// Diffusion normalisation kappa0 [1e28 cm^2/s].
    pub kappa0_1e28_cm2_per_s: f64,
}

impl GridPoint {
    /// The point from its parameters in [`PARAMETER_NAMES`] order.
    pub fn from_array(values: [f64; 5]) -> Self {
        let [sn_rate_1e4_per_myr, log10_ecut_gev, gamma, delta, kappa0_1e28_cm2_per_s] = values;
        GridPoint { sn_rate_1e4_per_myr, log10_ecut_gev, gamma, delta, kappa0_1e28_cm2_per_s }
    }

    /// The parameters in [`PARAMETER_NAMES`] order.
    pub fn to_array(self) -> [f64; 5] {
        [self.sn_rate_1e4_per_myr, self.log10_ecut_gev, self.gamma, self.delta, self.kappa0_1e28_cm2_per_s]
    }

    /// Checks the physics' domain, naming the parameter: R_SN in (0, 100] (1e4 / Myr),
    /// log10 E_cut in [1.5, 6.5] (the cut-off inside the transport table, above the lowest
    /// grid energy), gamma in [1, 4], delta in (0, 1.5], kappa0 in (0, 100] (1e28 cm^2/s).
    /// Table 1 spans a part of each range; beyond it an emulator trained on the grid
    /// extrapolates, but the simulation stays valid.
    pub fn validate(&self) -> Result<()> {
        let checks = [
            (self.sn_rate_1e4_per_myr, 0.0, false, 100.0),
            (self.log10_ecut_gev, 1.5, true, 6.5),
            (self.gamma, 1.0, true, 4.0),
            (self.delta, 0.0, false, 1.5),
            (self.kappa0_1e28_cm2_per_s, 0.0, false, 100.0),
        ];
        for (name, (value, low, low_included, high)) in PARAMETER_NAMES.iter().zip(checks) {
            let above_low = if low_included { value >= low } else { value > low };
            if !(value.is_finite() && above_low && value <= high) {
                let bracket = if low_included { '[' } else { '(' };
                return Err(Error::OutOfDomain(format!(
                    "{name} = {value} is outside the domain the simulation supports, {bracket}{low}, {high}]"
                )));
            }
        }
        Ok(())
    }
}

/// The 19 grid energies [GeV]: 10^(1.5 + i / 6), i = 0..18.
pub fn grid_energies_gev() -> [f64; N_GRID_ENERGIES] {
    core::array::from_fn(|i| math::powf(10.0, 1.5 + i as f64 / 6.0))
}

/// The 6750 points of table 1, R_SN varying slowest and kappa0 fastest.
pub fn table1_points() -> Vec<GridPoint> {
    product(&TABLE1_AXES.map(|(first, step, count)| (0..count).map(|i| first + step * i as f64).collect()))
}

/// The diagonally offset grid (SECRET section 4.3): the centres of table 1's cells, every
/// parameter halfway between two neighbouring grid values (5 x 8 x 4 x 4 x 4 = 2560 points),
/// the points farthest from any training point.
pub fn offset_points() -> Vec<GridPoint> {
    product(
        &TABLE1_AXES
            .map(|(first, step, count)| (0..count - 1).map(|i| first + step * (i as f64 + 0.5)).collect()),
    )
}

fn product(axes: &[Vec<f64>; 5]) -> Vec<GridPoint> {
    let mut points = Vec::with_capacity(axes.iter().map(Vec::len).product());
    for &a in &axes[0] {
        for &b in &axes[1] {
            for &c in &axes[2] {
                for &d in &axes[3] {
                    for &e in &axes[4] {
                        points.push(GridPoint::from_array([a, b, c, d, e]));
                    }
                }
            }
        }
    }
    points
}

/// The ensemble index of realisation r of point p: p 2^32 + r (see the module docs).
///
/// Errors: p or r at or above 2^32.
pub fn realisation_index(point: u64, realisation: u64) -> Result<u64> {
    if point >= MAX_POINTS || realisation >= MAX_REALISATIONS_PER_POINT {
        return Err(Error::InvalidArgument(format!(
            "point {point}, realisation {realisation}: a grid has at most 2^32 points and 2^32 realisations per point"
        )));
    }
    Ok(point << 32 | realisation)
}

/// The settings a grid holds fixed (everything but the five parameters). [`Default`] gives
/// table 1's (see the module docs); `crk grid` config files change them by name.
#[derive(Clone, Debug, PartialEq)]
pub struct GridSettings {
    /// Energies [GeV] of the spectra, increasing.
    pub energies_gev: Vec<f64>,
    /// Energy-loss model.
    pub loss_model: LossModel,
    /// Photon field of the inverse-Compton losses.
    pub isrf: IsrfPreset,
    /// Magnetic field [microgauss].
    pub magnetic_field_ug: f64,
    /// Halo half-height z_max [kpc].
    pub halo_kpc: f64,
    /// Oldest source age t_max [Myr].
    pub t_max_myr: f64,
    /// Largest source distance s_max [kpc].
    pub s_max_kpc: f64,
    /// Spatial distribution of the sources.
    pub spatial: SpatialModel,
    /// false: the paper's fixed source count; true: Poisson.
    pub poisson_count: bool,
    /// Energy per source in electrons above 1 GeV [erg].
    pub source_energy_erg: f64,
    /// The transport table's energy range [GeV].
    pub table_range_gev: (f64, f64),
    /// How the ensemble evaluates its terms (exact by default; [`Precision::F32`] for training
    /// sets: each flux within 1e-5 of the exact one).
    pub precision: Precision,
}

impl Default for GridSettings {
    fn default() -> Self {
        GridSettings {
            energies_gev: grid_energies_gev().to_vec(),
            loss_model: LossModel::KleinNishina,
            isrf: IsrfPreset::Delahaye2010,
            magnetic_field_ug: GRID_MAGNETIC_FIELD_UG,
            halo_kpc: GRID_HALO_KPC,
            t_max_myr: GRID_T_MAX_MYR,
            s_max_kpc: GRID_S_MAX_KPC,
            spatial: SpatialModel::SpiralArms,
            poisson_count: false,
            source_energy_erg: GRID_SOURCE_ENERGY_ERG,
            table_range_gev: GRID_TABLE_RANGE_GEV,
            precision: Precision::Exact,
        }
    }
}

impl GridSettings {
    /// The energy losses shared by every point.
    ///
    /// Errors: a negative or non-finite magnetic field.
    pub fn losses(&self) -> Result<EnergyLosses> {
        let field = PhotonField::preset(self.isrf, self.magnetic_field_ug)?;
        Ok(EnergyLosses::new(self.loss_model, &field))
    }

    /// Checks the energies (1 to [`MAX_ENERGIES`], finite, positive, increasing, inside the
    /// transport table) before any table is built; the other settings are checked by the
    /// constructors they go to.
    pub fn validate(&self) -> Result<()> {
        let (low, high) = self.table_range_gev;
        if self.energies_gev.is_empty() || self.energies_gev.len() > MAX_ENERGIES {
            return Err(Error::InvalidArgument(format!(
                "energies: {} given, 1 to {MAX_ENERGIES} allowed",
                self.energies_gev.len()
            )));
        }
        for (i, &e) in self.energies_gev.iter().enumerate() {
            if !(e.is_finite() && e > low && e < high) {
                return Err(Error::OutOfDomain(format!(
                    "energies[{i}] = {e} GeV is outside the transport table ({low}, {high}) GeV"
                )));
            }
            if i > 0 && e <= self.energies_gev[i - 1] {
                return Err(Error::InvalidArgument(format!("energies[{i}] = {e} GeV does not increase")));
            }
        }
        Ok(())
    }

    /// The ensemble of one point (tables built here: about 20 ms for the grid energies).
    ///
    /// Errors: a point outside [`GridPoint::validate`]'s domain, bad settings, or sources
    /// older than t_max that would contribute at the lowest energy (t_max too small).
    pub fn ensemble(&self, losses: &EnergyLosses, point: &GridPoint) -> Result<Ensemble> {
        point.validate()?;
        self.validate()?;
        let (table_min, table_max) = self.table_range_gev;
        let transport = Transport::new(
            losses,
            point.kappa0_1e28_cm2_per_s * 1e28,
            point.delta,
            self.halo_kpc,
            table_min,
            table_max,
        )?;
        let params = EnsembleParams {
            sn_rate_per_myr: point.sn_rate_1e4_per_myr * 1e4,
            t_max_myr: self.t_max_myr,
            s_max_kpc: self.s_max_kpc,
            spatial: self.spatial,
            poisson_count: self.poisson_count,
            spectrum: SourceSpectrum::from_energy_erg(
                self.source_energy_erg,
                1.0,
                point.gamma,
                math::powf(10.0, point.log10_ecut_gev),
            )?,
        };
        // The ensemble draws only sources younger than min(t_max, T(E_min)): check the
        // transport's T(E_min) itself (PHYSICS.md: t_max >= T(E_min) for the grid).
        let oldest_contributing = transport.max_age(self.energies_gev[0])?;
        if oldest_contributing > self.t_max_myr {
            return Err(Error::OutOfDomain(format!(
                "t_max_myr = {} is too small: sources up to {oldest_contributing:.2} Myr old contribute at {} GeV",
                self.t_max_myr, self.energies_gev[0]
            )));
        }
        Ensemble::new_with_precision(&transport, &params, &self.energies_gev, self.precision)
    }
}

/// psi = ln(E^3 phi) in f32 from fluxes phi [GeV^-1 m^-2 s^-1 sr^-1] ([n][energies],
/// row-major) at `energies_gev`. A zero flux (no source reaches that energy) gives -inf.
pub fn psi_from_flux(energies_gev: &[f64], flux: &[f64], psi: &mut [f32]) {
    let width = energies_gev.len();
    for (row_flux, row_psi) in flux.chunks_exact(width).zip(psi.chunks_exact_mut(width)) {
        for ((phi, out), e) in row_flux.iter().zip(row_psi).zip(energies_gev) {
            *out = math::ln(e * e * e * phi) as f32;
        }
    }
}
