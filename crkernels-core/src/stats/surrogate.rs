//! The ridge-regression surrogate of the likelihood and its gradient step (seed 000, "Method"
//! to "Gradient Steps"), exactly as the scikit-learn reference tests/reference/surrogate_reference.py
//! computes it.
//!
//! Inputs: n evaluated points x_i (p parameters, original units), their NLL values y_i, the
//! start point s (default: the lowest NLL, first if tied), a weighting scheme, candidate
//! degrees and regularisations alpha, and the maximum step Delta_max (scaled units).
//!
//! 1. Scaling (sklearn StandardScaler): z = (x - mean) / std per parameter over all n points,
//!    std the population standard deviation (ddof = 0); a zero std is an error. Shift:
//!    z' = z - z_s, so the start point is the origin. Targets y' = (y - y_s) / std(y)
//!    (population std; zero is an error).
//! 2. Features phi(z'): all monomials of total degree 1..d in the order of sklearn's
//!    PolynomialFeatures(include_bias=False): by degree, then lexicographic in the variable
//!    indices (combinations with replacement); C(p + d, d) - 1 of them (1329 for p = 18, d = 3).
//! 3. Weights: none, w_i = 1; distance, w_i = 1 / (1 + |z'_i|^2) (Euclidean, scaled units);
//!    exponential, w_i = exp(-(y_i - y_min)) with y the original NLL values. This is the talk's
//!    w = e^-NLL divided by e^-y_min so that it cannot underflow to all zeros; since ridge
//!    minimises sum w (...)^2 + alpha |beta|^2, dividing all weights by e^-y_min is the same as
//!    multiplying alpha by e^-y_min: alpha here is defined with these shifted weights. Custom:
//!    the caller's weights (finite, >= 0).
//! 4. Ridge without intercept (sklearn Ridge(alpha, fit_intercept=False) with sample_weight):
//!    beta minimises sum_i w_i (y'_i - phi(z'_i) . beta)^2 + alpha |beta|^2, i.e.
//!    (Phi^T W Phi + alpha I) beta = Phi^T W y', solved exactly by a Cholesky factorisation per
//!    alpha (math::linalg). The Gram matrix is computed once for the largest degree: the
//!    features of a lower degree are a prefix of it.
//! 5. Hyper-parameters: validation points are the indices i with i % 10 == 9 (a reproducible
//!    90/10 split without random numbers), training the rest. For every (degree, alpha) the
//!    ridge is fitted on the training points and scored by the unweighted mean squared error
//!    of y' on the validation points; the minimum wins (ties: the lower degree, then the
//!    larger alpha). The chosen (degree, alpha) is refitted on all points.
//! 6. Gradient at the start point (the origin): the linear coefficients g = beta[0..p] (in y'
//!    per unit z'). Direction u = -g / |g|; a zero gradient proposes no step.
//! 7. Line search: p(t) = f(t u) = sum_k c_k t^k, c_k = sum over the degree-k monomials of
//!    beta_m m(u), exact. t* = argmin of p over the real critical points in (0, Delta_max)
//!    and Delta_max itself (closed form for d <= 3, isolated roots above; math::polynomial).
//! 8. The proposal x_new = mean + std (z_s + t* u) in original units, with the predicted NLL
//!    y_s + std(y) p(t*).
//!
//! Memory and time (F features of the largest degree, C those of a candidate degree, n points,
//! p parameters). The design matrix Phi (n x F) is never held whole: the Gram matrix and the
//! right-hand sides are accumulated [`ROW_BLOCK`] points at a time, and the validation scores
//! recompute each point's features. The fit holds the Gram matrix (8 F^2 bytes), the block of
//! features and the Gram's packing buffers (8 (3 ROW_BLOCK + 16) F), the features' recipe
//! (12 F), per point the shifted coordinates and five scalars (8 n (p + 6)), 24 bytes per
//! (degree, alpha) candidate, and for each of the k candidates factored at once a ridge system
//! and a packing buffer (8 F^2 + 2100 F; k = 1 on one thread, and k 8 F^2 <= 1 GiB where
//! k > 1, see [`PARALLEL_SYSTEMS_BYTES`]): at most (8 + 8 k) F^2 + (6300 + 2100 k) F +
//! 8 n (p + 6) + 24 n_degrees n_alphas bytes, whatever n. It takes n F^2 / 2 multiply-adds
//! for the Gram matrix and C^3 / 6 per candidate for its Cholesky factorisation, split over
//! the threads of [`Surrogate::fit_threads`] (all cores for [`Surrogate::fit`]) with the same
//! result on any number. F is limited to [`MAX_FEATURES`] (32768: 16 GiB for the two matrices) and
//! the candidates to [`MAX_CANDIDATES`], checked before anything is allocated. A fitted
//! surrogate holds 20 F + 24 p + 8 n_degrees n_alphas bytes; predictions and gradients need
//! 8 (F + p) and 16 (F + p) bytes more.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Result, invalid};
use crate::math::linalg::{
    Exec, Queue, Shared, add_gram_lower_with, cholesky_in_place_with, cholesky_solve_with, region,
};
use crate::math::polynomial::{evaluate, minimise_on};
use crate::math::{exp, sqrt};

