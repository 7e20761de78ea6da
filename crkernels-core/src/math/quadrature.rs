//! Gauss-Legendre quadrature.

use alloc::vec::Vec;

use super::cos;

/// The n Gauss-Legendre nodes and weights (x_i, w_i) on [-1, 1], by Newton's method on the
/// Legendre polynomial P_n from the asymptotic first guesses cos(pi (i + 3/4) / (n + 1/2))
/// (Numerical Recipes 3rd ed., section 4.6, gauleg): exact for polynomials of degree 2n - 1.
pub fn gauss_legendre(n: usize) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| {
            let mut x = cos(core::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5));
            let mut derivative = 1.0;
            for _ in 0..100 {
                let (mut p0, mut p1) = (1.0, x);
                for k in 2..=n {
                    let p2 = ((2 * k - 1) as f64 * x * p1 - (k - 1) as f64 * p0) / k as f64;
                    p0 = p1;
                    p1 = p2;
                }
                derivative = n as f64 * (x * p1 - p0) / (x * x - 1.0);
                let dx = p1 / derivative;
                x -= dx;
                if dx.abs() < 1e-16 {
                    break;
                }
            }
            (x, 2.0 / ((1.0 - x * x) * derivative * derivative))
        })
        .collect()
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn integrates_polynomials_exactly_and_exp_to_rounding() {
        for n in [1, 2, 5, 20, 64] {
            let rule = gauss_legendre(n);
            // integral_{-1}^{1} x^(2n-2) dx = 2/(2n-1); odd powers vanish.
            let even: f64 = rule.iter().map(|&(x, w)| w * x.powi(2 * n as i32 - 2)).sum();
            assert!((even - 2.0 / (2 * n - 1) as f64).abs() < 1e-14, "{n}");
            let odd: f64 = rule.iter().map(|&(x, w)| w * x.powi(2 * n as i32 - 1)).sum();
            assert!(odd.abs() < 1e-14, "{n}");
        }
        let e: f64 = gauss_legendre(20).iter().map(|&(x, w)| w * x.exp()).sum();
        assert!((e / (1f64.exp() - (-1f64).exp()) - 1.0).abs() < 1e-15);
    }
}
