//! `crk fit`: the parameters of a measured spectrum from an emulator's log-density
//! (crkernels::inference): the maximum-likelihood parameters and a posterior sample by
//! Hamiltonian Monte Carlo under a uniform prior on a box (default: table 1's ranges).
//!
//! The spectrum: a CSV with the header `energy_GeV,flux` or `energy_GeV,flux,flux_sigma` (phi
//! and its standard deviation in GeV^-1 m^-2 s^-1 sr^-1), one row per energy of the model. The
//! data are psi = ln(E^3 phi); a measurement uncertainty becomes sigma_psi = sigma_phi / phi
//! (first order) and is folded in exactly by data augmentation: the true psi is sampled with
//! the parameters, p(psi_obs | theta) = int p(psi | theta) N(psi_obs; psi, sigma_psi^2) dpsi
//! (see crkernels::inference).
//!
//! `--closure N` checks the method instead: N spectra simulated at parameters drawn uniformly
//! inside the prior box (between the grid points), one realisation each, are fitted, and the
//! report counts how often the true parameters fall inside the 68% and 95% intervals.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use crkernels::inference::{FitOptions, FitProblem, FitResult, fit};
use crkernels::math;
use crkernels::rng::Stream;
use crkernels::secret::{self, GridPoint, GridSettings, TABLE1_AXES};

use crate::model::Emulator;
use crate::{CliError, Result};

#[derive(Args)]
pub struct FitArgs {
    /// The model (safetensors).
    #[arg(long)]
    model: PathBuf,
    /// The measured spectrum: CSV energy_GeV,flux[,flux_sigma] (GeV, GeV^-1 m^-2 s^-1 sr^-1).
    #[arg(long)]
    spectrum: Option<PathBuf>,
    /// The report (JSON).
    #[arg(long)]
    out: PathBuf,
    /// The prior box: lower:upper per parameter, comma-separated (default: table 1's ranges).
    #[arg(long)]
    prior: Option<String>,
    /// Chains.
    #[arg(long, default_value_t = 8)]
    chains: usize,
    /// Warm-up iterations per chain.
    #[arg(long, default_value_t = 500)]
    warmup: usize,
    /// Kept draws per chain.
    #[arg(long, default_value_t = 500)]
    draws: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Threads (0: all cores); the result does not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Instead of a spectrum: N closure trials (spectra simulated at random parameters in the
    /// prior box and fitted; reports the coverage of the intervals).
    #[arg(long)]
    closure: Option<usize>,
    /// Relative measurement uncertainty added to the closure trials' spectra (0: none).
    #[arg(long, default_value_t = 0.0)]
    closure_sigma: f64,
    /// The emulator's own error in psi (e.g. its typical |Delta Q|, 0.02 to 0.05), added in
    /// quadrature to the measurement's sigma_psi (or used alone) and folded in the same way;
    /// 0: the emulator's density is taken as exact.
    #[arg(long, default_value_t = 0.0)]
    emulator_sigma: f64,
}

/// sigma_psi with the emulator's error added in quadrature: sqrt(sigma^2 + e^2) per energy.
fn with_emulator_error(sigma: Option<Vec<f64>>, emulator_sigma: f64, n: usize) -> Result<Option<Vec<f64>>> {
    if !(emulator_sigma.is_finite() && emulator_sigma >= 0.0) {
        return Err(CliError::usage(format!("--emulator-sigma {emulator_sigma}: must be finite and >= 0")));
    }
    if emulator_sigma == 0.0 {
        return Ok(sigma);
    }
    let base = sigma.unwrap_or_else(|| vec![0.0; n]);
    Ok(Some(base.iter().map(|&s| math::hypot(s, emulator_sigma)).collect()))
}

/// The observed psi at the model's energies and its sigma, from a spectrum CSV.
pub fn read_spectrum(path: &Path, energies_gev: &[f64]) -> Result<(Vec<f64>, Option<Vec<f64>>)> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| CliError::input(format!("{name}: {e}")))?;
    let mut lines =
        text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let header: Vec<&str> =
        lines.next().map(|(_, l)| l.split(',').map(str::trim).collect()).unwrap_or_default();
    let with_sigma = match header.as_slice() {
        ["energy_GeV", "flux"] => false,
        ["energy_GeV", "flux", "flux_sigma"] => true,
        _ => {
            return Err(CliError::input(format!(
                "{name}: the header is `{}`; it must be `energy_GeV,flux` or `energy_GeV,flux,flux_sigma`",
                header.join(",")
            )));
        }
    };
    let mut psi = vec![f64::NAN; energies_gev.len()];
    let mut sigma = vec![f64::NAN; energies_gev.len()];
    for (number, line) in lines {
        let at = |what: &str| format!("{name} line {}: {what}", number + 1);
        let values = line
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| CliError::input(at(&format!("'{}' is not a number", v.trim()))))
            })
            .collect::<Result<Vec<f64>>>()?;
        if values.len() != header.len() {
            return Err(CliError::input(at(&format!("{} values, {} expected", values.len(), header.len()))));
        }
        let (energy, flux) = (values[0], values[1]);
        let Some(k) = energies_gev.iter().position(|e| (e - energy).abs() <= 1e-6 * e) else {
            let list: Vec<String> = energies_gev.iter().map(|e| format!("{e:.4}")).collect();
            return Err(CliError::input(at(&format!(
                "energy {energy} GeV is not one of the model's energies ({} GeV)",
                list.join(", ")
            ))));
        };
        if !psi[k].is_nan() {
            return Err(CliError::input(at(&format!("energy {energy} GeV appears twice"))));
        }
        if !(flux.is_finite() && flux > 0.0) {
            return Err(CliError::input(at(&format!("flux = {flux}: it must be finite and > 0"))));
        }
        psi[k] = math::ln(energy.powi(3) * flux);
        if with_sigma {
            let s = values[2];
            if !(s.is_finite() && s > 0.0) {
                return Err(CliError::input(at(&format!("flux_sigma = {s}: it must be finite and > 0"))));
            }
            sigma[k] = s / flux;
        }
    }
    let missing: Vec<String> =
        energies_gev.iter().zip(&psi).filter(|(_, p)| p.is_nan()).map(|(e, _)| format!("{e:.4}")).collect();
    if !missing.is_empty() {
        return Err(CliError::input(format!(
            "{name}: no flux at the model's energies {} GeV (the emulator's density needs every energy)",
            missing.join(", ")
        )));
    }
    Ok((psi, with_sigma.then_some(sigma)))
}

