//! `crk train`, `crk sample` and `crk evaluate` end to end on a tiny grid: the sample's layout
//! and its --first-row splitting, Delta Q recomputed here from the .npy files (NumPy's linear
//! quantiles, implemented here), checkpoint and resume against an uninterrupted training, and
//! the refusals (a model whose context or energies are not the grid's, --resume without
//! --checkpoint, an incomplete grid).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// NumPy's default quantile (method "linear": virtual index q (n - 1), its `_lerp`).
fn numpy_quantile(values: &[f32], q: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    assert!(sorted.iter().all(|v| v.is_finite()));
    sorted.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let index = q * (sorted.len() - 1) as f64;
    let below = index.floor();
    let t = index - below;
    let i = below as usize;
    let a = sorted[i];
    let b = sorted[(i + 1).min(sorted.len() - 1)];
    let diff = b - a;
    if t >= 0.5 { b - diff * (1.0 - t) } else { a + diff * t }
}

const QUANTILES: [f64; 5] = [0.05, 0.16, 0.5, 0.84, 0.95];

const POINTS: [[f64; 5]; 3] =
    [[0.5, 3.5, 1.8, 0.2, 1.0], [3.0, 5.5, 2.6, 1.0, 9.0], [1.5, 4.5, 2.2, 0.6, 5.0]];

/// A complete grid of `POINTS` in `dir/name`: `realisations` per point at table 1's 19
/// energies, or at `energies` (a TOML list).
fn make_grid(
    dir: &TempDir,
    name: &str,
    realisations: u64,
    energies: Option<&str>,
    shard: Option<&str>,
) -> PathBuf {
    let csv = dir.join("points.csv");
    write_points(&csv, &POINTS);
    let config = dir.join(&format!("{name}.toml"));
    let mut text = format!("realisations = {realisations}\nseed = 3\n");
    if let Some(e) = energies {
        text.push_str(&format!("\n[settings]\nenergies_gev = {e}\n"));
    }
    std::fs::write(&config, text).expect("config");
    let out = dir.join(name);
    let mut args = vec![
        "grid",
        "--points",
        s(&csv),
        "--config",
        s(&config),
        "--out",
        s(&out),
        "--threads",
        "1",
        "--quiet",
    ];
    if let Some(k) = shard {
        args.extend(["--shard", k]);
    }
    run_ok(&args);
    out
}

const TRAIN: [&str; 10] =
    ["--hidden", "8", "--components", "2", "--seed", "5", "--threads", "1", "--quiet", "--batch-size"];

fn train(grid: &Path, out: &Path, epochs: &str) {
    let mut args = vec!["train", "--grid", s(grid), "--out", s(out), "--epochs", epochs];
    args.extend(TRAIN);
    args.push("50");
    run_ok(&args);
}

fn sample(model: &Path, params: &str, n: usize, seed: u64, first_row: u64, out: &Path, threads: &str) -> Npy {
    let (n, seed, first_row) = (n.to_string(), seed.to_string(), first_row.to_string());
    run_ok(&[
        "sample",
        "--model",
        s(model),
        "--params",
        params,
        "--n",
        &n,
        "--seed",
        &seed,
        "--first-row",
        &first_row,
        "--out",
        s(out),
        "--threads",
        threads,
    ]);
    Npy::read(out)
}

fn params_text(p: &[f64; 5]) -> String {
    p.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(",")
}

