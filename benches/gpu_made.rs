//! The MADE emulator on the GPU at the SECRET shape (5 context inputs, 19 dimensions, one hidden
//! layer of 200 sigmoid units, K = 10; tests/data/made/secret_shape.safetensors): log-densities
//! and samples per second for 2^20 spectra, with host arrays (PCIe copies included) and with
//! device pointers (the kernels alone: the rate to compare with the floor, see
//! src/gpu/made/mod.rs: ~1.4e5 flop per spectrum, 2.1 ns = 4.8e8 spectra/s on an H100 SXM).
//! Prints "no CUDA device: skipped" where there is none.
//!
//! cargo bench --features cuda --bench gpu_made
//! (prebuilt: target/release/deps/gpu_made-<hash> --bench, from the repository root)

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crkernels::emulator::load_made;
use crkernels::gpu::made::GpuMade;
use crkernels::nn::LoadOptions;
use cudarc::driver::{CudaContext, DevicePtr};

fn model_path() -> std::path::PathBuf {
    let built =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/made/secret_shape.safetensors");
    if built.exists() { built } else { "tests/data/made/secret_shape.safetensors".into() }
}

fn bench_gpu_made(c: &mut Criterion) {
    if crkernels::gpu::device_count().unwrap_or(0) == 0 {
        println!("gpu_made: no CUDA device: skipped");
        return;
    }
    let made = load_made(&model_path(), &LoadOptions::default()).expect("the SECRET-shape model");
    let n = 1 << 20;
    let (n_context, n_dims) = (made.n_context(), made.n_dims());
    let context: Vec<f32> = (0..n * n_context).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
    let mut x = vec![0.0f32; n * n_dims];
    let gpu = GpuMade::new(made);
    gpu.sample(0, &context, 1, 0, &mut x).expect("GPU sampling");
    let mut log_prob = vec![0.0f32; n];
    gpu.log_prob(0, &context, &x, &mut log_prob).expect("GPU log-density");

    let device = CudaContext::new(0).expect("device 0");
    let stream = device.default_stream();
    let context_on_device = stream.clone_htod(&context).unwrap();
    let x_on_device = stream.clone_htod(&x).unwrap();
    let log_prob_on_device = stream.alloc_zeros::<f32>(n).unwrap();
    let samples_on_device = stream.alloc_zeros::<f32>(n * n_dims).unwrap();
    let address = |slice: &cudarc::driver::CudaSlice<f32>| slice.device_ptr(&stream).0;
    let (ctx, xs, lp, out) = (
        address(&context_on_device),
        address(&x_on_device),
        address(&log_prob_on_device),
        address(&samples_on_device),
    );
    stream.synchronize().unwrap();

    let mut group = c.benchmark_group("gpu_made_secret_shape");
    group.sample_size(20);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("log_prob_2^20_host_arrays", |b| {
        b.iter(|| gpu.log_prob(0, &context, &x, &mut log_prob).unwrap())
    });
    group.bench_function("sample_2^20_host_arrays", |b| {
        b.iter(|| gpu.sample(0, &context, black_box(7), 0, &mut x).unwrap())
    });
    // SAFETY: the device arrays hold n rows each on device 0.
    group.bench_function("log_prob_2^20_device_pointers", |b| {
        b.iter(|| unsafe { gpu.log_prob_device(0, ctx, xs, n, lp) }.unwrap())
    });
    // SAFETY: as above.
    group.bench_function("sample_2^20_device_pointers", |b| {
        b.iter(|| unsafe { gpu.sample_device(0, ctx, n, black_box(7), 0, out) }.unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_gpu_made);
criterion_main!(benches);
