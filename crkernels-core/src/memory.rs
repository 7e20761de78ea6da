//! Bounded working memory. Where the memory of a call grows with an argument (a feature count,
//! a source rate, a number of energies), the call checks its request against a documented
//! limit before allocating and fails with a message that names the argument, the memory it
//! would need and the limit; the vectors such a call needs are then reserved with
//! `try_reserve_exact`, so that an allocator that refuses them gives an error instead of
//! aborting the process. (On Linux a huge allocation may "succeed" and the process be killed
//! later when it touches the memory: the limits, not the allocator, are the protection.)

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Result, invalid};

/// `count` values of `T` in bytes, None on overflow.
pub fn bytes_of<T>(count: usize) -> Option<usize> {
    count.checked_mul(core::mem::size_of::<T>())
}

/// A size for a message: "1.5 GiB (1610612736 bytes)", or "more than 2^64 bytes" for None.
pub fn describe_bytes(bytes: Option<usize>) -> String {
    const KIB: f64 = 1024.0;
    match bytes {
        None => String::from("more than 2^64 bytes"),
        Some(b) => {
            let value = b as f64;
            let (scaled, unit) = if value >= KIB * KIB * KIB * KIB {
                (value / (KIB * KIB * KIB * KIB), "TiB")
            } else if value >= KIB * KIB * KIB {
                (value / (KIB * KIB * KIB), "GiB")
            } else if value >= KIB * KIB {
                (value / (KIB * KIB), "MiB")
            } else {
                return format!("{b} bytes");
            };
            format!("{scaled:.1} {unit} ({b} bytes)")
        }
    }
}

/// A vector of `len` default values, reserved with `try_reserve_exact`: an allocator that
/// refuses it gives an error naming `what` (not an abort, as `vec![0.0; len]` would).
pub fn try_filled<T: Clone + Default>(len: usize, what: &str) -> Result<Vec<T>> {
    let mut v = try_with_capacity(len, what)?;
    v.resize(len, T::default());
    Ok(v)
}

/// An empty vector with room for exactly `capacity` values, or an error naming `what`.
pub fn try_with_capacity<T>(capacity: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(capacity)
        .map_err(|_| invalid!("could not allocate {what}: {}", describe_bytes(bytes_of::<T>(capacity))))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(describe_bytes(Some(100)), "100 bytes");
        assert_eq!(describe_bytes(Some(3 << 29)), "1.5 GiB (1610612736 bytes)");
        assert_eq!(describe_bytes(None), "more than 2^64 bytes");
        assert_eq!(bytes_of::<f64>(usize::MAX), None);
    }

    #[test]
    fn a_refused_allocation_is_an_error() {
        let err = try_filled::<f64>(usize::MAX / 8, "a test buffer").unwrap_err();
        assert!(err.message().contains("a test buffer"), "{err}");
        assert_eq!(try_filled::<f64>(3, "x").unwrap(), alloc::vec![0.0; 3]);
    }
}
