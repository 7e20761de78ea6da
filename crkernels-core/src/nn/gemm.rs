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
//! Four variants, picked at run time from [`VectorIsa`]: AVX-512F (8 x 32: 16 zmm
//! accumulators, two B loads and eight broadcasts per k), AVX2 + FMA (6 x 16: 12 ymm
//! accumulators, two B loads and six broadcasts per k, which leaves 4 of the 16 ymm registers
//! free; a partial panel of R < 6 rows runs an R-row copy of the loop), NEON on aarch64 (8 x 8:
//! 16 of the 32 q registers, `fmla v.4s` by element, R-row copies as on AVX2) and a portable
//! loop (4 x 8) for x86-64 without AVX2, aarch64's `baseline` set and no_std builds. Every
//! variant computes each output value as the same chain of fused multiply-adds, from its bias
//! over k in increasing order (the portable loop with [`portable_fma`]: the FMA instruction on
//! aarch64, binary64 arithmetic rounded to odd on the x86-64 baseline, slower but the same
//! bits); the tile shape only decides which values are computed together. So
//! results are bit-identical on every instruction set, on x86-64 and aarch64 alike, and never
//! depend on how a batch is split across tiles, panels or threads. Convolutions also read B
//! rows in place: as runs of 8 input values ([`Kernel::tile_segments`]) or at per-row offsets
//! swept across an output row ([`Kernel::tile_span`]).

/// The portable tile's fused multiply-add: the FMA instruction on aarch64; on x86-64, where the
/// portable tile runs only on the baseline set (no FMA instruction), binary64 arithmetic
/// rounded to odd (the same bits, without a library call per product).
use crate::math::mul_add_f32_portable as portable_fma;
use crate::math::simd::VectorIsa;

