//! Element-wise activations and the softmax, in f32 (transcendentals evaluated in f64 and
//! rounded once, so each result is within 1 ulp of the true value).

use crate::error::{Result, invalid};
#[cfg(target_arch = "x86_64")]
use crate::math::simd::VectorIsa;
use crate::math::{exp, exp_branchless_f32, tanh_f32};

/// An element-wise nonlinearity of the network runner.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActivationFn {
    /// max(x, 0).
    Relu,
    /// x for x > 0, alpha x otherwise.
    LeakyRelu {
        /// Slope for x <= 0 (PyTorch's default 0.01, Keras' 0.3).
        alpha: f32,
    },
    /// x for x > 0, alpha (e^x - 1) otherwise (Clevert et al. 2016, arXiv:1511.07289).
    Elu {
        /// Saturation value for x -> -inf (default 1).
        alpha: f32,
    },
    /// 1 / (1 + e^-x), evaluated as e^x / (1 + e^x) for x < 0 (no overflow).
    Sigmoid,
    /// tanh x.
    Tanh,
}

impl ActivationFn {
    /// Checks the parameter (alpha finite).
    ///
    /// Errors: [`crate::Error::InvalidArgument`] for a non-finite alpha.
    pub fn validate(self) -> Result<Self> {
        match self {
            ActivationFn::LeakyRelu { alpha } | ActivationFn::Elu { alpha } if !alpha.is_finite() => {
                Err(invalid!("activation alpha must be finite, got {alpha}"))
            }
            other => Ok(other),
        }
    }

    /// The activation of one value.
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            ActivationFn::Relu => x.max(0.0),
            ActivationFn::LeakyRelu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            ActivationFn::Elu { alpha } => {
                // e^x - 1 with the branch-free single-precision exp (absolute error below 3e-7),
                // chosen only where x <= 0.
                let elu = alpha * (exp_branchless_f32(x.min(0.0)) - 1.0);
                if x > 0.0 { x } else { elu }
            }
            ActivationFn::Sigmoid => {
                // e / (1 + e) with e = e^-|x| (the branch-free f32 exp): no overflow, and the
                // negative side follows e^x down into f32's subnormals.
                let e = exp_branchless_f32(-x.abs());
                let numerator = if x >= 0.0 { 1.0 } else { e };
                numerator / (1.0 + e)
            }
            ActivationFn::Tanh => tanh_f32(x),
        }
    }

    /// [`Self::apply`] to every value: one branch-free loop per kind, on the widest vector
    /// instruction set of the CPU (the same bits on each).
    pub fn apply_all(self, values: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        match VectorIsa::detect() {
            // SAFETY: VectorIsa::detect found the instruction set on this CPU.
            VectorIsa::Avx512 => return unsafe { self.apply_all_avx512(values) },
            VectorIsa::Avx2 => return unsafe { self.apply_all_avx2(values) },
            VectorIsa::Baseline | VectorIsa::Neon => {}
        }
        self.apply_all_lanes(values)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    unsafe fn apply_all_avx512(self, values: &mut [f32]) {
        self.apply_all_lanes(values)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn apply_all_avx2(self, values: &mut [f32]) {
        self.apply_all_lanes(values)
    }

    #[inline(always)]
    fn apply_all_lanes(self, values: &mut [f32]) {
        match self {
            ActivationFn::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
            ActivationFn::LeakyRelu { alpha } => {
                values.iter_mut().for_each(|v| *v = ActivationFn::LeakyRelu { alpha }.apply(*v))
            }
            ActivationFn::Elu { alpha } => {
                values.iter_mut().for_each(|v| *v = ActivationFn::Elu { alpha }.apply(*v))
            }
            ActivationFn::Sigmoid => values.iter_mut().for_each(|v| *v = ActivationFn::Sigmoid.apply(*v)),
            ActivationFn::Tanh => values.iter_mut().for_each(|v| *v = tanh_f32(*v)),
        }
    }
}

/// Softmax of each row of `values` ([rows][row_len]) in place, numerically stable:
/// y_i = e^(x_i - m) / sum_j e^(x_j - m) with m = max_j x_j (so no exponential overflows),
/// exponentials and the sum in f64.
///
/// Errors: [`crate::Error::InvalidArgument`] when row_len is 0 or does not divide the length.
pub fn softmax_rows(values: &mut [f32], row_len: usize) -> Result<()> {
    if row_len == 0 || !values.len().is_multiple_of(row_len) {
        return Err(invalid!("softmax: {} values are not whole rows of {row_len}", values.len()));
    }
    for row in values.chunks_exact_mut(row_len) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let max = f64::from(max);
        let mut sum = 0.0f64;
        for v in row.iter() {
            sum += exp(f64::from(*v) - max);
        }
        for v in row.iter_mut() {
            *v = (exp(f64::from(*v) - max) / sum) as f32;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_at_known_points() {
        assert_eq!(ActivationFn::Relu.apply(-2.0), 0.0);
        assert_eq!(ActivationFn::LeakyRelu { alpha: 0.1 }.apply(-2.0), -0.2);
        assert!((ActivationFn::Elu { alpha: 1.0 }.apply(-1.0) - (-0.632_120_56)).abs() < 1e-7);
        assert_eq!(ActivationFn::Sigmoid.apply(0.0), 0.5);
        // e^-100 = 3.7e-44, a subnormal f32 (precision of a few percent there).
        assert!((f64::from(ActivationFn::Sigmoid.apply(-100.0)) / (-100f64).exp() - 1.0).abs() < 0.05);
        assert_eq!(ActivationFn::Sigmoid.apply(100.0), 1.0);
        assert!((ActivationFn::Tanh.apply(0.5) - 0.462_117_16).abs() < 1e-7);
        assert!(ActivationFn::Elu { alpha: f32::NAN }.validate().is_err());
    }

    #[test]
    fn softmax_is_stable_and_normalised() {
        let mut v = [1000.0f32, 1001.0, 1002.0, -5.0, 0.0, 5.0];
        softmax_rows(&mut v, 3).unwrap();
        // e^0, e^1, e^2 over their sum.
        let s = 1.0 + 1f64.exp() + 2f64.exp();
        for (got, want) in v[..3].iter().zip([1.0 / s, 1f64.exp() / s, 2f64.exp() / s]) {
            assert!((f64::from(*got) - want).abs() < 1e-7, "{got} {want}");
        }
        assert!((v[3..].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(softmax_rows(&mut v, 4).is_err());
    }
}
