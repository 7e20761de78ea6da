//! A dense binary classifier (ReLU hidden layers, sigmoid output, binary cross-entropy) and
//! the classifier two-sample test of SECRET (seed 001, section 3.2.2): "a dense classifier
//! with one hidden layer of 32 ReLU units and a sigmoid output, trained with binary
//! cross-entropy on a balanced set of simulated and emulated spectra (1e5 points, 100
//! epochs); its accuracy on held-out data measures how distinguishable they are (0.5: not at
//! all)" (Lopez-Paz & Oquab 2017, "Revisiting classifier two-sample tests", ICLR).
//!
//! # The model
//!
//! Inputs are standardised per feature with the training set's mean and standard deviation
//! (population form, 1/n): `u = (x - mean) * scale`, `scale = 1 / std`, in f32. Then, for the
//! hidden layers l = 1..L and the output,
//!
//! ```text
//! h_l = relu(b_l + W_l^T h_{l-1}),  h_0 = u;   z = b_out + w_out . h_L;   p = sigmoid(z)
//! ```
//!
//! `p` is the probability of class 1. The loss is the mean binary cross-entropy in the
//! numerically stable form with logits (no log of a rounded probability):
//!
//! ```text
//! bce(z, t) = -t ln p - (1 - t) ln(1 - p) = softplus(z) - t z,
//! softplus(z) = max(z, 0) + ln(1 + e^-|z|),      d bce / dz = sigmoid(z) - t
//! ```
//!
//! # Parameters
//!
//! One flat f32 vector, layer by layer (hidden layers first, the output layer last); each
//! layer is its weights `W[i][j]` (input i, unit j: input-major, the transpose of PyTorch's
//! `nn.Linear.weight`) followed by its biases `b[j]`. Initialisation is PyTorch's default for
//! `nn.Linear` (kaiming_uniform with a = sqrt 5): weights and biases uniform in
//! ±1/sqrt(fan_in), drawn from the Philox stream (seed, [`STREAM_INIT`]).
//!
//! # Training
//!
//! Adam ([`crate::nn::adam`], PyTorch's algorithm, default learning rate 1e-3) on the mean BCE
//! of each minibatch. Each epoch visits the training rows in a fresh random order drawn from
//! the Philox stream (seed, [`STREAM_EPOCH`] + epoch) (Fisher-Yates) and cuts it into
//! minibatches of `batch_size` rows, the last one possibly shorter (PyTorch's DataLoader with
//! `shuffle=True`). With a validation set, the parameters with the lowest validation BCE are
//! kept (and training stops after `patience` epochs without improvement if `patience > 0`).
//! Parameters and arithmetic are f32 (no fused multiply-adds, sums in a fixed order); the loss
//! is accumulated in f64. The same seed and data give the same bits on any x86-64 CPU: the
//! wider vector build (AVX2, chosen at run time) runs the same IEEE operations per lane in the
//! same order.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::math::{exp, ln_1p, sqrt};
use crate::nn::adam::{AdamConfig, LrSchedule};
use crate::rng::Stream;

/// At most this many hidden layers.
pub const MAX_HIDDEN_LAYERS: usize = 8;
/// The Philox stream of the initial weights.
pub const STREAM_INIT: u64 = 0;
/// The Philox stream that picks the balanced subset of the first sample (two-sample test).
pub const STREAM_SUBSET_A: u64 = 1;
/// The Philox stream that picks the balanced subset of the second sample (two-sample test).
pub const STREAM_SUBSET_B: u64 = 2;
/// The Philox stream of epoch e's minibatch order is `STREAM_EPOCH + e`.
pub const STREAM_EPOCH: u64 = 1 << 32;
/// Rows per block when evaluating (no gradients).
const EVAL_BLOCK: usize = 256;

/// Training settings of [`train_classifier`]. The defaults are the SECRET paper's classifier
/// (section 3.2.2): one hidden layer of 32 ReLU units, 100 epochs, Adam at 1e-3.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierOptions {
    /// Units of each hidden layer (1 to [`MAX_HIDDEN_LAYERS`] layers, each >= 1 unit).
    pub hidden_units: Vec<usize>,
    /// Rows per minibatch (default 50: the paper does not state the classifier's minibatch;
    /// 50 is the one it uses for the emulator, and at 32 hidden units the Adam step costs
    /// about as much as 1 row, so the smaller batch (more steps per epoch) is nearly free).
    pub batch_size: usize,
    /// Adam's learning rate (default 1e-3), > 0.
    pub learning_rate: f64,
    /// Epochs (default 100, the paper's), >= 1.
    pub max_epochs: usize,
    /// Stop after this many epochs without a lower validation BCE; 0 (default) = never stop
    /// early. Needs a validation set.
    pub patience: usize,
    /// The seed of every random choice (initial weights, minibatch order, two-sample subsets).
    pub seed: u64,
    /// Adam's betas, epsilon and weight decay (PyTorch's defaults).
    pub adam: AdamConfig,
    /// The learning rate per epoch (default constant).
    pub schedule: LrSchedule,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        Self {
            hidden_units: vec![32],
            batch_size: 50,
            learning_rate: 1e-3,
            max_epochs: 100,
            patience: 0,
            seed: 0,
            adam: AdamConfig::default(),
            schedule: LrSchedule::Constant,
        }
    }
}

