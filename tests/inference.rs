//! Parameter inference with a MADE emulator (crkernels::inference), checked against things
//! computed another way:
//!
//! - a hand-built MADE that is exactly a linear-Gaussian conditional (C = 2, D = 3,
//!   autoregressive): its density, marginal likelihood with measurement noise, maximum and
//!   posterior are computed here from the weights by closed forms and a 2-D grid quadrature,
//!   not by the library;
//! - simulation-based calibration: parameters drawn from the prior, data drawn from the model
//!   itself (`Made::sample`, plus Gaussian noise when sigma is given), fitted; the true
//!   parameters must fall in the reported 68% and 95% intervals at binomial rates (within 3
//!   standard errors), per parameter, for a nonlinear mixture model and for the linear one
//!   with measurement noise;
//! - reproducibility (any thread count, any number of chains beside a chain), bad input.
//!
//! cargo test --release --test inference

use crkernels::Error;
use crkernels::inference::{FitOptions, FitProblem, fit, maximum_likelihood, sample_posterior};
use crkernels::nn::made::{HeadsSpec, LayerSpec, MadeSpec, Standardize};
use crkernels::nn::{Activation, Made, ScaleHead};
use crkernels::rng::Stream;

const LOWER: [f64; 2] = [0.0, -1.0];
const UPPER: [f64; 2] = [1.0, 2.0];
const C_MEAN: [f64; 2] = [0.5, 0.5];
const C_STD: [f64; 2] = [0.3, 0.8];
const X_MEAN: [f64; 3] = [1.0, -1.0, 0.5];
const X_STD: [f64; 3] = [2.0, 0.5, 1.0];

/// The linear-Gaussian model in standardised units: cs = (theta - C_MEAN) / C_STD,
/// xs = (x - X_MEAN) / X_STD, xs_d ~ N(A_d . cs + R_d . xs + B_d, S_d^2), R strictly lower.
const A: [[f64; 2]; 3] = [[1.0, 0.3], [-0.5, 0.8], [0.4, -0.6]];
const R21: f64 = 0.5;
const R32: f64 = -0.4;
const B: [f64; 3] = [0.1, -0.2, 0.3];
const S: [f64; 3] = [0.3, 0.5, 0.4];

fn standardize() -> Standardize {
    Standardize {
        x_mean: X_MEAN.to_vec(),
        x_std: X_STD.to_vec(),
        context_mean: C_MEAN.to_vec(),
        context_std: C_STD.to_vec(),
    }
}

/// The linear-Gaussian conditional as a MADE: one identity hidden layer of 4 units carrying
/// cs1, cs2 (degree 0), xs1 (degree 1) and xs2 (degree 2); K = 1; constant scales.
fn linear_made() -> Made {
    let hidden = LayerSpec::Dense {
        input: 0,
        weight: vec![0., 0., 0., 0., 0., 0., 1., 0., 0., 0., 1., 0.],
        context_weight: Some(vec![1., 0., 0., 1., 0., 0., 0., 0.]),
        bias: vec![0.0; 4],
        degrees: vec![0, 0, 1, 2],
        activation: Activation::Identity,
        residual: None,
    };
    let f = |v: f64| v as f32;
    let means = vec![
        f(A[0][0]),
        f(A[0][1]),
        0.,
        0.,
        f(A[1][0]),
        f(A[1][1]),
        f(R21),
        0.,
        f(A[2][0]),
        f(A[2][1]),
        0.,
        f(R32),
    ];
    Made::new(MadeSpec {
        context_degrees: vec![0, 0],
        data_degrees: vec![1, 2, 3],
        n_components: 1,
        layers: vec![hidden],
        heads: HeadsSpec {
            logits: (vec![0.0; 12], vec![0.0; 3]),
            means: (means, B.iter().map(|&b| f(b)).collect()),
            scales: (vec![0.0; 12], S.iter().map(|s| f(s.ln())).collect()),
            scale: ScaleHead::Exp,
        },
        standardize: standardize(),
    })
    .unwrap()
}

/// The weights as the model stores them (f32), for the reference formulas.
fn f32r(v: f64) -> f64 {
    f64::from(v as f32)
}

