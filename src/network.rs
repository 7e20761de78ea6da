//! Threads and files for the convolution layers and the network runner (std). The numerics
//! are in `crkernels_core::nn`; a batch is split across threads on sample boundaries (the
//! network on chunks of [`CHUNK`] samples), and each sample is computed by the same operations
//! whatever thread it lands on, so results do not depend on the thread count.

use std::path::Path;

use crate::Error;
use crate::Result;
use crate::nn::Network;
use crate::nn::conv::Conv2d;
use crate::nn::network::CHUNK;

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

/// Runs `work(first_sample, output_rows)` on threads over `batch` samples of `row` output
/// values each, in contiguous shares that are multiples of `granule` samples.
fn split_rows(
    batch: usize,
    row: usize,
    granule: usize,
    n_threads: usize,
    output: &mut [f32],
    work: impl Fn(usize, &mut [f32]) -> Result<()> + Sync,
) -> Result<()> {
    let threads = thread_count(n_threads, batch.div_ceil(granule));
    if threads == 1 || row == 0 {
        return work(0, output);
    }
    let per_thread = batch.div_ceil(threads).div_ceil(granule) * granule;
    let work = &work;
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = output
            .chunks_mut(per_thread * row)
            .enumerate()
            .map(|(i, rows)| scope.spawn(move || work(i * per_thread, rows)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    results.into_iter().collect()
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
        split_rows(batch, self.output_size(), CHUNK, n_threads, output, |first, rows| {
            let mut work = self.workspace();
            self.run_rows(&mut work, inputs, first, rows);
            Ok(())
        })
    }
}

/// [`Conv2d::forward`] on `n_threads` threads (0: all cores), split over samples.
///
/// Errors: as [`Conv2d::forward`].
pub fn conv2d_parallel(conv: &Conv2d, input: &[f32], output: &mut [f32], n_threads: usize) -> Result<()> {
    let (per_in, per_out) = (conv.input_size(), conv.output_size());
    let batch = input.len() / per_in;
    if input.len() != batch * per_in || output.len() != batch * per_out {
        return Err(Error::InvalidArgument(format!(
            "input has {} values and output {}: expected n x {per_in} and n x {per_out}",
            input.len(),
            output.len()
        )));
    }
    split_rows(batch, per_out, 1, n_threads, output, |first, rows| {
        let count = rows.len() / per_out;
        conv.forward(&input[first * per_in..(first + count) * per_in], rows)
    })
}
