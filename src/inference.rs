//! Parameter inference with a conditional MADE emulator: the maximum-likelihood parameters and
//! a posterior sample (Hamiltonian Monte Carlo) for one measured vector x (for SECRET, psi =
//! ln(E^3 phi) at the model's energies) under a uniform prior on a box of the context
//! (parameters theta). Generic: any C >= 1 context values, any D data dimensions.
//!
//! # The target and the measurement uncertainty
//!
//! Without measurement uncertainty the posterior is
//! log pi(theta) = log p(x_obs | theta) + log prior(theta), the prior uniform on
//! [lower, upper] (a constant inside, zero outside).
//!
//! With Gaussian measurement errors sigma_d (x units; for SECRET sigma_psi = sigma_phi / phi)
//! the likelihood is the emulator's density convolved with the noise,
//! p(x_obs | theta) = int p(x | theta) prod_d N(x_obs,d; x_d, sigma_d^2) dx, which has no closed
//! form for a MADE: the mixture means and scales of dimension d are network functions of the
//! earlier x_<d, so the integral over x_<d does not reduce to adding sigma_d^2 to the component
//! variances (that works only when no conditional depends on x). We fold the noise in by data
//! augmentation: the true x is a latent vector sampled jointly with theta,
//!
//! log pi(theta, x_true) = log p(x_true | theta) + sum_d log N(x_obs,d; x_true,d, sigma_d^2)
//!                         + log prior(theta),
//!
//! whose theta-marginal is exactly the posterior under the convolved likelihood (the x_true
//! are integrated out by the sampler). The gradient with respect to x_true comes from
//! [`Made::log_prob_grad_rows`], as the one with respect to theta.
//!
//! # Variables
//!
//! Samplers and optimisers move y_j = logit((theta_j - l_j) / w_j), w_j = u_j - l_j, and
//! z_d = (x_true,d - x_obs,d) / sigma_d, all unconstrained; with s = 1 / (1 + e^-y),
//! theta = l + w s and the posterior density of (y, z) gains the Jacobian
//! sum_j [ln s(y_j) + ln(1 - s(y_j))] + sum_d ln sigma_d.
//!
//! # Maximum likelihood
//!
//! theta_hat maximises log p(x_obs | theta) over the box (the maximum a posteriori under the
//! flat prior); with sigma it is the joint maximum over (theta, x_true) of the augmented
//! log-likelihood log p(x_true | theta) + sum_d log N(x_obs,d; x_true,d, sigma_d^2) (a profile
//! likelihood; the posterior is exact either way). Starts: a Latin hypercube in the box
//! screened in one batch ([`ParallelMade::log_prob_parallel`]); the best few are refined by
//! L-BFGS (Nocedal & Wright 2006, algorithms 7.4 and 7.5, backtracking Armijo line search) in
//! y (and z). Standard errors: sqrt of the diagonal of (-H)^-1, H the Hessian of the
//! log-likelihood in (theta, x_true) by central differences of the analytic gradient (with
//! sigma, the theta block of the joint inverse: the Laplace approximation of the marginal).
//!
//! # Hamiltonian Monte Carlo
//!
//! Leapfrog with a dense (or diagonal) metric M^-1 = Sigma, momentum p ~ N(0, Sigma^-1),
//! kinetic energy p^T Sigma p / 2 (Neal 2011, "MCMC using Hamiltonian dynamics"); the number of
//! steps drawn uniformly in 1..=ceil(pi / epsilon) per iteration (a random integration time up
//! to pi, for which E[cos T] = 0 on a whitened Gaussian; the uniform is shared by the chains,
//! see below); warm-up as Stan's: step size by dual
//! averaging to `target_accept` (Hoffman & Gelman 2014, JMLR 15, 1593, algorithm 5, with
//! gamma = 0.1, t0 = 10, kappa = 0.75; the initial step by their algorithm 4), the metric from
//! the draws of windows of 25, 50, 100, ... iterations after an initial 75 and before a final
//! 50, shrunk towards its diagonal. The first metric is the Laplace approximation at the start.
//!
//! Chains run in lockstep in tiles of 8: the gradient kernel evaluates 8 rows in the time of
//! one, so 8 chains cost as much as one. Chain c draws its start, momenta and acceptance
//! uniforms from [`Stream::new(seed, c)`](Stream::new), the trajectory lengths of iteration t
//! from one uniform of a stream shared by all chains (so that the chains of a tile stop at
//! about the same step), and a lane's results do not depend on the other lanes: a chain's
//! draws are the same on any thread count and in any grouping.
//!
//! Diagnostics (Vehtari, Gelman, Simpson, Carpenter & Buerkner 2021, Bayesian Analysis 16,
//! 667): the rank-normalised split-R-hat (the larger of bulk and folded), bulk and tail
//! effective sample sizes (Geyer's initial monotone sequence, as Stan), Monte Carlo standard
//! errors of the mean and of the standard deviation; the central 68% and 95% intervals are
//! the 16-84% and 2.5-97.5% quantiles of the pooled draws.

// Kernels over several small arrays at once read best with explicit indices.
#![allow(clippy::needless_range_loop)]

use std::f64::consts::PI;
use std::ops::Range;

use crate::emulator::ParallelMade;
use crate::math;
use crate::math::linalg::{cholesky_in_place, cholesky_solve};
use crate::nn::{Made, MadeGradWorkspace};
use crate::rng::{Stream, standard_normal_quantile};
use crate::{Error, Result};

/// Rows of one tile of the gradient kernel (`made_grad::GT` in the core): a tile of 1 to 8 rows
/// costs the same, so up to 8 chains or optimisations advance together.
const LANES: usize = 8;
/// ln sqrt(2 pi).
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;
/// The stream index of the multi-start draws (chains use 0, 1, 2, ...).
const STREAM_STARTS: u64 = u64::MAX;
/// The stream index of the trajectory-length draws, one uniform per iteration shared by all
/// chains.
const STREAM_LENGTHS: u64 = u64::MAX - 1;

fn invalid(message: String) -> Error {
    Error::InvalidArgument(message)
}

/// A parameter-inference problem: a conditional MADE p(x | theta), one observed x, optional
/// Gaussian measurement errors and a uniform prior on a box of theta.
#[derive(Clone, Copy, Debug)]
pub struct FitProblem<'a> {
    /// The emulator: context = the C parameters, data = the D observed values (user's units).
    pub made: &'a Made,
    /// The observed x [D], user's units.
    pub observed: &'a [f64],
    /// Per-dimension measurement standard deviations [D] in x units (> 0), or None for an
    /// exactly known x.
    pub sigma: Option<&'a [f64]>,
    /// Lower edges of the prior box [C].
    pub lower: &'a [f64],
    /// Upper edges of the prior box [C], each above its lower edge.
    pub upper: &'a [f64],
}

impl<'a> FitProblem<'a> {
    /// A checked problem (see [`validate`](Self::validate)).
    pub fn new(
        made: &'a Made,
        observed: &'a [f64],
        sigma: Option<&'a [f64]>,
        lower: &'a [f64],
        upper: &'a [f64],
    ) -> Result<Self> {
        let problem = Self { made, observed, sigma, lower, upper };
        problem.validate()?;
        Ok(problem)
    }

    /// Checks the problem.
    ///
    /// Errors: [`Error::InvalidArgument`] naming the value for a model without context, wrong
    /// lengths, a non-finite value (or one beyond f32, the network's input type), sigma <= 0,
    /// lower >= upper.
    pub fn validate(&self) -> Result<()> {
        let (c, d) = (self.made.n_context(), self.made.n_dims());
        if c == 0 {
            return Err(invalid("the model has no context inputs: there are no parameters to fit".into()));
        }
        let finite = |name: &str, values: &[f64]| -> Result<()> {
            match values.iter().position(|v| !(v.is_finite() && (*v as f32).is_finite())) {
                Some(i) => {
                    Err(invalid(format!("{name}[{i}] is {} (must be finite and within f32)", values[i])))
                }
                None => Ok(()),
            }
        };
        let length = |name: &str, values: &[f64], n: usize, what: &str| -> Result<()> {
            if values.len() != n {
                return Err(invalid(format!("{name} has {} values, the model has {n} {what}", values.len())));
            }
            finite(name, values)
        };
        length("observed", self.observed, d, "data dimensions")?;
        length("lower", self.lower, c, "context inputs (parameters)")?;
        length("upper", self.upper, c, "context inputs (parameters)")?;
        if let Some(sigma) = self.sigma {
            length("sigma", sigma, d, "data dimensions")?;
            if let Some(i) = sigma.iter().position(|&s| s <= 0.0) {
                return Err(invalid(format!("sigma[{i}] = {} (must be > 0)", sigma[i])));
            }
        }
        for (j, (&l, &u)) in self.lower.iter().zip(self.upper).enumerate() {
            if l >= u {
                return Err(invalid(format!("lower[{j}] = {l} is not below upper[{j}] = {u}")));
            }
        }
        Ok(())
    }

    /// C, the number of parameters.
    pub fn n_params(&self) -> usize {
        self.made.n_context()
    }

    /// D, the number of data dimensions.
    pub fn n_dims(&self) -> usize {
        self.made.n_dims()
    }

    /// The number of variables the sampler moves: C, or C + D with sigma (the latent x_true).
    pub fn n_variables(&self) -> usize {
        self.n_params() + if self.sigma.is_some() { self.n_dims() } else { 0 }
    }
}

