//! Loading a [`Network`] from a safetensors buffer in the `crkernels.network.v1` format.
//!
//! # Format
//!
//! A safetensors file whose metadata (all strings) holds `format` = `crkernels.network.v1`,
//! `layout` = `pytorch` (default) or `keras`, and `network`, a JSON string:
//!
//! ```text
//! {"inputs": [{"name": "traces", "shape": [2, 256]}, {"name": "grid", "shape": [4, 8, 8]},
//!             {"name": "features", "shape": [3]}],
//!  "layers": [ ... ]}
//! ```
//!
//! Per-sample shapes are channels-first (the batch dimension is implicit). Each layer is an
//! object with `type` and an optional `input`: an earlier layer's index (integer) or an input
//! name (string); by default the previous layer's output (for layer 0: the first input). Layer
//! i's tensors are `layers.{i}.weight` and `layers.{i}.bias` (batch norm: `layers.{i}.weight`
//! = gamma, `layers.{i}.bias` = beta, `layers.{i}.running_mean`, `layers.{i}.running_var`);
//! other tensors (PyTorch's `num_batches_tracked`) are ignored. Weights may be F32, F64, F16
//! or BF16 and must be finite. Types and keys (defaults in parentheses):
//!
//! - `conv1d`: `out_channels`, `kernel`, `stride` (1), `padding` (`"valid"`; `"same"`,
//!   `"causal"`, or [before, after]), `dilation` (1), `groups` (1), `bias` (true); input [C, L];
//! - `conv2d`: `out_channels`, `kernel` [kh, kw], `stride` ([1, 1]), `padding` (`"valid"`;
//!   `"same"`, or [[top, bottom], [left, right]]), `dilation` ([1, 1]), `groups` (1), `bias`
//!   (true); input [C, H, W]; a pair may also be given as one integer;
//! - `dense`: `out_features`, `bias` (true); input flat [k];
//! - `batchnorm`: `eps` (1e-5); y = (x - mean) / sqrt(var + eps) gamma + beta per channel
//!   (first axis). Folded into the preceding conv or dense layer when that layer's output
//!   feeds only the batch norm, else applied as a per-channel affine map;
//! - `relu`, `leaky_relu` (`alpha` 0.01), `elu` (`alpha` 1.0), `sigmoid`, `tanh`, `softmax`
//!   (flat input);
//! - `maxpool1d`, `avgpool1d`: `kernel`, `stride` (= kernel), `padding` ([0, 0]),
//!   `count_include_pad` (false); `maxpool2d`, `avgpool2d`: the same with pairs and
//!   [[t, b], [l, r]]; `global_avgpool` ([C, ...] -> [C]);
//! - `flatten`: channels-first order, or channels-last (NHWC) when layout = `keras`;
//! - `concat`: `inputs` (a list of layer indices and input names, flat), joined in order.
//!
//! 'same' padding is TensorFlow's rule ([`same_padding`]), 'causal' is d (k - 1) before.
//! Weight shapes: `pytorch` conv2d [C_out, C_in/G, kh, kw], conv1d [C_out, C_in/G, k], dense
//! [out, in]; `keras` conv2d [kh, kw, C_in/G, C_out] (HWIO), conv1d [k, C_in/G, C_out], dense
//! [in, out], converted at load time. The network output is the last layer's output,
//! flattened.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use safetensors::tensor::SafeTensors;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::math::sqrt;
use crate::nn::activation::ActivationFn;
use crate::nn::conv::{Conv2d, ConvParams, causal_padding, product, same_padding};
use crate::nn::linear::Dense;
use crate::nn::load::floats;
use crate::nn::network::{MAX_WORKSPACE_BYTES, Network, NetworkInput, Op, Step};
use crate::nn::pool::{Pool2d, PoolKind};

/// The format string of a network file.
pub const NETWORK_FORMAT: &str = "crkernels.network.v1";

/// Where a layer reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Input(usize),
    Layer(usize),
}

/// What the loader knows of each layer's output.
struct LayerInfo {
    buffer: usize,
    shape: Vec<usize>,
    /// The step that computes it (None for identities).
    step: Option<usize>,
    kind: String,
}

struct Builder<'a> {
    file: &'a SafeTensors<'a>,
    keras: bool,
    inputs: Vec<NetworkInput>,
    buffer_sizes: Vec<usize>,
    steps: Vec<Step>,
    layers: Vec<LayerInfo>,
    /// How many layers read each layer's output.
    consumers: Vec<usize>,
}

