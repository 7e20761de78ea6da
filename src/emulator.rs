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

/// Saves a model in the plain `crkernels.made.v1` layout (see [`crate::nn::save`]), atomically:
/// the bytes go to a temporary file in the same directory, which is then renamed over `path`,
/// so a reader never sees a half-written model and an existing file is replaced only by a
/// complete one.
///
/// Errors: [`Error::InvalidArgument`] when the plain layout cannot hold the model (nflows
/// models); [`Error::Io`] when the file cannot be written (message with the path).
pub fn save_made(made: &Made, path: &Path) -> Result<()> {
    save_made_with_metadata(made, path, &[])
}

/// [`save_made`] with further string metadata entries (a trainer's settings, for example; see
/// [`crate::nn::save::spec_to_safetensors_with_metadata`]).
pub fn save_made_with_metadata(made: &Made, path: &Path, extra: &[(String, String)]) -> Result<()> {
    let bytes = made.to_safetensors_with_metadata(extra)?;
    write_atomically(path, &bytes)
}

/// Writes `bytes` to a temporary file next to `path` (same directory, so the rename stays on
/// one file system), flushes it to disk and renames it to `path`; the temporary file is removed
/// on failure.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |e: std::io::Error| Error::Io(format!("cannot write {}: {e}", path.display()));
    let name = path
        .file_name()
        .ok_or_else(|| Error::Io(format!("cannot write {}: not a file path", path.display())))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    temp_name.push(format!(".{}.{unique}.tmp", std::process::id()));
    let temp = dir.join(temp_name);
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(io(e));
    }
    Ok(())
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

    /// [`Made::log_prob_grad`] on `n_threads` threads (0: all cores), with the log-density
    /// too: `log_prob` [n] gets exactly [`log_prob_parallel`](Self::log_prob_parallel)'s values
    /// (the f32 network), `grad_context` [n][C] and `grad_x` [n][D] the gradients of log p in
    /// the user's units (f64 back-propagation, see `crkernels_core::nn::made`); any output may
    /// be None. The same numbers on any thread count.
    ///
    /// Errors: [`Error::InvalidArgument`] for n = 0, wrong lengths or non-finite inputs
    /// (nothing written); [`Error::OutOfDomain`] when, with `log_prob` given, the f32 network
    /// overflows, or when a gradient is not finite or beyond f32::MAX (every given output is
    /// then filled with NaN).
    fn log_prob_grad_parallel(
        &self,
        context: &[f32],
        x: &[f32],
        n_threads: usize,
        log_prob: Option<&mut [f32]>,
        grad_context: Option<&mut [f32]>,
        grad_x: Option<&mut [f32]>,
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
        let n = self.rows_of("x_out", x_out)?;
        self.check_batch(context, None, n)?;
        sample_threads(self, context, None, seed, first_sample, n_threads, x_out);
        Ok(())
    }

    fn log_prob_grad_parallel(
        &self,
        context: &[f32],
        x: &[f32],
        n_threads: usize,
        mut log_prob: Option<&mut [f32]>,
        mut grad_context: Option<&mut [f32]>,
        mut grad_x: Option<&mut [f32]>,
    ) -> Result<()> {
        let (c, d) = (self.n_context(), self.n_dims());
        let n = self.rows_of("x", x)?;
        self.check_batch(context, Some(("x", x, d)), n)?;
        for (name, len, width) in [
            ("log_prob", log_prob.as_deref().map(<[f32]>::len), 1),
            ("grad_context", grad_context.as_deref().map(<[f32]>::len), c),
            ("grad_x", grad_x.as_deref().map(<[f32]>::len), d),
        ] {
            if let Some(len) = len
                && len != n * width
            {
                return Err(Error::InvalidArgument(format!(
                    "{name} has {len} values, expected {n} x {width}"
                )));
            }
        }
        let fail = |err: Error, outs: [Option<&mut [f32]>; 3]| {
            for out in outs.into_iter().flatten() {
                out.fill(f32::NAN);
            }
            Err(err)
        };
        if let Some(out) = log_prob.as_deref_mut()
            && let Err(err) = self.log_prob_parallel(context, x, n_threads, out)
        {
            return fail(err, [log_prob, grad_context, grad_x]);
        }
        if grad_context.is_none() && grad_x.is_none() {
            return Ok(());
        }
        let threads = thread_count(n_threads, n);
        let rows = rows_per_thread(n, threads);
        let parts_c = split_rows(grad_context.as_deref_mut(), c, rows, n);
        let parts_x = split_rows(grad_x.as_deref_mut(), d, rows, n);
        let bad: Vec<Option<usize>> = std::thread::scope(|scope| {
            let handles: Vec<_> = parts_c
                .into_iter()
                .zip(parts_x)
                .enumerate()
                .map(|(i, (gc, gx))| {
                    scope.spawn(move || {
                        let mut work = self.grad_workspace();
                        let first = i * rows;
                        let count = rows.min(n - first);
                        self.log_prob_grad_rows(&mut work, context, x, first, count, None, gc, gx)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        if let Some(row) = bad.into_iter().flatten().min() {
            return fail(
                Error::OutOfDomain(format!("x row {row}: the gradient of the log-density is not finite")),
                [log_prob, grad_context, grad_x],
            );
        }
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
        let n = self.rows_of("x", x)?;
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

/// An optional output of `n` rows of `width` values in pieces of `rows` rows (None pieces
/// when it is absent or empty).
fn split_rows(out: Option<&mut [f32]>, width: usize, rows: usize, n: usize) -> Vec<Option<&mut [f32]>> {
    match out {
        Some(out) if width > 0 => out.chunks_mut(rows * width).map(Some).collect(),
        _ => (0..n.div_ceil(rows)).map(|_| None).collect(),
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
