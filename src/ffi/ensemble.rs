//! C ABI of the source summation and the stochastic ensemble.

use core::ffi::c_void;

use crate::error::{Error, Result};
use crate::ffi::transport::crk_transport;
use crate::ffi::{crk_status, free_handle, guard, handle, input, output, prepare_handle_out, write_handle};
use crate::gpu::ensemble::GpuEnsemble;
use crate::parallel::{ParallelEnsemble, Progress};
use crate::physics::ensemble::{Ensemble, EnsembleParams, Precision};
use crate::physics::green::{SourceSpectrum, flux_from_sources};
use crate::physics::sources::SpatialModel;

/// A source spectrum Q(E) = q* (E / 1 GeV)^-gamma exp(-E / E_cut) [GeV^-1] of one burst-like
/// source; cutoff_GeV = INFINITY means no cut-off.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_source_spectrum {
    /// Normalisation q* [GeV^-1].
    pub q_star_per_GeV: f64,
    /// Spectral index gamma.
    pub gamma: f64,
    /// Cut-off energy E_cut [GeV].
    pub cutoff_GeV: f64,
}

/// Spatial distribution of the sources (one of the CRK_SPATIAL_* constants).
pub type crk_spatial_model = i32;
/// Uniform disc of radius s_max around the observer, p(s) = 2 s / s_max^2.
pub const CRK_SPATIAL_UNIFORM_DISC: crk_spatial_model = 0;
/// Case & Bhattacharya (1998) radial surface density around an observer at 7.9 kpc.
pub const CRK_SPATIAL_RADIAL_CB98: crk_spatial_model = 1;
/// The four-arm spiral model of Ahlers, Mertsch & Sarkar (2009).
pub const CRK_SPATIAL_SPIRAL_ARMS: crk_spatial_model = 2;

/// Parameters of a source population (SECRET table 1).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_ensemble_params {
    /// Galactic supernova rate R_SN [1/Myr].
    pub sn_rate_per_Myr: f64,
    /// Oldest source age t_max [Myr].
    pub t_max_Myr: f64,
    /// Largest source distance s_max [kpc].
    pub s_max_kpc: f64,
    /// Spatial model (CRK_SPATIAL_*).
    pub spatial: crk_spatial_model,
    /// 0: the number of sources is fixed at R_SN t_max P(s < s_max) (the paper); 1: Poisson.
    pub poisson_count: i32,
    /// The source spectrum.
    pub spectrum: crk_source_spectrum,
}

/// Progress report of a long run: called on the calling thread about every 50 ms and at the
/// end with the realisations finished and asked for; return 0 to go on, anything else to
/// cancel (the run then returns CRK_ERR_CANCELLED).
pub type crk_progress_fn =
    Option<unsafe extern "C" fn(done: usize, total: usize, user_data: *mut c_void) -> i32>;

/// An ensemble for one transport, parameter set and energy grid (its age tables built once):
/// made by crk_ensemble_new, released with crk_ensemble_free. Immutable; may be shared across
/// threads.
pub struct crk_ensemble {
    /// The ensemble with its GPU tables (built on the first GPU call, then kept).
    inner: GpuEnsemble,
}

fn spectrum_from_c(s: &crk_source_spectrum) -> SourceSpectrum {
    SourceSpectrum { q_star_per_gev: s.q_star_per_GeV, gamma: s.gamma, cutoff_gev: s.cutoff_GeV }
}

fn params_from_c(p: &crk_ensemble_params) -> Result<EnsembleParams> {
    let spatial = match p.spatial {
        CRK_SPATIAL_UNIFORM_DISC => SpatialModel::UniformDisc,
        CRK_SPATIAL_RADIAL_CB98 => SpatialModel::RadialCaseBhattacharya,
        CRK_SPATIAL_SPIRAL_ARMS => SpatialModel::SpiralArms,
        other => {
            return Err(Error::InvalidArgument(format!(
                "unknown spatial model {other} (CRK_SPATIAL_UNIFORM_DISC = 0, CRK_SPATIAL_RADIAL_CB98 = 1, \
                 CRK_SPATIAL_SPIRAL_ARMS = 2)"
            )));
        }
    };
    let poisson_count = match p.poisson_count {
        0 => false,
        1 => true,
        other => return Err(Error::InvalidArgument(format!("poisson_count must be 0 or 1, got {other}"))),
    };
    Ok(EnsembleParams {
        sn_rate_per_myr: p.sn_rate_per_Myr,
        t_max_myr: p.t_max_Myr,
        s_max_kpc: p.s_max_kpc,
        spatial,
        poisson_count,
        spectrum: spectrum_from_c(&p.spectrum),
    })
}

