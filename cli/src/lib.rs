//! The `crk` command-line tool's commands as a library (the binary parses the command line
//! and calls these; tests and benchmarks call them directly): the SECRET pipeline of grids
//! simulated to disk, emulators trained on them, evaluated, sampled and fitted.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub mod evaluate;
pub mod fit;
pub mod grid;
pub mod model;
pub mod npy;
pub mod sample;
pub mod svg;
pub mod train;

/// An error of a command: its message and the process's exit status.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub status: u8,
}

impl CliError {
    /// A bad command line or config (exit status 2).
    pub fn usage(message: String) -> Self {
        CliError { message, status: 2 }
    }
    /// A bad input file or value (exit status 3).
    pub fn input(message: String) -> Self {
        CliError { message, status: 3 }
    }
    /// A file-system error (exit status 4).
    pub fn io(message: String) -> Self {
        CliError { message, status: 4 }
    }
    /// An error of the library (exit status 5).
    pub fn library(error: crkernels::Error) -> Self {
        CliError { message: error.to_string(), status: 5 }
    }
    /// The same error with what it concerns in front: "what: message".
    pub fn context(self, what: &str) -> Self {
        CliError { message: format!("{what}: {}", self.message), status: self.status }
    }
}

pub type Result<T> = std::result::Result<T, CliError>;

/// Returns `Err(error)`.
pub fn fail<T>(error: CliError) -> Result<T> {
    Err(error)
}

/// "all" for 0, else the number.
pub fn threads_label(threads: usize) -> String {
    if threads == 0 {
        format!("all {}", std::thread::available_parallelism().map_or(1, |n| n.get()))
    } else {
        threads.to_string()
    }
}

/// A progress bar with rate and ETA on stderr (hidden with --quiet or when stderr is not a
/// terminal).
pub fn progress_bar(total: u64, unit: &str, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(total),
        if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() },
    );
    let template = format!(
        "{{bar:40}} {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, {{elapsed}} elapsed, ETA {{eta}})"
    );
    bar.set_style(ProgressStyle::with_template(&template).expect("a valid template"));
    bar
}