impl Network {
    /// Loads a network from the bytes of a safetensors file in the `crkernels.network.v1`
    /// format (see the module documentation).
    ///
    /// Errors: [`Error::Format`] for a corrupt buffer, a wrong format string, bad JSON, unknown
    /// layer types, missing tensors, wrong tensor shapes or non-finite weights, and shapes that
    /// do not fit the declared inputs; messages name the layer (index and type) and tensor.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Network> {
        let file =
            SafeTensors::deserialize(bytes).map_err(|e| fmt(format!("not a safetensors file: {e}")))?;
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| fmt(format!("not a safetensors file: {e}")))?;
        let metadata = header.metadata().clone().unwrap_or_default();
        match metadata.get("format").map(String::as_str) {
            Some(NETWORK_FORMAT) => {}
            Some(other) => {
                return Err(fmt(format!("metadata format is {other:?}, expected {NETWORK_FORMAT:?}")));
            }
            None => return Err(fmt(format!("metadata format is missing, expected {NETWORK_FORMAT:?}"))),
        }
        let keras = match metadata.get("layout").map(String::as_str) {
            None | Some("pytorch") => false,
            Some("keras") => true,
            Some(other) => {
                return Err(fmt(format!("metadata layout is {other:?}, expected pytorch or keras")));
            }
        };
        let text = metadata.get("network").ok_or_else(|| fmt("metadata network is missing".into()))?;
        let spec: Value = serde_json::from_str(text)
            .map_err(|e| fmt(format!("metadata network is not valid JSON: {e}")))?;
        let inputs = parse_inputs(&spec)?;
        let layers = spec
            .get("layers")
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty())
            .ok_or_else(|| fmt("network: \"layers\" must be a non-empty list".into()))?;
        let buffer_sizes = inputs.iter().map(NetworkInput::size).collect();
        let mut builder = Builder {
            file: &file,
            keras,
            inputs,
            buffer_sizes,
            steps: Vec::new(),
            layers: Vec::new(),
            consumers: vec![0; layers.len()],
        };
        let sources: Vec<Vec<Source>> =
            layers.iter().enumerate().map(|(i, layer)| builder.sources(i, layer)).collect::<Result<_>>()?;
        for list in &sources {
            for source in list {
                if let Source::Layer(j) = source {
                    builder.consumers[*j] += 1;
                }
            }
        }
        for (i, (layer, sources)) in layers.iter().zip(&sources).enumerate() {
            builder.layer(i, layer, sources)?;
        }
        let output = builder.layers.last().map_or(0, |l| l.buffer);
        let mut network = Network {
            inputs: builder.inputs,
            buffer_sizes: builder.buffer_sizes,
            steps: builder.steps,
            output,
            chunk: 1,
        };
        network.chunk = network
            .chunk_within(MAX_WORKSPACE_BYTES)
            .map_err(|e| fmt(format!("network: {}", e.message())))?;
        Ok(network)
    }
}

fn fmt(message: String) -> Error {
    Error::Format(message)
}

fn parse_inputs(spec: &Value) -> Result<Vec<NetworkInput>> {
    let list = spec
        .get("inputs")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| fmt("network: \"inputs\" must be a non-empty list".into()))?;
    let mut inputs: Vec<NetworkInput> = Vec::new();
    for (k, entry) in list.iter().enumerate() {
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| fmt(format!("network input {k}: \"name\" must be a string")))?;
        let shape = entry
            .get("shape")
            .and_then(Value::as_array)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| fmt(format!("network input '{name}': \"shape\" must be a non-empty list")))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()).filter(|&d| d > 0))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| fmt(format!("network input '{name}': shape entries must be integers >= 1")))?;
        product(name, &shape).map_err(|e| fmt(format!("network input '{name}': {}", e.message())))?;
        if inputs.iter().any(|i| i.name == name) {
            return Err(fmt(format!("network input '{name}' is declared twice")));
        }
        inputs.push(NetworkInput { name: name.to_string(), shape });
    }
    Ok(inputs)
}

