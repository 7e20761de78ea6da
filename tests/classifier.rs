//! The dense classifier and the classifier two-sample test (SECRET section 3.2.2) against
//! independent references: an f64 re-implementation of the network and its loss with central
//! finite differences; the Bayes-optimal accuracy Phi(delta / 2) of two unit Gaussians a
//! distance delta apart; the null distribution (accuracy 0.5 +- 0.5 / sqrt(n_test)) of two
//! samples of one distribution; determinism; bad input.

use crkernels::Error;
use crkernels::nn::classifier::{
    Classifier, ClassifierOptions, TwoSampleOptions, TwoSampleReport, train_classifier, two_sample_test,
};
use crkernels::rng::Stream;

/// Standard normal cdf, Phi(x) = erfc(-x / sqrt 2) / 2 (libm's erfc).
fn phi(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// n rows of d independent normals with mean `shift` on the first coordinate.
fn gaussian_rows(n: usize, d: usize, shift: f64, seed: u64, stream: u64) -> Vec<f32> {
    let mut s = Stream::new(seed, stream);
    (0..n * d).map(|k| (s.normal() + if k % d == 0 { shift } else { 0.0 }) as f32).collect()
}

/// The mean BCE of the network in f64, written out from the documented layout (weights
/// W[i][j] input-major then biases, per layer; ReLU hidden layers; logit output), with the
/// classifier's standardisation.
fn loss_f64(params: &[f64], hidden: &[usize], mean: &[f32], scale: &[f32], x: &[f32], t: &[u8]) -> f64 {
    let d = mean.len();
    let mut total = 0.0;
    for (row, &label) in x.chunks(d).zip(t) {
        let mut h: Vec<f64> = row
            .iter()
            .zip(mean)
            .zip(scale)
            .map(|((&v, &m), &s)| (f64::from(v) - f64::from(m)) * f64::from(s))
            .collect();
        let mut offset = 0;
        let sizes: Vec<usize> = hidden.iter().copied().chain([1]).collect();
        for (l, &n_out) in sizes.iter().enumerate() {
            let n_in = h.len();
            let w = &params[offset..offset + n_in * n_out];
            let b = &params[offset + n_in * n_out..offset + (n_in + 1) * n_out];
            offset += (n_in + 1) * n_out;
            let mut next: Vec<f64> = b.to_vec();
            for i in 0..n_in {
                for j in 0..n_out {
                    next[j] += h[i] * w[i * n_out + j];
                }
            }
            if l + 1 < sizes.len() {
                next.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            h = next;
        }
        let z = h[0];
        let p = 1.0 / (1.0 + (-z).exp());
        total += if label == 1 { -p.ln() } else { -(1.0 - p).ln() };
    }
    total / t.len() as f64
}

#[test]
fn gradient_matches_central_differences_in_f64() {
    for hidden in [vec![5], vec![4, 3], vec![3, 4, 2]] {
        let d = 3;
        let n = 40;
        let x: Vec<f32> = gaussian_rows(n, d, 0.0, 7, 1)
            .iter()
            .enumerate()
            .map(|(k, v)| v * 3.0 + k as f32 % 5.0)
            .collect();
        let t: Vec<u8> = (0..n).map(|r| (r % 3 == 0) as u8).collect();
        let (mean, scale) = crkernels::nn::classifier::standardisation(&x, d).unwrap();
        let model = Classifier::new(d, &hidden, mean.clone(), scale.clone(), 11).unwrap();
        let mut grad = vec![0.0f32; model.parameters().len()];
        let loss = model.loss_gradient(&x, &t, &mut grad).unwrap();
        let p64: Vec<f64> = model.parameters().iter().map(|&p| f64::from(p)).collect();
        let reference = loss_f64(&p64, &hidden, &mean, &scale, &x, &t);
        assert!((loss - reference).abs() < 1e-6, "{hidden:?}: loss {loss} vs f64 {reference}");
        let mut worst = 0.0f64;
        for k in 0..p64.len() {
            let h = 1e-6;
            let (mut up, mut down) = (p64.clone(), p64.clone());
            up[k] += h;
            down[k] -= h;
            let fd = (loss_f64(&up, &hidden, &mean, &scale, &x, &t)
                - loss_f64(&down, &hidden, &mean, &scale, &x, &t))
                / (2.0 * h);
            let err = (f64::from(grad[k]) - fd).abs() / fd.abs().max(1.0);
            worst = worst.max(err);
            assert!(err < 1e-5, "{hidden:?}: parameter {k}: analytic {} vs central difference {fd}", grad[k]);
        }
        eprintln!("hidden {hidden:?}: loss {loss:.6} (f64 {reference:.6}), worst gradient error {worst:.2e}");
        // predict_proba against the same f64 forward pass (the BCE of one row with label 1 is
        // -ln p).
        let p = model.predict_proba(&x[..d]).unwrap();
        let want = (-loss_f64(&p64, &hidden, &mean, &scale, &x[..d], &[1])).exp();
        assert!((f64::from(p[0]) - want).abs() < 1e-6, "{} vs {want}", p[0]);
    }
}

fn gaussian_test(delta: f64, n: usize, d: usize, seed: u64) -> TwoSampleReport {
    let a = gaussian_rows(n, d, 0.0, seed, 1);
    let b = gaussian_rows(n, d, delta, seed, 2);
    let options = TwoSampleOptions {
        classifier: ClassifierOptions { max_epochs: 20, patience: 5, seed, ..ClassifierOptions::default() },
        validation_fraction: 0.1,
        test_fraction: 0.2,
    };
    two_sample_test(&a, &b, d, &options).unwrap()
}

#[test]
fn separated_gaussians_reach_the_bayes_accuracy() {
    for (delta, seed) in [(1.0, 3), (2.0, 4)] {
        let start = std::time::Instant::now();
        let r = gaussian_test(delta, 25_000, 4, seed);
        let bayes = phi(delta / 2.0);
        let n_test = r.n_test as f64;
        let se = (bayes * (1.0 - bayes) / n_test).sqrt();
        eprintln!(
            "delta {delta}: accuracy {:.4} (Bayes {bayes:.4}, SE {se:.4}), test BCE {:.4}, {} epochs (best {}), {:.2} s",
            r.test_accuracy,
            r.test_bce,
            r.epochs_run,
            r.best_epoch,
            start.elapsed().as_secs_f64()
        );
        assert_eq!(r.n_test, 10_000);
        assert!(
            (r.test_accuracy - bayes).abs() < 3.0 * se,
            "delta {delta}: accuracy {} vs Bayes {bayes} (3 SE = {})",
            r.test_accuracy,
            3.0 * se
        );
        assert!(r.test_bce < std::f64::consts::LN_2);
    }
}

#[test]
fn one_distribution_gives_half() {
    let (n, d) = (10_000, 5);
    let a = gaussian_rows(n, d, 0.0, 21, 1);
    let b = gaussian_rows(n, d, 0.0, 21, 2);
    let options = TwoSampleOptions {
        classifier: ClassifierOptions { max_epochs: 10, seed: 5, ..ClassifierOptions::default() },
        ..TwoSampleOptions::default()
    };
    let r = two_sample_test(&a, &b, d, &options).unwrap();
    eprintln!(
        "same distribution: accuracy {:.4} +- {:.4}, BCE {:.4}",
        r.test_accuracy, r.null_standard_error, r.test_bce
    );
    assert_eq!((r.n_per_class, r.n_train, r.n_validation, r.n_test), (n, 16_000, 2_000, 2_000));
    assert!((r.null_standard_error - (0.25f64 / 2000.0).sqrt()).abs() < 1e-15);
    assert!((r.test_accuracy - 0.5).abs() < 3.0 * r.null_standard_error, "{r:?}");
}

#[test]
fn unequal_samples_are_balanced() {
    let d = 2;
    let a = gaussian_rows(3000, d, 0.0, 1, 1);
    let b = gaussian_rows(1000, d, 0.0, 1, 2);
    let options = TwoSampleOptions {
        classifier: ClassifierOptions { max_epochs: 2, ..ClassifierOptions::default() },
        ..TwoSampleOptions::default()
    };
    let r = two_sample_test(&a, &b, d, &options).unwrap();
    assert_eq!((r.n_per_class, r.n_train, r.n_validation, r.n_test), (1000, 1600, 200, 200));
    // The same with a and b swapped: the larger sample's subset is picked the same way.
    assert!(two_sample_test(&b, &a, d, &options).is_ok());
}

#[test]
fn same_seed_same_bits() {
    let d = 3;
    let x = gaussian_rows(2000, d, 0.0, 9, 1);
    let t: Vec<u8> = (0..2000).map(|r| u8::from(x[r * d] + 0.3 * x[r * d + 1] > 0.2)).collect();
    let options = ClassifierOptions {
        max_epochs: 3,
        hidden_units: vec![16, 8],
        seed: 42,
        ..ClassifierOptions::default()
    };
    let (m1, r1) =
        train_classifier(&x[300..], &t[100..], d, Some((&x[..300], &t[..100])), &options, |_| true).unwrap();
    let (m2, r2) =
        train_classifier(&x[300..], &t[100..], d, Some((&x[..300], &t[..100])), &options, |_| true).unwrap();
    let bits = |m: &Classifier| m.parameters().iter().map(|p| p.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&m1), bits(&m2));
    assert_eq!(r1.final_train_bce.to_bits(), r2.final_train_bce.to_bits());
    assert_eq!(r1.best_validation_bce.to_bits(), r2.best_validation_bce.to_bits());
    let (m3, _) = train_classifier(
        &x[300..],
        &t[100..],
        d,
        None,
        &ClassifierOptions { seed: 43, ..options.clone() },
        |_| true,
    )
    .unwrap();
    assert_ne!(bits(&m1), bits(&m3));
    // A learnable rule is learnt: validation accuracy well above 0.5.
    assert!(r1.best_validation_accuracy > 0.85, "{r1:?}");
    // The callback sees every epoch and can stop training.
    let mut seen = Vec::new();
    let (_, r4) = train_classifier(&x[300..], &t[100..], d, None, &options, |s| {
        seen.push(s.epoch);
        s.epoch < 1
    })
    .unwrap();
    assert_eq!((seen, r4.epochs_run), (vec![0, 1], 2));

    let a = gaussian_rows(600, d, 0.0, 2, 1);
    let b = gaussian_rows(500, d, 0.5, 2, 2);
    let o = TwoSampleOptions {
        classifier: ClassifierOptions { max_epochs: 3, ..ClassifierOptions::default() },
        ..TwoSampleOptions::default()
    };
    let (r1, r2) = (two_sample_test(&a, &b, d, &o).unwrap(), two_sample_test(&a, &b, d, &o).unwrap());
    assert_eq!(format!("{r1:?}"), format!("{r2:?}"));
    assert_eq!(r1.test_accuracy.to_bits(), r2.test_accuracy.to_bits());
    assert_eq!(r1.test_bce.to_bits(), r2.test_bce.to_bits());
}

fn invalid(result: Result<TwoSampleReport, Error>, needle: &str) {
    match result {
        Err(Error::InvalidArgument(m)) => assert!(m.contains(needle), "message {m:?} lacks {needle:?}"),
        other => panic!("expected InvalidArgument containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn bad_input_is_refused() {
    let d = 2;
    let a = gaussian_rows(500, d, 0.0, 1, 1);
    let b = gaussian_rows(500, d, 0.0, 1, 2);
    let ok = TwoSampleOptions::default();
    let with = |f: &dyn Fn(&mut TwoSampleOptions)| {
        let mut o = ok.clone();
        f(&mut o);
        o
    };
    invalid(two_sample_test(&a, &b, 0, &ok), "n_features");
    invalid(two_sample_test(&a[..999], &b, d, &ok), "multiple");
    let mut nan = a.clone();
    nan[7] = f32::NAN;
    invalid(two_sample_test(&nan, &b, d, &ok), "a row 3 column 1");
    let mut inf = b.clone();
    inf[0] = f32::INFINITY;
    invalid(two_sample_test(&a, &inf, d, &ok), "b row 0 column 0");
    let mut constant = a.clone();
    let mut constant_b = b.clone();
    for k in (1..constant.len()).step_by(2) {
        constant[k] = 2.5;
        constant_b[k] = 2.5;
    }
    invalid(two_sample_test(&constant, &constant_b, d, &ok), "feature 1 has zero variance");
    invalid(two_sample_test(&a[..20], &b, d, &ok), "too few rows");
    invalid(two_sample_test(&[], &b, d, &ok), "too few rows");
    invalid(
        two_sample_test(&a, &b, d, &with(&|o| o.classifier.hidden_units = vec![])),
        "1 to 8 hidden layers",
    );
    invalid(two_sample_test(&a, &b, d, &with(&|o| o.classifier.hidden_units = vec![4; 9])), "got 9");
    invalid(
        two_sample_test(&a, &b, d, &with(&|o| o.classifier.hidden_units = vec![4, 0])),
        "hidden layer 1 has 0 units",
    );
    invalid(two_sample_test(&a, &b, d, &with(&|o| o.classifier.batch_size = 0)), "batch_size");
    for lr in [0.0, -1e-3, f64::NAN, f64::INFINITY] {
        invalid(two_sample_test(&a, &b, d, &with(&|o| o.classifier.learning_rate = lr)), "learning_rate");
    }
    invalid(two_sample_test(&a, &b, d, &with(&|o| o.classifier.max_epochs = 0)), "max_epochs");
    invalid(two_sample_test(&a, &b, d, &with(&|o| o.test_fraction = 0.0)), "test_fraction");
    invalid(two_sample_test(&a, &b, d, &with(&|o| o.validation_fraction = 1.0)), "validation_fraction");
    invalid(two_sample_test(&a, &b, d, &with(&|o| o.validation_fraction = f64::NAN)), "validation_fraction");
    invalid(
        two_sample_test(&a, &b, d, &with(&|o| (o.validation_fraction, o.test_fraction) = (0.5, 0.5))),
        "< 1",
    );
    invalid(
        two_sample_test(&a, &b, d, &with(&|o| (o.validation_fraction, o.classifier.patience) = (0.0, 3))),
        "patience",
    );
    // Labels other than 0 or 1, and fewer rows than one minibatch, for the plain trainer.
    let t = vec![2u8; 500];
    assert!(matches!(
        train_classifier(&a, &t, d, None, &ClassifierOptions::default(), |_| true),
        Err(Error::InvalidArgument(m)) if m.contains("must be 0 or 1")
    ));
    assert!(matches!(
        train_classifier(&a[..40], &[0; 20], d, None, &ClassifierOptions::default(), |_| true),
        Err(Error::InvalidArgument(m)) if m.contains("fewer than one minibatch")
    ));
    // Without a validation set the last epoch is kept and the validation numbers are NaN.
    let r =
        two_sample_test(&a, &b, d, &with(&|o| (o.validation_fraction, o.classifier.max_epochs) = (0.0, 2)))
            .unwrap();
    assert!(r.best_validation_bce.is_nan() && r.validation_accuracy.is_nan());
    assert_eq!((r.best_epoch, r.epochs_run, r.n_validation), (1, 2, 0));
}

/// The SECRET recipe's scale: 1e5 rows per sample, 19 features, 100 epochs (the paper's
/// settings, the defaults). Slow (seconds): `cargo test --release --test classifier -- --ignored`.
#[test]
#[ignore]
fn recipe_scale_timing() {
    let (n, d) = (100_000, 19);
    let a = gaussian_rows(n, d, 0.0, 31, 1);
    let b = gaussian_rows(n, d, 0.05, 31, 2);
    let start = std::time::Instant::now();
    let r = two_sample_test(&a, &b, d, &TwoSampleOptions::default()).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "1e5 + 1e5 rows x 19 features, 100 epochs: {seconds:.1} s ({:.2e} training rows/s); accuracy {:.4} \
         (Bayes {:.4}) +- {:.4}, best epoch {}",
        (r.n_train * r.epochs_run) as f64 / seconds,
        r.test_accuracy,
        phi(0.025),
        r.null_standard_error,
        r.best_epoch
    );
    assert!(seconds < 30.0);
}