/// Settings of [`maximum_likelihood`], [`sample_posterior`] and [`fit`].
#[derive(Clone, Debug, PartialEq)]
pub struct FitOptions {
    /// Seed of every random number (chain c: `Stream::new(seed, c)`).
    pub seed: u64,
    /// Multi-start points screened in one batch (a Latin hypercube in the box), >= 1.
    pub n_starts: usize,
    /// The best starts refined by L-BFGS, 1..=n_starts (8 cost as much as one).
    pub n_refine: usize,
    /// L-BFGS iterations per refined start, >= 1.
    pub max_iterations: usize,
    /// Chains, >= 1 (up to 8 per thread cost as much as one).
    pub n_chains: usize,
    /// Warm-up (adaptation) iterations per chain, discarded.
    pub warmup: usize,
    /// Kept iterations per chain, >= 4.
    pub samples_per_chain: usize,
    /// The mean acceptance probability the step size is adapted to, in (0, 1).
    pub target_accept: f64,
    /// A dense metric (the posterior covariance of the variables) rather than a diagonal one.
    pub dense_metric: bool,
    /// The most leapfrog steps in one trajectory, >= 1.
    pub max_leapfrog: usize,
    /// Threads (0: all cores); results do not depend on it.
    pub n_threads: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            n_starts: 256,
            n_refine: 8,
            max_iterations: 500,
            n_chains: 8,
            warmup: 500,
            samples_per_chain: 500,
            target_accept: 0.8,
            dense_metric: true,
            max_leapfrog: 256,
            n_threads: 0,
        }
    }
}

impl FitOptions {
    /// Checks the settings. Errors: [`Error::InvalidArgument`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("n_starts", self.n_starts),
            ("n_refine", self.n_refine),
            ("max_iterations", self.max_iterations),
            ("n_chains", self.n_chains),
            ("max_leapfrog", self.max_leapfrog),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(invalid(format!("{name} = 0 (must be >= 1)")));
        }
        if self.n_refine > self.n_starts {
            return Err(invalid(format!(
                "n_refine = {} exceeds n_starts = {}",
                self.n_refine, self.n_starts
            )));
        }
        if self.samples_per_chain < 4 {
            return Err(invalid(format!(
                "samples_per_chain = {} (must be >= 4 for split-R-hat)",
                self.samples_per_chain
            )));
        }
        if !(self.target_accept > 0.0 && self.target_accept < 1.0) {
            return Err(invalid(format!("target_accept = {} (must be in (0, 1))", self.target_accept)));
        }
        Ok(())
    }

    fn threads(&self) -> usize {
        match self.n_threads {
            0 => std::thread::available_parallelism().map_or(1, |t| t.get()),
            t => t,
        }
    }
}

/// One refined start of [`maximum_likelihood`].
#[derive(Clone, Debug, PartialEq)]
pub struct LocalOptimum {
    /// The parameters [C].
    pub theta: Vec<f64>,
    /// With sigma, x_true [D] at the optimum.
    pub latent: Option<Vec<f64>>,
    /// The (augmented, with sigma) log-likelihood there.
    pub log_likelihood: f64,
    /// L-BFGS iterations taken.
    pub iterations: usize,
    /// Whether it stopped on a small gradient or no further progress (not the iteration limit).
    pub converged: bool,
}

/// The result of [`maximum_likelihood`].
#[derive(Clone, Debug, PartialEq)]
pub struct MaxLikelihood {
    /// theta_hat [C].
    pub theta: Vec<f64>,
    /// With sigma, x_true at the joint maximum [D].
    pub latent: Option<Vec<f64>>,
    /// log p(x_obs | theta_hat) (with sigma: the augmented log-likelihood at the joint maximum).
    pub log_likelihood: f64,
    /// sqrt(diag((-H)^-1)) [C], None when -H is not positive definite. At an edge (see
    /// `at_boundary`) this is the curvature there, not the error of an interior maximum: use
    /// the posterior's intervals.
    pub standard_errors: Option<Vec<f64>>,
    /// (-H)^-1 [C][C], row-major, when positive definite.
    pub covariance: Option<Vec<f64>>,
    /// Per parameter, whether theta_hat lies within 1e-4 of the box width of an edge.
    pub at_boundary: Vec<bool>,
    /// Every refined start, best first.
    pub optima: Vec<LocalOptimum>,
    /// Rows evaluated by the network (screening and refinement; a tile of the gradient
    /// kernel counts 8).
    pub n_evaluations: usize,
}

/// Summary of one variable's posterior draws.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSummary {
    /// Mean of the pooled draws.
    pub mean: f64,
    /// Standard deviation of the pooled draws.
    pub sd: f64,
    /// Median.
    pub median: f64,
    /// Central 68% interval: the 16% and 84% quantiles.
    pub interval_68: [f64; 2],
    /// Central 95% interval: the 2.5% and 97.5% quantiles.
    pub interval_95: [f64; 2],
    /// Rank-normalised split-R-hat, the larger of bulk and folded (Vehtari et al. 2021).
    pub r_hat: f64,
    /// Bulk effective sample size (rank-normalised split chains).
    pub ess_bulk: f64,
    /// Tail effective sample size (the smaller of the 5% and 95% quantile indicators').
    pub ess_tail: f64,
    /// Monte Carlo standard error of the mean.
    pub mcse_mean: f64,
    /// Monte Carlo standard error of the standard deviation.
    pub mcse_sd: f64,
}

/// The result of [`sample_posterior`].
#[derive(Clone, Debug, PartialEq)]
pub struct Posterior {
    /// C.
    pub n_params: usize,
    /// Chains.
    pub n_chains: usize,
    /// Kept draws per chain.
    pub samples_per_chain: usize,
    /// theta draws [chain][draw][C], user's units.
    pub theta: Vec<f64>,
    /// With sigma, x_true draws [chain][draw][D].
    pub latent: Option<Vec<f64>>,
    /// The (augmented) log-likelihood of each draw [chain][draw].
    pub log_likelihood: Vec<f64>,
    /// Per chain, the mean acceptance probability of the kept iterations.
    pub accept_rate: Vec<f64>,
    /// Per chain, the step size after warm-up.
    pub step_size: Vec<f64>,
    /// Per chain, divergent trajectories (non-finite density or an energy error above 1000)
    /// among the kept iterations.
    pub divergences: Vec<usize>,
    /// Per chain, gradient evaluations (warm-up included).
    pub gradient_evaluations: Vec<usize>,
    /// Tiles of the gradient kernel evaluated, all chains and the Laplace metrics included:
    /// the run's cost (a tile evaluates up to 8 chains at the price of one).
    pub n_tiles: usize,
    /// Per parameter.
    pub summary: Vec<ParamSummary>,
    /// With sigma, per data dimension of x_true.
    pub latent_summary: Option<Vec<ParamSummary>>,
}

impl Posterior {
    /// Draw `i` of chain `chain` [C].
    pub fn draw(&self, chain: usize, i: usize) -> &[f64] {
        let c = self.n_params;
        &self.theta[(chain * self.samples_per_chain + i) * c..][..c]
    }

    /// The largest R-hat over the parameters.
    pub fn max_r_hat(&self) -> f64 {
        self.summary.iter().map(|s| s.r_hat).fold(f64::NAN, f64::max)
    }
}

/// [`maximum_likelihood`] and [`sample_posterior`] started there.
#[derive(Clone, Debug, PartialEq)]
pub struct FitResult {
    /// The maximum-likelihood fit.
    pub max_likelihood: MaxLikelihood,
    /// The posterior sample.
    pub posterior: Posterior,
}

// ---------------------------------------------------------------------------------------------
// The target: the network in tiles, the transforms.

/// s = 1 / (1 + e^-y), with ln s, ln(1 - s) and s (1 - s), without overflow.
#[inline]
fn logistic(y: f64) -> (f64, f64, f64, f64) {
    let e = math::exp(-y.abs());
    let ln1p = math::ln_1p(e);
    let (s, ln_s, ln_1ms) =
        if y >= 0.0 { (1.0 / (1.0 + e), -ln1p, -y - ln1p) } else { (e / (1.0 + e), y - ln1p, -ln1p) };
    (s, ln_s, ln_1ms, e / ((1.0 + e) * (1.0 + e)))
}

fn logit(t: f64) -> f64 {
    math::ln(t / (1.0 - t))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// log L (augmented with sigma) of the variables, no Jacobian: what the MLE maximises.
    Likelihood,
    /// log L + the log-Jacobian of (y, z) -> (theta, x_true): the posterior density of (y, z)
    /// up to a constant.
    Posterior,
}

/// Evaluates up to [`LANES`] rows at a time through the gradient kernel, with its own
/// workspace and buffers (no allocation per call).
struct Evaluator<'p> {
    made: &'p Made,
    c: usize,
    d: usize,
    n: usize,
    lower: Vec<f64>,
    width: Vec<f64>,
    observed: Vec<f64>,
    sigma: Option<Vec<f64>>,
    /// sum_d ln sigma_d + D ln sqrt(2 pi) (the noise density's constant).
    noise_norm: f64,
    work: MadeGradWorkspace,
    ctx: Vec<f32>,
    x: Vec<f32>,
    lp: Vec<f64>,
    gc: Vec<f32>,
    gx: Vec<f32>,
    /// Natural variables and the transform's factors of the rows being evaluated.
    v: Vec<f64>,
    dv: Vec<f64>,
    /// Rows evaluated (8 per tile).
    rows: usize,
}

impl<'p> Evaluator<'p> {
    fn new(problem: &FitProblem<'p>) -> Self {
        let (c, d, n) = (problem.n_params(), problem.n_dims(), problem.n_variables());
        let sigma = problem.sigma.map(<[f64]>::to_vec);
        let noise_norm = sigma
            .as_ref()
            .map_or(0.0, |s| s.iter().map(|&s| math::ln(s)).sum::<f64>() + d as f64 * HALF_LN_2PI);
        Self {
            made: problem.made,
            c,
            d,
            n,
            lower: problem.lower.to_vec(),
            width: problem.lower.iter().zip(problem.upper).map(|(l, u)| u - l).collect(),
            observed: problem.observed.to_vec(),
            sigma,
            noise_norm,
            work: problem.made.grad_workspace(),
            ctx: vec![0.0; LANES * c],
            x: vec![0.0; LANES * d],
            lp: vec![0.0; LANES],
            gc: vec![0.0; LANES * c],
            gx: vec![0.0; LANES * d],
            v: vec![0.0; LANES * n],
            dv: vec![0.0; LANES * n],
            rows: 0,
        }
    }

