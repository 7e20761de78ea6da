//! Masked dense layers (MADE, Germain et al. 2015, "MADE: Masked Autoencoder for Distribution
//! Estimation", ICML, eqs. 8 to 13; SECRET eq. 3.4) and their batched f32 kernel.
//!
//! Every input and output unit carries a degree. The mask of a hidden layer connects output o
//! to input i where deg(o) >= deg(i); the mask of an output (head) layer where
//! deg(o) > deg(i). Weights are stored with the mask applied (zeros outside it).
//!
//! # Why degrees are sorted
//!
//! A [`MaskedDense`] requires its input and output degrees in non-decreasing order (the MADE
//! model sorts every layer by degree when it is built). Then the inputs that row o may see are
//! a prefix of the input vector, of length `prefix(o)`, and rows of equal degree share it: the
//! kernel visits only that prefix, about half of the dense product for MADE's masks.
//!
//! # The kernel
//!
//! Activations are processed in tiles of [`TILE`] samples stored feature-major
//! (`tile[feature * TILE + lane]`): for a group of up to 4 rows of equal degree (6 with AVX2
//! and NEON, 8 with AVX-512),
//!
//! ```text
//! acc[r][lane] = bias[r];   for j in 0..prefix: acc[r][lane] = fma(w[r][j], in[j][lane], acc[r][lane])
//! ```
//!
//! so that each input value is loaded once per group and every lane runs the same operations
//! in the same order: a sample's result does not depend on its lane, its tile or the thread.
//! The variants, picked at run time from [`VectorIsa`](crate::math::simd::VectorIsa): AVX-512
//! and AVX2 + FMA intrinsics on x86-64 with std, NEON intrinsics (`fmla v.4s`) on aarch64, and a
//! portable loop elsewhere (the x86-64 baseline, aarch64's `baseline` set, no_std builds) whose
//! fma is [`portable_fma`]: the FMA instruction on aarch64, binary64 arithmetic rounded to odd
//! on the x86-64 baseline ([`crate::math::mul_add_f32_by_f64`]). Every fma rounds once, so every
//! variant gives the same bits, on x86-64 and aarch64 alike.

use alloc::vec::Vec;
use core::ops::Range;

use crate::error::{Error, Result};
/// The portable kernel's fused multiply-add (binary64 rounded to odd on x86-64's baseline set,
/// the FMA instruction on aarch64).
use crate::math::mul_add_f32_portable as portable_fma;

/// Samples per tile of the batched kernels (two AVX registers of f32).
pub const TILE: usize = 16;

/// Rows computed together by the kernel (register blocking; the portable one).
const ROW_GROUP: usize = 4;

/// Rows computed together by the AVX2 kernel (two registers each) and the NEON one (four each:
/// 24 of the 32 q registers).
#[cfg(any(all(feature = "std", target_arch = "x86_64"), target_arch = "aarch64"))]
const AVX2_ROW_GROUP: usize = 6;

/// Which mask a layer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskRule {
    /// Input or hidden -> hidden: connected where deg(out) >= deg(in).
    Hidden,
    /// Last hidden -> output head: connected where deg(out) > deg(in).
    Output,
}

impl MaskRule {
    /// Whether an output of degree `out` sees an input of degree `input`.
    #[inline]
    pub fn connects(self, out: i64, input: i64) -> bool {
        match self {
            MaskRule::Hidden => out >= input,
            MaskRule::Output => out > input,
        }
    }
}

/// Rows `start..end` share their degree and so the input prefix `0..prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RowBlock {
    start: usize,
    end: usize,
    prefix: usize,
}

/// A dense layer y = W x + b whose weight is masked by degrees, with degree-sorted inputs and
/// outputs (see the module documentation).
#[derive(Clone, Debug)]
pub struct MaskedDense {
    n_in: usize,
    n_out: usize,
    /// [n_out][n_in], row-major, zero outside the mask.
    weight: Vec<f32>,
    bias: Vec<f32>,
    out_degrees: Vec<i64>,
    blocks: Vec<RowBlock>,
}

