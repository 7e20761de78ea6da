//! The universal Klein-Nishina loss function R(u) of a greybody photon field.
//!
//! An ultra-relativistic electron of Lorentz factor gamma in an isotropic photon field with a
//! Planck spectrum of temperature T, scaled to energy density U (a greybody), loses energy at
//! the rate
//!
//! ```text
//! b = (4/3) sigma_T c gamma^2 U R(u),    u = 4 gamma k_B T / (m_e c^2),
//! R(u) = (15/pi^4) integral_0^inf x^3/(e^x - 1) f_KN(u x) dx,
//! f_KN(b) = (9/b^3) [(b/2 + 6 + 6/b) ln(1+b) - (11 b^3/12 + 6 b^2 + 9 b + 4)/(1+b)^2
//!                    - 2 + 2 Li2(-b)],
//! ```
//!
//! f_KN being the Blumenthal & Gould (1970, Rev. Mod. Phys. 42, 237) eq. 2.48 kernel integrated
//! over the scattered photon energy, normalised to f_KN(0) = 1 (PHYSICS.md, "Facts about the
//! Klein-Nishina loss rate"). R falls from R(0) = 1 (Thomson) as
//! 1 - (63/40) [`PLANCK_MEAN_ENERGY_RATIO`] u and, for u -> inf, as
//! 45/(4 pi^2 u^2) (ln u - 1.98051...).
//!
//! This is the ultra-relativistic rate. Jones' (1965) finite-gamma formula, which GALPROP and
//! DRAGON2 use, differs from it by -1/gamma^2 (2.6e-7 at 1 GeV).
//!
//! The tables come from `tests/reference/kn_reference.py` (mpmath, about 37 correct digits),
//! which writes `kn_loss_factor_coefficients.rs` and the reference values that
//! `tests/kn_loss_factor.rs` checks.

#[path = "kn_loss_factor_coefficients.rs"]
mod coefficients;

use crate::math::ln;
use coefficients::{
    FIT_COEFFICIENTS, FIT_INTERVAL_WIDTH, FIT_INTERVALS, FIT_T_START, LARGE_U_CORRECTION, LARGE_U_LIMIT,
    LARGE_U_OFFSET, LARGE_U_SLOPE, SMALL_U_LIMIT, SMALL_U_SERIES,
};

/// 4 zeta(5)/zeta(4) = 3.83222949612893965...: the ratio `<eps^2>/<eps>` of the number-weighted
/// photon energy moments of a Planck spectrum, in units of k_B T (dimensionless). It sets the
/// first Klein-Nishina correction, R(u) = 1 - (63/40) PLANCK_MEAN_ENERGY_RATIO u + O(u^2)
/// (Blumenthal & Gould 1970 eq. 2.50). Correctly rounded.
pub const PLANCK_MEAN_ENERGY_RATIO: f64 = 3.832_229_496_128_939_6;

/// R(u): the Klein-Nishina suppression of the inverse-Compton loss rate on a greybody,
/// b = (4/3) sigma_T c gamma^2 U R(u), for u = 4 gamma k_B T / (m_e c^2) >= 0
/// (dimensionless, as is R). See the module documentation for the integral that defines it.
///
/// R(0) = 1 and R decreases monotonically to 0; R(inf) = 0. A negative or NaN `u` gives NaN.
/// This is the ultra-relativistic rate (gamma >> 1): Jones' finite-gamma formula differs from
/// it by -1/gamma^2.
///
/// Method: below u = e^-7 the small-u series sum_(n <= 8) c_n u^n (asymptotic; first omitted
/// term < 3e-19); from u = e^-7 to e^28 = 1.4e12, one polynomial of degree 11 in t = ln u
/// per interval of width 1/2 in t, interpolating R at the Chebyshev-Lobatto points (so the
/// pieces meet continuously); above, the two-term large-u expansion
/// A (ln u - C)/u^2 + (q_0 + q_1 ln u + q_2 ln^2 u + q_3 ln^3 u)/u^3, whose omitted terms are
/// O(ln^2 u/u^4) (< 1e-22 relative there). One `ln` and one polynomial per call, no `exp`:
/// about 11 ns per call in a loop, 35 ns from argument to result.
///
/// Accuracy, against 385 mpmath values from u = 1e-6 to 1e16 (`tests/kn_loss_factor.rs`,
/// which asserts 2e-14): largest relative error 3.6e-15, at u = 8e7. The polynomials
/// themselves are good to 5e-16; the rest is the rounding of ln u, which R amplifies by
/// |d ln R/d ln u| <= 2, so about 2e-16 |ln u| (4e-15 at most, near u = 1e12).
pub fn loss_factor(u: f64) -> f64 {
    if u.is_nan() || u < 0.0 {
        return f64::NAN;
    }
    if u < SMALL_U_LIMIT {
        return polynomial(&SMALL_U_SERIES, u);
    }
    if u >= LARGE_U_LIMIT {
        return large_u_expansion(u);
    }
    let t = ln(u);
    let position = (t - FIT_T_START) * (1.0 / FIT_INTERVAL_WIDTH);
    // `as` saturates: a t that rounding put just below FIT_T_START lands in the first interval.
    let index = (position as usize).min(FIT_INTERVALS - 1);
    // Exact: the centres are dyadic, and t lies within half a width of its centre.
    let centre = FIT_T_START + (index as f64 + 0.5) * FIT_INTERVAL_WIDTH;
    let s = (t - centre) * (2.0 / FIT_INTERVAL_WIDTH);
    polynomial(&FIT_COEFFICIENTS[index], s)
}

