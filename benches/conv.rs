//! Convolution and the SD-reconstruction network at the seed's shapes (seed 002), on 1 and 2
//! threads, and this machine's f32 FMA peak for comparison:
//! - conv1d: [256, 2, 256] input, 32 filters of width 5, 'same';
//! - conv2d: [256, 32, 8, 8] input, 64 filters 3x3, 'same';
//! - the two-branch network of examples/common/sd_network.rs on a batch of 256 events;
//! - peak: 12 independent AVX2 FMA chains and 16 AVX-512 ones per thread (where the CPU has
//!   them), 1 and 2 threads.
//!
//! Throughput is reported in elements = FLOPs (2 per multiply-add): criterion's "elem/s" is
//! FLOP/s. `cargo bench --bench conv`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crkernels::network::{ParallelNetwork, conv2d_parallel};
use crkernels::nn::Network;
use crkernels::nn::conv::{Conv2d, ConvParams};

#[path = "../examples/common/sd_network.rs"]
mod sd_network;

/// FMA operations of one peak-loop call per thread: 16 chains x `ROUNDS`.
const ROUNDS: usize = 1 << 16;

/// 16 independent chains of fused multiply-adds on 512-bit vectors (16 f32 lanes each):
/// 2 FLOPs x 16 lanes x 16 chains per round. Returns a value so nothing is optimised away.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_chains_avx512(rounds: usize, x: f32) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_ps(x); 16];
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let mut sum = _mm512_setzero_ps();
    for v in acc {
        sum = _mm512_add_ps(sum, v);
    }
    _mm512_reduce_add_ps(sum)
}

/// 12 independent chains of fused multiply-adds on 256-bit vectors (8 f32 lanes each; 12 of
/// the 16 ymm registers, enough to cover the 4-cycle latency of 2 FMA pipes): 2 FLOPs x 8 lanes
/// x 12 chains per round.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_chains_avx2(rounds: usize, x: f32) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(x); 12];
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut sum = _mm256_setzero_ps();
    for v in acc {
        sum = _mm256_add_ps(sum, v);
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: lanes holds 8 values.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    lanes.iter().sum()
}

fn peak(c: &mut Criterion) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        let mut group = c.benchmark_group("fma_peak_avx2");
        group.sample_size(20);
        for threads in [1u64, 2] {
            group.throughput(Throughput::Elements(threads * (ROUNDS * 12 * 8 * 2) as u64));
            group.bench_function(format!("{threads}_threads"), |b| {
                b.iter(|| {
                    std::thread::scope(|s| {
                        for _ in 1..threads {
                            // SAFETY: AVX2 and FMA detected above.
                            s.spawn(|| black_box(unsafe { fma_chains_avx2(ROUNDS, black_box(1.0)) }));
                        }
                        // SAFETY: as above.
                        black_box(unsafe { fma_chains_avx2(ROUNDS, black_box(1.0)) })
                    })
                })
            });
        }
        group.finish();
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        let mut group = c.benchmark_group("fma_peak_avx512");
        group.sample_size(20);
        for threads in [1u64, 2] {
            group.throughput(Throughput::Elements(threads * (ROUNDS * 16 * 16 * 2) as u64));
            group.bench_function(format!("{threads}_threads"), |b| {
                b.iter(|| {
                    std::thread::scope(|s| {
                        for _ in 1..threads {
                            // SAFETY: AVX-512F detected above.
                            s.spawn(|| black_box(unsafe { fma_chains_avx512(ROUNDS, black_box(1.0)) }));
                        }
                        // SAFETY: as above.
                        black_box(unsafe { fma_chains_avx512(ROUNDS, black_box(1.0)) })
                    })
                })
            });
        }
        group.finish();
    }
}

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = sd_network::Uniform::new(seed);
    (0..n).map(|_| rng.next()).collect()
}

fn convolutions(c: &mut Criterion) {
    let n = 256;
    let same_1d = ConvParams { padding: [[0, 0], [2, 2]], ..Default::default() };
    let same_2d = ConvParams { padding: [[1, 1], [1, 1]], ..Default::default() };
    let cases = [
        (
            "conv1d_256x2x256_32f_w5",
            Conv2d::new(2, [1, 256], 32, [1, 5], same_1d, &values(32 * 2 * 5, 1), Some(&values(32, 2)))
                .unwrap(),
        ),
        (
            "conv2d_256x32x8x8_64f_3x3",
            Conv2d::new(32, [8, 8], 64, [3, 3], same_2d, &values(64 * 32 * 9, 3), Some(&values(64, 4)))
                .unwrap(),
        ),
    ];
    for (name, conv) in cases {
        let input = values(n * conv.input_size(), 5);
        let mut output = vec![0.0f32; n * conv.output_size()];
        let mut group = c.benchmark_group(name);
        group.sample_size(30);
        group.throughput(Throughput::Elements(2 * n as u64 * conv.macs_per_sample()));
        for threads in [1, 2] {
            group.bench_function(format!("{threads}_threads"), |b| {
                b.iter(|| conv2d_parallel(&conv, black_box(&input), &mut output, threads).unwrap())
            });
        }
        group.finish();
    }
}

fn network(c: &mut Criterion) {
    let n = 256;
    let net = Network::from_safetensors(&sd_network::network_file(1)).unwrap();
    let (traces, grid, features) = sd_network::synthetic_events(n, 2);
    let mut output = vec![0.0f32; n * net.output_size()];
    let mut group = c.benchmark_group("sd_network_256_events");
    group.sample_size(30);
    group.throughput(Throughput::Elements(2 * n as u64 * net.macs_per_sample()));
    for threads in [1, 2] {
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter(|| net.run_parallel(&[&traces, &grid, &features], n, threads, &mut output).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, peak, convolutions, network);
criterion_main!(benches);
