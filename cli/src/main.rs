//! `crk`: the SECRET pipeline as commands (simulate a parameter grid to disk, train a
//! conditional MADE-MoG emulator on it, evaluate it against held-out simulations, sample
//! spectra from it, infer parameters of a measured spectrum). `crk help <command>` for each.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use crk::{CliError, Result, evaluate, fail, fit, grid, sample, train};

#[derive(Parser)]
#[command(
    name = "crk",
    version,
    about = "The SECRET pipeline: parameter grids of stochastic cosmic-ray electron spectra, \
    conditional MADE-MoG emulators trained on them, their evaluation, sampling and parameter inference (crkernels)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a grid of ensembles to a directory: psi_<i>.npy per point and manifest.json
    /// (resumable: rerun the same command after a crash; splittable: --shard k/N).
    Grid(GridArgs),
    /// Train a conditional MADE-MoG on a grid directory (the shards are memory-mapped).
    Train(train::TrainArgs),
    /// Draw spectra from a model for given parameters.
    Sample(sample::SampleArgs),
    /// Check a model against held-out simulations (Delta Q, classifier two-sample test).
    Evaluate(evaluate::EvaluateArgs),
    /// Infer the parameters of a measured spectrum (maximum likelihood and HMC), or check the
    /// method by a closure test.
    Fit(fit::FitArgs),
}

#[derive(Args)]
struct GridArgs {
    /// The points: a CSV with the header
    /// sn_rate_1e4_per_Myr,log10_ecut_GeV,gamma,delta,kappa0_1e28_cm2_per_s (table 1's
    /// parameters in its units). Without --points, --preset or a config: table 1's 6750 points.
    #[arg(long)]
    points: Option<PathBuf>,
    /// A named point set: table1 (6750 points) or offset (the 2560 centres of table 1's cells,
    /// SECRET section 4.3).
    #[arg(long)]
    preset: Option<String>,
    /// A TOML or JSON config: points (points_csv, points, axes or preset), realisations, seed,
    /// and [settings] that differ from table 1's (energies_gev, loss_model, isrf,
    /// magnetic_field_ug, halo_kpc, t_max_myr, s_max_kpc, spatial, poisson_count,
    /// source_energy_erg, table_range_gev, precision).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Realisations per point.
    #[arg(long)]
    realisations: Option<u64>,
    /// Seed: realisation r of point p is a function of (seed, p, r) only.
    #[arg(long)]
    seed: Option<u64>,
    /// The output directory.
    #[arg(long)]
    out: PathBuf,
    /// Run part k of N (1 <= k <= N: the points i with i mod N = k - 1), or `auto` (from
    /// Slurm's array or MPI's rank variables).
    #[arg(long)]
    shard: Option<String>,
    /// Threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Compute the realisations on CUDA device N (`crk` built with `--features cuda`); the host
    /// cores build the next points' tables meanwhile. The spectra equal a CPU run's within the
    /// tier's tolerance (1e-12 exact, 1e-5 f32), not bit for bit.
    #[arg(long, value_name = "N")]
    device: Option<usize>,
    /// exact (default) or f32: the ensemble's per-source terms in single precision with
    /// double accumulation (each spectrum within 1e-5 of the exact one, for training sets);
    /// recorded in the manifest.
    #[arg(long)]
    precision: Option<String>,
    /// Check that every part is present and matches its checksum, and record the checksums in
    /// the manifest (computes nothing).
    #[arg(long)]
    merge: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn grid_command(args: GridArgs) -> Result<()> {
    if args.merge {
        if args.points.is_some()
            || args.config.is_some()
            || args.shard.is_some()
            || args.preset.is_some()
            || args.precision.is_some()
            || args.device.is_some()
        {
            return fail(CliError::usage(
                "--merge checks a directory: give only --out (the run is read from its manifest)".into(),
            ));
        }
        return grid::merge(&args.out);
    }
    let request = grid::GridRequest {
        points_csv: args.points.as_deref(),
        config: args.config.as_deref(),
        preset: args.preset.as_deref(),
        realisations: args.realisations,
        seed: args.seed,
        precision: args.precision.as_deref(),
    };
    let (points, realisations, seed, settings) = grid::resolve(&request)?;
    if let Some(device) = args.device {
        // Before the output directory is touched: a missing device or a build without CUDA.
        crkernels::gpu::device_info(device)
            .map_err(|e| CliError::library(e).context(&format!("--device {device}")))?;
    }
    let part = match &args.shard {
        Some(text) => grid::Part::parse(text)?,
        None => grid::Part { index: 1, count: 1 },
    };
    let manifest = grid::open_run(&args.out, grid::Manifest::new(&points, realisations, seed, &settings))?;
    let run = grid::GridRun {
        manifest,
        settings,
        out: args.out.clone(),
        part,
        threads: args.threads,
        device: args.device,
        quiet: args.quiet,
    };
    let summary = grid::run(&run)?;
    let rate = summary.spectra as f64 / summary.seconds.max(1e-9);
    println!(
        "{}: part {}/{}: {} points computed ({} spectra in {:.1} s, {:.0} spectra/s), {} already present{}",
        args.out.display(),
        part.index,
        part.count,
        summary.points_computed,
        summary.spectra,
        summary.seconds,
        rate,
        summary.points_present,
        if summary.points_redone > 0 {
            format!(", {} damaged and redone", summary.points_redone)
        } else {
            String::new()
        }
    );
    if summary.complete {
        println!(
            "the grid is complete: {} points; checksums recorded in manifest.json",
            run.manifest.points.len()
        );
    } else {
        println!(
            "the grid is not complete yet: other parts are missing (crk grid --merge --out DIR lists them)"
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Grid(args) => grid_command(args),
        Command::Train(args) => train::run(args),
        Command::Sample(args) => sample::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Fit(args) => fit::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("crk: error: {}", error.message);
            ExitCode::from(error.status)
        }
    }
}
