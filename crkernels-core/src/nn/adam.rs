//! The Adam optimiser (Kingma & Ba 2015, arXiv:1412.6980, algorithm 1) as PyTorch's
//! `torch.optim.Adam` computes it, and the learning-rate schedules of the trainers.
//!
//! For step t = 1, 2, ... with gradient g (plus `weight_decay` times the parameter, PyTorch's
//! coupled L2 decay):
//!
//! ```text
//! m = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
//! p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + epsilon)
//! ```
//!
//! The update is elementwise, so a parameter vector may be updated in any split (threads own
//! disjoint ranges) with the same bits. A parameter whose gradient is always exactly 0 (a
//! masked weight) never moves: m = v = 0 and the step is 0 / epsilon = 0.

use crate::error::{Error, Result};
#[cfg(all(feature = "std", target_arch = "x86_64"))]
use crate::math::simd::VectorIsa;
use crate::math::{cos, sqrt};

/// Adam's settings (PyTorch's defaults: beta1 0.9, beta2 0.999, epsilon 1e-8, no decay).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Decay of the first-moment average.
    pub beta1: f64,
    /// Decay of the second-moment average.
    pub beta2: f64,
    /// Added to sqrt(v) in the denominator.
    pub epsilon: f64,
    /// L2 coefficient added to the gradient (weight_decay * p), PyTorch's `weight_decay`.
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: 0.0 }
    }
}

impl AdamConfig {
    /// Checks 0 <= beta < 1, epsilon > 0 and weight_decay >= 0, all finite.
    ///
    /// Errors: [`Error::InvalidArgument`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        let beta_ok = |b: f64| b.is_finite() && (0.0..1.0).contains(&b);
        if !beta_ok(self.beta1) || !beta_ok(self.beta2) {
            return Err(Error::InvalidArgument(alloc::format!(
                "Adam betas must be in [0, 1), got {} and {}",
                self.beta1,
                self.beta2
            )));
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(Error::InvalidArgument(alloc::format!(
                "Adam epsilon must be finite and > 0, got {}",
                self.epsilon
            )));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::InvalidArgument(alloc::format!(
                "weight decay must be finite and >= 0, got {}",
                self.weight_decay
            )));
        }
        Ok(())
    }

    /// The per-step constants of step t (1-based) at learning rate `learning_rate`.
    pub fn step_constants(&self, learning_rate: f64, t: u64) -> AdamStep {
        let t = t.min(i32::MAX as u64) as i32;
        let bias1 = 1.0 - powi(self.beta1, t);
        let bias2 = 1.0 - powi(self.beta2, t);
        AdamStep {
            beta1: self.beta1 as f32,
            beta2: self.beta2 as f32,
            step_size: (learning_rate / bias1) as f32,
            inv_sqrt_bias2: (1.0 / sqrt(bias2)) as f32,
            epsilon: self.epsilon as f32,
            weight_decay: self.weight_decay as f32,
        }
    }
}

fn powi(base: f64, exponent: i32) -> f64 {
    let mut result = 1.0;
    let mut factor = base;
    let mut e = exponent;
    while e > 0 {
        if e & 1 == 1 {
            result *= factor;
        }
        factor *= factor;
        e >>= 1;
    }
    result
}

/// The constants of one Adam step, in f32 (see [`AdamConfig::step_constants`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    beta1: f32,
    beta2: f32,
    step_size: f32,
    inv_sqrt_bias2: f32,
    epsilon: f32,
    weight_decay: f32,
}

impl AdamStep {
    /// Updates `params` in place from `grad`, with the moment estimates `m` and `v` (all the
    /// same length; a range of a larger vector is fine).
    pub fn apply(&self, params: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32]) {
        debug_assert!(grad.len() == params.len() && m.len() == params.len() && v.len() == params.len());
        // The same loop compiled for the widest vector set (the same bits: only correctly
        // rounded operations, none fused).
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        match VectorIsa::detect() {
            // SAFETY: detect() found the instruction set on this CPU.
            VectorIsa::Avx512 => return unsafe { self.apply_avx512(params, grad, m, v) },
            // SAFETY: as above.
            VectorIsa::Avx2 => return unsafe { self.apply_avx2(params, grad, m, v) },
            VectorIsa::Baseline | VectorIsa::Neon => {}
        }
        self.apply_lanes(params, grad, m, v)
    }

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    unsafe fn apply_avx512(&self, params: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32]) {
        self.apply_lanes(params, grad, m, v)
    }

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn apply_avx2(&self, params: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32]) {
        self.apply_lanes(params, grad, m, v)
    }

    #[inline(always)]
    fn apply_lanes(&self, params: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32]) {
        for (((p, &g), m), v) in params.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = g + self.weight_decay * *p;
            *m = self.beta1 * *m + (1.0 - self.beta1) * g;
            *v = self.beta2 * *v + (1.0 - self.beta2) * g * g;
            let denominator = sqrt_f32(*v) * self.inv_sqrt_bias2 + self.epsilon;
            *p -= self.step_size * *m / denominator;
        }
    }
}

