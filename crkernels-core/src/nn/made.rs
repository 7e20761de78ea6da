//! MADE with Gaussian-mixture outputs (SECRET section 3.1, eqs. 3.4 to 3.9; Germain et al.
//! 2015), for one tile of samples at a time. The std crate adds threads; loading from
//! safetensors is in [`crate::nn::load`].
//!
//! # The network
//!
//! A [`MadeSpec`] lists the layers in the file's unit order; [`Made::new`] validates it and
//! sorts every layer's units by degree (see [`crate::nn::dense`]). Buffer 0 holds the
//! standardised data x; stage s writes buffer s + 1:
//!
//! - `Dense`: y = act(W [c; in] + b) (+ a residual buffer), W masked by degrees (context
//!   columns only where the stage takes the context);
//! - `Affine`: y = act(scale * in + shift), per unit (nflows' batch norm in eval mode).
//!
//! The heads read the last buffer: for data dimension d and component k, the logit l_dk, the
//! mean mu_dk and the raw scale r_dk, with sigma = exp(r) (SECRET eq. 3.9) or
//! sigma = softplus(r) + epsilon (nflows).
//!
//! # Density
//!
//! log p(x | c) = sum_d ln p_d(xs_d) - sum_d ln s_d, with xs = (x - m) / s the standardised
//! data (the Jacobian of the standardisation) and p_d the mixture of dimension d
//! ([`crate::nn::mixture`]), evaluated in f64 from the f32 network outputs.
//!
//! # Sampling: one forward pass per sample
//!
//! Dimensions are drawn in increasing degree. A hidden unit of degree m depends only on inputs
//! of degree <= m, so once every data dimension of degree <= m is drawn its value is final.
//! Before drawing dimension t (degree g_t), the sampler computes exactly the units of degree in
//! [g_{t-1}, g_t) in every layer, then the 3K head rows of dimension t: every unit is computed
//! once, the cost of one forward pass. This is the incremental update of the hidden
//! pre-activations, a_j += W_jd x_d for every j with deg(j) >= deg(d) after each drawn x_d
//! (a rank-1 update), with each unit's additions deferred until the unit is needed and done
//! in the same order: context first, then the data in degree order.
//! [`Made::sample_tile_reference`] instead re-runs the whole network D times (the textbook
//! sampler, SECRET section 3.1); both give bit-identical draws (tests/made.rs).
//!
//! Sample i of seed s draws from [`Stream::new(s, i)`](Stream::new): for each dimension in
//! degree order, one uniform picks the component, one normal ([`Stream::normal`]) the value (4
//! words). So sample i is the same on any thread count and in any batch split.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::math::{exp, exp_branchless, ln, ln_1p};
use crate::nn::activation::ActivationFn;
use crate::nn::dense::{MaskRule, MaskedDense, TILE};
use crate::nn::mixture::{HALF_LN_2PI, log_pdf_scratch, sample_unchecked};
use crate::rng::Stream;

#[path = "made_grad.rs"]
mod grad;
pub use grad::{LayerGrad, MadeGrad, MadeGradWorkspace};

#[path = "made_to_spec.rs"]
mod to_spec;

/// The elementwise nonlinearity of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// tanh x.
    Tanh,
    /// max(x, 0).
    Relu,
    /// x for x > 0, 0.01 x otherwise (PyTorch's `LeakyReLU` default slope).
    LeakyRelu,
    /// x for x > 0, e^x - 1 otherwise (alpha = 1, PyTorch's `ELU` default; Clevert et al.
    /// 2016, arXiv:1511.07289).
    Elu,
    /// x (nflows' initial and residual layers).
    Identity,
}

impl Activation {
    /// The slope of [`Activation::LeakyRelu`] for x <= 0 (rounded to f32 in the f32 kernels,
    /// exact in the f64 gradients).
    pub const LEAKY_RELU_SLOPE: f64 = 0.01;

    /// The saturation value alpha of [`Activation::Elu`] (x -> -inf gives -alpha).
    pub const ELU_ALPHA: f64 = 1.0;

    /// The activation named `sigmoid`, `tanh`, `relu`, `leaky_relu`, `elu` or `identity`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sigmoid" => Some(Activation::Sigmoid),
            "tanh" => Some(Activation::Tanh),
            "relu" => Some(Activation::Relu),
            "leaky_relu" => Some(Activation::LeakyRelu),
            "elu" => Some(Activation::Elu),
            "identity" => Some(Activation::Identity),
            _ => None,
        }
    }

    /// The name [`from_name`](Self::from_name) reads (the file's metadata `activation`).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Elu => "elu",
            Activation::Identity => "identity",
        }
    }

    /// The runner's activation (nn::activation) this one is, None for the identity.
    pub(crate) fn function(self) -> Option<ActivationFn> {
        match self {
            Activation::Sigmoid => Some(ActivationFn::Sigmoid),
            Activation::Tanh => Some(ActivationFn::Tanh),
            Activation::Relu => Some(ActivationFn::Relu),
            Activation::LeakyRelu => Some(ActivationFn::LeakyRelu { alpha: Self::LEAKY_RELU_SLOPE as f32 }),
            Activation::Elu => Some(ActivationFn::Elu { alpha: Self::ELU_ALPHA as f32 }),
            Activation::Identity => None,
        }
    }

    /// The activation of every value (vectorised, see [`ActivationFn::apply_all`]).
    fn apply_all(self, values: &mut [f32]) {
        if let Some(function) = self.function() {
            function.apply_all(values);
        }
    }

    #[inline(always)]
    fn apply(self, x: f32) -> f32 {
        self.function().map_or(x, |function| function.apply(x))
    }
}

/// How the scale head's raw output r becomes sigma.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScaleHead {
    /// sigma = exp(r) (SECRET eq. 3.9, the plain layout).
    Exp,
    /// sigma = softplus(r) + epsilon, softplus as in PyTorch (r > 20: r) (nflows).
    SoftplusPlus {
        /// The floor added to the softplus (nflows' default 1e-2).
        epsilon: f64,
    },
}

