//! The normalisation + solar-modulation fit against the Python helper's synthetic data
//! (tests/reference/normfit_reference.py: model tables, clean and noisy data sets, scipy fits).

mod fit_support;

use std::collections::HashMap;

use crkernels::physics::particle::Particle;
use crkernels::stats::fit::{Abscissa, DataPoint, FitParameter, FitResult, ModulationFit, SpeciesModel};
use fit_support::Table;

const SPECIES: [&str; 7] = ["p", "He4", "C12", "B11", "e-", "e+", "pbar"];
/// Normalisation parameter of each species: N_p, N_He4, N_C12, N_e-, N_e+ (B11 tied to C12,
/// pbar to p).
const NORMALISATION: [usize; 7] = [0, 1, 2, 2, 3, 4, 0];
const PARAMETERS: [&str; 8] = ["N_p", "N_He4", "N_C12", "N_e-", "N_e+", "Phi0", "Phi1p", "Phi1m"];

fn problem(data_file: &str) -> (ModulationFit, Vec<String>, Vec<f64>) {
    let model = Table::read("normfit_model.csv");
    let species: Vec<SpeciesModel> = SPECIES
        .iter()
        .zip(NORMALISATION)
        .map(|(name, norm)| {
            let rows: Vec<usize> =
                (0..model.rows.len()).filter(|&r| model.text(r, "species") == *name).collect();
            let r0 = rows[0];
            let particle =
                Particle::new(model.get(r0, "A") as u32, model.get(r0, "Z") as i32, model.get(r0, "m"))
                    .unwrap();
            let grid: Vec<f64> = rows.iter().map(|&r| model.get(r, "R")).collect();
            let flux: Vec<f64> = rows.iter().map(|&r| model.get(r, "flux_R")).collect();
            SpeciesModel::new(particle, &grid, &flux, norm).unwrap()
        })
        .collect();
    let data = Table::read(data_file);
    let mut experiments: Vec<String> = Vec::new();
    let index = |name: &str| SPECIES.iter().position(|s| *s == name).unwrap();
    let points: Vec<DataPoint> = (0..data.rows.len())
        .map(|r| {
            let experiment = data.text(r, "experiment").to_string();
            if !experiments.contains(&experiment) {
                experiments.push(experiment.clone());
            }
            let quantity = data.text(r, "quantity");
            let (numerator, denominator) = match quantity.split_once('/') {
                Some((a, b)) => (index(a), Some(index(b))),
                None => (index(quantity), None),
            };
            DataPoint {
                experiment: experiments.iter().position(|e| *e == experiment).unwrap(),
                numerator,
                denominator,
                abscissa: Abscissa::KineticEnergyPerNucleon,
                x: data.get(r, "T"),
                value: data.get(r, "value"),
                sigma: data.get(r, "sigma"),
            }
        })
        .collect();
    let truth: Vec<f64> = PARAMETERS
        .iter()
        .map(|p| {
            let line = data.comments.iter().find(|c| c.starts_with(&format!("true {p} "))).unwrap();
            fit_support::parse(line.rsplit(' ').next().unwrap())
        })
        .collect();
    let norm = FitParameter { start: 1.0, lower: 0.1, upper: 10.0 };
    let fit = ModulationFit::new(
        species,
        vec![norm; 5],
        points,
        experiments.len(),
        [
            FitParameter { start: 0.5, lower: 0.0, upper: 3.0 },
            FitParameter { start: 0.5, lower: 0.0, upper: 5.0 },
            FitParameter { start: 0.5, lower: 0.0, upper: 5.0 },
        ],
    )
    .unwrap();
    (fit, experiments, truth)
}

fn scipy(dataset: &str) -> HashMap<String, f64> {
    let table = Table::read("normfit_fit.csv");
    (0..table.rows.len())
        .filter(|&r| table.text(r, "dataset") == dataset)
        .filter_map(|r| table.text(r, "value").parse().ok().map(|v| (table.text(r, "key").to_string(), v)))
        .collect()
}

#[test]
fn clean_data_give_back_the_truth() {
    let (fit, _, truth) = problem("normfit_data_clean.csv");
    let start = std::time::Instant::now();
    let result = fit.run().unwrap();
    println!("clean fit: {:?}, {} iterations, chi2 {:e}", start.elapsed(), result.iterations, result.chi2);
    assert!(result.converged);
    for ((name, got), want) in PARAMETERS.iter().zip(&result.parameters).zip(&truth) {
        assert!((got - want).abs() <= 1e-8 * want.abs(), "{name}: {got} vs {want}");
    }
    assert!(result.chi2 < 1e-16, "{}", result.chi2);
    // Uncertainties as scipy's sqrt diag (J^T J)^-1 at the same point.
    let reference = scipy("clean");
    for (name, got) in PARAMETERS.iter().zip(&result.uncertainties) {
        let want = reference[&format!("err_{name}")];
        assert!((got / want - 1.0).abs() < 1e-6, "err_{name}: {got} vs {want}");
    }
}