impl MaskedDense {
    /// A layer from its weight `[n_out][n_in]` (row-major, the PyTorch Linear convention), bias
    /// `[n_out]` and the degrees of its inputs and outputs, both non-decreasing. The mask of
    /// `rule` is applied to the weight (values outside it are dropped). `name` names the layer
    /// in error messages.
    ///
    /// Errors: [`Error::InvalidArgument`] for wrong lengths, unsorted degrees or a non-finite
    /// weight or bias inside the mask.
    pub fn new(
        name: &str,
        mut weight: Vec<f32>,
        bias: Vec<f32>,
        in_degrees: &[i64],
        out_degrees: &[i64],
        rule: MaskRule,
    ) -> Result<Self> {
        let (n_in, n_out) = (in_degrees.len(), out_degrees.len());
        if weight.len() != n_in * n_out || bias.len() != n_out {
            return Err(Error::InvalidArgument(alloc::format!(
                "{name}: weight has {} values and bias {}, expected {n_out} x {n_in} and {n_out}",
                weight.len(),
                bias.len()
            )));
        }
        for (what, degrees) in [("input", in_degrees), ("output", out_degrees)] {
            if degrees.windows(2).any(|w| w[0] > w[1]) {
                return Err(Error::InvalidArgument(alloc::format!(
                    "{name}: {what} degrees must be sorted in non-decreasing order"
                )));
            }
        }
        let mut blocks = Vec::new();
        let mut start = 0;
        while start < n_out {
            let degree = out_degrees[start];
            let end = start + out_degrees[start..].iter().take_while(|&&d| d == degree).count();
            let prefix = in_degrees.iter().take_while(|&&d| rule.connects(degree, d)).count();
            blocks.push(RowBlock { start, end, prefix });
            start = end;
        }
        for block in &blocks {
            for row in block.start..block.end {
                let w = &mut weight[row * n_in..(row + 1) * n_in];
                w[block.prefix..].fill(0.0);
                if let Some(j) = w.iter().position(|v| !v.is_finite()) {
                    return Err(Error::InvalidArgument(alloc::format!(
                        "{name}: weight[{row}][{j}] is {} (must be finite)",
                        w[j]
                    )));
                }
                if !bias[row].is_finite() {
                    return Err(Error::InvalidArgument(alloc::format!(
                        "{name}: bias[{row}] is {} (must be finite)",
                        bias[row]
                    )));
                }
            }
        }
        Ok(Self { n_in, n_out, weight, bias, out_degrees: out_degrees.to_vec(), blocks })
    }

    /// Number of inputs.
    pub fn n_in(&self) -> usize {
        self.n_in
    }

    /// Number of outputs.
    pub fn n_out(&self) -> usize {
        self.n_out
    }

    /// The masked weight, [n_out][n_in] row-major.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }

    /// The bias, [n_out].
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// The output degrees (non-decreasing).
    pub fn out_degrees(&self) -> &[i64] {
        &self.out_degrees
    }

    /// The number of inputs row `row` sees (a prefix of the input vector).
    pub fn prefix(&self, row: usize) -> usize {
        self.blocks.iter().find(|b| b.range().contains(&row)).map_or(0, |b| b.prefix)
    }

    /// The number of output rows whose degree is below `degree` (they form a prefix).
    pub fn rows_below(&self, degree: i64) -> usize {
        self.out_degrees.partition_point(|&d| d < degree)
    }