#[test]
fn sample_splits_by_first_row_and_evaluate_matches_independent_quantiles() {
    let dir = TempDir::new("models");
    let grid = make_grid(&dir, "grid", 100, None, None);
    let model = dir.join("model.safetensors");
    train(&grid, &model, "2");
    assert!(dir.join("model.json").exists(), "the training report");

    // crk sample: float32 [n][19]; 100 rows in one call = 37 + 63 from first rows 0 and 37.
    let p = params_text(&POINTS[2]);
    let whole = sample(&model, &p, 100, 9, 0, &dir.join("whole.npy"), "1");
    assert_eq!(
        (whole.descr.as_str(), whole.fortran_order, whole.shape.clone()),
        ("<f4", false, vec![100, 19])
    );
    assert_eq!(whole.data.len(), 100 * 19 * 4);
    let head = sample(&model, &p, 37, 9, 0, &dir.join("head.npy"), "1");
    let tail = sample(&model, &p, 63, 9, 37, &dir.join("tail.npy"), "2");
    assert_eq!(head.shape, vec![37, 19]);
    assert_eq!(tail.shape, vec![63, 19]);
    assert!([head.data, tail.data].concat() == whole.data, "37 + 63 rows differ from 100 rows in one call");
    assert!(whole.f32s().iter().all(|v| v.is_finite()));
    let other_seed = sample(&model, &p, 100, 10, 0, &dir.join("other.npy"), "1");
    assert!(other_seed.data != whole.data, "another seed gives other spectra");

    // crk evaluate: its Delta Q against quantiles computed here from the shards and from crk
    // sample's rows p * samples.. of the same seed.
    let report = dir.join("report");
    let (samples, seed) = (50usize, 4u64);
    run_ok(&[
        "evaluate",
        "--model",
        s(&model),
        "--grid",
        s(&grid),
        "--out",
        s(&report),
        "--samples",
        "50",
        "--seed",
        "4",
        "--classifier-rows",
        "60",
        "--classifier-epochs",
        "2",
        "--threads",
        "1",
    ]);
    let mut names: Vec<String> = std::fs::read_dir(&report)
        .expect("the report")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for expected in
        ["evaluation.json", "delta_q.csv", "summary.txt", "delta_q_energy.svg", "bands_worst_point.svg"]
    {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
    let svgs: Vec<&String> = names.iter().filter(|n| n.ends_with(".svg")).collect();
    assert!(svgs.len() >= 7, "{svgs:?}");
    for name in svgs {
        let doc = std::fs::read_to_string(report.join(name)).expect("svg");
        assert!(doc.contains("<svg") && doc.trim_end().ends_with("</svg>"), "{name} is not an SVG document");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("evaluation.json")).expect("json"))
            .expect("parse");
    let points = json["points"].as_array().expect("points");
    assert_eq!(points.len(), POINTS.len());
    let csv = std::fs::read_to_string(report.join("delta_q.csv")).expect("csv");
    let csv_rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(csv_rows.len(), POINTS.len() * 19 * 5);
    let mut largest = 0.0f64;
    for (i, point) in POINTS.iter().enumerate() {
        let shard = Npy::read(&grid.join(format!("psi_{i}.npy"))).f32s();
        let emulated = sample(
            &model,
            &params_text(point),
            samples,
            seed,
            (i * samples) as u64,
            &dir.join(&format!("emulated{i}.npy")),
            "1",
        )
        .f32s();
        let delta = &points[i]["delta_q"];
        for e in 0..19 {
            let column = |rows: &[f32]| -> Vec<f32> { rows.chunks_exact(19).map(|r| r[e]).collect() };
            let (sim, emu) = (column(&shard), column(&emulated));
            assert_eq!((sim.len(), emu.len()), (100, samples));
            for (k, &q) in QUANTILES.iter().enumerate() {
                let qs = numpy_quantile(&sim, q);
                let qe = numpy_quantile(&emu, q);
                let expected = qe - qs;
                let reported = delta[e][k].as_f64().expect("a number");
                assert!(
                    (reported - expected).abs() <= 1e-6 * expected.abs().max(1.0),
                    "point {i} energy {e} q {q}: evaluate says {reported}, recomputed {expected}"
                );
                let qs_reported = points[i]["q_simulated"][e][k].as_f64().expect("a number");
                assert!(
                    (qs_reported - qs).abs() <= 1e-6 * qs.abs().max(1.0),
                    "point {i} energy {e} q {q}: simulated"
                );
                let row = &csv_rows[(i * 19 + e) * 5 + k];
                let csv_delta: f64 = row.last().expect("delta_q").parse().expect("a number");
                assert!(
                    (csv_delta - expected).abs() <= 1e-6 * expected.abs().max(1.0),
                    "delta_q.csv {row:?}"
                );
                largest = largest.max(expected.abs());
            }
        }
        let max_abs = points[i]["max_abs_delta_q"].as_f64().expect("max");
        let recomputed = (0..19)
            .flat_map(|e| (0..5).map(move |k| (e, k)))
            .map(|(e, k)| delta[e][k].as_f64().expect("n").abs())
            .fold(0.0, f64::max);
        assert_eq!(max_abs, recomputed);
    }
    assert!(largest > 0.0);
    let classifier = &json["classifier"];
    let accuracy = classifier["test_accuracy"].as_f64().expect("the classifier ran");
    assert!((0.0..=1.0).contains(&accuracy));
}

