//! `crk evaluate`: the paper's checks of an emulator against held-out simulations (SECRET
//! section 4): per point and energy, Delta Q^q = Q^q(psi of emulator samples) - Q^q(psi of
//! the simulated realisations) for q = 5, 16, 50, 84, 95%, with the same number of samples as
//! realisations; summaries per energy, per parameter value (as figures 10 to 13) and the worst
//! points; the classifier two-sample test on (parameters, psi) rows of both; SVG figures, a
//! terminal table, and every number in JSON and CSV.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use crkernels::nn::classifier::{TwoSampleOptions, two_sample_test};

use crate::grid::{Manifest, shard_name};
use crate::model::{Emulator, QUANTILES, column_quantiles};
use crate::sample::draw;
use crate::svg::{self, Axis, Plot};
use crate::{CliError, Result, npy};

#[derive(Args)]
pub struct EvaluateArgs {
    /// The model (safetensors).
    #[arg(long)]
    model: PathBuf,
    /// A grid directory of held-out simulations (crk grid; complete).
    #[arg(long)]
    grid: PathBuf,
    /// The report directory (evaluation.json, delta_q.csv, *.svg).
    #[arg(long)]
    out: PathBuf,
    /// Emulator samples per point (default: the grid's realisations per point).
    #[arg(long)]
    samples: Option<usize>,
    /// Seed of the emulator's samples (point p draws rows p * samples.. of it).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Rows of each class for the classifier two-sample test (0: skip it).
    #[arg(long, default_value_t = 50_000)]
    classifier_rows: usize,
    /// Epochs of the classifier (the paper: 100).
    #[arg(long, default_value_t = 100)]
    classifier_epochs: usize,
    /// Threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Delta Q of one point: [energy][quantile], and the quantiles of both.
struct PointResult {
    simulated: Vec<[f64; 5]>,
    emulated: Vec<[f64; 5]>,
    delta: Vec<[f64; 5]>,
}

impl PointResult {
    fn max_abs(&self) -> f64 {
        self.delta.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()))
    }
}

/// The q-quantile of `values` (sorted copy).
fn quantile(values: &[f64], q: f64) -> f64 {
    crate::model::quantiles(&mut values.to_vec(), &[q])[0]
}

fn read_shard(dir: &Path, manifest: &Manifest, p: usize) -> Result<Vec<f32>> {
    let path = dir.join(shard_name(p));
    let (shape, values) = npy::read_f32(&path).map_err(CliError::input)?;
    if shape != [manifest.realisations_per_point as usize, manifest.n_energies()] {
        return Err(CliError::input(format!(
            "{}: shape {shape:?} does not match the manifest",
            path.display()
        )));
    }
    Ok(values)
}