    /// The log-likelihood and its gradient at natural variables v = (theta, x_true) (or theta
    /// without sigma), `lanes` rows [lanes][n]: -inf and a zero gradient where not finite.
    fn natural(&mut self, v: &[f64], lanes: usize, value: &mut [f64], grad: &mut [f64]) {
        let (c, d, n) = (self.c, self.d, self.n);
        let mut valid = [true; LANES];
        for l in 0..lanes {
            let row = &v[l * n..(l + 1) * n];
            for j in 0..c {
                self.ctx[l * c + j] = row[j] as f32;
            }
            for k in 0..d {
                self.x[l * d + k] = (if self.sigma.is_some() { row[c + k] } else { self.observed[k] }) as f32;
            }
            let inputs = self.ctx[l * c..(l + 1) * c].iter().chain(&self.x[l * d..(l + 1) * d]);
            if inputs.clone().any(|v| !v.is_finite()) {
                valid[l] = false;
                self.ctx[l * c..(l + 1) * c].fill(0.0);
                self.x[l * d..(l + 1) * d].fill(0.0);
            }
        }
        let gx = if self.sigma.is_some() { Some(&mut self.gx[..lanes * d]) } else { None };
        self.made.log_prob_grad_rows(
            &mut self.work,
            &self.ctx,
            &self.x,
            0,
            lanes,
            Some(&mut self.lp[..lanes]),
            Some(&mut self.gc[..lanes * c]),
            gx,
        );
        self.rows += LANES;
        for l in 0..lanes {
            let row = &v[l * n..(l + 1) * n];
            let g = &mut grad[l * n..(l + 1) * n];
            let mut f = self.lp[l];
            for j in 0..c {
                g[j] = f64::from(self.gc[l * c + j]);
            }
            if let Some(sigma) = &self.sigma {
                f -= self.noise_norm;
                for k in 0..d {
                    let r = (self.observed[k] - row[c + k]) / sigma[k];
                    f -= 0.5 * r * r;
                    g[c + k] = f64::from(self.gx[l * d + k]) + r / sigma[k];
                }
            }
            if valid[l] && f.is_finite() && g.iter().all(|g| g.is_finite()) {
                value[l] = f;
            } else {
                value[l] = f64::NEG_INFINITY;
                g.fill(0.0);
            }
        }
    }

    /// Natural variables of unconstrained ones (one row each) and the derivatives dv/dq.
    fn to_natural(&self, q: &[f64], v: &mut [f64], dv: &mut [f64]) -> f64 {
        let c = self.c;
        let mut log_jacobian = 0.0;
        for j in 0..c {
            let (s, ln_s, ln_1ms, s1ms) = logistic(q[j]);
            v[j] = self.lower[j] + self.width[j] * s;
            dv[j] = self.width[j] * s1ms;
            log_jacobian += ln_s + ln_1ms;
        }
        if let Some(sigma) = &self.sigma {
            for k in 0..self.d {
                v[c + k] = self.observed[k] + sigma[k] * q[c + k];
                dv[c + k] = sigma[k];
            }
        }
        log_jacobian
    }

    /// The target at unconstrained variables q = (y, z), `lanes` rows [lanes][n].
    fn unconstrained(
        &mut self,
        q: &[f64],
        lanes: usize,
        target: Target,
        value: &mut [f64],
        grad: &mut [f64],
    ) {
        let n = self.n;
        let mut v = std::mem::take(&mut self.v);
        let mut dv = std::mem::take(&mut self.dv);
        let mut log_jacobian = [0.0; LANES];
        for l in 0..lanes {
            let rows = l * n..(l + 1) * n;
            log_jacobian[l] = self.to_natural(&q[rows.clone()], &mut v[rows.clone()], &mut dv[rows]);
        }
        self.natural(&v[..lanes * n], lanes, value, grad);
        for l in 0..lanes {
            let g = &mut grad[l * n..(l + 1) * n];
            for (g, &dv) in g.iter_mut().zip(&dv[l * n..(l + 1) * n]) {
                *g *= dv;
            }
            if target == Target::Posterior && value[l].is_finite() {
                value[l] += log_jacobian[l] + self.noise_norm
                    - self.d as f64 * HALF_LN_2PI * f64::from(self.sigma.is_some() as u8);
                for j in 0..self.c {
                    // d/dy [ln s + ln(1 - s)] = 1 - 2 s.
                    let (s, ..) = logistic(q[l * n + j]);
                    g[j] += 1.0 - 2.0 * s;
                }
            }
        }
        self.v = v;
        self.dv = dv;
    }

    /// q of natural variables (theta strictly inside the box).
    fn to_unconstrained(&self, v: &[f64]) -> Vec<f64> {
        let c = self.c;
        let mut q = vec![0.0; self.n];
        for j in 0..c {
            q[j] = logit((v[j] - self.lower[j]) / self.width[j]);
        }
        if let Some(sigma) = &self.sigma {
            for k in 0..self.d {
                q[c + k] = (v[c + k] - self.observed[k]) / sigma[k];
            }
        }
        q
    }

    /// The Hessian of the log-likelihood in natural variables at `v`, by central differences
    /// of the analytic gradient (steps 1e-3 of the box width for theta, 1e-3 sigma for x but at
    /// least 1e-4 (1 + |x|), above f32 rounding), symmetrised; also the gradient at `v`.
    fn natural_hessian(&mut self, v: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (c, n) = (self.c, self.n);
        let steps: Vec<f64> = (0..n)
            .map(|i| {
                if i < c {
                    1e-3 * self.width[i]
                } else {
                    let s = self.sigma.as_ref().map_or(1.0, |s| s[i - c]);
                    (1e-3 * s).max(1e-4 * (1.0 + v[i].abs()))
                }
            })
            .collect();
        // Rows: v, then v + h_i e_i and v - h_i e_i for every i.
        let m = 1 + 2 * n;
        let mut points = vec![0.0; m * n];
        for r in 0..m {
            points[r * n..(r + 1) * n].copy_from_slice(v);
            if r > 0 {
                let i = (r - 1) / 2;
                points[r * n + i] += if r % 2 == 1 { steps[i] } else { -steps[i] };
            }
        }
        let mut values = vec![0.0; m];
        let mut grads = vec![0.0; m * n];
        for first in (0..m).step_by(LANES) {
            let lanes = LANES.min(m - first);
            self.natural(
                &points[first * n..(first + lanes) * n],
                lanes,
                &mut values[first..first + lanes],
                &mut grads[first * n..(first + lanes) * n],
            );
        }
        let mut h = vec![0.0; n * n];
        for i in 0..n {
            for k in 0..n {
                let (plus, minus) = (grads[(1 + 2 * i) * n + k], grads[(2 + 2 * i) * n + k]);
                h[k * n + i] = (plus - minus) / (2.0 * steps[i]);
            }
        }
        symmetrise(&mut h, n);
        if values.iter().any(|v| !v.is_finite()) {
            h.fill(f64::NAN);
        }
        (h, grads[..n].to_vec())
    }
}

fn symmetrise(a: &mut [f64], n: usize) {
    for i in 0..n {
        for k in 0..i {
            let mean = 0.5 * (a[i * n + k] + a[k * n + i]);
            a[i * n + k] = mean;
            a[k * n + i] = mean;
        }
    }
}

/// The inverse of a symmetric positive definite matrix, or None when it is not (to working
/// precision) or not finite.
fn spd_inverse(a: &[f64], n: usize) -> Option<Vec<f64>> {
    if a.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut l = a.to_vec();
    let mut work = Vec::new();
    cholesky_in_place(&mut l, n, n, &mut work).ok()?;
    let mut inv = vec![0.0; n * n];
    let mut col = vec![0.0; n];
    for i in 0..n {
        col.fill(0.0);
        col[i] = 1.0;
        cholesky_solve(&l, n, n, &mut col);
        for k in 0..n {
            inv[k * n + i] = col[k];
        }
    }
    symmetrise(&mut inv, n);
    inv.iter().all(|v| v.is_finite()).then_some(inv)
}

/// The lower Cholesky factor (zero above the diagonal), or None.
fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = a.to_vec();
    let mut work = Vec::new();
    cholesky_in_place(&mut l, n, n, &mut work).ok()?;
    for i in 0..n {
        l[i * n + i + 1..(i + 1) * n].fill(0.0);
    }
    l.iter().all(|v| v.is_finite()).then_some(l)
}