/// log p(x | theta) of the linear model, written out per dimension.
fn linear_log_density(theta: &[f64], x: &[f64]) -> f64 {
    let cs: Vec<f64> = (0..2).map(|j| (theta[j] - C_MEAN[j]) / C_STD[j]).collect();
    let xs: Vec<f64> = (0..3).map(|d| (x[d] - X_MEAN[d]) / X_STD[d]).collect();
    let mut total = 0.0;
    for d in 0..3 {
        let mut mu = f32r(A[d][0]) * cs[0] + f32r(A[d][1]) * cs[1] + f32r(B[d]);
        if d == 1 {
            mu += f32r(R21) * xs[0];
        }
        if d == 2 {
            mu += f32r(R32) * xs[1];
        }
        let s = f32r(S[d].ln()).exp();
        let z = (xs[d] - mu) / s;
        total += -0.5 * z * z - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln() - X_STD[d].ln();
    }
    total
}

/// Inverse of a small matrix (Gauss-Jordan with partial pivoting).
fn inverse(a: &[f64], n: usize) -> Vec<f64> {
    let mut m = a.to_vec();
    let mut inv = vec![0.0; n * n];
    for i in 0..n {
        inv[i * n + i] = 1.0;
    }
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &k| m[i * n + col].abs().total_cmp(&m[k * n + col].abs())).unwrap();
        for k in 0..n {
            m.swap(col * n + k, pivot * n + k);
            inv.swap(col * n + k, pivot * n + k);
        }
        let p = m[col * n + col];
        for k in 0..n {
            m[col * n + k] /= p;
            inv[col * n + k] /= p;
        }
        for i in 0..n {
            if i != col {
                let f = m[i * n + col];
                for k in 0..n {
                    m[i * n + k] -= f * m[col * n + k];
                    inv[i * n + k] -= f * inv[col * n + k];
                }
            }
        }
    }
    inv
}

fn matmul(a: &[f64], b: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            out[i * m + j] = (0..k).map(|t| a[i * k + t] * b[t * m + j]).sum();
        }
    }
    out
}

fn transpose(a: &[f64], n: usize, m: usize) -> Vec<f64> {
    (0..m * n).map(|i| a[(i % n) * m + i / n]).collect()
}

/// The linear model's marginal x | theta ~ N(offset + G cs, cov) with measurement noise sigma
/// added to the covariance: (offset [3], G [3][2], cov [3][3]).
fn linear_marginal(sigma: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    // B xs = A cs + b + S e, B = I - R.
    let bmat = vec![1.0, 0.0, 0.0, -f32r(R21), 1.0, 0.0, 0.0, -f32r(R32), 1.0];
    let binv = inverse(&bmat, 3);
    let a: Vec<f64> = A.iter().flatten().map(|&v| f32r(v)).collect();
    let b: Vec<f64> = B.iter().map(|&v| f32r(v)).collect();
    let s2: Vec<f64> = (0..3)
        .flat_map(|i| (0..3).map(move |k| if i == k { f32r(S[i].ln()).exp().powi(2) } else { 0.0 }))
        .collect();
    let g_s = matmul(&binv, &a, 3, 3, 2);
    let m_s = matmul(&binv, &b, 3, 3, 1);
    let cov_s = matmul(&matmul(&binv, &s2, 3, 3, 3), &transpose(&binv, 3, 3), 3, 3, 3);
    let offset: Vec<f64> = (0..3).map(|d| X_MEAN[d] + X_STD[d] * m_s[d]).collect();
    let g: Vec<f64> = (0..6).map(|i| X_STD[i / 2] * g_s[i]).collect();
    let mut cov: Vec<f64> = (0..9).map(|i| X_STD[i / 3] * cov_s[i] * X_STD[i % 3]).collect();
    for d in 0..3 {
        cov[d * 3 + d] += sigma[d] * sigma[d];
    }
    (offset, g, cov)
}

/// log N(x_obs; offset + G cs, cov) of the marginal (constants dropped).
fn marginal_log_likelihood(theta: &[f64], x: &[f64], marginal: &(Vec<f64>, Vec<f64>, Vec<f64>)) -> f64 {
    let (offset, g, cov) = marginal;
    let prec = inverse(cov, 3);
    let cs: Vec<f64> = (0..2).map(|j| (theta[j] - C_MEAN[j]) / C_STD[j]).collect();
    let r: Vec<f64> = (0..3).map(|d| x[d] - offset[d] - g[d * 2] * cs[0] - g[d * 2 + 1] * cs[1]).collect();
    -0.5 * (0..3).map(|i| (0..3).map(|k| r[i] * prec[i * 3 + k] * r[k]).sum::<f64>()).sum::<f64>()
}

