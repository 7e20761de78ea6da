//! Loading a MADE-MoG from a safetensors buffer, in two layouts.
//!
//! # Plain layout `crkernels.made.v1` (SECRET eqs. 3.6 to 3.9)
//!
//! Metadata `format` = `crkernels.made.v1`, `n_context`, `n_dims`, `n_components`,
//! `activation` (`sigmoid`, `tanh`, `relu`, `leaky_relu` (slope 0.01 for x <= 0) or `elu`
//! (alpha 1), see [`Activation`]); any further metadata entries (a trainer's settings) are
//! ignored. Tensors (row-major, Linear weights [out, in]):
//! `degrees.input` (I32 or I64) [C + D], context first; `hidden.{i}.weight` [H_i, in_i],
//! `hidden.{i}.bias` [H_i], `hidden.{i}.degrees` [H_i] for i = 0, 1, ...;
//! `output.{logits,means,log_scales}.{weight,bias}` [D K, H_last], [D K] with row d K + k;
//! optional `standardize.x_mean`, `standardize.x_std` [D], `standardize.context_mean`,
//! `standardize.context_std` [C]. Degrees: context all 0 or 1..C, data the next D integers in
//! any order, hidden in [lowest context degree (1 without context), highest data degree - 1]
//! to connect inputs to outputs; hidden degrees 0 (the unit reads no input) up to the highest
//! data degree (it feeds no output) are accepted too, as the masks keep them harmless: a
//! one-dimensional model without context (a single Gaussian mixture) has only such units.
//!
//! # nflows layout
//!
//! The `state_dict` of nflows' `MixtureOfGaussiansMADE` (nflows/nn/nde/made.py), alone or
//! inside `MADEMoG` (`_made.`), a `Flow` (`_distribution._made.`) or sbi's density estimator
//! (`net._distribution._made.`): any prefix before `initial_layer.weight` is accepted. A PyTorch
//! user exports it with
//!
//! ```text
//! from safetensors.torch import save_file
//! save_file(model.state_dict(), "model.safetensors")
//! ```
//!
//! The forward pass ported (eval mode): t = M_0 x + b_0 + C_0 c; for each residual block,
//! u = act(bn_0(t)); u = M_1 u + b_1 + C_j c; u = act(bn_1(u)); t = t + M_2 u + b_2; then
//! out = M_f t + b_f with rows d 3K + 3k + j (j = 0 logit, 1 mean, 2 raw scale) and
//! sigma = softplus(raw) + epsilon. Masks come from the stored `degrees` (input degrees 1..D)
//! and must equal the stored `mask` buffers; batch norm in eval mode is
//! (u - running_mean) / sqrt(running_var + 1e-3) weight + bias. Feedforward blocks
//! (`blocks.{j}.linear.*`: u = act(M bn(t) + b)) are read too. The state_dict does not record
//! the activation (F.relu unless changed), epsilon (1e-2) or sbi's dummy input: metadata
//! `activation`, `epsilon`, `sbi_dummy_input` = `true` or [`LoadOptions`] give them.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use half::{bf16, f16};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};
use crate::math::sqrt;
use crate::nn::made::{Activation, HeadsSpec, LayerSpec, Made, MadeSpec, ScaleHead, Standardize};

/// The format string of the plain layout.
pub const PLAIN_FORMAT: &str = "crkernels.made.v1";

/// Settings the nflows state_dict does not record (None: from the file's metadata, else the
/// nflows defaults).
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// The activation of the residual blocks (default ReLU).
    pub activation: Option<Activation>,
    /// The epsilon of sigma = softplus(raw) + epsilon (default 1e-2).
    pub epsilon: Option<f64>,
    /// sbi's MADEMoGWrapper: the first of the network's features is a zero dummy input,
    /// not data (default false).
    pub sbi_dummy_input: Option<bool>,
}

/// The string metadata of a safetensors header.
struct Metadata {
    entries: Vec<(String, String)>,
}