impl ScaleHead {
    #[inline(always)]
    fn log_scale(self, raw: f32) -> f64 {
        let r = f64::from(raw);
        match self {
            ScaleHead::Exp => r,
            ScaleHead::SoftplusPlus { epsilon } => {
                let softplus = if r > 20.0 { r } else { ln_1p(exp(r)) };
                ln(softplus + epsilon)
            }
        }
    }
}

/// One layer of a [`MadeSpec`], in the file's unit order.
#[derive(Clone, Debug)]
pub enum LayerSpec {
    /// y = act(W_c c + W in + b) (+ residual), W masked with deg(out) >= deg(in).
    Dense {
        /// The buffer read (0 = the data, s + 1 = the output of layer s).
        input: usize,
        /// [n_out][n_in of the input buffer], row-major.
        weight: Vec<f32>,
        /// [n_out][n_context] when the layer takes the context, else None.
        context_weight: Option<Vec<f32>>,
        /// [n_out].
        bias: Vec<f32>,
        /// Degrees of the outputs.
        degrees: Vec<i64>,
        /// The nonlinearity.
        activation: Activation,
        /// A buffer added after the activation (same degrees as the outputs).
        residual: Option<usize>,
    },
    /// y = act(scale * in + shift) per unit; the degrees are those of the input.
    Affine {
        /// The buffer read.
        input: usize,
        /// Per-unit factor.
        scale: Vec<f32>,
        /// Per-unit offset.
        shift: Vec<f32>,
        /// The nonlinearity.
        activation: Activation,
    },
}

/// The mixture heads: rows d * K + k for data dimension d (user's order), component k; weights
/// [D * K][units of the last buffer].
#[derive(Clone, Debug)]
pub struct HeadsSpec {
    /// Logit weights and biases.
    pub logits: (Vec<f32>, Vec<f32>),
    /// Mean weights and biases.
    pub means: (Vec<f32>, Vec<f32>),
    /// Raw-scale weights and biases.
    pub scales: (Vec<f32>, Vec<f32>),
    /// How the raw scale becomes sigma.
    pub scale: ScaleHead,
}

/// Standardisation stored with a model: xs = (x - x_mean) / x_std, cs likewise.
#[derive(Clone, Debug, Default)]
pub struct Standardize {
    /// [D] (empty: 0).
    pub x_mean: Vec<f64>,
    /// [D] (empty: 1), > 0.
    pub x_std: Vec<f64>,
    /// [C] (empty: 0).
    pub context_mean: Vec<f64>,
    /// [C] (empty: 1), > 0.
    pub context_std: Vec<f64>,
}

/// A MADE-MoG as loaded, in the file's order: what [`Made::new`] compiles.
#[derive(Clone, Debug)]
pub struct MadeSpec {
    /// Degrees of the context inputs (user's order), each below every data degree.
    pub context_degrees: Vec<i64>,
    /// Degrees of the data dimensions (user's order), distinct: the autoregressive order.
    pub data_degrees: Vec<i64>,
    /// Mixture components per dimension, K >= 1.
    pub n_components: usize,
    /// The hidden layers, in evaluation order (at least one Dense).
    pub layers: Vec<LayerSpec>,
    /// The heads, reading the last layer's output.
    pub heads: HeadsSpec,
    /// Standardisation of data and context.
    pub standardize: Standardize,
}

/// A compiled layer as seen from outside (see [`Made::stages`]): units sorted by degree.
#[derive(Clone, Copy, Debug)]
pub enum StageView<'a> {
    /// y = act(W [c; in] + b) (+ the residual buffer); W's columns are the context (sorted)
    /// when `uses_context`, then the input buffer's units.
    Dense {
        /// The masked weights, zero outside the mask.
        layer: &'a MaskedDense,
        /// The buffer read.
        input: usize,
        /// Whether the context columns come first.
        uses_context: bool,
        /// The nonlinearity.
        activation: Activation,
        /// The buffer added after the activation.
        residual: Option<usize>,
    },
    /// y = act(scale * in + shift) per unit, rounded after the product and after the sum.
    Affine {
        /// The buffer read.
        input: usize,
        /// Per-unit factor.
        scale: &'a [f32],
        /// Per-unit offset.
        shift: &'a [f32],
        /// The nonlinearity.
        activation: Activation,
    },
}

/// A compiled layer: units sorted by degree.
#[derive(Clone, Debug)]
enum Stage {
    Dense {
        layer: MaskedDense,
        input: usize,
        uses_context: bool,
        activation: Activation,
        residual: Option<usize>,
    },
    Affine {
        input: usize,
        scale: Vec<f32>,
        shift: Vec<f32>,
        activation: Activation,
    },
}

/// A MADE with Gaussian-mixture outputs, ready to evaluate (immutable; share it across
/// threads, each with its own [`MadeWorkspace`]).
#[derive(Clone, Debug)]
pub struct Made {
    n_context: usize,
    n_dims: usize,
    n_components: usize,
    /// Internal context position -> user's context index (sorted by degree).
    context_order: Vec<usize>,
    /// Context degrees in internal order (non-decreasing).
    context_degrees: Vec<i64>,
    /// Internal data position t -> user's dimension index (the autoregressive order).
    data_order: Vec<usize>,
    /// Data degrees in internal order (increasing).
    data_degrees: Vec<i64>,
    /// Degrees of each buffer's units (sorted); buffer 0 is the data.
    buffer_degrees: Vec<Vec<i64>>,
    stages: Vec<Stage>,
    /// Rows t * 3K + (0: logits, K: means, 2K: raw scales) + k.
    heads: MaskedDense,
    scale: ScaleHead,
    /// Standardisation in internal order.
    x_mean: Vec<f64>,
    x_std: Vec<f64>,
    context_mean: Vec<f64>,
    context_std: Vec<f64>,
    /// -sum_d ln x_std_d.
    log_jacobian: f64,
    /// Per buffer: internal (degree-sorted) unit position -> the unit's index in the file.
    orders: Vec<Vec<usize>>,
}

/// Per-thread working memory for one tile of [`TILE`] samples (allocated once, reused).
#[derive(Clone, Debug)]
pub struct MadeWorkspace {
    /// Per buffer: [n_context + units][TILE], the context copied on top.
    buffers: Vec<Vec<f32>>,
    /// [D * 3K][TILE].
    heads: Vec<f32>,
    /// 4K values of one dimension of one lane: logits, means, log scales, component terms.
    mixture: Vec<f64>,
    /// [K][TILE] component terms of one dimension (log-density fast path).
    lanes: Vec<f64>,
    /// Units computed so far per stage (sampling).
    done: Vec<usize>,
}