/// Runs `work` on consecutive groups of at most [`LANES`] items, the groups spread over
/// `threads` threads (group g on thread g mod threads); results in item order.
fn in_groups<T: Send>(
    n_items: usize,
    threads: usize,
    work: impl Fn(Range<usize>) -> Result<Vec<T>> + Sync,
) -> Result<Vec<T>> {
    let groups: Vec<Range<usize>> =
        (0..n_items).step_by(LANES).map(|first| first..(first + LANES).min(n_items)).collect();
    let threads = threads.clamp(1, groups.len().max(1));
    let mut results: Vec<Option<Result<Vec<T>>>> = (0..groups.len()).map(|_| None).collect();
    if threads == 1 {
        for (g, range) in groups.iter().enumerate() {
            results[g] = Some(work(range.clone()));
        }
    } else {
        let work = &work;
        let groups = &groups;
        let per_thread: Vec<Vec<(usize, Result<Vec<T>>)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        (t..groups.len()).step_by(threads).map(|g| (g, work(groups[g].clone()))).collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("an inference thread panicked")).collect()
        });
        for (g, result) in per_thread.into_iter().flatten() {
            results[g] = Some(result);
        }
    }
    let mut out = Vec::with_capacity(n_items);
    for result in results {
        out.extend(result.expect("every group ran")?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Maximum likelihood: L-BFGS, one lane per start, advanced in lockstep.

const LBFGS_MEMORY: usize = 8;
const GRADIENT_TOLERANCE: f64 = 1e-6;
const RELATIVE_TOLERANCE: f64 = 1e-12;

/// L-BFGS minimising F = -objective, as a state machine: [`trial`](Self::trial) is the next
/// point to evaluate, [`observe`](Self::observe) takes its value and gradient.
struct Lbfgs {
    n: usize,
    x: Vec<f64>,
    f: f64,
    g: Vec<f64>,
    d: Vec<f64>,
    alpha: f64,
    trial: Vec<f64>,
    s_hist: Vec<Vec<f64>>,
    y_hist: Vec<Vec<f64>>,
    rho: Vec<f64>,
    /// Ring buffer: the newest pair is at (head + len - 1) % m.
    head: usize,
    len: usize,
    started: bool,
    done: bool,
    converged: bool,
    iterations: usize,
    stalls: usize,
    max_iterations: usize,
    gt: Vec<f64>,
    alphas: Vec<f64>,
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

impl Lbfgs {
    fn new(x0: Vec<f64>, max_iterations: usize) -> Self {
        let n = x0.len();
        Self {
            n,
            x: x0.clone(),
            f: f64::INFINITY,
            g: vec![0.0; n],
            d: vec![0.0; n],
            alpha: 1.0,
            trial: x0,
            s_hist: vec![vec![0.0; n]; LBFGS_MEMORY],
            y_hist: vec![vec![0.0; n]; LBFGS_MEMORY],
            rho: vec![0.0; LBFGS_MEMORY],
            head: 0,
            len: 0,
            started: false,
            done: false,
            converged: false,
            iterations: 0,
            stalls: 0,
            max_iterations,
            gt: vec![0.0; n],
            alphas: vec![0.0; LBFGS_MEMORY],
        }
    }

    fn steepest(&mut self) {
        self.len = 0;
        for (d, g) in self.d.iter_mut().zip(&self.g) {
            *d = -g;
        }
        self.alpha = (1.0 / max_abs(&self.g)).min(1.0);
    }

    /// d = -H g by the two-loop recursion.
    fn direction(&mut self) {
        let m = LBFGS_MEMORY;
        self.d.copy_from_slice(&self.g);
        for i in (0..self.len).rev() {
            let slot = (self.head + i) % m;
            let a = self.rho[slot] * dot(&self.s_hist[slot], &self.d);
            self.alphas[slot] = a;
            for (d, y) in self.d.iter_mut().zip(&self.y_hist[slot]) {
                *d -= a * y;
            }
        }
        let newest = (self.head + self.len - 1) % m;
        let gamma =
            dot(&self.s_hist[newest], &self.y_hist[newest]) / dot(&self.y_hist[newest], &self.y_hist[newest]);
        for d in &mut self.d {
            *d *= gamma;
        }
        for i in 0..self.len {
            let slot = (self.head + i) % m;
            let b = self.rho[slot] * dot(&self.y_hist[slot], &self.d);
            for (d, s) in self.d.iter_mut().zip(&self.s_hist[slot]) {
                *d += (self.alphas[slot] - b) * s;
            }
        }
        for d in &mut self.d {
            *d = -*d;
        }
        self.alpha = 1.0;
        if dot(&self.d, &self.g) >= 0.0 || !self.d.iter().all(|d| d.is_finite()) {
            self.steepest();
        }
    }

    fn set_trial(&mut self) {
        for i in 0..self.n {
            self.trial[i] = self.x[i] + self.alpha * self.d[i];
        }
    }

    fn trial(&self) -> &[f64] {
        &self.trial
    }

    fn observe(&mut self, value: f64, grad: &[f64]) {
        let ft = -value;
        for (gt, g) in self.gt.iter_mut().zip(grad) {
            *gt = -g;
        }
        if !self.started {
            self.started = true;
            if !ft.is_finite() {
                self.done = true;
                return;
            }
            self.f = ft;
            self.g.copy_from_slice(&self.gt);
            if max_abs(&self.g) < GRADIENT_TOLERANCE {
                (self.done, self.converged) = (true, true);
                return;
            }
            self.steepest();
            self.set_trial();
            return;
        }
        let slope = dot(&self.g, &self.d);
        if ft.is_finite() && ft <= self.f + 1e-4 * self.alpha * slope {
            // Accepted: store the curvature pair when it is positive.
            let m = LBFGS_MEMORY;
            let slot = if self.len < m { (self.head + self.len) % m } else { self.head };
            let mut sy = 0.0;
            for i in 0..self.n {
                self.s_hist[slot][i] = self.trial[i] - self.x[i];
                self.y_hist[slot][i] = self.gt[i] - self.g[i];
                sy += self.s_hist[slot][i] * self.y_hist[slot][i];
            }
            let (ns, ny) =
                (dot(&self.s_hist[slot], &self.s_hist[slot]), dot(&self.y_hist[slot], &self.y_hist[slot]));
            if sy > 1e-10 * (ns * ny).sqrt() {
                self.rho[slot] = 1.0 / sy;
                if self.len < m {
                    self.len += 1;
                } else {
                    self.head = (self.head + 1) % m;
                }
            }
            let decrease = self.f - ft;
            self.x.copy_from_slice(&self.trial);
            self.f = ft;
            self.g.copy_from_slice(&self.gt);
            self.iterations += 1;
            if max_abs(&self.g) < GRADIENT_TOLERANCE {
                (self.done, self.converged) = (true, true);
                return;
            }
            self.stalls =
                if decrease <= RELATIVE_TOLERANCE * self.f.abs().max(1.0) { self.stalls + 1 } else { 0 };
            if self.stalls >= 3 {
                (self.done, self.converged) = (true, true);
                return;
            }
            if self.iterations >= self.max_iterations {
                self.done = true;
                return;
            }
            if self.len == 0 {
                self.steepest();
            } else {
                self.direction();
            }
        } else {
            // Backtrack: the minimum of the quadratic through f, the slope and ft, kept in
            // [0.1, 0.5] of the step.
            let a = self.alpha;
            let next =
                if ft.is_finite() { -slope * a * a / (2.0 * (ft - self.f - slope * a)) } else { 0.1 * a };
            self.alpha = next.clamp(0.1 * a, 0.5 * a);
            if self.alpha * max_abs(&self.d) < 1e-13 * (1.0 + max_abs(&self.x)) {
                if self.len > 0 {
                    self.steepest();
                } else {
                    // No decrease along the gradient at the resolution of the inputs: the
                    // optimum to the precision the network allows.
                    (self.done, self.converged) = (true, true);
                    return;
                }
            }
        }
        self.set_trial();
    }
}

/// A refined start: (q, log-likelihood, iterations, converged).
type Refined = (Vec<f64>, f64, usize, bool);

/// Refines the starts `range` (unconstrained points) in lockstep; returns (q, -F, iterations,
/// converged) per start.
fn refine_group(problem: &FitProblem, starts: &[Vec<f64>], max_iterations: usize) -> (Vec<Refined>, usize) {
    let mut eval = Evaluator::new(problem);
    let n = eval.n;
    let lanes = starts.len();
    let mut solvers: Vec<Lbfgs> = starts.iter().map(|q| Lbfgs::new(q.clone(), max_iterations)).collect();
    let mut points = vec![0.0; lanes * n];
    let mut values = vec![0.0; lanes];
    let mut grads = vec![0.0; lanes * n];
    // Safety cap: every iteration needs at most ~60 backtracking evaluations.
    for _ in 0..max_iterations.saturating_mul(64) {
        if solvers.iter().all(|s| s.done) {
            break;
        }
        for (l, s) in solvers.iter().enumerate() {
            points[l * n..(l + 1) * n].copy_from_slice(if s.done { &s.x } else { s.trial() });
        }
        eval.unconstrained(&points, lanes, Target::Likelihood, &mut values, &mut grads);
        for (l, s) in solvers.iter_mut().enumerate() {
            if !s.done {
                s.observe(values[l], &grads[l * n..(l + 1) * n]);
            }
        }
    }
    let out = solvers.into_iter().map(|s| (s.x, -s.f, s.iterations, s.converged)).collect();
    (out, eval.rows)
}

/// The maximum-likelihood parameters: a Latin hypercube of `n_starts` points in the box
/// screened in one batch, the best `n_refine` refined by L-BFGS in logit space (see the module
/// documentation), standard errors from the Hessian.
///
/// Errors: those of [`FitProblem::validate`] and [`FitOptions::validate`];
/// [`Error::OutOfDomain`] when no start has a finite log-likelihood.
pub fn maximum_likelihood(problem: &FitProblem, options: &FitOptions) -> Result<MaxLikelihood> {
    problem.validate()?;
    options.validate()?;
    let (c, d) = (problem.n_params(), problem.n_dims());
    let m = options.n_starts;
    // Latin hypercube: per parameter a random permutation of the m strata, a uniform in each.
    let mut stream = Stream::new(options.seed, STREAM_STARTS);
    let mut theta = vec![0.0; m * c];
    let mut strata: Vec<usize> = (0..m).collect();
    for j in 0..c {
        stream.shuffle(&mut strata);
        for i in 0..m {
            let t = (strata[i] as f64 + stream.uniform()) / m as f64;
            let t = t.clamp(1e-9, 1.0 - 1e-9);
            theta[i * c + j] = problem.lower[j] + (problem.upper[j] - problem.lower[j]) * t;
        }
    }
    let context: Vec<f32> = theta.iter().map(|&t| t as f32).collect();
    let x: Vec<f32> = (0..m).flat_map(|_| problem.observed.iter().map(|&v| v as f32)).collect();
    let mut screen = vec![0.0f32; m];
    // The f32 network may overflow far in the tails (OutOfDomain, NaN rows): those starts rank
    // last.
    if let Err(e) = problem.made.log_prob_parallel(&context, &x, options.n_threads, &mut screen) {
        if !matches!(e, Error::OutOfDomain(_)) {
            return Err(e);
        }
        let mut one = [0.0f32];
        for i in 0..m {
            screen[i] =
                match problem.made.log_prob(&context[i * c..(i + 1) * c], &x[i * d..(i + 1) * d], &mut one) {
                    Ok(()) => one[0],
                    Err(_) => f32::NAN,
                };
        }
    }
    let mut order: Vec<usize> = (0..m).collect();
    let key = |i: usize| if screen[i].is_nan() { f32::NEG_INFINITY } else { screen[i] };
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
    let eval = Evaluator::new(problem);
    let starts: Vec<Vec<f64>> = order[..options.n_refine]
        .iter()
        .map(|&i| {
            let mut v = theta[i * c..(i + 1) * c].to_vec();
            if problem.sigma.is_some() {
                v.extend_from_slice(problem.observed);
            }
            eval.to_unconstrained(&v)
        })
        .collect();
    let rows = std::sync::atomic::AtomicUsize::new(m);
    let refined = in_groups(options.n_refine, options.threads(), |range| {
        let (out, used) = refine_group(problem, &starts[range], options.max_iterations);
        rows.fetch_add(used, std::sync::atomic::Ordering::Relaxed);
        Ok(out)
    })?;
    let mut optima: Vec<LocalOptimum> = refined
        .into_iter()
        .map(|(q, log_likelihood, iterations, converged)| {
            let (mut v, mut dv) = (vec![0.0; eval.n], vec![0.0; eval.n]);
            eval.to_natural(&q, &mut v, &mut dv);
            LocalOptimum {
                theta: v[..c].to_vec(),
                latent: problem.sigma.map(|_| v[c..].to_vec()),
                log_likelihood,
                iterations,
                converged,
            }
        })
        .collect();
    // Best first; equal values keep the start order (a stable sort).
    optima.sort_by(|a, b| {
        let key =
            |o: &LocalOptimum| if o.log_likelihood.is_nan() { f64::NEG_INFINITY } else { o.log_likelihood };
        key(b).total_cmp(&key(a))
    });
    let best = &optima[0];
    if !best.log_likelihood.is_finite() {
        return Err(Error::OutOfDomain(format!(
            "the log-likelihood is not finite at any of the {m} starts in the box"
        )));
    }
    let mut v = best.theta.clone();
    if let Some(latent) = &best.latent {
        v.extend_from_slice(latent);
    }
    let mut eval = Evaluator::new(problem);
    let (h, _) = eval.natural_hessian(&v);
    let n = eval.n;
    let neg: Vec<f64> = h.iter().map(|h| -h).collect();
    let covariance = spd_inverse(&neg, n).map(|full| {
        let mut cov = vec![0.0; c * c];
        for i in 0..c {
            cov[i * c..(i + 1) * c].copy_from_slice(&full[i * n..i * n + c]);
        }
        cov
    });
    let standard_errors = covariance.as_ref().map(|cov| (0..c).map(|i| cov[i * c + i].sqrt()).collect());
    let at_boundary = (0..c)
        .map(|j| {
            let w = problem.upper[j] - problem.lower[j];
            (best.theta[j] - problem.lower[j]).min(problem.upper[j] - best.theta[j]) < 1e-4 * w
        })
        .collect();
    Ok(MaxLikelihood {
        theta: best.theta.clone(),
        latent: best.latent.clone(),
        log_likelihood: best.log_likelihood,
        standard_errors,
        covariance,
        at_boundary,
        n_evaluations: rows.into_inner() + eval.rows,
        optima,
    })
}

// ---------------------------------------------------------------------------------------------
// HMC.

/// Dual averaging of log epsilon (Hoffman & Gelman 2014, algorithm 5): Stan's t0, kappa and
/// mu = ln(10 epsilon), but gamma = 0.1 rather than 0.05. With trajectories of random length
/// the acceptance probability of one iteration is noisy, the iterates swing widely (0.2 to 10
/// times the final step) and the averaged step then accepts far above the target (0.92 for
/// 0.8 on tests/inference's linear model and 0.93 on the benchmark's model); gamma = 0.1
/// damps the swings: 0.86 and 0.83, for about 30% fewer gradient evaluations.
#[derive(Clone, Debug)]
struct DualAveraging {
    mu: f64,
    h_bar: f64,
    log_eps_bar: f64,
    t: f64,
    delta: f64,
}

impl DualAveraging {
    const GAMMA: f64 = 0.1;
    const T0: f64 = 10.0;
    const KAPPA: f64 = 0.75;

    fn new(eps: f64, delta: f64) -> Self {
        Self { mu: math::ln(10.0 * eps), h_bar: 0.0, log_eps_bar: 0.0, t: 0.0, delta }
    }

    /// Takes an acceptance probability, returns the next step size.
    fn update(&mut self, accept: f64) -> f64 {
        self.t += 1.0;
        let eta = 1.0 / (self.t + Self::T0);
        self.h_bar = (1.0 - eta) * self.h_bar + eta * (self.delta - accept);
        let log_eps = self.mu - self.t.sqrt() / Self::GAMMA * self.h_bar;
        let weight = math::powf(self.t, -Self::KAPPA);
        self.log_eps_bar = weight * log_eps + (1.0 - weight) * self.log_eps_bar;
        math::exp(log_eps)
    }

    fn final_step(&self) -> f64 {
        math::exp(self.log_eps_bar)
    }
}

/// The metric Sigma (M^-1) and its lower Cholesky factor.
#[derive(Clone, Debug)]
struct Metric {
    n: usize,
    sigma: Vec<f64>,
    chol: Vec<f64>,
}

impl Metric {
    fn new(sigma: Vec<f64>, n: usize, dense: bool) -> Self {
        let mut sigma = sigma;
        if !dense {
            for i in 0..n {
                for k in 0..n {
                    if i != k {
                        sigma[i * n + k] = 0.0;
                    }
                }
            }
        }
        let chol = cholesky(&sigma, n).unwrap_or_else(|| {
            // A diagonal fallback (positive by construction of the callers).
            let mut diag = vec![0.0; n * n];
            for i in 0..n {
                diag[i * n + i] = sigma[i * n + i].max(1e-300);
            }
            sigma = diag.clone();
            for i in 0..n {
                diag[i * n + i] = diag[i * n + i].sqrt();
            }
            diag
        });
        Self { n, sigma, chol }
    }

    /// p = L^-T xi ~ N(0, Sigma^-1) from xi ~ N(0, I) (in place).
    fn momentum(&self, p: &mut [f64]) {
        let n = self.n;
        for i in (0..n).rev() {
            let mut s = p[i];
            for k in i + 1..n {
                s -= self.chol[k * n + i] * p[k];
            }
            p[i] = s / self.chol[i * n + i];
        }
    }

    /// v = Sigma p.
    fn velocity(&self, p: &[f64], v: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            v[i] = dot(&self.sigma[i * n..(i + 1) * n], p);
        }
    }
}

/// Welford accumulator of the mean and covariance of a window's draws.
#[derive(Clone, Debug)]
struct Moments {
    n: usize,
    count: usize,
    mean: Vec<f64>,
    m2: Vec<f64>,
    delta: Vec<f64>,
}

impl Moments {
    fn new(n: usize) -> Self {
        Self { n, count: 0, mean: vec![0.0; n], m2: vec![0.0; n * n], delta: vec![0.0; n] }
    }

    fn reset(&mut self) {
        self.count = 0;
        self.mean.fill(0.0);
        self.m2.fill(0.0);
    }

    fn add(&mut self, q: &[f64]) {
        let n = self.n;
        self.count += 1;
        let k = self.count as f64;
        for i in 0..n {
            self.delta[i] = q[i] - self.mean[i];
            self.mean[i] += self.delta[i] / k;
        }
        for i in 0..n {
            for j in 0..n {
                self.m2[i * n + j] += self.delta[i] * (q[j] - self.mean[j]);
            }
        }
    }

    /// The sample covariance shrunk towards its diagonal (weight n / (count + n)) and, as
    /// Stan's, towards a small multiple of it (count / (count + 5), 1e-3 diag 5 / (count + 5)).
    fn metric(&self) -> Vec<f64> {
        let (n, m) = (self.n, self.count as f64);
        let lambda = n as f64 / (m + n as f64);
        let mut s = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                let cov = self.m2[i * n + j] / (m - 1.0);
                let shrunk = if i == j { cov } else { (1.0 - lambda) * cov };
                s[i * n + j] = m / (m + 5.0) * shrunk;
            }
            let var = self.m2[i * n + i] / (m - 1.0);
            s[i * n + i] += 1e-3 * 5.0 / (m + 5.0) * var + 1e-300;
        }
        s
    }
}

