//! Numerical building blocks: the math-function facade, Chebyshev fits, piecewise polynomial
//! tables and quadrature.
//!
//! The facade's transcendental functions (exp, ln, powf, ln_1p, exp_m1, log10, cos, hypot,
//! tanh_f32, erfc) are the `libm` crate's in every build, never the platform's C library:
//! glibc's differ between x86-64 and aarch64 (aarch64's is built with fused multiply-adds, and
//! x86-64's picks FMA or non-FMA variants at load time by CPU), so that with std's `f64`
//! methods a data set made on an ARM node differed from one made on an x86 node in the last
//! bits. libm is plain Rust without FMA contraction: the same bits on every platform and CPU
//! (examples/bit_identity.rs, scripts/test-aarch64.sh). It costs ~3 ns per call against glibc's
//! FMA variants (`exp` ~7.9 against ~4.8 ns, DESIGN.md); the hot loops use the branch-free
//! kernels below, which are portable already. Correctly rounded IEEE operations (sqrt, floor,
//! mul_add) keep std's where `std` is on: one instruction, the same bits everywhere.

/// e^x (libm, bit-identical on every platform).
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    libm::exp(x)
}

/// The largest integer not above x (exact; one vector instruction in loops with std).
#[inline(always)]
pub fn floor(x: f64) -> f64 {
    #[cfg(feature = "std")]
    {
        x.floor()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::floor(x)
    }
}

/// Natural logarithm (libm, bit-identical on every platform).
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    libm::log(x)
}

/// Base-10 logarithm (libm, bit-identical on every platform).
#[inline(always)]
pub fn log10(x: f64) -> f64 {
    libm::log10(x)
}

/// ln(1 + x), accurate for small x (libm, bit-identical on every platform).
#[inline(always)]
pub fn ln_1p(x: f64) -> f64 {
    libm::log1p(x)
}

/// e^x - 1, accurate for small x (libm, bit-identical on every platform).
#[inline(always)]
pub fn exp_m1(x: f64) -> f64 {
    libm::expm1(x)
}

/// x^y (libm, bit-identical on every platform).
#[inline(always)]
pub fn powf(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// Square root (correctly rounded: the same bits everywhere).
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

/// sqrt(x^2 + y^2) without undue overflow or underflow (libm, bit-identical on every
/// platform).
#[inline(always)]
pub fn hypot(x: f64, y: f64) -> f64 {
    libm::hypot(x, y)
}

/// a b + c with one rounding (fused multiply-add): the FMA instruction where the caller is
/// compiled with it (`#[target_feature(enable = "fma")]`), a correctly rounded library call
/// otherwise; the same bits either way.
#[inline(always)]
pub fn mul_add(a: f64, b: f64, c: f64) -> f64 {
    #[cfg(feature = "std")]
    {
        a.mul_add(b, c)
    }
    #[cfg(not(feature = "std"))]
    {
        libm::fma(a, b, c)
    }
}

/// [`mul_add`] in binary32: a b + c with one rounding, the FMA instruction where the caller is
/// compiled with it, a correctly rounded library call otherwise.
#[inline(always)]
pub fn mul_add_f32(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(feature = "std")]
    {
        a.mul_add(b, c)
    }
    #[cfg(not(feature = "std"))]
    {
        libm::fmaf(a, b, c)
    }
}

/// [`mul_add_f32`] from binary64 arithmetic alone, for the x86-64 baseline set (no FMA
/// instruction; the C library's `fmaf` made its f32 network kernels 5x to 40x slower): the
/// product of two binary32 numbers is exact in binary64; the sum s = RN(p + c) and its error e
/// (Knuth's TwoSum) give the sum rounded to odd (s moved one unit toward the exact value where
/// e != 0 and s is even), and that, rounded to binary32, is the correctly rounded a b + c
/// (Boldo and Melquiond, IEEE TC 57 (2008) 462: rounding to odd at 53 bits, then to nearest at
/// 24 <= 53 - 2 bits). The same bits as the FMA instruction for finite, infinite and zero
/// operands (NaN payloads aside); branch-free, so that loops of it vectorise on SSE2.
#[inline(always)]
pub fn mul_add_f32_by_f64(a: f32, b: f32, c: f32) -> f32 {
    let product = f64::from(a) * f64::from(b);
    let addend = f64::from(c);
    let sum = product + addend;
    let back = sum - product;
    let error = (product - (sum - back)) + (addend - back);
    let bits = sum.to_bits();
    // One unit away from zero where the exact sum lies beyond `sum`, else one toward it.
    let nudged = if (error > 0.0) == (sum > 0.0) { bits.wrapping_add(1) } else { bits.wrapping_sub(1) };
    // An infinite or NaN sum has a NaN error and stays as it is.
    let inexact = (error != 0.0) & (sum.abs() < f64::INFINITY);
    let odd = if inexact & (bits & 1 == 0) { nudged } else { bits };
    f64::from_bits(odd) as f32
}

