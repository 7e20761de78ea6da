//! Kernels of issue 6: the diffusion coefficient batch (target >= 5e7 points/s per core), the
//! chi2 NLL, the normalisation + modulation fit (10 experiments, 300 points; target < 10 ms)
//! and the ridge-surrogate step (18 parameters, 5000 points, degrees 1..=3, 10 alphas; target
//! <= 2 s, against about 2.6 s for the scikit-learn reference bench/surrogate_sklearn.py), on 1
//! and 2 threads.
//!
//! cargo bench --bench fit

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crkernels::physics::particle::Particle;
use crkernels::physics::propagation::DiffusionParams;
use crkernels::rng::Stream;
use crkernels::stats::chi2::chi2_neg_log_pvalue;
use crkernels::stats::fit::{Abscissa, DataPoint, FitParameter, ModulationFit, SpeciesModel};
use crkernels::stats::surrogate::{Surrogate, SurrogateOptions, Weighting};

const BATCH: usize = 4096;

fn diffusion(c: &mut Criterion) {
    let p = DiffusionParams {
        d0_cm2_per_s: 4.2e28,
        radial_scale_kpc: 6.0,
        vertical_scale_kpc: 3.5,
        delta_low: -0.3,
        break_low_gv: 6.0,
        softness_low: 0.12,
        delta: 0.55,
        break_high_gv: 450.0,
        softness_high: 0.2,
        delta_high: 0.0001,
    };
    let r: Vec<f64> = (0..BATCH).map(|i| 20.0 * ((i * 37) % BATCH) as f64 / BATCH as f64).collect();
    let z: Vec<f64> = (0..BATCH).map(|i| -4.0 + 8.0 * ((i * 53) % BATCH) as f64 / BATCH as f64).collect();
    let rig: Vec<f64> =
        (0..BATCH).map(|i| 10f64.powf(-1.0 + 7.0 * ((i * 71) % BATCH) as f64 / BATCH as f64)).collect();
    let mut out = vec![0.0; BATCH];
    let mut group = c.benchmark_group("diffusion");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("D(r, z, R) batch", |b| {
        b.iter(|| p.coefficients(black_box(&r), black_box(&z), black_box(&rig), &mut out).unwrap())
    });
    // Reference in the same run: the seed's product of powers with std's powf and exp.
    group.bench_function("direct powf formula (reference)", |b| {
        b.iter(|| {
            for (((o, &ri), &zi), &x) in out.iter_mut().zip(&r).zip(&z).zip(&rig) {
                *o = p.d0_cm2_per_s
                    * ((ri - 2.0) / p.radial_scale_kpc).exp().max(1.0)
                    * ((zi.abs() - 0.15) / p.vertical_scale_kpc).exp().max(1.0)
                    * (x / 4.0).powf(p.delta_low)
                    * (1.0 + (x / p.break_low_gv).powf((p.delta - p.delta_low) / p.softness_low))
                        .powf(p.softness_low)
                    * (1.0 + (x / p.break_high_gv).powf((p.delta - p.delta_high) / p.softness_high))
                        .powf(-p.softness_high);
            }
            black_box(&out);
        })
    });
    group.finish();
}

fn statistics(c: &mut Criterion) {
    c.bench_function("chi2 NLL (ndof 100, chi2 3000)", |b| {
        b.iter(|| chi2_neg_log_pvalue(black_box(3000.0), black_box(100.0)).unwrap())
    });
}

