//! Philox4x32-10 streams: the cost of one draw of each distribution, 4096 draws per iteration
//! from one stream (throughput is per draw).
//!
//! cargo bench --bench rng

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use crkernels::rng::{Philox4x32, Stream};

const BATCH: usize = 4096;

fn bench_draws(c: &mut Criterion) {
    let mut group = c.benchmark_group("rng");
    group.throughput(Throughput::Elements(BATCH as u64));
    let philox = Philox4x32::new([0x5eed_2026, 0x0611]);
    group.bench_function("philox4x32_10 block (4 words)", |b| {
        b.iter(|| (0..BATCH as u32).fold(0u32, |acc, i| acc ^ philox.block(black_box([i, 0, 7, 0]))[0]))
    });
    let mut stream = Stream::new(0x5eed_2026_0611, 7);
    group.bench_function("next_u32", |b| b.iter(|| (0..BATCH).fold(0u32, |acc, _| acc ^ stream.next_u32())));
    draw(&mut group, &mut stream, "uniform", Stream::uniform);
    let mut uniforms = vec![0.0; BATCH];
    let isa = crkernels::math::simd::VectorIsa::detect().name();
    group.bench_function(format!("fill_uniform (batch, {isa}; CRKERNELS_ISA picks the set)"), |b| {
        b.iter(|| stream.fill_uniform(black_box(&mut uniforms)))
    });
    draw(&mut group, &mut stream, "exponential", Stream::exponential);
    draw(&mut group, &mut stream, "normal", Stream::normal);
    draw(&mut group, &mut stream, "poisson, mean 3", |s| s.poisson(black_box(3.0)) as f64);
    draw(&mut group, &mut stream, "poisson, mean 1.6e4", |s| s.poisson(black_box(1.6e4)) as f64);
    draw(&mut group, &mut stream, "binomial, n 1.4e5, p 0.117", |s| {
        s.binomial(black_box(140_000), black_box(0.117)) as f64
    });
    group.finish();
}

/// Times BATCH draws of `f` from `stream`, summed so that none is optimised away.
fn draw(
    group: &mut BenchmarkGroup<'_, WallTime>,
    stream: &mut Stream,
    name: &str,
    f: impl Fn(&mut Stream) -> f64,
) {
    group.bench_function(name, |b| b.iter(|| (0..BATCH).map(|_| f(stream)).sum::<f64>()));
}

criterion_group!(benches, bench_draws);
criterion_main!(benches);
