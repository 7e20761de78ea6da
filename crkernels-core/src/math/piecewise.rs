//! Piecewise polynomial tables over a positive range, indexed by the bits of the argument.
//!
//! The pieces split every octave [2^e, 2^(e+1)) into 2^[`PIECES_PER_OCTAVE_LOG2`] equal parts,
//! so the piece holding x > 0 is found from the top bits of its IEEE-754 representation
//! (exponent and leading mantissa bits) with one shift: no logarithm, no search. Each piece
//! holds a polynomial in the local coordinate t in [-1, 1] (linear in x), in monomial form for
//! a short Horner evaluation, converted from its Chebyshev interpolant.
//!
//! A piece spans a relative width of at most 1/8 in x; a function analytic in the right
//! half-plane (all the library's loss and transport integrands) then converges like 17^-n in
//! the degree n, so degree 9 to 11 reaches double precision.

use alloc::vec::Vec;

use super::chebyshev;

/// log2 of the number of pieces per octave.
pub const PIECES_PER_OCTAVE_LOG2: u32 = 3;
/// Shift that maps the bits of a positive f64 to its piece key.
const KEY_SHIFT: u32 = 52 - PIECES_PER_OCTAVE_LOG2;

/// The key of the binary piece holding x (x finite and > 0): monotone in x.
#[inline(always)]
fn key(x: f64) -> u64 {
    x.to_bits() >> KEY_SHIFT
}

/// The left edge of the binary piece with key `k`.
#[inline]
fn key_start(k: u64) -> f64 {
    f64::from_bits(k << KEY_SHIFT)
}

/// One piece: [left, right] and the monomial coefficients of p(t), t = (x - center) / half_width.
#[derive(Clone, Copy, Debug)]
pub struct Piece<const N: usize> {
    /// Left edge of the piece (inclusive).
    pub left: f64,
    /// Right edge of the piece.
    pub right: f64,
    center: f64,
    inv_half_width: f64,
    /// Coefficients a_j of p(t) = sum_j a_j t^j.
    pub coefficients: [f64; N],
}

impl<const N: usize> Piece<N> {
    /// The local coordinate t in [-1, 1] of x.
    #[inline(always)]
    pub fn local(&self, x: f64) -> f64 {
        (x - self.center) * self.inv_half_width
    }

    /// Half the width of the piece, dx/dt.
    #[inline]
    pub fn half_width(&self) -> f64 {
        1.0 / self.inv_half_width
    }

    /// The point x at local coordinate t.
    #[inline]
    pub fn at_local(&self, t: f64) -> f64 {
        self.center + t / self.inv_half_width
    }

    /// p(t) by Horner's rule.
    #[inline(always)]
    pub fn poly(&self, t: f64) -> f64 {
        let mut acc = self.coefficients[N - 1];
        for &c in self.coefficients[..N - 1].iter().rev() {
            acc = acc * t + c;
        }
        acc
    }

    /// dp/dt.
    pub fn poly_derivative(&self, t: f64) -> f64 {
        let mut acc = 0.0;
        for (j, &c) in self.coefficients.iter().enumerate().skip(1).rev() {
            acc = acc * t + j as f64 * c;
        }
        acc
    }

    /// t(x) - t(y), exact up to one rounding when x and y are close (x - y is then exact).
    #[inline(always)]
    pub fn local_difference(&self, x: f64, y: f64) -> f64 {
        (x - y) * self.inv_half_width
    }

    /// p(a) - p(b) without cancellation when a and b are close, given a - b computed
    /// accurately (see [`Piece::local_difference`]): with the Horner intermediates h_j of p at
    /// a (h_{N-1} = a_{N-1}, h_j = a_j + a h_{j+1}), p(a) - p(b) = (a - b) sum_{j>=1} h_j b^(j-1).
    pub fn poly_difference(&self, a: f64, b: f64, a_minus_b: f64) -> f64 {
        let mut horner = [0.0; N];
        let mut acc = 0.0;
        for j in (0..N).rev() {
            acc = acc * a + self.coefficients[j];
            horner[j] = acc;
        }
        let mut quotient = 0.0;
        for &h in horner[1..].iter().rev() {
            quotient = quotient * b + h;
        }
        a_minus_b * quotient
    }
}

/// A piecewise polynomial over [lo, hi], 0 < lo < hi, with N coefficients a piece.
#[derive(Clone, Debug)]
pub struct PiecewisePoly<const N: usize> {
    lo: f64,
    hi: f64,
    first_key: u64,
    pieces: Vec<Piece<N>>,
}

