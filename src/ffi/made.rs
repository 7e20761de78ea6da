//! C ABI of the MADE emulator (masked autoregressive density estimator with Gaussian-mixture
//! outputs, SECRET section 3) and of the 1-D Gaussian-mixture kernels.
//!
//! Unlike the physics batch functions, n = 0 is an error here (CRK_ERR_INVALID_ARGUMENT): an
//! empty likelihood batch is almost always a bug in the caller's bookkeeping.

use core::ffi::c_char;
use std::borrow::Cow;
use std::ffi::CStr;
use std::path::Path;

use crate::emulator::{ParallelMade, load_made, save_made};
use crate::error::{Error, Result};
use crate::ffi::gpu::ordinal;
use crate::ffi::network::{CRK_ACTIVATION_ELU, CRK_ACTIVATION_LEAKY_RELU};
use crate::ffi::{crk_status, free_handle, guard, handle, input, output, prepare_handle_out, write_handle};
use crate::gpu::made::GpuMade;
use crate::nn::mixture::Mixture;
use crate::nn::{Activation, LoadOptions, Made};

/// A loaded MADE-MoG model: made by crk_made_load*, released with crk_made_free. Immutable;
/// may be shared across threads (each call uses its own working memory). The GPU functions
/// upload its weights to a device on first use there; they are freed with the handle.
pub struct crk_made {
    inner: GpuMade,
}

impl crk_made {
    /// A handle for a model made in Rust (a trainer's result).
    pub(crate) fn from_made(made: Made) -> Self {
        Self { inner: GpuMade::new(made) }
    }
}

/// Activation of an nflows model's residual blocks (one of the CRK_ACTIVATION_* constants).
pub type crk_activation = i32;
/// Take the activation from the file's metadata (ReLU, nflows' default, when absent).
pub const CRK_ACTIVATION_FROM_FILE: crk_activation = -1;
/// 1 / (1 + e^-x).
pub const CRK_ACTIVATION_SIGMOID: crk_activation = 0;
/// tanh x.
pub const CRK_ACTIVATION_TANH: crk_activation = 1;
/// max(x, 0).
pub const CRK_ACTIVATION_RELU: crk_activation = 2;

/// Settings an nflows state_dict does not record (ignored for the plain layout).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_made_load_options {
    /// CRK_ACTIVATION_*.
    pub activation: crk_activation,
    /// sigma = softplus(raw) + epsilon; 0 takes it from the file (1e-2 when absent).
    pub epsilon: f64,
    /// sbi's dummy first input: -1 from the file (absent: no), 0 no, 1 yes.
    pub sbi_dummy_input: i32,
}

fn options_from_c(options: Option<&crk_made_load_options>) -> Result<LoadOptions> {
    let Some(o) = options else { return Ok(LoadOptions::default()) };
    let activation = match o.activation {
        CRK_ACTIVATION_FROM_FILE => None,
        CRK_ACTIVATION_SIGMOID => Some(Activation::Sigmoid),
        CRK_ACTIVATION_TANH => Some(Activation::Tanh),
        CRK_ACTIVATION_RELU => Some(Activation::Relu),
        CRK_ACTIVATION_LEAKY_RELU => Some(Activation::LeakyRelu),
        CRK_ACTIVATION_ELU => Some(Activation::Elu),
        other => {
            return Err(Error::InvalidArgument(format!(
                "unknown activation {other} (CRK_ACTIVATION_FROM_FILE = -1, SIGMOID = 0, TANH = 1, RELU = 2, LEAKY_RELU = 3, ELU = 4)"
            )));
        }
    };
    let epsilon = if o.epsilon == 0.0 {
        None
    } else if o.epsilon.is_finite() && o.epsilon > 0.0 {
        Some(o.epsilon)
    } else {
        return Err(Error::InvalidArgument(format!(
            "epsilon must be 0 (from the file) or finite and > 0, got {}",
            o.epsilon
        )));
    };
    let sbi_dummy_input = match o.sbi_dummy_input {
        -1 => None,
        0 => Some(false),
        1 => Some(true),
        other => {
            return Err(Error::InvalidArgument(format!("sbi_dummy_input must be -1, 0 or 1, got {other}")));
        }
    };
    Ok(LoadOptions { activation, epsilon, sbi_dummy_input })
}