impl ClassifierOptions {
    /// Checks every setting.
    ///
    /// Errors: [`Error::InvalidArgument`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        check_hidden(&self.hidden_units)?;
        if self.batch_size == 0 {
            return Err(invalid("batch_size must be >= 1, got 0"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::InvalidArgument(alloc::format!(
                "learning_rate must be finite and > 0, got {}",
                self.learning_rate
            )));
        }
        if self.max_epochs == 0 {
            return Err(invalid("max_epochs must be >= 1, got 0"));
        }
        self.adam.validate()?;
        self.schedule.validate()
    }
}

fn invalid(message: &str) -> Error {
    Error::InvalidArgument(message.into())
}

fn check_hidden(hidden_units: &[usize]) -> Result<()> {
    if hidden_units.is_empty() || hidden_units.len() > MAX_HIDDEN_LAYERS {
        return Err(Error::InvalidArgument(alloc::format!(
            "the classifier needs 1 to {MAX_HIDDEN_LAYERS} hidden layers, got {}",
            hidden_units.len()
        )));
    }
    if let Some(l) = hidden_units.iter().position(|&u| u == 0) {
        return Err(Error::InvalidArgument(alloc::format!("hidden layer {l} has 0 units")));
    }
    if hidden_units.iter().any(|&u| u > 1 << 20) {
        return Err(invalid("a hidden layer has more than 2^20 units"));
    }
    Ok(())
}

/// Checks that `x` holds whole rows of `n_features` finite values and returns the row count.
fn rows_of(x: &[f32], n_features: usize, name: &str) -> Result<usize> {
    if n_features == 0 {
        return Err(invalid("n_features must be >= 1, got 0"));
    }
    if !x.len().is_multiple_of(n_features) {
        return Err(Error::InvalidArgument(alloc::format!(
            "{name} has {} values, not a multiple of n_features = {n_features}",
            x.len()
        )));
    }
    if let Some(k) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument(alloc::format!(
            "{name} row {} column {} is {} (must be finite)",
            k / n_features,
            k % n_features,
            x[k]
        )));
    }
    Ok(x.len() / n_features)
}

fn check_labels(labels: &[u8], n: usize, name: &str) -> Result<()> {
    if labels.len() != n {
        return Err(Error::InvalidArgument(alloc::format!(
            "{name} has {} labels for {n} rows",
            labels.len()
        )));
    }
    if let Some(k) = labels.iter().position(|&t| t > 1) {
        return Err(Error::InvalidArgument(alloc::format!(
            "{name} label {k} is {} (must be 0 or 1)",
            labels[k]
        )));
    }
    Ok(())
}

/// The per-feature mean and 1/std (population form) of `x` ([n][n_features]), in f64 then
/// rounded to f32.
///
/// Errors: [`Error::InvalidArgument`] for a feature with zero variance (a constant column
/// cannot be standardised and carries no information) or no rows.
pub fn standardisation(x: &[f32], n_features: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let n = rows_of(x, n_features, "x")?;
    if n == 0 {
        return Err(invalid("standardisation needs at least one row"));
    }
    let mut mean = vec![0.0f64; n_features];
    for row in x.chunks_exact(n_features) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0.0f64; n_features];
    for row in x.chunks_exact(n_features) {
        for ((s, &m), &v) in var.iter_mut().zip(&mean).zip(row) {
            let d = f64::from(v) - m;
            *s += d * d;
        }
    }
    let mut scale = Vec::with_capacity(n_features);
    for (k, s) in var.iter().enumerate() {
        let std = sqrt(s / n as f64);
        let inv = 1.0 / std;
        if !(std > 0.0 && (inv as f32).is_finite()) {
            return Err(Error::InvalidArgument(alloc::format!(
                "feature {k} has zero variance in the training data (cannot standardise)"
            )));
        }
        scale.push(inv as f32);
    }
    Ok((mean.iter().map(|&m| m as f32).collect(), scale))
}

/// A trained (or initialised) classifier: immutable, shareable across threads.
#[derive(Clone, Debug, PartialEq)]
pub struct Classifier {
    n_features: usize,
    hidden_units: Vec<usize>,
    /// Per layer (hidden layers, then the output): (weights offset, biases offset, n_in, n_out).
    layers: Vec<LayerSlot>,
    params: Vec<f32>,
    mean: Vec<f32>,
    scale: Vec<f32>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct LayerSlot {
    w: usize,
    b: usize,
    n_in: usize,
    n_out: usize,
}

fn layout(n_features: usize, hidden_units: &[usize]) -> (Vec<LayerSlot>, usize) {
    let mut layers = Vec::with_capacity(hidden_units.len() + 1);
    let mut offset = 0;
    let mut n_in = n_features;
    for &n_out in hidden_units.iter().chain(core::iter::once(&1)) {
        layers.push(LayerSlot { w: offset, b: offset + n_in * n_out, n_in, n_out });
        offset += (n_in + 1) * n_out;
        n_in = n_out;
    }
    (layers, offset)
}

/// The mean BCE and the fraction classified right (p > 1/2 taken as class 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean binary cross-entropy per row [nats].
    pub bce: f64,
    /// Fraction of rows whose predicted class (z > 0) is their label.
    pub accuracy: f64,
}

