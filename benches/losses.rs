//! Loss-rate kernels: exact Klein-Nishina on a 4-component field plus synchrotron, against
//! the Thomson rate through the same batch API and the direct per-component evaluation
//! (the universal function R(u) for every component) in the same run.
//!
//! cargo bench --bench losses

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crkernels::physics::klein_nishina::loss_factor;
use crkernels::physics::losses::{EnergyLosses, LossModel};
use crkernels::physics::photon_field::{Greybody, PhotonField};

const BATCH: usize = 4096;

/// Four greybody components of the Delahaye et al. (2010) field: CMB, dust, two stellar.
fn four_component_field() -> PhotonField {
    let components = [
        Greybody::new(2.726, 0.261),
        Greybody::new(33.07, 0.254),
        Greybody::new(3249.3, 0.370),
        Greybody::new(6150.4, 0.229),
    ];
    PhotonField::new(&components, 3.0).unwrap()
}

/// Log-spaced energies from 1 GeV to 1e5 GeV, shuffled so that consecutive calls do not
/// walk the table in order.
fn energies() -> Vec<f64> {
    let mut e: Vec<f64> = (0..BATCH).map(|i| 1e5f64.powf(i as f64 / BATCH as f64)).collect();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in (1..e.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        e.swap(i, (state % (i as u64 + 1)) as usize);
    }
    e
}

fn bench_rates(c: &mut Criterion) {
    let field = four_component_field();
    let energy = energies();
    let mut rate = vec![0.0; BATCH];
    let mut group = c.benchmark_group("loss_rate");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, model) in [("thomson", LossModel::Thomson), ("kn_exact_4_components", LossModel::KleinNishina)]
    {
        let losses = EnergyLosses::new(model, &field);
        group.bench_function(name, |b| b.iter(|| losses.rates(black_box(&energy), &mut rate).unwrap()));
    }
    // The reference: every component's R(u) evaluated directly, no per-field table.
    let targets: Vec<(f64, f64)> = field
        .components()
        .iter()
        .map(|c| {
            (
                c.energy_density_ev_per_cm3,
                4.0 * 8.617333262e-5 * c.temperature_k / 0.51099895e6 / 0.51099895e-3,
            )
        })
        .collect();
    group.bench_function("kn_direct_per_component_reference", |b| {
        b.iter(|| {
            for (out, &e) in rate.iter_mut().zip(black_box(&energy)) {
                let sum: f64 = targets.iter().map(|&(u, k)| u * loss_factor(k * e)).sum();
                *out = e * e * (0.2235 + sum);
            }
        })
    });
    group.finish();
}

fn bench_universal_function(c: &mut Criterion) {
    let u: Vec<f64> = energies().iter().map(|e| e * 1e-3).collect();
    let mut group = c.benchmark_group("kn_loss_factor");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("R(u), u in 1e-3..1e2", |b| {
        b.iter(|| black_box(&u).iter().map(|&x| loss_factor(x)).sum::<f64>())
    });
    group.finish();
}

criterion_group!(benches, bench_rates, bench_universal_function);
criterion_main!(benches);
