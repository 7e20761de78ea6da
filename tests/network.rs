//! The network runner against the Python helper's float64 NumPy reference and onnxruntime
//! (tests/data/conv/net_<name>.safetensors with net_<name>.expected.safetensors holding
//! `input.<name>` per input, `output` (F64, NumPy) and `output_onnx` (F32, onnxruntime)),
//! bad network files, and independence of the thread count and batch size.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crkernels::Error;
use crkernels::network::{ParallelNetwork, load_network};
use crkernels::nn::Network;
use safetensors::tensor::{Dtype, TensorView};

#[path = "made_support/mod.rs"]
mod support;

mod isa_support;

#[path = "../examples/common/sd_network.rs"]
mod sd_network;

const TOLERANCE: f64 = 1e-5;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conv").join(name)
}

fn max_relative_error(got: &[f32], expected: &[f64]) -> f64 {
    assert_eq!(got.len(), expected.len());
    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    got.iter().zip(expected).map(|(&g, &e)| (f64::from(g) - e).abs()).fold(0.0, f64::max) / scale
}

/// The inputs of a reference file in the network's order, and its batch size.
fn reference_inputs(net: &Network, expected: &HashMap<String, support::Tensor>) -> (Vec<Vec<f32>>, usize) {
    let inputs: Vec<Vec<f32>> = net
        .inputs()
        .iter()
        .map(|spec| {
            let t = &expected[&format!("input.{}", spec.name)];
            assert_eq!(t.shape[1..], spec.shape[..], "input {}", spec.name);
            t.values.iter().map(|&v| v as f32).collect()
        })
        .collect();
    let batch = inputs[0].len() / net.inputs()[0].size();
    (inputs, batch)
}

#[test]
fn networks_match_numpy_and_onnxruntime() {
    let names = ["sd_two_branch", "sd_two_branch_keras", "small_mixed", "small_f16"];
    for name in names {
        let net =
            load_network(&data(&format!("net_{name}.safetensors"))).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (expected, _) = support::read_all(&data(&format!("net_{name}.expected.safetensors")));
        let (inputs, batch) = reference_inputs(&net, &expected);
        let views: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        let mut one = vec![f32::NAN; batch * net.output_size()];
        let mut two = one.clone();
        net.run_parallel(&views, batch, 1, &mut one).unwrap();
        net.run_parallel(&views, batch, 2, &mut two).unwrap();
        assert_eq!(one, two, "{name}: results depend on the thread count");
        let err = max_relative_error(&one, &expected["output"].values);
        let onnx: Vec<f32> = expected["output_onnx"].values.iter().map(|&v| v as f32).collect();
        let onnx_err = max_relative_error(&onnx, &expected["output"].values);
        eprintln!(
            "{name}: max relative error {err:.2e} (onnxruntime {onnx_err:.2e}), {} steps",
            net.step_count()
        );
        assert!(err <= TOLERANCE, "{name}: relative error {err:e}");
    }
}

#[test]
fn batch_one_and_large_batches_give_the_same_rows() {
    let net = load_network(&data("net_sd_two_branch.safetensors")).unwrap();
    let (expected, _) = support::read_all(&data("net_sd_two_branch.expected.safetensors"));
    let (inputs, batch) = reference_inputs(&net, &expected);
    let out_size = net.output_size();
    // 300 samples: the reference batch repeated (several chunks, a partial last one).
    let big = 300;
    let tiled: Vec<Vec<f32>> = inputs
        .iter()
        .zip(net.inputs())
        .map(|(values, spec)| {
            (0..big).flat_map(|s| values[(s % batch) * spec.size()..][..spec.size()].to_vec()).collect()
        })
        .collect();
    let views: Vec<&[f32]> = tiled.iter().map(Vec::as_slice).collect();
    let mut out = vec![0.0f32; big * out_size];
    net.run_parallel(&views, big, 2, &mut out).unwrap();
    for s in [0, 7, 31, 32, 150, 299] {
        let single: Vec<&[f32]> = tiled
            .iter()
            .zip(net.inputs())
            .map(|(v, spec)| &v[s * spec.size()..(s + 1) * spec.size()])
            .collect();
        let mut one = vec![0.0f32; out_size];
        net.run(&single, 1, &mut one).unwrap();
        assert_eq!(one[..], out[s * out_size..(s + 1) * out_size], "sample {s}");
        let want = &expected["output"].values[(s % batch) * out_size..][..out_size];
        assert!(max_relative_error(&one, want) <= TOLERANCE, "sample {s}");
    }
}

