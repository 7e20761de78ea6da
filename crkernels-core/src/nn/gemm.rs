//! The single-precision matrix-product micro-kernels behind convolution and dense layers.
//!
//! C (MR x NR tile) = A panel (MR x K) B rows (K x NR) + bias, in the BLIS / GotoBLAS scheme
//! (Van Zee & van de Geijn 2015, "BLIS: a framework for rapidly instantiating BLAS
//! functionality", ACM TOMS 41, 14): A is packed once into panels of MR rows stored k-major
//! (`a[k * MR + r]`), and row k of B is NR contiguous values at an address the caller chooses
//! (a packed im2col panel, or the zero-padded input itself for implicit convolution). The
//! MR x NR accumulators stay in registers through the whole K loop:
//!
//! ```text
//! acc[r][j] = init[r][j];   for k in 0..K: acc[r][j] = fma(a[k][r], b[k][j], acc[r][j])
//! ```
//!
//! Three variants, picked at run time from [`VectorIsa`]: AVX-512F (8 x 32: 16 zmm
//! accumulators, two B loads and eight broadcasts per k), AVX2 + FMA (6 x 16: 12 ymm
//! accumulators) and a portable loop (4 x 8, a multiply then an add) for other CPUs and no_std
//! builds. Each output value is a sum over k in increasing order with the same operations
//! whatever tile, panel or thread it lands in, so results never depend on how a batch is split;
//! they differ in the last bits between the portable and the fused (FMA) variants.

use crate::math::simd::VectorIsa;

/// One of the micro-kernel variants, with its tile shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Plain Rust, a multiply and an add (4 x 8).
    Portable,
    /// AVX2 + FMA intrinsics (6 x 16).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    Avx2,
    /// AVX-512F intrinsics (8 x 32).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    Avx512,
}

/// How the accumulators start.
#[derive(Clone, Copy)]
pub(crate) enum Init<'a> {
    /// acc[r][j] = bias[r] (MR values: one per row of the tile).
    Rows(&'a [f32]),
    /// acc[r][j] = bias[j] (NR values: one per column of the tile).
    Columns(&'a [f32]),
}

/// Where row k of B starts.
pub(crate) trait BRows: Copy {
    /// The offset of row k from the base pointer.
    fn offset(self, k: usize) -> usize;
}

/// A packed panel: row k at k * NR.
#[derive(Clone, Copy)]
pub(crate) struct Packed(pub usize);

impl BRows for Packed {
    #[inline(always)]
    fn offset(self, k: usize) -> usize {
        k * self.0
    }
}

/// Rows at arbitrary offsets (implicit convolution: row k = (channel, tap) of the padded input).
#[derive(Clone, Copy)]
pub(crate) struct Offsets<'a>(pub &'a [usize]);

impl BRows for Offsets<'_> {
    #[inline(always)]
    fn offset(self, k: usize) -> usize {
        self.0[k]
    }
}

impl Kernel {
    /// The variant for an instruction set (std builds on x86-64 only use intrinsics).
    pub(crate) fn for_isa(isa: VectorIsa) -> Self {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        match isa {
            VectorIsa::Avx512 => return Kernel::Avx512,
            VectorIsa::Avx2 => return Kernel::Avx2,
            VectorIsa::Baseline | VectorIsa::Neon => {}
        }
        let _ = isa;
        Kernel::Portable
    }

    /// Whether the variant has [`tile_avx512_segments`] (B rows as runs of 8 values).
    pub(crate) const fn has_segment_tile(self) -> bool {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if let Kernel::Avx512 = self {
            return true;
        }
        false
    }

    /// Rows of a tile (of an A panel).
    pub(crate) const fn mr(self) -> usize {
        match self {
            Kernel::Portable => 4,
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Kernel::Avx2 => 6,
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Kernel::Avx512 => 8,
        }
    }

    /// Columns of a tile (of a B row).
    pub(crate) const fn nr(self) -> usize {
        match self {
            Kernel::Portable => 8,
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Kernel::Avx2 => 16,
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Kernel::Avx512 => 32,
        }
    }

