//! Cosmic-ray species and the kinematics that link rigidity and kinetic energy per nucleon.
//!
//! A species is a nucleus (A, Z) with a mean nucleon mass m, or a lepton or antiproton with
//! A = 1, |Z| = 1 and its own mass. With T the kinetic energy per nucleon [GeV/n]:
//! - momentum per nucleon p_n = sqrt(T (T + 2 m)) [GeV/c];
//! - rigidity R = A p_n / |Z| [GV] (p c / (|Z| e));
//! - dR/dT = (A / |Z|) (T + m) / p_n, and beta = v / c = p_n / (T + m).

use crate::batch::map_checked;
use crate::error::{Result, invalid, require_positive};
use crate::math::sqrt;
use crate::units::{ATOMIC_MASS_UNIT_GEV, ELECTRON_MASS_GEV, PROTON_MASS_GEV};

/// A cosmic-ray species: mass number A, signed charge number Z, mean nucleon mass [GeV].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Particle {
    mass_number: u32,
    charge: i32,
    nucleon_mass_gev: f64,
}

impl Particle {
    /// A species with mass number A >= 1, charge Z != 0 (its sign is the charge sign) and mean
    /// nucleon mass m [GeV] (finite, > 0).
    pub fn new(mass_number: u32, charge: i32, nucleon_mass_gev: f64) -> Result<Self> {
        if mass_number == 0 {
            return Err(invalid!("mass number A must be >= 1"));
        }
        if charge == 0 {
            return Err(invalid!("charge number Z must not be 0 (rigidity is undefined)"));
        }
        require_positive("nucleon mass [GeV]", nucleon_mass_gev)?;
        Ok(Particle { mass_number, charge, nucleon_mass_gev })
    }

    /// The proton: A = 1, Z = +1, m = m_p.
    pub fn proton() -> Self {
        Particle { mass_number: 1, charge: 1, nucleon_mass_gev: PROTON_MASS_GEV }
    }

    /// The antiproton: A = 1, Z = -1, m = m_p.
    pub fn antiproton() -> Self {
        Particle { mass_number: 1, charge: -1, nucleon_mass_gev: PROTON_MASS_GEV }
    }

    /// The electron: A = 1, Z = -1, m = m_e.
    pub fn electron() -> Self {
        Particle { mass_number: 1, charge: -1, nucleon_mass_gev: ELECTRON_MASS_GEV }
    }

    /// The positron: A = 1, Z = +1, m = m_e.
    pub fn positron() -> Self {
        Particle { mass_number: 1, charge: 1, nucleon_mass_gev: ELECTRON_MASS_GEV }
    }

    /// A nucleus (A >= 1, Z >= 1) with the atomic mass unit as its mean nucleon mass.
    pub fn nucleus(mass_number: u32, charge: u32) -> Result<Self> {
        let charge = i32::try_from(charge).map_err(|_| invalid!("charge number {charge} is too large"))?;
        Self::new(mass_number, charge, ATOMIC_MASS_UNIT_GEV)
    }

    /// Mass number A.
    pub fn mass_number(&self) -> u32 {
        self.mass_number
    }

    /// Signed charge number Z.
    pub fn charge(&self) -> i32 {
        self.charge
    }

    /// Mean nucleon mass m [GeV].
    pub fn nucleon_mass_gev(&self) -> f64 {
        self.nucleon_mass_gev
    }

    /// |Z| / A: the energy per nucleon [GeV] gained per GV of potential.
    #[inline]
    pub fn charge_per_nucleon(&self) -> f64 {
        self.charge.unsigned_abs() as f64 / self.mass_number as f64
    }

    /// Momentum per nucleon p_n = sqrt(T (T + 2 m)) [GeV/c] at kinetic energy per nucleon T [GeV/n].
    #[inline]
    pub fn momentum_per_nucleon(&self, kinetic_gev: f64) -> f64 {
        sqrt(kinetic_gev * (kinetic_gev + 2.0 * self.nucleon_mass_gev))
    }

    /// Rigidity R = A p_n / |Z| [GV] at kinetic energy per nucleon T [GeV/n].
    #[inline]
    pub fn rigidity_gv(&self, kinetic_gev: f64) -> f64 {
        self.momentum_per_nucleon(kinetic_gev) / self.charge_per_nucleon()
    }

