//! The C ABI: status codes, the thread-local error message, and the panic guard every entry
//! point runs in. One file per domain; no numerics here.
//!
//! Conventions (DESIGN.md, "The C ABI"): every fallible function returns a [`crk_status`] and
//! writes its results through out-pointers; on failure nothing is written and
//! [`crk_last_error_message`] tells why. Enumerations arrive as plain integers and are
//! validated. Handles are immutable after construction and may be shared across threads.
#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::c_char;
use std::cell::RefCell;
use std::ffi::CString;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{Error, Result};

pub mod classifier;
pub mod ensemble;
pub mod gpu;
pub mod losses;
pub mod made;
pub mod network;
pub mod propagation;
pub mod stats;
pub mod surrogate;
pub mod train;
pub mod transport;

/// Status of a call: CRK_OK (0) or one of the CRK_ERR_* codes. Values are append-only: a code
/// is never renumbered or reused.
pub type crk_status = i32;
/// Success.
pub const CRK_OK: crk_status = 0;
/// A required pointer argument was NULL.
pub const CRK_ERR_NULL_POINTER: crk_status = 1;
/// An argument is malformed: NaN or infinite, wrong sign, wrong length, unknown enum value.
pub const CRK_ERR_INVALID_ARGUMENT: crk_status = 2;
/// An argument is outside the domain of the quantity (energy outside a table, a
/// Klein-Nishina expansion bracket <= 0).
pub const CRK_ERR_OUT_OF_DOMAIN: crk_status = 3;
/// A file could not be read or written.
pub const CRK_ERR_IO: crk_status = 4;
/// A file or buffer is corrupt or has the wrong layout.
pub const CRK_ERR_FORMAT: crk_status = 5;
/// No GPU or CUDA driver is available.
pub const CRK_ERR_NO_DEVICE: crk_status = 6;
/// The GPU reported an error.
pub const CRK_ERR_DEVICE: crk_status = 7;
/// A bug inside the library panicked; the call was abandoned (please report it).
pub const CRK_ERR_PANIC: crk_status = 8;
/// A long run was cancelled through its progress callback; finished results are valid.
pub const CRK_ERR_CANCELLED: crk_status = 9;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // Interior NUL bytes cannot appear in a C string: replace them.
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = c);
}

fn clear_last_error() {
    LAST_ERROR.with(|slot| {
        let mut message = slot.borrow_mut();
        if !message.as_bytes().is_empty() {
            *message = CString::default();
        }
    });
}

/// Runs the body of an entry point: maps its `Err` to a status and a message, and catches any
/// panic (which would otherwise abort the host: Rust >= 1.81 aborts on unwinding out of
/// `extern "C"`). A successful call clears the message.
pub(crate) fn guard(body: impl FnOnce() -> Result<()>) -> crk_status {
    // A bad CRKERNELS_ISA is reported by the first call, whatever it is.
    let body = || {
        crate::math::simd::VectorIsa::selected()?;
        body()
    };
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            clear_last_error();
            CRK_OK
        }
        Ok(Err(err)) => {
            set_last_error(&err.to_string());
            err.status()
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            set_last_error(&format!("internal error (panic): {what}"));
            CRK_ERR_PANIC
        }
    }
}

/// Releases a handle made by [`write_handle`]; NULL is a no-op. A panic in a destructor is
/// swallowed (a free function has no status to return).
///
/// # Safety
/// `ptr` must be NULL or a live handle made by this library, not used afterwards.
pub(crate) unsafe fn free_handle<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: made by Box::into_raw in write_handle; the caller gives it up.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(ptr) })));
    }
}

/// Borrows a caller's input array of `n` values; NULL is allowed when n = 0.
///
/// # Safety
/// `ptr` must be NULL or point to `n` readable, initialised values that outlive the call.
pub(crate) unsafe fn input<'a, T>(ptr: *const T, n: usize, name: &str) -> Result<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    check_pointer(ptr, n, name)?;
    // SAFETY: non-null, aligned, and the caller promises n readable values.
    Ok(unsafe { core::slice::from_raw_parts(ptr, n) })
}

