//! C ABI of the ridge-regression surrogate of the likelihood and its gradient step: fit once
//! into a handle, then query predictions, gradients and steps.

use crate::error::{Error, Result};
use crate::ffi::{
    crk_status, free_handle, guard, handle, input, output, prepare_handle_out, require_out, write_handle,
    write_out,
};
use crate::stats::surrogate::{Surrogate, SurrogateOptions, Weighting, polynomial_feature_count};

/// Weighting of the points in the ridge fit (one of the CRK_WEIGHTS_* constants).
pub type crk_weighting = i32;
/// w_i = 1.
pub const CRK_WEIGHTS_NONE: crk_weighting = 0;
/// w_i = 1 / (1 + |z'_i|^2), z' the scaled coordinates relative to the start point.
pub const CRK_WEIGHTS_DISTANCE: crk_weighting = 1;
/// w_i = exp(-(y_i - y_min)), y the NLL values (the talk's e^-NLL, shifted by its minimum).
pub const CRK_WEIGHTS_EXPONENTIAL: crk_weighting = 2;
/// The caller's weights (custom_weights, n_points values, finite, >= 0).
pub const CRK_WEIGHTS_CUSTOM: crk_weighting = 3;

/// Options of crk_surrogate_fit.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_surrogate_options {
    /// The weighting scheme (CRK_WEIGHTS_*).
    pub weighting: crk_weighting,
    /// n_points weights for CRK_WEIGHTS_CUSTOM, else NULL (ignored).
    pub custom_weights: *const f64,
    /// Index of the start point; -1: the point with the lowest NLL.
    pub start_index: i64,
    /// Candidate polynomial degrees (1 to 10), n_degrees >= 1 of them.
    pub degrees: *const usize,
    /// Number of candidate degrees.
    pub n_degrees: usize,
    /// Candidate regularisations alpha (finite, > 0), n_alphas >= 1 of them.
    pub alphas: *const f64,
    /// Number of candidate alphas.
    pub n_alphas: usize,
}

/// A fitted surrogate: an opaque handle made by crk_surrogate_fit, released with
/// crk_surrogate_free. Immutable; may be shared across threads.
pub struct crk_surrogate {
    inner: Surrogate,
}

/// What was chosen and fitted.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct crk_surrogate_info {
    /// Number of parameters p.
    pub n_params: usize,
    /// Chosen polynomial degree.
    pub degree: usize,
    /// Number of coefficients (features) C(p + degree, degree) - 1.
    pub n_features: usize,
    /// Index of the start point.
    pub start_index: usize,
    /// Chosen regularisation alpha.
    pub alpha: f64,
}

/// A proposed step (the new point itself is written to an array).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct crk_surrogate_step {
    /// Step length t* along u = -g/|g| [scaled units].
    pub distance: f64,
    /// |g| at the start point [scaled NLL per scaled unit].
    pub gradient_norm: f64,
    /// The surrogate's NLL at the new point [original NLL units].
    pub predicted_nll: f64,
    /// 1 if the gradient is zero (no step proposed: the new point is the start point).
    pub zero_gradient: i32,
    /// 1 if t* is the maximum step (no minimum inside).
    pub at_max_distance: i32,
}

/// The number of polynomial features of total degree 1..degree in n_params variables,
/// C(n_params + degree, degree) - 1 (no intercept; 1329 for 18 parameters at degree 3).
/// crk_surrogate_fit accepts at most 32768 features at the largest candidate degree.
///
/// Errors: CRK_ERR_INVALID_ARGUMENT (n_params or degree 0, overflow); CRK_ERR_NULL_POINTER.
///
/// # Safety
/// `count` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_polynomial_feature_count(
    n_params: usize,
    degree: usize,
    count: *mut usize,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    guard(|| unsafe { write_out(count, polynomial_feature_count(n_params, degree)?, "count") })
}