/// The largest polynomial degree accepted.
pub const MAX_DEGREE: usize = 10;
/// Validation points are the indices i with i % VALIDATION_MODULUS == VALIDATION_REMAINDER.
pub const VALIDATION_MODULUS: usize = 10;
/// See [`VALIDATION_MODULUS`].
pub const VALIDATION_REMAINDER: usize = 9;
/// The largest number of features F of the largest candidate degree a fit accepts: the Gram
/// matrix and the ridge system take 8 F^2 bytes each (16 GiB together at the limit), and each
/// candidate's Cholesky factorisation F^3 / 3 multiply-adds.
pub const MAX_FEATURES: usize = 1 << 15;
/// The largest number of (degree, alpha) candidates, n_degrees x n_alphas: each is a Cholesky
/// factorisation, and their scores and order take 24 bytes each.
pub const MAX_CANDIDATES: usize = 1 << 16;
/// Points whose features are computed at once while the Gram matrix and the right-hand sides
/// are accumulated (the row block of the Gram kernel, so the sums are those of the whole
/// design matrix, bit for bit).
pub const ROW_BLOCK: usize = 256;
/// The memory the ridge systems factored at once may take together [bytes] (1 GiB): the
/// (degree, alpha) candidates are factored by up to min(threads, candidates,
/// max(1, PARALLEL_SYSTEMS_BYTES / (8 F^2))) threads at once, each with its own system. The
/// results do not depend on it.
pub const PARALLEL_SYSTEMS_BYTES: usize = 1 << 30;

/// The number of polynomial features of total degree 1..=degree in `n_params` variables,
/// C(n_params + degree, degree) - 1 (no intercept). Errors: n_params or degree 0, overflow.
pub fn polynomial_feature_count(n_params: usize, degree: usize) -> Result<usize> {
    if n_params == 0 || degree == 0 {
        return Err(invalid!("need n_params >= 1 and degree >= 1, got {n_params} and {degree}"));
    }
    // C(p + k, k) = C(p + k - 1, k - 1) (p + k) / k, exact at every step.
    let mut count: usize = 1;
    for k in 1..=degree {
        count =
            n_params.checked_add(k).and_then(|m| count.checked_mul(m)).map(|c| c / k).ok_or_else(|| {
                invalid!("the feature count of {n_params} parameters at degree {degree} overflows")
            })?;
    }
    Ok(count - 1)
}

/// How the points are weighted in the ridge fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Weighting<'a> {
    /// w_i = 1.
    None,
    /// w_i = 1 / (1 + |z'_i|^2).
    Distance,
    /// w_i = exp(-(y_i - y_min)).
    Exponential,
    /// The caller's weights, one per point, finite and >= 0.
    Custom(&'a [f64]),
}

/// Options of [`Surrogate::fit`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SurrogateOptions<'a> {
    /// The weighting scheme.
    pub weighting: Weighting<'a>,
    /// Index of the start point; None: the lowest NLL.
    pub start: Option<usize>,
    /// Candidate degrees, each in 1..=MAX_DEGREE.
    pub degrees: &'a [usize],
    /// Candidate regularisations alpha, each finite and > 0.
    pub alphas: &'a [f64],
}

/// The monomials of degree 1..=d in sklearn's order, built from their parents: feature f >= p
/// is parent(f) * z[variable(f)].
#[derive(Clone, Debug)]
struct Features {
    n_params: usize,
    /// For f >= p: (parent feature, variable).
    products: Vec<(u32, u32)>,
    /// Last (largest) variable index of each feature's tuple.
    last: Vec<u32>,
    /// Start of each degree's block: degree k's features are block[k - 1]..block[k].
    block: Vec<usize>,
}

impl Features {
    fn new(n_params: usize, degree: usize) -> Self {
        let mut last: Vec<u32> = (0..n_params as u32).collect();
        let mut products = Vec::new();
        let mut block = vec![0, n_params];
        for _ in 2..=degree {
            let (from, to) = (block[block.len() - 2], block[block.len() - 1]);
            for parent in from..to {
                for variable in last[parent]..n_params as u32 {
                    products.push((parent as u32, variable));
                    last.push(variable);
                }
            }
            block.push(last.len());
        }
        Features { n_params, products, last, block }
    }

