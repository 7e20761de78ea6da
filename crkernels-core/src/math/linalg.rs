//! Dense symmetric linear algebra for least squares: Gram matrices X^T W X, the blocked Cholesky
//! factorisation A = L L^T and its solves. Exact (direct) methods in f64, no iterations.
//!
//! Matrices are row-major with a leading dimension (`ld`, the distance between rows); a
//! symmetric matrix is held in its lower triangle (j <= i), the upper one is ignored.
//!
//! The work is in one kernel, the lower-triangular rank-k update C += s P^T P of a packed block
//! P (k rows x m columns): every element of C is accumulated as acc = 0, acc = fma(P[k][i],
//! P[k][j], acc) for k in order, then c = fma(s, acc, c), whatever the instruction set, the
//! register tile or the thread that computes it, so the results are bit-identical on every
//! path and every thread count. The baseline path uses an 8 x 8 register tile, the AVX-512
//! path an 8 x 16 one (two 8-column panels side by side: 16 accumulators, enough chains for
//! two FMA pipes) over blocks of row panels kept in the L2 cache. AVX2 has 16 vector
//! registers, too few for the 16 accumulators of an 8 x 8 tile: its path is a 6 x 8 tile (12
//! accumulators, two loads and six broadcasts per step, as BLIS's Haswell kernel) over a
//! second packing of P in panels of 6 columns, blocked so that a block of those panels stays
//! in the L2 cache while an 8-column panel sits in L1. The Gram matrix is a sum of such
//! updates over blocks of rows; the right-looking blocked Cholesky (Golub & Van Loan, Matrix
//! Computations 4th ed., algorithm 4.2.4) spends almost all its time in them too.
//!
//! Threads (std builds; [`Exec::threads`]): a rank-k update is split into bands of rows of C
//! of equal area, handed to the threads as they finish their previous band (the calling thread
//! packs P first); the Cholesky factorisation splits the rows below each diagonal block the
//! same way. Each element is computed by one thread with the same operations, so the thread
//! count changes nothing in the results. Without std everything runs on the calling thread.
//! The Cholesky panel (the rows of a block column, each a chain of dot products) solves 8 rows
//! at once so that their latencies overlap; on AVX2 (and AVX-512, which runs the same kernel)
//! four rows' sums are reduced and divided in one vector, in the same order of operations.

use alloc::vec;
use alloc::vec::Vec;
use core::marker::PhantomData;
use core::ops::Range;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::simd::VectorIsa;
use super::{mul_add, sqrt};
use crate::error::{Result, out_of_domain};

/// Columns per packed panel (and per register tile of the baseline path).
pub const TILE: usize = 8;
/// Rows of data packed per rank-k update of the Gram matrix.
const GRAM_ROWS: usize = 256;
/// Block size of the Cholesky factorisation.
const CHOLESKY_BLOCK: usize = 128;
/// Rows of the AVX2 register tile (and columns of its second packing).
const ROWS_AVX2: usize = 6;
/// Bands of rows of C handed to threads start at multiples of this (both tile heights divide
/// it).
const BAND_ALIGN: usize = 24;
/// Bytes of the AVX2 path's block of 6-column panels, kept in the L2 cache (512 KiB a core on
/// the EPYCs this was tuned on) while the 8-column panels stream past.
#[cfg(target_arch = "x86_64")]
const L2_BLOCK_BYTES: usize = 192 * 1024;
/// Bands per thread in a threaded rank-k update: the threads take them as they finish, so that
/// a core slowed by other load takes fewer.
const BANDS_PER_THREAD: usize = 4;
/// Multiply-adds below which a rank-k update (or a Cholesky step) stays on one thread (1 in
/// the unit tests, so that their small cases run threaded).
const MIN_PARALLEL_WORK: usize = if cfg!(test) { 1 } else { 1 << 21 };

/// How a linear-algebra call runs: the instruction set of its kernels and its threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exec {
    isa: VectorIsa,
    threads: usize,
}

impl Exec {
    /// The instruction set the kernels use ([`VectorIsa::detect`]) on `threads` threads (0: all
    /// cores; std builds only, always 1 without std).
    pub fn new(threads: usize) -> Self {
        Exec { isa: VectorIsa::detect(), threads: resolve_threads(threads) }
    }

    /// [`Exec::new`] on the calling thread only.
    pub fn sequential() -> Self {
        Self::new(1)
    }

    /// `isa` on `threads` threads; an error where this CPU cannot run `isa`.
    pub fn with_isa(isa: VectorIsa, threads: usize) -> Result<Self> {
        Ok(Exec { isa: isa.require()?, threads: resolve_threads(threads) })
    }

    /// The same instruction set on `threads` threads (0: all cores).
    pub fn with_threads(self, threads: usize) -> Self {
        Exec { isa: self.isa, threads: resolve_threads(threads) }
    }

    /// The instruction set.
    pub fn isa(self) -> VectorIsa {
        self.isa
    }

    /// The threads (at least 1).
    pub fn threads(self) -> usize {
        self.threads
    }
}

/// `n` threads, 0 meaning all cores (std builds); 1 without std.
pub fn resolve_threads(n: usize) -> usize {
    #[cfg(feature = "std")]
    {
        match n {
            0 => std::thread::available_parallelism().map_or(1, |t| t.get()),
            n => n,
        }
    }
    #[cfg(not(feature = "std"))]
    {
        let _ = n;
        1
    }
}

/// Runs `job` on `threads` threads at once, the calling thread one of them, and returns when
/// all have returned (std builds; without std, or for one thread, the calling thread runs it
/// once). `job` takes its work from a shared [`Queue`].
pub(crate) fn region(threads: usize, job: &(dyn Fn() + Sync)) {
    #[cfg(feature = "std")]
    if threads > 1 {
        std::thread::scope(|scope| {
            for _ in 1..threads {
                scope.spawn(job);
            }
            job();
        });
        return;
    }
    let _ = threads;
    job()
}

/// Work items 0..len handed out once each to the threads of a [`region`], in order.
pub(crate) struct Queue {
    next: AtomicUsize,
    len: usize,
}

impl Queue {
    pub(crate) fn new(len: usize) -> Self {
        Queue { next: AtomicUsize::new(0), len }
    }

    /// The next item, or None when all are taken.
    pub(crate) fn take(&self) -> Option<usize> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.len).then_some(i)
    }
}

/// A mutable slice shared by the threads of a [`region`], which take disjoint parts of it.
pub(crate) struct Shared<'a> {
    ptr: *mut f64,
    len: usize,
    _borrow: PhantomData<&'a mut [f64]>,
}

// SAFETY: a Shared is only a way to hand out disjoint parts of one &mut [f64] (see `part`).
unsafe impl Send for Shared<'_> {}
// SAFETY: as above.
unsafe impl Sync for Shared<'_> {}

impl<'a> Shared<'a> {
    pub(crate) fn new(data: &'a mut [f64]) -> Self {
        Shared { ptr: data.as_mut_ptr(), len: data.len(), _borrow: PhantomData }
    }

