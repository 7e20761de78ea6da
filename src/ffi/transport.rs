//! C ABI of the transport tables: loss time, loss length, initial energy.

use crate::error::Result;
use crate::ffi::losses::crk_losses;
use crate::ffi::{
    crk_status, free_handle, guard, handle, input_maybe_aliased, output, prepare_handle_out, write_handle,
};
use crate::physics::transport::Transport;

/// Electron transport tables over [E_min, E_max]: an opaque handle made by
/// crk_transport_new, released with crk_transport_free. Immutable; may be shared across
/// threads. It keeps its own copy of the losses.
pub struct crk_transport {
    inner: Transport,
}

impl crk_transport {
    /// The Rust transport behind the handle.
    pub(crate) fn inner(&self) -> &Transport {
        &self.inner
    }
}

/// Builds the loss-time and loss-length tables T(E), L(E) for `losses`, a diffusion
/// coefficient kappa(E) = kappa0 (E/GeV)^delta [cm^2/s], a halo half-height z_max [kpc]
/// (<= 0 or +infinity: no boundary) and the energy range [E_min, E_max] [GeV] (E_max is the
/// top of the table: sources needing more energy contribute nothing).
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (kappa0 <= 0, NaN or infinite
/// parameters, E_min <= 0, E_min >= E_max); CRK_ERR_OUT_OF_DOMAIN (the first-order
/// expansion is negative inside the range; a range so wide that b(E_min) underflows or
/// T(E_min), L(E_min) overflow double precision).
///
/// Memory: 256 P + 112 P' bytes plus a copy of the losses, P = 8 log2(E_max / E_min) + 2
/// pieces of the T and L tables and P' (the same over the loss times) of the inverse table;
/// both are at most 16376 (the eighth-octaves of all doubles), so under 6.1 MB for any range
/// (about 0.25 s to build for [1e-150, 1e150] GeV).
///
/// # Safety
/// `losses` must be a live handle; `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_transport_new(
    losses: *const crk_losses,
    kappa0_cm2_per_s: f64,
    delta: f64,
    z_max_kpc: f64,
    energy_min_GeV: f64,
    energy_max_GeV: f64,
    out: *mut *mut crk_transport,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { prepare_handle_out(out, "out")? };
        // SAFETY: forwarded from the caller.
        let losses = unsafe { handle(losses, "losses")? };
        let inner = Transport::new(
            &losses.inner,
            kappa0_cm2_per_s,
            delta,
            z_max_kpc,
            energy_min_GeV,
            energy_max_GeV,
        )?;
        // SAFETY: checked above.
        unsafe { write_handle(out, crk_transport { inner }) }
    })
}

/// Runs a batch kernel over two input arrays and one output array of `n` values, any of which
/// may coincide (in-place calls).
///
/// # Safety
/// `tr` a live handle or NULL; the arrays hold `n` values or are NULL with n = 0.
unsafe fn two_in_one_out(
    tr: *const crk_transport,
    a: (*const f64, &str),
    b: (*const f64, &str),
    n: usize,
    out: (*mut f64, &str),
    kernel: impl FnOnce(&Transport, &[f64], &[f64], &mut [f64]) -> Result<()>,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let tr = unsafe { handle(tr, "transport")? };
        // SAFETY: forwarded from the caller.
        let a_values = unsafe { input_maybe_aliased(a.0, n, out.0, a.1)? };
        // SAFETY: forwarded from the caller.
        let b_values = unsafe { input_maybe_aliased(b.0, n, out.0, b.1)? };
        // SAFETY: forwarded from the caller; overlapping inputs were copied above.
        let result = unsafe { output(out.0, n, out.1)? };
        kernel(&tr.inner, &a_values, &b_values, result)
    })
}