impl Builder<'_> {
    /// The sources of layer i (`input`, or `inputs` of a concat).
    fn sources(&self, i: usize, layer: &Value) -> Result<Vec<Source>> {
        let kind = layer.get("type").and_then(Value::as_str).unwrap_or("?");
        let here = |m: String| fmt(format!("layer {i} ({kind}): {m}"));
        let resolve = |v: &Value| -> Result<Source> {
            if let Some(j) = v.as_u64() {
                let j = usize::try_from(j).unwrap_or(usize::MAX);
                if j >= i {
                    return Err(here(format!("input {j} is not an earlier layer")));
                }
                Ok(Source::Layer(j))
            } else if let Some(name) = v.as_str() {
                self.inputs
                    .iter()
                    .position(|x| x.name == name)
                    .map(Source::Input)
                    .ok_or_else(|| here(format!("no network input named '{name}'")))
            } else {
                Err(here(format!("input {v} must be a layer index or an input name")))
            }
        };
        if kind == "concat" {
            let list = layer
                .get("inputs")
                .and_then(Value::as_array)
                .filter(|l| !l.is_empty())
                .ok_or_else(|| here("\"inputs\" must be a non-empty list".into()))?;
            return list.iter().map(resolve).collect();
        }
        match layer.get("input") {
            Some(v) => Ok(vec![resolve(v)?]),
            None if i == 0 => Ok(vec![Source::Input(0)]),
            None => Ok(vec![Source::Layer(i - 1)]),
        }
    }

    fn shape_of(&self, source: Source) -> &[usize] {
        match source {
            Source::Input(k) => &self.inputs[k].shape,
            Source::Layer(j) => &self.layers[j].shape,
        }
    }

    fn buffer_of(&self, source: Source) -> usize {
        match source {
            Source::Input(k) => k,
            Source::Layer(j) => self.layers[j].buffer,
        }
    }

    /// Adds a step writing a new buffer of `shape`.
    fn push(
        &mut self,
        kind: &str,
        op: Op,
        sources: &[Source],
        shape: Vec<usize>,
        label: String,
    ) -> Result<()> {
        let size = product(&label, &shape).map_err(|e| fmt(e.message().to_string()))?;
        self.buffer_sizes.push(size);
        let buffer = self.buffer_sizes.len() - 1;
        let inputs = sources.iter().map(|&s| self.buffer_of(s)).collect();
        self.steps.push(Step { op, inputs, output: buffer, label });
        self.layers.push(LayerInfo {
            buffer,
            shape,
            step: Some(self.steps.len() - 1),
            kind: kind.to_string(),
        });
        Ok(())
    }

    /// Layer i's output is its input's buffer (an identity).
    fn alias(&mut self, kind: &str, source: Source, shape: Vec<usize>) {
        let buffer = self.buffer_of(source);
        self.layers.push(LayerInfo { buffer, shape, step: None, kind: kind.to_string() });
    }

    fn layer(&mut self, i: usize, layer: &Value, sources: &[Source]) -> Result<()> {
        let kind = layer
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| fmt(format!("layer {i}: \"type\" must be a string")))?
            .to_string();
        let label = format!("layer {i} ({kind})");
        let here = |m: &str| fmt(format!("{label}: {m}"));
        let param = Params { layer, label: &label };
        let source = sources[0];
        let shape = self.shape_of(source).to_vec();
        let tensor = |name: &str, expected: &[usize]| {
            floats(self.file, &format!("layers.{i}.{name}"), expected).map_err(|e| here(e.message()))
        };
        match kind.as_str() {
            "conv1d" | "conv2d" => {
                let two_d = kind == "conv2d";
                let dims = if two_d { 3 } else { 2 };
                if shape.len() != dims {
                    return Err(here(&format!(
                        "input shape {shape:?} must have {dims} dimensions (channels first)"
                    )));
                }
                let c_in = shape[0];
                let input_hw = if two_d { [shape[1], shape[2]] } else { [1, shape[1]] };
                let c_out = param.count("out_channels", None)?;
                let groups = param.count("groups", Some(1))?;
                let (kernel, stride, dilation) = if two_d {
                    (
                        param.pair("kernel", None)?,
                        param.pair("stride", Some(1))?,
                        param.pair("dilation", Some(1))?,
                    )
                } else {
                    let one = |key, default| param.count(key, default).map(|v| [1, v]);
                    (one("kernel", None)?, one("stride", Some(1))?, one("dilation", Some(1))?)
                };
                let padding = param.padding(two_d, input_hw, kernel, stride, dilation)?;
                if groups == 0 || !c_in.is_multiple_of(groups) || !c_out.is_multiple_of(groups) {
                    return Err(here(&format!(
                        "input channels ({c_in}) and out_channels ({c_out}) must be divisible by groups ({groups})"
                    )));
                }
                let c_in_group = c_in / groups;
                let [kh, kw] = kernel;
                let weight = match (two_d, self.keras) {
                    (true, false) => tensor("weight", &[c_out, c_in_group, kh, kw])?,
                    (false, false) => tensor("weight", &[c_out, c_in_group, kw])?,
                    (true, true) => {
                        from_hwio(&tensor("weight", &[kh, kw, c_in_group, c_out])?, kernel, c_in_group)
                    }
                    (false, true) => {
                        from_hwio(&tensor("weight", &[kw, c_in_group, c_out])?, kernel, c_in_group)
                    }
                };
                let bias = if param.flag("bias", true)? { Some(tensor("bias", &[c_out])?) } else { None };
                let params = ConvParams { stride, padding, dilation, groups };
                let conv = Conv2d::new(c_in, input_hw, c_out, kernel, params, &weight, bias.as_deref())
                    .map_err(|e| here(e.message()))?;
                let [h_out, w_out] = conv.output_hw();
                let out_shape = if two_d { vec![c_out, h_out, w_out] } else { vec![c_out, w_out] };
                self.push(&kind, Op::Conv(conv), sources, out_shape, label.clone())
            }
            "dense" => {
                if shape.len() != 1 {
                    return Err(here(&format!("input shape {shape:?} must be flat (add a flatten layer)")));
                }
                let n_in = shape[0];
                let n_out = param.count("out_features", None)?;
                let weight = if self.keras {
                    transpose_last(&tensor("weight", &[n_in, n_out])?, n_in, n_out)
                } else {
                    tensor("weight", &[n_out, n_in])?
                };
                let bias = if param.flag("bias", true)? { Some(tensor("bias", &[n_out])?) } else { None };
                let dense =
                    Dense::new(n_in, n_out, &weight, bias.as_deref()).map_err(|e| here(e.message()))?;
                self.push(&kind, Op::Dense(dense), sources, vec![n_out], label.clone())
            }
            "batchnorm" => {
                let channels = shape[0];
                let eps = param.number("eps", Some(1e-5))?;
                if eps.is_nan() || eps < 0.0 {
                    return Err(here("eps must be >= 0"));
                }
                let gamma = tensor("weight", &[channels])?;
                let beta = tensor("bias", &[channels])?;
                let mean = tensor("running_mean", &[channels])?;
                let var = tensor("running_var", &[channels])?;
                let mut scale = vec![0.0f32; channels];
                let mut shift = vec![0.0f32; channels];
                for c in 0..channels {
                    let denominator = f64::from(var[c]) + eps;
                    if denominator.is_nan() || denominator <= 0.0 {
                        return Err(here(&format!("running_var[{c}] + eps = {denominator} must be > 0")));
                    }
                    let s = f64::from(gamma[c]) / sqrt(denominator);
                    scale[c] = s as f32;
                    shift[c] = (f64::from(beta[c]) - f64::from(mean[c]) * s) as f32;
                }
                if let Source::Layer(j) = source
                    && self.consumers[j] == 1
                    && let Some(step) = self.layers[j].step
                {
                    let folded = match &mut self.steps[step].op {
                        Op::Conv(conv) => {
                            conv.fold_affine(&scale, &shift);
                            true
                        }
                        Op::Dense(dense) => {
                            dense.fold_affine(&scale, &shift);
                            true
                        }
                        _ => false,
                    };
                    if folded {
                        self.alias(&kind, source, shape);
                        return Ok(());
                    }
                }
                let plane = shape[1..].iter().product();
                self.push(&kind, Op::Affine { scale, shift, plane }, sources, shape, label.clone())
            }
            "relu" | "leaky_relu" | "elu" | "sigmoid" | "tanh" => {
                let f = match kind.as_str() {
                    "relu" => ActivationFn::Relu,
                    "leaky_relu" => {
                        ActivationFn::LeakyRelu { alpha: param.number("alpha", Some(0.01))? as f32 }
                    }
                    "elu" => ActivationFn::Elu { alpha: param.number("alpha", Some(1.0))? as f32 },
                    "sigmoid" => ActivationFn::Sigmoid,
                    _ => ActivationFn::Tanh,
                };
                let f = f.validate().map_err(|e| here(e.message()))?;
                self.push(&kind, Op::Activation(f), sources, shape, label.clone())
            }
            "softmax" => {
                if shape.len() != 1 {
                    return Err(here(&format!("input shape {shape:?} must be flat")));
                }
                self.push(&kind, Op::Softmax, sources, shape, label.clone())
            }
            "maxpool1d" | "avgpool1d" | "maxpool2d" | "avgpool2d" => {
                let two_d = kind.ends_with("2d");
                let dims = if two_d { 3 } else { 2 };
                if shape.len() != dims {
                    return Err(here(&format!(
                        "input shape {shape:?} must have {dims} dimensions (channels first)"
                    )));
                }
                let input_hw = if two_d { [shape[1], shape[2]] } else { [1, shape[1]] };
                let (kernel, stride, padding) = if two_d {
                    let kernel = param.pair("kernel", None)?;
                    let stride = param.pair_or("stride", kernel)?;
                    (kernel, stride, param.explicit_padding_2d("padding")?)
                } else {
                    let kernel = param.count("kernel", None)?;
                    let stride = param.count("stride", Some(kernel))?;
                    ([1, kernel], [1, stride], [[0, 0], param.explicit_padding_1d("padding")?])
                };
                let pool_kind = if kind.starts_with("max") {
                    PoolKind::Max
                } else {
                    PoolKind::Average { count_include_pad: param.flag("count_include_pad", false)? }
                };
                let pool = Pool2d::new(pool_kind, shape[0], input_hw, kernel, stride, padding)
                    .map_err(|e| here(e.message()))?;
                let [h_out, w_out] = pool.output_hw();
                let out_shape = if two_d { vec![shape[0], h_out, w_out] } else { vec![shape[0], w_out] };
                self.push(&kind, Op::Pool(pool), sources, out_shape, label.clone())
            }
            "global_avgpool" => {
                if shape.len() < 2 {
                    return Err(here(&format!("input shape {shape:?} must be [C, ...] with a spatial axis")));
                }
                let plane = shape[1..].iter().product();
                self.push(&kind, Op::GlobalAvgPool { plane }, sources, vec![shape[0]], label.clone())
            }
            "flatten" => {
                let size = shape.iter().product();
                if self.keras && shape.len() > 1 {
                    let op = Op::ChannelsLast { channels: shape[0], plane: size / shape[0] };
                    self.push(&kind, op, sources, vec![size], label.clone())
                } else {
                    self.alias(&kind, source, vec![size]);
                    Ok(())
                }
            }
            "concat" => {
                let mut total = 0usize;
                for &s in sources {
                    let part = self.shape_of(s);
                    if part.len() != 1 {
                        let what = match s {
                            Source::Input(k) => format!("input '{}'", self.inputs[k].name),
                            Source::Layer(j) => format!("layer {j} ({})", self.layers[j].kind),
                        };
                        return Err(here(&format!("{what} has shape {part:?}; concat needs flat inputs")));
                    }
                    total = total.checked_add(part[0]).ok_or_else(|| here("size overflows"))?;
                }
                self.push(&kind, Op::Concat, sources, vec![total], label.clone())
            }
            other => Err(here(&format!("unknown layer type {other:?}"))),
        }
    }
}