impl Classifier {
    /// A classifier with PyTorch's default initialisation (weights and biases uniform in
    /// ±1/sqrt(fan_in), from the Philox stream (seed, [`STREAM_INIT`]), layer by layer, each
    /// layer's weights in the order of [`Classifier::parameters`] and then its biases), and
    /// the standardisation `mean`, `scale` (= 1/std) of the inputs.
    ///
    /// Errors: [`Error::InvalidArgument`] (no features, 0 or more than 8 hidden layers, a layer
    /// of 0 units, `mean`/`scale` of the wrong length or not finite, a scale <= 0).
    pub fn new(
        n_features: usize,
        hidden_units: &[usize],
        mean: Vec<f32>,
        scale: Vec<f32>,
        seed: u64,
    ) -> Result<Self> {
        let mut classifier = Self::from_parameters(n_features, hidden_units, Vec::new(), mean, scale)?;
        let mut stream = Stream::new(seed, STREAM_INIT);
        for slot in &classifier.layers {
            let bound = 1.0 / sqrt(slot.n_in as f64);
            for p in &mut classifier.params[slot.w..slot.b + slot.n_out] {
                *p = (bound * (2.0 * stream.uniform() - 1.0)) as f32;
            }
        }
        Ok(classifier)
    }

    /// A classifier with the given parameters (the layout of [`Classifier::parameters`]; an
    /// empty vector gives all zeros) and standardisation.
    ///
    /// Errors: as [`Classifier::new`], and a parameter vector of the wrong length or with a
    /// value that is not finite.
    pub fn from_parameters(
        n_features: usize,
        hidden_units: &[usize],
        params: Vec<f32>,
        mean: Vec<f32>,
        scale: Vec<f32>,
    ) -> Result<Self> {
        if n_features == 0 {
            return Err(invalid("n_features must be >= 1, got 0"));
        }
        check_hidden(hidden_units)?;
        if mean.len() != n_features || scale.len() != n_features {
            return Err(Error::InvalidArgument(alloc::format!(
                "mean and scale need {n_features} values each, got {} and {}",
                mean.len(),
                scale.len()
            )));
        }
        if mean.iter().any(|m| !m.is_finite()) || scale.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(invalid("mean must be finite and scale finite and > 0"));
        }
        let (layers, n_params) = layout(n_features, hidden_units);
        let params = if params.is_empty() { vec![0.0; n_params] } else { params };
        if params.len() != n_params {
            return Err(Error::InvalidArgument(alloc::format!(
                "this architecture has {n_params} parameters, got {}",
                params.len()
            )));
        }
        if let Some(k) = params.iter().position(|p| !p.is_finite()) {
            return Err(Error::InvalidArgument(alloc::format!("parameter {k} is not finite")));
        }
        Ok(Self { n_features, hidden_units: hidden_units.to_vec(), layers, params, mean, scale })
    }

    /// Inputs per row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Units of each hidden layer.
    pub fn hidden_units(&self) -> &[usize] {
        &self.hidden_units
    }

    /// All parameters, layer by layer (hidden layers first, then the output layer): weights
    /// `W[i][j]` (input i, unit j, input-major), then biases `b[j]`.
    pub fn parameters(&self) -> &[f32] {
        &self.params
    }

    /// The standardisation: per-feature mean and scale (= 1/std), `u = (x - mean) * scale`.
    pub fn standardisation(&self) -> (&[f32], &[f32]) {
        (&self.mean, &self.scale)
    }

    fn standardise(&self, x: &[f32]) -> Vec<f32> {
        let mut u = x.to_vec();
        for row in u.chunks_exact_mut(self.n_features) {
            for ((v, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = (*v - m) * s;
            }
        }
        u
    }

    /// The logits z (before the sigmoid) of the rows of `x` ([n][n_features], user units) into
    /// `logits` ([n]).
    ///
    /// Errors: [`Error::InvalidArgument`] (wrong lengths, a value that is not finite).
    pub fn logits(&self, x: &[f32], logits: &mut [f32]) -> Result<()> {
        let n = rows_of(x, self.n_features, "x")?;
        if logits.len() != n {
            return Err(Error::InvalidArgument(alloc::format!(
                "logits has {} values for {n} rows",
                logits.len()
            )));
        }
        let u = self.standardise(x);
        let mut ws = Workspace::new(&self.layers, EVAL_BLOCK.min(n.max(1)));
        for (block, out) in u.chunks(EVAL_BLOCK * self.n_features).zip(logits.chunks_mut(EVAL_BLOCK)) {
            forward(&self.layers, &self.params, block, &mut ws);
            out.copy_from_slice(&ws.logits[..out.len()]);
        }
        Ok(())
    }

    /// The probability of class 1, sigmoid(z), for each row of `x` ([n][n_features]).
    ///
    /// Errors: as [`Classifier::logits`].
    pub fn predict_proba(&self, x: &[f32]) -> Result<Vec<f32>> {
        let mut z = vec![0.0f32; x.len() / self.n_features.max(1)];
        self.logits(x, &mut z)?;
        Ok(z.iter().map(|&z| sigmoid(f64::from(z)) as f32).collect())
    }

    /// Mean BCE and accuracy on `x` ([n][n_features]) with labels 0 or 1.
    ///
    /// Errors: [`Error::InvalidArgument`] (no rows, wrong lengths, non-finite x, labels > 1).
    pub fn evaluate(&self, x: &[f32], labels: &[u8]) -> Result<Evaluation> {
        let n = rows_of(x, self.n_features, "x")?;
        check_labels(labels, n, "labels")?;
        if n == 0 {
            return Err(invalid("evaluate needs at least one row"));
        }
        let u = self.standardise(x);
        let mut ws = Workspace::new(&self.layers, EVAL_BLOCK.min(n));
        Ok(evaluate_standardised(&self.layers, &self.params, &u, labels, self.n_features, &mut ws))
    }

    /// The mean BCE over the rows of `x` ([n][n_features], user units) with labels 0 or 1, and
    /// its gradient with respect to every parameter, written to `grad` (the layout of
    /// [`Classifier::parameters`]). The standardisation is fixed (not a parameter).
    ///
    /// Errors: [`Error::InvalidArgument`] (no rows, wrong lengths, non-finite x, labels > 1).
    pub fn loss_gradient(&self, x: &[f32], labels: &[u8], grad: &mut [f32]) -> Result<f64> {
        let n = rows_of(x, self.n_features, "x")?;
        check_labels(labels, n, "labels")?;
        if n == 0 {
            return Err(invalid("loss_gradient needs at least one row"));
        }
        if grad.len() != self.params.len() {
            return Err(Error::InvalidArgument(alloc::format!(
                "grad has {} values for {} parameters",
                grad.len(),
                self.params.len()
            )));
        }
        let u = self.standardise(x);
        let mut ws = Workspace::new(&self.layers, EVAL_BLOCK.min(n));
        grad.fill(0.0);
        let inv_n = 1.0 / n as f32;
        let mut loss = 0.0;
        for (block, t) in u.chunks(EVAL_BLOCK * self.n_features).zip(labels.chunks(EVAL_BLOCK)) {
            loss += forward_backward(&self.layers, &self.params, block, t, inv_n, &mut ws, grad);
        }
        Ok(loss / n as f64)
    }
}

