//! `crk grid` end to end (issue 17, "Reliability"): the shards' content against the library's
//! realisations computed here, the contract's layout, checksums against `sha256sum`, SIGKILL at
//! random moments and resume, damaged shards, split runs (sequential, concurrent, from Slurm and
//! MPI variables), thread counts, and bad input that must change nothing.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use crkernels::secret::{GridPoint, GridSettings};

/// 10^(1.5 + k/6), k = 0..18, from Python's `decimal` at 60 digits, rounded to f64.
const GRID_ENERGIES: [f64; 19] = [
    31.622776601683793,
    46.415888336127786,
    68.12920690579612,
    100.0,
    146.77992676220694,
    215.44346900318837,
    316.22776601683796,
    464.1588833612779,
    681.2920690579613,
    1000.0,
    1467.7992676220695,
    2154.4346900318837,
    3162.2776601683795,
    4641.588833612779,
    6812.920690579613,
    10000.0,
    14677.992676220696,
    21544.346900318837,
    31622.776601683792,
];

/// Four energies above 300 GeV: few young sources, cheap realisations.
const CHEAP_ENERGIES: &str = "[300.0, 1000.0, 3000.0, 10000.0]";

/// Writes a config with the realisations, seed and energies.
fn write_config(path: &Path, realisations: u64, seed: u64, energies: &str) {
    let text =
        format!("realisations = {realisations}\nseed = {seed}\n\n[settings]\nenergies_gev = {energies}\n");
    std::fs::write(path, text).expect("write the config");
}

/// `n` distinct points inside table 1's ranges.
fn small_points(n: usize) -> Vec<[f64; 5]> {
    (0..n)
        .map(|i| {
            let i = i as f64;
            [
                0.5 + 0.25 * (i % 3.0),
                3.5 + 0.125 * (i % 9.0),
                1.8 + 0.02 * i,
                0.2 + 0.05 * (i % 7.0),
                1.0 + 0.2 * i,
            ]
        })
        .collect()
}

/// The psi the library gives for realisation r of point i: ln(E^3 phi) in f64, then f32.
fn library_psi(
    settings: &GridSettings,
    point: [f64; 5],
    i: u64,
    seed: u64,
    rows: std::ops::Range<u64>,
) -> Vec<f32> {
    let losses = settings.losses().expect("losses");
    let ensemble = settings.ensemble(&losses, &GridPoint::from_array(point)).expect("ensemble");
    let energies = &settings.energies_gev;
    let mut flux = vec![0.0f64; energies.len()];
    let mut out = Vec::new();
    for r in rows {
        ensemble.realisation(seed, (i << 32) | r, &mut flux);
        out.extend(flux.iter().zip(energies).map(|(phi, e)| (e * e * e * phi).ln() as f32));
    }
    out
}

fn shard_names(n: usize) -> Vec<String> {
    let mut names = vec!["manifest.json".to_string()];
    for i in 0..n {
        names.push(format!("psi_{i}.npy"));
        names.push(format!("psi_{i}.npy.sha256"));
    }
    names.sort();
    names
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read json")).expect("parse json")
}