/// R(u) for u >= LARGE_U_LIMIT from the first two terms of its large-u expansion.
fn large_u_expansion(u: f64) -> f64 {
    if u == f64::INFINITY {
        return 0.0;
    }
    let t = ln(u);
    let inverse_u = 1.0 / u;
    let leading = LARGE_U_SLOPE * (t - LARGE_U_OFFSET);
    (leading + polynomial(&LARGE_U_CORRECTION, t) * inverse_u) * inverse_u * inverse_u
}

/// sum_k coefficients[k] x^k, as even(x^2) + x odd(x^2) with each part by Horner's rule: two
/// independent chains of half the length, for latency (the generator emulates this order).
#[inline(always)]
fn polynomial<const N: usize>(coefficients: &[f64; N], x: f64) -> f64 {
    let x2 = x * x;
    let mut even = 0.0;
    let mut odd = 0.0;
    for (power, &coefficient) in coefficients.iter().enumerate().rev() {
        let part = if power % 2 == 0 { &mut even } else { &mut odd };
        // The two highest coefficients start their chains (no multiplication of a zero).
        *part = if power + 2 >= N { coefficient } else { *part * x2 + coefficient };
    }
    even + x * odd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relative_difference(a: f64, b: f64) -> f64 {
        (a / b - 1.0).abs()
    }

    #[test]
    fn thomson_limit_and_domain() {
        assert_eq!(loss_factor(0.0), 1.0);
        assert_eq!(loss_factor(f64::INFINITY), 0.0);
        assert!(loss_factor(-1e-300).is_nan());
        assert!(loss_factor(f64::NAN).is_nan());
    }

    #[test]
    fn first_series_coefficient_is_the_planck_moment_ratio() {
        let expected = -63.0 / 40.0 * PLANCK_MEAN_ENERGY_RATIO;
        assert!(relative_difference(SMALL_U_SERIES[1], expected) < 2e-16);
    }

    #[test]
    fn table_layout_matches_the_limits() {
        let fit_end = FIT_T_START + FIT_INTERVALS as f64 * FIT_INTERVAL_WIDTH;
        assert!(relative_difference(ln(SMALL_U_LIMIT), FIT_T_START) < 1e-15);
        assert!(relative_difference(ln(LARGE_U_LIMIT), fit_end) < 1e-15);
    }

    /// The pieces agree where they meet: series and first polynomial, neighbouring
    /// polynomials (s = +1 against s = -1), last polynomial and the large-u expansion.
    #[test]
    fn pieces_meet_continuously() {
        let mut worst = relative_difference(
            polynomial(&SMALL_U_SERIES, SMALL_U_LIMIT),
            polynomial(&FIT_COEFFICIENTS[0], -1.0),
        );
        for pair in FIT_COEFFICIENTS.windows(2) {
            worst = worst.max(relative_difference(polynomial(&pair[0], 1.0), polynomial(&pair[1], -1.0)));
        }
        worst = worst.max(relative_difference(
            polynomial(&FIT_COEFFICIENTS[FIT_INTERVALS - 1], 1.0),
            large_u_expansion(LARGE_U_LIMIT),
        ));
        assert!(worst < 1e-15, "largest jump {worst:e}");
    }
}
