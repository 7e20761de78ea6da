//! The MADE trainer's throughput (issue 16, "Speed"): training rows per second through the
//! forward pass, the backward pass and the Adam step, on the SECRET conditional shape (5
//! context inputs, 19 dimensions, one hidden layer of 200 sigmoid units, K = 10) and the
//! single-point shape (no context), at minibatches 50 (the paper's) and 512, on 1 and 2
//! threads. One iteration is one epoch of 10 000 standard-normal rows (no validation split).
//! scripts/bench-train.sh runs this and the JAX reference (bench/made_train_jax.py) in one go
//! and prints the ratios.
//!
//! cargo bench --bench made_train

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crkernels::rng::Stream;
use crkernels::train::{MadeTrainer, TrainOptions};

const ROWS: usize = 10_000;

fn bench_train(c: &mut Criterion) {
    let n_dims = 19;
    for (shape, n_context) in [("secret", 5), ("single", 0)] {
        let mut rng = Stream::new(11, 0);
        let context: Vec<f32> = (0..ROWS * n_context).map(|_| rng.normal() as f32).collect();
        let x: Vec<f32> = (0..ROWS * n_dims).map(|_| rng.normal() as f32).collect();
        let mut group = c.benchmark_group(format!("made_train_{shape}"));
        group.sample_size(10);
        group.throughput(Throughput::Elements(ROWS as u64));
        for batch_size in [50, 512] {
            for n_threads in [1, 2] {
                let options = TrainOptions {
                    batch_size,
                    n_threads,
                    validation_fraction: 0.0,
                    max_epochs: usize::MAX,
                    ..TrainOptions::default()
                };
                let mut trainer =
                    MadeTrainer::new(&context, n_context, &x, n_dims, &options).expect("trainer");
                group.bench_function(format!("batch_{batch_size}_{n_threads}_threads"), |b| {
                    b.iter(|| trainer.run_epoch(None).expect("an epoch"))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench_train);
criterion_main!(benches);
