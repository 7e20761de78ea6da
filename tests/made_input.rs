//! Bad input to the MADE loader and kernels (a named error and a message, never a panic), the
//! floor of the log-density far in the tails, and a fuzz test of the loader over random byte
//! mutations of valid files.

mod made_support;

use std::panic::{AssertUnwindSafe, catch_unwind};

use crkernels::Error;
use crkernels::emulator::{ParallelMade, load_made};
use crkernels::nn::made::{HeadsSpec, LayerSpec, MadeSpec, ScaleHead, Standardize};
use crkernels::nn::{Activation, LoadOptions, Made};
use made_support::*;

fn load_bytes(bytes: &[u8]) -> crkernels::Result<Made> {
    Made::from_safetensors(bytes, &LoadOptions::default())
}

fn expect_format(result: crkernels::Result<Made>, mention: &str) {
    match result {
        Err(Error::Format(message)) => {
            assert!(message.contains(mention), "message {message:?} does not name {mention:?}")
        }
        Err(other) => panic!("expected a format error naming {mention:?}, got {other}"),
        Ok(_) => panic!("accepted a bad model (expected an error naming {mention:?})"),
    }
}

/// A valid plain model: D = 2, C = 1 (degree 1), one hidden layer of 3 tanh units, K = 2.
fn plain_tensors() -> Vec<(String, &'static str, Vec<usize>, Vec<u8>)> {
    let f = |name: &str, shape: Vec<usize>, values: Vec<f32>| {
        (name.to_string(), "F32", shape, f32_bytes(&values))
    };
    vec![
        ("degrees.input".to_string(), "I64", vec![3], i64_bytes(&[1, 3, 2])),
        f("hidden.0.weight", vec![3, 3], vec![0.5, -0.3, 0.2, 0.1, 0.4, -0.6, 0.3, 0.3, 0.3]),
        f("hidden.0.bias", vec![3], vec![0.1, -0.2, 0.3]),
        ("hidden.0.degrees".to_string(), "I64", vec![3], i64_bytes(&[1, 2, 2])),
        f("output.logits.weight", vec![4, 3], vec![0.2; 12]),
        f("output.logits.bias", vec![4], vec![0.0, 0.5, -0.5, 0.1]),
        f("output.means.weight", vec![4, 3], vec![0.3; 12]),
        f("output.means.bias", vec![4], vec![-1.0, 1.0, 0.5, -0.5]),
        f("output.log_scales.weight", vec![4, 3], vec![0.1; 12]),
        f("output.log_scales.bias", vec![4], vec![-0.5, 0.0, -0.2, 0.1]),
    ]
}

const PLAIN_META: [(&str, &str); 5] = [
    ("format", "crkernels.made.v1"),
    ("n_context", "1"),
    ("n_dims", "2"),
    ("n_components", "2"),
    ("activation", "tanh"),
];

#[test]
fn a_hand_written_plain_file_loads() {
    let made = load_bytes(&safetensors_bytes(&plain_tensors(), &PLAIN_META)).unwrap();
    assert_eq!((made.n_context(), made.n_dims(), made.n_components()), (1, 2, 2));
    // Data degrees 3 and 2: dimension 1 is drawn first.
    assert_eq!(made.order(), &[1, 0]);
}

