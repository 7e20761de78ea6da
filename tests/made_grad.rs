//! Gradients of the MADE emulator (issue 16, item 1): the parameter gradient of the mean NLL
//! and the input gradients of log p against the independent float64 NumPy reference
//! (tests/reference/made_grad_reference.py, files tests/data/made/*.grad.safetensors), against
//! central finite differences of the library's own float64 evaluation, masked weights' exact
//! zeros, thread-count independence and bad input through the C ABI.

mod made_support;

use std::collections::HashMap;
use std::ffi::CString;
use std::ptr::{null, null_mut};

use crkernels::emulator::{ParallelMade, load_made};
use crkernels::ffi::made::{crk_made, crk_made_free, crk_made_load, crk_made_log_prob_grad};
use crkernels::ffi::{CRK_ERR_INVALID_ARGUMENT, CRK_ERR_NULL_POINTER, CRK_OK};
use crkernels::nn::load::spec_from_safetensors;
use crkernels::nn::made::{LayerGrad, LayerSpec, MadeSpec};
use crkernels::nn::{Activation, LoadOptions, Made};
use made_support::*;

/// The accuracy: relative to max(1, |g|).
const TOLERANCE: f64 = 1e-4;

fn options_for(meta: &HashMap<String, String>) -> LoadOptions {
    LoadOptions {
        activation: meta.get("activation").and_then(|a| Activation::from_name(a)),
        epsilon: meta.get("epsilon").and_then(|e| e.parse().ok()),
        sbi_dummy_input: meta.get("sbi_dummy_input").map(|s| s == "true"),
    }
}

/// Every reference: name, model path, load options, gradient tensors.
fn grad_cases() -> Vec<(String, std::path::PathBuf, LoadOptions, HashMap<String, Tensor>)> {
    let mut out = Vec::new();
    for (name, path, _, meta) in cases() {
        let grad_path = data_dir().join(format!("{name}.grad.safetensors"));
        if grad_path.exists() {
            out.push((name, path, options_for(&meta), read_all(&grad_path).0));
        }
    }
    out
}

fn scaled_error(ours: f64, reference: f64) -> f64 {
    (ours - reference).abs() / reference.abs().max(1.0)
}

fn worst(ours: &[f64], reference: &[f64], what: &str) -> f64 {
    assert_eq!(ours.len(), reference.len(), "{what}: lengths");
    let mut worst = 0.0f64;
    for (i, (&a, &b)) in ours.iter().zip(reference).enumerate() {
        let err = scaled_error(a, b);
        assert!(err <= TOLERANCE, "{what}[{i}]: {a} vs reference {b} (scaled error {err:.2e})");
        worst = worst.max(err);
    }
    worst
}

fn widen(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| f64::from(v)).collect()
}