/// One of the micro-kernel variants, with its tile shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Plain Rust, [`portable_fma`] (4 x 8).
    Portable,
    /// aarch64 NEON intrinsics, `fmla v.4s` (8 x 8).
    #[cfg(target_arch = "aarch64")]
    Neon,
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
    /// The variant for an instruction set (on x86-64 only std builds use intrinsics; aarch64's
    /// `neon` set runs the NEON tile, its `baseline` the portable one).
    pub(crate) fn for_isa(isa: VectorIsa) -> Self {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        match isa {
            VectorIsa::Avx512 => return Kernel::Avx512,
            VectorIsa::Avx2 => return Kernel::Avx2,
            VectorIsa::Baseline | VectorIsa::Neon => {}
        }
        #[cfg(target_arch = "aarch64")]
        if isa == VectorIsa::Neon {
            return Kernel::Neon;
        }
        let _ = isa;
        Kernel::Portable
    }

    /// Whether the variant has [`Kernel::tile_segments`] (B rows as NR / 8 runs of 8 values).
    pub(crate) const fn has_segment_tile(self) -> bool {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if let Kernel::Avx512 | Kernel::Avx2 = self {
            return true;
        }
        false
    }

    /// Rows of a tile (of an A panel).
    pub(crate) const fn mr(self) -> usize {
        match self {
            Kernel::Portable => 4,
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => 8,
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
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => 8,
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
                #[cfg(target_arch = "aarch64")]
                Kernel::Neon => tile_neon(k, a, b, b_rows, init, o, ldc, rows, cols),
                #[cfg(all(feature = "std", target_arch = "x86_64"))]
                Kernel::Avx2 => tile_avx2(k, a, b, b_rows, init, o, ldc, rows, cols),
                #[cfg(all(feature = "std", target_arch = "x86_64"))]
                Kernel::Avx512 => tile_avx512(k, a, b, b_rows, init, o, ldc, rows, cols),
            }
        }
    }

    /// A row of tiles for implicit convolution: for every p0 in (0..n).step_by(NR), the tile
    /// of [`Kernel::tile`] on B row k at `b[offsets[k] + p0..]`, written to `out[p0..]`, its
    /// accumulators starting at `bias[r]`. The same bits as those tiles one by one; on AVX2 the
    /// loop runs inside the kernel (with a K of 10, a conv1d's, the call and set-up of each tile
    /// cost a fifth of the time).
    ///
    /// # Safety
    /// As [`Kernel::tile`] for every tile: `a` holds offsets.len() * MR values; for every k,
    /// `b[offsets[k] + p0..][..NR]` is in bounds for every p0 < n; rows <= MR;
    /// `out[(rows - 1) * ldc + n - 1]` is in bounds and ldc >= n; `bias` holds MR values.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) unsafe fn tile_span(
        self,
        offsets: &[usize],
        a: &[f32],
        b: &[f32],
        bias: &[f32],
        out: &mut [f32],
        ldc: usize,
        (rows, n): (usize, usize),
    ) {
        debug_assert!(a.len() >= offsets.len() * self.mr() && rows <= self.mr() && bias.len() >= self.mr());
        debug_assert!(rows == 0 || n == 0 || out.len() >= (rows - 1) * ldc + n);
        // SAFETY (whole body): forwarded from the caller.
        unsafe {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            if let Kernel::Avx2 = self {
                let (a, b, o) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
                return span_avx2(offsets, a, b, bias, o, ldc, rows, n);
            }
            let nr = self.nr();
            for p0 in (0..n).step_by(nr) {
                let cols = nr.min(n - p0);
                self.tile(
                    offsets.len(),
                    a,
                    &b[p0..],
                    Offsets(offsets),
                    Init::Rows(bias),
                    &mut out[p0..],
                    ldc,
                    (rows, cols),
                );
            }
        }
    }

    /// One tile with B row k made of NR / 8 runs of 8 values at `segments[s] + offsets[k]`
    /// from `b` (s < NR / 8; later entries unused), A a packed panel (`a[k * MR + r]`), the
    /// accumulators starting at `bias[r]` ([`tile_avx512_segments`], [`tile_avx2_segments`]).
    /// The same bits as [`Kernel::tile`] on the packed patch rows.
    ///
    /// # Safety
    /// [`Kernel::has_segment_tile`]; the CPU supports the variant; `a` holds offsets.len() * MR
    /// values; b[segments[s] + offsets[k]..][..8] is in bounds for s < NR / 8 and every k;
    /// rows <= MR, cols <= NR; `out[(rows - 1) * ldc + cols - 1]` is in bounds and ldc >= cols;
    /// `bias` holds MR values.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) unsafe fn tile_segments(
        self,
        offsets: &[usize],
        a: *const f32,
        b: *const f32,
        segments: [usize; 4],
        bias: &[f32],
        out: *mut f32,
        ldc: usize,
        rows_cols: (usize, usize),
    ) {
        match self {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            // SAFETY: forwarded from the caller.
            Kernel::Avx512 => unsafe {
                tile_avx512_segments(offsets, a, b, segments, bias, out, ldc, rows_cols)
            },
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            // SAFETY: forwarded from the caller.
            Kernel::Avx2 => unsafe {
                tile_avx2_segments(offsets, a, b, [segments[0], segments[1]], bias, out, ldc, rows_cols)
            },
            _ => {
                let _ = (offsets, a, b, segments, bias, out, ldc, rows_cols);
                unreachable!("{self:?} has no segment tile")
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

/// The portable tile (see [`Kernel::tile`]): acc = fma(a, b, acc) through [`portable_fma`], the
/// operation of every other variant.
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
                acc[r][j] = portable_fma(av[r], bv[j], acc[r][j]);
            }
        }
    }
    // SAFETY: acc is MR x NR contiguous; the output range is the caller's promise.
    unsafe { store_corner(acc.as_ptr() as *const f32, NR, out, ldc, rows, cols) };
}

/// The NEON tile: 8 x 8 (see [`Kernel::tile`]), on as many rows as the tile has (a partial
/// panel runs only its rows' multiply-adds, as on AVX2).
#[cfg(target_arch = "aarch64")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn tile_neon<B: BRows>(
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
    // SAFETY: forwarded from the caller; R >= rows in every arm.
    unsafe {
        match rows {
            8 => tile_neon_rows::<8, B>(k, a, b, b_rows, init, out, ldc, rows, cols),
            7 => tile_neon_rows::<7, B>(k, a, b, b_rows, init, out, ldc, rows, cols),
            6 => tile_neon_rows::<6, B>(k, a, b, b_rows, init, out, ldc, rows, cols),
            5 => tile_neon_rows::<5, B>(k, a, b, b_rows, init, out, ldc, rows, cols),
            4 => tile_neon_rows::<4, B>(k, a, b, b_rows, init, out, ldc, rows, cols),
            3 => tile_neon_rows::<3, B>(k, a, b, b_rows, init, out, ldc, rows, cols),
            2 => tile_neon_rows::<2, B>(k, a, b, b_rows, init, out, ldc, rows, cols),
            _ => tile_neon_rows::<1, B>(k, a, b, b_rows, init, out, ldc, rows, cols),
        }
    }
}

