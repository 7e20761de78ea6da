//! The ridge-surrogate step of seed 000 on a synthetic 18-parameter likelihood: 5000 evaluated
//! points (as many DRAGON runs), degree 1..=3, 10 regularisations, distance weights; prints the
//! chosen hyper-parameters, the proposed point and the time taken.
//!
//! cargo run --release --example surrogate_step [n_points]

use std::time::Instant;

use crkernels::rng::Stream;
use crkernels::stats::surrogate::{Surrogate, SurrogateOptions, Weighting};

const N_PARAMS: usize = 18;

fn main() -> Result<(), crkernels::Error> {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5000);
    let (x, y) = synthetic_points(n, 7);
    let degrees = [1, 2, 3];
    let alphas: Vec<f64> = (0..10).map(|k| 10f64.powf(-6.0 + 8.0 * k as f64 / 9.0)).collect();
    let options =
        SurrogateOptions { weighting: Weighting::Distance, start: None, degrees: &degrees, alphas: &alphas };
    let start = Instant::now();
    let surrogate = Surrogate::fit(&x, N_PARAMS, &y, &options)?;
    let step = surrogate.step(1.0)?;
    let elapsed = start.elapsed();
    println!("{n} points, {N_PARAMS} parameters: surrogate fit and step in {:.3} s", elapsed.as_secs_f64());
    println!(
        "chosen degree {}, alpha {:.3e}, {} coefficients; start point {} (NLL {:.4})",
        surrogate.degree(),
        surrogate.alpha(),
        surrogate.coefficients().len(),
        surrogate.start_index(),
        y[surrogate.start_index()]
    );
    println!(
        "step: t* = {:.4} (max 1), predicted NLL {:.4}, |g| = {:.4}",
        step.distance, step.predicted_nll, step.gradient_norm
    );
    println!("proposed point: {:?}", step.point.iter().map(|v| format!("{v:.4}")).collect::<Vec<_>>());
    Ok(())
}

/// Points x = c + s xi (xi standard normal) around a likelihood minimum, with
/// NLL = 40 + 0.5 |A d|^2 + 0.05 sum d^3 + noise, d = xi - xi0 (a smooth, slightly cubic bowl).
pub fn synthetic_points(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Stream::new(seed, 0);
    let centre: Vec<f64> = (0..N_PARAMS).map(|j| 10f64.powi(j as i32 % 5 - 2)).collect();
    let scale: Vec<f64> = centre.iter().map(|c| 0.1 * c).collect();
    let optimum: Vec<f64> = (0..N_PARAMS).map(|j| 0.3 * ((j as f64) * 0.7).sin()).collect();
    let mut x = Vec::with_capacity(n * N_PARAMS);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let xi: Vec<f64> = (0..N_PARAMS).map(|_| rng.normal()).collect();
        let d: Vec<f64> = xi.iter().zip(&optimum).map(|(a, b)| a - b).collect();
        let mut nll = 40.0;
        for j in 0..N_PARAMS {
            let mixed = d[j] + 0.3 * d[(j + 1) % N_PARAMS];
            nll += 0.5 * (1.0 + 0.1 * j as f64) * mixed * mixed + 0.05 * d[j].powi(3);
        }
        y.push(nll + 0.01 * rng.normal());
        x.extend(xi.iter().enumerate().map(|(j, v)| centre[j] + scale[j] * v));
    }
    (x, y)
}