    /// y = W x + b for a batch: `input` [n][n_in] and `output` [n][n_out], row-major.
    ///
    /// Errors: [`Error::InvalidArgument`] when the lengths disagree.
    pub fn forward(&self, input: &[f32], output: &mut [f32]) -> Result<()> {
        let n = input.len() / self.n_in.max(1);
        if self.n_in == 0 || input.len() != n * self.n_in || output.len() != n * self.n_out {
            return Err(Error::InvalidArgument(alloc::format!(
                "input has {} values and output {}: expected n x {} and n x {}",
                input.len(),
                output.len(),
                self.n_in,
                self.n_out
            )));
        }
        let mut tile_in = alloc::vec![0.0f32; self.n_in * TILE];
        let mut tile_out = alloc::vec![0.0f32; self.n_out * TILE];
        for first in (0..n).step_by(TILE) {
            let lanes = TILE.min(n - first);
            tile_in.fill(0.0);
            for lane in 0..lanes {
                for (j, &v) in input[(first + lane) * self.n_in..][..self.n_in].iter().enumerate() {
                    tile_in[j * TILE + lane] = v;
                }
            }
            self.forward_tile(&tile_in, &mut tile_out, 0..self.n_out);
            for lane in 0..lanes {
                for (o, v) in output[(first + lane) * self.n_out..][..self.n_out].iter_mut().enumerate() {
                    *v = tile_out[o * TILE + lane];
                }
            }
        }
        Ok(())
    }

    /// Rows `rows` of y = W x + b for one tile: `input` [n_in][TILE] and `output`
    /// [n_out][TILE], feature-major. `rows` must start and end at a change of degree (as
    /// [`rows_below`](Self::rows_below) gives); other output rows are left as they are.
    pub fn forward_tile(&self, input: &[f32], output: &mut [f32], rows: Range<usize>) {
        let kernel = Kernel::detect();
        for block in &self.blocks {
            if block.end <= rows.start || block.start >= rows.end {
                continue;
            }
            let mut row = block.start;
            while row < block.end {
                let count = kernel.row_group().min(block.end - row);
                let weight = &self.weight[row * self.n_in..(row + count) * self.n_in];
                let bias = &self.bias[row..row + count];
                let out = &mut output[row * TILE..(row + count) * TILE];
                kernel.rows(weight, self.n_in, block.prefix, bias, &input[..block.prefix * TILE], out);
                row += count;
            }
        }
    }
}

impl RowBlock {
    fn range(&self) -> Range<usize> {
        self.start..self.end
    }
}

/// The kernel variant for this CPU, picked once per call.
#[derive(Clone, Copy)]
enum Kernel {
    Baseline,
    #[cfg(target_arch = "aarch64")]
    Neon,
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    Avx2Fma,
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    Avx512,
}

impl Kernel {
    #[inline]
    fn detect() -> Self {
        Self::for_isa(crate::math::simd::VectorIsa::detect())
    }

    /// The variant for an instruction set this CPU runs (tests compare them).
    #[inline]
    fn for_isa(isa: crate::math::simd::VectorIsa) -> Self {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        match isa {
            crate::math::simd::VectorIsa::Avx512 => return Kernel::Avx512,
            crate::math::simd::VectorIsa::Avx2 => return Kernel::Avx2Fma,
            crate::math::simd::VectorIsa::Baseline | crate::math::simd::VectorIsa::Neon => {}
        }
        #[cfg(target_arch = "aarch64")]
        if isa == crate::math::simd::VectorIsa::Neon {
            return Kernel::Neon;
        }
        let _ = isa;
        Kernel::Baseline
    }

    /// Rows computed together: as many as keep every FMA pipe busy (one register per row on
    /// AVX-512: 8 accumulators; two on AVX2: 6 rows, 12 of the 16 ymm registers, where 4 rows
    /// left 8 accumulators for 2 pipes of 4-cycle FMAs and split MADE's blocks of 11 and 30
    /// rows of one degree into more partial groups).
    fn row_group(self) -> usize {
        match self {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Kernel::Avx512 => 2 * ROW_GROUP,
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Kernel::Avx2Fma => AVX2_ROW_GROUP,
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => AVX2_ROW_GROUP,
            Kernel::Baseline => ROW_GROUP,
        }
    }