#[test]
fn shards_hold_the_library_realisations_bit_for_bit_with_the_contract_layout() {
    let dir = TempDir::new("content");
    let points = [[0.5, 3.5, 1.8, 0.2, 1.0], [3.0, 5.5, 2.6, 1.0, 9.0], [1.5, 4.75, 2.2, 0.6, 5.0]];
    let csv = dir.join("points.csv");
    write_points(&csv, &points);
    let out = dir.join("grid");
    let (n, seed) = (12u64, 987_654_321u64);
    let (stdout, _) = run_ok(&[
        "grid",
        "--points",
        s(&csv),
        "--realisations",
        "12",
        "--seed",
        "987654321",
        "--out",
        s(&out),
        "--threads",
        "1",
        "--quiet",
    ]);
    assert!(stdout.contains("complete"), "{stdout}");

    // The contract's files, and nothing else.
    let files = snapshot(&out);
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), shard_names(points.len()));

    let settings = GridSettings::default();
    assert_eq!(settings.energies_gev.len(), 19);
    for (i, p) in points.iter().enumerate() {
        let npy = Npy::read(&out.join(format!("psi_{i}.npy")));
        assert_eq!(npy.descr, "<f4", "float32, little-endian");
        assert!(!npy.fortran_order);
        assert_eq!(npy.shape, vec![n as usize, 19]);
        let psi = npy.f32s();
        let expected = library_psi(&settings, *p, i as u64, seed, 0..n);
        assert_eq!(psi.len(), expected.len());
        for (k, (a, b)) in psi.iter().zip(&expected).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "point {i} row {} energy {}: {a} vs {b}", k / 19, k % 19);
        }
        assert!(psi.iter().all(|v| v.is_finite()), "point {i}: finite psi at the grid energies");
    }

    // The manifest: the points, the seed, the energies, the shards' checksums.
    let m = read_json(&out.join("manifest.json"));
    let listed: Vec<[f64; 5]> = serde_json::from_value(m["points"].clone()).expect("points");
    assert_eq!(listed, points);
    assert_eq!(m["seed"].as_u64(), Some(seed));
    assert_eq!(m["realisations_per_point"].as_u64(), Some(n));
    let names: Vec<String> = serde_json::from_value(m["parameters"].clone()).expect("parameters");
    assert_eq!(names.join(","), HEADER);
    let energies: Vec<f64> = serde_json::from_value(m["energies_gev"].clone()).expect("energies");
    assert_eq!(energies.len(), 19);
    // 2e-15: computed in f64 as 10^(1.5 + k/6), the exponent is rounded (twice, at most 1 ulp
    // of 4.5, 8.9e-16), which moves 10^x by up to ln(10) 8.9e-16 = 2.0e-15 relative; 1e-15 is
    // not met by any f64 evaluation of that formula (k = 16: 1.4e-15, as NumPy's logspace).
    for (k, (a, b)) in energies.iter().zip(GRID_ENERGIES).enumerate() {
        assert!((a - b).abs() <= 2e-15 * b, "energy {k}: {a} vs 10^(1.5 + {k}/6) = {b}");
    }
    let shards = m["shards"].as_array().expect("the checksums are recorded once complete");
    assert_eq!(shards.len(), points.len());
    for (i, record) in shards.iter().enumerate() {
        let name = format!("psi_{i}.npy");
        let path = out.join(&name);
        let digest = sha256sum(&path);
        assert_eq!(record["file"].as_str(), Some(name.as_str()));
        assert_eq!(record["sha256"].as_str(), Some(digest.as_str()), "{name}");
        assert_eq!(record["bytes"].as_u64(), Some(std::fs::metadata(&path).expect("meta").len()));
        let line = std::fs::read_to_string(out.join(format!("{name}.sha256"))).expect("checksum file");
        assert_eq!(line, format!("{digest}  {name}\n"), "sha256sum's format");
    }
    // `sha256sum -c` accepts every checksum file.
    let names: Vec<String> = (0..points.len()).map(|i| format!("psi_{i}.npy.sha256")).collect();
    let check =
        Command::new("sha256sum").arg("-c").args(&names).current_dir(&out).output().expect("sha256sum -c");
    assert!(check.status.success(), "sha256sum -c: {}", text(&check.stdout));
}

#[test]
fn chunks_and_thread_counts_give_identical_bytes() {
    // 2100 realisations: more than one chunk of the writer (2048), at cheap energies.
    let dir = TempDir::new("threads");
    let point = [0.5, 4.0, 2.0, 0.4, 3.0];
    let csv = dir.join("points.csv");
    write_points(&csv, &[point]);
    let config = dir.join("grid.toml");
    write_config(&config, 2100, 5, "[3000.0, 10000.0]");
    let mut runs = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.join(&format!("grid{threads}"));
        run_ok(&[
            "grid",
            "--points",
            s(&csv),
            "--config",
            s(&config),
            "--out",
            s(&out),
            "--threads",
            threads,
            "--quiet",
        ]);
        runs.push(snapshot(&out));
    }
    assert_same_files(&runs[1], &runs[0], "--threads 2 against --threads 1");
    // The rows around the chunk boundary and the last are the library's.
    let psi = Npy::parse(&runs[0]["psi_0.npy"]).f32s();
    let settings = GridSettings { energies_gev: vec![3000.0, 10000.0], ..GridSettings::default() };
    let expected = library_psi(&settings, point, 0, 5, 2040..2100);
    let got = &psi[2 * 2040..];
    assert!(got.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()), "rows 2040..2100");
}

