//! C ABI: GPU discovery (issue 7). The GPU variants of the batch kernels live beside their CPU
//! variants (ensemble.rs, made.rs, network.rs).

use core::ffi::c_char;

use super::{crk_status, guard, require_out, write_out};
use crate::error::{Error, Result};
use crate::gpu;

/// The number of CUDA devices into `*count`: CRK_OK and 0 where there is no CUDA driver, no
/// device, or where the library was built without the `cuda` feature.
///
/// Errors: CRK_ERR_NULL_POINTER (count); CRK_ERR_DEVICE (the driver is present but fails).
///
/// # Safety
/// `count` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_device_count(count: *mut i32) -> crk_status {
    guard(|| {
        require_out(count, "count")?;
        let n = gpu::device_count()?;
        // SAFETY: checked non-null; the caller promises it is writable.
        unsafe { write_out(count, i32::try_from(n).unwrap_or(i32::MAX), "count") }
    })
}

/// Device `device`'s name into `name` (NUL-terminated, cut to `capacity` bytes including the
/// NUL), its total and currently free memory [bytes] into `*total_bytes` and `*free_bytes`, and
/// its compute capability into `*major`, `*minor`. Any out-pointer but `name` may be NULL to
/// skip it; `name` may be NULL with capacity 0.
///
/// Errors: CRK_ERR_NO_DEVICE (no driver, no such device, or no `cuda` feature; the message
/// says which); CRK_ERR_NULL_POINTER (name with capacity > 0); CRK_ERR_DEVICE.
///
/// # Safety
/// `name` must be NULL or hold `capacity` writable bytes; the other pointers NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_device_info(
    device: i32,
    name: *mut c_char,
    capacity: usize,
    total_bytes: *mut u64,
    free_bytes: *mut u64,
    major: *mut i32,
    minor: *mut i32,
) -> crk_status {
    guard(|| {
        if capacity > 0 {
            require_out(name, "name")?;
        }
        let info = gpu::device_info(ordinal(device)?)?;
        if capacity > 0 {
            let bytes = info.name.as_bytes();
            let n = bytes.len().min(capacity - 1);
            // SAFETY: name holds capacity >= n + 1 writable bytes (the caller's promise).
            unsafe {
                core::ptr::copy_nonoverlapping(bytes.as_ptr(), name.cast::<u8>(), n);
                *name.add(n) = 0;
            }
        }
        // SAFETY (all four): NULL is skipped; otherwise the caller promises writable.
        unsafe {
            write_optional(total_bytes, info.total_bytes as u64);
            write_optional(free_bytes, info.free_bytes as u64);
            write_optional(major, info.compute_capability.0);
            write_optional(minor, info.compute_capability.1);
        }
        Ok(())
    })
}

/// A device ordinal from C: non-negative.
pub(crate) fn ordinal(device: i32) -> Result<usize> {
    usize::try_from(device).map_err(|_| Error::NoDevice(format!("device ordinal {device} is negative")))
}

/// Writes through `out` unless it is NULL.
///
/// # Safety
/// `out` must be NULL or writable.
unsafe fn write_optional<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-null; the caller promises writable.
        unsafe { out.write(value) };
    }
}
