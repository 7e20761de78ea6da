//! Bounded resources (issue 15, item 5): a request whose working memory cannot fit fails with
//! a status and a message that names the argument, the memory and the limit, before it
//! allocates; and the documented memory formulas of the long-running entry points hold.
//!
//! Allocation is measured by a counting global allocator, per thread (the test harness runs
//! tests on several threads at once): the peak of the bytes live on the calling thread during
//! a call, above what was live before it (tests/alloc_support).

mod alloc_support;

use std::ffi::CStr;
use std::ptr::{null, null_mut};
use std::time::{Duration, Instant};

use alloc_support::{CountingAllocator, peak_allocation};

use crkernels::ffi::ensemble::{
    CRK_SPATIAL_SPIRAL_ARMS, CRK_SPATIAL_UNIFORM_DISC, crk_ensemble, crk_ensemble_free, crk_ensemble_new,
    crk_ensemble_params, crk_flux_from_sources, crk_source_spectrum,
};
use crkernels::ffi::losses::{crk_losses, crk_losses_free, crk_losses_new_thomson};
use crkernels::ffi::propagation::crk_particle;
use crkernels::ffi::stats::{
    CRK_ABSCISSA_RIGIDITY, crk_data_point, crk_experiment_result, crk_experiment_statistics,
    crk_fit_parameter, crk_fit_species, crk_fit_summary, crk_modulation_fit, crk_nll_summary,
};
use crkernels::ffi::surrogate::{
    CRK_WEIGHTS_NONE, crk_polynomial_feature_count, crk_surrogate, crk_surrogate_fit, crk_surrogate_free,
    crk_surrogate_gradient, crk_surrogate_options, crk_surrogate_predict,
};
use crkernels::ffi::transport::{crk_transport, crk_transport_free, crk_transport_new};
use crkernels::ffi::{
    CRK_ERR_INVALID_ARGUMENT, CRK_ERR_OUT_OF_DOMAIN, CRK_OK, crk_last_error_message, crk_status,
};
use crkernels::physics::ensemble::{Ensemble, EnsembleParams, MAX_YOUNG_SOURCES, Workspace};
use crkernels::physics::green::SourceSpectrum;
use crkernels::physics::losses::EnergyLosses;
use crkernels::physics::sources::SpatialModel;
use crkernels::physics::transport::Transport;
use crkernels::stats::fit::{Abscissa, DataPoint, FitParameter, ModulationFit, SpeciesModel};
use crkernels::stats::surrogate::{MAX_FEATURES, Surrogate, SurrogateOptions, Weighting};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const MIB: usize = 1 << 20;

fn last_message() -> String {
    // SAFETY: never NULL; valid until the next call on this thread.
    unsafe { CStr::from_ptr(crk_last_error_message()) }.to_string_lossy().into_owned()
}

/// Runs a C call that must fail with `status`, quickly and allocating less than `max_bytes`;
/// returns its message.
fn refused(status: crk_status, max_bytes: usize, call: impl FnOnce() -> crk_status) -> String {
    let start = Instant::now();
    let (got, peak) = peak_allocation(call);
    let message = last_message();
    assert_eq!(got, status, "{message}");
    assert!(peak < max_bytes, "allocated {peak} bytes before failing: {message}");
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}: {message}", start.elapsed());
    message
}

fn assert_mentions(message: &str, words: &[&str]) {
    for w in words {
        assert!(message.contains(w), "message lacks {w:?}: {message}");
    }
}

fn thomson_losses() -> *mut crk_losses {
    let mut losses = null_mut();
    // SAFETY: out-pointer writable.
    assert_eq!(unsafe { crk_losses_new_thomson(1e-16, &mut losses) }, CRK_OK);
    losses
}

fn transport(losses: *const crk_losses, lo: f64, hi: f64) -> (crk_status, *mut crk_transport) {
    let mut tr = null_mut();
    // SAFETY: a live losses handle; out-pointer writable.
    let status = unsafe { crk_transport_new(losses, 3e28, 0.6, 4.0, lo, hi, &mut tr) };
    (status, tr)
}

