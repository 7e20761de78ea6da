//! The training kernels of a MADE-MoG (issue 16): a trainable network, its forward and
//! backward pass over a block of minibatch rows, and the per-unit gradient and Adam step. No
//! threads and no allocation in the step: the threaded trainer (`crkernels::train`) calls
//! [`TrainModel::forward_backward_rows`] on disjoint row ranges, then, after every thread has
//! finished, [`TrainModel::update_panels`] on disjoint ranges of output panels.
//!
//! # The network (SECRET section 3.1, eqs. 3.4 to 3.9; Germain et al. 2015)
//!
//! Inputs are the standardised context (degrees 1..C, the SECRET order, or all 0, plain
//! conditioning) then the standardised data, in the autoregressive order (degrees C + 1 ..
//! C + D; the data dimensions sorted by degree). Hidden layer l has H_l units with degrees
//! drawn uniformly from [lowest degree of its input layer (1 without context), C + D - 1]
//! (MADE's random connectivity, the paper's choice), sorted so that every unit reads a prefix
//! of its input layer (deg(out) >= deg(in)). The heads are a last "layer" of 3 D K rows
//! t 3K + {0, K, 2K} + k (logit, mean, log sigma of internal dimension t, component k),
//! reading the prefix of last-hidden units with degree < the degree of t.
//!
//! # A step (minibatch of B rows)
//!
//! - Forward, rows independent: y = act(W x + b) per layer (only each unit's prefix of inputs
//!   is multiplied: about half of a dense layer's multiply-adds), then per row and dimension
//!   the mixture log-density (natural-log units), loss = mean over rows of
//!   -sum_d ln p_d(xs_d): a_k = l_k - r_k - z_k^2 / 2, z_k = (xs - mu_k) e^(-r_k),
//!   ln p_d = lse(a) - lse(l) - ln sqrt(2 pi).
//! - Backward, rows independent: with responsibilities w = softmax(a) and weights pi =
//!   softmax(l), d loss / d l_k = (pi_k - w_k) / B, d / d mu_k = -w_k z_k e^(-r_k) / B,
//!   d / d r_k = w_k (1 - z_k^2) / B; then delta_in = W^T delta_out (again only inside the
//!   mask) times act'(y), with act' from the output y: sigmoid y (1 - y), tanh 1 - y^2, relu
//!   [y > 0], leaky relu 1 or 0.01, elu 1 or y + 1.
//! - Per output unit o: dW[o][i] = sum over rows r (in minibatch order) of delta[r][o]
//!   in[r][i] for the i inside the mask, db[o] = sum_r delta[r][o], then Adam
//!   ([`crate::nn::adam`]) on that unit's row.
//!
//! Every value is computed by the same operations whichever thread or row block it lands in
//! (each product is a sum over its inner index in increasing order on the GEMM micro-kernel),
//! so a trained model does not depend on the thread count.
//!
//! # Layout
//!
//! One minibatch row is a record of `row_stride` floats: the layer-0 input, then for each
//! layer its output and its delta, each padded to a multiple of [`PAD`] with zeros (so that a
//! micro-kernel may read a whole column block). A layer's weights are stored row-major with
//! rows padded to [`PAD`] (masked and padding entries stay exactly 0: their gradient is never
//! written), then its bias; a transposed copy in column panels of the kernel's NR outputs
//! ([n_in][NR] per panel) feeds the forward pass and is refreshed by the thread that owns the
//! panel.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use crate::error::{Error, Result};
use crate::math::exp_branchless_f32;
use crate::math::simd::VectorIsa;
use crate::nn::activation::ActivationFn;
use crate::nn::adam::AdamStep;
use crate::nn::gemm::{Init, Kernel, Packed, pack_a_panel};
use crate::nn::made::{Activation, HeadsSpec, LayerSpec, MadeSpec, ScaleHead, Standardize};
use crate::rng::Stream;

/// Activations, weights and bias rows are padded to a multiple of this many floats (the widest
/// micro-kernel's NR).
pub const PAD: usize = 32;

/// Row tiles packed together in the forward and backward passes (each weight panel is then
/// applied to all of them while it is in the cache).
const ROW_GROUP_TILES: usize = 8;

/// Minibatch rows per chunk of the weight-gradient sums (see `weight_gradients`).
const GRADIENT_CHUNK: usize = 128;

/// Floats between the weight-gradient panels (and blocks) of a row chunk, past their own
/// values: a panel of MR x 128 rows is 4 KiB, so without this skew the 72 panels that one
/// record's deltas go to would all fall in one set of the L1 cache (measured: the copy into
/// them took 40% of the update).
const BLOCK_SKEW: usize = 16;

/// The most hidden layers a trainer builds (the C contract's `hidden_units[8]`).
pub const MAX_HIDDEN_LAYERS: usize = 8;

/// Philox stream numbers of a seed (the minibatch order of epoch e uses stream
/// `STREAM_EPOCHS + e`).
pub const STREAM_INIT: u64 = 0;
/// The train/validation split.
pub const STREAM_SPLIT: u64 = 1;
/// The first epoch's shuffle.
pub const STREAM_EPOCHS: u64 = 1 << 32;

/// ln sqrt(2 pi).
const HALF_LN_2PI_F32: f32 = 0.918_938_5;

fn round_up(n: usize, multiple: usize) -> usize {
    n.div_ceil(multiple) * multiple
}

/// How the data dimensions are ordered in the autoregressive factorisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataOrder {
    /// A random permutation drawn from the seed (the paper's choice: "imperative").
    Random,
    /// The user's order 1..D.
    Natural,
}

/// What a trainable MADE-MoG looks like.
#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    /// Context (conditioning) inputs C.
    pub n_context: usize,
    /// Whether the context takes degrees 1..C (SECRET: the parameters first in the order) or
    /// all 0 (plain conditioning).
    pub secret_context: bool,
    /// Data dimensions D >= 1.
    pub n_dims: usize,
    /// Units per hidden layer (1 to [`MAX_HIDDEN_LAYERS`] layers, each >= 1).
    pub hidden_units: Vec<usize>,
    /// Mixture components K >= 1.
    pub n_components: usize,
    /// The hidden layers' nonlinearity.
    pub activation: Activation,
    /// The data order.
    pub order: DataOrder,
}

impl Architecture {
    /// The degree before the first data dimension: C with SECRET context degrees, else 0.
    fn data_degree_base(&self) -> usize {
        if self.secret_context { self.n_context } else { 0 }
    }