    fn count(&self) -> usize {
        self.last.len()
    }

    /// The features of the first `count` columns at z.
    #[inline]
    fn evaluate(&self, z: &[f64], out: &mut [f64]) {
        let p = self.n_params;
        out[..p].copy_from_slice(z);
        for (f, &(parent, variable)) in (p..out.len()).zip(&self.products) {
            out[f] = out[parent as usize] * z[variable as usize];
        }
    }
}

/// A proposed gradient step.
#[derive(Clone, Debug, PartialEq)]
pub struct SurrogateStep {
    /// |g|: the norm of the surrogate's gradient at the start point [y' per unit z'].
    pub gradient_norm: f64,
    /// The gradient is zero: no direction, t* = 0 and the proposal is the start point.
    pub zero_gradient: bool,
    /// The step length t* [scaled units].
    pub distance: f64,
    /// Whether t* is the maximum step (no minimum inside).
    pub at_max_distance: bool,
    /// The direction u = -g / |g| in scaled units (zeros for a zero gradient).
    pub direction: Vec<f64>,
    /// The line polynomial p(t) = sum_k c_k t^k (c_0 = 0), in y'.
    pub line_coefficients: Vec<f64>,
    /// The proposed point x_new [original units].
    pub point: Vec<f64>,
    /// The surrogate's NLL at x_new [original NLL units].
    pub predicted_nll: f64,
}

/// A fitted ridge surrogate: immutable, cheap to query, safe to share across threads.
#[derive(Clone, Debug)]
pub struct Surrogate {
    mean: Vec<f64>,
    std: Vec<f64>,
    z_start: Vec<f64>,
    y_start: f64,
    y_std: f64,
    start_index: usize,
    degree: usize,
    alpha: f64,
    features: Features,
    coefficients: Vec<f64>,
    scores: Vec<f64>,
}

/// Population mean and standard deviation of column `j` of `x` (n rows of `p`).
fn column_moments(x: &[f64], p: usize, j: usize) -> (f64, f64) {
    let n = (x.len() / p) as f64;
    let mean = x.iter().skip(j).step_by(p).sum::<f64>() / n;
    let variance = x.iter().skip(j).step_by(p).map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, sqrt(variance))
}

impl Surrogate {
    /// Fits the surrogate to `n` points `x` ([n][n_params], row-major) with NLL values `y` (see
    /// the module documentation).
    ///
    /// Errors: lengths; a non-finite value; a zero spread of a parameter or of y; no degree or
    /// alpha, a degree outside 1..=MAX_DEGREE, alpha not finite or <= 0; more than
    /// [`MAX_FEATURES`] features at the largest degree or [`MAX_CANDIDATES`] (degree, alpha)
    /// candidates (checked before allocating); a start
    /// index out of range; fewer points than features of the largest degree; no validation
    /// point (n < 10); custom weights negative or not finite; all training weights zero
    /// (singular weights); an allocation the allocator refuses. Memory: see the module
    /// documentation.
    pub fn fit(x: &[f64], n_params: usize, y: &[f64], options: &SurrogateOptions) -> Result<Self> {
        Self::fit_threads(x, n_params, y, options, 0)
    }

    /// [`Surrogate::fit`] on `n_threads` threads (0: all cores; std builds, one thread without
    /// std). The result is the same, bit for bit, on any thread count: the Gram matrix is
    /// split into bands of rows, each element computed by one thread in a fixed order; the
    /// (degree, alpha) candidates are factored at once on up to min(threads, candidates,
    /// max(1, [`PARALLEL_SYSTEMS_BYTES`] / (8 F^2))) threads, each factorisation the same
    /// operations on any thread, and the best is chosen in the fixed order afterwards; the
    /// refit's factorisation splits its updates into bands too. Memory: see the module
    /// documentation (a ridge system and a packing buffer per candidate factored at once).
    pub fn fit_threads(
        x: &[f64],
        n_params: usize,
        y: &[f64],
        options: &SurrogateOptions,
        n_threads: usize,
    ) -> Result<Self> {
        Self::fit_with(x, n_params, y, options, Exec::new(n_threads))
    }

