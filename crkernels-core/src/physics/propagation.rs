//! Propagation ingredients of DRAGON-style fits (seed 000; PHYSICS.md, "Propagation
//! ingredients"): the diffusion coefficient with spatial dependence and two smooth rigidity
//! breaks, and the injection spectrum with a smooth break and an exponential cut-off.
//!
//! Diffusion coefficient [cm^2/s] at galactocentric radius r [kpc], height z [kpc], rigidity R [GV]:
//!
//! D = D0 max(e^((r - r_n)/r_s), 1) max(e^((|z| - z_n)/z_s), 1) (R / 4 GV)^delta_l
//!     (1 + (R/R_bl)^((delta - delta_l)/s_l))^(s_l) (1 + (R/R_bh)^((delta - delta_h)/s_h))^(-s_h),
//!
//! r_n = 2 kpc, z_n = 0.15 kpc (the talk's backup slide: -s_h in the last exponent, so that D
//! goes as R^delta_l, then R^delta, then R^delta_h). Injection [units of Q0 per GV]:
//!
//! Q(R) = Q0 (R/R_bi)^(-gamma_l) (1 + (R/R_bi)^((gamma_h - gamma_l)/s_bi))^(-s_bi) exp(-R/R_cut).
//!
//! Both are evaluated in log space: ln D = ln D0 + max((r - r_n)/r_s, 0) + max((|z| - z_n)/z_s, 0)
//! plus delta_l ln(R/4) + s_l softplus(a_l ln(R/R_bl)) - s_h softplus(a_h ln(R/R_bh)), with
//! softplus(u) = ln(1 + e^u) = max(u, 0) + ln(1 + e^-|u|), so no power overflows for any break
//! sharpness; D itself is e^(ln D) (infinite only if D exceeds 1.8e308 cm^2/s). The batch
//! kernel for D is branch-free (math::ln_branchless, exp_branchless) and compiled for AVX-512,
//! AVX2 and the baseline, chosen at run time.

use crate::batch::{check_each, check_lengths};
use crate::error::{Result, invalid, require_finite, require_non_negative, require_positive};
#[cfg(target_arch = "x86_64")]
use crate::math::simd::VectorIsa;
use crate::math::{exp, exp_branchless, ln, ln_branchless, softplus_branchless, sqrt};
use crate::physics::particle::{Particle, check_kinetic, check_rigidity};
use crate::units::ELECTRON_MASS_GEV;

/// Radius of the central zone with constant diffusion, r_n [kpc] (seed 000).
pub const DIFFUSION_CENTRAL_RADIUS_KPC: f64 = 2.0;
/// Half-height of the disc with constant diffusion, z_n [kpc] (seed 000).
pub const DIFFUSION_DISC_HEIGHT_KPC: f64 = 0.15;
/// Reference rigidity of the diffusion power law [GV].
pub const DIFFUSION_REFERENCE_RIGIDITY_GV: f64 = 4.0;

/// Parameters of the diffusion coefficient (seed 000, "Model and Calculation Method").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiffusionParams {
    /// Normalisation D0 at 4 GV in the central zone [cm^2/s], finite > 0.
    pub d0_cm2_per_s: f64,
    /// Radial scale r_s [kpc], > 0 (infinity: no radial dependence).
    pub radial_scale_kpc: f64,
    /// Vertical scale z_s [kpc], > 0 (infinity: no vertical dependence).
    pub vertical_scale_kpc: f64,
    /// Low-rigidity index delta_l.
    pub delta_low: f64,
    /// Low break rigidity R_bl [GV], finite > 0.
    pub break_low_gv: f64,
    /// Low break softness s_l, finite > 0.
    pub softness_low: f64,
    /// Middle index delta.
    pub delta: f64,
    /// High break rigidity R_bh [GV], finite > 0.
    pub break_high_gv: f64,
    /// High break softness s_h, finite > 0.
    pub softness_high: f64,
    /// High-rigidity index delta_h.
    pub delta_high: f64,
}

/// Per-call constants of the diffusion kernel in log space.
#[derive(Clone, Copy, Debug)]
struct DiffusionLogForm {
    ln_d0_at_1gv: f64,
    delta_low: f64,
    inv_radial_scale: f64,
    inv_vertical_scale: f64,
    slope_low: f64,
    offset_low: f64,
    softness_low: f64,
    slope_high: f64,
    offset_high: f64,
    softness_high: f64,
}