#[test]
fn transport_tables_are_bounded_for_any_finite_range() {
    let losses = thomson_losses();
    // Absurd but finite: b(E_min) underflows to zero; b(E_max) overflows.
    for (lo, hi) in [(1e-300, 1e300), (1e-300, 1.0), (1.0, 1e300)] {
        let message = refused(CRK_ERR_OUT_OF_DOMAIN, MIB, || transport(losses, lo, hi).0);
        assert_mentions(&message, &["E_m"]);
    }
    // The widest ranges that double precision can tabulate: 16376 pieces at most per table, so
    // under 6.1 MB (the documented 256 P + 112 P' bytes), built in well under a second.
    for (lo, hi) in [(1e-150, 1e150), (1e-5, 1e150)] {
        let start = Instant::now();
        let ((status, tr), peak) = peak_allocation(|| transport(losses, lo, hi));
        assert_eq!(status, CRK_OK, "{}", last_message());
        assert!(peak < 7 * MIB, "{lo}..{hi}: {peak} bytes");
        assert!(start.elapsed() < Duration::from_secs(60), "{:?}", start.elapsed());
        // SAFETY: a live handle.
        unsafe { crk_transport_free(tr) };
    }
    // Rust API: the same Err.
    let rust_losses = EnergyLosses::thomson(1e-16).unwrap();
    let err = Transport::new(&rust_losses, 3e28, 0.6, 4.0, 1e-300, 1e300).unwrap_err();
    assert_eq!(err.status(), CRK_ERR_OUT_OF_DOMAIN);
    // SAFETY: a live handle.
    unsafe { crk_losses_free(losses) };
}

/// n points of p parameters for a surrogate fit (a smooth NLL of the first two).
fn surrogate_points(n: usize, p: usize) -> (Vec<f64>, Vec<f64>) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut uniform = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let x: Vec<f64> = (0..n * p).map(|_| 2.0 * uniform() - 1.0).collect();
    let y = x.chunks(p).map(|r| r[0] * r[0] + 0.5 * r[1 % p] + 0.1 * r[0] * r[1 % p]).collect();
    (x, y)
}

fn surrogate_options(degrees: &[usize], alphas: &[f64]) -> crk_surrogate_options {
    crk_surrogate_options {
        weighting: CRK_WEIGHTS_NONE,
        custom_weights: null(),
        start_index: -1,
        degrees: degrees.as_ptr(),
        n_degrees: degrees.len(),
        alphas: alphas.as_ptr(),
        n_alphas: alphas.len(),
    }
}

fn fit_surrogate(
    x: &[f64],
    p: usize,
    y: &[f64],
    options: &crk_surrogate_options,
) -> (crk_status, *mut crk_surrogate) {
    let mut s = null_mut();
    // SAFETY: x holds y.len() * p values; the options' arrays their counts.
    let status = unsafe { crk_surrogate_fit(x.as_ptr(), y.len(), p, y.as_ptr(), options, &mut s) };
    (status, s)
}

#[test]
fn a_surrogate_with_too_many_features_is_refused_before_allocating() {
    // 1000 parameters at degree 5: C(1005, 5) - 1 = 8.4e12 features, a Gram matrix of 5.6e26
    // bytes; at degree 2: 501500 features, 4 TB for the two matrices.
    let (x, y) = surrogate_points(20, 1000);
    for degree in [5usize, 2] {
        let degrees = [1, degree];
        let alphas = [1e-3];
        let options = surrogate_options(&degrees, &alphas);
        let message = refused(CRK_ERR_INVALID_ARGUMENT, MIB, || fit_surrogate(&x, 1000, &y, &options).0);
        assert_mentions(&message, &["1000 parameters", "features", "Gram", "limit of 32768 features"]);
        let err = Surrogate::fit(
            &x,
            1000,
            &y,
            &SurrogateOptions { weighting: Weighting::None, start: None, degrees: &degrees, alphas: &alphas },
        )
        .unwrap_err();
        assert_eq!(err.status(), CRK_ERR_INVALID_ARGUMENT);
    }
    // The count itself is still reported (it is a number, not an allocation); an overflow is an
    // error, not a panic.
    let mut count = 0;
    // SAFETY: out-pointer writable.
    assert_eq!(unsafe { crk_polynomial_feature_count(1000, 5, &mut count) }, CRK_OK);
    assert_eq!(count, 8_459_043_543_950);
    assert!(count > MAX_FEATURES);
    // SAFETY: as above.
    let status = unsafe { crk_polynomial_feature_count(usize::MAX, 2, &mut count) };
    assert_eq!(status, CRK_ERR_INVALID_ARGUMENT, "{}", last_message());
    assert_mentions(&last_message(), &["overflows"]);
}