/// The unconstrained maximum of the marginal likelihood and its standard errors, closed form:
/// cs = (G^T P G)^-1 G^T P (x - offset).
fn marginal_mle(x: &[f64], marginal: &(Vec<f64>, Vec<f64>, Vec<f64>)) -> ([f64; 2], [f64; 2]) {
    let (offset, g, cov) = marginal;
    let prec = inverse(cov, 3);
    let gt = transpose(g, 3, 2);
    let info = matmul(&matmul(&gt, &prec, 2, 3, 3), g, 2, 3, 2);
    let info_inv = inverse(&info, 2);
    let r: Vec<f64> = (0..3).map(|d| x[d] - offset[d]).collect();
    let cs = matmul(&info_inv, &matmul(&matmul(&gt, &prec, 2, 3, 3), &r, 2, 3, 1), 2, 2, 1);
    let theta = [C_MEAN[0] + C_STD[0] * cs[0], C_MEAN[1] + C_STD[1] * cs[1]];
    let se = [C_STD[0] * info_inv[0].sqrt(), C_STD[1] * info_inv[3].sqrt()];
    (theta, se)
}

/// Posterior mean and standard deviation of each parameter under the flat box prior, by the
/// midpoint rule on an n x n grid.
fn quadrature(log_likelihood: impl Fn(&[f64]) -> f64, n: usize) -> ([f64; 2], [f64; 2]) {
    let mut values = Vec::with_capacity(n * n);
    for i in 0..n {
        for k in 0..n {
            let t = [
                LOWER[0] + (UPPER[0] - LOWER[0]) * (i as f64 + 0.5) / n as f64,
                LOWER[1] + (UPPER[1] - LOWER[1]) * (k as f64 + 0.5) / n as f64,
            ];
            values.push((t, log_likelihood(&t)));
        }
    }
    let max = values.iter().map(|v| v.1).fold(f64::NEG_INFINITY, f64::max);
    let (mut w, mut m1, mut m2) = (0.0, [0.0; 2], [0.0; 2]);
    for (t, l) in &values {
        let p = (l - max).exp();
        w += p;
        for j in 0..2 {
            m1[j] += p * t[j];
            m2[j] += p * t[j] * t[j];
        }
    }
    let mean = [m1[0] / w, m1[1] / w];
    let sd = [(m2[0] / w - mean[0] * mean[0]).sqrt(), (m2[1] / w - mean[1] * mean[1]).sqrt()];
    (mean, sd)
}

/// A nonlinear, heteroscedastic, skewed conditional MADE-MoG (C = 2, D = 3, K = 2), built so
/// that theta -> the means is one-to-one (one posterior mode): one tanh layer of 6 units,
/// h0 = tanh(0.8 cs1), h1 = tanh(0.8 cs2), h2 = tanh(0.6 (cs1 + cs2)),
/// h3 = tanh(0.5 (cs1 - cs2) + 0.3), h4 = tanh(0.5 xs1) (degree 1), h5 = tanh(0.5 xs0)
/// (degree 2); the order is x1, x0, x2; component means 1.5 h0 + 0.5 h3 + 0.3 h4 (x0),
/// 1.5 h1 - 0.4 h0 (x1), 1.2 h2 - 0.5 h3 + 0.3 h5 (x2), the second component shifted by 0.15;
/// log sigma = -1.8 + 0.3 h2; mixture logits 0 and -0.5 + 0.8 h0.
fn nonlinear_made() -> Made {
    let (h, d, k) = (6, 3, 2);
    let hidden = LayerSpec::Dense {
        input: 0,
        weight: vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.5, 0., 0.5, 0., 0.],
        context_weight: Some(vec![0.8, 0., 0., 0.8, 0.6, 0.6, 0.5, -0.5, 0., 0., 0., 0.]),
        bias: vec![0., 0., 0., 0.3, 0., 0.],
        degrees: vec![0, 0, 0, 0, 1, 2],
        activation: Activation::Tanh,
        residual: None,
    };
    let mean_rows: [[f32; 6]; 3] =
        [[1.5, 0., 0., 0.5, 0.3, 0.], [-0.4, 1.5, 0., 0., 0., 0.], [0., 0., 1.2, -0.5, 0., 0.3]];
    let mut means = (Vec::new(), Vec::new());
    let mut scales = (Vec::new(), Vec::new());
    let mut logits = (Vec::new(), Vec::new());
    for row in &mean_rows {
        for component in 0..k {
            means.0.extend_from_slice(row);
            means.1.push(0.15 * component as f32);
            scales.0.extend_from_slice(&[0., 0., 0.3, 0., 0., 0.]);
            scales.1.push(-1.8);
            logits.0.extend_from_slice(if component == 0 { &[0.0; 6] } else { &[0.8, 0., 0., 0., 0., 0.] });
            logits.1.push(if component == 0 { 0.0 } else { -0.5 });
        }
    }
    assert_eq!(means.0.len(), d * k * h);
    Made::new(MadeSpec {
        context_degrees: vec![0, 0],
        data_degrees: vec![2, 1, 3],
        n_components: k,
        layers: vec![hidden],
        heads: HeadsSpec { logits, means, scales, scale: ScaleHead::Exp },
        standardize: standardize(),
    })
    .unwrap()
}

