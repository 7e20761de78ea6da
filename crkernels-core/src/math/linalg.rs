//! Dense symmetric linear algebra for least squares: Gram matrices X^T W X, the blocked Cholesky
//! factorisation A = L L^T and its solves. Exact (direct) methods in f64, no iterations.
//!
//! Matrices are row-major with a leading dimension (`ld`, the distance between rows); a
//! symmetric matrix is held in its lower triangle (j <= i), the upper one is ignored.
//!
//! The work is in one kernel, the lower-triangular rank-k update C += s P^T P of a packed block
//! P (k rows x m columns, in panels of [`TILE`] columns): an 8 x 8 register tile accumulated
//! with fused multiply-adds, compiled for AVX-512, AVX2 and the baseline and chosen at run time
//! (math/simd.rs; bit-identical results on every path). The Gram matrix is a sum of such
//! updates over blocks of rows; the right-looking blocked Cholesky (Golub & Van Loan, Matrix
//! Computations 4th ed., algorithm 4.2.4) spends almost all its time in them too.

use alloc::vec::Vec;

use super::simd::VectorIsa;
use super::{mul_add, sqrt};
use crate::error::{Result, out_of_domain};

/// Columns per register tile (and per packed panel).
pub const TILE: usize = 8;
/// Rows of data packed per rank-k update of the Gram matrix.
const GRAM_ROWS: usize = 256;
/// Block size of the Cholesky factorisation.
const CHOLESKY_BLOCK: usize = 128;

/// Adds the Gram matrix of selected rows to `c`: c[i][j] += sum_r (s_r X[r][i]) (s_r X[r][j])
/// for j <= i < `cols`, r over `rows`, s_r = `row_scale[r]` (the square root of a weight).
///
/// `x` is row-major with leading dimension `ldx` (only its first `cols` columns are read); `c`
/// has leading dimension `ldc`. `workspace` is resized as needed and may be reused.
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
    let panels = cols.div_ceil(TILE);
    workspace.clear();
    workspace.resize(panels * GRAM_ROWS * TILE, 0.0);
    for chunk in rows.chunks(GRAM_ROWS) {
        let kc = chunk.len();
        for p in 0..panels {
            let first = p * TILE;
            let width = TILE.min(cols - first);
            let panel = &mut workspace[p * kc * TILE..(p + 1) * kc * TILE];
            for (k, &r) in chunk.iter().enumerate() {
                let scale = row_scale[r];
                let source = &x[r * ldx + first..r * ldx + first + width];
                let target = &mut panel[k * TILE..(k + 1) * TILE];
                for (t, s) in target.iter_mut().zip(source) {
                    *t = scale * s;
                }
                target[width..].fill(0.0);
            }
        }
        rank_update_lower(&workspace[..panels * kc * TILE], kc, cols, c, ldc, false);
    }
}