/// The documented memory of crk_surrogate_fit: (8 + 8 k) F^2 + (6300 + 2100 k) F +
/// 8 n (p + 6) bytes with k the candidates factored at once (at most the cores and the
/// candidates), plus the handle and small vectors: it does not hold the n x F design matrix.
#[test]
fn the_surrogate_fit_holds_no_design_matrix() {
    let p = 6;
    let f = 27; // C(6 + 2, 2) - 1 at degree 2
    for n in [3_000usize, 30_000] {
        let (x, y) = surrogate_points(n, p);
        let (degrees, alphas) = ([1usize, 2], [1e-6, 1e-3]);
        let options = surrogate_options(&degrees, &alphas);
        let ((status, s), peak) = peak_allocation(|| fit_surrogate(&x, p, &y, &options));
        assert_eq!(status, CRK_OK, "{}", last_message());
        let k = std::thread::available_parallelism().map_or(1, |c| c.get()).min(degrees.len() * alphas.len());
        let formula = (8 + 8 * k) * f * f + (6300 + 2100 * k) * f + 8 * n * (p + 6) + 64 * 1024;
        assert!(peak <= formula, "n = {n}: {peak} bytes, documented {formula}");
        // The design matrix alone would be 8 n F bytes.
        assert!(peak < 8 * n * f, "n = {n}: {peak} bytes");
        // Predictions and gradients: 8 (F + p) and 8 (2 F + 2 p) bytes, whatever n_points.
        let mut nll = vec![0.0; n];
        let (status, peak) = peak_allocation(|| {
            // SAFETY: x holds n * p values, nll n.
            unsafe { crk_surrogate_predict(s, x.as_ptr(), n, nll.as_mut_ptr()) }
        });
        assert_eq!(status, CRK_OK);
        assert!(peak <= 8 * (f + p) + 1024, "predict: {peak} bytes");
        let mut gradient = vec![0.0; p];
        let (status, peak) = peak_allocation(|| {
            // SAFETY: x and gradient hold p values.
            unsafe { crk_surrogate_gradient(s, x.as_ptr(), gradient.as_mut_ptr()) }
        });
        assert_eq!(status, CRK_OK);
        assert!(peak <= 8 * (2 * f + 2 * p) + 1024, "gradient: {peak} bytes");
        // SAFETY: a live handle.
        unsafe { crk_surrogate_free(s) };
    }
}

fn ensemble_params(rate: f64, t_max: f64) -> crk_ensemble_params {
    crk_ensemble_params {
        sn_rate_per_Myr: rate,
        t_max_Myr: t_max,
        s_max_kpc: 10.0,
        spatial: CRK_SPATIAL_SPIRAL_ARMS,
        poisson_count: 1,
        spectrum: crk_source_spectrum { q_star_per_GeV: 1e50, gamma: 2.2, cutoff_GeV: 1e4 },
    }
}

fn log_grid(n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|i| lo * (hi / lo).powf(i as f64 / (n - 1).max(1) as f64)).collect()
}

fn new_ensemble(tr: *const crk_transport, params: &crk_ensemble_params, energies: &[f64]) -> crk_status {
    let mut e: *mut crk_ensemble = null_mut();
    // SAFETY: live transport; params readable; energies hold their count.
    let status = unsafe { crk_ensemble_new(tr, params, energies.as_ptr(), energies.len(), &mut e) };
    // SAFETY: NULL or a live handle.
    unsafe { crk_ensemble_free(e) };
    status
}

