//! `crk train`: a conditional MADE-MoG (SECRET section 3.3: the 5 parameters first in the
//! autoregressive order, then psi at the grid energies in a random order) trained on a grid
//! directory. The shards are memory-mapped and read row by row as minibatches need them, so
//! the data set is never copied into memory (67.5 million spectra are 5.1 GB of shards; the
//! trainer keeps 16 bytes of row indices per spectrum). Standardisation (psi per energy, the
//! parameters) comes from the training split, as the trainer does for any data.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use crkernels::nn::Activation;
use crkernels::nn::adam::LrSchedule;
use crkernels::nn::made_train::DataOrder;
use crkernels::train::{MadeTrainer, TrainData, TrainOptions};
use memmap2::Mmap;

use crate::grid::{Manifest, shard_name};
use crate::model::{ENERGIES_KEY, PARAMETERS_KEY};
use crate::{CliError, Result, npy};

#[derive(Args)]
pub struct TrainArgs {
    /// The grid directory (written by crk grid; complete: crk grid --merge).
    #[arg(long)]
    grid: PathBuf,
    /// The model file to write (safetensors, crkernels.made.v1; MODEL.json gets the report).
    #[arg(long)]
    out: PathBuf,
    /// Hidden units per layer, comma-separated (1 to 8 layers).
    #[arg(long, default_value = "200")]
    hidden: String,
    /// Mixture components K.
    #[arg(long, default_value_t = 10)]
    components: usize,
    /// Hidden activation: sigmoid, tanh, relu, leaky-relu, elu.
    #[arg(long, default_value = "sigmoid")]
    activation: String,
    /// The order of the energies after the parameters: random (the paper's) or natural.
    #[arg(long, default_value = "random")]
    order: String,
    /// Rows per minibatch (the paper: 50).
    #[arg(long, default_value_t = 50)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// constant, cosine:FINAL_FRACTION or step:GAMMA:EVERY.
    #[arg(long, default_value = "constant")]
    schedule: String,
    /// Adam's weight decay (L2).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// The most epochs (the paper: 22 for the conditional model).
    #[arg(long, default_value_t = 22)]
    epochs: usize,
    /// Epochs without a better validation NLL before stopping (0: never stop early).
    #[arg(long, default_value_t = 0)]
    patience: usize,
    /// Fraction of the spectra held out for validation.
    #[arg(long, default_value_t = 0.1)]
    validation_fraction: f64,
    /// Seed of the order, the initial weights, the split and the minibatches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads (0: all cores); the model does not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// A checkpoint file written after every epoch; with --resume, training continues from it
    /// exactly (as if it had not stopped).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Continue from --checkpoint if it exists.
    #[arg(long)]
    resume: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// The rows of a grid: row p N + r is realisation r of point p, with point p's parameters as
/// context; psi read from the memory-mapped shards.
pub struct GridData {
    shards: Vec<Mmap>,
    data_offset: usize,
    per_point: usize,
    width: usize,
    points: Vec<[f32; 5]>,
}

impl GridData {
    /// Maps every shard of a complete grid (its manifest records the checksums).
    ///
    /// Errors: an incomplete grid, a shard of the wrong shape or size.
    pub fn open(dir: &Path) -> Result<(GridData, Manifest)> {
        let manifest = Manifest::read(dir)?;
        if manifest.shards.is_none() {
            return Err(CliError::input(format!(
                "{}: the grid is not complete (its manifest records no checksums): finish it, then run crk grid --merge --out {}",
                dir.display(),
                dir.display()
            )));
        }
        let (per_point, width) = (manifest.realisations_per_point as usize, manifest.n_energies());
        let mut shards = Vec::with_capacity(manifest.points.len());
        let mut data_offset = 0;
        for p in 0..manifest.points.len() {
            let path = dir.join(shard_name(p));
            let file = std::fs::File::open(&path)
                .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
            // SAFETY: the shards are written once and never changed in place (crk grid writes
            // a new file and renames it); a user who truncates one under a running training
            // gets SIGBUS, as with any memory-mapped reader.
            let map =
                unsafe { Mmap::map(&file) }.map_err(|e| CliError::io(format!("{}: {e}", path.display())))?;
            let header =
                npy::parse_header(&map).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
            if header.descr != "<f4"
                || header.shape != [per_point, width]
                || map.len() as u64 != manifest.shard_bytes()
            {
                return Err(CliError::input(format!(
                    "{}: {} {:?} in {} bytes, the manifest says <f4 [{per_point}, {width}] in {}",
                    path.display(),
                    header.descr,
                    header.shape,
                    map.len(),
                    manifest.shard_bytes()
                )));
            }
            data_offset = header.data_offset;
            #[cfg(unix)]
            let _ = map.advise(memmap2::Advice::Random);
            shards.push(map);
        }
        let points = manifest.points.iter().map(|p| p.map(|v| v as f32)).collect();
        Ok((GridData { shards, data_offset, per_point, width, points }, manifest))
    }
}

impl TrainData for GridData {
    fn n_rows(&self) -> usize {
        self.shards.len() * self.per_point
    }
    fn n_context(&self) -> usize {
        5
    }
    fn n_dims(&self) -> usize {
        self.width
    }
    fn read_row(&self, row: usize, context: &mut [f32], x: &mut [f32]) {
        let (point, realisation) = (row / self.per_point, row % self.per_point);
        context.copy_from_slice(&self.points[point]);
        let start = self.data_offset + 4 * realisation * self.width;
        let bytes = &self.shards[point][start..start + 4 * self.width];
        for (v, b) in x.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
    }
}

fn parse_options(args: &TrainArgs) -> Result<TrainOptions> {
    let hidden_units = args
        .hidden
        .split(',')
        .map(|h| {
            h.trim()
                .parse::<usize>()
                .map_err(|_| CliError::usage(format!("--hidden {}: not a list of unit counts", args.hidden)))
        })
        .collect::<Result<Vec<_>>>()?;
    let activation = Activation::from_name(&args.activation.replace('-', "_"))
        .or_else(|| Activation::from_name(&args.activation))
        .ok_or_else(|| {
            CliError::usage(format!(
                "--activation {}: expected sigmoid, tanh, relu, leaky-relu or elu",
                args.activation
            ))
        })?;
    let order = match args.order.as_str() {
        "random" => DataOrder::Random,
        "natural" => DataOrder::Natural,
        other => return Err(CliError::usage(format!("--order {other}: expected random or natural"))),
    };
    let schedule = parse_schedule(&args.schedule)?;
    let mut options = TrainOptions {
        hidden_units,
        n_components: args.components,
        activation,
        order,
        secret_context: true,
        batch_size: args.batch_size,
        learning_rate: args.learning_rate,
        schedule,
        max_epochs: args.epochs,
        patience: args.patience,
        validation_fraction: args.validation_fraction,
        seed: args.seed,
        n_threads: args.threads,
        ..TrainOptions::default()
    };
    options.adam.weight_decay = args.weight_decay;
    options.validate().map_err(|e| CliError::usage(e.to_string()))?;
    Ok(options)
}

fn parse_schedule(text: &str) -> Result<LrSchedule> {
    let bad = || {
        CliError::usage(format!(
            "--schedule {text}: expected constant, cosine:FINAL_FRACTION or step:GAMMA:EVERY"
        ))
    };
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        ["constant"] => Ok(LrSchedule::Constant),
        ["cosine"] => Ok(LrSchedule::Cosine { final_fraction: 0.0 }),
        ["cosine", f] => Ok(LrSchedule::Cosine { final_fraction: f.parse().map_err(|_| bad())? }),
        ["step", g, e] => Ok(LrSchedule::Step {
            gamma: g.parse().map_err(|_| bad())?,
            every: e.parse().map_err(|_| bad())?,
        }),
        _ => Err(bad()),
    }
}

