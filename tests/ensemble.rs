//! The ensemble engine against the summation kernel (every realisation equals the kernel on
//! its own sources), the statistics of its draws, its independence of threads and splits,
//! cancellation, bad input, and the physics of the SECRET single-point setup.

use crkernels::Error;
use crkernels::parallel::{ParallelEnsemble, Progress};
use crkernels::physics::ensemble::{Ensemble, EnsembleParams, Precision, Sources};
use crkernels::physics::green::{SourceSpectrum, flux_from_sources};
use crkernels::physics::losses::{EnergyLosses, LossModel};
use crkernels::physics::photon_field::PhotonField;
use crkernels::physics::sources::{SpatialDistribution, SpatialModel};
use crkernels::physics::transport::Transport;

mod isa_support;

fn secret_energies() -> Vec<f64> {
    (0..19).map(|i| 10f64.powf(2.4 + 0.1 * i as f64)).collect()
}

fn kn_transport(z_max: f64) -> Transport {
    let losses = EnergyLosses::new(LossModel::KleinNishina, &PhotonField::default_field());
    Transport::new(&losses, 3e28, 0.6, z_max, 100.0, 1e7).unwrap()
}

fn params(spatial: SpatialModel, poisson_count: bool, rate: f64, cutoff: f64) -> EnsembleParams {
    EnsembleParams {
        sn_rate_per_myr: rate,
        t_max_myr: 7.0,
        s_max_kpc: 10.0,
        spatial,
        poisson_count,
        spectrum: SourceSpectrum::from_energy_erg(1e48, 1.0, 2.2, cutoff).unwrap(),
    }
}

/// The summation kernel's flux of `sources` at `energies`.
fn direct_sum(
    transport: &Transport,
    spectrum: &SourceSpectrum,
    sources: &Sources,
    energies: &[f64],
) -> Vec<f64> {
    let mut flux = vec![0.0; energies.len()];
    flux_from_sources(transport, spectrum, &sources.distance_kpc, &sources.age_myr, energies, &mut flux)
        .unwrap();
    flux
}

#[test]
fn every_realisation_equals_the_summation_kernel_on_its_sources() {
    let energies = secret_energies();
    let mut worst: f64 = 0.0;
    for (z_max, spatial, poisson, cutoff) in [
        (4.0, SpatialModel::SpiralArms, false, 1e4),
        (4.0, SpatialModel::UniformDisc, true, 10f64.powf(5.5)),
        (0.5, SpatialModel::RadialCaseBhattacharya, false, 10f64.powf(3.5)),
        (0.0, SpatialModel::UniformDisc, false, 1e5),
    ] {
        let transport = kn_transport(z_max);
        let ensemble = Ensemble::new(&transport, &params(spatial, poisson, 4e3, cutoff), &energies).unwrap();
        for k in [0u64, 1, 17, 123_456_789] {
            let mut flux = vec![0.0; energies.len()];
            ensemble.realisation(99, k, &mut flux);
            let sources = ensemble.sources(99, k);
            let spectrum = params(spatial, poisson, 4e3, cutoff).spectrum;
            let reference = direct_sum(&transport, &spectrum, &sources, &energies);
            for (i, (&f, &r)) in flux.iter().zip(&reference).enumerate() {
                assert!(r > 0.0, "energy {i}: no flux");
                let error = ((f - r) / r).abs();
                assert!(
                    error < 1e-12,
                    "z_max {z_max}, {spatial:?}, k {k}, energy {i}: {f} vs {r} ({error:e})"
                );
                worst = worst.max(error);
            }
        }
    }
    println!("worst relative difference engine vs summation kernel: {worst:.2e}");
}

#[test]
fn results_do_not_depend_on_threads_or_splits() {
    let energies = secret_energies();
    let transport = kn_transport(4.0);
    let ensemble =
        Ensemble::new(&transport, &params(SpatialModel::SpiralArms, true, 4e3, 1e4), &energies).unwrap();
    let n = 40;
    let run = |threads: usize| {
        let mut flux = vec![0.0; n * energies.len()];
        ensemble.generate(7, 1000, n, threads, &mut flux, None).unwrap();
        flux
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(7));
    // Split into three calls with other first realisations.
    let mut split = vec![0.0; n * energies.len()];
    let (a, rest) = split.split_at_mut(13 * energies.len());
    let (b, c) = rest.split_at_mut(20 * energies.len());
    ensemble.generate(7, 1000, 13, 3, a, None).unwrap();
    ensemble.generate(7, 1013, 20, 1, b, None).unwrap();
    ensemble.generate(7, 1033, 7, 2, c, None).unwrap();
    assert_eq!(one, split);
    // And one realisation alone.
    let mut row = vec![0.0; energies.len()];
    ensemble.realisation(7, 1021, &mut row);
    assert_eq!(&one[21 * energies.len()..22 * energies.len()], &row[..]);
}