/// A network run in smaller chunks (a per-thread memory limit) gives the same bits, and its
/// working memory follows the documented formula; a limit below one sample is refused.
#[test]
fn a_workspace_limit_shrinks_the_chunk_not_the_results() {
    let net = load_network(&data("net_sd_two_branch.safetensors")).unwrap();
    let (expected, _) = support::read_all(&data("net_sd_two_branch.expected.safetensors"));
    let (inputs, batch) = reference_inputs(&net, &expected);
    let views: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let (per_sample, fixed) = (net.bytes_per_sample(), net.fixed_workspace_bytes());
    assert_eq!(net.chunk(), 32);
    assert_eq!(net.workspace_bytes(), 32 * per_sample + fixed);
    let mut whole = vec![0.0f32; batch * net.output_size()];
    net.run_parallel(&views, batch, 1, &mut whole).unwrap();
    let small = net.clone().with_workspace_limit(fixed + 3 * per_sample + per_sample / 2).unwrap();
    assert_eq!((small.chunk(), small.workspace_bytes()), (3, 3 * per_sample + fixed));
    let mut chunked = vec![0.0f32; whole.len()];
    small.run_parallel(&views, batch, 2, &mut chunked).unwrap();
    assert!(whole.iter().zip(&chunked).all(|(a, b)| a.to_bits() == b.to_bits()));
    let refused = net.with_workspace_limit(fixed + per_sample - 1).expect_err("a sample that does not fit");
    assert!(matches!(&refused, Error::InvalidArgument(m) if m.contains("above the limit")), "{refused}");
}

#[test]
fn the_example_network_loads_and_runs() {
    let net = Network::from_safetensors(&sd_network::network_file(3)).unwrap();
    // The batch norm after layer 0 is folded and the flattens are views: 15 of 18 layers run.
    assert_eq!(net.step_count(), 15);
    let (traces, grid, features) = sd_network::synthetic_events(50, 4);
    let mut out = vec![f32::NAN; 50 * net.output_size()];
    net.run_parallel(&[&traces, &grid, &features], 50, 0, &mut out).unwrap();
    assert!(out.iter().all(|v| v.is_finite()));
}

#[test]
fn bad_files_are_rejected_with_the_layer_and_tensor_named() {
    for (file, mention) in [
        ("bad_net_missing_tensor", "missing tensor layers.5.bias"),
        ("bad_net_shape_mismatch", "layer 5 (dense): layers.5.weight: shape [2, 66], expected [2, 67]"),
        ("bad_net_format", "crkernels.network.v2"),
    ] {
        let err = load_network(&data(&format!("{file}.safetensors"))).unwrap_err();
        assert!(matches!(err, Error::Format(_)), "{file}: {err}");
        assert!(err.to_string().contains(mention), "{file}: {err}");
    }
}

/// A network file from a JSON layer list and f32 tensors.
fn file(json: &str, tensors: &[(&str, Vec<usize>)]) -> Vec<u8> {
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            (name.to_string(), shape.clone(), (0..n).flat_map(|i| (i as f32 * 0.01).to_le_bytes()).collect())
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).unwrap()))
        .collect();
    let meta = HashMap::from([
        ("format".to_string(), "crkernels.network.v1".to_string()),
        ("network".to_string(), json.to_string()),
    ]);
    safetensors::tensor::serialize(views, Some(meta)).unwrap()
}