    /// Checks the sizes.
    ///
    /// Errors: [`Error::InvalidArgument`] for D = 0, no or more than 8 hidden layers, a layer
    /// of 0 units, K = 0, the identity activation, or sizes whose parameters overflow.
    pub fn validate(&self) -> Result<()> {
        if self.n_dims == 0 {
            return Err(invalid("the data need at least one dimension (n_dims = 0)"));
        }
        if self.hidden_units.is_empty() || self.hidden_units.len() > MAX_HIDDEN_LAYERS {
            return Err(Error::InvalidArgument(alloc::format!(
                "a MADE needs 1 to {MAX_HIDDEN_LAYERS} hidden layers, got {}",
                self.hidden_units.len()
            )));
        }
        if let Some(l) = self.hidden_units.iter().position(|&h| h == 0) {
            return Err(Error::InvalidArgument(alloc::format!("hidden layer {l} has 0 units")));
        }
        if self.n_components == 0 {
            return Err(invalid("a mixture needs at least one component (n_components = 0)"));
        }
        if self.activation == Activation::Identity {
            return Err(invalid("the identity is not a hidden activation a trainer builds"));
        }
        let too_big = || invalid("the network's sizes overflow (fewer units, dimensions or components)");
        let heads =
            self.n_dims.checked_mul(self.n_components).and_then(|v| v.checked_mul(3)).ok_or_else(too_big)?;
        let mut n_in = self.n_context.checked_add(self.n_dims).ok_or_else(too_big)?;
        let mut total = 0usize;
        for &h in self.hidden_units.iter().chain(core::iter::once(&heads)) {
            if h > 1 << 24 || n_in > 1 << 24 {
                return Err(too_big());
            }
            total = total.checked_add((round_up(n_in, PAD) + 1) * h).ok_or_else(too_big)?;
            n_in = h;
        }
        if total > 1 << 31 {
            return Err(too_big());
        }
        Ok(())
    }
}

fn invalid(message: &str) -> Error {
    Error::InvalidArgument(message.into())
}

/// One masked dense layer of a [`TrainModel`] (the heads are the last one).
#[derive(Clone, Debug)]
struct Layer {
    n_in: usize,
    in_stride: usize,
    n_out: usize,
    out_stride: usize,
    /// Degrees of the outputs, increasing (the heads: the degree of each row's dimension).
    degrees: Vec<i64>,
    /// Inputs read by each output (a prefix of the degree-sorted inputs).
    prefix: Vec<usize>,
    /// None: the heads (no activation).
    activation: Option<ActivationFn>,
    /// Offsets of the weights ([n_out][in_stride]) and the bias ([n_out]) in the parameters.
    weight_at: usize,
    bias_at: usize,
    /// Offsets of this layer's fields in a row record.
    input_at: usize,
    output_at: usize,
    delta_at: usize,
    /// Per column block of NR inputs (backward): the first output whose prefix reaches into it.
    first_reader: Vec<usize>,
}

/// A trainable MADE-MoG: parameters, Adam's moments and the structure (see the module doc).
#[derive(Clone, Debug)]
pub struct TrainModel {
    arch: Architecture,
    kernel: Kernel,
    /// Internal data position t -> the user's dimension.
    data_order: Vec<usize>,
    /// Degrees of the layer-0 inputs: context (user order) then data (internal order).
    input_degrees: Vec<i64>,
    layers: Vec<Layer>,
    row_stride: usize,
    params: Vec<f32>,
    adam_m: Vec<f32>,
    adam_v: Vec<f32>,
    /// Per layer, the transposed weights in panels of NR outputs ([n_in][NR] each) and the
    /// bias padded to whole panels.
    transposed: Vec<Vec<f32>>,
    bias_padded: Vec<Vec<f32>>,
    standardize: Standardize,
}

/// Per-thread scratch of the step (packed row panels and one gradient tile).
#[derive(Clone, Debug)]
pub struct TrainScratch {
    panel: Vec<f32>,
    sums: Vec<f32>,
    /// [outputs of the widest layer][its input row]: the weight gradients being summed.
    grad_rows: Vec<f32>,
    /// One MR x NR tile of a later row chunk.
    tile: Vec<f32>,
    /// A row chunk's deltas of the outputs being updated, packed as the micro-kernel's A
    /// panels ([output block][row][MR]), and its inputs as B blocks ([column block][row][NR]):
    /// the tiles then read contiguous memory instead of one record (a page apart) per row.
    delta_panels: Vec<f32>,
    input_blocks: Vec<f32>,
    /// 12 arrays of D K values: one row's mixture, component-major within each dimension.
    mixture: Vec<f32>,
}

/// One owned range of output panels (see [`TrainModel::panels`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PanelRange {
    /// The layer (the heads last).
    pub layer: usize,
    /// Panels of NR outputs.
    pub panels: (usize, usize),
}

impl TrainModel {
    /// A freshly initialised model: the order, the hidden degrees and the weights drawn from
    /// `seed` (stream [`STREAM_INIT`]); weights and biases uniform in +-1 / sqrt(fan_in) (PyTorch's
    /// `nn.Linear` default; fan_in counts every input, masked or not), masked weights 0.
    /// `standardize` (user order) is stored with the model and used by [`Self::to_spec`].
    ///
    /// Errors: [`Architecture::validate`]'s.
    pub fn new(arch: Architecture, standardize: Standardize, seed: u64) -> Result<Self> {
        Self::with_isa(arch, standardize, seed, VectorIsa::selected()?)
    }

    /// As [`Self::new`] on the micro-kernel of a given instruction set (tests compare them).
    pub fn with_isa(arch: Architecture, standardize: Standardize, seed: u64, isa: VectorIsa) -> Result<Self> {
        arch.validate()?;
        let kernel = Kernel::for_isa(isa.require()?);
        let (c, d, k) = (arch.n_context, arch.n_dims, arch.n_components);
        let mut rng = Stream::new(seed, STREAM_INIT);
        let mut data_order: Vec<usize> = (0..d).collect();
        if arch.order == DataOrder::Random {
            rng.shuffle(&mut data_order);
        }
        let base = arch.data_degree_base();
        let mut input_degrees: Vec<i64> =
            (0..c).map(|i| if arch.secret_context { i as i64 + 1 } else { 0 }).collect();
        input_degrees.extend((0..d).map(|t| (base + 1 + t) as i64));
        let highest_hidden = (base + d) as i64 - 1;

        let mut layers = Vec::new();
        let mut in_degrees = input_degrees.clone();
        let mut lowest = if c > 0 && !arch.secret_context { 0 } else { 1 };
        let mut offset = 0usize;
        let mut field = round_up(c + d, PAD);
        let mut input_at = 0;
        for &h in &arch.hidden_units {
            // Degrees in [lowest, highest_hidden]; with one dimension and no context that range
            // is empty and the units get the highest data degree (they feed no output).
            let mut degrees: Vec<i64> = (0..h)
                .map(|_| {
                    if lowest > highest_hidden {
                        highest_hidden + 1
                    } else {
                        let span = (highest_hidden - lowest + 1) as f64;
                        lowest + ((rng.uniform() * span) as i64).min(highest_hidden - lowest)
                    }
                })
                .collect();
            degrees.sort_unstable();
            let prefix = degrees.iter().map(|&g| in_degrees.iter().filter(|&&m| m <= g).count()).collect();
            lowest = degrees[0];
            let layer = Layer::new(
                (in_degrees.len(), input_at),
                h,
                degrees.clone(),
                prefix,
                arch.activation.function(),
                (&mut offset, &mut field),
                kernel,
            );
            input_at = layer.output_at;
            layers.push(layer);
            in_degrees = degrees;
        }
        let mut head_degrees = Vec::with_capacity(3 * d * k);
        for t in 0..d {
            head_degrees.extend(core::iter::repeat_n((base + 1 + t) as i64, 3 * k));
        }
        let head_prefix =
            head_degrees.iter().map(|&g| in_degrees.iter().filter(|&&m| m < g).count()).collect();
        layers.push(Layer::new(
            (in_degrees.len(), input_at),
            3 * d * k,
            head_degrees,
            head_prefix,
            None,
            (&mut offset, &mut field),
            kernel,
        ));

        let mut params = vec![0.0f32; offset];
        for layer in &layers {
            let bound = 1.0 / crate::math::sqrt(layer.n_in as f64);
            for o in 0..layer.n_out {
                let row = &mut params[layer.weight_at + o * layer.in_stride..][..layer.n_in];
                for (i, w) in row.iter_mut().enumerate() {
                    let u = (2.0 * rng.uniform() - 1.0) * bound;
                    if i < layer.prefix[o] {
                        *w = u as f32;
                    }
                }
                params[layer.bias_at + o] = ((2.0 * rng.uniform() - 1.0) * bound) as f32;
            }
        }
        let mut model = Self {
            arch,
            kernel,
            data_order,
            input_degrees,
            row_stride: field,
            adam_m: vec![0.0; params.len()],
            adam_v: vec![0.0; params.len()],
            transposed: layers.iter().map(|l| vec![0.0; l.out_stride_nr(kernel) * l.n_in]).collect(),
            bias_padded: layers.iter().map(|l| vec![0.0; l.out_stride_nr(kernel)]).collect(),
            layers,
            params,
            standardize,
        };
        for l in 0..model.layers.len() {
            let panels = model.layers[l].n_panels(kernel);
            model.refresh_transposed(l, 0..panels);
        }
        Ok(model)
    }