    /// One tile: `out[r * ldc + j]` for r < rows, j < cols gets row r, column j of
    /// A panel (k x MR, `a[k * MR + r]`) times B (row k: NR values at `b[rows.offset(k)..]`)
    /// plus `init`.
    ///
    /// # Safety
    /// `a` holds k * MR values; for every k' < k, `b[rows.offset(k')..][..NR]` is in bounds;
    /// rows <= MR, cols <= NR; `out[(rows - 1) * ldc + cols - 1]` is in bounds and ldc >= cols;
    /// `init` holds MR (Rows) or NR (Columns) values; the CPU supports the variant.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) unsafe fn tile<B: BRows>(
        self,
        k: usize,
        a: &[f32],
        b: &[f32],
        b_rows: B,
        init: Init<'_>,
        out: &mut [f32],
        ldc: usize,
        (rows, cols): (usize, usize),
    ) {
        debug_assert!(a.len() >= k * self.mr() && rows <= self.mr() && cols <= self.nr());
        debug_assert!(rows == 0 || cols == 0 || out.len() >= (rows - 1) * ldc + cols);
        let (a, b, o) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
        // SAFETY: forwarded from the caller.
        unsafe {
            match self {
                Kernel::Portable => tile_portable::<4, 8, B>(k, a, b, b_rows, init, o, ldc, rows, cols),
                #[cfg(all(feature = "std", target_arch = "x86_64"))]
                Kernel::Avx2 => tile_avx2(k, a, b, b_rows, init, o, ldc, rows, cols),
                #[cfg(all(feature = "std", target_arch = "x86_64"))]
                Kernel::Avx512 => tile_avx512(k, a, b, b_rows, init, o, ldc, rows, cols),
            }
        }
    }
}

/// Packs rows `m0..m0 + MR` of a matrix (row r, column k at `src[r * row_stride + k *
/// col_stride]`, `m` rows in all, `k` columns) into `dst[k * MR + r]`, zeros past row m.
pub(crate) fn pack_a_panel(
    src: &[f32],
    (m, k): (usize, usize),
    (row_stride, col_stride): (usize, usize),
    m0: usize,
    mr: usize,
    dst: &mut [f32],
) {
    for (kk, column) in dst[..k * mr].chunks_exact_mut(mr).enumerate() {
        for (r, value) in column.iter_mut().enumerate() {
            let row = m0 + r;
            *value = if row < m { src[row * row_stride + kk * col_stride] } else { 0.0 };
        }
    }
}

/// Stores an MR x NR accumulator tile held as `[[f32; NR]; MR]`-shaped memory to `out`, only the
/// `rows` x `cols` corner.
///
/// # Safety
/// As [`Kernel::tile`] for `out`, `ldc`, `rows`, `cols`; `tmp` holds MR * NR values.
#[inline(always)]
unsafe fn store_corner(tmp: *const f32, nr: usize, out: *mut f32, ldc: usize, rows: usize, cols: usize) {
    for r in 0..rows {
        // SAFETY: r < rows <= MR, cols <= NR; the caller promises the output range.
        unsafe { core::ptr::copy_nonoverlapping(tmp.add(r * nr), out.add(r * ldc), cols) };
    }
}

/// The portable tile (see [`Kernel::tile`]).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile_portable<const MR: usize, const NR: usize, B: BRows>(
    k: usize,
    a: *const f32,
    b: *const f32,
    b_rows: B,
    init: Init<'_>,
    out: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    let mut acc = [[0.0f32; NR]; MR];
    match init {
        Init::Rows(bias) => acc.iter_mut().zip(bias).for_each(|(row, &v)| *row = [v; NR]),
        Init::Columns(bias) => acc.iter_mut().for_each(|row| row.copy_from_slice(&bias[..NR])),
    }
    for kk in 0..k {
        // SAFETY: the caller promises NR values at b + offset(kk) and MR at a + kk MR.
        let (bv, av) = unsafe {
            (
                core::ptr::read_unaligned(b.add(b_rows.offset(kk)) as *const [f32; NR]),
                core::ptr::read_unaligned(a.add(kk * MR) as *const [f32; MR]),
            )
        };
        for r in 0..MR {
            for j in 0..NR {
                acc[r][j] += av[r] * bv[j];
            }
        }
    }
    // SAFETY: acc is MR x NR contiguous; the output range is the caller's promise.
    unsafe { store_corner(acc.as_ptr() as *const f32, NR, out, ldc, rows, cols) };
}

