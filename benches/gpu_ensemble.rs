//! The ensemble on a GPU (issues 7 and 19): throughput of the SECRET single-point setup and of
//! the SECRET grid's energies, exact and f32 tiers, in realisations and source-energy
//! evaluations per second, with the floor. Prints "no CUDA device: skipped" where there is none.
//!
//! cargo bench --features cuda --bench gpu_ensemble
//!
//! Floor (H100 SXM: 16.7e12 FP64 instructions/s without tensor cores, an FMA counted once): a
//! contributing source-energy pair costs two degree-8 Estrin polynomials (16 FMA), the
//! exponent, and the exp (about 20 FP64 instructions, the CPU's branchless one): about 40 FP64
//! instructions (Nsight Compute counted 51 with CUDA's exp). The draws (Philox in integers,
//! the inverse-CDF polynomial) add a few per source. Device memory traffic is the counts in,
//! the fluxes out and the sort's scratch (~64 bytes per source, L2-resident in part): the floor
//! is arithmetic.

use std::time::Instant;

use criterion::Criterion;
use crkernels::gpu::ensemble::GpuEnsemble;
use crkernels::physics::ensemble::{Ensemble, EnsembleParams, Precision};
use crkernels::physics::green::SourceSpectrum;
use crkernels::physics::losses::{EnergyLosses, LossModel};
use crkernels::physics::photon_field::PhotonField;
use crkernels::physics::sources::SpatialModel;
use crkernels::physics::transport::Transport;

/// FP64 operations per contributing source-energy pair (see the module documentation).
const OPERATIONS_PER_TERM: f64 = 40.0;
/// The f32 tier's cost of a pair in FP64-instruction time: two binary32 Estrin polynomials,
/// the exponent and the SFU's exp (about 25 FP32 instructions at twice the FP64 rate), plus
/// the cell coordinate and the scaled binary64 sum (about 4 FP64).
const OPERATIONS_PER_TERM_F32: f64 = 25.0 / 2.0 + 4.0;
/// FP64 instructions per second of an H100 SXM without tensor cores (an FMA counted once): 64
/// FP64 lanes x 132 multiprocessors x 1.98 GHz.
const H100_FP64_OPERATIONS: f64 = 16.7e12;

fn secret(energies: Vec<f64>, precision: Precision) -> (Ensemble, Vec<f64>) {
    let losses = EnergyLosses::new(LossModel::KleinNishina, &PhotonField::default_field());
    let transport = Transport::new(&losses, 3e28, 0.6, 4.0, 10.0, 1e7).unwrap();
    let params = EnsembleParams {
        sn_rate_per_myr: 4.55e4,
        t_max_myr: 7.0,
        s_max_kpc: 10.0,
        spatial: SpatialModel::SpiralArms,
        poisson_count: false,
        spectrum: SourceSpectrum::from_energy_erg(1e48, 1.0, 2.2, 1e4).unwrap(),
    };
    (Ensemble::new_with_precision(&transport, &params, &energies, precision).unwrap(), energies)
}

/// Mean number of contributing source-energy pairs per realisation (from its sources).
fn terms_per_realisation(ensemble: &Ensemble) -> f64 {
    let tables = ensemble.device_tables();
    let mut terms = 0usize;
    let samples = 20;
    for k in 0..samples {
        let sources = ensemble.sources(1, k);
        for (&t, &s) in sources.age_myr.iter().zip(&sources.distance_kpc) {
            if t > 0.0 && s <= tables.light_speed_kpc_per_myr * t {
                terms += tables.max_age_myr.iter().filter(|&&limit| t < limit).count();
            }
        }
    }
    terms as f64 / samples as f64
}

