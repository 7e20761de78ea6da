//! Convolution and pooling against the Python helper's independent float64 NumPy reference
//! (tests/reference/conv_reference.py, files in tests/data/conv/: `input`, `weight`, optional
//! `bias`, `expected` (F64), metadata `op` and `params`), on every micro-kernel variant this
//! CPU runs, and independence of the thread count.

use std::path::Path;

use crkernels::math::simd::VectorIsa;
use crkernels::network::conv2d_parallel;
use crkernels::nn::conv::{Conv2d, ConvParams};
use crkernels::nn::pool::{Pool2d, PoolKind, global_avgpool};
use serde_json::Value;

#[path = "made_support/mod.rs"]
mod support;

mod isa_support;

/// The relative error allowed: of the reference output's max-norm.
const TOLERANCE: f64 = 1e-5;

fn cases() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conv");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".safetensors") && !name.starts_with("net_") && !name.starts_with("bad_")
        })
        .collect();
    files.sort();
    files
}

fn pair(params: &Value, key: &str, axes: usize, default: usize) -> [usize; 2] {
    let list: Vec<usize> = params
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_u64().unwrap() as usize).collect())
        .unwrap_or_else(|| vec![default; axes]);
    if axes == 1 { [1, list[0]] } else { [list[0], list[1]] }
}

fn padding(params: &Value, axes: usize) -> [[usize; 2]; 2] {
    let list: Vec<[usize; 2]> = params
        .get("padding")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| {
                    let p = p.as_array().unwrap();
                    [p[0].as_u64().unwrap() as usize, p[1].as_u64().unwrap() as usize]
                })
                .collect()
        })
        .unwrap_or_else(|| vec![[0, 0]; axes]);
    if axes == 1 { [[0, 0], list[0]] } else { [list[0], list[1]] }
}

fn max_relative_error(got: &[f32], expected: &[f64]) -> f64 {
    assert_eq!(got.len(), expected.len());
    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    got.iter().zip(expected).map(|(&g, &e)| (f64::from(g) - e).abs()).fold(0.0, f64::max) / scale
}

#[test]
fn kernels_match_the_numpy_reference() {
    let files = cases();
    assert!(
        files.len() >= 20,
        "expected the helper's kernel cases in tests/data/conv, found {}",
        files.len()
    );
    let mut worst = (0.0f64, String::new());
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let (tensors, meta) = support::read_all(&path);
        let op = meta["op"].as_str();
        let params: Value = serde_json::from_str(&meta["params"]).unwrap();
        let input = &tensors["input"];
        let x: Vec<f32> = input.values.iter().map(|&v| v as f32).collect();
        let expected = &tensors["expected"];
        let shape = &input.shape;
        let (n, c) = (shape[0], shape[1]);
        let axes = shape.len() - 2;
        let hw = if axes == 1 { [1, shape[2]] } else { [shape[2], shape[3]] };
        let mut outputs: Vec<(String, Vec<f32>)> = Vec::new();
        match op {
            "conv1d" | "conv2d" => {
                let weight = &tensors["weight"];
                let w: Vec<f32> = weight.values.iter().map(|&v| v as f32).collect();
                let bias: Option<Vec<f32>> =
                    tensors.get("bias").map(|b| b.values.iter().map(|&v| v as f32).collect());
                let c_out = weight.shape[0];
                let kernel =
                    if axes == 1 { [1, weight.shape[2]] } else { [weight.shape[2], weight.shape[3]] };
                let p = ConvParams {
                    stride: pair(&params, "stride", axes, 1),
                    padding: padding(&params, axes),
                    dilation: pair(&params, "dilation", axes, 1),
                    groups: params.get("groups").and_then(Value::as_u64).unwrap_or(1) as usize,
                };
                for isa in VectorIsa::available() {
                    let layer = Conv2d::with_isa(c, hw, c_out, kernel, p, &w, bias.as_deref(), isa)
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                    let mut y = vec![f32::NAN; n * layer.output_size()];
                    layer.forward(&x, &mut y).unwrap();
                    outputs.push((format!("{isa:?} {:?}", layer.algorithm()), y));
                }
                // Every instruction set gives the baseline's bits (one fused multiply-add chain
                // per value, whatever the tile or algorithm).
                for (what, y) in &outputs[1..] {
                    let same = y.iter().zip(&outputs[0].1).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{name}: {what} gives other bits than {}", outputs[0].0);
                }
            }
            "maxpool1d" | "maxpool2d" | "avgpool1d" | "avgpool2d" => {
                let kind = if op.starts_with("max") {
                    PoolKind::Max
                } else {
                    PoolKind::Average { count_include_pad: params["count_include_pad"].as_bool().unwrap() }
                };
                let kernel = pair(&params, "kernel", axes, 1);
                let stride = pair(&params, "stride", axes, 1);
                let layer = Pool2d::new(kind, c, hw, kernel, stride, padding(&params, axes)).unwrap();
                let mut y = vec![f32::NAN; n * layer.output_size()];
                layer.forward(&x, &mut y).unwrap();
                outputs.push(("pool".into(), y));
            }
            "global_avgpool" => {
                let mut y = vec![f32::NAN; n * c];
                global_avgpool(&x, hw[0] * hw[1], &mut y).unwrap();
                outputs.push(("global".into(), y));
            }
            other => panic!("{name}: unknown op {other}"),
        }
        for (what, y) in outputs {
            let err = max_relative_error(&y, &expected.values);
            assert!(err <= TOLERANCE, "{name} ({what}): relative error {err:e}");
            if err > worst.0 {
                worst = (err, format!("{name} ({what})"));
            }
        }
    }
    eprintln!("worst relative error {:e} in {}", worst.0, worst.1);
}

#[test]
fn results_do_not_depend_on_the_thread_count_or_the_batch_split() {
    let (c_in, c_out, n) = (5, 12, 37);
    let w: Vec<f32> = (0..c_out * c_in * 9).map(|i| ((i * 37 % 101) as f32 - 50.0) / 80.0).collect();
    let params = ConvParams { padding: [[1, 1], [1, 1]], ..Default::default() };
    let layer = Conv2d::new(c_in, [6, 7], c_out, [3, 3], params, &w, None).unwrap();
    let x: Vec<f32> = (0..n * layer.input_size()).map(|i| ((i * 13 % 29) as f32 - 14.0) / 9.0).collect();
    let mut one = vec![0.0f32; n * layer.output_size()];
    let mut two = one.clone();
    let mut single = vec![0.0f32; layer.output_size()];
    conv2d_parallel(&layer, &x, &mut one, 1).unwrap();
    conv2d_parallel(&layer, &x, &mut two, 2).unwrap();
    assert_eq!(one, two);
    layer.forward(&x[5 * layer.input_size()..6 * layer.input_size()], &mut single).unwrap();
    assert_eq!(single[..], one[5 * layer.output_size()..6 * layer.output_size()]);
}

/// The reference and thread-count tests above, again under every instruction set this CPU has
/// (`CRKERNELS_ISA`, one child process each): the pooling kernels and a conv2d layer built
/// with `Conv2d::new` follow the process-wide choice.
#[test]
fn equivalence_tests_pass_under_every_instruction_set() {
    isa_support::rerun_under_every_isa(&[
        "kernels_match_the_numpy_reference",
        "results_do_not_depend_on_the_thread_count_or_the_batch_split",
    ]);
}

#[test]
fn the_selected_set_is_the_requested_one() {
    isa_support::assert_selected_set_is_requested();
}
