//! Photon fields for inverse-Compton losses: greybody components and the magnetic field.
//!
//! A greybody is a Planck spectrum of temperature T scaled to an energy density U (PHYSICS.md,
//! "Energy losses"). The presets are the interstellar radiation fields of PHYSICS.md
//! ("ISRF presets").

use alloc::vec::Vec;

use crate::error::{Result, invalid, require_non_negative, require_positive};

/// One greybody component: a Planck spectrum of temperature `temperature_k` [K] scaled to the
/// energy density `energy_density_ev_per_cm3` [eV/cm^3].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Greybody {
    /// Temperature [K].
    pub temperature_k: f64,
    /// Energy density [eV/cm^3].
    pub energy_density_ev_per_cm3: f64,
}

impl Greybody {
    /// A component of temperature [K] and energy density [eV/cm^3].
    pub const fn new(temperature_k: f64, energy_density_ev_per_cm3: f64) -> Self {
        Greybody { temperature_k, energy_density_ev_per_cm3 }
    }

    /// Checks T > 0 and U >= 0, both finite; `index` names the component in the message.
    pub fn validate(&self, index: usize) -> Result<()> {
        require_positive(
            &alloc::format!("temperature of photon-field component {index} [K]"),
            self.temperature_k,
        )?;
        require_non_negative(
            &alloc::format!("energy density of photon-field component {index} [eV/cm^3]"),
            self.energy_density_ev_per_cm3,
        )
    }
}

/// Default magnetic field for synchrotron losses [microgauss] (PHYSICS.md): 0.2235 eV/cm^3.
pub const DEFAULT_MAGNETIC_FIELD_UG: f64 = 3.0;

/// The interstellar radiation field presets of PHYSICS.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsrfPreset {
    /// The cosmic microwave background alone: T = 2.7255 K, U = 0.2606 eV/cm^3
    /// (Fixsen 2009, ApJ 707, 916).
    Cmb,
    /// The default: Delahaye et al. 2010 (A&A 524, A51) as implemented in DRAGON2 (eloss.cc,
    /// "UniformISRF"; dilution factors 1, 4.5e-5, 1.2e-9, 7.03e-13, 3.39e-14, 8.67e-17 times
    /// a T^4), also used by Evoli et al.: CMB, dust, and three stellar components.
    Delahaye2010,
    /// GALPROP's local field at 6.5 kpc as naima's default seed photon fields: CMB, far
    /// infrared (30 K, 0.5 eV/cm^3) and near infrared (3000 K, 1 eV/cm^3).
    Galprop6p5Kpc,
    /// Schlickeiser, Cosmic Ray Astrophysics (2002), section 2.3: CMB, 20 K dust, 5000 K stars.
    Schlickeiser2002,
}

const CMB: [Greybody; 1] = [Greybody::new(2.7255, 0.2606)];
const DELAHAYE_2010: [Greybody; 6] = [
    Greybody::new(2.726, 0.261),
    Greybody::new(33.07, 0.254),
    Greybody::new(313.32, 0.0546),
    Greybody::new(3249.3, 0.370),
    Greybody::new(6150.4, 0.229),
    Greybody::new(23209.0, 0.119),
];
const GALPROP_6P5_KPC: [Greybody; 3] =
    [Greybody::new(2.72, 0.261), Greybody::new(30.0, 0.5), Greybody::new(3000.0, 1.0)];
const SCHLICKEISER_2002: [Greybody; 3] =
    [Greybody::new(2.7, 0.25), Greybody::new(20.0, 0.4), Greybody::new(5000.0, 0.3)];

impl IsrfPreset {
    /// Every preset, in the order of their C enum values.
    pub const ALL: [IsrfPreset; 4] =
        [IsrfPreset::Cmb, IsrfPreset::Delahaye2010, IsrfPreset::Galprop6p5Kpc, IsrfPreset::Schlickeiser2002];