/// One chain's state.
struct Chain {
    stream: Stream,
    q: Vec<f64>,
    logp: f64,
    grad: Vec<f64>,
    q1: Vec<f64>,
    p: Vec<f64>,
    p0: Vec<f64>,
    v: Vec<f64>,
    grad1: Vec<f64>,
    logp1: f64,
    h0: f64,
    steps: usize,
    alive: bool,
    eps: f64,
    metric: Metric,
    da: DualAveraging,
    window: Moments,
    accept_sum: f64,
    divergences: usize,
    gradient_evaluations: usize,
    // Step-size search (Hoffman & Gelman 2014, algorithm 4).
    search_direction: f64,
    searching: bool,
}

impl Chain {
    fn kinetic(&mut self) -> f64 {
        self.metric.velocity(&self.p, &mut self.v);
        0.5 * dot(&self.p, &self.v)
    }

    fn draw_momentum(&mut self) {
        for p in &mut self.p {
            *p = self.stream.normal();
        }
        self.metric.momentum(&mut self.p);
    }

    /// Starts a trajectory from q with the current momentum: half a kick.
    fn begin(&mut self) {
        self.h0 = -self.logp + self.kinetic();
        self.q1.copy_from_slice(&self.q);
        self.grad1.copy_from_slice(&self.grad);
        self.logp1 = self.logp;
        for (p, g) in self.p.iter_mut().zip(&self.grad1) {
            *p += 0.5 * self.eps * g;
        }
        self.alive = true;
    }

