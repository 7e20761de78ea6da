//! `crk grid`: a grid of SECRET ensembles written to a directory, resumable and splittable.
//!
//! Layout of DIR: `manifest.json` (the run: points, seed, realisations, energies, settings,
//! library version; after the last shard, the shards' SHA-256 too) and per point i the file
//! `psi_<i>.npy` (float32 [N][n_energies], psi = ln(E^3 phi)) with its checksum in
//! `psi_<i>.npy.sha256` (the format of `sha256sum`).
//!
//! Crash safety: a shard is written to `psi_<i>.npy.partial`, synced, its checksum file
//! written (write and rename), then renamed to `psi_<i>.npy`: a shard is visible only when
//! complete, and a visible shard always has its checksum. A rerun of the same command checks
//! every visible shard of its part against its checksum (size first, then SHA-256) and
//! computes only the missing or damaged ones; the manifest is written once, by write and
//! rename, and a directory holding another run's manifest is refused. Nothing needs a clean
//! shutdown: SIGKILL or a power loss at any moment loses at most the shards being written.
//!
//! With `--device N` the realisations run on CUDA device N (a build of `crk` with the `cuda`
//! feature) while the host cores build the next points' tables, several points ahead. A GPU
//! shard holds the same realisations as a CPU one within the tier's tolerance (1e-12 relative
//! in the exact tier, 1e-5 in the f32 tier), not bit for bit; either kind resumes the other.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crkernels::gpu::ensemble::GpuEnsemble;
use crkernels::parallel::ParallelEnsemble;
use crkernels::physics::ensemble::Precision;
use crkernels::physics::losses::LossModel;
use crkernels::physics::photon_field::IsrfPreset;
use crkernels::physics::sources::SpatialModel;
use crkernels::secret::{self, GridPoint, GridSettings, PARAMETER_NAMES};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::npy;
use crate::{CliError, Result, fail};

/// The manifest's format name.
pub const MANIFEST_FORMAT: &str = "crkernels.grid.v1";
/// Realisations per call of the ensemble (bounds the memory: 152 bytes a realisation).
const CHUNK_REALISATIONS: usize = 2048;

/// The grid's settings as the manifest and config files spell them; a key a config leaves out
/// keeps table 1's value ([`Default`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SettingsRecord {
    pub energies_gev: Vec<f64>,
    pub loss_model: String,
    pub isrf: String,
    pub magnetic_field_ug: f64,
    pub halo_kpc: f64,
    pub t_max_myr: f64,
    pub s_max_kpc: f64,
    pub spatial: String,
    pub poisson_count: bool,
    pub source_energy_erg: f64,
    pub table_range_gev: [f64; 2],
    /// "exact" or "f32" (manifests written before the f32 tier have no key: exact).
    pub precision: String,
}

const LOSS_MODELS: [(&str, LossModel); 3] = [
    ("klein-nishina", LossModel::KleinNishina),
    ("klein-nishina-expansion", LossModel::KleinNishinaExpansion),
    ("thomson", LossModel::Thomson),
];
const ISRFS: [(&str, IsrfPreset); 4] = [
    ("delahaye2010", IsrfPreset::Delahaye2010),
    ("cmb", IsrfPreset::Cmb),
    ("galprop-6.5kpc", IsrfPreset::Galprop6p5Kpc),
    ("schlickeiser2002", IsrfPreset::Schlickeiser2002),
];
const PRECISIONS: [(&str, Precision); 2] = [("exact", Precision::Exact), ("f32", Precision::F32)];
const SPATIAL: [(&str, SpatialModel); 3] = [
    ("spiral-arms", SpatialModel::SpiralArms),
    ("uniform-disc", SpatialModel::UniformDisc),
    ("case-bhattacharya", SpatialModel::RadialCaseBhattacharya),
];