#[test]
fn inconsistent_descriptions_are_named() {
    let input = r#""inputs": [{"name": "x", "shape": [2, 8]}]"#;
    let conv = |extra: &str| {
        format!(r#"{{{input}, "layers": [{{"type": "conv1d", "out_channels": 4, "kernel": 3{extra}}}]}}"#)
    };
    let w = ("layers.0.weight", vec![4, 2, 3]);
    let b = ("layers.0.bias", vec![4]);
    for (json, tensors, mention) in [
        (conv(""), vec![w.clone(), b.clone()], None),
        (
            conv(r#", "kernel": 9"#),
            vec![("layers.0.weight", vec![4, 2, 9]), b.clone()],
            Some("layer 0 (conv1d): width: kernel 9"),
        ),
        (conv(r#", "groups": 3"#), vec![w.clone(), b.clone()], Some("divisible by groups")),
        (conv(r#", "padding": "full""#), vec![w.clone(), b.clone()], Some("\"padding\" must be")),
        (conv(r#", "input": "y""#), vec![w.clone(), b.clone()], Some("no network input named 'y'")),
        (
            conv(""),
            vec![("layers.0.weight", vec![4, 2, 5]), b.clone()],
            Some("layers.0.weight: shape [4, 2, 5], expected [4, 2, 3]"),
        ),
        (
            format!(r#"{{{input}, "layers": [{{"type": "dense", "out_features": 2}}]}}"#),
            vec![],
            Some("layer 0 (dense): input shape [2, 8] must be flat"),
        ),
        (
            format!(r#"{{{input}, "layers": [{{"type": "swish"}}]}}"#),
            vec![],
            Some("unknown layer type \"swish\""),
        ),
        (
            format!(r#"{{{input}, "layers": [{{"type": "relu", "input": 0}}]}}"#),
            vec![],
            Some("not an earlier layer"),
        ),
        ("{not json".to_string(), vec![], Some("not valid JSON")),
    ] {
        let result = Network::from_safetensors(&file(&json, &tensors));
        match mention {
            None => assert!(result.is_ok(), "{json}: {:?}", result.err()),
            Some(m) => {
                let err = result.unwrap_err().to_string();
                assert!(err.contains(m), "{json}: {err}");
            }
        }
    }
}

#[test]
fn nan_weights_are_rejected_at_load() {
    let json =
        r#"{"inputs": [{"name": "x", "shape": [3]}], "layers": [{"type": "dense", "out_features": 1}]}"#;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&f32::NAN.to_le_bytes());
    bytes.extend_from_slice(&[0u8; 12]);
    let w = TensorView::new(Dtype::F32, vec![1, 3], &bytes[..12]).unwrap();
    let b = TensorView::new(Dtype::F32, vec![1], &bytes[12..]).unwrap();
    let meta = HashMap::from([
        ("format".to_string(), "crkernels.network.v1".to_string()),
        ("network".to_string(), json.to_string()),
    ]);
    let file =
        safetensors::tensor::serialize([("layers.0.weight", w), ("layers.0.bias", b)], Some(meta)).unwrap();
    let err = Network::from_safetensors(&file).unwrap_err().to_string();
    assert!(err.contains("layer 0 (dense): layers.0.weight: value 0 is NaN"), "{err}");
}

/// The outputs of the reference networks and of the example network, as digests of their
/// bits (for [`network_bits_agree_under_every_instruction_set`]).
#[test]
fn network_bits() {
    for name in ["sd_two_branch", "sd_two_branch_keras", "small_mixed", "small_f16"] {
        let net = load_network(&data(&format!("net_{name}.safetensors"))).unwrap();
        let (expected, _) = support::read_all(&data(&format!("net_{name}.expected.safetensors")));
        let (inputs, batch) = reference_inputs(&net, &expected);
        let views: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        let mut out = vec![f32::NAN; batch * net.output_size()];
        net.run_parallel(&views, batch, 2, &mut out).unwrap();
        isa_support::print_digest(name, out.iter().map(|v| v.to_bits()));
    }
    let net = Network::from_safetensors(&sd_network::network_file(3)).unwrap();
    let (traces, grid, features) = sd_network::synthetic_events(50, 4);
    let mut out = vec![f32::NAN; 50 * net.output_size()];
    net.run_parallel(&[&traces, &grid, &features], 50, 2, &mut out).unwrap();
    isa_support::print_digest("example", out.iter().map(|v| v.to_bits()));
}

/// Network outputs are bit-identical on every instruction set this CPU has.
#[test]
fn network_bits_agree_under_every_instruction_set() {
    isa_support::bits_agree_under_every_isa("network_bits");
}

/// The accuracy and batch tests above, again under every instruction set this CPU has
/// (`CRKERNELS_ISA`, one child process each): every layer kernel follows the process-wide
/// choice.
#[test]
fn equivalence_tests_pass_under_every_instruction_set() {
    isa_support::rerun_under_every_isa(&[
        "networks_match_numpy_and_onnxruntime",
        "batch_one_and_large_batches_give_the_same_rows",
        "a_workspace_limit_shrinks_the_chunk_not_the_results",
        "the_example_network_loads_and_runs",
    ]);
}

#[test]
fn the_selected_set_is_the_requested_one() {
    isa_support::assert_selected_set_is_requested();
}