#[inline(always)]
fn sqrt_f32(x: f32) -> f32 {
    #[cfg(feature = "std")]
    {
        x.sqrt()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::sqrtf(x)
    }
}

/// How the learning rate changes over the epochs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrSchedule {
    /// The same rate every epoch (the SECRET paper's choice).
    Constant,
    /// lr_e = lr (final + (1 - final) (1 + cos(pi e / max_epochs)) / 2), e = 0-based epoch
    /// (Loshchilov & Hutter 2017, SGDR without restarts), down to `final_fraction` lr.
    Cosine {
        /// The rate at the last epoch as a fraction of the initial rate, in [0, 1].
        final_fraction: f64,
    },
    /// lr_e = lr gamma^floor(e / every): PyTorch's StepLR.
    Step {
        /// Factor per period, in (0, 1].
        gamma: f64,
        /// Epochs per period, >= 1.
        every: usize,
    },
}

impl LrSchedule {
    /// Checks the schedule's constants.
    ///
    /// Errors: [`Error::InvalidArgument`].
    pub fn validate(&self) -> Result<()> {
        match *self {
            LrSchedule::Constant => Ok(()),
            LrSchedule::Cosine { final_fraction } if (0.0..=1.0).contains(&final_fraction) => Ok(()),
            LrSchedule::Step { gamma, every } if gamma > 0.0 && gamma <= 1.0 && every >= 1 => Ok(()),
            other => Err(Error::InvalidArgument(alloc::format!("invalid learning-rate schedule {other:?}"))),
        }
    }

    /// The learning rate of epoch `epoch` (0-based) of `max_epochs`, from the initial `lr`.
    pub fn rate(&self, lr: f64, epoch: usize, max_epochs: usize) -> f64 {
        match *self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine { final_fraction } => {
                let progress = epoch as f64 / max_epochs.max(1) as f64;
                let shape = 0.5 * (1.0 + cos(core::f64::consts::PI * progress.min(1.0)));
                lr * (final_fraction + (1.0 - final_fraction) * shape)
            }
            LrSchedule::Step { gamma, every } => {
                lr * powi(gamma, (epoch / every).min(i32::MAX as usize) as i32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two steps by hand from Kingma & Ba's algorithm 1 in f64: g = 0.5 then -0.25 on p = 1.
    #[test]
    fn two_steps_match_the_algorithm() {
        let config = AdamConfig::default();
        let (mut p, mut m, mut v) = ([1.0f32], [0.0f32], [0.0f32]);
        let lr = 1e-2;
        let (mut pe, mut me, mut ve) = (1.0f64, 0.0f64, 0.0f64);
        for (t, g) in [(1u64, 0.5f64), (2, -0.25)] {
            config.step_constants(lr, t).apply(&mut p, &[g as f32], &mut m, &mut v);
            me = 0.9 * me + 0.1 * g;
            ve = 0.999 * ve + 0.001 * g * g;
            let m_hat = me / (1.0 - 0.9f64.powi(t as i32));
            let v_hat = ve / (1.0 - 0.999f64.powi(t as i32));
            pe -= lr * m_hat / (v_hat.sqrt() + 1e-8);
            assert!((f64::from(p[0]) - pe).abs() < 1e-6, "step {t}: {} vs {pe}", p[0]);
        }
        // The first step moves by lr (m_hat / sqrt(v_hat) = sign g).
        let (mut q, mut m1, mut v1) = ([1.0f32], [0.0f32], [0.0f32]);
        config.step_constants(lr, 1).apply(&mut q, &[-3.0], &mut m1, &mut v1);
        assert!((f64::from(q[0]) - (1.0 + lr)).abs() < 1e-6);
    }

    #[test]
    fn zero_gradient_never_moves() {
        let config = AdamConfig::default();
        let (mut p, mut m, mut v) = ([0.0f32, 3.0], [0.0f32; 2], [0.0f32; 2]);
        for t in 1..=10 {
            config.step_constants(1e-3, t).apply(&mut p, &[0.0, 0.0], &mut m, &mut v);
        }
        assert_eq!(p, [0.0, 3.0]);
    }

    #[test]
    fn schedules() {
        assert_eq!(LrSchedule::Constant.rate(1e-3, 7, 10), 1e-3);
        let cosine = LrSchedule::Cosine { final_fraction: 0.1 };
        assert!((cosine.rate(1.0, 0, 10) - 1.0).abs() < 1e-15);
        assert!((cosine.rate(1.0, 5, 10) - 0.55).abs() < 1e-12);
        assert!((cosine.rate(1.0, 10, 10) - 0.1).abs() < 1e-12);
        let step = LrSchedule::Step { gamma: 0.5, every: 3 };
        assert_eq!(step.rate(1.0, 2, 100), 1.0);
        assert_eq!(step.rate(1.0, 7, 100), 0.25);
        assert!(LrSchedule::Step { gamma: 0.0, every: 1 }.validate().is_err());
        assert!(AdamConfig { beta1: 1.0, ..AdamConfig::default() }.validate().is_err());
    }
}
