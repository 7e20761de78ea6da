//! What every model-file case must satisfy, shared by the structure-aware mutation test
//! (tests/loader_robustness.rs) and the coverage-guided fuzz targets (fuzz/fuzz_targets/):
//! the bytes go through the C ABI loaders (`crk_made_load_buffer_with_options`,
//! `crk_network_load_buffer`), and
//!
//! - loading allocates at most [`LOAD_BYTES_PER_FILE_BYTE`] x the file size +
//!   [`LOAD_SLACK_BYTES`] (measured with tests/alloc_support, whose `CountingAllocator` the
//!   binary installs as its global allocator, declaring that module too): a header that declares a 2^40-element tensor is refused before any
//!   allocation of that size;
//! - a refusal has a status other than CRK_ERR_PANIC, a non-empty message and no handle;
//! - a model that loads also runs: its sizes, order and workspace are queried, then
//!   log-densities, samples and conditional samples (MADE) or a network run on a few random
//!   rows, each returning CRK_OK or a documented status with a message, never a panic, and
//!   log-densities are never NaN.
//!
//! Any violation panics with the case's description, which the fuzzer reports as a crash.

#![allow(dead_code)] // each binary uses its own part

use std::ffi::CStr;

use crate::alloc_support::peak_allocation;
use crkernels::ffi::made::{
    crk_made, crk_made_dims, crk_made_free, crk_made_load_buffer_with_options, crk_made_load_options,
    crk_made_log_prob, crk_made_order, crk_made_sample, crk_made_sample_given, crk_made_workspace_bytes,
};
use crkernels::ffi::network::{
    crk_network, crk_network_free, crk_network_input_count, crk_network_input_shape, crk_network_load_buffer,
    crk_network_macs_per_sample, crk_network_output_size, crk_network_run, crk_network_workspace_bytes,
};
use crkernels::ffi::{
    CRK_ERR_FORMAT, CRK_ERR_INVALID_ARGUMENT, CRK_ERR_OUT_OF_DOMAIN, CRK_ERR_PANIC, CRK_OK,
    crk_last_error_message, crk_status,
};

/// Loading may allocate this many bytes per byte of the file (f16 weights widened to f32,
/// masked and packed copies padded to the SIMD panel width, the parsed JSON header) ...
pub const LOAD_BYTES_PER_FILE_BYTE: usize = 64;
/// ... plus this much whatever the file.
pub const LOAD_SLACK_BYTES: usize = 1 << 20;

/// A loaded network is run here only if a thread's workspace is at most this many bytes and a
/// row costs at most [`RUN_MAX_MACS`] multiply-adds (larger valid networks load, and are
/// counted as [`Outcome::LoadedTooLargeToRun`], so that a case stays within milliseconds).
pub const RUN_MAX_WORKSPACE_BYTES: usize = 64 << 20;
/// See [`RUN_MAX_WORKSPACE_BYTES`].
pub const RUN_MAX_MACS: u64 = 50_000_000;

/// What became of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Refused with a status and a message.
    Refused,
    /// Loaded and ran on a few rows.
    Loaded,
    /// A network that loaded but is larger than this harness runs (see [`RUN_MAX_MACS`]).
    LoadedTooLargeToRun,
}

fn last_message() -> String {
    // SAFETY: the library returns a valid NUL-terminated string that lives until the next call.
    unsafe { CStr::from_ptr(crk_last_error_message()) }.to_string_lossy().into_owned()
}

/// Panics unless `status` is CRK_OK or one of `allowed` with a message.
fn expect_status(status: crk_status, allowed: &[crk_status], what: &str) {
    if status == CRK_OK {
        return;
    }
    let message = last_message();
    assert!(status != CRK_ERR_PANIC && allowed.contains(&status), "{what}: status {status} ({message})");
    assert!(!message.is_empty(), "{what}: status {status} without a message");
}

/// Checks the load's allocation bound and, for a refusal, its status and message.
fn check_load(status: crk_status, handle_is_null: bool, peak: usize, len: usize, what: &str) -> bool {
    let bound = LOAD_BYTES_PER_FILE_BYTE * len + LOAD_SLACK_BYTES;
    assert!(peak <= bound, "{what}: loading a {len}-byte file allocated {peak} bytes (bound {bound})");
    if status == CRK_OK {
        assert!(!handle_is_null, "{what}: CRK_OK without a handle");
        return true;
    }
    assert!(handle_is_null, "{what}: status {status} but a handle was written");
    expect_status(status, &[CRK_ERR_FORMAT, CRK_ERR_INVALID_ARGUMENT], what);
    false
}

/// SplitMix64: a small deterministic generator (the rows here, the mutations of
/// tests/loader_robustness.rs).
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `n` values uniform in [-2, 2).
    fn values(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0).collect()
    }
}

