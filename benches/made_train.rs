//! The MADE trainer's throughput (issue 16, "Speed"): training rows per second through the
//! forward pass, the backward pass and the Adam step, on the SECRET conditional shape (5
//! context inputs, 19 dimensions, one hidden layer of 200 sigmoid units, K = 10) and the
//! single-point shape (no context), at minibatches 50 (the paper's) and 512, on 1 and 2
//! threads. One iteration is one epoch of 10 000 standard-normal rows (no validation split).
//! scripts/bench-train.sh runs this and the JAX reference (bench/made_train_jax.py) in one go
//! and prints the ratios.
//!
//! A second group measures one core's single-precision FMA peak, for the floor.
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

/// The single-precision FMA peak of one core: 12 independent chains of vector fused
/// multiply-adds (enough to cover the latency), 2 flops per lane each. The floor of a training
/// step is its flops per row over this rate (BENCHMARKS.md).
fn bench_fma_peak(c: &mut Criterion) {
    const ITERATIONS: usize = 100_000;
    let mut group = c.benchmark_group("fma_peak");
    group.sample_size(10);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        group.throughput(Throughput::Elements((ITERATIONS * 12 * 8 * 2) as u64));
        // SAFETY: AVX2 and FMA were detected.
        group.bench_function("avx2_flops", |b| b.iter(|| unsafe { fma_chains_avx2(ITERATIONS) }));
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        group.throughput(Throughput::Elements((ITERATIONS * 12 * 16 * 2) as u64));
        // SAFETY: AVX-512F was detected.
        group.bench_function("avx512_flops", |b| b.iter(|| unsafe { fma_chains_avx512(ITERATIONS) }));
    }
    group.finish();
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_chains_avx2(iterations: usize) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    let mut acc = [_mm256_set1_ps(1.0); 12];
    for _ in 0..iterations {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut out = [0.0f32; 8];
    let sum = acc.iter().fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
    // SAFETY: out holds 8 floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    std::hint::black_box(out[0])
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_chains_avx512(iterations: usize) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    let mut acc = [_mm512_set1_ps(1.0); 12];
    for _ in 0..iterations {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let sum = acc.iter().fold(_mm512_setzero_ps(), |s, &v| _mm512_add_ps(s, v));
    std::hint::black_box(_mm512_reduce_add_ps(sum))
}

criterion_group!(benches, bench_train, bench_fma_peak);
criterion_main!(benches);