/// Fits the ridge surrogate to n_points evaluated points `x` ([n_points][n_params],
/// row-major, original units) with NLL values `nll` (the algorithm of seed 000 as documented
/// in crkernels::stats::surrogate: standard scaling, shift to the start point, polynomial
/// features, weighted ridge, 90/10 hyper-parameter choice with validation indices i % 10 == 9,
/// refit on all points).
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (NaN values, a parameter or the NLL
/// with zero spread, fewer points than features, fewer than 10 points, bad degree or alpha,
/// unknown weighting, negative custom weights, all training weights zero, start out of range;
/// more than 32768 features F at the largest degree, e.g. 1000 parameters at degree 2 give
/// 501500, or more than 65536 candidates n_degrees x n_alphas: checked before allocating).
///
/// Runs on all cores (crk_surrogate_fit_threads chooses the number); the result is the same,
/// bit for bit, on any number of threads.
///
/// Memory, with F the features of the largest degree, n points, p parameters and k the
/// candidates factored at once (k = 1 on one thread; up to the threads and the candidates, with
/// k 8 F^2 <= 1 GiB where k > 1): (8 + 8 k) F^2 (Gram matrix and ridge systems) +
/// (6300 + 2100 k) F + 8 n (p + 6) + 24 n_degrees n_alphas bytes; at most 16 GiB +
/// 8 n (p + 6) at the feature limit, whatever n (the n x F design matrix is never held: it is
/// built 256 points at a time). Time: n F^2 / 2 multiply-adds for the Gram matrix plus
/// C^3 / 6 per (degree, alpha) candidate of C features, split over the threads. The fitted
/// handle holds 20 F + 24 p + 8 n_degrees n_alphas bytes.
///
/// # Safety
/// `x` must hold n_points * n_params values, `nll` n_points; `options` must point to a struct
/// whose arrays hold their counts; `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_surrogate_fit(
    x: *const f64,
    n_points: usize,
    n_params: usize,
    nll: *const f64,
    options: *const crk_surrogate_options,
    out: *mut *mut crk_surrogate,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    unsafe { crk_surrogate_fit_threads(x, n_points, n_params, nll, options, 0, out) }
}

/// crk_surrogate_fit on `n_threads` threads (0: all cores; 1: the calling thread only): the
/// Gram matrix in bands of rows, the (degree, alpha) candidates factored at once, the refit's
/// factorisation in bands; every number is computed by the same operations whatever thread
/// runs it, so the handle is the same, bit for bit, on any thread count. Errors and memory as
/// crk_surrogate_fit.
///
/// # Safety
/// As crk_surrogate_fit.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_surrogate_fit_threads(
    x: *const f64,
    n_points: usize,
    n_params: usize,
    nll: *const f64,
    options: *const crk_surrogate_options,
    n_threads: usize,
    out: *mut *mut crk_surrogate,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { prepare_handle_out(out, "out")? };
        // SAFETY: forwarded from the caller.
        let o = unsafe { options.as_ref() }.ok_or_else(|| Error::NullPointer("options is NULL".into()))?;
        let total = n_points
            .checked_mul(n_params)
            .ok_or_else(|| Error::InvalidArgument("n_points * n_params overflows".into()))?;
        // SAFETY: forwarded from the caller.
        let (x, y) = unsafe { (input(x, total, "x")?, input(nll, n_points, "nll")?) };
        // SAFETY: forwarded from the caller.
        let (degrees, alphas) =
            unsafe { (input(o.degrees, o.n_degrees, "degrees")?, input(o.alphas, o.n_alphas, "alphas")?) };
        let weighting = match o.weighting {
            CRK_WEIGHTS_NONE => Weighting::None,
            CRK_WEIGHTS_DISTANCE => Weighting::Distance,
            CRK_WEIGHTS_EXPONENTIAL => Weighting::Exponential,
            // SAFETY: forwarded from the caller.
            CRK_WEIGHTS_CUSTOM => {
                Weighting::Custom(unsafe { input(o.custom_weights, n_points, "custom_weights")? })
            }
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown weighting {other} (CRK_WEIGHTS_NONE = 0, DISTANCE = 1, EXPONENTIAL = 2, CUSTOM = 3)"
                )));
            }
        };
        let start = match o.start_index {
            -1 => None,
            s => Some(usize::try_from(s).map_err(|_| {
                Error::InvalidArgument(format!("start index {s} (use -1 for the lowest NLL)"))
            })?),
        };
        let options = SurrogateOptions { weighting, start, degrees, alphas };
        let inner = Surrogate::fit_threads(x, n_params, y, &options, n_threads)?;
        // SAFETY: checked above.
        unsafe { write_handle(out, crk_surrogate { inner }) }
    })
}

/// What the fit chose: degree, alpha, feature count, start index.
///
/// # Safety
/// `surrogate` must be a live handle; `info` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_surrogate_get_info(
    surrogate: *const crk_surrogate,
    info: *mut crk_surrogate_info,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let s = unsafe { handle(surrogate, "surrogate")? };
        let i = crk_surrogate_info {
            n_params: s.inner.n_params(),
            degree: s.inner.degree(),
            n_features: s.inner.coefficients().len(),
            start_index: s.inner.start_index(),
            alpha: s.inner.alpha(),
        };
        // SAFETY: forwarded from the caller.
        unsafe { write_out(info, i, "info") }
    })
}

/// Copies `values` to `out` (room for `capacity`), its length to `n`; NULL/0 only reports it.
///
/// # Safety
/// `out` must have room for `capacity` values; `n` must be writable.
unsafe fn copy_out(values: &[f64], out: *mut f64, capacity: usize, n: *mut usize, name: &str) -> Result<()> {
    // SAFETY: forwarded from the caller.
    unsafe { write_out(n, values.len(), "n")? };
    if out.is_null() && capacity == 0 {
        return Ok(());
    }
    // SAFETY: forwarded from the caller.
    let out = unsafe { output(out, capacity, name)? };
    if capacity < values.len() {
        return Err(Error::InvalidArgument(format!(
            "capacity {capacity} is too small: need {}",
            values.len()
        )));
    }
    out[..values.len()].copy_from_slice(values);
    Ok(())
}