fn name_of<T: PartialEq + Copy>(table: &[(&'static str, T)], value: T) -> String {
    table.iter().find(|(_, v)| *v == value).map(|(n, _)| n.to_string()).expect("every variant is named")
}

fn value_of<T: Copy>(table: &[(&'static str, T)], key: &str, name: &str) -> Result<T> {
    table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        CliError::usage(format!("settings.{key} = \"{name}\" is not one of {}", names.join(", ")))
    })
}

impl Default for SettingsRecord {
    fn default() -> Self {
        SettingsRecord::from_settings(&GridSettings::default())
    }
}

impl SettingsRecord {
    pub fn from_settings(s: &GridSettings) -> Self {
        SettingsRecord {
            energies_gev: s.energies_gev.clone(),
            loss_model: name_of(&LOSS_MODELS, s.loss_model),
            isrf: name_of(&ISRFS, s.isrf),
            magnetic_field_ug: s.magnetic_field_ug,
            halo_kpc: s.halo_kpc,
            t_max_myr: s.t_max_myr,
            s_max_kpc: s.s_max_kpc,
            spatial: name_of(&SPATIAL, s.spatial),
            poisson_count: s.poisson_count,
            source_energy_erg: s.source_energy_erg,
            table_range_gev: [s.table_range_gev.0, s.table_range_gev.1],
            precision: name_of(&PRECISIONS, s.precision),
        }
    }

    pub fn to_settings(&self) -> Result<GridSettings> {
        Ok(GridSettings {
            energies_gev: self.energies_gev.clone(),
            loss_model: value_of(&LOSS_MODELS, "loss_model", &self.loss_model)?,
            isrf: value_of(&ISRFS, "isrf", &self.isrf)?,
            magnetic_field_ug: self.magnetic_field_ug,
            halo_kpc: self.halo_kpc,
            t_max_myr: self.t_max_myr,
            s_max_kpc: self.s_max_kpc,
            spatial: value_of(&SPATIAL, "spatial", &self.spatial)?,
            poisson_count: self.poisson_count,
            source_energy_erg: self.source_energy_erg,
            table_range_gev: (self.table_range_gev[0], self.table_range_gev[1]),
            precision: value_of(&PRECISIONS, "precision", &self.precision)?,
        })
    }
}

/// A `crk grid` config file (TOML or JSON): the points (exactly one of `points_csv`,
/// `points`, `axes`, `preset`), the realisations and seed, and settings that differ from
/// table 1's.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridConfig {
    /// A CSV file of points (relative to the config file).
    pub points_csv: Option<PathBuf>,
    /// Points as [R_SN, log10 E_cut, gamma, delta, kappa0] rows.
    pub points: Option<Vec<[f64; 5]>>,
    /// A product grid: the values of each parameter, by its CSV name.
    pub axes: Option<Axes>,
    /// "table1" (the paper's 6750 points) or "offset" (the 2560 cell centres).
    pub preset: Option<String>,
    pub realisations: Option<u64>,
    pub seed: Option<u64>,
    #[serde(default)]
    pub settings: SettingsRecord,
}

/// The axes of a product grid.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axes {
    #[serde(rename = "sn_rate_1e4_per_Myr")]
    pub sn_rate: Vec<f64>,
    #[serde(rename = "log10_ecut_GeV")]
    pub log10_ecut: Vec<f64>,
    pub gamma: Vec<f64>,
    pub delta: Vec<f64>,
    #[serde(rename = "kappa0_1e28_cm2_per_s")]
    pub kappa0: Vec<f64>,
}

/// The manifest: what a run computes (every field but `shards`), and the shards' checksums
/// once all are present.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub library_version: String,
    pub parameters: Vec<String>,
    pub parameter_units: Vec<String>,
    pub points: Vec<[f64; 5]>,
    pub realisations_per_point: u64,
    pub seed: u64,
    pub stream: String,
    pub data: String,
    pub energies_gev: Vec<f64>,
    pub settings: SettingsRecord,
    /// Per point: the shard's file and SHA-256, when the grid is complete (else null).
    pub shards: Option<Vec<ShardRecord>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardRecord {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
}