    /// [`Surrogate::fit_threads`] with the instruction set and threads of `exec` (for tests and
    /// timings of each set: the result is the same on every set).
    pub fn fit_with(
        x: &[f64],
        n_params: usize,
        y: &[f64],
        options: &SurrogateOptions,
        exec: Exec,
    ) -> Result<Self> {
        let n = y.len();
        if n_params == 0 {
            return Err(invalid!("the surrogate needs at least one parameter"));
        }
        if x.len() != n.saturating_mul(n_params) {
            return Err(invalid!(
                "x has {} values, {n} points x {n_params} parameters need {}",
                x.len(),
                n.saturating_mul(n_params)
            ));
        }
        crate::batch::check_each("x", x, |v| crate::error::require_finite("parameter value", v))?;
        crate::batch::check_each("nll", y, |v| crate::error::require_finite("NLL value", v))?;
        if options.degrees.is_empty() || options.alphas.is_empty() {
            return Err(invalid!("need at least one candidate degree and one alpha"));
        }
        if let Some(&d) = options.degrees.iter().find(|&&d| d == 0 || d > MAX_DEGREE) {
            return Err(invalid!("degree {d} is outside 1..={MAX_DEGREE}"));
        }
        crate::batch::check_each("alpha", options.alphas, |a| crate::error::require_positive("alpha", a))?;
        let candidates = options.degrees.len().saturating_mul(options.alphas.len());
        if candidates > MAX_CANDIDATES {
            return Err(invalid!(
                "n_degrees x n_alphas = {} x {} = {candidates} candidates: their scores and order would need {}, \
                 above the limit of {MAX_CANDIDATES} candidates",
                options.degrees.len(),
                options.alphas.len(),
                crate::memory::describe_bytes(candidates.checked_mul(24))
            ));
        }
        let max_degree = options.degrees.iter().copied().max().unwrap_or(1);
        let n_features = polynomial_feature_count(n_params, max_degree)?;
        if n_features > MAX_FEATURES {
            let matrices = n_features.checked_mul(n_features).and_then(|v| v.checked_mul(16));
            return Err(invalid!(
                "{n_params} parameters at degree {max_degree} give {n_features} features: the Gram matrix and \
                 the ridge system would need 16 F^2 = {}, above the limit of {MAX_FEATURES} features \
                 (16 GiB); lower the degree or the number of parameters",
                crate::memory::describe_bytes(matrices)
            ));
        }
        if n < n_features {
            return Err(invalid!(
                "fewer evaluated points ({n}) than features ({n_features}, {n_params} parameters at degree {max_degree})"
            ));
        }
        let validation: Vec<usize> =
            (0..n).filter(|i| i % VALIDATION_MODULUS == VALIDATION_REMAINDER).collect();
        let training: Vec<usize> =
            (0..n).filter(|i| i % VALIDATION_MODULUS != VALIDATION_REMAINDER).collect();
        if validation.is_empty() {
            return Err(invalid!(
                "need at least {} points for a validation point (index % 10 == 9), got {n}",
                VALIDATION_REMAINDER + 1
            ));
        }
        let y_min = y.iter().copied().fold(f64::INFINITY, f64::min);
        let start_index = match options.start {
            Some(s) if s < n => s,
            Some(s) => return Err(invalid!("start index {s} is out of range (n = {n})")),
            None => y.iter().position(|&v| v == y_min).unwrap_or(0),
        };

        // 1. Scaling and shift.
        let (mut mean, mut std) = (vec![0.0; n_params], vec![0.0; n_params]);
        for j in 0..n_params {
            (mean[j], std[j]) = column_moments(x, n_params, j);
            if std[j].is_nan() || std[j] <= 0.0 {
                return Err(invalid!("parameter {j} has zero spread over the points: it cannot be scaled"));
            }
        }
        let (_, y_std) = column_moments(y, 1, 0);
        if y_std.is_nan() || y_std <= 0.0 {
            return Err(invalid!("the NLL values have zero spread: nothing to fit"));
        }
        let scaled = |i: usize, j: usize| (x[i * n_params + j] - mean[j]) / std[j];
        let z_start: Vec<f64> = (0..n_params).map(|j| scaled(start_index, j)).collect();
        let y_start = y[start_index];
        let mut z = vec![0.0; n * n_params];
        for i in 0..n {
            for j in 0..n_params {
                z[i * n_params + j] = scaled(i, j) - z_start[j];
            }
        }
        let target: Vec<f64> = y.iter().map(|&v| (v - y_start) / y_std).collect();

        // 3. Weights (as square roots: the Gram matrix is built from sqrt(w) phi).
        let weights: Vec<f64> = match options.weighting {
            Weighting::None => vec![1.0; n],
            Weighting::Distance => z
                .chunks_exact(n_params)
                .map(|zi| 1.0 / (1.0 + zi.iter().map(|v| v * v).sum::<f64>()))
                .collect(),
            Weighting::Exponential => y.iter().map(|&v| exp(-(v - y_min))).collect(),
            Weighting::Custom(w) => {
                crate::batch::check_lengths("custom weights", w.len(), "points", n)?;
                crate::batch::check_each("custom weights", w, |v| {
                    crate::error::require_non_negative("weight", v)
                })?;
                w.to_vec()
            }
        };
        if training.iter().all(|&i| weights[i] == 0.0) {
            return Err(invalid!("singular weights: every training point has weight zero"));
        }
        let root_weights: Vec<f64> = weights.iter().map(|&w| sqrt(w)).collect();

        // 2. Features of the largest degree, computed ROW_BLOCK points at a time.
        let features = Features::new(n_params, max_degree);
        let mut design = Design {
            features: &features,
            z: &z,
            root_weights: &root_weights,
            weighted_target: weights.iter().zip(&target).map(|(w, t)| w * t).collect(),
            block: crate::memory::try_filled(ROW_BLOCK * n_features, "the surrogate's block of features")?,
            scale: Vec::with_capacity(ROW_BLOCK),
            local_rows: (0..ROW_BLOCK).collect(),
            workspace: Vec::new(),
        };

        // 4-5. The training Gram matrix once; a Cholesky solve per (degree, alpha).
        let mut gram = crate::memory::try_filled(n_features * n_features, "the surrogate's Gram matrix")?;
        let mut b_training = vec![0.0; n_features];
        design.accumulate(exec, &training, n_features, Some((&mut gram, n_features)), Some(&mut b_training));
        let n_alphas = options.alphas.len();
        // The candidates, largest systems first (they take longest), handed to the workers as
        // they finish; each worker factors its systems on threads / workers threads.
        let mut jobs: Vec<(usize, usize)> =
            (0..options.degrees.len()).flat_map(|d| (0..n_alphas).map(move |a| (d, a))).collect();
        jobs.sort_by_key(|&(d, _)| core::cmp::Reverse(options.degrees[d]));
        let system_size = n_features * n_features;
        let workers = exec
            .threads()
            .min(jobs.len())
            .min((PARALLEL_SYSTEMS_BYTES / system_size.saturating_mul(8).max(1)).max(1))
            .max(1);
        let inner = exec.with_threads((exec.threads() / workers).max(1));
        let mut systems = crate::memory::try_filled(workers * system_size, "the surrogate's ridge systems")?;
        // Scores, and 1 in `failed` where the system could not be factored (its error is made
        // again below, in the order of the candidates).
        let mut scores = vec![f64::NAN; options.degrees.len() * n_alphas];
        let mut failed = vec![0.0; scores.len()];
        {
            let (job_queue, worker_queue) = (Queue::new(jobs.len()), Queue::new(workers));
            let (shared_systems, shared_scores) =
                (Shared::new(&mut systems[..]), Shared::new(&mut scores[..]));
            let shared_failed = Shared::new(&mut failed[..]);
            let (gram, b_training, z, target) = (&gram, &b_training, &z, &target);
            let (features, validation) = (&features, &validation);
            region(workers, &|| {
                let Some(w) = worker_queue.take() else { return };
                // SAFETY: worker slot w is taken once; the slots are disjoint.
                let system = unsafe { shared_systems.part(w * system_size, (w + 1) * system_size) };
                let (mut coefficients, mut workspace, mut row) =
                    (Vec::new(), Vec::new(), vec![0.0; n_features]);
                while let Some(job) = job_queue.take() {
                    let (d_index, a_index) = jobs[job];
                    let count = features.block[options.degrees[d_index]];
                    let alpha = options.alphas[a_index];
                    let solved = ridge_solve(
                        inner,
                        gram,
                        n_features,
                        count,
                        alpha,
                        &b_training[..count],
                        system,
                        &mut coefficients,
                        &mut workspace,
                    );
                    let at = d_index * n_alphas + a_index;
                    let mse = match solved {
                        Ok(()) => {
                            validation
                                .iter()
                                .map(|&i| {
                                    let row = &mut row[..count];
                                    features.evaluate(&z[i * n_params..(i + 1) * n_params], row);
                                    let prediction: f64 =
                                        row.iter().zip(&coefficients).map(|(a, b)| a * b).sum();
                                    (prediction - target[i]) * (prediction - target[i])
                                })
                                .sum::<f64>()
                                / validation.len() as f64
                        }
                        Err(_) => {
                            // SAFETY: each candidate's flag is written by the one worker that
                            // took it.
                            let flag = unsafe { shared_failed.part(at, at + 1) };
                            flag[0] = 1.0;
                            f64::NAN
                        }
                    };
                    // SAFETY: each candidate's score is written by the one worker that took it.
                    let score = unsafe { shared_scores.part(at, at + 1) };
                    score[0] = mse;
                }
            });
        }
        let mut workspace = Vec::new();
        let mut coefficients = Vec::with_capacity(n_features);
        // Candidates in the order that breaks ties: degree ascending, alpha descending.
        let mut order: Vec<(usize, usize)> =
            (0..options.degrees.len()).flat_map(|d| (0..n_alphas).map(move |a| (d, a))).collect();
        order.sort_by(|&(d1, a1), &(d2, a2)| {
            options.degrees[d1]
                .cmp(&options.degrees[d2])
                .then(options.alphas[a2].total_cmp(&options.alphas[a1]))
        });
        let mut best: Option<(f64, usize, f64)> = None;
        for (d_index, a_index) in order {
            let degree = options.degrees[d_index];
            let alpha = options.alphas[a_index];
            let mse = scores[d_index * n_alphas + a_index];
            if failed[d_index * n_alphas + a_index] != 0.0 {
                // The first candidate that failed, in this order: its error, made again.
                let count = features.block[degree];
                ridge_solve(
                    exec,
                    &gram,
                    n_features,
                    count,
                    alpha,
                    &b_training[..count],
                    &mut systems[..system_size],
                    &mut coefficients,
                    &mut workspace,
                )?;
                return Err(invalid!(
                    "the ridge system of degree {degree}, alpha {alpha} could not be factored"
                ));
            }
            if best.is_none_or(|(score, _, _)| mse < score) {
                best = Some((mse, degree, alpha));
            }
        }
        let Some((_, degree, alpha)) = best else {
            return Err(invalid!("no (degree, alpha) candidate could be scored"));
        };

        // Refit on all points: the training Gram plus the validation points'.
        let count = features.block[degree];
        design.accumulate(exec, &validation, count, Some((&mut gram, n_features)), None);
        let all: Vec<usize> = (0..n).collect();
        let mut b_all = vec![0.0; count];
        design.accumulate(exec, &all, count, None, Some(&mut b_all));
        let system = &mut systems[..system_size];
        ridge_solve(
            exec,
            &gram,
            n_features,
            count,
            alpha,
            &b_all,
            system,
            &mut coefficients,
            &mut workspace,
        )?;
        Ok(Surrogate {
            mean,
            std,
            z_start,
            y_start,
            y_std,
            start_index,
            degree,
            alpha,
            features: Features::new(n_params, degree),
            coefficients,
            scores,
        })
    }