/// sigmoid(z) = 1 / (1 + e^-z), in f64.
#[inline]
fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + exp(-z))
}

/// softplus(z) - t z = the BCE of logit z against label t, without cancellation.
#[inline]
fn bce_logit(z: f64, t: f64) -> f64 {
    z.max(0.0) + ln_1p(exp(-z.abs())) - t * z
}

/// Working memory for `rows` rows: the activations and back-propagated errors of every hidden
/// layer, the logits and their errors.
struct Workspace {
    rows: usize,
    acts: Vec<Vec<f32>>,
    deltas: Vec<Vec<f32>>,
    logits: Vec<f32>,
}

impl Workspace {
    fn new(layers: &[LayerSlot], rows: usize) -> Self {
        let hidden = &layers[..layers.len() - 1];
        Self {
            rows,
            acts: hidden.iter().map(|s| vec![0.0; rows * s.n_out]).collect(),
            deltas: hidden.iter().map(|s| vec![0.0; rows * s.n_out]).collect(),
            logits: vec![0.0; rows],
        }
    }
}

/// Forward pass of the rows of `u` (standardised, at most `ws.rows` rows): hidden activations
/// into `ws.acts`, logits into `ws.logits`.
#[inline(always)]
fn forward_body(layers: &[LayerSlot], params: &[f32], u: &[f32], ws: &mut Workspace) {
    let n_hidden = layers.len() - 1;
    let rows = u.len() / layers[0].n_in;
    debug_assert!(rows <= ws.rows);
    for l in 0..n_hidden {
        let s = layers[l];
        let (before, after) = ws.acts.split_at_mut(l);
        let input: &[f32] = if l == 0 { u } else { &before[l - 1][..rows * s.n_in] };
        kernels::dense_relu_body(
            input,
            &params[s.w..s.b],
            &params[s.b..s.b + s.n_out],
            &mut after[0][..rows * s.n_out],
            s.n_in,
        );
    }
    let out = layers[n_hidden];
    let w = &params[out.w..out.b];
    let b = params[out.b];
    let h = &ws.acts[n_hidden - 1];
    for (r, z) in ws.logits[..rows].iter_mut().enumerate() {
        *z = b + dot(&h[r * out.n_in..(r + 1) * out.n_in], w);
    }
}

/// Forward and backward pass: adds to `grad` the gradient of sum_r inv_n bce(z_r, t_r) over
/// the rows of `u`, and returns sum_r bce(z_r, t_r) (f64).
#[inline(always)]
fn forward_backward_body(
    layers: &[LayerSlot],
    params: &[f32],
    u: &[f32],
    labels: &[u8],
    inv_n: f32,
    ws: &mut Workspace,
    grad: &mut [f32],
) -> f64 {
    forward_body(layers, params, u, ws);
    let rows = labels.len();
    let n_hidden = layers.len() - 1;
    let mut loss = 0.0f64;
    // d loss / d z, in place of the logits.
    for (z, &t) in ws.logits[..rows].iter_mut().zip(labels) {
        let (zd, td) = (f64::from(*z), f64::from(t));
        loss += bce_logit(zd, td);
        *z = (sigmoid(zd) - td) as f32 * inv_n;
    }
    // The output layer.
    let out = layers[n_hidden];
    let last = n_hidden - 1;
    {
        let w = &params[out.w..out.b];
        let (gw, gb) = grad[out.w..out.b + 1].split_at_mut(out.n_in);
        let h = &ws.acts[last];
        let delta = &mut ws.deltas[last];
        for r in 0..rows {
            let dz = ws.logits[r];
            let hr = &h[r * out.n_in..(r + 1) * out.n_in];
            kernels::axpy_body(gw, dz, hr);
            gb[0] += dz;
            for ((d, &w), &a) in delta[r * out.n_in..(r + 1) * out.n_in].iter_mut().zip(w).zip(hr) {
                *d = if a > 0.0 { dz * w } else { 0.0 };
            }
        }
    }
    // The hidden layers, last to first.
    for l in (0..n_hidden).rev() {
        let s = layers[l];
        let (gw, gb) = grad[s.w..s.b + s.n_out].split_at_mut(s.n_in * s.n_out);
        let acts_before = &ws.acts[..l];
        let input: &[f32] = if l == 0 { u } else { &acts_before[l - 1][..rows * s.n_in] };
        let (deltas_before, deltas_rest) = ws.deltas.split_at_mut(l);
        let delta = &deltas_rest[0][..rows * s.n_out];
        kernels::weight_grad_body(gw, gb, input, delta, s.n_in);
        if l > 0 {
            let w = &params[s.w..s.b];
            let prev = &mut deltas_before[l - 1][..rows * s.n_in];
            for r in 0..rows {
                let dr = &delta[r * s.n_out..(r + 1) * s.n_out];
                let ar = &input[r * s.n_in..(r + 1) * s.n_in];
                for (i, p) in prev[r * s.n_in..(r + 1) * s.n_in].iter_mut().enumerate() {
                    *p = if ar[i] > 0.0 { dot(dr, &w[i * s.n_out..(i + 1) * s.n_out]) } else { 0.0 };
                }
            }
        }
    }
    loss
}