fn check_noisy(dataset: &str) -> FitResult {
    let (fit, experiments, truth) = problem(&format!("normfit_data_{dataset}.csv"));
    let result = fit.run().unwrap();
    assert!(result.converged, "{dataset}");
    let reference = scipy(dataset);
    for (j, name) in PARAMETERS.iter().enumerate() {
        let want = reference[&format!("fit_{name}")];
        let sigma = result.uncertainties[j];
        assert!(
            (result.parameters[j] - want).abs() < 1e-4 * sigma,
            "{dataset} {name}: {} vs scipy {want}",
            result.parameters[j]
        );
        // The truth is within a few reported sigma.
        assert!(
            (result.parameters[j] - truth[j]).abs() < 4.0 * sigma,
            "{dataset} {name}: far from the truth"
        );
    }
    let chi2 = reference["chi2_fit"];
    assert!((result.chi2 / chi2 - 1.0).abs() < 1e-9, "{dataset}: chi2 {} vs {chi2}", result.chi2);
    // Per-experiment chi2 and NLL, Sum-NLL and Max-NLL.
    let table = Table::read("normfit_chi2.csv");
    for r in (0..table.rows.len()).filter(|&r| table.text(r, "dataset") == dataset) {
        let experiment = table.text(r, "experiment");
        let want = table.get(r, "neg_ln_p_fit");
        let got = match experiment {
            "SUM_NLL" => result.summary.sum_nll,
            "MAX_NLL" => result.summary.max_nll,
            name => {
                let e = &result.experiments[experiments.iter().position(|x| x == name).unwrap()];
                assert_eq!(e.ndof, table.get(r, "n"));
                assert!((e.chi2 / table.get(r, "chi2_fit") - 1.0).abs() < 1e-6, "{dataset} {name}: chi2");
                e.nll
            }
        };
        assert!((got / want - 1.0).abs() < 1e-6, "{dataset} {experiment}: NLL {got} vs {want}");
    }
    result
}

#[test]
fn noisy_data_match_scipy_and_the_truth() {
    for dataset in ["noisy_s1", "noisy_s2", "noisy_s3"] {
        check_noisy(dataset);
    }
}

/// Many synthetic noisy sets (the model at the truth plus Gaussian noise from the library's own
/// Philox generator): the fitted chi2 follows a chi2 distribution with n - k degrees of freedom
/// (mean 119, std sqrt(238)), and the pulls (fit - truth) / sigma have unit spread.
#[test]
fn chi2_distribution_over_many_synthetic_sets() {
    use crkernels::rng::Stream;
    let (clean, _, truth) = problem("normfit_data_clean.csv");
    let data = Table::read("normfit_data_clean.csv");
    let sigma = data.floats("sigma");
    let truth_values = data.floats("true_value");
    let mut model = vec![0.0; truth_values.len()];
    clean.model(&truth, &mut model).unwrap();
    for (m, t) in model.iter().zip(&truth_values) {
        assert!((m / t - 1.0).abs() < 1e-13, "model {m} vs mpmath {t}");
    }
    let n_sets = 200;
    let mut chi2 = Vec::with_capacity(n_sets);
    let mut pull_sq = vec![0.0; truth.len()];
    let mut rng = Stream::new(2024, 0);
    for _ in 0..n_sets {
        let values: Vec<f64> = model.iter().zip(&sigma).map(|(m, s)| m + s * rng.normal()).collect();
        let fit = clean.with_values(&values).unwrap();
        let result = fit.run().unwrap();
        chi2.push(result.chi2);
        for (j, s) in pull_sq.iter_mut().enumerate() {
            let pull = (result.parameters[j] - truth[j]) / result.uncertainties[j];
            *s += pull * pull / n_sets as f64;
        }
    }
    let mean = chi2.iter().sum::<f64>() / n_sets as f64;
    let ndof = 127.0 - 8.0;
    // The mean of 200 chi2(119) values has a standard deviation sqrt(238 / 200) = 1.09.
    assert!((mean - ndof).abs() < 4.0 * (2.0 * ndof / n_sets as f64).sqrt(), "mean chi2 {mean}");
    for (name, s) in PARAMETERS.iter().zip(&pull_sq) {
        // The mean squared pull of 200 sets is 1 +- 0.1.
        assert!((0.7..1.3).contains(s), "{name}: mean squared pull {s}");
    }
}