/// [`mul_add_f32`] for the portable neural kernels (loops compiled without an FMA instruction
/// on x86-64): the FMA instruction on aarch64, whose base set has one; on x86-64
/// [`mul_add_f32_by_f64`] (the same bits without a library call per product).
#[inline(always)]
pub fn mul_add_f32_portable(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        mul_add_f32_by_f64(a, b, c)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        mul_add_f32(a, b, c)
    }
}

/// cos(x) (libm, bit-identical on every platform).
#[inline(always)]
pub fn cos(x: f64) -> f64 {
    libm::cos(x)
}

/// tanh(x) in single precision, the neural-network kernels (libm, bit-identical on every
/// platform).
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    libm::tanhf(x)
}

/// The complementary error function erfc(x) = 1 - erf(x), accurate in the tails (libm's, in
/// every build: std has no stable erfc).
#[inline(always)]
pub fn erfc(x: f64) -> f64 {
    libm::erfc(x)
}

pub mod chebyshev;
pub mod interpolation;
pub mod linalg;
pub mod piecewise;
pub mod polynomial;
pub mod quadrature;
pub mod simd;

/// ln x for finite x > 0 (subnormals included) without branches on the argument, so that loops
/// over arrays vectorise: x = 2^k m with sqrt(1/2) <= m < sqrt(2) read from the bits, then
/// ln m = 2 atanh(f) = 2 f (1 + f^2/3 + f^4/5 + ...), f = (m - 1)/(m + 1), |f| <= 0.1716, by
/// its series to f^21 (truncation below 1e-18 relative), and k ln 2 with ln 2 split in two
/// (fdlibm). Error below 2 ulp of |ln x| or 4e-16 absolute (tested against std). Zero,
/// negative, infinite or NaN x give unspecified finite values: callers check first.
#[inline(always)]
pub fn ln_branchless(x: f64) -> f64 {
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const SQRT_HALF_BITS: u64 = 0x3fe6_a09e_667f_3bcd;
    const TWO_POW_54: f64 = 18_014_398_509_481_984.0;
    // 2 / (2j + 1) for j = 0..=10.
    const C: [f64; 11] = [
        2.0,
        2.0 / 3.0,
        2.0 / 5.0,
        2.0 / 7.0,
        2.0 / 9.0,
        2.0 / 11.0,
        2.0 / 13.0,
        2.0 / 15.0,
        2.0 / 17.0,
        2.0 / 19.0,
        2.0 / 21.0,
    ];
    let subnormal = x < f64::MIN_POSITIVE;
    let scaled = if subnormal { x * TWO_POW_54 } else { x };
    let bits = scaled.to_bits();
    // (k + 1024) << 52 plus the mantissa offset from sqrt(1/2): non-negative, fits in 64 bits.
    let offset = bits.wrapping_sub(SQRT_HALF_BITS).wrapping_add(1024 << 52);
    let biased_k = offset >> 52;
    let m = f64::from_bits(bits.wrapping_sub(biased_k.wrapping_sub(1024) << 52));
    // k as f64 without an integer conversion instruction: 2^52 + biased_k exactly.
    let k = f64::from_bits(0x4330_0000_0000_0000 | biased_k)
        - (4_503_599_627_370_496.0 + 1024.0)
        - if subnormal { 54.0 } else { 0.0 };
    let f = (m - 1.0) / (m + 1.0);
    let s = f * f;
    let s2 = s * s;
    let s4 = s2 * s2;
    let low = mul_add(mul_add(C[3], s, C[2]), s2, mul_add(C[1], s, C[0]));
    let middle = mul_add(mul_add(C[7], s, C[6]), s2, mul_add(C[5], s, C[4]));
    let high = mul_add(C[10], s2, mul_add(C[9], s, C[8]));
    let series = mul_add(s4, mul_add(s4, high, middle), low);
    mul_add(k, LN2_HI, mul_add(f, series, k * LN2_LO))
}

/// softplus(u) = ln(1 + e^u), as max(u, 0) + ln(1 + e^-|u|): no overflow, branch-free.
#[inline(always)]
pub fn softplus_branchless(u: f64) -> f64 {
    u.max(0.0) + ln_branchless(1.0 + exp_branchless(-u.abs()))
}