/// [`tile_neon`] on the first R rows of the 8-row A panel (R >= rows): per k, the B row and
/// the panel's 8 values of A in four q registers, and 2 R `fmla v.4s` by element
/// (`vfmaq_laneq_f32`, one rounding: the fused multiply-add of the other variants).
#[cfg(target_arch = "aarch64")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn tile_neon_rows<const R: usize, B: BRows>(
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
    use core::arch::aarch64::*;
    const MR: usize = 8;
    const NR: usize = 8;
    // SAFETY (whole body): NEON is part of the aarch64 base architecture; the caller's
    // promises on a (a whole panel: 8 values per k, whatever R), b, init and out (see
    // Kernel::tile).
    unsafe {
        // All 8 rows declared, rows R.. never touched (the compiler drops them).
        let mut acc: [[float32x4_t; 2]; MR] = match init {
            Init::Rows(bias) => core::array::from_fn(|r| [vdupq_n_f32(if r < R { bias[r] } else { 0.0 }); 2]),
            Init::Columns(bias) => {
                let (c0, c1) = (vld1q_f32(bias.as_ptr()), vld1q_f32(bias.as_ptr().add(4)));
                [[c0, c1]; MR]
            }
        };
        for kk in 0..k {
            let row = b.add(b_rows.offset(kk));
            let (b0, b1) = (vld1q_f32(row), vld1q_f32(row.add(4)));
            let (a0, a1) = (vld1q_f32(a.add(kk * MR)), vld1q_f32(a.add(kk * MR + 4)));
            // Row r: lane r % 4 of a0 or a1 (the lane must be a constant).
            macro_rules! row {
                ($r:literal, $a:ident, $lane:literal) => {
                    if $r < R {
                        acc[$r][0] = vfmaq_laneq_f32::<$lane>(acc[$r][0], b0, $a);
                        acc[$r][1] = vfmaq_laneq_f32::<$lane>(acc[$r][1], b1, $a);
                    }
                };
            }
            row!(0, a0, 0);
            row!(1, a0, 1);
            row!(2, a0, 2);
            row!(3, a0, 3);
            row!(4, a1, 0);
            row!(5, a1, 1);
            row!(6, a1, 2);
            row!(7, a1, 3);
        }
        if rows == R && cols == NR {
            for (r, acc) in acc.iter().take(R).enumerate() {
                vst1q_f32(out.add(r * ldc), acc[0]);
                vst1q_f32(out.add(r * ldc + 4), acc[1]);
            }
        } else {
            let mut tmp = [[0.0f32; NR]; R];
            for (t, acc) in tmp.iter_mut().zip(&acc) {
                vst1q_f32(t.as_mut_ptr(), acc[0]);
                vst1q_f32(t.as_mut_ptr().add(4), acc[1]);
            }
            store_corner(tmp.as_ptr() as *const f32, NR, out, ldc, rows, cols);
        }
    }
}

/// The AVX2 + FMA tile: 6 x 16 (see [`Kernel::tile`]), on as many rows as the tile has: a
/// partial panel (64 channels are ten panels of 6 and one of 4) runs only its rows' FMAs.
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
    // SAFETY: forwarded from the caller; R >= rows in every arm.
    unsafe {
        match rows {
            6 => tile_avx2_rows::<6, B>(k, a, b, b_rows, init, out, ldc, rows, cols),
            5 => tile_avx2_rows::<5, B>(k, a, b, b_rows, init, out, ldc, rows, cols),
            4 => tile_avx2_rows::<4, B>(k, a, b, b_rows, init, out, ldc, rows, cols),
            3 => tile_avx2_rows::<3, B>(k, a, b, b_rows, init, out, ldc, rows, cols),
            2 => tile_avx2_rows::<2, B>(k, a, b, b_rows, init, out, ldc, rows, cols),
            _ => tile_avx2_rows::<1, B>(k, a, b, b_rows, init, out, ldc, rows, cols),
        }
    }
}