#[test]
fn bad_files_are_rejected_with_the_tensor_named() {
    let dir = data_dir();
    let missing = load_made(&dir.join("no_such_model.safetensors"), &LoadOptions::default());
    assert!(matches!(&missing, Err(Error::Io(m)) if m.contains("no_such_model")), "{:?}", missing.err());
    for (file, mention) in [
        ("bad_format", "format"),
        ("bad_degrees", "hidden.0.degrees"),
        ("bad_context_degree", "degrees.input"),
        ("bad_shape", "output.means.weight"),
    ] {
        expect_format(load_made(&dir.join(format!("{file}.safetensors")), &LoadOptions::default()), mention);
    }
    let good = std::fs::read(dir.join("plain_h1_sigmoid_k1.safetensors")).unwrap();
    for cut in [0, 7, 8, 100, good.len() / 2, good.len() - 1] {
        expect_format(load_bytes(&good[..cut]), "not a safetensors file");
    }
    let meta_with = |key: &'static str, value: &'static str| {
        PLAIN_META.iter().map(|&(k, v)| if k == key { (k, value) } else { (k, v) }).collect::<Vec<_>>()
    };
    let tensors = plain_tensors();
    expect_format(
        load_bytes(&safetensors_bytes(&tensors, &meta_with("format", "crkernels.made.v2"))),
        "format",
    );
    expect_format(load_bytes(&safetensors_bytes(&tensors, &meta_with("activation", "gelu"))), "activation");
    expect_format(load_bytes(&safetensors_bytes(&tensors, &meta_with("n_dims", "3"))), "degrees.input");
    expect_format(
        load_bytes(&safetensors_bytes(&tensors, &meta_with("n_components", "two"))),
        "n_components",
    );
    let with = |name: &str, replacement: (String, &'static str, Vec<usize>, Vec<u8>)| {
        let mut t = plain_tensors();
        let i = t.iter().position(|x| x.0 == name).unwrap();
        t[i] = replacement;
        safetensors_bytes(&t, &PLAIN_META)
    };
    let degrees =
        |name: &str, values: &[i64]| (name.to_string(), "I64", vec![values.len()], i64_bytes(values));
    // Context degree not below the data degrees; repeated data degrees; hidden degrees above
    // the highest data degree (3) or negative. Degrees 0 (reads no input) and 3 (feeds no
    // output) are harmless and load.
    expect_format(load_bytes(&with("degrees.input", degrees("degrees.input", &[2, 3, 2]))), "degrees.input");
    expect_format(load_bytes(&with("degrees.input", degrees("degrees.input", &[1, 2, 2]))), "degrees.input");
    for bad in [[1, 2, 4], [-1, 1, 2]] {
        expect_format(
            load_bytes(&with("hidden.0.degrees", degrees("hidden.0.degrees", &bad))),
            "hidden.0.degrees",
        );
    }
    load_bytes(&with("hidden.0.degrees", degrees("hidden.0.degrees", &[0, 3, 2])))
        .expect("hidden degrees 0 and the highest data degree are harmless");
    // NaN weights and a missing tensor.
    let mut nan = vec![0.1f32; 12];
    nan[7] = f32::NAN;
    let nan_heads = ("output.means.weight".to_string(), "F32", vec![4, 3], f32_bytes(&nan));
    expect_format(load_bytes(&with("output.means.weight", nan_heads)), "output.means.weight");
    let mut t = plain_tensors();
    t.retain(|x| x.0 != "output.log_scales.bias");
    expect_format(load_bytes(&safetensors_bytes(&t, &PLAIN_META)), "output.log_scales.bias");
    // A wrong dtype.
    let ints = ("hidden.0.bias".to_string(), "I64", vec![3], i64_bytes(&[1, 2, 3]));
    expect_format(load_bytes(&with("hidden.0.bias", ints)), "hidden.0.bias");
}

#[test]
fn an_nflows_mask_that_breaks_the_autoregressive_property_is_rejected() {
    let (tensors, _) = read_all(&data_dir().join("nflows_mademog_noctx_1blk_k1.safetensors"));
    let mut named: Vec<(String, &'static str, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in &tensors {
        let mut values: Vec<f64> = t.values.clone();
        if name == "_made.blocks.0.linear_layers.0.mask" {
            let i = values.iter().position(|&v| v == 0.0).unwrap();
            values[i] = 1.0;
        }
        let (dtype, bytes) = if name.ends_with("degrees") {
            ("I64", i64_bytes(&values.iter().map(|&v| v as i64).collect::<Vec<_>>()))
        } else {
            ("F32", f32_bytes(&values.iter().map(|&v| v as f32).collect::<Vec<_>>()))
        };
        named.push((name.clone(), dtype, t.shape.clone(), bytes));
    }
    expect_format(load_bytes(&safetensors_bytes(&named, &[])), "_made.blocks.0.linear_layers.0.mask");
}

#[test]
fn bad_batches_are_rejected_before_anything_is_written() {
    let made = load_bytes(&safetensors_bytes(&plain_tensors(), &PLAIN_META)).unwrap();
    let mut out = vec![7.0f32; 2];
    let err = made.log_prob_parallel(&[0.0, 1.0], &[0.0, 1.0, f32::NAN, 2.0], 2, &mut out).unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("x[1][0]")), "{err}");
    assert_eq!(out, [7.0, 7.0]);
    let err = made.log_prob_parallel(&[f32::INFINITY, 1.0], &[0.0; 4], 1, &mut out).unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("context[0][0]")), "{err}");
    let err = made.log_prob_parallel(&[], &[], 1, &mut []).unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("n = 0")), "{err}");
    let err = made.sample_parallel(&[], 1, 0, 1, &mut []).unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("n = 0")), "{err}");
    let err = made.log_prob_parallel(&[0.0], &[0.0; 4], 1, &mut out).unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("context")), "{err}");
}

