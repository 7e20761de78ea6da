//! Writing a MADE-MoG as safetensors in the plain `crkernels.made.v1` layout, the layout
//! [`crate::nn::load`] documents and [`Made::from_safetensors`] reads (so a trained model can be
//! stored, shipped and loaded from every binding).
//!
//! # What is written
//!
//! Metadata `format` = `crkernels.made.v1`, `n_context`, `n_dims`, `n_components`,
//! `activation` ([`Activation::name`]) and the caller's free-form entries (a trainer's settings,
//! for example); tensors `degrees.input` [C + D] and `hidden.{i}.degrees` [H_i] as I64,
//! `hidden.{i}.weight` [H_i, in_i] (hidden.0 with the C context columns first),
//! `hidden.{i}.bias`, `output.{logits,means,log_scales}.{weight,bias}` and, when not the
//! identity, `standardize.{x,context}_{mean,std}`, all F32 (little-endian).
//!
//! The plain layout holds one kind of network: dense layers in a chain (layer i reads layer
//! i - 1), one activation for all of them (not the identity), the context read by the first
//! layer only (and by it whenever C > 0), no residual connections, no affine (batch-norm)
//! layers, sigma = exp(r). Other models (nflows') give [`Error::InvalidArgument`].
//!
//! The standardisation is stored as F32, as the loader reads it (through f32 whatever the
//! stored dtype): a model loaded from a file saves and reloads bit for bit; a spec whose means
//! or standard deviations are not f32 values is rounded to them.
//!
//! # The file format (<https://github.com/huggingface/safetensors>, written by hand)
//!
//! 8 bytes: the header length N (u64, little-endian); N bytes of JSON, padded with spaces to a
//! multiple of 8, mapping each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}`
//! (byte offsets into the data) and `__metadata__` to the string entries; then the data. The
//! `safetensors` crate's `serialize` takes its metadata as a `HashMap` whose type changes with
//! that crate's `std` feature (std's or hashbrown's) and writes the entries in hash order; this
//! writer gives the same file for the same model every time (keys sorted, the I64 tensors
//! first so that every tensor starts on an 8-byte boundary).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::nn::load::{LoadOptions, PLAIN_FORMAT, spec_from_safetensors};
use crate::nn::made::{Activation, LayerSpec, Made, MadeSpec, ScaleHead};

/// Metadata keys the writer sets itself (refused among the caller's entries).
pub const RESERVED_KEYS: [&str; 5] = ["format", "n_context", "n_dims", "n_components", "activation"];

/// The error for a spec the plain layout cannot hold.
fn not_plain(why: &str) -> Error {
    Error::InvalidArgument(format!("the model cannot be stored in the plain {PLAIN_FORMAT} layout: {why}"))
}