/// [`tile_avx2`] on the first R rows of the 6-row A panel (R >= rows).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile_avx2_rows<const R: usize, B: BRows>(
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
    // SAFETY (whole body): the caller's promises on a, b, init and out (see Kernel::tile).
    unsafe {
        let mut acc: [[__m256; 2]; R] = match init {
            Init::Rows(bias) => core::array::from_fn(|r| [_mm256_set1_ps(bias[r]); 2]),
            Init::Columns(bias) => {
                let (c0, c1) = (_mm256_loadu_ps(bias.as_ptr()), _mm256_loadu_ps(bias.as_ptr().add(8)));
                [[c0, c1]; R]
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
        store_tile_avx2(&acc, out, ldc, rows, cols);
    }
}

/// Stores an R x 16 AVX2 accumulator tile: `out[r * ldc + j]` for r < rows, j < cols.
///
/// # Safety
/// AVX is available; `out[(rows - 1) * ldc + cols - 1]` is in bounds, ldc >= cols, rows <= R
/// and cols <= 16.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn store_tile_avx2<const R: usize>(
    acc: &[[core::arch::x86_64::__m256; 2]; R],
    out: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    use core::arch::x86_64::*;
    const NR: usize = 16;
    // SAFETY (whole body): the caller's promises on out.
    unsafe {
        if rows == R && cols == NR {
            for (r, acc) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.add(r * ldc), acc[0]);
                _mm256_storeu_ps(out.add(r * ldc + 8), acc[1]);
            }
        } else {
            let mut tmp = [[0.0f32; NR]; R];
            for (t, acc) in tmp.iter_mut().zip(acc) {
                _mm256_storeu_ps(t.as_mut_ptr(), acc[0]);
                _mm256_storeu_ps(t.as_mut_ptr().add(8), acc[1]);
            }
            store_corner(tmp.as_ptr() as *const f32, NR, out, ldc, rows, cols);
        }
    }
}

/// [`Kernel::tile_span`] on AVX2: the tiles of one weight panel across n positions.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn span_avx2(
    offsets: &[usize],
    a: *const f32,
    b: *const f32,
    bias: &[f32],
    out: *mut f32,
    ldc: usize,
    rows: usize,
    n: usize,
) {
    // SAFETY: forwarded from the caller; R >= rows in every arm.
    unsafe {
        match rows {
            6 => span_avx2_rows::<6>(offsets, a, b, bias, out, ldc, rows, n),
            5 => span_avx2_rows::<5>(offsets, a, b, bias, out, ldc, rows, n),
            4 => span_avx2_rows::<4>(offsets, a, b, bias, out, ldc, rows, n),
            3 => span_avx2_rows::<3>(offsets, a, b, bias, out, ldc, rows, n),
            2 => span_avx2_rows::<2>(offsets, a, b, bias, out, ldc, rows, n),
            _ => span_avx2_rows::<1>(offsets, a, b, bias, out, ldc, rows, n),
        }
    }
}

/// [`span_avx2`] on the first R rows of the 6-row A panel (R >= rows).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn span_avx2_rows<const R: usize>(
    offsets: &[usize],
    a: *const f32,
    b: *const f32,
    bias: &[f32],
    out: *mut f32,
    ldc: usize,
    rows: usize,
    n: usize,
) {
    const NR: usize = 16;
    let k = offsets.len();
    let mut p0 = 0;
    while p0 < n {
        let cols = NR.min(n - p0);
        // SAFETY: the caller's promises for the tile at p0.
        unsafe {
            tile_avx2_rows::<R, Offsets<'_>>(
                k,
                a,
                b.add(p0),
                Offsets(offsets),
                Init::Rows(bias),
                out.add(p0),
                ldc,
                rows,
                cols,
            )
        };
        p0 += NR;
    }
}