/// D = 1 with a tiny sigma: a point 1e30 away has log-density about -1.5e129, below f32.
fn narrow_model(log_scale: f32) -> Made {
    let head = |bias: f32| (vec![0.0f32], vec![bias]);
    Made::new(MadeSpec {
        context_degrees: vec![],
        data_degrees: vec![1],
        n_components: 1,
        layers: vec![LayerSpec::Dense {
            input: 0,
            weight: vec![0.5],
            context_weight: None,
            bias: vec![0.0],
            degrees: vec![0],
            activation: Activation::Sigmoid,
            residual: None,
        }],
        heads: HeadsSpec {
            logits: head(0.0),
            means: head(0.0),
            scales: head(log_scale),
            scale: ScaleHead::Exp,
        },
        standardize: Standardize::default(),
    })
    .unwrap()
}

#[test]
fn far_tails_are_finite_and_floored_at_the_most_negative_f32() {
    let made = narrow_model(-80.0);
    let mut out = [0.0f32; 4];
    made.log_prob(&[], &[1e30, -1e30, 1e-30, 0.0], &mut out).unwrap();
    assert_eq!(out[0], f32::MIN);
    assert_eq!(out[1], f32::MIN);
    // ln N(0; 0, e^-80) = 80 - ln(2 pi)/2; at 1e-30 z = 5.5e4, a finite value below it.
    assert!((f64::from(out[3]) - (80.0 - 0.918_938_533_204_672_8)).abs() < 1e-4, "{}", out[3]);
    assert!(out[2].is_finite() && out[2] < out[3] && out[2] > -1.6e9, "{}", out[2]);
    // |ln sigma| beyond 700 takes the careful path: still finite or floored, never NaN.
    let made = narrow_model(-750.0);
    made.log_prob(&[], &[1.0, 0.0, -3e38, 3e38], &mut out).unwrap();
    assert_eq!(out[0], f32::MIN);
    assert_eq!(out[1], f32::MAX.min(750.0 - 0.918_938_5), "{}", out[1]);
    // The SECRET-shape model far in the tails of every dimension.
    let (_, path, expected, _) = cases().into_iter().find(|c| c.0 == "secret_shape").unwrap();
    let made = load_made(&path, &LoadOptions::default()).unwrap();
    let context = as_f32(&expected["context"]);
    for scale in [1e3f32, -1e3, 1e6, -1e6, 1e12, 1e20] {
        let x = vec![scale; 19];
        let mut lp = [0.0f32];
        made.log_prob(&context[..5], &x, &mut lp).unwrap();
        assert!(lp[0].is_finite() && lp[0] < -1e3, "x = {scale}: {}", lp[0]);
    }
}

/// xorshift64*: the test's own random numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Cases per file; recorded in NOTES-issue4.md.
const FUZZ_CASES: usize = 4000;

#[test]
fn random_byte_mutations_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut outcomes = [0usize; 2];
    for file in ["plain_h2_relu_k10_ctx0_std", "nflows_bare_ctx_bn_2blk_k5"] {
        let good = std::fs::read(data_dir().join(format!("{file}.safetensors"))).unwrap();
        let header = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        for case in 0..FUZZ_CASES {
            let mut bytes = good.clone();
            match case % 4 {
                // A few random bytes anywhere.
                0 => (0..1 + rng.below(8)).for_each(|_| {
                    let i = rng.below(bytes.len());
                    bytes[i] = rng.next() as u8;
                }),
                // One byte of the JSON header (shapes, offsets, dtypes, names, metadata).
                1 => {
                    let i = rng.below(header);
                    bytes[i] = b"0123456789[]{},:\"FIU -"[rng.below(22)];
                }
                // A single bit in the data (weights, degrees, masks).
                2 => {
                    let i = header + rng.below(bytes.len() - header);
                    bytes[i] ^= 1 << rng.below(8);
                }
                // A truncation or an extension.
                _ => {
                    if rng.below(2) == 0 {
                        bytes.truncate(rng.below(bytes.len()));
                    } else {
                        bytes.extend((0..1 + rng.below(16)).map(|_| rng.next() as u8));
                    }
                }
            }
            let result = catch_unwind(AssertUnwindSafe(|| {
                let made = load_bytes(&bytes).ok()?;
                let (c, d) = (made.n_context(), made.n_dims());
                let context = vec![0.5f32; 3 * c];
                let mut x = vec![0.0f32; 3 * d];
                made.sample_parallel(&context, 1, 0, 1, &mut x).ok()?;
                let mut lp = [0.0f32; 3];
                // Ok, or OutOfDomain when mutated weights overflow f32: never a panic.
                let _ = made.log_prob_parallel(&context, &x, 1, &mut lp);
                Some(())
            }));
            match result {
                Ok(loaded) => outcomes[usize::from(loaded.is_some())] += 1,
                Err(_) => panic!("{file}: case {case} panicked"),
            }
        }
    }
    eprintln!(
        "fuzz: {} cases, {} rejected, {} loaded and evaluated",
        2 * FUZZ_CASES,
        outcomes[0],
        outcomes[1]
    );
    assert!(outcomes[0] > 0 && outcomes[1] > 0);
}