#[test]
fn an_ensemble_that_cannot_fit_is_refused_before_its_tables() {
    let losses = thomson_losses();
    let (status, tr) = transport(losses, 1.0, 1e7);
    assert_eq!(status, CRK_OK);
    let energies = log_grid(19, 250.0, 16e3);
    // An SN rate of 1e12 per Myr, or a huge t_max: the mean count is refused outright.
    for (rate, t_max) in [(1e12, 7.0), (1.0, 1e300)] {
        let message = refused(CRK_ERR_INVALID_ARGUMENT, MIB, || {
            new_ensemble(tr, &ensemble_params(rate, t_max), &energies)
        });
        assert_mentions(&message, &["number of sources"]);
    }
    // 1e9 per Myr over 7 Myr: 3e8 young sources a realisation, 23 GiB of workspace a thread.
    let message =
        refused(CRK_ERR_INVALID_ARGUMENT, MIB, || new_ensemble(tr, &ensemble_params(1e9, 7.0), &energies));
    assert_mentions(&message, &["young", "GiB per thread", "134217728", "R_SN"]);
    // Too many energies (each has its age table): refused before any is built.
    let many = log_grid(20_000, 250.0, 16e3);
    let message =
        refused(CRK_ERR_INVALID_ARGUMENT, MIB, || new_ensemble(tr, &ensemble_params(4e3, 7.0), &many));
    assert_mentions(&message, &["n_energies = 20000", "16384"]);
    // Rust API: the same errors.
    let spectrum = SourceSpectrum { q_star_per_gev: 1e50, gamma: 2.2, cutoff_gev: 1e4 };
    let rust_transport =
        Transport::new(&EnergyLosses::thomson(1e-16).unwrap(), 3e28, 0.6, 4.0, 1.0, 1e7).unwrap();
    let params = EnsembleParams {
        sn_rate_per_myr: 1e9,
        t_max_myr: 7.0,
        s_max_kpc: 10.0,
        spatial: SpatialModel::SpiralArms,
        poisson_count: false,
        spectrum,
    };
    let err = Ensemble::new(&rust_transport, &params, &energies).unwrap_err();
    assert_eq!(err.status(), CRK_ERR_INVALID_ARGUMENT);
    assert_mentions(err.message(), &["young"]);
    // Just below the limit in expectation is accepted (the tables are cheap: 19 energies).
    let young_age = energies.iter().map(|&e| rust_transport.max_age(e).unwrap()).fold(0.0, f64::max);
    let accepted = EnsembleParams {
        sn_rate_per_myr: 0.5 * MAX_YOUNG_SOURCES as f64 / young_age,
        t_max_myr: 1e3,
        spatial: SpatialModel::UniformDisc,
        ..params
    };
    assert!(Ensemble::new(&rust_transport, &accepted, &energies).is_ok());
    let _ = CRK_SPATIAL_UNIFORM_DISC;
    // SAFETY: live handles.
    unsafe {
        crk_transport_free(tr);
        crk_losses_free(losses);
    }
}