/// The AVX2 + FMA tile: 6 x 16 (see [`Kernel::tile`]).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<B: BRows>(
    k: usize,
    a: *const f32,
    b: *const f32,
    b_rows: B,
    init: Init<'_>,
    out: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    use core::arch::x86_64::*;
    const MR: usize = 6;
    const NR: usize = 16;
    // SAFETY (whole body): the caller's promises on a, b, init and out (see Kernel::tile).
    unsafe {
        let mut acc: [[__m256; 2]; MR] = match init {
            Init::Rows(bias) => core::array::from_fn(|r| [_mm256_set1_ps(bias[r]); 2]),
            Init::Columns(bias) => {
                let (c0, c1) = (_mm256_loadu_ps(bias.as_ptr()), _mm256_loadu_ps(bias.as_ptr().add(8)));
                [[c0, c1]; MR]
            }
        };
        for kk in 0..k {
            let row = b.add(b_rows.offset(kk));
            let (b0, b1) = (_mm256_loadu_ps(row), _mm256_loadu_ps(row.add(8)));
            let ak = a.add(kk * MR);
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*ak.add(r));
                acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
            }
        }
        if rows == MR && cols == NR {
            for (r, acc) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.add(r * ldc), acc[0]);
                _mm256_storeu_ps(out.add(r * ldc + 8), acc[1]);
            }
        } else {
            let mut tmp = [[0.0f32; NR]; MR];
            for (t, acc) in tmp.iter_mut().zip(&acc) {
                _mm256_storeu_ps(t.as_mut_ptr(), acc[0]);
                _mm256_storeu_ps(t.as_mut_ptr().add(8), acc[1]);
            }
            store_corner(tmp.as_ptr() as *const f32, NR, out, ldc, rows, cols);
        }
    }
}

/// The AVX-512F tile: 8 x 32 (see [`Kernel::tile`]).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512<B: BRows>(
    k: usize,
    a: *const f32,
    b: *const f32,
    b_rows: B,
    init: Init<'_>,
    out: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    use core::arch::x86_64::*;
    const MR: usize = 8;
    // SAFETY (whole body): the caller's promises on a, b, init and out (see Kernel::tile).
    unsafe {
        let mut acc: [[__m512; 2]; MR] = match init {
            Init::Rows(bias) => core::array::from_fn(|r| [_mm512_set1_ps(bias[r]); 2]),
            Init::Columns(bias) => {
                let (c0, c1) = (_mm512_loadu_ps(bias.as_ptr()), _mm512_loadu_ps(bias.as_ptr().add(16)));
                [[c0, c1]; MR]
            }
        };
        for kk in 0..k {
            let row = b.add(b_rows.offset(kk));
            let (b0, b1) = (_mm512_loadu_ps(row), _mm512_loadu_ps(row.add(16)));
            let ak = a.add(kk * MR);
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ak.add(r));
                acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
            }
        }
        store_tile_avx512(&acc, out, ldc, rows, cols);
    }
}

/// Stores an 8 x 32 AVX-512 accumulator tile: `out[r * ldc + j]` for r < rows, j < cols.
///
/// # Safety
/// AVX-512F is available; `out[(rows - 1) * ldc + cols - 1]` is in bounds, ldc >= cols,
/// rows <= 8 and cols <= 32.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn store_tile_avx512(
    acc: &[[core::arch::x86_64::__m512; 2]; 8],
    out: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    use core::arch::x86_64::*;
    const MR: usize = 8;
    const NR: usize = 32;
    // SAFETY (whole body): the caller's promises on out.
    unsafe {
        if rows == MR && cols == NR {
            for (r, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(out.add(r * ldc), acc[0]);
                _mm512_storeu_ps(out.add(r * ldc + 16), acc[1]);
            }
        } else {
            let mut tmp = [[0.0f32; NR]; MR];
            for (t, acc) in tmp.iter_mut().zip(acc) {
                _mm512_storeu_ps(t.as_mut_ptr(), acc[0]);
                _mm512_storeu_ps(t.as_mut_ptr().add(16), acc[1]);
            }
            store_corner(tmp.as_ptr() as *const f32, NR, out, ldc, rows, cols);
        }
    }
}