/// A model whose likelihood has two equal, well separated modes: the mean of x0 is
/// tanh(2 (cs1 - 1)) + tanh(-2 (cs1 + 1)), even in cs1, with sigma 0.1; x1 = (1 / 0.3)
/// tanh(0.3 cs2) + 0.3 e pins theta2. K = 1, D = 2.
fn bimodal_made() -> Made {
    let hidden = LayerSpec::Dense {
        input: 0,
        weight: vec![0.0; 6],
        context_weight: Some(vec![2.0, 0., -2.0, 0., 0., 0.3]),
        bias: vec![-2.0, -2.0, 0.0],
        degrees: vec![0, 0, 0],
        activation: Activation::Tanh,
        residual: None,
    };
    Made::new(MadeSpec {
        context_degrees: vec![0, 0],
        data_degrees: vec![1, 2],
        n_components: 1,
        layers: vec![hidden],
        heads: HeadsSpec {
            logits: (vec![0.0; 6], vec![0.0; 2]),
            means: (vec![1., 1., 0., 0., 0., 1.0 / 0.3], vec![0.0; 2]),
            scales: (vec![0.0; 6], vec![0.1f32.ln(), 0.3f32.ln()]),
            scale: ScaleHead::Exp,
        },
        standardize: Standardize {
            x_mean: vec![0.0; 2],
            x_std: vec![1.0; 2],
            context_mean: C_MEAN.to_vec(),
            context_std: C_STD.to_vec(),
        },
    })
    .unwrap()
}

fn quick_options(seed: u64) -> FitOptions {
    FitOptions {
        seed,
        n_starts: 64,
        n_refine: 8,
        n_chains: 8,
        warmup: 300,
        samples_per_chain: 300,
        n_threads: 1,
        ..FitOptions::default()
    }
}

/// Binomial check: hits out of n within 3 standard errors of n p.
fn assert_coverage(label: &str, hits: usize, n: usize, p: f64) {
    let expected = n as f64 * p;
    let se = (n as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (hits as f64 - expected).abs() <= 3.0 * se,
        "{label}: {hits} of {n} inside, expected {expected:.1} +- {:.1} (3 standard errors)",
        3.0 * se
    );
}

/// Draws theta uniformly in the box and x from the model (plus noise), fits, counts coverage.
/// Returns [param][68, 95] hits and the mean posterior sd per parameter.
fn calibrate(made: &Made, sigma: Option<&[f64]>, trials: usize, seed: u64) -> ([[usize; 2]; 2], [f64; 2]) {
    let mut rng = Stream::new(seed, 1_000_000);
    let mut hits = [[0usize; 2]; 2];
    let mut sd_sum = [0.0; 2];
    let mut worst_r_hat: f64 = 0.0;
    for trial in 0..trials {
        let theta: Vec<f64> = (0..2).map(|j| LOWER[j] + (UPPER[j] - LOWER[j]) * rng.uniform()).collect();
        let context: Vec<f32> = theta.iter().map(|&t| t as f32).collect();
        let mut x = vec![0.0f32; 3];
        made.sample(&context, seed, trial as u64, &mut x).unwrap();
        let mut observed: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        if let Some(sigma) = sigma {
            for (o, s) in observed.iter_mut().zip(sigma) {
                *o += s * rng.normal();
            }
        }
        let problem = FitProblem::new(made, &observed, sigma, &LOWER, &UPPER).unwrap();
        let result = fit(&problem, &quick_options(seed + trial as u64)).unwrap();
        let post = &result.posterior;
        worst_r_hat = worst_r_hat.max(post.max_r_hat());
        for j in 0..2 {
            let s = &post.summary[j];
            hits[j][0] += usize::from(s.interval_68[0] <= theta[j] && theta[j] <= s.interval_68[1]);
            hits[j][1] += usize::from(s.interval_95[0] <= theta[j] && theta[j] <= s.interval_95[1]);
            sd_sum[j] += s.sd;
        }
    }
    eprintln!(
        "calibration ({trials} trials, sigma {sigma:?}): 68% hits {:?}, 95% hits {:?}, mean posterior sd {:?}, worst R-hat {worst_r_hat:.3}",
        [hits[0][0], hits[1][0]],
        [hits[0][1], hits[1][1]],
        [sd_sum[0] / trials as f64, sd_sum[1] / trials as f64]
    );
    assert!(worst_r_hat < 1.1, "worst R-hat {worst_r_hat}");
    (hits, [sd_sum[0] / trials as f64, sd_sum[1] / trials as f64])
}