#[test]
fn source_sums_and_statistics_take_memory_in_proportion_to_their_input() {
    let losses = thomson_losses();
    let (status, tr) = transport(losses, 1.0, 1e7);
    assert_eq!(status, CRK_OK);
    let n = 20_000;
    let distance: Vec<f64> = (0..n).map(|i| 0.1 + (i % 100) as f64 * 0.01).collect();
    let age: Vec<f64> = (0..n).map(|i| 0.01 + (i % 97) as f64 * 0.02).collect();
    let energies = log_grid(19, 10.0, 1e4);
    let mut flux = vec![0.0; energies.len()];
    let spectrum = crk_source_spectrum { q_star_per_GeV: 1e50, gamma: 2.2, cutoff_GeV: 1e4 };
    let (status, peak) = peak_allocation(|| {
        // SAFETY: arrays of the given lengths; live handles.
        unsafe {
            crk_flux_from_sources(
                tr,
                &spectrum,
                distance.as_ptr(),
                age.as_ptr(),
                n,
                energies.as_ptr(),
                energies.len(),
                flux.as_mut_ptr(),
            )
        }
    });
    assert_eq!(status, CRK_OK, "{}", last_message());
    assert!(peak <= 24 * n + 8 * energies.len() + 1024, "{peak} bytes");

    let chi2: Vec<f64> = (0..n).map(|i| i as f64 % 30.0).collect();
    let ndof = vec![10.0; n];
    let mut results = vec![crk_experiment_result::default(); n];
    let mut summary = crk_nll_summary::default();
    let (status, peak) = peak_allocation(|| {
        // SAFETY: arrays of n values; summary writable.
        unsafe {
            crk_experiment_statistics(chi2.as_ptr(), ndof.as_ptr(), n, results.as_mut_ptr(), &mut summary)
        }
    });
    assert_eq!(status, CRK_OK);
    assert!(peak <= 32 * n + 1024, "{peak} bytes");
    // SAFETY: live handles.
    unsafe {
        crk_transport_free(tr);
        crk_losses_free(losses);
    }
}

fn proton() -> crk_particle {
    crk_particle { mass_number: 1, charge: 1, nucleon_mass_GeV: 0.938272 }
}

#[test]
fn a_fit_that_cannot_fit_is_refused_before_its_jacobian() {
    let grid = [1.0, 10.0, 100.0, 1000.0];
    let flux = [1.0, 1e-2, 1e-4, 1e-6];
    let species = [crk_fit_species {
        particle: proton(),
        rigidity_GV: grid.as_ptr(),
        flux_per_GV: flux.as_ptr(),
        n_grid: grid.len(),
        normalisation: 0,
    }];
    let free = crk_fit_parameter { start: 0.5, lower: 0.0, upper: 2.0 };
    let norm = crk_fit_parameter { start: 1.0, lower: 0.1, upper: 10.0 };
    let modulation = [
        free,
        crk_fit_parameter { start: 0.0, lower: 0.0, upper: 0.0 },
        crk_fit_parameter { start: 0.0, lower: 0.0, upper: 0.0 },
    ];
    let point = |i: usize| crk_data_point {
        experiment: 0,
        numerator: 0,
        denominator: -1,
        abscissa: CRK_ABSCISSA_RIGIDITY,
        x: 2.0 + (i % 100) as f64,
        value: 1e-3,
        sigma: 1e-4,
    };
    let run = |normalisations: &[crk_fit_parameter], points: &[crk_data_point], n_experiments: usize| {
        let k = normalisations.len() + 3;
        let (mut parameters, mut uncertainties) = (vec![0.0; k], vec![0.0; k]);
        let mut experiments = vec![crk_experiment_result::default(); n_experiments];
        let mut summary = crk_fit_summary::default();
        // SAFETY: every array holds its count.
        let mut call = || unsafe {
            crk_modulation_fit(
                species.as_ptr(),
                species.len(),
                normalisations.as_ptr(),
                normalisations.len(),
                modulation.as_ptr(),
                points.as_ptr(),
                points.len(),
                n_experiments,
                parameters.as_mut_ptr(),
                uncertainties.as_mut_ptr(),
                experiments.as_mut_ptr(),
                &mut summary,
            )
        };
        call()
    };
    let few: Vec<crk_data_point> = (0..4).map(point).collect();
    // More experiments than data points (each needs one; the Rust test below tries an absurd
    // count, which C could only pass with an array too short for it).
    let message = refused(CRK_ERR_INVALID_ARGUMENT, MIB, || run(&[norm], &few, 5));
    assert_mentions(&message, &["n_experiments = 5", "data points"]);
    // 5000 normalisations: k = 5003 parameters, 600 MB of normal matrices.
    let many = vec![norm; 5000];
    let message = refused(CRK_ERR_INVALID_ARGUMENT, MIB, || run(&many, &few, 1));
    assert_mentions(&message, &["5000 normalisations", "k = 5003", "limit of 4096"]);
    // 4093 normalisations (k = 4096) and 65537 points: a Jacobian of 2^28 + 4096 entries.
    let norms = vec![norm; 4093];
    let points: Vec<crk_data_point> = (0..65_537).map(point).collect();
    let input = points.len() * size_of::<DataPoint>();
    let message = refused(CRK_ERR_INVALID_ARGUMENT, input + MIB, || run(&norms, &points, 1));
    assert_mentions(&message, &["65537 data points", "Jacobian", "2.0 GiB", "2^28"]);
    // Rust API: the same Err, allocating nothing (the problem's points are already built).
    let table = SpeciesModel::new(crkernels::physics::particle::Particle::proton(), &grid, &flux, 0).unwrap();
    let rust_points: Vec<DataPoint> = (0..65_537)
        .map(|i| DataPoint {
            experiment: 0,
            numerator: 0,
            denominator: None,
            abscissa: Abscissa::Rigidity,
            x: 2.0 + (i % 100) as f64,
            value: 1e-3,
            sigma: 1e-4,
        })
        .collect();
    let bounds = FitParameter { start: 1.0, lower: 0.1, upper: 10.0 };
    let (result, peak) = peak_allocation(|| {
        ModulationFit::new(vec![table], vec![bounds; 4093], rust_points, 1, [FitParameter::fixed(0.5); 3])
    });
    let err = result.unwrap_err();
    assert_eq!(err.status(), CRK_ERR_INVALID_ARGUMENT);
    assert!(peak < MIB, "{peak} bytes");
    let point = DataPoint {
        experiment: 0,
        numerator: 0,
        denominator: None,
        abscissa: Abscissa::Rigidity,
        x: 2.0,
        value: 1e-3,
        sigma: 1e-4,
    };
    let table = SpeciesModel::new(crkernels::physics::particle::Particle::proton(), &grid, &flux, 0).unwrap();
    let (result, peak) = peak_allocation(|| {
        ModulationFit::new(
            vec![table],
            vec![bounds],
            vec![point],
            usize::MAX / 64,
            [FitParameter::fixed(0.5); 3],
        )
    });
    assert_mentions(result.unwrap_err().message(), &["n_experiments", "exceeds"]);
    assert!(peak < MIB, "{peak} bytes");
}

