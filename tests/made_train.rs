//! The MADE training kernels (crkernels_core::nn::made_train): the minibatch loss and every
//! parameter's gradient against `Made::nll_grad` (float64, itself checked against central
//! differences and the NumPy reference in tests/made_grad.rs) on the model the trainer
//! saves, for every activation (1 to 3 hidden layers), with and without context, on each instruction set; masked
//! weights get exactly zero gradient.

use crkernels::math::simd::VectorIsa;
use crkernels::nn::made::{LayerSpec, MadeSpec, Standardize};
use crkernels::nn::made_train::{Architecture, DataOrder, TrainModel};
use crkernels::nn::{Activation, Made};
use crkernels::rng::Stream;

/// Every parameter of a spec in MadeGrad::values' order.
fn spec_values(spec: &MadeSpec) -> Vec<f64> {
    let mut out = Vec::new();
    for layer in &spec.layers {
        let LayerSpec::Dense { weight, context_weight, bias, .. } = layer else {
            panic!("plain layers only")
        };
        if let Some(cw) = context_weight {
            out.extend(cw.iter().map(|&v| f64::from(v)));
        }
        out.extend(weight.iter().chain(bias).map(|&v| f64::from(v)));
    }
    let h = &spec.heads;
    for part in [&h.logits.0, &h.logits.1, &h.means.0, &h.means.1, &h.scales.0, &h.scales.1] {
        out.extend(part.iter().map(|&v| f64::from(v)));
    }
    out
}

fn random_rows(n: usize, width: usize, seed: u64) -> Vec<f32> {
    let mut rng = Stream::new(seed, 7);
    (0..n * width).map(|_| rng.normal() as f32).collect()
}

fn architectures() -> Vec<Architecture> {
    let mut out = Vec::new();
    for (activation, n_context, secret, hidden) in [
        (Activation::Sigmoid, 0, true, vec![40]),
        (Activation::Tanh, 3, true, vec![33, 20]),
        (Activation::Relu, 2, false, vec![24]),
        (Activation::Sigmoid, 5, true, vec![50, 17, 9]),
        (Activation::LeakyRelu, 3, true, vec![30, 30]),
        (Activation::Elu, 1, false, vec![20, 25, 15]),
    ] {
        out.push(Architecture {
            n_context,
            secret_context: secret,
            n_dims: 6,
            hidden_units: hidden,
            n_components: 3,
            activation,
            order: DataOrder::Random,
        });
    }
    out
}

/// Loss and gradient of a minibatch of `n` rows from the training kernels.
fn kernel_loss_and_gradient(model: &TrainModel, context: &[f32], x: &[f32], n: usize) -> (f64, Vec<f64>) {
    let arch = model.architecture();
    let (c, d) = (arch.n_context, arch.n_dims);
    let stride = model.row_stride();
    let mut rows = vec![0.0f32; n * stride];
    for r in 0..n {
        model.fill_input(
            &context[r * c..(r + 1) * c],
            &x[r * d..(r + 1) * d],
            &mut rows[r * stride..(r + 1) * stride],
        );
    }
    let mut loss = vec![0.0f64; n];
    let mut scratch = model.scratch(n);
    assert!(model.forward_backward_rows(&mut rows, &mut loss, Some(1.0 / n as f32), &mut scratch));
    let grad = model.gradient(&rows, &mut scratch);
    // The gradient in the file layout: a copy of the model holding the gradient as parameters.
    let mut holder = model.clone();
    holder.set_params(&grad).unwrap();
    (loss.iter().sum::<f64>() / n as f64, spec_values(&holder.to_spec()))
}

#[test]
fn loss_and_gradient_match_the_float64_reference() {
    for (a, arch) in architectures().into_iter().enumerate() {
        for isa in VectorIsa::available() {
            let model =
                TrainModel::with_isa(arch.clone(), Standardize::default(), 11 + a as u64, isa).unwrap();
            let made = Made::new(model.to_spec()).unwrap();
            // One gradient chunk (37 rows) and several (300 rows: chunks of 128 summed).
            let n = if a % 2 == 0 { 37 } else { 300 };
            let context = random_rows(n, arch.n_context, 1);
            let x = random_rows(n, arch.n_dims, 2);
            let (loss, grad) = kernel_loss_and_gradient(&model, &context, &x, n);
            let (reference_loss, reference) = made.nll_grad(&context, &x).unwrap();
            assert!(
                (loss - reference_loss).abs() < 1e-5 * reference_loss.abs().max(1.0),
                "{arch:?} {isa:?}: loss {loss} vs {reference_loss}"
            );
            let reference: Vec<f64> = reference.values().collect();
            assert_eq!(grad.len(), reference.len());
            let mut worst = 0.0f64;
            for (i, (&g, &r)) in grad.iter().zip(&reference).enumerate() {
                if r == 0.0 {
                    // Masked weights (and exact zeros) must be exactly zero.
                    assert!(g.abs() < 1e-7, "{arch:?} {isa:?}: parameter {i}: {g} where the reference is 0");
                }
                worst = worst.max((g - r).abs() / r.abs().max(1.0));
            }
            assert!(worst < 1e-4, "{arch:?} {isa:?}: worst relative gradient error {worst:e}");
        }
    }
}

#[test]
fn masked_weights_have_exactly_zero_gradient() {
    let arch = architectures()[3].clone();
    let model = TrainModel::new(arch.clone(), Standardize::default(), 5).unwrap();
    let n = 20;
    let (_, grad) = kernel_loss_and_gradient(
        &model,
        &random_rows(n, arch.n_context, 3),
        &random_rows(n, arch.n_dims, 4),
        n,
    );
    let params = spec_values(&model.to_spec());
    let masked = params.iter().zip(&grad).filter(|&(&p, _)| p == 0.0).count();
    assert!(masked > 500, "the model should have many masked weights, found {masked}");
    for (&p, &g) in params.iter().zip(&grad) {
        if p == 0.0 {
            assert_eq!(g, 0.0);
        }
    }
}