    /// data[start..end].
    ///
    /// # Safety
    /// No two parts alive at the same time may overlap (callers take each part's index once
    /// from a [`Queue`] and the parts of one queue are disjoint).
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn part(&self, start: usize, end: usize) -> &'a mut [f64] {
        assert!(start <= end && end <= self.len, "part {start}..{end} of {}", self.len);
        // SAFETY: in bounds (checked); disjoint from every other live part (the caller's duty).
        unsafe { core::slice::from_raw_parts_mut(self.ptr.add(start), end - start) }
    }
}

/// Boundaries 0 = b_0 < b_1 < ... = m of about `pieces` bands of rows of an m x m lower
/// triangle with equal areas, at multiples of [`BAND_ALIGN`].
fn band_bounds(m: usize, pieces: usize) -> Vec<usize> {
    let mut bounds = vec![0];
    for i in 1..pieces {
        let r = (m as f64 * sqrt(i as f64 / pieces as f64)) as usize;
        let r = (r + BAND_ALIGN / 2) / BAND_ALIGN * BAND_ALIGN;
        if r > bounds[bounds.len() - 1] && r < m {
            bounds.push(r);
        }
    }
    bounds.push(m);
    bounds
}

/// A packed block P (kc rows x m columns) of a rank-k update: `p8` in panels of [`TILE`]
/// columns, P[k][p TILE + t] = p8[(p kc + k) TILE + t]; for the AVX2 path also `p6` in panels
/// of [`ROWS_AVX2`] columns, zero-padded alike.
struct Packed<'a> {
    p8: &'a [f64],
    // Read by the AVX2 path only (empty elsewhere).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    p6: &'a [f64],
    kc: usize,
    m: usize,
}

/// Sizes of the two packings of a kc x m block for `isa`.
fn packed_sizes(isa: VectorIsa, kc: usize, m: usize) -> (usize, usize) {
    let p8 = m.div_ceil(TILE) * kc * TILE;
    let p6 = if isa == VectorIsa::Avx2 { m.div_ceil(ROWS_AVX2) * kc * ROWS_AVX2 } else { 0 };
    (p8, p6)
}

/// Sizes the workspace for the packings of a kc x m block and returns them (p8, p6).
fn packings(isa: VectorIsa, kc: usize, m: usize, workspace: &mut Vec<f64>) -> (&mut [f64], &mut [f64]) {
    let (n8, n6) = packed_sizes(isa, kc, m);
    if workspace.len() < n8 + n6 {
        workspace.resize(n8 + n6, 0.0);
    }
    let (p8, rest) = workspace.split_at_mut(n8);
    (p8, &mut rest[..n6])
}

/// Packs P (kc x m) from its rows: P[k][i] = `row(k)[i]` times `scale(k)`; every value of the
/// packings (padding included) is written.
fn pack_rows<'a>(
    isa: VectorIsa,
    kc: usize,
    m: usize,
    workspace: &mut Vec<f64>,
    row: impl Fn(usize) -> (&'a [f64], f64),
) {
    let (p8, p6) = packings(isa, kc, m, workspace);
    for k in 0..kc {
        let (source, scale) = row(k);
        let source = &source[..m];
        let (chunks, rest) = (source.chunks_exact(TILE), source.chunks_exact(TILE).remainder());
        for (p, values) in chunks.enumerate() {
            for (t, &v) in p8[(p * kc + k) * TILE..][..TILE].iter_mut().zip(values) {
                *t = scale * v;
            }
        }
        if !rest.is_empty() {
            let target = &mut p8[((m / TILE) * kc + k) * TILE..][..TILE];
            for (t, v) in
                target.iter_mut().zip(rest.iter().map(|&v| scale * v).chain(core::iter::repeat(0.0)))
            {
                *t = v;
            }
        }
        if !p6.is_empty() {
            let (chunks, rest) = (source.chunks_exact(ROWS_AVX2), source.chunks_exact(ROWS_AVX2).remainder());
            for (q, values) in chunks.enumerate() {
                for (t, &v) in p6[(q * kc + k) * ROWS_AVX2..][..ROWS_AVX2].iter_mut().zip(values) {
                    *t = scale * v;
                }
            }
            if !rest.is_empty() {
                let target = &mut p6[((m / ROWS_AVX2) * kc + k) * ROWS_AVX2..][..ROWS_AVX2];
                for (t, v) in
                    target.iter_mut().zip(rest.iter().map(|&v| scale * v).chain(core::iter::repeat(0.0)))
                {
                    *t = v;
                }
            }
        }
    }
}

/// Packs P (kc x m, kc <= [`CHOLESKY_BLOCK`]) from its columns: P[k][i] = `column(i)[k]`;
/// every value of the packings (padding included) is written. Each panel is written in order,
/// reading its columns side by side.
fn pack_columns<'a>(
    isa: VectorIsa,
    kc: usize,
    m: usize,
    workspace: &mut Vec<f64>,
    column: impl Fn(usize) -> &'a [f64],
) {
    const ZEROS: [f64; CHOLESKY_BLOCK] = [0.0; CHOLESKY_BLOCK];
    assert!(kc <= CHOLESKY_BLOCK);
    let (p8, p6) = packings(isa, kc, m, workspace);
    let source = |i: usize| if i < m { &column(i)[..kc] } else { &ZEROS[..kc] };
    for (p, panel) in p8.chunks_exact_mut(kc * TILE).enumerate() {
        let columns: [&[f64]; TILE] = core::array::from_fn(|t| source(p * TILE + t));
        for (k, target) in panel.chunks_exact_mut(TILE).enumerate() {
            for (v, c) in target.iter_mut().zip(&columns) {
                *v = c[k];
            }
        }
    }
    for (q, panel) in p6.chunks_exact_mut(kc * ROWS_AVX2).enumerate() {
        let columns: [&[f64]; ROWS_AVX2] = core::array::from_fn(|t| source(q * ROWS_AVX2 + t));
        for (k, target) in panel.chunks_exact_mut(ROWS_AVX2).enumerate() {
            for (v, c) in target.iter_mut().zip(&columns) {
                *v = c[k];
            }
        }
    }
}

/// The packings made by [`pack_rows`] or [`pack_columns`] in `workspace`.
fn packed(isa: VectorIsa, kc: usize, m: usize, workspace: &[f64]) -> Packed<'_> {
    let (n8, n6) = packed_sizes(isa, kc, m);
    Packed { p8: &workspace[..n8], p6: &workspace[n8..n8 + n6], kc, m }
}

/// Adds the Gram matrix of selected rows to `c`: c[i][j] += sum_r (s_r X[r][i]) (s_r X[r][j])
/// for j <= i < `cols`, r over `rows`, s_r = `row_scale[r]` (the square root of a weight).
///
/// `x` is row-major with leading dimension `ldx` (only its first `cols` columns are read); `c`
/// has leading dimension `ldc`. `workspace` is resized as needed and may be reused. One thread.
#[allow(clippy::too_many_arguments)]
pub fn add_gram_lower(
    x: &[f64],
    ldx: usize,
    cols: usize,
    rows: &[usize],
    row_scale: &[f64],
    c: &mut [f64],
    ldc: usize,
    workspace: &mut Vec<f64>,
) {
    add_gram_lower_with(Exec::sequential(), x, ldx, cols, rows, row_scale, c, ldc, workspace)
}

