//! The ensemble engine on the SECRET single-point setup (PHYSICS.md): realisations per second
//! on all cores and on one, for the exact and the f32 tier, on the instruction set in use
//! (`CRKERNELS_ISA=avx2 cargo bench --bench ensemble` picks one).
//!
//! cargo bench --bench ensemble

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crkernels::parallel::ParallelEnsemble;
use crkernels::physics::ensemble::{Ensemble, EnsembleParams, Precision};
use crkernels::physics::green::SourceSpectrum;
use crkernels::physics::losses::{EnergyLosses, LossModel};
use crkernels::physics::photon_field::PhotonField;
use crkernels::physics::sources::SpatialModel;
use crkernels::physics::transport::Transport;

fn secret_single_point(precision: Precision) -> Ensemble {
    let energies: Vec<f64> = (0..19).map(|i| 10f64.powf(2.4 + 0.1 * i as f64)).collect();
    let losses = EnergyLosses::new(LossModel::KleinNishina, &PhotonField::default_field());
    let transport = Transport::new(&losses, 3e28, 0.6, 4.0, 100.0, 1e7).unwrap();
    let params = EnsembleParams {
        sn_rate_per_myr: 4.55e4,
        t_max_myr: 7.0,
        s_max_kpc: 10.0,
        spatial: SpatialModel::SpiralArms,
        poisson_count: false,
        spectrum: SourceSpectrum::from_energy_erg(1e48, 1.0, 2.2, 1e4).unwrap(),
    };
    Ensemble::new_with_precision(&transport, &params, &energies, precision).unwrap()
}

fn bench_ensemble(c: &mut Criterion) {
    let n = 1000;
    let isa = crkernels::math::simd::VectorIsa::detect().name();
    let mut group = c.benchmark_group("ensemble_secret_single_point");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    for (precision, tier) in [(Precision::Exact, "exact"), (Precision::F32, "f32")] {
        let ensemble = secret_single_point(precision);
        let mut flux = vec![0.0; n * ensemble.energies_gev().len()];
        for (threads, cores) in [(0, "all_cores"), (1, "one_core")] {
            // The instruction set in the name: CRKERNELS_ISA picks it.
            group.bench_function(format!("1000_realisations_{cores}_{tier}_{isa}"), |b| {
                b.iter(|| ensemble.generate(black_box(1), 0, n, threads, &mut flux, None).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_ensemble);
criterion_main!(benches);