/// The safetensors header (JSON) and the data after it.
fn safetensors_parts(bytes: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).expect("a JSON header");
    (header, bytes[8 + len..].to_vec())
}

#[test]
fn checkpoint_and_resume_give_the_uninterrupted_model() {
    let dir = TempDir::new("resume");
    let grid = make_grid(&dir, "grid", 60, Some("[300.0, 1000.0, 3000.0, 10000.0]"), None);
    let run_in = |cwd: &Path, epochs: &str, resume: bool| {
        std::fs::create_dir_all(cwd).expect("mkdir");
        let mut args = vec![
            "train",
            "--grid",
            s(&grid),
            "--out",
            "model.safetensors",
            "--epochs",
            epochs,
            "--checkpoint",
            "train.ckpt",
        ];
        if resume {
            args.push("--resume");
        }
        args.extend(TRAIN);
        args.push("20");
        let out = Command::new(env!("CARGO_BIN_EXE_crk")).args(&args).current_dir(cwd).output().expect("run");
        assert!(out.status.success(), "crk {args:?}: {}", text(&out.stderr));
    };
    // Straight: 4 epochs (--resume finds no checkpoint yet, so the command line is the same as
    // the resumed run's below, and so is the metadata that records it).
    let straight = dir.join("straight");
    run_in(&straight, "4", true);
    // 2 epochs, then the same command as the straight one.
    let resumed = dir.join("resumed");
    run_in(&resumed, "2", false);
    let after_two = std::fs::read(resumed.join("model.safetensors")).expect("model");
    run_in(&resumed, "4", true);
    let a = std::fs::read(straight.join("model.safetensors")).expect("model");
    let b = std::fs::read(resumed.join("model.safetensors")).expect("model");
    assert!(a == b, "2 epochs + resume to 4 differ from 4 epochs");
    assert!(safetensors_parts(&after_two).1 != safetensors_parts(&a).1, "epochs 3 and 4 changed nothing");

    // A straight run without a checkpoint: the same weights and metadata but its command line.
    let plain = dir.join("plain.safetensors");
    let mut args = vec!["train", "--grid", s(&grid), "--out", s(&plain), "--epochs", "4"];
    args.extend(TRAIN);
    args.push("20");
    run_ok(&args);
    let (mut h1, d1) = safetensors_parts(&std::fs::read(&plain).expect("model"));
    let (mut h2, d2) = safetensors_parts(&a);
    assert!(d1 == d2, "the weights of a run without --checkpoint differ");
    for h in [&mut h1, &mut h2] {
        let meta = h["__metadata__"].as_object_mut().expect("metadata");
        assert!(meta.remove("crk.train_command").is_some());
    }
    assert_eq!(h1, h2);
}

