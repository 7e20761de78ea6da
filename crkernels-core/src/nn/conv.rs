//! Convolution layers (cross-correlation, as in PyTorch and Keras), NCHW, f32: conv2d and
//! conv1d (a conv2d of height 1), with per-axis stride, asymmetric zero padding, dilation,
//! groups (depthwise included) and an optional bias.
//!
//! For output channel o of group g = o / (C_out / G), position (y, x):
//!
//! ```text
//! out[o][y][x] = bias[o] + sum over c < C_in/G, i < kH, j < kW of
//!                w[o][c][i][j] * in_padded[g C_in/G + c][y sH + i dH][x sW + j dW]
//! ```
//!
//! where `in_padded` is the input with `padding[0]` = [top, bottom] and `padding[1]` =
//! [left, right] rows and columns of zeros. Output size per axis:
//! (in + before + after - (d (k - 1) + 1)) / s + 1, rounded down (PyTorch's and TensorFlow's
//! rule); a kernel whose dilated extent d (k - 1) + 1 exceeds the padded input is an error.
//!
//! # Algorithms
//!
//! Each group is a matrix product: A = the weights (C_out/G rows, K = C_in/G kH kW columns,
//! packed once when the layer is built) times B = the input patches (K rows, one column per
//! output position), on the register-blocked micro-kernels of [`super::gemm`] (AVX-512,
//! AVX2 + FMA, NEON or portable, picked at run time; the same fused multiply-adds on each). Every sample is first copied into a zero-padded
//! buffer so that no loop tests bounds. Then, by shape ([`Algorithm`]):
//!
//! - output height 1 and horizontal stride 1 (every stride-1 conv1d): implicit GEMM, row k of
//!   B read straight from the padded input (no patch matrix is built);
//! - on AVX-512 and AVX2, horizontal stride 1 and an output width that is a multiple of 8 (the
//!   8 x 8 detector grids): row segments, each NR-position row of B is NR / 8 runs of 8
//!   consecutive input values (four on AVX-512, two on AVX2), read in place by the
//!   micro-kernel; the im2col copies it saves were a quarter of the time on 8 x 8 images with
//!   AVX-512 and 8% with AVX2. The same operations in the same order as im2col: the same bits;
//! - otherwise with at least 4 output channels per group: im2col, one panel of NR output
//!   positions (32 on AVX-512) at a time packed from the padded input and multiplied by every
//!   weight panel while it is hot in the L1 cache;
//! - fewer than 4 output channels per group (depthwise and near-depthwise): direct
//!   convolution, a multiply-add sweep over output rows per (channel, tap), because a matrix
//!   product with 1 to 3 rows would waste most of a register tile.
//!
//! A sample's result is computed by the same operations whatever its position in a batch, so
//! results do not depend on how a batch is split across calls or threads; nor on the
//! instruction set: the GEMM algorithms give the same bits (bias, then a fused multiply-add
//! per k in increasing order, on every micro-kernel), and the direct sweep is the same
//! separate multiply and add, in the same order, on every set.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Result, invalid};
use crate::math::simd::VectorIsa;
use crate::nn::gemm::{Init, Kernel, Packed, pack_a_panel};

/// Hyper-parameters of a convolution; index 0 is the height axis, 1 the width axis (a conv1d
/// uses index 1 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvParams {
    /// Step between output positions, per axis (>= 1).
    pub stride: [usize; 2],
    /// Zeros added [before, after] the input, per axis.
    pub padding: [[usize; 2]; 2],
    /// Spacing between kernel taps, per axis (>= 1).
    pub dilation: [usize; 2],
    /// Channel groups (>= 1; C_in and C_out must be multiples; G = C_in is depthwise).
    pub groups: usize,
}

impl Default for ConvParams {
    fn default() -> Self {
        Self { stride: [1, 1], padding: [[0, 0], [0, 0]], dilation: [1, 1], groups: 1 }
    }
}

/// The algorithm a convolution layer runs (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Output height 1, horizontal stride 1: B read in place from the padded input.
    ImplicitGemm,
    /// Patch panels packed from the padded input, then the GEMM micro-kernel.
    Im2colGemm,
    /// Fewer than 4 output channels per group: a direct multiply-add sweep.
    Direct,
    /// AVX-512 or AVX2, horizontal stride 1, an output width that is a multiple of 8 and an
    /// output height above 1: the im2col GEMM with each NR-position B row read in place as
    /// NR / 8 runs of 8 input values (no patch matrix).
    RowSegments,
}

/// TensorFlow's / Keras' 'same' padding of one axis: total = max((ceil(in / s) - 1) s +
/// d (k - 1) + 1 - in, 0), before = total / 2 (rounded down), after = the rest.
///
/// Errors: [`Error::InvalidArgument`] for a zero size, stride or dilation, or an overflow.
pub fn same_padding(input: usize, kernel: usize, stride: usize, dilation: usize) -> Result<[usize; 2]> {
    if input == 0 || kernel == 0 || stride == 0 || dilation == 0 {
        return Err(invalid!(
            "'same' padding needs input, kernel, stride and dilation >= 1 (got {input}, {kernel}, {stride}, {dilation})"
        ));
    }
    let span = dilated_span(kernel, dilation)?;
    let needed = (input.div_ceil(stride) - 1)
        .checked_mul(stride)
        .and_then(|v| v.checked_add(span))
        .ok_or_else(|| invalid!("'same' padding overflows"))?;
    let total = needed.saturating_sub(input);
    Ok([total / 2, total - total / 2])
}

/// Keras' 'causal' padding of a conv1d: d (k - 1) zeros before, none after.
///
/// Errors: [`Error::InvalidArgument`] for a zero kernel or dilation, or an overflow.
pub fn causal_padding(kernel: usize, dilation: usize) -> Result<[usize; 2]> {
    if kernel == 0 || dilation == 0 {
        return Err(invalid!("'causal' padding needs kernel and dilation >= 1"));
    }
    Ok([dilated_span(kernel, dilation)? - 1, 0])
}

