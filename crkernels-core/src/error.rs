//! The error type of the Rust API and its mapping to the C status codes.

use alloc::string::String;
use core::fmt;

/// What went wrong, with a human-readable message.
///
/// Each kind maps to one `crk_status` code of the C ABI (see [`Error::status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A required pointer was null (C ABI only).
    NullPointer(String),
    /// An argument is malformed: NaN or infinite, wrong sign, wrong length, unknown enum value.
    InvalidArgument(String),
    /// An argument is well formed but outside the domain where the quantity is defined
    /// (an energy outside a table, a Klein-Nishina expansion whose bracket is <= 0).
    OutOfDomain(String),
    /// Reading or writing a file failed.
    Io(String),
    /// A file or buffer is corrupt or has the wrong layout.
    Format(String),
    /// No GPU or no CUDA driver is available.
    NoDevice(String),
    /// The GPU reported an error.
    Device(String),
    /// A long run was cancelled by its progress callback; finished results are valid.
    Cancelled(String),
}

impl Error {
    /// The C status code of this error (values fixed by the C ABI; 8 is CRK_ERR_PANIC).
    pub fn status(&self) -> i32 {
        match self {
            Error::NullPointer(_) => 1,
            Error::InvalidArgument(_) => 2,
            Error::OutOfDomain(_) => 3,
            Error::Io(_) => 4,
            Error::Format(_) => 5,
            Error::NoDevice(_) => 6,
            Error::Device(_) => 7,
            Error::Cancelled(_) => 9,
        }
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::NullPointer(m)
            | Error::InvalidArgument(m)
            | Error::OutOfDomain(m)
            | Error::Io(m)
            | Error::Format(m)
            | Error::NoDevice(m)
            | Error::Device(m)
            | Error::Cancelled(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Error::NullPointer(_) => "null pointer",
            Error::InvalidArgument(_) => "invalid argument",
            Error::OutOfDomain(_) => "out of domain",
            Error::Io(_) => "I/O error",
            Error::Format(_) => "format error",
            Error::NoDevice(_) => "no device",
            Error::Device(_) => "device error",
            Error::Cancelled(_) => "cancelled",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

// core::error::Error (Rust 1.81) is std::error::Error, also in no_std builds.
impl core::error::Error for Error {}

/// The library's result type.
pub type Result<T> = core::result::Result<T, Error>;

/// Builds an [`Error::InvalidArgument`] from a format string.
macro_rules! invalid {
    ($($arg:tt)*) => { $crate::error::Error::InvalidArgument(alloc::format!($($arg)*)) };
}
/// Builds an [`Error::OutOfDomain`] from a format string.
macro_rules! out_of_domain {
    ($($arg:tt)*) => { $crate::error::Error::OutOfDomain(alloc::format!($($arg)*)) };
}
pub(crate) use {invalid, out_of_domain};

/// Checks that `value` is finite and > 0; `what` names it (with its unit) in the message.
pub(crate) fn require_positive(what: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid!("{what} must be finite and > 0, got {value}"))
    }
}

/// Checks that `value` is finite and >= 0; `what` names it (with its unit) in the message.
pub(crate) fn require_non_negative(what: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid!("{what} must be finite and >= 0, got {value}"))
    }
}

/// Checks that `value` is finite; `what` names it (with its unit) in the message.
pub(crate) fn require_finite(what: &str, value: f64) -> Result<()> {
    if value.is_finite() { Ok(()) } else { Err(invalid!("{what} must be finite, got {value}")) }
}
