//! Max and average pooling, 1D and 2D (NCHW), and global average pooling.
//!
//! Output size per axis as for convolution without dilation:
//! (in + before + after - k) / s + 1, rounded down (PyTorch's ceil_mode = False). Each side's
//! padding must be smaller than the kernel, so every window holds at least one input cell.
//! Max pooling ignores padded cells (PyTorch pads with -inf). Average pooling divides by
//! kh kw when `count_include_pad` (PyTorch's default; Keras has no padding cells), else by the
//! number of input cells in the window (Keras 'same', PyTorch count_include_pad = False).

use crate::error::{Result, invalid};
use crate::math::simd::VectorIsa;
use crate::nn::conv::{output_len, product};

/// Which pooling reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// The maximum over the window's input cells.
    Max,
    /// The mean over the window.
    Average {
        /// Divide by the full window kh kw (padded cells count as zeros) instead of by the
        /// number of input cells.
        count_include_pad: bool,
    },
}

/// A 2-D pooling layer for one input shape [C][H][W] (1-D pooling: H = 1, kernel [1, k]).
#[derive(Clone, Debug)]
pub struct Pool2d {
    kind: PoolKind,
    channels: usize,
    input_hw: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [[usize; 2]; 2],
    output_hw: [usize; 2],
}

impl Pool2d {
    /// A layer for inputs [n][channels][h][w] with `kernel`, `stride` ([h, w]) and `padding`
    /// ([[top, bottom], [left, right]]).
    ///
    /// Errors: [`crate::Error::InvalidArgument`] for zero sizes, kernels or strides, padding
    /// not smaller than the kernel, a kernel larger than the padded input, or an overflow.
    pub fn new(
        kind: PoolKind,
        channels: usize,
        input_hw: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [[usize; 2]; 2],
    ) -> Result<Self> {
        if channels == 0 {
            return Err(invalid!("pooling needs channels >= 1"));
        }
        let mut output_hw = [0; 2];
        for axis in 0..2 {
            let name = ["height", "width"][axis];
            if padding[axis].iter().any(|&p| p >= kernel[axis].max(1)) {
                return Err(invalid!(
                    "{name}: padding {:?} must be smaller than the kernel {} on each side",
                    padding[axis],
                    kernel[axis]
                ));
            }
            output_hw[axis] = output_len(input_hw[axis], kernel[axis], stride[axis], padding[axis], 1)
                .map_err(|e| invalid!("{name}: {}", e.message()))?;
        }
        product("pooling input", &[channels, input_hw[0], input_hw[1]])?;
        Ok(Self { kind, channels, input_hw, kernel, stride, padding, output_hw })
    }

    /// The reduction.
    pub fn kind(&self) -> PoolKind {
        self.kind
    }

    /// Channels per sample.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// [h, w] of the input.
    pub fn input_hw(&self) -> [usize; 2] {
        self.input_hw
    }

    /// Window [kh, kw].
    pub fn kernel(&self) -> [usize; 2] {
        self.kernel
    }

    /// Step between windows [h, w].
    pub fn stride(&self) -> [usize; 2] {
        self.stride
    }

    /// Padding [[top, bottom], [left, right]].
    pub fn padding(&self) -> [[usize; 2]; 2] {
        self.padding
    }

    /// [h_out, w_out].
    pub fn output_hw(&self) -> [usize; 2] {
        self.output_hw
    }

    /// Values per input sample.
    pub fn input_size(&self) -> usize {
        self.channels * self.input_hw[0] * self.input_hw[1]
    }

    /// Values per output sample.
    pub fn output_size(&self) -> usize {
        self.channels * self.output_hw[0] * self.output_hw[1]
    }

    /// `input` [n][C][H][W] to `output` [n][C][h_out][w_out].
    ///
    /// Errors: [`crate::Error::InvalidArgument`] when the lengths are not n whole samples.
    pub fn forward(&self, input: &[f32], output: &mut [f32]) -> Result<()> {
        let (per_in, per_out) = (self.input_size(), self.output_size());
        let n = input.len() / per_in;
        if input.len() != n * per_in || output.len() != n * per_out {
            return Err(invalid!(
                "input has {} values and output {}: expected n x {per_in} and n x {per_out}",
                input.len(),
                output.len()
            ));
        }
        self.pool_vectorised(input, output);
        Ok(())
    }