fn format_error(message: alloc::string::String) -> Error {
    Error::Format(message)
}

/// The stable argsort of `degrees`.
fn sort_order(degrees: &[i64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..degrees.len()).collect();
    order.sort_by_key(|&i| degrees[i]);
    order
}

impl Made {
    /// Validates and compiles a model.
    ///
    /// Errors ([`Error::Format`], naming the part): D = 0 or K = 0; repeated data degrees; a
    /// context degree not below every data degree; a layer reading a buffer not yet computed;
    /// wrong lengths; a residual or affine layer whose degrees differ from its input's;
    /// non-finite weights inside the masks; a standard deviation <= 0 or non-finite.
    pub fn new(spec: MadeSpec) -> Result<Self> {
        let n_context = spec.context_degrees.len();
        let n_dims = spec.data_degrees.len();
        let k = spec.n_components;
        if n_dims == 0 || k == 0 {
            return Err(format_error(alloc::format!(
                "the model needs n_dims >= 1 and n_components >= 1, got {n_dims} and {k}"
            )));
        }
        let mut sorted = spec.data_degrees.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(format_error("degrees: data degrees must be distinct (a permutation)".into()));
        }
        if let Some(c) = spec.context_degrees.iter().position(|&c| c >= sorted[0]) {
            return Err(format_error(alloc::format!(
                "degrees: context degree {} (context {c}) is not below every data degree (lowest {})",
                spec.context_degrees[c],
                sorted[0]
            )));
        }
        let context_order = sort_order(&spec.context_degrees);
        let data_order = sort_order(&spec.data_degrees);
        let context_degrees: Vec<i64> = context_order.iter().map(|&i| spec.context_degrees[i]).collect();
        // Per buffer: the file's degrees and the sort order.
        let mut file_degrees: Vec<Vec<i64>> = vec![spec.data_degrees.clone()];
        let mut orders: Vec<Vec<usize>> = vec![data_order.clone()];
        let mut stages = Vec::with_capacity(spec.layers.len());
        for (s, layer) in spec.layers.into_iter().enumerate() {
            let name = alloc::format!("layer {s}");
            match layer {
                LayerSpec::Dense { input, weight, context_weight, bias, degrees, activation, residual } => {
                    let Some(in_degrees) = file_degrees.get(input) else {
                        return Err(format_error(alloc::format!(
                            "{name}: reads buffer {input}, not yet computed"
                        )));
                    };
                    let (n_in, n_out) = (in_degrees.len(), degrees.len());
                    if weight.len() != n_out * n_in || bias.len() != n_out {
                        return Err(format_error(alloc::format!(
                            "{name}: weight has {} values and bias {}, expected {n_out} x {n_in} and {n_out}",
                            weight.len(),
                            bias.len()
                        )));
                    }
                    if let Some(r) = residual
                        && file_degrees.get(r) != Some(&degrees)
                    {
                        return Err(format_error(alloc::format!(
                            "{name}: the residual buffer {r} must have the layer's output degrees"
                        )));
                    }
                    let out_order = sort_order(&degrees);
                    let in_order = &orders[input];
                    let uses_context = context_weight.is_some();
                    if let Some(cw) = &context_weight
                        && cw.len() != n_out * n_context
                    {
                        return Err(format_error(alloc::format!(
                            "{name}: context weight has {} values, expected {n_out} x {n_context}",
                            cw.len()
                        )));
                    }
                    let n_cols = n_in + if uses_context { n_context } else { 0 };
                    let mut w = Vec::with_capacity(n_out * n_cols);
                    for &o in &out_order {
                        if let Some(cw) = &context_weight {
                            w.extend(context_order.iter().map(|&c| cw[o * n_context + c]));
                        }
                        w.extend(in_order.iter().map(|&i| weight[o * n_in + i]));
                    }
                    let b: Vec<f32> = out_order.iter().map(|&o| bias[o]).collect();
                    let mut col_degrees = if uses_context { context_degrees.clone() } else { Vec::new() };
                    col_degrees.extend(in_order.iter().map(|&i| in_degrees[i]));
                    let out_sorted: Vec<i64> = out_order.iter().map(|&o| degrees[o]).collect();
                    if uses_context
                        && n_context > 0
                        && in_order.first().is_some_and(|&i| in_degrees[i] < context_degrees[n_context - 1])
                    {
                        return Err(format_error(alloc::format!(
                            "{name}: its input has degrees below the context degrees"
                        )));
                    }
                    let layer = MaskedDense::new(&name, w, b, &col_degrees, &out_sorted, MaskRule::Hidden)
                        .map_err(|e| format_error(e.message().into()))?;
                    stages.push(Stage::Dense { layer, input, uses_context, activation, residual });
                    file_degrees.push(degrees);
                    orders.push(out_order);
                }
                LayerSpec::Affine { input, scale, shift, activation } => {
                    let Some(in_degrees) = file_degrees.get(input).cloned() else {
                        return Err(format_error(alloc::format!(
                            "{name}: reads buffer {input}, not yet computed"
                        )));
                    };
                    let n = in_degrees.len();
                    if scale.len() != n || shift.len() != n {
                        return Err(format_error(alloc::format!("{name}: scale and shift need {n} values")));
                    }
                    if let Some(i) = scale.iter().chain(&shift).position(|v| !v.is_finite()) {
                        return Err(format_error(alloc::format!("{name}: value {i} is not finite")));
                    }
                    let order = orders[input].clone();
                    let scale = order.iter().map(|&i| scale[i]).collect();
                    let shift = order.iter().map(|&i| shift[i]).collect();
                    stages.push(Stage::Affine { input, scale, shift, activation });
                    file_degrees.push(in_degrees);
                    orders.push(order);
                }
            }
        }
        if !stages.iter().any(|s| matches!(s, Stage::Dense { .. })) {
            return Err(format_error("the model needs at least one hidden layer".into()));
        }
        let last = file_degrees.len() - 1;
        let n_hidden = file_degrees[last].len();
        let heads_spec = spec.heads;
        let mut w = Vec::with_capacity(n_dims * 3 * k * n_hidden);
        let mut b = Vec::with_capacity(n_dims * 3 * k);
        let mut head_degrees = Vec::with_capacity(n_dims * 3 * k);
        for (name, (weight, bias)) in
            [("logits", &heads_spec.logits), ("means", &heads_spec.means), ("scales", &heads_spec.scales)]
        {
            if weight.len() != n_dims * k * n_hidden || bias.len() != n_dims * k {
                return Err(format_error(alloc::format!(
                    "heads {name}: weight has {} values and bias {}, expected {} x {n_hidden} and {}",
                    weight.len(),
                    bias.len(),
                    n_dims * k,
                    n_dims * k
                )));
            }
        }
        for &d in &data_order {
            for (weight, bias) in [&heads_spec.logits, &heads_spec.means, &heads_spec.scales] {
                for c in 0..k {
                    let row = d * k + c;
                    w.extend(orders[last].iter().map(|&i| weight[row * n_hidden + i]));
                    b.push(bias[row]);
                    head_degrees.push(spec.data_degrees[d]);
                }
            }
        }
        let hidden_sorted: Vec<i64> = orders[last].iter().map(|&i| file_degrees[last][i]).collect();
        let heads = MaskedDense::new("heads", w, b, &hidden_sorted, &head_degrees, MaskRule::Output)
            .map_err(|e| format_error(e.message().into()))?;
        let st = spec.standardize;
        let pick = |values: &[f64], order: &[usize], default: f64, name: &str| -> Result<Vec<f64>> {
            if values.is_empty() {
                return Ok(vec![default; order.len()]);
            }
            if values.len() != order.len() {
                return Err(format_error(alloc::format!(
                    "standardize.{name} has {} values, expected {}",
                    values.len(),
                    order.len()
                )));
            }
            let v: Vec<f64> = order.iter().map(|&i| values[i]).collect();
            let positive = default == 1.0;
            if let Some(i) = v.iter().position(|x| !x.is_finite() || (positive && *x <= 0.0)) {
                return Err(format_error(alloc::format!(
                    "standardize.{name}[{}] is {} (must be finite{})",
                    order[i],
                    v[i],
                    if positive { " and > 0" } else { "" }
                )));
            }
            Ok(v)
        };
        let x_mean = pick(&st.x_mean, &data_order, 0.0, "x_mean")?;
        let x_std = pick(&st.x_std, &data_order, 1.0, "x_std")?;
        let context_mean = pick(&st.context_mean, &context_order, 0.0, "context_mean")?;
        let context_std = pick(&st.context_std, &context_order, 1.0, "context_std")?;
        let log_jacobian = -x_std.iter().map(|&s| ln(s)).sum::<f64>();
        let buffer_degrees: Vec<Vec<i64>> = file_degrees
            .iter()
            .zip(&orders)
            .map(|(deg, order)| order.iter().map(|&i| deg[i]).collect())
            .collect();
        let data_degrees = data_order.iter().map(|&d| spec.data_degrees[d]).collect();
        Ok(Self {
            n_context,
            n_dims,
            n_components: k,
            context_order,
            context_degrees,
            data_order,
            data_degrees,
            buffer_degrees,
            stages,
            heads,
            scale: heads_spec.scale,
            x_mean,
            x_std,
            context_mean,
            context_std,
            log_jacobian,
            orders,
        })
    }

    /// Number of context inputs C.
    pub fn n_context(&self) -> usize {
        self.n_context
    }

    /// Number of data dimensions D.
    pub fn n_dims(&self) -> usize {
        self.n_dims
    }

    /// Mixture components per dimension K.
    pub fn n_components(&self) -> usize {
        self.n_components
    }

    /// The data dimensions (user's indices) in the autoregressive order (increasing degree).
    pub fn order(&self) -> &[usize] {
        &self.data_order
    }

    /// The compiled layers in evaluation order (units sorted by degree): what a port of the
    /// kernels (the GPU path) needs besides [`heads`](Self::heads).
    pub fn stages(&self) -> impl Iterator<Item = StageView<'_>> {
        self.stages.iter().map(|stage| match stage {
            Stage::Dense { layer, input, uses_context, activation, residual } => StageView::Dense {
                layer,
                input: *input,
                uses_context: *uses_context,
                activation: *activation,
                residual: *residual,
            },
            Stage::Affine { input, scale, shift, activation } => {
                StageView::Affine { input: *input, scale, shift, activation: *activation }
            }
        })
    }

    /// The heads: rows t * 3K + (0: logits, K: means, 2K: raw scales) + k for internal
    /// dimension t (the t-th of [`order`](Self::order)), reading the last buffer's units.
    pub fn heads(&self) -> &MaskedDense {
        &self.heads
    }

    /// How the raw scale output becomes sigma.
    pub fn scale_head(&self) -> ScaleHead {
        self.scale
    }

    /// Degrees of each buffer's units, sorted (buffer 0 is the data, buffer s + 1 the output
    /// of stage s).
    pub fn buffer_degrees(&self) -> &[Vec<i64>] {
        &self.buffer_degrees
    }

    /// The context inputs (user's indices) in internal order (increasing degree).
    pub fn context_order(&self) -> &[usize] {
        &self.context_order
    }

    /// The standardisation in internal order: (x_mean, x_std) per internal dimension and
    /// (context_mean, context_std) per internal context input.
    pub fn standardization(&self) -> [&[f64]; 4] {
        [&self.x_mean, &self.x_std, &self.context_mean, &self.context_std]
    }

    /// -sum_d ln x_std_d, the log-Jacobian of the standardisation.
    pub fn log_jacobian(&self) -> f64 {
        self.log_jacobian
    }

    /// For stage `s` and each internal dimension t, the number of the stage's units whose
    /// degree is below dimension t's: those computed before t is drawn.
    pub fn units_below_dimension(&self, s: usize) -> Vec<usize> {
        self.data_degrees.iter().map(|&degree| self.units_below(s, degree)).collect()
    }

    /// Bytes of one [`workspace`](Self::workspace) (a thread's working memory, whatever the
    /// batch): 4 TILE (sum over buffers of (C + units) + 3 D K) + 8 (4 K + K TILE) + 8 stages,
    /// with TILE = 16 rows.
    pub fn workspace_bytes(&self) -> usize {
        let f32_values: usize =
            self.buffer_degrees.iter().map(|d| (self.n_context + d.len()) * TILE).sum::<usize>()
                + self.heads.n_out() * TILE;
        let f64_values = 4 * self.n_components + self.n_components * TILE;
        4 * f32_values + 8 * f64_values + core::mem::size_of::<usize>() * self.stages.len()
    }

    /// A workspace for this model.
    pub fn workspace(&self) -> MadeWorkspace {
        MadeWorkspace {
            buffers: self
                .buffer_degrees
                .iter()
                .map(|d| vec![0.0; (self.n_context + d.len()) * TILE])
                .collect(),
            heads: vec![0.0; self.heads.n_out() * TILE],
            mixture: vec![0.0; 4 * self.n_components],
            lanes: vec![0.0; self.n_components * TILE],
            done: vec![0; self.stages.len()],
        }
    }

    /// The number of rows n of an array `name` of [n][D] values.
    ///
    /// Errors: [`Error::InvalidArgument`] when its length is not a multiple of D.
    pub fn rows_of(&self, name: &str, values: &[f32]) -> Result<usize> {
        let n = values.len() / self.n_dims;
        if values.len() != n * self.n_dims {
            return Err(Error::InvalidArgument(alloc::format!(
                "{name} has {} values, not a multiple of n_dims = {}",
                values.len(),
                self.n_dims
            )));
        }
        Ok(n)
    }

    /// Checks a batch: `context` [n][C] (may be empty when C = 0) and, if given, `x` [n][D],
    /// all finite, n >= 1. `x_name` names x in messages.
    pub fn check_batch(&self, context: &[f32], x: Option<(&str, &[f32], usize)>, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::InvalidArgument("n = 0: the batch is empty".into()));
        }
        if context.len() != n * self.n_context {
            return Err(Error::InvalidArgument(alloc::format!(
                "context has {} values, expected n x n_context = {n} x {}",
                context.len(),
                self.n_context
            )));
        }
        check_finite("context", context, self.n_context)?;
        if let Some((name, values, width)) = x {
            if values.len() != n * width {
                return Err(Error::InvalidArgument(alloc::format!(
                    "{name} has {} values, expected {n} x {width}",
                    values.len()
                )));
            }
            check_finite(name, values, width)?;
        }
        Ok(())
    }

    /// Fills the context rows of every buffer for `lanes` samples starting at row `first`.
    fn load_context(&self, work: &mut MadeWorkspace, context: &[f32], first: usize, lanes: usize) {
        let c = self.n_context;
        let top = &mut work.buffers[0][..c * TILE];
        top.fill(0.0);
        for lane in 0..lanes {
            let row = &context[(first + lane) * c..][..c];
            for (j, &u) in self.context_order.iter().enumerate() {
                top[j * TILE + lane] =
                    ((f64::from(row[u]) - self.context_mean[j]) / self.context_std[j]) as f32;
            }
        }
        let (first_buffer, rest) = work.buffers.split_at_mut(1);
        for buffer in rest {
            buffer[..c * TILE].copy_from_slice(&first_buffer[0][..c * TILE]);
        }
    }

    /// Units `rows` of stage `s` (a degree-aligned range).
    fn run_stage(&self, s: usize, work: &mut MadeWorkspace, rows: core::ops::Range<usize>) {
        if rows.is_empty() {
            return;
        }
        let c = self.n_context;
        let (before, after) = work.buffers.split_at_mut(s + 1);
        let output = &mut after[0][c * TILE..];
        match &self.stages[s] {
            Stage::Dense { layer, input, uses_context, activation, residual } => {
                let source = if *uses_context { &before[*input][..] } else { &before[*input][c * TILE..] };
                layer.forward_tile(source, output, rows.clone());
                let values = &mut output[rows.start * TILE..rows.end * TILE];
                activation.apply_all(values);
                if let Some(r) = residual {
                    let skip = &before[*r][c * TILE + rows.start * TILE..c * TILE + rows.end * TILE];
                    for (v, &s) in values.iter_mut().zip(skip) {
                        *v += s;
                    }
                }
            }
            Stage::Affine { input, scale, shift, activation } => {
                let source = &before[*input][c * TILE..];
                for unit in rows {
                    let (a, b) = (scale[unit], shift[unit]);
                    for lane in 0..TILE {
                        let i = unit * TILE + lane;
                        output[i] = activation.apply(a * source[i] + b);
                    }
                }
            }
        }
    }

    /// Number of units of stage `s` whose degree is below `degree`.
    fn units_below(&self, s: usize, degree: i64) -> usize {
        self.buffer_degrees[s + 1].partition_point(|&d| d < degree)
    }

    /// The whole network on the current tile.
    fn forward_all(&self, work: &mut MadeWorkspace) {
        for s in 0..self.stages.len() {
            let n = self.buffer_degrees[s + 1].len();
            self.run_stage(s, work, 0..n);
        }
        let last = work.buffers.len() - 1;
        let c = self.n_context;
        self.heads.forward_tile(&work.buffers[last][c * TILE..], &mut work.heads, 0..self.heads.n_out());
    }

    /// The mixture of internal dimension `t` for `lane` into `work.mixture` (logits, means,
    /// log scales); false when a network output is not finite.
    #[inline]
    fn mixture_of(&self, heads: &[f32], mixture: &mut [f64], t: usize, lane: usize) -> bool {
        let k = self.n_components;
        let base = t * 3 * k;
        let mut finite = true;
        for j in 0..3 * k {
            let v = heads[(base + j) * TILE + lane];
            finite &= v.is_finite();
            mixture[j] = if j < 2 * k { f64::from(v) } else { self.scale.log_scale(v) };
        }
        finite
    }

    /// log p(x | context) of rows `first..first + lanes` (at most [`TILE`]) into
    /// `log_prob[..lanes]`, or with `per_dim` the D terms ln p(x_d | x_<d, c) - ln s_d of each
    /// row into `log_prob[..lanes * D]` (user's order); inputs already checked. Returns the
    /// first lane whose network output overflowed f32, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn log_prob_tile(
        &self,
        work: &mut MadeWorkspace,
        context: &[f32],
        x: &[f32],
        first: usize,
        lanes: usize,
        per_dim: bool,
        log_prob: &mut [f32],
    ) -> Option<usize> {
        let (c, d) = (self.n_context, self.n_dims);
        self.load_context(work, context, first, lanes);
        let data = &mut work.buffers[0][c * TILE..];
        data.fill(0.0);
        for lane in 0..lanes {
            let row = &x[(first + lane) * d..][..d];
            for (t, &u) in self.data_order.iter().enumerate() {
                data[t * TILE + lane] = ((f64::from(row[u]) - self.x_mean[t]) / self.x_std[t]) as f32;
            }
        }
        self.forward_all(work);
        let k = self.n_components;
        let mut overflow = None;
        let mut total = [self.log_jacobian; TILE];
        let mut xs = [0.0f64; TILE];
        let mut terms = [0.0f64; TILE];
        for t in 0..d {
            let user = self.data_order[t];
            for (lane, v) in xs.iter_mut().enumerate().take(lanes) {
                *v = (f64::from(x[(first + lane) * d + user]) - self.x_mean[t]) / self.x_std[t];
            }
            let fast = self.scale == ScaleHead::Exp
                && mixture_lanes(
                    &work.heads[t * 3 * k * TILE..(t + 1) * 3 * k * TILE],
                    k,
                    &xs,
                    &mut work.lanes,
                    &mut terms,
                );
            for lane in 0..lanes {
                if !fast || terms[lane].is_nan() {
                    // The general path: softplus scales, non-finite outputs, |ln sigma| >= 700.
                    if !self.mixture_of(&work.heads, &mut work.mixture, t, lane) {
                        overflow.get_or_insert(lane);
                    }
                    let (logits, rest) = work.mixture.split_at_mut(k);
                    let (means, rest) = rest.split_at_mut(k);
                    let (log_scales, scratch) = rest.split_at_mut(k);
                    terms[lane] = log_pdf_scratch(logits, means, log_scales, xs[lane], scratch);
                }
                if per_dim {
                    log_prob[lane * d + user] = clamp_to_f32(terms[lane] - ln(self.x_std[t]));
                }
                total[lane] += terms[lane];
            }
        }
        if !per_dim {
            for lane in 0..lanes {
                log_prob[lane] = clamp_to_f32(total[lane]);
            }
        }
        overflow
    }

    /// Draws rows `first..first + lanes` (at most [`TILE`]) into `x_out[..lanes * D]`
    /// (user's order), sample `first_sample + first + lane` drawing from
    /// `Stream::new(seed, that index)`. The first `n_given` dimensions of the order are taken
    /// from `given` ([n][D], user's order) instead of drawn. Inputs already checked.
    #[allow(clippy::too_many_arguments)]
    pub fn sample_tile(
        &self,
        work: &mut MadeWorkspace,
        context: &[f32],
        given: Option<(&[f32], usize)>,
        seed: u64,
        first_sample: u64,
        first: usize,
        lanes: usize,
        x_out: &mut [f32],
    ) {
        self.sample_tile_impl(work, context, given, seed, first_sample, first, lanes, x_out, false)
    }

    /// As [`sample_tile`](Self::sample_tile), re-running the whole network before each drawn
    /// dimension (D forward passes): the reference for the incremental sampler.
    #[allow(clippy::too_many_arguments)]
    pub fn sample_tile_reference(
        &self,
        work: &mut MadeWorkspace,
        context: &[f32],
        given: Option<(&[f32], usize)>,
        seed: u64,
        first_sample: u64,
        first: usize,
        lanes: usize,
        x_out: &mut [f32],
    ) {
        self.sample_tile_impl(work, context, given, seed, first_sample, first, lanes, x_out, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn sample_tile_impl(
        &self,
        work: &mut MadeWorkspace,
        context: &[f32],
        given: Option<(&[f32], usize)>,
        seed: u64,
        first_sample: u64,
        first: usize,
        lanes: usize,
        x_out: &mut [f32],
        full_passes: bool,
    ) {
        let (c, d, k) = (self.n_context, self.n_dims, self.n_components);
        self.load_context(work, context, first, lanes);
        work.buffers[0][c * TILE..].fill(0.0);
        let n_given = given.map_or(0, |(_, m)| m);
        if let Some((values, _)) = given {
            for lane in 0..lanes {
                let row = &values[(first + lane) * d..][..d];
                for t in 0..n_given {
                    let u = self.data_order[t];
                    work.buffers[0][(c + t) * TILE + lane] =
                        ((f64::from(row[u]) - self.x_mean[t]) / self.x_std[t]) as f32;
                    x_out[lane * d + u] = row[u];
                }
            }
        }
        let mut streams: [Stream; TILE] =
            core::array::from_fn(|lane| Stream::new(seed, first_sample.wrapping_add((first + lane) as u64)));
        work.done.fill(0);
        for t in n_given..d {
            let degree = self.data_degrees[t];
            if full_passes {
                self.forward_all(work);
            } else {
                for s in 0..self.stages.len() {
                    let needed = self.units_below(s, degree);
                    let done = work.done[s];
                    self.run_stage(s, work, done..needed);
                    work.done[s] = needed;
                }
                let last = work.buffers.len() - 1;
                self.heads.forward_tile(
                    &work.buffers[last][c * TILE..],
                    &mut work.heads,
                    t * 3 * k..(t + 1) * 3 * k,
                );
            }
            for (lane, stream) in streams.iter_mut().enumerate().take(lanes) {
                self.mixture_of(&work.heads, &mut work.mixture, t, lane);
                let (logits, rest) = work.mixture.split_at(k);
                let (means, rest) = rest.split_at(k);
                let log_scales = &rest[..k];
                let xs = sample_unchecked(logits, means, log_scales, stream);
                work.buffers[0][(c + t) * TILE + lane] = xs as f32;
                x_out[lane * d + self.data_order[t]] = (xs * self.x_std[t] + self.x_mean[t]) as f32;
            }
        }
    }
}

/// ln p_d(xs) of one dimension for all [`TILE`] lanes at once, sigma = exp(r) (the lanes are
/// contiguous in the head outputs `heads` [3K][TILE], so the loops vectorise): the same
/// formula as `mixture::log_pdf_scratch`, with the two log-sum-exps sharing one logarithm,
/// ln(sum_k e^(a_k - m_a) / sum_k e^(l_k - m_l)). Returns false, leaving the lanes to the
/// general path, when an output is not finite or |ln sigma| >= 700 (where e^-ln sigma could
/// overflow); a lane whose terms all overflow gets NaN, also left to the general path.
fn mixture_lanes(
    heads: &[f32],
    k: usize,
    xs: &[f64; TILE],
    scratch: &mut [f64],
    out: &mut [f64; TILE],
) -> bool {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if crate::math::simd::VectorIsa::detect() >= crate::math::simd::VectorIsa::Avx2 {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { mixture_lanes_avx2(heads, k, xs, scratch, out) };
    }
    mixture_lanes_body(heads, k, xs, scratch, out)
}

/// [`mixture_lanes_body`] compiled for AVX2 (the same IEEE operations, 4 lanes at a time;
/// Rust never contracts into FMAs, so the results equal the baseline path's).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
fn mixture_lanes_avx2(
    heads: &[f32],
    k: usize,
    xs: &[f64; TILE],
    scratch: &mut [f64],
    out: &mut [f64; TILE],
) -> bool {
    mixture_lanes_body(heads, k, xs, scratch, out)
}

#[inline(always)]
fn mixture_lanes_body(
    heads: &[f32],
    k: usize,
    xs: &[f64; TILE],
    scratch: &mut [f64],
    out: &mut [f64; TILE],
) -> bool {
    let row = |j: usize| -> &[f32; TILE] {
        heads[j * TILE..(j + 1) * TILE].try_into().unwrap_or(&[f32::NAN; TILE])
    };
    let mut max_logit = [f64::NEG_INFINITY; TILE];
    let mut max_term = [f64::NEG_INFINITY; TILE];
    let mut ok = true;
    for c in 0..k {
        let (logit, mean, raw) = (row(c), row(k + c), row(2 * k + c));
        let terms = &mut scratch[c * TILE..(c + 1) * TILE];
        for lane in 0..TILE {
            let (l, m, r) = (f64::from(logit[lane]), f64::from(mean[lane]), f64::from(raw[lane]));
            ok &= l.abs() < f64::MAX && m.abs() < f64::MAX && r.abs() < 700.0;
            let z = (xs[lane] - m) * exp_branchless(-r);
            let a = l - r - HALF_LN_2PI - 0.5 * z * z;
            terms[lane] = a;
            max_term[lane] = max_term[lane].max(a);
            max_logit[lane] = max_logit[lane].max(l);
        }
    }
    if !ok {
        return false;
    }
    let mut sum_terms = [0.0f64; TILE];
    let mut sum_logits = [0.0f64; TILE];
    for c in 0..k {
        let logit = row(c);
        let terms = &scratch[c * TILE..(c + 1) * TILE];
        for lane in 0..TILE {
            sum_terms[lane] += exp_branchless(terms[lane] - max_term[lane]);
            sum_logits[lane] += exp_branchless(f64::from(logit[lane]) - max_logit[lane]);
        }
    }
    for lane in 0..TILE {
        out[lane] = if max_term[lane] == f64::NEG_INFINITY {
            f64::NAN
        } else {
            (max_term[lane] - max_logit[lane]) + ln(sum_terms[lane] / sum_logits[lane])
        };
    }
    true
}

/// A log-density in f64 as f32, clamped to [f32::MIN, f32::MAX] (-inf and +inf included).
#[inline]
fn clamp_to_f32(value: f64) -> f32 {
    value.clamp(f64::from(f32::MIN), f64::from(f32::MAX)) as f32
}

/// Every value finite, or an error naming `name`, the row and the column.
fn check_finite(name: &str, values: &[f32], width: usize) -> Result<()> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument(alloc::format!(
            "{name}[{}][{}] is {} (must be finite)",
            i / width.max(1),
            i % width.max(1),
            values[i]
        )));
    }
    Ok(())
}

