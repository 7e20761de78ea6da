//! crkernels: numerical kernels for cosmic-ray physics and the neural emulators built on it.
//!
//! The numerics live in the `no_std + alloc` crate `crkernels-core`, re-exported here
//! ([`units`], [`math`], [`physics`], [`nn`], [`stats`]); this crate adds what needs std: the C ABI
//! ([`ffi`]: thread-local error messages, `catch_unwind`), threads ([`parallel`] for the
//! ensemble, [`emulator`] for the MADE emulator, [`network`] for convolutions and detector
//! networks) and file loading. It is built as rlib, cdylib
//! and staticlib.
//! The split exists because a cdylib or staticlib cannot be built without std (it must
//! provide a panic handler and an allocator), while the core must build without it:
//! `cargo build --no-default-features` builds the core with `libm` and no std.
#![warn(missing_docs)]
// Units are written in brackets ("energy [GeV]"), which rustdoc would take for links.
#![allow(rustdoc::broken_intra_doc_links)]
#![doc = include_str!("../README.md")]

pub use crkernels_core::{Error, Result, error, math, nn, physics, rng, stats, units};

pub mod emulator;
pub mod ffi;
pub mod gpu;
pub mod inference;
pub mod network;
pub mod parallel;
mod pool;
pub mod secret;
pub mod train;

/// The library version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
