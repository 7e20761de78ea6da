//! C ABI of the propagation ingredients: species kinematics, the diffusion coefficient, the
//! injection spectrum and force-field solar modulation.

use crate::error::{Error, Result};
use crate::ffi::{crk_status, guard, input, input_maybe_aliased, output};
use crate::physics::modulation::ModulationPotential;
use crate::physics::particle::Particle;
use crate::physics::propagation::{DiffusionParams, InjectionParams};

// Literal values so that cbindgen writes them to the header; a test checks they equal units.rs.
/// Proton (and antiproton) rest energy [GeV] (CODATA 2018).
pub const CRK_PROTON_MASS_GEV: f64 = 0.938_272_088_16;
/// Electron (and positron) rest energy [GeV] (CODATA 2018).
pub const CRK_ELECTRON_MASS_GEV: f64 = 0.510_998_950_00e-3;
/// Atomic mass unit [GeV] (CODATA 2018): the usual mean nucleon mass of a nucleus.
pub const CRK_ATOMIC_MASS_UNIT_GEV: f64 = 0.931_494_102_42;
/// Reference rigidity R0 of the Cholis et al. modulation potential [GV].
pub const CRK_CHOLIS_R0_GV: f64 = 0.5;

/// A cosmic-ray species: mass number A >= 1, signed charge number Z != 0 (the sign selects
/// Phi1+ or Phi1-), mean nucleon mass [GeV] > 0. Protons: (1, 1, CRK_PROTON_MASS_GEV);
/// antiprotons (1, -1, CRK_PROTON_MASS_GEV); electrons (1, -1, CRK_ELECTRON_MASS_GEV);
/// positrons (1, 1, CRK_ELECTRON_MASS_GEV); nuclei e.g. (12, 6, CRK_ATOMIC_MASS_UNIT_GEV).
/// Energies are kinetic energies per nucleon T [GeV/n].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_particle {
    /// Mass number A >= 1.
    pub mass_number: i32,
    /// Signed charge number Z != 0.
    pub charge: i32,
    /// Mean nucleon mass [GeV], > 0.
    pub nucleon_mass_GeV: f64,
}

/// Parameters of the diffusion coefficient (seed 000):
/// D = D0 max(e^((r - 2 kpc)/r_s), 1) max(e^((|z| - 0.15 kpc)/z_s), 1) (R / 4 GV)^delta_l
///     (1 + (R/R_bl)^((delta - delta_l)/s_l))^s_l (1 + (R/R_bh)^((delta - delta_h)/s_h))^-s_h.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_diffusion_params {
    /// D0 [cm^2/s] at 4 GV in the central zone, > 0.
    pub d0_cm2_per_s: f64,
    /// Radial scale r_s [kpc], > 0 (INFINITY: none).
    pub radial_scale_kpc: f64,
    /// Vertical scale z_s [kpc], > 0 (INFINITY: none).
    pub vertical_scale_kpc: f64,
    /// Low-rigidity index delta_l.
    pub delta_low: f64,
    /// Low break rigidity R_bl [GV], > 0.
    pub break_low_GV: f64,
    /// Low break softness s_l, > 0.
    pub softness_low: f64,
    /// Middle index delta.
    pub delta: f64,
    /// High break rigidity R_bh [GV], > 0.
    pub break_high_GV: f64,
    /// High break softness s_h, > 0.
    pub softness_high: f64,
    /// High-rigidity index delta_h.
    pub delta_high: f64,
}

/// Parameters of the injection spectrum (seed 000):
/// Q(R) = Q0 (R/R_bi)^-gamma_l (1 + (R/R_bi)^((gamma_h - gamma_l)/s_bi))^-s_bi exp(-R/R_cut).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_injection_params {
    /// Q0 (the caller's units per GV), > 0.
    pub q0: f64,
    /// Index below the break gamma_l.
    pub gamma_low: f64,
    /// Break rigidity R_bi [GV], > 0.
    pub break_GV: f64,
    /// Break softness s_bi, > 0.
    pub softness: f64,
    /// Index above the break gamma_h.
    pub gamma_high: f64,
    /// Cut-off rigidity R_cut [GV], > 0 (INFINITY: none).
    pub cutoff_GV: f64,
}

/// The solar modulation potential [GV] (Cholis, Hooper & Linden 2016 in the form of seed 000):
/// Phi = phi0 + phi1 (1 + (R/R0)^2) / (beta (R/R0)^3), R0 = 0.5 GV, R and beta at Earth,
/// phi1 = phi1_plus for positive and phi1_minus for negative charges. A constant potential
/// (Gleeson & Axford) has phi1_plus = phi1_minus = 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_modulation_params {
    /// Phi0 [GV].
    pub phi0_GV: f64,
    /// Phi1+ [GV] (positive charges).
    pub phi1_plus_GV: f64,
    /// Phi1- [GV] (negative charges).
    pub phi1_minus_GV: f64,
}