impl Metadata {
    fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn format_error(message: String) -> Error {
    Error::Format(message)
}

impl Made {
    /// Loads a model from a safetensors buffer in either layout (plain when the metadata's
    /// `format` is `crkernels.made.v1`, nflows when the tensors have nflows' names).
    ///
    /// Errors: [`Error::Format`] with a message naming the tensor or metadata key for a corrupt
    /// or truncated buffer, a wrong format string, missing tensors, wrong shapes or dtypes,
    /// inconsistent degrees or masks, non-finite weights.
    pub fn from_safetensors(bytes: &[u8], options: &LoadOptions) -> Result<Made> {
        Made::new(spec_from_safetensors(bytes, options)?)
    }
}

/// The [`MadeSpec`] of a safetensors buffer in either layout, before [`Made::new`] compiles it
/// (its layers are the layout a [`MadeGrad`](crate::nn::made::MadeGrad) follows).
///
/// Errors: as [`Made::from_safetensors`].
pub fn spec_from_safetensors(bytes: &[u8], options: &LoadOptions) -> Result<MadeSpec> {
    {
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| format_error(format!("not a safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| format_error(format!("not a safetensors file: {e}")))?;
        let metadata = Metadata {
            entries: header.metadata().iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        let spec = match metadata.get("format") {
            Some(PLAIN_FORMAT) => plain_spec(&file, &metadata)?,
            Some(other) => {
                return Err(format_error(format!(
                    "metadata format is {other:?}, expected {PLAIN_FORMAT:?} (or no format for an nflows state_dict)"
                )));
            }
            None => nflows_spec(&file, &metadata, options)?,
        };
        Ok(spec)
    }
}

/// A float tensor of `shape` (F32, F64, F16 or BF16) as f32 values, all finite.
pub(crate) fn floats(file: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let view = tensor(file, name)?;
    check_shape(&view, name, shape)?;
    let data = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        Dtype::F16 => data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => data.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        other => {
            return Err(format_error(format!("{name}: dtype {other:?}, expected F32, F64, F16 or BF16")));
        }
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(format_error(format!("{name}: value {i} is {} (must be finite)", values[i])));
    }
    Ok(values)
}

/// A float tensor as f64 values.
fn floats_f64(file: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f64>> {
    Ok(floats(file, name, shape)?.into_iter().map(f64::from).collect())
}

/// An integer tensor of `shape` (I32 or I64).
fn integers(file: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<i64>> {
    let view = tensor(file, name)?;
    check_shape(&view, name, shape)?;
    let data = view.data();
    match view.dtype() {
        Dtype::I32 => Ok(data
            .chunks_exact(4)
            .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect()),
        Dtype::I64 => Ok(data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect()),
        other => Err(format_error(format!("{name}: dtype {other:?}, expected I32 or I64"))),
    }
}

pub(crate) fn tensor<'a>(file: &SafeTensors<'a>, name: &str) -> Result<TensorView<'a>> {
    file.tensor(name).map_err(|_| format_error(format!("missing tensor {name}")))
}

fn has(file: &SafeTensors<'_>, name: &str) -> bool {
    file.tensor(name).is_ok()
}

fn check_shape(view: &TensorView<'_>, name: &str, shape: &[usize]) -> Result<()> {
    if view.shape() != shape {
        return Err(format_error(format!("{name}: shape {:?}, expected {shape:?}", view.shape())));
    }
    Ok(())
}

/// The shape of a tensor whose sizes the loader builds on, or an error naming it. A zero
/// dimension (an empty layer, or a header declaring [0, 2^40] in no bytes) is refused before
/// any of its sizes is used to allocate.
fn shape_of(file: &SafeTensors<'_>, name: &str) -> Result<Vec<usize>> {
    let shape = tensor(file, name)?.shape().to_vec();
    if shape.contains(&0) {
        return Err(format_error(format!("{name}: shape {shape:?} has a zero dimension (an empty layer)")));
    }
    Ok(shape)
}

/// A metadata value parsed as a count.
fn count(metadata: &Metadata, key: &str) -> Result<usize> {
    let value = metadata.get(key).ok_or_else(|| format_error(format!("metadata {key} is missing")))?;
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|&n| n < 1 << 24)
        .ok_or_else(|| format_error(format!("metadata {key} = {value:?} is not a count")))
}

fn plain_spec(file: &SafeTensors<'_>, metadata: &Metadata) -> Result<MadeSpec> {
    let c = count(metadata, "n_context")?;
    let d = count(metadata, "n_dims")?;
    let k = count(metadata, "n_components")?;
    if d == 0 || k == 0 {
        return Err(format_error("metadata n_dims and n_components must be >= 1".into()));
    }
    let activation_name =
        metadata.get("activation").ok_or_else(|| format_error("metadata activation is missing".into()))?;
    let activation = match Activation::from_name(activation_name) {
        Some(Activation::Identity) | None => {
            return Err(format_error(format!(
                "metadata activation = {activation_name:?}, expected sigmoid, tanh, relu, leaky_relu or elu"
            )));
        }
        Some(a) => a,
    };
    let degrees = integers(file, "degrees.input", &[c + d])?;
    let (context_degrees, data_degrees) = degrees.split_at(c);
    let lowest_data = *data_degrees.iter().min().unwrap_or(&0);
    let highest_data = *data_degrees.iter().max().unwrap_or(&0);
    let mut sorted = data_degrees.to_vec();
    sorted.sort_unstable();
    if sorted.iter().enumerate().any(|(i, &g)| g != lowest_data + i as i64) {
        return Err(format_error(
            "degrees.input: data degrees must be D consecutive integers in some order".into(),
        ));
    }
    let context_ok = context_degrees.iter().all(|&g| g == 0)
        || context_degrees.iter().enumerate().all(|(i, &g)| g == i as i64 + 1)
        || {
            let mut s = context_degrees.to_vec();
            s.sort_unstable();
            s.iter().enumerate().all(|(i, &g)| g == i as i64 + 1)
        };
    if !context_ok {
        return Err(format_error("degrees.input: context degrees must be all 0 or 1..C".into()));
    }
    let top_context = context_degrees.iter().copied().max().unwrap_or(0);
    if lowest_data != top_context + 1 {
        return Err(format_error(format!(
            "degrees.input: data degrees must start just above the context degrees (at {}), they start at {lowest_data}",
            top_context + 1
        )));
    }
    // Hidden degrees: [lowest context degree (1 without context), highest data degree - 1]
    // connects a unit to inputs and outputs. Degrees down to 0 (a unit that reads no input) and
    // up to the highest data degree (a unit that feeds no output) are harmless, since the
    // masks follow from the degrees; they are accepted, so that D = 1 without context (an
    // empty connecting range) loads. Anything else is a corrupt file.
    let lowest_hidden = 0;
    let highest_hidden = highest_data;
    let mut layers = Vec::new();
    let mut n_in = d;
    let mut i = 0;
    while has(file, &format!("hidden.{i}.weight")) {
        let degrees_name = format!("hidden.{i}.degrees");
        let h = *shape_of(file, &degrees_name)?.first().unwrap_or(&0);
        let hidden_degrees = integers(file, &degrees_name, &[h])?;
        if let Some(j) = hidden_degrees.iter().position(|&g| g < lowest_hidden || g > highest_hidden) {
            return Err(format_error(format!(
                "{degrees_name}: degree {} of unit {j} is outside [{lowest_hidden}, {highest_hidden}] (0, highest data degree)",
                hidden_degrees[j]
            )));
        }
        let columns = if i == 0 { c + d } else { n_in };
        let weight = floats(file, &format!("hidden.{i}.weight"), &[h, columns])?;
        let bias = floats(file, &format!("hidden.{i}.bias"), &[h])?;
        let (weight, context_weight) = if i == 0 && c > 0 {
            let mut data_part = Vec::with_capacity(h * d);
            let mut context_part = Vec::with_capacity(h * c);
            for row in weight.chunks_exact(c + d) {
                context_part.extend_from_slice(&row[..c]);
                data_part.extend_from_slice(&row[c..]);
            }
            (data_part, Some(context_part))
        } else {
            (weight, None)
        };
        layers.push(LayerSpec::Dense {
            input: i,
            weight,
            context_weight,
            bias,
            degrees: hidden_degrees,
            activation,
            residual: None,
        });
        n_in = h;
        i += 1;
    }
    if layers.is_empty() {
        return Err(format_error("missing tensor hidden.0.weight (the model needs a hidden layer)".into()));
    }
    let head = |name: &str| -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((
            floats(file, &format!("output.{name}.weight"), &[d * k, n_in])?,
            floats(file, &format!("output.{name}.bias"), &[d * k])?,
        ))
    };
    let heads = HeadsSpec {
        logits: head("logits")?,
        means: head("means")?,
        scales: head("log_scales")?,
        scale: ScaleHead::Exp,
    };
    let optional = |name: &str, n: usize| -> Result<Vec<f64>> {
        if has(file, name) { floats_f64(file, name, &[n]) } else { Ok(Vec::new()) }
    };
    let standardize = Standardize {
        x_mean: optional("standardize.x_mean", d)?,
        x_std: optional("standardize.x_std", d)?,
        context_mean: optional("standardize.context_mean", c)?,
        context_std: optional("standardize.context_std", c)?,
    };
    Ok(MadeSpec {
        context_degrees: context_degrees.to_vec(),
        data_degrees: data_degrees.to_vec(),
        n_components: k,
        layers,
        heads,
        standardize,
    })
}

/// Reads a masked linear layer of nflows: weight [out][in] with the stored mask checked
/// against the degrees (`strict`: out > in, else out >= in) and applied.
fn nflows_masked(
    file: &SafeTensors<'_>,
    name: &str,
    in_degrees: &[i64],
    strict: bool,
) -> Result<(Vec<f32>, Vec<f32>, Vec<i64>)> {
    let shape = shape_of(file, &format!("{name}.weight"))?;
    let n_out = *shape.first().unwrap_or(&0);
    let n_in = in_degrees.len();
    let mut weight = floats(file, &format!("{name}.weight"), &[n_out, n_in])?;
    let bias = floats(file, &format!("{name}.bias"), &[n_out])?;
    let degrees = integers(file, &format!("{name}.degrees"), &[n_out])?;
    let mask = floats(file, &format!("{name}.mask"), &[n_out, n_in])?;
    for o in 0..n_out {
        for i in 0..n_in {
            let connected = if strict { degrees[o] > in_degrees[i] } else { degrees[o] >= in_degrees[i] };
            let stored = mask[o * n_in + i];
            if stored != if connected { 1.0 } else { 0.0 } {
                return Err(format_error(format!(
                    "{name}.mask[{o}][{i}] = {stored} disagrees with the degrees ({} -> {}): the mask would break the autoregressive property",
                    in_degrees[i], degrees[o]
                )));
            }
            if !connected {
                weight[o * n_in + i] = 0.0;
            }
        }
    }
    Ok((weight, bias, degrees))
}

/// Per-unit (scale, shift) of a BatchNorm1d in eval mode (eps 1e-3, nflows):
/// y = (u - mean) / sqrt(var + eps) * weight + bias.
fn batch_norm(file: &SafeTensors<'_>, name: &str, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let weight = floats_f64(file, &format!("{name}.weight"), &[n])?;
    let bias = floats_f64(file, &format!("{name}.bias"), &[n])?;
    let mean = floats_f64(file, &format!("{name}.running_mean"), &[n])?;
    let var = floats_f64(file, &format!("{name}.running_var"), &[n])?;
    if let Some(i) = var.iter().position(|&v| v < 0.0) {
        return Err(format_error(format!("{name}.running_var[{i}] is negative")));
    }
    let scale: Vec<f64> = (0..n).map(|i| weight[i] / sqrt(var[i] + 1e-3)).collect();
    let shift = (0..n).map(|i| bias[i] - mean[i] * scale[i]).collect();
    Ok((scale, shift))
}

fn nflows_spec(file: &SafeTensors<'_>, metadata: &Metadata, options: &LoadOptions) -> Result<MadeSpec> {
    let names = file.names();
    let mut prefixes = names.iter().filter_map(|n| n.strip_suffix("initial_layer.weight"));
    let Some(prefix) = prefixes.next() else {
        return Err(format_error(format!(
            "metadata format is missing and there is no tensor initial_layer.weight: neither {PLAIN_FORMAT} nor an nflows MADE"
        )));
    };
    if prefixes.next().is_some() {
        return Err(format_error(
            "several tensors end in initial_layer.weight: more than one MADE in the file".into(),
        ));
    }
    let prefix = prefix.to_string();
    let key = |k: &str| format!("{prefix}{k}");
    let activation = match options.activation {
        Some(a) => a,
        None => match metadata.get("activation") {
            Some(name) => Activation::from_name(name)
                .ok_or_else(|| format_error(format!("metadata activation = {name:?} is unknown")))?,
            None => Activation::Relu,
        },
    };
    let epsilon = match options.epsilon {
        Some(e) => e,
        None => match metadata.get("epsilon") {
            Some(v) => v
                .trim()
                .parse::<f64>()
                .map_err(|_| format_error(format!("metadata epsilon = {v:?} is not a number")))?,
            None => 1e-2,
        },
    };
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(format_error(format!("epsilon must be finite and > 0, got {epsilon}")));
    }
    let dummy = match options.sbi_dummy_input {
        Some(b) => b,
        None => match metadata.get("sbi_dummy_input") {
            Some("true") => true,
            Some("false") | None => false,
            Some(v) => {
                return Err(format_error(format!(
                    "metadata sbi_dummy_input = {v:?}, expected true or false"
                )));
            }
        },
    };
    let shape = shape_of(file, &key("initial_layer.weight"))?;
    let features = *shape.get(1).unwrap_or(&0);
    let skip = usize::from(dummy);
    if features <= skip {
        return Err(format_error(format!("{}: no data features", key("initial_layer.weight"))));
    }
    let input_degrees: Vec<i64> = (1..=features as i64).collect();
    let n_context = if has(file, &key("context_layer.weight")) {
        *shape_of(file, &key("context_layer.weight"))?.get(1).unwrap_or(&0)
    } else {
        0
    };
    // Drops the dummy input's column (its value is always 0).
    let drop_dummy = |weight: Vec<f32>, n_out: usize| -> Vec<f32> {
        if skip == 0 {
            return weight;
        }
        weight.chunks_exact(features).take(n_out).flat_map(|row| row[skip..].iter().copied()).collect()
    };
    let context = |name: &str, n_out: usize| -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        if n_context == 0 {
            return Ok(None);
        }
        Ok(Some((
            floats(file, &key(&format!("{name}.weight")), &[n_out, n_context])?,
            floats(file, &key(&format!("{name}.bias")), &[n_out])?,
        )))
    };
    let (w0, mut b0, hidden_degrees) = nflows_masked(file, &key("initial_layer"), &input_degrees, false)?;
    let h = hidden_degrees.len();
    let w0 = drop_dummy(w0, h);
    let c0 = context("context_layer", h)?;
    if let Some((_, cb)) = &c0 {
        for (b, &extra) in b0.iter_mut().zip(cb) {
            *b += extra;
        }
    }
    let mut layers = alloc::vec![LayerSpec::Dense {
        input: 0,
        weight: w0,
        context_weight: c0.map(|(w, _)| w),
        bias: b0,
        degrees: hidden_degrees.clone(),
        activation: Activation::Identity,
        residual: None,
    }];
    let mut trunk = 1; // the buffer holding t
    let mut trunk_degrees = hidden_degrees;
    let mut j = 0;
    loop {
        let block = |k: &str| key(&format!("blocks.{j}.{k}"));
        let residual = has(file, &block("linear_layers.0.weight"));
        let feedforward = has(file, &block("linear.weight"));
        if !residual && !feedforward {
            break;
        }
        let n = trunk_degrees.len();
        let bn_name = if residual { "batch_norm_layers.0" } else { "batch_norm" };
        let (scale, shift) = if has(file, &block(&format!("{bn_name}.running_mean"))) {
            batch_norm(file, &block(bn_name), n)?
        } else {
            (alloc::vec![1.0; n], alloc::vec![0.0; n])
        };
        layers.push(LayerSpec::Affine {
            input: trunk,
            scale: scale.iter().map(|&v| v as f32).collect(),
            shift: shift.iter().map(|&v| v as f32).collect(),
            activation: if residual { activation } else { Activation::Identity },
        });
        let normalised = layers.len();
        if feedforward {
            let (w, b, degrees) = nflows_masked(file, &block("linear"), &trunk_degrees, false)?;
            layers.push(LayerSpec::Dense {
                input: normalised,
                weight: w,
                context_weight: None,
                bias: b,
                degrees: degrees.clone(),
                activation,
                residual: None,
            });
            trunk = layers.len();
            trunk_degrees = degrees;
            j += 1;
            continue;
        }
        let (w1, b1, d1) = nflows_masked(file, &block("linear_layers.0"), &trunk_degrees, false)?;
        let n1 = d1.len();
        let c1 = context(&format!("blocks.{j}.context_layer"), n1)?;
        let (scale1, shift1) = if has(file, &block("batch_norm_layers.1.running_mean")) {
            batch_norm(file, &block("batch_norm_layers.1"), n1)?
        } else {
            (alloc::vec![1.0; n1], alloc::vec![0.0; n1])
        };
        // bn_1 folded into the rows: s (W u + b + C c + e) + t.
        let fold = |w: &[f32], width: usize| -> Vec<f32> {
            w.chunks_exact(width.max(1))
                .zip(&scale1)
                .flat_map(|(row, &s)| row.iter().map(move |&v| (f64::from(v) * s) as f32))
                .collect()
        };
        let bias1: Vec<f32> = (0..n1)
            .map(|o| {
                let extra = c1.as_ref().map_or(0.0, |(_, cb)| f64::from(cb[o]));
                ((f64::from(b1[o]) + extra) * scale1[o] + shift1[o]) as f32
            })
            .collect();
        layers.push(LayerSpec::Dense {
            input: normalised,
            weight: fold(&w1, n),
            context_weight: c1.as_ref().map(|(w, _)| fold(w, n_context)),
            bias: bias1,
            degrees: d1.clone(),
            activation,
            residual: None,
        });
        let inner = layers.len();
        let (w2, b2, d2) = nflows_masked(file, &block("linear_layers.1"), &d1, false)?;
        if d2 != trunk_degrees {
            return Err(format_error(format!(
                "{}: the residual block's output degrees differ from its input degrees",
                block("linear_layers.1.degrees")
            )));
        }
        layers.push(LayerSpec::Dense {
            input: inner,
            weight: w2,
            context_weight: None,
            bias: b2,
            degrees: d2,
            activation: Activation::Identity,
            residual: Some(trunk),
        });
        trunk = layers.len();
        j += 1;
    }
    let final_name = key("final_layer");
    let (wf, bf, final_degrees) = nflows_masked(file, &final_name, &trunk_degrees, true)?;
    let rows = final_degrees.len();
    if rows == 0 || rows % (3 * features) != 0 {
        return Err(format_error(format!(
            "{final_name}.weight: {rows} rows is not a multiple of 3 x {features} features"
        )));
    }
    let k = rows / (3 * features);
    if let Some(r) = (0..rows).find(|&r| final_degrees[r] != (r / (3 * k)) as i64 + 1) {
        return Err(format_error(format!(
            "{final_name}.degrees[{r}] = {}, expected {} (each feature's degree repeated 3K times)",
            final_degrees[r],
            r / (3 * k) + 1
        )));
    }
    let n_hidden = trunk_degrees.len();
    let mut heads: [(Vec<f32>, Vec<f32>); 3] = Default::default();
    for feature in skip..features {
        for component in 0..k {
            for (part, (w, b)) in heads.iter_mut().enumerate() {
                let row = feature * 3 * k + 3 * component + part;
                w.extend_from_slice(&wf[row * n_hidden..(row + 1) * n_hidden]);
                b.push(bf[row]);
            }
        }
    }
    let [logits, means, scales] = heads;
    Ok(MadeSpec {
        context_degrees: alloc::vec![0; n_context],
        data_degrees: input_degrees[skip..].to_vec(),
        n_components: k,
        layers,
        heads: HeadsSpec { logits, means, scales, scale: ScaleHead::SoftplusPlus { epsilon } },
        standardize: Standardize::default(),
    })
}