/// The path (`settings.precision`) of the first key where two JSON objects differ, or the
/// empty string where two values of another kind differ.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value) -> Option<String> {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => a.iter().find_map(|(key, value)| match b.get(key) {
            Some(other) if other == value => None,
            Some(other) => Some(match first_difference(value, other) {
                Some(inner) if !inner.is_empty() => format!("{key}.{inner}"),
                _ => key.clone(),
            }),
            None => Some(key.clone()),
        }),
        _ => (a != b).then(String::new),
    }
}

impl Manifest {
    pub fn new(points: &[GridPoint], realisations: u64, seed: u64, settings: &GridSettings) -> Self {
        Manifest {
            format: MANIFEST_FORMAT.into(),
            library_version: crkernels::VERSION.into(),
            parameters: PARAMETER_NAMES.iter().map(|s| s.to_string()).collect(),
            parameter_units: ["1e4/Myr", "log10(E_cut/GeV)", "1", "1", "1e28 cm^2/s"]
                .map(String::from)
                .to_vec(),
            points: points.iter().map(|p| p.to_array()).collect(),
            realisations_per_point: realisations,
            seed,
            // The draw is named, so that a run started by a library that drew its sources
            // another way is not resumed by this one (the manifests differ in this field).
            stream: "realisation r of point p is realisation p * 2^32 + r of the ensemble with this seed \
                     (Philox4x32-10 stream (seed, p * 2^32 + r); young sources drawn in age-bin order, \
                     32-bit uniforms)"
                .into(),
            data: "psi_<p>.npy: float32 [realisations][energies], psi = ln(E^3 phi), E in GeV, \
                   phi in GeV^-1 m^-2 s^-1 sr^-1; realisations in order"
                .into(),
            energies_gev: settings.energies_gev.clone(),
            settings: SettingsRecord::from_settings(settings),
            shards: None,
        }
    }

    /// The first field (by name) in which two manifests describe different runs.
    fn difference(&self, other: &Manifest) -> Option<String> {
        let a = serde_json::to_value(Manifest { shards: None, ..self.clone() }).expect("serialisable");
        let b = serde_json::to_value(Manifest { shards: None, ..other.clone() }).expect("serialisable");
        first_difference(&a, &b)
    }

    pub fn grid_points(&self) -> Vec<GridPoint> {
        self.points.iter().map(|&p| GridPoint::from_array(p)).collect()
    }

    pub fn n_energies(&self) -> usize {
        self.energies_gev.len()
    }

    /// The bytes of a complete shard.
    pub fn shard_bytes(&self) -> u64 {
        let header = npy::header("<f4", &[self.realisations_per_point as usize, self.n_energies()]);
        header.len() as u64 + 4 * self.realisations_per_point * self.n_energies() as u64
    }

    /// Reads DIR/manifest.json.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join("manifest.json");
        let text =
            fs::read_to_string(&path).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| CliError::input(format!("{}: not a crk grid manifest: {e}", path.display())))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(CliError::input(format!(
                "{}: format is {}, not {MANIFEST_FORMAT}",
                path.display(),
                manifest.format
            )));
        }
        Ok(manifest)
    }

    fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("serialisable") + "\n";
        write_atomically(&dir.join("manifest.json"), text.as_bytes())
    }
}

pub fn shard_name(point: usize) -> String {
    format!("psi_{point}.npy")
}

/// Writes a file by writing `<path>.tmp`, syncing it and renaming it over `path`.
///
/// Several processes may write the same file at once: the parts of a split run started
/// together all write the same manifest, and two parts finishing together both record the
/// checksums. Each writer holds an exclusive lock on the temporary file while it writes and
/// renames it, and after taking the lock checks that the file it locked is still the one at
/// `<path>.tmp` (and not one another writer has renamed meanwhile), so no writer truncates or
/// renames a file another is writing. Where the file system has no locks, the write goes on
/// unlocked (as safe as a single writer). A lock dies with its process: SIGKILL leaves at
/// most a `.tmp` file, which the next write of `path` reuses.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let io = |e: std::io::Error| CliError::io(format!("{}: {e}", path.display()));
    let mut file = loop {
        let file = fs::OpenOptions::new().write(true).create(true).truncate(false).open(&tmp).map_err(io)?;
        if file.lock().is_err() || still_at(&file, &tmp) {
            break file;
        }
    };
    file.set_len(0).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    drop(file);
    sync_dir(path.parent().unwrap_or(Path::new(".")));
    Ok(())
}