/// `--precision f32`: the rows are the library's f32-tier realisations bit for bit, within
/// 1e-5 of the exact run's spectra; the manifest records the precision, and the same directory
/// refuses an exact run (a manifest without the key reads as exact).
#[test]
fn the_f32_tier_is_recorded_and_gives_the_library_rows() {
    let dir = TempDir::new("f32");
    let points = [[0.5, 4.0, 2.0, 0.4, 3.0], [2.0, 5.0, 2.4, 0.8, 6.0]];
    let csv = dir.join("points.csv");
    write_points(&csv, &points);
    let config = dir.join("grid.toml");
    write_config(&config, 40, 11, CHEAP_ENERGIES);
    let run = |out: &Path, precision: &str| {
        run_args(&[
            "grid".into(),
            "--points".into(),
            s(&csv).into(),
            "--config".into(),
            s(&config).into(),
            "--out".into(),
            s(out).into(),
            "--precision".into(),
            precision.into(),
            "--quiet".into(),
        ])
    };
    let (single_out, exact_out) = (dir.join("f32"), dir.join("exact"));
    assert!(run(&single_out, "f32").status.success());
    assert!(run(&exact_out, "exact").status.success());
    let m = read_json(&single_out.join("manifest.json"));
    assert_eq!(m["settings"]["precision"].as_str(), Some("f32"), "{m}");
    assert_eq!(read_json(&exact_out.join("manifest.json"))["settings"]["precision"].as_str(), Some("exact"));
    let energies: Vec<f64> = serde_json::from_str(CHEAP_ENERGIES).expect("energies");
    let settings = GridSettings {
        energies_gev: energies,
        precision: crkernels::physics::ensemble::Precision::F32,
        ..GridSettings::default()
    };
    for (i, point) in points.iter().enumerate() {
        let single = Npy::read(&single_out.join(format!("psi_{i}.npy"))).f32s();
        let expected = library_psi(&settings, *point, i as u64, 11, 0..40);
        assert!(single.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()), "point {i}");
        // psi = ln(E^3 phi): 1e-5 relative in phi is 1e-5 absolute in psi (plus f32 rounding).
        let exact = Npy::read(&exact_out.join(format!("psi_{i}.npy"))).f32s();
        for (a, b) in single.iter().zip(&exact) {
            assert!((a - b).abs() <= 1e-5 + 2.0 * f32::EPSILON * b.abs(), "point {i}: {a} vs {b}");
        }
    }
    // The exact run cannot resume into the f32 directory.
    let refused = run(&single_out, "exact");
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("precision"), "{}", text(&refused.stderr));
    let bad = run(&dir.join("bad"), "f16");
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("f16"), "{}", text(&bad.stderr));
}

