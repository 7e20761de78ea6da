//! Transport tables: building them over 1 to 1e7 GeV, and the look-ups E0(E, t), tau, l^2.
//!
//! cargo bench --bench transport

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crkernels::physics::losses::{EnergyLosses, LossModel};
use crkernels::physics::photon_field::PhotonField;
use crkernels::physics::transport::Transport;

const BATCH: usize = 4096;

fn xorshift(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

fn bench_transport(c: &mut Criterion) {
    let field = PhotonField::default_field();
    let kn = EnergyLosses::new(LossModel::KleinNishina, &field);
    let thomson = EnergyLosses::new(LossModel::Thomson, &field);

    let mut group = c.benchmark_group("transport_build");
    for (name, losses) in [("kn_exact_1_to_1e7_GeV", &kn), ("thomson_1_to_1e7_GeV", &thomson)] {
        group.bench_function(name, |b| {
            b.iter(|| Transport::new(black_box(losses), 3e28, 0.6, 4.0, 1.0, 1e7).unwrap())
        });
    }
    group.finish();

    // The SECRET setup: observed energies 10^2.4..10^4.2 GeV, ages uniform in [0, 7] Myr.
    let tr = Transport::new(&kn, 3e28, 0.6, 4.0, 1.0, 1e7).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let energy: Vec<f64> = (0..BATCH).map(|_| 10f64.powf(2.4 + 1.8 * xorshift(&mut state))).collect();
    let age: Vec<f64> = (0..BATCH).map(|_| 7.0 * xorshift(&mut state)).collect();
    let mut e0 = vec![0.0; BATCH];
    tr.initial_energies(&energy, &age, &mut e0).unwrap();
    let finite: Vec<(f64, f64)> =
        energy.iter().zip(&e0).filter(|(_, x)| x.is_finite()).map(|(&e, &x)| (e, x)).collect();
    let (e_fin, e0_fin): (Vec<f64>, Vec<f64>) = finite.into_iter().unzip();
    let mut out = vec![0.0; BATCH];

    let mut group = c.benchmark_group("transport_lookup");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("initial_energy", |b| {
        b.iter(|| tr.initial_energies(black_box(&energy), black_box(&age), &mut out).unwrap())
    });
    group.throughput(Throughput::Elements(e_fin.len() as u64));
    group.bench_function("loss_time", |b| {
        b.iter(|| tr.loss_times(black_box(&e_fin), black_box(&e0_fin), &mut out[..e_fin.len()]).unwrap())
    });
    group.bench_function("loss_length2", |b| {
        b.iter(|| tr.loss_lengths2(black_box(&e_fin), black_box(&e0_fin), &mut out[..e_fin.len()]).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_transport);
criterion_main!(benches);