/// Whether `path` names the open `file` (the same inode).
#[cfg(unix)]
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Elsewhere: whether `path` still exists.
#[cfg(not(unix))]
fn still_at(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// Syncs a directory so that a rename in it survives a power loss (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a file [hex].
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Why a shard is not usable.
#[derive(Debug, PartialEq)]
pub enum ShardState {
    Good(String),
    Missing,
    Damaged(String),
}

/// Checks shard `point` in `dir`: present, of the right size, and matching its checksum file.
pub fn check_shard(dir: &Path, manifest: &Manifest, point: usize) -> ShardState {
    let name = shard_name(point);
    let path = dir.join(&name);
    let Ok(meta) = fs::metadata(&path) else { return ShardState::Missing };
    if meta.len() != manifest.shard_bytes() {
        return ShardState::Damaged(format!(
            "{name} has {} bytes, {} expected",
            meta.len(),
            manifest.shard_bytes()
        ));
    }
    let Ok(recorded) = fs::read_to_string(dir.join(format!("{name}.sha256"))) else {
        return ShardState::Damaged(format!("{name} has no checksum file"));
    };
    let expected = recorded.split_whitespace().next().unwrap_or("").to_string();
    match file_sha256(&path) {
        Ok(actual) if actual == expected => ShardState::Good(actual),
        Ok(_) => ShardState::Damaged(format!("{name} does not match its checksum")),
        Err(e) => ShardState::Damaged(format!("{name}: {e}")),
    }
}

/// Part k of N (1-based): the points i with i mod N = k - 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Part {
    pub index: usize,
    pub count: usize,
}

impl Part {
    /// "k/N", or "auto": the task of a Slurm array job (SLURM_ARRAY_TASK_ID from
    /// SLURM_ARRAY_TASK_MIN, of SLURM_ARRAY_TASK_COUNT) or the rank of an MPI or srun launch
    /// (OMPI_COMM_WORLD_RANK/SIZE, PMI_RANK/SIZE, SLURM_PROCID/NTASKS).
    pub fn parse(text: &str) -> Result<Part> {
        if text == "auto" {
            return Self::from_environment();
        }
        let bad = || CliError::usage(format!("--shard {text}: expected k/N with 1 <= k <= N, or auto"));
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) =
            (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Part { index, count })
    }

    fn from_environment() -> Result<Part> {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok());
        if let (Some(id), Some(count)) = (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT")) {
            let min = var("SLURM_ARRAY_TASK_MIN").unwrap_or(0);
            return Self::parse(&format!("{}/{count}", id - min + 1));
        }
        for (rank, size) in [
            ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
            ("PMI_RANK", "PMI_SIZE"),
            ("SLURM_PROCID", "SLURM_NTASKS"),
        ] {
            if let (Some(rank), Some(size)) = (var(rank), var(size)) {
                return Self::parse(&format!("{}/{size}", rank + 1));
            }
        }
        Err(CliError::usage(
            "--shard auto: no Slurm array task (SLURM_ARRAY_TASK_ID/COUNT) or MPI rank (OMPI_COMM_WORLD_RANK/SIZE, PMI_RANK/SIZE, SLURM_PROCID/NTASKS) in the environment".into(),
        ))
    }

    pub fn points(&self, n_points: usize) -> impl Iterator<Item = usize> + '_ {
        (self.index - 1..n_points).step_by(self.count)
    }
}

