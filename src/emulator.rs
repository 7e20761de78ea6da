//! Threads and files for the MADE emulator (std): batch entry points that split a batch across
//! threads, and loading a model from a file. The numerics are in `crkernels_core::nn`; sample
//! i with seed s is drawn from `Stream::new(s, first_sample + i)` and every row is computed by
//! the same operations whatever thread and tile it lands in, so results do not depend on the
//! thread count or on how a batch is split into calls.

use std::path::Path;

use crate::Error;
use crate::Result;
use crate::nn::dense::TILE;
use crate::nn::{LoadOptions, Made};

/// Loads a model from a safetensors file (either layout, see [`crate::nn::load`]).
///
/// Errors: [`Error::Io`] when the file cannot be read (message with the path), else as
/// [`Made::from_safetensors`].
pub fn load_made(path: &Path, options: &LoadOptions) -> Result<Made> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
    Made::from_safetensors(&bytes, options)
}

/// The number of threads to use for `n` rows: `n_threads` (0: all cores), at most one per tile.
fn thread_count(n_threads: usize, n: usize) -> usize {
    let wanted = match n_threads {
        0 => std::thread::available_parallelism().map_or(1, |t| t.get()),
        t => t,
    };
    wanted.min(n.div_ceil(TILE)).max(1)
}

/// Rows per thread: a multiple of the tile, so that threads split on tile boundaries.
fn rows_per_thread(n: usize, threads: usize) -> usize {
    n.div_ceil(threads).div_ceil(TILE) * TILE
}

/// Multi-threaded batch entry points of a [`Made`].
pub trait ParallelMade {
    /// [`Made::log_prob`] on `n_threads` threads (0: all cores); the same numbers on any
    /// thread count.
    fn log_prob_parallel(
        &self,
        context: &[f32],
        x: &[f32],
        n_threads: usize,
        log_prob: &mut [f32],
    ) -> Result<()>;

    /// [`Made::sample`] on `n_threads` threads (0: all cores): sample i conditioned on
    /// context row i, drawn from `Stream::new(seed, first_sample + i)`.
    fn sample_parallel(
        &self,
        context: &[f32],
        seed: u64,
        first_sample: u64,
        n_threads: usize,
        x_out: &mut [f32],
    ) -> Result<()>;

    /// [`Made::sample_given`] on `n_threads` threads (0: all cores).
    fn sample_given_parallel(
        &self,
        context: &[f32],
        given_dims: &[usize],
        seed: u64,
        first_sample: u64,
        n_threads: usize,
        x: &mut [f32],
    ) -> Result<()>;
}

impl ParallelMade for Made {
    fn log_prob_parallel(
        &self,
        context: &[f32],
        x: &[f32],
        n_threads: usize,
        log_prob: &mut [f32],
    ) -> Result<()> {
        let n = log_prob.len();
        self.check_batch(context, Some(("x", x, self.n_dims())), n)?;
        let threads = thread_count(n_threads, n);
        let rows = rows_per_thread(n, threads);
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = log_prob
                .chunks_mut(rows)
                .enumerate()
                .map(|(i, out)| {
                    scope.spawn(move || {
                        let mut work = self.workspace();
                        self.log_prob_rows(&mut work, context, x, i * rows, out)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        if let Some(err) = results.into_iter().find_map(|r| r.err()) {
            log_prob.fill(f32::NAN);
            return Err(err);
        }
        Ok(())
    }

    fn sample_parallel(
        &self,
        context: &[f32],
        seed: u64,
        first_sample: u64,
        n_threads: usize,
        x_out: &mut [f32],
    ) -> Result<()> {
        let d = self.n_dims();
        let n = x_out.len() / d;
        if x_out.len() != n * d {
            return Err(Error::InvalidArgument(format!(
                "x_out has {} values, not a multiple of n_dims = {d}",
                x_out.len()
            )));
        }
        self.check_batch(context, None, n)?;
        sample_threads(self, context, None, seed, first_sample, n_threads, x_out);
        Ok(())
    }

    fn sample_given_parallel(
        &self,
        context: &[f32],
        given_dims: &[usize],
        seed: u64,
        first_sample: u64,
        n_threads: usize,
        x: &mut [f32],
    ) -> Result<()> {
        self.check_given_dims(given_dims)?;
        let d = self.n_dims();
        let n = x.len() / d;
        if x.len() != n * d {
            return Err(Error::InvalidArgument(format!(
                "x has {} values, not a multiple of n_dims = {d}",
                x.len()
            )));
        }
        self.check_batch(context, None, n)?;
        for (i, row) in x.chunks(d).enumerate() {
            if let Some(&g) = given_dims.iter().find(|&&g| !row[g].is_finite()) {
                return Err(Error::InvalidArgument(format!("x[{i}][{g}] is {} (must be finite)", row[g])));
            }
        }
        let given = x.to_vec();
        sample_threads(self, context, Some((&given, given_dims.len())), seed, first_sample, n_threads, x);
        Ok(())
    }
}

/// Splits a checked sampling batch across threads.
fn sample_threads(
    made: &Made,
    context: &[f32],
    given: Option<(&[f32], usize)>,
    seed: u64,
    first_sample: u64,
    n_threads: usize,
    x_out: &mut [f32],
) {
    let d = made.n_dims();
    let n = x_out.len() / d;
    let threads = thread_count(n_threads, n);
    let rows = rows_per_thread(n, threads);
    std::thread::scope(|scope| {
        for (i, out) in x_out.chunks_mut(rows * d).enumerate() {
            scope.spawn(move || {
                let mut work = made.workspace();
                made.sample_rows(&mut work, context, given, seed, first_sample, i * rows, out);
            });
        }
    });
}