/// The prior box: table 1's ranges, or `lower:upper,...`.
fn prior_box(text: Option<&str>, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let Some(text) = text else {
        if n != 5 {
            return Err(CliError::usage(format!(
                "the model takes {n} parameters: give --prior lower:upper,..."
            )));
        }
        let lower = TABLE1_AXES.iter().map(|a| a.0).collect();
        let upper = TABLE1_AXES.iter().map(|a| a.0 + a.1 * (a.2 - 1) as f64).collect();
        return Ok((lower, upper));
    };
    let bad = || CliError::usage(format!("--prior {text}: expected {n} lower:upper pairs, comma-separated"));
    let pairs: Vec<(f64, f64)> = text
        .split(',')
        .map(|p| {
            let (a, b) = p.split_once(':').ok_or_else(bad)?;
            Ok((a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?))
        })
        .collect::<Result<_>>()?;
    if pairs.len() != n {
        return Err(bad());
    }
    Ok(pairs.into_iter().unzip())
}

fn options(args: &FitArgs, seed: u64) -> FitOptions {
    FitOptions {
        seed,
        n_chains: args.chains,
        warmup: args.warmup,
        samples_per_chain: args.draws,
        n_threads: args.threads,
        ..FitOptions::default()
    }
}

fn result_json(result: &FitResult, names: &[String]) -> serde_json::Value {
    let ml = &result.max_likelihood;
    let post = &result.posterior;
    let parameters: Vec<serde_json::Value> = names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let s = &post.summary[j];
            serde_json::json!({
                "name": name,
                "max_likelihood": ml.theta[j],
                "standard_error": ml.standard_errors.as_ref().map(|e| e[j]),
                "at_boundary": ml.at_boundary[j],
                "mean": s.mean, "sd": s.sd, "median": s.median,
                "interval_68": s.interval_68, "interval_95": s.interval_95,
                "r_hat": s.r_hat, "ess_bulk": s.ess_bulk, "ess_tail": s.ess_tail,
            })
        })
        .collect();
    serde_json::json!({
        "parameters": parameters,
        "max_log_likelihood": ml.log_likelihood,
        "chains": post.n_chains,
        "draws_per_chain": post.samples_per_chain,
        "accept_rate": post.accept_rate,
        "divergences": post.divergences,
        "max_r_hat": post.max_r_hat(),
    })
}