/// [rows][cols] -> [cols][rows] (Keras' input-major kernels to output-major).
fn transpose_last(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// Keras' conv kernel [kh][kw][C_in/G][C_out] (HWIO; conv1d: kh = 1) to
/// [C_out][C_in/G][kh][kw].
fn from_hwio(hwio: &[f32], [kh, kw]: [usize; 2], c_in_group: usize) -> Vec<f32> {
    let c_out = hwio.len() / (kh * kw * c_in_group);
    let mut out = vec![0.0f32; hwio.len()];
    for i in 0..kh {
        for j in 0..kw {
            for c in 0..c_in_group {
                for o in 0..c_out {
                    out[((o * c_in_group + c) * kh + i) * kw + j] =
                        hwio[((i * kw + j) * c_in_group + c) * c_out + o];
                }
            }
        }
    }
    out
}

/// Typed access to a layer's JSON keys, with messages naming the layer.
struct Params<'a> {
    layer: &'a Value,
    label: &'a str,
}

impl Params<'_> {
    fn error(&self, key: &str, what: &str) -> Error {
        fmt(format!("{}: \"{key}\" must be {what}", self.label))
    }

    fn count(&self, key: &str, default: Option<usize>) -> Result<usize> {
        match (self.layer.get(key), default) {
            (None, Some(d)) => Ok(d),
            (Some(v), _) => v
                .as_u64()
                .and_then(|v| usize::try_from(v).ok())
                .filter(|&v| v > 0)
                .ok_or_else(|| self.error(key, "an integer >= 1")),
            (None, None) => Err(self.error(key, "given")),
        }
    }

    fn non_negative(v: &Value) -> Option<usize> {
        v.as_u64().and_then(|v| usize::try_from(v).ok())
    }

    fn pair(&self, key: &str, default: Option<usize>) -> Result<[usize; 2]> {
        match self.layer.get(key) {
            None => default.map(|d| [d, d]).ok_or_else(|| self.error(key, "given")),
            Some(v) => self.pair_value(key, v, 1),
        }
    }

    fn pair_or(&self, key: &str, default: [usize; 2]) -> Result<[usize; 2]> {
        match self.layer.get(key) {
            None => Ok(default),
            Some(v) => self.pair_value(key, v, 1),
        }
    }

    fn pair_value(&self, key: &str, v: &Value, min: usize) -> Result<[usize; 2]> {
        let parsed = match v.as_array() {
            Some(a) if a.len() == 2 => {
                Self::non_negative(&a[0]).zip(Self::non_negative(&a[1])).map(|(x, y)| [x, y])
            }
            Some(_) => None,
            None => Self::non_negative(v).map(|x| [x, x]),
        };
        parsed.filter(|p| p.iter().all(|&x| x >= min)).ok_or_else(|| {
            self.error(key, if min == 0 { "an integer >= 0 or a pair" } else { "an integer >= 1 or a pair" })
        })
    }

    fn number(&self, key: &str, default: Option<f64>) -> Result<f64> {
        match (self.layer.get(key), default) {
            (None, Some(d)) => Ok(d),
            (Some(v), _) => {
                v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| self.error(key, "a finite number"))
            }
            (None, None) => Err(self.error(key, "given")),
        }
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool> {
        match self.layer.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.error(key, "true or false")),
        }
    }

    fn explicit_padding_1d(&self, key: &str) -> Result<[usize; 2]> {
        match self.layer.get(key) {
            None => Ok([0, 0]),
            Some(v) => self.pair_value(key, v, 0),
        }
    }

    fn explicit_padding_2d(&self, key: &str) -> Result<[[usize; 2]; 2]> {
        match self.layer.get(key) {
            None => Ok([[0, 0], [0, 0]]),
            Some(v) => match v.as_array() {
                Some(a) if a.len() == 2 && a.iter().all(Value::is_array) => {
                    Ok([self.pair_value(key, &a[0], 0)?, self.pair_value(key, &a[1], 0)?])
                }
                _ => {
                    let [h, w] = self.pair_value(key, v, 0)?;
                    Ok([[h, h], [w, w]])
                }
            },
        }
    }

    /// Convolution padding: "valid", "same", "causal" (conv1d), or explicit.
    fn padding(
        &self,
        two_d: bool,
        input_hw: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
    ) -> Result<[[usize; 2]; 2]> {
        let value = self.layer.get("padding");
        let wrap = |e: Error| fmt(format!("{}: {}", self.label, e.message()));
        match value.and_then(Value::as_str) {
            None if value.is_none() => Ok([[0, 0], [0, 0]]),
            Some("valid") => Ok([[0, 0], [0, 0]]),
            Some("same") => {
                let w = same_padding(input_hw[1], kernel[1], stride[1], dilation[1]).map_err(wrap)?;
                let h = if two_d {
                    same_padding(input_hw[0], kernel[0], stride[0], dilation[0]).map_err(wrap)?
                } else {
                    [0, 0]
                };
                Ok([h, w])
            }
            Some("causal") if !two_d => Ok([[0, 0], causal_padding(kernel[1], dilation[1]).map_err(wrap)?]),
            Some(other) => Err(self.error(
                "padding",
                &format!(
                    "\"valid\", \"same\"{} or explicit, got {other:?}",
                    if two_d { "" } else { ", \"causal\"" }
                ),
            )),
            None if two_d => self.explicit_padding_2d("padding"),
            None => Ok([[0, 0], self.explicit_padding_1d("padding")?]),
        }
    }
}