/// Reads points from a CSV with the header [`PARAMETER_NAMES`].
pub fn read_points_csv(path: &Path) -> Result<Vec<GridPoint>> {
    let text = fs::read_to_string(path).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    let mut lines =
        text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let expected = PARAMETER_NAMES.join(",");
    match lines.next() {
        Some((_, header)) if header.split(',').map(str::trim).eq(PARAMETER_NAMES.iter().copied()) => {}
        Some((_, header)) => {
            return Err(CliError::input(format!(
                "{}: the header is `{}`; it must be `{expected}` (table 1's parameters in its units, in this order)",
                path.display(),
                header.trim()
            )));
        }
        None => {
            return Err(CliError::input(format!(
                "{}: empty; the header must be `{expected}`",
                path.display()
            )));
        }
    }
    let mut points = Vec::new();
    for (number, line) in lines {
        let values: Vec<&str> = line.split(',').map(str::trim).collect();
        if values.len() != 5 {
            return Err(CliError::input(format!(
                "{} line {}: {} values, 5 expected",
                path.display(),
                number + 1,
                values.len()
            )));
        }
        let mut row = [0.0; 5];
        for (j, v) in values.iter().enumerate() {
            row[j] = v.parse().map_err(|_| {
                CliError::input(format!(
                    "{} line {}: {} = '{v}' is not a number",
                    path.display(),
                    number + 1,
                    PARAMETER_NAMES[j]
                ))
            })?;
        }
        let point = GridPoint::from_array(row);
        point
            .validate()
            .map_err(|e| CliError::input(format!("{} line {}: {e}", path.display(), number + 1)))?;
        points.push(point);
    }
    if points.is_empty() {
        return Err(CliError::input(format!("{}: no points after the header", path.display())));
    }
    Ok(points)
}

/// What `crk grid` was asked for, after reading the config and the options.
pub struct GridRun {
    pub manifest: Manifest,
    pub settings: GridSettings,
    pub out: PathBuf,
    pub part: Part,
    pub threads: usize,
    /// `--device`: the CUDA device that computes the realisations (None: the CPU).
    pub device: Option<usize>,
    pub quiet: bool,
}

/// The options of `crk grid` that define the run.
pub struct GridRequest<'a> {
    pub points_csv: Option<&'a Path>,
    pub config: Option<&'a Path>,
    pub preset: Option<&'a str>,
    pub realisations: Option<u64>,
    pub seed: Option<u64>,
    /// `--precision`: "exact" or "f32" (overrides the config's default, must agree with a
    /// config that names the other).
    pub precision: Option<&'a str>,
}

fn preset_points(name: &str, key: &str) -> Result<Vec<GridPoint>> {
    match name {
        "table1" => Ok(secret::table1_points()),
        "offset" => Ok(secret::offset_points()),
        other => Err(CliError::usage(format!("{key} = \"{other}\": expected \"table1\" or \"offset\""))),
    }
}

