//! The MADE emulator at the SECRET shape (5 context inputs, 19 dimensions, one hidden layer of
//! 200 sigmoid units, K = 10; tests/data/made/secret_shape.safetensors): log-densities and
//! samples per second, on 1 and 2 threads, in batches of 10 000; the gradients of log p with
//! respect to the context and x (crk_made_log_prob_grad) next to log_prob, and the parameter
//! gradient of the mean NLL (Made::nll_grad, one thread) in batches of 512.
//!
//! cargo bench --bench made

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crkernels::emulator::{ParallelMade, load_made};
use crkernels::nn::LoadOptions;

fn bench_made(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/made/secret_shape.safetensors");
    let made = load_made(&path, &LoadOptions::default()).expect("the SECRET-shape model");
    let n = 10_000;
    let (n_context, n_dims) = (made.n_context(), made.n_dims());
    // Parameters and spectra: standard-normal-ish values from the model's own sampler.
    let context: Vec<f32> = (0..n * n_context).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
    let mut x = vec![0.0f32; n * n_dims];
    made.sample_parallel(&context, 1, 0, 0, &mut x).unwrap();
    let mut log_prob = vec![0.0f32; n];
    let mut group = c.benchmark_group("made_secret_shape");
    group.sample_size(20);
    group.throughput(Throughput::Elements(n as u64));
    for threads in [1, 2] {
        group.bench_function(format!("log_prob_10000_{threads}_threads"), |b| {
            b.iter(|| made.log_prob_parallel(&context, &x, threads, &mut log_prob).unwrap())
        });
        group.bench_function(format!("sample_10000_{threads}_threads"), |b| {
            b.iter(|| made.sample_parallel(&context, black_box(7), 0, threads, &mut x).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("made_secret_shape_grad");
    group.sample_size(10);
    let m = 2_000;
    let (mut gc, mut gx) = (vec![0.0f32; m * n_context], vec![0.0f32; m * n_dims]);
    let mut lp = vec![0.0f32; m];
    group.throughput(Throughput::Elements(m as u64));
    for threads in [1, 2] {
        group.bench_function(format!("log_prob_2000_{threads}_threads"), |b| {
            b.iter(|| {
                made.log_prob_parallel(&context[..m * n_context], &x[..m * n_dims], threads, &mut lp).unwrap()
            })
        });
        group.bench_function(format!("log_prob_grad_2000_{threads}_threads"), |b| {
            b.iter(|| {
                made.log_prob_grad_parallel(
                    &context[..m * n_context],
                    &x[..m * n_dims],
                    threads,
                    None,
                    Some(&mut gc),
                    Some(&mut gx),
                )
                .unwrap()
            })
        });
    }
    let batch = 512;
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("nll_grad_512_1_thread", |b| {
        b.iter(|| made.nll_grad(&context[..batch * n_context], &x[..batch * n_dims]).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_made);
criterion_main!(benches);
