//! R(u), the universal Klein-Nishina loss function of a greybody (PHYSICS.md, "Facts about the
//! Klein-Nishina loss rate"): against mpmath reference values, its analytic limits, and an
//! independent double quadrature of the Blumenthal & Gould (1970) eq. 2.48 kernel.
//!
//! The reference values come from `tests/reference/kn_reference.py csv` (about 37 correct
//! digits, written with 25).

use std::f64::consts::PI;

use crkernels::physics::klein_nishina::{PLANCK_MEAN_ENERGY_RATIO, loss_factor};

fn relative_difference(value: f64, reference: f64) -> f64 {
    (value / reference - 1.0).abs()
}

/// (u, R) rows of tests/data/kn_loss_factor_reference.csv.
fn reference_values() -> Vec<(f64, f64)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kn_loss_factor_reference.csv");
    let text = std::fs::read_to_string(path).expect("reading the reference csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("u,R"));
    lines
        .map(|line| {
            let (u, r) = line.split_once(',').expect("a u,R row");
            (u.parse().expect("u"), r.parse().expect("R"))
        })
        .collect()
}

#[test]
fn matches_the_mpmath_reference() {
    let rows = reference_values();
    assert!(rows.len() >= 300);
    assert!(rows.first().unwrap().0 <= 1e-6 && rows.last().unwrap().0 >= 1e10);
    let (worst, at) = rows
        .iter()
        .map(|&(u, r)| (relative_difference(loss_factor(u), r), u))
        .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a });
    println!("R(u): worst relative error {worst:.2e} at u = {at:e} over {} points", rows.len());
    assert!(worst < 2e-14, "worst relative error {worst:e} at u = {at:e}");
}

#[test]
fn thomson_limit() {
    assert_eq!(loss_factor(0.0), 1.0);
}

/// 4 zeta(5)/zeta(4), zeta(4) = pi^4/90 and zeta(5) summed from the small terms up, with the
/// Euler-Maclaurin tail 1/(4 N^4) + 1/(2 N^5) past N.
#[test]
fn planck_mean_energy_ratio() {
    const N: u32 = 1000;
    let n = f64::from(N);
    let tail = 1.0 / (4.0 * n.powi(4)) + 1.0 / (2.0 * n.powi(5));
    let zeta5 = (1..N).rev().map(|k| f64::from(k).powi(-5)).fold(tail, |sum, term| sum + term);
    let ratio = 4.0 * zeta5 * 90.0 / PI.powi(4);
    assert!(relative_difference(PLANCK_MEAN_ENERGY_RATIO, ratio) < 4e-16, "{ratio}");
}

/// R = 1 - (63/40) (4 zeta(5)/zeta(4)) u + c_2 u^2 + O(u^3), with
/// c_2 = (15/pi^4) (441/200) Gamma(6) zeta(6) = 4.2 pi^2 (441/200 from the Taylor series of
/// f_KN, PHYSICS.md).
#[test]
fn small_u_limit() {
    let second_order = 4.2 * PI * PI;
    for u in [1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4] {
        let first_order = 1.0 - 63.0 / 40.0 * PLANCK_MEAN_ENERGY_RATIO * u;
        let remainder = (loss_factor(u) - first_order) / (u * u);
        // The u^3 term moves this by 322.6 u / 41.45 < 8e-4; rounding by < 1e-5.
        assert!(
            relative_difference(remainder, second_order) < 1e-3,
            "u = {u:e}: (R - first order)/u^2 = {remainder} against {second_order}"
        );
    }
}

/// R -> 45/(4 pi^2 u^2) (ln u - C), C = 11/6 - (1 - gamma_E) - zeta'(2)/zeta(2); the next term
/// is O(ln^3 u/u^3), so the relative error of this limit is O(ln^2 u/u) (about 0.4 ln^2 u/u),
/// until it falls below the rounding.
#[test]
fn large_u_limit() {
    let euler_gamma = 0.577_215_664_901_532_9;
    let zeta_prime_over_zeta_at_2 = -0.569_960_993_094_532_8;
    let offset = 11.0 / 6.0 - (1.0 - euler_gamma) - zeta_prime_over_zeta_at_2;
    for step in 0..=288 {
        let u = 1e6 * 10f64.powf(step as f64 / 2.0);
        let t = u.ln();
        let leading = 45.0 / (4.0 * PI * PI) / u / u * (t - offset);
        let r = loss_factor(u);
        assert!(r < leading * (1.0 + 1e-15), "u = {u:e}: the next term is negative");
        assert!(
            relative_difference(r, leading) < 0.5 * t * t / u + 4e-15,
            "u = {u:e}: R = {r:e}, leading term {leading:e}"
        );
    }
}

/// R decreases from 1 towards 0 over the whole range (up to rounding, where it changes by
/// less than an ulp between neighbouring points).
#[test]
fn decreases_monotonically() {
    let mut previous = loss_factor(0.0);
    for step in 0..=160_000 {
        let u = 1e-12 * 10f64.powf(step as f64 / 1000.0);
        let r = loss_factor(u);
        assert!(r > 0.0 && r <= previous * (1.0 + 2.5e-16), "u = {u:e}: {r:e} after {previous:e}");
        previous = r;
    }
}

