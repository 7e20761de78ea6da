//! One-dimensional Gaussian mixtures (SECRET eq. 3.5): log-pdf, cdf, quantile and sampling,
//! in f64, for users who build their own heads and for the MADE kernels.
//!
//! A mixture of K components is given by unnormalised logits l_k, means mu_k and log scales
//! ln sigma_k:
//!
//! ```text
//! pi_k = softmax_k(l_k),   p(x) = sum_k pi_k N(x; mu_k, sigma_k^2)
//! ln p(x) = LSE_k(l_k - ln sigma_k - ln(2 pi)/2 - z_k^2/2) - LSE_k(l_k),   z_k = (x - mu_k) / sigma_k
//! ```
//!
//! with the log-sum-exp LSE_k(a_k) = m + ln sum_k e^(a_k - m), m = max_k a_k, so that nothing
//! overflows and a point far in the tails gets a large negative log-density instead of -inf.
//! See [`log_pdf`] for the floor.

use crate::error::{Error, Result};
use crate::math::{erfc, exp, exp_branchless, ln};
use crate::rng::{Stream, standard_normal_quantile};

/// ln(2 pi) / 2.
pub(crate) const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// The parameters of one mixture, borrowed: `logits`, `means` and `log_scales` of equal length
/// K >= 1.
#[derive(Clone, Copy, Debug)]
pub struct Mixture<'a> {
    /// Unnormalised log-weights l_k (pi = softmax(l)).
    pub logits: &'a [f64],
    /// Means mu_k.
    pub means: &'a [f64],
    /// ln sigma_k.
    pub log_scales: &'a [f64],
}

impl<'a> Mixture<'a> {
    /// Checks lengths (equal, >= 1) and that every parameter is finite.
    ///
    /// Errors: [`Error::InvalidArgument`] naming the array.
    pub fn new(logits: &'a [f64], means: &'a [f64], log_scales: &'a [f64]) -> Result<Self> {
        let k = logits.len();
        if k == 0 || means.len() != k || log_scales.len() != k {
            return Err(Error::InvalidArgument(alloc::format!(
                "mixture: logits, means and log_scales must have the same length >= 1, got {}, {} and {}",
                k,
                means.len(),
                log_scales.len()
            )));
        }
        for (name, values) in [("logits", logits), ("means", means), ("log_scales", log_scales)] {
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::InvalidArgument(alloc::format!(
                    "mixture: {name}[{i}] is {} (must be finite)",
                    values[i]
                )));
            }
        }
        Ok(Self { logits, means, log_scales })
    }

    /// LSE_k(l_k), the log of the softmax normaliser.
    fn log_normaliser(&self) -> f64 {
        log_sum_exp(self.logits.iter().copied())
    }

    /// ln p(x); see [`log_pdf`].
    pub fn log_pdf(&self, x: f64) -> f64 {
        log_pdf_unchecked(self.logits, self.means, self.log_scales, x)
    }

    /// P(X <= x) = sum_k pi_k Phi(z_k), Phi(z) = erfc(-z / sqrt 2) / 2 (accurate in the lower
    /// tail; the upper tail saturates at 1 like any cdf in binary64).
    pub fn cdf(&self, x: f64) -> f64 {
        let norm = self.log_normaliser();
        let mut total = 0.0;
        for k in 0..self.logits.len() {
            let z = (x - self.means[k]) * exp(-self.log_scales[k]);
            total += exp(self.logits[k] - norm) * 0.5 * erfc(-z * core::f64::consts::FRAC_1_SQRT_2);
        }
        total.min(1.0)
    }

    /// The x with P(X <= x) = p, for 0 < p < 1.
    ///
    /// The root lies between the smallest and the largest component quantile
    /// mu_k + sigma_k Phi^-1(p) (at the first every component cdf is <= p, at the second >= p);
    /// safeguarded Newton steps (pdf as derivative, bisection when a step leaves the bracket)
    /// refine it until the bracket is below 4 ulp of x or 200 steps.
    ///
    /// Errors: [`Error::InvalidArgument`] when p is not in (0, 1).
    pub fn quantile(&self, p: f64) -> Result<f64> {
        if !(p > 0.0 && p < 1.0) {
            return Err(Error::InvalidArgument(alloc::format!("quantile: p must be in (0, 1), got {p}")));
        }
        let z = standard_normal_quantile(p);
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for k in 0..self.logits.len() {
            let q = self.means[k] + exp(self.log_scales[k]) * z;
            lo = lo.min(q);
            hi = hi.max(q);
        }
        if lo == hi {
            return Ok(lo);
        }
        let mut x = 0.5 * (lo + hi);
        for _ in 0..200 {
            let f = self.cdf(x) - p;
            if f == 0.0 {
                return Ok(x);
            }
            if f < 0.0 {
                lo = x;
            } else {
                hi = x;
            }
            let density = exp(self.log_pdf(x));
            let newton = x - f / density;
            x = if density > 0.0 && newton > lo && newton < hi { newton } else { 0.5 * (lo + hi) };
            if hi - lo <= 4.0 * f64::EPSILON * x.abs().max(f64::MIN_POSITIVE) {
                break;
            }
        }
        Ok(x)
    }

    /// One draw: a component k with probability pi_k by inversion of one uniform, then
    /// mu_k + sigma_k z with z = [`Stream::normal`] (one uniform): 4 words of the stream.
    pub fn sample(&self, stream: &mut Stream) -> f64 {
        sample_unchecked(self.logits, self.means, self.log_scales, stream)
    }
}