/// The flux phi(E) [GeV^-1 m^-2 s^-1 sr^-1] at `n_energies` energies [GeV] of the
/// `n_sources` sources at the given distances [kpc] and ages [Myr], sources and observer in
/// the plane; every given source is summed (causal cut c t < s and E0 > E_max give zero).
///
/// Errors (nothing is written): CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (NaN or
/// negative distance or age, bad spectrum); CRK_ERR_OUT_OF_DOMAIN (energy outside the
/// transport table).
///
/// Memory: 24 bytes per source that can contribute (age in (0, max T(E)], inside the light
/// cone) + 8 n_energies bytes; time about 6 ns per (source, energy) pair.
///
/// # Safety
/// `tr` a live handle; `spectrum` readable; arrays of the given lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_flux_from_sources(
    tr: *const crk_transport,
    spectrum: *const crk_source_spectrum,
    distance_kpc: *const f64,
    age_Myr: *const f64,
    n_sources: usize,
    energy_GeV: *const f64,
    n_energies: usize,
    flux: *mut f64,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let tr = unsafe { handle(tr, "transport")? };
        // SAFETY: forwarded from the caller.
        let spectrum = unsafe { handle(spectrum, "spectrum")? };
        // SAFETY: forwarded from the caller.
        let (distance, age) = unsafe {
            (input(distance_kpc, n_sources, "distance_kpc")?, input(age_Myr, n_sources, "age_Myr")?)
        };
        // SAFETY: forwarded from the caller.
        let energy = unsafe { input(energy_GeV, n_energies, "energy_GeV")? }.to_vec();
        // SAFETY: forwarded from the caller; the energies were copied, so flux may alias them.
        let flux = unsafe { output(flux, n_energies, "flux")? };
        flux_from_sources(tr.inner(), &spectrum_from_c(spectrum), distance, age, &energy, flux)
    })
}

/// The spectrum whose source puts `energy_erg` [erg] into electrons above `energy_min_GeV`:
/// q* from W = integral_{E_min}^inf E Q(E) dE, for the given gamma and cut-off [GeV].
///
/// # Safety
/// `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_source_spectrum_from_energy(
    energy_erg: f64,
    energy_min_GeV: f64,
    gamma: f64,
    cutoff_GeV: f64,
    out: *mut crk_source_spectrum,
) -> crk_status {
    guard(|| {
        if out.is_null() {
            return Err(Error::NullPointer("out is NULL".into()));
        }
        let s = SourceSpectrum::from_energy_erg(energy_erg, energy_min_GeV, gamma, cutoff_GeV)?;
        // SAFETY: checked non-null; the caller promises it is writable.
        unsafe {
            *out = crk_source_spectrum {
                q_star_per_GeV: s.q_star_per_gev,
                gamma: s.gamma,
                cutoff_GeV: s.cutoff_gev,
            }
        };
        Ok(())
    })
}

/// Builds an ensemble: checks the parameters and the energy grid [GeV] (inside the transport
/// table) and tabulates the age profiles once, for repeated crk_ensemble_run calls.
///
/// Errors (nothing is returned): CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (as
/// crk_ensemble_generate; and the memory limits, checked before the tables are built: more
/// than 16384 energies; N_young + 8 sqrt(N_young) + 8 above 2^27 = 134217728 young sources,
/// N_young = R_SN t_max P(s < s_max) T_young / t_max the expected number of sources young
/// enough to contribute on the grid, T_young = max_i T(E_i) capped at t_max; age tables above
/// 4 GiB in all); CRK_ERR_OUT_OF_DOMAIN (energy outside the transport table).
///
/// Memory: the age tables, 10 to 50 KB an energy (at most 8192 segments of about 220 bytes);
/// the first GPU call adds 32 KB an energy and the cells' polynomials. Time: a few ms an energy.
///
/// # Safety
/// `tr` a live handle; `params` readable; `energy_GeV` holds `n_energies` values; `out`
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_ensemble_new(
    tr: *const crk_transport,
    params: *const crk_ensemble_params,
    energy_GeV: *const f64,
    n_energies: usize,
    out: *mut *mut crk_ensemble,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { prepare_handle_out(out, "out")? };
        // SAFETY: forwarded from the caller.
        let inner = unsafe { build(tr, params, energy_GeV, n_energies, Precision::Exact)? };
        // SAFETY: checked above.
        unsafe { write_handle(out, crk_ensemble { inner: GpuEnsemble::new(inner) }) }
    })
}