/// Resolves the points, realisations, seed and settings from the options and a config file.
///
/// Errors: unknown or contradictory keys, bad values (the message names the key or file).
pub fn resolve(request: &GridRequest) -> Result<(Vec<GridPoint>, u64, u64, GridSettings)> {
    let config: GridConfig = match request.config {
        None => GridConfig::default(),
        Some(path) => {
            let text =
                fs::read_to_string(path).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
            let parsed = if path.extension().is_some_and(|e| e == "json") {
                serde_json::from_str(&text).map_err(|e| e.to_string())
            } else {
                toml::from_str(&text).map_err(|e| e.to_string())
            };
            parsed.map_err(|e| CliError::input(format!("{}: {e}", path.display())))?
        }
    };
    let config_dir = request.config.and_then(Path::parent).unwrap_or(Path::new("."));
    let mut sources: Vec<(&str, Vec<GridPoint>)> = Vec::new();
    if let Some(path) = request.points_csv {
        sources.push(("--points", read_points_csv(path)?));
    }
    if let Some(name) = request.preset {
        sources.push(("--preset", preset_points(name, "--preset")?));
    }
    if let Some(path) = &config.points_csv {
        sources.push(("points_csv", read_points_csv(&config_dir.join(path))?));
    }
    if let Some(rows) = &config.points {
        let points: Vec<GridPoint> = rows.iter().map(|&r| GridPoint::from_array(r)).collect();
        for (i, p) in points.iter().enumerate() {
            p.validate().map_err(|e| CliError::input(format!("points[{i}]: {e}")))?;
        }
        sources.push(("points", points));
    }
    if let Some(axes) = &config.axes {
        let mut points = Vec::new();
        for &a in &axes.sn_rate {
            for &b in &axes.log10_ecut {
                for &c in &axes.gamma {
                    for &d in &axes.delta {
                        for &e in &axes.kappa0 {
                            let p = GridPoint::from_array([a, b, c, d, e]);
                            p.validate().map_err(|e| CliError::input(format!("axes: {e}")))?;
                            points.push(p);
                        }
                    }
                }
            }
        }
        sources.push(("axes", points));
    }
    if let Some(name) = &config.preset {
        sources.push(("preset", preset_points(name, "preset")?));
    }
    let points = match sources.len() {
        0 => secret::table1_points(),
        1 => sources.pop().expect("one").1,
        _ => {
            let names: Vec<&str> = sources.iter().map(|(n, _)| *n).collect();
            return Err(CliError::usage(format!(
                "the points are given {} times ({}): give exactly one",
                names.len(),
                names.join(", ")
            )));
        }
    };
    if points.is_empty() {
        return Err(CliError::input("the grid has no points".into()));
    }
    let agree = |key: &str, option: Option<u64>, file: Option<u64>| -> Result<Option<u64>> {
        match (option, file) {
            (Some(a), Some(b)) if a != b => {
                Err(CliError::usage(format!("--{key} {a} contradicts the config's {key} = {b}")))
            }
            (a, b) => Ok(a.or(b)),
        }
    };
    let realisations =
        agree("realisations", request.realisations, config.realisations)?.ok_or_else(|| {
            CliError::usage("the realisations per point are not given (--realisations N)".into())
        })?;
    if realisations == 0 || realisations > secret::MAX_REALISATIONS_PER_POINT {
        return Err(CliError::usage(format!("realisations = {realisations}: 1 to 2^32 per point")));
    }
    let seed = agree("seed", request.seed, config.seed)?
        .ok_or_else(|| CliError::usage("the seed is not given (--seed S)".into()))?;
    let mut settings = config.settings.to_settings()?;
    if let Some(name) = request.precision {
        let precision = value_of(&PRECISIONS, "precision", name)?;
        if settings.precision != Precision::Exact && settings.precision != precision {
            return Err(CliError::usage(format!(
                "--precision {name} contradicts the config's precision = \"{}\"",
                config.settings.precision
            )));
        }
        settings.precision = precision;
    }
    settings.validate().map_err(|e| CliError::input(format!("settings: {e}")))?;
    Ok((points, realisations, seed, settings))
}

/// Opens (or starts) the run in `out`: creates the directory, writes the manifest or checks
/// the one there.
///
/// Errors: another run's manifest in `out` (the message names the first differing field).
pub fn open_run(out: &Path, manifest: Manifest) -> Result<Manifest> {
    fs::create_dir_all(out).map_err(|e| CliError::io(format!("{}: {e}", out.display())))?;
    if out.join("manifest.json").exists() {
        let existing = Manifest::read(out)?;
        if let Some(field) = existing.difference(&manifest) {
            return Err(CliError::input(format!(
                "{} holds another run's manifest (its {field} differs from this run's): use another --out, or the same options as that run",
                out.display()
            )));
        }
        return Ok(existing);
    }
    manifest.write(out)?;
    Ok(manifest)
}