impl DiffusionParams {
    /// Checks every parameter (NaN, sign, softness <= 0), naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        require_positive("D0 [cm^2/s]", self.d0_cm2_per_s)?;
        for (what, v) in [
            ("radial scale r_s [kpc]", self.radial_scale_kpc),
            ("vertical scale z_s [kpc]", self.vertical_scale_kpc),
        ] {
            if v.is_nan() || v <= 0.0 {
                return Err(invalid!("{what} must be > 0 (infinity for none), got {v}"));
            }
        }
        require_finite("delta_l", self.delta_low)?;
        require_finite("delta", self.delta)?;
        require_finite("delta_h", self.delta_high)?;
        require_positive("low break rigidity R_bl [GV]", self.break_low_gv)?;
        require_positive("high break rigidity R_bh [GV]", self.break_high_gv)?;
        require_positive("low break softness s_l", self.softness_low)?;
        require_positive("high break softness s_h", self.softness_high)
    }

    fn log_form(&self) -> DiffusionLogForm {
        // u = a (ln R - ln R_b) = a ln R + offset.
        let slope_low = (self.delta - self.delta_low) / self.softness_low;
        let slope_high = (self.delta - self.delta_high) / self.softness_high;
        DiffusionLogForm {
            ln_d0_at_1gv: ln(self.d0_cm2_per_s) - self.delta_low * ln(DIFFUSION_REFERENCE_RIGIDITY_GV),
            delta_low: self.delta_low,
            inv_radial_scale: 1.0 / self.radial_scale_kpc,
            inv_vertical_scale: 1.0 / self.vertical_scale_kpc,
            slope_low,
            offset_low: -slope_low * ln(self.break_low_gv),
            softness_low: self.softness_low,
            slope_high,
            offset_high: -slope_high * ln(self.break_high_gv),
            softness_high: self.softness_high,
        }
    }

    /// D(r, z, R) [cm^2/s] at one point (checked: r >= 0, z finite, R > 0).
    pub fn coefficient(&self, radius_kpc: f64, height_kpc: f64, rigidity_gv: f64) -> Result<f64> {
        self.validate()?;
        check_position(radius_kpc, height_kpc)?;
        check_rigidity(rigidity_gv)?;
        Ok(self.log_form().value(radius_kpc, height_kpc, rigidity_gv))
    }

    /// D(r, z, R) [cm^2/s] for a batch of points, written to `out`.
    ///
    /// Errors (nothing is written): bad parameters; lengths differ; r < 0 or not finite, z not
    /// finite, R not finite or <= 0 (the message names the first bad element).
    pub fn coefficients(
        &self,
        radius_kpc: &[f64],
        height_kpc: &[f64],
        rigidity_gv: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        self.validate()?;
        check_lengths("radius", radius_kpc.len(), "height", height_kpc.len())?;
        check_lengths("radius", radius_kpc.len(), "rigidity", rigidity_gv.len())?;
        check_lengths("radius", radius_kpc.len(), "output", out.len())?;
        check_each("radius [kpc]", radius_kpc, |r| require_non_negative("galactocentric radius [kpc]", r))?;
        check_each("height [kpc]", height_kpc, |z| require_finite("height z [kpc]", z))?;
        check_each("rigidity [GV]", rigidity_gv, check_rigidity)?;
        let form = self.log_form();
        #[cfg(target_arch = "x86_64")]
        match VectorIsa::detect() {
            VectorIsa::Avx512 => {
                // SAFETY: VectorIsa::detect found the instruction set on this CPU.
                unsafe { form.fill_avx512(radius_kpc, height_kpc, rigidity_gv, out) };
                return Ok(());
            }
            VectorIsa::Avx2 => {
                // SAFETY: as above.
                unsafe { form.fill_avx2(radius_kpc, height_kpc, rigidity_gv, out) };
                return Ok(());
            }
            VectorIsa::Baseline | VectorIsa::Neon => {}
        }
        form.fill(radius_kpc, height_kpc, rigidity_gv, out);
        Ok(())
    }

    /// The rigidity dependence alone, D0 f(R) [cm^2/s]: D in the central zone (r <= r_n,
    /// |z| <= z_n), for a batch of rigidities [GV].
    pub fn rigidity_dependence(&self, rigidity_gv: &[f64], out: &mut [f64]) -> Result<()> {
        self.validate()?;
        check_lengths("rigidity", rigidity_gv.len(), "output", out.len())?;
        check_each("rigidity [GV]", rigidity_gv, check_rigidity)?;
        let form = self.log_form();
        for (o, &r) in out.iter_mut().zip(rigidity_gv) {
            *o = form.value(0.0, 0.0, r);
        }
        Ok(())
    }

    /// kappa(E) [cm^2/s] of electrons or positrons of total energy E [GeV] (E > m_e) at (r, z):
    /// D at the rigidity R = sqrt(E^2 - m_e^2) / (1 GeV) GV (|Z| = 1).
    pub fn electron_kappa(
        &self,
        radius_kpc: f64,
        height_kpc: f64,
        energy_gev: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        self.validate()?;
        check_position(radius_kpc, height_kpc)?;
        check_lengths("energy", energy_gev.len(), "output", out.len())?;
        check_each("electron energy [GeV]", energy_gev, |e| {
            require_finite("electron energy [GeV]", e)?;
            if e > ELECTRON_MASS_GEV {
                Ok(())
            } else {
                Err(invalid!("electron total energy must exceed m_e c^2 = {ELECTRON_MASS_GEV} GeV, got {e}"))
            }
        })?;
        let form = self.log_form();
        for (o, &e) in out.iter_mut().zip(energy_gev) {
            let momentum = sqrt((e - ELECTRON_MASS_GEV) * (e + ELECTRON_MASS_GEV));
            *o = form.value(radius_kpc, height_kpc, momentum);
        }
        Ok(())
    }
}