/// The f32 tier: every flux within 1e-5 relative of the summation kernel on the same sources
/// (the exact tier's are within 1e-12), over setups from a handful of sources to SECRET's
/// 1.4e5, and the same bits on any thread count and split.
#[test]
fn the_f32_tier_is_within_1e_5_of_the_summation_kernel() {
    let energies = secret_energies();
    let mut worst: f64 = 0.0;
    for (z_max, spatial, poisson, rate, cutoff) in [
        (4.0, SpatialModel::SpiralArms, false, 4.55e4, 1e4),
        (4.0, SpatialModel::UniformDisc, true, 4e3, 10f64.powf(5.5)),
        (0.5, SpatialModel::RadialCaseBhattacharya, false, 4e3, 10f64.powf(3.5)),
        (0.0, SpatialModel::UniformDisc, false, 4e3, 1e5),
        (4.0, SpatialModel::SpiralArms, true, 30.0, 1e4),
    ] {
        let transport = kn_transport(z_max);
        let setup = params(spatial, poisson, rate, cutoff);
        let exact = Ensemble::new(&transport, &setup, &energies).unwrap();
        let single = Ensemble::new_with_precision(&transport, &setup, &energies, Precision::F32).unwrap();
        assert_eq!(single.precision(), Precision::F32);
        assert!(single.workspace_bytes_bound() > exact.workspace_bytes_bound());
        for k in [0u64, 1, 17, 123_456_789] {
            let sources = single.sources(99, k);
            assert_eq!(sources, exact.sources(99, k));
            let mut flux = vec![0.0; energies.len()];
            single.realisation(99, k, &mut flux);
            let reference = direct_sum(&transport, &setup.spectrum, &sources, &energies);
            for (i, (&f, &r)) in flux.iter().zip(&reference).enumerate() {
                if r == 0.0 {
                    assert_eq!(f, 0.0, "rate {rate}, k {k}, energy {i}");
                    continue;
                }
                let error = ((f - r) / r).abs();
                assert!(error < 1e-5, "rate {rate}, {spatial:?}, k {k}, energy {i}: {f} vs {r} ({error:e})");
                worst = worst.max(error);
            }
        }
    }
    println!("worst relative difference f32 tier vs summation kernel: {worst:.2e}");
    // Threads and splits.
    let transport = kn_transport(4.0);
    let single = Ensemble::new_with_precision(
        &transport,
        &params(SpatialModel::SpiralArms, true, 4e3, 1e4),
        &energies,
        Precision::F32,
    )
    .unwrap();
    let n = 24;
    let mut one = vec![0.0; n * energies.len()];
    single.generate(7, 1000, n, 1, &mut one, None).unwrap();
    let mut two = vec![0.0; n * energies.len()];
    single.generate(7, 1000, n, 2, &mut two, None).unwrap();
    assert_eq!(one, two);
    let (a, b) = two.split_at_mut(11 * energies.len());
    single.generate(7, 1000, 11, 3, a, None).unwrap();
    single.generate(7, 1011, 13, 1, b, None).unwrap();
    assert_eq!(one, two);
}

/// Kolmogorov-Smirnov statistic of `sample` against `cdf`, and its asymptotic p-value.
fn kolmogorov_smirnov(mut sample: Vec<f64>, cdf: impl Fn(f64) -> f64) -> (f64, f64) {
    sample.sort_by(f64::total_cmp);
    let n = sample.len() as f64;
    let d = sample
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max);
    let lambda = (n.sqrt() + 0.12 + 0.11 / n.sqrt()) * d;
    let p = (1..100)
        .map(|j| {
            let j = j as f64;
            2.0 * (-1f64).powf(j - 1.0) * (-2.0 * j * j * lambda * lambda).exp()
        })
        .sum::<f64>()
        .clamp(0.0, 1.0);
    (d, p)
}