/// The documented memory of crk_modulation_fit: 8 n k + 24 k^2 + about 160 n + 56 E + 16 G
/// bytes (n points, k parameters, E experiments, G grid points).
#[test]
fn the_fit_takes_the_documented_memory() {
    let grid: Vec<f64> = (0..40).map(|i| 10f64.powf(i as f64 / 10.0)).collect();
    let flux: Vec<f64> = grid.iter().map(|r| r.powf(-2.7)).collect();
    let species = [crk_fit_species {
        particle: proton(),
        rigidity_GV: grid.as_ptr(),
        flux_per_GV: flux.as_ptr(),
        n_grid: grid.len(),
        normalisation: 0,
    }];
    let normalisations = [crk_fit_parameter { start: 1.0, lower: 0.1, upper: 10.0 }];
    let fixed = crk_fit_parameter { start: 0.0, lower: 0.0, upper: 0.0 };
    let modulation = [crk_fit_parameter { start: 0.3, lower: 0.0, upper: 2.0 }, fixed, fixed];
    let (n, e, k) = (4000usize, 4usize, 4usize);
    let points: Vec<crk_data_point> = (0..n)
        .map(|i| {
            let x = 2.0 + (i % 200) as f64;
            crk_data_point {
                experiment: i % e,
                numerator: 0,
                denominator: -1,
                abscissa: CRK_ABSCISSA_RIGIDITY,
                x,
                value: 1.2 * (x + 0.6f64).powf(-2.7) * (1.0 + 0.01 * ((i % 7) as f64 - 3.0)),
                sigma: 0.05 * x.powf(-2.7),
            }
        })
        .collect();
    let (mut parameters, mut uncertainties) = (vec![0.0; k], vec![0.0; k]);
    let mut experiments = vec![crk_experiment_result::default(); e];
    let mut summary = crk_fit_summary::default();
    let (status, peak) = peak_allocation(|| {
        // SAFETY: every array holds its count.
        unsafe {
            crk_modulation_fit(
                species.as_ptr(),
                1,
                normalisations.as_ptr(),
                1,
                modulation.as_ptr(),
                points.as_ptr(),
                n,
                e,
                parameters.as_mut_ptr(),
                uncertainties.as_mut_ptr(),
                experiments.as_mut_ptr(),
                &mut summary,
            )
        }
    });
    assert_eq!(status, CRK_OK, "{}", last_message());
    let formula = 8 * n * k + 24 * k * k + 160 * n + 56 * e + 16 * grid.len() + 4096;
    eprintln!(
        "fit: {peak} bytes, formula {formula} ({} per point beyond the Jacobian)",
        (peak - 8 * n * k) / n
    );
    assert!(peak <= formula, "{peak} bytes, documented {formula}");
}

