//! Numerical building blocks: the math-function facade, Chebyshev fits, piecewise polynomial
//! tables and quadrature.
//!
//! The facade picks std's `f64` functions where `std` is on (about 4.8 ns for `exp` against
//! libm's 7.9 ns on our machines, DESIGN.md) and `libm` in `no_std` builds.

/// e^x.
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    #[cfg(feature = "std")]
    {
        x.exp()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::exp(x)
    }
}

/// Natural logarithm.
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    #[cfg(feature = "std")]
    {
        x.ln()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::log(x)
    }
}

/// ln(1 + x), accurate for small x.
#[inline(always)]
pub fn ln_1p(x: f64) -> f64 {
    #[cfg(feature = "std")]
    {
        x.ln_1p()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::log1p(x)
    }
}

/// x^y.
#[inline(always)]
pub fn powf(x: f64, y: f64) -> f64 {
    #[cfg(feature = "std")]
    {
        x.powf(y)
    }
    #[cfg(not(feature = "std"))]
    {
        libm::pow(x, y)
    }
}

/// Square root.
#[inline(always)]
pub fn sqrt(x: f64) -> f64 {
    #[cfg(feature = "std")]
    {
        x.sqrt()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::sqrt(x)
    }
}

/// cos(x).
#[inline(always)]
pub fn cos(x: f64) -> f64 {
    #[cfg(feature = "std")]
    {
        x.cos()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::cos(x)
    }
}

pub mod chebyshev;
pub mod piecewise;