/// The AVX-512F tile (8 x 32) with B row k made of four 8-value segments of the padded input,
/// at `segments[s] + offsets[k]` from `b` (convolutions with output rows of a multiple of 8:
/// a tile's 32 positions are four runs of 8 consecutive input values, read in place instead
/// of packed). The same operations in the same order as [`tile_avx512`]: the same bits.
///
/// # Safety
/// AVX-512F and DQ are available; `a` holds offsets.len() * 8 values; b[segments[s] + offsets[k]..][..8]
/// is in bounds for every s and k; rows <= 8, cols <= 32; `out[(rows - 1) * ldc + cols - 1]`
/// is in bounds and ldc >= cols; `bias` holds 8 values.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512dq")]
pub(crate) unsafe fn tile_avx512_segments(
    offsets: &[usize],
    a: *const f32,
    b: *const f32,
    segments: [usize; 4],
    bias: &[f32],
    out: *mut f32,
    ldc: usize,
    (rows, cols): (usize, usize),
) {
    use core::arch::x86_64::*;
    const MR: usize = 8;
    // SAFETY (whole body): the caller's promises on a, b, bias and out.
    unsafe {
        let mut acc: [[__m512; 2]; MR] = core::array::from_fn(|r| [_mm512_set1_ps(bias[r]); 2]);
        let (s0, s1, s2, s3) =
            (b.add(segments[0]), b.add(segments[1]), b.add(segments[2]), b.add(segments[3]));
        for (kk, &offset) in offsets.iter().enumerate() {
            // (No closure here: closures do not inherit the target feature.)
            let b0 = _mm512_castps256_ps512(_mm256_loadu_ps(s0.add(offset)));
            let b0 = _mm512_insertf32x8::<1>(b0, _mm256_loadu_ps(s1.add(offset)));
            let b1 = _mm512_castps256_ps512(_mm256_loadu_ps(s2.add(offset)));
            let b1 = _mm512_insertf32x8::<1>(b1, _mm256_loadu_ps(s3.add(offset)));
            let ak = a.add(kk * MR);
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ak.add(r));
                acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
            }
        }
        store_tile_avx512(&acc, out, ldc, rows, cols);
    }
}

/// The kernels a test may compare (every variant this CPU runs).
#[cfg(test)]
pub(crate) fn available() -> impl Iterator<Item = Kernel> {
    VectorIsa::available().map(Kernel::for_isa)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn tiles_equal_a_plain_product_on_every_variant() {
        for kernel in available() {
            let (mr, nr) = (kernel.mr(), kernel.nr());
            let (m, n, k) = (mr - 1, nr - 3, 13);
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0).collect();
            let b: Vec<f32> = (0..k * nr).map(|i| ((i * 5 % 13) as f32 - 6.0) / 8.0).collect();
            let bias: Vec<f32> = (0..nr.max(mr)).map(|i| i as f32 * 0.25).collect();
            let mut packed = vec![0.0f32; k * mr];
            pack_a_panel(&a, (m, k), (k, 1), 0, mr, &mut packed);
            for by_rows in [true, false] {
                let ldc = n + 2;
                let mut out = vec![-7.0f32; m * ldc];
                let init = if by_rows { Init::Rows(&bias) } else { Init::Columns(&bias) };
                // SAFETY: sizes as required by Kernel::tile; the variant is available.
                unsafe { kernel.tile(k, &packed, &b, Packed(nr), init, &mut out, ldc, (m, n)) };
                for r in 0..m {
                    for j in 0..n {
                        let mut expect = f64::from(if by_rows { bias[r] } else { bias[j] });
                        for kk in 0..k {
                            expect += f64::from(a[r * k + kk]) * f64::from(b[kk * nr + j]);
                        }
                        let got = f64::from(out[r * ldc + j]);
                        assert!((got - expect).abs() < 1e-5, "{kernel:?} {r} {j}: {got} {expect}");
                    }
                    assert_eq!(out[r * ldc + n], -7.0, "{kernel:?} wrote past the tile");
                }
            }
        }
    }
}