/// `--device 0`: without a CUDA device (or in a build without the `cuda` feature) the run is
/// refused, naming the device, before the output directory is made; with one, the shards hold
/// the CPU's realisations within each tier's tolerance (1e-12 exact, 1e-5 f32, in phi).
#[test]
fn device_runs_match_the_cpu_or_say_there_is_no_device() {
    let dir = TempDir::new("device");
    let points = [[0.5, 4.0, 2.0, 0.4, 3.0], [2.0, 5.0, 2.4, 0.8, 6.0]];
    let csv = dir.join("points.csv");
    write_points(&csv, &points);
    let config = dir.join("grid.toml");
    write_config(&config, 40, 11, CHEAP_ENERGIES);
    let args = |out: &Path, precision: &str, device: bool| {
        let mut args: Vec<String> = [
            "grid",
            "--points",
            s(&csv),
            "--config",
            s(&config),
            "--out",
            s(out),
            "--quiet",
            "--precision",
            precision,
        ]
        .map(String::from)
        .to_vec();
        if device {
            args.extend(["--device".to_string(), "0".to_string()]);
        }
        args
    };
    if crkernels::gpu::device_count().unwrap_or(0) == 0 {
        let out = dir.join("gpu");
        let refused = run_args(&args(&out, "exact", true));
        assert_eq!(refused.status.code(), Some(5), "{}", text(&refused.stderr));
        let stderr = text(&refused.stderr);
        assert!(stderr.contains("--device 0") && stderr.contains("error"), "{stderr}");
        assert!(!out.exists(), "the refused run made {}", out.display());
        return;
    }
    let cpu = dir.join("cpu");
    assert!(run_args(&args(&cpu, "exact", false)).status.success());
    for (precision, tolerance) in [("exact", 1e-11f32), ("f32", 1e-5)] {
        let gpu = dir.join(&format!("gpu_{precision}"));
        let output = run_args(&args(&gpu, precision, true));
        assert!(output.status.success(), "{}", text(&output.stderr));
        for i in 0..points.len() {
            let on_gpu = Npy::read(&gpu.join(format!("psi_{i}.npy"))).f32s();
            let on_cpu = Npy::read(&cpu.join(format!("psi_{i}.npy"))).f32s();
            assert_eq!(on_gpu.len(), on_cpu.len());
            for (a, b) in on_gpu.iter().zip(&on_cpu) {
                assert!(
                    (a - b).abs() <= tolerance + 2.0 * f32::EPSILON * b.abs(),
                    "{precision}, point {i}: {a} vs {b}"
                );
            }
        }
    }
}

/// Visible shard files (psi_<i>.npy) in `dir`.
fn visible_shards(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with("psi_") && name.ends_with(".npy")
                })
                .count()
        })
        .unwrap_or(0)
}

/// After a kill: every visible shard and checksum file is the reference's, the manifest (if
/// any) is the reference's with or without the recorded checksums, and the only other files
/// are the writer's temporary files. Returns whether a `.partial` shard was left.
fn check_after_kill(
    dir: &Path,
    reference: &BTreeMap<String, Vec<u8>>,
    reference_manifest: &serde_json::Value,
) -> bool {
    let mut partial = false;
    for (name, bytes) in snapshot(dir) {
        if name == "manifest.json" {
            let m: serde_json::Value =
                serde_json::from_slice(&bytes).expect("a visible manifest is complete JSON");
            let mut without = reference_manifest.clone();
            without["shards"] = serde_json::Value::Null;
            assert!(m == *reference_manifest || m == without, "manifest.json after a kill: {m}");
        } else if let Some(expected) = reference.get(&name) {
            assert!(
                bytes == *expected,
                "{name}: a visible file differs from the uninterrupted run's after a kill"
            );
        } else {
            assert!(
                name.ends_with(".partial") || name.ends_with(".tmp"),
                "unexpected file {name} after a kill"
            );
            partial |= name.ends_with(".partial");
        }
    }
    partial
}