/// How an ensemble evaluates its per-source terms (one of the CRK_PRECISION_* constants).
pub type crk_precision = i32;
/// Binary64 throughout: each flux within 1e-12 of the direct sum over its sources (the
/// default, and what crk_ensemble_new builds).
pub const CRK_PRECISION_EXACT: crk_precision = 0;
/// The per-source terms of all but the youngest ages in binary32, accumulated in binary64:
/// each flux within 1e-5 relative of the exact tier's for the same sources (1.9e-6 in the
/// tests), for training sets and quantile bands, where realisations differ by 10% to 100%.
/// The same sources as the exact tier, and the same bits on any thread count, split and
/// instruction set. The GPU functions run it too (binary32 polynomials and the GPU's fast exp,
/// summed in binary64; within the same 1e-5 of the exact tier, the same bits on any split).
pub const CRK_PRECISION_F32: crk_precision = 1;

/// crk_ensemble_new with the per-source terms evaluated at `precision` (CRK_PRECISION_EXACT or
/// CRK_PRECISION_F32). crk_ensemble_run, crk_ensemble_sources and crk_ensemble_free work on
/// either kind of handle, and so do the GPU functions.
///
/// Errors: crk_ensemble_new's; CRK_ERR_INVALID_ARGUMENT for an unknown precision.
///
/// Memory: crk_ensemble_new's, plus about 80 bytes a segment of the age tables for
/// CRK_PRECISION_F32, and 12 more bytes per young source in each run's workspace (88 instead
/// of 76).
///
/// # Safety
/// As crk_ensemble_new.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_ensemble_new_with_precision(
    tr: *const crk_transport,
    params: *const crk_ensemble_params,
    energy_GeV: *const f64,
    n_energies: usize,
    precision: i32,
    out: *mut *mut crk_ensemble,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { prepare_handle_out(out, "out")? };
        let precision = match precision {
            CRK_PRECISION_EXACT => Precision::Exact,
            CRK_PRECISION_F32 => Precision::F32,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "precision {other} is not CRK_PRECISION_EXACT (0) or CRK_PRECISION_F32 (1)"
                )));
            }
        };
        // SAFETY: forwarded from the caller.
        let inner = unsafe { build(tr, params, energy_GeV, n_energies, precision)? };
        // SAFETY: checked above.
        unsafe { write_handle(out, crk_ensemble { inner: GpuEnsemble::new(inner) }) }
    })
}

/// # Safety
/// As crk_ensemble_new.
unsafe fn build(
    tr: *const crk_transport,
    params: *const crk_ensemble_params,
    energy_GeV: *const f64,
    n_energies: usize,
    precision: Precision,
) -> Result<Ensemble> {
    // SAFETY: forwarded from the caller.
    let tr = unsafe { handle(tr, "transport")? };
    // SAFETY: forwarded from the caller.
    let params = params_from_c(unsafe { handle(params, "params")? })?;
    // SAFETY: forwarded from the caller.
    let energy = unsafe { input(energy_GeV, n_energies, "energy_GeV")? };
    Ensemble::new_with_precision(tr.inner(), &params, energy, precision)
}

/// Runs realisations first_realisation .. first_realisation + n_realisations - 1 into `flux`
/// ([n_realisations][n_energies], row-major) on `n_threads` threads (0: all cores), calling
/// `progress` (may be NULL) with `user_data`. Results do not depend on the thread count or
/// the split into calls.
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_CANCELLED (progress asked to stop: finished rows are
/// valid, unfinished rows are NaN).
///
/// Memory: per thread, a workspace of 32 bytes (44 in the f32 tier) per young source of the
/// largest realisation it draws (N_young on average; up to twice that while it grows) + 32 KiB,
/// whatever n_realisations: about 32 (N_young + 8 sqrt(N_young)) x threads bytes. At most 1024 threads
/// run, fewer where their workspaces would pass 64 GiB together (the results do not depend on
/// it). Time: about N_young x n_energies x 10 ns per realisation.
///
/// # Safety
/// `ensemble` a live handle; `flux` holds n_realisations * n_energies values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_ensemble_run(
    ensemble: *const crk_ensemble,
    seed: u64,
    first_realisation: u64,
    n_realisations: usize,
    n_threads: usize,
    flux: *mut f64,
    progress: crk_progress_fn,
    user_data: *mut c_void,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let ensemble = unsafe { handle(ensemble, "ensemble")?.inner.ensemble() };
        // SAFETY: forwarded from the caller.
        unsafe {
            run(ensemble, seed, first_realisation, n_realisations, n_threads, flux, progress, user_data)
        }
    })
}

