//! The MADE-MoG emulator on the GPU (issue 7 (b); kernels/made.cu): log-densities and samples
//! equal to the CPU's ([`Made::log_prob`], [`Made::sample`]) to 1e-5.
//!
//! A [`GpuMade`] owns a [`Made`] and the copies of its weights on each device it has run on
//! (uploaded on first use, freed with it). Batches of any size run in chunks of rows, so that
//! device memory never limits n: a chunk takes at most half the device's free memory (fewer
//! rows are tried when an allocation still fails), at most 2^20 rows.
//!
//! Two ways in: host arrays (copied to the device chunk by chunk), and device pointers for
//! data that already lives on the device (`*_device`, unsafe: the caller vouches for them).
//! Every argument is checked before the device is touched; without the `cuda` feature, a
//! driver or a device, the entry points return [`Error::NoDevice`].
//!
//! Floor (H100 SXM: 67 TFLOP/s FP32 without tensor cores, 3.35 TB/s), SECRET shape (C = 5,
//! D = 19, one hidden layer of 200 units, K = 10): the masked products are about 2.4e3
//! (hidden) + 5.7e4 (heads: 570 rows, on average half of the 200 hidden units) = 6e4
//! multiply-adds = 1.2e5 flop per spectrum, dense 2.4e5; the kernels use whole 64-row tiles,
//! about 1.4e5 flop. 1.4e5 / 6.7e13 = 2.1 ns per spectrum (4.8e8 spectra/s) for both the
//! log-density and the sampler (one forward pass per sample). Bytes: 4 (C + D + 1) = 100 per
//! log-density and 4 (C + D) = 96 per sample: 0.03 ns at 3.35 TB/s, so the kernels are
//! compute-bound; the host-array path is bound by PCIe instead (100 B at ~25 GB/s = 4 ns).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::Gpu;
use crate::nn::Made;
use crate::{Error, Result};

#[cfg(feature = "cuda")]
mod cuda;

/// Rows per chunk set by [`set_max_chunk_rows`] (0: automatic).
static MAX_CHUNK_ROWS: AtomicUsize = AtomicUsize::new(0);

/// Caps the rows per chunk (0 restores the automatic choice). Results do not depend on the
/// chunk size; tests use this to run batches of several chunks.
pub fn set_max_chunk_rows(rows: usize) {
    MAX_CHUNK_ROWS.store(rows, Ordering::Relaxed);
}

/// The cap set by [`set_max_chunk_rows`], 0 for none.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn max_chunk_rows() -> usize {
    MAX_CHUNK_ROWS.load(Ordering::Relaxed)
}

/// A MADE-MoG model with its device copies: the GPU variants of the batch entry points.
/// Shareable across host threads (calls on one device are serialised, see [`crate::gpu`]).
pub struct GpuMade {
    made: Made,
    #[cfg(feature = "cuda")]
    uploads: cuda::Uploads,
}

impl std::fmt::Debug for GpuMade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuMade").field("made", &self.made).finish_non_exhaustive()
    }
}

impl std::ops::Deref for GpuMade {
    type Target = Made;

    fn deref(&self) -> &Made {
        &self.made
    }
}

impl GpuMade {
    /// Wraps a model; nothing is uploaded until a device is used.
    pub fn new(made: Made) -> Self {
        GpuMade {
            made,
            #[cfg(feature = "cuda")]
            uploads: cuda::Uploads::default(),
        }
    }

    /// The model.
    pub fn made(&self) -> &Made {
        &self.made
    }

    /// [`Made::log_prob`] on device `device`: `context` [n][C] (empty when C = 0), `x` [n][D],
    /// `log_prob` [n], host arrays.
    ///
    /// Errors: as [`Made::log_prob`] (checked first, nothing written); [`Error::NoDevice`] (no
    /// `cuda` feature, driver or such device); [`Error::Device`] (driver errors, out of device
    /// memory even for the smallest chunk).
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    pub fn log_prob(&self, device: usize, context: &[f32], x: &[f32], log_prob: &mut [f32]) -> Result<()> {
        let n = log_prob.len();
        self.made.check_batch(context, Some(("x", x, self.made.n_dims())), n)?;
        let gpu = Gpu::get(device)?;
        #[cfg(feature = "cuda")]
        {
            cuda::log_prob(self, &gpu, cuda::Rows::Host { context, x }, n, cuda::Out::Host(log_prob))
        }
        #[cfg(not(feature = "cuda"))]
        {
            match gpu.never {}
        }
    }

    /// [`Made::sample`] on device `device`: sample i conditioned on context row i and drawn
    /// from `Stream::new(seed, first_sample + i)`, the CPU's draws; `x_out` [n][D].
    ///
    /// Errors: as [`Made::sample`] (checked first); NoDevice and Device as
    /// [`log_prob`](Self::log_prob).
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    pub fn sample(
        &self,
        device: usize,
        context: &[f32],
        seed: u64,
        first_sample: u64,
        x_out: &mut [f32],
    ) -> Result<()> {
        let n = self.checked_rows(x_out.len(), "x_out")?;
        self.made.check_batch(context, None, n)?;
        let gpu = Gpu::get(device)?;
        #[cfg(feature = "cuda")]
        {
            let job = cuda::SampleJob { seed, first_sample, given: None };
            cuda::sample(self, &gpu, cuda::Rows::Host { context, x: &[] }, n, job, cuda::Out::Host(x_out))
        }
        #[cfg(not(feature = "cuda"))]
        {
            match gpu.never {}
        }
    }

