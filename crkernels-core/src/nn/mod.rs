//! Neural-network kernels in f32: masked dense layers, one-dimensional Gaussian mixtures and
//! the MADE with Gaussian-mixture outputs of SECRET (seed 001, section 3), with its loaders;
//! convolution, pooling, dense layers, activations and a small network runner for detector
//! data (seed 002: the SD-reconstruction architecture of 1-D and 2-D convolutions).
//!
//! - [`dense`]: degree-masked dense layers and their batched, SIMD-dispatched kernel;
//! - [`classifier`]: a dense ReLU classifier with its trainer, and the classifier two-sample
//!   test of SECRET section 3.2.2;
//! - [`mixture`]: 1-D Gaussian-mixture log-pdf, cdf, quantile and sampling (f64);
//! - [`made`]: the MADE-MoG model, its log-density and its one-pass autoregressive sampler;
//! - [`load`]: safetensors files in the plain `crkernels.made.v1` layout and nflows' layout;
//! - [`made_train`]: the training kernels of a MADE-MoG (forward, backward, Adam per panel);
//! - [`save`]: writing a model in the plain layout;
//! - [`conv`]: conv1d and conv2d (im2col or implicit GEMM, or direct), with padding helpers;
//! - [`pool`]: max and average pooling (1-D, 2-D) and global average pooling;
//! - [`linear`]: the dense layer y = W x + b on the same GEMM micro-kernels;
//! - [`activation`]: ReLU, leaky ReLU, ELU, sigmoid, tanh and a stable softmax;
//! - [`network`], [`network_load`]: a graph of these layers and its `crkernels.network.v1`
//!   file format.
//!
//! Stored weights may be f32, f64, f16 or bf16 (read with the `half` crate); they are widened
//! to f32 once at load: the SECRET-size model (120 000 weights, 480 kB) stays in the L2 cache,
//! where converting half-precision weights on every use would cost more than it saves.

pub mod activation;
pub mod adam;
pub mod classifier;
pub mod conv;
pub mod dense;
mod gemm;
pub mod linear;
pub mod load;
pub mod made;
pub mod made_train;
pub mod mixture;
pub mod network;
pub mod network_load;
pub mod pool;
pub mod save;

pub use load::LoadOptions;
pub use made::{
    Activation, LayerGrad, Made, MadeGrad, MadeGradWorkspace, MadeWorkspace, ScaleHead, StageView,
};
pub use network::Network;