    /// The architecture.
    pub fn architecture(&self) -> &Architecture {
        &self.arch
    }

    /// Floats per minibatch row record.
    pub fn row_stride(&self) -> usize {
        self.row_stride
    }

    /// All parameters (weights, padding, biases), Adam's first and second moments.
    pub fn state(&self) -> (&[f32], &[f32], &[f32]) {
        (&self.params, &self.adam_m, &self.adam_v)
    }

    /// Replaces the parameters and Adam's state (from [`Self::state`] of a model of the same
    /// architecture and seed: a checkpoint).
    ///
    /// Errors: [`Error::InvalidArgument`] for other lengths or nonzero masked entries.
    pub fn set_state(&mut self, params: &[f32], m: &[f32], v: &[f32]) -> Result<()> {
        let n = self.params.len();
        if params.len() != n || m.len() != n || v.len() != n {
            return Err(Error::InvalidArgument(alloc::format!(
                "the state holds {}, {} and {} values, this model {n}",
                params.len(),
                m.len(),
                v.len()
            )));
        }
        for layer in &self.layers {
            for o in 0..layer.n_out {
                let row = layer.weight_at + o * layer.in_stride;
                for array in [params, m, v] {
                    if array[row + layer.prefix[o]..row + layer.in_stride].iter().any(|&w| w != 0.0) {
                        return Err(invalid(
                            "the state has weights outside this model's masks (another model's checkpoint)",
                        ));
                    }
                }
            }
        }
        if params.iter().chain(m).chain(v).any(|x| !x.is_finite()) || v.iter().any(|&x| x < 0.0) {
            return Err(invalid("the state holds non-finite values or a negative second moment"));
        }
        self.params.copy_from_slice(params);
        self.adam_m.copy_from_slice(m);
        self.adam_v.copy_from_slice(v);
        for l in 0..self.layers.len() {
            let panels = self.layers[l].n_panels(self.kernel);
            self.refresh_transposed(l, 0..panels);
        }
        Ok(())
    }

