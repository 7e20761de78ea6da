//! A trained emulator as `crk` uses it: the MADE-MoG and what `crk train` records in the
//! file's metadata (the grid's energies and parameter names).

use std::path::Path;

use crkernels::emulator::load_made;
use crkernels::nn::{LoadOptions, Made};

use crate::{CliError, Result};

/// Metadata key: the energies [GeV] of the data dimensions, as a JSON list.
pub const ENERGIES_KEY: &str = "crk.energies_GeV";
/// Metadata key: the context's parameter names, comma-separated.
pub const PARAMETERS_KEY: &str = "crk.parameters";

pub struct Emulator {
    pub made: Made,
    /// The energies of the data dimensions [GeV].
    pub energies_gev: Vec<f64>,
    /// The context's parameter names.
    pub parameters: Vec<String>,
}

/// The string metadata of a safetensors file (the `__metadata__` of its JSON header).
fn metadata(bytes: &[u8]) -> Vec<(String, String)> {
    let Some(len) = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
    else {
        return Vec::new();
    };
    let Some(header) = bytes.get(8..8usize.saturating_add(len)) else { return Vec::new() };
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(header) else { return Vec::new() };
    match map.get("__metadata__") {
        Some(serde_json::Value::Object(meta)) => {
            meta.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect()
        }
        _ => Vec::new(),
    }
}

impl Emulator {
    /// Loads a model; a model trained by `crk train` knows its energies and parameters, any
    /// other gets the SECRET grid's when its shape is theirs (5 parameters, 19 energies).
    ///
    /// Errors: an unreadable or invalid file, or a model whose shape is not a grid's.
    pub fn load(path: &Path) -> Result<Emulator> {
        let bytes = std::fs::read(path).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
        let made = load_made(path, &LoadOptions::default())
            .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
        let meta = metadata(&bytes);
        let get = |key: &str| meta.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let energies_gev = match get(ENERGIES_KEY) {
            Some(text) => serde_json::from_str::<Vec<f64>>(&text)
                .map_err(|e| CliError::input(format!("{}: metadata {ENERGIES_KEY}: {e}", path.display())))?,
            None if made.n_dims() == crkernels::secret::N_GRID_ENERGIES => {
                crkernels::secret::grid_energies_gev().to_vec()
            }
            None => {
                return Err(CliError::input(format!(
                    "{}: the model has {} data dimensions and no {ENERGIES_KEY} metadata: its energies are unknown",
                    path.display(),
                    made.n_dims()
                )));
            }
        };
        let parameters: Vec<String> = match get(PARAMETERS_KEY) {
            Some(text) => text.split(',').map(str::to_string).collect(),
            None => crkernels::secret::PARAMETER_NAMES
                .iter()
                .take(made.n_context())
                .map(|s| s.to_string())
                .collect(),
        };
        if energies_gev.len() != made.n_dims() || parameters.len() != made.n_context() {
            return Err(CliError::input(format!(
                "{}: the model has {} parameters and {} energies, its metadata names {} and {}",
                path.display(),
                made.n_context(),
                made.n_dims(),
                parameters.len(),
                energies_gev.len()
            )));
        }
        Ok(Emulator { made, energies_gev, parameters })
    }

    /// Checks that this model's context is `parameters` and its data dimensions `energies`
    /// (to 1e-9 relative), naming the first difference.
    pub fn check_matches(&self, what: &str, parameters: &[String], energies_gev: &[f64]) -> Result<()> {
        if self.parameters != parameters {
            return Err(CliError::input(format!(
                "the model's parameters ({}) are not {what}'s ({})",
                self.parameters.join(","),
                parameters.join(",")
            )));
        }
        if self.energies_gev.len() != energies_gev.len() {
            return Err(CliError::input(format!(
                "the model has {} energies, {what} {}",
                self.energies_gev.len(),
                energies_gev.len()
            )));
        }
        for (i, (a, b)) in self.energies_gev.iter().zip(energies_gev).enumerate() {
            if (a - b).abs() > 1e-9 * a.abs() {
                return Err(CliError::input(format!("energy {i}: the model's is {a} GeV, {what}'s {b} GeV")));
            }
        }
        Ok(())
    }
}

/// Quantiles (linear interpolation between order statistics, NumPy's default) of `values`,
/// which are sorted in place; NaN sorts last.
pub fn quantiles(values: &mut [f64], probabilities: &[f64]) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    probabilities
        .iter()
        .map(|&q| {
            let x = q * (n - 1) as f64;
            let lo = x.floor() as usize;
            let frac = x - lo as f64;
            let (a, b) = (values[lo], values[(lo + 1).min(n - 1)]);
            a + frac * (b - a)
        })
        .collect()
}

/// The quantiles of the paper's Delta Q: 5, 16, 50, 84 and 95%.
pub const QUANTILES: [f64; 5] = [0.05, 0.16, 0.5, 0.84, 0.95];

/// Per energy (columns of rows [n][width]): the [`QUANTILES`].
pub fn column_quantiles(rows: &[f32], width: usize) -> Vec<[f64; 5]> {
    let n = rows.len() / width;
    let mut column = vec![0.0f64; n];
    (0..width)
        .map(|j| {
            for (i, v) in column.iter_mut().enumerate() {
                *v = f64::from(rows[i * width + j]);
            }
            quantiles(&mut column, &QUANTILES).try_into().expect("5 quantiles")
        })
        .collect()
}