#[test]
fn killed_at_random_moments_and_resumed_gives_the_same_bytes() {
    let dir = TempDir::new("kill");
    let n_points = 40;
    let csv = dir.join("points.csv");
    write_points(&csv, &small_points(n_points));
    let config = dir.join("grid.toml");
    write_config(&config, 20, 11, CHEAP_ENERGIES);
    let args = |out: &Path| -> Vec<String> {
        ["grid", "--points", s(&csv), "--config", s(&config), "--out", s(out), "--threads", "1", "--quiet"]
            .map(String::from)
            .to_vec()
    };
    let reference_dir = dir.join("reference");
    let started = Instant::now();
    let out = crk().args(args(&reference_dir)).output().expect("run");
    let full = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The cost of a run with nothing to compute (start, checks): the floor of a resumed run.
    let started = Instant::now();
    assert!(crk().args(args(&reference_dir)).output().expect("run").status.success());
    let floor = started.elapsed().as_secs_f64();
    let reference = snapshot(&reference_dir);
    assert_eq!(reference.keys().cloned().collect::<Vec<_>>(), shard_names(n_points));
    let reference_manifest: serde_json::Value =
        serde_json::from_slice(&reference["manifest.json"]).expect("json");

    let work = dir.join("killed");
    let mut rng = SplitMix(0x6b69_6c6c);
    // Until 24 kills have landed while the process ran (at most 40 tries).
    let (wanted, most_tries) = (24, 40);
    let (mut attempts, mut landed, mut finished_first, mut with_partial, mut rounds) = (0, 0, 0, 0, 1);
    let mut delays = Vec::new();
    while landed < wanted && attempts < most_tries {
        attempts += 1;
        // Uniform over most of what is left of the run (what an uninterrupted run would take
        // for the missing shards, plus the start).
        let missing = n_points - visible_shards(&work).min(n_points);
        let remaining = floor + (full - floor).max(0.0) * missing as f64 / n_points as f64;
        let delay = remaining * (0.05 + 0.8 * rng.uniform());
        delays.push(delay);
        let mut child =
            crk().args(args(&work)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
        std::thread::sleep(Duration::from_secs_f64(delay));
        // SIGKILL unless it has exited (a process that exits between the two calls is reaped
        // with its own status, and counts as finished).
        let status = match child.try_wait().expect("try_wait") {
            Some(status) => status,
            None => {
                child.kill().expect("SIGKILL");
                child.wait().expect("wait")
            }
        };
        if status.code().is_none() {
            landed += 1;
            with_partial += usize::from(check_after_kill(&work, &reference, &reference_manifest));
        } else {
            // It finished first: the directory must be the uninterrupted run's; start over.
            assert!(status.success(), "an unkilled run failed: {status}");
            finished_first += 1;
            assert_same_files(&snapshot(&work), &reference, "a resumed run that finished");
            std::fs::remove_dir_all(&work).expect("start a new round");
            rounds += 1;
        }
    }
    let out = crk().args(args(&work)).output().expect("run");
    assert!(out.status.success(), "the final resume: {}", text(&out.stderr));
    let last = snapshot(&work);
    assert!(
        last.keys().all(|n| !n.ends_with(".partial") && !n.ends_with(".tmp")),
        "temporary files left: {:?}",
        last.keys().collect::<Vec<_>>()
    );
    assert_same_files(&last, &reference, "killed and resumed against uninterrupted");
    eprintln!(
        "kill test: uninterrupted run {full:.2} s (start and checks {floor:.2} s); {attempts} kills tried over {rounds} \
         round(s): {landed} landed while running ({with_partial} left a partial shard), {finished_first} runs finished \
         first; delays {:.3}..{:.3} s",
        delays.iter().copied().fold(f64::INFINITY, f64::min),
        delays.iter().copied().fold(0.0, f64::max)
    );
    assert!(
        landed >= 20 && 3 * landed >= 2 * attempts,
        "only {landed} of {attempts} kills landed while the process ran"
    );
}

/// A complete small grid in `dir/name` (4 energies): its snapshot.
fn small_grid(
    dir: &TempDir,
    name: &str,
    n_points: usize,
    extra: &[&str],
) -> (Vec<String>, BTreeMap<String, Vec<u8>>) {
    let csv = dir.join("points.csv");
    write_points(&csv, &small_points(n_points));
    let config = dir.join("grid.toml");
    write_config(&config, 10, 21, CHEAP_ENERGIES);
    let out = dir.join(name);
    let mut args: Vec<String> =
        ["grid", "--points", s(&csv), "--config", s(&config), "--out", s(&out), "--threads", "1", "--quiet"]
            .map(String::from)
            .to_vec();
    args.extend(extra.iter().map(|a| a.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&argv);
    (args, snapshot(&out))
}

fn with_out(args: &[String], out: &Path) -> Vec<String> {
    let mut args = args.to_vec();
    let at = args.iter().position(|a| a == "--out").expect("--out") + 1;
    args[at] = s(out).to_string();
    args
}

fn run_args(args: &[String]) -> std::process::Output {
    crk().args(args).output().expect("run crk")
}

#[test]
fn damaged_shards_are_detected_and_recomputed() {
    let dir = TempDir::new("damage");
    let (args, reference) = small_grid(&dir, "reference", 5, &[]);
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    for (name, bytes) in &reference {
        std::fs::write(work.join(name), bytes).expect("copy");
    }
    // Truncated, one byte flipped (in the data, then in the header), checksum file missing.
    let shard = |i: usize| work.join(format!("psi_{i}.npy"));
    let len = reference["psi_1.npy"].len();
    std::fs::write(shard(1), &reference["psi_1.npy"][..len / 2]).expect("truncate");
    let mut flipped = reference["psi_2.npy"].clone();
    flipped[len - 5] ^= 0x10;
    std::fs::write(shard(2), flipped).expect("flip");
    let mut flipped = reference["psi_4.npy"].clone();
    flipped[20] ^= 0x01;
    std::fs::write(shard(4), flipped).expect("flip");
    std::fs::remove_file(work.join("psi_3.npy.sha256")).expect("remove a checksum");

    // --merge finds them and changes nothing.
    let before = snapshot(&work);
    let stderr = run_fail(&["grid", "--merge", "--out", s(&work)]);
    for name in ["psi_1.npy", "psi_2.npy", "psi_3.npy", "psi_4.npy"] {
        assert!(stderr.contains(name), "--merge does not name {name}: {stderr}");
    }
    assert!(!stderr.contains("psi_0.npy"), "{stderr}");
    assert_same_files(&snapshot(&work), &before, "--merge on a damaged grid");

    // The same command again: each is named and recomputed to the same bytes.
    let out = run_args(&with_out(&args, &work));
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for name in ["psi_1.npy", "psi_2.npy", "psi_3.npy", "psi_4.npy"] {
        assert!(stderr.contains(name), "the rerun does not name {name}: {stderr}");
    }
    assert!(!stderr.contains("psi_0.npy"), "{stderr}");
    assert!(text(&out.stdout).contains("4 damaged and redone"), "{}", text(&out.stdout));
    assert_same_files(&snapshot(&work), &reference, "repaired against uninterrupted");
    run_ok(&["grid", "--merge", "--out", s(&work)]);
}

#[test]
fn split_runs_sequential_and_concurrent_equal_the_unsplit_run() {
    let dir = TempDir::new("split");
    let n = 12;
    let (args, reference) = small_grid(&dir, "reference", n, &[]);
    let part = |out: &Path, k: &str| {
        let mut a = with_out(&args, out);
        a.extend(["--shard".to_string(), k.to_string()]);
        a
    };

    // Sequential: after part 1 the grid is incomplete and --merge names the missing points.
    let seq = dir.join("sequential");
    let out = run_args(&part(&seq, "1/2"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("not complete"), "{}", text(&out.stdout));
    let after_one = snapshot(&seq);
    let mut expected_names = vec!["manifest.json".to_string()];
    for i in (0..n).step_by(2) {
        expected_names.extend([format!("psi_{i}.npy"), format!("psi_{i}.npy.sha256")]);
        assert!(after_one[&format!("psi_{i}.npy")] == reference[&format!("psi_{i}.npy")], "psi_{i}.npy");
    }
    expected_names.sort();
    assert_eq!(after_one.keys().cloned().collect::<Vec<_>>(), expected_names);
    assert!(read_json(&seq.join("manifest.json"))["shards"].is_null());
    let stderr = run_fail(&["grid", "--merge", "--out", s(&seq)]);
    let missing: Vec<String> = (1..n).step_by(2).map(|i| i.to_string()).collect();
    assert!(
        stderr.contains(&missing.join(", ")),
        "--merge should list points {}: {stderr}",
        missing.join(", ")
    );
    assert_same_files(&snapshot(&seq), &after_one, "--merge of an incomplete grid");
    run_ok(&part(&seq, "2/2").iter().map(String::as_str).collect::<Vec<_>>());
    assert_same_files(&snapshot(&seq), &reference, "parts 1/2 then 2/2");
    run_ok(&["grid", "--merge", "--out", s(&seq)]);
    assert_same_files(&snapshot(&seq), &reference, "--merge of a complete grid");

    // Concurrent: both parts as two processes at once into one new directory (several times:
    // they race for the manifest at the start and at the end).
    for attempt in 0..4 {
        let both = dir.join(&format!("concurrent{attempt}"));
        let children: Vec<_> = ["1/2", "2/2"]
            .map(|k| {
                crk()
                    .args(part(&both, k))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .into_iter()
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait");
            assert!(out.status.success(), "concurrent part (attempt {attempt}): {}", text(&out.stderr));
        }
        assert_same_files(&snapshot(&both), &reference, "parts 1/2 and 2/2 at once");
    }
}

#[test]
fn shard_auto_reads_slurm_array_and_mpi_variables() {
    let dir = TempDir::new("auto");
    let n = 6;
    let (args, reference) = small_grid(&dir, "reference", n, &[]);
    let variables = [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_SIZE",
        "PMI_RANK",
        "PMI_SIZE",
        "SLURM_PROCID",
        "SLURM_NTASKS",
    ];
    let cases: [&[(&str, &str)]; 3] = [
        &[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "2"), ("SLURM_ARRAY_TASK_MIN", "0")],
        &[("SLURM_ARRAY_TASK_ID", "8"), ("SLURM_ARRAY_TASK_COUNT", "2"), ("SLURM_ARRAY_TASK_MIN", "7")],
        &[("OMPI_COMM_WORLD_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "2")],
    ];
    for (c, env) in cases.iter().enumerate() {
        let out_dir = dir.join(&format!("auto{c}"));
        let mut a = with_out(&args, &out_dir);
        a.extend(["--shard".into(), "auto".into()]);
        let mut command = crk();
        command.args(&a);
        for v in variables {
            command.env_remove(v);
        }
        command.envs(env.iter().copied());
        let out = command.output().expect("run");
        assert!(out.status.success(), "{env:?}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("part 2/2"), "{env:?}: {}", text(&out.stdout));
        let files = snapshot(&out_dir);
        let mut expected = vec!["manifest.json".to_string()];
        for i in (1..n).step_by(2) {
            expected.extend([format!("psi_{i}.npy"), format!("psi_{i}.npy.sha256")]);
        }
        expected.sort();
        assert_eq!(files.keys().cloned().collect::<Vec<_>>(), expected, "{env:?}: part 2/2's points");
        for name in expected.iter().filter(|n| n.starts_with("psi_")) {
            assert!(files[name] == reference[name], "{env:?}: {name}");
        }
    }
    // No variables: refused, naming what it looked for.
    let mut a = with_out(&args, &dir.join("none"));
    a.extend(["--shard".into(), "auto".into()]);
    let mut command = crk();
    command.args(&a);
    for v in variables {
        command.env_remove(v);
    }
    let out = command.output().expect("run");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("SLURM_ARRAY_TASK_ID"), "{}", text(&out.stderr));
    assert!(!dir.join("none").exists(), "a refused run created its directory");
}

#[test]
fn bad_input_is_refused_by_name_and_changes_nothing() {
    let dir = TempDir::new("bad");
    let points = [[0.5, 3.5, 1.8, 0.2, 1.0], [1.0, 4.0, 2.0, 0.4, 3.0]];
    let csv = dir.join("points.csv");
    write_points(&csv, &points);
    let config = dir.join("grid.toml");
    write_config(&config, 5, 1, CHEAP_ENERGIES);
    let out = dir.join("grid");
    let base =
        ["grid", "--points", s(&csv), "--config", s(&config), "--out", s(&out), "--threads", "1", "--quiet"];
    run_ok(&base);
    let before = snapshot(&out);
    assert_eq!(before.len(), 5);

    let file = |name: &str, contents: &str| {
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write");
        path
    };
    let settings = format!("\n[settings]\nenergies_gev = {CHEAP_ENERGIES}\n");
    let unknown_top =
        file("unknown_top.toml", &format!("realisations = 5\nseed = 1\nsample_count = 3\n{settings}"));
    let unknown_settings =
        file("unknown_settings.toml", &format!("realisations = 5\nseed = 1\n{settings}bfield_ug = 3.0\n"));
    let with_points = file(
        "with_points.toml",
        &format!("realisations = 5\nseed = 1\npoints = [[0.5, 3.5, 1.8, 0.2, 1.0]]\n{settings}"),
    );
    let twenty = file("twenty.toml", &format!("realisations = 20\nseed = 1\n{settings}"));
    let header = file(
        "header.csv",
        "sn_rate_1e4_per_Myr,log10_ecut_GeV,delta,gamma,kappa0_1e28_cm2_per_s\n0.5,3.5,0.2,1.8,1.0\n",
    );
    let nan = file("word.csv", &format!("{HEADER}\n0.5,3.5,1.8,0.2,1.0\n1.0,4.0,two,0.4,3.0\n"));
    let gamma = file("gamma.csv", &format!("{HEADER}\n0.5,3.5,1.8,0.2,1.0\n1.0,4.0,7,0.4,3.0\n"));
    let kappa = file("kappa.csv", &format!("{HEADER}\n0.5,3.5,1.8,0.2,-1\n"));
    let no_seed = file("no_seed.toml", &format!("realisations = 5\n{settings}"));
    let zero = file("zero.toml", &format!("realisations = 0\nseed = 1\n{settings}"));
    let other_seed = file("other_seed.toml", &format!("realisations = 5\nseed = 2\n{settings}"));

    let with = |replace: &[(&str, &str)], extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = base.map(String::from).to_vec();
        for (key, value) in replace {
            let at = args.iter().position(|a| a == key).expect("a key of the base command") + 1;
            args[at] = value.to_string();
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let cases: Vec<(&str, Vec<String>, Vec<String>)> = vec![
        ("unknown top-level key", with(&[("--config", s(&unknown_top))], &[]), vec!["sample_count".into()]),
        (
            "unknown [settings] key",
            with(&[("--config", s(&unknown_settings))], &[]),
            vec!["bfield_ug".into()],
        ),
        (
            "points twice",
            with(&[("--config", s(&with_points))], &[]),
            vec!["--points".into(), "points".into()],
        ),
        (
            "realisations twice, different",
            with(&[("--config", s(&twenty))], &["--realisations", "10"]),
            vec!["realisations".into(), "10".into(), "20".into()],
        ),
        (
            "wrong CSV header",
            with(&[("--points", s(&header))], &[]),
            vec!["header.csv".into(), "header".into()],
        ),
        (
            "not a number",
            with(&[("--points", s(&nan))], &[]),
            vec!["word.csv".into(), "gamma".into(), "two".into()],
        ),
        ("gamma = 7", with(&[("--points", s(&gamma))], &[]), vec!["gamma.csv".into(), "gamma = 7".into()]),
        (
            "kappa0 = -1",
            with(&[("--points", s(&kappa))], &[]),
            vec!["kappa.csv".into(), "kappa0_1e28_cm2_per_s = -1".into()],
        ),
        (
            "another run's manifest",
            with(&[("--config", s(&other_seed))], &[]),
            vec![s(&out).to_string(), "seed".into()],
        ),
        ("--shard 3/2", with(&[], &["--shard", "3/2"]), vec!["3/2".into()]),
        ("--shard 0/2", with(&[], &["--shard", "0/2"]), vec!["0/2".into()]),
        ("realisations 0", with(&[("--config", s(&zero))], &[]), vec!["realisations".into()]),
        ("no seed", with(&[("--config", s(&no_seed))], &[]), vec!["seed".into()]),
    ];
    for (what, args, names) in &cases {
        let output = run_args(args);
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{what}: accepted\n{}", text(&output.stdout));
        assert!(output.status.code().is_some(), "{what}: died of a signal");
        for name in names {
            assert!(stderr.contains(name.as_str()), "{what}: the message does not name {name}: {stderr}");
        }
        assert_same_files(&snapshot(&out), &before, what);
    }
    // A refused run into a new directory creates nothing either.
    let fresh = dir.join("fresh");
    let output = run_args(&with(&[("--points", s(&gamma)), ("--out", s(&fresh))], &[]));
    assert!(!output.status.success());
    assert!(!fresh.exists(), "a refused run created its output directory");
}