/// d (k - 1) + 1, checked.
fn dilated_span(kernel: usize, dilation: usize) -> Result<usize> {
    (kernel - 1)
        .checked_mul(dilation)
        .and_then(|v| v.checked_add(1))
        .ok_or_else(|| invalid!("kernel {kernel} with dilation {dilation} overflows"))
}

/// The output length of one axis: (in + before + after - (d (k - 1) + 1)) / s + 1.
///
/// Errors: [`Error::InvalidArgument`] for a zero size, stride or dilation, an overflow, or a
/// dilated kernel longer than the padded input.
pub fn output_len(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: [usize; 2],
    dilation: usize,
) -> Result<usize> {
    if input == 0 || kernel == 0 || stride == 0 || dilation == 0 {
        return Err(invalid!(
            "sizes, kernel, stride and dilation must be >= 1 (input {input}, kernel {kernel}, stride {stride}, dilation {dilation})"
        ));
    }
    let padded = input
        .checked_add(padding[0])
        .and_then(|v| v.checked_add(padding[1]))
        .ok_or_else(|| invalid!("input {input} plus padding {padding:?} overflows"))?;
    let span = dilated_span(kernel, dilation)?;
    if span > padded {
        return Err(invalid!(
            "kernel {kernel} (dilated extent {span}) is larger than the padded input ({input} + {} + {} = {padded})",
            padding[0],
            padding[1]
        ));
    }
    Ok((padded - span) / stride + 1)
}

/// The product of sizes, or an error naming `what`.
pub(crate) fn product(what: &str, sizes: &[usize]) -> Result<usize> {
    sizes
        .iter()
        .try_fold(1usize, |acc, &s| acc.checked_mul(s))
        .ok_or_else(|| invalid!("{what}: size product {sizes:?} overflows"))
}

/// A conv2d layer built for one input shape: weights packed once, see the module
/// documentation. Immutable; [`Conv2d::forward_with`] takes the per-thread working memory.
#[derive(Clone, Debug)]
pub struct Conv2d {
    c_in: usize,
    c_out: usize,
    input_hw: [usize; 2],
    kernel_hw: [usize; 2],
    params: ConvParams,
    output_hw: [usize; 2],
    padded_hw: [usize; 2],
    algorithm: Algorithm,
    micro: Kernel,
    /// [c_out][c_in/G][kh][kw] as given (the direct algorithm reads it).
    weight: Vec<f32>,
    /// Per group, per panel of MR output channels: [K][MR] (GEMM algorithms).
    packed: Vec<f32>,
    /// [c_out].
    bias: Vec<f32>,
    /// Per group, per panel: MR values, zero past the group's channels.
    packed_bias: Vec<f32>,
    /// Offset of patch row k = (c, i, j) in a group's padded input: c Hp Wp + i dH Wp + j dW,
    /// increasing in k (a dilated kernel fits in the padded plane).
    k_offsets: Vec<usize>,
    /// RowSegments: per panel of NR output positions, where its NR / 8 runs of 8 positions
    /// start in a group's padded input (tabulated once: two divisions per run per tile were 3%
    /// of a conv2d on 8 x 8 images).
    segments: Vec<[usize; 4]>,
}

/// One weight panel of a GEMM algorithm (see [`Conv2d::weight_panel`]).
struct WeightPanel<'a> {
    weights: &'a [f32],
    bias: &'a [f32],
    row0: usize,
    rows: usize,
}

/// Working memory of one thread for a [`Conv2d`] (the padded sample and one patch panel).
#[derive(Clone, Debug, Default)]
pub struct ConvWorkspace {
    /// (c_in, Hp, Wp, top, left) the padded buffer was zeroed for.
    geometry: [usize; 5],
    padded: Vec<f32>,
    panel: Vec<f32>,
}

impl Conv2d {
    /// A layer for inputs [n][c_in][h][w] (`input_hw` = [h, w]) with weight
    /// [c_out][c_in/groups][kh][kw] (row-major, PyTorch's layout; f32, f16 or bf16 values,
    /// widened to f32) and an optional bias [c_out], on the widest micro-kernel of this CPU.
    ///
    /// Errors: [`Error::InvalidArgument`] for zero sizes, strides or dilations, channels not
    /// divisible by the groups, a kernel larger than the padded input, size products that
    /// overflow, wrong weight or bias lengths, or a non-finite weight or bias (named by index).
    pub fn new<W: Copy + Into<f32>>(
        c_in: usize,
        input_hw: [usize; 2],
        c_out: usize,
        kernel_hw: [usize; 2],
        params: ConvParams,
        weight: &[W],
        bias: Option<&[W]>,
    ) -> Result<Self> {
        Self::with_isa(c_in, input_hw, c_out, kernel_hw, params, weight, bias, VectorIsa::selected()?)
    }