    /// Only the parameters (for keeping the best model).
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Sets the parameters only (the best model back), keeping Adam's state.
    ///
    /// Errors: [`Error::InvalidArgument`] for another length.
    pub fn set_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.params.len() {
            return Err(invalid("parameter vector of another model"));
        }
        self.params.copy_from_slice(params);
        for l in 0..self.layers.len() {
            let panels = self.layers[l].n_panels(self.kernel);
            self.refresh_transposed(l, 0..panels);
        }
        Ok(())
    }

    /// A scratch for one thread, for minibatches of up to `max_batch` rows.
    pub fn scratch(&self, max_batch: usize) -> TrainScratch {
        let mr = self.kernel.mr();
        let widest = self.layers.iter().map(|l| l.in_stride.max(l.out_stride)).max().unwrap_or(PAD);
        TrainScratch {
            panel: vec![0.0; mr * ROW_GROUP_TILES * widest],
            sums: vec![0.0; self.layers.iter().map(|l| l.n_out).max().unwrap_or(0)],
            grad_rows: vec![
                0.0;
                self.layers
                    .iter()
                    .map(|l| l.n_out.div_ceil(mr) * mr * l.in_stride)
                    .max()
                    .unwrap_or(PAD)
            ],
            tile: vec![0.0; mr * self.kernel.nr()],
            delta_panels: vec![
                0.0;
                self.layers.iter().map(|l| l.n_out.div_ceil(mr)).max().unwrap_or(0)
                    * (mr * GRADIENT_CHUNK.min(max_batch) + BLOCK_SKEW)
            ],
            input_blocks: vec![
                0.0;
                self.layers
                    .iter()
                    .map(|l| l.in_stride.div_ceil(self.kernel.nr()))
                    .max()
                    .unwrap_or(0)
                    * (self.kernel.nr() * GRADIENT_CHUNK.min(max_batch) + BLOCK_SKEW)
            ],
            mixture: vec![0.0; 12 * self.arch.n_dims * self.arch.n_components],
        }
    }

    /// The layers' output panels (NR outputs each), for splitting the update between threads:
    /// (layer, panels in the layer, the panel's cost in multiply-adds per minibatch row).
    pub fn panels(&self) -> Vec<(usize, usize, usize)> {
        let nr = self.kernel.nr();
        let mut out = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            for p in 0..layer.n_panels(self.kernel) {
                let rows = p * nr..((p + 1) * nr).min(layer.n_out);
                let cost: usize = rows.map(|o| layer.prefix[o] + 1).sum();
                out.push((l, p, cost));
            }
        }
        out
    }

    /// Writes minibatch row `record` ([`Self::row_stride`] floats) from one standardised
    /// context row (user order, C values) and data row (user order, D values).
    pub fn fill_input(&self, context: &[f32], x: &[f32], record: &mut [f32]) {
        let c = self.arch.n_context;
        record[..c].copy_from_slice(&context[..c]);
        for (t, &dim) in self.data_order.iter().enumerate() {
            record[c + t] = x[dim];
        }
    }

    /// Forward (and, when `inv_batch` is Some(1 / B), backward) pass over the row records in
    /// `rows` (whole records, [n][row_stride], inputs filled by [`Self::fill_input`]); writes
    /// each row's loss -ln p(xs) (standardised units, without the Jacobian) into `loss`.
    /// Returns false, having stopped, if a loss is not finite.
    pub fn forward_backward_rows(
        &self,
        rows: &mut [f32],
        loss: &mut [f64],
        inv_batch: Option<f32>,
        scratch: &mut TrainScratch,
    ) -> bool {
        // The same code compiled for each instruction set (the same bits: no fused operation
        // appears that the source does not ask for).
        match self.kernel {
            // SAFETY: the kernel was chosen for an instruction set this CPU has.
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Kernel::Avx512 => unsafe { self.forward_backward_avx512(rows, loss, inv_batch, scratch) },
            // SAFETY: as above.
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Kernel::Avx2 => unsafe { self.forward_backward_avx2(rows, loss, inv_batch, scratch) },
            // NEON: the intrinsics tile inside the baseline-compiled body (NEON is aarch64's base).
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => self.forward_backward_body(rows, loss, inv_batch, scratch),
            Kernel::Portable => self.forward_backward_body(rows, loss, inv_batch, scratch),
        }
    }

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    unsafe fn forward_backward_avx512(
        &self,
        rows: &mut [f32],
        loss: &mut [f64],
        inv_batch: Option<f32>,
        scratch: &mut TrainScratch,
    ) -> bool {
        self.forward_backward_body(rows, loss, inv_batch, scratch)
    }

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_backward_avx2(
        &self,
        rows: &mut [f32],
        loss: &mut [f64],
        inv_batch: Option<f32>,
        scratch: &mut TrainScratch,
    ) -> bool {
        self.forward_backward_body(rows, loss, inv_batch, scratch)
    }

    #[inline(always)]
    fn forward_backward_body(
        &self,
        rows: &mut [f32],
        loss: &mut [f64],
        inv_batch: Option<f32>,
        scratch: &mut TrainScratch,
    ) -> bool {
        let n = loss.len();
        debug_assert_eq!(rows.len(), n * self.row_stride);
        let (mr, nr) = (self.kernel.mr(), self.kernel.nr());
        // Rows in groups of ROW_GROUP_TILES tiles, all packed first, then each weight panel
        // applied to every tile of the group while it is in the cache.
        let group_rows = ROW_GROUP_TILES * mr;
        for (l, layer) in self.layers.iter().enumerate() {
            let width = layer.in_stride;
            for g0 in (0..n).step_by(group_rows) {
                let tiles =
                    self.pack_row_group(rows, g0, (layer.input_at, layer.n_in, width), &mut scratch.panel);
                for p in 0..layer.n_panels(self.kernel) {
                    let o0 = p * nr;
                    let cols = nr.min(layer.n_out - o0);
                    let depth = layer.prefix[o0 + cols - 1];
                    for t in 0..tiles {
                        let r0 = g0 + t * mr;
                        let out = &mut rows[r0 * self.row_stride + layer.output_at + o0..];
                        // SAFETY: the tile's panel holds depth * MR packed values; the
                        // transposed panel holds n_in rows of NR >= depth; the output rows are
                        // inside the records (output_at + o0 + cols <= output_at + out_stride).
                        unsafe {
                            self.kernel.tile(
                                depth,
                                &scratch.panel[t * mr * width..],
                                &self.transposed[l][p * nr * layer.n_in..],
                                Packed(nr),
                                Init::Columns(&self.bias_padded[l][o0..]),
                                out,
                                self.row_stride,
                                (mr.min(n - r0), cols),
                            );
                        }
                    }
                }
            }
            if let Some(activation) = layer.activation {
                for record in rows.chunks_exact_mut(self.row_stride) {
                    activation.apply_all(&mut record[layer.output_at..layer.output_at + layer.n_out]);
                }
            }
        }
        let heads = self.layers.last().expect("a model has heads");
        let mut finite = true;
        for (record, loss) in rows.chunks_exact_mut(self.row_stride).zip(loss.iter_mut()) {
            *loss = self.mixture_row(record, heads, inv_batch.unwrap_or(0.0), &mut scratch.mixture);
            finite &= loss.is_finite();
        }
        if !finite {
            return false;
        }
        if inv_batch.is_none() {
            return true;
        }
        for l in (1..self.layers.len()).rev() {
            let (layer, below) = (&self.layers[l], &self.layers[l - 1]);
            let width = layer.out_stride;
            for g0 in (0..n).step_by(group_rows) {
                let tiles =
                    self.pack_row_group(rows, g0, (layer.delta_at, layer.n_out, width), &mut scratch.panel);
                for (block, &first) in layer.first_reader.iter().enumerate() {
                    let i0 = block * nr;
                    let cols = nr.min(layer.n_in - i0);
                    for t in 0..tiles {
                        let r0 = g0 + t * mr;
                        let out = &mut rows[r0 * self.row_stride + below.delta_at + i0..];
                        // SAFETY: the tile's panel holds n_out * MR values (first <= n_out);
                        // weight row o has in_stride >= i0 + NR floats; the output lies inside
                        // the records.
                        unsafe {
                            self.kernel.tile(
                                layer.n_out - first,
                                &scratch.panel[t * mr * width + first * mr..],
                                &self.params[layer.weight_at + first * layer.in_stride + i0..],
                                Packed(layer.in_stride),
                                Init::Columns(&ZEROS[..nr]),
                                out,
                                self.row_stride,
                                (mr.min(n - r0), cols),
                            );
                        }
                    }
                }
            }
            let Some(activation) = below.activation else { continue };
            for record in rows.chunks_exact_mut(self.row_stride) {
                let (outputs, deltas) = record.split_at_mut(below.delta_at);
                scale_by_derivative(
                    activation,
                    &outputs[below.output_at..below.output_at + below.n_out],
                    &mut deltas[..below.n_out],
                );
            }
        }
        true
    }

    /// Packs the rows of group g0 (up to ROW_GROUP_TILES tiles of MR records) for the micro-kernel:
    /// the `len` values at `field` of each record, tile t at `panel[t MR width..]`. Returns the
    /// tiles packed.
    #[inline(always)]
    fn pack_row_group(
        &self,
        rows: &[f32],
        g0: usize,
        (field, len, width): (usize, usize, usize),
        panel: &mut [f32],
    ) -> usize {
        let mr = self.kernel.mr();
        let n = rows.len() / self.row_stride;
        let tiles = (ROW_GROUP_TILES * mr).min(n - g0).div_ceil(mr);
        for t in 0..tiles {
            let r0 = g0 + t * mr;
            pack_a_panel(
                &rows[r0 * self.row_stride + field..],
                (mr.min(n - r0), len),
                (self.row_stride, 1),
                0,
                mr,
                &mut panel[t * mr * width..],
            );
        }
        tiles
    }

    /// The loss -ln p(xs | cs) of one record (heads already computed) and, when inv_batch >
    /// 0, the heads' deltas (see the module doc). Flat loops over the D K components (in
    /// scratch arrays, dimension-major) vectorise; the per-dimension maxima and sums are
    /// short sequential loops; one f64 logarithm per row: ln prod_d (sum_a / sum_l), each ratio
    /// in [1/K, K].
    #[inline(always)]
    fn mixture_row(&self, record: &mut [f32], heads: &Layer, inv_batch: f32, scratch: &mut [f32]) -> f64 {
        let (c, d, k) = (self.arch.n_context, self.arch.n_dims, self.arch.n_components);
        let dk = d * k;
        let (front, deltas) = record.split_at_mut(heads.delta_at);
        let outputs = &front[heads.output_at..heads.output_at + heads.n_out];
        let xs = &front[c..c + d];
        let mut parts = scratch.chunks_exact_mut(dk);
        let mut next = || parts.next().expect("12 scratch arrays");
        let runs = ShortRuns::for_kernel(self.kernel, k);
        let (logit, mean, log_scale, x) = (next(), next(), next(), next());
        let (inv_sigma, z, a, max_a) = (next(), next(), next(), next());
        let (max_l, e_a, e_l, inv_sums) = (next(), next(), next(), next());
        for t in 0..d {
            let block = &outputs[t * 3 * k..(t + 1) * 3 * k];
            runs.copy(&mut logit[t * k..(t + 1) * k], &block[..k]);
            runs.copy(&mut mean[t * k..(t + 1) * k], &block[k..2 * k]);
            runs.copy(&mut log_scale[t * k..(t + 1) * k], &block[2 * k..]);
            runs.fill(&mut x[t * k..(t + 1) * k], xs[t]);
        }
        for j in 0..dk {
            inv_sigma[j] = exp_branchless_f32(-log_scale[j]);
            z[j] = (x[j] - mean[j]) * inv_sigma[j];
            a[j] = logit[j] - log_scale[j] - 0.5 * z[j] * z[j];
        }
        let mut log_p = 0.0f64;
        for t in 0..d {
            let range = t * k..(t + 1) * k;
            let ma = a[range.clone()].iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let ml = logit[range.clone()].iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            runs.fill(&mut max_a[range.clone()], ma);
            runs.fill(&mut max_l[range], ml);
            log_p += f64::from(ma) - f64::from(ml);
        }
        for j in 0..dk {
            e_a[j] = exp_branchless_f32(a[j] - max_a[j]);
            e_l[j] = exp_branchless_f32(logit[j] - max_l[j]);
        }
        let mut ratio = 1.0f64;
        for t in 0..d {
            let range = t * k..(t + 1) * k;
            let sum_a: f32 = e_a[range.clone()].iter().sum();
            let sum_l: f32 = e_l[range.clone()].iter().sum();
            ratio *= f64::from(sum_a) / f64::from(sum_l);
            if !(1e-200..1e200).contains(&ratio) {
                log_p += crate::math::ln(ratio);
                ratio = 1.0;
            }
            // Reused: max_a holds inv_batch / sum_a, inv_sums inv_batch / sum_l.
            runs.fill(&mut max_a[range.clone()], inv_batch / sum_a);
            runs.fill(&mut inv_sums[range], inv_batch / sum_l);
        }
        log_p += crate::math::ln(ratio) - d as f64 * f64::from(HALF_LN_2PI_F32);
        if inv_batch != 0.0 {
            // Reused: logit, mean and log_scale hold the deltas.
            for j in 0..dk {
                let w = e_a[j] * max_a[j];
                logit[j] = e_l[j] * inv_sums[j] - w;
                mean[j] = -w * z[j] * inv_sigma[j];
                log_scale[j] = w * (1.0 - z[j] * z[j]);
            }
            for t in 0..d {
                let block = &mut deltas[t * 3 * k..(t + 1) * 3 * k];
                runs.copy(&mut block[..k], &logit[t * k..(t + 1) * k]);
                runs.copy(&mut block[k..2 * k], &mean[t * k..(t + 1) * k]);
                runs.copy(&mut block[2 * k..], &log_scale[t * k..(t + 1) * k]);
            }
        }
        -log_p
    }

    /// Gradients and the Adam step of the output panels `range` of one layer, from the whole
    /// minibatch (`rows`, [B][row_stride] as left by [`Self::forward_backward_rows`], summed in
    /// row order), then the transposed copy of those panels; `adam` is
    /// [`crate::nn::adam::AdamConfig::step_constants`] of the step. Threads update disjoint panels at once through [`SharedModel`].
    pub fn update_panels(
        &mut self,
        range: PanelRange,
        rows: &[f32],
        adam: &AdamStep,
        scratch: &mut TrainScratch,
    ) {
        let shared = SharedModel::new(self);
        // SAFETY: the model is borrowed mutably for this call alone: nothing else reads it.
        unsafe { shared.update_panels(range, rows, adam, scratch) }
    }

    /// The minibatch's gradient of the mean loss with respect to every parameter, in the
    /// parameter layout of [`Self::state`] (masked and padding entries 0), from `rows` as left
    /// by [`Self::forward_backward_rows`] with `inv_batch` = 1 / B. (The trainer never forms
    /// it: [`Self::update_panels`] applies each tile as it is computed.)
    pub fn gradient(&self, rows: &[f32], scratch: &mut TrainScratch) -> Vec<f32> {
        let mut grad = vec![0.0f32; self.params.len()];
        for l in 0..self.layers.len() {
            let panels = self.layers[l].n_panels(self.kernel);
            let layer = &self.layers[l];
            self.weight_gradients(l, 0..panels, rows, scratch, |target, values| {
                let at = match target {
                    Target::Weights { output, column } => layer.weight_at + output * layer.in_stride + column,
                    Target::Biases { first } => layer.bias_at + first,
                };
                grad[at..at + values.len()].copy_from_slice(values)
            });
        }
        grad
    }

    /// Calls `sink(where, gradient values)` for every run of unmasked
    /// weights and the biases of the output panels `panels` of layer `l`: weights as sums over
    /// the rows in order on the micro-kernel, biases as plain sums in row order.
    #[inline(always)]
    fn weight_gradients(
        &self,
        l: usize,
        panels: Range<usize>,
        rows: &[f32],
        scratch: &mut TrainScratch,
        mut sink: impl FnMut(Target, &[f32]),
    ) {
        let (mr, nr) = (self.kernel.mr(), self.kernel.nr());
        let layer = &self.layers[l];
        let width = layer.in_stride;
        let outputs = panels.start * nr..(panels.end * nr).min(layer.n_out);
        // Rows in chunks of GRADIENT_CHUNK, each chunk's inputs reused by every output block
        // while they are in the cache; the first chunk's tile is stored, later ones added (a
        // minibatch of at most one chunk is one sum over its rows in order).
        let accumulator = &mut scratch.grad_rows[..outputs.len().div_ceil(mr) * mr * width];
        let widest_depth = layer.prefix[outputs.end - 1].next_multiple_of(nr);
        for (chunk_index, chunk) in rows.chunks(GRADIENT_CHUNK * self.row_stride).enumerate() {
            let chunk_rows = chunk.len() / self.row_stride;
            let (panel_stride, block_stride) = (mr * chunk_rows + BLOCK_SKEW, nr * chunk_rows + BLOCK_SKEW);
            let panels = &mut scratch.delta_panels[..outputs.len().div_ceil(mr) * panel_stride];
            let blocks = &mut scratch.input_blocks[..widest_depth / nr * block_stride];
            // One pass over the chunk's records: A panels, panel o0 / MR holding delta[r][o0 +
            // j] at r MR + j (zeros past the last output), and B blocks, block i0 / NR holding
            // in[r][i0 + j] at r NR + j (whole blocks: input rows are padded to NR).
            for (r, record) in chunk.chunks_exact(self.row_stride).enumerate() {
                let deltas = &record[layer.delta_at + outputs.start..layer.delta_at + outputs.end];
                let inputs = &record[layer.input_at..layer.input_at + widest_depth];
                match mr {
                    8 => scatter_row::<8>(deltas, panels, panel_stride, r),
                    6 => scatter_row::<6>(deltas, panels, panel_stride, r),
                    _ => scatter_row::<4>(deltas, panels, panel_stride, r),
                }
                match nr {
                    32 => scatter_row::<32>(inputs, blocks, block_stride, r),
                    16 => scatter_row::<16>(inputs, blocks, block_stride, r),
                    _ => scatter_row::<8>(inputs, blocks, block_stride, r),
                }
            }
            for (b, o0) in outputs.clone().step_by(mr).enumerate() {
                let m = mr.min(outputs.end - o0);
                let panel = &panels[b * panel_stride..b * panel_stride + mr * chunk_rows];
                let depth = layer.prefix[o0 + m - 1];
                let block = &mut accumulator[(o0 - outputs.start) * width..(o0 - outputs.start + mr) * width];
                for i0 in (0..depth).step_by(nr) {
                    let cols = nr.min(depth - i0);
                    let (out, ldc) = if chunk_index == 0 {
                        (&mut block[i0..], width)
                    } else {
                        (&mut scratch.tile[..], nr)
                    };
                    // SAFETY: the panel holds chunk_rows * MR values, the B block chunk_rows *
                    // NR; the accumulator block holds MR rows of in_stride >= i0 + cols, the
                    // tile MR x NR.
                    unsafe {
                        self.kernel.tile(
                            chunk_rows,
                            panel,
                            &blocks[i0 / nr * block_stride..],
                            Packed(nr),
                            Init::Columns(&ZEROS[..nr]),
                            out,
                            ldc,
                            (m, cols),
                        );
                    }
                    if chunk_index > 0 {
                        for j in 0..m {
                            let sum = &mut block[j * width + i0..j * width + i0 + cols];
                            sum.iter_mut()
                                .zip(&scratch.tile[j * nr..j * nr + cols])
                                .for_each(|(s, &t)| *s += t);
                        }
                    }
                }
            }
        }
        // Each row's run is its mask prefix rounded up to a multiple of 16 (inside the padded
        // row), the entries past the prefix set to 0: the masked weights' Adam state stays 0
        // and so do they, and the update runs in whole vectors.
        for o in outputs.clone() {
            let at = (o - outputs.start) * width;
            let run = layer.prefix[o].next_multiple_of(16).min(width);
            accumulator[at + layer.prefix[o]..at + run].fill(0.0);
            sink(Target::Weights { output: o, column: 0 }, &accumulator[at..at + run]);
        }
        let sums = &mut scratch.sums[..outputs.len()];
        sums.fill(0.0);
        for record in rows.chunks_exact(self.row_stride) {
            for (s, &v) in
                sums.iter_mut().zip(&record[layer.delta_at + outputs.start..layer.delta_at + outputs.end])
            {
                *s += v;
            }
        }
        sink(Target::Biases { first: outputs.start }, sums);
    }

    fn refresh_transposed(&mut self, l: usize, panels: Range<usize>) {
        let shared = SharedModel::new(self);
        // SAFETY: the model is borrowed mutably for this call alone.
        unsafe { shared.refresh_transposed(l, panels) }
    }

    /// The model in the file's layout (`crkernels.made.v1`): units in degree order, data
    /// dimensions and heads in the user's order, with the standardisation.
    pub fn to_spec(&self) -> MadeSpec {
        let (c, d, k) = (self.arch.n_context, self.arch.n_dims, self.arch.n_components);
        let mut data_degrees = vec![0i64; d];
        for (t, &dim) in self.data_order.iter().enumerate() {
            data_degrees[dim] = (self.arch.data_degree_base() + 1 + t) as i64;
        }
        let hidden = &self.layers[..self.layers.len() - 1];
        let mut layers = Vec::new();
        for (l, layer) in hidden.iter().enumerate() {
            let row = |o: usize| &self.params[layer.weight_at + o * layer.in_stride..][..layer.n_in];
            let (mut weight, mut context_weight) = (Vec::new(), Vec::new());
            for o in 0..layer.n_out {
                if l == 0 {
                    context_weight.extend_from_slice(&row(o)[..c]);
                    let mut data = vec![0.0f32; d];
                    for (t, &dim) in self.data_order.iter().enumerate() {
                        data[dim] = row(o)[c + t];
                    }
                    weight.extend_from_slice(&data);
                } else {
                    weight.extend_from_slice(row(o));
                }
            }
            layers.push(LayerSpec::Dense {
                input: l,
                weight,
                context_weight: (l == 0 && c > 0).then_some(context_weight),
                bias: self.params[layer.bias_at..layer.bias_at + layer.n_out].to_vec(),
                degrees: layer.degrees.clone(),
                activation: self.arch.activation,
                residual: None,
            });
        }
        let heads = self.layers.last().expect("a model has heads");
        let h = heads.n_in;
        let head = |which: usize| {
            let (mut weight, mut bias) = (vec![0.0f32; d * k * h], vec![0.0f32; d * k]);
            for (t, &dim) in self.data_order.iter().enumerate() {
                for j in 0..k {
                    let o = t * 3 * k + which * k + j;
                    let file_row = dim * k + j;
                    weight[file_row * h..(file_row + 1) * h]
                        .copy_from_slice(&self.params[heads.weight_at + o * heads.in_stride..][..h]);
                    bias[file_row] = self.params[heads.bias_at + o];
                }
            }
            (weight, bias)
        };
        let heads = HeadsSpec { logits: head(0), means: head(1), scales: head(2), scale: ScaleHead::Exp };
        MadeSpec {
            context_degrees: self.input_degrees[..c].to_vec(),
            data_degrees,
            n_components: k,
            layers,
            heads,
            standardize: self.standardize.clone(),
        }
    }

    /// Multiply-adds per row of one training step (forward, the two backward products and the
    /// weight gradient, inside the masks), and the same for dense layers.
    pub fn macs_per_row(&self) -> (usize, usize) {
        let mut masked = 0;
        let mut dense = 0;
        for (l, layer) in self.layers.iter().enumerate() {
            let inside: usize = layer.prefix.iter().sum();
            let passes = if l == 0 { 2 } else { 3 };
            masked += passes * inside;
            dense += passes * layer.n_in * layer.n_out;
        }
        (masked, dense)
    }
}

