//! Physical constants (CODATA 2018, Julian year) and unit conversions.
//!
//! The single source of truth for every number with a unit in the library; values as listed in
//! PHYSICS.md ("Constants and units").

/// Thomson cross-section sigma_T [cm^2].
pub const SIGMA_T_CM2: f64 = 6.652_458_732_1e-25;
/// Electron rest energy m_e c^2 [GeV].
pub const ELECTRON_MASS_GEV: f64 = 0.510_998_950_00e-3;
/// Electron rest energy m_e c^2 [eV].
pub const ELECTRON_MASS_EV: f64 = 0.510_998_950_00e6;
/// Proton (and antiproton) rest energy m_p c^2 [GeV] (CODATA 2018).
pub const PROTON_MASS_GEV: f64 = 0.938_272_088_16;
/// Atomic mass unit u c^2 [GeV] (CODATA 2018): the mean nucleon mass of a nucleus used by
/// [`crate::physics::particle::Particle::nucleus`] (He-4 has 0.93182, C-12 0.93124 GeV per nucleon).
pub const ATOMIC_MASS_UNIT_GEV: f64 = 0.931_494_102_42;
/// Speed of light c [cm/s].
pub const SPEED_OF_LIGHT_CM_PER_S: f64 = 2.997_924_58e10;
/// Boltzmann constant k_B [eV/K].
pub const BOLTZMANN_EV_PER_K: f64 = 8.617_333_262e-5;
/// One kiloparsec [cm].
pub const KPC_CM: f64 = 3.085_677_581_491_367_3e21;
/// One megayear (Julian) [s].
pub const MYR_S: f64 = 3.155_76e13;
/// One erg [GeV].
pub const ERG_GEV: f64 = 624.150_907_446;
/// One eV [GeV].
pub const EV_GEV: f64 = 1e-9;
/// Energy density of a magnetic field of 1 microgauss, B^2 / (8 pi) [eV/cm^3].
///
/// (1e-6 G)^2 / (8 pi) erg/cm^3 = 3.978873577e-14 erg/cm^3, times 6.24150907446e11 eV/erg.
pub const MAGNETIC_ENERGY_DENSITY_EV_PER_CM3_PER_UG2: f64 =
    1e-12 / (8.0 * core::f64::consts::PI) * ERG_GEV * 1e9;

/// Converts a diffusion coefficient from cm^2/s to kpc^2/Myr.
pub const CM2_PER_S_TO_KPC2_PER_MYR: f64 = MYR_S / (KPC_CM * KPC_CM);

/// Energy density of a magnetic field [eV/cm^3] from its strength [microgauss]: U_B = B^2 / (8 pi).
pub fn magnetic_energy_density_ev_per_cm3(field_ug: f64) -> f64 {
    field_ug * field_ug * MAGNETIC_ENERGY_DENSITY_EV_PER_CM3_PER_UG2
}

/// The Thomson loss coefficient per unit photon energy density:
/// (4/3) sigma_T c / (m_e c^2)^2, so that b = THOMSON_RATE_PER_EV_PER_CM3 * U * E^2,
/// in GeV/s for E in GeV and U in eV/cm^3.
pub const THOMSON_RATE_PER_EV_PER_CM3: f64 =
    4.0 / 3.0 * SIGMA_T_CM2 * SPEED_OF_LIGHT_CM_PER_S * EV_GEV / (ELECTRON_MASS_GEV * ELECTRON_MASS_GEV);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnetic_energy_density_matches_physics_md() {
        // PHYSICS.md: 3 microgauss = 0.2235 eV/cm^3.
        let u = magnetic_energy_density_ev_per_cm3(3.0);
        assert!((u - 0.2235).abs() < 5e-5, "{u}");
    }

    #[test]
    fn diffusion_conversion_matches_physics_md() {
        // PHYSICS.md: 3e28 cm^2/s = 0.0994 kpc^2/Myr; 1 cm^2/s = 3.3143844e-30 kpc^2/Myr.
        assert!((3e28 * CM2_PER_S_TO_KPC2_PER_MYR - 0.0994).abs() < 5e-5);
        assert!((CM2_PER_S_TO_KPC2_PER_MYR / 3.3143844e-30 - 1.0).abs() < 1e-7);
    }

    #[test]
    fn thomson_loss_time_matches_the_seed() {
        // SECRET (seed 001, intro): loss time ~ 2e2 Myr (E/GeV)^-1 for the local ISRF + B,
        // about 1 eV/cm^3 in all. 1/(b0 E) with U = 1 eV/cm^3 at 1 GeV:
        let b0 = THOMSON_RATE_PER_EV_PER_CM3;
        let loss_time_myr = 1.0 / b0 / MYR_S;
        assert!((200.0..400.0).contains(&loss_time_myr), "{loss_time_myr}");
    }
}