#[test]
fn input_gradients_match_the_float64_reference_on_any_thread_count() {
    let cases = grad_cases();
    assert!(cases.len() >= 20, "reference gradients missing: {} files", cases.len());
    for (name, path, options, reference) in cases {
        let made = load_made(&path, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (c, d) = (made.n_context(), made.n_dims());
        let x = as_f32(&reference["x"]);
        let context = reference.get("context").map(as_f32).unwrap_or_default();
        let n = x.len() / d;
        let run = |threads: usize| {
            let (mut lp, mut gc, mut gx) = (vec![0.0f32; n], vec![0.0f32; n * c], vec![0.0f32; n * d]);
            made.log_prob_grad_parallel(&context, &x, threads, Some(&mut lp), Some(&mut gc), Some(&mut gx))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (lp, gc, gx)
        };
        let (lp, gc, gx) = run(1);
        for threads in [2, 3] {
            assert_eq!(run(threads), (lp.clone(), gc.clone(), gx.clone()), "{name}: {threads} threads");
        }
        let mut plain_lp = vec![0.0f32; n];
        made.log_prob_parallel(&context, &x, 1, &mut plain_lp).unwrap();
        assert_eq!(lp, plain_lp, "{name}: log_prob differs from log_prob_parallel");
        let err_x = worst(&widen(&gx), &reference["grad_x"].values, &format!("{name} grad_x"));
        let err_c = match reference.get("grad_context") {
            Some(r) => worst(&widen(&gc), &r.values, &format!("{name} grad_context")),
            None => 0.0,
        };
        // Only one output requested: the same values.
        let mut only_x = vec![0.0f32; n * d];
        made.log_prob_grad_parallel(&context, &x, 2, None, None, Some(&mut only_x)).unwrap();
        assert_eq!(only_x, gx, "{name}: grad_x alone");
        eprintln!("{name}: {n} rows, worst scaled error grad_x {err_x:.2e}, grad_context {err_c:.2e}");
    }
}

/// The mask of a plain file's tensor `grad.<name>` ([out][in]) from the degrees in the file.
fn plain_masks(model: &HashMap<String, Tensor>, c: usize, k: usize) -> HashMap<String, Vec<bool>> {
    let mut masks = HashMap::new();
    let input: Vec<i64> = model["degrees.input"].values.iter().map(|&v| v as i64).collect();
    let mut previous = input.clone();
    let mut i = 0;
    while let Some(degrees) = model.get(&format!("hidden.{i}.degrees")) {
        let out: Vec<i64> = degrees.values.iter().map(|&v| v as i64).collect();
        let mask = out.iter().flat_map(|&o| previous.iter().map(move |&p| o >= p)).collect();
        masks.insert(format!("hidden.{i}.weight"), mask);
        previous = out;
        i += 1;
    }
    let heads: Vec<i64> = input[c..].iter().flat_map(|&g| std::iter::repeat_n(g, k)).collect();
    let mask: Vec<bool> = heads.iter().flat_map(|&o| previous.iter().map(move |&p| o > p)).collect();
    for head in ["logits", "means", "log_scales"] {
        masks.insert(format!("output.{head}.weight"), mask.clone());
    }
    masks
}

#[test]
fn parameter_gradients_match_the_float64_reference_and_masks_get_zero() {
    let mut checked = 0;
    for (name, path, options, reference) in grad_cases() {
        if !reference.contains_key("nll") {
            continue;
        }
        let made = load_made(&path, &options).unwrap();
        let (c, k) = (made.n_context(), made.n_components());
        let x = as_f32(&reference["x"]);
        let context = reference.get("context").map(as_f32).unwrap_or_default();
        let (nll, grad) = made.nll_grad(&context, &x).unwrap_or_else(|e| panic!("{name}: {e}"));
        let nll_err = scaled_error(nll, reference["nll"].values[0]);
        assert!(nll_err <= 1e-9, "{name}: nll {nll} vs {}", reference["nll"].values[0]);
        let (model, _) = read_all(&path);
        let masks = plain_masks(&model, c, k);
        // Our gradient tensors in the file's names and shapes.
        let mut ours: Vec<(String, Vec<f64>)> = Vec::new();
        for (i, layer) in grad.layers.iter().enumerate() {
            let LayerGrad::Dense { weight, context_weight, bias } = layer else {
                panic!("{name}: a plain model has dense layers only")
            };
            let full = match context_weight {
                Some(cw) => {
                    let h = bias.len();
                    let n_in = weight.len() / h;
                    (0..h)
                        .flat_map(|o| cw[o * c..(o + 1) * c].iter().chain(&weight[o * n_in..(o + 1) * n_in]))
                        .copied()
                        .collect()
                }
                None => weight.clone(),
            };
            ours.push((format!("hidden.{i}.weight"), full));
            ours.push((format!("hidden.{i}.bias"), bias.clone()));
        }
        for (head, (w, b)) in [("logits", &grad.logits), ("means", &grad.means), ("log_scales", &grad.scales)]
        {
            ours.push((format!("output.{head}.weight"), w.clone()));
            ours.push((format!("output.{head}.bias"), b.clone()));
        }
        let mut worst_err = 0.0f64;
        let mut zeros = 0;
        for (tensor, values) in &ours {
            let r = &reference[&format!("grad.{tensor}")].values;
            worst_err = worst_err.max(worst(values, r, &format!("{name} {tensor}")));
            if let Some(mask) = masks.get(tensor) {
                assert_eq!(mask.len(), values.len(), "{name} {tensor}: mask");
                for (j, (&m, &g)) in mask.iter().zip(values).enumerate() {
                    if !m {
                        assert_eq!(g.to_bits() & !(1 << 63), 0, "{name} {tensor}[{j}] is masked but {g}");
                        zeros += 1;
                    }
                }
            }
        }
        // The same numbers on a second call (the accumulators are reset).
        assert_eq!(made.nll_grad(&context, &x).unwrap().1, grad, "{name}: second call");
        eprintln!(
            "{name}: nll {nll:.6} (error {nll_err:.1e}), worst parameter scaled error {worst_err:.2e}, {zeros} masked weights exactly 0"
        );
        checked += 1;
    }
    assert!(checked >= 12, "{checked} plain models checked");
}

/// Central differences of the library's float64 evaluation with a small step (1e-5 relative,
/// so that a step rarely crosses a ReLU kink), rounded to f32; the actual step is used.
fn central<F: FnMut(f32) -> f64>(value: f32, mut f: F) -> f64 {
    let h = 1e-5 * value.abs().max(1.0);
    let (up, down) = (value + h, value - h);
    (f(up) - f(down)) / (f64::from(up) - f64::from(down))
}

const FD_MODELS: [&str; 18] = [
    "plain_h1_sigmoid_k1",
    "plain_h2_leaky_relu_k3_ctxsecret_std",
    "plain_h1_elu_k5_ctx0_std",
    "plain_h1_tanh_k3_std_samples",
    "plain_h2_relu_k10_ctx0_std",
    "plain_h3_tanh_k3_ctxsecret",
    "plain_h1_sigmoid_k10_ctxsecret_std",
    "plain_unmasked",
    "plain_f16",
    "plain_bf16",
    "plain_d1_secret",
    "plain_d1_noctx",
    "nflows_bare_ctx_bn_2blk_k5",
    "nflows_flow_ctx_2blk_k5",
    "nflows_sbi_ctx_bn_1blk_k1",
    "nflows_sbi_ctx_2blk_k5",
    "nflows_d1_noctx_1blk_k3",
    "nflows_d1_ctx_1blk_k3",
];

#[test]
fn input_gradients_match_central_differences_in_float64() {
    for (name, path, options, reference) in grad_cases() {
        if !FD_MODELS.contains(&name.as_str()) {
            continue;
        }
        let made = load_made(&path, &options).unwrap();
        let (c, d) = (made.n_context(), made.n_dims());
        let x = as_f32(&reference["x"]);
        let context = reference.get("context").map(as_f32).unwrap_or_default();
        let rows = 4;
        let mut gc = vec![0.0f32; rows * c];
        let mut gx = vec![0.0f32; rows * d];
        made.log_prob_grad(&context[..rows * c], &x[..rows * d], Some(&mut gc), Some(&mut gx)).unwrap();
        let mut work = made.grad_workspace();
        let mut worst_err = 0.0f64;
        for i in 0..rows {
            let (cr, xr) = (&context[i * c..(i + 1) * c], &x[i * d..(i + 1) * d]);
            for j in 0..d {
                let fd = central(xr[j], |v| {
                    let mut row = xr.to_vec();
                    row[j] = v;
                    made.log_prob_f64(&mut work, cr, &row)
                });
                let err = scaled_error(f64::from(gx[i * d + j]), fd);
                assert!(err <= TOLERANCE, "{name} row {i} x[{j}]: {} vs {fd}", gx[i * d + j]);
                worst_err = worst_err.max(err);
            }
            for j in 0..c {
                let fd = central(cr[j], |v| {
                    let mut row = cr.to_vec();
                    row[j] = v;
                    made.log_prob_f64(&mut work, &row, xr)
                });
                let err = scaled_error(f64::from(gc[i * c + j]), fd);
                assert!(err <= TOLERANCE, "{name} row {i} context[{j}]: {} vs {fd}", gc[i * c + j]);
                worst_err = worst_err.max(err);
            }
        }
        eprintln!("{name}: input gradients against central differences, worst scaled error {worst_err:.2e}");
    }
}

/// Mutable access to the `index`-th parameter of a spec in the order of `MadeGrad::values`.
fn parameter(spec: &mut MadeSpec, mut index: usize) -> &mut f32 {
    let mut parts: Vec<&mut Vec<f32>> = Vec::new();
    for layer in &mut spec.layers {
        match layer {
            LayerSpec::Dense { weight, context_weight, bias, .. } => {
                if let Some(cw) = context_weight {
                    parts.push(cw);
                }
                parts.push(weight);
                parts.push(bias);
            }
            LayerSpec::Affine { scale, shift, .. } => {
                parts.push(scale);
                parts.push(shift);
            }
        }
    }
    let h = &mut spec.heads;
    parts.extend([
        &mut h.logits.0,
        &mut h.logits.1,
        &mut h.means.0,
        &mut h.means.1,
        &mut h.scales.0,
        &mut h.scales.1,
    ]);
    for part in parts {
        if index < part.len() {
            return &mut part[index];
        }
        index -= part.len();
    }
    panic!("parameter index out of range")
}

#[test]
fn parameter_gradients_match_central_differences_in_float64() {
    for (name, path, options, reference) in grad_cases() {
        if !FD_MODELS.contains(&name.as_str()) {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let spec = spec_from_safetensors(&bytes, &options).unwrap();
        let made = Made::new(spec.clone()).unwrap();
        let (c, d) = (made.n_context(), made.n_dims());
        let x = as_f32(&reference["x"]);
        let context = reference.get("context").map(as_f32).unwrap_or_default();
        let n = x.len() / d;
        let (_, grad) = made.nll_grad(&context, &x).unwrap();
        let values: Vec<f64> = grad.values().collect();
        let nll = |model: &Made| {
            let mut work = model.grad_workspace();
            -(0..n)
                .map(|i| model.log_prob_f64(&mut work, &context[i * c..(i + 1) * c], &x[i * d..(i + 1) * d]))
                .sum::<f64>()
                / n as f64
        };
        // Every nonzero gradient of small models, a deterministic sample of large ones.
        let stride = (values.len() / 150).max(1);
        let mut worst_err = 0.0f64;
        let mut count = 0;
        for index in (0..values.len()).step_by(stride) {
            let mut probe = spec.clone();
            let value = *parameter(&mut probe, index);
            let fd = central(value, |v| {
                let mut moved = spec.clone();
                *parameter(&mut moved, index) = v;
                nll(&Made::new(moved).unwrap())
            });
            let err = scaled_error(values[index], fd);
            assert!(err <= TOLERANCE, "{name} parameter {index}: {} vs {fd}", values[index]);
            worst_err = worst_err.max(err);
            count += 1;
        }
        eprintln!(
            "{name}: {count} parameters against central differences, worst scaled error {worst_err:.2e}"
        );
    }
}

#[test]
fn bad_input_gives_a_status_and_writes_nothing() {
    let path =
        CString::new(data_dir().join("plain_h1_sigmoid_k10_ctxsecret_std.safetensors").to_str().unwrap())
            .unwrap();
    let mut m: *mut crk_made = null_mut();
    // SAFETY: a valid path and out-pointer.
    assert_eq!(unsafe { crk_made_load(path.as_ptr(), &mut m) }, CRK_OK);
    let (c, d, n) = (3usize, 4usize, 2usize);
    let context = vec![0.1f32; n * c];
    let x = vec![0.2f32; n * d];
    let call = |m: *const crk_made, context: *const f32, x: *const f32, n: usize| {
        let (mut lp, mut gc, mut gx) = (vec![7.0f32; 2], vec![7.0f32; 2 * c], vec![7.0f32; 2 * d]);
        // SAFETY: arrays of the sizes the model needs for at most 2 rows.
        let status = unsafe {
            crk_made_log_prob_grad(m, context, x, n, 2, lp.as_mut_ptr(), gc.as_mut_ptr(), gx.as_mut_ptr())
        };
        let untouched = lp.iter().chain(&gc).chain(&gx).all(|&v| v == 7.0);
        (status, untouched)
    };
    assert_eq!(call(m, context.as_ptr(), x.as_ptr(), n).0, CRK_OK);
    assert_eq!(call(null(), context.as_ptr(), x.as_ptr(), n), (CRK_ERR_NULL_POINTER, true));
    assert_eq!(call(m, context.as_ptr(), x.as_ptr(), 0), (CRK_ERR_INVALID_ARGUMENT, true));
    assert_eq!(call(m, null(), x.as_ptr(), n), (CRK_ERR_NULL_POINTER, true));
    assert_eq!(call(m, context.as_ptr(), null(), n), (CRK_ERR_NULL_POINTER, true));
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut x_bad = x.clone();
        x_bad[5] = bad;
        assert_eq!(call(m, context.as_ptr(), x_bad.as_ptr(), n), (CRK_ERR_INVALID_ARGUMENT, true));
        let mut c_bad = context.clone();
        c_bad[1] = bad;
        assert_eq!(call(m, c_bad.as_ptr(), x.as_ptr(), n), (CRK_ERR_INVALID_ARGUMENT, true));
    }
    // Every output may be NULL.
    // SAFETY: valid inputs, NULL outputs.
    let status = unsafe {
        crk_made_log_prob_grad(m, context.as_ptr(), x.as_ptr(), n, 1, null_mut(), null_mut(), null_mut())
    };
    assert_eq!(status, CRK_OK);
    // SAFETY: the handle from crk_made_load, freed once.
    unsafe { crk_made_free(m) };
    // The Rust API: n = 0 and wrong lengths.
    let made =
        load_made(&data_dir().join("plain_h1_sigmoid_k1.safetensors"), &LoadOptions::default()).unwrap();
    assert!(made.nll_grad(&[], &[]).is_err());
    assert!(made.nll_grad(&[], &[0.0; 5]).is_err());
    assert!(made.log_prob_grad(&[], &[f32::NAN; 4], None, None).is_err());
    let mut short = vec![0.0f32; 3];
    assert!(made.log_prob_grad_parallel(&[], &[0.0; 4], 1, None, None, Some(&mut short)).is_err());
}

#[test]
fn a_row_gets_the_same_gradient_in_any_tile_position_and_on_any_thread_count() {
    for name in ["secret_shape", "nflows_sbi_ctx_bn_1blk_k1", "plain_h2_relu_k10_ctx0_std"] {
        let (_, path, options, reference) = grad_cases().into_iter().find(|c| c.0 == name).unwrap();
        let made = load_made(&path, &options).unwrap();
        let (c, d) = (made.n_context(), made.n_dims());
        let rows = reference["x"].values.len() / d;
        let n = 53;
        let x: Vec<f32> = (0..n * d)
            .map(|i| reference["x"].values[i % (rows * d)] as f32 + (i / (rows * d)) as f32 * 0.01)
            .collect();
        let context: Vec<f32> = match reference.get("context") {
            Some(t) => (0..n * c).map(|i| t.values[i % (rows * c)] as f32).collect(),
            None => Vec::new(),
        };
        let run = |threads: usize| {
            let (mut gc, mut gx) = (vec![0.0f32; n * c], vec![0.0f32; n * d]);
            made.log_prob_grad_parallel(&context, &x, threads, None, Some(&mut gc), Some(&mut gx)).unwrap();
            (gc, gx)
        };
        let one = run(1);
        for threads in [2, 3, 0] {
            assert_eq!(run(threads), one, "{name}: {threads} threads");
        }
        for i in [0, 7, 8, 30, 52] {
            let (mut gc, mut gx) = (vec![0.0f32; c], vec![0.0f32; d]);
            made.log_prob_grad(
                &context[i * c..(i + 1) * c],
                &x[i * d..(i + 1) * d],
                Some(&mut gc),
                Some(&mut gx),
            )
            .unwrap();
            assert_eq!(gx, one.1[i * d..(i + 1) * d], "{name}: row {i} alone");
            assert_eq!(gc, one.0[i * c..(i + 1) * c], "{name}: row {i} alone");
        }
    }
}