static ZEROS: [f32; PAD] = [0.0; PAD];

/// A [`TrainModel`] shared by the threads of a training step: every thread may read it
/// ([`Self::model`]) while none updates it, and threads may update disjoint output panels at
/// once ([`Self::update_panels`]) while none reads it. The trainer separates the two phases
/// with a barrier. The parameter arrays are reached through pointers taken once from the
/// exclusive borrow, so the updates never form overlapping references.
pub struct SharedModel<'a> {
    model: *const TrainModel,
    params: *mut f32,
    adam_m: *mut f32,
    adam_v: *mut f32,
    transposed: Vec<*mut f32>,
    bias_padded: Vec<*mut f32>,
    _borrow: core::marker::PhantomData<&'a mut TrainModel>,
}

// SAFETY: the pointers are into the exclusively borrowed model; the methods' contracts say who
// may touch what when.
unsafe impl Send for SharedModel<'_> {}
// SAFETY: as for Send.
unsafe impl Sync for SharedModel<'_> {}

impl<'a> SharedModel<'a> {
    /// Takes the model for one or more steps.
    pub fn new(model: &'a mut TrainModel) -> Self {
        let transposed = model.transposed.iter_mut().map(|t| t.as_mut_ptr()).collect();
        let bias_padded = model.bias_padded.iter_mut().map(|b| b.as_mut_ptr()).collect();
        Self {
            params: model.params.as_mut_ptr(),
            adam_m: model.adam_m.as_mut_ptr(),
            adam_v: model.adam_v.as_mut_ptr(),
            transposed,
            bias_padded,
            model: model as *const TrainModel,
            _borrow: core::marker::PhantomData,
        }
    }