/// [`forward_body`], in the AVX2 build where the CPU has it (the same bits: see [`kernels`]).
fn forward(layers: &[LayerSlot], params: &[f32], u: &[f32], ws: &mut Workspace) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if kernels::has_avx2() {
        // SAFETY: AVX2 is present (checked at run time).
        return unsafe { avx2_forward(layers, params, u, ws) };
    }
    forward_body(layers, params, u, ws)
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
fn avx2_forward(layers: &[LayerSlot], params: &[f32], u: &[f32], ws: &mut Workspace) {
    forward_body(layers, params, u, ws)
}

/// [`forward_backward_body`], in the AVX2 build where the CPU has it (the same bits).
fn forward_backward(
    layers: &[LayerSlot],
    params: &[f32],
    u: &[f32],
    labels: &[u8],
    inv_n: f32,
    ws: &mut Workspace,
    grad: &mut [f32],
) -> f64 {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if kernels::has_avx2() {
        // SAFETY: AVX2 is present (checked at run time).
        return unsafe { avx2_forward_backward(layers, params, u, labels, inv_n, ws, grad) };
    }
    forward_backward_body(layers, params, u, labels, inv_n, ws, grad)
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
fn avx2_forward_backward(
    layers: &[LayerSlot],
    params: &[f32],
    u: &[f32],
    labels: &[u8],
    inv_n: f32,
    ws: &mut Workspace,
    grad: &mut [f32],
) -> f64 {
    forward_backward_body(layers, params, u, labels, inv_n, ws, grad)
}

/// sum_k a_k b_k in f32 with 8 partial sums (k mod 8), added in a fixed tree, then the tail.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ta.iter().zip(tb) {
        sum += x * y;
    }
    sum
}

fn evaluate_standardised(
    layers: &[LayerSlot],
    params: &[f32],
    u: &[f32],
    labels: &[u8],
    n_features: usize,
    ws: &mut Workspace,
) -> Evaluation {
    let mut loss = 0.0f64;
    let mut right = 0usize;
    for (block, t) in u.chunks(ws.rows * n_features).zip(labels.chunks(ws.rows)) {
        forward(layers, params, block, ws);
        for (&z, &t) in ws.logits.iter().zip(t) {
            loss += bce_logit(f64::from(z), f64::from(t));
            right += usize::from((z > 0.0) == (t == 1));
        }
    }
    let n = labels.len() as f64;
    Evaluation { bce: loss / n, accuracy: right as f64 / n }
}

/// The row kernels, each in a baseline build and (x86-64 with std) an AVX2 build chosen at
/// run time. Both run the same IEEE operations per output in the same order (the vector lanes
/// are independent outputs; no fused multiply-adds), so they give the same bits.
mod kernels {
    /// out[r][j] = relu(b[j] + sum_i x[r][i] w[i][j]), the sum over i in order.
    #[inline(always)]
    pub(crate) fn dense_relu_body(x: &[f32], w: &[f32], b: &[f32], out: &mut [f32], n_in: usize) {
        let n_out = b.len();
        for (xr, o) in x.chunks_exact(n_in).zip(out.chunks_exact_mut(n_out)) {
            o.copy_from_slice(b);
            for (&xi, wi) in xr.iter().zip(w.chunks_exact(n_out)) {
                for (o, &w) in o.iter_mut().zip(wi) {
                    *o += xi * w;
                }
            }
            for o in o.iter_mut() {
                *o = o.max(0.0);
            }
        }
    }

    /// gw[i][j] += sum_r x[r][i] d[r][j]; gb[j] += sum_r d[r][j] (rows in order).
    #[inline(always)]
    pub(crate) fn weight_grad_body(gw: &mut [f32], gb: &mut [f32], x: &[f32], d: &[f32], n_in: usize) {
        let n_out = gb.len();
        for (xr, dr) in x.chunks_exact(n_in).zip(d.chunks_exact(n_out)) {
            for (&xi, gwi) in xr.iter().zip(gw.chunks_exact_mut(n_out)) {
                if xi != 0.0 {
                    for (g, &d) in gwi.iter_mut().zip(dr) {
                        *g += xi * d;
                    }
                }
            }
            for (g, &d) in gb.iter_mut().zip(dr) {
                *g += d;
            }
        }
    }