/// The pieces of the evaluation meet at u = e^(-7 + k/2), k = 0..=70 (series below, polynomial
/// intervals of width 1/2 in ln u, large-u expansion above: see klein_nishina.rs). Across each,
/// R(u (1 + 2e-15))/R(u (1 - 2e-15)) must match R's slope, measured over +-1e-7 around the
/// seam, up to the rounding of ln u (< 2e-16 |ln u| |d ln R/d ln u| per evaluation).
#[test]
fn continuous_across_the_seams() {
    let mut worst: f64 = 0.0;
    for k in 0..=70 {
        let seam = (-7.0 + k as f64 / 2.0).exp();
        let log_ratio = |below: f64, above: f64| (loss_factor(above) / loss_factor(below)).ln();
        let (near_below, near_above) = (seam * (1.0 - 1e-7), seam * (1.0 + 1e-7));
        let slope = log_ratio(near_below, near_above) / (near_above / near_below).ln();
        let (below, above) = (seam * (1.0 - 2e-15), seam * (1.0 + 2e-15));
        let jump = log_ratio(below, above) - slope * (above / below).ln();
        worst = worst.max(jump.abs());
    }
    println!("largest jump across a seam: {worst:.2e}");
    assert!(worst < 1.5e-14, "{worst:e}");
}

/// Integral of f over [a, b] by the tanh-sinh rule (step 1/16, nodes out to where the weights
/// fall below 1e-17 of the interval); it copes with the ln q singularity at an end point.
fn tanh_sinh(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    const STEP: f64 = 1.0 / 16.0;
    const HALF_RANGE: i32 = 52; // tau up to 3.25
    let half_length = 0.5 * (b - a);
    let mut sum = 0.0;
    for k in -HALF_RANGE..=HALF_RANGE {
        let tau = k as f64 * STEP;
        let argument = 0.5 * PI * tau.sinh();
        let weight = 0.5 * PI * tau.cosh() / argument.cosh().powi(2);
        // Distance of the node from the nearer end, without cancellation: 1 -+ tanh(argument).
        let from_end = half_length * (-argument.abs()).exp() / argument.cosh();
        let x = if k < 0 { a + from_end } else { b - from_end };
        sum += weight * f(x);
    }
    sum * half_length * STEP
}

/// Integral of f over [a, b] (a > 0 or b finite) on pieces a, a r, a r^2, ... (r = ratio) that
/// end at b, so that features at every scale between a and b get their own piece.
fn integrate_geometric(f: &impl Fn(f64) -> f64, a: f64, b: f64, ratio: f64) -> f64 {
    let mut sum = 0.0;
    let mut start = a;
    while start < b {
        let end = (start * ratio).min(b);
        sum += tanh_sinh(f, start, end);
        start = end;
    }
    sum
}

/// f_KN(G) = 9 integral_0^1 q F(q, G)/(1 + G q)^3 dq with the Blumenthal & Gould (1970)
/// eq. 2.48 kernel F = 2 q ln q + (1 + 2q)(1 - q) + (G q)^2 (1 - q)/(2 (1 + G q)): the energy
/// of the scattered photon, E1/(gamma m c^2) = G q/(1 + G q), weighted with its spectrum.
fn kernel_blumenthal_gould(g: f64) -> f64 {
    let integrand = |q: f64| {
        let gq = g * q;
        let f = 2.0 * q * q.ln() + (1.0 + 2.0 * q) * (1.0 - q) + gq * gq * (1.0 - q) / (2.0 * (1.0 + gq));
        q * f / (1.0 + gq).powi(3)
    };
    // The integrand turns over at q ~ 1/G: one piece below, geometric pieces above.
    let turn = (0.25 / g).min(1.0);
    9.0 * (tanh_sinh(integrand, 0.0, turn) + integrate_geometric(&integrand, turn, 1.0, 4.0))
}

/// R(u) = (15/pi^4) integral_0^inf x^3/(e^x - 1) f_KN(u x) dx, with f_KN from the double
/// integral above; the Planck weight is below 1e-38 past x = 110.
fn loss_factor_by_double_quadrature(u: f64) -> f64 {
    let integrand = |x: f64| x.powi(3) / x.exp_m1() * kernel_blumenthal_gould(u * x);
    let turn = (0.01 / u).min(0.01);
    15.0 / PI.powi(4) * (tanh_sinh(integrand, 0.0, turn) + integrate_geometric(&integrand, turn, 110.0, 4.0))
}

#[test]
fn matches_an_independent_double_quadrature() {
    let mut worst: f64 = 0.0;
    for u in [1e-6, 1e-4, 2e-3, 0.03, 0.3, 1.0, 4.0, 30.0, 500.0, 1e4, 1e7, 1e13] {
        let independent = loss_factor_by_double_quadrature(u);
        let error = relative_difference(loss_factor(u), independent);
        println!("u = {u:e}: R = {:.16e}, double quadrature {independent:.16e}, {error:.1e}", loss_factor(u));
        worst = worst.max(error);
    }
    assert!(worst < 1e-12, "{worst:e}");
}
