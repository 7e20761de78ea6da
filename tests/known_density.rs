//! The known distribution that the trainer's accuracy test uses (tests/train_support, issue 16):
//! its Rust log-density against the independent scipy.stats implementation
//! (tests/reference/known_density.py, tests/data/train/known_density_points.json), its
//! normalisation by quadrature, and the Rust sampler against the density (the Rosenblatt
//! transform's three coordinates uniform by Kolmogorov-Smirnov, and the mean log-density
//! against the Python sampler's Monte Carlo value).

mod train_support;

use std::f64::consts::FRAC_PI_2;

use serde_json::Value;
use train_support::*;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/train/known_density_points.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("valid JSON")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}

#[test]
fn density_matches_scipy_fixture() {
    let doc = fixture();
    let points = doc["points"].as_array().expect("points");
    assert_eq!(points.len(), 400);
    let mut worst: f64 = 0.0;
    for (i, p) in points.iter().enumerate() {
        let (c, x) = (floats(&p["c"]), floats(&p["x"]));
        let want = floats(&p["factors"]);
        let got = known_log_density_factors(&c, &x);
        for d in 0..3 {
            let err = (got[d] - want[d]).abs() / want[d].abs().max(1.0);
            worst = worst.max(err);
            assert!(err <= 1e-10, "point {i} factor {d}: {} against scipy {}", got[d], want[d]);
        }
        let total = p["log_density"].as_f64().unwrap();
        let got_total = known_log_density(&c, &x);
        assert!(
            (got_total - total).abs() <= 1e-10 * total.abs().max(1.0),
            "point {i}: {got_total} against {total}"
        );
    }
    eprintln!("largest relative difference from scipy.stats: {worst:.2e}");
}

#[test]
fn log_normal_factor_is_zero_density_below_its_shift() {
    let c = [0.2, -0.3];
    // a3 = 0.5 x2 - 1 = -0.5 at x2 = 1
    assert_eq!(known_log_density(&c, &[0.1, 1.0, -0.5]), f64::NEG_INFINITY);
    assert_eq!(known_log_density(&c, &[0.1, 1.0, -0.7]), f64::NEG_INFINITY);
    assert!(known_log_density(&c, &[0.1, 1.0, -0.4]).is_finite());
}

/// Integral of f over the real line by the trapezoid rule in theta, x = centre + scale tan(theta),
/// on n intervals of (-pi/2, pi/2) (f's decay makes the end points' contributions zero).
fn integrate_line(f: impl Fn(f64) -> f64, centre: f64, scale: f64, n: usize) -> f64 {
    let h = 2.0 * FRAC_PI_2 / n as f64;
    let mut sum = 0.0;
    for i in 1..n {
        let theta = -FRAC_PI_2 + i as f64 * h;
        let (s, c) = theta.sin_cos();
        let x = centre + scale * s / c;
        sum += f(x) * scale / (c * c);
    }
    sum * h
}