/// [`add_gram_lower`] with the instruction set and threads of `exec`: the same bits on any.
#[allow(clippy::too_many_arguments)]
pub fn add_gram_lower_with(
    exec: Exec,
    x: &[f64],
    ldx: usize,
    cols: usize,
    rows: &[usize],
    row_scale: &[f64],
    c: &mut [f64],
    ldc: usize,
    workspace: &mut Vec<f64>,
) {
    for chunk in rows.chunks(GRAM_ROWS) {
        let kc = chunk.len();
        pack_rows(exec.isa, kc, cols, workspace, |k| {
            let r = chunk[k];
            (&x[r * ldx..], row_scale[r])
        });
        rank_update(exec, &packed(exec.isa, kc, cols, workspace), c, ldc, false);
    }
}

/// c[i][j] += (or -= when `subtract`) sum_k P[k][i] P[k][j] for j <= i < m, on the threads of
/// `exec`, in bands of rows.
fn rank_update(exec: Exec, p: &Packed, c: &mut [f64], ldc: usize, subtract: bool) {
    let sign = if subtract { -1.0 } else { 1.0 };
    let m = p.m;
    if m == 0 {
        return;
    }
    let work = p.kc.saturating_mul(m).saturating_mul(m) / 2;
    let threads = if work < MIN_PARALLEL_WORK { 1 } else { exec.threads.min(m.div_ceil(BAND_ALIGN)) };
    if threads <= 1 {
        return band_update(exec.isa, p, 0, m, c, ldc, sign);
    }
    let bounds = band_bounds(m, threads * BANDS_PER_THREAD);
    let queue = Queue::new(bounds.len() - 1);
    let end = (m - 1) * ldc + m;
    let shared = Shared::new(&mut c[..end]);
    region(threads, &|| {
        while let Some(b) = queue.take() {
            let (r0, r1) = (bounds[b], bounds[b + 1]);
            // SAFETY: band b is taken once; rows r0..r1 of C end at (r1 - 1) ldc + r1 <= r1 ldc,
            // where the next band starts.
            let band = unsafe { shared.part(r0 * ldc, (r1 - 1) * ldc + r1) };
            band_update(exec.isa, p, r0, r1, band, ldc, sign);
        }
    });
}

/// Rows r0..r1 of the update (r0 a multiple of [`BAND_ALIGN`]); `c` starts at row r0.
fn band_update(isa: VectorIsa, p: &Packed, r0: usize, r1: usize, c: &mut [f64], ldc: usize, sign: f64) {
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY: an Exec's set is one this CPU runs (VectorIsa::detect or require).
        VectorIsa::Avx512 => return unsafe { band_avx512(p, r0, r1, c, ldc, sign) },
        // SAFETY: as above.
        VectorIsa::Avx2 => return unsafe { band_avx2(p, r0, r1, c, ldc, sign) },
        VectorIsa::Baseline | VectorIsa::Neon => {}
    }
    let _ = isa;
    band_lanes(p, r0, r1, c, ldc, sign)
}

/// The AVX-512 path: tiles of 8 rows by 16 columns (the 8-column panels pj and pj + 1 side by
/// side: 16 accumulators, two loads and eight multiply-adds with a broadcast operand per step;
/// the 8 x 8 tile of [`band_lanes`] has only 8 chains for two FMA pipes of latency 4). For each
/// block of row panels that fills about [`L2_BLOCK_BYTES`], every pair of column panels left of
/// the diagonal is loaded once (it stays in L1) and used for all the block's tiles.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,fma")]
unsafe fn band_avx512(p: &Packed, r0: usize, r1: usize, c: &mut [f64], ldc: usize, sign: f64) {
    use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    let (kc, m) = (p.kc, p.m);
    debug_assert!(r0.is_multiple_of(TILE) && r1 <= m);
    let panel = kc * TILE;
    let block_panels = (L2_BLOCK_BYTES / (8 * panel).max(1)).max(1);
    let (mut block, end) = (r0 / TILE, r1.div_ceil(TILE));
    while block < end {
        let block_end = (block + block_panels).min(end);
        for pj in (0..block_end).step_by(2) {
            let b0 = &p.p8[pj * panel..(pj + 1) * panel];
            for pi in block.max(pj)..block_end {
                let a = &p.p8[pi * panel..(pi + 1) * panel];
                let (first, last) = ((pi * TILE).max(r0), (pi * TILE + TILE).min(r1));
                // The next tile's rows of C (16 values, up to three cache lines each), fetched
                // while this one is computed: each line of C is visited once per update.
                for row in last..(last + TILE).min(block_end * TILE).min(r1) {
                    let line = c[(row - r0) * ldc + pj * TILE..].as_ptr().cast::<i8>();
                    // A prefetch never faults.
                    _mm_prefetch::<_MM_HINT_T0>(line);
                    _mm_prefetch::<_MM_HINT_T0>(line.wrapping_add(64));
                    _mm_prefetch::<_MM_HINT_T0>(line.wrapping_add(8 * 2 * TILE - 8));
                }
                if pi > pj {
                    let b1 = &p.p8[(pj + 1) * panel..(pj + 2) * panel];
                    // SAFETY: a, b0 and b1 hold kc rows of TILE values; AVX-512 is enabled here.
                    let acc = unsafe { tile_8x8n::<2>(a, [b0, b1], kc) };
                    for (h, half) in acc.iter().enumerate() {
                        // SAFETY: as above.
                        unsafe { add_tile_avx512(half, pi, pj + h, first, last, r0, m, c, ldc, sign) };
                    }
                } else {
                    // SAFETY: as above.
                    let acc = unsafe { tile_8x8n::<1>(a, [b0], kc) };
                    // SAFETY: as above.
                    unsafe { add_tile_avx512(&acc[0], pi, pj, first, last, r0, m, c, ldc, sign) };
                }
            }
        }
        block = block_end;
    }
}

/// The 8 x 8N tile sum_k a[k][i] b_h[k][j] of an 8-column panel `a` and N panels `b`, as 8 rows
/// of N vectors per panel (`[h][i]`), each element accumulated by fused multiply-adds in the
/// order of k.
///
/// # Safety
/// AVX-512F and FMA; `a` and every `b[h]` hold at least kc x [`TILE`] values.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,avx512dq,fma")]
unsafe fn tile_8x8n<const N: usize>(
    a: &[f64],
    b: [&[f64]; N],
    kc: usize,
) -> [[core::arch::x86_64::__m512d; TILE]; N] {
    use core::arch::x86_64::{_mm512_fmadd_pd, _mm512_loadu_pd, _mm512_set1_pd, _mm512_setzero_pd};
    assert!(a.len() >= kc * TILE && b.iter().all(|b| b.len() >= kc * TILE));
    let mut acc = [[_mm512_setzero_pd(); TILE]; N];
    for k in 0..kc {
        // SAFETY: k < kc, within the lengths asserted above.
        unsafe {
            let bk: [_; N] = core::array::from_fn(|h| _mm512_loadu_pd(b[h].as_ptr().add(k * TILE)));
            for (i, &ai) in a[k * TILE..(k + 1) * TILE].iter().enumerate() {
                let ai = _mm512_set1_pd(ai);
                for h in 0..N {
                    acc[h][i] = _mm512_fmadd_pd(ai, bk[h], acc[h][i]);
                }
            }
        }
    }
    acc
}