/// 10 experiments, 300 points: proton and helium fluxes, B/C, on power-law tables.
fn fit_problem() -> ModulationFit {
    let grid: Vec<f64> = (0..80).map(|k| 10f64.powf(-1.5 + 0.08 * k as f64)).collect();
    let table = |k: f64, g: f64| -> Vec<f64> {
        grid.iter().map(|r| k * r.powf(-g) / (1.0 + (1.0 / r).powi(2))).collect()
    };
    let species = vec![
        SpeciesModel::new(Particle::proton(), &grid, &table(1e4, 2.8), 0).unwrap(),
        SpeciesModel::new(Particle::nucleus(4, 2).unwrap(), &grid, &table(1e3, 2.7), 1).unwrap(),
        SpeciesModel::new(Particle::nucleus(12, 6).unwrap(), &grid, &table(30.0, 2.7), 2).unwrap(),
        SpeciesModel::new(Particle::nucleus(11, 5).unwrap(), &grid, &table(10.0, 3.1), 2).unwrap(),
    ];
    let points = |values: &[f64], sigmas: &[f64]| -> Vec<DataPoint> {
        (0..300)
            .map(|k| {
                let (experiment, i) = (k / 30, k % 30);
                let (numerator, denominator) = match experiment % 4 {
                    0 => (0, None),
                    1 => (1, None),
                    2 => (2, None),
                    _ => (3, Some(2)),
                };
                DataPoint {
                    experiment,
                    numerator,
                    denominator,
                    abscissa: Abscissa::KineticEnergyPerNucleon,
                    x: 10f64.powf(-0.5 + 2.5 * i as f64 / 29.0) * (1.0 + 0.01 * experiment as f64),
                    value: values[k],
                    sigma: sigmas[k],
                }
            })
            .collect()
    };
    let norm = FitParameter { start: 1.0, lower: 0.1, upper: 10.0 };
    let modulation = [
        FitParameter { start: 0.5, lower: 0.0, upper: 3.0 },
        FitParameter { start: 0.5, lower: 0.0, upper: 5.0 },
        FitParameter::fixed(0.0),
    ];
    let ones = vec![1.0; 300];
    let template =
        ModulationFit::new(species.clone(), vec![norm; 3], points(&ones, &ones), 10, modulation).unwrap();
    // Data: the model at known parameters with 5% Gaussian noise and 5% uncertainties.
    let truth = [1.05, 0.95, 1.1, 0.4, 0.6, 0.0];
    let mut model = vec![0.0; 300];
    template.model(&truth, &mut model).unwrap();
    let mut rng = Stream::new(1, 0);
    let values: Vec<f64> = model.iter().map(|m| m * (1.0 + 0.05 * rng.normal())).collect();
    let sigmas: Vec<f64> = model.iter().map(|m| 0.05 * m).collect();
    let fit = ModulationFit::new(species, vec![norm; 3], points(&values, &sigmas), 10, modulation).unwrap();
    assert!(fit.run().unwrap().converged);
    fit
}

fn modulation_fit(c: &mut Criterion) {
    let fit = fit_problem();
    c.bench_function("modulation fit (10 experiments, 300 points)", |b| b.iter(|| fit.run().unwrap()));
}

fn surrogate(c: &mut Criterion) {
    const P: usize = 18;
    let n = 5000;
    let mut rng = Stream::new(7, 0);
    let mut x = Vec::with_capacity(n * P);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let xi: Vec<f64> = (0..P).map(|_| rng.normal()).collect();
        let nll = 40.0
            + (0..P)
                .map(|j| {
                    let d = xi[j] - 0.3 * (j as f64 * 0.7).sin();
                    0.5 * (1.0 + 0.1 * j as f64) * d * d + 0.05 * d * d * d
                })
                .sum::<f64>();
        y.push(nll + 0.01 * rng.normal());
        x.extend(xi.iter().enumerate().map(|(j, v)| 10f64.powi(j as i32 % 5 - 2) * (1.0 + 0.1 * v)));
    }
    let degrees = [1, 2, 3];
    let alphas: Vec<f64> = (0..10).map(|k| 10f64.powf(-6.0 + 8.0 * k as f64 / 9.0)).collect();
    let options =
        SurrogateOptions { weighting: Weighting::Distance, start: None, degrees: &degrees, alphas: &alphas };
    let mut group = c.benchmark_group("surrogate");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    // On 1 and 2 threads (issue 18: the NumPy reference runs on OMP_NUM_THREADS = 1 and 2).
    for threads in [1, 2] {
        let name = format!("fit + step (p 18, n 5000, degrees 1..=3, 10 alphas, {threads} threads)");
        group.bench_function(name, |b| {
            b.iter(|| {
                Surrogate::fit_threads(black_box(&x), P, black_box(&y), &options, threads)
                    .unwrap()
                    .step(1.0)
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, diffusion, statistics, modulation_fit, surrogate);
criterion_main!(benches);