fn check_position(radius_kpc: f64, height_kpc: f64) -> Result<()> {
    require_non_negative("galactocentric radius r [kpc]", radius_kpc)?;
    require_finite("height z [kpc]", height_kpc)
}

impl DiffusionLogForm {
    /// D at one checked point, branch-free.
    #[inline(always)]
    fn value(&self, radius_kpc: f64, height_kpc: f64, rigidity_gv: f64) -> f64 {
        let ln_r = ln_branchless(rigidity_gv);
        let radial = ((radius_kpc - DIFFUSION_CENTRAL_RADIUS_KPC) * self.inv_radial_scale).max(0.0);
        let vertical = ((height_kpc.abs() - DIFFUSION_DISC_HEIGHT_KPC) * self.inv_vertical_scale).max(0.0);
        let low = self.softness_low * softplus_branchless(self.slope_low * ln_r + self.offset_low);
        let high = self.softness_high * softplus_branchless(self.slope_high * ln_r + self.offset_high);
        let ln_d = self.ln_d0_at_1gv + radial + vertical + self.delta_low * ln_r + low - high;
        // exp_branchless saturates above 709: D above f64::MAX is infinite.
        if ln_d > 709.78 { f64::INFINITY } else { exp_branchless(ln_d) }
    }

    #[inline(always)]
    fn fill(&self, radius: &[f64], height: &[f64], rigidity: &[f64], out: &mut [f64]) {
        for (((o, &r), &z), &rig) in out.iter_mut().zip(radius).zip(height).zip(rigidity) {
            *o = self.value(r, z, rig);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    unsafe fn fill_avx512(&self, radius: &[f64], height: &[f64], rigidity: &[f64], out: &mut [f64]) {
        self.fill(radius, height, rigidity, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn fill_avx2(&self, radius: &[f64], height: &[f64], rigidity: &[f64], out: &mut [f64]) {
        self.fill(radius, height, rigidity, out)
    }
}

/// Parameters of the injection spectrum (seed 000, "common source spectrum").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InjectionParams {
    /// Normalisation Q0 at R = R_bi (the caller's units per GV), finite > 0.
    pub q0: f64,
    /// Index below the break gamma_l.
    pub gamma_low: f64,
    /// Break rigidity R_bi [GV], finite > 0.
    pub break_gv: f64,
    /// Break softness s_bi, finite > 0.
    pub softness: f64,
    /// Index above the break gamma_h.
    pub gamma_high: f64,
    /// Cut-off rigidity R_cut [GV], > 0 (infinity: no cut-off).
    pub cutoff_gv: f64,
}

impl InjectionParams {
    /// Checks every parameter, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        require_positive("Q0", self.q0)?;
        require_finite("gamma_l", self.gamma_low)?;
        require_finite("gamma_h", self.gamma_high)?;
        require_positive("break rigidity R_bi [GV]", self.break_gv)?;
        require_positive("break softness s_bi", self.softness)?;
        if self.cutoff_gv.is_nan() || self.cutoff_gv <= 0.0 {
            return Err(invalid!(
                "cut-off rigidity R_cut [GV] must be > 0 (infinity for none), got {}",
                self.cutoff_gv
            ));
        }
        Ok(())
    }

    /// Q(R) [Q0 units per GV] at a checked rigidity R [GV], in log space.
    #[inline]
    fn value(&self, rigidity_gv: f64) -> f64 {
        let x = ln(rigidity_gv / self.break_gv);
        let slope = (self.gamma_high - self.gamma_low) / self.softness;
        exp(ln(self.q0)
            - self.gamma_low * x
            - self.softness * softplus_branchless(slope * x)
            - rigidity_gv / self.cutoff_gv)
    }

    /// Q(R) [Q0 units per GV] for a batch of rigidities [GV] (finite, > 0).
    pub fn per_rigidity(&self, rigidity_gv: &[f64], out: &mut [f64]) -> Result<()> {
        self.validate()?;
        check_lengths("rigidity", rigidity_gv.len(), "output", out.len())?;
        check_each("rigidity [GV]", rigidity_gv, check_rigidity)?;
        for (o, &r) in out.iter_mut().zip(rigidity_gv) {
            *o = self.value(r);
        }
        Ok(())
    }

    /// Q_T(T) = Q(R(T)) dR/dT [Q0 units per GeV/n] of `particle` for a batch of kinetic energies
    /// per nucleon T [GeV/n] (finite, > 0).
    pub fn per_kinetic_energy(
        &self,
        particle: &Particle,
        kinetic_gev: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        self.validate()?;
        check_lengths("kinetic energy", kinetic_gev.len(), "output", out.len())?;
        check_each("kinetic energy [GeV/n]", kinetic_gev, check_kinetic)?;
        for (o, &t) in out.iter_mut().zip(kinetic_gev) {
            *o = self.value(particle.rigidity_gv(t)) * particle.rigidity_jacobian(t);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DiffusionParams {
        DiffusionParams {
            d0_cm2_per_s: 3e28,
            radial_scale_kpc: 5.0,
            vertical_scale_kpc: 2.0,
            delta_low: -0.5,
            break_low_gv: 5.0,
            softness_low: 0.1,
            delta: 0.5,
            break_high_gv: 300.0,
            softness_high: 0.2,
            delta_high: 0.3,
        }
    }

    /// The seed's product of powers, evaluated directly (independent of the log form).
    fn direct(p: &DiffusionParams, r: f64, z: f64, rig: f64) -> f64 {
        p.d0_cm2_per_s
            * ((r - 2.0) / p.radial_scale_kpc).exp().max(1.0)
            * ((z.abs() - 0.15) / p.vertical_scale_kpc).exp().max(1.0)
            * (rig / 4.0).powf(p.delta_low)
            * (1.0 + (rig / p.break_low_gv).powf((p.delta - p.delta_low) / p.softness_low))
                .powf(p.softness_low)
            * (1.0 + (rig / p.break_high_gv).powf((p.delta - p.delta_high) / p.softness_high))
                .powf(-p.softness_high)
    }

    #[test]
    fn log_form_matches_the_direct_product() {
        let p = params();
        let mut worst: f64 = 0.0;
        for &(r, z) in &[(0.0, 0.0), (8.5, 0.1), (8.5, -3.0), (15.0, 4.0)] {
            for k in 0..60 {
                let rig = 10f64.powf(-1.0 + 0.1 * k as f64);
                worst = worst.max((p.coefficient(r, z, rig).unwrap() / direct(&p, r, z, rig) - 1.0).abs());
            }
        }
        assert!(worst < 1e-13, "{worst:e}");
    }

    #[test]
    fn bad_parameters_are_named() {
        let mut p = params();
        p.softness_low = 0.0;
        assert!(p.validate().unwrap_err().message().contains("s_l"));
        p = params();
        p.delta = f64::NAN;
        assert!(p.validate().is_err());
        assert!(params().coefficient(1.0, 0.0, -1.0).is_err());
    }
}