    /// Number of parameters p.
    pub fn n_params(&self) -> usize {
        self.mean.len()
    }

    /// The chosen degree.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// The chosen alpha.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Index of the start point.
    pub fn start_index(&self) -> usize {
        self.start_index
    }

    /// The ridge coefficients beta (features in sklearn's order), in y' per monomial of z'.
    pub fn coefficients(&self) -> &[f64] {
        &self.coefficients
    }

    /// Validation mean squared errors of y', [degree index][alpha index] as given in the options.
    pub fn validation_scores(&self) -> &[f64] {
        &self.scores
    }

    /// Per-parameter mean and population std of the points (the scaler).
    pub fn scaler(&self) -> (&[f64], &[f64]) {
        (&self.mean, &self.std)
    }

    /// The start point's scaled coordinates z_s, its NLL y_s and std(y).
    pub fn start(&self) -> (&[f64], f64, f64) {
        (&self.z_start, self.y_start, self.y_std)
    }

    fn shifted(&self, x: &[f64], z: &mut [f64]) {
        for (j, zj) in z.iter_mut().enumerate() {
            *zj = (x[j] - self.mean[j]) / self.std[j] - self.z_start[j];
        }
    }

    /// The surrogate's NLL [original units] at points `x` ([m][p], row-major), into `out` (m).
    pub fn predict(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        let p = self.n_params();
        if x.len() != out.len().saturating_mul(p) {
            return Err(invalid!(
                "x has {} values, {} points x {p} parameters need {}",
                x.len(),
                out.len(),
                out.len().saturating_mul(p)
            ));
        }
        crate::batch::check_each("x", x, |v| crate::error::require_finite("parameter value", v))?;
        let mut z = vec![0.0; p];
        let mut phi = vec![0.0; self.features.count()];
        for (o, xi) in out.iter_mut().zip(x.chunks_exact(p)) {
            self.shifted(xi, &mut z);
            self.features.evaluate(&z, &mut phi);
            let f: f64 = phi.iter().zip(&self.coefficients).map(|(a, b)| a * b).sum();
            *o = self.y_start + self.y_std * f;
        }
        Ok(())
    }