/// Batch forms: `out[i] = f(input[i])`, every input checked first (nothing written on error).
impl Mixture<'_> {
    /// ln p(x_i) for each x_i; errors: [`Error::InvalidArgument`] for wrong lengths, n = 0 or
    /// a non-finite x (naming its index).
    pub fn log_pdf_batch(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        self.batch("x", x, out, |v| v.is_finite(), |v| self.log_pdf(v))
    }

    /// P(X <= x_i) for each x_i; errors as [`log_pdf_batch`](Self::log_pdf_batch).
    pub fn cdf_batch(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        self.batch("x", x, out, |v| v.is_finite(), |v| self.cdf(v))
    }

    /// The p_i-quantile for each p_i in (0, 1); errors as
    /// [`log_pdf_batch`](Self::log_pdf_batch), for p outside (0, 1) too.
    pub fn quantile_batch(&self, p: &[f64], out: &mut [f64]) -> Result<()> {
        self.batch("p", p, out, |v| v > 0.0 && v < 1.0, |v| self.quantile(v).unwrap_or(f64::NAN))
    }

    /// Draw i from `Stream::new(seed, first_sample + i)` (see [`sample`](Self::sample)), so
    /// the draws do not depend on how a batch is split. Errors: n = 0.
    pub fn sample_batch(&self, seed: u64, first_sample: u64, out: &mut [f64]) -> Result<()> {
        if out.is_empty() {
            return Err(Error::InvalidArgument("n = 0: the batch is empty".into()));
        }
        for (i, v) in out.iter_mut().enumerate() {
            *v = self.sample(&mut Stream::new(seed, first_sample.wrapping_add(i as u64)));
        }
        Ok(())
    }

    fn batch(
        &self,
        name: &str,
        input: &[f64],
        out: &mut [f64],
        valid: impl Fn(f64) -> bool,
        kernel: impl Fn(f64) -> f64,
    ) -> Result<()> {
        if input.is_empty() || input.len() != out.len() {
            return Err(Error::InvalidArgument(alloc::format!(
                "{name} has {} values and out {}: need the same n >= 1",
                input.len(),
                out.len()
            )));
        }
        if let Some(i) = input.iter().position(|&v| !valid(v)) {
            return Err(Error::InvalidArgument(alloc::format!("{name}[{i}] = {} is not allowed", input[i])));
        }
        for (o, &v) in out.iter_mut().zip(input) {
            *o = kernel(v);
        }
        Ok(())
    }
}