/// e^x without branches on the argument, so that loops over arrays vectorise: x = k ln 2 + r
/// with |r| <= ln2/2 (Cody & Waite reduction with ln 2 split in two, as in fdlibm), e^r by its
/// degree-12 Taylor polynomial (truncation below 2e-16 relative) evaluated by Estrin's scheme
/// (a dependency chain of 5 fused multiply-add levels instead of Horner's 12), 2^k added to the
/// exponent bits. Relative error below 5e-16 for -708 <= x <= 709 (tested against std);
/// x < -708 gives 0 (true values below 3e-308) and x > 709 gives a finite value (callers stay
/// below).
#[inline(always)]
pub fn exp_branchless(x: f64) -> f64 {
    const LOG2_E: f64 = core::f64::consts::LOG2_E;
    // fdlibm's split: LN2_HI has 11 trailing zero bits, so k * LN2_HI is exact.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    // Adding 1.5 * 2^52 rounds to an integer held in the low mantissa bits.
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    // 1/n! for n = 0..=12.
    const C: [f64; 13] = [
        1.0,
        1.0,
        0.5,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
    ];
    let clamped = x.clamp(-708.0, 709.0);
    let shifted = mul_add(clamped, LOG2_E, SHIFTER);
    let k = shifted - SHIFTER;
    let r = mul_add(-k, LN2_LO, mul_add(-k, LN2_HI, clamped));
    let r2 = r * r;
    let r4 = r2 * r2;
    let low = mul_add(mul_add(C[3], r, C[2]), r2, mul_add(C[1], r, C[0]));
    let middle = mul_add(mul_add(C[7], r, C[6]), r2, mul_add(C[5], r, C[4]));
    let high = mul_add(C[12], r4, mul_add(mul_add(C[11], r, C[10]), r2, mul_add(C[9], r, C[8])));
    let p = mul_add(r4, mul_add(r4, high, middle), low);
    let exponent = shifted.to_bits().wrapping_sub(SHIFTER.to_bits()) << 52;
    let value = f64::from_bits(p.to_bits().wrapping_add(exponent));
    if x < -708.0 { 0.0 } else { value }
}