/// Loads a model from a safetensors file, in the plain `crkernels.made.v1` layout or as an
/// nflows MixtureOfGaussiansMADE / MADEMoG state_dict (see crk_made_load_with_options).
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (path not UTF-8); CRK_ERR_IO (file
/// missing or unreadable); CRK_ERR_FORMAT (corrupt or truncated file, wrong format string,
/// shapes, degrees or masks that disagree, non-finite weights; the message names the tensor).
///
/// Memory: the file's bytes while loading, and for the handle its weights (f32) with their
/// masked and packed copies; loading never allocates more than a small multiple of the file
/// size (declared sizes are checked against the data before they are used).
///
/// # Safety
/// `path` a NUL-terminated string or NULL; `out` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_load(path: *const c_char, out: *mut *mut crk_made) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe { crk_made_load_with_options(path, core::ptr::null(), out) }
}

/// crk_made_load with the settings an nflows state_dict does not record (`options` may be
/// NULL: everything from the file's metadata, else nflows' defaults ReLU, epsilon = 1e-2, no
/// dummy input).
///
/// # Safety
/// `path` a NUL-terminated string or NULL; `options` readable or NULL; `out` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_load_with_options(
    path: *const c_char,
    options: *const crk_made_load_options,
    out: *mut *mut crk_made,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { prepare_handle_out(out, "out")? };
        if path.is_null() {
            return Err(Error::NullPointer("path is NULL".into()));
        }
        // SAFETY: non-null and NUL-terminated (the caller promises).
        let path = unsafe { CStr::from_ptr(path) }
            .to_str()
            .map_err(|_| Error::InvalidArgument("path is not valid UTF-8".into()))?;
        // SAFETY: readable or NULL (the caller promises).
        let options = options_from_c(unsafe { options.as_ref() })?;
        let inner = load_made(Path::new(path), &options)?;
        // SAFETY: checked above.
        unsafe { write_handle(out, crk_made { inner: GpuMade::new(inner) }) }
    })
}

/// Loads a model from the `len` bytes of a safetensors file in memory (copied: the buffer may
/// be freed afterwards). Errors as crk_made_load.
///
/// # Safety
/// `bytes` readable for `len` bytes or NULL; `out` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_load_buffer(
    bytes: *const u8,
    len: usize,
    out: *mut *mut crk_made,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe { crk_made_load_buffer_with_options(bytes, len, core::ptr::null(), out) }
}

/// crk_made_load_buffer with nflows settings (see crk_made_load_with_options).
///
/// # Safety
/// `bytes` readable for `len` bytes or NULL; `options` readable or NULL; `out` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_load_buffer_with_options(
    bytes: *const u8,
    len: usize,
    options: *const crk_made_load_options,
    out: *mut *mut crk_made,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { prepare_handle_out(out, "out")? };
        if bytes.is_null() {
            return Err(Error::NullPointer("bytes is NULL".into()));
        }
        // SAFETY: forwarded from the caller.
        let data = unsafe { input(bytes, len, "bytes")? };
        // SAFETY: readable or NULL (the caller promises).
        let options = options_from_c(unsafe { options.as_ref() })?;
        let inner = Made::from_safetensors(data, &options)?;
        // SAFETY: checked above.
        unsafe { write_handle(out, crk_made { inner: GpuMade::new(inner) }) }
    })
}

/// Saves a model as a safetensors file in the plain `crkernels.made.v1` layout, the layout
/// crk_made_load reads back (the same model bit for bit: log-densities and samples). The file
/// is written to a temporary file in the same directory and renamed over `path`, so a reader
/// never sees a half-written file.
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (path not UTF-8, or a model the plain
/// layout cannot hold: an nflows model with residual blocks, batch norm or softplus scales);
/// CRK_ERR_IO (the file cannot be written: a directory, a missing directory, no permission).
///
/// # Safety
/// `m` a live handle or NULL; `path` a NUL-terminated string or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_save(m: *const crk_made, path: *const c_char) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let made = &unsafe { handle(m, "m")? }.inner;
        if path.is_null() {
            return Err(Error::NullPointer("path is NULL".into()));
        }
        // SAFETY: non-null and NUL-terminated (the caller promises).
        let path = unsafe { CStr::from_ptr(path) }
            .to_str()
            .map_err(|_| Error::InvalidArgument("path is not valid UTF-8".into()))?;
        save_made(made.made(), Path::new(path))
    })
}

/// Working memory of one thread running crk_made_log_prob or crk_made_sample, in bytes,
/// whatever the batch: 4 x 16 (sum over the layers of (C + units) + 3 D K) + 8 (4 K + 16 K)
/// + 8 x layers (rows run in tiles of 16).
///
/// Errors: CRK_ERR_NULL_POINTER.
///
/// # Safety
/// `m` a live handle or NULL; `bytes` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_workspace_bytes(m: *const crk_made, bytes: *mut usize) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let made = &unsafe { handle(m, "m")? }.inner;
        // SAFETY: NULL or writable (the caller promises).
        let slot = unsafe { bytes.as_mut() }.ok_or_else(|| Error::NullPointer("bytes is NULL".into()))?;
        *slot = made.workspace_bytes();
        Ok(())
    })
}

