//! Helpers for the MADE tests: reading the reference files with the `safetensors` crate (not
//! the library's loader), an independent float64 forward pass of the plain layout, and a
//! minimal safetensors writer.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use safetensors::tensor::Dtype;

/// tests/data/made of the source tree, or relative to the working directory when the test
/// binary runs on another machine (from the repository root there, as the GPU tests do).
pub fn data_dir() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/made");
    if built.exists() { built } else { PathBuf::from("tests/data/made") }
}

/// A tensor widened to f64, with its shape.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

/// Every tensor of a file (floats and integers as f64) and its metadata.
pub fn read_all(path: &Path) -> (HashMap<String, Tensor>, HashMap<String, String>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap_or_default().into_iter().collect();
    let mut tensors = HashMap::new();
    for (name, view) in file.tensors() {
        let d = view.data();
        let values: Vec<f64> = match view.dtype() {
            Dtype::F64 => d.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect(),
            Dtype::F32 => {
                d.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect()
            }
            Dtype::F16 => d.chunks_exact(2).map(|b| half_to_f64(u16::from_le_bytes([b[0], b[1]]))).collect(),
            Dtype::BF16 => d
                .chunks_exact(2)
                .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16) as f64)
                .collect(),
            Dtype::I64 => {
                d.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64).collect()
            }
            Dtype::I32 => {
                d.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap()) as f64).collect()
            }
            other => panic!("{name}: dtype {other:?}"),
        };
        tensors.insert(name, Tensor { shape: view.shape().to_vec(), values });
    }
    (tensors, meta)
}

/// IEEE binary16 to f64, written out (sign, exponent, mantissa).
fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits >> 15 == 1 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f64::from(bits & 0x3ff);
    match exponent {
        0 => sign * mantissa * 2f64.powi(-24),
        31 => {
            if mantissa == 0.0 {
                sign * f64::INFINITY
            } else {
                f64::NAN
            }
        }
        e => sign * (1.0 + mantissa / 1024.0) * 2f64.powi(e - 15),
    }
}

pub fn as_f32(t: &Tensor) -> Vec<f32> {
    t.values.iter().map(|&v| v as f32).collect()
}

/// A reference case: name, model path, expected tensors, expected metadata.
pub type Case = (String, PathBuf, HashMap<String, Tensor>, HashMap<String, String>);

/// The reference cases in tests/data/made/, sorted by name.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(data_dir()) else { return out };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".expected.safetensors").map(str::to_string))
        .collect();
    names.sort();
    for name in names {
        let (t, m) = read_all(&data_dir().join(format!("{name}.expected.safetensors")));
        out.push((name.clone(), data_dir().join(format!("{name}.safetensors")), t, m));
    }
    out
}

/// Weight [out][in], bias, degrees and fan-in of a hidden layer.
type HiddenLayer = (Vec<f64>, Vec<f64>, Vec<i64>, usize);

/// An independent float64 evaluation of a plain-layout model: per data dimension (user's
/// order) the mixture (log pi, mu, sigma) for one standardised input, masks from the degrees
/// by explicit comparison.
pub struct PlainReference {
    pub c: usize,
    pub d: usize,
    pub k: usize,
    activation: String,
    degrees: Vec<i64>,
    hidden: Vec<HiddenLayer>,
    heads: Vec<(Vec<f64>, Vec<f64>)>,
    pub x_mean: Vec<f64>,
    pub x_std: Vec<f64>,
    pub c_mean: Vec<f64>,
    pub c_std: Vec<f64>,
}

impl PlainReference {
    pub fn load(path: &Path) -> Self {
        let (t, m) = read_all(path);
        let c: usize = m["n_context"].parse().unwrap();
        let d: usize = m["n_dims"].parse().unwrap();
        let k: usize = m["n_components"].parse().unwrap();
        let degrees: Vec<i64> = t["degrees.input"].values.iter().map(|&v| v as i64).collect();
        let mut hidden = Vec::new();
        let mut i = 0;
        while let Some(w) = t.get(&format!("hidden.{i}.weight")) {
            let deg = t[&format!("hidden.{i}.degrees")].values.iter().map(|&v| v as i64).collect();
            hidden.push((w.values.clone(), t[&format!("hidden.{i}.bias")].values.clone(), deg, w.shape[1]));
            i += 1;
        }
        let heads = ["logits", "means", "log_scales"]
            .iter()
            .map(|h| {
                (
                    t[&format!("output.{h}.weight")].values.clone(),
                    t[&format!("output.{h}.bias")].values.clone(),
                )
            })
            .collect();
        let get =
            |name: &str, n: usize, default: f64| t.get(name).map_or(vec![default; n], |v| v.values.clone());
        Self {
            c,
            d,
            k,
            activation: m["activation"].clone(),
            degrees,
            hidden,
            heads,
            x_mean: get("standardize.x_mean", d, 0.0),
            x_std: get("standardize.x_std", d, 1.0),
            c_mean: get("standardize.context_mean", c, 0.0),
            c_std: get("standardize.context_std", c, 1.0),
        }
    }

