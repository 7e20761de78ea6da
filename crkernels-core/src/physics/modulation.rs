//! Solar modulation in the force-field approximation (Gleeson & Axford 1968, ApJ 154, 1011),
//! with a constant potential or the charge-sign and rigidity dependent potential of Cholis,
//! Hooper & Linden 2016 (PRD 93, 043016) in the form of seed 000 (PHYSICS.md, "Solar
//! modulation").
//!
//! For a species (A, Z, nucleon mass m) with kinetic energy per nucleon T [GeV/n] at Earth (top
//! of the atmosphere, TOA):
//! - potential Phi [GV] = Phi0 + Phi1(sign Z) (1 + (R/R0)^2) / (beta (R/R0)^3), R0 = 0.5 GV,
//!   Phi1(+) for positive and Phi1(-) for negative charges; R and beta those at Earth;
//! - interstellar energy T_IS = T + (|Z|/A) Phi (per nucleus: E_IS = E + |Z| e Phi);
//! - flux_TOA(T) = flux_IS(T_IS) T (T + 2m) / (T_IS (T_IS + 2m)) (flux per unit T; the phase
//!   space density flux / p^2 is conserved).
//!
//! Which rigidity: Cholis et al. parameterise the potential by the rigidity of the observed
//! particle, i.e. the one at Earth, and seed 000 fits it that way. With R (and beta) at Earth
//! known from T, Phi is a number and T_IS follows explicitly: the map Earth -> interstellar
//! needs no equation solving. (The reverse question, which Earth energy a given interstellar
//! energy arrives at, would be implicit, and with Phi1 > 0 not even one-to-one at low energy,
//! since Phi grows like R^-3 / beta there; flux predictions never need it.) A constant potential
//! is the case Phi1(+) = Phi1(-) = 0.

use crate::batch::{check_each, check_lengths};
use crate::error::{Result, require_finite};
use crate::math::interpolation::LogLogTable;
use crate::math::{exp, ln};
use crate::physics::particle::{Particle, check_kinetic};

/// Reference rigidity R0 of the Cholis et al. potential [GV].
pub const CHOLIS_REFERENCE_RIGIDITY_GV: f64 = 0.5;

/// The modulation potential [GV]: Phi0 plus the drift term of each charge sign.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct ModulationPotential {
    /// Phi0 [GV], common to both charge signs.
    pub phi0_gv: f64,
    /// Phi1(+) [GV], for positive charges.
    pub phi1_positive_gv: f64,
    /// Phi1(-) [GV], for negative charges.
    pub phi1_negative_gv: f64,
}

/// The result of the force-field map at one Earth energy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ForceFieldPoint {
    /// The potential Phi [GV] at this rigidity and charge sign.
    pub potential_gv: f64,
    /// The interstellar kinetic energy per nucleon T_IS [GeV/n].
    pub interstellar_kinetic_gev: f64,
    /// flux_TOA(T) / flux_IS(T_IS) = T (T + 2m) / (T_IS (T_IS + 2m)).
    pub flux_factor: f64,
}

impl ModulationPotential {
    /// A constant potential Phi [GV] for both charge signs (the classic force field).
    pub fn constant(phi_gv: f64) -> Self {
        ModulationPotential { phi0_gv: phi_gv, phi1_positive_gv: 0.0, phi1_negative_gv: 0.0 }
    }

    /// Checks that every component is finite.
    pub fn validate(&self) -> Result<()> {
        require_finite("Phi0 [GV]", self.phi0_gv)?;
        require_finite("Phi1+ [GV]", self.phi1_positive_gv)?;
        require_finite("Phi1- [GV]", self.phi1_negative_gv)
    }

    /// Phi1 of the charge sign of `particle` [GV].
    #[inline]
    pub fn drift_amplitude_gv(&self, particle: &Particle) -> f64 {
        if particle.charge() > 0 { self.phi1_positive_gv } else { self.phi1_negative_gv }
    }

    /// The drift shape g = (1 + (R/R0)^2) / (beta (R/R0)^3) at Earth kinetic energy T [GeV/n],
    /// so that Phi = Phi0 + Phi1 g.
    #[inline]
    pub fn drift_shape(particle: &Particle, kinetic_gev: f64) -> f64 {
        let rho = particle.rigidity_gv(kinetic_gev) / CHOLIS_REFERENCE_RIGIDITY_GV;
        (1.0 + rho * rho) / (particle.beta(kinetic_gev) * rho * rho * rho)
    }