pub(crate) fn particle(p: *const crk_particle) -> Result<Particle> {
    // SAFETY: the caller of the entry point promises NULL or a readable struct.
    let p = unsafe { p.as_ref() }.ok_or_else(|| Error::NullPointer("particle is NULL".into()))?;
    let mass_number = u32::try_from(p.mass_number)
        .map_err(|_| Error::InvalidArgument(format!("mass number must be >= 1, got {}", p.mass_number)))?;
    Particle::new(mass_number, p.charge, p.nucleon_mass_GeV)
}

pub(crate) fn modulation(p: *const crk_modulation_params) -> Result<ModulationPotential> {
    // SAFETY: the caller of the entry point promises NULL or a readable struct.
    let p = unsafe { p.as_ref() }.ok_or_else(|| Error::NullPointer("modulation params is NULL".into()))?;
    let potential = ModulationPotential {
        phi0_gv: p.phi0_GV,
        phi1_positive_gv: p.phi1_plus_GV,
        phi1_negative_gv: p.phi1_minus_GV,
    };
    potential.validate()?;
    Ok(potential)
}

fn diffusion(p: *const crk_diffusion_params) -> Result<DiffusionParams> {
    // SAFETY: the caller of the entry point promises NULL or a readable struct.
    let p = unsafe { p.as_ref() }.ok_or_else(|| Error::NullPointer("diffusion params is NULL".into()))?;
    let params = DiffusionParams {
        d0_cm2_per_s: p.d0_cm2_per_s,
        radial_scale_kpc: p.radial_scale_kpc,
        vertical_scale_kpc: p.vertical_scale_kpc,
        delta_low: p.delta_low,
        break_low_gv: p.break_low_GV,
        softness_low: p.softness_low,
        delta: p.delta,
        break_high_gv: p.break_high_GV,
        softness_high: p.softness_high,
        delta_high: p.delta_high,
    };
    params.validate()?;
    Ok(params)
}

fn injection(p: *const crk_injection_params) -> Result<InjectionParams> {
    // SAFETY: the caller of the entry point promises NULL or a readable struct.
    let p = unsafe { p.as_ref() }.ok_or_else(|| Error::NullPointer("injection params is NULL".into()))?;
    let params = InjectionParams {
        q0: p.q0,
        gamma_low: p.gamma_low,
        break_gv: p.break_GV,
        softness: p.softness,
        gamma_high: p.gamma_high,
        cutoff_gv: p.cutoff_GV,
    };
    params.validate()?;
    Ok(params)
}

/// Diffusion coefficients D [cm^2/s] at n points (galactocentric radius r [kpc] >= 0, height
/// z [kpc], rigidity R [GV] > 0). Vectorised; >= 5e7 points/s per core.
///
/// Errors (nothing is written): CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (a parameter NaN
/// or out of range, e.g. a softness <= 0; r < 0; R <= 0; NaN inputs).
///
/// # Safety
/// `params` must point to a struct; the arrays must hold n values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_diffusion_coefficient(
    params: *const crk_diffusion_params,
    radius_kpc: *const f64,
    height_kpc: *const f64,
    rigidity_GV: *const f64,
    n: usize,
    D_cm2_per_s: *mut f64,
) -> crk_status {
    guard(|| {
        let params = diffusion(params)?;
        // SAFETY: forwarded from the caller.
        let (r, z, rig) = unsafe {
            (
                input(radius_kpc, n, "radius_kpc")?,
                input(height_kpc, n, "height_kpc")?,
                input(rigidity_GV, n, "rigidity_GV")?,
            )
        };
        // SAFETY: forwarded from the caller.
        let out = unsafe { output(D_cm2_per_s, n, "D_cm2_per_s")? };
        params.coefficients(r, z, rig, out)
    })
}

/// The rigidity dependence alone, D0 f(R) [cm^2/s] (D in the central zone) at n rigidities
/// [GV]; `D_cm2_per_s` may be `rigidity_GV` (in place).
///
/// # Safety
/// As crk_diffusion_coefficient.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_diffusion_rigidity_dependence(
    params: *const crk_diffusion_params,
    rigidity_GV: *const f64,
    n: usize,
    D_cm2_per_s: *mut f64,
) -> crk_status {
    guard(|| {
        let params = diffusion(params)?;
        // SAFETY: forwarded from the caller.
        let rig = unsafe { input_maybe_aliased(rigidity_GV, n, D_cm2_per_s, "rigidity_GV")? };
        // SAFETY: forwarded from the caller; overlap copied above.
        let out = unsafe { output(D_cm2_per_s, n, "D_cm2_per_s")? };
        params.rigidity_dependence(&rig, out)
    })
}