/// Batch entry points on one thread (the std crate splits batches across threads).
impl Made {
    /// log p(x | context) for a batch: `context` [n][C] (empty when C = 0), `x` [n][D],
    /// `log_prob` [n], all in the user's (unstandardised) space; the Jacobian of the
    /// standardisation is included.
    ///
    /// The result is never NaN for finite inputs: it is clamped to [f32::MIN, f32::MAX], so
    /// the most negative value returned is -3.4028235e38 (f32::MIN), reached only when the
    /// true value is below it (a point more than 2.6e19 standard deviations from every
    /// component). Above that, a point far in the tails gets its log-density computed in f64
    /// from the f32 network outputs (tested at |x| up to 1e20 on the SECRET-shape model).
    ///
    /// Errors: [`Error::InvalidArgument`] for n = 0, wrong lengths or non-finite inputs
    /// (nothing written); [`Error::OutOfDomain`] when an input is so large that the f32 network
    /// overflows (log_prob is then filled with NaN).
    pub fn log_prob(&self, context: &[f32], x: &[f32], log_prob: &mut [f32]) -> Result<()> {
        let n = log_prob.len();
        self.check_batch(context, Some(("x", x, self.n_dims)), n)?;
        let mut work = self.workspace();
        self.log_prob_rows(&mut work, context, x, 0, log_prob)
    }