/// The documented memory of a realisation (32 bytes per young source + 32 KiB, per thread),
/// of crk_ensemble_sources (16 bytes per young source + 32 KiB) and of the age tables (at most 1.8 MB
/// an energy, typically 10 to 50 KB).
#[test]
fn an_ensemble_takes_the_documented_memory() {
    let transport = Transport::new(&EnergyLosses::thomson(1e-16).unwrap(), 3e28, 0.6, 4.0, 1.0, 1e7).unwrap();
    let energies = log_grid(30, 20.0, 2e4);
    let params = EnsembleParams {
        sn_rate_per_myr: 3e4,
        t_max_myr: 100.0,
        s_max_kpc: 10.0,
        spatial: SpatialModel::SpiralArms,
        poisson_count: true,
        spectrum: SourceSpectrum { q_star_per_gev: 1e50, gamma: 2.2, cutoff_gev: 1e4 },
    };
    let (ensemble, tables) = peak_allocation(|| Ensemble::new(&transport, &params, &energies).unwrap());
    eprintln!("tables: {tables} bytes, {} per energy", tables / energies.len());
    assert!(tables <= 1_800_000 * energies.len(), "{tables} bytes");
    let mut flux = vec![0.0; energies.len()];
    let mut work = Workspace::default();
    let ((), workspace) = peak_allocation(|| ensemble.realisation_in(&mut work, 7, 3, &mut flux));
    let (sources, drawn) = peak_allocation(|| ensemble.sources(7, 3));
    let n = sources.age_myr.len();
    eprintln!("{n} sources: workspace {workspace} bytes, sources {drawn} bytes");
    assert!(n > 10_000, "{n} sources");
    assert!(workspace <= 32 * n + 33 * 1024, "{workspace} bytes for {n} sources");
    // The bound a run uses to lower its thread count where the workspaces would not fit.
    assert!(
        workspace <= ensemble.workspace_bytes_bound(),
        "{workspace} > {}",
        ensemble.workspace_bytes_bound()
    );
    assert!(ensemble.workspace_bytes_bound() < 2 * 32 * n, "{}", ensemble.workspace_bytes_bound());
    assert!(drawn <= 16 * n + 33 * 1024, "{drawn} bytes for {n} sources");
}

#[test]
fn too_many_surrogate_candidates_are_refused_before_allocating() {
    // 10^6 degrees x 10^6 alphas: 10^12 candidates, 24 TB of scores.
    let (x, y) = surrogate_points(20, 2);
    let degrees = vec![1usize; 1_000_000];
    let alphas = vec![1e-3; 1_000_000];
    let options = surrogate_options(&degrees, &alphas);
    let message = refused(CRK_ERR_INVALID_ARGUMENT, MIB, || fit_surrogate(&x, 2, &y, &options).0);
    assert_mentions(&message, &["1000000 x 1000000", "candidates", "limit of 65536"]);
}