/// c[row][j] = fma(sign, tile[row - 8 pi][j - 8 pj], c[row][j]) for rows first..last (C starts
/// at row r0) and the columns of panel pj below m, in the lower triangle only.
///
/// # Safety
/// AVX-512F and FMA.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,avx512dq,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn add_tile_avx512(
    tile: &[core::arch::x86_64::__m512d; TILE],
    pi: usize,
    pj: usize,
    first: usize,
    last: usize,
    r0: usize,
    m: usize,
    c: &mut [f64],
    ldc: usize,
    sign: f64,
) {
    use core::arch::x86_64::{_mm512_fmadd_pd, _mm512_mask_storeu_pd, _mm512_maskz_loadu_pd, _mm512_set1_pd};
    let j0 = pj * TILE;
    let cols = TILE.min(m - j0);
    for row in first..last {
        // Only the lower triangle: columns j0..=row.
        let limit = cols.min((row + 1).saturating_sub(j0));
        let at = (row - r0) * ldc + j0;
        let target = &mut c[at..at + limit];
        let mask = ((1u16 << limit) - 1) as u8;
        // SAFETY: the mask selects the `limit` values of target; masked-out lanes are neither
        // read nor written.
        unsafe {
            let old = _mm512_maskz_loadu_pd(mask, target.as_ptr());
            let new = _mm512_fmadd_pd(_mm512_set1_pd(sign), tile[row - pi * TILE], old);
            _mm512_mask_storeu_pd(target.as_mut_ptr(), mask, new);
        }
    }
}

/// The 8 x 8 tiles of rows r0..r1, panel by panel.
#[inline(always)]
fn band_lanes(p: &Packed, r0: usize, r1: usize, c: &mut [f64], ldc: usize, sign: f64) {
    let (kc, m) = (p.kc, p.m);
    for pi in r0 / TILE..r1.div_ceil(TILE) {
        let a = &p.p8[pi * kc * TILE..(pi + 1) * kc * TILE];
        let (first, last) = ((pi * TILE).max(r0), (pi * TILE + TILE).min(r1));
        for pj in 0..=pi {
            let b = &p.p8[pj * kc * TILE..(pj + 1) * kc * TILE];
            let tile = tile_product(a, b);
            let cols = TILE.min(m - pj * TILE);
            for row in first..last {
                let i = row - pi * TILE;
                // Only the lower triangle: in a diagonal tile, columns up to the row.
                let limit = if pi == pj { i + 1 } else { cols };
                let start = (row - r0) * ldc + pj * TILE;
                for (t, &v) in c[start..start + limit].iter_mut().zip(&tile[i]) {
                    *t = mul_add(sign, v, *t);
                }
            }
        }
    }
}

/// The 8 x 8 tile sum_k a[k][i] b[k][j] of two packed panels (k x TILE each).
#[inline(always)]
fn tile_product(a: &[f64], b: &[f64]) -> [[f64; TILE]; TILE] {
    let mut acc = [[0.0; TILE]; TILE];
    for (ak, bk) in a.chunks_exact(TILE).zip(b.chunks_exact(TILE)) {
        for (acc_row, &ai) in acc.iter_mut().zip(ak) {
            for (v, &bj) in acc_row.iter_mut().zip(bk) {
                *v = mul_add(ai, bj, *v);
            }
        }
    }
    acc
}

/// The AVX2 path: 6 x 8 tiles; for each block of rows whose 6-column panels fill about
/// [`L2_BLOCK_BYTES`], every 8-column panel left of the diagonal is loaded once and used for
/// all the block's tiles.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn band_avx2(p: &Packed, r0: usize, r1: usize, c: &mut [f64], ldc: usize, sign: f64) {
    use core::arch::x86_64::{
        _MM_HINT_T0, _mm_prefetch, _mm256_fmadd_pd, _mm256_loadu_pd, _mm256_set1_pd, _mm256_storeu_pd,
    };
    const R: usize = ROWS_AVX2;
    let (kc, m) = (p.kc, p.m);
    debug_assert!(r0.is_multiple_of(R) && r1 <= m);
    let block_rows = (L2_BLOCK_BYTES / (8 * R * kc.max(1))).max(1) * R;
    let sign_v = _mm256_set1_pd(sign);
    let mut block = r0;
    while block < r1 {
        let block_end = (block + block_rows).min(r1);
        for pj in 0..=(block_end - 1) / TILE {
            let j0 = pj * TILE;
            let b = &p.p8[pj * kc * TILE..(pj + 1) * kc * TILE];
            let cols = TILE.min(m - j0);
            // Tiles wholly above the diagonal (last row < j0) are skipped.
            let mut i0 = block.max(j0 / R * R);
            while i0 < block_end {
                let q = i0 / R;
                let a = &p.p6[q * kc * R..(q + 1) * kc * R];
                // The next tile's rows of C, fetched while this one is computed (each line of
                // C is visited once per update, so it comes from far away).
                for row in i0 + R..(i0 + 2 * R).min(block_end) {
                    let at = (row - r0) * ldc + j0;
                    let line = c[at..at + cols].as_ptr().cast::<i8>();
                    // A prefetch never faults; the second one is the tile row's last value (the
                    // row may straddle two cache lines).
                    _mm_prefetch::<_MM_HINT_T0>(line);
                    _mm_prefetch::<_MM_HINT_T0>(line.wrapping_add(8 * TILE - 8));
                }
                // SAFETY: a and b hold kc rows of R and TILE values.
                let acc = unsafe { tile_6x8(a, b, kc) };
                let rows = R.min(block_end - i0);
                if rows == R && cols == TILE && i0 >= j0 + TILE - 1 {
                    for (r, pair) in acc.chunks_exact(2).enumerate() {
                        let at = (i0 + r - r0) * ldc + j0;
                        let target = &mut c[at..at + TILE];
                        let ptr = target.as_mut_ptr();
                        // SAFETY: target holds TILE = 2 x 4 values.
                        unsafe {
                            let low = _mm256_fmadd_pd(sign_v, pair[0], _mm256_loadu_pd(ptr));
                            let high = _mm256_fmadd_pd(sign_v, pair[1], _mm256_loadu_pd(ptr.add(4)));
                            _mm256_storeu_pd(ptr, low);
                            _mm256_storeu_pd(ptr.add(4), high);
                        }
                    }
                } else {
                    let mut tile = [[0.0f64; TILE]; R];
                    for (row, pair) in tile.iter_mut().zip(acc.chunks_exact(2)) {
                        // SAFETY: row holds TILE = 2 x 4 values.
                        unsafe {
                            _mm256_storeu_pd(row.as_mut_ptr(), pair[0]);
                            _mm256_storeu_pd(row.as_mut_ptr().add(4), pair[1]);
                        }
                    }
                    for (r, tile_row) in tile.iter().enumerate().take(rows) {
                        let row = i0 + r;
                        // Only the lower triangle: columns j0..=row.
                        let limit = cols.min((row + 1).saturating_sub(j0));
                        let at = (row - r0) * ldc + j0;
                        for (t, &v) in c[at..at + limit].iter_mut().zip(tile_row) {
                            *t = mul_add(sign, v, *t);
                        }
                    }
                }
                i0 += R;
            }
        }
        block = block_end;
    }
}