    /// The model, to run [`TrainModel::forward_backward_rows`].
    ///
    /// # Safety
    /// No [`Self::update_panels`] call may run while the reference is alive.
    pub unsafe fn model(&self) -> &TrainModel {
        // SAFETY: the caller keeps updates away while the reference lives.
        unsafe { &*self.model }
    }

    /// [`TrainModel::update_panels`] for one thread.
    ///
    /// # Safety
    /// No reference from [`Self::model`] may be alive, and the panels of calls that run at the
    /// same time must be disjoint.
    pub unsafe fn update_panels(
        &self,
        range: PanelRange,
        rows: &[f32],
        adam: &AdamStep,
        scratch: &mut TrainScratch,
    ) {
        // SAFETY (all three): the caller's promises; the kernel was chosen for an instruction
        // set this CPU has.
        unsafe {
            match (*self.model).kernel {
                #[cfg(all(feature = "std", target_arch = "x86_64"))]
                Kernel::Avx512 => self.update_panels_avx512(range, rows, adam, scratch),
                #[cfg(all(feature = "std", target_arch = "x86_64"))]
                Kernel::Avx2 => self.update_panels_avx2(range, rows, adam, scratch),
                #[cfg(target_arch = "aarch64")]
                Kernel::Neon => self.update_panels_body(range, rows, adam, scratch),
                Kernel::Portable => self.update_panels_body(range, rows, adam, scratch),
            }
        }
    }

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    unsafe fn update_panels_avx512(
        &self,
        range: PanelRange,
        rows: &[f32],
        adam: &AdamStep,
        scratch: &mut TrainScratch,
    ) {
        // SAFETY: forwarded.
        unsafe { self.update_panels_body(range, rows, adam, scratch) }
    }

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn update_panels_avx2(
        &self,
        range: PanelRange,
        rows: &[f32],
        adam: &AdamStep,
        scratch: &mut TrainScratch,
    ) {
        // SAFETY: forwarded.
        unsafe { self.update_panels_body(range, rows, adam, scratch) }
    }