#[test]
fn the_hand_built_model_is_the_linear_gaussian() {
    let made = linear_made();
    let mut rng = Stream::new(3, 0);
    for _ in 0..20 {
        let theta = [rng.uniform(), 3.0 * rng.uniform() - 1.0];
        let x: Vec<f64> = (0..3).map(|d| X_MEAN[d] + X_STD[d] * 2.0 * rng.normal()).collect();
        let mut lp = [0.0f32];
        let c32: Vec<f32> = theta.iter().map(|&v| v as f32).collect();
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        made.log_prob(&c32, &x32, &mut lp).unwrap();
        let t: Vec<f64> = c32.iter().map(|&v| f64::from(v)).collect();
        let xr: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
        let expected = linear_log_density(&t, &xr);
        assert!((f64::from(lp[0]) - expected).abs() < 1e-4 * expected.abs().max(1.0), "{} {expected}", lp[0]);
        // The marginal formula with no noise is the same density (up to its constant).
        let marginal = linear_marginal(&[0.0; 3]);
        let (t2, x2) = (&t, &xr);
        let other = [0.3, 0.7];
        let diff_a = linear_log_density(t2, x2) - linear_log_density(&other, x2);
        let diff_b =
            marginal_log_likelihood(t2, x2, &marginal) - marginal_log_likelihood(&other, x2, &marginal);
        assert!((diff_a - diff_b).abs() < 1e-9 * diff_a.abs().max(1.0), "{diff_a} {diff_b}");
    }
}

