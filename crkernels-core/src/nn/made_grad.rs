//! Analytic gradients of a [`Made`] (issue 16, item 1): of the mean negative log-likelihood
//! of a batch with respect to every parameter, and of log p(x | context) with respect to the
//! context and to x in the user's units.
//!
//! # How
//!
//! In tiles of [`GT`] rows (feature-major, [unit][lane], so that each weight is loaded once
//! per tile and the lanes vectorise), the network is evaluated in f64 from its f32 (or
//! f16/bf16-widened) weights, exactly as [`Made::log_prob`] defines it but without rounding to
//! f32 between the layers, then back-propagated in f64 (reverse mode by hand). Every lane runs
//! the same operations, so a row's results do not depend on its tile, its lane or the thread
//! count:
//!
//! - mixture of dimension d with a_k = l_k - ln sigma_k - ln sqrt(2 pi) - z_k^2 / 2,
//!   z_k = (xs_d - mu_k) / sigma_k, ln p_d = lse(a) - lse(l); with the responsibilities
//!   w_k = softmax(a)_k and pi_k = softmax(l)_k:
//!   d/dl_k = w_k - pi_k, d/dmu_k = w_k z_k / sigma_k, d/d ln sigma_k = w_k (z_k^2 - 1),
//!   d/dxs_d (direct) = -sum_k w_k z_k / sigma_k; the raw scale r gives ln sigma = r
//!   ([`ScaleHead::Exp`]) or ln(softplus(r) + eps) with derivative sigmoid(r) / (softplus(r) +
//!   eps) ([`ScaleHead::SoftplusPlus`], 1 / (r + eps) above PyTorch's threshold 20);
//! - masked dense layers (heads and hidden): only the weights inside the mask (the prefix of
//!   each degree-sorted row, see [`crate::nn::dense`]) are visited, so a masked weight's
//!   gradient is exactly 0; activations sigmoid s (1 - s), tanh 1 - t^2, relu 1 for a
//!   pre-activation > 0 (0 at 0 and below), leaky relu 1 above 0 and its slope 0.01 at 0 and
//!   below, elu (alpha = 1) 1 above 0 and alpha e^p (= y + alpha) at 0 and below, identity 1;
//!   residual buffers get the output's gradient; affine (batch-norm) layers y = act(a u + b)
//!   give d/da, d/db and a times the gradient to u;
//! - the standardisation: d/dx = d/dxs / x_std, d/dc = d/dcs / context_std (the Jacobian term
//!   -sum ln x_std is a constant).
//!
//! The parameter gradient is returned as a [`MadeGrad`] in the file's layout (the
//! [`MadeSpec`](super::MadeSpec) the model was compiled from: `hidden.{i}.weight` [H_i, in_i]
//! and so on for the plain `crkernels.made.v1` layout), in f64.

use alloc::vec;
use alloc::vec::Vec;

use super::{Activation, Made, ScaleHead, Stage};
use crate::error::{Error, Result};
use crate::math::{exp, exp_branchless, exp_m1, ln, ln_1p};
use crate::nn::mixture::HALF_LN_2PI;

/// The gradient of one layer of a [`MadeSpec`](super::MadeSpec), in the file's unit order
/// (the same shapes as [`LayerSpec`](super::LayerSpec)).
#[derive(Clone, Debug, PartialEq)]
pub enum LayerGrad {
    /// Of a `Dense` layer.
    Dense {
        /// [n_out][n_in], zero outside the mask.
        weight: Vec<f64>,
        /// [n_out][n_context] when the layer takes the context.
        context_weight: Option<Vec<f64>>,
        /// [n_out].
        bias: Vec<f64>,
    },
    /// Of an `Affine` layer (nflows' batch norm folded into a per-unit scale and shift).
    Affine {
        /// [units].
        scale: Vec<f64>,
        /// [units].
        shift: Vec<f64>,
    },
}

/// The gradient of a scalar with respect to every parameter of a [`Made`], in the file's
/// layout: for the plain layout `layers[i]` is `hidden.{i}`, and the heads are
/// `output.{logits,means,log_scales}.{weight,bias}` ([D * K][H_last] and [D * K], row d K + k).
#[derive(Clone, Debug, PartialEq)]
pub struct MadeGrad {
    /// One per layer, in evaluation order.
    pub layers: Vec<LayerGrad>,
    /// (weight, bias) of the logit head.
    pub logits: (Vec<f64>, Vec<f64>),
    /// (weight, bias) of the mean head.
    pub means: (Vec<f64>, Vec<f64>),
    /// (weight, bias) of the raw-scale head (`log_scales` in the plain layout).
    pub scales: (Vec<f64>, Vec<f64>),
}

