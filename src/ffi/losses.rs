//! C ABI of photon fields and energy losses.

use crate::error::{Error, Result};
use crate::ffi::{
    crk_status, free_handle, guard, handle, input, input_maybe_aliased, output, prepare_handle_out,
    write_handle,
};
use crate::physics::losses::{EnergyLosses, LossModel};
use crate::physics::photon_field::{Greybody, IsrfPreset, PhotonField};

/// One greybody component of a photon field: a Planck spectrum of temperature
/// `temperature_K` [K] scaled to the energy density `energy_density_eV_per_cm3` [eV/cm^3].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_photon_field {
    /// Temperature [K], > 0.
    pub temperature_K: f64,
    /// Energy density [eV/cm^3], >= 0.
    pub energy_density_eV_per_cm3: f64,
}

/// Energy-loss model (one of the CRK_LOSS_* constants).
pub type crk_loss_model = i32;
/// Thomson limit, b = (4/3) sigma_T c gamma^2 (sum U_r + U_B).
pub const CRK_LOSS_THOMSON: crk_loss_model = 0;
/// First-order Klein-Nishina expansion (SECRET eq. 2.4); CRK_ERR_OUT_OF_DOMAIN where a
/// component's bracket is <= 0.
pub const CRK_LOSS_KN_EXPANSION: crk_loss_model = 1;
/// Exact (ultra-relativistic) Klein-Nishina losses on greybody fields: the default.
pub const CRK_LOSS_KN_EXACT: crk_loss_model = 2;

/// Interstellar radiation field preset (one of the CRK_ISRF_* constants).
pub type crk_isrf_preset = i32;
/// The CMB alone (Fixsen 2009): 1 component.
pub const CRK_ISRF_CMB: crk_isrf_preset = 0;
/// Delahaye et al. 2010 as in DRAGON2, the default: 6 components.
pub const CRK_ISRF_DELAHAYE2010: crk_isrf_preset = 1;
/// GALPROP at 6.5 kpc as naima's seed fields: 3 components.
pub const CRK_ISRF_GALPROP_6_5KPC: crk_isrf_preset = 2;
/// Schlickeiser (2002), section 2.3: 3 components.
pub const CRK_ISRF_SCHLICKEISER2002: crk_isrf_preset = 3;
/// The most components any preset has (size a buffer for crk_isrf_preset_components).
pub const CRK_ISRF_MAX_COMPONENTS: usize = 6;

/// Energy losses of electrons: an opaque handle made by crk_losses_new,
/// crk_losses_new_preset or crk_losses_new_thomson, released with crk_losses_free. Immutable; may be shared across
/// threads.
pub struct crk_losses {
    pub(crate) inner: EnergyLosses,
}

fn loss_model(model: crk_loss_model) -> Result<LossModel> {
    match model {
        CRK_LOSS_THOMSON => Ok(LossModel::Thomson),
        CRK_LOSS_KN_EXPANSION => Ok(LossModel::KleinNishinaExpansion),
        CRK_LOSS_KN_EXACT => Ok(LossModel::KleinNishina),
        other => Err(Error::InvalidArgument(format!(
            "unknown loss model {other} (CRK_LOSS_THOMSON = 0, CRK_LOSS_KN_EXPANSION = 1, CRK_LOSS_KN_EXACT = 2)"
        ))),
    }
}

fn isrf_preset(preset: crk_isrf_preset) -> Result<IsrfPreset> {
    usize::try_from(preset).ok().and_then(|i| IsrfPreset::ALL.get(i).copied()).ok_or_else(|| {
        Error::InvalidArgument(format!("unknown ISRF preset {preset} (0 to {})", IsrfPreset::ALL.len() - 1))
    })
}

/// Builds energy losses of `model` on a photon field of `n_fields` greybody components plus a
/// magnetic field [microgauss] for synchrotron losses.
///
/// Errors: CRK_ERR_NULL_POINTER (out, or fields with n_fields > 0); CRK_ERR_INVALID_ARGUMENT
/// (unknown model, temperature <= 0, negative energy density or field, NaN or infinity).
///
/// # Safety
/// `fields` must point to `n_fields` components (or be NULL when n_fields = 0); `out` must be
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_losses_new(
    model: crk_loss_model,
    fields: *const crk_photon_field,
    n_fields: usize,
    magnetic_field_uG: f64,
    out: *mut *mut crk_losses,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { prepare_handle_out(out, "out")? };
        let model = loss_model(model)?;
        // SAFETY: forwarded from the caller.
        let fields = unsafe { input(fields, n_fields, "fields")? };
        let components: Vec<Greybody> =
            fields.iter().map(|f| Greybody::new(f.temperature_K, f.energy_density_eV_per_cm3)).collect();
        let field = PhotonField::new(&components, magnetic_field_uG)?;
        // SAFETY: checked above.
        unsafe { write_handle(out, crk_losses { inner: EnergyLosses::new(model, &field) }) }
    })
}