/// ln p(x) of the mixture (see the module documentation), for finite parameters.
///
/// Floor: the result is never NaN for finite x; it is -inf only when every component's
/// z_k^2 / 2 overflows binary64 (|x - mu_k| / sigma_k > 1.3e154), and the MADE kernels clamp
/// their sums to the most negative f32 (see `Made::log_prob`).
pub fn log_pdf(mixture: &Mixture<'_>, x: f64) -> f64 {
    mixture.log_pdf(x)
}

/// ln p(x) without checks; parameters finite, equal lengths >= 1.
pub(crate) fn log_pdf_unchecked(logits: &[f64], means: &[f64], log_scales: &[f64], x: f64) -> f64 {
    let term = |k: usize| component_term(logits[k], means[k], log_scales[k], x);
    let max_logit = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let max_term = (0..logits.len()).map(term).fold(f64::NEG_INFINITY, f64::max);
    if max_term == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let sum_logits: f64 = logits.iter().map(|&l| exp_branchless(l - max_logit)).sum();
    let sum_terms: f64 = (0..logits.len()).map(|k| exp_branchless(term(k) - max_term)).sum();
    (max_term + ln(sum_terms)) - (max_logit + ln(sum_logits))
}

/// As [`log_pdf_unchecked`], with the component terms kept in `terms` (length K) so that each
/// is computed once: the MADE hot loop.
#[inline]
pub(crate) fn log_pdf_scratch(
    logits: &[f64],
    means: &[f64],
    log_scales: &[f64],
    x: f64,
    terms: &mut [f64],
) -> f64 {
    let mut max_logit = f64::NEG_INFINITY;
    let mut max_term = f64::NEG_INFINITY;
    for k in 0..logits.len() {
        terms[k] = component_term(logits[k], means[k], log_scales[k], x);
        max_logit = max_logit.max(logits[k]);
        max_term = max_term.max(terms[k]);
    }
    if max_term == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let mut sum_logits = 0.0;
    let mut sum_terms = 0.0;
    for k in 0..logits.len() {
        sum_logits += exp_branchless(logits[k] - max_logit);
        sum_terms += exp_branchless(terms[k] - max_term);
    }
    (max_term + ln(sum_terms)) - (max_logit + ln(sum_logits))
}

/// l_k - ln sigma_k - ln(2 pi)/2 - z_k^2/2: -inf when z_k^2 overflows, never NaN.
#[inline(always)]
fn component_term(logit: f64, mean: f64, log_scale: f64, x: f64) -> f64 {
    let distance = x - mean;
    // 1/sigma overflows for ln sigma < -709: then z is 0 or infinite, never 0 * inf.
    let inverse_scale = if log_scale.abs() < 700.0 { exp_branchless(-log_scale) } else { exp(-log_scale) };
    let z = if distance == 0.0 { 0.0 } else { distance * inverse_scale };
    logit - log_scale - HALF_LN_2PI - 0.5 * z * z
}

/// LSE of a sequence (-inf for an empty or all -inf one).
fn log_sum_exp(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + ln(values.map(|v| exp(v - max)).sum::<f64>())
}