    /// # Safety
    /// As [`Self::update_panels`].
    #[inline(always)]
    unsafe fn update_panels_body(
        &self,
        range: PanelRange,
        rows: &[f32],
        adam: &AdamStep,
        scratch: &mut TrainScratch,
    ) {
        // SAFETY: the structure (layers, kernel) is never written during training; the
        // parameter arrays are touched only below, inside this call's own panels.
        let model = unsafe { &*self.model };
        let layer = &model.layers[range.layer];
        let nr = model.kernel.nr();
        let outputs = range.panels.0 * nr..(range.panels.1 * nr).min(layer.n_out);
        let weights_at = layer.weight_at + outputs.start * layer.in_stride;
        let weights_len = outputs.len() * layer.in_stride;
        let bias_at = layer.bias_at + outputs.start;
        // SAFETY: these ranges lie inside the arrays and belong to this call's panels alone.
        let part = |base: *mut f32, at: usize, len: usize| unsafe {
            core::slice::from_raw_parts_mut(base.add(at), len)
        };
        let (weights, m_w, v_w) = (
            part(self.params, weights_at, weights_len),
            part(self.adam_m, weights_at, weights_len),
            part(self.adam_v, weights_at, weights_len),
        );
        let (bias, m_b, v_b) = (
            part(self.params, bias_at, outputs.len()),
            part(self.adam_m, bias_at, outputs.len()),
            part(self.adam_v, bias_at, outputs.len()),
        );
        model.weight_gradients(range.layer, range.panels.0..range.panels.1, rows, scratch, |target, grad| {
            match target {
                Target::Weights { output, column } => {
                    let at = (output - outputs.start) * layer.in_stride + column;
                    let run = at..at + grad.len();
                    adam.apply(&mut weights[run.clone()], grad, &mut m_w[run.clone()], &mut v_w[run]);
                }
                Target::Biases { first } => {
                    let run = first - outputs.start..first - outputs.start + grad.len();
                    adam.apply(&mut bias[run.clone()], grad, &mut m_b[run.clone()], &mut v_b[run]);
                }
            }
        });
        // SAFETY: as above, this call's panels only.
        unsafe { self.refresh_transposed(range.layer, range.panels.0..range.panels.1) };
    }

    /// Rewrites the transposed copy and the padded bias of some panels from the weights.
    ///
    /// # Safety
    /// As [`Self::update_panels`].
    #[inline(always)]
    unsafe fn refresh_transposed(&self, l: usize, panels: Range<usize>) {
        // SAFETY: see update_panels.
        let model = unsafe { &*self.model };
        let layer = &model.layers[l];
        let nr = model.kernel.nr();
        for p in panels {
            let outputs = p * nr..((p + 1) * nr).min(layer.n_out);
            // Rows past the panel's deepest prefix are masked: zero from the start, never written.
            let depth = layer.prefix[outputs.end - 1];
            // SAFETY: panel p of layer l's transposed copy and padded bias, this call's alone;
            // weight rows and biases of its outputs are read only by this call.
            let panel = unsafe {
                core::slice::from_raw_parts_mut(self.transposed[l].add(p * nr * layer.n_in), nr * layer.n_in)
            };
            // SAFETY: as above: the weight rows of the panel's outputs.
            let weights = unsafe {
                core::slice::from_raw_parts(
                    self.params.add(layer.weight_at + outputs.start * layer.in_stride),
                    outputs.len() * layer.in_stride,
                )
            };
            transpose_into_panel(model.kernel, weights, layer.in_stride, depth, panel, nr);
            for o in outputs {
                // SAFETY: as above.
                unsafe { *self.bias_padded[l].add(o) = *self.params.add(layer.bias_at + o) };
            }
        }
    }
}

/// panel[i * nr + j] = weights[j * stride + i] for i < depth and the panel's outputs j (rows
/// of `weights`): the transposed copy the forward pass reads. In 8 x 8 blocks with AVX2
/// shuffles where the kernel is a vector one (a copy: the same values either way).
#[inline(always)]
fn transpose_into_panel(
    kernel: Kernel,
    weights: &[f32],
    stride: usize,
    depth: usize,
    panel: &mut [f32],
    nr: usize,
) {
    let (done_outputs, done_depth) = transpose_blocks(kernel, weights, stride, depth, panel, nr);
    for (j, row) in weights.chunks_exact(stride).enumerate() {
        let start = if j < done_outputs { done_depth } else { 0 };
        for i in start..depth {
            panel[i * nr + j] = row[i];
        }
    }
}

/// The whole 8 x 8 blocks of [`transpose_into_panel`] with AVX2 (outputs and depth done), or
/// (0, 0) for the portable kernel.
#[inline(always)]
fn transpose_blocks(
    kernel: Kernel,
    weights: &[f32],
    stride: usize,
    depth: usize,
    panel: &mut [f32],
    nr: usize,
) -> (usize, usize) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if kernel != Kernel::Portable {
        let (outputs, depth) = (weights.len() / stride / 8 * 8, depth / 8 * 8);
        for j0 in (0..outputs).step_by(8) {
            for i0 in (0..depth).step_by(8) {
                // SAFETY: rows j0..j0 + 8 hold stride >= i0 + 8 values; panel rows i0..i0 + 8
                // hold nr >= j0 + 8 values; AVX2 is there (the kernel is AVX2 or AVX-512).
                unsafe {
                    transpose_8x8_avx2(
                        weights.as_ptr().add(j0 * stride + i0),
                        stride,
                        panel.as_mut_ptr().add(i0 * nr + j0),
                        nr,
                    )
                };
            }
        }
        return (outputs, depth);
    }
    let _ = (kernel, weights, stride, depth, panel, nr);
    (0, 0)
}