    /// The gradient dNLL/dx [NLL per original unit] of the surrogate at one point x (p values),
    /// analytic: forward differentiation of the monomials.
    pub fn gradient(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        let p = self.n_params();
        crate::batch::check_lengths("x", x.len(), "parameters", p)?;
        crate::batch::check_lengths("gradient", out.len(), "parameters", p)?;
        crate::batch::check_each("x", x, |v| crate::error::require_finite("parameter value", v))?;
        let count = self.features.count();
        let mut z = vec![0.0; p];
        self.shifted(x, &mut z);
        let mut phi = vec![0.0; count];
        self.features.evaluate(&z, &mut phi);
        // d phi_f / d z_j for every feature, one j at a time (memory 8 F bytes, not 8 F p).
        let mut d = vec![0.0; count];
        for (j, o) in out.iter_mut().enumerate() {
            d[..p].fill(0.0);
            d[j] = 1.0;
            for (f, &(parent, variable)) in (p..count).zip(&self.features.products) {
                let (parent, variable) = (parent as usize, variable as usize);
                d[f] = d[parent] * z[variable];
                if variable == j {
                    d[f] += phi[parent];
                }
            }
            let df: f64 = (0..count).map(|f| self.coefficients[f] * d[f]).sum();
            *o = self.y_std * df / self.std[j];
        }
        Ok(())
    }

