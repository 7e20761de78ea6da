//! Chebyshev interpolation on [-1, 1]: coefficients from samples at the Chebyshev points of the
//! first kind, their integral, and their conversion to monomial (power-series) form.
//!
//! Reference: Trefethen, Approximation Theory and Approximation Practice (2013), ch. 3 and 19;
//! Numerical Recipes (3rd ed.) section 5.8 (chebft, chint, chebpc).

use alloc::vec;
use alloc::vec::Vec;

use super::cos;

/// The n Chebyshev points of the first kind, t_k = cos(pi (k + 1/2) / n), k = 0..n.
pub fn nodes(n: usize) -> Vec<f64> {
    (0..n).map(|k| cos(core::f64::consts::PI * (k as f64 + 0.5) / n as f64)).collect()
}

/// Coefficients c_j of the degree n-1 interpolant sum_j c_j T_j(t) through the values
/// `samples[k] = f(t_k)` at the points of [`nodes`]`(n)` (a discrete cosine transform).
pub fn coefficients(samples: &[f64]) -> Vec<f64> {
    Grid::new(samples.len()).coefficients(samples)
}

/// The n Chebyshev points and the cosines of the transform [`coefficients`], computed once for
/// many interpolants of one degree (the same values and bits as `nodes` and `coefficients`).
#[derive(Clone, Debug)]
pub struct Grid {
    /// [`nodes`]`(n)`.
    pub nodes: Vec<f64>,
    /// cos(pi j (k + 1/2) / n) at [j n + k].
    cosines: Vec<f64>,
}

impl Grid {
    /// The grid of n points.
    pub fn new(n: usize) -> Self {
        let cosines = (0..n * n)
            .map(|i| {
                let (j, k) = (i / n, i % n);
                cos(core::f64::consts::PI * j as f64 * (k as f64 + 0.5) / n as f64)
            })
            .collect();
        Grid { nodes: nodes(n), cosines }
    }

    /// [`coefficients`] of n samples at the grid's points.
    pub fn coefficients(&self, samples: &[f64]) -> Vec<f64> {
        let n = self.nodes.len();
        assert_eq!(samples.len(), n, "one sample per point of the grid");
        let scale = 2.0 / n as f64;
        self.cosines
            .chunks_exact(n)
            .enumerate()
            .map(|(j, row)| {
                let sum: f64 = samples.iter().zip(row).map(|(&f, &c)| f * c).sum();
                if j == 0 { 0.5 * scale * sum } else { scale * sum }
            })
            .collect()
    }
}

/// Coefficients of the integral I(t) = integral_{-1}^{t} f(s) ds of f = sum_j c_j T_j, one
/// degree higher: C_k = (c_{k-1} - c_{k+1}) / (2k) for k >= 1 (c_1 counts twice in C_0's
/// term through T_0 = 1), C_0 fixed by I(-1) = 0.
pub fn integral(c: &[f64]) -> Vec<f64> {
    let n = c.len();
    let at = |j: usize| if j < n { c[j] } else { 0.0 };
    let mut out = vec![0.0; n + 1];
    for (k, slot) in out.iter_mut().enumerate().skip(1) {
        // d/dt T_{k} relations: integral T_0 = T_1, integral T_1 = T_2/4 (+const), and
        // integral T_j = T_{j+1}/(2(j+1)) - T_{j-1}/(2(j-1)) for j >= 2.
        let lower = if k == 1 { 2.0 * at(0) } else { at(k - 1) };
        *slot = (lower - at(k + 1)) / (2.0 * k as f64);
    }
    // I(-1) = sum_k C_k T_k(-1) = sum_k C_k (-1)^k must vanish.
    let alternating: f64 =
        out.iter().enumerate().skip(1).map(|(k, &ck)| if k % 2 == 0 { ck } else { -ck }).sum();
    out[0] = -alternating;
    out
}

/// Converts sum_j c_j T_j(t) to the power series sum_j a_j t^j (same degree).
///
/// Well conditioned for the fast-decaying series of smooth functions on short pieces that the
/// library's tables hold (the monomial coefficients decay as fast as the Chebyshev ones).
pub fn to_monomial(c: &[f64]) -> Vec<f64> {
    let n = c.len();
    let mut out = vec![0.0; n];
    // Recurrence T_{j+1} = 2 t T_j - T_{j-1}, carried on monomial coefficient vectors.
    let mut previous = vec![0.0; n]; // T_{j-1}
    let mut current = vec![0.0; n]; // T_j
    current[0] = 1.0;
    for (j, &cj) in c.iter().enumerate() {
        for (o, &t) in out.iter_mut().zip(&current) {
            *o += cj * t;
        }
        if j + 1 == n {
            break;
        }
        let mut next = vec![0.0; n];
        for k in 0..n {
            let shifted = if k > 0 { current[k - 1] } else { 0.0 };
            let factor = if j == 0 { 1.0 } else { 2.0 };
            next[k] = factor * shifted - if j == 0 { 0.0 } else { previous[k] };
        }
        previous = core::mem::replace(&mut current, next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn horner(a: &[f64], t: f64) -> f64 {
        a.iter().rev().fold(0.0, |acc, &c| acc * t + c)
    }

    #[test]
    fn interpolates_exp_to_rounding() {
        let n = 16;
        let samples: Vec<f64> = nodes(n).iter().map(|&t| t.exp()).collect();
        let mono = to_monomial(&coefficients(&samples));
        for i in 0..=20 {
            let t = -1.0 + 0.1 * i as f64;
            assert!((horner(&mono, t) / t.exp() - 1.0).abs() < 4e-15);
        }
    }

    #[test]
    fn integral_of_cosine_is_sine() {
        // integral_{-1}^{t} cos(s) ds = sin t + sin 1.
        let n = 18;
        let samples: Vec<f64> = nodes(n).iter().map(|&t| t.cos()).collect();
        let mono = to_monomial(&integral(&coefficients(&samples)));
        for i in 0..=20 {
            let t = -1.0 + 0.1 * i as f64;
            let exact = t.sin() + 1f64.sin();
            assert!((horner(&mono, t) - exact).abs() < 2e-16 * 4.0, "{t}");
        }
    }

    #[test]
    fn monomial_form_of_t3() {
        // T_3 = 4 t^3 - 3 t.
        assert_eq!(to_monomial(&[0.0, 0.0, 0.0, 1.0]), vec![0.0, -3.0, 0.0, 4.0]);
    }
}