    /// [`Conv2d::new`] on the micro-kernel of a given instruction set (tests compare them);
    /// `isa` must be one this CPU runs ([`VectorIsa::available`]), else the portable kernel runs.
    #[allow(clippy::too_many_arguments)]
    pub fn with_isa<W: Copy + Into<f32>>(
        c_in: usize,
        input_hw: [usize; 2],
        c_out: usize,
        kernel_hw: [usize; 2],
        params: ConvParams,
        weight: &[W],
        bias: Option<&[W]>,
        isa: VectorIsa,
    ) -> Result<Self> {
        let isa = isa.require()?;
        let groups = params.groups;
        if c_in == 0 || c_out == 0 || groups == 0 {
            return Err(invalid!("c_in ({c_in}), c_out ({c_out}) and groups ({groups}) must be >= 1"));
        }
        if !c_in.is_multiple_of(groups) || !c_out.is_multiple_of(groups) {
            return Err(invalid!("c_in ({c_in}) and c_out ({c_out}) must be divisible by groups ({groups})"));
        }
        let mut output_hw = [0; 2];
        let mut padded_hw = [0; 2];
        for (axis, name) in ["height", "width"].iter().enumerate() {
            output_hw[axis] = output_len(
                input_hw[axis],
                kernel_hw[axis],
                params.stride[axis],
                params.padding[axis],
                params.dilation[axis],
            )
            .map_err(|e| invalid!("{name}: {}", e.message()))?;
            padded_hw[axis] = input_hw[axis] + params.padding[axis][0] + params.padding[axis][1];
        }
        let c_in_group = c_in / groups;
        let c_out_group = c_out / groups;
        let k = product("weight per output channel", &[c_in_group, kernel_hw[0], kernel_hw[1]])?;
        let weight_len = product("weight", &[c_out, k])?;
        product("padded input", &[c_in, padded_hw[0], padded_hw[1]])?;
        product("output", &[c_out, output_hw[0], output_hw[1]])?;
        if weight.len() != weight_len {
            return Err(invalid!(
                "weight has {} values, expected c_out x c_in/groups x kh x kw = {c_out} x {c_in_group} x {} x {} = {weight_len}",
                weight.len(),
                kernel_hw[0],
                kernel_hw[1]
            ));
        }
        let weight: Vec<f32> = weight.iter().map(|&v| v.into()).collect();
        if let Some(i) = weight.iter().position(|v| !v.is_finite()) {
            return Err(invalid!("weight[{i}] is {} (weights must be finite)", weight[i]));
        }
        let bias: Vec<f32> = match bias {
            Some(b) if b.len() != c_out => {
                return Err(invalid!("bias has {} values, expected c_out = {c_out}", b.len()));
            }
            Some(b) => b.iter().map(|&v| v.into()).collect(),
            None => vec![0.0; c_out],
        };
        if let Some(i) = bias.iter().position(|v| !v.is_finite()) {
            return Err(invalid!("bias[{i}] is {} (must be finite)", bias[i]));
        }
        let micro = Kernel::for_isa(isa);
        let algorithm = if c_out_group < 4 {
            Algorithm::Direct
        } else if output_hw[0] == 1 && params.stride[1] == 1 {
            Algorithm::ImplicitGemm
        } else if micro.has_segment_tile() && params.stride[1] == 1 && output_hw[1].is_multiple_of(8) {
            Algorithm::RowSegments
        } else {
            Algorithm::Im2colGemm
        };
        let mut layer = Self {
            c_in,
            c_out,
            input_hw,
            kernel_hw,
            params,
            output_hw,
            padded_hw,
            algorithm,
            micro,
            weight,
            packed: Vec::new(),
            bias,
            packed_bias: Vec::new(),
            k_offsets: Vec::new(),
            segments: Vec::new(),
        };
        if algorithm != Algorithm::Direct {
            layer.pack(k, c_out_group);
        }
        if algorithm == Algorithm::RowSegments {
            layer.tabulate_segments();
        }
        Ok(layer)
    }

    /// Packs the weights and biases into MR-row panels and tabulates the patch offsets.
    fn pack(&mut self, k: usize, c_out_group: usize) {
        let mr = self.micro.mr();
        let panels = c_out_group.div_ceil(mr);
        let groups = self.params.groups;
        self.packed = vec![0.0; groups * panels * k * mr];
        self.packed_bias = vec![0.0; groups * panels * mr];
        for g in 0..groups {
            let rows = &self.weight[g * c_out_group * k..(g + 1) * c_out_group * k];
            for p in 0..panels {
                let index = g * panels + p;
                let dst = &mut self.packed[index * k * mr..(index + 1) * k * mr];
                pack_a_panel(rows, (c_out_group, k), (k, 1), p * mr, mr, dst);
                for r in 0..mr.min(c_out_group - p * mr) {
                    self.packed_bias[index * mr + r] = self.bias[g * c_out_group + p * mr + r];
                }
            }
        }
        let [hp, wp] = self.padded_hw;
        let [dh, dw] = self.params.dilation;
        self.k_offsets = Vec::with_capacity(k);
        for c in 0..self.c_in / groups {
            for i in 0..self.kernel_hw[0] {
                for j in 0..self.kernel_hw[1] {
                    self.k_offsets.push(c * hp * wp + i * dh * wp + j * dw);
                }
            }
        }
        // The bounds checks before the unchecked reads take the last offset as the largest.
        assert!(self.k_offsets.windows(2).all(|w| w[0] < w[1]), "patch offsets must increase");
    }

    /// RowSegments: where each run of 8 output positions of each NR-position panel starts in a
    /// group's padded input (past the last position, the panel's first run again: read, never
    /// stored).
    fn tabulate_segments(&mut self) {
        let nr = self.micro.nr();
        let [h_out, w_out] = self.output_hw;
        let positions = h_out * w_out;
        let (sh, wp) = (self.params.stride[0], self.padded_hw[1]);
        let segment = |q: usize| (q / w_out) * sh * wp + q % w_out;
        self.segments = (0..positions)
            .step_by(nr)
            .map(|p0| {
                let cols = nr.min(positions - p0);
                core::array::from_fn(|s| segment(if 8 * s < cols { p0 + 8 * s } else { p0 }))
            })
            .collect();
    }