    /// [`Made::sample_given`] on device `device`: `x` [n][D] holds the values of
    /// `given_dims` (the leading dimensions of the order); the others are drawn as on the CPU.
    ///
    /// Errors: as [`Made::sample_given`] (checked first); NoDevice and Device as
    /// [`log_prob`](Self::log_prob).
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    pub fn sample_given(
        &self,
        device: usize,
        context: &[f32],
        given_dims: &[usize],
        seed: u64,
        first_sample: u64,
        x: &mut [f32],
    ) -> Result<()> {
        self.made.check_given_dims(given_dims)?;
        let n = self.checked_rows(x.len(), "x")?;
        self.made.check_batch(context, None, n)?;
        for (i, row) in x.chunks(self.made.n_dims()).enumerate() {
            if let Some(&d) = given_dims.iter().find(|&&d| !row[d].is_finite()) {
                return Err(Error::InvalidArgument(format!("x[{i}][{d}] is {} (must be finite)", row[d])));
            }
        }
        let gpu = Gpu::get(device)?;
        #[cfg(feature = "cuda")]
        {
            let given = x.to_vec();
            let job = cuda::SampleJob { seed, first_sample, given: Some((&given, given_dims.len())) };
            cuda::sample(self, &gpu, cuda::Rows::Host { context, x: &[] }, n, job, cuda::Out::Host(x))
        }
        #[cfg(not(feature = "cuda"))]
        {
            match gpu.never {}
        }
    }

    /// [`log_prob`](Self::log_prob) on arrays in device `device`'s memory, given as device
    /// addresses: `context` [n][C] f32 (0 allowed when C = 0), `x` [n][D] f32, `log_prob` [n]
    /// f32. The inputs are checked for NaN and infinities on the device first (nothing written
    /// then); on overflow of the network `log_prob` is filled with NaN, as on the CPU.
    ///
    /// Errors: [`Error::NullPointer`] (a zero address), [`Error::InvalidArgument`] (n = 0,
    /// n x D too large, non-finite input, naming the row and column), the others as
    /// [`log_prob`](Self::log_prob).
    ///
    /// # Safety
    /// Each address must be 0 or point to that many values in device memory of `device`
    /// (allocated in its primary context, as the runtime API does), and `log_prob` must not
    /// overlap the inputs. An address that is not device memory makes the device fail with
    /// an illegal-address error, which spoils the context for the rest of the process.
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    pub unsafe fn log_prob_device(
        &self,
        device: usize,
        context: u64,
        x: u64,
        n: usize,
        log_prob: u64,
    ) -> Result<()> {
        self.check_device_rows(n)?;
        self.check_address(context, "context", self.made.n_context())?;
        self.check_address(x, "x", self.made.n_dims())?;
        self.check_address(log_prob, "log_prob", 1)?;
        let gpu = Gpu::get(device)?;
        #[cfg(feature = "cuda")]
        {
            cuda::log_prob(self, &gpu, cuda::Rows::Device { context, x }, n, cuda::Out::Device(log_prob))
        }
        #[cfg(not(feature = "cuda"))]
        {
            match gpu.never {}
        }
    }

    /// [`sample`](Self::sample) with `context` [n][C] f32 (0 allowed when C = 0) and `x_out`
    /// [n][D] f32 in device `device`'s memory, given as device addresses.
    ///
    /// Errors: as [`log_prob_device`](Self::log_prob_device).
    ///
    /// # Safety
    /// As [`log_prob_device`](Self::log_prob_device).
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    pub unsafe fn sample_device(
        &self,
        device: usize,
        context: u64,
        n: usize,
        seed: u64,
        first_sample: u64,
        x_out: u64,
    ) -> Result<()> {
        self.check_device_rows(n)?;
        self.check_address(context, "context", self.made.n_context())?;
        self.check_address(x_out, "x_out", 1)?;
        let gpu = Gpu::get(device)?;
        #[cfg(feature = "cuda")]
        {
            let job = cuda::SampleJob { seed, first_sample, given: None };
            cuda::sample(self, &gpu, cuda::Rows::Device { context, x: 0 }, n, job, cuda::Out::Device(x_out))
        }
        #[cfg(not(feature = "cuda"))]
        {
            match gpu.never {}
        }
    }

    /// n for an array of `len` values of D per row, or InvalidArgument.
    fn checked_rows(&self, len: usize, name: &str) -> Result<usize> {
        let d = self.made.n_dims();
        if !len.is_multiple_of(d) {
            return Err(Error::InvalidArgument(format!(
                "{name} has {len} values, not a multiple of n_dims = {d}"
            )));
        }
        Ok(len / d)
    }

    /// n >= 1 and every array of n rows addressable.
    fn check_device_rows(&self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::InvalidArgument("n = 0: the batch is empty".into()));
        }
        let widest = self.made.n_dims().max(self.made.n_context());
        if n.checked_mul(widest)
            .and_then(|v| v.checked_mul(4))
            .is_none_or(|bytes| bytes > isize::MAX as usize)
        {
            return Err(Error::InvalidArgument(format!("n = {n} is too large")));
        }
        Ok(())
    }

    /// A device address that must be non-zero when its rows have `width` > 0 values, and
    /// aligned for f32.
    fn check_address(&self, address: u64, name: &str, width: usize) -> Result<()> {
        if width > 0 && address == 0 {
            return Err(Error::NullPointer(format!("{name} is NULL (a zero device address)")));
        }
        if !address.is_multiple_of(4) {
            return Err(Error::InvalidArgument(format!(
                "{name} (device address {address:#x}) is not aligned for f32"
            )));
        }
        Ok(())
    }
}