impl<const N: usize> PiecewisePoly<N> {
    /// Builds the table piece by piece: `chebyshev_for(left, right)` returns the N Chebyshev
    /// coefficients of the function on [left, right] in the local coordinate.
    ///
    /// The binary pieces that meet [lo, hi] are clipped to it. Requires 0 < lo < hi < inf.
    pub fn from_chebyshev(lo: f64, hi: f64, mut chebyshev_for: impl FnMut(f64, f64) -> [f64; N]) -> Self {
        debug_assert!(lo > 0.0 && lo < hi && hi.is_finite());
        let first_key = key(lo);
        let mut last_key = key(hi);
        if key_start(last_key) == hi && last_key > first_key {
            last_key -= 1; // hi is a piece boundary: it belongs to the piece below.
        }
        let pieces = (first_key..=last_key)
            .map(|k| {
                let left = key_start(k).max(lo);
                let right = key_start(k + 1).min(hi);
                let half_width = 0.5 * (right - left);
                let chebyshev = chebyshev_for(left, right);
                let monomial = chebyshev::to_monomial(&chebyshev);
                let mut coefficients = [0.0; N];
                coefficients.copy_from_slice(&monomial);
                Piece {
                    left,
                    right,
                    center: left + half_width,
                    inv_half_width: 1.0 / half_width,
                    coefficients,
                }
            })
            .collect();
        PiecewisePoly { lo, hi, first_key, pieces }
    }

    /// Interpolates `f` on every piece at N Chebyshev points (degree N - 1).
    pub fn interpolate(lo: f64, hi: f64, mut f: impl FnMut(f64) -> f64) -> Self {
        let nodes = chebyshev::nodes(N);
        Self::from_chebyshev(lo, hi, |left, right| {
            let half_width = 0.5 * (right - left);
            let samples: Vec<f64> = nodes.iter().map(|&t| f(left + half_width * (1.0 + t))).collect();
            let mut c = [0.0; N];
            c.copy_from_slice(&chebyshev::coefficients(&samples));
            c
        })
    }

    /// The lower end of the range.
    pub fn lo(&self) -> f64 {
        self.lo
    }

    /// The upper end of the range.
    pub fn hi(&self) -> f64 {
        self.hi
    }

    /// The pieces, from low x to high x.
    pub fn pieces(&self) -> &[Piece<N>] {
        &self.pieces
    }

    /// The index of the piece holding x, for x in [lo, hi] (clamped at the ends).
    #[inline(always)]
    pub fn index(&self, x: f64) -> usize {
        let offset = key(x).wrapping_sub(self.first_key) as usize;
        offset.min(self.pieces.len() - 1)
    }

    /// The piece holding x, for x in [lo, hi].
    #[inline(always)]
    pub fn piece(&self, x: f64) -> &Piece<N> {
        &self.pieces[self.index(x)]
    }

    /// The value at x, for x in [lo, hi] (x outside is extrapolated from the end pieces).
    #[inline(always)]
    pub fn eval(&self, x: f64) -> f64 {
        let piece = self.piece(x);
        piece.poly(piece.local(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_range_without_gaps() {
        let table = PiecewisePoly::<4>::interpolate(0.3, 1000.0, |x| x);
        let pieces = table.pieces();
        assert_eq!(pieces[0].left, 0.3);
        assert_eq!(pieces.last().unwrap().right, 1000.0);
        for w in pieces.windows(2) {
            assert_eq!(w[0].right, w[1].left);
            // Relative width at most 1/8.
            assert!(w[1].right / w[1].left <= 1.125 + 1e-15);
        }
        // Every x finds the piece that holds it.
        for i in 0..1000 {
            let x = 0.3 * (1000.0f64 / 0.3).powf(i as f64 / 999.0);
            let p = table.piece(x);
            assert!(p.left <= x && x <= p.right, "{x} in [{}, {}]", p.left, p.right);
        }
    }

    #[test]
    fn reproduces_a_smooth_function_to_rounding() {
        // 1/x^2 on 1..1e7 at degree 11: the worst piece converges like 17^-12.
        let table = PiecewisePoly::<12>::interpolate(1.0, 1e7, |x| 1.0 / (x * x));
        let mut worst: f64 = 0.0;
        for i in 0..10_000 {
            let x = 1e7f64.powf(i as f64 / 9999.0);
            worst = worst.max((table.eval(x) * x * x - 1.0).abs());
        }
        assert!(worst < 1e-14, "{worst}");
    }

    #[test]
    fn difference_is_accurate_for_close_arguments() {
        let table = PiecewisePoly::<12>::interpolate(1.0, 2.0, |x| x.exp());
        let piece = table.piece(1.5);
        let (xa, xb): (f64, f64) = (1.5, 1.5 + 1e-9);
        let exact = -xa.exp() * (xb - xa).exp_m1();
        let got = piece.poly_difference(piece.local(xa), piece.local(xb), piece.local_difference(xa, xb));
        // For close arguments the divided difference is the interpolant's derivative, which is
        // accurate to about N^2 eps (Markov's inequality): 12^2 * 2.2e-16 = 3e-14 here.
        assert!((got / exact - 1.0).abs() < 1e-12, "{got} vs {exact}");
    }
}