    /// `count` = bias.len() rows (1 to 4) of a tile; see the module documentation.
    #[inline]
    fn rows(
        self,
        weight: &[f32],
        stride: usize,
        prefix: usize,
        bias: &[f32],
        input: &[f32],
        out: &mut [f32],
    ) {
        match self {
            Kernel::Baseline => rows_baseline(weight, stride, prefix, bias, input, out),
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => rows_neon(weight, stride, prefix, bias, input, out),
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            // SAFETY: detect() checked that the CPU has AVX2 and FMA.
            Kernel::Avx2Fma => unsafe { rows_avx2_fma(weight, stride, prefix, bias, input, out) },
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            // SAFETY: detect() checked that the CPU has AVX-512F and FMA.
            Kernel::Avx512 => unsafe { rows_avx512(weight, stride, prefix, bias, input, out) },
        }
    }
}

/// The AVX2 + FMA kernel: 1 to 6 rows x [`TILE`] lanes held in up to 12 registers.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
fn rows_avx2_fma(weight: &[f32], stride: usize, prefix: usize, bias: &[f32], input: &[f32], out: &mut [f32]) {
    match bias.len() {
        6 => rows_avx2_n::<6>(weight, stride, prefix, bias, input, out),
        5 => rows_avx2_n::<5>(weight, stride, prefix, bias, input, out),
        4 => rows_avx2_n::<4>(weight, stride, prefix, bias, input, out),
        3 => rows_avx2_n::<3>(weight, stride, prefix, bias, input, out),
        2 => rows_avx2_n::<2>(weight, stride, prefix, bias, input, out),
        _ => rows_avx2_n::<1>(weight, stride, prefix, bias, input, out),
    }
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn rows_avx2_n<const R: usize>(
    weight: &[f32],
    stride: usize,
    prefix: usize,
    bias: &[f32],
    input: &[f32],
    out: &mut [f32],
) {
    use core::arch::x86_64::{__m256, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_storeu_ps};
    const { assert!(TILE == 16) };
    assert!(
        bias.len() >= R
            && out.len() >= R * TILE
            && input.len() >= prefix * TILE
            && (R == 0 || weight.len() >= (R - 1) * stride + prefix)
    );
    let mut acc: [[__m256; 2]; R] = core::array::from_fn(|r| [_mm256_set1_ps(bias[r]); 2]);
    let w = weight.as_ptr();
    let x = input.as_ptr();
    for j in 0..prefix {
        // SAFETY: j < prefix and the asserts above keep every offset inside the slices.
        unsafe {
            let x0 = _mm256_loadu_ps(x.add(j * TILE));
            let x1 = _mm256_loadu_ps(x.add(j * TILE + 8));
            for (r, acc) in acc.iter_mut().enumerate() {
                let wr = _mm256_set1_ps(*w.add(r * stride + j));
                acc[0] = _mm256_fmadd_ps(wr, x0, acc[0]);
                acc[1] = _mm256_fmadd_ps(wr, x1, acc[1]);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: out holds R * TILE values (asserted).
        unsafe {
            _mm256_storeu_ps(out.as_mut_ptr().add(r * TILE), acc[0]);
            _mm256_storeu_ps(out.as_mut_ptr().add(r * TILE + 8), acc[1]);
        }
    }
}

/// The AVX-512 kernel: 1 to 8 rows x [`TILE`] lanes, one register per row; the same fused
/// multiply-adds in the same order as the AVX2 kernel (the same bits).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,fma")]
fn rows_avx512(weight: &[f32], stride: usize, prefix: usize, bias: &[f32], input: &[f32], out: &mut [f32]) {
    match bias.len() {
        8 => rows_avx512_n::<8>(weight, stride, prefix, bias, input, out),
        7 => rows_avx512_n::<7>(weight, stride, prefix, bias, input, out),
        6 => rows_avx512_n::<6>(weight, stride, prefix, bias, input, out),
        5 => rows_avx512_n::<5>(weight, stride, prefix, bias, input, out),
        4 => rows_avx512_n::<4>(weight, stride, prefix, bias, input, out),
        3 => rows_avx512_n::<3>(weight, stride, prefix, bias, input, out),
        2 => rows_avx512_n::<2>(weight, stride, prefix, bias, input, out),
        _ => rows_avx512_n::<1>(weight, stride, prefix, bias, input, out),
    }
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,fma")]
#[inline]
fn rows_avx512_n<const R: usize>(
    weight: &[f32],
    stride: usize,
    prefix: usize,
    bias: &[f32],
    input: &[f32],
    out: &mut [f32],
) {
    use core::arch::x86_64::{__m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_storeu_ps};
    const { assert!(TILE == 16) };
    assert!(
        bias.len() >= R
            && out.len() >= R * TILE
            && input.len() >= prefix * TILE
            && (R == 0 || weight.len() >= (R - 1) * stride + prefix)
    );
    let mut acc: [__m512; R] = core::array::from_fn(|r| _mm512_set1_ps(bias[r]));
    let w = weight.as_ptr();
    let x = input.as_ptr();
    for j in 0..prefix {
        // SAFETY: j < prefix and the asserts above keep every offset inside the slices.
        unsafe {
            let xj = _mm512_loadu_ps(x.add(j * TILE));
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_fmadd_ps(_mm512_set1_ps(*w.add(r * stride + j)), xj, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: out holds R * TILE values (asserted).
        unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(r * TILE), *acc) };
    }
}

/// The NEON kernel: 1 to 6 rows x [`TILE`] lanes held in up to 24 q registers.
#[cfg(target_arch = "aarch64")]
fn rows_neon(weight: &[f32], stride: usize, prefix: usize, bias: &[f32], input: &[f32], out: &mut [f32]) {
    match bias.len() {
        6 => rows_neon_n::<6>(weight, stride, prefix, bias, input, out),
        5 => rows_neon_n::<5>(weight, stride, prefix, bias, input, out),
        4 => rows_neon_n::<4>(weight, stride, prefix, bias, input, out),
        3 => rows_neon_n::<3>(weight, stride, prefix, bias, input, out),
        2 => rows_neon_n::<2>(weight, stride, prefix, bias, input, out),
        _ => rows_neon_n::<1>(weight, stride, prefix, bias, input, out),
    }
}

/// [`rows_neon`] on R rows: per input j, four q-register loads of the tile row and 4 R
/// `fmla v.4s` by the scalar weight (`vfmaq_n_f32`, one rounding).
#[cfg(target_arch = "aarch64")]
#[inline]
fn rows_neon_n<const R: usize>(
    weight: &[f32],
    stride: usize,
    prefix: usize,
    bias: &[f32],
    input: &[f32],
    out: &mut [f32],
) {
    use core::arch::aarch64::{float32x4_t, vdupq_n_f32, vfmaq_n_f32, vld1q_f32, vst1q_f32};
    const { assert!(TILE == 16) };
    assert!(
        bias.len() >= R
            && out.len() >= R * TILE
            && input.len() >= prefix * TILE
            && (R == 0 || weight.len() >= (R - 1) * stride + prefix)
    );
    // SAFETY: NEON is part of the aarch64 base architecture.
    let mut acc: [[float32x4_t; 4]; R] = core::array::from_fn(|r| [unsafe { vdupq_n_f32(bias[r]) }; 4]);
    let w = weight.as_ptr();
    let x = input.as_ptr();
    for j in 0..prefix {
        // SAFETY: j < prefix and the asserts above keep every offset inside the slices.
        unsafe {
            let xj: [float32x4_t; 4] = core::array::from_fn(|q| vld1q_f32(x.add(j * TILE + 4 * q)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let wr = *w.add(r * stride + j);
                for (a, &xq) in acc.iter_mut().zip(&xj) {
                    *a = vfmaq_n_f32(*a, xq, wr);
                }
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (q, &a) in acc.iter().enumerate() {
            // SAFETY: out holds R * TILE values (asserted).
            unsafe { vst1q_f32(out.as_mut_ptr().add(r * TILE + 4 * q), a) };
        }
    }
}

/// The portable kernel: acc = fma(w, x, acc) through [`portable_fma`] (one rounding, as the
/// vector kernels).
#[inline(always)]
fn rows_baseline(weight: &[f32], stride: usize, prefix: usize, bias: &[f32], input: &[f32], out: &mut [f32]) {
    match bias.len() {
        4 => rows_n::<4>(weight, stride, prefix, bias, input, out),
        3 => rows_n::<3>(weight, stride, prefix, bias, input, out),
        2 => rows_n::<2>(weight, stride, prefix, bias, input, out),
        _ => rows_n::<1>(weight, stride, prefix, bias, input, out),
    }
}

#[inline(always)]
fn rows_n<const R: usize>(
    weight: &[f32],
    stride: usize,
    prefix: usize,
    bias: &[f32],
    input: &[f32],
    out: &mut [f32],
) {
    let mut acc = [[0.0f32; TILE]; R];
    for (row, acc) in acc.iter_mut().enumerate() {
        *acc = [bias[row]; TILE];
    }
    let rows: [&[f32]; R] = core::array::from_fn(|r| &weight[r * stride..r * stride + prefix]);
    for (j, x) in input.chunks_exact(TILE).take(prefix).enumerate() {
        let x: &[f32; TILE] = x.try_into().unwrap_or(&[0.0; TILE]);
        for r in 0..R {
            let w = rows[r][j];
            for lane in 0..TILE {
                acc[r][lane] = portable_fma(w, x[lane], acc[r][lane]);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        out[r * TILE..(r + 1) * TILE].copy_from_slice(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_follow_the_degrees_and_blocks_use_prefixes() {
        let in_deg = [0, 1, 1, 2, 3];
        let out_deg = [1, 1, 2, 3];
        let w = alloc::vec![1.0f32; 20];
        let layer =
            MaskedDense::new("t", w.clone(), alloc::vec![0.0; 4], &in_deg, &out_deg, MaskRule::Hidden)
                .unwrap();
        assert_eq!(layer.prefix(0), 3);
        assert_eq!(layer.prefix(2), 4);
        assert_eq!(layer.prefix(3), 5);
        for (o, row) in layer.weight().chunks(5).enumerate() {
            for (i, &w) in row.iter().enumerate() {
                let expect = if out_deg[o] >= in_deg[i] { 1.0 } else { 0.0 };
                assert_eq!(w, expect);
            }
        }
        let heads =
            MaskedDense::new("h", w, alloc::vec![0.0; 4], &in_deg, &out_deg, MaskRule::Output).unwrap();
        assert_eq!(heads.prefix(0), 1);
        assert_eq!(heads.rows_below(2), 2);
    }

    #[test]
    fn batch_forward_equals_a_plain_matrix_product() {
        let in_deg: alloc::vec::Vec<i64> = (0..7).map(|i| i / 2).collect();
        let out_deg: alloc::vec::Vec<i64> = (0..9).map(|i| i / 3).collect();
        let w: alloc::vec::Vec<f32> = (0..63).map(|i| ((i * 37 % 11) as f32 - 5.0) / 8.0).collect();
        let b: alloc::vec::Vec<f32> = (0..9).map(|i| i as f32 / 4.0).collect();
        let layer = MaskedDense::new("t", w.clone(), b.clone(), &in_deg, &out_deg, MaskRule::Hidden).unwrap();
        let n = 21;
        let x: alloc::vec::Vec<f32> = (0..n * 7).map(|i| ((i * 13 % 17) as f32 - 8.0) / 4.0).collect();
        let mut y = alloc::vec![0.0f32; n * 9];
        layer.forward(&x, &mut y).unwrap();
        for s in 0..n {
            for o in 0..9 {
                let mut expect = f64::from(b[o]);
                for i in 0..7 {
                    if out_deg[o] >= in_deg[i] {
                        expect += f64::from(w[o * 7 + i]) * f64::from(x[s * 7 + i]);
                    }
                }
                assert!((f64::from(y[s * 9 + o]) - expect).abs() < 1e-5, "{s} {o}");
            }
        }
    }

    #[test]
    fn the_portable_kernel_agrees_with_the_dispatched_one() {
        // The portable loop runs on CPUs without AVX2 + FMA and in no_std builds: the same bits.
        let (stride, prefix) = (11, 9);
        let weight: alloc::vec::Vec<f32> =
            (0..8 * stride).map(|i| ((i * 29 % 23) as f32 - 11.0) / 7.0).collect();
        let input: alloc::vec::Vec<f32> =
            (0..prefix * TILE).map(|i| ((i * 17 % 13) as f32 - 6.0) / 3.0).collect();
        let bias = [0.5f32, -0.25, 1.0, 0.0, 2.0, -1.0, 0.125, 3.0];
        for rows in 1..=Kernel::detect().row_group() {
            let mut portable = alloc::vec![0.0f32; rows * TILE];
            let mut dispatched = alloc::vec![0.0f32; rows * TILE];
            // The portable kernel one row at a time, the dispatched one all rows together.
            for (r, out) in portable.chunks_exact_mut(TILE).enumerate() {
                Kernel::Baseline.rows(&weight[r * stride..], stride, prefix, &bias[r..r + 1], &input, out);
            }
            Kernel::detect().rows(&weight, stride, prefix, &bias[..rows], &input, &mut dispatched);
            for (a, b) in portable.iter().zip(&dispatched) {
                assert_eq!(a.to_bits(), b.to_bits(), "{a} {b}");
            }
        }
    }

    /// Every kernel this CPU runs matches the definition, on every row count, and they all fuse
    /// the same multiply-adds in the same order (the same bits).
    #[test]
    fn every_instruction_set_matches_the_definition_and_they_agree() {
        let (stride, prefix) = (37, 33);
        let weight: alloc::vec::Vec<f32> =
            (0..8 * stride).map(|i| ((i * 31 % 29) as f32 - 14.0) / 9.0).collect();
        let input: alloc::vec::Vec<f32> =
            (0..prefix * TILE).map(|i| ((i * 13 % 11) as f32 - 5.0) / 7.0).collect();
        let bias = [0.5f32, -0.25, 1.0, 0.0, 2.0, -1.0, 0.125, 3.0];
        let mut first: Option<alloc::vec::Vec<alloc::vec::Vec<u32>>> = None;
        for isa in crate::math::simd::VectorIsa::available() {
            let kernel = Kernel::for_isa(isa);
            let mut bits = alloc::vec::Vec::new();
            for rows in 1..=kernel.row_group() {
                let mut out = alloc::vec![f32::NAN; rows * TILE];
                kernel.rows(&weight, stride, prefix, &bias[..rows], &input, &mut out);
                for r in 0..rows {
                    for j in 0..TILE {
                        let mut expect = f64::from(bias[r]);
                        for k in 0..prefix {
                            expect += f64::from(weight[r * stride + k]) * f64::from(input[k * TILE + j]);
                        }
                        let got = f64::from(out[r * TILE + j]);
                        assert!(
                            (got - expect).abs() <= 1e-5 * (1.0 + expect.abs()),
                            "{isa:?} {rows} rows: {got} {expect}"
                        );
                    }
                }
                bits.push(out.iter().map(|v| v.to_bits()).collect());
            }
            match &first {
                // Row groups of 1 to 4 rows: the counts every kernel runs.
                Some(first) => {
                    let common = first.len().min(bits.len());
                    assert_eq!(first[..common], bits[..common], "{isa:?} differs from the baseline kernel")
                }
                None => first = Some(bits),
            }
        }
    }

    #[test]
    fn bad_layers_are_rejected() {
        let err = MaskedDense::new(
            "hidden.0",
            alloc::vec![0.0; 4],
            alloc::vec![0.0; 2],
            &[2, 1],
            &[1, 2],
            MaskRule::Hidden,
        )
        .unwrap_err();
        assert!(err.to_string().contains("hidden.0"), "{err}");
        let err = MaskedDense::new(
            "hidden.1",
            alloc::vec![f32::NAN; 4],
            alloc::vec![0.0; 2],
            &[1, 2],
            &[1, 2],
            MaskRule::Hidden,
        )
        .unwrap_err();
        assert!(err.to_string().contains("hidden.1") && err.to_string().contains("NaN"), "{err}");
    }
}