/// e^x in single precision without branches on the argument (vectorises): x = k ln 2 + r,
/// |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (truncation 5e-9 relative), then two
/// factors 2^(k/2) and 2^(k - k/2) built from exponent bits, so that results down into the
/// subnormal range round correctly. Relative error below 2.5e-7 (2 ulp) for -87 <= x <= 88
/// (tested against f64), and the absolute error stays below 2 subnormal steps down to
/// x = -103.9; below that it gives 0, above 88.72 e^88.72.
#[inline(always)]
pub fn exp_branchless_f32(x: f32) -> f32 {
    const LOG2_E: f32 = core::f32::consts::LOG2_E;
    // ln 2 split so that k * LN2_HI is exact for |k| < 2^9.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding 1.5 * 2^23 rounds to an integer held in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    let clamped = x.clamp(-104.0, 88.72);
    let shifted = clamped * LOG2_E + SHIFTER;
    let k = shifted - SHIFTER;
    let r = (clamped - k * LN2_HI) - k * LN2_LO;
    let r2 = r * r;
    let low = (1.0 + r) + (0.5 + r * (1.0 / 6.0)) * r2;
    let high = (1.0 / 24.0 + r * (1.0 / 120.0)) + (1.0 / 720.0 + r * (1.0 / 5040.0)) * r2;
    let p = low + high * (r2 * r2);
    // k in [-150, 128]: halves in [-75, 64], each a normal power of two.
    let k = shifted.to_bits().wrapping_sub(SHIFTER.to_bits()) as i32;
    let (k_high, k_low) = (k >> 1, k - (k >> 1));
    let power = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    let value = p * power(k_high) * power(k_low);
    if x < -104.0 { 0.0 } else { value }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn branchless_exp_f32_matches_f64() {
        let mut worst: f64 = 0.0;
        for i in 0..=400_000 {
            let x = -87.0 + 175.0 * i as f32 / 400_000.0;
            let exact = f64::from(x).exp();
            worst = worst.max((f64::from(exp_branchless_f32(x)) / exact - 1.0).abs());
        }
        assert!(worst < 2.5e-7, "{worst:e}");
        // Subnormal results: within 2 steps of 2^-149 of the true value.
        for i in 0..=1000 {
            let x = -87.0 - 16.9 * i as f32 / 1000.0;
            let error = (f64::from(exp_branchless_f32(x)) - f64::from(x).exp()).abs();
            assert!(error <= 2.0 * 2f64.powi(-149), "x {x}: {error:e}");
        }
        assert_eq!(exp_branchless_f32(0.0), 1.0);
        assert_eq!(exp_branchless_f32(-110.0), 0.0);
        assert_eq!(exp_branchless_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_branchless_f32(f32::INFINITY).is_finite());
    }

    /// Against libm's fmaf (an independent, correctly rounded implementation): random operands
    /// over the whole range, products cancelled by the addend to a few ulps, sums at and next
    /// to binary32 midpoints, subnormal, overflowing, zero and infinite results.
    #[test]
    fn binary32_fma_by_binary64_is_correctly_rounded() {
        let check = |a: f32, b: f32, c: f32| {
            let (ours, reference) = (mul_add_f32_by_f64(a, b, c), libm::fmaf(a, b, c));
            assert!(
                ours.to_bits() == reference.to_bits() || (ours.is_nan() && reference.is_nan()),
                "fma({a:e}, {b:e}, {c:e}) = {ours:e}, libm {reference:e}"
            );
        };
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000_000 {
            let r = next();
            let (a, b) = (f32::from_bits(r as u32), f32::from_bits((r >> 32) as u32));
            let c = f32::from_bits(next() as u32);
            check(a, b, c);
            // The addend cancelling the product to its last bits.
            let product = a * b;
            let ulps = (next() % 9) as i32 - 4;
            check(a, b, -f32::from_bits(product.to_bits().wrapping_add(ulps as u32)));
            // Narrow operands whose exact sums often fall on binary32 midpoints.
            let (m, n) = ((r & 0xfff) as f32 + 1.0, ((r >> 12) & 0xfff) as f32 + 1.0);
            let scale = f32::from_bits(((100 + (r >> 24) % 60) as u32) << 23);
            check(m * scale, n, (m * n) * scale * 0.5);
            check(m, n * scale, -(((r >> 36) & 0xffffff) as f32) * scale);
            // Exact sums just below the midpoint above an odd addend (c + half an ulp of c, less
            // 2^-46 of that): the binary64 sum is the midpoint itself, which a plain double
            // rounding would take up to the even neighbour.
            let odd = f32::from_bits(((r >> 20) as u32 & 0x7eff_ffff) | 0x0080_0001);
            let half_ulp = (f32::from_bits(odd.to_bits() + 1) - odd) * 0.5;
            check(1.0 + f32::EPSILON, half_ulp * (1.0 - f32::EPSILON), odd);
            check(-1.0 - f32::EPSILON, half_ulp * (1.0 - f32::EPSILON), -odd);
        }
        for (a, b, c) in [
            (1e-30, 1e-15, 0.0),
            (-1e-30, 1e-15, -0.0),
            (1e-20, 1e-20, 1e-40),
            (3e38, 10.0, -1e38),
            (-3e38, 10.0, 1e38),
            (0.0, -1.0, 0.0),
            (-0.0, 1.0, -0.0),
            (f32::INFINITY, 0.0, 1.0),
            (f32::INFINITY, 2.0, f32::NEG_INFINITY),
            (f32::INFINITY, 2.0, 1.0),
            (1.0, 1.0, f32::NAN),
            (1.0 + f32::EPSILON, 1.0 - f32::EPSILON / 2.0, -1.0),
            (f32::MAX, 1.0 + f32::EPSILON, 0.0),
            (f32::MIN_POSITIVE, 0.5, f32::from_bits(1)),
        ] {
            check(a, b, c);
        }
    }

    #[test]
    fn branchless_ln_matches_std() {
        let mut worst: f64 = 0.0;
        let mut x = f64::from_bits(1); // the smallest subnormal
        while x < f64::MAX / 1.37 {
            for y in [x, 1.0 + x.min(1.0) * 1e-3, 1.0 - x.min(0.5) * 1e-3] {
                let exact = y.ln();
                let err = (ln_branchless(y) - exact).abs() / exact.abs().max(1.0);
                worst = worst.max(err);
            }
            // Doubling through the subnormals (1.37 x the smallest rounds back to it).
            x *= if x < f64::MIN_POSITIVE { 2.0 } else { 1.37 };
        }
        assert!(worst < 4e-16, "{worst:e}");
        assert_eq!(ln_branchless(1.0), 0.0);
        assert_eq!(ln_branchless(2.0), core::f64::consts::LN_2);
    }

    #[test]
    fn softplus_has_its_limits() {
        assert!((softplus_branchless(0.0) - core::f64::consts::LN_2).abs() < 1e-16);
        assert_eq!(softplus_branchless(800.0), 800.0);
        assert_eq!(softplus_branchless(-800.0), 0.0);
        let u: f64 = 1.5;
        assert!((softplus_branchless(u) - u.exp().ln_1p()).abs() < 4e-16);
    }

    #[test]
    fn branchless_exp_matches_std() {
        let mut worst: f64 = 0.0;
        for i in 0..=200_000 {
            let x = -708.0 + 1417.0 * i as f64 / 200_000.0;
            worst = worst.max((exp_branchless(x) / x.exp() - 1.0).abs());
        }
        assert!(worst < 5e-16, "{worst:e}");
        assert_eq!(exp_branchless(0.0), 1.0);
        assert_eq!(exp_branchless(-800.0), 0.0);
        assert_eq!(exp_branchless(f64::NEG_INFINITY), 0.0);
    }
}
