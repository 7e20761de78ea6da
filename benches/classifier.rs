//! Training throughput of the dense classifier of the SECRET two-sample test (section 3.2.2:
//! 19 features, one hidden layer of 32 ReLU units, sigmoid output): rows per second through
//! the forward pass, the analytic backward pass and the Adam step, for one epoch over 20 000
//! rows at minibatch 50 (the default) and 128, and a 2-layer (64, 32) network; and the
//! no-gradient evaluation (predict_proba) for comparison.
//!
//! cargo bench --bench classifier

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crkernels::nn::classifier::{ClassifierOptions, train_classifier};
use crkernels::rng::Stream;

const ROWS: usize = 20_000;
const FEATURES: usize = 19;

fn data() -> (Vec<f32>, Vec<u8>) {
    let mut s = Stream::new(1, 0);
    let x: Vec<f32> = (0..ROWS * FEATURES).map(|_| s.normal() as f32).collect();
    let t: Vec<u8> = (0..ROWS).map(|r| u8::from(x[r * FEATURES] + 0.5 * x[r * FEATURES + 3] > 0.0)).collect();
    (x, t)
}

fn bench(c: &mut Criterion) {
    let (x, t) = data();
    let mut group = c.benchmark_group("classifier_train_epoch");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    for (name, hidden, batch) in
        [("h32_b50", vec![32], 50), ("h32_b128", vec![32], 128), ("h64_32_b50", vec![64, 32], 50)]
    {
        let options = ClassifierOptions {
            hidden_units: hidden,
            batch_size: batch,
            max_epochs: 1,
            ..ClassifierOptions::default()
        };
        group.bench_function(name, |b| {
            b.iter(|| black_box(train_classifier(&x, &t, FEATURES, None, &options, |_| true).unwrap()))
        });
    }
    group.finish();

    let options = ClassifierOptions { max_epochs: 1, ..ClassifierOptions::default() };
    let (model, _) = train_classifier(&x, &t, FEATURES, None, &options, |_| true).unwrap();
    let mut group = c.benchmark_group("classifier_predict");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("h32", |b| b.iter(|| black_box(model.predict_proba(&x).unwrap())));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