/// The ridge coefficients (scaled units, sklearn PolynomialFeatures order) into `coefficients`
/// (room for `capacity`) and their number into `n`; coefficients = NULL, capacity = 0 only
/// reports the number.
///
/// # Safety
/// `surrogate` must be a live handle; `coefficients` must have room for `capacity`; `n` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_surrogate_coefficients(
    surrogate: *const crk_surrogate,
    coefficients: *mut f64,
    capacity: usize,
    n: *mut usize,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let s = unsafe { handle(surrogate, "surrogate")? };
        // SAFETY: forwarded from the caller.
        unsafe { copy_out(s.inner.coefficients(), coefficients, capacity, n, "coefficients") }
    })
}

/// The validation mean squared errors of every candidate, [degree index][alpha index] in the
/// order of the options, into `scores` (room for `capacity`); their number into `n`.
///
/// # Safety
/// As crk_surrogate_coefficients.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_surrogate_validation_scores(
    surrogate: *const crk_surrogate,
    scores: *mut f64,
    capacity: usize,
    n: *mut usize,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let s = unsafe { handle(surrogate, "surrogate")? };
        // SAFETY: forwarded from the caller.
        unsafe { copy_out(s.inner.validation_scores(), scores, capacity, n, "scores") }
    })
}

/// The surrogate's NLL [original units] at n_points points `x` ([n_points][n_params]).
/// Memory: 8 (F + p) bytes, F the handle's feature count, whatever n_points.
///
/// # Safety
/// `surrogate` must be a live handle; `x` must hold n_points * n_params values, `nll` n_points.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_surrogate_predict(
    surrogate: *const crk_surrogate,
    x: *const f64,
    n_points: usize,
    nll: *mut f64,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let s = unsafe { handle(surrogate, "surrogate")? };
        let total = n_points
            .checked_mul(s.inner.n_params())
            .ok_or_else(|| Error::InvalidArgument("n_points * n_params overflows".into()))?;
        // SAFETY: forwarded from the caller.
        let x = unsafe { input(x, total, "x")? };
        // SAFETY: forwarded from the caller.
        let out = unsafe { output(nll, n_points, "nll")? };
        s.inner.predict(x, out)
    })
}

/// The gradient dNLL/dx [NLL per original unit] of the surrogate at one point x (n_params
/// values), analytic. Memory: 8 (2 F + 2 p) bytes; time F p.
///
/// # Safety
/// `surrogate` must be a live handle; `x` and `gradient` must hold n_params values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_surrogate_gradient(
    surrogate: *const crk_surrogate,
    x: *const f64,
    gradient: *mut f64,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let s = unsafe { handle(surrogate, "surrogate")? };
        let p = s.inner.n_params();
        // SAFETY: forwarded from the caller.
        let x = unsafe { input(x, p, "x")? }.to_vec();
        // SAFETY: forwarded from the caller.
        let out = unsafe { output(gradient, p, "gradient")? };
        s.inner.gradient(&x, out)
    })
}

/// The gradient step from the start point with maximum length `max_distance` (scaled units,
/// positive): the new point x_new [original units] into `new_point` (n_params values) and the
/// step's summary into `step`.
///
/// # Safety
/// `surrogate` must be a live handle; `new_point` must hold n_params values; `step` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_surrogate_propose_step(
    surrogate: *const crk_surrogate,
    max_distance: f64,
    new_point: *mut f64,
    step: *mut crk_surrogate_step,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let s = unsafe { handle(surrogate, "surrogate")? };
        require_out(step, "step")?;
        // SAFETY: forwarded from the caller.
        let point = unsafe { output(new_point, s.inner.n_params(), "new_point")? };
        let result = s.inner.step(max_distance)?;
        point.copy_from_slice(&result.point);
        let summary = crk_surrogate_step {
            distance: result.distance,
            gradient_norm: result.gradient_norm,
            predicted_nll: result.predicted_nll,
            zero_gradient: i32::from(result.zero_gradient),
            at_max_distance: i32::from(result.at_max_distance),
        };
        // SAFETY: forwarded from the caller.
        unsafe { write_out(step, summary, "step") }
    })
}

/// Releases a surrogate made by crk_surrogate_fit; NULL is a no-op.
///
/// # Safety
/// `surrogate` must be NULL or a live handle not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_surrogate_free(surrogate: *mut crk_surrogate) {
    // SAFETY: forwarded from the caller.
    unsafe { free_handle(surrogate) }
}