    /// The drift of a leapfrog step.
    fn drift(&mut self) {
        self.metric.velocity(&self.p, &mut self.v);
        for (q, v) in self.q1.iter_mut().zip(&self.v) {
            *q += self.eps * v;
        }
    }

    /// The kick after a new gradient: a full one, or half at the end.
    fn kick(&mut self, last: bool) {
        let f = if last { 0.5 } else { 1.0 } * self.eps;
        for (p, g) in self.p.iter_mut().zip(&self.grad1) {
            *p += f * g;
        }
    }

    /// The acceptance probability of the finished trajectory (0 for a divergence).
    fn accept_probability(&mut self) -> (f64, bool) {
        if !self.alive || !self.logp1.is_finite() {
            return (0.0, true);
        }
        let h1 = -self.logp1 + self.kinetic();
        let dh = h1 - self.h0;
        if !dh.is_finite() || dh > 1000.0 {
            return (0.0, true);
        }
        (math::exp(-dh).min(1.0), false)
    }

    fn accept(&mut self) {
        self.q.copy_from_slice(&self.q1);
        self.grad.copy_from_slice(&self.grad1);
        self.logp = self.logp1;
    }
}

/// Windows of metric adaptation: (first, end) iteration ranges, Stan's schedule.
fn adaptation_windows(warmup: usize) -> Vec<Range<usize>> {
    if warmup < 20 {
        return Vec::new();
    }
    let (mut init, mut term, mut base) = (75, 50, 25);
    if init + term + base > warmup {
        init = warmup * 15 / 100;
        term = warmup / 10;
        base = warmup - init - term;
    }
    let last = warmup - term;
    let mut windows = Vec::new();
    let (mut start, mut size) = (init, base);
    while start < last {
        let mut end = start + size;
        if end + 2 * size > last {
            end = last;
        }
        windows.push(start..end);
        start = end;
        size *= 2;
    }
    windows
}

/// Evaluates the target at every chain's q1 (one tile) and stores it in (logp1, grad1) of the
/// chains flagged in `active`.
fn evaluate_chains(
    eval: &mut Evaluator,
    chains: &mut [Chain],
    active: &[bool],
    buf: &mut [f64],
    values: &mut [f64],
    grads: &mut [f64],
) {
    let n = eval.n;
    let lanes = chains.len();
    for (l, chain) in chains.iter().enumerate() {
        buf[l * n..(l + 1) * n].copy_from_slice(&chain.q1);
    }
    eval.unconstrained(
        &buf[..lanes * n],
        lanes,
        Target::Posterior,
        &mut values[..lanes],
        &mut grads[..lanes * n],
    );
    for (l, chain) in chains.iter_mut().enumerate() {
        if active[l] {
            chain.logp1 = values[l];
            chain.grad1.copy_from_slice(&grads[l * n..(l + 1) * n]);
            chain.gradient_evaluations += 1;
        }
    }
}

/// What a chain returns.
struct ChainOutput {
    theta: Vec<f64>,
    latent: Vec<f64>,
    log_likelihood: Vec<f64>,
    accept_rate: f64,
    step_size: f64,
    divergences: usize,
    gradient_evaluations: usize,
    /// The group's tiles, on its first chain (0 on the others).
    tiles: usize,
}

struct GroupScratch {
    buf: Vec<f64>,
    values: Vec<f64>,
    grads: Vec<f64>,
}

/// The initial step size of every chain (Hoffman & Gelman 2014, algorithm 4): double or halve
/// epsilon until the one-step acceptance probability crosses 1/2; chains in lockstep.
fn find_step_sizes(eval: &mut Evaluator, chains: &mut [Chain], scratch: &mut GroupScratch) {
    for chain in chains.iter_mut() {
        chain.draw_momentum();
        chain.p0.copy_from_slice(&chain.p);
        chain.searching = true;
        chain.search_direction = 0.0;
    }
    for _round in 0..60 {
        if chains.iter().all(|c| !c.searching) {
            break;
        }
        let active: Vec<bool> = chains.iter().map(|c| c.searching).collect();
        for chain in chains.iter_mut().filter(|c| c.searching) {
            chain.p.copy_from_slice(&chain.p0);
            chain.begin();
            chain.drift();
        }
        evaluate_chains(eval, chains, &active, &mut scratch.buf, &mut scratch.values, &mut scratch.grads);
        for chain in chains.iter_mut().filter(|c| c.searching) {
            chain.kick(true);
            let (accept, _) = chain.accept_probability();
            let direction = if accept > 0.5 { 1.0 } else { -1.0 };
            if chain.search_direction == 0.0 {
                chain.search_direction = direction;
            } else if direction != chain.search_direction {
                chain.searching = false;
                continue;
            }
            let next = chain.eps * math::powf(2.0, chain.search_direction);
            if !(1e-10..=1e4).contains(&next) {
                chain.searching = false;
                continue;
            }
            chain.eps = next;
        }
    }
}

/// Runs the chains `ids` in lockstep, chain i from `starts[i % k]` (unconstrained point and
/// first metric): warm-up, then the kept iterations.
fn run_chains(
    problem: &FitProblem,
    options: &FitOptions,
    ids: Range<usize>,
    starts: &[(Vec<f64>, Vec<f64>)],
) -> Result<Vec<ChainOutput>> {
    let mut eval = Evaluator::new(problem);
    let (c, d, n) = (eval.c, eval.d, eval.n);
    let lanes = ids.len();
    let metrics: Vec<Metric> =
        starts.iter().map(|(_, m)| Metric::new(m.clone(), n, options.dense_metric)).collect();
    let mut chains: Vec<Chain> = ids
        .clone()
        .map(|id| {
            let mut stream = Stream::new(options.seed, id as u64);
            let (start, metric) = (&starts[id % starts.len()].0, &metrics[id % starts.len()]);
            // Start: q0 + L0 xi, a draw from the Laplace approximation at the start.
            let mut xi: Vec<f64> = (0..n).map(|_| stream.normal()).collect();
            let mut q = start.to_vec();
            for i in 0..n {
                let shift: f64 = (0..=i).map(|k| metric.chol[i * n + k] * xi[k]).sum();
                q[i] += shift;
            }
            xi.fill(0.0);
            Chain {
                stream,
                q: q.clone(),
                logp: f64::NEG_INFINITY,
                grad: vec![0.0; n],
                q1: q,
                p: xi,
                p0: vec![0.0; n],
                v: vec![0.0; n],
                grad1: vec![0.0; n],
                logp1: f64::NEG_INFINITY,
                h0: 0.0,
                steps: 0,
                alive: true,
                eps: 1.0,
                metric: metric.clone(),
                da: DualAveraging::new(1.0, options.target_accept),
                window: Moments::new(n),
                accept_sum: 0.0,
                divergences: 0,
                gradient_evaluations: 0,
                search_direction: 0.0,
                searching: false,
            }
        })
        .collect();
    let mut scratch =
        GroupScratch { buf: vec![0.0; LANES * n], values: vec![0.0; LANES], grads: vec![0.0; LANES * n] };
    let all = vec![true; lanes];
    evaluate_chains(&mut eval, &mut chains, &all, &mut scratch.buf, &mut scratch.values, &mut scratch.grads);
    // A jittered start outside the density's support falls back to the start itself.
    let mut retry = vec![false; lanes];
    for (l, chain) in chains.iter_mut().enumerate() {
        if !chain.logp1.is_finite() {
            chain.q1.copy_from_slice(&starts[(ids.start + l) % starts.len()].0);
            retry[l] = true;
        }
    }
    if retry.iter().any(|&r| r) {
        evaluate_chains(
            &mut eval,
            &mut chains,
            &retry,
            &mut scratch.buf,
            &mut scratch.values,
            &mut scratch.grads,
        );
    }
    for (l, chain) in chains.iter_mut().enumerate() {
        if !chain.logp1.is_finite() {
            return Err(Error::OutOfDomain(format!(
                "chain {}: the log-density is not finite at the start",
                ids.start + l
            )));
        }
        chain.q.copy_from_slice(&chain.q1);
        chain.accept();
    }
    find_step_sizes(&mut eval, &mut chains, &mut scratch);
    for chain in chains.iter_mut() {
        chain.da = DualAveraging::new(chain.eps, options.target_accept);
    }
    let windows = adaptation_windows(options.warmup);
    let total = options.warmup + options.samples_per_chain;
    let kept = options.samples_per_chain;
    let mut outputs: Vec<ChainOutput> = (0..lanes)
        .map(|_| ChainOutput {
            theta: Vec::with_capacity(kept * c),
            latent: Vec::with_capacity(if problem.sigma.is_some() { kept * d } else { 0 }),
            log_likelihood: Vec::with_capacity(kept),
            accept_rate: 0.0,
            step_size: 0.0,
            divergences: 0,
            gradient_evaluations: 0,
            tiles: 0,
        })
        .collect();
    let mut active = vec![false; lanes];
    let (mut v, mut dv) = (vec![0.0; n], vec![0.0; n]);
    let mut lengths = Stream::new(options.seed, STREAM_LENGTHS);
    for iteration in 0..total {
        let warming = iteration < options.warmup;
        if iteration == options.warmup {
            for chain in chains.iter_mut() {
                if options.warmup > 0 {
                    chain.eps = chain.da.final_step();
                }
            }
        }
        // Momenta, trajectory lengths, the first half kick. The lengths' uniform is shared by
        // all chains (a function of the seed and the iteration, independent of every state,
        // so each chain's kernel still leaves the posterior invariant): chains in a tile then
        // run trajectories of similar length rather than all waiting for the longest of 8
        // independent draws.
        let u = lengths.uniform();
        let mut longest = 0;
        for chain in chains.iter_mut() {
            chain.draw_momentum();
            let max_steps = ((PI / chain.eps).ceil() as usize).clamp(1, options.max_leapfrog);
            chain.steps = 1 + ((u * max_steps as f64) as usize).min(max_steps - 1);
            longest = longest.max(chain.steps);
            chain.begin();
        }
        for step in 0..longest {
            for (l, chain) in chains.iter_mut().enumerate() {
                active[l] = chain.alive && step < chain.steps;
                if active[l] {
                    chain.drift();
                }
            }
            if !active.iter().any(|&a| a) {
                break;
            }
            evaluate_chains(
                &mut eval,
                &mut chains,
                &active,
                &mut scratch.buf,
                &mut scratch.values,
                &mut scratch.grads,
            );
            for (l, chain) in chains.iter_mut().enumerate() {
                if active[l] {
                    if chain.logp1.is_finite() {
                        chain.kick(step + 1 == chain.steps);
                    } else {
                        chain.alive = false;
                    }
                }
            }
        }
        for (l, chain) in chains.iter_mut().enumerate() {
            let (accept, divergent) = chain.accept_probability();
            if chain.stream.uniform() < accept {
                chain.accept();
            }
            if warming {
                chain.eps = chain.da.update(accept);
                if windows.iter().any(|w| w.contains(&iteration)) {
                    chain.window.add(&chain.q);
                }
            } else {
                chain.accept_sum += accept;
                chain.divergences += usize::from(divergent);
                let log_jacobian = eval.to_natural(&chain.q, &mut v, &mut dv);
                let out = &mut outputs[l];
                out.theta.extend_from_slice(&v[..c]);
                out.latent.extend_from_slice(&v[c..]);
                let noise =
                    if problem.sigma.is_some() { eval.noise_norm - d as f64 * HALF_LN_2PI } else { 0.0 };
                out.log_likelihood.push(chain.logp - log_jacobian - noise);
            }
        }
        // The end of a metric window: the new metric, a new step-size search, dual averaging
        // restarted.
        if warming && windows.iter().any(|w| w.end == iteration + 1) {
            for chain in chains.iter_mut() {
                chain.metric = Metric::new(chain.window.metric(), n, options.dense_metric);
                chain.window.reset();
            }
            find_step_sizes(&mut eval, &mut chains, &mut scratch);
            for chain in chains.iter_mut() {
                chain.da = DualAveraging::new(chain.eps, options.target_accept);
            }
        }
    }
    for (out, chain) in outputs.iter_mut().zip(&chains) {
        out.accept_rate = chain.accept_sum / kept as f64;
        out.step_size = chain.eps;
        out.divergences = chain.divergences;
        out.gradient_evaluations = chain.gradient_evaluations;
    }
    outputs[0].tiles = eval.rows / LANES;
    Ok(outputs)
}