impl MadeGrad {
    /// Every value in the file's order: per layer (context_weight, weight, bias) or (scale,
    /// shift), then logits, means, scales (weight, bias each).
    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        let layers = self.layers.iter().flat_map(|layer| -> Vec<&[f64]> {
            match layer {
                LayerGrad::Dense { weight, context_weight, bias } => {
                    let mut parts: Vec<&[f64]> = Vec::new();
                    if let Some(cw) = context_weight {
                        parts.push(cw);
                    }
                    parts.push(weight);
                    parts.push(bias);
                    parts
                }
                LayerGrad::Affine { scale, shift } => vec![scale, shift],
            }
        });
        let heads: [&[f64]; 6] =
            [&self.logits.0, &self.logits.1, &self.means.0, &self.means.1, &self.scales.0, &self.scales.1];
        layers.chain(heads).flat_map(|part| part.iter().copied())
    }
}

/// Per-thread working memory of the gradient kernels (f64, tiles of [`GT`] rows, arrays
/// [unit][lane]), with the
/// parameter-gradient accumulators in the compiled (degree-sorted) layout.
#[derive(Clone, Debug)]
pub struct MadeGradWorkspace {
    /// Standardised context, internal order.
    ctx: Vec<f64>,
    /// Per buffer, the units' values (buffer 0: standardised data, internal order).
    bufs: Vec<Vec<f64>>,
    /// Per stage, the pre-activations.
    pre: Vec<Vec<f64>>,
    /// Head outputs [D * 3K] (internal rows), then their gradients.
    heads: Vec<f64>,
    g_heads: Vec<f64>,
    /// Gradients of the buffers and of the standardised context.
    g_bufs: Vec<Vec<f64>>,
    g_ctx: Vec<f64>,
    /// The input of one dense stage ([context; units]) and its gradient.
    src: Vec<f64>,
    g_src: Vec<f64>,
    /// Per stage, per unit: the prefix of inputs it sees (dense) or 0 (affine).
    prefix: Vec<Vec<usize>>,
    head_prefix: Vec<usize>,
    /// Accumulated parameter gradients: per stage (weight or scale, bias or shift), heads.
    acc: Vec<(Vec<f64>, Vec<f64>)>,
    acc_heads: (Vec<f64>, Vec<f64>),
    /// Mixture scratch: a_k (then e^(a_k - max)), ln sigma_k, d ln sigma / dr, 1 / sigma_k,
    /// e^(l_k - max).
    mix: Vec<f64>,
    /// log p per lane.
    total: [f64; GT],
}

/// Rows per tile of the gradient kernels (lanes of f64: two AVX-512 or four AVX2 registers).
pub const GT: usize = 8;

/// bias + sum_j w_j v[j][lane] for every lane, `v` [j][GT] (each weight loaded once per tile).
#[inline(always)]
fn matvec_lanes(bias: f64, w: &[f32], v: &[f64]) -> [f64; GT] {
    let mut acc = [bias; GT];
    for (&wj, vj) in w.iter().zip(v.chunks_exact(GT)) {
        let wj = f64::from(wj);
        for l in 0..GT {
            acc[l] += wj * vj[l];
        }
    }
    acc
}

/// [`matvec_lanes`] of `N` rows of one length, sharing the loads of `v` (each row's sum in
/// the same order as alone).
#[inline(always)]
fn matvec_rows<const N: usize>(bias: [f64; N], w: [&[f32]; N], v: &[f64]) -> [[f64; GT]; N] {
    let p = w[0].len();
    let w: [&[f32]; N] = core::array::from_fn(|i| &w[i][..p]);
    let mut acc: [[f64; GT]; N] = core::array::from_fn(|i| [bias[i]; GT]);
    for (j, vj) in v.chunks_exact(GT).take(p).enumerate() {
        for i in 0..N {
            let wj = f64::from(w[i][j]);
            for l in 0..GT {
                acc[i][l] += wj * vj[l];
            }
        }
    }
    acc
}

/// g_in[j][lane] += w_j g[lane] over w's length.
#[inline(always)]
fn backprop_lanes(w: &[f32], g: &[f64; GT], g_in: &mut [f64]) {
    for (&wj, gj) in w.iter().zip(g_in.chunks_exact_mut(GT)) {
        let wj = f64::from(wj);
        for l in 0..GT {
            gj[l] += wj * g[l];
        }
    }
}