const CONTEXTS: [[f64; 2]; 6] =
    [[0.0, 0.0], [-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [0.37, -0.61]];

#[test]
fn each_conditional_factor_integrates_to_one() {
    let mut worst: f64 = 0.0;
    for c in CONTEXTS {
        let i1 =
            integrate_line(|x1| known_log_density_factors(&c, &[x1, 0.0, 0.0])[0].exp(), 0.0, 1.0, 20_000);
        worst = worst.max((i1 - 1.0).abs());
        for x1 in [-25.0, -2.0, -0.3, 0.0, 0.8, 3.0, 40.0] {
            let i2 =
                integrate_line(|x2| known_log_density_factors(&c, &[x1, x2, 0.0])[1].exp(), 0.0, 1.0, 20_000);
            worst = worst.max((i2 - 1.0).abs());
            for x2 in [-2.5, -0.4, 0.0, 1.1, 2.0] {
                let i3 = integrate_line(
                    |x3| known_log_density_factors(&c, &[x1, x2, x3])[2].exp(),
                    0.0,
                    1.0,
                    20_000,
                );
                worst = worst.max((i3 - 1.0).abs());
            }
        }
    }
    eprintln!("largest |integral - 1| of a 1-D conditional: {worst:.2e}");
    assert!(worst < 1e-6, "{worst}");
}

#[test]
fn joint_density_integrates_to_one_in_three_dimensions() {
    // Nested trapezoid rules on fixed tan maps (not centred on the conditionals): the full
    // triple integral of exp(log p(x | c)) for a few contexts.
    let n = 200;
    for c in [[0.0, 0.0], [-1.0, 1.0], [1.0, -1.0]] {
        let total = integrate_line(
            |x1| {
                integrate_line(
                    |x2| integrate_line(|x3| known_log_density(&c, &[x1, x2, x3]).exp(), 0.0, 1.0, n),
                    0.0,
                    1.0,
                    n,
                )
            },
            0.0,
            1.0,
            n,
        );
        eprintln!("c = {c:?}: triple integral {total:.8}");
        assert!((total - 1.0).abs() < 1e-4, "c = {c:?}: {total}");
    }
}

#[test]
fn t4_distribution_function_matches_its_density() {
    for t in [-50.0, -7.0, -2.0, -0.5, 0.0, 0.3, 1.0, 4.0, 100.0] {
        // F(t) = integral over (-inf, t]: map theta in (-pi/2, atan(t)) to x = tan(theta), Simpson
        let top = f64::atan(t);
        let n = 20_000;
        let h = (top + FRAC_PI_2) / n as f64;
        let mut sum = ln_t4(t).exp() * (1.0 + t * t);
        for i in 1..n {
            let x = (-FRAC_PI_2 + i as f64 * h).tan();
            sum += if i % 2 == 1 { 4.0 } else { 2.0 } * ln_t4(x).exp() * (1.0 + x * x);
        }
        let f = sum * h / 3.0;
        assert!((f - cdf_t4(t)).abs() < 1e-9, "t = {t}: quadrature {f}, closed form {}", cdf_t4(t));
    }
}

/// Kolmogorov-Smirnov statistic sqrt(n) D_n of values against the uniform distribution on (0, 1).
fn ks_uniform(mut u: Vec<f64>) -> f64 {
    u.sort_by(f64::total_cmp);
    let n = u.len() as f64;
    let mut d: f64 = 0.0;
    for (i, &v) in u.iter().enumerate() {
        d = d.max((i as f64 + 1.0) / n - v).max(v - i as f64 / n);
    }
    d * n.sqrt()
}

#[test]
fn sampler_rosenblatt_transform_is_uniform() {
    let n = 100_000;
    let (c, x) = sample_known_f64(n, 7);
    assert_eq!((c.len(), x.len()), (2 * n, 3 * n));
    assert!(c.iter().all(|v| (-1.0..=1.0).contains(v)));
    let mut u = [Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n)];
    for (ci, xi) in c.chunks_exact(2).zip(x.chunks_exact(3)) {
        let f = known_conditional_cdfs(ci, xi);
        for d in 0..3 {
            u[d].push(f[d]);
        }
    }
    // the context's own coordinates: uniform too
    let uc1 = c.iter().step_by(2).map(|v| 0.5 * (v + 1.0)).collect();
    let uc2 = c.iter().skip(1).step_by(2).map(|v| 0.5 * (v + 1.0)).collect();
    for (name, values) in
        [("c1", uc1), ("c2", uc2), ("x1", u[0].clone()), ("x2", u[1].clone()), ("x3", u[2].clone())]
    {
        let ks = ks_uniform(values);
        eprintln!("{name}: sqrt(n) D = {ks:.3}");
        // P(sqrt(n) D > 1.95) = 0.001 for the Kolmogorov distribution
        assert!(ks < 1.95, "{name}: sqrt(n) D_n = {ks}");
    }
}

#[test]
fn sampler_mean_log_density_matches_python_monte_carlo() {
    let doc = fixture();
    let py_mean = doc["mc_mean_log_density"]["mean"].as_f64().unwrap();
    let py_se = doc["mc_mean_log_density"]["stderr"].as_f64().unwrap();
    let n = 1_000_000;
    let (c, x) = sample_known_f64(n, 11);
    let (mut s, mut s2) = (0.0, 0.0);
    for (ci, xi) in c.chunks_exact(2).zip(x.chunks_exact(3)) {
        let lp = known_log_density(ci, xi);
        s += lp;
        s2 += lp * lp;
    }
    let mean = s / n as f64;
    let se = ((s2 / n as f64 - mean * mean) / n as f64).sqrt();
    let z = (mean - py_mean) / (se * se + py_se * py_se).sqrt();
    eprintln!("E[log p]: Rust sampler {mean:.5} +- {se:.5}, Python {py_mean:.5} +- {py_se:.5}, z = {z:.2}");
    assert!(z.abs() < 4.0, "z = {z}");
    // and the float32 rows the trainer gets give the same figure to well within the tolerance
    let (c32, x32) = sample_known(n, 11);
    assert!((known_mean_nll(&c32, &x32) + mean).abs() < 1e-5);
}

#[test]
fn sampler_is_reproducible_and_seeded() {
    let a = sample_known(1000, 3);
    let b = sample_known(1000, 3);
    let d = sample_known(1000, 4);
    assert_eq!(a, b);
    assert_ne!(a.1, d.1);
    assert!(a.1.iter().all(|v| v.is_finite()));
}