/// The maximum likelihood of the linear model equals the closed form (weighted least squares)
/// to a small fraction of its standard error, and so do the standard errors, with and
/// without measurement noise.
#[test]
fn maximum_likelihood_matches_the_closed_form() {
    let made = linear_made();
    let mut rng = Stream::new(11, 0);
    let mut checked = 0;
    for trial in 0..30 {
        let theta = [0.2 + 0.6 * rng.uniform(), -0.4 + 1.8 * rng.uniform()];
        let context: Vec<f32> = theta.iter().map(|&t| t as f32).collect();
        let mut x = vec![0.0f32; 3];
        made.sample(&context, 5, trial, &mut x).unwrap();
        let observed: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let sigma_values = [0.3, 0.1, 0.2];
        for sigma in [None, Some(&sigma_values[..])] {
            let marginal = linear_marginal(sigma.unwrap_or(&[0.0; 3]));
            let (exact, se) = marginal_mle(&observed, &marginal);
            // Only maxima well inside the box (the closed form ignores the edges).
            if (0..2).any(|j| exact[j] < LOWER[j] + 3.0 * se[j] || exact[j] > UPPER[j] - 3.0 * se[j]) {
                continue;
            }
            let problem = FitProblem::new(&made, &observed, sigma, &LOWER, &UPPER).unwrap();
            let ml = maximum_likelihood(&problem, &quick_options(trial)).unwrap();
            let got_se = ml.standard_errors.as_ref().expect("an interior maximum has standard errors");
            for j in 0..2 {
                assert!(
                    (ml.theta[j] - exact[j]).abs() < 1e-3 * se[j],
                    "trial {trial} sigma {sigma:?}: theta[{j}] {} vs {} (se {})",
                    ml.theta[j],
                    exact[j],
                    se[j]
                );
                assert!((got_se[j] / se[j] - 1.0).abs() < 1e-3, "se[{j}] {} vs {}", got_se[j], se[j]);
                assert!(!ml.at_boundary[j]);
            }
            // Every refined start found the one maximum; the recovery is within a few
            // standard errors of the truth.
            assert!(ml.optima.iter().all(|o| (o.log_likelihood - ml.log_likelihood).abs() < 1e-6));
            assert!(ml.optima.iter().all(|o| o.converged));
            if sigma.is_none() {
                for j in 0..2 {
                    assert!((ml.theta[j] - theta[j]).abs() < 5.0 * se[j]);
                }
                let lp = linear_log_density(&ml.theta, &observed);
                assert!((ml.log_likelihood - lp).abs() < 1e-4, "{} {lp}", ml.log_likelihood);
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} interior cases");
}

/// An edge maximum: the optimiser goes to the edge and says so.
#[test]
fn a_maximum_beyond_the_box_lands_on_its_edge() {
    let made = linear_made();
    // theta far above the box's top in theta2: x drawn there.
    let context = [0.5f32, 4.0];
    let mut x = vec![0.0f32; 3];
    made.sample(&context, 9, 0, &mut x).unwrap();
    let observed: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let problem = FitProblem::new(&made, &observed, None, &LOWER, &UPPER).unwrap();
    let ml = maximum_likelihood(&problem, &quick_options(1)).unwrap();
    assert!(ml.at_boundary[1] && !ml.at_boundary[0], "{:?} {:?}", ml.theta, ml.at_boundary);
    assert!((ml.theta[1] - UPPER[1]).abs() < 1e-3);
    // The posterior samples from the maximum on the edge (moved inside).
    let post = sample_posterior(&problem, &quick_options(1), &ml.theta).unwrap();
    assert!(post.summary[1].interval_95[1] <= UPPER[1] && post.summary[1].median > 1.5);
}

/// The posterior of the linear model against a 2-D quadrature of the exact (marginal)
/// likelihood: means and standard deviations within 3.5 Monte Carlo standard errors, for
/// sigma = 0 and three noise levels; the posterior widens with sigma.
#[test]
fn the_posterior_matches_quadrature_and_widens_with_sigma() {
    let made = linear_made();
    let theta = [0.4f32, 0.6];
    let mut x = vec![0.0f32; 3];
    made.sample(&theta, 21, 0, &mut x).unwrap();
    let observed: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    // The sd of every parameter at each noise level (the widening is checked between levels
    // farther apart than the Monte Carlo noise: 0, 0.4, 1).
    let mut sds = Vec::new();
    for scale in [0.0, 0.1, 0.4, 1.0] {
        let sigma: Vec<f64> = X_STD.iter().map(|s| scale * s).collect();
        let marginal = linear_marginal(&sigma);
        let (mean, sd) = quadrature(|t| marginal_log_likelihood(t, &observed, &marginal), 400);
        let problem =
            FitProblem::new(&made, &observed, (scale > 0.0).then_some(&sigma[..]), &LOWER, &UPPER).unwrap();
        let options = FitOptions {
            n_chains: 16,
            warmup: 500,
            samples_per_chain: 1000,
            n_threads: 2,
            ..quick_options(4)
        };
        let result = fit(&problem, &options).unwrap();
        let post = &result.posterior;
        for j in 0..2 {
            let s = &post.summary[j];
            eprintln!(
                "sigma scale {scale}, theta[{j}]: mean {:.5} +- {:.5} (quadrature {:.5}), sd {:.5} +- {:.5} (quadrature {:.5}), R-hat {:.4}, ESS {:.0}, accept {:.3}",
                s.mean,
                s.mcse_mean,
                mean[j],
                s.sd,
                s.mcse_sd,
                sd[j],
                s.r_hat,
                s.ess_bulk,
                post.accept_rate[0]
            );
            assert!(
                (s.mean - mean[j]).abs() < 3.5 * s.mcse_mean,
                "mean of theta[{j}] at sigma scale {scale}"
            );
            assert!((s.sd - sd[j]).abs() < 3.5 * s.mcse_sd, "sd of theta[{j}] at sigma scale {scale}");
            assert!(s.r_hat < 1.02 && s.ess_bulk > 1000.0);
            sds.push((scale, j, s.sd));
        }
        // Divergences are rare (a chain whose step ends near the stability limit can meet one
        // in thousands of iterations).
        assert!(post.divergences.iter().sum::<usize>() <= post.n_chains * post.samples_per_chain / 1000);
        assert!(post.accept_rate.iter().all(|&a| (0.6..0.97).contains(&a)), "{:?}", post.accept_rate);
        if scale > 0.0 {
            // x_true is sampled: its posterior sits between the observation and the model.
            let latent = post.latent_summary.as_ref().unwrap();
            assert!(latent.iter().all(|s| s.sd > 0.0 && s.sd < 1.01 * X_STD[0] * scale.max(1.0)));
        } else {
            assert!(post.latent.is_none());
        }
    }
    let sd_at = |scale: f64, j: usize| sds.iter().find(|s| s.0 == scale && s.1 == j).unwrap().2;
    for j in 0..2 {
        assert!(sd_at(0.4, j) > sd_at(0.0, j) && sd_at(1.0, j) > sd_at(0.4, j), "theta[{j}]: {sds:?}");
    }
}

/// Simulation-based calibration of the nonlinear mixture model with exact data: 200 trials.
#[test]
fn intervals_cover_at_their_nominal_rates() {
    let made = nonlinear_made();
    let trials = 200;
    let (hits, sd) = calibrate(&made, None, trials, 100);
    for j in 0..2 {
        assert_coverage(&format!("theta[{j}] 68%"), hits[j][0], trials, 0.68);
        assert_coverage(&format!("theta[{j}] 95%"), hits[j][1], trials, 0.95);
        // The data are informative: the posterior is much narrower than the prior (the box's
        // sd is width / sqrt(12)), so a sampler returning the prior would fail above.
        let prior_sd = (UPPER[j] - LOWER[j]) / 12f64.sqrt();
        assert!(sd[j] < 0.6 * prior_sd, "theta[{j}]: posterior sd {} vs prior {prior_sd}", sd[j]);
    }
}

/// Simulation-based calibration with measurement noise (data augmentation): 150 trials of the
/// linear model with x_obs = x + sigma e.
#[test]
fn intervals_cover_with_measurement_noise() {
    let made = linear_made();
    let sigma: Vec<f64> = X_STD.iter().map(|s| 0.3 * s).collect();
    let trials = 150;
    let (hits, sd) = calibrate(&made, Some(&sigma), trials, 300);
    for j in 0..2 {
        assert_coverage(&format!("theta[{j}] 68%"), hits[j][0], trials, 0.68);
        assert_coverage(&format!("theta[{j}] 95%"), hits[j][1], trials, 0.95);
        let prior_sd = (UPPER[j] - LOWER[j]) / 12f64.sqrt();
        assert!(sd[j] < 0.6 * prior_sd, "theta[{j}]: posterior sd {} vs prior {prior_sd}", sd[j]);
    }
}

/// The same numbers on any thread count, and chain c's draws do not depend on how many chains
/// run beside it.
#[test]
fn results_are_reproducible_on_any_thread_count() {
    let made = nonlinear_made();
    let observed = [0.8, -1.2, 0.4];
    let sigma = [0.1, 0.05, 0.2];
    for sigma in [None, Some(&sigma[..])] {
        let problem = FitProblem::new(&made, &observed, sigma, &LOWER, &UPPER).unwrap();
        let base = FitOptions { n_chains: 11, warmup: 100, samples_per_chain: 50, ..quick_options(8) };
        let one = fit(&problem, &FitOptions { n_threads: 1, ..base.clone() }).unwrap();
        let two = fit(&problem, &FitOptions { n_threads: 2, ..base.clone() }).unwrap();
        assert_eq!(one, two);
        let start = &one.max_likelihood.theta;
        let mut start = start.clone();
        if let Some(latent) = &one.max_likelihood.latent {
            start.extend_from_slice(latent);
        }
        let three = sample_posterior(&problem, &FitOptions { n_chains: 3, ..base.clone() }, &start).unwrap();
        let n = 50 * 2;
        assert_eq!(three.theta[..3 * n], one.posterior.theta[..3 * n]);
        assert_eq!(three.accept_rate[..], one.posterior.accept_rate[..3]);
        let other_seed = fit(&problem, &FitOptions { seed: 9, ..base }).unwrap();
        assert_ne!(other_seed.posterior.theta, one.posterior.theta);
    }
}

/// Two equal, separated modes: the multi-start finds both, `fit` starts chains in each, and
/// R-hat says the chains disagree (the sample is not to be trusted), rather than a confident
/// single-mode answer.
#[test]
fn a_bimodal_posterior_is_flagged_by_r_hat() {
    let made = bimodal_made();
    // x0 = -1: cs1 = +-0.62 (theta1 = 0.5 +- 0.19); x1 = 0.5: cs2 about 0.5.
    let observed = [-1.0, 0.5];
    let problem = FitProblem::new(&made, &observed, None, &LOWER, &UPPER).unwrap();
    let result = fit(&problem, &quick_options(3)).unwrap();
    let ml = &result.max_likelihood;
    let lows = ml.optima.iter().filter(|o| o.theta[0] < 0.5).count();
    assert!(lows > 0 && lows < ml.optima.len(), "one mode only: {:?}", ml.optima);
    let post = &result.posterior;
    eprintln!("bimodal: R-hat {:?}", post.summary.iter().map(|s| s.r_hat).collect::<Vec<_>>());
    assert!(post.summary[0].r_hat > 1.5, "R-hat {}", post.summary[0].r_hat);
    // Half of the chains in each mode.
    let low_chains = (0..post.n_chains).filter(|&c| post.draw(c, 0)[0] < 0.5).count();
    assert_eq!(low_chains, post.n_chains / 2);
}

#[test]
fn bad_input_is_rejected_with_the_value_named() {
    let made = linear_made();
    let obs = [0.0, 0.0, 0.0];
    let msg = |r: crkernels::Result<FitProblem>| match r {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    assert!(msg(FitProblem::new(&made, &obs[..2], None, &LOWER, &UPPER)).contains("observed has 2 values"));
    assert!(
        msg(FitProblem::new(&made, &[0.0, f64::NAN, 0.0], None, &LOWER, &UPPER))
            .contains("observed[1] is NaN")
    );
    assert!(msg(FitProblem::new(&made, &[0.0, 1e39, 0.0], None, &LOWER, &UPPER)).contains("observed[1]"));
    assert!(
        msg(FitProblem::new(&made, &obs, Some(&[1.0, 0.0, 1.0]), &LOWER, &UPPER)).contains("sigma[1] = 0")
    );
    assert!(
        msg(FitProblem::new(&made, &obs, Some(&[1.0, -1.0, 1.0]), &LOWER, &UPPER)).contains("sigma[1] = -1")
    );
    assert!(
        msg(FitProblem::new(&made, &obs, Some(&[1.0, 1.0]), &LOWER, &UPPER)).contains("sigma has 2 values")
    );
    assert!(
        msg(FitProblem::new(&made, &obs, Some(&[1.0, f64::INFINITY, 1.0]), &LOWER, &UPPER))
            .contains("sigma[1] is inf")
    );
    assert!(msg(FitProblem::new(&made, &obs, None, &[0.0], &UPPER)).contains("lower has 1 values"));
    assert!(
        msg(FitProblem::new(&made, &obs, None, &LOWER, &[1.0, -1.0]))
            .contains("lower[1] = -1 is not below upper[1] = -1")
    );
    assert!(msg(FitProblem::new(&made, &obs, None, &[0.0, f64::NAN], &UPPER)).contains("lower[1] is NaN"));
    // A model without context: nothing to fit.
    let unconditional = Made::new(MadeSpec {
        context_degrees: vec![],
        data_degrees: vec![1],
        n_components: 1,
        layers: vec![LayerSpec::Dense {
            input: 0,
            weight: vec![0.5],
            context_weight: None,
            bias: vec![0.0],
            degrees: vec![0],
            activation: Activation::Sigmoid,
            residual: None,
        }],
        heads: HeadsSpec {
            logits: (vec![0.0], vec![0.0]),
            means: (vec![0.0], vec![0.0]),
            scales: (vec![0.0], vec![0.0]),
            scale: ScaleHead::Exp,
        },
        standardize: Standardize::default(),
    })
    .unwrap();
    assert!(msg(FitProblem::new(&unconditional, &[0.0], None, &[], &[])).contains("no context"));
    // Options and starts.
    let problem = FitProblem::new(&made, &obs, None, &LOWER, &UPPER).unwrap();
    let opt_msg = |o: FitOptions| match maximum_likelihood(&problem, &o) {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    let base = quick_options(1);
    assert!(opt_msg(FitOptions { n_starts: 0, ..base.clone() }).contains("n_starts = 0"));
    assert!(opt_msg(FitOptions { n_refine: 100, ..base.clone() }).contains("n_refine = 100 exceeds"));
    assert!(opt_msg(FitOptions { samples_per_chain: 3, ..base.clone() }).contains("samples_per_chain = 3"));
    assert!(opt_msg(FitOptions { target_accept: 1.0, ..base.clone() }).contains("target_accept = 1"));
    assert!(opt_msg(FitOptions { target_accept: f64::NAN, ..base.clone() }).contains("target_accept = NaN"));
    assert!(opt_msg(FitOptions { n_chains: 0, ..base.clone() }).contains("n_chains = 0"));
    let start_msg = |s: &[f64]| match sample_posterior(&problem, &base, s) {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    assert!(start_msg(&[0.5]).contains("start has 1 values"));
    assert!(start_msg(&[0.5, 2.5]).contains("start[1] = 2.5 is outside the box [-1, 2]"));
    assert!(
        sample_posterior(
            &problem,
            &FitOptions { warmup: 20, samples_per_chain: 10, ..base.clone() },
            &[0.0, 2.0]
        )
        .is_ok()
    );
    assert!(start_msg(&[f64::NAN, 0.0]).contains("start[0] is NaN"));
    // A problem built by hand skips `new`: the entry points validate it.
    let raw = FitProblem { made: &made, observed: &obs, sigma: None, lower: &UPPER, upper: &LOWER };
    assert!(
        matches!(fit(&raw, &base), Err(Error::InvalidArgument(m)) if m.contains("lower[0] = 1 is not below"))
    );
}