/// [`backprop_lanes`] of `N` rows of one length, fused: g_in[j] is loaded and stored once
/// (the same operations in the same order as `N` single rows).
#[inline(always)]
fn backprop_rows<const N: usize>(w: [&[f32]; N], g: &[[f64; GT]; N], g_in: &mut [f64]) {
    let p = w[0].len();
    let w: [&[f32]; N] = core::array::from_fn(|i| &w[i][..p]);
    for (j, gj) in g_in.chunks_exact_mut(GT).take(p).enumerate() {
        let ws: [f64; N] = core::array::from_fn(|i| f64::from(w[i][j]));
        for l in 0..GT {
            let mut v = gj[l];
            for i in 0..N {
                v += ws[i] * g[i][l];
            }
            gj[l] = v;
        }
    }
}

/// Rows `r..r + N` (each `p` weights of a [rows][stride] matrix `w`, gradients `g` [rows][GT])
/// back-propagated into `g_in` by [`backprop_rows`].
#[inline(always)]
fn fused_rows<const N: usize>(w: &[f32], g: &[f64], r: usize, stride: usize, p: usize, g_in: &mut [f64]) {
    let rows: [&[f32]; N] = core::array::from_fn(|i| &w[(r + i) * stride..(r + i) * stride + p]);
    let grads: [[f64; GT]; N] =
        core::array::from_fn(|i| g[(r + i) * GT..(r + i + 1) * GT].try_into().unwrap_or([0.0; GT]));
    backprop_rows(rows, &grads, g_in);
}

/// acc[j] += weight sum_lane g[lane] v[j][lane] over acc's length; returns sum_lane g[lane].
#[inline(always)]
fn accumulate_lanes(g: &[f64; GT], v: &[f64], acc: &mut [f64], weight: f64) -> f64 {
    for (aj, vj) in acc.iter_mut().zip(v.chunks_exact(GT)) {
        let mut sum = 0.0;
        for l in 0..GT {
            sum += g[l] * vj[l];
        }
        *aj += weight * sum;
    }
    g.iter().sum()
}

#[inline]
fn activate(activation: Activation, p: f64) -> f64 {
    match activation {
        Activation::Sigmoid => 1.0 / (1.0 + exp(-p)),
        Activation::Tanh => {
            if p.abs() > 20.0 {
                p.signum()
            } else {
                let e = exp_m1(2.0 * p);
                e / (e + 2.0)
            }
        }
        Activation::Relu => p.max(0.0),
        Activation::LeakyRelu => {
            if p > 0.0 {
                p
            } else {
                Activation::LEAKY_RELU_SLOPE * p
            }
        }
        Activation::Elu => {
            if p > 0.0 {
                p
            } else {
                Activation::ELU_ALPHA * exp_m1(p)
            }
        }
        Activation::Identity => p,
    }
}