pub fn run(args: FitArgs) -> Result<()> {
    let emulator = Emulator::load(&args.model)?;
    let made = &emulator.made;
    if made.n_context() == 0 {
        return Err(CliError::input(format!("{}: the model has no parameters to fit", args.model.display())));
    }
    let (lower, upper) = prior_box(args.prior.as_deref(), made.n_context())?;
    if let Some(trials) = args.closure {
        if args.spectrum.is_some() {
            return Err(CliError::usage("give --spectrum or --closure, not both".into()));
        }
        return closure(&args, &emulator, trials, &lower, &upper);
    }
    let path = args
        .spectrum
        .as_ref()
        .ok_or_else(|| CliError::usage("give --spectrum FILE (or --closure N)".into()))?;
    let (psi, sigma) = read_spectrum(path, &emulator.energies_gev)?;
    let sigma = with_emulator_error(sigma, args.emulator_sigma, psi.len())?;
    let problem = FitProblem { made, observed: &psi, sigma: sigma.as_deref(), lower: &lower, upper: &upper };
    let started = Instant::now();
    let result = fit(&problem, &options(&args, args.seed)).map_err(|e| CliError::input(e.to_string()))?;
    let seconds = started.elapsed().as_secs_f64();
    let mut out = String::new();
    writeln!(
        out,
        "{:<24} {:>12} {:>10} {:>10} {:>21} {:>21} {:>6}",
        "parameter", "max. lik.", "mean", "sd", "68% interval", "95% interval", "R-hat"
    )
    .expect("String");
    for (j, name) in emulator.parameters.iter().enumerate() {
        let s = &result.posterior.summary[j];
        writeln!(
            out,
            "{name:<24} {:>12.4} {:>10.4} {:>10.4} {:>21} {:>21} {:>6.3}",
            result.max_likelihood.theta[j],
            s.mean,
            s.sd,
            format!("[{:.4}, {:.4}]", s.interval_68[0], s.interval_68[1]),
            format!("[{:.4}, {:.4}]", s.interval_95[0], s.interval_95[1]),
            s.r_hat
        )
        .expect("String");
    }
    let divergences: usize = result.posterior.divergences.iter().sum();
    writeln!(
        out,
        "max log-likelihood {:.3}; {} chains x {} draws, {divergences} divergences, {seconds:.1} s{}",
        result.max_likelihood.log_likelihood,
        result.posterior.n_chains,
        result.posterior.samples_per_chain,
        if sigma.is_some() {
            "; measurement and emulator uncertainty folded in (latent true spectrum)"
        } else {
            ""
        }
    )
    .expect("String");
    print!("{out}");
    let mut json = result_json(&result, &emulator.parameters);
    json["seconds"] = serde_json::json!(seconds);
    json["spectrum"] = serde_json::json!(path.display().to_string());
    json["prior_lower"] = serde_json::json!(lower);
    json["prior_upper"] = serde_json::json!(upper);
    std::fs::write(&args.out, serde_json::to_string_pretty(&json).expect("serialisable") + "\n")
        .map_err(|e| CliError::io(format!("{}: {e}", args.out.display())))?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// The closure test: trial t draws theta* uniformly in the box (Philox stream (seed, 2^40 + t)),
/// simulates one realisation of the grid's ensemble there (seed + 1, realisation t), adds the
/// relative measurement noise if asked, fits, and records whether theta* is inside the 68% and
/// 95% intervals.
fn closure(args: &FitArgs, emulator: &Emulator, trials: usize, lower: &[f64], upper: &[f64]) -> Result<()> {
    if emulator.made.n_context() != 5 || emulator.made.n_dims() != emulator.energies_gev.len() {
        return Err(CliError::input("--closure needs a model of the SECRET grid's 5 parameters".into()));
    }
    if !(args.closure_sigma >= 0.0 && args.closure_sigma.is_finite()) {
        return Err(CliError::usage(format!("--closure-sigma {}: must be >= 0", args.closure_sigma)));
    }
    let settings = GridSettings { energies_gev: emulator.energies_gev.clone(), ..GridSettings::default() };
    let losses = settings.losses().map_err(CliError::library)?;
    let names = &emulator.parameters;
    let mut inside = [[0usize; 2]; 5];
    let mut records = Vec::new();
    let started = Instant::now();
    let bar = crate::progress_bar(trials as u64, "trials", false);
    for t in 0..trials {
        let mut stream = Stream::new(args.seed, (1 << 40) + t as u64);
        let truth: [f64; 5] = core::array::from_fn(|j| lower[j] + (upper[j] - lower[j]) * stream.uniform());
        let ensemble =
            settings.ensemble(&losses, &GridPoint::from_array(truth)).map_err(CliError::library)?;
        let mut flux = vec![0.0; settings.energies_gev.len()];
        ensemble.realisation(args.seed.wrapping_add(1), t as u64, &mut flux);
        let mut psi = vec![0.0f32; flux.len()];
        secret::psi_from_flux(&settings.energies_gev, &flux, &mut psi);
        let mut observed: Vec<f64> = psi.iter().map(|&v| f64::from(v)).collect();
        let sigma = (args.closure_sigma > 0.0).then(|| vec![args.closure_sigma; observed.len()]);
        if let Some(s) = &sigma {
            // psi_obs = psi + N(0, sigma_psi): the relative flux error to first order.
            for (v, s) in observed.iter_mut().zip(s) {
                *v += s * stream.normal();
            }
        }
        let sigma = with_emulator_error(sigma, args.emulator_sigma, observed.len())?;
        let problem =
            FitProblem { made: &emulator.made, observed: &observed, sigma: sigma.as_deref(), lower, upper };
        let result = fit(&problem, &options(args, args.seed.wrapping_add(t as u64)))
            .map_err(|e| CliError::input(format!("trial {t}: {e}")))?;
        for (j, s) in result.posterior.summary.iter().enumerate() {
            inside[j][0] += usize::from(s.interval_68[0] <= truth[j] && truth[j] <= s.interval_68[1]);
            inside[j][1] += usize::from(s.interval_95[0] <= truth[j] && truth[j] <= s.interval_95[1]);
        }
        let mut record = result_json(&result, names);
        record["truth"] = serde_json::json!(truth);
        records.push(record);
        bar.inc(1);
        if bar.is_hidden() && (t + 1) % 10 == 0 {
            eprintln!(
                "crk fit --closure: {} of {trials} trials, {:.0} s",
                t + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let n = trials as f64;
    println!(
        "closure test: {trials} spectra simulated at random parameters inside the prior box, fitted ({seconds:.0} s)"
    );
    println!("{:<24} {:>16} {:>16}", "parameter", "inside 68%", "inside 95%");
    let mut coverage = Vec::new();
    for (j, name) in names.iter().enumerate() {
        let (a, b) = (inside[j][0] as f64 / n, inside[j][1] as f64 / n);
        println!(
            "{name:<24} {:>16} {:>16}",
            format!("{:.3} +- {:.3}", a, (0.68 * 0.32 / n).sqrt()),
            format!("{:.3} +- {:.3}", b, (0.95 * 0.05 / n).sqrt())
        );
        coverage
            .push(serde_json::json!({"name": name, "inside_68": inside[j][0], "inside_95": inside[j][1]}));
    }
    let json = serde_json::json!({
        "trials": trials, "seed": args.seed, "closure_sigma": args.closure_sigma,
        "emulator_sigma": args.emulator_sigma, "seconds": seconds,
        "prior_lower": lower, "prior_upper": upper, "coverage": coverage, "fits": records,
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&json).expect("serialisable") + "\n")
        .map_err(|e| CliError::io(format!("{}: {e}", args.out.display())))?;
    println!("wrote {}", args.out.display());
    Ok(())
}