    /// [`Self::pool_lanes`] on the widest vector instruction set of this CPU.
    fn pool_vectorised(&self, input: &[f32], output: &mut [f32]) {
        self.pool_on(VectorIsa::detect(), input, output)
    }

    /// [`Self::pool_lanes`] compiled for `isa` (one this CPU runs; tests compare them).
    fn pool_on(&self, isa: VectorIsa, input: &[f32], output: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        match isa {
            // SAFETY: the caller passes a set this CPU runs (VectorIsa::detect or available).
            VectorIsa::Avx512 => return unsafe { self.pool_avx512(input, output) },
            VectorIsa::Avx2 => return unsafe { self.pool_avx2(input, output) },
            VectorIsa::Baseline | VectorIsa::Neon => {}
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = isa;
        self.pool_lanes(input, output)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    unsafe fn pool_avx512(&self, input: &[f32], output: &mut [f32]) {
        self.pool_lanes(input, output)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn pool_avx2(&self, input: &[f32], output: &mut [f32]) {
        self.pool_lanes(input, output)
    }

    /// The pooling of whole samples (lengths checked), written so that the loops over the
    /// outputs of a row vectorise.
    #[inline(always)]
    fn pool_lanes(&self, input: &[f32], output: &mut [f32]) {
        let [h, w] = self.input_hw;
        let [h_out, w_out] = self.output_hw;
        let window = (self.kernel[0] * self.kernel[1]) as f32;
        // Window rows [y0, y1) and columns [x0, x1) of output (y, x), clipped to the input
        // (the padding keeps them non-empty).
        let rows = |y: usize| {
            let top = y * self.stride[0];
            (top.saturating_sub(self.padding[0][0]), (top + self.kernel[0] - self.padding[0][0]).min(h))
        };
        let columns = |x: usize| {
            let left = x * self.stride[1];
            (left.saturating_sub(self.padding[1][0]), (left + self.kernel[1] - self.padding[1][0]).min(w))
        };
        // Per kernel column kx, the outputs x whose cell x * stride + kx - pad_left lies in
        // the input: [first, end). Loops over x then vectorise (strided loads).
        let (stride, pad_left) = (self.stride[1], self.padding[1][0]);
        let span = |kx: usize| {
            let first = pad_left.saturating_sub(kx).div_ceil(stride);
            let end = (w + pad_left).saturating_sub(kx).div_ceil(stride).min(w_out);
            (first, end.max(first))
        };
        let is_max = matches!(self.kind, PoolKind::Max);
        for (plane, out) in input.chunks_exact(h * w).zip(output.chunks_exact_mut(h_out * w_out)) {
            for (y, out_row) in out.chunks_exact_mut(w_out).enumerate() {
                let (y0, y1) = rows(y);
                out_row.fill(if is_max { f32::NEG_INFINITY } else { 0.0 });
                // Rows, then kernel columns: the order of the direct window sum.
                for row in plane[y0 * w..y1 * w].chunks_exact(w) {
                    // Windows side by side from the row's start (the common 2, 3, 4 wide
                    // pools): contiguous chunks, which vectorise better than strided loads.
                    let side_by_side = stride == self.kernel[1] && pad_left == 0 && w_out * stride <= w;
                    if side_by_side && (2..=4).contains(&stride) {
                        match stride {
                            2 => combine_windows::<2>(out_row, row, is_max),
                            3 => combine_windows::<3>(out_row, row, is_max),
                            _ => combine_windows::<4>(out_row, row, is_max),
                        }
                        continue;
                    }
                    for kx in 0..self.kernel[1] {
                        let (first, end) = span(kx);
                        if first == end {
                            continue;
                        }
                        let base = first * stride + kx - pad_left;
                        // The input cell of output first + i (unchecked so that the loop
                        // vectorises with strided loads).
                        // SAFETY: first + i < end, and span keeps (end - 1) * stride + kx -
                        // pad_left < w = row.len().
                        let cell = |i: usize| unsafe { *row.get_unchecked(base + i * stride) };
                        let cells = out_row[first..end].iter_mut().enumerate();
                        if is_max {
                            // A comparison, not f32::max: NaN never wins either way (the
                            // maximum starts at -inf), and it is one vector max.
                            cells.for_each(|(i, m)| {
                                let v = cell(i);
                                *m = if v > *m { v } else { *m }
                            });
                        } else {
                            cells.for_each(|(i, sum)| *sum += cell(i));
                        }
                    }
                }
                if let PoolKind::Average { count_include_pad } = self.kind {
                    for (x, cell) in out_row.iter_mut().enumerate() {
                        let (x0, x1) = columns(x);
                        *cell /= if count_include_pad { window } else { ((y1 - y0) * (x1 - x0)) as f32 };
                    }
                }
            }
        }
    }
}

/// out[x] = max (or +) of out[x] and row[K x + j] for j = 0..K, in increasing j (the order of
/// the general loop, so sums round the same).
#[inline(always)]
fn combine_windows<const K: usize>(out: &mut [f32], row: &[f32], is_max: bool) {
    let windows = out.iter_mut().zip(row.chunks_exact(K));
    if is_max {
        windows.for_each(|(m, cells)| {
            for &v in cells {
                *m = if v > *m { v } else { *m };
            }
        });
    } else {
        windows.for_each(|(sum, cells)| {
            for &v in cells {
                *sum += v;
            }
        });
    }
}

/// Global average pooling: `input` [n][C][plane] (any spatial shape flattened) to
/// `output` [n][C], sums in f64.
///
/// Errors: [`crate::Error::InvalidArgument`] when plane is 0 or the lengths disagree.
pub fn global_avgpool(input: &[f32], plane: usize, output: &mut [f32]) -> Result<()> {
    if plane == 0 || input.len() != output.len().saturating_mul(plane) {
        return Err(invalid!(
            "global average pooling: input has {} values, output {}, plane {plane}",
            input.len(),
            output.len()
        ));
    }
    for (cells, out) in input.chunks_exact(plane).zip(output.iter_mut()) {
        *out = (cells.iter().map(|&v| f64::from(v)).sum::<f64>() / plane as f64) as f32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows side by side (kernel = stride = 2, 3, 4, with and without a ragged end) against
    /// the definition written out in the test: max and mean of each window.
    #[test]
    fn side_by_side_windows_match_the_definition() {
        for k in 2..=4usize {
            for w in [4 * k, 4 * k + 1, 4 * k + k - 1] {
                let (h, w_out) = (3, w / k);
                let input: alloc::vec::Vec<f32> =
                    (0..h * w).map(|i| ((i * 7919 % 1013) as f32 - 500.0) / 37.0).collect();
                for kind in [PoolKind::Max, PoolKind::Average { count_include_pad: false }] {
                    let pool = Pool2d::new(kind, 1, [h, w], [1, k], [1, k], [[0, 0], [0, 0]]).unwrap();
                    let mut out = alloc::vec![0.0f32; h * w_out];
                    pool.forward(&input, &mut out).unwrap();
                    for y in 0..h {
                        for x in 0..w_out {
                            let cells = &input[y * w + x * k..y * w + x * k + k];
                            let expected = match kind {
                                PoolKind::Max => cells.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                                PoolKind::Average { .. } => cells.iter().sum::<f32>() / k as f32,
                            };
                            assert_eq!(out[y * w_out + x], expected, "k {k} w {w} {kind:?} ({y}, {x})");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn hand_computed_pools() {
        // 1 x 3 x 3 input 1..9, kernel 2, stride 1, padding [0, 1] on both axes.
        let input: alloc::vec::Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let max = Pool2d::new(PoolKind::Max, 1, [3, 3], [2, 2], [1, 1], [[0, 1], [0, 1]]).unwrap();
        let mut out = [0.0f32; 9];
        max.forward(&input, &mut out).unwrap();
        assert_eq!(out, [5.0, 6.0, 6.0, 8.0, 9.0, 9.0, 8.0, 9.0, 9.0]);
        for (include, last) in [(false, 9.0), (true, 9.0 / 4.0)] {
            let avg = Pool2d::new(
                PoolKind::Average { count_include_pad: include },
                1,
                [3, 3],
                [2, 2],
                [1, 1],
                [[0, 1], [0, 1]],
            )
            .unwrap();
            avg.forward(&input, &mut out).unwrap();
            assert_eq!(out[0], 3.0);
            assert_eq!(out[8], last);
        }
        assert!(Pool2d::new(PoolKind::Max, 1, [3, 3], [2, 2], [1, 1], [[2, 0], [0, 0]]).is_err());
        let mut mean = [0.0f32; 1];
        global_avgpool(&input, 9, &mut mean).unwrap();
        assert_eq!(mean[0], 5.0);
    }

    /// Every instruction set this CPU runs gives the same bits (the same loop compiled for
    /// each; comparisons and additions in the same order), for max and both averages, side by
    /// side windows, strided and padded ones; and the definition's values.
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        /// Input, window, stride and padding (before, after) per axis.
        type Case = ([usize; 2], [usize; 2], [usize; 2], [[usize; 2]; 2]);
        let shapes: [Case; 4] = [
            ([8, 8], [2, 2], [2, 2], [[0, 0], [0, 0]]),
            ([1, 64], [1, 4], [1, 4], [[0, 0], [0, 0]]),
            ([7, 9], [3, 3], [2, 2], [[1, 1], [1, 1]]),
            ([5, 37], [2, 3], [1, 2], [[0, 1], [1, 0]]),
        ];
        let kinds = [
            PoolKind::Max,
            PoolKind::Average { count_include_pad: false },
            PoolKind::Average { count_include_pad: true },
        ];
        for (hw, kernel, stride, padding) in shapes {
            for kind in kinds {
                let (c, n) = (3, 2);
                let pool = Pool2d::new(kind, c, hw, kernel, stride, padding).unwrap();
                let input: alloc::vec::Vec<f32> =
                    (0..n * pool.input_size()).map(|i| ((i * 7919 % 1013) as f32 - 500.0) / 37.0).collect();
                let mut first: Option<alloc::vec::Vec<f32>> = None;
                for isa in VectorIsa::available() {
                    let mut out = alloc::vec![f32::NAN; n * pool.output_size()];
                    pool.pool_on(isa, &input, &mut out);
                    // The definition: max or mean over the window cells inside the input.
                    let [h, w] = hw;
                    let [h_out, w_out] = pool.output_hw;
                    for (p, plane) in input.chunks_exact(h * w).enumerate() {
                        for y in 0..h_out {
                            for x in 0..w_out {
                                let (mut best, mut sum, mut count) = (f32::NEG_INFINITY, 0.0f64, 0usize);
                                for i in 0..kernel[0] {
                                    for j in 0..kernel[1] {
                                        let (iy, ix) = (y * stride[0] + i, x * stride[1] + j);
                                        let (iy, ix) =
                                            (iy.wrapping_sub(padding[0][0]), ix.wrapping_sub(padding[1][0]));
                                        if iy < h && ix < w {
                                            best = best.max(plane[iy * w + ix]);
                                            sum += f64::from(plane[iy * w + ix]);
                                            count += 1;
                                        }
                                    }
                                }
                                let got = out[(p * h_out + y) * w_out + x];
                                let expect = match kind {
                                    PoolKind::Max => f64::from(best),
                                    PoolKind::Average { count_include_pad: true } => {
                                        sum / (kernel[0] * kernel[1]) as f64
                                    }
                                    PoolKind::Average { .. } => sum / count as f64,
                                };
                                assert!(
                                    (f64::from(got) - expect).abs() <= 1e-5 * (1.0 + expect.abs()),
                                    "{isa:?} {kind:?} {hw:?} plane {p} ({y}, {x}): {got} vs {expect}"
                                );
                            }
                        }
                    }
                    match &first {
                        None => first = Some(out),
                        Some(reference) => assert!(
                            reference.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{isa:?} {kind:?} {hw:?}: bits differ from the baseline"
                        ),
                    }
                }
            }
        }
    }
}