    /// The D terms ln p(x_d | x_<d, context) - ln s_d of each row (their sum is
    /// [`log_prob`](Self::log_prob)): `out` [n][D], user's order. Errors as `log_prob`.
    pub fn log_prob_dims(&self, context: &[f32], x: &[f32], out: &mut [f32]) -> Result<()> {
        let n = x.len() / self.n_dims;
        if out.len() != x.len() {
            return Err(Error::InvalidArgument(alloc::format!(
                "out has {} values, expected as many as x ({})",
                out.len(),
                x.len()
            )));
        }
        self.check_batch(context, Some(("x", x, self.n_dims)), n)?;
        let mut work = self.workspace();
        self.log_prob_rows_impl(&mut work, context, x, 0, true, out)
    }

    /// log_prob for rows `first..first + out.len()` of a checked batch.
    pub fn log_prob_rows(
        &self,
        work: &mut MadeWorkspace,
        context: &[f32],
        x: &[f32],
        first: usize,
        out: &mut [f32],
    ) -> Result<()> {
        self.log_prob_rows_impl(work, context, x, first, false, out)
    }

    fn log_prob_rows_impl(
        &self,
        work: &mut MadeWorkspace,
        context: &[f32],
        x: &[f32],
        first: usize,
        per_dim: bool,
        out: &mut [f32],
    ) -> Result<()> {
        let mut overflow = None;
        let width = if per_dim { self.n_dims } else { 1 };
        for (i, chunk) in out.chunks_mut(TILE * width).enumerate() {
            let row = first + i * TILE;
            if let Some(lane) = self.log_prob_tile(work, context, x, row, chunk.len() / width, per_dim, chunk)
            {
                overflow.get_or_insert(row + lane);
            }
        }
        if let Some(row) = overflow {
            out.fill(f32::NAN);
            return Err(Error::OutOfDomain(alloc::format!(
                "x row {row}: the network's f32 outputs overflow for this input"
            )));
        }
        Ok(())
    }