    /// The gradient step from the start point with maximum length `max_distance` (scaled
    /// units, finite > 0).
    pub fn step(&self, max_distance: f64) -> Result<SurrogateStep> {
        crate::error::require_positive("maximum step Delta_max [scaled units]", max_distance)?;
        let p = self.n_params();
        let gradient = &self.coefficients[..p];
        let norm = sqrt(gradient.iter().map(|g| g * g).sum::<f64>());
        let start_point: Vec<f64> = (0..p).map(|j| self.mean[j] + self.std[j] * self.z_start[j]).collect();
        if norm == 0.0 {
            return Ok(SurrogateStep {
                gradient_norm: 0.0,
                zero_gradient: true,
                distance: 0.0,
                at_max_distance: false,
                direction: vec![0.0; p],
                line_coefficients: vec![0.0; self.degree + 1],
                point: start_point,
                predicted_nll: self.y_start,
            });
        }
        let direction: Vec<f64> = gradient.iter().map(|g| -g / norm).collect();
        let mut monomials = vec![0.0; self.features.count()];
        self.features.evaluate(&direction, &mut monomials);
        let mut line = vec![0.0; self.degree + 1];
        for (k, c) in line.iter_mut().enumerate().skip(1) {
            let (from, to) = (self.features.block[k - 1], self.features.block[k]);
            *c = (from..to).map(|f| self.coefficients[f] * monomials[f]).sum();
        }
        let (distance, value) = minimise_on(&line, max_distance);
        debug_assert!((value - evaluate(&line, distance)).abs() <= 1e-12 * value.abs().max(1.0));
        let point = (0..p)
            .map(|j| self.mean[j] + self.std[j] * (self.z_start[j] + distance * direction[j]))
            .collect();
        Ok(SurrogateStep {
            gradient_norm: norm,
            zero_gradient: false,
            distance,
            at_max_distance: distance == max_distance,
            direction,
            line_coefficients: line,
            point,
            predicted_nll: self.y_start + self.y_std * value,
        })
    }
}

/// The design matrix of a fit, produced ROW_BLOCK points at a time.
struct Design<'a> {
    features: &'a Features,
    /// The shifted scaled coordinates z' of every point, [n][p].
    z: &'a [f64],
    /// sqrt(w_i) per point.
    root_weights: &'a [f64],
    /// w_i y'_i per point.
    weighted_target: Vec<f64>,
    /// The features of a block of points, [ROW_BLOCK][count].
    block: Vec<f64>,
    /// sqrt(w) of the block's points.
    scale: Vec<f64>,
    /// 0..ROW_BLOCK: the block's rows for the Gram kernel.
    local_rows: Vec<usize>,
    /// The Gram kernel's packing buffer.
    workspace: Vec<f64>,
}

impl Design<'_> {
    /// Adds the Gram matrix of the first `count` features of the points `rows` (weighted) to
    /// `gram` (leading dimension ld), and sum_i w_i y'_i phi_i to `rhs`, in the order of
    /// `rows`: the same sums, bit for bit, as from the whole design matrix (the Gram kernel
    /// works in blocks of ROW_BLOCK rows too).
    fn accumulate(
        &mut self,
        exec: Exec,
        rows: &[usize],
        count: usize,
        mut gram: Option<(&mut [f64], usize)>,
        mut rhs: Option<&mut [f64]>,
    ) {
        let p = self.features.n_params;
        for chunk in rows.chunks(ROW_BLOCK) {
            let block = &mut self.block[..chunk.len() * count];
            for (out, &i) in block.chunks_exact_mut(count).zip(chunk) {
                self.features.evaluate(&self.z[i * p..(i + 1) * p], out);
            }
            if let Some((gram, ld)) = gram.as_mut() {
                self.scale.clear();
                self.scale.extend(chunk.iter().map(|&i| self.root_weights[i]));
                let local = &self.local_rows[..chunk.len()];
                add_gram_lower_with(
                    exec,
                    block,
                    count,
                    count,
                    local,
                    &self.scale,
                    gram,
                    *ld,
                    &mut self.workspace,
                );
            }
            if let Some(b) = rhs.as_mut() {
                for (phi, &i) in block.chunks_exact(count).zip(chunk) {
                    let wy = self.weighted_target[i];
                    for (bf, &v) in b.iter_mut().zip(phi) {
                        *bf += wy * v;
                    }
                }
            }
        }
    }
}

