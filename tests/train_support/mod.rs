//! A known conditional, non-Gaussian, heavy-tailed distribution with an exact log-density, for
//! testing the MADE-MoG trainer (issue 16, "Training": the trained model's test NLL against the
//! true NLL). The same distribution as tests/reference/known_density.py (which computes the
//! density independently with scipy.stats and writes tests/data/train/known_density_points.json):
//!
//! - context c = (c1, c2) uniform on [-1, 1]^2;
//! - x1 | c: Student-t with nu = 4, location m1 = 0.5 c1 + 0.3 sin(pi c2), scale
//!   s1 = 0.5 exp(0.3 c2 - 0.2 c1);
//! - x2 | x1, c: normal, mean 1.2 tanh(2 x1) + 0.4 c2, standard deviation 0.25 exp(0.4 c1);
//! - x3 | x1, x2, c: shifted log-normal, x3 = a3 + exp(mu3 + s3 Z) with a3 = 0.5 x2 - 1,
//!   mu3 = 0.25 tanh(x1) - 0.2 c2, s3 = 0.4 + 0.15 c1.
//!
//! E[log p(x | c)] over the joint distribution is -1.4996 +- 0.0005 nats (the fixture holds a Monte
//! Carlo value with its standard error). Use from an integration test with `mod train_support;`.
#![allow(dead_code)]

use crkernels::rng::Stream;

/// Context inputs (c1, c2).
pub const N_CONTEXT: usize = 2;
/// Data dimensions (x1, x2, x3).
pub const N_DIMS: usize = 3;
/// Degrees of freedom of the Student-t factor.
pub const NU: f64 = 4.0;

/// ln of the Student-t (nu = 4) density's constant Gamma(5/2) / (Gamma(2) sqrt(4 pi)) = 3/8.
const LN_T4_NORM: f64 = -0.980_829_253_011_726_2; // ln(0.375)
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;

/// The parameters of the three conditionals at (c, x): m1, s1, m2, s2, a3, mu3, s3.
struct Params {
    m1: f64,
    s1: f64,
    m2: f64,
    s2: f64,
    a3: f64,
    mu3: f64,
    s3: f64,
}

fn x1_params(c: &[f64]) -> (f64, f64) {
    let (c1, c2) = (c[0], c[1]);
    (0.5 * c1 + 0.3 * (std::f64::consts::PI * c2).sin(), 0.5 * (0.3 * c2 - 0.2 * c1).exp())
}

fn x2_params(c: &[f64], x1: f64) -> (f64, f64) {
    (1.2 * (2.0 * x1).tanh() + 0.4 * c[1], 0.25 * (0.4 * c[0]).exp())
}

fn x3_params(c: &[f64], x1: f64, x2: f64) -> (f64, f64, f64) {
    (0.5 * x2 - 1.0, 0.25 * x1.tanh() - 0.2 * c[1], 0.4 + 0.15 * c[0])
}

fn params(c: &[f64], x: &[f64]) -> Params {
    let (m1, s1) = x1_params(c);
    let (m2, s2) = x2_params(c, x[0]);
    let (a3, mu3, s3) = x3_params(c, x[0], x[1]);
    Params { m1, s1, m2, s2, a3, mu3, s3 }
}

/// The Student-t (nu = 4) log-density of a standardised value t: ln(3/8) - (5/2) ln(1 + t^2/4).
pub fn ln_t4(t: f64) -> f64 {
    LN_T4_NORM - 2.5 * (0.25 * t * t).ln_1p()
}

/// The Student-t (nu = 4) distribution function in closed form:
/// F(t) = 1/2 + (3/8) (t / sqrt(1 + u)) (1 - u / (3 (1 + u))), u = t^2 / 4.
pub fn cdf_t4(t: f64) -> f64 {
    let u = 0.25 * t * t;
    0.5 + 0.375 * t / (1.0 + u).sqrt() * (1.0 - u / (3.0 * (1.0 + u)))
}