    /// y[k] += a x[k].
    #[inline(always)]
    pub(crate) fn axpy_body(y: &mut [f32], a: f32, x: &[f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y += a * x;
        }
    }

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    pub(crate) fn has_avx2() -> bool {
        crate::math::simd::VectorIsa::detect() >= crate::math::simd::VectorIsa::Avx2
    }
}

/// One epoch's numbers, passed to the callback of [`train_classifier`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    /// 0-based epoch.
    pub epoch: usize,
    /// Mean BCE over the epoch's minibatches, each row counted once (as the parameters
    /// changed during the epoch) [nats].
    pub train_bce: f64,
    /// Mean BCE on the validation set after the epoch; NaN without one.
    pub validation_bce: f64,
    /// Accuracy on the validation set after the epoch; NaN without one.
    pub validation_accuracy: f64,
}

/// What [`train_classifier`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainReport {
    /// Epochs run (fewer than max_epochs after early stopping or a stop by the callback).
    pub epochs_run: usize,
    /// The 0-based epoch of the kept parameters (the last one without a validation set).
    pub best_epoch: usize,
    /// Validation BCE of the kept parameters; NaN without a validation set.
    pub best_validation_bce: f64,
    /// Validation accuracy of the kept parameters; NaN without a validation set.
    pub best_validation_accuracy: f64,
    /// The last epoch's training BCE (see [`EpochStats::train_bce`]).
    pub final_train_bce: f64,
}

/// A permutation of 0..n from a Philox stream (Fisher-Yates from the top; the index below
/// i + 1 is the high word of a 64 x 64-bit product, whose bias, below (i + 1) / 2^64, is
/// negligible).
pub fn permutation(n: usize, stream: &mut Stream) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, stream);
    order
}

fn shuffle(order: &mut [usize], stream: &mut Stream) {
    for i in (1..order.len()).rev() {
        let j = ((u128::from(stream.next_u64()) * (i as u128 + 1)) >> 64) as usize;
        order.swap(i, j);
    }
}

/// Trains a classifier on `x` ([n][n_features], user units) with labels 0 or 1, the
/// standardisation computed from `x`; with `validation` = (x, labels), keeps the parameters of
/// the epoch with the lowest validation BCE. `on_epoch` is called after each epoch; returning
/// false stops training there (the kept parameters are as after an early stop).
///
/// Errors: [`Error::InvalidArgument`] (bad options; fewer rows than one minibatch; wrong
/// lengths; NaN or infinite values; labels other than 0 and 1; a feature of zero variance;
/// `patience > 0` without a validation set).
pub fn train_classifier(
    x: &[f32],
    labels: &[u8],
    n_features: usize,
    validation: Option<(&[f32], &[u8])>,
    options: &ClassifierOptions,
    mut on_epoch: impl FnMut(&EpochStats) -> bool,
) -> Result<(Classifier, TrainReport)> {
    options.validate()?;
    let n = rows_of(x, n_features, "x")?;
    check_labels(labels, n, "labels")?;
    if n < options.batch_size {
        return Err(Error::InvalidArgument(alloc::format!(
            "{n} training rows are fewer than one minibatch ({})",
            options.batch_size
        )));
    }
    let validation = match validation {
        Some((vx, vl)) => {
            let nv = rows_of(vx, n_features, "validation x")?;
            check_labels(vl, nv, "validation labels")?;
            if nv == 0 {
                return Err(invalid("the validation set is empty"));
            }
            Some((vx, vl))
        }
        None => None,
    };
    if options.patience > 0 && validation.is_none() {
        return Err(invalid("patience > 0 needs a validation set"));
    }
    let (mean, scale) = standardisation(x, n_features)?;
    let mut model = Classifier::new(n_features, &options.hidden_units, mean, scale, options.seed)?;
    let u = model.standardise(x);
    let validation = validation.map(|(vx, vl)| (model.standardise(vx), vl));

    let batch = options.batch_size;
    let n_params = model.params.len();
    let (mut grad, mut m, mut v) = (vec![0.0f32; n_params], vec![0.0f32; n_params], vec![0.0f32; n_params]);
    let mut ws = Workspace::new(&model.layers, batch);
    let mut eval_ws =
        validation.as_ref().map(|(_, vl)| Workspace::new(&model.layers, EVAL_BLOCK.min(vl.len())));
    let mut xb = vec![0.0f32; batch * n_features];
    let mut tb = vec![0u8; batch];
    let mut order: Vec<usize> = Vec::with_capacity(n);
    let mut best = model.params.clone();
    let mut report = TrainReport {
        epochs_run: 0,
        best_epoch: 0,
        best_validation_bce: f64::NAN,
        best_validation_accuracy: f64::NAN,
        final_train_bce: f64::NAN,
    };
    let mut since_best = 0usize;
    let mut step = 0u64;
    for epoch in 0..options.max_epochs {
        order.clear();
        order.extend(0..n);
        shuffle(&mut order, &mut Stream::new(options.seed, STREAM_EPOCH.wrapping_add(epoch as u64)));
        let lr = options.schedule.rate(options.learning_rate, epoch, options.max_epochs);
        let mut loss = 0.0f64;
        for rows in order.chunks(batch) {
            for (k, &r) in rows.iter().enumerate() {
                xb[k * n_features..(k + 1) * n_features]
                    .copy_from_slice(&u[r * n_features..(r + 1) * n_features]);
                tb[k] = labels[r];
            }
            let b = rows.len();
            grad.fill(0.0);
            loss += forward_backward(
                &model.layers,
                &model.params,
                &xb[..b * n_features],
                &tb[..b],
                1.0 / b as f32,
                &mut ws,
                &mut grad,
            );
            step += 1;
            options.adam.step_constants(lr, step).apply(&mut model.params, &grad, &mut m, &mut v);
        }
        let train_bce = loss / n as f64;
        if model.params.iter().any(|p| !p.is_finite()) {
            return Err(Error::OutOfDomain(alloc::format!(
                "training diverged at epoch {epoch} (a parameter is not finite): lower the learning rate"
            )));
        }
        let mut stats =
            EpochStats { epoch, train_bce, validation_bce: f64::NAN, validation_accuracy: f64::NAN };
        report.epochs_run = epoch + 1;
        report.final_train_bce = train_bce;
        let mut stop = false;
        if let (Some((vu, vl)), Some(ews)) = (&validation, eval_ws.as_mut()) {
            let e = evaluate_standardised(&model.layers, &model.params, vu, vl, n_features, ews);
            stats.validation_bce = e.bce;
            stats.validation_accuracy = e.accuracy;
            // The first epoch, or a lower BCE (best_validation_bce starts as NaN).
            if report.best_validation_bce.is_nan() || e.bce < report.best_validation_bce {
                best.copy_from_slice(&model.params);
                report.best_epoch = epoch;
                report.best_validation_bce = e.bce;
                report.best_validation_accuracy = e.accuracy;
                since_best = 0;
            } else {
                since_best += 1;
                stop = options.patience > 0 && since_best >= options.patience;
            }
        } else {
            report.best_epoch = epoch;
        }
        if !on_epoch(&stats) || stop {
            break;
        }
    }
    if validation.is_some() {
        model.params = best;
    }
    Ok((model, report))
}