/// # Safety
/// As crk_ensemble_run.
#[allow(clippy::too_many_arguments)]
unsafe fn run(
    ensemble: &Ensemble,
    seed: u64,
    first_realisation: u64,
    n_realisations: usize,
    n_threads: usize,
    flux: *mut f64,
    progress: crk_progress_fn,
    user_data: *mut c_void,
) -> Result<()> {
    let n = n_realisations
        .checked_mul(ensemble.energies_gev().len())
        .ok_or_else(|| Error::InvalidArgument("n_realisations * n_energies overflows".into()))?;
    // SAFETY: forwarded from the caller.
    let flux = unsafe { output(flux, n, "flux")? };
    let mut report = |p: Progress| match progress {
        // SAFETY: the caller's callback, called on the calling thread with its user_data.
        Some(callback) => unsafe { callback(p.done, p.total, user_data) == 0 },
        None => true,
    };
    let callback: Option<&mut dyn FnMut(Progress) -> bool> =
        if progress.is_some() { Some(&mut report) } else { None };
    ensemble.generate(seed, first_realisation, n_realisations, n_threads, flux, callback)
}

/// Generates realisations first_realisation .. first_realisation + n_realisations - 1 of the
/// flux [GeV^-1 m^-2 s^-1 sr^-1] on the energy grid into `flux` ([n_realisations][n_energies]);
/// n_threads = 0 means all available cores. Builds the age tables each call: for repeated
/// calls with the same parameters use crk_ensemble_new and crk_ensemble_run.
///
/// Errors (nothing is written): CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (NaN or
/// non-positive rate, t_max, s_max; unknown spatial model; bad spectrum; the memory limits of
/// crk_ensemble_new); CRK_ERR_OUT_OF_DOMAIN (energy outside the transport table).
///
/// Memory: that of crk_ensemble_new (the age tables) plus that of crk_ensemble_run.
///
/// # Safety
/// `tr` a live handle; `params` readable; arrays of the given sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_ensemble_generate(
    tr: *const crk_transport,
    params: *const crk_ensemble_params,
    energy_GeV: *const f64,
    n_energies: usize,
    seed: u64,
    first_realisation: u64,
    n_realisations: usize,
    n_threads: usize,
    flux: *mut f64,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let ensemble = unsafe { build(tr, params, energy_GeV, n_energies, Precision::Exact)? };
        // SAFETY: forwarded from the caller.
        unsafe {
            run(
                &ensemble,
                seed,
                first_realisation,
                n_realisations,
                n_threads,
                flux,
                None,
                core::ptr::null_mut(),
            )
        }
    })
}

/// The young sources of realisation `realisation` (those that can contribute on the
/// ensemble's energy grid; older ones add exactly zero and are not drawn): distances [kpc] and
/// ages [Myr] into arrays with room for `capacity` sources, their number into `n_sources`.
/// With capacity = 0 (arrays may be NULL) it only reports the number. Feeding them to
/// crk_flux_from_sources reproduces the realisation's flux.
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (capacity too small: n_sources
/// still tells the size needed).
///
/// Memory: 16 bytes per young source drawn (N_young on average, bounded by crk_ensemble_new)
/// plus 32 KiB.
///
/// # Safety
/// `ensemble` a live handle; arrays with room for `capacity` values; `n_sources` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_ensemble_sources(
    ensemble: *const crk_ensemble,
    seed: u64,
    realisation: u64,
    distance_kpc: *mut f64,
    age_Myr: *mut f64,
    capacity: usize,
    n_sources: *mut usize,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let ensemble = unsafe { handle(ensemble, "ensemble")?.inner.ensemble() };
        if n_sources.is_null() {
            return Err(Error::NullPointer("n_sources is NULL".into()));
        }
        let sources = ensemble.sources(seed, realisation);
        let n = sources.age_myr.len();
        // SAFETY: checked non-null; the caller promises it is writable.
        unsafe { *n_sources = n };
        if capacity == 0 {
            return Ok(());
        }
        if capacity < n {
            return Err(Error::InvalidArgument(format!("capacity {capacity} is too small: {n} sources")));
        }
        // SAFETY: forwarded from the caller.
        let (d, t) = unsafe { (output(distance_kpc, n, "distance_kpc")?, output(age_Myr, n, "age_Myr")?) };
        d.copy_from_slice(&sources.distance_kpc);
        t.copy_from_slice(&sources.age_myr);
        Ok(())
    })
}

/// Releases an ensemble; NULL is a no-op.
///
/// # Safety
/// `ensemble` NULL or a live handle not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_ensemble_free(ensemble: *mut crk_ensemble) {
    // SAFETY: forwarded from the caller.
    unsafe { free_handle(ensemble) }
}