/// Borrows a caller's output array of `n` values; NULL is allowed when n = 0.
///
/// # Safety
/// `ptr` must be NULL or point to `n` writable values that no input of the call overlaps
/// (callers copy overlapping inputs first, see [`overlaps`]).
pub(crate) unsafe fn output<'a, T>(ptr: *mut T, n: usize, name: &str) -> Result<&'a mut [T]> {
    if n == 0 {
        return Ok(&mut []);
    }
    check_pointer(ptr, n, name)?;
    // SAFETY: non-null, aligned, and the caller promises n writable values.
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, n) })
}

fn check_pointer<T>(ptr: *const T, n: usize, name: &str) -> Result<()> {
    if ptr.is_null() {
        return Err(Error::NullPointer(format!("{name} is NULL (with n = {n})")));
    }
    if !ptr.is_aligned() {
        return Err(Error::InvalidArgument(format!("{name} is not aligned for its element type")));
    }
    if n.checked_mul(size_of::<T>()).is_none_or(|bytes| bytes > isize::MAX as usize) {
        return Err(Error::InvalidArgument(format!("{name}: n = {n} is too large")));
    }
    Ok(())
}

/// Whether the byte ranges of `n` values at `a` and at `b` overlap (an in-place call).
pub(crate) fn overlaps<T>(a: *const T, b: *const T, n: usize) -> bool {
    let bytes = n.saturating_mul(size_of::<T>());
    let (a, b) = (a as usize, b as usize);
    a < b.saturating_add(bytes) && b < a.saturating_add(bytes)
}

/// Borrows an input array that may be the output array too: copies it when they overlap, so
/// that in-place calls (output = input) work.
///
/// # Safety
/// As [`input`].
pub(crate) unsafe fn input_maybe_aliased<'a, T: Copy>(
    ptr: *const T,
    n: usize,
    output: *const T,
    name: &str,
) -> Result<std::borrow::Cow<'a, [T]>> {
    // SAFETY: forwarded from the caller.
    let slice = unsafe { input(ptr, n, name)? };
    if n > 0 && overlaps(ptr, output, n) {
        Ok(std::borrow::Cow::Owned(slice.to_vec()))
    } else {
        Ok(std::borrow::Cow::Borrowed(slice))
    }
}

/// Writes a freshly built handle to `out`.
///
/// # Safety
/// `out` must be NULL or writable.
pub(crate) unsafe fn write_handle<T>(out: *mut *mut T, value: T) -> Result<()> {
    // SAFETY: checked non-null; the caller promises it is writable.
    unsafe { *out = Box::into_raw(Box::new(value)) };
    Ok(())
}

/// Writes one value through a caller's out-pointer, or fails with CRK_ERR_NULL_POINTER.
///
/// # Safety
/// `out` must be NULL or writable.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T, name: &str) -> Result<()> {
    if out.is_null() {
        return Err(Error::NullPointer(format!("{name} is NULL")));
    }
    // SAFETY: checked non-null; the caller promises it is writable.
    unsafe { out.write(value) };
    Ok(())
}

/// Checks that an out-pointer is not NULL (before any work is done).
pub(crate) fn require_out<T>(out: *mut T, name: &str) -> Result<()> {
    if out.is_null() { Err(Error::NullPointer(format!("{name} is NULL"))) } else { Ok(()) }
}

/// Checks that an out-pointer for a handle is not NULL, and sets it to NULL until success.
///
/// # Safety
/// `out` must be NULL or writable.
pub(crate) unsafe fn prepare_handle_out<T>(out: *mut *mut T, name: &str) -> Result<()> {
    if out.is_null() {
        return Err(Error::NullPointer(format!("{name} is NULL")));
    }
    // SAFETY: non-null; the caller promises it is writable.
    unsafe { *out = core::ptr::null_mut() };
    Ok(())
}

/// Borrows a handle, or fails with CRK_ERR_NULL_POINTER.
///
/// # Safety
/// `ptr` must be NULL or a live handle made by this library.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T, name: &str) -> Result<&'a T> {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ptr.as_ref() }.ok_or_else(|| Error::NullPointer(format!("{name} is NULL")))
}