/// A posterior sample by HMC from `start`: theta [C] in the box (a point on an edge, as a
/// maximum there, is moved inside to |y| = 5, 0.7% of the width), optionally followed by
/// x_true [D] when the problem has sigma (else x_true starts at x_obs).
///
/// Errors: those of [`FitProblem::validate`] and [`FitOptions::validate`];
/// [`Error::InvalidArgument`] for a start of the wrong length, not finite or outside the box; [`Error::OutOfDomain`] when the log-density is not finite at the start.
pub fn sample_posterior(problem: &FitProblem, options: &FitOptions, start: &[f64]) -> Result<Posterior> {
    sample_posterior_from(problem, options, &[start.to_vec()])
}

/// As [`sample_posterior`] with several starts: chain i starts from `starts[i % k]` (each
/// with its own Laplace metric). Chains started in separate modes that they cannot leave show
/// up in R-hat.
///
/// Errors: as [`sample_posterior`] (a bad start is named `starts[i]`), and no start.
pub fn sample_posterior_from(
    problem: &FitProblem,
    options: &FitOptions,
    starts: &[Vec<f64>],
) -> Result<Posterior> {
    problem.validate()?;
    options.validate()?;
    let (c, d) = (problem.n_params(), problem.n_dims());
    let n = problem.n_variables();
    if starts.is_empty() {
        return Err(invalid("no start point".into()));
    }
    let mut eval = Evaluator::new(problem);
    let mut prepared = Vec::with_capacity(starts.len());
    for (i, start) in starts.iter().enumerate() {
        let name = if starts.len() == 1 { "start".to_string() } else { format!("starts[{i}]") };
        if start.len() != c && start.len() != n {
            return Err(invalid(format!(
                "{name} has {} values, expected {c} parameters{}",
                start.len(),
                if n > c { format!(" (or {n}: parameters and x_true)") } else { String::new() }
            )));
        }
        if let Some(k) = start.iter().position(|v| !v.is_finite()) {
            return Err(invalid(format!("{name}[{k}] is {} (must be finite)", start[k])));
        }
        for j in 0..c {
            if !(start[j] >= problem.lower[j] && start[j] <= problem.upper[j]) {
                return Err(invalid(format!(
                    "{name}[{j}] = {} is outside the box [{}, {}]",
                    start[j], problem.lower[j], problem.upper[j]
                )));
            }
        }
        let mut v = start[..c].to_vec();
        if problem.sigma.is_some() {
            v.extend_from_slice(if start.len() == n { &start[c..] } else { problem.observed });
        }
        // Keep the start off the edges (an edge maximum has y -> infinity): |y| <= 5.
        let mut q = eval.to_unconstrained(&v);
        for y in &mut q[..c] {
            *y = y.clamp(-5.0, 5.0);
        }
        let (mut v0, mut dv) = (vec![0.0; n], vec![0.0; n]);
        eval.to_natural(&q, &mut v0, &mut dv);
        let metric0 = laplace_metric(&mut eval, &q, &v0, &dv);
        prepared.push((q, metric0));
    }
    let outputs =
        in_groups(options.n_chains, options.threads(), |ids| run_chains(problem, options, ids, &prepared))?;
    let (chains, kept) = (options.n_chains, options.samples_per_chain);
    let mut posterior = Posterior {
        n_params: c,
        n_chains: chains,
        samples_per_chain: kept,
        theta: Vec::with_capacity(chains * kept * c),
        latent: problem.sigma.map(|_| Vec::with_capacity(chains * kept * d)),
        log_likelihood: Vec::with_capacity(chains * kept),
        accept_rate: Vec::with_capacity(chains),
        step_size: Vec::with_capacity(chains),
        divergences: Vec::with_capacity(chains),
        gradient_evaluations: Vec::with_capacity(chains),
        n_tiles: eval.rows / LANES,
        summary: Vec::new(),
        latent_summary: None,
    };
    for out in outputs {
        posterior.theta.extend_from_slice(&out.theta);
        if let Some(latent) = &mut posterior.latent {
            latent.extend_from_slice(&out.latent);
        }
        posterior.log_likelihood.extend_from_slice(&out.log_likelihood);
        posterior.accept_rate.push(out.accept_rate);
        posterior.step_size.push(out.step_size);
        posterior.divergences.push(out.divergences);
        posterior.gradient_evaluations.push(out.gradient_evaluations);
        posterior.n_tiles += out.tiles;
    }
    posterior.summary = (0..c).map(|j| summarize(&posterior.theta, chains, kept, c, j)).collect();
    posterior.latent_summary = posterior
        .latent
        .as_ref()
        .map(|latent| (0..d).map(|k| summarize(latent, chains, kept, d, k)).collect());
    Ok(posterior)
}

/// The first metric: the inverse of -H of the log-posterior in (y, z) at q (the Laplace
/// approximation), H = J H_v J + diag(v'' g_v) - diag(2 s (1 - s)) from the natural Hessian
/// H_v; the variance of y capped at 4. Where -H is not positive definite, its diagonal (1
/// where that is not positive).
fn laplace_metric(eval: &mut Evaluator, q: &[f64], v: &[f64], dv: &[f64]) -> Vec<f64> {
    let (c, n) = (eval.c, eval.n);
    let (hv, gv) = eval.natural_hessian(v);
    let mut neg = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            neg[i * n + k] = -dv[i] * hv[i * n + k] * dv[k];
        }
    }
    for j in 0..c {
        let (s, _, _, s1ms) = logistic(q[j]);
        // theta'' = w s (1 - s) (1 - 2 s) = dv (1 - 2 s).
        neg[j * n + j] -= dv[j] * (1.0 - 2.0 * s) * gv[j];
        neg[j * n + j] += 2.0 * s1ms;
    }
    let mut sigma = spd_inverse(&neg, n).unwrap_or_else(|| {
        let mut diag = vec![0.0; n * n];
        for i in 0..n {
            let h = neg[i * n + i];
            diag[i * n + i] = if h.is_finite() && h > 0.0 { 1.0 / h } else { 1.0 };
        }
        diag
    });
    // Cap the y variances at 4 (scaling the rows and columns to keep it positive definite).
    for j in 0..c {
        let var = sigma[j * n + j];
        if var > 4.0 {
            let f = (4.0 / var).sqrt();
            for k in 0..n {
                sigma[j * n + k] *= f;
                sigma[k * n + j] *= f;
            }
        }
    }
    sigma
}

/// Local maxima within this many nats of the best start chains of their own in [`fit`] (a
/// density ratio of 1/20).
pub const MODE_GAP: f64 = 3.0;

/// [`maximum_likelihood`], then [`sample_posterior_from`] started at the maximum (with
/// x_true at the joint maximum when the problem has sigma) and at every other distinct local
/// maximum (more than 1e-3 of the box width apart in some parameter) whose log-likelihood is
/// within [`MODE_GAP`] of the best, the chains assigned in turn: a second mode of comparable
/// height then shows up in R-hat rather than being missed.
pub fn fit(problem: &FitProblem, options: &FitOptions) -> Result<FitResult> {
    let max_likelihood = maximum_likelihood(problem, options)?;
    let mut starts: Vec<Vec<f64>> = Vec::new();
    let mut chosen: Vec<&LocalOptimum> = Vec::new();
    for optimum in &max_likelihood.optima {
        let near = optimum.log_likelihood >= max_likelihood.log_likelihood - MODE_GAP;
        if !near || starts.len() == options.n_chains {
            continue;
        }
        let distinct = chosen.iter().all(|other| {
            (0..problem.n_params()).any(|j| {
                let w = problem.upper[j] - problem.lower[j];
                (optimum.theta[j] - other.theta[j]).abs() > 1e-3 * w
            })
        });
        if !distinct {
            continue;
        }
        chosen.push(optimum);
        let mut start = optimum.theta.clone();
        if let Some(latent) = &optimum.latent {
            start.extend_from_slice(latent);
        }
        starts.push(start);
    }
    let posterior = sample_posterior_from(problem, options, &starts)?;
    Ok(FitResult { max_likelihood, posterior })
}