/// kappa(E) [cm^2/s] of electrons or positrons of total energy E [GeV] (> m_e) at (r, z)
/// [kpc]: D at rigidity sqrt(E^2 - m_e^2) GV. `kappa_cm2_per_s` may be `energy_GeV`.
///
/// # Safety
/// As crk_diffusion_coefficient.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_diffusion_electron_kappa(
    params: *const crk_diffusion_params,
    radius_kpc: f64,
    height_kpc: f64,
    energy_GeV: *const f64,
    n: usize,
    kappa_cm2_per_s: *mut f64,
) -> crk_status {
    guard(|| {
        let params = diffusion(params)?;
        // SAFETY: forwarded from the caller.
        let e = unsafe { input_maybe_aliased(energy_GeV, n, kappa_cm2_per_s, "energy_GeV")? };
        // SAFETY: forwarded from the caller; overlap copied above.
        let out = unsafe { output(kappa_cm2_per_s, n, "kappa_cm2_per_s")? };
        params.electron_kappa(radius_kpc, height_kpc, &e, out)
    })
}

/// Injection spectrum Q(R) [Q0 units per GV] at n rigidities [GV] > 0 (in place allowed).
///
/// # Safety
/// `params` must point to a struct; the arrays must hold n values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_injection_rigidity(
    params: *const crk_injection_params,
    rigidity_GV: *const f64,
    n: usize,
    q_per_GV: *mut f64,
) -> crk_status {
    guard(|| {
        let params = injection(params)?;
        // SAFETY: forwarded from the caller.
        let rig = unsafe { input_maybe_aliased(rigidity_GV, n, q_per_GV, "rigidity_GV")? };
        // SAFETY: forwarded from the caller; overlap copied above.
        let out = unsafe { output(q_per_GV, n, "q_per_GV")? };
        params.per_rigidity(&rig, out)
    })
}

/// Injection spectrum per kinetic energy per nucleon, Q(R(T)) dR/dT [Q0 units per GeV/n], of
/// `particle` at n energies T [GeV/n] > 0 (in place allowed).
///
/// # Safety
/// `params`, `particle` must point to structs; the arrays must hold n values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_injection_kinetic(
    params: *const crk_injection_params,
    particle_in: *const crk_particle,
    kinetic_GeV: *const f64,
    n: usize,
    q_per_GeV: *mut f64,
) -> crk_status {
    guard(|| {
        let params = injection(params)?;
        let particle = particle(particle_in)?;
        // SAFETY: forwarded from the caller.
        let t = unsafe { input_maybe_aliased(kinetic_GeV, n, q_per_GeV, "kinetic_GeV")? };
        // SAFETY: forwarded from the caller; overlap copied above.
        let out = unsafe { output(q_per_GeV, n, "q_per_GeV")? };
        params.per_kinetic_energy(&particle, &t, out)
    })
}

/// Which conversion [`convert`] makes.
enum Conversion {
    Rigidity,
    Kinetic,
    Jacobian,
}

/// # Safety
/// As the entry points that call it.
unsafe fn convert(
    particle_in: *const crk_particle,
    x: *const f64,
    n: usize,
    out: *mut f64,
    kind: Conversion,
) -> crk_status {
    guard(|| {
        let particle = particle(particle_in)?;
        // SAFETY: forwarded from the caller.
        let x = unsafe { input_maybe_aliased(x, n, out, "input")? };
        // SAFETY: forwarded from the caller; overlap copied above.
        let out = unsafe { output(out, n, "output")? };
        match kind {
            Conversion::Rigidity => particle.rigidities(&x, out),
            Conversion::Kinetic => particle.kinetic_energies(&x, out),
            Conversion::Jacobian => particle.rigidity_jacobians(&x, out),
        }
    })
}

/// Rigidity R = A sqrt(T (T + 2m)) / |Z| [GV] at n kinetic energies per nucleon T [GeV/n].
///
/// # Safety
/// `particle` must point to a struct; the arrays must hold n values (in place allowed).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_rigidity_from_kinetic(
    particle: *const crk_particle,
    kinetic_GeV: *const f64,
    n: usize,
    rigidity_GV: *mut f64,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe { convert(particle, kinetic_GeV, n, rigidity_GV, Conversion::Rigidity) }
}