/// The model's sizes: context inputs C, data dimensions D, mixture components K (any out
/// pointer may be NULL).
///
/// # Safety
/// `m` a live handle or NULL; each out-pointer writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_dims(
    m: *const crk_made,
    n_context: *mut usize,
    n_dims: *mut usize,
    n_components: *mut usize,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let made = &unsafe { handle(m, "m")? }.inner;
        for (ptr, value) in
            [(n_context, made.n_context()), (n_dims, made.n_dims()), (n_components, made.n_components())]
        {
            // SAFETY: writable or NULL (the caller promises).
            if let Some(slot) = unsafe { ptr.as_mut() } {
                *slot = value;
            }
        }
        Ok(())
    })
}

/// The autoregressive order: `order[t]` is the data dimension drawn t-th (increasing degree);
/// `order` has n_dims entries. crk_made_sample_given fixes a leading part of this order.
///
/// # Safety
/// `m` a live handle or NULL; `order` writable for n_dims values or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_order(m: *const crk_made, order: *mut usize) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let made = &unsafe { handle(m, "m")? }.inner;
        // SAFETY: forwarded from the caller.
        let out = unsafe { output(order, made.n_dims(), "order")? };
        out.copy_from_slice(made.order());
        Ok(())
    })
}

/// Borrows an input of `n` values, or copies it when its bytes overlap the `n_out` values of
/// `out` (so that no Rust reference aliases the output).
///
/// # Safety
/// As [`input`].
unsafe fn input_apart<'a, T: Copy>(
    ptr: *const T,
    n: usize,
    out: *const T,
    n_out: usize,
    name: &str,
) -> Result<Cow<'a, [T]>> {
    // SAFETY: forwarded from the caller.
    let slice = unsafe { input(ptr, n, name)? };
    let bytes = |count: usize| count.saturating_mul(size_of::<T>());
    let (a, b) = (ptr as usize, out as usize);
    let apart =
        n == 0 || n_out == 0 || a.saturating_add(bytes(n)) <= b || b.saturating_add(bytes(n_out)) <= a;
    Ok(if apart { Cow::Borrowed(slice) } else { Cow::Owned(slice.to_vec()) })
}

/// Element count n x width, or an error.
fn count(n: usize, width: usize, name: &str) -> Result<usize> {
    n.checked_mul(width).ok_or_else(|| Error::InvalidArgument(format!("{name}: n = {n} is too large")))
}

/// first_row + n fits in 64 bits (as first_realisation + n_realisations must for
/// crk_ensemble_run), or an error.
fn check_rows(first_row: u64, n: usize) -> Result<()> {
    if first_row.checked_add(n as u64).is_none() {
        return Err(Error::InvalidArgument(format!(
            "first_row + n overflows 64 bits: first_row = {first_row}, n = {n}"
        )));
    }
    Ok(())
}

/// log p(x | context) for n rows, in the user's (unstandardised) space, the Jacobian of the
/// model's standardisation included; on `n_threads` threads (0: all cores), with results that
/// do not depend on the thread count. context: [n][n_context] (may be NULL when n_context = 0);
/// x: [n][n_dims]; log_prob: [n]. Values never NaN: clamped to [-FLT_MAX, FLT_MAX].
///
/// Errors (nothing written): CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (n = 0, NaN or
/// infinite input, naming the row and column); CRK_ERR_OUT_OF_DOMAIN (an input so large that
/// the f32 network overflows; log_prob is then filled with NaN).
///
/// Memory: per thread, crk_made_workspace_bytes (rows run in tiles of 16), whatever n; an
/// input array that overlaps log_prob is copied first (4 n C or 4 n D bytes).
///
/// # Safety
/// `m` a live handle or NULL; arrays of the given sizes or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_log_prob(
    m: *const crk_made,
    context: *const f32,
    x: *const f32,
    n: usize,
    n_threads: usize,
    log_prob: *mut f32,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let made = &unsafe { handle(m, "m")? }.inner;
        if n == 0 {
            return Err(Error::InvalidArgument("n = 0: the batch is empty".into()));
        }
        let (n_c, n_x) = (count(n, made.n_context(), "context")?, count(n, made.n_dims(), "x")?);
        // SAFETY: forwarded from the caller; copied where they overlap log_prob.
        let context = unsafe { input_apart(context, n_c, log_prob, n, "context")? };
        // SAFETY: as above.
        let x = unsafe { input_apart(x, n_x, log_prob, n, "x")? };
        // SAFETY: forwarded from the caller; no input borrowed above overlaps it.
        let out = unsafe { output(log_prob, n, "log_prob")? };
        made.log_prob_parallel(&context, &x, n_threads, out)
    })
}