/// One tensor to write: name, I64 (true) or F32, shape, little-endian bytes.
struct Tensor {
    name: String,
    int: bool,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn f32_tensor(name: String, shape: Vec<usize>, values: impl Iterator<Item = f32>) -> Tensor {
    Tensor { name, int: false, shape, bytes: values.flat_map(f32::to_le_bytes).collect() }
}

fn i64_tensor(name: String, values: &[i64]) -> Tensor {
    Tensor {
        name,
        int: true,
        shape: alloc::vec![values.len()],
        bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// Checks the lengths of `values` against `expected`, naming the tensor.
fn check_len(name: &str, len: usize, expected: usize) -> Result<()> {
    if len != expected {
        return Err(Error::InvalidArgument(format!("{name}: {len} values, expected {expected}")));
    }
    Ok(())
}

/// The spec as a safetensors buffer in the plain layout (see the module documentation).
///
/// Errors: [`Error::InvalidArgument`] when the plain layout cannot hold the spec (the message
/// says why: an nflows-style layer, residual, context in a later layer, softplus scales, mixed
/// or identity activations, degrees outside the layout's rules) or when lengths disagree.
pub fn spec_to_safetensors(spec: &MadeSpec) -> Result<Vec<u8>> {
    spec_to_safetensors_with_metadata(spec, &[])
}

/// [`spec_to_safetensors`] with further string metadata entries (key, value), for example a
/// trainer's settings; the loader ignores them.
///
/// Errors: as [`spec_to_safetensors`], and [`Error::InvalidArgument`] for a key of
/// [`RESERVED_KEYS`] or a key given twice.
pub fn spec_to_safetensors_with_metadata(spec: &MadeSpec, extra: &[(String, String)]) -> Result<Vec<u8>> {
    let (c, d, k) = (spec.context_degrees.len(), spec.data_degrees.len(), spec.n_components);
    if d == 0 || k == 0 {
        return Err(Error::InvalidArgument(format!(
            "the model needs n_dims >= 1 and n_components >= 1, got {d} and {k}"
        )));
    }
    if spec.heads.scale != ScaleHead::Exp {
        return Err(not_plain("its scale head is sigma = softplus(r) + epsilon (nflows), not exp(r)"));
    }
    let mut tensors = Vec::new();
    let mut degrees_input = spec.context_degrees.clone();
    degrees_input.extend_from_slice(&spec.data_degrees);
    tensors.push(i64_tensor("degrees.input".into(), &degrees_input));
    let mut activation: Option<Activation> = None;
    let mut n_in = d;
    for (i, layer) in spec.layers.iter().enumerate() {
        let LayerSpec::Dense { input, weight, context_weight, bias, degrees, activation: act, residual } =
            layer
        else {
            return Err(not_plain(&format!("layer {i} is an affine (batch-norm) layer")));
        };
        if *input != i {
            return Err(not_plain(&format!(
                "layer {i} reads buffer {input}, not the previous layer's output"
            )));
        }
        if residual.is_some() {
            return Err(not_plain(&format!("layer {i} has a residual connection")));
        }
        if *act == Activation::Identity {
            return Err(not_plain(&format!("layer {i} has no activation (identity)")));
        }
        if activation.is_some_and(|a| a != *act) {
            return Err(not_plain(&format!(
                "layer {i} uses {} and an earlier layer {} (one activation for all layers)",
                act.name(),
                activation.map_or("", Activation::name)
            )));
        }
        activation = Some(*act);
        match (i, context_weight) {
            (0, None) if c > 0 => return Err(not_plain("the first layer does not read the context")),
            (1.., Some(_)) => return Err(not_plain(&format!("layer {i} reads the context"))),
            _ => {}
        }
        let h = degrees.len();
        check_len(&format!("layer {i} weight"), weight.len(), h * n_in)?;
        check_len(&format!("layer {i} bias"), bias.len(), h)?;
        let prefix = format!("hidden.{i}");
        match context_weight {
            Some(cw) if c > 0 => {
                check_len(&format!("layer {i} context weight"), cw.len(), h * c)?;
                let rows = cw.chunks_exact(c).zip(weight.chunks_exact(n_in));
                let values = rows.flat_map(|(cr, wr)| cr.iter().chain(wr).copied());
                tensors.push(f32_tensor(format!("{prefix}.weight"), alloc::vec![h, c + n_in], values));
            }
            _ => {
                tensors.push(f32_tensor(
                    format!("{prefix}.weight"),
                    alloc::vec![h, n_in],
                    weight.iter().copied(),
                ));
            }
        }
        tensors.push(f32_tensor(format!("{prefix}.bias"), alloc::vec![h], bias.iter().copied()));
        tensors.push(i64_tensor(format!("{prefix}.degrees"), degrees));
        n_in = h;
    }
    let Some(activation) = activation else {
        return Err(not_plain("the model has no hidden layer"));
    };
    for (name, (weight, bias)) in
        [("logits", &spec.heads.logits), ("means", &spec.heads.means), ("log_scales", &spec.heads.scales)]
    {
        check_len(&format!("output.{name}.weight"), weight.len(), d * k * n_in)?;
        check_len(&format!("output.{name}.bias"), bias.len(), d * k)?;
        tensors.push(f32_tensor(
            format!("output.{name}.weight"),
            alloc::vec![d * k, n_in],
            weight.iter().copied(),
        ));
        tensors.push(f32_tensor(format!("output.{name}.bias"), alloc::vec![d * k], bias.iter().copied()));
    }
    let st = &spec.standardize;
    for (name, values, n) in [
        ("x_mean", &st.x_mean, d),
        ("x_std", &st.x_std, d),
        ("context_mean", &st.context_mean, c),
        ("context_std", &st.context_std, c),
    ] {
        if values.is_empty() {
            continue;
        }
        check_len(&format!("standardize.{name}"), values.len(), n)?;
        tensors.push(f32_tensor(
            format!("standardize.{name}"),
            alloc::vec![n],
            values.iter().map(|&v| v as f32),
        ));
    }

    let mut metadata = Map::new();
    for (key, value) in extra {
        if RESERVED_KEYS.contains(&key.as_str()) {
            return Err(Error::InvalidArgument(format!("metadata key {key:?} is set by the writer")));
        }
        if metadata.insert(key.clone(), Value::String(value.clone())).is_some() {
            return Err(Error::InvalidArgument(format!("metadata key {key:?} is given twice")));
        }
    }
    for (key, value) in [
        ("format", PLAIN_FORMAT.to_string()),
        ("n_context", c.to_string()),
        ("n_dims", d.to_string()),
        ("n_components", k.to_string()),
        ("activation", activation.name().to_string()),
    ] {
        metadata.insert(key.into(), Value::String(value));
    }
    let bytes = serialize(tensors, metadata)?;
    // What is written must load: the loader checks the degrees against the layout's rules.
    spec_from_safetensors(&bytes, &LoadOptions::default()).map_err(|e| not_plain(e.message()))?;
    Ok(bytes)
}

/// A safetensors buffer of F32 tensors (name, shape, values) and string metadata, for state
/// other than a model (a trainer's checkpoint). The same bytes for the same input.
///
/// Errors: [`Error::InvalidArgument`] when a tensor's values do not fill its shape.
pub fn f32_tensors_to_safetensors(
    tensors: &[(&str, &[usize], &[f32])],
    metadata: &[(String, String)],
) -> Result<Vec<u8>> {
    let mut list = Vec::with_capacity(tensors.len());
    for &(name, shape, values) in tensors {
        check_len(name, values.len(), shape.iter().product())?;
        list.push(f32_tensor(name.to_string(), shape.to_vec(), values.iter().copied()));
    }
    let mut map = Map::new();
    for (key, value) in metadata {
        map.insert(key.clone(), Value::String(value.clone()));
    }
    serialize(list, map)
}

/// The F32 tensors (name, values) and string metadata of a safetensors buffer, as
/// [`f32_tensors_to_safetensors`] writes them (tensors of other types are left out: the
/// caller checks the metadata and the tensors it needs).
///
/// Errors: [`Error::Format`] for a buffer that is not safetensors.
#[allow(clippy::type_complexity)]
pub fn f32_tensors_from_safetensors(
    bytes: &[u8],
) -> Result<(Vec<(String, Vec<f32>)>, Vec<(String, String)>)> {
    let corrupt = |e: &dyn core::fmt::Display| Error::Format(format!("not a safetensors buffer: {e}"));
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| corrupt(&e))?;
    let file = safetensors::SafeTensors::deserialize(bytes).map_err(|e| corrupt(&e))?;
    let mut tensors = Vec::new();
    for (name, view) in file.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            continue;
        }
        let values =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        tensors.push((name, values));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut metadata: Vec<(String, String)> = header
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    metadata.sort();
    Ok((tensors, metadata))
}

/// The safetensors bytes of `tensors` (I64 ones first, then by name) with `metadata`.
fn serialize(mut tensors: Vec<Tensor>, metadata: Map<String, Value>) -> Result<Vec<u8>> {
    tensors.sort_by(|a, b| b.int.cmp(&a.int).then_with(|| a.name.cmp(&b.name)));
    let mut header = Map::new();
    header.insert("__metadata__".into(), Value::Object(metadata));
    let mut offset = 0usize;
    for t in &tensors {
        let mut info = Map::new();
        info.insert("dtype".into(), Value::String(if t.int { "I64" } else { "F32" }.into()));
        info.insert("shape".into(), Value::Array(t.shape.iter().map(|&n| Value::from(n)).collect()));
        info.insert(
            "data_offsets".into(),
            Value::Array(alloc::vec![Value::from(offset), Value::from(offset + t.bytes.len())]),
        );
        offset += t.bytes.len();
        header.insert(t.name.clone(), Value::Object(info));
    }
    let mut json = serde_json::to_string(&Value::Object(header))
        .map_err(|e| Error::InvalidArgument(format!("cannot write the safetensors header: {e}")))?
        .into_bytes();
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for t in &tensors {
        out.extend_from_slice(&t.bytes);
    }
    Ok(out)
}

impl Made {
    /// The model as a safetensors buffer in the plain `crkernels.made.v1` layout
    /// ([`Made::to_spec`] then [`spec_to_safetensors`]); [`Made::from_safetensors`] of it gives
    /// the same model, bit for bit.
    ///
    /// Errors: [`Error::InvalidArgument`] when the plain layout cannot hold the model (an
    /// nflows model: residual blocks, batch norm, softplus scales).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        spec_to_safetensors(&self.to_spec()?)
    }

    /// [`Made::to_safetensors`] with further metadata entries (see
    /// [`spec_to_safetensors_with_metadata`]).
    pub fn to_safetensors_with_metadata(&self, extra: &[(String, String)]) -> Result<Vec<u8>> {
        spec_to_safetensors_with_metadata(&self.to_spec()?, extra)
    }
}