/// The 6 x 8 tile sum_k a[k][i] b[k][j] of a 6-column and an 8-column panel, as 12 vectors
/// (row i: 2i, 2i + 1), each element accumulated by fused multiply-adds in the order of k.
///
/// # Safety
/// AVX2 and FMA; `a` and `b` hold at least kc x 6 and kc x 8 values.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_6x8(a: &[f64], b: &[f64], kc: usize) -> [core::arch::x86_64::__m256d; 12] {
    use core::arch::x86_64::{_mm256_broadcast_sd, _mm256_fmadd_pd, _mm256_loadu_pd, _mm256_setzero_pd};
    assert!(a.len() >= kc * ROWS_AVX2 && b.len() >= kc * TILE);
    let (a, b) = (a.as_ptr(), b.as_ptr());
    let z = _mm256_setzero_pd();
    let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21) = (z, z, z, z, z, z);
    let (mut c30, mut c31, mut c40, mut c41, mut c50, mut c51) = (z, z, z, z, z, z);
    for k in 0..kc {
        // SAFETY: k < kc, within the lengths asserted above.
        unsafe {
            let bk = b.add(k * TILE);
            let ak = a.add(k * ROWS_AVX2);
            let (b0, b1) = (_mm256_loadu_pd(bk), _mm256_loadu_pd(bk.add(4)));
            let a0 = _mm256_broadcast_sd(&*ak);
            c00 = _mm256_fmadd_pd(a0, b0, c00);
            c01 = _mm256_fmadd_pd(a0, b1, c01);
            let a1 = _mm256_broadcast_sd(&*ak.add(1));
            c10 = _mm256_fmadd_pd(a1, b0, c10);
            c11 = _mm256_fmadd_pd(a1, b1, c11);
            let a2 = _mm256_broadcast_sd(&*ak.add(2));
            c20 = _mm256_fmadd_pd(a2, b0, c20);
            c21 = _mm256_fmadd_pd(a2, b1, c21);
            let a3 = _mm256_broadcast_sd(&*ak.add(3));
            c30 = _mm256_fmadd_pd(a3, b0, c30);
            c31 = _mm256_fmadd_pd(a3, b1, c31);
            let a4 = _mm256_broadcast_sd(&*ak.add(4));
            c40 = _mm256_fmadd_pd(a4, b0, c40);
            c41 = _mm256_fmadd_pd(a4, b1, c41);
            let a5 = _mm256_broadcast_sd(&*ak.add(5));
            c50 = _mm256_fmadd_pd(a5, b0, c50);
            c51 = _mm256_fmadd_pd(a5, b1, c51);
        }
    }
    [c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51]
}