    /// The greybody components of the preset.
    pub fn components(self) -> &'static [Greybody] {
        match self {
            IsrfPreset::Cmb => &CMB,
            IsrfPreset::Delahaye2010 => &DELAHAYE_2010,
            IsrfPreset::Galprop6p5Kpc => &GALPROP_6P5_KPC,
            IsrfPreset::Schlickeiser2002 => &SCHLICKEISER_2002,
        }
    }

    /// The preset's name: "cmb", "delahaye2010", "galprop6.5kpc", "schlickeiser2002".
    pub fn name(self) -> &'static str {
        match self {
            IsrfPreset::Cmb => "cmb",
            IsrfPreset::Delahaye2010 => "delahaye2010",
            IsrfPreset::Galprop6p5Kpc => "galprop6.5kpc",
            IsrfPreset::Schlickeiser2002 => "schlickeiser2002",
        }
    }

    /// The preset with this name (as [`IsrfPreset::name`] gives it, ASCII case ignored).
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                invalid!("unknown photon-field preset {name:?} (known: cmb, delahaye2010, galprop6.5kpc, schlickeiser2002)")
            })
    }
}

/// A photon field: greybody components plus a magnetic field for synchrotron losses.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotonField {
    components: Vec<Greybody>,
    magnetic_field_ug: f64,
}

impl PhotonField {
    /// A field from its components and a magnetic field [microgauss] (>= 0).
    ///
    /// Errors: a non-positive or non-finite temperature, a negative or non-finite energy
    /// density or magnetic field.
    pub fn new(components: &[Greybody], magnetic_field_ug: f64) -> Result<Self> {
        for (i, c) in components.iter().enumerate() {
            c.validate(i)?;
        }
        require_non_negative("magnetic field [microgauss]", magnetic_field_ug)?;
        Ok(PhotonField { components: components.to_vec(), magnetic_field_ug })
    }

    /// A preset with a magnetic field [microgauss].
    pub fn preset(preset: IsrfPreset, magnetic_field_ug: f64) -> Result<Self> {
        Self::new(preset.components(), magnetic_field_ug)
    }

    /// The library's default: Delahaye et al. 2010 and 3 microgauss.
    pub fn default_field() -> Self {
        PhotonField { components: DELAHAYE_2010.to_vec(), magnetic_field_ug: DEFAULT_MAGNETIC_FIELD_UG }
    }

    /// The greybody components.
    pub fn components(&self) -> &[Greybody] {
        &self.components
    }

    /// The magnetic field [microgauss].
    pub fn magnetic_field_ug(&self) -> f64 {
        self.magnetic_field_ug
    }

    /// The magnetic energy density B^2 / (8 pi) [eV/cm^3].
    pub fn magnetic_energy_density_ev_per_cm3(&self) -> f64 {
        crate::units::magnetic_energy_density_ev_per_cm3(self.magnetic_field_ug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delahaye_preset_follows_the_dragon2_dilution_factors() {
        // U = W a T^4 with a = 4.7227e-3 eV/cm^3/K^4 (radiation constant): PHYSICS.md's values
        // are these products, rounded to 3 digits.
        const RADIATION_CONSTANT_EV_PER_CM3_PER_K4: f64 = 4.722_8e-3;
        let dilution = [1.0, 4.5e-5, 1.2e-9, 7.03e-13, 3.39e-14, 8.67e-17];
        for (c, w) in IsrfPreset::Delahaye2010.components().iter().zip(dilution) {
            let u = w * RADIATION_CONSTANT_EV_PER_CM3_PER_K4 * c.temperature_k.powi(4);
            assert!((u / c.energy_density_ev_per_cm3 - 1.0).abs() < 0.01, "{c:?}: {u}");
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_fail() {
        for p in IsrfPreset::ALL {
            assert_eq!(IsrfPreset::from_name(p.name()).unwrap(), p);
        }
        assert!(matches!(IsrfPreset::from_name("isrf"), Err(crate::Error::InvalidArgument(_))));
    }

    #[test]
    fn bad_components_are_rejected() {
        assert!(PhotonField::new(&[Greybody::new(0.0, 1.0)], 3.0).is_err());
        assert!(PhotonField::new(&[Greybody::new(-5.0, 1.0)], 3.0).is_err());
        assert!(PhotonField::new(&[Greybody::new(5.0, -1.0)], 3.0).is_err());
        assert!(PhotonField::new(&[Greybody::new(f64::NAN, 1.0)], 3.0).is_err());
        assert!(PhotonField::new(&[Greybody::new(5.0, f64::INFINITY)], 3.0).is_err());
        assert!(PhotonField::new(&[Greybody::new(5.0, 1.0)], -1.0).is_err());
        assert!(PhotonField::new(&[], 3.0).is_ok());
    }
}
