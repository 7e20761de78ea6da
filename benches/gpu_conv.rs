//! GPU convolutions at the seed shapes, batch 65536 events (issue 7 (c)):
//! - conv2d: [N, 32, 8, 8] input, 64 filters 3x3, 'same';
//! - conv1d: [N, 2, 256] input, 32 filters of width 5, 'same';
//!
//! each with device arrays (kernel only: the input already on the device) and with host
//! arrays (upload, kernel, download, in chunks). Before them it measures the device's FP32
//! FMA rate (`fp32_fma_peak`) and its device-to-device copy bandwidth, and prints per layer the
//! TFLOP/s, the fraction of the measured peak, the floor and the measured time over the floor.
//! criterion's "elem/s" is FLOP/s (2 per multiply-add).
//!
//! The floor: max(FLOPs / peak FLOP rate, bytes / bandwidth), bytes = the input read once
//! plus the output written once (weights are a few kB).
//! - conv2d: 64 x 64 outputs x 288 (= 32 x 3 x 3) multiply-adds = 1,179,648 MACs = 2.36 MFLOP
//!   per event, 154.6 GFLOP per batch; (8 + 16) KiB per event, 1.61 GB per batch. On an H100
//!   SXM (nominal 66.9 TFLOP/s FP32: 132 SMs x 128 lanes x 2 x 1.98 GHz; 3.35 TB/s HBM3):
//!   2.31 ms of arithmetic against 0.48 ms of memory traffic: compute-bound, floor ~2.3 ms.
//! - conv1d: 32 x 256 outputs x 10 (= 2 x 5) MACs = 0.164 MFLOP per event, 10.7 GFLOP per batch;
//!   (2 + 32) KiB per event, 2.28 GB per batch: 0.16 ms of arithmetic against 0.68 ms of
//!   memory: memory-bound, floor ~0.68 ms.
//! - Host arrays add PCIe: 1.61 GB (conv2d) or 2.28 GB (conv1d) over ~25-50 GB/s, tens of ms.
//!
//! Without a CUDA device it prints "no CUDA device: skipped". Build on a machine with cargo:
//! `cargo bench --features cuda --bench gpu_conv --no-run`, then run the printed binary with
//! `--bench` from the repository root on the GPU machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crkernels::gpu::{self, conv as gpu_conv};
use crkernels::network::conv2d_parallel;
use crkernels::nn::conv::{Conv2d, ConvParams};
use crkernels::rng::Stream;
use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DevicePtr, DevicePtrMut};

/// Events per batch.
const BATCH: usize = 65_536;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Stream::new(seed, 3);
    (0..n).map(|_| (2.0 * rng.uniform() - 1.0) as f32).collect()
}

/// The seed layers: (name, layer).
fn seed_layers() -> Vec<(&'static str, Conv2d)> {
    let same_2d = ConvParams { padding: [[1, 1], [1, 1]], ..Default::default() };
    let same_1d = ConvParams { padding: [[0, 0], [2, 2]], ..Default::default() };
    vec![
        (
            "conv2d_Nx32x8x8_64f_3x3",
            Conv2d::new(32, [8, 8], 64, [3, 3], same_2d, &random(64 * 32 * 9, 1), Some(&random(64, 2)))
                .unwrap(),
        ),
        (
            "conv1d_Nx2x256_32f_w5",
            Conv2d::new(2, [1, 256], 32, [1, 5], same_1d, &random(32 * 2 * 5, 3), Some(&random(32, 4)))
                .unwrap(),
        ),
    ]
}

/// Device-to-device copy bandwidth [bytes/s, read + write], best of 5 copies of 1 GiB.
fn copy_bandwidth(stream: &std::sync::Arc<CudaStream>) -> f64 {
    let len = 1 << 28;
    let source: CudaSlice<f32> = stream.alloc_zeros(len).unwrap();
    let mut target: CudaSlice<f32> = stream.alloc_zeros(len).unwrap();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        stream.synchronize().unwrap();
        let start = Instant::now();
        stream.memcpy_dtod(&source, &mut target).unwrap();
        stream.synchronize().unwrap();
        best = best.min(start.elapsed().as_secs_f64());
    }
    2.0 * 4.0 * len as f64 / best
}