/// The reason for the last failed call on this thread, in English; an empty string when the
/// last call succeeded or none failed. The pointer stays valid until the next call into the
/// library on this thread. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn crk_last_error_message() -> *const c_char {
    catch_unwind(|| LAST_ERROR.with(|slot| slot.borrow().as_ptr())).unwrap_or(c"".as_ptr())
}

/// The library version, "MAJOR.MINOR.PATCH" (a static string). Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn crk_version() -> *const c_char {
    const VERSION: &std::ffi::CStr =
        match std::ffi::CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("version has no NUL"),
        };
    VERSION.as_ptr()
}

/// The vector instruction set the kernels use, as a static string: "baseline", "avx2",
/// "avx512" or "neon". It is the widest set the CPU has, or the one the environment variable
/// CRKERNELS_ISA names (read once, at the first call into the library). Where CRKERNELS_ISA
/// names an unknown set or one this CPU cannot run, every fallible call fails with
/// CRK_ERR_INVALID_ARGUMENT and a message naming the value and the sets available, and this
/// returns "baseline". Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn crk_vector_isa() -> *const c_char {
    use crate::math::simd::VectorIsa;
    let name: &'static std::ffi::CStr = match VectorIsa::detect() {
        VectorIsa::Baseline => c"baseline",
        VectorIsa::Neon => c"neon",
        VectorIsa::Avx2 => c"avx2",
        VectorIsa::Avx512 => c"avx512",
    };
    name.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last_message() -> String {
        // SAFETY: crk_last_error_message never returns NULL and the string lives until the
        // next call on this thread.
        unsafe { CStr::from_ptr(crk_last_error_message()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = guard(|| panic!("deliberate"));
        assert_eq!(status, CRK_ERR_PANIC);
        assert!(last_message().contains("deliberate"), "{}", last_message());
        assert_eq!(guard(|| Ok(())), CRK_OK);
        assert_eq!(last_message(), "");
    }

    #[test]
    fn errors_map_to_their_status() {
        let status = guard(|| Err(Error::OutOfDomain("energy 1e9 GeV above the table".into())));
        assert_eq!(status, CRK_ERR_OUT_OF_DOMAIN);
        assert_eq!(last_message(), "out of domain: energy 1e9 GeV above the table");
        for (err, code) in [
            (Error::NullPointer(String::new()), CRK_ERR_NULL_POINTER),
            (Error::InvalidArgument(String::new()), CRK_ERR_INVALID_ARGUMENT),
            (Error::Io(String::new()), CRK_ERR_IO),
            (Error::Format(String::new()), CRK_ERR_FORMAT),
            (Error::NoDevice(String::new()), CRK_ERR_NO_DEVICE),
            (Error::Device(String::new()), CRK_ERR_DEVICE),
            (Error::Cancelled(String::new()), CRK_ERR_CANCELLED),
        ] {
            assert_eq!(guard(|| Err(err)), code);
        }
    }

    #[test]
    fn messages_are_per_thread() {
        assert_eq!(guard(|| Err(Error::Io("here".into()))), CRK_ERR_IO);
        let other = std::thread::spawn(last_message).join().unwrap();
        assert_eq!(other, "");
        assert!(last_message().contains("here"));
    }

    #[test]
    fn overlap_detection() {
        let a = [0.0f64; 8];
        let p = a.as_ptr();
        assert!(overlaps(p, p, 4));
        // SAFETY: in bounds of `a`.
        assert!(overlaps(p, unsafe { p.add(3) }, 4));
        // SAFETY: in bounds of `a`.
        assert!(!overlaps(p, unsafe { p.add(4) }, 4));
    }

    #[test]
    fn handles_can_be_shared_across_threads() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<losses::crk_losses>();
        send_and_sync::<transport::crk_transport>();
        send_and_sync::<made::crk_made>();
        send_and_sync::<network::crk_network>();
        send_and_sync::<surrogate::crk_surrogate>();
    }

    #[test]
    fn version_is_the_package_version() {
        // SAFETY: a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(crk_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