/// The AVX2 + FMA tile (6 x 16) with B row k made of two 8-value segments of the padded input,
/// at `segments[s] + offsets[k]` from `b` (see [`tile_avx512_segments`]): no patch matrix, and
/// the same operations in the same order as [`tile_avx2`] (and as the AVX-512 tiles): the same
/// bits.
///
/// # Safety
/// AVX2 and FMA are available; `a` holds offsets.len() * 6 values; b[segments[s] +
/// offsets[k]..][..8] is in bounds for s < 2 and every k; rows <= 6, cols <= 16;
/// `out[(rows - 1) * ldc + cols - 1]` is in bounds and ldc >= cols; `bias` holds 6 values.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn tile_avx2_segments(
    offsets: &[usize],
    a: *const f32,
    b: *const f32,
    segments: [usize; 2],
    bias: &[f32],
    out: *mut f32,
    ldc: usize,
    (rows, cols): (usize, usize),
) {
    // SAFETY: forwarded from the caller; R >= rows in every arm.
    unsafe {
        let (s0, s1) = (b.add(segments[0]), b.add(segments[1]));
        match rows {
            6 => segments_avx2_rows::<6>(offsets, a, s0, s1, bias, out, ldc, rows, cols),
            5 => segments_avx2_rows::<5>(offsets, a, s0, s1, bias, out, ldc, rows, cols),
            4 => segments_avx2_rows::<4>(offsets, a, s0, s1, bias, out, ldc, rows, cols),
            3 => segments_avx2_rows::<3>(offsets, a, s0, s1, bias, out, ldc, rows, cols),
            2 => segments_avx2_rows::<2>(offsets, a, s0, s1, bias, out, ldc, rows, cols),
            _ => segments_avx2_rows::<1>(offsets, a, s0, s1, bias, out, ldc, rows, cols),
        }
    }
}