/// Initial energy E0(E, t) [GeV] of a particle observed at E [GeV] (in [E_min, E_max]) after
/// a time t [Myr] (finite, >= 0): the solution of T(E) - T(E0) = t. Where no E0 <= E_max
/// solves it, the result is +INFINITY (such a source contributes nothing at E). Output may
/// coincide with an input. n = 0 is a no-op.
///
/// Errors (nothing is written): CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (NaN,
/// infinite, non-positive energy, negative age); CRK_ERR_OUT_OF_DOMAIN (E outside the table).
///
/// # Safety
/// `tr` must be a live handle; the arrays must hold `n` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_transport_initial_energy(
    tr: *const crk_transport,
    energy_GeV: *const f64,
    age_Myr: *const f64,
    n: usize,
    initial_energy_GeV: *mut f64,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        two_in_one_out(
            tr,
            (energy_GeV, "energy_GeV"),
            (age_Myr, "age_Myr"),
            n,
            (initial_energy_GeV, "initial_energy_GeV"),
            Transport::initial_energies,
        )
    }
}

/// Loss length l^2(E, E0) = L(E) - L(E0) [kpc^2] for E <= E0, both in [E_min, E_max];
/// E0 = +INFINITY (as crk_transport_initial_energy reports it) gives +INFINITY, so that the
/// Green's function of such a source vanishes. Output may coincide with an input.
///
/// Errors (nothing is written): CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (NaN,
/// non-positive); CRK_ERR_OUT_OF_DOMAIN (outside the table, or E0 < E).
///
/// # Safety
/// `tr` must be a live handle; the arrays must hold `n` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_transport_loss_length2(
    tr: *const crk_transport,
    energy_GeV: *const f64,
    initial_energy_GeV: *const f64,
    n: usize,
    l2_kpc2: *mut f64,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        two_in_one_out(
            tr,
            (energy_GeV, "energy_GeV"),
            (initial_energy_GeV, "initial_energy_GeV"),
            n,
            (l2_kpc2, "l2_kpc2"),
            Transport::loss_lengths2,
        )
    }
}

/// Loss time tau(E, E0) = T(E) - T(E0) [Myr] for E <= E0, both in [E_min, E_max];
/// E0 = +INFINITY gives +INFINITY. Output may coincide with an input.
///
/// Errors: as crk_transport_loss_length2.
///
/// # Safety
/// `tr` must be a live handle; the arrays must hold `n` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_transport_loss_time(
    tr: *const crk_transport,
    energy_GeV: *const f64,
    initial_energy_GeV: *const f64,
    n: usize,
    tau_Myr: *mut f64,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        two_in_one_out(
            tr,
            (energy_GeV, "energy_GeV"),
            (initial_energy_GeV, "initial_energy_GeV"),
            n,
            (tau_Myr, "tau_Myr"),
            Transport::loss_times,
        )
    }
}

/// The oldest age [Myr] that still contributes at E [GeV] (in [E_min, E_max]): T(E), the age
/// at which the initial energy reaches E_max. Output may coincide with the input.
///
/// Errors (nothing is written): CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT;
/// CRK_ERR_OUT_OF_DOMAIN.
///
/// # Safety
/// `tr` must be a live handle; the arrays must hold `n` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_transport_max_age(
    tr: *const crk_transport,
    energy_GeV: *const f64,
    n: usize,
    max_age_Myr: *mut f64,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let tr = unsafe { handle(tr, "transport")? };
        // SAFETY: forwarded from the caller.
        let energy = unsafe { input_maybe_aliased(energy_GeV, n, max_age_Myr, "energy_GeV")? };
        // SAFETY: forwarded from the caller; overlap copied above.
        let out = unsafe { output(max_age_Myr, n, "max_age_Myr")? };
        tr.inner.max_ages(&energy, out)
    })
}

/// Releases a transport made by crk_transport_new; NULL is a no-op.
///
/// # Safety
/// `tr` must be NULL or a live handle not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_transport_free(tr: *mut crk_transport) {
    // SAFETY: forwarded from the caller.
    unsafe { free_handle(tr) }
}
