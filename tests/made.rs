//! The MADE emulator against the independent float64 NumPy references in tests/data/made/
//! (tests/reference/made_reference.py), the autoregressive property, sampling statistics, the
//! incremental sampler against the D-pass one, and bad input.

mod made_support;

use crkernels::emulator::{ParallelMade, load_made};
use crkernels::nn::{Activation, LoadOptions, Made};
use made_support::*;

mod isa_support;

fn options_for(meta: &std::collections::HashMap<String, String>) -> LoadOptions {
    LoadOptions {
        activation: meta.get("activation").and_then(|a| Activation::from_name(a)),
        epsilon: meta.get("epsilon").and_then(|e| e.parse().ok()),
        sbi_dummy_input: meta.get("sbi_dummy_input").map(|s| s == "true"),
    }
}

#[test]
fn log_prob_matches_the_float64_reference() {
    let cases = cases();
    assert!(cases.len() >= 10, "reference data missing: {} cases", cases.len());
    for (name, path, expected, meta) in cases {
        let made = load_made(&path, &options_for(&meta)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let x = as_f32(&expected["x"]);
        let context = expected.get("context").map(as_f32).unwrap_or_default();
        let reference = &expected["log_prob"].values;
        let n = reference.len();
        let mut one = vec![0.0f32; n];
        let mut two = vec![0.0f32; n];
        made.log_prob_parallel(&context, &x, 1, &mut one).unwrap_or_else(|e| panic!("{name}: {e}"));
        made.log_prob_parallel(&context, &x, 2, &mut two).unwrap();
        assert_eq!(one, two, "{name}: thread count changed the result");
        let mut worst = 0.0f64;
        for i in 0..n {
            let err = (f64::from(one[i]) - reference[i]).abs() / reference[i].abs().max(1.0);
            worst = worst.max(err);
            assert!(err <= 1e-5, "{name} row {i}: {} vs {} (scaled error {err:.2e})", one[i], reference[i]);
        }
        eprintln!("{name}: {n} rows, worst scaled error {worst:.2e}");
    }
}

fn load_case(name: &str) -> (Made, std::collections::HashMap<String, Tensor>) {
    let (_, path, expected, meta) =
        cases().into_iter().find(|c| c.0 == name).unwrap_or_else(|| panic!("case {name}"));
    (load_made(&path, &options_for(&meta)).unwrap(), expected)
}

/// Mean, variance and fourth central moment of column `j` of [n][d] samples.
fn moments(samples: &[f64], d: usize, j: usize) -> (f64, f64, f64) {
    let n = (samples.len() / d) as f64;
    let mean = samples.iter().skip(j).step_by(d).sum::<f64>() / n;
    let var = samples.iter().skip(j).step_by(d).map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let m4 = samples.iter().skip(j).step_by(d).map(|v| (v - mean).powi(4)).sum::<f64>() / n;
    (mean, var, m4)
}

fn correlation(samples: &[f64], d: usize, a: usize, b: usize) -> f64 {
    let (ma, va, _) = moments(samples, d, a);
    let (mb, vb, _) = moments(samples, d, b);
    let n = (samples.len() / d) as f64;
    let cov = samples.chunks(d).map(|r| (r[a] - ma) * (r[b] - mb)).sum::<f64>() / n;
    cov / (va * vb).sqrt()
}

#[test]
fn samples_agree_with_the_slow_reference_sampler() {
    let mut checked = 0;
    for (name, path, expected, meta) in cases() {
        let Some(reference) = expected.get("reference_samples") else { continue };
        let made = load_made(&path, &options_for(&meta)).unwrap();
        let d = made.n_dims();
        let reference = &reference.values;
        let m = reference.len() / d;
        let context = expected.get("sample_context").map(as_f32).unwrap_or_default();
        let mut ours = vec![0.0f32; m * d];
        made.sample_parallel(&context, 2024, 0, 2, &mut ours).unwrap();
        let ours: Vec<f64> = ours.iter().map(|&v| f64::from(v)).collect();
        // Both samples have m draws: a difference of estimates has twice one estimate's variance.
        let m_f = m as f64;
        for j in 0..d {
            let (mean_r, var_r, m4_r) = moments(reference, d, j);
            let (mean_o, var_o, _) = moments(&ours, d, j);
            let se_mean = (2.0 * var_r / m_f).sqrt();
            let se_var = (2.0 * (m4_r - var_r * var_r) / m_f).sqrt();
            assert!((mean_r - mean_o).abs() < 5.0 * se_mean, "{name} dim {j}: mean {mean_o} vs {mean_r}");
            assert!((var_r - var_o).abs() < 5.0 * se_var, "{name} dim {j}: variance {var_o} vs {var_r}");
            for k in j + 1..d {
                let (r_r, r_o) = (correlation(reference, d, j, k), correlation(&ours, d, j, k));
                // (1 - r^2) / sqrt(m) for each estimate, doubled for the heavier tails of a mixture.
                let se = 2.0 * (1.0 - r_r * r_r) * (2.0 / m_f).sqrt();
                assert!((r_r - r_o).abs() < 5.0 * se, "{name} dims {j},{k}: correlation {r_o} vs {r_r}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} cases with reference samples");
}

#[test]
fn one_dimensional_samples_pass_a_ks_test_against_the_exact_cdf() {
    for name in ["plain_d1_secret", "plain_d1_ctx0", "plain_d1_noctx"] {
        let path = data_dir().join(format!("{name}.safetensors"));
        let made = load_made(&path, &LoadOptions::default()).unwrap();
        let reference = PlainReference::load(&path);
        assert_eq!((made.n_dims(), reference.d), (1, 1));
        let context_row: Vec<f64> = (0..reference.c).map(|j| 0.3 - 0.4 * j as f64).collect();
        let n = 20_000;
        let context: Vec<f32> = (0..n).flat_map(|_| context_row.iter().map(|&v| v as f32)).collect();
        let mut x = vec![0.0f32; n];
        made.sample_parallel(&context, 11, 0, 2, &mut x).unwrap();
        // The exact mixture at the f32-rounded context the sampler sees.
        let c32: Vec<f64> = context_row.iter().map(|&v| f64::from(v as f32)).collect();
        let (log_pi, mu, sigma) = reference.mixtures(&c32, &[0.0]).remove(0);
        let mut standardised: Vec<f64> =
            x.iter().map(|&v| (f64::from(v) - reference.x_mean[0]) / reference.x_std[0]).collect();
        let ks = ks_statistic(&mut standardised, |v| mixture_cdf(&log_pi, &mu, &sigma, v));
        // Kolmogorov distribution: P(sqrt(n) D > 1.95) = 0.001.
        assert!(ks * (n as f64).sqrt() < 1.95, "{name}: KS statistic {ks} for n = {n}");
    }
}

#[test]
fn conditional_samples_follow_the_conditional_mixture() {
    let name = "plain_h2_sigmoid_k3_ctx0_samples";
    let path = data_dir().join(format!("{name}.safetensors"));
    let made = load_made(&path, &LoadOptions::default()).unwrap();
    let reference = PlainReference::load(&path);
    let (first, second) = (made.order()[0], made.order()[1]);
    let n = 20_000;
    let context_row = [0.7f32, -1.1];
    let context: Vec<f32> = (0..n).flat_map(|_| context_row).collect();
    let given = 1.25f32;
    let mut x = vec![0.0f32; n * 2];
    for row in x.chunks_mut(2) {
        row[first] = given;
    }
    made.sample_given_parallel(&context, &[first], 5, 0, 2, &mut x).unwrap();
    assert!(x.chunks(2).all(|r| r[first] == given));
    let mut point = [0.0f64; 2];
    point[first] = f64::from(given);
    let c64: Vec<f64> = context_row.iter().map(|&v| f64::from(v)).collect();
    let (log_pi, mu, sigma) = reference.mixtures(&c64, &point).remove(second);
    let mut standardised: Vec<f64> = x
        .chunks(2)
        .map(|r| (f64::from(r[second]) - reference.x_mean[second]) / reference.x_std[second])
        .collect();
    let ks = ks_statistic(&mut standardised, |v| mixture_cdf(&log_pi, &mu, &sigma, v));
    assert!(ks * (n as f64).sqrt() < 1.95, "KS statistic {ks} for n = {n}");
    // Dimensions that do not lead the order are refused.
    let err = made.sample_given(&context[..2], &[second], 5, 0, &mut x[..2]).unwrap_err();
    assert!(matches!(err, crkernels::Error::InvalidArgument(_)), "{err}");
}

#[test]
fn each_conditional_ignores_the_inputs_it_must_not_see() {
    for name in [
        "plain_h3_tanh_k3_ctxsecret",
        "plain_unmasked",
        "nflows_bare_ctx_bn_2blk_k5",
        "nflows_sbi_ctx_2blk_k5",
        "secret_shape",
    ] {
        let (made, expected) = load_case(name);
        let d = made.n_dims();
        let mut rank = vec![0; d];
        for (t, &dim) in made.order().iter().enumerate() {
            rank[dim] = t;
        }
        let x = as_f32(&expected["x"]);
        let context = expected.get("context").map(as_f32).unwrap_or_default();
        let c = made.n_context();
        let (x, context) = (&x[..4 * d], &context[..4 * c]);
        let mut base = vec![0.0f32; 4 * d];
        made.log_prob_dims(context, x, &mut base).unwrap();
        let mut total = vec![0.0f32; 4];
        made.log_prob(context, x, &mut total).unwrap();
        for row in 0..4 {
            let sum: f64 = base[row * d..(row + 1) * d].iter().map(|&v| f64::from(v)).sum();
            assert!(
                (sum - f64::from(total[row])).abs() < 1e-4 * sum.abs().max(1.0),
                "{name}: terms do not sum"
            );
        }
        let mut later_changed = false;
        for j in 0..d {
            let mut moved = x.to_vec();
            for row in 0..4 {
                moved[row * d + j] += 0.75;
            }
            let mut terms = vec![0.0f32; 4 * d];
            made.log_prob_dims(context, &moved, &mut terms).unwrap();
            for row in 0..4 {
                for dim in 0..d {
                    let (before, after) = (base[row * d + dim], terms[row * d + dim]);
                    if rank[dim] < rank[j] {
                        assert_eq!(before.to_bits(), after.to_bits(), "{name}: dim {dim} sees dim {j}");
                    } else if rank[dim] > rank[j] && before != after {
                        later_changed = true;
                    }
                }
            }
        }
        assert!(later_changed || d == 1, "{name}: no conditional depends on an earlier dimension");
    }
}

#[test]
fn incremental_sampler_is_bit_identical_to_d_forward_passes() {
    for (name, path, _, meta) in cases() {
        let made = load_made(&path, &options_for(&meta)).unwrap();
        let (c, d) = (made.n_context(), made.n_dims());
        let n = 40; // three tiles, the last one partial
        let context: Vec<f32> = (0..n * c).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut work = made.workspace();
        for given in [0, d / 2] {
            let mut fast = vec![0.0f32; n * d];
            let mut slow = vec![0.0f32; n * d];
            let values: Vec<f32> = (0..n * d).map(|i| (i as f32 * 0.11).cos()).collect();
            let dims = Some((values.as_slice(), given));
            for first in (0..n).step_by(16) {
                let lanes = 16.min(n - first);
                let (a, b) =
                    (&mut fast[first * d..(first + lanes) * d], &mut slow[first * d..(first + lanes) * d]);
                made.sample_tile(&mut work, &context, dims, 99, 5, first, lanes, a);
                made.sample_tile_reference(&mut work, &context, dims, 99, 5, first, lanes, b);
            }
            let same = fast.iter().zip(&slow).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{name} (given {given}): incremental and D-pass samplers differ");
        }
    }
}

#[test]
fn samples_do_not_depend_on_threads_or_batch_split() {
    let (made, _) = load_case("secret_shape");
    let (c, d) = (made.n_context(), made.n_dims());
    let n = 100;
    let context: Vec<f32> = (0..n * c).map(|i| ((i * 31 % 17) as f32) / 8.0 - 1.0).collect();
    let mut one = vec![0.0f32; n * d];
    let mut two = vec![0.0f32; n * d];
    let mut split = vec![0.0f32; n * d];
    made.sample_parallel(&context, 3, 0, 1, &mut one).unwrap();
    made.sample_parallel(&context, 3, 0, 2, &mut two).unwrap();
    let cut = 37;
    made.sample_parallel(&context[..cut * c], 3, 0, 2, &mut split[..cut * d]).unwrap();
    made.sample_parallel(&context[cut * c..], 3, cut as u64, 1, &mut split[cut * d..]).unwrap();
    assert_eq!(one, two);
    assert_eq!(one, split);
    let mut lp_one = vec![0.0f32; n];
    let mut lp_three = vec![0.0f32; n];
    made.log_prob_parallel(&context, &one, 1, &mut lp_one).unwrap();
    made.log_prob_parallel(&context, &one, 3, &mut lp_three).unwrap();
    assert_eq!(lp_one, lp_three);
}

/// Log-densities and samples of every reference model, as digests of their bits (for
/// [`made_bits_agree_under_every_instruction_set`]).
#[test]
fn made_bits() {
    for (name, path, expected, meta) in cases() {
        let made = load_made(&path, &options_for(&meta)).unwrap();
        let x = as_f32(&expected["x"]);
        let context = expected.get("context").map(as_f32).unwrap_or_default();
        let n = expected["log_prob"].values.len();
        let mut log_prob = vec![0.0f32; n];
        made.log_prob_parallel(&context, &x, 2, &mut log_prob).unwrap();
        let mut samples = vec![0.0f32; n * made.n_dims()];
        made.sample_parallel(&context, 11, 0, 2, &mut samples).unwrap();
        isa_support::print_digest(&name, log_prob.iter().chain(&samples).map(|v| v.to_bits()));
    }
}

/// MADE log-densities and samples are bit-identical on every instruction set this CPU has
/// (every set computes the masked products as the same chain of fused multiply-adds).
#[test]
fn made_bits_agree_under_every_instruction_set() {
    isa_support::bits_agree_under_every_isa("made_bits");
}

/// The equivalence and accuracy tests above, again under every instruction set this CPU has
/// (`CRKERNELS_ISA`, one child process each).
#[test]
fn equivalence_tests_pass_under_every_instruction_set() {
    isa_support::rerun_under_every_isa(&[
        "log_prob_matches_the_float64_reference",
        "samples_agree_with_the_slow_reference_sampler",
        "samples_do_not_depend_on_threads_or_batch_split",
    ]);
}

#[test]
fn the_selected_set_is_the_requested_one() {
    isa_support::assert_selected_set_is_requested();
}