/// Transposes the 8 x 8 block at `src` (row stride `src_stride`) into `dst` (row stride
/// `dst_stride`): dst[i][j] = src[j][i].
///
/// # Safety
/// AVX2 is available; 8 rows of 8 values are readable at src and writable at dst.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
unsafe fn transpose_8x8_avx2(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
    use core::arch::x86_64::*;
    // SAFETY: the caller's promises.
    unsafe {
        let r: [__m256; 8] = core::array::from_fn(|j| _mm256_loadu_ps(src.add(j * src_stride)));
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let rows = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (i, row) in rows.iter().enumerate() {
            _mm256_storeu_ps(dst.add(i * dst_stride), *row);
        }
    }
}

/// Where a run of gradient values belongs.
#[derive(Clone, Copy)]
enum Target {
    /// Weights of one output unit, from input `column`.
    Weights { output: usize, column: usize },
    /// Biases of consecutive outputs from `first`.
    Biases { first: usize },
}

/// Copies and fills of the mixture's runs of K values (one per data dimension and head). A
/// run's length is known only at run time, so a slice copy is a library call, which costs more
/// than the run itself (5% of a training step on the SECRET shape, K = 10); with the AVX-512
/// kernel and K <= 16 a run is one masked vector load and store instead. (AVX2's masked
/// stores were no faster than the call on this Xeon, and are microcoded on AMD's Zen cores.)
#[derive(Clone, Copy)]
struct ShortRuns {
    kernel: Kernel,
    short: bool,
}

impl ShortRuns {
    #[inline(always)]
    fn for_kernel(kernel: Kernel, run: usize) -> Self {
        ShortRuns { kernel, short: run <= 16 }
    }

    /// dst = src (equal lengths, the run's).
    #[inline(always)]
    fn copy(self, dst: &mut [f32], src: &[f32]) {
        match (self.kernel, self.short) {
            // SAFETY: the AVX-512 kernel is chosen only where the CPU has AVX-512F; both slices
            // hold the run's len <= 16 values.
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            (Kernel::Avx512, true) => unsafe { masked_runs::copy_avx512(dst, src) },
            _ => dst.copy_from_slice(src),
        }
    }

    /// dst = value everywhere.
    #[inline(always)]
    fn fill(self, dst: &mut [f32], value: f32) {
        match (self.kernel, self.short) {
            // SAFETY: as in `copy`.
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            (Kernel::Avx512, true) => unsafe { masked_runs::fill_avx512(dst, value) },
            _ => dst.fill(value),
        }
    }
}

/// [`ShortRuns`]' masked AVX-512 moves (masked-off lanes are neither read nor written).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod masked_runs {
    use core::arch::x86_64::*;

    /// # Safety
    /// AVX-512F is available; `dst.len() == src.len() <= 16`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn copy_avx512(dst: &mut [f32], src: &[f32]) {
        debug_assert!(dst.len() == src.len() && dst.len() <= 16);
        let mask = ((1u32 << dst.len()) - 1) as __mmask16;
        // SAFETY: the mask covers the slices' elements only.
        unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr(), mask, _mm512_maskz_loadu_ps(mask, src.as_ptr())) }
    }

    /// # Safety
    /// AVX-512F is available; `dst.len() <= 16`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fill_avx512(dst: &mut [f32], value: f32) {
        debug_assert!(dst.len() <= 16);
        let mask = ((1u32 << dst.len()) - 1) as __mmask16;
        // SAFETY: the mask covers the slice's elements only.
        unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr(), mask, _mm512_set1_ps(value)) }
    }
}

/// Writes row `r` of a matrix into its column blocks of N: block b (N columns, row-major, at
/// `b stride`) gets `row[b N..(b + 1) N]` at `r N`, zeros past the row's end. The whole blocks
/// copy N values of a length known here (vector moves, no library call).
#[inline(always)]
fn scatter_row<const N: usize>(row: &[f32], blocks: &mut [f32], stride: usize, r: usize) {
    let (whole, rest) = row.as_chunks::<N>();
    let mut blocks = blocks.chunks_mut(stride);
    // (`whole` first: a zip stops at its first side's end without taking from the second.)
    for (source, block) in whole.iter().zip(blocks.by_ref()) {
        let target: &mut [f32; N] = (&mut block[r * N..(r + 1) * N]).try_into().expect("N values");
        *target = *source;
    }
    if let Some(block) = blocks.next() {
        let target = &mut block[r * N..(r + 1) * N];
        target[..rest.len()].copy_from_slice(rest);
        target[rest.len()..].fill(0.0);
    }
}

/// delta *= act'(pre-activation), written with the output y = act(pre-activation).
fn scale_by_derivative(activation: ActivationFn, outputs: &[f32], deltas: &mut [f32]) {
    let pairs = outputs.iter().zip(deltas.iter_mut());
    match activation {
        ActivationFn::Sigmoid => pairs.for_each(|(&y, d)| *d *= y * (1.0 - y)),
        ActivationFn::Tanh => pairs.for_each(|(&y, d)| *d *= 1.0 - y * y),
        ActivationFn::Relu => pairs.for_each(|(&y, d)| *d = if y > 0.0 { *d } else { 0.0 }),
        ActivationFn::LeakyRelu { alpha } => {
            pairs.for_each(|(&y, d)| *d *= if y > 0.0 { 1.0 } else { alpha })
        }
        ActivationFn::Elu { alpha } => pairs.for_each(|(&y, d)| *d *= if y > 0.0 { 1.0 } else { y + alpha }),
    }
}

impl Layer {
    /// A layer reading `n_in` values at `input_at` of a row record; its parameters and its
    /// output and delta fields are appended at `param_offset` and `field`.
    fn new(
        (n_in, input_at): (usize, usize),
        n_out: usize,
        degrees: Vec<i64>,
        prefix: Vec<usize>,
        activation: Option<ActivationFn>,
        (param_offset, field): (&mut usize, &mut usize),
        kernel: Kernel,
    ) -> Self {
        let (in_stride, out_stride) = (round_up(n_in, PAD), round_up(n_out, PAD));
        let weight_at = *param_offset;
        let bias_at = weight_at + n_out * in_stride;
        *param_offset = bias_at + n_out;
        let output_at = *field;
        let delta_at = output_at + out_stride;
        *field = delta_at + out_stride;
        let nr = kernel.nr();
        let first_reader = (0..n_in.div_ceil(nr))
            .map(|block| prefix.iter().position(|&p| p > block * nr).unwrap_or(n_out))
            .collect();
        Self {
            n_in,
            in_stride,
            n_out,
            out_stride,
            degrees,
            prefix,
            activation,
            weight_at,
            bias_at,
            input_at,
            output_at,
            delta_at,
            first_reader,
        }
    }

    fn n_panels(&self, kernel: Kernel) -> usize {
        self.n_out.div_ceil(kernel.nr())
    }

    fn out_stride_nr(&self, kernel: Kernel) -> usize {
        self.n_panels(kernel) * kernel.nr()
    }
}
