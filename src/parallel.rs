//! Threads for the ensemble engine (std): many realisations on all cores, with a progress
//! report and cancellation. The numerics are in `crkernels_core::physics::ensemble`; a
//! realisation is the same whichever thread computes it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};

use crate::Error;
use crate::Result;
use crate::physics::ensemble::{Ensemble, Workspace};

/// The most threads a run starts (more are lowered to it).
pub const MAX_THREADS: usize = 1024;
/// The memory the workspaces of a run's threads may take together [bytes] (64 GiB; 4 GiB on
/// 32-bit targets): where
/// [`Ensemble::workspace_bytes_bound`] times the threads asked for is more, fewer threads run
/// (at least one). The results do not depend on it.
pub const MAX_WORKSPACES_BYTES: usize = (u64::MAX >> 28) as usize;

/// Runs many realisations of an [`Ensemble`] on threads.
pub trait ParallelEnsemble {
    /// Realisations first..first + n of seed `seed` into `flux` ([n][energies], row-major),
    /// on `n_threads` threads (0: all available cores). Results do not depend on the thread
    /// count or on how the realisations are split into calls. Working memory per thread is
    /// one realisation's sources, whatever n ([`Ensemble::workspace_bytes_bound`]); the threads
    /// are at most [`MAX_THREADS`] and are lowered so that their workspaces stay within
    /// [`MAX_WORKSPACES_BYTES`] together.
    ///
    /// `progress`, if given, is called on the calling thread about every 50 ms and at the end
    /// with the number of finished realisations; returning false cancels the run: then
    /// Err(Cancelled) is returned, finished rows are valid and unfinished rows are NaN.
    fn generate(
        &self,
        seed: u64,
        first_realisation: u64,
        n_realisations: usize,
        n_threads: usize,
        flux: &mut [f64],
        progress: Option<&mut dyn FnMut(Progress) -> bool>,
    ) -> Result<()>;
}

/// How a long run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Realisations finished.
    pub done: usize,
    /// Realisations asked for.
    pub total: usize,
}

impl ParallelEnsemble for Ensemble {
    fn generate(
        &self,
        seed: u64,
        first_realisation: u64,
        n_realisations: usize,
        n_threads: usize,
        flux: &mut [f64],
        mut progress: Option<&mut dyn FnMut(Progress) -> bool>,
    ) -> Result<()> {
        let n_energies = self.energies_gev().len();
        let expected = n_realisations.checked_mul(n_energies);
        if expected != Some(flux.len()) {
            return Err(Error::InvalidArgument(format!(
                "flux has {} values, {n_realisations} realisations x {n_energies} energies need {}",
                flux.len(),
                n_realisations.saturating_mul(n_energies)
            )));
        }
        if first_realisation.checked_add(n_realisations as u64).is_none() {
            return Err(Error::InvalidArgument("realisation numbers overflow 2^64".into()));
        }
        if n_realisations == 0 {
            return Ok(());
        }
        let threads = match n_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .min(n_realisations)
        .min(MAX_THREADS)
        .min((MAX_WORKSPACES_BYTES / self.workspace_bytes_bound().max(1)).max(1));
        // Chunks small enough for a smooth progress report and load balance.
        let rows_per_chunk = (n_realisations / (threads * 16)).clamp(1, 64);
        let chunks = Mutex::new(flux.chunks_mut(rows_per_chunk * n_energies).enumerate());
        let cancelled = AtomicBool::new(false);
        // Finished realisations, counted by the workers; the channel only says that a worker
        // has stopped (a message per realisation woke this thread thousands of times a second,
        // taking time from the workers on a machine with few cores).
        let finished = AtomicUsize::new(0);
        let (sender, receiver) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let sender = sender.clone();
                let (chunks, cancelled, finished) = (&chunks, &cancelled, &finished);
                scope.spawn(move || {
                    let mut work = Workspace::default();
                    loop {
                        let next = chunks.lock().map(|mut c| c.next()).unwrap_or(None);
                        let Some((chunk_index, rows)) = next else { break };
                        let first_row = chunk_index * rows_per_chunk;
                        for (r, row) in rows.chunks_mut(n_energies).enumerate() {
                            if cancelled.load(Ordering::Relaxed) {
                                row.fill(f64::NAN);
                                continue;
                            }
                            let k = first_realisation + (first_row + r) as u64;
                            self.realisation_in(&mut work, seed, k, row);
                            finished.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let _ = sender.send(());
                });
            }
            drop(sender);
            let tick = std::time::Duration::from_millis(50);
            let mut running = threads;
            while running > 0 {
                match receiver.recv_timeout(tick) {
                    Ok(()) => running -= 1,
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
                let done = finished.load(Ordering::Relaxed);
                if let Some(report) = progress.as_mut()
                    && running > 0
                    && !report(Progress { done, total: n_realisations })
                {
                    cancelled.store(true, Ordering::Relaxed);
                }
            }
            if let Some(report) = progress.as_mut() {
                report(Progress { done: finished.load(Ordering::Relaxed), total: n_realisations });
            }
        });
        if cancelled.load(Ordering::Relaxed) {
            return Err(Error::Cancelled(
                "cancelled by the progress callback; unfinished rows are NaN".into(),
            ));
        }
        Ok(())
    }
}