    /// Draws `n` samples, sample i conditioned on context row i and drawn from
    /// `Stream::new(seed, first_sample + i)`; `x_out` [n][D] in the user's space.
    ///
    /// Errors: [`Error::InvalidArgument`] for n = 0, wrong lengths, non-finite context.
    pub fn sample(&self, context: &[f32], seed: u64, first_sample: u64, x_out: &mut [f32]) -> Result<()> {
        let n = self.rows_of("x_out", x_out)?;
        self.check_batch(context, None, n)?;
        let mut work = self.workspace();
        self.sample_rows(&mut work, context, None, seed, first_sample, 0, x_out);
        Ok(())
    }

    /// Checks a conditional-sampling request: the `given_dims` (user's indices) must be the
    /// first `given_dims.len()` dimensions of the autoregressive order, in any order.
    pub fn check_given_dims(&self, given_dims: &[usize]) -> Result<()> {
        let m = given_dims.len();
        if m > self.n_dims {
            return Err(Error::InvalidArgument(alloc::format!(
                "{m} fixed dimensions, the model has {}",
                self.n_dims
            )));
        }
        let mut leading: Vec<usize> = self.data_order[..m].to_vec();
        leading.sort_unstable();
        let mut asked = given_dims.to_vec();
        asked.sort_unstable();
        if leading != asked {
            return Err(Error::InvalidArgument(alloc::format!(
                "fixed dimensions {given_dims:?} are not the first {m} of the autoregressive order {:?}",
                &self.data_order[..m]
            )));
        }
        Ok(())
    }