/// log p(x | context) and its gradients with respect to the context and to x, in the user's
/// (unstandardised) units, for n rows, on `n_threads` threads (0: all cores), with results
/// that do not depend on the thread count. context: [n][n_context] (may be NULL when
/// n_context = 0); x: [n][n_dims]; log_prob: [n], the same values as crk_made_log_prob;
/// grad_context: [n][n_context], d log p / d context; grad_x: [n][n_dims], d log p / d x (the
/// standardisation's chain rule included). Each output may be NULL (not computed). The
/// gradients come from an f64 back-propagation through the network (weights as stored),
/// accurate to about 1e-7 relative to max(1, |g|) against a float64 reference.
///
/// Errors (nothing written): CRK_ERR_NULL_POINTER (m or x NULL, context NULL with
/// n_context > 0); CRK_ERR_INVALID_ARGUMENT (n = 0, NaN or infinite input, naming the row and
/// column). CRK_ERR_OUT_OF_DOMAIN: with log_prob requested, an input so large that the f32
/// network overflows (as crk_made_log_prob); or a gradient that is not finite or beyond
/// FLT_MAX; every non-NULL output is then filled with NaN.
///
/// Memory: per thread, crk_made_workspace_bytes when log_prob is requested, and about
/// 8 x (2 (C + sum of units + 3 D K) + the weights of the network) bytes for the gradients
/// (an f64 accumulator per weight is part of the workspace), whatever n; the inputs are copied
/// first (4 n (C + D) bytes).
///
/// # Safety
/// `m` a live handle or NULL; arrays of the given sizes or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_log_prob_grad(
    m: *const crk_made,
    context: *const f32,
    x: *const f32,
    n: usize,
    n_threads: usize,
    log_prob: *mut f32,
    grad_context: *mut f32,
    grad_x: *mut f32,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let made = &unsafe { handle(m, "m")? }.inner;
        if n == 0 {
            return Err(Error::InvalidArgument("n = 0: the batch is empty".into()));
        }
        if x.is_null() {
            return Err(Error::NullPointer("x is NULL".into()));
        }
        let (n_c, n_x) = (count(n, made.n_context(), "context")?, count(n, made.n_dims(), "x")?);
        // Inputs are copied when they overlap any output (so no reference aliases one).
        let owned = |ptr: *const f32, len: usize, name: &str| -> Result<Vec<f32>> {
            // SAFETY: forwarded from the caller.
            Ok(unsafe { input(ptr, len, name)? }.to_vec())
        };
        let context = owned(context, n_c, "context")?;
        let x = owned(x, n_x, "x")?;
        // SAFETY: NULL or writable for the given sizes (the caller promises); the inputs are
        // copies, and distinct outputs do not overlap (the caller promises).
        let log_prob =
            if log_prob.is_null() { None } else { Some(unsafe { output(log_prob, n, "log_prob")? }) };
        let grad_context = if grad_context.is_null() || n_c == 0 {
            None
        } else {
            // SAFETY: as above.
            Some(unsafe { output(grad_context, n_c, "grad_context")? })
        };
        // SAFETY: as above.
        let grad_x = if grad_x.is_null() { None } else { Some(unsafe { output(grad_x, n_x, "grad_x")? }) };
        made.log_prob_grad_parallel(&context, &x, n_threads, log_prob, grad_context, grad_x)
    })
}

/// Draws n samples, sample i conditioned on context row i and drawn from the Philox stream
/// (seed, i): the same on any thread count. context: [n][n_context] (may be NULL when
/// n_context = 0); x_out: [n][n_dims], in the user's space. Equals crk_made_sample_from with
/// first_row = 0.
///
/// Errors (nothing written): CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (n = 0, NaN or
/// infinite context).
///
/// Memory: per thread, crk_made_workspace_bytes (rows run in tiles of 16), whatever n; a
/// context that overlaps x_out is copied first (4 n C bytes).
///
/// # Safety
/// `m` a live handle or NULL; arrays of the given sizes or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_sample(
    m: *const crk_made,
    context: *const f32,
    n: usize,
    seed: u64,
    n_threads: usize,
    x_out: *mut f32,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe { crk_made_sample_from(m, context, n, seed, 0, n_threads, x_out) }
}