// ---------------------------------------------------------------------------------------------
// Summaries and diagnostics.

/// The p-quantile of sorted values (linear interpolation between order statistics, R's type
/// 7).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Each chain cut in two halves (the middle draw dropped for an odd length).
fn split_chains(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(2 * chains.len());
    for chain in chains {
        let half = chain.len() / 2;
        out.push(chain[..half].to_vec());
        out.push(chain[chain.len() - half..].to_vec());
    }
    out
}

/// Normal scores of the pooled ranks (average ranks for ties): Phi^-1((r - 3/8) / (S + 1/4)).
fn rank_normalise(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let all: Vec<(f64, usize, usize)> = chains
        .iter()
        .enumerate()
        .flat_map(|(m, chain)| chain.iter().enumerate().map(move |(i, &x)| (x, m, i)))
        .collect();
    let total = all.len();
    let mut order: Vec<usize> = (0..total).collect();
    order.sort_by(|&a, &b| all[a].0.total_cmp(&all[b].0));
    let mut out: Vec<Vec<f64>> = chains.iter().map(|c| vec![0.0; c.len()]).collect();
    let mut i = 0;
    while i < total {
        let mut j = i;
        while j + 1 < total && all[order[j + 1]].0 == all[order[i]].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let z = standard_normal_quantile((rank - 0.375) / (total as f64 + 0.25));
        for &k in &order[i..=j] {
            let (_, m, t) = all[k];
            out[m][t] = z;
        }
        i = j + 1;
    }
    out
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// Split-R-hat of already split chains (Vehtari et al. 2021, eqs. 1 to 4).
fn r_hat(chains: &[Vec<f64>]) -> f64 {
    let m = chains.len() as f64;
    let n = chains[0].len() as f64;
    let stats: Vec<(f64, f64)> = chains.iter().map(|c| mean_var(c)).collect();
    let grand = stats.iter().map(|s| s.0).sum::<f64>() / m;
    let b = n / (m - 1.0) * stats.iter().map(|s| (s.0 - grand) * (s.0 - grand)).sum::<f64>();
    let w = stats.iter().map(|s| s.1).sum::<f64>() / m;
    let var_plus = (n - 1.0) / n * w + b / n;
    (var_plus / w).sqrt()
}

/// The effective sample size of chains (Geyer's initial monotone sequence, as Stan's
/// `compute_effective_sample_size`).
fn ess(chains: &[Vec<f64>]) -> f64 {
    let m = chains.len();
    let n = chains[0].len();
    if n < 4 {
        return f64::NAN;
    }
    let stats: Vec<(f64, f64)> = chains.iter().map(|c| mean_var(c)).collect();
    let acov = |t: usize| -> f64 {
        let mut sum = 0.0;
        for (chain, &(mean, _)) in chains.iter().zip(&stats) {
            let mut s = 0.0;
            for i in 0..n - t {
                s += (chain[i] - mean) * (chain[i + t] - mean);
            }
            sum += s / n as f64;
        }
        sum / m as f64
    };
    let mean_var = acov(0) * n as f64 / (n as f64 - 1.0);
    let mut var_plus = mean_var * (n as f64 - 1.0) / n as f64;
    if m > 1 {
        let means: Vec<f64> = stats.iter().map(|s| s.0).collect();
        var_plus += mean_var_of(&means);
    }
    if var_plus.is_nan() || var_plus <= 0.0 {
        return f64::NAN;
    }
    let rho = |t: usize| 1.0 - (mean_var - acov(t)) / var_plus;
    let mut rho_hat = vec![0.0; n];
    rho_hat[0] = 1.0;
    let mut even = 1.0;
    let mut odd = rho(1);
    rho_hat[1] = odd;
    let mut s = 1;
    while s < n - 4 && even + odd > 0.0 {
        even = rho(s + 1);
        odd = rho(s + 2);
        if even + odd >= 0.0 {
            rho_hat[s + 1] = even;
            rho_hat[s + 2] = odd;
        }
        s += 2;
    }
    let max_s = s;
    if even > 0.0 && max_s + 1 < n {
        rho_hat[max_s + 1] = even;
    }
    let mut k = 1;
    while k + 3 <= max_s {
        if rho_hat[k + 1] + rho_hat[k + 2] > rho_hat[k - 1] + rho_hat[k] {
            rho_hat[k + 1] = (rho_hat[k - 1] + rho_hat[k]) / 2.0;
            rho_hat[k + 2] = rho_hat[k + 1];
        }
        k += 2;
    }
    let total = (m * n) as f64;
    let tail = if max_s + 1 < n { rho_hat[max_s + 1] } else { 0.0 };
    let tau = (-1.0 + 2.0 * rho_hat[..max_s].iter().sum::<f64>() + tail).max(1.0 / math::log10(total));
    total / tau
}

/// The sample variance (n - 1) of values.
fn mean_var_of(x: &[f64]) -> f64 {
    mean_var(x).1
}

/// The summary of variable `index` of draws [chain][draw][stride].
fn summarize(draws: &[f64], n_chains: usize, n_draws: usize, stride: usize, index: usize) -> ParamSummary {
    let chains: Vec<Vec<f64>> = (0..n_chains)
        .map(|ch| (0..n_draws).map(|i| draws[(ch * n_draws + i) * stride + index]).collect())
        .collect();
    let mut sorted: Vec<f64> = chains.iter().flatten().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let (mean, var) = mean_var(&sorted);
    let sd = var.sqrt();
    let median = quantile(&sorted, 0.5);
    let split = split_chains(&chains);
    let bulk = rank_normalise(&split);
    let folded: Vec<Vec<f64>> =
        split.iter().map(|c| c.iter().map(|x| (x - median).abs()).collect()).collect();
    let r_hat = r_hat(&bulk).max(r_hat(&rank_normalise(&folded)));
    let ess_bulk = ess(&bulk);
    let indicator = |q: f64, below: bool| -> Vec<Vec<f64>> {
        split.iter().map(|c| c.iter().map(|&x| f64::from(u8::from((x <= q) == below))).collect()).collect()
    };
    let ess_tail =
        ess(&indicator(quantile(&sorted, 0.05), true)).min(ess(&indicator(quantile(&sorted, 0.95), false)));
    let ess_mean = ess(&split);
    let squares: Vec<Vec<f64>> =
        split.iter().map(|c| c.iter().map(|x| (x - mean) * (x - mean)).collect()).collect();
    let ess_square = ess(&squares);
    let sd_of_squares = mean_var_of(&squares.concat()).sqrt();
    ParamSummary {
        mean,
        sd,
        median,
        interval_68: [quantile(&sorted, 0.16), quantile(&sorted, 0.84)],
        interval_95: [quantile(&sorted, 0.025), quantile(&sorted, 0.975)],
        r_hat,
        ess_bulk,
        ess_tail,
        mcse_mean: sd / ess_mean.sqrt(),
        mcse_sd: sd_of_squares / ess_square.sqrt() / (2.0 * sd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_stans_schedule() {
        // 1000 warm-up iterations: 75, then 25, 50, 100, 200, 500 (the last stretched to 950).
        let w = adaptation_windows(1000);
        let ends: Vec<usize> = w.iter().map(|r| r.end).collect();
        assert_eq!(w[0].start, 75);
        assert_eq!(ends, [100, 150, 250, 450, 950]);
        assert!(adaptation_windows(10).is_empty());
        let w = adaptation_windows(100);
        assert_eq!((w[0].start, w.last().unwrap().end), (15, 90));
    }

    #[test]
    fn logistic_is_stable_and_consistent() {
        for y in [-800.0, -30.0, -1.0, 0.0, 0.5, 30.0, 800.0] {
            let (s, ln_s, ln_1ms, s1ms) = logistic(y);
            assert!(s.is_finite() && ln_s.is_finite() && ln_1ms.is_finite() && s1ms.is_finite(), "{y}");
            if f64::abs(y) < 30.0 {
                assert!((ln_s - s.ln()).abs() < 1e-14 && (ln_1ms - (1.0 - s).ln()).abs() < 1e-12);
                assert!((s1ms - s * (1.0 - s)).abs() < 1e-15);
                assert!((logit(s) - y).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn ess_and_r_hat_of_independent_draws() {
        let mut stream = Stream::new(5, 0);
        let chains: Vec<Vec<f64>> = (0..4).map(|_| (0..1000).map(|_| stream.normal()).collect()).collect();
        let split = split_chains(&chains);
        let e = ess(&split);
        assert!(e > 3000.0 && e < 5000.0, "{e}");
        assert!((r_hat(&split) - 1.0).abs() < 0.01);
        // An AR(1) chain with phi = 0.9: ESS / N = (1 - phi) / (1 + phi) = 0.0526.
        let ar: Vec<Vec<f64>> = (0..4)
            .map(|_| {
                let mut x = 0.0;
                (0..5000)
                    .map(|_| {
                        x = 0.9 * x + (1.0f64 - 0.81).sqrt() * stream.normal();
                        x
                    })
                    .collect()
            })
            .collect();
        let e = ess(&split_chains(&ar)) / 20000.0;
        assert!((e - 0.0526).abs() < 0.012, "{e}");
        // Chains around different means: R-hat well above 1.
        let shifted: Vec<Vec<f64>> =
            chains.iter().enumerate().map(|(m, c)| c.iter().map(|x| x + m as f64).collect()).collect();
        assert!(r_hat(&split_chains(&shifted)) > 1.5);
    }
}