/// beta = (G[..count][..count] + alpha I)^-1 b for the Gram matrix `gram` (lower triangle,
/// leading dimension `ld`), factored in `system` (at least count^2 values; its lower triangle
/// is written, the rest is not read) on the threads of `exec`.
#[allow(clippy::too_many_arguments)]
fn ridge_solve(
    exec: Exec,
    gram: &[f64],
    ld: usize,
    count: usize,
    alpha: f64,
    b: &[f64],
    system: &mut [f64],
    beta: &mut Vec<f64>,
    workspace: &mut Vec<f64>,
) -> Result<()> {
    let system = &mut system[..count * count];
    for i in 0..count {
        system[i * count..i * count + i + 1].copy_from_slice(&gram[i * ld..i * ld + i + 1]);
        system[i * count + i] += alpha;
    }
    cholesky_in_place_with(exec, system, count, count, workspace)
        .map_err(|e| invalid!("the ridge system (alpha = {alpha}) is singular: {}", e.message()))?;
    beta.clear();
    beta.extend_from_slice(b);
    cholesky_solve_with(exec, system, count, count, beta);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_counts() {
        assert_eq!(polynomial_feature_count(18, 3).unwrap(), 1329);
        assert_eq!(polynomial_feature_count(3, 2).unwrap(), 9);
        assert!(polynomial_feature_count(0, 2).is_err());
        assert!(polynomial_feature_count(1000, 1000).is_err());
        let f = Features::new(18, 3);
        assert_eq!(f.count(), 1329);
        assert_eq!(f.block, vec![0, 18, 189, 1329]);
    }

    /// The fit gives the same bits on every instruction set this CPU has and on 1, 2 and 3
    /// threads (the Gram matrix over three row blocks, factorisations of two Cholesky blocks).
    #[test]
    fn every_isa_and_thread_count_gives_the_same_fit() {
        use crate::math::simd::VectorIsa;
        let (p, n) = (8, 700);
        let mut state = 12345u64;
        let mut uniform = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let x: Vec<f64> = (0..n * p).map(|_| uniform() * 4.0 - 2.0).collect();
        let y: Vec<f64> = x
            .chunks_exact(p)
            .map(|xi| {
                xi.iter()
                    .enumerate()
                    .map(|(j, v)| (1.0 + 0.2 * j as f64) * (v - 0.3) * (v - 0.3))
                    .sum::<f64>()
                    + 0.1 * xi[0] * xi[1] * xi[2]
            })
            .collect();
        let (degrees, alphas) = ([3, 1, 2], [1e-6, 1e-3, 0.1, 10.0]);
        let options = SurrogateOptions {
            weighting: Weighting::Distance,
            start: None,
            degrees: &degrees,
            alphas: &alphas,
        };
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut reference: Option<Surrogate> = None;
        for isa in VectorIsa::available() {
            for threads in [1, 2, 3] {
                let exec = Exec::with_isa(isa, threads).unwrap();
                let s = Surrogate::fit_with(&x, p, &y, &options, exec).unwrap();
                assert_eq!(s.coefficients().len(), polynomial_feature_count(p, s.degree()).unwrap());
                match &reference {
                    None => reference = Some(s),
                    Some(r) => {
                        let what = (isa.name(), threads);
                        assert_eq!(
                            (s.degree(), s.alpha().to_bits()),
                            (r.degree(), r.alpha().to_bits()),
                            "{what:?}"
                        );
                        assert_eq!(bits(s.coefficients()), bits(r.coefficients()), "{what:?}");
                        assert_eq!(bits(s.validation_scores()), bits(r.validation_scores()), "{what:?}");
                    }
                }
            }
        }
        assert_eq!(reference.unwrap().degree(), 3);
    }

    #[test]
    fn sklearn_feature_order() {
        // PolynomialFeatures(2, include_bias=False) on (a, b, c): a b c a^2 ab ac b^2 bc c^2.
        let f = Features::new(3, 2);
        let mut out = vec![0.0; 9];
        f.evaluate(&[2.0, 3.0, 5.0], &mut out);
        assert_eq!(out, vec![2.0, 3.0, 5.0, 4.0, 6.0, 10.0, 9.0, 15.0, 25.0]);
    }
}