fn main() {
    if crkernels::gpu::device_count().unwrap_or(0) == 0 {
        println!("gpu_ensemble: no CUDA device: skipped");
        return;
    }
    let info = crkernels::gpu::device_info(0).unwrap();
    println!("device: {} ({} multiprocessors)", info.name, info.multiprocessors);
    let setups: [(&str, Vec<f64>); 2] = [
        (
            "SECRET single point, 19 energies 10^2.4..10^4.2 GeV",
            (0..19).map(|i| 10f64.powf(2.4 + 0.1 * i as f64)).collect(),
        ),
        (
            "SECRET grid energies, 19 from 10^1.5..10^4.5 GeV",
            (0..19).map(|i| 10f64.powf(1.5 + i as f64 / 6.0)).collect(),
        ),
    ];
    println!(
        "{:<52} {:>12} {:>14} {:>16} {:>12} {:>10}",
        "setup", "realisations", "realisations/s", "terms/s", "floor [s]", "time/floor"
    );
    let tiers = [(Precision::Exact, "exact"), (Precision::F32, "f32")];
    for ((name, energies), (precision, tier)) in
        setups.iter().flat_map(|setup| tiers.iter().map(move |tier| (setup, tier)))
    {
        let name = format!("{name}, {tier}");
        let (ensemble, energies) = secret(energies.clone(), *precision);
        let terms = terms_per_realisation(&ensemble);
        let gpu = GpuEnsemble::new(ensemble);
        let n = 1_000_000;
        let mut flux = vec![0.0; n * energies.len()];
        // Warm-up: tables, module load, first launch.
        gpu.generate(0, 3, 0, 1000, &mut flux[..1000 * energies.len()]).unwrap();
        let start = Instant::now();
        let run = gpu.generate(0, 3, 0, n, &mut flux).unwrap();
        let seconds = start.elapsed().as_secs_f64();
        let per_term = match precision {
            Precision::Exact => OPERATIONS_PER_TERM,
            Precision::F32 => OPERATIONS_PER_TERM_F32,
        };
        let floor = n as f64 * terms * per_term / H100_FP64_OPERATIONS;
        println!(
            "{name:<52} {n:>12} {:>14.3e} {:>16.3e} {floor:>12.4} {:>10.1}   ({} on the host, {terms:.0} terms per realisation)",
            n as f64 / seconds,
            n as f64 * terms / seconds,
            seconds / floor,
            run.on_host
        );
    }
    grid_sample();
    let (ensemble, energies) =
        secret((0..19).map(|i| 10f64.powf(2.4 + 0.1 * i as f64)).collect(), Precision::Exact);
    let gpu = GpuEnsemble::new(ensemble);
    let n = 65_536;
    let mut flux = vec![0.0; n * energies.len()];
    let mut criterion = Criterion::default().sample_size(10).configure_from_args();
    let mut group = criterion.benchmark_group("gpu_ensemble");
    group.throughput(criterion::Throughput::Elements(n as u64));
    group.bench_function("secret_65536_realisations", |b| {
        b.iter(|| gpu.generate(0, 3, 0, n, &mut flux).unwrap())
    });
    group.finish();
    criterion.final_summary();
}

/// A sample of the SECRET grid (SECRET section 3: 6750 points of the source rate, energy
/// output, spectral index, cutoff and diffusion coefficient; 1e4 realisations each; 19
/// energies from 10^1.5 to 10^4.5 GeV): POINTS points spread over the ranges, each built (tables
/// on the host), generated on the GPU and streamed to a file, timed end to end and extrapolated
/// to the 6750 points.
fn grid_sample() {
    const POINTS: usize = 12;
    const REALISATIONS: usize = 10_000;
    const GRID_POINTS: f64 = 6750.0;
    let energies: Vec<f64> = (0..19).map(|i| 10f64.powf(1.5 + i as f64 / 6.0)).collect();
    let losses = EnergyLosses::new(LossModel::KleinNishina, &PhotonField::default_field());
    let path = std::env::temp_dir().join("crkernels_gpu_grid_sample.f64");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut flux = vec![0.0; REALISATIONS * energies.len()];
    let (mut build_seconds, mut gpu_seconds) = (0.0, 0.0);
    let start = Instant::now();
    for point in 0..POINTS {
        let x = point as f64 / (POINTS - 1) as f64;
        let build = Instant::now();
        let kappa = 10f64.powf(28.0 + x);
        let transport = Transport::new(&losses, kappa, 0.6, 4.0, 10.0, 1e7).unwrap();
        let params = EnsembleParams {
            sn_rate_per_myr: 10f64.powf(4.0 + x),
            t_max_myr: 7.0,
            s_max_kpc: 10.0,
            spatial: SpatialModel::SpiralArms,
            poisson_count: false,
            spectrum: SourceSpectrum::from_energy_erg(1e48, 1.0, 2.0 + 0.6 * x, 10f64.powf(3.0 + 2.0 * x))
                .unwrap(),
        };
        let gpu = GpuEnsemble::new(Ensemble::new(&transport, &params, &energies).unwrap());
        gpu.tables();
        build_seconds += build.elapsed().as_secs_f64();
        let run = Instant::now();
        gpu.generate(0, 11, 0, REALISATIONS, &mut flux).unwrap();
        gpu_seconds += run.elapsed().as_secs_f64();
        for value in &flux {
            std::io::Write::write_all(&mut file, &value.to_le_bytes()).unwrap();
        }
    }
    std::io::Write::flush(&mut file).unwrap();
    let total = start.elapsed().as_secs_f64();
    let scale = GRID_POINTS / POINTS as f64;
    println!(
        "SECRET grid sample: {POINTS} points x {REALISATIONS} realisations in {total:.2} s (tables {build_seconds:.2} s on \
         one host thread, GPU {gpu_seconds:.2} s); extrapolated to 6750 points: {:.0} s as run, {:.0} s with the tables \
         built on the other host cores while the GPU runs",
        total * scale,
        gpu_seconds.max(
            build_seconds
                / (std::thread::available_parallelism().map_or(1, |p| p.get()) as f64 - 1.0).max(1.0)
        ) * scale
    );
    let _ = std::fs::remove_file(path);
}
