//! Real polynomials in monomial form, p(t) = sum_k c[k] t^k: evaluation, real roots on an
//! interval, and the minimum on an interval (the surrogate's line search).

use alloc::vec::Vec;

use super::{mul_add, sqrt};

/// p(t) by Horner's rule.
pub fn evaluate(c: &[f64], t: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, &ck| mul_add(acc, t, ck))
}

/// The coefficients of p'(t).
pub fn derivative(c: &[f64]) -> Vec<f64> {
    c.iter().enumerate().skip(1).map(|(k, &ck)| k as f64 * ck).collect()
}

/// The real roots of p in the open interval (lo, hi), ascending.
///
/// Degree <= 2 in closed form (the quadratic with the cancellation-free formula,
/// q = -(b + sign(b) sqrt(b^2 - 4ac)) / 2, roots q/a and c/q; Numerical Recipes 3rd ed. 5.6).
/// Higher degrees by isolation: the roots of p' split (lo, hi) into pieces where p is
/// monotone, and a piece whose ends differ in sign holds exactly one root, found by Newton's
/// method safeguarded by bisection to full precision. A double root where p' vanishes is kept
/// when p is exactly zero there.
pub fn roots_in(c: &[f64], lo: f64, hi: f64) -> Vec<f64> {
    let degree = c.iter().rposition(|&v| v != 0.0).unwrap_or(0);
    let inside = |t: f64| t > lo && t < hi;
    let mut roots = Vec::new();
    match degree {
        0 => {}
        1 => roots.push(-c[0] / c[1]),
        2 => {
            let (a, b, c0) = (c[2], c[1], c[0]);
            let discriminant = b * b - 4.0 * a * c0;
            if discriminant >= 0.0 {
                let q = -0.5 * (b + sqrt(discriminant).copysign(b));
                if q != 0.0 {
                    roots.push(q / a);
                    roots.push(c0 / q);
                } else {
                    roots.push(0.0); // b = c0 = 0: the double root t = 0
                }
            }
        }
        _ => {
            let p = &c[..=degree];
            let mut ends = alloc::vec![lo];
            ends.extend(roots_in(&derivative(p), lo, hi));
            ends.push(hi);
            for w in ends.windows(2) {
                let (a, b) = (w[0], w[1]);
                let (fa, fb) = (evaluate(p, a), evaluate(p, b));
                if fa == 0.0 && a != lo {
                    roots.push(a);
                } else if fa * fb < 0.0 {
                    roots.push(monotone_root(p, a, b, fa));
                }
            }
        }
    }
    roots.retain(|&t| inside(t));
    roots.sort_by(f64::total_cmp);
    roots.dedup();
    roots
}

/// The root of p in (a, b) where p is monotone with p(a) = fa and p(b) of the other sign.
fn monotone_root(p: &[f64], mut a: f64, mut b: f64, fa: f64) -> f64 {
    let dp = derivative(p);
    let mut t = 0.5 * (a + b);
    for _ in 0..200 {
        let ft = evaluate(p, t);
        if ft == 0.0 {
            return t;
        }
        if (ft < 0.0) == (fa < 0.0) {
            a = t;
        } else {
            b = t;
        }
        let newton = t - ft / evaluate(&dp, t);
        let next = if newton > a && newton < b { newton } else { 0.5 * (a + b) };
        if next == t || b - a <= f64::EPSILON * t.abs() {
            return next;
        }
        t = next;
    }
    t
}

/// The minimiser of p on (0, hi] among the critical points of p in (0, hi) and the end point
/// hi (the first one where several give the same value), with p(t*).
pub fn minimise_on(c: &[f64], hi: f64) -> (f64, f64) {
    let mut best = (hi, evaluate(c, hi));
    for t in roots_in(&derivative(c), 0.0, hi) {
        let value = evaluate(c, t);
        if value < best.1 || (value == best.1 && t < best.0) {
            best = (t, value);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_of_products_of_known_factors() {
        // (t - 0.5)(t - 1)(t - 2)(t - 3.5)(t + 1): expanded by hand below.
        let roots_true = [0.5, 1.0, 2.0, 3.5];
        let mut c = alloc::vec![1.0];
        for r in roots_true.iter().chain([-1.0].iter()) {
            let mut next = alloc::vec![0.0; c.len() + 1];
            for (k, &ck) in c.iter().enumerate() {
                next[k + 1] += ck;
                next[k] -= r * ck;
            }
            c = next;
        }
        let found = roots_in(&c, 0.0, 4.0);
        assert_eq!(found.len(), 4, "{found:?}");
        for (f, t) in found.iter().zip(roots_true) {
            assert!((f - t).abs() < 1e-14, "{f} vs {t}");
        }
        assert!(roots_in(&[1.0, 0.0, 1.0], -5.0, 5.0).is_empty());
        let sqrt2 = roots_in(&[-2.0, 0.0, 1.0], 0.0, 5.0);
        assert!(sqrt2.len() == 1 && (sqrt2[0] - 2f64.sqrt()).abs() < 4e-16, "{sqrt2:?}");
    }

    #[test]
    fn minimum_of_a_cubic() {
        // p = -t + t^2: minimum at 1/2; with hi = 0.3 the end point.
        assert_eq!(minimise_on(&[0.0, -1.0, 1.0], 2.0), (0.5, -0.25));
        assert_eq!(minimise_on(&[0.0, -1.0, 1.0], 0.3).0, 0.3);
        // p = -t + t^3/3 - t^4/4 ... decreasing again later: end point wins over the local minimum.
        let c = [0.0, -1.0, 1.5, -0.4];
        let (t, v) = minimise_on(&c, 10.0);
        assert_eq!(t, 10.0);
        assert!((v - evaluate(&c, 10.0)).abs() < 1e-12);
    }
}
