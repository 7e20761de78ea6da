//! Threads and files for the convolution layers and the network runner (std). The numerics
//! are in `crkernels_core::nn`; a batch is split across threads on sample boundaries (the
//! network on its chunks of samples, [`Network::chunk`]), and each sample is computed by the same operations
//! whatever thread it lands on, so results do not depend on the thread count.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use crate::Error;
use crate::Result;
use crate::nn::Network;
use crate::nn::conv::{Conv2d, first_non_finite};

/// Loads a network from a `crkernels.network.v1` safetensors file (see
/// [`crate::nn::network_load`]).
///
/// Errors: [`Error::Io`] when the file cannot be read (message with the path), else as
/// [`Network::from_safetensors`].
pub fn load_network(path: &Path) -> Result<Network> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
    Network::from_safetensors(&bytes)
}

/// `n_threads` (0: all cores), at most one per `units` work units, at least 1.
fn thread_count(n_threads: usize, units: usize) -> usize {
    let wanted = match n_threads {
        0 => std::thread::available_parallelism().map_or(1, |t| t.get()),
        t => t,
    };
    wanted.min(units).max(1)
}

/// Runs `work(state, first_sample, output_rows)` over `batch` samples of `row` output values
/// each, in pieces of a multiple of `granule` samples (about 8 per thread) handed to the
/// threads as they finish their previous piece, so that a core slowed by other load takes
/// fewer (a static split waits for the slowest share); each thread has its own `state` from
/// `init`, and the calling thread works too. The threads are the library's persistent workers
/// (`pool`). After an error the failing thread stops and the first error is returned.
fn split_rows<S>(
    batch: usize,
    row: usize,
    granule: usize,
    n_threads: usize,
    output: &mut [f32],
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, usize, &mut [f32]) -> Result<()> + Sync,
) -> Result<()> {
    let threads = thread_count(n_threads, batch.div_ceil(granule));
    if threads == 1 || row == 0 {
        return work(&mut init(), 0, output);
    }
    let piece = batch.div_ceil(8 * threads).div_ceil(granule) * granule;
    let pieces = Mutex::new(output.chunks_mut(piece * row).enumerate());
    let failure = Mutex::new(None);
    crate::pool::run(threads, &|| {
        let mut state = init();
        loop {
            let next = pieces.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some((i, rows)) = next else { return };
            if let Err(error) = work(&mut state, i * piece, rows) {
                failure.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(error);
                return;
            }
        }
    });
    match failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Multi-threaded entry point of a [`Network`].
pub trait ParallelNetwork {
    /// [`Network::run`] on `n_threads` threads (0: all cores): `inputs[j]` is
    /// [batch][shape of input j], `output` [batch][output_size]. The same numbers on any
    /// thread count.
    ///
    /// Errors: as [`Network::check_batch`].
    fn run_parallel(
        &self,
        inputs: &[&[f32]],
        batch: usize,
        n_threads: usize,
        output: &mut [f32],
    ) -> Result<()>;
}

impl ParallelNetwork for Network {
    fn run_parallel(
        &self,
        inputs: &[&[f32]],
        batch: usize,
        n_threads: usize,
        output: &mut [f32],
    ) -> Result<()> {
        self.check_batch(inputs, batch, output.len())?;
        let workspace = || self.workspace();
        split_rows(
            batch,
            self.output_size(),
            self.chunk(),
            n_threads,
            output,
            workspace,
            |work, first, rows| {
                self.run_rows(work, inputs, first, rows);
                Ok(())
            },
        )
    }
}

/// [`Conv2d::forward`] on `n_threads` threads (0: all cores), split over samples.
///
/// Errors: as [`Conv2d::forward`].
pub fn conv2d_parallel(conv: &Conv2d, input: &[f32], output: &mut [f32], n_threads: usize) -> Result<()> {
    conv2d_split(conv, input, output, n_threads, false)
}

/// [`conv2d_parallel`] that rejects non-finite inputs ([`Conv2d::forward_finite_with`]).
pub(crate) fn conv2d_parallel_finite(
    conv: &Conv2d,
    input: &[f32],
    output: &mut [f32],
    n_threads: usize,
) -> Result<()> {
    conv2d_split(conv, input, output, n_threads, true)
}

fn conv2d_split(
    conv: &Conv2d,
    input: &[f32],
    output: &mut [f32],
    n_threads: usize,
    finite_only: bool,
) -> Result<()> {
    let (per_in, per_out) = (conv.input_size(), conv.output_size());
    let batch = input.len() / per_in;
    if input.len() != batch * per_in || output.len() != batch * per_out {
        return Err(Error::InvalidArgument(format!(
            "input has {} values and output {}: expected n x {per_in} and n x {per_out}",
            input.len(),
            output.len()
        )));
    }
    let result = split_rows(
        batch,
        per_out,
        1,
        n_threads,
        output,
        || conv.workspace(),
        |work, first, rows| {
            let count = rows.len() / per_out;
            let piece = &input[first * per_in..(first + count) * per_in];
            if finite_only {
                conv.forward_finite_with(work, piece, rows)
            } else {
                conv.forward_with(work, piece, rows)
            }
        },
    );
    // A piece names its bad value by its index in the piece: name the batch's first one.
    result.map_err(|error| match first_non_finite(input) {
        Some(i) if finite_only => {
            Error::InvalidArgument(format!("input[{i}] is {} (must be finite)", input[i]))
        }
        _ => error,
    })
}