/// Computes the shard of one point and makes it visible (see the module docs).
fn write_shard(
    run: &GridRun,
    ensemble: &GpuEnsemble,
    point: usize,
    flux: &mut Vec<f64>,
    psi: &mut Vec<f32>,
    mut on_rows: impl FnMut(usize),
) -> Result<()> {
    let m = &run.manifest;
    let (n, width) = (m.realisations_per_point as usize, m.n_energies());
    let name = shard_name(point);
    let partial = run.out.join(format!("{name}.partial"));
    let io = |e: std::io::Error| CliError::io(format!("{}: {e}", partial.display()));
    let file = File::create(&partial).map_err(io)?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let header = npy::header("<f4", &[n, width]);
    hasher.update(&header);
    writer.write_all(&header).map_err(io)?;
    let first = secret::realisation_index(point as u64, 0).map_err(CliError::library)?;
    let mut done = 0;
    while done < n {
        let rows = CHUNK_REALISATIONS.min(n - done);
        flux.resize(rows * width, 0.0);
        psi.resize(rows * width, 0.0);
        match run.device {
            Some(device) => {
                ensemble
                    .generate(device, m.seed, first + done as u64, rows, flux)
                    .map_err(CliError::library)?;
            }
            None => ensemble
                .ensemble()
                .generate(m.seed, first + done as u64, rows, run.threads, flux, None)
                .map_err(CliError::library)?,
        }
        secret::psi_from_flux(&m.energies_gev, flux, psi);
        let bytes = npy::f32_bytes(psi);
        hasher.update(&bytes);
        writer.write_all(&bytes).map_err(io)?;
        done += rows;
        on_rows(rows);
    }
    let file = writer.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    drop(file);
    let digest = hex(&hasher.finalize());
    write_atomically(&run.out.join(format!("{name}.sha256")), format!("{digest}  {name}\n").as_bytes())?;
    fs::rename(&partial, run.out.join(&name)).map_err(io)?;
    sync_dir(&run.out);
    Ok(())
}

/// Summary of a run of `crk grid`.
pub struct GridSummary {
    pub points_computed: usize,
    pub points_present: usize,
    pub points_redone: usize,
    pub spectra: u64,
    pub seconds: f64,
    pub complete: bool,
}