/// crk_made_sample for rows first_row .. first_row + n - 1 of the sample with this seed: row
/// i of the output is drawn from the Philox stream (seed, first_row + i), so a sample split
/// into calls with consecutive first_row equals one call, bit for bit (rows can be shared out
/// across calls, jobs or MPI ranks, as crk_ensemble_run's first_realisation). Row i is
/// conditioned on context row i of this call.
///
/// Errors (nothing written): as crk_made_sample, and CRK_ERR_INVALID_ARGUMENT when
/// first_row + n > UINT64_MAX.
///
/// Memory: as crk_made_sample.
///
/// # Safety
/// `m` a live handle or NULL; arrays of the given sizes or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_sample_from(
    m: *const crk_made,
    context: *const f32,
    n: usize,
    seed: u64,
    first_row: u64,
    n_threads: usize,
    x_out: *mut f32,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let made = &unsafe { handle(m, "m")? }.inner;
        if n == 0 {
            return Err(Error::InvalidArgument("n = 0: the batch is empty".into()));
        }
        check_rows(first_row, n)?;
        // SAFETY: forwarded from the caller.
        let context = unsafe { input(context, count(n, made.n_context(), "context")?, "context")? }.to_vec();
        // SAFETY: forwarded from the caller; the context was copied, so x_out may overlap it.
        let out = unsafe { output(x_out, count(n, made.n_dims(), "x_out")?, "x_out")? };
        made.sample_parallel(&context, seed, first_row, n_threads, out)
    })
}

/// Conditional sampling: the `n_given` dimensions listed in `given_dims` (which must be the
/// first n_given of crk_made_order, in any order) keep the values in `x`; the others are
/// drawn from p(rest | given, context) and written into `x` ([n][n_dims], in/out). Sample i
/// draws from the Philox stream (seed, i). Equals crk_made_sample_given_from with
/// first_row = 0.
///
/// Errors (x unchanged): CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (n = 0, dimensions that
/// do not lead the order, NaN or infinite given values or context).
///
/// Memory: copies of the context and of x (4 n (C + D) bytes), plus crk_made_workspace_bytes
/// per thread.
///
/// # Safety
/// `m` a live handle or NULL; arrays of the given sizes or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_sample_given(
    m: *const crk_made,
    context: *const f32,
    given_dims: *const usize,
    n_given: usize,
    n: usize,
    seed: u64,
    n_threads: usize,
    x: *mut f32,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe { crk_made_sample_given_from(m, context, given_dims, n_given, n, seed, 0, n_threads, x) }
}

/// crk_made_sample_given for rows first_row .. first_row + n - 1 of the sample with this
/// seed: row i of the output is drawn from the Philox stream (seed, first_row + i), so a
/// sample split into calls with consecutive first_row equals one call, bit for bit. Row i
/// is conditioned on context row i and on the given values of row i of `x` of this call.
///
/// Errors (x unchanged): as crk_made_sample_given, and CRK_ERR_INVALID_ARGUMENT when
/// first_row + n > UINT64_MAX.
///
/// Memory: as crk_made_sample_given.
///
/// # Safety
/// `m` a live handle or NULL; arrays of the given sizes or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_sample_given_from(
    m: *const crk_made,
    context: *const f32,
    given_dims: *const usize,
    n_given: usize,
    n: usize,
    seed: u64,
    first_row: u64,
    n_threads: usize,
    x: *mut f32,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let made = &unsafe { handle(m, "m")? }.inner;
        if n == 0 {
            return Err(Error::InvalidArgument("n = 0: the batch is empty".into()));
        }
        check_rows(first_row, n)?;
        // SAFETY: forwarded from the caller.
        let context = unsafe { input(context, count(n, made.n_context(), "context")?, "context")? }.to_vec();
        // SAFETY: forwarded from the caller.
        let given = unsafe { input(given_dims, n_given, "given_dims")? }.to_vec();
        // SAFETY: forwarded from the caller; the inputs were copied.
        let x = unsafe { output(x, count(n, made.n_dims(), "x")?, "x")? };
        made.sample_given_parallel(&context, &given, seed, first_row, n_threads, x)
    })
}

