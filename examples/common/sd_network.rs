//! The SD-reconstruction-style network of seed 002 (Telescope Array surface detectors) with
//! random weights, written in the `crkernels.network.v1` format, and synthetic events for it.
//! Shared by examples/sd_reconstruction.rs, benches/conv.rs and tests/network.rs.
//!
//! Inputs per event: `traces` [2, 256] (the two scintillator layers of the detector nearest
//! the core, 256 time bins), `grid` [4, 8, 8] (per detector of the 8 x 8 grid around the core:
//! integral signal, arrival time relative to the plane front, on/off state, saturation) and
//! `features` [3] (core position x, y and the standard reconstruction's zenith angle). Two
//! branches (1-D convolutions along time, 2-D convolutions over the grid) are flattened,
//! joined with the features and reduced by dense layers to 2 outputs.
#![allow(dead_code)]

use std::collections::HashMap;

use safetensors::tensor::{Dtype, TensorView};

/// The layer list (JSON), as a user would write it next to `save_file(model.state_dict())`.
pub const NETWORK_JSON: &str = r#"{
 "inputs": [{"name": "traces", "shape": [2, 256]}, {"name": "grid", "shape": [4, 8, 8]},
            {"name": "features", "shape": [3]}],
 "layers": [
  {"type": "conv1d", "input": "traces", "out_channels": 32, "kernel": 5, "padding": "same"},
  {"type": "batchnorm", "eps": 1e-5},
  {"type": "relu"},
  {"type": "maxpool1d", "kernel": 4},
  {"type": "conv1d", "out_channels": 32, "kernel": 5, "padding": "same"},
  {"type": "relu"},
  {"type": "maxpool1d", "kernel": 4},
  {"type": "flatten"},
  {"type": "conv2d", "input": "grid", "out_channels": 32, "kernel": [3, 3], "padding": "same"},
  {"type": "relu"},
  {"type": "conv2d", "out_channels": 64, "kernel": [3, 3], "padding": "same"},
  {"type": "relu"},
  {"type": "maxpool2d", "kernel": [2, 2]},
  {"type": "flatten"},
  {"type": "concat", "inputs": [7, 13, "features"]},
  {"type": "dense", "out_features": 64},
  {"type": "elu", "alpha": 1.0},
  {"type": "dense", "out_features": 2}
 ]}"#;

/// Tensor names and shapes of the network above (PyTorch layout).
const TENSORS: &[(&str, &[usize])] = &[
    ("layers.0.weight", &[32, 2, 5]),
    ("layers.0.bias", &[32]),
    ("layers.1.weight", &[32]),
    ("layers.1.bias", &[32]),
    ("layers.1.running_mean", &[32]),
    ("layers.1.running_var", &[32]),
    ("layers.4.weight", &[32, 32, 5]),
    ("layers.4.bias", &[32]),
    ("layers.8.weight", &[32, 4, 3, 3]),
    ("layers.8.bias", &[32]),
    ("layers.10.weight", &[64, 32, 3, 3]),
    ("layers.10.bias", &[64]),
    ("layers.15.weight", &[64, 512 + 1024 + 3]),
    ("layers.15.bias", &[64]),
    ("layers.17.weight", &[2, 64]),
    ("layers.17.bias", &[2]),
];

/// A small deterministic generator (xorshift64*), uniform in [-1, 1).
pub struct Uniform(u64);

impl Uniform {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
        bits as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// The network file's bytes, with weights uniform in +-sqrt(3 / fan_in) (unit-variance
/// activations) and batch-norm statistics near (0, 1).
pub fn network_file(seed: u64) -> Vec<u8> {
    let mut rng = Uniform::new(seed);
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for &(name, shape) in TENSORS {
        let n: usize = shape.iter().product();
        let fan_in: usize = shape[1..].iter().product::<usize>().max(1);
        let values: Vec<f32> = (0..n)
            .map(|_| {
                let u = rng.next();
                if name.ends_with("running_var")
                    || (name.starts_with("layers.1.") && name.ends_with("weight"))
                {
                    1.0 + 0.2 * u
                } else if shape.len() == 1 {
                    0.1 * u
                } else {
                    u * (3.0 / fan_in as f32).sqrt()
                }
            })
            .collect();
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        data.push((name.to_string(), shape.to_vec(), bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(name, shape, bytes)| {
            (name.clone(), TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap())
        })
        .collect();
    let metadata = HashMap::from([
        ("format".to_string(), "crkernels.network.v1".to_string()),
        ("layout".to_string(), "pytorch".to_string()),
        ("network".to_string(), NETWORK_JSON.to_string()),
    ]);
    safetensors::tensor::serialize(views, Some(metadata)).unwrap()
}

/// Synthetic events: (traces [n][2][256], grid [n][4][8][8], features [n][3]). A trace is a
/// pulse rising at a detector-dependent time and decaying over ~20 bins, plus noise; the grid
/// holds the signal falling off with distance from the core, arrival times on a tilted plane,
/// detector states and a saturation flag.
pub fn synthetic_events(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = Uniform::new(seed);
    let (mut traces, mut grid, mut features) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let (core_x, core_y, zenith) = (rng.next() * 0.5, rng.next() * 0.5, 0.6 * (rng.next() + 1.0));
        let onset = 60.0 + 20.0 * rng.next();
        for layer in 0..2 {
            let amplitude = 5.0 + 0.5 * layer as f32;
            for t in 0..256 {
                let dt = t as f32 - onset;
                let pulse = if dt > 0.0 { amplitude * (dt / 4.0).min(1.0) * (-dt / 20.0).exp() } else { 0.0 };
                traces.push(pulse + 0.05 * rng.next());
            }
        }
        let mut channels = vec![0.0f32; 4 * 64];
        for y in 0..8 {
            for x in 0..8 {
                let r2 = (x as f32 - 3.5 - core_x).powi(2) + (y as f32 - 3.5 - core_y).powi(2);
                let signal = 30.0 / (1.0 + r2);
                let on = if rng.next() > -0.9 { 1.0 } else { 0.0 };
                channels[y * 8 + x] = on * signal;
                channels[64 + y * 8 + x] = on * zenith * (x as f32 - 3.5) * 0.3;
                channels[128 + y * 8 + x] = on;
                channels[192 + y * 8 + x] = if signal > 20.0 { 1.0 } else { 0.0 };
            }
        }
        grid.extend_from_slice(&channels);
        features.extend_from_slice(&[core_x, core_y, zenith]);
    }
    (traces, grid, features)
}