/// Loads `bytes` as a MADE (with `options`, or none) and, when it loads, runs it.
pub fn exercise_made(bytes: &[u8], options: Option<&crk_made_load_options>) -> Outcome {
    let mut handle: *mut crk_made = std::ptr::null_mut();
    let options_ptr = options.map_or(std::ptr::null(), |o| o as *const _);
    // SAFETY: a live buffer of bytes.len() bytes; options NULL or a live struct; out writable.
    let (status, peak) = peak_allocation(|| unsafe {
        crk_made_load_buffer_with_options(bytes.as_ptr(), bytes.len(), options_ptr, &mut handle)
    });
    if !check_load(status, handle.is_null(), peak, bytes.len(), "crk_made_load_buffer") {
        return Outcome::Refused;
    }
    // SAFETY: handle is live until crk_made_free below; every array has the size passed.
    unsafe {
        let (mut c, mut d, mut k, mut work) = (0usize, 0usize, 0usize, 0usize);
        expect_status(crk_made_dims(handle, &mut c, &mut d, &mut k), &[], "crk_made_dims");
        assert!(d >= 1 && k >= 1, "a loaded MADE with D = {d}, K = {k}");
        expect_status(crk_made_workspace_bytes(handle, &mut work), &[], "crk_made_workspace_bytes");
        let mut order = vec![usize::MAX; d];
        expect_status(crk_made_order(handle, order.as_mut_ptr()), &[], "crk_made_order");
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert!(sorted.iter().enumerate().all(|(i, &o)| i == o), "order {order:?} is not a permutation");

        let n = 3;
        let mut rows = SplitMix64(bytes.len() as u64);
        let context = rows.values(n * c);
        let mut x = vec![0.0f32; n * d];
        let sampled = crk_made_sample(handle, context.as_ptr(), n, 7, 1, x.as_mut_ptr());
        expect_status(sampled, &[CRK_ERR_OUT_OF_DOMAIN], "crk_made_sample");
        let mut given = rows.values(n * d);
        let status =
            crk_made_sample_given(handle, context.as_ptr(), order.as_ptr(), 1, n, 8, 1, given.as_mut_ptr());
        expect_status(status, &[CRK_ERR_OUT_OF_DOMAIN], "crk_made_sample_given");
        let mut log_prob = vec![0.0f32; n];
        for (what, x) in [("sampled rows", &x), ("random rows", &rows.values(n * d))] {
            let status = crk_made_log_prob(handle, context.as_ptr(), x.as_ptr(), n, 1, log_prob.as_mut_ptr());
            // Samples of a mutated model may overflow f32 (infinite x: invalid argument).
            expect_status(status, &[CRK_ERR_OUT_OF_DOMAIN, CRK_ERR_INVALID_ARGUMENT], "crk_made_log_prob");
            if status == CRK_OK {
                assert!(
                    !log_prob.iter().any(|v| v.is_nan()),
                    "crk_made_log_prob on {what}: NaN {log_prob:?}"
                );
            }
        }
        crk_made_free(handle);
    }
    Outcome::Loaded
}

/// Loads `bytes` as a network and, when it loads and is small enough, runs it on two rows.
pub fn exercise_network(bytes: &[u8]) -> Outcome {
    let mut handle: *mut crk_network = std::ptr::null_mut();
    // SAFETY: a live buffer of bytes.len() bytes; out writable.
    let (status, peak) =
        peak_allocation(|| unsafe { crk_network_load_buffer(bytes.as_ptr(), bytes.len(), &mut handle) });
    if !check_load(status, handle.is_null(), peak, bytes.len(), "crk_network_load_buffer") {
        return Outcome::Refused;
    }
    // SAFETY: handle is live until crk_network_free below; every array has the size passed.
    unsafe {
        let (mut count, mut out_size, mut work, mut chunk, mut per_sample, mut macs) = (0, 0, 0, 0, 0, 0u64);
        expect_status(crk_network_input_count(handle, &mut count), &[], "crk_network_input_count");
        expect_status(crk_network_output_size(handle, &mut out_size), &[], "crk_network_output_size");
        let status = crk_network_workspace_bytes(handle, &mut work, &mut chunk, &mut per_sample);
        expect_status(status, &[], "crk_network_workspace_bytes");
        assert!(
            work <= crkernels::nn::network::MAX_WORKSPACE_BYTES && (1..=32).contains(&chunk),
            "workspace {work} bytes in chunks of {chunk}"
        );
        expect_status(crk_network_macs_per_sample(handle, &mut macs), &[], "crk_network_macs_per_sample");
        let mut sizes = Vec::with_capacity(count);
        for j in 0..count {
            let (mut shape, mut dims, mut size) = ([0usize; 8], 0usize, 0usize);
            let status = crk_network_input_shape(handle, j, shape.as_mut_ptr(), 8, &mut dims, &mut size);
            expect_status(status, &[], "crk_network_input_shape");
            sizes.push(size);
        }
        let batch = 2;
        let input_values: usize = sizes.iter().fold(0usize, |a, &s| a.saturating_add(s));
        let runnable = work <= RUN_MAX_WORKSPACE_BYTES
            && macs.saturating_mul(batch as u64) <= RUN_MAX_MACS
            && input_values.saturating_add(out_size) <= RUN_MAX_WORKSPACE_BYTES / 4 / batch;
        let outcome = if runnable {
            let mut rows = SplitMix64(bytes.len() as u64);
            let inputs: Vec<Vec<f32>> = sizes.iter().map(|&s| rows.values(batch * s)).collect();
            let pointers: Vec<*const f32> = inputs.iter().map(|v| v.as_ptr()).collect();
            let mut output = vec![0.0f32; batch * out_size];
            let status = crk_network_run(
                handle,
                pointers.as_ptr(),
                count,
                batch,
                1,
                output.as_mut_ptr(),
                output.len(),
            );
            expect_status(status, &[], "crk_network_run");
            Outcome::Loaded
        } else {
            Outcome::LoadedTooLargeToRun
        };
        crk_network_free(handle);
        outcome
    }
}