/// Settings of [`two_sample_test`]: the classifier's, and the split of the balanced set.
#[derive(Clone, Debug, PartialEq)]
pub struct TwoSampleOptions {
    /// The classifier and its training (default: the paper's, see [`ClassifierOptions`]).
    pub classifier: ClassifierOptions,
    /// Fraction of each class for validation (default 0.1), in [0, 1); 0 keeps the last epoch.
    pub validation_fraction: f64,
    /// Fraction of each class held out for the test (default 0.1), in (0, 1).
    pub test_fraction: f64,
}

impl Default for TwoSampleOptions {
    fn default() -> Self {
        Self { classifier: ClassifierOptions::default(), validation_fraction: 0.1, test_fraction: 0.1 }
    }
}

/// The result of [`two_sample_test`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwoSampleReport {
    /// Fraction of the test rows classified right: 0.5 = indistinguishable, 1 = fully apart.
    pub test_accuracy: f64,
    /// Mean BCE on the test rows [nats] (ln 2 = 0.6931 for a classifier that learnt nothing).
    pub test_bce: f64,
    /// The standard error of the test accuracy if the samples are indistinguishable,
    /// sqrt(0.25 / n_test): an accuracy more than ~3 of these above 0.5 is significant.
    pub null_standard_error: f64,
    /// Accuracy on the validation rows of the kept parameters (NaN without validation).
    pub validation_accuracy: f64,
    /// Validation BCE of the kept parameters (NaN without validation).
    pub best_validation_bce: f64,
    /// The last epoch's training BCE.
    pub final_train_bce: f64,
    /// Epochs run.
    pub epochs_run: usize,
    /// 0-based epoch of the kept parameters.
    pub best_epoch: usize,
    /// Rows used from each sample (the smaller sample's size).
    pub n_per_class: usize,
    /// Training rows (both classes, equal numbers).
    pub n_train: usize,
    /// Validation rows (both classes, equal numbers).
    pub n_validation: usize,
    /// Test rows (both classes, equal numbers).
    pub n_test: usize,
}