/// Builds energy losses of `model` on an ISRF preset plus a magnetic field [microgauss].
///
/// Errors: CRK_ERR_NULL_POINTER (out); CRK_ERR_INVALID_ARGUMENT (unknown model or preset,
/// negative or non-finite field).
///
/// # Safety
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_losses_new_preset(
    model: crk_loss_model,
    preset: crk_isrf_preset,
    magnetic_field_uG: f64,
    out: *mut *mut crk_losses,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { prepare_handle_out(out, "out")? };
        let model = loss_model(model)?;
        let field = PhotonField::preset(isrf_preset(preset)?, magnetic_field_uG)?;
        // SAFETY: checked above.
        unsafe { write_handle(out, crk_losses { inner: EnergyLosses::new(model, &field) }) }
    })
}

/// Thomson losses b(E) = b0 E^2 from the coefficient b0 [GeV^-1 s^-1] (finite, > 0).
///
/// # Safety
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_losses_new_thomson(
    b0_per_GeV_per_s: f64,
    out: *mut *mut crk_losses,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { prepare_handle_out(out, "out")? };
        let inner = EnergyLosses::thomson(b0_per_GeV_per_s)?;
        // SAFETY: checked above.
        unsafe { write_handle(out, crk_losses { inner }) }
    })
}

/// Writes the components of an ISRF preset to `fields` (room for `capacity` components) and
/// their number to `n_fields`. With fields = NULL and capacity = 0 it only reports the number.
///
/// Errors: CRK_ERR_NULL_POINTER (n_fields; fields with capacity > 0);
/// CRK_ERR_INVALID_ARGUMENT (unknown preset, or capacity too small: n_fields still tells the
/// size needed).
///
/// # Safety
/// `fields` must have room for `capacity` components; `n_fields` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_isrf_preset_components(
    preset: crk_isrf_preset,
    fields: *mut crk_photon_field,
    capacity: usize,
    n_fields: *mut usize,
) -> crk_status {
    guard(|| {
        if n_fields.is_null() {
            return Err(Error::NullPointer("n_fields is NULL".into()));
        }
        let components = isrf_preset(preset)?.components();
        // SAFETY: checked non-null; the caller promises it is writable.
        unsafe { *n_fields = components.len() };
        if fields.is_null() && capacity == 0 {
            return Ok(());
        }
        // SAFETY: forwarded from the caller.
        let out = unsafe { output(fields, capacity, "fields")? };
        if capacity < components.len() {
            return Err(Error::InvalidArgument(format!(
                "capacity {capacity} is too small: the preset has {} components",
                components.len()
            )));
        }
        for (o, c) in out.iter_mut().zip(components) {
            *o = crk_photon_field {
                temperature_K: c.temperature_k,
                energy_density_eV_per_cm3: c.energy_density_ev_per_cm3,
            };
        }
        Ok(())
    })
}

/// Loss rates b(E) = -dE/dt > 0 [GeV/s] at `n` energies [GeV]; `rate_GeV_per_s` may be the
/// same array as `energy_GeV` (in place). n = 0 is a no-op (NULL arrays allowed then).
///
/// Errors (nothing is written): CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (an energy
/// NaN, infinite or <= 0); CRK_ERR_OUT_OF_DOMAIN (the first-order expansion where a bracket is
/// <= 0). The message names the first bad element.
///
/// # Safety
/// `losses` must be a live handle; the arrays must hold `n` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_losses_rate(
    losses: *const crk_losses,
    energy_GeV: *const f64,
    n: usize,
    rate_GeV_per_s: *mut f64,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let losses = unsafe { handle(losses, "losses")? };
        // SAFETY: forwarded from the caller.
        let energy = unsafe { input_maybe_aliased(energy_GeV, n, rate_GeV_per_s, "energy_GeV")? };
        // SAFETY: forwarded from the caller; any overlap with the input was copied above.
        let rate = unsafe { output(rate_GeV_per_s, n, "rate_GeV_per_s")? };
        losses.inner.rates(&energy, rate)
    })
}

/// Releases losses made by crk_losses_new*; NULL is a no-op.
///
/// # Safety
/// `losses` must be NULL or a live handle not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_losses_free(losses: *mut crk_losses) {
    // SAFETY: forwarded from the caller.
    unsafe { free_handle(losses) }
}