/// Runs this part of the grid: checks the shards already there, computes the others.
pub fn run(run: &GridRun) -> Result<GridSummary> {
    let m = &run.manifest;
    let started = Instant::now();
    let mine: Vec<usize> = run.part.points(m.points.len()).collect();
    let mut todo = Vec::new();
    let mut redone = 0;
    for &p in &mine {
        match check_shard(&run.out, m, p) {
            ShardState::Good(_) => {}
            ShardState::Missing => todo.push(p),
            ShardState::Damaged(why) => {
                eprintln!("crk grid: {why}: computing it again");
                redone += 1;
                todo.push(p);
            }
        }
    }
    let total_rows = todo.len() as u64 * m.realisations_per_point;
    let computed_on = match run.device {
        // Before anything is computed: a missing device or a build without CUDA.
        Some(device) => {
            let info = crkernels::gpu::device_info(device)
                .map_err(|e| CliError::library(e).context(&format!("--device {device}")))?;
            format!("GPU {device} ({})", info.name)
        }
        None => format!("{} threads", crate::threads_label(run.threads)),
    };
    if !run.quiet {
        eprintln!(
            "crk grid: part {}/{}: {} points, {} present, {} to compute ({} spectra at {} energies), {computed_on}",
            run.part.index,
            run.part.count,
            mine.len(),
            mine.len() - todo.len(),
            todo.len(),
            total_rows,
            m.n_energies(),
        );
    }
    let bar = crate::progress_bar(total_rows, "spectra", run.quiet);
    let losses = run.settings.losses().map_err(CliError::library)?;
    let points = m.grid_points();
    let (mut flux, mut psi) = (Vec::new(), Vec::new());
    // The next points' tables are built on other threads while this point's realisations run:
    // one point ahead on the CPU (whose cores run the realisations), and on a GPU run as many
    // as the host has cores, each with its GPU tables too.
    let ahead = match run.device {
        None => 1,
        Some(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    std::thread::scope(|scope| -> Result<()> {
        let build = |p: usize| {
            let (losses, point) = (&losses, points[p]);
            let (settings, on_gpu) = (&run.settings, run.device.is_some());
            scope.spawn(move || {
                let ensemble = GpuEnsemble::new(settings.ensemble(losses, &point).map_err(|e| (p, e))?);
                if on_gpu {
                    ensemble.tables();
                }
                Ok(ensemble)
            })
        };
        let mut building: VecDeque<_> = todo.iter().take(ahead).map(|&p| build(p)).collect();
        for (i, &p) in todo.iter().enumerate() {
            let built = building.pop_front().expect("built").join().expect("table thread");
            let ensemble = built.map_err(|(p, e): (usize, crkernels::Error)| {
                CliError::input(format!("point {p} {:?}: {e}", points[p].to_array()))
            })?;
            if let Some(&q) = todo.get(i + ahead) {
                building.push_back(build(q));
            }
            write_shard(run, &ensemble, p, &mut flux, &mut psi, |rows| bar.inc(rows as u64))?;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let complete = finalize_if_complete(&run.out, m)?;
    Ok(GridSummary {
        points_computed: todo.len(),
        points_present: mine.len() - todo.len(),
        points_redone: redone,
        spectra: total_rows,
        seconds: started.elapsed().as_secs_f64(),
        complete,
    })
}

/// When every shard of the grid is present (all parts), records their checksums in the
/// manifest; returns whether the grid is complete.
fn finalize_if_complete(out: &Path, manifest: &Manifest) -> Result<bool> {
    let n = manifest.points.len();
    if (0..n).any(|p| !out.join(shard_name(p)).exists()) {
        return Ok(false);
    }
    let status = merge_check(out, manifest)?;
    Ok(status.missing.is_empty() && status.damaged.is_empty())
}

/// The state of a grid directory.
pub struct MergeStatus {
    pub missing: Vec<usize>,
    pub damaged: Vec<(usize, String)>,
}

/// Checks every shard of the grid; when all are good, writes their checksums into the
/// manifest (once: a complete manifest is left as it is after the check).
pub fn merge_check(out: &Path, manifest: &Manifest) -> Result<MergeStatus> {
    let mut status = MergeStatus { missing: Vec::new(), damaged: Vec::new() };
    let mut shards = Vec::with_capacity(manifest.points.len());
    for p in 0..manifest.points.len() {
        match check_shard(out, manifest, p) {
            ShardState::Good(sha256) => {
                shards.push(ShardRecord { file: shard_name(p), sha256, bytes: manifest.shard_bytes() })
            }
            ShardState::Missing => status.missing.push(p),
            ShardState::Damaged(why) => status.damaged.push((p, why)),
        }
    }
    if status.missing.is_empty() && status.damaged.is_empty() {
        if let Some(recorded) = &manifest.shards
            && *recorded != shards
        {
            return Err(CliError::input(format!(
                "{}: the shards' checksums differ from those the manifest recorded when the grid was completed",
                out.display()
            )));
        }
        if manifest.shards.is_none() {
            Manifest { shards: Some(shards), ..manifest.clone() }.write(out)?;
        }
    }
    Ok(status)
}

/// Lists points as ranges: "0-3, 7, 9-10".
pub fn ranges(points: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < points.len() {
        let mut j = i;
        while j + 1 < points.len() && points[j + 1] == points[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { points[i].to_string() } else { format!("{}-{}", points[i], points[j]) });
        i = j + 1;
    }
    parts.join(", ")
}

/// `crk grid --merge`: every part present and consistent?
pub fn merge(out: &Path) -> Result<()> {
    let manifest = Manifest::read(out)?;
    let status = merge_check(out, &manifest)?;
    for (p, why) in &status.damaged {
        eprintln!("crk grid --merge: point {p}: {why}");
    }
    if !status.missing.is_empty() || !status.damaged.is_empty() {
        return fail(CliError::input(format!(
            "{}: {} of {} shards missing (points {}) and {} damaged: rerun the parts that own them (the same command with their --shard)",
            out.display(),
            status.missing.len(),
            manifest.points.len(),
            ranges(&status.missing),
            status.damaged.len()
        )));
    }
    println!(
        "{}: complete: {} points x {} realisations at {} energies, every shard matches its checksum (recorded in manifest.json)",
        out.display(),
        manifest.points.len(),
        manifest.realisations_per_point,
        manifest.n_energies()
    );
    Ok(())
}