/// crk_made_log_prob on GPU `device` (0, 1, ...; see crk_device_count), with host arrays:
/// the same arguments and results (to 1e-5 relative) without n_threads. Batches of any n run
/// in chunks that fit the device's free memory.
///
/// Errors (nothing written): as crk_made_log_prob, checked before the device is used;
/// CRK_ERR_NO_DEVICE (a library built without the `cuda` feature, no CUDA driver, or no
/// device `device`); CRK_ERR_DEVICE (a driver error, or out of device memory even for the
/// smallest chunk; the message says which).
///
/// # Safety
/// `m` a live handle or NULL; arrays of the given sizes or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_log_prob_gpu(
    m: *const crk_made,
    device: i32,
    context: *const f32,
    x: *const f32,
    n: usize,
    log_prob: *mut f32,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let made = &unsafe { handle(m, "m")? }.inner;
        if n == 0 {
            return Err(Error::InvalidArgument("n = 0: the batch is empty".into()));
        }
        let (n_c, n_x) = (count(n, made.n_context(), "context")?, count(n, made.n_dims(), "x")?);
        // SAFETY: forwarded from the caller; copied where they overlap log_prob.
        let context = unsafe { input_apart(context, n_c, log_prob, n, "context")? };
        // SAFETY: as above.
        let x = unsafe { input_apart(x, n_x, log_prob, n, "x")? };
        // SAFETY: forwarded from the caller; no input borrowed above overlaps it.
        let out = unsafe { output(log_prob, n, "log_prob")? };
        made.log_prob(ordinal(device)?, &context, &x, out)
    })
}

/// crk_made_sample on GPU `device`, with host arrays: the same samples as the CPU (to 1e-5)
/// for the same seed, without n_threads. Errors as crk_made_sample, and CRK_ERR_NO_DEVICE and
/// CRK_ERR_DEVICE as crk_made_log_prob_gpu. Equals crk_made_sample_gpu_from with
/// first_row = 0.
///
/// # Safety
/// `m` a live handle or NULL; arrays of the given sizes or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_sample_gpu(
    m: *const crk_made,
    device: i32,
    context: *const f32,
    n: usize,
    seed: u64,
    x_out: *mut f32,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe { crk_made_sample_gpu_from(m, device, context, n, seed, 0, x_out) }
}

/// crk_made_sample_from on GPU `device`, with host arrays, without n_threads: row i of the
/// output is drawn from the Philox stream (seed, first_row + i), so a sample split into calls
/// with consecutive first_row equals one call (and the CPU's rows, to 1e-5). Errors as
/// crk_made_sample_from, and CRK_ERR_NO_DEVICE and CRK_ERR_DEVICE as crk_made_log_prob_gpu.
///
/// # Safety
/// `m` a live handle or NULL; arrays of the given sizes or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_sample_gpu_from(
    m: *const crk_made,
    device: i32,
    context: *const f32,
    n: usize,
    seed: u64,
    first_row: u64,
    x_out: *mut f32,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let made = &unsafe { handle(m, "m")? }.inner;
        if n == 0 {
            return Err(Error::InvalidArgument("n = 0: the batch is empty".into()));
        }
        check_rows(first_row, n)?;
        // SAFETY: forwarded from the caller.
        let context = unsafe { input(context, count(n, made.n_context(), "context")?, "context")? }.to_vec();
        // SAFETY: forwarded from the caller; the context was copied, so x_out may overlap it.
        let out = unsafe { output(x_out, count(n, made.n_dims(), "x_out")?, "x_out")? };
        made.sample(ordinal(device)?, &context, seed, first_row, out)
    })
}

/// crk_made_sample_given on GPU `device`, with host arrays, without n_threads. Errors as
/// crk_made_sample_given, and CRK_ERR_NO_DEVICE and CRK_ERR_DEVICE as crk_made_log_prob_gpu.
/// Equals crk_made_sample_given_gpu_from with first_row = 0.
///
/// # Safety
/// `m` a live handle or NULL; arrays of the given sizes or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_sample_given_gpu(
    m: *const crk_made,
    device: i32,
    context: *const f32,
    given_dims: *const usize,
    n_given: usize,
    n: usize,
    seed: u64,
    x: *mut f32,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe { crk_made_sample_given_gpu_from(m, device, context, given_dims, n_given, n, seed, 0, x) }
}

