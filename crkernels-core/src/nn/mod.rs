//! Neural-network kernels in f32: masked dense layers, one-dimensional Gaussian mixtures and
//! the MADE with Gaussian-mixture outputs of SECRET (seed 001, section 3), with its loaders.
//!
//! - [`dense`]: degree-masked dense layers and their batched, SIMD-dispatched kernel;
//! - [`mixture`]: 1-D Gaussian-mixture log-pdf, cdf, quantile and sampling (f64);
//! - [`made`]: the MADE-MoG model, its log-density and its one-pass autoregressive sampler;
//! - [`load`]: safetensors files in the plain `crkernels.made.v1` layout and nflows' layout.
//!
//! Stored weights may be f32, f64, f16 or bf16 (read with the `half` crate); they are widened
//! to f32 once at load: the SECRET-size model (120 000 weights, 480 kB) stays in the L2 cache,
//! where converting half-precision weights on every use would cost more than it saves.

pub mod dense;
pub mod load;
pub mod made;
pub mod mixture;

pub use load::LoadOptions;
pub use made::{Activation, Made, MadeWorkspace};
