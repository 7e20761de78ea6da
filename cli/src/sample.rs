//! `crk sample`: spectra drawn from an emulator for given parameters. Row r of point p's
//! sample with seed s is drawn from the Philox stream (s, first_row + r) for every point (as
//! `crk_made_sample_from`), so a sample split into calls with consecutive --first-row equals
//! one call.

use std::path::PathBuf;

use clap::Args;
use crkernels::emulator::ParallelMade;
use crkernels::secret::GridPoint;

use crate::model::{Emulator, QUANTILES, column_quantiles};
use crate::{CliError, Result, grid, npy, svg};

#[derive(Args)]
pub struct SampleArgs {
    /// The model (safetensors).
    #[arg(long)]
    model: PathBuf,
    /// One point's parameters, comma-separated in the model's order (for the SECRET grid:
    /// R_SN [1e4/Myr], log10 E_cut [GeV], gamma, delta, kappa0 [1e28 cm^2/s]).
    #[arg(long, allow_hyphen_values = true)]
    params: Option<String>,
    /// Points from a CSV with crk grid's header (one sample per point).
    #[arg(long)]
    points: Option<PathBuf>,
    /// Spectra per point.
    #[arg(long)]
    n: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Index of the first row (rows first_row.. first_row + n - 1 of the seed's sequence).
    #[arg(long, default_value_t = 0)]
    first_row: u64,
    /// Output .npy: float32 psi = ln(E^3 phi), [n][energies] for --params, [points][n][energies]
    /// for --points.
    #[arg(long)]
    out: PathBuf,
    /// Draw the quantile bands of E^3 phi to this SVG (the first point's).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Parses "a,b,c" into numbers, naming the option.
pub fn parse_list(option: &str, text: &str, expected: usize) -> Result<Vec<f64>> {
    let values = text
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| CliError::usage(format!("{option} {text}: '{v}' is not a number")))
        })
        .collect::<Result<Vec<_>>>()?;
    if values.len() != expected {
        return Err(CliError::usage(format!(
            "{option} {text}: {} values, the model takes {expected}",
            values.len()
        )));
    }
    Ok(values)
}

/// Draws `n` spectra (psi, [n][D]) at `params` with rows first_row.. of `seed`.
pub fn draw(
    emulator: &Emulator,
    params: &[f64],
    n: usize,
    seed: u64,
    first_row: u64,
    threads: usize,
) -> Result<Vec<f32>> {
    let made = &emulator.made;
    if first_row.checked_add(n as u64).is_none() {
        return Err(CliError::usage(format!("--first-row {first_row} + --n {n} passes 2^64")));
    }
    let context: Vec<f32> = (0..n).flat_map(|_| params.iter().map(|&v| v as f32)).collect();
    let mut out = vec![0.0f32; n * made.n_dims()];
    made.sample_parallel(&context, seed, first_row, threads, &mut out).map_err(CliError::library)?;
    Ok(out)
}

pub fn run(args: SampleArgs) -> Result<()> {
    let emulator = Emulator::load(&args.model)?;
    let made = &emulator.made;
    if args.n == 0 {
        return Err(CliError::usage("--n 0: nothing to sample".into()));
    }
    let points: Vec<Vec<f64>> = match (&args.params, &args.points) {
        (Some(text), None) => vec![parse_list("--params", text, made.n_context())?],
        (None, Some(path)) => {
            if made.n_context() != 5 {
                return Err(CliError::input(format!(
                    "--points gives 5 parameters, the model takes {}",
                    made.n_context()
                )));
            }
            grid::read_points_csv(path)?.iter().map(|p| p.to_array().to_vec()).collect()
        }
        _ => return Err(CliError::usage("give exactly one of --params and --points".into())),
    };
    for p in &points {
        if p.iter().any(|v| !v.is_finite()) {
            return Err(CliError::usage(format!("parameters {p:?}: NaN or infinite")));
        }
        if p.len() == 5 {
            GridPoint::from_array(p.clone().try_into().expect("5"))
                .validate()
                .map_err(|e| CliError::input(e.to_string()))?;
        }
    }
    let d = made.n_dims();
    let mut all = Vec::with_capacity(points.len() * args.n * d);
    for p in &points {
        all.extend(draw(&emulator, p, args.n, args.seed, args.first_row, args.threads)?);
    }
    let shape = if args.params.is_some() { vec![args.n, d] } else { vec![points.len(), args.n, d] };
    npy::write_f32(&args.out, &all, &shape)
        .map_err(|e| CliError::io(format!("{}: {e}", args.out.display())))?;
    let first = column_quantiles(&all[..args.n * d], d);
    println!("E^3 phi [GeV^2 m^-2 s^-1 sr^-1] at {:?} ({} spectra, seed {}):", points[0], args.n, args.seed);
    print!("{:>10}", "E [GeV]");
    for q in QUANTILES {
        print!(" {:>11}", format!("{}%", q * 100.0));
    }
    println!();
    for (e, b) in emulator.energies_gev.iter().zip(&first) {
        print!("{e:>10.1}");
        for v in b {
            print!(" {:>11.4e}", v.exp());
        }
        println!();
    }
    println!("wrote {} (float32 psi = ln(E^3 phi), shape {shape:?})", args.out.display());
    if let Some(path) = &args.svg {
        let title = format!("emulator at {:?}", points[0]);
        let doc = svg::bands_plot(&title, &emulator.energies_gev, ("emulator", &first), None);
        std::fs::write(path, doc).map_err(|e| CliError::io(format!("{}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