/// The classifier two-sample test of SECRET section 3.2.2 (Lopez-Paz & Oquab 2017): how well a
/// dense classifier tells rows of `a` (label 0) from rows of `b` (label 1), both
/// [n][n_features] in the same units.
///
/// - Balance: n = min(n_a, n_b) rows from each, a random subset of the larger one (Philox
///   streams [`STREAM_SUBSET_A`], [`STREAM_SUBSET_B`]).
/// - Split each class the same way (stratified): round(n test_fraction) test rows,
///   round(n validation_fraction) validation rows, the rest for training (default 80/10/10;
///   the paper does not state its split). Every split is exactly balanced, so a constant
///   classifier scores exactly 0.5.
/// - Train [`train_classifier`] (standardisation from the training rows; the parameters with
///   the best validation BCE kept) and report the accuracy and BCE on the test rows.
///
/// Deterministic: the same data, options and seed give the same report, bit for bit.
///
/// Errors: [`Error::InvalidArgument`] (bad options or fractions, NaN or infinite values
/// naming the sample, row and column, lengths not a multiple of n_features, too few rows for a
/// test row, a validation row and one minibatch of training rows, zero variance).
pub fn two_sample_test(
    a: &[f32],
    b: &[f32],
    n_features: usize,
    options: &TwoSampleOptions,
) -> Result<TwoSampleReport> {
    options.classifier.validate()?;
    let (vf, tf) = (options.validation_fraction, options.test_fraction);
    if !(vf.is_finite() && (0.0..1.0).contains(&vf)) {
        return Err(Error::InvalidArgument(alloc::format!(
            "validation_fraction must be in [0, 1), got {vf}"
        )));
    }
    if !(tf.is_finite() && tf > 0.0 && tf < 1.0) {
        return Err(Error::InvalidArgument(alloc::format!("test_fraction must be in (0, 1), got {tf}")));
    }
    if vf + tf >= 1.0 {
        return Err(Error::InvalidArgument(alloc::format!(
            "validation_fraction + test_fraction must be < 1, got {vf} + {tf}"
        )));
    }
    let n_a = rows_of(a, n_features, "a")?;
    let n_b = rows_of(b, n_features, "b")?;
    let n = n_a.min(n_b);
    let n_test = (n as f64 * tf + 0.5) as usize;
    let n_val = (n as f64 * vf + 0.5) as usize;
    let n_train = n.saturating_sub(n_test + n_val);
    if n_test == 0 || (vf > 0.0 && n_val == 0) || 2 * n_train < options.classifier.batch_size || n_train == 0
    {
        return Err(Error::InvalidArgument(alloc::format!(
            "too few rows: {n} per class (n_a = {n_a}, n_b = {n_b}) give {n_test} test, {n_val} validation \
             and {n_train} training rows per class; need >= 1 test row{}, and 2 x training >= one \
             minibatch ({})",
            if vf > 0.0 { ", >= 1 validation row" } else { "" },
            options.classifier.batch_size
        )));
    }
    let seed = options.classifier.seed;
    let pick_a = permutation(n_a, &mut Stream::new(seed, STREAM_SUBSET_A));
    let pick_b = permutation(n_b, &mut Stream::new(seed, STREAM_SUBSET_B));
    let gather = |range: core::ops::Range<usize>| {
        let mut x = Vec::with_capacity(2 * range.len() * n_features);
        let mut t = Vec::with_capacity(2 * range.len());
        for (data, pick, label) in [(a, &pick_a, 0u8), (b, &pick_b, 1u8)] {
            for &r in &pick[range.clone()] {
                x.extend_from_slice(&data[r * n_features..(r + 1) * n_features]);
                t.push(label);
            }
        }
        (x, t)
    };
    let (train_x, train_t) = gather(0..n_train);
    let (val_x, val_t) = gather(n_train..n_train + n_val);
    let (test_x, test_t) = gather(n_train + n_val..n);
    let validation = (n_val > 0).then_some((val_x.as_slice(), val_t.as_slice()));
    let (model, report) =
        train_classifier(&train_x, &train_t, n_features, validation, &options.classifier, |_| true)?;
    let test = model.evaluate(&test_x, &test_t)?;
    Ok(TwoSampleReport {
        test_accuracy: test.accuracy,
        test_bce: test.bce,
        null_standard_error: sqrt(0.25 / (2 * n_test) as f64),
        validation_accuracy: report.best_validation_accuracy,
        best_validation_bce: report.best_validation_bce,
        final_train_bce: report.final_train_bce,
        epochs_run: report.epochs_run,
        best_epoch: report.best_epoch,
        n_per_class: n,
        n_train: 2 * n_train,
        n_validation: 2 * n_val,
        n_test: 2 * n_test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 build of the forward and backward pass gives the bits of the baseline build.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[test]
    fn avx2_build_gives_the_baseline_bits() {
        if !kernels::has_avx2() {
            return;
        }
        let mut s = Stream::new(5, 0);
        for (rows, n_features, hidden) in [(50, 19, vec![32]), (7, 5, vec![13, 9, 4]), (33, 3, vec![1])] {
            let x: Vec<f32> = (0..rows * n_features).map(|_| s.normal() as f32).collect();
            let t: Vec<u8> = (0..rows).map(|r| (r % 3 == 0) as u8).collect();
            let c = Classifier::new(n_features, &hidden, vec![0.0; n_features], vec![1.0; n_features], 9)
                .unwrap();
            let mut ws = Workspace::new(&c.layers, rows);
            let (mut g1, mut g2) = (vec![0.0f32; c.params.len()], vec![0.0f32; c.params.len()]);
            let l1 = forward_backward_body(&c.layers, &c.params, &x, &t, 0.02, &mut ws, &mut g1);
            // SAFETY: AVX2 checked above.
            let l2 = unsafe { avx2_forward_backward(&c.layers, &c.params, &x, &t, 0.02, &mut ws, &mut g2) };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(l1.to_bits(), l2.to_bits());
            assert_eq!(bits(&g1), bits(&g2));
            assert!(g1.iter().any(|&g| g != 0.0));
            forward_body(&c.layers, &c.params, &x, &mut ws);
            let z = ws.logits.clone();
            // SAFETY: AVX2 checked above.
            unsafe { avx2_forward(&c.layers, &c.params, &x, &mut ws) };
            assert_eq!(bits(&z), bits(&ws.logits));
        }
    }

    #[test]
    fn pytorch_initialisation_bounds() {
        let c = Classifier::new(19, &[32], vec![0.0; 19], vec![1.0; 19], 3).unwrap();
        let p = c.parameters();
        assert_eq!(p.len(), 20 * 32 + 33);
        let bound1 = 1.0 / 19f32.sqrt();
        let bound2 = 1.0 / 32f32.sqrt();
        assert!(p[..20 * 32].iter().all(|w| w.abs() <= bound1));
        assert!(p[20 * 32..].iter().all(|w| w.abs() <= bound2));
        assert!(p[..20 * 32].iter().any(|w| w.abs() > 0.9 * bound1));
    }
}