pub fn run(args: EvaluateArgs) -> Result<()> {
    let emulator = Emulator::load(&args.model)?;
    let manifest = Manifest::read(&args.grid)?;
    if manifest.shards.is_none() {
        return Err(CliError::input(format!(
            "{}: the grid is not complete: finish it, then run crk grid --merge --out {}",
            args.grid.display(),
            args.grid.display()
        )));
    }
    emulator.check_matches(
        &format!("the grid {}", args.grid.display()),
        &manifest.parameters,
        &manifest.energies_gev,
    )?;
    let n_sim = manifest.realisations_per_point as usize;
    let n_emu = args.samples.unwrap_or(n_sim);
    if n_emu == 0 {
        return Err(CliError::usage("--samples 0: nothing to compare".into()));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| CliError::io(format!("{}: {e}", args.out.display())))?;
    let d = manifest.n_energies();
    let n_points = manifest.points.len();
    // Rows for the classifier: an equal share of each point, from both.
    let per_point_rows = if args.classifier_rows == 0 {
        0
    } else {
        args.classifier_rows.div_ceil(n_points).min(n_sim.min(n_emu))
    };
    let (mut class_sim, mut class_emu) = (Vec::new(), Vec::new());
    let bar = crate::progress_bar(n_points as u64, "points", false);
    let mut results = Vec::with_capacity(n_points);
    for (p, params) in manifest.points.iter().enumerate() {
        let simulated = read_shard(&args.grid, &manifest, p)?;
        let emulated = draw(&emulator, params, n_emu, args.seed, (p * n_emu) as u64, args.threads)?;
        let (qs, qe) = (column_quantiles(&simulated, d), column_quantiles(&emulated, d));
        let delta = qs.iter().zip(&qe).map(|(s, e)| core::array::from_fn(|k| e[k] - s[k])).collect();
        results.push(PointResult { simulated: qs, emulated: qe, delta });
        for (rows, out) in [(&simulated, &mut class_sim), (&emulated, &mut class_emu)] {
            for row in rows.chunks_exact(d).take(per_point_rows) {
                out.extend(params.iter().map(|&v| v as f32));
                out.extend_from_slice(row);
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let classifier = if per_point_rows > 0 {
        let mut options = TwoSampleOptions::default();
        options.classifier.max_epochs = args.classifier_epochs;
        options.classifier.seed = args.seed;
        eprintln!("crk evaluate: classifier two-sample test on {} rows of each", class_sim.len() / (d + 5));
        Some(
            two_sample_test(&class_sim, &class_emu, d + 5, &options)
                .map_err(|e| CliError::input(format!("classifier two-sample test: {e}")))?,
        )
    } else {
        None
    };
    report(&args, &manifest, &emulator, &results, classifier.as_ref(), n_emu)
}

fn report(
    args: &EvaluateArgs,
    manifest: &Manifest,
    emulator: &Emulator,
    results: &[PointResult],
    classifier: Option<&crkernels::nn::classifier::TwoSampleReport>,
    n_emu: usize,
) -> Result<()> {
    let energies = &manifest.energies_gev;
    let d = energies.len();
    let write = |name: &str, text: String| -> Result<()> {
        let path = args.out.join(name);
        std::fs::write(&path, text).map_err(|e| CliError::io(format!("{}: {e}", path.display())))
    };
    // Per energy and quantile: the median and the 16-84% range of Delta Q over the points, the
    // largest |Delta Q|.
    let per_energy: Vec<Vec<[f64; 4]>> = (0..d)
        .map(|e| {
            (0..5)
                .map(|k| {
                    let values: Vec<f64> = results.iter().map(|r| r.delta[e][k]).collect();
                    let max_abs = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                    [quantile(&values, 0.5), quantile(&values, 0.16), quantile(&values, 0.84), max_abs]
                })
                .collect()
        })
        .collect();
    // Per parameter value: the mean |Delta Q| over the points with that value, per quantile.
    let mut per_parameter = Vec::new();
    for (j, name) in manifest.parameters.iter().enumerate() {
        let mut values: Vec<f64> = manifest.points.iter().map(|p| p[j]).collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        let rows: Vec<(f64, [f64; 5], usize)> = values
            .iter()
            .map(|&v| {
                let chosen: Vec<&PointResult> =
                    results.iter().zip(&manifest.points).filter(|(_, p)| p[j] == v).map(|(r, _)| r).collect();
                let mean: [f64; 5] = core::array::from_fn(|k| {
                    chosen.iter().flat_map(|r| r.delta.iter().map(move |e| e[k].abs())).sum::<f64>()
                        / (chosen.len() * d) as f64
                });
                (v, mean, chosen.len())
            })
            .collect();
        per_parameter.push((name.clone(), rows));
    }
    let mut order: Vec<usize> = (0..results.len()).collect();
    order.sort_by(|&a, &b| results[b].max_abs().total_cmp(&results[a].max_abs()));
    let all_abs: Vec<f64> = results.iter().flat_map(|r| r.delta.iter().flatten().map(|v| v.abs())).collect();
    let median_abs = quantile(&all_abs, 0.5);
    let p95_abs = quantile(&all_abs, 0.95);

    // The terminal table.
    let mut out = String::new();
    writeln!(out, "Delta Q = Q(emulator) - Q(simulation) of psi = ln(E^3 phi), {} points, {} simulated and {n_emu} emulated spectra each", results.len(), manifest.realisations_per_point).expect("String");
    writeln!(out, "over all points, energies and quantiles: median |Delta Q| {median_abs:.4}, 95th percentile {p95_abs:.4}").expect("String");
    writeln!(out, "\nper energy: median Delta Q over the points [16%, 84%]").expect("String");
    write!(out, "{:>10}", "E [GeV]").expect("String");
    for q in QUANTILES {
        write!(out, " {:>22}", format!("q = {}%", q * 100.0)).expect("String");
    }
    writeln!(out).expect("String");
    for (e, rows) in energies.iter().zip(&per_energy) {
        write!(out, "{e:>10.1}").expect("String");
        for r in rows {
            write!(out, " {:>22}", format!("{:+.3} [{:+.3},{:+.3}]", r[0], r[1], r[2])).expect("String");
        }
        writeln!(out).expect("String");
    }
    for (name, rows) in &per_parameter {
        writeln!(out, "\nmean |Delta Q| by {name} (q = 5, 16, 50, 84, 95%)").expect("String");
        for (v, mean, count) in rows {
            writeln!(out, "{v:>10.4} ({count:>4} points): {}", mean.map(|m| format!("{m:.4}")).join("  "))
                .expect("String");
        }
    }
    writeln!(out, "\nworst points (largest |Delta Q| over energies and quantiles):").expect("String");
    for &i in order.iter().take(10) {
        let (e, k) = worst_entry(&results[i]);
        writeln!(
            out,
            "  point {i:>5} {:?}: {:+.3} at {:.1} GeV, q = {}%",
            manifest.points[i],
            results[i].delta[e][k],
            energies[e],
            QUANTILES[k] * 100.0
        )
        .expect("String");
    }
    if let Some(c) = classifier {
        writeln!(out, "\nclassifier two-sample test: test accuracy {:.4} (0.5: indistinguishable; null standard error {:.4}), test BCE {:.4}, {} test rows", c.test_accuracy, c.null_standard_error, c.test_bce, c.n_test).expect("String");
    }
    print!("{out}");
    write("summary.txt", out)?;

    // Every number: JSON and CSV.
    let points_json: Vec<serde_json::Value> = results
        .iter()
        .zip(&manifest.points)
        .map(|(r, p)| {
            serde_json::json!({"parameters": p, "max_abs_delta_q": r.max_abs(), "delta_q": r.delta,
                                          "q_simulated": r.simulated, "q_emulated": r.emulated})
        })
        .collect();
    let json = serde_json::json!({
        "model": args.model.display().to_string(),
        "grid": args.grid.display().to_string(),
        "quantiles": QUANTILES,
        "energies_GeV": energies,
        "parameters": manifest.parameters,
        "simulated_per_point": manifest.realisations_per_point,
        "emulated_per_point": n_emu,
        "emulator_seed": args.seed,
        "median_abs_delta_q": median_abs,
        "p95_abs_delta_q": p95_abs,
        "per_energy": per_energy.iter().map(|rows| rows.iter().map(|r| serde_json::json!({"median": r[0], "p16": r[1], "p84": r[2], "max_abs": r[3]})).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "per_parameter": per_parameter.iter().map(|(name, rows)| serde_json::json!({"parameter": name, "values": rows.iter().map(|(v, mean, count)| serde_json::json!({"value": v, "points": count, "mean_abs_delta_q": mean})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        "worst_points": order.iter().take(10).collect::<Vec<_>>(),
        "classifier": classifier.map(|c| serde_json::json!({"test_accuracy": c.test_accuracy, "null_standard_error": c.null_standard_error, "test_bce": c.test_bce, "n_test": c.n_test, "n_train": c.n_train, "epochs": c.epochs_run})),
        "points": points_json,
        "model_parameters": emulator.parameters,
    });
    write("evaluation.json", serde_json::to_string_pretty(&json).expect("serialisable") + "\n")?;
    let mut csv =
        manifest.parameters.join(",") + ",point,energy_GeV,quantile,q_simulated,q_emulated,delta_q\n";
    for (i, (r, p)) in results.iter().zip(&manifest.points).enumerate() {
        let params: Vec<String> = p.iter().map(|v| format!("{v:?}")).collect();
        for (e, energy) in energies.iter().enumerate() {
            for (k, q) in QUANTILES.iter().enumerate() {
                writeln!(
                    csv,
                    "{},{i},{energy},{q},{},{},{}",
                    params.join(","),
                    r.simulated[e][k],
                    r.emulated[e][k],
                    r.delta[e][k]
                )
                .expect("String");
            }
        }
    }
    write("delta_q.csv", csv)?;

    // Figures: Delta Q against energy; mean |Delta Q| against each parameter; the bands of the
    // worst and the median point.
    let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];
    let all_delta = per_energy.iter().flatten().flat_map(|r| [r[1], r[2]]);
    let mut plot =
        Plot::new(Axis::fit(true, energies.iter().copied()), Axis::fit(false, all_delta.chain([0.0])));
    for k in 0..5 {
        let median: Vec<f64> = per_energy.iter().map(|r| r[k][0]).collect();
        let (lo, hi): (Vec<f64>, Vec<f64>) = per_energy.iter().map(|r| (r[k][1], r[k][2])).unzip();
        plot.band(energies, &lo, &hi, colors[k], 0.12, "");
        plot.line(energies, &median, colors[k], false, &format!("q = {}%", QUANTILES[k] * 100.0));
    }
    write(
        "delta_q_energy.svg",
        plot.finish(
            "Delta Q per energy: median over points, 16-84% band",
            "E [GeV]",
            "Delta Q of psi = ln(E^3 phi)",
        ),
    )?;
    for (j, (name, rows)) in per_parameter.iter().enumerate() {
        let xs: Vec<f64> = rows.iter().map(|r| r.0).collect();
        let mut plot = Plot::new(
            Axis::fit(false, xs.iter().copied()),
            Axis::fit(false, rows.iter().flat_map(|r| r.1).chain([0.0])),
        );
        for k in 0..5 {
            let ys: Vec<f64> = rows.iter().map(|r| r.1[k]).collect();
            plot.line(&xs, &ys, colors[k], false, &format!("q = {}%", QUANTILES[k] * 100.0));
        }
        write(
            &format!("delta_q_by_parameter_{j}_{name}.svg"),
            plot.finish(&format!("mean |Delta Q| by {name}"), name, "mean |Delta Q|"),
        )?;
    }
    for (label, i) in [("worst", order[0]), ("median", order[order.len() / 2])] {
        let r = &results[i];
        let title = format!("{label} point {i}: {:?}", manifest.points[i]);
        let doc =
            svg::bands_plot(&title, energies, ("emulator", &r.emulated), Some(("simulation", &r.simulated)));
        write(&format!("bands_{label}_point.svg"), doc)?;
    }
    println!(
        "\nwrote {}/summary.txt, evaluation.json, delta_q.csv and the figures (*.svg)",
        args.out.display()
    );
    Ok(())
}

/// (energy, quantile) of a point's largest |Delta Q|.
fn worst_entry(r: &PointResult) -> (usize, usize) {
    let mut best = (0, 0);
    for (e, row) in r.delta.iter().enumerate() {
        for (k, v) in row.iter().enumerate() {
            if v.abs() > r.delta[best.0][best.1].abs() {
                best = (e, k);
            }
        }
    }
    best
}