/// The component picked by the uniform u in (0, 1): the first k with u * sum_j e^(l_j - m) <
/// sum_{j <= k} e^(l_j - m) (the last one if rounding leaves u above every partial sum).
#[inline]
pub(crate) fn pick_component(logits: &[f64], u: f64) -> usize {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Each e^(l_j - m) computed once (the total, then the partial sums, add the same values
    // in the same order as computing them twice did: the same bits). The exponentials were
    // two thirds of the sampler's time once they went to libm.
    const STACK: usize = 64;
    if logits.len() <= STACK {
        let mut weights = [0.0f64; STACK];
        let weights = &mut weights[..logits.len()];
        for (w, &l) in weights.iter_mut().zip(logits) {
            *w = exp(l - max);
        }
        let target = u * weights.iter().sum::<f64>();
        let mut partial = 0.0;
        for (k, &w) in weights.iter().enumerate() {
            partial += w;
            if target < partial {
                return k;
            }
        }
        return logits.len() - 1;
    }
    let total: f64 = logits.iter().map(|&l| exp(l - max)).sum();
    let target = u * total;
    let mut partial = 0.0;
    for (k, &l) in logits.iter().enumerate() {
        partial += exp(l - max);
        if target < partial {
            return k;
        }
    }
    logits.len() - 1
}

/// One draw, without checks: uniform (component), then normal (value).
#[inline]
pub(crate) fn sample_unchecked(
    logits: &[f64],
    means: &[f64],
    log_scales: &[f64],
    stream: &mut Stream,
) -> f64 {
    let k = pick_component(logits, stream.uniform());
    means[k] + exp(log_scales[k]) * stream.normal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_gaussian_matches_the_closed_forms() {
        let log_scale = [ln(2.0)];
        let m = Mixture::new(&[0.3], &[1.0], &log_scale).unwrap();
        let x = 4.0;
        let z: f64 = 1.5;
        let expect = -ln(2.0) - HALF_LN_2PI - 0.5 * z * z;
        assert!((m.log_pdf(x) - expect).abs() < 1e-15);
        assert!((m.cdf(1.0) - 0.5).abs() < 1e-16);
        assert!((m.quantile(0.5).unwrap() - 1.0).abs() < 1e-15);
        // Far tails: finite.
        assert!(m.log_pdf(1e150).is_finite());
    }

    #[test]
    fn quantile_inverts_the_cdf() {
        let m = Mixture::new(&[0.0, 1.0, -2.0], &[-3.0, 0.5, 6.0], &[0.0, -1.0, 1.0]).unwrap();
        for p in [1e-300, 1e-12, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0 - 1e-12] {
            let x = m.quantile(p).unwrap();
            let back = m.cdf(x);
            assert!((back - p).abs() <= 1e-12 * p.max(1e-3) + 1e-15, "p {p} x {x} cdf {back}");
        }
        assert!(m.quantile(0.0).is_err());
        assert!(m.quantile(f64::NAN).is_err());
    }

    /// The cdf (erfc of each component) against Gauss-Legendre quadrature of the pdf (exp of
    /// log_pdf), on 0.05-wide panels from far in the left tail.
    #[test]
    fn cdf_is_the_integral_of_the_pdf() {
        let m = Mixture::new(&[0.0, 1.0, -2.0], &[-3.0, 0.5, 6.0], &[0.0, -1.0, 1.0]).unwrap();
        let rule = crate::math::quadrature::gauss_legendre(12);
        let (start, width) = (-40.0, 0.05);
        let (mut panel, mut integral) = (0, 0.0);
        for target in [-6.0, -3.0, 0.0, 0.5, 2.0, 6.0, 12.0] {
            // Panel k covers start + [k, k + 1] width (computed from k: no drift).
            while start + (panel as f64) * width < target - 1e-9 {
                let center = start + (panel as f64 + 0.5) * width;
                integral += rule
                    .iter()
                    .map(|&(x, w)| w * 0.5 * width * exp(m.log_pdf(center + 0.5 * width * x)))
                    .sum::<f64>();
                panel += 1;
            }
            assert!((m.cdf(target) - integral).abs() < 1e-13, "x {target}: {} vs {integral}", m.cdf(target));
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        let err = Mixture::new(&[0.0], &[f64::NAN], &[0.0]).unwrap_err();
        assert!(err.to_string().contains("means[0]"), "{err}");
        assert!(Mixture::new(&[], &[], &[]).is_err());
    }
}