    /// Conditional sampling: `x` [n][D] holds the values of `given_dims` (the first
    /// dimensions of the order, see [`check_given_dims`](Self::check_given_dims)); the other
    /// dimensions are drawn from p(x_rest | x_given, context) and written in place (the given
    /// ones are kept). Sample i draws from `Stream::new(seed, first_sample + i)`.
    ///
    /// Errors: [`Error::InvalidArgument`] for n = 0, wrong lengths, non-finite context or given
    /// values, dimensions that are not leading.
    pub fn sample_given(
        &self,
        context: &[f32],
        given_dims: &[usize],
        seed: u64,
        first_sample: u64,
        x: &mut [f32],
    ) -> Result<()> {
        self.check_given_dims(given_dims)?;
        let n = self.rows_of("x", x)?;
        self.check_batch(context, None, n)?;
        for (i, row) in x.chunks(self.n_dims).enumerate() {
            if let Some(&d) = given_dims.iter().find(|&&d| !row[d].is_finite()) {
                return Err(Error::InvalidArgument(alloc::format!(
                    "x[{i}][{d}] is {} (must be finite)",
                    row[d]
                )));
            }
        }
        let given = x.to_vec();
        let mut work = self.workspace();
        self.sample_rows(&mut work, context, Some((&given, given_dims.len())), seed, first_sample, 0, x);
        Ok(())
    }