/// The standard normal distribution function.
pub fn cdf_normal(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// ln p(x1 | c), ln p(x2 | x1, c), ln p(x3 | x1, x2, c) (nats; the last is -inf where
/// x3 <= a3).
pub fn known_log_density_factors(c: &[f64], x: &[f64]) -> [f64; 3] {
    assert!(c.len() == N_CONTEXT && x.len() == N_DIMS, "c has 2 values and x 3");
    let p = params(c, x);
    let f1 = ln_t4((x[0] - p.m1) / p.s1) - p.s1.ln();
    let z2 = (x[1] - p.m2) / p.s2;
    let f2 = -0.5 * z2 * z2 - p.s2.ln() - HALF_LN_2PI;
    let y = x[2] - p.a3;
    let f3 = if y > 0.0 {
        let ly = y.ln();
        let z3 = (ly - p.mu3) / p.s3;
        -ly - p.s3.ln() - HALF_LN_2PI - 0.5 * z3 * z3
    } else {
        f64::NEG_INFINITY
    };
    [f1, f2, f3]
}

/// The exact log p(x | c) (nats) of one point: c = (c1, c2), x = (x1, x2, x3).
pub fn known_log_density(c: &[f64], x: &[f64]) -> f64 {
    known_log_density_factors(c, x).iter().sum()
}

/// The Rosenblatt transform of one point: F(x1 | c), F(x2 | x1, c), F(x3 | x1, x2, c), each
/// uniform on (0, 1) when (c, x) is drawn from the distribution.
pub fn known_conditional_cdfs(c: &[f64], x: &[f64]) -> [f64; 3] {
    let p = params(c, x);
    let u1 = cdf_t4((x[0] - p.m1) / p.s1);
    let u2 = cdf_normal((x[1] - p.m2) / p.s2);
    let y = x[2] - p.a3;
    let u3 = if y > 0.0 { cdf_normal((y.ln() - p.mu3) / p.s3) } else { 0.0 };
    [u1, u2, u3]
}

/// `n` draws (context [n][2], x [n][3]) in float64 from the Philox stream (seed, 0):
/// per row c1, c2 = 2 u - 1, then x1 = m1 + s1 Z / sqrt((E1 + E2) / 2) (a chi-square with
/// 4 degrees of freedom is 2 (E1 + E2), E exponential of mean 1), x2 = m2 + s2 Z,
/// x3 = a3 + exp(mu3 + s3 Z).
pub fn sample_known_f64(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Stream::new(seed, 0);
    let mut context = Vec::with_capacity(n * N_CONTEXT);
    let mut x = Vec::with_capacity(n * N_DIMS);
    for _ in 0..n {
        let c = [2.0 * rng.uniform() - 1.0, 2.0 * rng.uniform() - 1.0];
        let (m1, s1) = x1_params(&c);
        let z = rng.normal();
        let chi2_over_nu = 0.5 * (rng.exponential() + rng.exponential());
        let x1 = m1 + s1 * z / chi2_over_nu.sqrt();
        let (m2, s2) = x2_params(&c, x1);
        let x2 = m2 + s2 * rng.normal();
        let (a3, mu3, s3) = x3_params(&c, x1, x2);
        let x3 = a3 + (mu3 + s3 * rng.normal()).exp();
        context.extend_from_slice(&c);
        x.extend_from_slice(&[x1, x2, x3]);
    }
    (context, x)
}

/// `n` draws as the trainer takes them: (context [n][2], x [n][3]) in float32.
pub fn sample_known(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let (c, x) = sample_known_f64(n, seed);
    (c.iter().map(|&v| v as f32).collect(), x.iter().map(|&v| v as f32).collect())
}

/// The true mean negative log-likelihood (nats per row) of float32 rows (context [n][2],
/// x [n][3]), evaluated at the float32 values: the figure a trained model's test NLL is
/// compared with.
pub fn known_mean_nll(context: &[f32], x: &[f32]) -> f64 {
    assert_eq!(context.len() / N_CONTEXT, x.len() / N_DIMS);
    let n = x.len() / N_DIMS;
    let mut total = 0.0;
    for (c, xi) in context.chunks_exact(N_CONTEXT).zip(x.chunks_exact(N_DIMS)) {
        let c = [f64::from(c[0]), f64::from(c[1])];
        let xi = [f64::from(xi[0]), f64::from(xi[1]), f64::from(xi[2])];
        total -= known_log_density(&c, &xi);
    }
    total / n as f64
}