    /// Weight panel `panel` of group g (GEMM algorithms): its packed weights [K][MR], its MR
    /// biases, its first output channel and its number of channels.
    fn weight_panel(&self, g: usize, panel: usize) -> WeightPanel<'_> {
        let mr = self.micro.mr();
        let c_out_group = self.c_out / self.params.groups;
        let (k, index) = (self.k_offsets.len(), g * c_out_group.div_ceil(mr) + panel);
        WeightPanel {
            weights: &self.packed[index * k * mr..(index + 1) * k * mr],
            bias: &self.packed_bias[index * mr..(index + 1) * mr],
            row0: g * c_out_group + panel * mr,
            rows: mr.min(c_out_group - panel * mr),
        }
    }

    /// The largest patch offset (the last: they increase).
    fn last_offset(&self) -> usize {
        self.k_offsets.last().copied().unwrap_or(0)
    }

    /// Input channels.
    pub fn c_in(&self) -> usize {
        self.c_in
    }

    /// Output channels.
    pub fn c_out(&self) -> usize {
        self.c_out
    }

    /// [h, w] of the input.
    pub fn input_hw(&self) -> [usize; 2] {
        self.input_hw
    }

    /// [h_out, w_out].
    pub fn output_hw(&self) -> [usize; 2] {
        self.output_hw
    }

    /// [kh, kw].
    pub fn kernel_hw(&self) -> [usize; 2] {
        self.kernel_hw
    }

    /// The hyper-parameters.
    pub fn params(&self) -> &ConvParams {
        &self.params
    }

    /// The algorithm this layer runs.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Values per input sample: c_in h w.
    pub fn input_size(&self) -> usize {
        self.c_in * self.input_hw[0] * self.input_hw[1]
    }

    /// Values per output sample: c_out h_out w_out.
    pub fn output_size(&self) -> usize {
        self.c_out * self.output_hw[0] * self.output_hw[1]
    }

    /// Multiply-adds per sample (C_out h_out w_out C_in/G kh kw; FLOPs are twice that).
    pub fn macs_per_sample(&self) -> u64 {
        let k = self.c_in / self.params.groups * self.kernel_hw[0] * self.kernel_hw[1];
        self.output_size() as u64 * k as u64
    }

    /// The weights [c_out][c_in/groups][kh][kw] and bias [c_out] (zeros when built without).
    pub fn weight_and_bias(&self) -> (&[f32], &[f32]) {
        (&self.weight, &self.bias)
    }

    /// Rescales output channel o: w[o] *= scale[o], bias[o] = bias[o] scale[o] + shift[o]
    /// (batch-norm folding). `scale` and `shift` have c_out values.
    pub(crate) fn fold_affine(&mut self, scale: &[f32], shift: &[f32]) {
        let per_channel = self.weight.len() / self.c_out;
        for (o, row) in self.weight.chunks_exact_mut(per_channel).enumerate() {
            row.iter_mut().for_each(|w| *w *= scale[o]);
            self.bias[o] = self.bias[o] * scale[o] + shift[o];
        }
        if self.algorithm != Algorithm::Direct {
            self.pack(per_channel, self.c_out / self.params.groups);
        }
    }

    /// Bytes of the working memory [`workspace`](Self::workspace) allocates: the padded input
    /// of one sample, 4 (C_in (h + pads) (w + pads) + NR), plus, for im2col, a patch panel of
    /// 4 C_in/G kh kw NR; saturates instead of overflowing.
    pub fn workspace_bytes(&self) -> usize {
        let [hp, wp] = self.padded_hw;
        let nr = self.micro.nr();
        let padded = self.c_in.saturating_mul(hp).saturating_mul(wp).saturating_add(nr);
        let panel = if self.algorithm == Algorithm::Im2colGemm { self.k_offsets.len() * nr } else { 0 };
        padded.saturating_add(panel).saturating_mul(core::mem::size_of::<f32>())
    }

    /// Working memory for [`forward_with`](Self::forward_with).
    pub fn workspace(&self) -> ConvWorkspace {
        let mut work = ConvWorkspace::default();
        self.prepare(&mut work);
        work
    }

    /// Sizes `work` for this layer; the padded buffer's borders are zeroed once and never
    /// written afterwards.
    fn prepare(&self, work: &mut ConvWorkspace) {
        let [hp, wp] = self.padded_hw;
        let geometry = [self.c_in, hp, wp, self.params.padding[0][0], self.params.padding[1][0]];
        let nr = self.micro.nr();
        if work.geometry != geometry || work.padded.len() != self.c_in * hp * wp + nr {
            work.geometry = geometry;
            work.padded.clear();
            work.padded.resize(self.c_in * hp * wp + nr, 0.0);
        }
        // The patch panel only for im2col (RowSegments and the implicit GEMM read in place).
        let k = self.k_offsets.len();
        if self.algorithm == Algorithm::Im2colGemm && work.panel.len() < k * nr {
            work.panel.resize(k * nr, 0.0);
        }
    }

    /// The batch size of an input and output array pair, or an error.
    fn batch(&self, input: usize, output: usize) -> Result<usize> {
        let (per_in, per_out) = (self.input_size(), self.output_size());
        let n = input / per_in;
        if input != n * per_in || output != n * per_out {
            return Err(invalid!(
                "input has {input} values and output {output}: expected n x {per_in} and n x {per_out}"
            ));
        }
        Ok(n)
    }

    /// The layer on a batch: `input` [n][c_in][h][w], `output` [n][c_out][h_out][w_out]
    /// (working memory allocated once per call). Non-finite inputs propagate.
    ///
    /// Errors: [`Error::InvalidArgument`] when the lengths are not n whole samples.
    pub fn forward(&self, input: &[f32], output: &mut [f32]) -> Result<()> {
        let mut work = self.workspace();
        self.forward_with(&mut work, input, output)
    }

    /// [`forward`](Self::forward) with caller-held working memory (resized if it was made for
    /// another layer).
    pub fn forward_with(&self, work: &mut ConvWorkspace, input: &[f32], output: &mut [f32]) -> Result<()> {
        self.run(work, input, output, false)
    }

    /// [`forward_with`](Self::forward_with) that rejects non-finite inputs: each sample is
    /// checked as it is copied in (no separate pass over the batch), so on an error the
    /// samples before the bad one have been computed.
    ///
    /// Errors: as `forward_with`, and [`Error::InvalidArgument`] naming the first non-finite
    /// input value.
    pub fn forward_finite_with(
        &self,
        work: &mut ConvWorkspace,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<()> {
        self.run(work, input, output, true)
    }

    fn run(
        &self,
        work: &mut ConvWorkspace,
        input: &[f32],
        output: &mut [f32],
        finite_only: bool,
    ) -> Result<()> {
        let n = self.batch(input.len(), output.len())?;
        if n == 0 {
            return Ok(());
        }
        self.prepare(work);
        let (per_in, per_out) = (self.input_size(), self.output_size());
        for (index, (sample, out)) in
            input.chunks_exact(per_in).zip(output.chunks_exact_mut(per_out)).enumerate()
        {
            if let Some(next) = input.get((index + 1) * per_in..(index + 2) * per_in) {
                prefetch(next);
            }
            if !self.fill_padded(sample, &mut work.padded, finite_only)
                && let Some(i) = first_non_finite(sample)
            {
                return Err(invalid!("input[{}] is {} (must be finite)", index * per_in + i, sample[i]));
            }
            match self.algorithm {
                Algorithm::Direct => self.direct(&work.padded, out),
                Algorithm::ImplicitGemm => self.implicit(&work.padded, out),
                Algorithm::Im2colGemm => self.im2col(&work.padded, &mut work.panel, out),
                Algorithm::RowSegments => self.row_segments(&work.padded, out),
            }
        }
        Ok(())
    }

    /// Copies one sample into the interior of the padded buffer; with `check`, tells whether
    /// every value copied is finite (false: search the sample for the first that is not). One
    /// pass, with 256-bit moves and tests where the kernel is AVX2 or AVX-512: the separate
    /// check and the 128-bit copies were 5% of a conv2d on 8 x 8 images.
    fn fill_padded(&self, sample: &[f32], padded: &mut [f32], check: bool) -> bool {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if self.micro != Kernel::Portable {
            // SAFETY: the micro-kernel was chosen from the instruction sets this CPU has, and
            // both fused variants imply AVX2.
            return unsafe { self.fill_padded_avx2(sample, padded, check) };
        }
        self.fill_padded_lanes(sample, padded, check)
    }

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2")]
    fn fill_padded_avx2(&self, sample: &[f32], padded: &mut [f32], check: bool) -> bool {
        self.fill_padded_lanes(sample, padded, check)
    }

    #[inline(always)]
    fn fill_padded_lanes(&self, sample: &[f32], padded: &mut [f32], check: bool) -> bool {
        let [h, w] = self.input_hw;
        let [hp, wp] = self.padded_hw;
        let (top, left) = (self.params.padding[0][0], self.params.padding[1][0]);
        let mut finite = true;
        for (c, channel) in sample.chunks_exact(h * w).enumerate() {
            for (y, row) in channel.chunks_exact(w).enumerate() {
                let start = c * hp * wp + (y + top) * wp + left;
                let destination = &mut padded[start..start + w];
                // SAFETY: both slices hold w values (checked by the slicing).
                unsafe { copy_run(row.as_ptr(), destination.as_mut_ptr(), w) };
                if check {
                    // is_finite on the bits (exponent not all ones), as integer compares:
                    // valgrind's AVX2 emulation got the floating-point form wrong for NaN.
                    finite &=
                        row.iter().fold(true, |all, v| all & ((v.to_bits() & 0x7fff_ffff) < 0x7f80_0000));
                }
            }
        }
        finite
    }

    /// Implicit GEMM: row k of B is the padded input at k_offsets[k] + position. Weight panels
    /// in the outer loop, each swept across the output row by [`Kernel::tile_span`] (the
    /// output written as MR sequential streams).
    fn implicit(&self, padded: &[f32], out: &mut [f32]) {
        let (mr, nr) = (self.micro.mr(), self.micro.nr());
        let groups = self.params.groups;
        let (c_in_group, c_out_group) = (self.c_in / groups, self.c_out / groups);
        let positions = self.output_hw[1];
        let panels = c_out_group.div_ceil(mr);
        let [hp, wp] = self.padded_hw;
        let last_offset = self.last_offset();
        // Every row read, NR values from each offset at every position panel, lies inside the
        // padded buffer (it has NR values of slack past the last channel).
        let last_read = (groups - 1) * c_in_group * hp * wp + (positions - 1) / nr * nr + last_offset + nr;
        assert!(last_read <= padded.len(), "implicit GEMM read out of bounds");
        assert!(out.len() >= self.c_out * positions, "implicit GEMM write out of bounds");
        for g in 0..groups {
            let b = &padded[g * c_in_group * hp * wp..];
            for panel in 0..panels {
                let WeightPanel { weights, bias, row0, rows } = self.weight_panel(g, panel);
                // SAFETY: packed panels hold K MR values, B rows are in bounds (asserted), the
                // output rows row0..row0 + rows hold `positions` values each.
                unsafe {
                    self.micro.tile_span(
                        &self.k_offsets,
                        weights,
                        b,
                        bias,
                        &mut out[row0 * positions..],
                        positions,
                        (rows, positions),
                    )
                };
            }
        }
    }

    /// im2col: panels of NR output positions packed from the padded input, then the GEMM.
    fn im2col(&self, padded: &[f32], panel_buffer: &mut [f32], out: &mut [f32]) {
        let (mr, nr) = (self.micro.mr(), self.micro.nr());
        let groups = self.params.groups;
        let (c_in_group, c_out_group) = (self.c_in / groups, self.c_out / groups);
        let k = self.k_offsets.len();
        let [h_out, w_out] = self.output_hw;
        let positions = h_out * w_out;
        let panels = c_out_group.div_ceil(mr);
        let [hp, wp] = self.padded_hw;
        let [sh, sw] = self.params.stride;
        let panel = &mut panel_buffer[..k * nr];
        let last_offset = self.last_offset();
        for g in 0..groups {
            let group_input = &padded[g * c_in_group * hp * wp..(g + 1) * c_in_group * hp * wp];
            for p0 in (0..positions).step_by(nr) {
                let cols = nr.min(positions - p0);
                // Runs of consecutive output columns in one output row.
                let mut p = p0;
                while p < p0 + cols {
                    let (y, x) = (p / w_out, p % w_out);
                    let len = (w_out - x).min(p0 + cols - p);
                    let start = y * sh * wp + x * sw;
                    if sw == 1 {
                        // One bounds check per run, then unchecked copies of `len` values per
                        // row of k (the copies are the im2col's whole cost).
                        assert!(start + last_offset + len <= group_input.len(), "im2col read out of bounds");
                        assert!((k - 1) * nr + (p - p0) + len <= panel.len(), "im2col write out of bounds");
                        let (src, dst) = (group_input.as_ptr(), panel.as_mut_ptr());
                        for (kk, &offset) in self.k_offsets.iter().enumerate() {
                            // SAFETY: both ranges checked above (offset <= last_offset, kk < k).
                            unsafe { copy_run(src.add(start + offset), dst.add(kk * nr + (p - p0)), len) };
                        }
                    } else {
                        for (kk, &offset) in self.k_offsets.iter().enumerate() {
                            let dst = &mut panel[kk * nr + (p - p0)..kk * nr + (p - p0) + len];
                            let src = &group_input[start + offset..];
                            dst.iter_mut().zip(src.iter().step_by(sw)).for_each(|(d, &s)| *d = s);
                        }
                    }
                    p += len;
                }
                for panel_index in 0..panels {
                    let WeightPanel { weights, bias, row0, rows } = self.weight_panel(g, panel_index);
                    // SAFETY: the panel holds K NR values, packed weights K MR; output rows
                    // row0..row0 + rows hold `positions` values each.
                    unsafe {
                        self.micro.tile(
                            k,
                            weights,
                            panel,
                            Packed(nr),
                            Init::Rows(bias),
                            &mut out[row0 * positions + p0..],
                            positions,
                            (rows, cols),
                        )
                    };
                }
            }
        }
    }

    /// RowSegments: the GEMM of [`Self::im2col`] with B rows read in place: panel positions
    /// p0 + 8 s .. p0 + 8 s + 8 (s < NR / 8) are 8 consecutive values of one input row. Weight
    /// panels in the outer loop: one stays in the L1 cache while it meets every position panel
    /// of the sample (on AVX2 1 to 2% faster than positions outer, on AVX-512 no different).
    fn row_segments(&self, padded: &[f32], out: &mut [f32]) {
        let (mr, nr) = (self.micro.mr(), self.micro.nr());
        let groups = self.params.groups;
        let (c_in_group, c_out_group) = (self.c_in / groups, self.c_out / groups);
        let positions = self.output_hw[0] * self.output_hw[1];
        let panels = c_out_group.div_ceil(mr);
        let [hp, wp] = self.padded_hw;
        let plane = c_in_group * hp * wp;
        let last_offset = self.last_offset();
        // Every read: segment + offset + 8 <= the largest segment + last_offset + 8.
        let last_segment = self.segments.iter().flatten().copied().max().unwrap_or(0);
        assert!(
            self.micro.has_segment_tile()
                && self.segments.len() == positions.div_ceil(nr)
                && last_segment + last_offset + 8 <= plane
                && padded.len() >= groups * plane,
            "conv read out of bounds"
        );
        assert!(out.len() >= self.c_out * positions, "conv write out of bounds");
        for g in 0..groups {
            let input = padded[g * plane..].as_ptr();
            for panel in 0..panels {
                let WeightPanel { weights, bias, row0, rows } = self.weight_panel(g, panel);
                for (&segments, p0) in self.segments.iter().zip((0..positions).step_by(nr)) {
                    let cols = nr.min(positions - p0);
                    // SAFETY: this layer chose RowSegments only for a kernel with a segment
                    // tile (on a CPU that has it); reads are in bounds (asserted); packed panels
                    // hold K MR values; output rows row0..row0 + rows hold `positions` values.
                    unsafe {
                        self.micro.tile_segments(
                            &self.k_offsets,
                            weights.as_ptr(),
                            input,
                            segments,
                            bias,
                            out[row0 * positions + p0..].as_mut_ptr(),
                            positions,
                            (rows, cols),
                        )
                    };
                }
            }
        }
    }

    /// Direct convolution: for each output channel, a multiply-add sweep per (channel, tap).
    fn direct(&self, padded: &[f32], out: &mut [f32]) {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        match self.micro {
            // SAFETY: the micro-kernel was chosen from the instruction sets this CPU has.
            Kernel::Avx512 => return unsafe { self.direct_avx512(padded, out) },
            // SAFETY: as above.
            Kernel::Avx2 => return unsafe { self.direct_avx2(padded, out) },
            Kernel::Portable => {}
        }
        self.direct_lanes(padded, out)
    }

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx512f,fma")]
    fn direct_avx512(&self, padded: &[f32], out: &mut [f32]) {
        self.direct_lanes(padded, out)
    }

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,fma")]
    fn direct_avx2(&self, padded: &[f32], out: &mut [f32]) {
        self.direct_lanes(padded, out)
    }

    #[inline(always)]
    fn direct_lanes(&self, padded: &[f32], out: &mut [f32]) {
        let groups = self.params.groups;
        let (c_in_group, c_out_group) = (self.c_in / groups, self.c_out / groups);
        let [h_out, w_out] = self.output_hw;
        let [kh, kw] = self.kernel_hw;
        let [hp, wp] = self.padded_hw;
        let [sh, sw] = self.params.stride;
        let [dh, dw] = self.params.dilation;
        let taps = c_in_group * kh * kw;
        for (o, plane) in out.chunks_exact_mut(h_out * w_out).enumerate() {
            plane.fill(self.bias[o]);
            let g = o / c_out_group;
            let weights = &self.weight[o * taps..(o + 1) * taps];
            for c in 0..c_in_group {
                let channel = &padded[(g * c_in_group + c) * hp * wp..(g * c_in_group + c + 1) * hp * wp];
                for i in 0..kh {
                    for j in 0..kw {
                        let w = weights[(c * kh + i) * kw + j];
                        for (y, row) in plane.chunks_exact_mut(w_out).enumerate() {
                            let src = &channel[(y * sh + i * dh) * wp + j * dw..];
                            if sw == 1 {
                                row.iter_mut().zip(&src[..w_out]).for_each(|(r, &s)| *r += w * s);
                            } else {
                                row.iter_mut().zip(src.iter().step_by(sw)).for_each(|(r, &s)| *r += w * s);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The index of the first non-finite value: branch-free over blocks (it vectorises), then a
/// search in the first bad block.
pub fn first_non_finite(values: &[f32]) -> Option<usize> {
    const BLOCK: usize = 256;
    values.chunks(BLOCK).enumerate().find_map(|(b, block)| {
        if block.iter().fold(true, |all, v| all & v.is_finite()) {
            None
        } else {
            block.iter().position(|v| !v.is_finite()).map(|i| b * BLOCK + i)
        }
    })
}

/// Asks the CPU to bring `values` into its caches (the next sample, while this one is
/// computed: the copy of a sample not yet in cache showed as 6% of a conv2d's profile on 8 x 8
/// images; the prefetch buys 1 to 2%).
#[inline(always)]
fn prefetch(values: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in values.chunks(16) {
        // SAFETY: a prefetch never faults, and the address is inside `values`.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast())
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}

/// Copies `len` values from src to dst, the short runs of im2col (a library memcpy call per
/// run would cost as much as the copy): blocks of 8 as fixed-size moves, then single values.
///
/// # Safety
/// `len` values readable at src and writable at dst, not overlapping.
#[inline(always)]
unsafe fn copy_run(src: *const f32, dst: *mut f32, len: usize) {
    let mut i = 0;
    // SAFETY: the caller promises len values at src and at dst.
    unsafe {
        while i + 8 <= len {
            let block = core::ptr::read_unaligned(src.add(i) as *const [f32; 8]);
            core::ptr::write_unaligned(dst.add(i) as *mut [f32; 8], block);
            i += 8;
        }
        while i < len {
            *dst.add(i) = *src.add(i);
            i += 1;
        }
    }
}

/// A conv1d layer: inputs [n][c_in][len], weight [c_out][c_in/groups][k]; a [`Conv2d`] of
/// height 1 (its hyper-parameters are index 1 of [`ConvParams`]).
#[derive(Clone, Debug)]
pub struct Conv1d {
    inner: Conv2d,
}

impl Conv1d {
    /// A layer for inputs [n][c_in][len]; `stride`, `padding` ([before, after]), `dilation`,
    /// `groups` as for [`Conv2d::new`] along the one axis.
    ///
    /// Errors: as [`Conv2d::new`].
    #[allow(clippy::too_many_arguments)]
    pub fn new<W: Copy + Into<f32>>(
        c_in: usize,
        len: usize,
        c_out: usize,
        kernel: usize,
        (stride, padding, dilation, groups): (usize, [usize; 2], usize, usize),
        weight: &[W],
        bias: Option<&[W]>,
    ) -> Result<Self> {
        let params =
            ConvParams { stride: [1, stride], padding: [[0, 0], padding], dilation: [1, dilation], groups };
        Ok(Self { inner: Conv2d::new(c_in, [1, len], c_out, [1, kernel], params, weight, bias)? })
    }

    /// The layer as the conv2d of height 1 that runs it.
    pub fn as_conv2d(&self) -> &Conv2d {
        &self.inner
    }

    /// Output length.
    pub fn output_len(&self) -> usize {
        self.inner.output_hw()[1]
    }

    /// `input` [n][c_in][len] to `output` [n][c_out][len_out]; errors as [`Conv2d::forward`].
    pub fn forward(&self, input: &[f32], output: &mut [f32]) -> Result<()> {
        self.inner.forward(input, output)
    }
}

impl From<Conv1d> for Conv2d {
    fn from(layer: Conv1d) -> Self {
        layer.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A naive f64 reference written from the definition, with explicit bounds tests.
    fn reference(
        input: &[f32],
        (c_in, h, w): (usize, usize, usize),
        weight: &[f32],
        bias: &[f32],
        (c_out, kh, kw): (usize, usize, usize),
        p: &ConvParams,
    ) -> Vec<f64> {
        let h_out = (h + p.padding[0][0] + p.padding[0][1] - p.dilation[0] * (kh - 1) - 1) / p.stride[0] + 1;
        let w_out = (w + p.padding[1][0] + p.padding[1][1] - p.dilation[1] * (kw - 1) - 1) / p.stride[1] + 1;
        let (cig, cog) = (c_in / p.groups, c_out / p.groups);
        let n = input.len() / (c_in * h * w);
        let mut out = vec![0.0; n * c_out * h_out * w_out];
        for s in 0..n {
            for o in 0..c_out {
                for y in 0..h_out {
                    for x in 0..w_out {
                        let mut acc = f64::from(bias[o]);
                        for c in 0..cig {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let iy = (y * p.stride[0] + i * p.dilation[0]) as isize
                                        - p.padding[0][0] as isize;
                                    let ix = (x * p.stride[1] + j * p.dilation[1]) as isize
                                        - p.padding[1][0] as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let ci = o / cog * cig + c;
                                    acc += f64::from(weight[((o * cig + c) * kh + i) * kw + j])
                                        * f64::from(
                                            input[((s * c_in + ci) * h + iy as usize) * w + ix as usize],
                                        );
                                }
                            }
                        }
                        out[((s * c_out + o) * h_out + y) * w_out + x] = acc;
                    }
                }
            }
        }
        out
    }

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| (((i * 7919 + seed * 104_729) % 2000) as f32 / 1000.0) - 1.0).collect()
    }

    #[test]
    fn hand_computed_conv1d() {
        // in = [1, 2, 3, 4], w = [1, 0, -1], 'same' padding [1, 1]: out = [-2, -2, -2, 3].
        let layer = Conv1d::new(1, 4, 1, 3, (1, [1, 1], 1, 1), &[1.0f32, 0.0, -1.0], None).unwrap();
        let mut out = [0.0f32; 4];
        layer.forward(&[1.0, 2.0, 3.0, 4.0], &mut out).unwrap();
        assert_eq!(out, [-2.0, -2.0, -2.0, 3.0]);
    }

    /// Every algorithm on every variant this CPU runs matches the definition, and every
    /// variant gives the bits of the first (the baseline): one chain of fused multiply-adds per
    /// value whatever the tile.
    #[test]
    fn every_algorithm_and_variant_matches_the_definition() {
        let cases: [(usize, usize, usize, usize, usize, usize, ConvParams); 9] = [
            (3, 1, 37, 9, 1, 5, ConvParams { padding: [[0, 0], [2, 2]], ..Default::default() }),
            (
                4,
                6,
                7,
                10,
                3,
                3,
                ConvParams { stride: [2, 1], padding: [[1, 0], [1, 2]], ..Default::default() },
            ),
            (6, 5, 5, 12, 2, 3, ConvParams { dilation: [2, 1], groups: 3, ..Default::default() }),
            (4, 6, 6, 4, 3, 3, ConvParams { padding: [[1, 1], [1, 1]], groups: 4, ..Default::default() }),
            (2, 1, 40, 8, 1, 4, ConvParams { stride: [1, 3], dilation: [1, 2], ..Default::default() }),
            (5, 3, 3, 20, 5, 5, ConvParams { padding: [[2, 2], [2, 2]], ..Default::default() }),
            // Output widths of 8 and 16 (RowSegments on AVX-512): 40 positions (a partial
            // panel) and 10 channels (a partial tile); a vertical stride; dilation and groups.
            (3, 5, 8, 10, 3, 3, ConvParams { padding: [[1, 1], [1, 1]], ..Default::default() }),
            (4, 9, 18, 16, 3, 3, ConvParams { stride: [2, 1], ..Default::default() }),
            (
                6,
                7,
                9,
                12,
                2,
                5,
                ConvParams { padding: [[1, 0], [1, 2]], dilation: [2, 1], groups: 3, ..Default::default() },
            ),
        ];
        let mut algorithms = Vec::new();
        for (c_in, h, w, c_out, kh, kw, params) in cases {
            let k = c_in / params.groups * kh * kw;
            let weight = values(c_out * k, 1);
            let bias = values(c_out, 2);
            let n = 3;
            let input = values(n * c_in * h * w, 3);
            let expect = reference(&input, (c_in, h, w), &weight, &bias, (c_out, kh, kw), &params);
            let mut first: Option<Vec<u32>> = None;
            for isa in VectorIsa::available() {
                let layer =
                    Conv2d::with_isa(c_in, [h, w], c_out, [kh, kw], params, &weight, Some(&bias), isa)
                        .unwrap();
                algorithms.push(layer.algorithm());
                let mut out = vec![f32::NAN; n * layer.output_size()];
                layer.forward(&input, &mut out).unwrap();
                assert_eq!(out.len(), expect.len());
                for (i, (&got, &want)) in out.iter().zip(&expect).enumerate() {
                    assert!(
                        (f64::from(got) - want).abs() <= 1e-5 * (1.0 + want.abs()),
                        "{:?} {isa:?} case {c_in} {h}x{w} {c_out} {kh}x{kw} {params:?} [{i}]: {got} vs {want}",
                        layer.algorithm()
                    );
                }
                let bits: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
                match &first {
                    Some(first) => assert!(
                        *first == bits,
                        "{:?} {isa:?} case {c_in} {h}x{w} {c_out} {kh}x{kw} {params:?}: other bits than the baseline",
                        layer.algorithm()
                    ),
                    None => first = Some(bits),
                }
            }
        }
        let mut every = vec![Algorithm::Direct, Algorithm::ImplicitGemm, Algorithm::Im2colGemm];
        if VectorIsa::hardware() >= VectorIsa::Avx2 {
            every.push(Algorithm::RowSegments);
        }
        assert!(every.iter().all(|a| algorithms.contains(a)), "{algorithms:?}");
    }

    /// The blocked search finds the first non-finite value where a plain search does, at
    /// block edges too, and the checked forward names it by its index in the batch.
    #[test]
    fn non_finite_inputs_are_found() {
        for (len, bad) in [(1000, 0), (1000, 255), (1000, 256), (1000, 999), (513, 300), (7, 3)] {
            for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut values = values(len, 9);
                values[bad] = value;
                values[len - 1] = f32::NAN;
                let expected = values.iter().position(|v| !v.is_finite());
                assert_eq!(first_non_finite(&values), expected, "len {len} bad {bad}");
            }
        }
        assert_eq!(first_non_finite(&values(700, 4)), None);
        let params = ConvParams { padding: [[1, 1], [1, 1]], ..Default::default() };
        let layer = Conv2d::new(2, [4, 8], 16, [3, 3], params, &values(16 * 18, 1), None).unwrap();
        let mut input = values(3 * layer.input_size(), 2);
        let bad = 2 * layer.input_size() + 17;
        input[bad] = f32::NAN;
        let mut out = vec![0.0; 3 * layer.output_size()];
        let error = layer.forward_finite_with(&mut layer.workspace(), &input, &mut out).unwrap_err();
        assert!(error.message().contains(&format!("input[{bad}] is NaN")), "{}", error.message());
        layer.forward_with(&mut layer.workspace(), &input, &mut out).unwrap();
        assert!(out[2 * layer.output_size()..].iter().any(|v| v.is_nan()));
    }

    #[test]
    fn bad_shapes_are_rejected() {
        let w = [0.0f32; 9];
        let p = ConvParams::default();
        assert!(Conv2d::new(1, [2, 2], 1, [3, 3], p, &w, None).unwrap_err().message().contains("larger"));
        assert!(Conv2d::new(0, [2, 2], 1, [1, 1], p, &w[..0], None).is_err());
        let grouped = ConvParams { groups: 2, ..p };
        assert!(
            Conv2d::new(3, [4, 4], 2, [1, 1], grouped, &w[..3], None)
                .unwrap_err()
                .message()
                .contains("divisible")
        );
        let nan = [f32::NAN; 9];
        assert!(Conv2d::new(1, [3, 3], 1, [3, 3], p, &nan, None).unwrap_err().message().contains("NaN"));
        let huge = Conv2d::new(usize::MAX / 2, [4, 4], 1, [1, 1], p, &w, None).unwrap_err();
        assert!(huge.message().contains("overflow"), "{huge}");
        assert_eq!(same_padding(8, 3, 1, 1).unwrap(), [1, 1]);
        assert_eq!(same_padding(8, 4, 2, 1).unwrap(), [1, 1]);
        assert_eq!(same_padding(7, 4, 1, 1).unwrap(), [1, 2]);
        assert_eq!(causal_padding(5, 2).unwrap(), [8, 0]);
    }
}