#[inline]
fn derivative(activation: Activation, p: f64) -> f64 {
    match activation {
        Activation::Sigmoid => {
            let s = 1.0 / (1.0 + exp(-p));
            s * (1.0 - s)
        }
        Activation::Tanh => {
            let t = activate(Activation::Tanh, p);
            1.0 - t * t
        }
        Activation::Relu => {
            if p > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::LeakyRelu => {
            if p > 0.0 {
                1.0
            } else {
                Activation::LEAKY_RELU_SLOPE
            }
        }
        Activation::Elu => {
            if p > 0.0 {
                1.0
            } else {
                Activation::ELU_ALPHA * exp(p)
            }
        }
        Activation::Identity => 1.0,
    }
}

/// (ln sigma, d ln sigma / d r) of a raw scale r.
#[inline]
fn log_scale_grad(scale: ScaleHead, r: f64) -> (f64, f64) {
    match scale {
        ScaleHead::Exp => (r, 1.0),
        ScaleHead::SoftplusPlus { epsilon } => {
            let (softplus, slope) = if r > 20.0 { (r, 1.0) } else { (ln_1p(exp(r)), 1.0 / (1.0 + exp(-r))) };
            (ln(softplus + epsilon), slope / (softplus + epsilon))
        }
    }
}

impl Made {
    /// A workspace for the gradient kernels.
    pub fn grad_workspace(&self) -> MadeGradWorkspace {
        let units = |b: usize| self.buffer_degrees[b].len();
        let n_stages = self.stages.len();
        let mut prefix = Vec::with_capacity(n_stages);
        let mut acc = Vec::with_capacity(n_stages);
        let mut max_src = 0;
        for stage in &self.stages {
            match stage {
                Stage::Dense { layer, .. } => {
                    prefix.push((0..layer.n_out()).map(|o| layer.prefix(o)).collect());
                    acc.push((vec![0.0; layer.weight().len()], vec![0.0; layer.n_out()]));
                    max_src = max_src.max(layer.n_in());
                }
                Stage::Affine { scale, .. } => {
                    prefix.push(Vec::new());
                    acc.push((vec![0.0; scale.len()], vec![0.0; scale.len()]));
                }
            }
        }
        let n_heads = self.heads.n_out();
        MadeGradWorkspace {
            ctx: vec![0.0; self.n_context * GT],
            bufs: (0..=n_stages).map(|b| vec![0.0; units(b) * GT]).collect(),
            pre: (0..n_stages).map(|s| vec![0.0; units(s + 1) * GT]).collect(),
            heads: vec![0.0; n_heads * GT],
            g_heads: vec![0.0; n_heads * GT],
            g_bufs: (0..=n_stages).map(|b| vec![0.0; units(b) * GT]).collect(),
            g_ctx: vec![0.0; self.n_context * GT],
            src: vec![0.0; max_src * GT],
            g_src: vec![0.0; max_src * GT],
            prefix,
            head_prefix: (0..n_heads).map(|r| self.heads.prefix(r)).collect(),
            acc,
            acc_heads: (vec![0.0; self.heads.weight().len()], vec![0.0; n_heads]),
            mix: vec![0.0; 5 * self.n_components * GT],
            total: [0.0; GT],
        }
    }

    /// Fills `src` with the input of dense stage `s` ([column][lane]): the context (when it
    /// takes it), then the input buffer's units. Returns the number of context columns.
    fn gather_source(&self, s: usize, work: &mut MadeGradWorkspace) -> usize {
        let Stage::Dense { input, uses_context, layer, .. } = &self.stages[s] else {
            return 0;
        };
        let c = if *uses_context { self.n_context } else { 0 };
        work.src[..c * GT].copy_from_slice(&work.ctx[..c * GT]);
        work.src[c * GT..layer.n_in() * GT].copy_from_slice(&work.bufs[*input]);
        c
    }

    /// Forward and backward pass of rows `first..first + lanes` (at most [`GT`]) of `context`
    /// [n][C] and `x` [n][D] (user's units), feature-major in the workspace with [`GT`]
    /// lanes. Leaves log p(x | context) per lane (Jacobian included, f64) in `work.total`,
    /// d log p / d xs in `work.g_bufs[0]` and d log p / d cs in `work.g_ctx` ([unit][lane],
    /// standardised, internal order) and, when `param_weight` is not 0, adds `param_weight`
    /// times the sum over the lanes of d log p / d theta to the parameter accumulators. Every
    /// lane runs the same operations whatever the other lanes hold.
    fn grad_tile(
        &self,
        work: &mut MadeGradWorkspace,
        context: &[f32],
        x: &[f32],
        first: usize,
        lanes: usize,
        param_weight: f64,
    ) {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if crate::math::simd::VectorIsa::detect() >= crate::math::simd::VectorIsa::Avx2 {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { self.grad_tile_avx2(work, context, x, first, lanes, param_weight) };
        }
        self.grad_tile_body(work, context, x, first, lanes, param_weight)
    }

    /// [`grad_tile_body`](Self::grad_tile_body) compiled for AVX2 and FMA: the same IEEE
    /// operations in wider vectors (Rust never contracts into FMAs; the explicit fused
    /// multiply-adds of `exp_branchless` round once on either path), so the same results.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,fma")]
    fn grad_tile_avx2(
        &self,
        work: &mut MadeGradWorkspace,
        context: &[f32],
        x: &[f32],
        first: usize,
        lanes: usize,
        param_weight: f64,
    ) {
        self.grad_tile_body(work, context, x, first, lanes, param_weight)
    }

    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // lane l of several arrays at once
    fn grad_tile_body(
        &self,
        work: &mut MadeGradWorkspace,
        context: &[f32],
        x: &[f32],
        first: usize,
        lanes: usize,
        param_weight: f64,
    ) {
        let (c, d, k) = (self.n_context, self.n_dims, self.n_components);
        work.ctx.fill(0.0);
        work.bufs[0].fill(0.0);
        for l in 0..lanes {
            let row = first + l;
            for (j, &u) in self.context_order.iter().enumerate() {
                work.ctx[j * GT + l] =
                    (f64::from(context[row * c + u]) - self.context_mean[j]) / self.context_std[j];
            }
            for (t, &u) in self.data_order.iter().enumerate() {
                work.bufs[0][t * GT + l] = (f64::from(x[row * d + u]) - self.x_mean[t]) / self.x_std[t];
            }
        }
        // Forward.
        for s in 0..self.stages.len() {
            match &self.stages[s] {
                Stage::Dense { layer, activation, residual, .. } => {
                    self.gather_source(s, work);
                    let n_in = layer.n_in();
                    let (w, b) = (layer.weight(), layer.bias());
                    for o in 0..layer.n_out() {
                        let row = &w[o * n_in..o * n_in + work.prefix[s][o]];
                        let a = matvec_lanes(f64::from(b[o]), row, &work.src);
                        for l in 0..GT {
                            work.pre[s][o * GT + l] = a[l];
                            let mut y = activate(*activation, a[l]);
                            if let Some(r) = residual {
                                y += work.bufs[*r][o * GT + l];
                            }
                            work.bufs[s + 1][o * GT + l] = y;
                        }
                    }
                }
                Stage::Affine { input, scale, shift, activation } => {
                    for u in 0..scale.len() {
                        for l in 0..GT {
                            let i = u * GT + l;
                            let a = f64::from(scale[u]) * work.bufs[*input][i] + f64::from(shift[u]);
                            work.pre[s][i] = a;
                            work.bufs[s + 1][i] = activate(*activation, a);
                        }
                    }
                }
            }
        }
        let last = self.stages.len();
        let n_hidden = self.heads.n_in();
        {
            let (w, b) = (self.heads.weight(), self.heads.bias());
            let n_out = self.heads.n_out();
            let mut r = 0;
            while r < n_out {
                let p = work.head_prefix[r];
                if r + 4 <= n_out && work.head_prefix[r + 3] == p {
                    // Four rows of one prefix share the loads of the input.
                    let rows: [&[f32]; 4] =
                        core::array::from_fn(|i| &w[(r + i) * n_hidden..(r + i) * n_hidden + p]);
                    let bias: [f64; 4] = core::array::from_fn(|i| f64::from(b[r + i]));
                    let a = matvec_rows(bias, rows, &work.bufs[last]);
                    for (i, a) in a.iter().enumerate() {
                        work.heads[(r + i) * GT..(r + i + 1) * GT].copy_from_slice(a);
                    }
                    r += 4;
                } else {
                    let a =
                        matvec_lanes(f64::from(b[r]), &w[r * n_hidden..r * n_hidden + p], &work.bufs[last]);
                    work.heads[r * GT..(r + 1) * GT].copy_from_slice(&a);
                    r += 1;
                }
            }
        }
        // Mixtures and their gradients (lanes beyond `lanes` get zero gradients).
        for g in &mut work.g_bufs {
            g.fill(0.0);
        }
        work.g_ctx.fill(0.0);
        work.g_heads.fill(0.0);
        work.total = [self.log_jacobian; GT];
        let mut active = [0.0f64; GT];
        active[..lanes].fill(1.0);
        for t in 0..d {
            let base = t * 3 * k;
            let xs: [f64; GT] = work.bufs[0][t * GT..(t + 1) * GT].try_into().unwrap_or([0.0; GT]);
            // Scratch [5K][GT]: e^(a - max a) (first a), ln sigma, d ln sigma / dr, 1 / sigma,
            // e^(l - max l).
            let (ea, rest) = work.mix.split_at_mut(k * GT);
            let (ls, rest) = rest.split_at_mut(k * GT);
            let (dls, rest) = rest.split_at_mut(k * GT);
            let (inv, el) = rest.split_at_mut(k * GT);
            let heads = &work.heads[base * GT..(base + 3 * k) * GT];
            let (mut max_a, mut max_l) = ([f64::NEG_INFINITY; GT], [f64::NEG_INFINITY; GT]);
            for m in 0..k {
                let (logit, mean, raw) =
                    (&heads[m * GT..][..GT], &heads[(k + m) * GT..][..GT], &heads[(2 * k + m) * GT..][..GT]);
                let at = m * GT;
                for l in 0..GT {
                    (ls[at + l], dls[at + l]) = log_scale_grad(self.scale, raw[l]);
                }
                for l in 0..GT {
                    inv[at + l] = exp_branchless(-ls[at + l].clamp(-708.0, 708.0));
                    let z = (xs[l] - mean[l]) * inv[at + l];
                    ea[at + l] = logit[l] - ls[at + l] - HALF_LN_2PI - 0.5 * z * z;
                    max_a[l] = max_a[l].max(ea[at + l]);
                    max_l[l] = max_l[l].max(logit[l]);
                }
            }
            let (mut sum_a, mut sum_l) = ([0.0f64; GT], [0.0f64; GT]);
            for m in 0..k {
                let logit = &heads[m * GT..][..GT];
                let at = m * GT;
                for l in 0..GT {
                    ea[at + l] = exp_branchless(ea[at + l] - max_a[l]);
                    el[at + l] = exp_branchless(logit[l] - max_l[l]);
                    sum_a[l] += ea[at + l];
                    sum_l[l] += el[at + l];
                }
            }
            for l in 0..GT {
                work.total[l] += (max_a[l] + ln(sum_a[l])) - (max_l[l] + ln(sum_l[l]));
            }
            let mut g_xs = [0.0f64; GT];
            let (inv_a, inv_l): ([f64; GT], [f64; GT]) = (
                core::array::from_fn(|l| active[l] / sum_a[l]),
                core::array::from_fn(|l| active[l] / sum_l[l]),
            );
            for m in 0..k {
                let mean = &heads[(k + m) * GT..][..GT];
                let at = m * GT;
                let g = &mut work.g_heads[(base + m) * GT..(base + 3 * k) * GT];
                for l in 0..GT {
                    let w = ea[at + l] * inv_a[l];
                    let pi = el[at + l] * inv_l[l];
                    let z = (xs[l] - mean[l]) * inv[at + l];
                    g[l] = w - pi;
                    g[k * GT + l] = w * z * inv[at + l];
                    g[2 * k * GT + l] = w * (z * z - 1.0) * dls[at + l];
                    g_xs[l] -= w * z * inv[at + l];
                }
            }
            for l in 0..GT {
                work.g_bufs[0][t * GT + l] += g_xs[l];
            }
        }
        // Heads backward.
        {
            let w = self.heads.weight();
            let n_out = self.heads.n_out();
            let mut r = 0;
            while r < n_out {
                let p = work.head_prefix[r];
                // Four rows of one prefix at a time (the prefixes do not decrease): the same
                // operations in the same order as four single rows, a quarter of the traffic.
                let fits = |m: usize| r + m <= n_out && work.head_prefix[r + m - 1] == p;
                let count = if fits(8) {
                    8
                } else if fits(4) {
                    4
                } else {
                    1
                };
                match count {
                    8 => fused_rows::<8>(w, &work.g_heads, r, n_hidden, p, &mut work.g_bufs[last]),
                    4 => fused_rows::<4>(w, &work.g_heads, r, n_hidden, p, &mut work.g_bufs[last]),
                    _ => fused_rows::<1>(w, &work.g_heads, r, n_hidden, p, &mut work.g_bufs[last]),
                }
                if param_weight != 0.0 {
                    for row in r..r + count {
                        let g: &[f64; GT] =
                            work.g_heads[row * GT..(row + 1) * GT].try_into().unwrap_or(&[0.0; GT]);
                        let acc = &mut work.acc_heads.0[row * n_hidden..row * n_hidden + p];
                        work.acc_heads.1[row] +=
                            param_weight * accumulate_lanes(g, &work.bufs[last], acc, param_weight);
                    }
                }
                r += count;
            }
        }
        // Stages backward.
        for s in (0..self.stages.len()).rev() {
            match &self.stages[s] {
                Stage::Dense { layer, input, activation, residual, .. } => {
                    let c = self.gather_source(s, work);
                    let n_in = layer.n_in();
                    let (before, after) = work.g_bufs.split_at_mut(s + 1);
                    let g_out = &mut after[0];
                    if let Some(r) = residual {
                        for (gr, &go) in before[*r].iter_mut().zip(g_out.iter()) {
                            *gr += go;
                        }
                    }
                    work.g_src[..n_in * GT].fill(0.0);
                    let w = layer.weight();
                    for o in 0..layer.n_out() {
                        let mut g = [0.0; GT];
                        for l in 0..GT {
                            g[l] = g_out[o * GT + l] * derivative(*activation, work.pre[s][o * GT + l]);
                        }
                        let p = work.prefix[s][o];
                        let row = &w[o * n_in..o * n_in + p];
                        backprop_lanes(row, &g, &mut work.g_src);
                        if param_weight != 0.0 {
                            let acc = &mut work.acc[s].0[o * n_in..o * n_in + p];
                            work.acc[s].1[o] +=
                                param_weight * accumulate_lanes(&g, &work.src, acc, param_weight);
                        }
                    }
                    for (g, &v) in work.g_ctx.iter_mut().zip(&work.g_src[..c * GT]) {
                        *g += v;
                    }
                    for (g, &v) in before[*input].iter_mut().zip(&work.g_src[c * GT..n_in * GT]) {
                        *g += v;
                    }
                }
                Stage::Affine { input, scale, activation, .. } => {
                    let (before, after) = work.g_bufs.split_at_mut(s + 1);
                    for u in 0..scale.len() {
                        let (mut sum_scale, mut sum_shift) = (0.0, 0.0);
                        for l in 0..GT {
                            let i = u * GT + l;
                            let g = after[0][i] * derivative(*activation, work.pre[s][i]);
                            before[*input][i] += f64::from(scale[u]) * g;
                            sum_scale += g * work.bufs[*input][i];
                            sum_shift += g;
                        }
                        if param_weight != 0.0 {
                            work.acc[s].0[u] += param_weight * sum_scale;
                            work.acc[s].1[u] += param_weight * sum_shift;
                        }
                    }
                }
            }
        }
    }

    /// log p(x | context) of one row (`context` [C], `x` [D], user's units) evaluated in f64
    /// from the stored weights (the network without f32 rounding between layers): the
    /// function whose derivatives the gradient kernels compute. Inputs are not checked.
    pub fn log_prob_f64(&self, work: &mut MadeGradWorkspace, context: &[f32], x: &[f32]) -> f64 {
        self.grad_tile(work, context, x, 0, 1, 0.0);
        work.total[0]
    }

    /// Gradients of log p(x | context) for rows `first..first + n_rows` of a checked batch
    /// (`context` [n][C], `x` [n][D], user's units): `grad_context` [n_rows][C] and `grad_x`
    /// [n_rows][D] (user's order and units) when given, `log_prob` [n_rows] (f64 evaluation,
    /// see [`log_prob_f64`](Self::log_prob_f64)) when given. Returns the first row (of the
    /// whole batch) whose log-density or gradient is not finite, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn log_prob_grad_rows(
        &self,
        work: &mut MadeGradWorkspace,
        context: &[f32],
        x: &[f32],
        first: usize,
        n_rows: usize,
        mut log_prob: Option<&mut [f64]>,
        mut grad_context: Option<&mut [f32]>,
        mut grad_x: Option<&mut [f32]>,
    ) -> Option<usize> {
        let (c, d) = (self.n_context, self.n_dims);
        let mut bad = None;
        for tile in (0..n_rows).step_by(GT) {
            let lanes = GT.min(n_rows - tile);
            self.grad_tile(work, context, x, first + tile, lanes, 0.0);
            for l in 0..lanes {
                let i = tile + l;
                let lp = work.total[l];
                let mut finite = lp.is_finite();
                if let Some(out) = log_prob.as_deref_mut() {
                    out[i] = lp;
                }
                if let Some(out) = grad_context.as_deref_mut() {
                    for (j, &u) in self.context_order.iter().enumerate() {
                        let g = work.g_ctx[j * GT + l] / self.context_std[j];
                        finite &= g.is_finite() && g.abs() <= f64::from(f32::MAX);
                        out[i * c + u] = g as f32;
                    }
                }
                if let Some(out) = grad_x.as_deref_mut() {
                    for (t, &u) in self.data_order.iter().enumerate() {
                        let g = work.g_bufs[0][t * GT + l] / self.x_std[t];
                        finite &= g.is_finite() && g.abs() <= f64::from(f32::MAX);
                        out[i * d + u] = g as f32;
                    }
                }
                if !finite {
                    bad.get_or_insert(first + i);
                }
            }
        }
        bad
    }

    /// Gradients of log p(x | context) with respect to the context and to x, in the user's
    /// units, for a batch (`context` [n][C], empty when C = 0; `x` [n][D]; outputs [n][C] and
    /// [n][D], user's order, either may be None), on one thread. The std crate's
    /// `ParallelMade::log_prob_grad_parallel` splits a batch across threads.
    ///
    /// Errors: [`Error::InvalidArgument`] for n = 0, wrong lengths or non-finite inputs
    /// (nothing written); [`Error::OutOfDomain`] when a log-density or a gradient is not finite
    /// in f64 (the outputs are then filled with NaN).
    pub fn log_prob_grad(
        &self,
        context: &[f32],
        x: &[f32],
        mut grad_context: Option<&mut [f32]>,
        mut grad_x: Option<&mut [f32]>,
    ) -> Result<()> {
        let n = self.rows_of("x", x)?;
        self.check_batch(context, Some(("x", x, self.n_dims)), n)?;
        for (name, out, width) in [
            ("grad_context", grad_context.as_deref(), self.n_context),
            ("grad_x", grad_x.as_deref(), self.n_dims),
        ] {
            if let Some(out) = out
                && out.len() != n * width
            {
                return Err(Error::InvalidArgument(alloc::format!(
                    "{name} has {} values, expected {n} x {width}",
                    out.len()
                )));
            }
        }
        let mut work = self.grad_workspace();
        let bad = self.log_prob_grad_rows(
            &mut work,
            context,
            x,
            0,
            n,
            None,
            grad_context.as_deref_mut(),
            grad_x.as_deref_mut(),
        );
        if let Some(row) = bad {
            for out in [grad_context, grad_x].into_iter().flatten() {
                out.fill(f32::NAN);
            }
            return Err(Error::OutOfDomain(alloc::format!(
                "row {row}: the log-density or its gradient is not finite for this input"
            )));
        }
        Ok(())
    }

    /// Adds `weight` times the parameter gradient of log p of rows `first..first + n_rows` of
    /// a checked batch to the workspace's accumulators (see [`take_grad`](Self::take_grad));
    /// returns the sum of their log-densities (f64 evaluation).
    pub fn accumulate_grad_rows(
        &self,
        work: &mut MadeGradWorkspace,
        context: &[f32],
        x: &[f32],
        first: usize,
        n_rows: usize,
        weight: f64,
    ) -> f64 {
        let mut sum = 0.0;
        for tile in (0..n_rows).step_by(GT) {
            let lanes = GT.min(n_rows - tile);
            self.grad_tile(work, context, x, first + tile, lanes, weight);
            for &lp in &work.total[..lanes] {
                sum += lp;
            }
        }
        sum
    }

    /// The accumulated parameter gradient in the file's layout; the accumulators are reset.
    pub fn take_grad(&self, work: &mut MadeGradWorkspace) -> MadeGrad {
        let n_context = self.n_context;
        let mut layers = Vec::with_capacity(self.stages.len());
        for (s, stage) in self.stages.iter().enumerate() {
            let (acc_w, acc_b) = &mut work.acc[s];
            let out_order = &self.orders[s + 1];
            match stage {
                Stage::Dense { layer, input, uses_context, .. } => {
                    let in_order = &self.orders[*input];
                    let (n_in, n_cols) = (in_order.len(), layer.n_in());
                    let c = if *uses_context { n_context } else { 0 };
                    let n_out = out_order.len();
                    let mut weight = vec![0.0; n_out * n_in];
                    let mut context_weight = uses_context.then(|| vec![0.0; n_out * n_context]);
                    let mut bias = vec![0.0; n_out];
                    for (o, &fo) in out_order.iter().enumerate() {
                        let row = &acc_w[o * n_cols..(o + 1) * n_cols];
                        if let Some(cw) = &mut context_weight {
                            for (j, &fj) in self.context_order.iter().enumerate() {
                                cw[fo * n_context + fj] = row[j];
                            }
                        }
                        for (i, &fi) in in_order.iter().enumerate() {
                            weight[fo * n_in + fi] = row[c + i];
                        }
                        bias[fo] = acc_b[o];
                    }
                    layers.push(LayerGrad::Dense { weight, context_weight, bias });
                }
                Stage::Affine { .. } => {
                    let mut scale = vec![0.0; out_order.len()];
                    let mut shift = vec![0.0; out_order.len()];
                    for (u, &fu) in out_order.iter().enumerate() {
                        scale[fu] = acc_w[u];
                        shift[fu] = acc_b[u];
                    }
                    layers.push(LayerGrad::Affine { scale, shift });
                }
            }
            acc_w.fill(0.0);
            acc_b.fill(0.0);
        }
        let k = self.n_components;
        let hidden_order = &self.orders[self.stages.len()];
        let n_hidden = hidden_order.len();
        let mut heads: [(Vec<f64>, Vec<f64>); 3] =
            core::array::from_fn(|_| (vec![0.0; self.n_dims * k * n_hidden], vec![0.0; self.n_dims * k]));
        for (t, &fd) in self.data_order.iter().enumerate() {
            for (h, (weight, bias)) in heads.iter_mut().enumerate() {
                for c in 0..k {
                    let r = t * 3 * k + h * k + c;
                    let fr = fd * k + c;
                    for (j, &fj) in hidden_order.iter().enumerate() {
                        weight[fr * n_hidden + fj] = work.acc_heads.0[r * n_hidden + j];
                    }
                    bias[fr] = work.acc_heads.1[r];
                }
            }
        }
        work.acc_heads.0.fill(0.0);
        work.acc_heads.1.fill(0.0);
        let [logits, means, scales] = heads;
        MadeGrad { layers, logits, means, scales }
    }

    /// The mean negative log-likelihood of a batch, -(1/n) sum_i log p(x_i | c_i) (user's
    /// units, Jacobian included, f64 evaluation), and its gradient with respect to every
    /// parameter, in the file's layout. Masked weights get exactly 0. One thread.
    ///
    /// Errors: [`Error::InvalidArgument`] for n = 0, wrong lengths or non-finite inputs;
    /// [`Error::OutOfDomain`] when the loss or its gradient is not finite.
    pub fn nll_grad(&self, context: &[f32], x: &[f32]) -> Result<(f64, MadeGrad)> {
        let n = self.rows_of("x", x)?;
        self.check_batch(context, Some(("x", x, self.n_dims)), n)?;
        let mut work = self.grad_workspace();
        let weight = -1.0 / n as f64;
        let sum = self.accumulate_grad_rows(&mut work, context, x, 0, n, weight);
        let grad = self.take_grad(&mut work);
        let loss = -sum / n as f64;
        if !loss.is_finite() || grad.values().any(|g| !g.is_finite()) {
            return Err(Error::OutOfDomain("the loss or its gradient is not finite for this batch".into()));
        }
        Ok((loss, grad))
    }
}