#[test]
fn models_and_grids_that_do_not_match_are_refused() {
    let dir = TempDir::new("mismatch");
    let grid19 = make_grid(&dir, "grid19", 30, None, None);
    let grid4 = make_grid(&dir, "grid4", 60, Some("[300.0, 1000.0, 3000.0, 10000.0]"), None);
    let model4 = dir.join("model4.safetensors");
    let mut args = vec!["train", "--grid", s(&grid4), "--out", s(&model4), "--epochs", "1"];
    args.extend(TRAIN);
    args.push("20");
    run_ok(&args);

    // A model of 3 parameters and 19 energies, made with the library.
    let mut rng = SplitMix(17);
    let n = 200;
    let context: Vec<f32> = (0..n * 3).map(|_| rng.uniform() as f32).collect();
    let x: Vec<f32> = (0..n * 19).map(|_| rng.uniform() as f32).collect();
    let options = crkernels::train::TrainOptions {
        hidden_units: vec![4],
        n_components: 1,
        batch_size: 20,
        max_epochs: 1,
        n_threads: 1,
        ..Default::default()
    };
    let mut trainer = crkernels::train::MadeTrainer::new(&context, 3, &x, 19, &options).expect("trainer");
    let (made, _) = trainer.train(None).expect("train");
    assert_eq!((made.n_context(), made.n_dims()), (3, 19));
    let model3 = dir.join("model3.safetensors");
    crkernels::emulator::save_made(&made, &model3).expect("save");

    // evaluate: the context (3 parameters, the grid's 5).
    let report = dir.join("report3");
    let stderr = run_fail(&["evaluate", "--model", s(&model3), "--grid", s(&grid19), "--out", s(&report)]);
    assert!(stderr.contains("parameters") && stderr.contains(s(&grid19)), "{stderr}");
    assert!(stderr.contains("kappa0_1e28_cm2_per_s"), "the grid's parameters are named: {stderr}");
    assert!(!report.exists(), "a refused evaluation wrote its directory");
    // evaluate: the energies (4 in the model, 19 in the grid).
    let report = dir.join("report4");
    let stderr = run_fail(&["evaluate", "--model", s(&model4), "--grid", s(&grid19), "--out", s(&report)]);
    assert!(stderr.contains("4 energies") && stderr.contains("19"), "{stderr}");
    assert!(!report.exists(), "a refused evaluation wrote its directory");
    // sample: 5 parameters for a model of 3.
    let out = dir.join("sample.npy");
    let stderr = run_fail(&[
        "sample",
        "--model",
        s(&model3),
        "--params",
        "0.5,3.5,1.8,0.2,1.0",
        "--n",
        "3",
        "--out",
        s(&out),
    ]);
    assert!(stderr.contains("5 values") && stderr.contains("takes 3"), "{stderr}");
    assert!(!out.exists());

    // train: --resume without --checkpoint; an incomplete grid.
    let model = dir.join("refused.safetensors");
    let mut args = vec!["train", "--grid", s(&grid4), "--out", s(&model), "--epochs", "1", "--resume"];
    args.extend(TRAIN);
    args.push("20");
    let stderr = run_fail(&args);
    assert!(stderr.contains("--resume") && stderr.contains("--checkpoint"), "{stderr}");
    assert!(!model.exists());
    let part = make_grid(&dir, "part", 30, Some("[300.0, 1000.0, 3000.0, 10000.0]"), Some("1/2"));
    let mut args = vec!["train", "--grid", s(&part), "--out", s(&model), "--epochs", "1"];
    args.extend(TRAIN);
    args.push("20");
    let stderr = run_fail(&args);
    assert!(stderr.contains("not complete") && stderr.contains(s(&part)), "{stderr}");
    assert!(!model.exists());
}

/// Writes a spectrum CSV: `energy_GeV,flux[,flux_sigma]` rows.
fn write_spectrum(path: &Path, rows: &[(f64, f64, Option<f64>)]) {
    let with_sigma = rows.iter().any(|r| r.2.is_some());
    let mut text =
        String::from(if with_sigma { "energy_GeV,flux,flux_sigma\n" } else { "energy_GeV,flux\n" });
    for (e, f, sigma) in rows {
        match sigma {
            Some(s) => text.push_str(&format!("{e:?},{f:?},{s:?}\n")),
            None => text.push_str(&format!("{e:?},{f:?}\n")),
        }
    }
    std::fs::write(path, text).expect("spectrum");
}