#[test]
fn draws_follow_their_distributions() {
    let energies = secret_energies();
    let transport = kn_transport(4.0);
    for (spatial, poisson) in
        [(SpatialModel::RadialCaseBhattacharya, false), (SpatialModel::UniformDisc, true)]
    {
        let p = params(spatial, poisson, 2e3, 1e4);
        let ensemble = Ensemble::new(&transport, &p, &energies).unwrap();
        let young = ensemble.young_age_myr();
        let fraction = young / p.t_max_myr;
        let mean = if poisson { ensemble.mean_sources() } else { ensemble.mean_sources().round() } * fraction;
        let variance = if poisson { mean } else { mean * (1.0 - fraction) };
        let (mut ages, mut distances, mut counts) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..400 {
            let s = ensemble.sources(5, k);
            counts.push(s.age_myr.len() as f64);
            ages.extend_from_slice(&s.age_myr);
            distances.extend_from_slice(&s.distance_kpc);
        }
        let n = counts.len() as f64;
        let sample_mean = counts.iter().sum::<f64>() / n;
        let sample_var = counts.iter().map(|c| (c - sample_mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert!(
            (sample_mean - mean).abs() < 5.0 * (variance / n).sqrt(),
            "{spatial:?}: mean {sample_mean} vs {mean}"
        );
        // The variance of a sample variance is about 2 sigma^4/(n-1) for near-normal counts.
        let var_sigma = (2.0 * variance * variance / (n - 1.0)).sqrt();
        assert!(
            (sample_var - variance).abs() < 5.0 * var_sigma,
            "{spatial:?}: var {sample_var} vs {variance}"
        );
        let (_, p_age) = kolmogorov_smirnov(ages.iter().step_by(37).cloned().collect(), |t| t / young);
        let reference = SpatialDistribution::new(spatial, 10.0).unwrap();
        let (_, p_distance) =
            kolmogorov_smirnov(distances.iter().step_by(37).cloned().collect(), |s| reference.cdf(s));
        assert!(p_age > 1e-3 && p_distance > 1e-3, "{spatial:?}: KS p-values {p_age}, {p_distance}");
    }
}

#[test]
fn cancellation_keeps_finished_rows_and_marks_the_rest() {
    let energies = secret_energies();
    let transport = kn_transport(4.0);
    let ensemble =
        Ensemble::new(&transport, &params(SpatialModel::UniformDisc, false, 4e3, 1e4), &energies).unwrap();
    let n = 64;
    let mut full = vec![0.0; n * energies.len()];
    ensemble.generate(3, 0, n, 2, &mut full, None).unwrap();
    let mut flux = vec![0.0; n * energies.len()];
    let mut cancel = |_: Progress| false;
    let result = ensemble.generate(3, 0, n, 2, &mut flux, Some(&mut cancel));
    assert!(matches!(result, Err(Error::Cancelled(_))), "{result:?}");
    for (row, reference) in flux.chunks(energies.len()).zip(full.chunks(energies.len())) {
        assert!(row.iter().all(|x| x.is_nan()) || row == reference, "a row is neither finished nor NaN");
    }
}

#[test]
fn bad_parameters_are_errors() {
    let energies = secret_energies();
    let transport = kn_transport(4.0);
    let good = params(SpatialModel::UniformDisc, false, 4e3, 1e4);
    let with = |f: &dyn Fn(&mut EnsembleParams)| {
        let mut p = good;
        f(&mut p);
        Ensemble::new(&transport, &p, &energies)
    };
    assert!(matches!(with(&|p| p.t_max_myr = 0.0), Err(Error::InvalidArgument(_))));
    assert!(matches!(with(&|p| p.s_max_kpc = -1.0), Err(Error::InvalidArgument(_))));
    assert!(matches!(with(&|p| p.sn_rate_per_myr = f64::NAN), Err(Error::InvalidArgument(_))));
    assert!(matches!(with(&|p| p.spectrum.gamma = f64::NAN), Err(Error::InvalidArgument(_))));
    assert!(matches!(Ensemble::new(&transport, &good, &[50.0]), Err(Error::OutOfDomain(_))));
    assert!(matches!(Ensemble::new(&transport, &good, &[]), Err(Error::InvalidArgument(_))));
    let ensemble = Ensemble::new(&transport, &good, &energies).unwrap();
    let mut short = vec![0.0; 5];
    assert!(matches!(ensemble.generate(1, 0, 2, 1, &mut short, None), Err(Error::InvalidArgument(_))));
}

/// SECRET figure 2: a broad power law near E^-3.1, bands widening above ~1 TeV.
#[test]
fn secret_single_point_looks_like_figure_2() {
    let energies = secret_energies();
    let transport = kn_transport(4.0);
    let p = params(SpatialModel::SpiralArms, false, 4.55e4, 1e4);
    let ensemble = Ensemble::new(&transport, &p, &energies).unwrap();
    let n = 400;
    let mut flux = vec![0.0; n * energies.len()];
    ensemble.generate(2024, 0, n, 0, &mut flux, None).unwrap();
    let quantile = |i: usize, q: f64| {
        let mut column: Vec<f64> = flux.chunks(energies.len()).map(|r| r[i] * energies[i].powi(3)).collect();
        column.sort_by(f64::total_cmp);
        column[(q * (n - 1) as f64).round() as usize]
    };
    // Median slope of phi between 251 GeV and 1 TeV.
    let slope = (quantile(6, 0.5) / quantile(0, 0.5)).ln() / (energies[6] / energies[0]).ln() - 3.0;
    let width = |i: usize| quantile(i, 0.95) / quantile(i, 0.05);
    println!(
        "median index {slope:.3}; 90% band ratio at 251 GeV {:.3}, 1 TeV {:.3}, 15.8 TeV {:.3}",
        width(0),
        width(6),
        width(18)
    );
    assert!((-3.6..-2.6).contains(&slope), "median index {slope}");
    assert!(width(18) > 1.5 * width(6) && width(6) > width(0), "bands do not widen with energy");
}

/// The equivalence and accuracy tests above, again under every instruction set this CPU has
/// (`CRKERNELS_ISA`, one child process each).
#[test]
fn equivalence_tests_pass_under_every_instruction_set() {
    isa_support::rerun_under_every_isa(&[
        "every_realisation_equals_the_summation_kernel_on_its_sources",
        "results_do_not_depend_on_threads_or_splits",
        "the_f32_tier_is_within_1e_5_of_the_summation_kernel",
    ]);
}

#[test]
fn the_selected_set_is_the_requested_one() {
    isa_support::assert_selected_set_is_requested();
}