/// [`tile_avx2_segments`] on the first R rows of the 6-row A panel (R >= rows).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn segments_avx2_rows<const R: usize>(
    offsets: &[usize],
    a: *const f32,
    s0: *const f32,
    s1: *const f32,
    bias: &[f32],
    out: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    use core::arch::x86_64::*;
    const MR: usize = 6;
    // SAFETY (whole body): the caller's promises on a, b, bias and out.
    unsafe {
        let mut acc: [[__m256; 2]; R] = core::array::from_fn(|r| [_mm256_set1_ps(bias[r]); 2]);
        for (kk, &offset) in offsets.iter().enumerate() {
            let (b0, b1) = (_mm256_loadu_ps(s0.add(offset)), _mm256_loadu_ps(s1.add(offset)));
            let ak = a.add(kk * MR);
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*ak.add(r));
                acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
            }
        }
        store_tile_avx2(&acc, out, ldc, rows, cols);
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
unsafe fn tile_avx512_segments(
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
    /// Reads B in place (runs of 8 values, or per-row offsets swept across a row) and a
    /// partial panel of any row count give the bits of the packed tile, on every variant; and
    /// every variant (the portable one included) gives the same bits as every other.
    #[test]
    fn in_place_tiles_and_partial_panels_give_the_bits_of_packed_tiles() {
        // A padded plane of 3 channels, 6 x 10 each (an 8-wide output, 3 x 3 taps): row k of
        // B for output position q = (y, x) is plane[offsets[k] + y * 10 + x].
        let (channels, hp, wp, w_out, h_out) = (3, 6, 10, 8, 4);
        let offsets: Vec<usize> = (0..channels)
            .flat_map(|c| (0..3).flat_map(move |i| (0..3).map(move |j| c * hp * wp + i * wp + j)))
            .collect();
        let k = offsets.len();
        let plane: Vec<f32> =
            (0..channels * hp * wp + 32).map(|i| ((i * 37 % 101) as f32 - 50.0) / 31.0).collect();
        let positions = h_out * w_out;
        let start = |q: usize| (q / w_out) * wp + q % w_out;
        let mut variants: Vec<(Kernel, Vec<u32>)> = Vec::new();
        for kernel in available() {
            let (mr, nr) = (kernel.mr(), kernel.nr());
            let a: Vec<f32> = (0..mr * k).map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0).collect();
            let mut packed_a = vec![0.0f32; k * mr];
            pack_a_panel(&a, (mr, k), (k, 1), 0, mr, &mut packed_a);
            let bias: Vec<f32> = (0..mr).map(|i| i as f32 * 0.25 - 0.5).collect();
            let mut all = Vec::new();
            for rows in 1..=mr {
                // The packed reference: every position panel of NR columns, im2col by hand.
                let mut expect = vec![0.0f32; rows * positions];
                for p0 in (0..positions).step_by(nr) {
                    let cols = nr.min(positions - p0);
                    let mut panel = vec![0.0f32; k * nr];
                    for (kk, &offset) in offsets.iter().enumerate() {
                        for j in 0..cols {
                            panel[kk * nr + j] = plane[offset + start(p0 + j)];
                        }
                    }
                    // SAFETY: sizes as Kernel::tile requires; the variant is available.
                    unsafe {
                        kernel.tile(
                            k,
                            &packed_a,
                            &panel,
                            Packed(nr),
                            Init::Rows(&bias),
                            &mut expect[p0..],
                            positions,
                            (rows, cols),
                        )
                    };
                }
                // The first rows of a full panel are the rows of a partial one.
                if rows == mr {
                    all.extend(expect.iter().map(|v| v.to_bits()));
                }
                if kernel.has_segment_tile() {
                    let mut got = vec![f32::NAN; rows * positions];
                    for p0 in (0..positions).step_by(nr) {
                        let cols = nr.min(positions - p0);
                        let segments =
                            core::array::from_fn(|s| start(if 8 * s < cols { p0 + 8 * s } else { p0 }));
                        // SAFETY: reads at start(q) + offset + 8 stay in the plane; as above.
                        unsafe {
                            kernel.tile_segments(
                                &offsets,
                                packed_a.as_ptr(),
                                plane.as_ptr(),
                                segments,
                                &bias,
                                got[p0..].as_mut_ptr(),
                                positions,
                                (rows, cols),
                            )
                        };
                    }
                    assert!(
                        got.iter().zip(&expect).all(|(g, e)| g.to_bits() == e.to_bits()),
                        "{kernel:?} segments, {rows} rows"
                    );
                }
                // One output row of 8 x h_out positions read at offsets + position (a conv1d's
                // implicit GEMM): the padded row is the plane itself, positions past wp wrap
                // into the next row alike in both.
                let n = 27;
                let mut expect_row = vec![0.0f32; rows * n];
                for p0 in (0..n).step_by(nr) {
                    let cols = nr.min(n - p0);
                    // SAFETY: offsets + p0 + NR stay in the plane (32 values of slack).
                    unsafe {
                        kernel.tile(
                            k,
                            &packed_a,
                            &plane[p0..],
                            Offsets(&offsets),
                            Init::Rows(&bias),
                            &mut expect_row[p0..],
                            n,
                            (rows, cols),
                        )
                    };
                }
                let mut got_row = vec![f32::NAN; rows * n];
                // SAFETY: as above for every p0 < n.
                unsafe { kernel.tile_span(&offsets, &packed_a, &plane, &bias, &mut got_row, n, (rows, n)) };
                assert!(
                    got_row.iter().zip(&expect_row).all(|(g, e)| g.to_bits() == e.to_bits()),
                    "{kernel:?} span, {rows} rows"
                );
                for r in 0..rows {
                    for q in 0..positions {
                        let mut sum = f64::from(bias[r]);
                        for (kk, &offset) in offsets.iter().enumerate() {
                            sum += f64::from(a[r * k + kk]) * f64::from(plane[offset + start(q)]);
                        }
                        let got = f64::from(expect[r * positions + q]);
                        assert!(
                            (got - sum).abs() < 1e-4 * (1.0 + sum.abs()),
                            "{kernel:?} {r} {q}: {got} {sum}"
                        );
                    }
                }
            }
            variants.push((kernel, all));
        }
        // Different tile shapes, the same fused multiply-adds in the same order per value: the
        // variants agree bit for bit on the rows both compute (the smaller MR).
        let (first, first_bits) = &variants[0];
        for (kernel, bits) in &variants[1..] {
            let rows = first.mr().min(kernel.mr()) * positions;
            assert_eq!(first_bits[..rows], bits[..rows], "{first:?} and {kernel:?} tiles differ");
        }
    }
}