#[test]
fn fit_reports_a_posterior_inside_the_prior_and_refuses_spectra_the_model_cannot_read() {
    let dir = TempDir::new("fit");
    let grid = make_grid(&dir, "grid", 40, None, None);
    let model = dir.join("model.safetensors");
    train(&grid, &model, "2");
    // A spectrum: realisation 0 of point 2 of the grid, as flux (psi = ln(E^3 phi)).
    let psi = Npy::read(&grid.join("psi_2.npy")).f32s();
    let energies: Vec<f64> = (0..19).map(|k| 10f64.powf(1.5 + k as f64 / 6.0)).collect();
    let rows: Vec<(f64, f64, Option<f64>)> =
        energies.iter().zip(&psi[..19]).map(|(e, p)| (*e, f64::from(*p).exp() / e.powi(3), None)).collect();
    let spectrum = dir.join("spectrum.csv");
    write_spectrum(&spectrum, &rows);
    let out = dir.join("fit.json");
    let common = ["--threads", "1", "--warmup", "60", "--draws", "40", "--chains", "4"];
    let mut args = vec!["fit", "--model", s(&model), "--spectrum", s(&spectrum), "--out", s(&out)];
    args.extend(common);
    run_ok(&args);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let parameters = report["parameters"].as_array().unwrap();
    assert_eq!(parameters.len(), 5);
    // Table 1's box is the default prior: every estimate and interval lies inside it.
    let boxes = [(0.5, 3.0), (3.5, 5.5), (1.8, 2.6), (0.2, 1.0), (1.0, 9.0)];
    for (p, (lo, hi)) in parameters.iter().zip(boxes) {
        for key in ["max_likelihood", "mean", "median"] {
            let v = p[key].as_f64().unwrap();
            assert!((lo..=hi).contains(&v), "{}: {key} = {v} outside [{lo}, {hi}]", p["name"]);
        }
        let i68 = p["interval_68"].as_array().unwrap();
        let i95 = p["interval_95"].as_array().unwrap();
        let (a, b, c, d) = (
            i95[0].as_f64().unwrap(),
            i68[0].as_f64().unwrap(),
            i68[1].as_f64().unwrap(),
            i95[1].as_f64().unwrap(),
        );
        assert!(lo <= a && a <= b && b <= c && c <= d && d <= hi, "{}: intervals {i68:?} {i95:?}", p["name"]);
    }

    // With a measurement error and the emulator's error: a wider or equal posterior is not
    // guaranteed draw by draw, but the run must succeed and say so.
    let noisy: Vec<(f64, f64, Option<f64>)> = rows.iter().map(|&(e, f, _)| (e, f, Some(0.1 * f))).collect();
    let spectrum_sigma = dir.join("spectrum_sigma.csv");
    write_spectrum(&spectrum_sigma, &noisy);
    let out_sigma = dir.join("fit_sigma.json");
    let mut args =
        vec!["fit", "--model", s(&model), "--spectrum", s(&spectrum_sigma), "--out", s(&out_sigma)];
    args.extend(common);
    args.extend(["--emulator-sigma", "0.03"]);
    let (stdout, _) = run_ok(&args);
    assert!(stdout.contains("uncertainty folded in"), "{stdout}");

    // Bad spectra: an energy the model lacks, a missing energy, a duplicated one, a flux <= 0,
    // a wrong header; each named, nothing written.
    let refused = |rows: &[(f64, f64, Option<f64>)], expect: &str| {
        let path = dir.join("bad.csv");
        write_spectrum(&path, rows);
        let out = dir.join("bad.json");
        let stderr = run_fail(&["fit", "--model", s(&model), "--spectrum", s(&path), "--out", s(&out)]);
        assert!(stderr.contains(expect), "expected '{expect}' in: {stderr}");
        assert!(!out.exists(), "a refused fit wrote its report");
    };
    let mut other_energy = rows.clone();
    other_energy[3].0 = 50.0;
    refused(&other_energy, "energy 50 GeV is not one of the model's energies");
    refused(&rows[..18], "no flux at the model's energies");
    let mut twice = rows.clone();
    twice[5].0 = rows[4].0;
    refused(&twice, "appears twice");
    let mut negative = rows.clone();
    negative[7].1 = -1e-9;
    refused(&negative, "flux = -0.000000001");
    let path = dir.join("header.csv");
    std::fs::write(&path, "E,phi\n100,1e-6\n").unwrap();
    let stderr =
        run_fail(&["fit", "--model", s(&model), "--spectrum", s(&path), "--out", s(&dir.join("h.json"))]);
    assert!(stderr.contains("energy_GeV,flux"), "{stderr}");
    let stderr = run_fail(&[
        "fit",
        "--model",
        s(&model),
        "--spectrum",
        s(&spectrum),
        "--out",
        s(&out),
        "--prior",
        "0:1,2:3",
    ]);
    assert!(stderr.contains("--prior"), "{stderr}");
}