/// crk_made_sample_given_from on GPU `device`, with host arrays, without n_threads: row i of
/// the output is drawn from the Philox stream (seed, first_row + i), so a sample split into
/// calls with consecutive first_row equals one call. Errors as crk_made_sample_given_from,
/// and CRK_ERR_NO_DEVICE and CRK_ERR_DEVICE as crk_made_log_prob_gpu.
///
/// # Safety
/// `m` a live handle or NULL; arrays of the given sizes or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_sample_given_gpu_from(
    m: *const crk_made,
    device: i32,
    context: *const f32,
    given_dims: *const usize,
    n_given: usize,
    n: usize,
    seed: u64,
    first_row: u64,
    x: *mut f32,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let made = &unsafe { handle(m, "m")? }.inner;
        if n == 0 {
            return Err(Error::InvalidArgument("n = 0: the batch is empty".into()));
        }
        check_rows(first_row, n)?;
        // SAFETY: forwarded from the caller.
        let context = unsafe { input(context, count(n, made.n_context(), "context")?, "context")? }.to_vec();
        // SAFETY: forwarded from the caller.
        let given = unsafe { input(given_dims, n_given, "given_dims")? }.to_vec();
        // SAFETY: forwarded from the caller; the inputs were copied.
        let x = unsafe { output(x, count(n, made.n_dims(), "x")?, "x")? };
        made.sample_given(ordinal(device)?, &context, &given, seed, first_row, x)
    })
}

/// crk_made_log_prob_gpu for data already on the device: `context` ([n][n_context] f32; may
/// be NULL when n_context = 0), `x` ([n][n_dims] f32) and `log_prob` ([n] f32) are DEVICE
/// pointers into memory of GPU `device` (cudaMalloc'd in its primary context, as the CUDA
/// runtime does). The inputs are checked for NaN and infinities on the device first. The call
/// returns when log_prob is written (the device is synchronised).
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (n = 0, a pointer not aligned for
/// float, NaN or infinite input, naming the row and column; nothing written);
/// CRK_ERR_OUT_OF_DOMAIN (as crk_made_log_prob: log_prob filled with NaN); CRK_ERR_NO_DEVICE;
/// CRK_ERR_DEVICE.
///
/// # Safety
/// `m` a live handle or NULL; the device pointers NULL or valid on `device` for the sizes
/// given, `log_prob` apart from the inputs. A pointer that is not device memory of `device`
/// makes the device fail (an illegal address, CRK_ERR_DEVICE), which spoils its context for
/// the rest of the process.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_log_prob_gpu_device(
    m: *const crk_made,
    device: i32,
    context: *const f32,
    x: *const f32,
    n: usize,
    log_prob: *mut f32,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let made = &unsafe { handle(m, "m")? }.inner;
        // SAFETY: forwarded from the caller (device addresses, never dereferenced here).
        unsafe { made.log_prob_device(ordinal(device)?, context as u64, x as u64, n, log_prob as u64) }
    })
}

/// crk_made_sample_gpu for data on the device: `context` ([n][n_context] f32; may be NULL
/// when n_context = 0) and `x_out` ([n][n_dims] f32) are DEVICE pointers of GPU `device`, as
/// in crk_made_log_prob_gpu_device. Returns when x_out is written.
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (n = 0, misaligned pointers, NaN or
/// infinite context; nothing written); CRK_ERR_NO_DEVICE; CRK_ERR_DEVICE. Equals
/// crk_made_sample_gpu_device_from with first_row = 0.
///
/// # Safety
/// As crk_made_log_prob_gpu_device.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_sample_gpu_device(
    m: *const crk_made,
    device: i32,
    context: *const f32,
    n: usize,
    seed: u64,
    x_out: *mut f32,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe { crk_made_sample_gpu_device_from(m, device, context, n, seed, 0, x_out) }
}

/// crk_made_sample_gpu_device for rows first_row .. first_row + n - 1: row i of the output is
/// drawn from the Philox stream (seed, first_row + i), so a sample split into calls with
/// consecutive first_row equals one call. Errors as crk_made_sample_gpu_device, and
/// CRK_ERR_INVALID_ARGUMENT when first_row + n > UINT64_MAX.
///
/// # Safety
/// As crk_made_log_prob_gpu_device.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_sample_gpu_device_from(
    m: *const crk_made,
    device: i32,
    context: *const f32,
    n: usize,
    seed: u64,
    first_row: u64,
    x_out: *mut f32,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let made = &unsafe { handle(m, "m")? }.inner;
        check_rows(first_row, n)?;
        // SAFETY: forwarded from the caller (device addresses, never dereferenced here).
        unsafe { made.sample_device(ordinal(device)?, context as u64, n, seed, first_row, x_out as u64) }
    })
}

/// Releases a model; NULL is a no-op.
///
/// # Safety
/// `m` NULL or a live handle, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_free(m: *mut crk_made) {
    // SAFETY: forwarded from the caller.
    unsafe { free_handle(m) }
}