    fn act(&self, z: f64) -> f64 {
        match self.activation.as_str() {
            "sigmoid" => 1.0 / (1.0 + (-z).exp()),
            "tanh" => z.tanh(),
            _ => z.max(0.0),
        }
    }

    /// Mixture parameters [D][K] of (log pi, mu, sigma) for context and x in the user's space.
    pub fn mixtures(&self, context: &[f64], x: &[f64]) -> Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> {
        let mut v: Vec<f64> = (0..self.c)
            .map(|j| (context[j] - self.c_mean[j]) / self.c_std[j])
            .chain((0..self.d).map(|j| (x[j] - self.x_mean[j]) / self.x_std[j]))
            .collect();
        let mut deg = self.degrees.clone();
        for (w, b, hdeg, n_in) in &self.hidden {
            v = (0..hdeg.len())
                .map(|o| {
                    let mut s = b[o];
                    for j in 0..*n_in {
                        if hdeg[o] >= deg[j] {
                            s += w[o * n_in + j] * v[j];
                        }
                    }
                    self.act(s)
                })
                .collect();
            deg = hdeg.clone();
        }
        let h = v.len();
        (0..self.d)
            .map(|dim| {
                let dd = self.degrees[self.c + dim];
                let row = |head: usize, kk: usize| {
                    let (w, b) = &self.heads[head];
                    let r = dim * self.k + kk;
                    let mut s = b[r];
                    for j in 0..h {
                        if dd > deg[j] {
                            s += w[r * h + j] * v[j];
                        }
                    }
                    s
                };
                let logits: Vec<f64> = (0..self.k).map(|kk| row(0, kk)).collect();
                let max = logits.iter().cloned().fold(f64::MIN, f64::max);
                let norm = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
                (
                    logits.iter().map(|l| l - norm).collect(),
                    (0..self.k).map(|kk| row(1, kk)).collect(),
                    (0..self.k).map(|kk| row(2, kk).exp()).collect(),
                )
            })
            .collect()
    }
}

/// The cdf of a 1-D mixture in the standardised space, via libm's erfc.
pub fn mixture_cdf(log_pi: &[f64], mu: &[f64], sigma: &[f64], x: f64) -> f64 {
    (0..log_pi.len())
        .map(|k| log_pi[k].exp() * 0.5 * libm::erfc(-(x - mu[k]) / (sigma[k] * std::f64::consts::SQRT_2)))
        .sum()
}

/// The Kolmogorov-Smirnov statistic of `samples` against `cdf`.
pub fn ks_statistic(samples: &mut [f64], cdf: impl Fn(f64) -> f64) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = samples.len() as f64;
    samples
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max)
}

/// A safetensors file from (name, dtype, shape, little-endian bytes) and string metadata,
/// written by hand (independent of the reader under test).
pub fn safetensors_bytes(
    tensors: &[(String, &str, Vec<usize>, Vec<u8>)],
    metadata: &[(&str, &str)],
) -> Vec<u8> {
    let mut header = String::from("{");
    if !metadata.is_empty() {
        header.push_str("\"__metadata__\":{");
        let entries: Vec<String> = metadata.iter().map(|(k, v)| format!("\"{k}\":\"{v}\"")).collect();
        header.push_str(&entries.join(","));
        header.push_str("},");
    }
    let mut offset = 0;
    let mut parts = Vec::new();
    for (name, dtype, shape, data) in tensors {
        let dims: Vec<String> = shape.iter().map(|s| s.to_string()).collect();
        parts.push(format!(
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{offset},{}]}}",
            dims.join(","),
            offset + data.len()
        ));
        offset += data.len();
    }
    header.push_str(&parts.join(","));
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    for (_, _, _, data) in tensors {
        out.extend_from_slice(data);
    }
    out
}

pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn i64_bytes(values: &[i64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
