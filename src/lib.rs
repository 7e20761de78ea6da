//! crkernels: numerical kernels for cosmic-ray physics and the neural emulators built on it.
//!
//! The core is `no_std + alloc` (with `libm` for the math functions); the `std` feature adds
//! the C ABI ([`ffi`]), thread-local error messages and threads. Physics is in `f64`, in the
//! units the field uses (GeV, kpc, Myr, cm^2/s, eV/cm^3, K, microgauss): see [`units`].
//!
//! Module map (one direction of dependency: `ffi` -> `physics` -> `math`, `units`):
//! - [`units`]: physical constants and unit conversions, the single source of truth;
//! - [`math`]: the math-function facade, Chebyshev fits, piecewise polynomial tables, quadrature;
//! - [`physics`]: photon fields, energy losses (Thomson, Klein-Nishina), transport integrals;
//! - [`ffi`]: the C ABI (std builds), thin wrappers with no numerics.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod error;
pub mod math;
pub mod physics;
pub mod units;

#[cfg(feature = "std")]
pub mod ffi;

pub use error::{Error, Result};

/// The library version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