    /// Kinetic energy per nucleon T [GeV/n] at rigidity R [GV]: with p_n = |Z| R / A,
    /// T = p_n^2 / (sqrt(p_n^2 + m^2) + m) (no cancellation at low energy).
    #[inline]
    pub fn kinetic_energy_gev(&self, rigidity_gv: f64) -> f64 {
        let p = self.charge_per_nucleon() * rigidity_gv;
        let m = self.nucleon_mass_gev;
        p * p / (sqrt(p * p + m * m) + m)
    }

    /// dR/dT = (A / |Z|) (T + m) / p_n [GV per GeV/n]: a spectrum per unit rigidity times it is
    /// the spectrum per unit kinetic energy per nucleon.
    #[inline]
    pub fn rigidity_jacobian(&self, kinetic_gev: f64) -> f64 {
        (kinetic_gev + self.nucleon_mass_gev)
            / (self.charge_per_nucleon() * self.momentum_per_nucleon(kinetic_gev))
    }

    /// beta = v / c = p_n / (T + m) at kinetic energy per nucleon T [GeV/n].
    #[inline]
    pub fn beta(&self, kinetic_gev: f64) -> f64 {
        self.momentum_per_nucleon(kinetic_gev) / (kinetic_gev + self.nucleon_mass_gev)
    }
}

impl Particle {
    /// Rigidities R [GV] at a batch of kinetic energies per nucleon T [GeV/n] (finite, > 0).
    pub fn rigidities(&self, kinetic_gev: &[f64], rigidity_gv: &mut [f64]) -> Result<()> {
        map_checked(kinetic_gev, rigidity_gv, check_kinetic, |t| self.rigidity_gv(t))
    }

    /// Kinetic energies per nucleon T [GeV/n] at a batch of rigidities R [GV] (finite, > 0).
    pub fn kinetic_energies(&self, rigidity_gv: &[f64], kinetic_gev: &mut [f64]) -> Result<()> {
        map_checked(rigidity_gv, kinetic_gev, check_rigidity, |r| self.kinetic_energy_gev(r))
    }

    /// dR/dT [GV per GeV/n] at a batch of kinetic energies per nucleon T [GeV/n] (finite, > 0).
    pub fn rigidity_jacobians(&self, kinetic_gev: &[f64], jacobian: &mut [f64]) -> Result<()> {
        map_checked(kinetic_gev, jacobian, check_kinetic, |t| self.rigidity_jacobian(t))
    }
}

/// Checks a kinetic energy per nucleon [GeV/n]: finite and > 0.
pub(crate) fn check_kinetic(kinetic_gev: f64) -> Result<()> {
    require_positive("kinetic energy per nucleon [GeV/n]", kinetic_gev)
}

/// Checks a rigidity [GV]: finite and > 0.
pub(crate) fn check_rigidity(rigidity_gv: f64) -> Result<()> {
    require_positive("rigidity [GV]", rigidity_gv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_invert_each_other() {
        for particle in [Particle::proton(), Particle::electron(), Particle::nucleus(12, 6).unwrap()] {
            for t in [1e-3, 0.1, 1.0, 10.0, 1e4] {
                let r = particle.rigidity_gv(t);
                assert!((particle.kinetic_energy_gev(r) / t - 1.0).abs() < 1e-14);
                // dR/dT against a central difference.
                let h = t * 1e-6;
                let numeric = (particle.rigidity_gv(t + h) - particle.rigidity_gv(t - h)) / (2.0 * h);
                assert!((particle.rigidity_jacobian(t) / numeric - 1.0).abs() < 1e-8);
            }
        }
        // A 1 GV proton: T = sqrt(1 + m^2) - m.
        let m = PROTON_MASS_GEV;
        assert!((Particle::proton().kinetic_energy_gev(1.0) - ((1.0 + m * m).sqrt() - m)).abs() < 1e-15);
    }

    #[test]
    fn bad_species_are_refused() {
        assert!(Particle::new(0, 1, 0.9).is_err());
        assert!(Particle::new(1, 0, 0.9).is_err());
        assert!(Particle::new(1, 1, f64::NAN).is_err());
    }
}