    /// Phi [GV] for `particle` at Earth kinetic energy per nucleon T [GeV/n].
    #[inline]
    pub fn potential_gv(&self, particle: &Particle, kinetic_gev: f64) -> f64 {
        let phi1 = self.drift_amplitude_gv(particle);
        if phi1 == 0.0 {
            self.phi0_gv
        } else {
            self.phi0_gv + phi1 * Self::drift_shape(particle, kinetic_gev)
        }
    }

    /// The force-field map at one checked Earth energy T [GeV/n] (finite, > 0). Phi < 0 that
    /// would give T_IS <= 0 yields T_IS <= 0 and a non-positive factor: [`Self::map`] refuses it.
    #[inline]
    pub fn map_unchecked(&self, particle: &Particle, kinetic_gev: f64) -> ForceFieldPoint {
        let potential_gv = self.potential_gv(particle, kinetic_gev);
        let t = kinetic_gev;
        let t_is = t + particle.charge_per_nucleon() * potential_gv;
        let two_m = 2.0 * particle.nucleon_mass_gev();
        ForceFieldPoint {
            potential_gv,
            interstellar_kinetic_gev: t_is,
            flux_factor: (t * (t + two_m)) / (t_is * (t_is + two_m)),
        }
    }

    /// The force-field map at a batch of Earth kinetic energies per nucleon [GeV/n]: the
    /// interstellar energy T_IS [GeV/n] and the factor flux_TOA(T) / flux_IS(T_IS).
    ///
    /// Errors (nothing is written): a potential component not finite; lengths differ; an
    /// energy not finite or <= 0; T_IS <= 0 (a negative potential larger than the energy).
    pub fn map(
        &self,
        particle: &Particle,
        kinetic_gev: &[f64],
        interstellar_kinetic_gev: &mut [f64],
        flux_factor: &mut [f64],
    ) -> Result<()> {
        self.validate()?;
        check_lengths(
            "kinetic energy",
            kinetic_gev.len(),
            "interstellar energy",
            interstellar_kinetic_gev.len(),
        )?;
        check_lengths("kinetic energy", kinetic_gev.len(), "flux factor", flux_factor.len())?;
        self.check_energies(particle, kinetic_gev)?;
        for ((&t, t_is), factor) in kinetic_gev.iter().zip(interstellar_kinetic_gev).zip(flux_factor) {
            let point = self.map_unchecked(particle, t);
            *t_is = point.interstellar_kinetic_gev;
            *factor = point.flux_factor;
        }
        Ok(())
    }

    fn check_energies(&self, particle: &Particle, kinetic_gev: &[f64]) -> Result<()> {
        check_each("kinetic energy [GeV/n]", kinetic_gev, |t| {
            check_kinetic(t)?;
            let t_is = self.map_unchecked(particle, t).interstellar_kinetic_gev;
            if t_is > 0.0 && t_is.is_finite() {
                Ok(())
            } else {
                Err(crate::error::out_of_domain!(
                    "the potential gives an interstellar energy T_IS = {t_is} GeV/n <= 0"
                ))
            }
        })
    }

    /// Modulates an interstellar spectrum tabulated per unit kinetic energy per nucleon
    /// (`lis_kinetic_gev` increasing, `lis_flux` > 0; log-log interpolation, power-law
    /// extension beyond its ends): flux_TOA at each Earth energy T [GeV/n].
    pub fn modulate(
        &self,
        particle: &Particle,
        lis_kinetic_gev: &[f64],
        lis_flux: &[f64],
        kinetic_gev: &[f64],
        flux_toa: &mut [f64],
    ) -> Result<()> {
        self.validate()?;
        let table = LogLogTable::new("interstellar spectrum", lis_kinetic_gev, lis_flux)?;
        check_lengths("kinetic energy", kinetic_gev.len(), "output", flux_toa.len())?;
        self.check_energies(particle, kinetic_gev)?;
        for (o, &t) in flux_toa.iter_mut().zip(kinetic_gev) {
            let point = self.map_unchecked(particle, t);
            let (ln_flux, _) = table.ln_value_and_slope(ln(point.interstellar_kinetic_gev));
            *o = exp(ln_flux) * point.flux_factor;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_potential_is_the_identity() {
        let p = Particle::proton();
        let point = ModulationPotential::default().map_unchecked(&p, 3.0);
        assert_eq!(point.interstellar_kinetic_gev, 3.0);
        assert_eq!(point.flux_factor, 1.0);
    }

    #[test]
    fn charge_sign_picks_the_drift_amplitude() {
        let phi = ModulationPotential { phi0_gv: 0.3, phi1_positive_gv: 0.0, phi1_negative_gv: 1.0 };
        assert_eq!(phi.potential_gv(&Particle::proton(), 1.0), 0.3);
        assert!(phi.potential_gv(&Particle::antiproton(), 1.0) > 0.3);
    }
}
