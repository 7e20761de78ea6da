//! The `no_std + alloc` core of crkernels: units, math and the physics kernels.
//!
//! Physics is in `f64`, in the units the field uses (GeV, kpc, Myr, cm^2/s, eV/cm^3, K,
//! microgauss): see [`units`]. Without the `std` feature the math functions come from `libm`.
//! The `crkernels` crate re-exports everything here and adds the C ABI.
//!
//! Module map (one direction of dependency: `stats` -> `physics`, `nn` -> `math`, `rng`, `units`):
//! - [`units`]: physical constants and unit conversions, the single source of truth;
//! - [`math`]: the math-function facade, Chebyshev fits, piecewise polynomial tables;
//! - [`physics`]: photon fields, energy losses (Thomson, Klein-Nishina), transport integrals,
//!   diffusion and injection models, solar modulation;
//! - [`stats`]: incomplete gamma, chi2 p-values and NLLs, the modulation fit, the ridge surrogate;
//! - [`nn`]: masked dense layers, Gaussian mixtures and the MADE emulator (f32), with loaders.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]
// Units are written in brackets ("energy [GeV]"), which rustdoc would take for links.
#![allow(rustdoc::broken_intra_doc_links)]

extern crate alloc;

mod batch;
pub mod error;
pub mod math;
pub mod memory;
pub mod nn;
pub mod physics;
pub mod rng;
pub mod stats;
pub mod units;

pub use error::{Error, Result};

/// The library version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