/// crk_ensemble_run on GPU `device` (no progress callback): the same realisations, to about
/// 1e-13 relative (the same sources; the sum in another order, from fitted tables where the CPU
/// uses its direct formula). The GPU tables are built on the first call (tens of ms) and kept
/// with the handle. Realisations stream through the device in chunks: any n_realisations fits.
/// A handle of the f32 tier (CRK_PRECISION_F32) runs the kernel's f32 form: within 1e-5 of the
/// exact realisations, as on the CPU, though not the CPU f32 tier's bits.
///
/// Memory: on the host, the GPU tables (about 32 KB an energy, built once) and per chunk of
/// c = min(65536, 2^24 / n_energies) realisations 40 c bytes of counts and flags; on the
/// device, the tables, 8 c n_energies bytes of flux (at most 128 MiB) and 32 bytes per source
/// of the largest realisation per block (fewer blocks where device memory is short).
///
/// Errors (nothing is written): CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT
/// (n_realisations * n_energies overflows, or first_realisation + n_realisations does);
/// CRK_ERR_NO_DEVICE (no CUDA driver, no device `device`, or a build without the `cuda` feature);
/// CRK_ERR_DEVICE (a driver error, or device memory too small even for one chunk).
///
/// # Safety
/// `ensemble` a live handle; `flux` holds n_realisations * n_energies values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_ensemble_run_gpu(
    ensemble: *const crk_ensemble,
    device: i32,
    seed: u64,
    first_realisation: u64,
    n_realisations: usize,
    flux: *mut f64,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let gpu = unsafe { &handle(ensemble, "ensemble")?.inner };
        // SAFETY: forwarded from the caller.
        unsafe { run_gpu(gpu, device, seed, first_realisation, n_realisations, flux) }
    })
}

/// crk_ensemble_run_gpu into device memory: `flux_device` is a device pointer (from cudaMalloc
/// or cuMemAlloc in the device's primary context) to n_realisations * n_energies doubles.
/// Synchronous: the values are in place when it returns.
///
/// Errors: those of crk_ensemble_run_gpu; CRK_ERR_NULL_POINTER (flux_device NULL with
/// n_realisations > 0). A pointer that is not such an allocation cannot be detected: the
/// device faults, and every later GPU call in the process returns CRK_ERR_DEVICE.
///
/// # Safety
/// `ensemble` a live handle; `flux_device` as above, not in use by other work during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_ensemble_run_gpu_device(
    ensemble: *const crk_ensemble,
    device: i32,
    seed: u64,
    first_realisation: u64,
    n_realisations: usize,
    flux_device: *mut f64,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let gpu = unsafe { &handle(ensemble, "ensemble")?.inner };
        let device = crate::ffi::gpu::ordinal(device)?;
        // SAFETY: the caller's promise on flux_device.
        unsafe { gpu.generate_device(device, seed, first_realisation, n_realisations, flux_device as u64) }
            .map(|_| ())
    })
}

/// crk_ensemble_generate on GPU `device`: the same arguments with the device ordinal in place
/// of n_threads. Builds the age and GPU tables each call: for repeated calls use
/// crk_ensemble_new and crk_ensemble_run_gpu.
///
/// Errors: those of crk_ensemble_generate and of crk_ensemble_run_gpu.
///
/// # Safety
/// `tr` a live handle; `params` readable; arrays of the given sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_ensemble_generate_gpu(
    tr: *const crk_transport,
    params: *const crk_ensemble_params,
    energy_GeV: *const f64,
    n_energies: usize,
    seed: u64,
    first_realisation: u64,
    n_realisations: usize,
    device: i32,
    flux: *mut f64,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let gpu = GpuEnsemble::new(unsafe { build(tr, params, energy_GeV, n_energies, Precision::Exact)? });
        // SAFETY: forwarded from the caller.
        unsafe { run_gpu(&gpu, device, seed, first_realisation, n_realisations, flux) }
    })
}

/// # Safety
/// As crk_ensemble_run_gpu.
unsafe fn run_gpu(
    gpu: &GpuEnsemble,
    device: i32,
    seed: u64,
    first: u64,
    n: usize,
    flux: *mut f64,
) -> Result<()> {
    let values = n
        .checked_mul(gpu.ensemble().energies_gev().len())
        .ok_or_else(|| Error::InvalidArgument("n_realisations * n_energies overflows".into()))?;
    // SAFETY: forwarded from the caller.
    let flux = unsafe { output(flux, values, "flux")? };
    gpu.generate(crate::ffi::gpu::ordinal(device)?, seed, first, n, flux).map(|_| ())
}