/// Peak resident memory and the resident anonymous memory now [bytes] (Linux; None
/// elsewhere): the anonymous part is what the process holds itself, beside the page cache of
/// the mapped shards.
pub fn memory_use() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    Some((field("VmHWM:")?, field("RssAnon:")?))
}

pub fn run(args: TrainArgs) -> Result<()> {
    let options = parse_options(&args)?;
    let started = Instant::now();
    let (data, manifest) = GridData::open(&args.grid)?;
    let n_rows = data.n_rows();
    if !args.quiet {
        eprintln!(
            "crk train: {} points x {} realisations = {n_rows} spectra at {} energies from {} (memory-mapped, {:.2} GB)",
            manifest.points.len(),
            manifest.realisations_per_point,
            manifest.n_energies(),
            args.grid.display(),
            (n_rows * manifest.n_energies() * 4) as f64 / 1e9
        );
    }
    let mut trainer = MadeTrainer::from_data(Arc::new(data), &options)
        .map_err(|e| CliError::input(format!("{}: {e}", args.grid.display())))?;
    if args.resume {
        let path = args
            .checkpoint
            .as_ref()
            .ok_or_else(|| CliError::usage("--resume needs --checkpoint FILE".into()))?;
        if path.exists() {
            let bytes = std::fs::read(path).map_err(|e| CliError::io(format!("{}: {e}", path.display())))?;
            trainer.resume(&bytes).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
            if !args.quiet {
                eprintln!("crk train: resumed from {} after epoch {}", path.display(), trainer.epochs_done());
            }
        }
    }
    let train_rows = (n_rows as f64 * (1.0 - options.validation_fraction)).ceil() as u64;
    while !trainer.finished() {
        let bar = crate::progress_bar(train_rows, "rows", args.quiet);
        let epoch_start = trainer.epochs_done();
        let mut progress = |p: crkernels::train::TrainProgress| {
            bar.set_position((p.rows_done as u64).saturating_sub(epoch_start as u64 * train_rows));
            true
        };
        let report = trainer.run_epoch(Some(&mut progress)).map_err(CliError::library)?;
        bar.finish_and_clear();
        println!(
            "epoch {:>3}: train NLL {:.5}, validation NLL {:.5}, learning rate {:.3e}, {:.1} s ({:.0} rows/s)",
            report.epoch,
            report.train_nll,
            report.validation_nll,
            report.learning_rate,
            report.seconds,
            train_rows as f64 / report.seconds
        );
        if let Some(path) = &args.checkpoint {
            let bytes = trainer.checkpoint().map_err(CliError::library)?;
            crate::grid::write_atomically(path, &bytes)?;
        }
    }
    let made = trainer.best_model().map_err(CliError::library)?;
    let report = trainer.report();
    let metadata = vec![
        (ENERGIES_KEY.to_string(), serde_json::to_string(&manifest.energies_gev).expect("serialisable")),
        (PARAMETERS_KEY.to_string(), manifest.parameters.join(",")),
        ("crk.grid_seed".to_string(), manifest.seed.to_string()),
        ("crk.grid_points".to_string(), manifest.points.len().to_string()),
        ("crk.grid_realisations_per_point".to_string(), manifest.realisations_per_point.to_string()),
        ("crk.train_command".to_string(), std::env::args().collect::<Vec<_>>().join(" ")),
    ];
    crkernels::emulator::save_made_with_metadata(&made, &args.out, &metadata).map_err(CliError::library)?;
    let seconds = started.elapsed().as_secs_f64();
    let memory = memory_use();
    let history: Vec<serde_json::Value> = report
        .history
        .iter()
        .map(|e| {
            serde_json::json!({"epoch": e.epoch, "train_nll": e.train_nll, "validation_nll": e.validation_nll,
                               "learning_rate": e.learning_rate, "seconds": e.seconds})
        })
        .collect();
    let summary = serde_json::json!({
        "model": args.out.display().to_string(),
        "grid": args.grid.display().to_string(),
        "spectra": n_rows,
        "options": format!("{options:?}"),
        "epochs_run": report.epochs_run,
        "best_epoch": report.best_epoch,
        "best_validation_nll": report.best_validation_nll,
        "final_train_nll": report.final_train_nll,
        "history": history,
        "seconds": seconds,
        "peak_resident_bytes": memory.map(|m| m.0),
        "resident_anonymous_bytes": memory.map(|m| m.1),
    });
    let report_path = args.out.with_extension("json");
    std::fs::write(&report_path, serde_json::to_string_pretty(&summary).expect("serialisable") + "\n")
        .map_err(|e| CliError::io(format!("{}: {e}", report_path.display())))?;
    println!(
        "wrote {} (best epoch {} of {}, validation NLL {:.5}) and {} in {:.1} s{}",
        args.out.display(),
        report.best_epoch,
        report.epochs_run,
        report.best_validation_nll,
        report_path.display(),
        seconds,
        memory.map_or(String::new(), |(peak, anon)| format!(
            "; memory: peak resident {:.0} MB (mapped shards included), anonymous {:.0} MB",
            peak as f64 / 1e6,
            anon as f64 / 1e6
        ))
    );
    Ok(())
}