/// Kinetic energy per nucleon T [GeV/n] at n rigidities R [GV].
///
/// # Safety
/// As crk_rigidity_from_kinetic.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_kinetic_from_rigidity(
    particle: *const crk_particle,
    rigidity_GV: *const f64,
    n: usize,
    kinetic_GeV: *mut f64,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe { convert(particle, rigidity_GV, n, kinetic_GeV, Conversion::Kinetic) }
}

/// The Jacobian dR/dT = (A/|Z|) (T + m) / sqrt(T (T + 2m)) [GV per GeV/n] at n kinetic energies
/// per nucleon (a spectrum per GV times it is the spectrum per GeV/n).
///
/// # Safety
/// As crk_rigidity_from_kinetic.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_rigidity_jacobian(
    particle: *const crk_particle,
    kinetic_GeV: *const f64,
    n: usize,
    dR_dT: *mut f64,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe { convert(particle, kinetic_GeV, n, dR_dT, Conversion::Jacobian) }
}

/// The force-field map at n Earth kinetic energies per nucleon T [GeV/n]: the interstellar
/// energy T_IS = T + (|Z|/A) Phi(R, beta at Earth) [GeV/n] (explicit: the potential depends on
/// the known Earth rigidity) and the factor flux_TOA(T) / flux_IS(T_IS) =
/// T (T + 2m) / (T_IS (T_IS + 2m)).
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (bad species, NaN potential, T <= 0);
/// CRK_ERR_OUT_OF_DOMAIN (a negative potential giving T_IS <= 0).
///
/// # Safety
/// `particle`, `params` must point to structs; the arrays must hold n values and not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_force_field_map(
    particle_in: *const crk_particle,
    params: *const crk_modulation_params,
    kinetic_GeV: *const f64,
    n: usize,
    interstellar_kinetic_GeV: *mut f64,
    flux_factor: *mut f64,
) -> crk_status {
    guard(|| {
        let particle = particle(particle_in)?;
        let potential = modulation(params)?;
        // SAFETY: forwarded from the caller.
        let t = unsafe { input(kinetic_GeV, n, "kinetic_GeV")? };
        // SAFETY: forwarded from the caller.
        let t_is = unsafe { output(interstellar_kinetic_GeV, n, "interstellar_kinetic_GeV")? };
        // SAFETY: forwarded from the caller.
        let factor = unsafe { output(flux_factor, n, "flux_factor")? };
        potential.map(&particle, t, t_is, factor)
    })
}

/// Modulates an interstellar spectrum tabulated per kinetic energy per nucleon (`lis_kinetic_GeV`
/// increasing, `lis_flux` > 0, n_lis >= 2; log-log interpolation, power-law extension beyond
/// the ends): flux_TOA [same units] at n Earth energies T [GeV/n].
///
/// # Safety
/// `particle`, `params` must point to structs; the arrays must hold their counts.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_force_field_modulate(
    particle_in: *const crk_particle,
    params: *const crk_modulation_params,
    lis_kinetic_GeV: *const f64,
    lis_flux: *const f64,
    n_lis: usize,
    kinetic_GeV: *const f64,
    n: usize,
    flux_toa: *mut f64,
) -> crk_status {
    guard(|| {
        let particle = particle(particle_in)?;
        let potential = modulation(params)?;
        // SAFETY: forwarded from the caller.
        let (grid, lis) = unsafe {
            (input(lis_kinetic_GeV, n_lis, "lis_kinetic_GeV")?, input(lis_flux, n_lis, "lis_flux")?)
        };
        // SAFETY: forwarded from the caller.
        let t = unsafe { input_maybe_aliased(kinetic_GeV, n, flux_toa, "kinetic_GeV")? };
        // SAFETY: forwarded from the caller; overlap copied above.
        let out = unsafe { output(flux_toa, n, "flux_toa")? };
        potential.modulate(&particle, grid, lis, &t, out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_constants_equal_the_library_constants() {
        assert_eq!(CRK_PROTON_MASS_GEV, crate::units::PROTON_MASS_GEV);
        assert_eq!(CRK_ELECTRON_MASS_GEV, crate::units::ELECTRON_MASS_GEV);
        assert_eq!(CRK_ATOMIC_MASS_UNIT_GEV, crate::units::ATOMIC_MASS_UNIT_GEV);
        assert_eq!(CRK_CHOLIS_R0_GV, crate::physics::modulation::CHOLIS_REFERENCE_RIGIDITY_GV);
    }
}