/// Borrows a mixture's K parameters (logits, means, ln sigma; pi = softmax(logits)).
///
/// # Safety
/// Each pointer readable for `k` values or NULL.
unsafe fn mixture_from_c(
    logits: *const f64,
    means: *const f64,
    log_scales: *const f64,
    k: usize,
) -> Result<[Vec<f64>; 3]> {
    if k == 0 {
        return Err(Error::InvalidArgument("k = 0: a mixture needs a component".into()));
    }
    // SAFETY: forwarded from the caller; copied, so that the output may overlap them.
    let parameters = unsafe {
        [
            input(logits, k, "logits")?.to_vec(),
            input(means, k, "means")?.to_vec(),
            input(log_scales, k, "log_scales")?.to_vec(),
        ]
    };
    Mixture::new(&parameters[0], &parameters[1], &parameters[2])?;
    Ok(parameters)
}

/// Runs a mixture batch kernel over `n` inputs.
///
/// # Safety
/// As the public mixture functions.
#[allow(clippy::too_many_arguments)]
unsafe fn mixture_batch(
    logits: *const f64,
    means: *const f64,
    log_scales: *const f64,
    k: usize,
    values: *const f64,
    values_name: &str,
    n: usize,
    out: *mut f64,
    kernel: fn(&Mixture<'_>, &[f64], &mut [f64]) -> Result<()>,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let [l, m, s] = unsafe { mixture_from_c(logits, means, log_scales, k)? };
        let mixture = Mixture::new(&l, &m, &s)?;
        if n == 0 {
            return Err(Error::InvalidArgument("n = 0: the batch is empty".into()));
        }
        // SAFETY: forwarded from the caller; copied so that out may alias the input.
        let values = unsafe { input(values, n, values_name)? }.to_vec();
        // SAFETY: forwarded from the caller.
        let out = unsafe { output(out, n, "out")? };
        kernel(&mixture, &values, out)
    })
}

/// ln p(x_i) of the 1-D Gaussian mixture p(x) = sum_k softmax(logits)_k N(x; means_k,
/// exp(log_scales_k)^2), for n values x (stable log-sum-exp: finite far in the tails).
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (k = 0, n = 0, NaN parameters or x).
///
/// # Safety
/// Parameter arrays readable for k values, x for n, out writable for n.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_mixture_log_pdf(
    logits: *const f64,
    means: *const f64,
    log_scales: *const f64,
    k: usize,
    x: *const f64,
    n: usize,
    out: *mut f64,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe { mixture_batch(logits, means, log_scales, k, x, "x", n, out, |m, v, o| m.log_pdf_batch(v, o)) }
}

/// P(X <= x_i) of the mixture (see crk_mixture_log_pdf). Errors as crk_mixture_log_pdf.
///
/// # Safety
/// As crk_mixture_log_pdf.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_mixture_cdf(
    logits: *const f64,
    means: *const f64,
    log_scales: *const f64,
    k: usize,
    x: *const f64,
    n: usize,
    out: *mut f64,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe { mixture_batch(logits, means, log_scales, k, x, "x", n, out, |m, v, o| m.cdf_batch(v, o)) }
}

/// The p_i-quantiles of the mixture (see crk_mixture_log_pdf), p_i in (0, 1). Errors as
/// crk_mixture_log_pdf, and for p outside (0, 1).
///
/// # Safety
/// As crk_mixture_log_pdf.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_mixture_quantile(
    logits: *const f64,
    means: *const f64,
    log_scales: *const f64,
    k: usize,
    p: *const f64,
    n: usize,
    out: *mut f64,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe { mixture_batch(logits, means, log_scales, k, p, "p", n, out, |m, v, o| m.quantile_batch(v, o)) }
}

/// n draws of the mixture (see crk_mixture_log_pdf): draw i from the Philox stream
/// (seed, first_sample + i), one uniform for the component and one normal for the value.
/// Errors as crk_mixture_log_pdf.
///
/// # Safety
/// Parameter arrays readable for k values, out writable for n.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_mixture_sample(
    logits: *const f64,
    means: *const f64,
    log_scales: *const f64,
    k: usize,
    seed: u64,
    first_sample: u64,
    n: usize,
    out: *mut f64,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let [l, m, s] = unsafe { mixture_from_c(logits, means, log_scales, k)? };
        let mixture = Mixture::new(&l, &m, &s)?;
        if n == 0 {
            return Err(Error::InvalidArgument("n = 0: the batch is empty".into()));
        }
        // SAFETY: forwarded from the caller.
        let out = unsafe { output(out, n, "out")? };
        mixture.sample_batch(seed, first_sample, out)
    })
}