/// c[i][j] += (or -= when `subtract`) sum_k P[k][i] P[k][j] for j <= i < m, with P packed as
/// panels: P[k][p * TILE + t] = packed[(p * kc + k) * TILE + t].
fn rank_update_lower(packed: &[f64], kc: usize, m: usize, c: &mut [f64], ldc: usize, subtract: bool) {
    #[cfg(target_arch = "x86_64")]
    match VectorIsa::detect() {
        // SAFETY: VectorIsa::detect found the instruction set on this CPU.
        VectorIsa::Avx512 => return unsafe { rank_update_avx512(packed, kc, m, c, ldc, subtract) },
        // SAFETY: as above.
        VectorIsa::Avx2 => return unsafe { rank_update_avx2(packed, kc, m, c, ldc, subtract) },
        VectorIsa::Baseline | VectorIsa::Neon => {}
    }
    rank_update_lanes(packed, kc, m, c, ldc, subtract)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,fma")]
unsafe fn rank_update_avx512(packed: &[f64], kc: usize, m: usize, c: &mut [f64], ldc: usize, subtract: bool) {
    rank_update_lanes(packed, kc, m, c, ldc, subtract)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rank_update_avx2(packed: &[f64], kc: usize, m: usize, c: &mut [f64], ldc: usize, subtract: bool) {
    rank_update_lanes(packed, kc, m, c, ldc, subtract)
}

#[inline(always)]
fn rank_update_lanes(packed: &[f64], kc: usize, m: usize, c: &mut [f64], ldc: usize, subtract: bool) {
    let panels = m.div_ceil(TILE);
    let sign = if subtract { -1.0 } else { 1.0 };
    for pi in 0..panels {
        let a = &packed[pi * kc * TILE..(pi + 1) * kc * TILE];
        let rows = TILE.min(m - pi * TILE);
        for pj in 0..=pi {
            let b = &packed[pj * kc * TILE..(pj + 1) * kc * TILE];
            let tile = tile_product(a, b);
            let cols = TILE.min(m - pj * TILE);
            for (i, tile_row) in tile.iter().enumerate().take(rows) {
                let row = pi * TILE + i;
                // Only the lower triangle: in a diagonal tile, columns up to the row.
                let limit = if pi == pj { i + 1 } else { cols };
                let target = &mut c[row * ldc + pj * TILE..row * ldc + pj * TILE + limit];
                for (t, &v) in target.iter_mut().zip(tile_row) {
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
/// to working precision). `workspace` is resized as needed and may be reused.
pub fn cholesky_in_place(a: &mut [f64], n: usize, lda: usize, workspace: &mut Vec<f64>) -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    match VectorIsa::detect() {
        // SAFETY: VectorIsa::detect found the instruction set on this CPU.
        VectorIsa::Avx512 => return unsafe { cholesky_avx512(a, n, lda, workspace) },
        // SAFETY: as above.
        VectorIsa::Avx2 => return unsafe { cholesky_avx2(a, n, lda, workspace) },
        VectorIsa::Baseline | VectorIsa::Neon => {}
    }
    cholesky_lanes(a, n, lda, workspace)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,fma")]
unsafe fn cholesky_avx512(a: &mut [f64], n: usize, lda: usize, workspace: &mut Vec<f64>) -> Result<()> {
    cholesky_lanes(a, n, lda, workspace)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn cholesky_avx2(a: &mut [f64], n: usize, lda: usize, workspace: &mut Vec<f64>) -> Result<()> {
    cholesky_lanes(a, n, lda, workspace)
}

#[inline(always)]
fn cholesky_lanes(a: &mut [f64], n: usize, lda: usize, workspace: &mut Vec<f64>) -> Result<()> {
    for kb in (0..n).step_by(CHOLESKY_BLOCK) {
        let nb = CHOLESKY_BLOCK.min(n - kb);
        // Block column kb..kb + nb, row by row (its columns before kb were subtracted already):
        // L[i][j] = (A[i][j] - L[i][kb..j] . L[j][kb..j]) / L[j][j], and on the diagonal block
        // L[i][i] = sqrt(A[i][i] - |L[i][kb..i]|^2).
        for i in kb..n {
            let (upper, row_i) = a.split_at_mut(i * lda);
            for j in kb..(kb + nb).min(i) {
                let lj = &upper[j * lda..j * lda + j + 1];
                let s = row_i[j] - dot(&row_i[kb..j], &lj[kb..j]);
                row_i[j] = s / lj[j];
            }
            if i < kb + nb {
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
        }
        let m = n - kb - nb;
        if m == 0 {
            break;
        }
        // Trailing update A22 -= L21 L21^T, L21 packed with its rows as the columns of P.
        let panels = m.div_ceil(TILE);
        workspace.clear();
        workspace.resize(panels * nb * TILE, 0.0);
        for p in 0..panels {
            for t in 0..TILE.min(m - p * TILE) {
                let row = (kb + nb + p * TILE + t) * lda + kb;
                for k in 0..nb {
                    workspace[(p * nb + k) * TILE + t] = a[row + k];
                }
            }
        }
        let start = (kb + nb) * lda + kb + nb;
        rank_update_lower(workspace, nb, m, &mut a[start..], lda, true);
    }
    Ok(())
}

/// Solves L L^T x = b in place (`b` becomes x) with the factor from [`cholesky_in_place`].
pub fn cholesky_solve(l: &[f64], n: usize, lda: usize, b: &mut [f64]) {
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

    #[test]
    fn indefinite_matrices_are_refused() {
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert!(cholesky_in_place(&mut a, 2, 2, &mut Vec::new()).is_err());
    }
}