    /// Samples for rows `first..first + out.len() / D` of a checked batch.
    #[allow(clippy::too_many_arguments)]
    pub fn sample_rows(
        &self,
        work: &mut MadeWorkspace,
        context: &[f32],
        given: Option<(&[f32], usize)>,
        seed: u64,
        first_sample: u64,
        first: usize,
        out: &mut [f32],
    ) {
        let d = self.n_dims;
        for (i, chunk) in out.chunks_mut(TILE * d).enumerate() {
            self.sample_tile(
                work,
                context,
                given,
                seed,
                first_sample,
                first + i * TILE,
                chunk.len() / d,
                chunk,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vectorised_mixture_paths_agree_bit_for_bit() {
        let k = 3;
        let heads: Vec<f32> = (0..3 * k * TILE).map(|i| ((i * 37 % 29) as f32 - 14.0) / 9.0).collect();
        let xs: [f64; TILE] = core::array::from_fn(|l| l as f64 * 0.3 - 2.0);
        let (mut scratch_a, mut scratch_b) = (vec![0.0; k * TILE], vec![0.0; k * TILE]);
        let (mut a, mut b) = ([0.0; TILE], [0.0; TILE]);
        assert!(mixture_lanes(&heads, k, &xs, &mut scratch_a, &mut a));
        assert!(mixture_lanes_body(&heads, k, &xs, &mut scratch_b, &mut b));
        for lane in 0..TILE {
            assert_eq!(a[lane].to_bits(), b[lane].to_bits());
            let logits: Vec<f64> = (0..k).map(|c| f64::from(heads[c * TILE + lane])).collect();
            let means: Vec<f64> = (0..k).map(|c| f64::from(heads[(k + c) * TILE + lane])).collect();
            let scales: Vec<f64> = (0..k).map(|c| f64::from(heads[(2 * k + c) * TILE + lane])).collect();
            let general = crate::nn::mixture::log_pdf_unchecked(&logits, &means, &scales, xs[lane]);
            assert!((a[lane] - general).abs() < 1e-13 * general.abs().max(1.0), "{} {general}", a[lane]);
        }
    }
}