/// Seconds per call of `call`: the median of 10 after a warm-up call.
fn median_seconds(mut call: impl FnMut()) -> f64 {
    call();
    let mut times: Vec<f64> = (0..10)
        .map(|_| {
            let start = Instant::now();
            call();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn gpu_convolutions(c: &mut Criterion) {
    if gpu::device_count().unwrap_or(0) == 0 {
        println!("no CUDA device: skipped");
        return;
    }
    let device = 0;
    let info = gpu::device_info(device).unwrap();
    let peak = gpu_conv::fp32_fma_peak(device).unwrap();
    let context = CudaContext::new(device).unwrap();
    let stream = context.default_stream();
    let bandwidth = copy_bandwidth(&stream);
    println!(
        "{}: {} SMs, measured FP32 FMA peak {:.2} TFLOP/s, device copy bandwidth {:.0} GB/s",
        info.name,
        info.multiprocessors,
        peak * 1e-12,
        bandwidth * 1e-9
    );

    let mut group = c.benchmark_group("gpu_conv_batch_65536");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    for (name, layer) in seed_layers() {
        let input = random(BATCH * layer.input_size(), 5);
        let out_len = BATCH * layer.output_size();
        let flops = 2.0 * layer.macs_per_sample() as f64 * BATCH as f64;
        let bytes = 4.0 * (BATCH * (layer.input_size() + layer.output_size())) as f64;
        let floor = (flops / peak).max(bytes / bandwidth);

        // Agreement with the CPU at this batch (host arrays).
        let mut cpu = vec![0.0f32; out_len];
        conv2d_parallel(&layer, &input, &mut cpu, 0).unwrap();
        let mut host_output = vec![f32::NAN; out_len];
        gpu_conv::conv2d(&layer, device, &input, &mut host_output).unwrap();
        let scale = cpu.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let error = cpu.iter().zip(&host_output).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));

        let device_input = stream.clone_htod(&input).unwrap();
        let mut device_output: CudaSlice<f32> = stream.alloc_zeros(out_len).unwrap();
        let (x, _x) = device_input.device_ptr(&stream);
        let (y, _y) = device_output.device_ptr_mut(&stream);
        // SAFETY (both calls below): x and y hold the batch's input and output on device 0.
        let kernel =
            median_seconds(|| unsafe { gpu_conv::conv2d_device(&layer, device, x, y, BATCH) }.unwrap());
        let host = median_seconds(|| gpu_conv::conv2d(&layer, device, &input, &mut host_output).unwrap());
        println!(
            "{name}: device arrays {:.3} ms = {:.2} TFLOP/s = {:.1}% of the measured peak; floor {:.3} ms \
             (arithmetic {:.3} ms, memory {:.3} ms), time / floor {:.2}; host arrays {:.1} ms; \
             max |gpu - cpu| / max |cpu| = {:.2e}",
            kernel * 1e3,
            flops / kernel * 1e-12,
            100.0 * flops / kernel / peak,
            floor * 1e3,
            flops / peak * 1e3,
            bytes / bandwidth * 1e3,
            kernel / floor,
            host * 1e3,
            error / scale
        );

        group.throughput(Throughput::Elements(flops as u64));
        group.bench_function(format!("{name}/device_arrays"), |b| {
            // SAFETY: as above.
            b.iter(|| unsafe { gpu_conv::conv2d_device(&layer, device, black_box(x), y, BATCH) }.unwrap())
        });
        group.bench_function(format!("{name}/host_arrays"), |b| {
            b.iter(|| gpu_conv::conv2d(&layer, device, black_box(&input), &mut host_output).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, gpu_convolutions);
criterion_main!(benches);