/// sum_k a[k] b[k] with 8 partial sums (vectorises; a fixed summation order).
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; TILE];
    let (a_chunks, b_chunks) = (a.chunks_exact(TILE), b.chunks_exact(TILE));
    let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
    for (ac, bc) in a_chunks.zip(b_chunks) {
        for ((v, &x), &y) in acc.iter_mut().zip(ac).zip(bc) {
            *v = mul_add(x, y, *v);
        }
    }
    for ((v, &x), &y) in acc.iter_mut().zip(a_rest).zip(b_rest) {
        *v = mul_add(x, y, *v);
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// Factors the symmetric positive definite `a` (n x n, lower triangle, leading dimension `lda`)
/// in place into its Cholesky factor L (lower triangle), A = L L^T.
///
/// Errors: [`crate::Error::OutOfDomain`] when a pivot is not > 0 (A is not positive definite
/// to working precision). `workspace` is resized as needed and may be reused. One thread.
pub fn cholesky_in_place(a: &mut [f64], n: usize, lda: usize, workspace: &mut Vec<f64>) -> Result<()> {
    cholesky_in_place_with(Exec::sequential(), a, n, lda, workspace)
}

/// [`cholesky_in_place`] with the instruction set and threads of `exec`: the same bits on any.
pub fn cholesky_in_place_with(
    exec: Exec,
    a: &mut [f64],
    n: usize,
    lda: usize,
    workspace: &mut Vec<f64>,
) -> Result<()> {
    for kb in (0..n).step_by(CHOLESKY_BLOCK) {
        let nb = CHOLESKY_BLOCK.min(n - kb);
        // Block column kb..kb + nb (its columns before kb were subtracted already), row by row:
        // L[i][j] = (A[i][j] - L[i][kb..j] . L[j][kb..j]) / L[j][j], and on the diagonal block
        // L[i][i] = sqrt(A[i][i] - |L[i][kb..i]|^2). The diagonal block first, then the rows
        // below it, which depend on it only.
        let (upper, lower) = a.split_at_mut(((kb + nb) * lda).min(a.len()));
        diagonal_block(exec.isa, upper, kb, nb, lda)?;
        let m = n - kb - nb;
        if m == 0 {
            break;
        }
        let rows_below = &mut lower[..(m - 1) * lda + kb + nb];
        let threads = if m * nb * nb / 2 < MIN_PARALLEL_WORK { 1 } else { exec.threads.min(m) };
        if threads <= 1 {
            panel_rows(exec.isa, upper, rows_below, kb, nb, lda);
        } else {
            let pieces = (threads * BANDS_PER_THREAD).min(m);
            let queue = Queue::new(pieces);
            let shared = Shared::new(rows_below);
            let upper = &*upper;
            region(threads, &|| {
                while let Some(piece) = queue.take() {
                    let (first, last) = (piece * m / pieces, (piece + 1) * m / pieces);
                    if first == last {
                        continue;
                    }
                    // SAFETY: piece is taken once; rows first..last end before row last starts.
                    let rows = unsafe { shared.part(first * lda, (last - 1) * lda + kb + nb) };
                    panel_rows(exec.isa, upper, rows, kb, nb, lda);
                }
            });
        }
        // Trailing update A22 -= L21 L21^T, L21 packed with its rows as the columns of P.
        let below = kb + nb;
        pack_columns(exec.isa, nb, m, workspace, |i| &a[(below + i) * lda + kb..]);
        rank_update(exec, &packed(exec.isa, nb, m, workspace), &mut a[below * lda + below..], lda, true);
    }
    Ok(())
}

/// Factors the diagonal block kb..kb + nb (rows of `a` up to kb + nb).
fn diagonal_block(isa: VectorIsa, a: &mut [f64], kb: usize, nb: usize, lda: usize) -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY: an Exec's set is one this CPU runs.
        VectorIsa::Avx512 => return unsafe { diagonal_avx512(a, kb, nb, lda) },
        // SAFETY: as above.
        VectorIsa::Avx2 => return unsafe { diagonal_avx2(a, kb, nb, lda) },
        VectorIsa::Baseline | VectorIsa::Neon => {}
    }
    let _ = isa;
    diagonal_lanes(a, kb, nb, lda, group_lanes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,fma")]
unsafe fn diagonal_avx512(a: &mut [f64], kb: usize, nb: usize, lda: usize) -> Result<()> {
    // SAFETY: the AVX2 kernel: every CPU given VectorIsa::Avx512 has AVX2 and FMA
    // (VectorIsa::hardware); it beats group_lanes compiled for AVX-512 by 4x.
    diagonal_lanes(a, kb, nb, lda, |rows, upper, kb, columns, lda| unsafe {
        group_avx2(rows, upper, kb, columns, lda)
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn diagonal_avx2(a: &mut [f64], kb: usize, nb: usize, lda: usize) -> Result<()> {
    // SAFETY: AVX2 and FMA are enabled here.
    diagonal_lanes(a, kb, nb, lda, |rows, upper, kb, columns, lda| unsafe {
        group_avx2(rows, upper, kb, columns, lda)
    })
}

#[inline(always)]
fn diagonal_lanes(
    a: &mut [f64],
    kb: usize,
    nb: usize,
    lda: usize,
    group_solve: impl Fn(Group, &[f64], usize, Range<usize>, usize),
) -> Result<()> {
    let mut i0 = kb;
    while i0 < kb + nb {
        let group = PANEL_ROWS.min(kb + nb - i0);
        let mut first_column = kb;
        if group == PANEL_ROWS {
            // Columns kb..i0 of the group's rows need only the rows above it: together, as in
            // the panel below.
            let (upper, rows) = a.split_at_mut(i0 * lda);
            let mut rows = rows.chunks_mut(lda);
            let group: Group = core::array::from_fn(|_| rows.next().unwrap_or_default());
            group_solve(group, upper, kb, kb..i0, lda);
            first_column = i0;
        }
        for i in i0..i0 + group {
            let (upper, row_i) = a.split_at_mut(i * lda);
            for j in first_column..i {
                let lj = &upper[j * lda..j * lda + j + 1];
                let s = row_i[j] - dot(&row_i[kb..j], &lj[kb..j]);
                row_i[j] = s / lj[j];
            }
            let li = &row_i[kb..i];
            let pivot = row_i[i] - dot(li, li);
            if !(pivot > 0.0 && pivot.is_finite()) {
                return Err(out_of_domain!(
                    "the matrix is not positive definite: pivot {i} is {pivot} (singular or \
                     ill-conditioned system)"
                ));
            }
            row_i[i] = sqrt(pivot);
        }
        i0 += group;
    }
    Ok(())
}

/// Columns kb..kb + nb of the rows in `rows` (whole rows from a row below the diagonal block,
/// leading dimension lda), from the factored diagonal block in `upper`.
fn panel_rows(isa: VectorIsa, upper: &[f64], rows: &mut [f64], kb: usize, nb: usize, lda: usize) {
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY: an Exec's set is one this CPU runs.
        VectorIsa::Avx512 => return unsafe { panel_avx512(upper, rows, kb, nb, lda) },
        // SAFETY: as above.
        VectorIsa::Avx2 => return unsafe { panel_avx2(upper, rows, kb, nb, lda) },
        VectorIsa::Baseline | VectorIsa::Neon => {}
    }
    let _ = isa;
    panel_lanes(upper, rows, kb, nb, lda, group_lanes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,fma")]
unsafe fn panel_avx512(upper: &[f64], rows: &mut [f64], kb: usize, nb: usize, lda: usize) {
    // SAFETY: as in diagonal_avx512.
    panel_lanes(upper, rows, kb, nb, lda, |rows, upper, kb, columns, lda| unsafe {
        group_avx2(rows, upper, kb, columns, lda)
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn panel_avx2(upper: &[f64], rows: &mut [f64], kb: usize, nb: usize, lda: usize) {
    // SAFETY: AVX2 and FMA are enabled here.
    panel_lanes(upper, rows, kb, nb, lda, |rows, upper, kb, columns, lda| unsafe {
        group_avx2(rows, upper, kb, columns, lda)
    })
}

/// Rows of the panel solved together: their dot products with a row of the diagonal block
/// are independent, so their latencies overlap (one row at a time waits on each sum); two
/// quads of rows, the second's sums computed while the first's are reduced and divided.
const PANEL_ROWS: usize = 8;

#[inline(always)]
fn panel_lanes(
    upper: &[f64],
    rows: &mut [f64],
    kb: usize,
    nb: usize,
    lda: usize,
    group_solve: impl Fn(Group, &[f64], usize, Range<usize>, usize),
) {
    let n_rows = rows.len().div_ceil(lda);
    let mut rest = rows;
    for _ in 0..n_rows / PANEL_ROWS {
        let (group, tail) = rest.split_at_mut((PANEL_ROWS * lda).min(rest.len()));
        rest = tail;
        let mut rows = group.chunks_mut(lda);
        let group: Group = core::array::from_fn(|_| rows.next().unwrap_or_default());
        group_solve(group, upper, kb, kb..kb + nb, lda);
    }
    for start in (0..rest.len()).step_by(lda) {
        let row_i = &mut rest[start..];
        for j in kb..kb + nb {
            let lj = &upper[j * lda..j * lda + j + 1];
            let s = row_i[j] - dot(&row_i[kb..j], &lj[kb..j]);
            row_i[j] = s / lj[j];
        }
    }
}

/// The rows of a group, each from its column kb on.
type Group<'a> = [&'a mut [f64]; PANEL_ROWS];

/// Columns `columns` of the group's rows: L[i][j] = (A[i][j] - L[i][kb..j] . L[j][kb..j]) /
/// L[j][j], with the rows j of `upper`.
#[inline(always)]
fn group_lanes(rows: Group, upper: &[f64], kb: usize, columns: Range<usize>, lda: usize) {
    let [r0, r1, r2, r3, r4, r5, r6, r7] = rows;
    for j in columns {
        let lj = &upper[j * lda..j * lda + j + 1];
        for [r0, r1, r2, r3] in
            [[&mut *r0, &mut *r1, &mut *r2, &mut *r3], [&mut *r4, &mut *r5, &mut *r6, &mut *r7]]
        {
            let s = dots([&r0[kb..j], &r1[kb..j], &r2[kb..j], &r3[kb..j]], &lj[kb..j]);
            r0[j] = (r0[j] - s[0]) / lj[j];
            r1[j] = (r1[j] - s[1]) / lj[j];
            r2[j] = (r2[j] - s[2]) / lj[j];
            r3[j] = (r3[j] - s[3]) / lj[j];
        }
    }
}

/// [`group_lanes`] in AVX2 vectors: the same operations ([`dot`]'s 8 partial sums and their
/// pairwise sum, the subtraction and the division), with the four rows' sums reduced and
/// divided together and the last partial chunk loaded under a mask (its missing terms add
/// 0 * 0 = +0, which leaves a sum that started at +0 unchanged, bit for bit).
///
/// # Safety
/// AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn group_avx2(rows: Group, upper: &[f64], kb: usize, columns: Range<usize>, lda: usize) {
    let [r0, r1, r2, r3, r4, r5, r6, r7] = rows;
    for j in columns {
        let lj = &upper[j * lda..j * lda + j + 1];
        // SAFETY: AVX2 and FMA are enabled here.
        unsafe {
            quad_avx2([&mut *r0, &mut *r1, &mut *r2, &mut *r3], lj, kb, j);
            quad_avx2([&mut *r4, &mut *r5, &mut *r6, &mut *r7], lj, kb, j);
        }
    }
}

/// Column j of four rows of a group (see [`group_avx2`]).
///
/// # Safety
/// AVX2 and FMA (inlined into [`group_avx2`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn quad_avx2(rows: [&mut [f64]; 4], lj: &[f64], kb: usize, j: usize) {
    use core::arch::x86_64::{
        __m256d, _mm256_add_pd, _mm256_cmpgt_epi64, _mm256_div_pd, _mm256_fmadd_pd, _mm256_hadd_pd,
        _mm256_loadu_pd, _mm256_maskload_pd, _mm256_permute2f128_pd, _mm256_set_epi64x, _mm256_set_pd,
        _mm256_set1_epi64x, _mm256_set1_pd, _mm256_setzero_pd, _mm256_storeu_pd, _mm256_sub_pd,
    };
    let [r0, r1, r2, r3] = rows;
    let (b, a) = (&lj[kb..j], [&r0[kb..j], &r1[kb..j], &r2[kb..j], &r3[kb..j]]);
    let len = b.len();
    let full = len / TILE * TILE;
    // SAFETY: AVX2 and FMA (the caller's duty); the loads: c + TILE <= full <= len, the length of
    // b and of each a[r]; the masks select the rest < TILE values from index full on, within
    // the slices, and masked-out lanes are not read (their addresses may be past the end); out
    // holds 4 values.
    unsafe {
        let z = _mm256_setzero_pd();
        let mut acc: [[__m256d; 2]; 4] = [[z; 2]; 4];
        for c in (0..full).step_by(TILE) {
            let (b0, b1) = (_mm256_loadu_pd(b.as_ptr().add(c)), _mm256_loadu_pd(b.as_ptr().add(c + 4)));
            for (v, row) in acc.iter_mut().zip(&a) {
                v[0] = _mm256_fmadd_pd(_mm256_loadu_pd(row.as_ptr().add(c)), b0, v[0]);
                v[1] = _mm256_fmadd_pd(_mm256_loadu_pd(row.as_ptr().add(c + 4)), b1, v[1]);
            }
        }
        let rest = (len - full) as i64;
        if rest > 0 {
            let lanes = _mm256_set_epi64x(3, 2, 1, 0);
            let low = _mm256_cmpgt_epi64(_mm256_set1_epi64x(rest), lanes);
            let high = _mm256_cmpgt_epi64(_mm256_set1_epi64x(rest - 4), lanes);
            let b0 = _mm256_maskload_pd(b.as_ptr().wrapping_add(full), low);
            let b1 = _mm256_maskload_pd(b.as_ptr().wrapping_add(full + 4), high);
            for (v, row) in acc.iter_mut().zip(&a) {
                v[0] = _mm256_fmadd_pd(_mm256_maskload_pd(row.as_ptr().wrapping_add(full), low), b0, v[0]);
                v[1] =
                    _mm256_fmadd_pd(_mm256_maskload_pd(row.as_ptr().wrapping_add(full + 4), high), b1, v[1]);
            }
        }
        // ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) for the four rows at once.
        let half = |h: usize| {
            let pairs01 = _mm256_hadd_pd(acc[0][h], acc[1][h]);
            let pairs23 = _mm256_hadd_pd(acc[2][h], acc[3][h]);
            _mm256_add_pd(
                _mm256_permute2f128_pd::<0x20>(pairs01, pairs23),
                _mm256_permute2f128_pd::<0x31>(pairs01, pairs23),
            )
        };
        let sums = _mm256_add_pd(half(0), half(1));
        let values = _mm256_set_pd(r3[j], r2[j], r1[j], r0[j]);
        let solved = _mm256_div_pd(_mm256_sub_pd(values, sums), _mm256_set1_pd(lj[j]));
        let mut out = [0.0; 4];
        _mm256_storeu_pd(out.as_mut_ptr(), solved);
        (r0[j], r1[j], r2[j], r3[j]) = (out[0], out[1], out[2], out[3]);
    }
}

/// [`dot`] of each of R rows with `b`: the same operations as R calls, interleaved.
#[inline(always)]
fn dots<const R: usize>(rows: [&[f64]; R], b: &[f64]) -> [f64; R] {
    let mut acc = [[0.0; TILE]; R];
    let full = b.len() / TILE * TILE;
    for c in (0..full).step_by(TILE) {
        let bc = &b[c..c + TILE];
        for (acc_r, row) in acc.iter_mut().zip(&rows) {
            for ((v, &x), &y) in acc_r.iter_mut().zip(&row[c..c + TILE]).zip(bc) {
                *v = mul_add(x, y, *v);
            }
        }
    }
    for (acc_r, row) in acc.iter_mut().zip(&rows) {
        for ((v, &x), &y) in acc_r.iter_mut().zip(&row[full..b.len()]).zip(&b[full..]) {
            *v = mul_add(x, y, *v);
        }
    }
    acc.map(|a| ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])))
}

/// Solves L L^T x = b in place (`b` becomes x) with the factor from [`cholesky_in_place`].
pub fn cholesky_solve(l: &[f64], n: usize, lda: usize, b: &mut [f64]) {
    cholesky_solve_with(Exec::sequential(), l, n, lda, b)
}

/// [`cholesky_solve`] with the instruction set of `exec` (one thread): the same bits on any.
// Only x86-64 has more than one set to choose from.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
pub fn cholesky_solve_with(exec: Exec, l: &[f64], n: usize, lda: usize, b: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    match exec.isa {
        // SAFETY: an Exec's set is one this CPU runs.
        VectorIsa::Avx512 => return unsafe { solve_avx512(l, n, lda, b) },
        // SAFETY: as above.
        VectorIsa::Avx2 => return unsafe { solve_avx2(l, n, lda, b) },
        VectorIsa::Baseline | VectorIsa::Neon => {}
    }
    solve_lanes(l, n, lda, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,fma")]
unsafe fn solve_avx512(l: &[f64], n: usize, lda: usize, b: &mut [f64]) {
    solve_lanes(l, n, lda, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn solve_avx2(l: &[f64], n: usize, lda: usize, b: &mut [f64]) {
    solve_lanes(l, n, lda, b)
}

#[inline(always)]
fn solve_lanes(l: &[f64], n: usize, lda: usize, b: &mut [f64]) {
    // L y = b, row by row.
    for i in 0..n {
        let row = &l[i * lda..i * lda + i + 1];
        b[i] = (b[i] - dot(&row[..i], &b[..i])) / row[i];
    }
    // L^T x = y, by columns of L^T (rows of L): x_i = y_i / L_ii, then y[..i] -= x_i L[i][..i].
    for i in (0..n).rev() {
        let row = &l[i * lda..i * lda + i + 1];
        let xi = b[i] / row[i];
        b[i] = xi;
        for (bk, &lik) in b[..i].iter_mut().zip(&row[..i]) {
            *bk = mul_add(-xi, lik, *bk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// A symmetric positive definite test matrix with a known inverse relation: A = B^T B + I.
    fn spd(n: usize) -> Vec<f64> {
        let b: Vec<f64> = (0..n * n).map(|k| ((k * 7919 % 1000) as f64 / 1000.0) - 0.5).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| b[k * n + i] * b[k * n + j]).sum::<f64>();
            }
            a[i * n + i] += 1.0;
        }
        a
    }

    #[test]
    fn gram_matches_the_naive_sum() {
        let (n_rows, cols, ld) = (300, 21, 23);
        let x: Vec<f64> = (0..n_rows * ld).map(|k| ((k * 31 % 97) as f64) / 97.0 - 0.3).collect();
        let rows: Vec<usize> = (0..n_rows).filter(|r| r % 3 != 1).collect();
        let scale: Vec<f64> = (0..n_rows).map(|r| 0.5 + (r % 5) as f64 * 0.1).collect();
        let mut c = vec![0.0; cols * cols];
        add_gram_lower(&x, ld, cols, &rows, &scale, &mut c, cols, &mut Vec::new());
        for i in 0..cols {
            for j in 0..=i {
                let naive: f64 =
                    rows.iter().map(|&r| scale[r] * scale[r] * x[r * ld + i] * x[r * ld + j]).sum();
                assert!((c[i * cols + j] - naive).abs() < 1e-12 * naive.abs().max(1.0), "{i} {j}");
            }
            for j in i + 1..cols {
                assert_eq!(c[i * cols + j], 0.0);
            }
        }
    }

    #[test]
    fn cholesky_solves_spd_systems() {
        for n in [1, 7, 129, 300] {
            let a = spd(n);
            let x_true: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let mut b: Vec<f64> = (0..n).map(|i| (0..n).map(|j| a[i * n + j] * x_true[j]).sum()).collect();
            let mut l = a.clone();
            cholesky_in_place(&mut l, n, n, &mut Vec::new()).unwrap();
            cholesky_solve(&l, n, n, &mut b);
            let worst = b.iter().zip(&x_true).map(|(x, t)| (x - t).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-9, "n = {n}: {worst:e}");
        }
    }

    /// Every instruction set this CPU has and 1, 2 and 3 threads give the same bits, for the
    /// Gram matrix (edge tiles, several row chunks and L2 blocks) and the Cholesky factor
    /// (several blocks), and they match the naive sums.
    #[test]
    fn every_isa_and_thread_count_gives_the_same_bits() {
        let (n_rows, cols, ld) = (700, 203, 205);
        let x: Vec<f64> = (0..n_rows * ld).map(|k| ((k * 7919 % 1013) as f64) / 1013.0 - 0.4).collect();
        let rows: Vec<usize> = (0..n_rows).filter(|r| r % 7 != 3).collect();
        let scale: Vec<f64> = (0..n_rows).map(|r| 0.5 + (r % 5) as f64 * 0.1).collect();
        let mut reference: Option<(Vec<f64>, Vec<f64>)> = None;
        for isa in VectorIsa::available() {
            for threads in [1, 2, 3] {
                let exec = Exec::with_isa(isa, threads).unwrap();
                let mut c = vec![0.25; cols * cols];
                add_gram_lower_with(exec, &x, ld, cols, &rows, &scale, &mut c, cols, &mut Vec::new());
                let mut l = c.clone();
                for i in 0..cols {
                    l[i * cols + i] += 1.0;
                }
                cholesky_in_place_with(exec, &mut l, cols, cols, &mut Vec::new()).unwrap();
                match &reference {
                    None => {
                        for i in 0..cols {
                            for j in 0..=i {
                                let naive: f64 = 0.25
                                    + rows
                                        .iter()
                                        .map(|&r| scale[r] * scale[r] * x[r * ld + i] * x[r * ld + j])
                                        .sum::<f64>();
                                let got = c[i * cols + j];
                                assert!((got - naive).abs() < 1e-11 * naive.abs().max(1.0), "{i} {j}");
                            }
                        }
                        // L L^T reproduces the matrix.
                        for i in (0..cols).step_by(7) {
                            for j in (0..=i).step_by(3) {
                                let product: f64 = (0..=j).map(|k| l[i * cols + k] * l[j * cols + k]).sum();
                                let want = c[i * cols + j] + if i == j { 1.0 } else { 0.0 };
                                assert!((product - want).abs() < 1e-10 * want.abs().max(1.0), "{i} {j}");
                            }
                        }
                        reference = Some((c, l));
                    }
                    Some((c0, l0)) => {
                        let same =
                            |u: &[f64], v: &[f64]| u.iter().zip(v).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same(&c, c0), "Gram: {} on {threads} threads", isa.name());
                        assert!(same(&l, l0), "Cholesky: {} on {threads} threads", isa.name());
                    }
                }
            }
        }
    }

    /// The factor is the same, bit for bit, as the unthreaded blocked algorithm written out
    /// plainly (what this module computed before its AVX2 tiles, bands and row groups): per
    /// block, each row's columns by [`dot`] in order, then the trailing update with every
    /// element's sum accumulated by fused multiply-adds and subtracted by one more.
    #[test]
    fn the_factor_is_the_plain_blocked_algorithm_bit_for_bit() {
        fn plain(a: &mut [f64], n: usize) {
            for kb in (0..n).step_by(CHOLESKY_BLOCK) {
                let nb = CHOLESKY_BLOCK.min(n - kb);
                for i in kb..n {
                    for j in kb..(kb + nb).min(i) {
                        let s = a[i * n + j] - dot(&a[i * n + kb..i * n + j], &a[j * n + kb..j * n + j]);
                        a[i * n + j] = s / a[j * n + j];
                    }
                    if i < kb + nb {
                        let pivot = a[i * n + i] - dot(&a[i * n + kb..i * n + i], &a[i * n + kb..i * n + i]);
                        a[i * n + i] = sqrt(pivot);
                    }
                }
                for i in kb + nb..n {
                    for j in kb + nb..=i {
                        let mut acc = 0.0;
                        for k in kb..kb + nb {
                            acc = mul_add(a[i * n + k], a[j * n + k], acc);
                        }
                        a[i * n + j] = mul_add(-1.0, acc, a[i * n + j]);
                    }
                }
            }
        }
        let n = 301;
        let mut want = spd(n);
        plain(&mut want, n);
        for isa in VectorIsa::available() {
            for threads in [1, 2] {
                let mut l = spd(n);
                cholesky_in_place_with(Exec::with_isa(isa, threads).unwrap(), &mut l, n, n, &mut Vec::new())
                    .unwrap();
                for i in 0..n {
                    for j in 0..=i {
                        assert_eq!(
                            l[i * n + j].to_bits(),
                            want[i * n + j].to_bits(),
                            "{} {threads}: {i} {j}",
                            isa.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bands_cover_the_rows() {
        for (m, pieces) in [(1, 4), (23, 8), (24, 8), (500, 8), (1329, 16)] {
            let b = band_bounds(m, pieces);
            assert_eq!((b[0], b[b.len() - 1]), (0, m));
            assert!(b.windows(2).all(|w| w[0] < w[1] && w[0].is_multiple_of(BAND_ALIGN)), "{m}: {b:?}");
        }
    }

    #[test]
    fn indefinite_matrices_are_refused() {
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert!(cholesky_in_place(&mut a, 2, 2, &mut Vec::new()).is_err());
    }
}
