//! Spatial distributions of supernova remnants around the observer (PHYSICS.md, "The
//! stochastic ensemble"): the distance s [kpc] in the Galactic plane from the Sun to a source,
//! restricted to s < s_max, drawn with ONE uniform per draw through an inverse-CDF table.
//!
//! Three models ([`SpatialModel`]):
//!
//! 1. **Uniform disc** around the observer: p(s) = 2 s / s_max^2 on [0, s_max]. It has no
//!    Galaxy outside the disc, so P(s < s_max) = 1 by definition.
//! 2. **Case & Bhattacharya (1998)**, ApJ 504, 761, eq. (14) in the form of the SECRET paper
//!    (Frediani et al., section 2.1) and of Ahlers, Mertsch & Sarkar (2009), PRD 80, 123017: the
//!    axisymmetric surface density f(r) = A sin(pi r / r0 + theta0) exp(-beta r) of the
//!    galactocentric radius r, r0 = 17.2 kpc, theta0 = 0.08, beta = 0.13 kpc^-1, zero where the
//!    sine is negative (r > r0 (1 - theta0 / pi) = 16.757 kpc); A drops out. The observer is at
//!    r_sun = 7.9 kpc (SECRET, figure 1; PHYSICS.md).
//! 3. **Four logarithmic spiral arms** of Faucher-Giguère & Kaspi (2006), ApJ 643, 332, section
//!    3.2.1 and table 2 (FGK06), with the CB98 radial density along the arms, the model of
//!    Ahlers, Mertsch & Sarkar (2009) that the SECRET paper uses. See [`SPIRAL_ARMS`] for the
//!    arm parameters and [`SpatialModel::SpiralArms`] for the construction of a source.
//!
//! P(s < s_max) ([`SpatialDistribution::fraction_within`]) is the fraction of the sources of the
//! whole Galaxy that lie within s_max of the Sun; the ensemble draws R_SN t_max P(s < s_max)
//! sources. For the spiral model at s_max = 10 kpc it is 0.4402 (SECRET quotes 0.44; the plain
//! CB98 disc gives 0.4435).
//!
//! # Numerics
//!
//! Every galactic model is held as G(s) = P(s' < s) / s^2 (smooth and finite at s = 0, where
//! P ~ pi s^2 Sigma_sun) in a table of Chebyshev interpolants on the Chebyshev-Lobatto points
//! of each piece (neighbouring pieces share their end values, so the table is continuous):
//! - CB98: built at construction, adaptively to 1e-14 relative, from P(s' < s) computed as one
//!   integral over r of f(r) times the angle alpha(r, s) of the ring of radius r that lies
//!   within s of the Sun (closed form), by Gauss-Legendre quadrature in a variable that removes
//!   the square-root end points (accurate to about 1e-15). This is [`SpatialDistribution::cdf`].
//! - spiral arms: a table over s in [0, 24] kpc stored in this file (`SPIRAL_G_TABLE`), made
//!   once from a deterministic quadrature of the model (four nested integrals with closed-form
//!   inner parts, see `spiral_cdf_reference`, compiled for the unit tests); table and
//!   quadrature agree with the model to about 2e-7 in P (the error of the radial quadrature,
//!   which varies irregularly with s; about 1e-6 relative at small s).
//!
//! Draws: s = S(w) with w = sqrt(u), where S is the inverse of the conditional CDF in the
//! variable w (S(w) is analytic in w at w = 0, since P ~ s^2 there). S is a table of degree-7
//! polynomials built adaptively at construction to 1e-11 s_max against the inverse of the CDF
//! table (found by bisection), and checked to be monotone. A draw is one square root, a
//! lookup in a uniform guide table (at most a step of search in practice) and a degree-7
//! polynomial by Estrin's scheme; no root finding: about 10 to 15 ns a draw in a loop (3 to 6
//! ns for the uniform disc). `sample_each` does a batch branch-free with the same bits:
//! vectorised with gathers on AVX2; on AVX-512 the coefficient rows of 8 draws are loaded and
//! transposed in registers, in two passes over blocks of draws (about 2.2 ns a draw of the spiral model, 8 with gathers);
//! on NEON likewise, 2 lanes a register (scalar loads of the guide entries, rows paired with
//! zips). Construction takes 1 to 25 ms (most for s_max near 24 kpc).

use alloc::vec;
use alloc::vec::Vec;
use core::f64::consts::PI;

use crate::batch::check_lengths;
use crate::error::{Result, invalid};
use crate::math::quadrature::gauss_legendre;
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
use crate::math::simd::VectorIsa;
use crate::math::{chebyshev, cos, exp, sqrt};

/// Distance of the Sun from the Galactic centre [kpc] (SECRET, figure 1; PHYSICS.md), for both
/// galactic models. FGK06 used 8.5 kpc; the SECRET paper puts the Sun at 7.9 kpc in its spiral
/// model, and P(s < 10 kpc) = 0.44 is reproduced with 7.9 kpc (8.5 kpc gives 0.415).
pub const R_SUN_KPC: f64 = 7.9;
/// CB98 radial scale r0 [kpc] of f(r) = A sin(pi r / r0 + theta0) exp(-beta r).
pub const CB98_R0_KPC: f64 = 17.2;
/// CB98 phase theta0.
pub const CB98_THETA0: f64 = 0.08;
/// CB98 exponential rate beta [kpc^-1].
pub const CB98_BETA_PER_KPC: f64 = 0.13;
/// Where the CB98 sine turns negative, r0 (1 - theta0 / pi) [kpc]: the edge of the source disc.
pub const CB98_EDGE_KPC: f64 = CB98_R0_KPC * (1.0 - CB98_THETA0 / PI);
/// The largest s_max [kpc] the galactic models accept: the CB98 disc ends 24.66 kpc from the
/// Sun, where the density of s vanishes and the inverse CDF would turn singular.
pub const S_MAX_LIMIT_KPC: f64 = 24.0;

/// One logarithmic spiral arm, theta(r) = k ln(r / r0) + theta0 (FGK06 table 2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpiralArm {
    /// The arm's name in FGK06.
    pub name: &'static str,
    /// Winding constant k [rad].
    pub k: f64,
    /// Radius r0 [kpc].
    pub r0_kpc: f64,
    /// Angle theta0 [rad] at r0.
    pub theta0: f64,
}

/// The four arms of FGK06 table 2 (after Wainscoat et al. 1992), as implemented in gammapy
/// (`FaucherSpiral`) and PsrPopPy (`spiralize`): note that the Perseus and Crux-Scutum arms
/// have k = 4.89 and r0 = 4.90 kpc, not the Norma values (with all four at k = 4.25, r0 = 3.48
/// kpc, P(s < 10 kpc) would be 0.424 instead of SECRET's 0.44). Polar angles are measured in
/// the Galactic plane from the x axis, x = r cos theta, y = r sin theta, with the Sun at
/// (x, y) = (0, r_sun) (FGK06's frame; the same implementations).
pub const SPIRAL_ARMS: [SpiralArm; 4] = [
    SpiralArm { name: "Norma", k: 4.25, r0_kpc: 3.48, theta0: 1.57 },
    SpiralArm { name: "Carina-Sagittarius", k: 4.25, r0_kpc: 3.48, theta0: 4.71 },
    SpiralArm { name: "Perseus", k: 4.89, r0_kpc: 4.90, theta0: 4.09 },
    SpiralArm { name: "Crux-Scutum", k: 4.89, r0_kpc: 4.90, theta0: 0.95 },
];
/// FGK06's correction of the arm angle towards the Galactic centre: theta += theta_corr
/// exp(-c r), theta_corr uniform in [0, 2 pi), c = 0.35 kpc^-1.
pub const FGK06_ANGLE_CORRECTION_PER_KPC: f64 = 0.35;
/// FGK06's blur of the position: a displacement of length |N(0, b r)| in a uniform random
/// direction, b = 0.07.
pub const FGK06_BLUR_PER_R: f64 = 0.07;
/// Polar angle of the Sun in the frame of [`SPIRAL_ARMS`].
#[cfg(test)]
const THETA_SUN: f64 = 0.5 * PI;

/// The spatial model of the sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpatialModel {
    /// Uniform in the disc s < s_max around the observer: p(s) = 2 s / s_max^2.
    UniformDisc,
    /// The axisymmetric Case & Bhattacharya (1998) surface density around an observer at
    /// [`R_SUN_KPC`].
    RadialCaseBhattacharya,
    /// Four logarithmic spiral arms (FGK06; Ahlers, Mertsch & Sarkar 2009). A source is made as
    /// in FGK06 section 3.2.1, with the CB98 radial density of AMS09: the galactocentric radius
    /// r from p(r) proportional to r f(r) (f the CB98 surface density), an arm at random
    /// (probability 1/4 each), theta = k ln(r / r0) + theta0 + theta_corr exp(-0.35 r / kpc)
    /// with theta_corr uniform in [0, 2 pi), then the position r (cos theta, sin theta) moved
    /// by a length |N(0, 0.07 r)| in a uniform random direction. Observer at (0, r_sun).
    SpiralArms,
}

/// A spatial model restricted to s < s_max, with its precomputed tables.
#[derive(Clone, Debug)]
pub struct SpatialDistribution {
    model: SpatialModel,
    s_max: f64,
    /// P(s < s_max) over the whole Galaxy.
    fraction: f64,
    /// G(s) = P(s' < s) / s^2 over the whole Galaxy (galactic models only).
    forward: Option<Table<FWD_N>>,
    /// s(w), w = sqrt(u) in [0, 1] (galactic models only).
    inverse: Option<Table<INV_N>>,
}

impl SpatialDistribution {
    /// Builds the distribution of `model` restricted to s < `s_max_kpc`.
    ///
    /// `s_max_kpc` must be finite and > 0, and for the galactic models at most
    /// [`S_MAX_LIMIT_KPC`] = 24 kpc; otherwise [`crate::Error::InvalidArgument`].
    pub fn new(model: SpatialModel, s_max_kpc: f64) -> Result<Self> {
        if !(s_max_kpc.is_finite() && s_max_kpc > 0.0) {
            return Err(invalid!("s_max = {s_max_kpc} kpc is not finite and > 0"));
        }
        let forward = match model {
            SpatialModel::UniformDisc => {
                return Ok(SpatialDistribution {
                    model,
                    s_max: s_max_kpc,
                    fraction: 1.0,
                    forward: None,
                    inverse: None,
                });
            }
            _ if s_max_kpc > S_MAX_LIMIT_KPC => {
                return Err(invalid!(
                    "s_max = {s_max_kpc} kpc is above {S_MAX_LIMIT_KPC} kpc, the limit of the galactic models"
                ));
            }
            SpatialModel::RadialCaseBhattacharya => cb98_forward_table(s_max_kpc),
            SpatialModel::SpiralArms => spiral_forward_table(),
        };
        let fraction = s_max_kpc * s_max_kpc * forward.eval(s_max_kpc);
        let inverse = inverse_table(&forward, s_max_kpc, fraction);
        Ok(SpatialDistribution {
            model,
            s_max: s_max_kpc,
            fraction,
            forward: Some(forward),
            inverse: Some(inverse),
        })
    }

    /// The model.
    pub fn model(&self) -> SpatialModel {
        self.model
    }

    /// s_max [kpc].
    pub fn s_max_kpc(&self) -> f64 {
        self.s_max
    }

    /// P(s < s_max) for a source of the whole Galaxy (1 for the uniform disc, by definition).
    pub fn fraction_within(&self) -> f64 {
        self.fraction
    }

    /// The CDF of s [kpc] given s < s_max: 0 at s <= 0, 1 at s >= s_max (NaN gives NaN).
    pub fn cdf(&self, s_kpc: f64) -> f64 {
        if s_kpc.is_nan() {
            return f64::NAN;
        }
        if s_kpc <= 0.0 {
            return 0.0;
        }
        if s_kpc >= self.s_max {
            return 1.0;
        }
        match &self.forward {
            None => (s_kpc / self.s_max) * (s_kpc / self.s_max),
            Some(forward) => (s_kpc * s_kpc * forward.eval(s_kpc) / self.fraction).min(1.0),
        }
    }

    /// The distance s [kpc] at the uniform u in (0, 1): the inverse of [`Self::cdf`], in
    /// [0, s_max] (u is clamped to [0, 1]; NaN gives NaN). One uniform per draw; the table
    /// inverts the CDF to 1e-11 s_max.
    #[inline]
    pub fn sample(&self, u: f64) -> f64 {
        let w = sqrt(u.clamp(0.0, 1.0));
        match &self.inverse {
            None => self.s_max * w,
            Some(inverse) => inverse.draw_piece(w).eval_estrin(w).clamp(0.0, self.s_max),
        }
    }

    /// [`Self::sample`] of every uniform: `distances_kpc[i]` = sample(`uniforms[i]`), the same
    /// bits, branch-free over the batch (on the widest vector instruction set of the CPU).
    ///
    /// Errors: the two arrays differ in length (InvalidArgument).
    pub fn sample_each(&self, uniforms: &[f64], distances_kpc: &mut [f64]) -> Result<()> {
        check_lengths("uniform", uniforms.len(), "distance", distances_kpc.len())?;
        match &self.inverse {
            Some(inverse) if !inverse.single_step => {
                for (s, &u) in distances_kpc.iter_mut().zip(uniforms) {
                    *s = self.sample(u);
                }
            }
            _ => self.sample_each_vectorised(uniforms, distances_kpc),
        }
        Ok(())
    }

    /// The branch-free batch sample on the widest vector instruction set of this CPU.
    fn sample_each_vectorised(&self, uniforms: &[f64], distances_kpc: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        match VectorIsa::detect() {
            // SAFETY: VectorIsa::detect found the instruction set on this CPU.
            VectorIsa::Avx512 => return unsafe { self.sample_each_avx512(uniforms, distances_kpc) },
            VectorIsa::Avx2 => return unsafe { self.sample_each_avx2(uniforms, distances_kpc) },
            VectorIsa::Baseline | VectorIsa::Neon => {}
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        if let (VectorIsa::Neon, Some(inverse)) = (VectorIsa::detect(), &self.inverse) {
            // The same length (sample_each checked it): the same whole steps and rest.
            let (uniforms, uniforms_rest) = uniforms.as_chunks::<{ neon::STEP }>();
            let (distances, distances_rest) = distances_kpc.as_chunks_mut::<{ neon::STEP }>();
            // SAFETY: this build's target has NEON (the cfg above).
            unsafe { neon::sample_each(inverse, self.s_max, uniforms, distances) };
            return self.sample_each_branch_free(uniforms_rest, distances_rest);
        }
        self.sample_each_branch_free(uniforms, distances_kpc)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    unsafe fn sample_each_avx512(&self, uniforms: &[f64], distances_kpc: &mut [f64]) {
        let Some(inverse) = &self.inverse else {
            return self.sample_each_branch_free(uniforms, distances_kpc);
        };
        // Two passes over blocks of draws: first every draw's w and piece, then the
        // polynomials. Each pass is a short chain of dependent steps, so that the core overlaps
        // many draws (one pass through both waits on gathers, then on the row loads).
        const BLOCK: usize = 256;
        let (mut w, mut piece) = ([0.0; BLOCK], [0u64; BLOCK]);
        let whole = uniforms.len() - uniforms.len() % 8;
        for (s, u) in distances_kpc[..whole].chunks_mut(BLOCK).zip(uniforms[..whole].chunks(BLOCK)) {
            let (w, piece) = (&mut w[..u.len()], &mut piece[..u.len()]);
            for ((u, w), piece) in u.chunks_exact(8).zip(w.chunks_exact_mut(8)).zip(piece.chunks_exact_mut(8))
            {
                // SAFETY: AVX-512F/DQ are enabled (the caller checked the CPU); the chunks
                // hold 8 values; the table's single_step holds (sample_each checked it).
                unsafe { avx512::locate_8(inverse, u, w, piece) };
            }
            for ((s, w), piece) in s.chunks_exact_mut(8).zip(w.chunks_exact(8)).zip(piece.chunks_exact(8)) {
                // SAFETY: as above; the pieces are in the table (locate_8).
                unsafe { avx512::evaluate_8(inverse, self.s_max, w, piece, s) };
            }
        }
        self.sample_each_branch_free(&uniforms[whole..], &mut distances_kpc[whole..])
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sample_each_avx2(&self, uniforms: &[f64], distances_kpc: &mut [f64]) {
        let Some(inverse) = &self.inverse else {
            return self.sample_each_branch_free(uniforms, distances_kpc);
        };
        // As on AVX-512: two passes over blocks of draws, 4 lanes at a time.
        const BLOCK: usize = 256;
        let (mut w, mut piece) = ([0.0; BLOCK], [0u64; BLOCK]);
        let whole = uniforms.len() - uniforms.len() % 4;
        for (s, u) in distances_kpc[..whole].chunks_mut(BLOCK).zip(uniforms[..whole].chunks(BLOCK)) {
            let (w, piece) = (&mut w[..u.len()], &mut piece[..u.len()]);
            for ((u, w), piece) in u.chunks_exact(4).zip(w.chunks_exact_mut(4)).zip(piece.chunks_exact_mut(4))
            {
                // SAFETY: AVX2 is enabled (the caller checked the CPU); the chunks hold 4
                // values; the table's single_step holds (sample_each checked it).
                unsafe { avx2::locate_4(inverse, u, w, piece) };
            }
            for ((s, w), piece) in s.chunks_exact_mut(4).zip(w.chunks_exact(4)).zip(piece.chunks_exact(4)) {
                // SAFETY: as above; the pieces are in the table (locate_4).
                unsafe { avx2::evaluate_4(inverse, self.s_max, w, piece, s) };
            }
        }
        self.sample_each_branch_free(&uniforms[whole..], &mut distances_kpc[whole..])
    }

    /// The batch sample where the inverse table's guide is never more than one piece off.
    #[inline(always)]
    fn sample_each_branch_free(&self, uniforms: &[f64], distances_kpc: &mut [f64]) {
        match &self.inverse {
            None => {
                for (s, &u) in distances_kpc.iter_mut().zip(uniforms) {
                    *s = self.s_max * sqrt(u.clamp(0.0, 1.0));
                }
            }
            Some(inverse) => {
                for (s, &u) in distances_kpc.iter_mut().zip(uniforms) {
                    let w = sqrt(u.clamp(0.0, 1.0));
                    *s = inverse.piece_one_step(w).eval_estrin(w).clamp(0.0, self.s_max);
                }
            }
        }
    }
}

/// The draw s(u) of a [`SpatialDistribution`] as plain arrays, for code that reproduces
/// [`SpatialDistribution::sample`] elsewhere (the GPU kernels): the same bits from the same
/// operations. With w = sqrt(clamp(u, 0, 1)):
/// - no pieces (the uniform disc): s = s_max w;
/// - otherwise: cell = min(trunc((w - lo) guide_scale), cells - 1) (0 for a negative or NaN
///   argument), i = guide[cell]; then, with `single_step`, i += 1 where w > guide_right[cell]
///   and i = min(i, pieces - 1), else i += 1 while w > right[i] and i + 1 < pieces; with
///   t = (w - center[i]) inv_half_width[i] (a product and a difference, not fused) and c =
///   coefficients[i], s = low + high t^4 where low = (c0 + c1 t) + (c2 + c3 t) t^2 and high =
///   (c4 + c5 t) + (c6 + c7 t) t^2 (every product rounded separately: no fused multiply-add),
///   clamped to [0, s_max].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SamplerTables {
    /// s_max [kpc].
    pub s_max_kpc: f64,
    /// Left end of the guide table's range in w.
    pub lo: f64,
    /// Guide cells per unit of w.
    pub guide_scale: f64,
    /// First piece of each guide cell.
    pub guide: Vec<u32>,
    /// Per guide cell, the right end of its first piece rounded toward zero (its 16 lowest bits
    /// cleared: by less than 2^-36 of itself).
    pub guide_right: Vec<f64>,
    /// Every guide cell holds at most two pieces (the one-step rule above applies).
    pub single_step: bool,
    /// Per piece: its right end in w, centre, 1 / half-width, and degree-7 coefficients.
    pub right: Vec<f64>,
    /// See `right`.
    pub center: Vec<f64>,
    /// See `right`.
    pub inv_half_width: Vec<f64>,
    /// See `right`: [pieces][8], lowest degree first.
    pub coefficients: Vec<[f64; INV_N]>,
}

impl SpatialDistribution {
    /// The inverse-CDF draw as plain arrays (see [`SamplerTables`]).
    pub fn sampler_tables(&self) -> SamplerTables {
        let Some(inverse) = &self.inverse else {
            return SamplerTables { s_max_kpc: self.s_max, ..SamplerTables::default() };
        };
        SamplerTables {
            s_max_kpc: self.s_max,
            lo: inverse.lo,
            guide_scale: inverse.guide_scale,
            guide: inverse.guide.iter().map(|&entry| unpack_guide_entry(entry).0 as u32).collect(),
            guide_right: inverse.guide.iter().map(|&entry| unpack_guide_entry(entry).1).collect(),
            single_step: inverse.single_step,
            right: inverse.pieces.iter().map(|p| p.right).collect(),
            center: inverse.pieces.iter().map(|p| p.center).collect(),
            inv_half_width: inverse.pieces.iter().map(|p| p.inv_half_width).collect(),
            coefficients: inverse.pieces.iter().map(|p| p.coefficients).collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Piecewise Chebyshev tables.

/// Points per piece of the CDF tables (degree 12).
const FWD_N: usize = 13;
/// Coefficients per piece of the inverse tables (degree 7).
pub const INV_N: usize = 8;

/// One piece: the interpolant through the Chebyshev-Lobatto points of [left, right], in
/// monomial form in t = (x - center) / half_width.
#[derive(Clone, Debug)]
#[repr(C)] // center and inv_half_width adjacent: the AVX-512 draw loads them as one pair
struct Piece<const N: usize> {
    right: f64,
    center: f64,
    inv_half_width: f64,
    coefficients: [f64; N],
}

/// The Chebyshev-Lobatto point j of [left, right] (j = 0 at left, N - 1 at right).
fn lobatto_point(left: f64, right: f64, j: usize, n: usize) -> f64 {
    if j == 0 {
        return left;
    }
    if j == n - 1 {
        return right;
    }
    let half = 0.5 * (right - left);
    left + half * (1.0 - cos(PI * j as f64 / (n - 1) as f64))
}

impl<const N: usize> Piece<N> {
    /// The interpolant through `values[j]` at `lobatto_point(left, right, j, N)`.
    fn from_lobatto(left: f64, right: f64, values: &[f64; N]) -> Self {
        // t_j = -cos(pi j / (N - 1)) for the increasing points; with m = N - 1 - j the points
        // are cos(pi m / (N - 1)), and the coefficients come from a DCT-I.
        let m = (N - 1) as f64;
        let mut c = [0.0; N];
        for (k, ck) in c.iter_mut().enumerate() {
            let mut sum = 0.0;
            for (j, &v) in values.iter().enumerate() {
                let idx = N - 1 - j;
                let weight = if idx == 0 || idx == N - 1 { 0.5 } else { 1.0 };
                sum += weight * v * cos(PI * (idx * k) as f64 / m);
            }
            *ck = 2.0 * sum / m;
        }
        c[0] *= 0.5;
        c[N - 1] *= 0.5;
        let monomial = chebyshev::to_monomial(&c);
        let mut coefficients = [0.0; N];
        coefficients.copy_from_slice(&monomial);
        let half = 0.5 * (right - left);
        Piece { right, center: left + half, inv_half_width: 1.0 / half, coefficients }
    }

    #[inline(always)]
    fn eval(&self, x: f64) -> f64 {
        let t = (x - self.center) * self.inv_half_width;
        let mut acc = self.coefficients[N - 1];
        for &c in self.coefficients[..N - 1].iter().rev() {
            acc = acc * t + c;
        }
        acc
    }
}

impl Piece<INV_N> {
    /// The degree-7 polynomial by Estrin's scheme: three levels of multiply-adds instead of
    /// Horner's seven, for a short dependency chain per draw.
    #[inline(always)]
    fn eval_estrin(&self, x: f64) -> f64 {
        let t = (x - self.center) * self.inv_half_width;
        let c = &self.coefficients;
        let t2 = t * t;
        let t4 = t2 * t2;
        let low = (c[0] + c[1] * t) + (c[2] + c[3] * t) * t2;
        let high = (c[4] + c[5] * t) + (c[6] + c[7] * t) * t2;
        low + high * t4
    }
}

/// The batch draw on AVX-512: the same operations as `Table::piece_one_step` and
/// `Piece::eval_estrin` (the same bits), with the eight coefficients of the eight lanes'
/// pieces loaded as rows and transposed in registers instead of gathered one by one (eight
/// gathers of a 30 KB table cost several times the arithmetic).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{GUIDE_PIECE_MASK, INV_N, Piece, Table};
    use core::arch::x86_64::*;
    use core::mem::offset_of;

    /// `w[l]` = sqrt(clamp(u[l], 0, 1)) and `piece[l]` = the piece holding it, l < 8.
    ///
    /// # Safety
    /// AVX-512F and DQ must be available; the slices hold at least 8 values; `table` has
    /// `single_step`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) unsafe fn locate_8(table: &Table<INV_N>, u: &[f64], w_out: &mut [f64], piece_out: &mut [u64]) {
        unsafe {
            let zero = _mm512_setzero_pd();
            // clamp(u, 0, 1) with NaN kept, then w = sqrt.
            let u = _mm512_loadu_pd(u.as_ptr());
            let w = _mm512_sqrt_pd(_mm512_min_pd(_mm512_set1_pd(1.0), _mm512_max_pd(zero, u)));
            // The guide cell: the truncated position, 0 below lo or for NaN, at most cells - 1.
            let position =
                _mm512_mul_pd(_mm512_sub_pd(w, _mm512_set1_pd(table.lo)), _mm512_set1_pd(table.guide_scale));
            let cell = _mm512_cvttpd_epu64(_mm512_max_pd(position, zero));
            let cell = _mm512_min_epu64(cell, _mm512_set1_epi64(table.guide.len() as i64 - 1));
            // The piece: the cell's guide entry, one further where w is beyond its right end
            // (both from one packed word, see unpack_guide_entry).
            let entry = _mm512_i64gather_epi64::<8>(cell, table.guide.as_ptr().cast());
            let mask = _mm512_set1_epi64(GUIDE_PIECE_MASK as i64);
            let first = _mm512_and_si512(entry, mask);
            let guide_right = _mm512_castsi512_pd(_mm512_andnot_si512(mask, entry));
            let beyond = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(w, guide_right);
            let piece = _mm512_mask_add_epi64(first, beyond, first, _mm512_set1_epi64(1));
            let piece = _mm512_min_epu64(piece, _mm512_set1_epi64(table.pieces.len() as i64 - 1));
            _mm512_storeu_pd(w_out.as_mut_ptr(), w);
            _mm512_storeu_si512(piece_out.as_mut_ptr().cast(), piece);
        }
    }

    /// `s[l]` = the draw at w[l] on `piece[l]`, l < 8.
    ///
    /// # Safety
    /// AVX-512F and DQ must be available; the slices hold at least 8 values; the pieces are
    /// indices of `table.pieces`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) unsafe fn evaluate_8(
        table: &Table<INV_N>,
        s_max: f64,
        w: &[f64],
        piece: &[u64],
        s: &mut [f64],
    ) {
        unsafe {
            let zero = _mm512_setzero_pd();
            let w = _mm512_loadu_pd(w.as_ptr());
            // (center, inv_half_width) of each lane's piece as one 128-bit load, four lanes to
            // a register, then split into the two vectors.
            const _: () =
                assert!(offset_of!(Piece<INV_N>, inv_half_width) == offset_of!(Piece<INV_N>, center) + 8);
            let (lanes_0_3, lanes_4_7) =
                quads(|lane| _mm_loadu_pd(&table.pieces.get_unchecked(piece[lane] as usize).center));
            let center =
                _mm512_permutex2var_pd(lanes_0_3, _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0), lanes_4_7);
            let inv_half_width =
                _mm512_permutex2var_pd(lanes_0_3, _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1), lanes_4_7);
            let row = |lane: usize| {
                let piece = table.pieces.get_unchecked(piece[lane] as usize);
                _mm512_loadu_pd(piece.coefficients.as_ptr())
            };
            let c = transpose(core::array::from_fn(row));
            // Estrin, every product rounded separately (as Piece::eval_estrin).
            let t = _mm512_mul_pd(_mm512_sub_pd(w, center), inv_half_width);
            let t2 = _mm512_mul_pd(t, t);
            let t4 = _mm512_mul_pd(t2, t2);
            let pair = |a: __m512d, b: __m512d| _mm512_add_pd(a, _mm512_mul_pd(b, t));
            let low = _mm512_add_pd(pair(c[0], c[1]), _mm512_mul_pd(pair(c[2], c[3]), t2));
            let high = _mm512_add_pd(pair(c[4], c[5]), _mm512_mul_pd(pair(c[6], c[7]), t2));
            let value = _mm512_add_pd(low, _mm512_mul_pd(high, t4));
            // clamp(value, 0, s_max) with NaN kept.
            let value = _mm512_min_pd(_mm512_set1_pd(s_max), _mm512_max_pd(zero, value));
            _mm512_storeu_pd(s.as_mut_ptr(), value);
        }
    }

    /// Pairs of values of lanes 0..8 (`pair(lane)`) as two registers: [pair 0, ..., pair 3]
    /// and [pair 4, ..., pair 7].
    #[inline(always)]
    unsafe fn quads(pair: impl Fn(usize) -> __m128d) -> (__m512d, __m512d) {
        unsafe {
            let quad = |first: usize| {
                let low = _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(pair(first)), pair(first + 1));
                let high =
                    _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(pair(first + 2)), pair(first + 3));
                _mm512_insertf64x4::<1>(_mm512_castpd256_pd512(low), high)
            };
            (quad(0), quad(4))
        }
    }

    /// The 8 x 8 transpose: out[k][l] = rows[l][k].
    #[inline(always)]
    unsafe fn transpose(r: [__m512d; 8]) -> [__m512d; 8] {
        unsafe {
            // Pairs of rows interleaved: t[2j] holds the even elements of rows 2j, 2j + 1.
            let t: [__m512d; 8] = core::array::from_fn(|i| {
                let (a, b) = (r[2 * (i / 2)], r[2 * (i / 2) + 1]);
                if i % 2 == 0 { _mm512_unpacklo_pd(a, b) } else { _mm512_unpackhi_pd(a, b) }
            });
            let low_pairs = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
            let high_pairs = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
            // Four rows each: elements k and k + 4 of rows 0..4 (or 4..8).
            let q = |a: __m512d, b: __m512d, idx: __m512i| _mm512_permutex2var_pd(a, idx, b);
            let s = [
                q(t[0], t[2], low_pairs),  // 0, 4 of rows 0..4
                q(t[1], t[3], low_pairs),  // 1, 5
                q(t[0], t[2], high_pairs), // 2, 6
                q(t[1], t[3], high_pairs), // 3, 7
                q(t[4], t[6], low_pairs),
                q(t[5], t[7], low_pairs),
                q(t[4], t[6], high_pairs),
                q(t[5], t[7], high_pairs),
            ];
            let low_half = _mm512_set_epi64(11, 10, 9, 8, 3, 2, 1, 0);
            let high_half = _mm512_set_epi64(15, 14, 13, 12, 7, 6, 5, 4);
            [
                q(s[0], s[4], low_half),
                q(s[1], s[5], low_half),
                q(s[2], s[6], low_half),
                q(s[3], s[7], low_half),
                q(s[0], s[4], high_half),
                q(s[1], s[5], high_half),
                q(s[2], s[6], high_half),
                q(s[3], s[7], high_half),
            ]
        }
    }
}

/// The batch draw on AVX2, 4 lanes: the same operations as `Table::piece_one_step` and
/// `Piece::eval_estrin` (the same bits). AVX2 has no double to 64-bit integer conversion, so
/// the guide cell is the bits of floor(position) + 2^52; the coefficients of the four lanes'
/// pieces are loaded as rows and transposed in registers (two 4 x 4 blocks).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{GUIDE_PIECE_MASK, INV_N, Piece, Table};
    use core::arch::x86_64::*;
    use core::mem::offset_of;

    /// 2^52: floor(p) + 2^52 holds floor(p) in its low mantissa bits for 0 <= p < 2^52.
    const TWO_POW_52: f64 = 4_503_599_627_370_496.0;

    /// `w[l]` = sqrt(clamp(u[l], 0, 1)) and `piece[l]` = the piece holding it, l < 4.
    ///
    /// # Safety
    /// AVX2 must be available; the slices hold at least 4 values; `table` has `single_step`.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn locate_4(table: &Table<INV_N>, u: &[f64], w_out: &mut [f64], piece_out: &mut [u64]) {
        unsafe {
            let zero = _mm256_setzero_pd();
            // clamp(u, 0, 1) with NaN kept (max and min return their second operand on NaN).
            let u = _mm256_loadu_pd(u.as_ptr());
            let w = _mm256_sqrt_pd(_mm256_min_pd(_mm256_set1_pd(1.0), _mm256_max_pd(zero, u)));
            // The guide cell: the truncated position, 0 below lo or for NaN, at most cells - 1
            // (clamped before the truncation, which commutes with it at an integer bound).
            let position =
                _mm256_mul_pd(_mm256_sub_pd(w, _mm256_set1_pd(table.lo)), _mm256_set1_pd(table.guide_scale));
            let last_cell = _mm256_set1_pd((table.guide.len() - 1) as f64);
            let position = _mm256_min_pd(_mm256_max_pd(position, zero), last_cell);
            let shifted = _mm256_add_pd(_mm256_floor_pd(position), _mm256_set1_pd(TWO_POW_52));
            let cell = _mm256_sub_epi64(
                _mm256_castpd_si256(shifted),
                _mm256_set1_epi64x(TWO_POW_52.to_bits() as i64),
            );
            // The piece: the cell's guide entry, one further where w is beyond its right end.
            let entry = _mm256_i64gather_epi64::<8>(table.guide.as_ptr().cast(), cell);
            let mask = _mm256_set1_epi64x(GUIDE_PIECE_MASK as i64);
            let first = _mm256_and_si256(entry, mask);
            let guide_right = _mm256_castsi256_pd(_mm256_andnot_si256(mask, entry));
            // All ones (-1) where beyond: subtracting it adds one.
            let beyond = _mm256_castpd_si256(_mm256_cmp_pd::<_CMP_GT_OQ>(w, guide_right));
            let piece = _mm256_sub_epi64(first, beyond);
            let last_piece = _mm256_set1_epi64x(table.pieces.len() as i64 - 1);
            let piece = _mm256_blendv_epi8(piece, last_piece, _mm256_cmpgt_epi64(piece, last_piece));
            _mm256_storeu_pd(w_out.as_mut_ptr(), w);
            _mm256_storeu_si256(piece_out.as_mut_ptr().cast(), piece);
        }
    }

    /// `s[l]` = the draw at w[l] on `piece[l]`, l < 4.
    ///
    /// # Safety
    /// AVX2 must be available; the slices hold at least 4 values; the pieces are indices of
    /// `table.pieces`.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn evaluate_4(
        table: &Table<INV_N>,
        s_max: f64,
        w: &[f64],
        piece: &[u64],
        s: &mut [f64],
    ) {
        unsafe {
            let zero = _mm256_setzero_pd();
            let w = _mm256_loadu_pd(w.as_ptr());
            let piece_of = |lane: usize| table.pieces.get_unchecked(piece[lane] as usize);
            // (center, inv_half_width) of each lane's piece as one 128-bit load.
            const _: () =
                assert!(offset_of!(Piece<INV_N>, inv_half_width) == offset_of!(Piece<INV_N>, center) + 8);
            let pairs = |first: usize| {
                let low = _mm_loadu_pd(&piece_of(first).center);
                _mm256_insertf128_pd::<1>(
                    _mm256_castpd128_pd256(low),
                    _mm_loadu_pd(&piece_of(first + 1).center),
                )
            };
            let (lanes_0_1, lanes_2_3) = (pairs(0), pairs(2));
            // unpack gives lanes (0, 2, 1, 3); the permutation puts them in order.
            let center = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_unpacklo_pd(lanes_0_1, lanes_2_3));
            let inv_half_width =
                _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_unpackhi_pd(lanes_0_1, lanes_2_3));
            let rows = |offset: usize| -> [__m256d; 4] {
                core::array::from_fn(|lane| _mm256_loadu_pd(piece_of(lane).coefficients.as_ptr().add(offset)))
            };
            let [c0, c1, c2, c3] = transpose(rows(0));
            let [c4, c5, c6, c7] = transpose(rows(4));
            // Estrin, every product rounded separately (as Piece::eval_estrin).
            let t = _mm256_mul_pd(_mm256_sub_pd(w, center), inv_half_width);
            let t2 = _mm256_mul_pd(t, t);
            let t4 = _mm256_mul_pd(t2, t2);
            let pair = |a: __m256d, b: __m256d| _mm256_add_pd(a, _mm256_mul_pd(b, t));
            let low = _mm256_add_pd(pair(c0, c1), _mm256_mul_pd(pair(c2, c3), t2));
            let high = _mm256_add_pd(pair(c4, c5), _mm256_mul_pd(pair(c6, c7), t2));
            let value = _mm256_add_pd(low, _mm256_mul_pd(high, t4));
            // clamp(value, 0, s_max) with NaN kept.
            let value = _mm256_min_pd(_mm256_set1_pd(s_max), _mm256_max_pd(zero, value));
            _mm256_storeu_pd(s.as_mut_ptr(), value);
        }
    }

    /// The 4 x 4 transpose: out[k][l] = rows[l][k].
    #[inline(always)]
    unsafe fn transpose(r: [__m256d; 4]) -> [__m256d; 4] {
        unsafe {
            // (r0[0], r1[0], r0[2], r1[2]) and so on, then 128-bit halves exchanged.
            let (t0, t1) = (_mm256_unpacklo_pd(r[0], r[1]), _mm256_unpackhi_pd(r[0], r[1]));
            let (t2, t3) = (_mm256_unpacklo_pd(r[2], r[3]), _mm256_unpackhi_pd(r[2], r[3]));
            [
                _mm256_permute2f128_pd::<0x20>(t0, t2),
                _mm256_permute2f128_pd::<0x20>(t1, t3),
                _mm256_permute2f128_pd::<0x31>(t0, t2),
                _mm256_permute2f128_pd::<0x31>(t1, t3),
            ]
        }
    }
}

/// The batch draw on NEON (aarch64's Advanced SIMD, in its base architecture), 2 lanes a
/// register and two registers a step: the same operations as `Table::piece_one_step` and
/// `Piece::eval_estrin` (the same bits), in two passes over blocks of draws as on AVX2. NEON
/// has no gather: each lane's guide entry is a scalar load, and each lane's centre,
/// 1 / half-width and coefficients (80 contiguous bytes of its piece) are loaded as rows and
/// paired across the two lanes with `zip1`/`zip2`.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod neon {
    use super::{GUIDE_PIECE_MASK, INV_N, Piece, Table};
    use core::arch::aarch64::*;
    use core::mem::offset_of;

    /// Draws a step: two registers of 2 lanes.
    pub(super) const STEP: usize = 4;
    /// Steps a block: each pass goes over 256 draws.
    const BLOCK_STEPS: usize = 64;

    /// `s[i]` = the draw at `u[i]` for a table with `single_step` (`piece_one_step`, then
    /// `eval_estrin` clamped to [0, s_max]).
    ///
    /// # Safety
    /// NEON must be available (it is wherever the target enables it).
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn sample_each(
        table: &Table<INV_N>,
        s_max: f64,
        u: &[[f64; STEP]],
        s: &mut [[f64; STEP]],
    ) {
        // First every draw's w and piece, then the polynomials: each pass is a short chain of
        // dependent steps, so that the core overlaps many draws.
        let (mut w, mut piece) = ([[0.0; STEP]; BLOCK_STEPS], [[0u64; STEP]; BLOCK_STEPS]);
        for (u, s) in u.chunks(BLOCK_STEPS).zip(s.chunks_mut(BLOCK_STEPS)) {
            for ((u, w), piece) in u.iter().zip(&mut w).zip(&mut piece) {
                locate(table, u, w, piece);
            }
            for ((s, w), piece) in s.iter_mut().zip(&w).zip(&piece) {
                // SAFETY: locate gave the pieces, indices of table.pieces.
                unsafe { evaluate(table, s_max, w, piece, s) };
            }
        }
    }

    /// `w[l]` = sqrt(clamp(u[l], 0, 1)) and `piece[l]` = the index of the piece holding it
    /// (`piece_one_step`: at most one past the guide entry's, at most the last).
    #[inline]
    #[target_feature(enable = "neon")]
    fn locate(table: &Table<INV_N>, u: &[f64; STEP], w_out: &mut [f64; STEP], piece_out: &mut [u64; STEP]) {
        let last_cell = vdupq_n_f64((table.guide.len() - 1) as f64);
        let mask = vdupq_n_u64(GUIDE_PIECE_MASK);
        let last_piece = vdupq_n_u64(table.pieces.len() as u64 - 1);
        for half in 0..STEP / 2 {
            // SAFETY: `u` holds the lanes 2 half, 2 half + 1 read.
            let u = unsafe { vld1q_f64(u[2 * half..].as_ptr()) };
            let w = vsqrtq_f64(clamp(u, 1.0));
            // The guide cell: the truncated position, 0 below lo or for NaN, at most cells - 1
            // (clamped before the truncation, which commutes with it at an integer bound;
            // fcvtzu truncates and gives 0 for NaN and negative numbers, as `as usize`).
            let position = vmulq_f64(vsubq_f64(w, vdupq_n_f64(table.lo)), vdupq_n_f64(table.guide_scale));
            let cell = vcvtq_u64_f64(vminq_f64(position, last_cell));
            // SAFETY: cell <= cells - 1 (the clamp above; fmin keeps a NaN, which fcvtzu
            // turns into 0), an index of the guide.
            let entry = unsafe {
                let entry = |cell: u64| vcreate_u64(*table.guide.get_unchecked(cell as usize));
                vcombine_u64(entry(vgetq_lane_u64::<0>(cell)), entry(vgetq_lane_u64::<1>(cell)))
            };
            // The piece: the cell's guide entry, one further where w is beyond its right end
            // (both from one packed word, see unpack_guide_entry), at most the last one.
            let first = vandq_u64(entry, mask);
            let guide_right = vreinterpretq_f64_u64(vbicq_u64(entry, mask));
            // All ones (-1) where beyond: subtracting it adds one.
            let piece = vsubq_u64(first, vcgtq_f64(w, guide_right));
            let piece = vbslq_u64(vcgtq_u64(piece, last_piece), last_piece, piece);
            // SAFETY: the outputs hold the lanes 2 half, 2 half + 1 written.
            unsafe {
                vst1q_f64(w_out[2 * half..].as_mut_ptr(), w);
                vst1q_u64(piece_out[2 * half..].as_mut_ptr(), piece);
            }
        }
    }

    /// `s[l]` = the draw at w[l] on piece `piece[l]`: t = (w - center) inv_half_width, then
    /// Estrin's scheme with every product rounded separately (as `Piece::eval_estrin`), clamped
    /// to [0, s_max].
    ///
    /// # Safety
    /// The pieces are indices of `table.pieces`.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn evaluate(
        table: &Table<INV_N>,
        s_max: f64,
        w: &[f64; STEP],
        piece: &[u64; STEP],
        s: &mut [f64; STEP],
    ) {
        // From the centre on, a piece is 10 contiguous binary64 values.
        const CENTER: usize = offset_of!(Piece<INV_N>, center);
        const _: () = assert!(
            offset_of!(Piece<INV_N>, inv_half_width) == CENTER + 8
                && offset_of!(Piece<INV_N>, coefficients) == CENTER + 16
        );
        // Lane l's (center, inv_half_width), (c0, c1), ..., (c6, c7).
        let rows = |lane: usize| -> [float64x2_t; 5] {
            // SAFETY: piece[lane] is in table.pieces (the caller's promise); the 80 bytes
            // read from the centre on lie in that piece (the layout assertion above), and the
            // pointer comes from a reference to the whole piece.
            unsafe {
                let piece = table.pieces.get_unchecked(piece[lane] as usize);
                let center = core::ptr::from_ref(piece).cast::<u8>().add(CENTER).cast::<f64>();
                let float64x2x4_t(a, b, c, d) = vld1q_f64_x4(center);
                [a, b, c, d, vld1q_f64(center.add(8))]
            }
        };
        for half in 0..STEP / 2 {
            let (a, b) = (rows(2 * half), rows(2 * half + 1));
            // Element k of both lanes: (a[k], b[k]).
            let lanes = |k: usize| {
                let (row, second) = (k / 2, k % 2 == 1);
                if second { vzip2q_f64(a[row], b[row]) } else { vzip1q_f64(a[row], b[row]) }
            };
            let (center, inv_half_width) = (lanes(0), lanes(1));
            let c = |k: usize| lanes(k + 2);
            // SAFETY: `w` holds the lanes 2 half, 2 half + 1 read.
            let w = unsafe { vld1q_f64(w[2 * half..].as_ptr()) };
            let t = vmulq_f64(vsubq_f64(w, center), inv_half_width);
            let t2 = vmulq_f64(t, t);
            let t4 = vmulq_f64(t2, t2);
            let pair = |a: float64x2_t, b: float64x2_t| vaddq_f64(a, vmulq_f64(b, t));
            let low = vaddq_f64(pair(c(0), c(1)), vmulq_f64(pair(c(2), c(3)), t2));
            let high = vaddq_f64(pair(c(4), c(5)), vmulq_f64(pair(c(6), c(7)), t2));
            let value = vaddq_f64(low, vmulq_f64(high, t4));
            // SAFETY: `s` holds the lanes 2 half, 2 half + 1 written.
            unsafe { vst1q_f64(s[2 * half..].as_mut_ptr(), clamp(value, s_max)) };
        }
    }

    /// clamp(x, 0, upper) for upper > 0 as `f64::clamp` (NaN kept, -0 kept): zero where x < 0,
    /// then fmin (which keeps a NaN, and meets no tie of signed zeros as upper > 0). `fmax`
    /// would turn -0 into +0.
    #[inline]
    #[target_feature(enable = "neon")]
    fn clamp(x: float64x2_t, upper: f64) -> float64x2_t {
        let x = vbslq_f64(vcltzq_f64(x), vdupq_n_f64(0.0), x);
        vminq_f64(vdupq_n_f64(upper), x)
    }
}

/// Bits of a packed guide entry that hold the piece (see [`Table::guide`]).
const GUIDE_PIECE_MASK: u64 = 0xffff;

/// A guide entry: the piece in the low 16 bits, and above them the bits of `right` (> 0) with
/// those 16 cleared: `right` rounded toward zero by less than 2^-36 of itself.
fn pack_guide_entry(piece: usize, right: f64) -> u64 {
    (right.to_bits() & !GUIDE_PIECE_MASK) | piece as u64
}

/// The (piece, right end) of a packed guide entry.
#[inline(always)]
fn unpack_guide_entry(entry: u64) -> (usize, f64) {
    ((entry & GUIDE_PIECE_MASK) as usize, f64::from_bits(entry & !GUIDE_PIECE_MASK))
}

/// A piecewise polynomial over [lo, hi] with a uniform guide table to find the piece.
#[derive(Clone, Debug)]
struct Table<const N: usize> {
    lo: f64,
    guide_scale: f64,
    /// Per guide cell, its first piece and that piece's right end, packed in one word
    /// ([`pack_guide_entry`]): the batch draw finds a piece with one load (a gather) per draw.
    guide: Vec<u64>,
    pieces: Vec<Piece<N>>,
    /// Every guide cell holds at most two pieces: one step of search at most.
    single_step: bool,
}

impl<const N: usize> Table<N> {
    /// `pieces` cover [lo, hi] in order without gaps.
    fn new(lo: f64, hi: f64, pieces: Vec<Piece<N>>) -> Self {
        // The adaptive builders always give pieces (piece_one_step relies on it), at most
        // MAX_PIECES (a packed guide entry holds 16 bits of piece).
        assert!(!pieces.is_empty(), "a table needs at least one piece");
        assert!(pieces.len() <= GUIDE_PIECE_MASK as usize + 1, "a packed guide entry holds 16 bits of piece");
        // Enough cells that a cell rarely holds more than two pieces (the piece search then
        // takes at most one step, well predicted): one per narrowest piece, at least 8 per
        // piece, at most 16384 (64 KiB) unless there are more pieces than that.
        let mut left = lo;
        let mut narrowest = hi - lo;
        for piece in &pieces {
            narrowest = narrowest.min(piece.right - left);
            left = piece.right;
        }
        let by_width = libm::ceil((hi - lo) / narrowest).min(16384.0) as usize;
        let cells = by_width.max(8 * pieces.len());
        let guide_scale = cells as f64 / (hi - lo);
        let mut first_pieces = Vec::with_capacity(cells);
        let mut i = 0;
        for cell in 0..cells {
            let x = lo + cell as f64 / guide_scale;
            while i + 1 < pieces.len() && pieces[i].right <= x {
                i += 1;
            }
            first_pieces.push(i);
        }
        // A cell's last point is below the next cell's first: the piece there is at most one
        // past the cell's guide entry when the next entry is.
        let single_step = first_pieces.windows(2).all(|w| w[1] - w[0] <= 1)
            && pieces.len() - 1 - *first_pieces.last().unwrap_or(&0) <= 1;
        let guide = first_pieces.iter().map(|&i| pack_guide_entry(i, pieces[i].right)).collect();
        Table { lo, guide_scale, guide, pieces, single_step }
    }

    /// The piece of the draw at x for a table with `single_step`: the cell's guide piece, or
    /// the next one where x is beyond the guide entry's right end (rounded toward zero by less
    /// than 2^-36: within that of a join, x may get the piece to the right, whose polynomial is
    /// as exact there). Branch-free, and without bounds checks so that a loop over it
    /// vectorises (gathers).
    #[inline(always)]
    fn piece_one_step(&self, x: f64) -> &Piece<N> {
        let last = self.pieces.len() - 1;
        let cell = (((x - self.lo) * self.guide_scale) as usize).min(self.guide.len() - 1);
        // SAFETY: the guide is non-empty (Table::new), so cell is in it, and the piece index
        // is at most `last` < pieces.len().
        unsafe {
            let (first, right) = unpack_guide_entry(*self.guide.get_unchecked(cell));
            self.pieces.get_unchecked((first + usize::from(x > right)).min(last))
        }
    }

    /// The piece of the draw at x: [`Self::piece_one_step`] where the table has
    /// `single_step`, else [`Self::piece`].
    #[inline(always)]
    fn draw_piece(&self, x: f64) -> &Piece<N> {
        if self.single_step { self.piece_one_step(x) } else { self.piece(x) }
    }

    /// The piece holding x (the first or last one outside [lo, hi]).
    #[inline(always)]
    fn piece(&self, x: f64) -> &Piece<N> {
        // `as usize` saturates: below lo (and NaN) gives cell 0.
        let cell = (((x - self.lo) * self.guide_scale) as usize).min(self.guide.len() - 1);
        let mut i = unpack_guide_entry(self.guide[cell]).0;
        while x > self.pieces[i].right && i + 1 < self.pieces.len() {
            i += 1;
        }
        &self.pieces[i]
    }

    #[inline(always)]
    fn eval(&self, x: f64) -> f64 {
        self.piece(x).eval(x)
    }
}

/// Builds pieces over [breaks[0], breaks[last]] adaptively, starting from the pieces between
/// the (increasing) `breaks`: a piece is halved until its interpolant matches `f` at the N - 1
/// points halfway (in angle) between its Lobatto points to `tol` and, with `monotone`, is
/// nondecreasing along those points, or until `MAX_DEPTH` halvings (or `MAX_PIECES` pieces in
/// all, a guard against a tolerance below the noise of `f`).
fn adaptive_pieces<const N: usize>(
    breaks: &[f64],
    tol: f64,
    monotone: bool,
    f: &mut dyn FnMut(f64) -> f64,
) -> Vec<Piece<N>> {
    const MAX_DEPTH: u32 = 32;
    const MAX_PIECES: usize = 4096;
    let mut out = Vec::new();
    let mut stack: Vec<(f64, f64, u32)> = breaks.windows(2).rev().map(|w| (w[0], w[1], 0)).collect();
    while let Some((left, right, depth)) = stack.pop() {
        let mut values = [0.0; N];
        for (j, v) in values.iter_mut().enumerate() {
            *v = f(lobatto_point(left, right, j, N));
        }
        let piece = Piece::from_lobatto(left, right, &values);
        let mut good = true;
        let mut previous = values[0];
        for j in 0..N - 1 {
            let half = 0.5 * (right - left);
            let x = left + half * (1.0 - cos(PI * (j as f64 + 0.5) / (N - 1) as f64));
            let p = piece.eval(x);
            let close = (p - f(x)).abs() <= tol; // false for NaN
            if !close || (monotone && (p < previous || values[j + 1] < p)) {
                good = false;
                break;
            }
            previous = values[j + 1];
        }
        if good || depth >= MAX_DEPTH || out.len() + stack.len() >= MAX_PIECES {
            out.push(piece);
        } else {
            let middle = 0.5 * (left + right);
            stack.push((middle, right, depth + 1));
            stack.push((left, middle, depth + 1));
        }
    }
    out
}

/// The inverse table s(w), w = sqrt(u), of the conditional CDF u = s^2 G(s) / fraction.
fn inverse_table(forward: &Table<FWD_N>, s_max: f64, fraction: f64) -> Table<INV_N> {
    // w(s) = s sqrt(G(s) / fraction) is increasing from 0 to 1 and linear at s = 0.
    let w_of_s = |s: f64| s * sqrt((forward.eval(s) / fraction).max(0.0));
    let mut s_of_w = |w: f64| -> f64 {
        if w <= 0.0 {
            return 0.0;
        }
        if w >= 1.0 {
            return s_max;
        }
        // Illinois (regula falsi with halving) on the bracket [0, s_max], then bisection to
        // the last bit if it has not converged.
        let (mut a, mut b) = (0.0, s_max);
        let (mut fa, mut fb) = (-w, 1.0 - w);
        let mut side: i32 = 0;
        for _ in 0..100 {
            if b - a <= 4.0 * f64::EPSILON * b {
                break;
            }
            let m = if side.abs() > 2 { 0.5 * (a + b) } else { (a * fb - b * fa) / (fb - fa) };
            let m = if m > a && m < b { m } else { 0.5 * (a + b) };
            let fm = w_of_s(m) - w;
            if fm < 0.0 {
                a = m;
                fa = fm;
                if side < 0 {
                    fb *= 0.5;
                }
                side = if side < 0 { side - 1 } else { -1 };
            } else {
                b = m;
                fb = fm;
                if side > 0 {
                    fa *= 0.5;
                }
                side = if side > 0 { side + 1 } else { 1 };
            }
            if fm == 0.0 {
                return m;
            }
        }
        0.5 * (a + b)
    };
    // Start from the images of the CDF table's pieces: within each, S(w) is analytic.
    let mut breaks = vec![0.0];
    for piece in &forward.pieces {
        let w = w_of_s(piece.right);
        if piece.right < s_max && w > *breaks.last().unwrap() && w < 1.0 {
            breaks.push(w);
        }
    }
    breaks.push(1.0);
    let pieces = adaptive_pieces::<INV_N>(&breaks, 1e-11 * s_max, true, &mut s_of_w);
    Table::new(0.0, 1.0, pieces)
}

// ---------------------------------------------------------------------------------------------
// Quadrature helpers.

/// integral_a^b g(x) dx by Gauss-Legendre in t, x = (a + b)/2 - (b - a)/2 cos t, t in [0, pi]:
/// smooth for integrands with square-root end points.
fn integrate_cos_substituted(a: f64, b: f64, rule: &[(f64, f64)], mut g: impl FnMut(f64) -> f64) -> f64 {
    let (m, h) = (0.5 * (a + b), 0.5 * (b - a));
    let mut sum = 0.0;
    for &(x, w) in rule {
        let t = 0.5 * PI * (1.0 + x);
        sum += w * g(m - h * cos(t)) * h * libm::sin(t);
    }
    0.5 * PI * sum
}

/// integral_a^b g(x) dx by Gauss-Legendre.
fn integrate_gl(a: f64, b: f64, rule: &[(f64, f64)], mut g: impl FnMut(f64) -> f64) -> f64 {
    let (m, h) = (0.5 * (a + b), 0.5 * (b - a));
    rule.iter().map(|&(x, w)| w * g(m + h * x)).sum::<f64>() * h
}

// ---------------------------------------------------------------------------------------------
// Case & Bhattacharya (1998).

/// The CB98 surface density without its amplitude: sin(pi r / r0 + theta0) exp(-beta r), zero
/// beyond the edge.
fn cb98_density(r: f64) -> f64 {
    if r >= CB98_EDGE_KPC {
        return 0.0;
    }
    libm::sin(PI * r / CB98_R0_KPC + CB98_THETA0) * exp(-CB98_BETA_PER_KPC * r)
}

/// integral_0^x r f(r) dr (f smooth on [0, edge]).
fn cb98_ring_integral(x: f64, rule: &[(f64, f64)]) -> f64 {
    integrate_gl(0.0, x.min(CB98_EDGE_KPC), rule, |r| r * cb98_density(r))
}

/// The angle alpha in [0, pi] such that the points of the circle of radius r = rs + x about
/// the Galactic centre within s of an observer at distance `rs` from it are those within alpha
/// of the observer's direction: cos alpha = (r^2 + rs^2 - s^2) / (2 r rs), in factored form
/// (x given apart, for accuracy at small s).
fn window_half_angle(x: f64, rs: f64, s: f64) -> f64 {
    let one_minus = ((s - x) * (s + x)).max(0.0);
    let one_plus = ((2.0 * rs + x - s) * (2.0 * rs + x + s)).max(0.0);
    2.0 * libm::atan2(sqrt(one_minus), sqrt(one_plus))
}

/// The CB98 quadrature rule and the integral of f over the plane.
fn cb98_rule() -> (Vec<(f64, f64)>, f64) {
    let rule = gauss_legendre(48);
    let total = 2.0 * PI * cb98_ring_integral(CB98_EDGE_KPC, &rule);
    (rule, total)
}

/// P(s' < s) for a CB98 source of the whole Galaxy (to about 1e-15), with `rule` and `total`
/// from [`cb98_rule`].
fn cb98_cdf(s: f64, rule: &[(f64, f64)], total: f64) -> f64 {
    if s <= 0.0 {
        return 0.0;
    }
    let rs = R_SUN_KPC;
    // Rings entirely within s (when s > rs), then the rings cut by the circle of radius s.
    let mut sum = if s > rs { 2.0 * PI * cb98_ring_integral(s - rs, rule) } else { 0.0 };
    let a = (rs - s).abs();
    let c = (rs + s).min(CB98_EDGE_KPC);
    if a < c {
        // In x = r - rs (exact end points -s, s when s < rs and the disc edge is not reached).
        let integrand = |x: f64| {
            let r = rs + x;
            2.0 * r * cb98_density(r) * window_half_angle(x, rs, s)
        };
        let x_end = if rs + s < CB98_EDGE_KPC { s } else { CB98_EDGE_KPC - rs };
        if s < rs && a >= 0.25 * c {
            return (sum + integrate_cos_substituted(-s, x_end, rule, integrand)) / total;
        }
        // Near s = rs the window angle changes on the scale a near r = a: grade geometrically
        // (ratio 4).
        let mut left = a;
        let mut right = if a > 0.0 { (4.0 * a).min(c) } else { c };
        loop {
            let (x0, x1) = (left - rs, if right == c { x_end } else { right - rs });
            // (The substitution also removes the square root at r = rs + s.)
            sum += integrate_cos_substituted(x0, x1, rule, integrand);
            if right >= c {
                break;
            }
            left = right;
            right = (4.0 * right).min(c);
            if c - right < 0.5 * (right - left) {
                right = c;
            }
        }
    }
    sum / total
}

/// G(s) = P(s' < s) / s^2 for CB98 on [0, s_max], adaptively to 1e-13 of G(0), with piece
/// boundaries at the distances where G is not analytic: s = r_sun (the circle passes the
/// Galactic centre, where f(|x|) has a cone) and s = edge - r_sun (it reaches the disc edge).
fn cb98_forward_table(s_max: f64) -> Table<FWD_N> {
    let (rule, total) = cb98_rule();
    let g0 = PI * cb98_density(R_SUN_KPC) / total;
    let mut g = |s: f64| if s <= 0.0 { g0 } else { cb98_cdf(s, &rule, total) / (s * s) };
    let mut breaks: Vec<f64> = (0..=8).map(|i| s_max * i as f64 / 8.0).collect();
    let near = 1e-6 * s_max;
    for special in [R_SUN_KPC, CB98_EDGE_KPC - R_SUN_KPC] {
        if special > near && special < s_max - near {
            breaks.push(special);
        }
    }
    breaks.sort_by(f64::total_cmp);
    breaks.dedup_by(|later, earlier| *later - *earlier < near && *later < s_max);
    let pieces = adaptive_pieces::<FWD_N>(&breaks, 1e-13 * g0, false, &mut g);
    Table::new(0.0, s_max, pieces)
}

// ---------------------------------------------------------------------------------------------
// Spiral arms.

/// Number of pieces of [`SPIRAL_G_TABLE`] over [0, [`SPIRAL_TABLE_HI_KPC`]].
const SPIRAL_TABLE_PIECES: usize = 96;
/// Upper end of [`SPIRAL_G_TABLE`] [kpc].
const SPIRAL_TABLE_HI_KPC: f64 = 24.0;

/// The spiral model's G(s) = P(s' < s) / s^2 [kpc^-2] from the stored table.
fn spiral_forward_table() -> Table<FWD_N> {
    let width = SPIRAL_TABLE_HI_KPC / SPIRAL_TABLE_PIECES as f64;
    let pieces = (0..SPIRAL_TABLE_PIECES)
        .map(|i| {
            let mut values = [0.0; FWD_N];
            values.copy_from_slice(&SPIRAL_G_TABLE[i * (FWD_N - 1)..(i + 1) * (FWD_N - 1) + 1]);
            let right =
                if i + 1 == SPIRAL_TABLE_PIECES { SPIRAL_TABLE_HI_KPC } else { (i + 1) as f64 * width };
            Piece::from_lobatto(i as f64 * width, right, &values)
        })
        .collect();
    Table::new(0.0, SPIRAL_TABLE_HI_KPC, pieces)
}

/// The points of [`SPIRAL_G_TABLE`], in order.
#[cfg(test)]
fn spiral_table_points() -> Vec<f64> {
    let width = SPIRAL_TABLE_HI_KPC / SPIRAL_TABLE_PIECES as f64;
    let mut points = vec![0.0];
    for i in 0..SPIRAL_TABLE_PIECES {
        let right = if i + 1 == SPIRAL_TABLE_PIECES { SPIRAL_TABLE_HI_KPC } else { (i + 1) as f64 * width };
        for j in 1..FWD_N {
            points.push(lobatto_point(i as f64 * width, right, j, FWD_N));
        }
    }
    points
}

/// ln P(rho > CUT sigma) < -38 for rho = |N(0, sigma)|: the blur is cut at 8.5 sigma.
#[cfg(test)]
const BLUR_CUT: f64 = 8.5;

/// P(|d e + B| < s) for a blur B of length |N(0, sigma)| in a uniform direction: with the
/// direction integrated in closed form (the fraction of the circle of radius rho about the
/// centroid that lies within s of the observer), then the length by Gauss-Legendre quadrature
/// in a variable that removes the square-root end points.
#[cfg(test)]
fn blur_cdf(d: f64, sigma: f64, s: f64, rule: &[(f64, f64)]) -> f64 {
    let cut = BLUR_CUT * sigma;
    let mut h = if d < s { libm::erf((s - d).min(cut) / (sigma * core::f64::consts::SQRT_2)) } else { 0.0 };
    let a = (d - s).abs();
    let b = (d + s).min(cut);
    if a < b && d > 0.0 {
        let norm = sqrt(2.0 / PI) / sigma;
        h += integrate_cos_substituted(a, b, rule, |rho| {
            let one_minus = ((rho + d - s) * (rho + d + s)).max(0.0);
            let one_plus = ((s - rho + d) * (s + rho - d)).max(0.0);
            let fraction = 1.0 - (2.0 / PI) * libm::atan2(sqrt(one_minus), sqrt(one_plus));
            norm * exp(-0.5 * (rho / sigma) * (rho / sigma)) * fraction
        });
    }
    h
}

/// Nodes of the radial integral of the spiral model: (r, p(r) dr) with p(r) = r f(r) / norm.
#[cfg(test)]
fn spiral_radial_nodes(pieces: usize, per_piece: usize) -> Vec<(f64, f64)> {
    let rule = gauss_legendre(per_piece);
    let width = CB98_EDGE_KPC / pieces as f64;
    let mut nodes = Vec::with_capacity(pieces * per_piece);
    for i in 0..pieces {
        let (m, h) = ((i as f64 + 0.5) * width, 0.5 * width);
        for &(x, w) in &rule {
            let r = m + h * x;
            nodes.push((r, w * h * r * cb98_density(r)));
        }
    }
    let norm: f64 = nodes.iter().map(|n| n.1).sum();
    nodes.iter().map(|&(r, w)| (r, w / norm)).collect()
}

/// The arc of arm `arm` at radius r: its start relative to the Sun's direction, in [0, 2 pi),
/// and its length L = 2 pi exp(-0.35 r).
#[cfg(test)]
fn spiral_arc(arm: &SpiralArm, r: f64) -> (f64, f64) {
    let theta = arm.k * crate::math::ln(r / arm.r0_kpc) + arm.theta0 - THETA_SUN;
    let start = theta - 2.0 * PI * libm::floor(theta / (2.0 * PI));
    (start.clamp(0.0, 2.0 * PI), 2.0 * PI * exp(-FGK06_ANGLE_CORRECTION_PER_KPC * r))
}

/// Calls `visit(u, v)` for the pieces [u, v] of [0, pi] that the arc [start, start + length]
/// covers, folded by the symmetry phi -> 2 pi - phi (the distance to the Sun depends on |phi|).
#[cfg(test)]
fn fold_arc(start: f64, length: f64, mut visit: impl FnMut(f64, f64)) {
    let end = start + length;
    for m in 0..4 {
        let (lo, hi) = (m as f64 * PI, (m + 1) as f64 * PI);
        let (x, y) = (start.max(lo), end.min(hi));
        if x < y {
            if m % 2 == 0 {
                visit(x - lo, y - lo);
            } else {
                visit(hi - y, hi - x);
            }
        }
    }
}

/// The angle phi in [0, pi] from the Sun's direction at which the ring of radius r is at
/// distance d from the Sun.
#[cfg(test)]
fn angle_at_distance(r: f64, d: f64) -> f64 {
    let (dmin, dmax) = ((r - R_SUN_KPC).abs(), r + R_SUN_KPC);
    if d <= dmin {
        return 0.0;
    }
    if d >= dmax {
        return PI;
    }
    2.0 * libm::atan2(sqrt((d - dmin) * (d + dmin)), sqrt((dmax - d) * (dmax + d)))
}

/// The distance from the Sun of the point of the ring of radius r at angle phi from the Sun's
/// direction.
#[cfg(test)]
fn distance_at_angle(r: f64, phi: f64) -> f64 {
    let half = libm::sin(0.5 * phi);
    sqrt((r - R_SUN_KPC) * (r - R_SUN_KPC) + 4.0 * r * R_SUN_KPC * half * half)
}

/// Quadrature orders of [`spiral_cdf_reference`].
#[derive(Clone, Copy, Debug)]
#[cfg(test)]
struct SpiralQuadrature {
    radial_pieces: usize,
    radial_per_piece: usize,
    angle: usize,
    blur: usize,
}

#[cfg(test)]
const SPIRAL_QUADRATURE: SpiralQuadrature =
    SpiralQuadrature { radial_pieces: 128, radial_per_piece: 8, angle: 16, blur: 32 };

/// P(s' < s) for a spiral-model source of the whole Galaxy, by deterministic quadrature:
///
/// P = sum over arms of 1/4 integral dr p(r) (1/L) integral over the arc dphi H(D, 0.07 r, s),
///
/// p(r) the CB98 radial density, the arc [theta_arm(r), theta_arm(r) + L], L = 2 pi exp(-0.35
/// r), D the distance of the arc's point from the Sun, H = [`blur_cdf`]. H is 1 for D < s - 8.5
/// sigma and 0 for D > s + 8.5 sigma (exactly, in closed form over the arc), and in between is
/// integrated by Gauss-Legendre rules split at D = s, where H has a logarithmic singularity in
/// its derivative, graded towards it (phi = phi* +- (width) t^3). The radius: composite
/// Gauss-Legendre. Slow (tens of ms): used to make [`SPIRAL_G_TABLE`] and in tests.
#[cfg(test)]
fn spiral_cdf_reference(s: f64, q: SpiralQuadrature) -> f64 {
    if s <= 0.0 {
        return 0.0;
    }
    let angle_rule: Vec<(f64, f64)> =
        gauss_legendre(q.angle).iter().map(|&(x, w)| (0.5 * (1.0 + x), 0.5 * w)).collect();
    let blur_rule = gauss_legendre(q.blur);
    let mut total = 0.0;
    for (r, weight) in spiral_radial_nodes(q.radial_pieces, q.radial_per_piece) {
        let sigma = FGK06_BLUR_PER_R * r;
        let cut = BLUR_CUT * sigma;
        let phi_lo = angle_at_distance(r, s - cut);
        let phi_star = angle_at_distance(r, s);
        let phi_hi = angle_at_distance(r, s + cut);
        let h = |phi: f64| blur_cdf(distance_at_angle(r, phi), sigma, s, &blur_rule);
        // integral over [a, b] with the singular point at `at_right` (b) or at a.
        let graded = |a: f64, b: f64, singular_at_right: bool| -> f64 {
            let width = b - a;
            angle_rule
                .iter()
                .map(|&(t, w)| {
                    let phi = if singular_at_right { b - width * t * t * t } else { a + width * t * t * t };
                    w * 3.0 * width * t * t * h(phi)
                })
                .sum::<f64>()
        };
        let mut arcs = 0.0;
        let mut length = 0.0;
        for arm in &SPIRAL_ARMS {
            let (start, l) = spiral_arc(arm, r);
            length = l;
            fold_arc(start, l, |u, v| {
                // Fully inside the disc s - cut.
                arcs += (v.min(phi_lo) - u).max(0.0);
                let (a, b) = (u.max(phi_lo), v.min(phi_star));
                if a < b {
                    arcs += graded(a, b, b == phi_star);
                }
                let (a, b) = (u.max(phi_star), v.min(phi_hi));
                if a < b {
                    arcs += graded(a, b, !(a == phi_star));
                }
            });
        }
        total += weight * arcs / (4.0 * length);
    }
    total
}

/// The blurred surface density of the spiral model at the Sun [kpc^-2] (normalised to one
/// source), so that G(0) = pi Sigma_sun: the blur kernel is |N(0, sigma)|(d) / (2 pi d), and
/// no arc comes within 0.3 kpc of the Sun.
#[cfg(test)]
fn spiral_density_at_sun() -> f64 {
    let rule = gauss_legendre(8);
    let mut total = 0.0;
    for (r, weight) in spiral_radial_nodes(512, 8) {
        let sigma = FGK06_BLUR_PER_R * r;
        if (r - R_SUN_KPC).abs() > 12.0 * sigma {
            continue;
        }
        let kernel = |phi: f64| {
            let d = distance_at_angle(r, phi);
            sqrt(2.0 / PI) / sigma * exp(-0.5 * (d / sigma) * (d / sigma)) / (2.0 * PI * d)
        };
        let mut arcs = 0.0;
        let mut length = 0.0;
        for arm in &SPIRAL_ARMS {
            let (start, l) = spiral_arc(arm, r);
            length = l;
            fold_arc(start, l, |u, v| {
                let n = 1 + ((v - u) / 0.01) as usize;
                for i in 0..n {
                    let (a, b) = (u + (v - u) * i as f64 / n as f64, u + (v - u) * (i + 1) as f64 / n as f64);
                    arcs += integrate_gl(a, b, &rule, kernel);
                }
            });
        }
        total += weight * arcs / (4.0 * length);
    }
    total
}

/// The spiral model's G(s) = P(s' < s) / s^2 [kpc^-2] at the Chebyshev-Lobatto points of 96
/// equal pieces of [0, 24] kpc (13 points a piece, neighbours sharing their ends: 1153 values),
/// from `spiral_cdf_reference` (and G(0) = pi Sigma_sun). Regenerate with
/// `cargo test -p crkernels-core --release -- --ignored print_spiral_table --nocapture`.
#[rustfmt::skip]
const SPIRAL_G_TABLE: [f64; SPIRAL_TABLE_PIECES * (FWD_N - 1) + 1] = [
    1.034937994607253e-3, 1.034974227244892e-3, 1.0354861963802514e-3, 1.037555764192455e-3,
    1.0425709572237467e-3, 1.0517330011529096e-3, 1.0655742445884588e-3, 1.0836179757157207e-3,
    1.1042760877535036e-3, 1.1250300954663735e-3, 1.1428791115274018e-3, 1.154968421235475e-3,
    1.159246952070918e-3, 1.1636048912188341e-3, 1.1768425489748254e-3, 1.199334597274596e-3,
    1.231346747163274e-3, 1.2725969417707408e-3, 1.3218140051974275e-3, 1.376419040147025e-3,
    1.4324435352466287e-3, 1.4847704700547517e-3, 1.527738750887232e-3, 1.5560742234346295e-3,
    1.5659822033836002e-3, 1.5760170135563762e-3, 1.6061883019272583e-3, 1.6566123635194776e-3,
    1.7272617407850673e-3, 1.817989336757723e-3, 1.9297259349552803e-3, 2.054058896726325e-3,
    2.1778261213212715e-3, 2.2881771725278416e-3, 2.3745601848952132e-3, 2.42924635526399e-3,
    2.4479685520446535e-3, 2.466849664056266e-3, 2.5219791159753814e-3, 2.6099799860597596e-3,
    2.724517008029352e-3, 2.857217627360141e-3, 2.997916777611746e-3, 3.1363201075252528e-3,
    3.2627083573711227e-3, 3.3689910023150427e-3, 3.4490278760907684e-3, 3.4986933783485836e-3,
    3.515486508664204e-3, 3.5321871313368364e-3, 3.5808802608071066e-3, 3.657063120140365e-3,
    3.7542560096695656e-3, 3.8641483408406213e-3, 3.978102304324685e-3, 4.087874711067629e-3,
    4.186394766928804e-3, 4.2681431272565094e-3, 4.328996308221887e-3, 4.3664415061711185e-3,
    4.379071881967713e-3, 4.391657763565847e-3, 4.428070757455634e-3, 4.48474037468743e-3,
    4.55617754339196e-3, 4.636053400561906e-3, 4.71777906993415e-3, 4.795415222811461e-3,
    4.8640909864057485e-3, 4.920222601693637e-3, 4.96153401690934e-3, 4.9867110038064434e-3,
    4.99517353171097e-3, 5.003561346660169e-3, 5.0277192113288e-3, 5.064869677481931e-3,
    5.11100064536596e-3, 5.1613438469380445e-3, 5.211219875122078e-3, 5.2565975682313335e-3,
    5.294319607244465e-3, 5.322743966793658e-3, 5.342234492045179e-3, 5.353526543988506e-3,
    5.357219405432242e-3, 5.36083034306884e-3, 5.370991580345658e-3, 5.385879118392007e-3,
    5.403196164668811e-3, 5.420740464338921e-3, 5.436963154313413e-3, 5.451039585847442e-3,
    5.462711397225251e-3, 5.471936207044082e-3, 5.478684835223648e-3, 5.4828394828982715e-3,
    5.484250067934665e-3, 5.485658186944466e-3, 5.489779473276562e-3, 5.496367606225689e-3,
    5.505206012560647e-3, 5.516146637431953e-3, 5.529132784651179e-3, 5.5439650546375745e-3,
    5.560005479392336e-3, 5.576002602129273e-3, 5.590109020441402e-3, 5.600033679648683e-3,
    5.6036069456013755e-3, 5.607277932593917e-3, 5.618579163055809e-3, 5.638193793095712e-3,
    5.666792811765773e-3, 5.704391872543859e-3, 5.749380008950267e-3, 5.798251967974888e-3,
    5.846712825647994e-3, 5.890091418474805e-3, 5.924225654353371e-3, 5.945929650324395e-3,
    5.95339993552334e-3, 5.9609068819488275e-3, 5.982884011997342e-3, 6.018096150606171e-3,
    6.064007645241386e-3, 6.117004064012618e-3, 6.172069748351788e-3, 6.224230333655943e-3,
    6.270132472400712e-3, 6.307550531372413e-3, 6.335057813011637e-3, 6.351814933944776e-3,
    6.357432098307802e-3, 6.363002387938509e-3, 6.379073361209961e-3, 6.4038004090757475e-3,
    6.434553947492826e-3, 6.46829352082407e-3, 6.502096851549826e-3, 6.533471072215166e-3,
    6.560591604686365e-3, 6.582326177527981e-3, 6.598020596160784e-3, 6.607463465107788e-3,
    6.610611885035101e-3, 6.6137344656545995e-3, 6.622649474782037e-3, 6.63619254367508e-3,
    6.6526943588359365e-3, 6.670302412736767e-3, 6.687332753622673e-3, 6.70251493598382e-3,
    6.715044993479457e-3, 6.724598270627609e-3, 6.731196573344274e-3, 6.735033172853647e-3,
    6.736284898489073e-3, 6.737504663782983e-3, 6.740924158165698e-3, 6.745870445084761e-3,
    6.751460418518039e-3, 6.756719595521173e-3, 6.76094553743134e-3, 6.763721507932322e-3,
    6.765040478097883e-3, 6.765215561103189e-3, 6.764752793135313e-3, 6.7641994871994035e-3,
    6.763965598811775e-3, 6.763713028269951e-3, 6.762823190115976e-3, 6.760997875755419e-3,
    6.757855980149438e-3, 6.75310922123168e-3, 6.746697252626378e-3, 6.738868246193276e-3,
    6.73022593952177e-3, 6.721638908143713e-3, 6.7143130119530796e-3, 6.709405434220189e-3,
    6.707678190746687e-3, 6.705923221333397e-3, 6.7006377119958995e-3, 6.691770143051658e-3,
    6.679425324893543e-3, 6.664007241412347e-3, 6.646294239098235e-3, 6.627480694252927e-3,
    6.6090378143229e-3, 6.5925705285312846e-3, 6.5795679301194785e-3, 6.5712402921334215e-3,
    6.568374150881576e-3, 6.565494889007559e-3, 6.556981726960604e-3, 6.543233142789738e-3,
    6.524946756149415e-3, 6.503202993488193e-3, 6.479386840899484e-3, 6.455144586130563e-3,
    6.432256761747132e-3, 6.4124182043239645e-3, 6.397103587491617e-3, 6.387446153532202e-3,
    6.384147537145777e-3, 6.380847022350832e-3, 6.371163244516653e-3, 6.355739839296197e-3,
    6.335645316350816e-3, 6.31230660533118e-3, 6.287458880364359e-3, 6.262994147686063e-3,
    6.240552905674373e-3, 6.221542869252106e-3, 6.207120626395781e-3, 6.1981201600226086e-3,
    6.195061914272159e-3, 6.192009236135788e-3, 6.183093211784521e-3, 6.169008191323374e-3,
    6.150838893098509e-3, 6.129919467506148e-3, 6.107751016994386e-3, 6.0858586481047135e-3,
    6.065688691698794e-3, 6.048550205425598e-3, 6.0355105699047085e-3, 6.027357482367825e-3,
    6.024585783061134e-3, 6.021818031933623e-3, 6.013729800644465e-3, 6.0009393135853776e-3,
    5.984421236562783e-3, 5.965407823968403e-3, 5.945278326720507e-3, 5.925468493910963e-3,
    5.907346933356971e-3, 5.892116565369156e-3, 5.880636430255821e-3, 5.87351262940646e-3,
    5.8710957658899745e-3, 5.868686027383624e-3, 5.861671691563904e-3, 5.850645886316512e-3,
    5.836491144935402e-3, 5.820303017823532e-3, 5.803277205576723e-3, 5.7865488156766485e-3,
    5.771221487805599e-3, 5.758239988184014e-3, 5.748379697053982e-3, 5.74222269302983e-3,
    5.740130647002718e-3, 5.738045602895849e-3, 5.731944655659947e-3, 5.72230649360115e-3,
    5.709849786821613e-3, 5.695490147725783e-3, 5.680240079963992e-3, 5.665144826861148e-3,
    5.651204792984816e-3, 5.639319699898035e-3, 5.630263558916137e-3, 5.6246003256279035e-3,
    5.622673063966203e-3, 5.620744881440061e-3, 5.6151037642108576e-3, 5.606161072696559e-3,
    5.594572836835558e-3, 5.581173801646085e-3, 5.5668978772027535e-3, 5.552713094168134e-3,
    5.539598505979472e-3, 5.528403822804831e-3, 5.519851098360731e-3, 5.514491014951691e-3,
    5.512666245359008e-3, 5.510847405275643e-3, 5.505518695015083e-3, 5.497070675952959e-3,
    5.4861113494652095e-3, 5.4734310791437e-3, 5.459917212802786e-3, 5.446503676494231e-3,
    5.434097719196625e-3, 5.4235136954199036e-3, 5.415438795651277e-3, 5.410385921748114e-3,
    5.40866508056587e-3, 5.406945397918034e-3, 5.401920897279047e-3, 5.3939628465791215e-3,
    5.383654663207107e-3, 5.371755005030418e-3, 5.359120251247948e-3, 5.34664474931119e-3,
    5.335179970631944e-3, 5.325486663692306e-3, 5.3181679381561235e-3, 5.313618336526761e-3,
    5.31207610710372e-3, 5.310541205304823e-3, 5.306057720509347e-3, 5.299004426666551e-3,
    5.289955148320153e-3, 5.2796361253291966e-3, 5.268819971053566e-3, 5.258215314231385e-3,
    5.248494715058807e-3, 5.240259535931968e-3, 5.234008979912899e-3, 5.230113189145105e-3,
    5.228789300244875e-3, 5.227466692394142e-3, 5.223608305947089e-3, 5.217503986248816e-3,
    5.209621796830109e-3, 5.200528364012793e-3, 5.190874059309903e-3, 5.1813679862047915e-3,
    5.172669172521906e-3, 5.165336797967593e-3, 5.159807081398735e-3, 5.156379514693762e-3,
    5.155218964131079e-3, 5.154064622084369e-3, 5.150704742495128e-3, 5.145452949842452e-3,
    5.138797788493338e-3, 5.131358402049307e-3, 5.123872213581115e-3, 5.117092401094117e-3,
    5.111327454455344e-3, 5.106698856102096e-3, 5.1032861719944285e-3, 5.101175615335112e-3,
    5.10045755038424e-3, 5.099736729852961e-3, 5.097608897352726e-3, 5.094179424178645e-3,
    5.08963687940584e-3, 5.084275430329396e-3, 5.07847968926207e-3, 5.072621683454721e-3,
    5.067096810378615e-3, 5.062295047179036e-3, 5.058569464924812e-3, 5.0562095468985905e-3,
    5.0553994648143185e-3, 5.054586843546839e-3, 5.052201701885953e-3, 5.048371001290071e-3,
    5.043318719727525e-3, 5.037343371454877e-3, 5.0308114881289015e-3, 5.024126826217127e-3,
    5.017758175686578e-3, 5.012191749992708e-3, 5.00787126397197e-3, 5.005139931286567e-3,
    5.004205416599902e-3, 5.0032686170200695e-3, 5.000516212315844e-3, 4.996115628309839e-3,
    4.9903397716963855e-3, 4.983554530171307e-3, 4.976189560967789e-3, 4.968737479709207e-3,
    4.961712515477258e-3, 4.955627325971258e-3, 4.950922353575978e-3, 4.9479539434029865e-3,
    4.946938268386617e-3, 4.945921108860736e-3, 4.942935996948441e-3, 4.9381664218833875e-3,
    4.93191311487931e-3, 4.9245754092764145e-3, 4.916654497877809e-3, 4.908680078712373e-3,
    4.901207853355819e-3, 4.894764090199395e-3, 4.889807240605436e-3, 4.886680673034692e-3,
    4.885616095831293e-3, 4.884549143014593e-3, 4.881417147723003e-3, 4.876427996808839e-3,
    4.869913280451913e-3, 4.862300145765081e-3, 4.8541152449308265e-3, 4.845917333589995e-3,
    4.83827062169173e-3, 4.831698471273291e-3, 4.826645966990606e-3, 4.823468771878049e-3,
    4.822382381594879e-3, 4.821296328231602e-3, 4.818112082377245e-3, 4.813039995300902e-3,
    4.806413466884697e-3, 4.79868804920861e-3, 4.790410556888917e-3, 4.782168630378218e-3,
    4.774526524375871e-3, 4.767987071275941e-3, 4.76297583233953e-3, 4.759824624321945e-3,
    4.758751644966529e-3, 4.757678142876637e-3, 4.754526876367823e-3, 4.7495161514627005e-3,
    4.7429824448909814e-3, 4.7353672881653335e-3, 4.727184539229838e-3, 4.718982433965063e-3,
    4.71130950969592e-3, 4.704692100322502e-3, 4.699593943921409e-3, 4.696384889431115e-3,
    4.695289683237253e-3, 4.694194365654881e-3, 4.6909857701006655e-3, 4.685883788439436e-3,
    4.6792532709384865e-3, 4.671559394503767e-3, 4.663337909975662e-3, 4.655157813691628e-3,
    4.647573626278675e-3, 4.641092279634516e-3, 4.636140191778877e-3, 4.633035018998369e-3,
    4.631978472558484e-3, 4.630922282985596e-3, 4.627828341810342e-3, 4.622925418027991e-3,
    4.61656675005323e-3, 4.609204880728678e-3, 4.601362566916172e-3, 4.593585853321903e-3,
    4.586398620551511e-3, 4.580279792818918e-3, 4.575619503605037e-3, 4.572707095716488e-3,
    4.571715854628461e-3, 4.57072598124607e-3, 4.567835074016881e-3, 4.563259333201958e-3,
    4.55733480523637e-3, 4.55047128386186e-3, 4.543135266044648e-3, 4.535818032893499e-3,
    4.529011770213704e-3, 4.5231703650764005e-3, 4.518688698620098e-3, 4.515871660999895e-3,
    4.514911338432888e-3, 4.513951225688353e-3, 4.511130655969188e-3, 4.506645543119078e-3,
    4.500787180783733e-3, 4.49393919381751e-3, 4.48655628293996e-3, 4.479147875698913e-3,
    4.4722394638540336e-3, 4.466316101198731e-3, 4.4617770615479726e-3, 4.458927309198114e-3,
    4.457955812227069e-3, 4.456984241781997e-3, 4.454140022903921e-3, 4.449622310446002e-3,
    4.443749316049071e-3, 4.436927515631e-3, 4.429633607627117e-3, 4.422365228531227e-3,
    4.415614936138634e-3, 4.409836321474433e-3, 4.405412576484133e-3, 4.4026358319708405e-3,
    4.401689544615069e-3, 4.400743587491392e-3, 4.397972678447862e-3, 4.393571928232594e-3,
    4.38784862876716e-3, 4.381200857854242e-3, 4.37408579368373e-3, 4.366987245762928e-3,
    4.360386691861169e-3, 4.354727883183919e-3, 4.3503924623628926e-3, 4.3476693533925715e-3,
    4.3467403806384764e-3, 4.345811620137623e-3, 4.343089780348109e-3, 4.338763240308447e-3,
    4.33313076882445e-3, 4.326571425620322e-3, 4.319535701790102e-3, 4.3124988760819645e-3,
    4.305937052323818e-3, 4.300296103676052e-3, 4.2959621883118075e-3, 4.293235943924142e-3,
    4.292304988787432e-3, 4.291374345122907e-3, 4.288643690461546e-3, 4.284292682001456e-3,
    4.278608179896626e-3, 4.2719670637476215e-3, 4.264807898080577e-3, 4.257608808180586e-3,
    4.250858773008885e-3, 4.2450244568177425e-3, 4.240524250215963e-3, 4.237681816732579e-3,
    4.236711217940871e-3, 4.235738141128457e-3, 4.232878559587139e-3, 4.228307263648012e-3,
    4.222308592797796e-3, 4.215254737945757e-3, 4.207597470817965e-3, 4.199843543256651e-3,
    4.192532835973865e-3, 4.186214145674068e-3, 4.181345658082884e-3, 4.178279217460484e-3,
    4.177231954439834e-3, 4.176184286510371e-3, 4.173111664012126e-3, 4.168215755968995e-3,
    4.161825872100657e-3, 4.154371098547307e-3, 4.146361605951759e-3, 4.138341013378227e-3,
    4.1308559683536e-3, 4.124421781640717e-3, 4.119479901965306e-3, 4.116367780393015e-3,
    4.1153063295591924e-3, 4.1142448139065415e-3, 4.111128990870715e-3, 4.106168398263758e-3,
    4.099691953910705e-3, 4.092128030799843e-3, 4.083984711631175e-3, 4.0758072231052e-3,
    4.0681541258869e-3, 4.061553091096395e-3, 4.056468922780808e-3, 4.05326437115676e-3,
    4.052169613321242e-3, 4.051074252186553e-3, 4.0478579323549e-3, 4.04272679629647e-3,
    4.036032752890927e-3, 4.028255263556151e-3, 4.019949848327348e-3, 4.011702898138147e-3,
    4.004086079568734e-3, 3.997605659574593e-3, 3.992672352553363e-3, 3.989591025929343e-3,
    3.988543422759997e-3, 3.987497701728442e-3, 3.984443782949961e-3, 3.9796199692962615e-3,
    3.973397183515538e-3, 3.966250694459295e-3, 3.9587066234125536e-3, 3.951296757649497e-3,
    3.944520762987758e-3, 3.938802818383257e-3, 3.934480852227258e-3, 3.931795052494757e-3,
    3.9308839689638705e-3, 3.929975637814959e-3, 3.92732914333501e-3, 3.92316780422891e-3,
    3.917837521990033e-3, 3.911766383956464e-3, 3.905418840058444e-3, 3.8992478988302587e-3,
    3.893663454410494e-3, 3.8889963205714344e-3, 3.8854986213979013e-3, 3.883336901692648e-3,
    3.8826065633657462e-3, 3.881879746472369e-3, 3.8797655361311086e-3, 3.8764645688856335e-3,
    3.8722772853138077e-3, 3.867564242861457e-3, 3.862705287994916e-3, 3.858055467551122e-3,
    3.8538997876947124e-3, 3.850431956619352e-3, 3.8478203787448107e-3, 3.846197764261852e-3,
    3.845647458979845e-3, 3.8450982496909484e-3, 3.8434973611670394e-3, 3.8409708193623176e-3,
    3.837711155234896e-3, 3.833952930391507e-3, 3.829952375304724e-3, 3.8259708572184904e-3,
    3.8222701509827216e-3, 3.819091603929904e-3, 3.816648156912087e-3, 3.815109547488177e-3,
    3.8145842590239444e-3, 3.814058606323133e-3, 3.812515471064001e-3, 3.810052969653549e-3,
    3.8068271609037097e-3, 3.8030441330271824e-3, 3.7989438526961432e-3, 3.794796851572324e-3,
    3.7908829271606466e-3, 3.787480835794827e-3, 3.784843902417741e-3, 3.7831728229115826e-3,
    3.7826002076843893e-3, 3.782026507385414e-3, 3.7803371522000737e-3, 3.7776281640282752e-3,
    3.7740546780229436e-3, 3.769825148093267e-3, 3.7652043935432365e-3, 3.760491900334934e-3,
    3.7560126895090397e-3, 3.7520974240118003e-3, 3.7490466977247935e-3, 3.7471082248078918e-3,
    3.746442848596112e-3, 3.745776167120585e-3, 3.7438098175127527e-3, 3.7406468497954604e-3,
    3.7364573020056886e-3, 3.7314815827485712e-3, 3.726020686965692e-3, 3.7204282998950784e-3,
    3.7150966373143755e-3, 3.7104202430726894e-3, 3.706771020675078e-3, 3.7044486826412924e-3,
    3.703651631231057e-3, 3.7028518687540445e-3, 3.7004928646491423e-3, 3.696693408737128e-3,
    3.6916561755011095e-3, 3.6856656018728557e-3, 3.679083935867505e-3, 3.672342251777662e-3,
    3.665918097562587e-3, 3.6603277975688743e-3, 3.656009439734327e-3, 3.6532865320323933e-3,
    3.652356587194635e-3, 3.6514262952080634e-3, 3.6486962608487674e-3, 3.6443492980084654e-3,
    3.6386840980044527e-3, 3.632099140149648e-3, 3.6250621154719966e-3, 3.6180717482859194e-3,
    3.611611354183623e-3, 3.6061125139059255e-3, 3.601929065243831e-3, 3.5993158367336776e-3,
    3.5984279878837626e-3, 3.5975413989557596e-3, 3.594950606213254e-3, 3.5908607422836906e-3,
    3.5855910760448587e-3, 3.5795439547415737e-3, 3.5731690403880364e-3, 3.5669229220981415e-3,
    3.561221300408018e-3, 3.556422395780024e-3, 3.552802340732003e-3, 3.5505566243190356e-3,
    3.5497948397731184e-3, 3.5490359981204295e-3, 3.546828267432644e-3, 3.5433620113646735e-3,
    3.538932786349846e-3, 3.5339057559477054e-3, 3.5286711972052527e-3, 3.5236030564599237e-3,
    3.5190372268907597e-3, 3.515236319792092e-3, 3.5123971291914765e-3, 3.510645689394982e-3,
    3.510055579695369e-3, 3.509468169678949e-3, 3.507761165679833e-3, 3.5051037681569147e-3,
    3.501743094142463e-3, 3.4979775916179497e-3, 3.494112509027702e-3, 3.4904338887148494e-3,
    3.4871698939048495e-3, 3.4844949433665753e-3, 3.4825220682838955e-3, 3.481318451405482e-3,
    3.4809131768127996e-3, 3.480511359592759e-3, 3.4793537604006796e-3, 3.477558966018194e-3,
    3.475275500566345e-3, 3.472656257685147e-3, 3.469856886627079e-3, 3.4670346597958823e-3,
    3.4643594622919744e-3, 3.46201104673013e-3, 3.460168236311517e-3, 3.4589886681660647e-3,
    3.458582819473286e-3, 3.4581751664352275e-3, 3.4569649514473283e-3, 3.4550011443454823e-3,
    3.452361022124191e-3, 3.4491602098128686e-3, 3.445556257188155e-3, 3.4417649377689306e-3,
    3.4380460933157546e-3, 3.4347025811520752e-3, 3.4320381022957076e-3, 3.430317236615851e-3,
    3.4297219603331465e-3, 3.4291225962553196e-3, 3.4273409983462022e-3, 3.424429751169685e-3,
    3.4204890559406537e-3, 3.4156855779981085e-3, 3.410262787024076e-3, 3.404554248674886e-3,
    3.3989681809154806e-3, 3.3939612623369183e-3, 3.389984422895362e-3, 3.387423592726231e-3,
    3.3865394058421885e-3, 3.3856496688689066e-3, 3.383009227267493e-3, 3.3787093003505653e-3,
    3.372919550772437e-3, 3.365909504248751e-3, 3.3580742032536387e-3, 3.34998760511087e-3,
    3.34227121209052e-3, 3.3355258016462565e-3, 3.33028436814634e-3, 3.3269634784312e-3,
    3.325826520109044e-3, 3.3246874214230004e-3, 3.321335516963713e-3, 3.3159684598251067e-3,
    3.308917013053274e-3, 3.300633190422734e-3, 3.291671587270541e-3, 3.2826468509564058e-3,
    3.2741926205545635e-3, 3.26690410516455e-3, 3.261298297450759e-3, 3.2577688635961524e-3,
    3.2565641520941346e-3, 3.2553590849855917e-3, 3.2518243758717304e-3, 3.2461970245156626e-3,
    3.2388564497101047e-3, 3.2303041310129724e-3, 3.221128034780175e-3, 3.211959208596785e-3,
    3.203427640539e-3, 3.1961142393619785e-3, 3.190511664243841e-3, 3.1869949772713683e-3,
    3.1857964498448765e-3, 3.1845983881405152e-3, 3.1810885161671857e-3, 3.1755144969432894e-3,
    3.1682686231335093e-3, 3.1598594802770244e-3, 3.1508726380626855e-3, 3.1419270483651696e-3,
    3.1336313151425644e-3, 3.126539630699148e-3, 3.1211189169272516e-3, 3.117721142649428e-3,
    3.116563949862114e-3, 3.115407610851359e-3, 3.112022256208648e-3, 3.106653130809686e-3,
    3.099685924105418e-3, 3.0916161945507012e-3, 3.0830098836122743e-3, 3.074460731443817e-3,
    3.066545913993437e-3, 3.0597907700959694e-3, 3.054633120300467e-3, 3.0514024442969867e-3,
    3.050302507529618e-3, 3.0492036364656496e-3, 3.0459883047350127e-3, 3.040892697609847e-3,
    3.0342859282218386e-3, 3.026643161117653e-3, 3.01850207528847e-3, 3.0104244182353078e-3,
    3.0029552151960544e-3, 2.9965858220043456e-3, 2.9917266471767307e-3, 2.988684631954288e-3,
    2.987649349601317e-3, 2.9866152071603798e-3, 2.983589619963127e-3, 2.978796629406954e-3,
    2.97258827388402e-3, 2.965411374793295e-3, 2.9577747773243184e-3, 2.9502048114410416e-3,
    2.943212275097577e-3, 2.937254084971524e-3, 2.932712114444603e-3, 2.929870307594031e-3,
    2.9289033499270817e-3, 2.9279375313478826e-3, 2.925112704850732e-3, 2.9206401365413923e-3,
    2.9148511555583795e-3, 2.9081654226749153e-3, 2.9010584158080323e-3, 2.894021867295099e-3,
    2.887528193357265e-3, 2.8820015014237956e-3, 2.877791474821022e-3, 2.8751588496168197e-3,
    2.8742634156394345e-3, 2.8733692376272033e-3, 2.870754594110315e-3, 2.8666174912015e-3,
    2.8612669419730047e-3, 2.8550946100987327e-3, 2.84854126167203e-3, 2.842061247548561e-3,
    2.836089157660337e-3, 2.8310119891543414e-3, 2.827148749697061e-3, 2.8247339742734183e-3,
    2.8239130680517456e-3, 2.8230935283993495e-3, 2.8206980106668554e-3, 2.8169097973106713e-3,
    2.812015652343393e-3, 2.806376567181869e-3, 2.800397995632605e-3, 2.7944946287426493e-3,
    2.789061950317717e-3, 2.784449487054219e-3, 2.780942666579966e-3, 2.778753057839261e-3,
    2.778008628116958e-3, 2.7772656093199254e-3, 2.7750951016634654e-3, 2.7716655333475297e-3,
    2.767238685120752e-3, 2.76214371971007e-3, 2.7567502413713635e-3, 2.751431478328032e-3,
    2.7465433206733964e-3, 2.742398641931305e-3, 2.739250157677087e-3, 2.7372851749251177e-3,
    2.7366174524910496e-3, 2.735950957070713e-3, 2.7340045522675554e-3, 2.730930745142691e-3,
    2.726966986988629e-3, 2.7224112059390034e-3, 2.717591939963707e-3, 2.712845087390342e-3,
    2.7084852427303146e-3, 2.704790191635348e-3, 2.701985649106321e-3, 2.7002360927714767e-3,
    2.6996416114703826e-3, 2.6990483988903603e-3, 2.6973158986951904e-3, 2.694581181576883e-3,
    2.6910553264373957e-3, 2.6870032180653634e-3, 2.6827187167599662e-3, 2.67849871406323e-3,
    2.674623928972936e-3, 2.6713392048936828e-3, 2.6688457963728526e-3, 2.667289895631951e-3,
    2.6667612538115986e-3, 2.666233567252035e-3, 2.6646925775664944e-3, 2.6622518872199087e-3,
    2.6590498711012043e-3, 2.6552492684913547e-3, 2.6510433899507766e-3, 2.646668891208498e-3,
    2.6424132404636383e-3, 2.6386030081503443e-3, 2.635573203328463e-3, 2.6336187238120787e-3,
    2.6329430220602243e-3, 2.632262621670495e-3, 2.6302402338755746e-3, 2.6269368056312473e-3,
    2.622498833318854e-3, 2.617183282225536e-3, 2.6113313213248527e-3, 2.6053488116983244e-3,
    2.599670925672776e-3, 2.5947244435746493e-3, 2.5908887106282784e-3, 2.5884603716001746e-3,
    2.587629288110122e-3, 2.586796849235264e-3, 2.5843484397470055e-3, 2.5804301413978777e-3,
    2.5752829799933156e-3, 2.5692361810747584e-3, 2.5626895751057663e-3, 2.5560893437891774e-3,
    2.5498954509315767e-3, 2.5445467778288616e-3, 2.5404250613522044e-3, 2.537827163973136e-3,
    2.5369398637837925e-3, 2.536051920892943e-3, 2.533445194501797e-3, 2.5292888730175e-3,
    2.5238555290911006e-3, 2.5175070820233863e-3, 2.510671640355385e-3, 2.5038166012947474e-3,
    2.497413573106844e-3, 2.491905525944815e-3, 2.4876738367503692e-3, 2.4850118531462343e-3,
    2.484103592160508e-3, 2.483195190226011e-3, 2.4805310132701695e-3, 2.4762906296407023e-3,
    2.470761573298985e-3, 2.4643196700058754e-3, 2.457405204637987e-3, 2.450490894133019e-3,
    2.4440499789839133e-3, 2.4385218445475906e-3, 2.434282133106031e-3, 2.4316184032283695e-3,
    2.4307100869978135e-3, 2.429801867895816e-3, 2.427139660553443e-3, 2.422907621856933e-3,
    2.417397335537983e-3, 2.4109889984284343e-3, 2.404123091542661e-3, 2.3972697659750404e-3,
    2.390896209055888e-3, 2.385433402186294e-3, 2.381248560884523e-3, 2.378621041054521e-3,
    2.377725351014468e-3, 2.376829934941963e-3, 2.3742064429991125e-3, 2.3700388712680383e-3,
    2.3646171576185843e-3, 2.358318831558805e-3, 2.3515782597664124e-3, 2.3448576200589604e-3,
    2.338613389740155e-3, 2.3332659254211275e-3, 2.329172029306743e-3, 2.326602570882702e-3,
    2.3257269393114704e-3, 2.3248517016959216e-3, 2.322287922088487e-3, 2.3182162582159748e-3,
    2.3129226428787613e-3, 2.3067765699722785e-3, 2.3002033403271777e-3, 2.293653417525947e-3,
    2.2875711744884033e-3, 2.282364834692371e-3, 2.2783802431304134e-3, 2.275880204424756e-3,
    2.2750282450104942e-3, 2.274176686288142e-3, 2.271682618566711e-3, 2.2677226047365237e-3,
    2.2625757114332285e-3, 2.2566015532505253e-3, 2.250214377921579e-3, 2.243851864049111e-3,
    2.237945178044036e-3, 2.232890252052911e-3, 2.22902193514597e-3, 2.2265951973764317e-3,
    2.2257683350813493e-3, 2.2249418585625763e-3, 2.2225211003465742e-3, 2.2186781231618587e-3,
    2.213683568306792e-3, 2.2078874832326405e-3, 2.2016911553912753e-3, 2.1955194860612697e-3,
    2.1897905368784064e-3, 2.1848879532249885e-3, 2.1811365761975447e-3, 2.1787830496791368e-3,
    2.1779811780538597e-3, 2.177179732823225e-3, 2.174832350899054e-3, 2.171105555419468e-3,
    2.1662625345392327e-3, 2.1606421547381905e-3, 2.1546338293668386e-3, 2.148649395264544e-3,
    2.143094239075808e-3, 2.138340247315242e-3, 2.1347026372640415e-3, 2.1324203971057045e-3,
    2.1316428416262028e-3, 2.1308656916673835e-3, 2.128589317111221e-3, 2.124975439290116e-3,
    2.1202787436746685e-3, 2.114828051361719e-3, 2.1090009857240586e-3, 2.1031967355930573e-3,
    2.097808534934319e-3, 2.093197237151474e-3, 2.089668642894299e-3, 2.0874546939124725e-3,
    2.086700315410366e-3, 2.0859463448666144e-3, 2.0837381588611086e-3, 2.0802319801698026e-3,
    2.0756753091467485e-3, 2.070386683875974e-3, 2.0647324236203993e-3, 2.0590998121439007e-3,
    2.0538704329644236e-3, 2.0493947069621407e-3, 2.045969700484326e-3, 2.043820679401208e-3,
    2.04308841763744e-3, 2.042356512366659e-3, 2.040212826360781e-3, 2.0368090804537948e-3,
    2.032385267703079e-3, 2.0272503012324153e-3, 2.0217597344599813e-3, 2.0162896514056582e-3,
    2.0112106761175806e-3, 2.006863359884727e-3, 2.0035363543316614e-3, 2.001448582184278e-3,
    2.000737154585843e-3, 2.0000261397911975e-3, 1.997943662305612e-3, 1.9946366358639814e-3,
    1.9903381453324673e-3, 1.9853483409878977e-3, 1.980012468256651e-3, 1.9746958632488832e-3,
    1.969758863540192e-3, 1.965532615648948e-3, 1.9622979645940184e-3, 1.9602681078822555e-3,
    1.9595764482932734e-3, 1.958885111855773e-3, 1.9568600587490884e-3, 1.95364439532231e-3,
    1.949464113331614e-3, 1.9446110472363522e-3, 1.9394208775313823e-3, 1.9342490026837253e-3,
    1.929445792631833e-3, 1.9253336507700435e-3, 1.9221863489876849e-3, 1.9202108439873259e-3,
    1.9195378266524895e-3, 1.9188651587842315e-3, 1.9168943198475629e-3, 1.9137648199188154e-3,
    1.9096961089595183e-3, 1.9049720522898972e-3, 1.8999195724680932e-3, 1.8948838744336505e-3,
    1.8902065278869266e-3, 1.8862018769385635e-3, 1.8831361182223248e-3, 1.8812124302356994e-3,
    1.8805566097802584e-3, 1.8799011038698008e-3, 1.8779817441488573e-3, 1.8749327025578764e-3,
    1.8709686074296964e-3, 1.8663651982126891e-3, 1.8614409919417649e-3, 1.8565322848506105e-3,
    1.8519724562600427e-3, 1.8480678599911197e-3, 1.8450784355910203e-3, 1.8432019891913686e-3,
    1.8425627141636415e-3, 1.8419235854179297e-3, 1.8400508696128823e-3, 1.837076888356821e-3,
    1.8332097814241959e-3, 1.8287184579308699e-3, 1.8239130402713923e-3, 1.8191220927733591e-3,
    1.8146709511754836e-3, 1.8108585290267725e-3, 1.807939371385174e-3, 1.8061070142001813e-3,
    1.8054825306992744e-3, 1.804858310993478e-3, 1.8030294778900449e-3, 1.8001245914792089e-3,
    1.7963467073300642e-3, 1.7919583702050103e-3, 1.787262264632625e-3, 1.7825796433349483e-3,
    1.7782281173473625e-3, 1.774500503574889e-3, 1.77164589518843e-3, 1.7698539261049922e-3,
    1.769243156254483e-3, 1.7686326194240039e-3, 1.766843874219317e-3, 1.764002331089451e-3,
    1.7603063571991475e-3, 1.7560124909568678e-3, 1.7514166860974417e-3, 1.746833254378863e-3,
    1.7425732012295288e-3, 1.7389234263869e-3, 1.7361280933270082e-3, 1.7343731913884248e-3,
    1.733775033747084e-3,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The NEON batch draw gives the lane loop's bits for both galactic models, on every
    /// length around its step and block, at the ends of the unit interval, at -0, outside it
    /// and at NaN, and just either side of the joins of the guide's pieces.
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    #[test]
    fn neon_draws_match_the_lane_loop() {
        for (model, s_max) in [(SpatialModel::SpiralArms, 10.0), (SpatialModel::RadialCaseBhattacharya, 24.0)]
        {
            let distribution = SpatialDistribution::new(model, s_max).unwrap();
            let inverse = distribution.inverse.as_ref().unwrap();
            assert!(inverse.single_step);
            let joins = inverse.guide.iter().flat_map(|&entry| {
                let right = unpack_guide_entry(entry).1;
                [right.next_down(), right, right.next_up()].map(|w| w * w)
            });
            let specials = [0.0, -0.0, 1.0, 1e-300, 1e-17, 1.0 - 1e-16, -0.5, 1.5, f64::NAN, f64::INFINITY];
            let uniforms: Vec<f64> = specials
                .into_iter()
                .chain(joins)
                .chain((0..1000).map(|i| (i as f64 + 0.5) / 1000.0))
                .collect();
            for len in (0..=9).chain([255, 256, 257, 260, uniforms.len()]) {
                for start in [0, 1, 3] {
                    let Some(uniforms) = uniforms.get(start..start + len) else { continue };
                    let (u, u_rest) = uniforms.as_chunks::<{ neon::STEP }>();
                    let mut neon_draws = vec![0.5; len];
                    let (s, _) = neon_draws.as_chunks_mut::<{ neon::STEP }>();
                    // SAFETY: this build's target has NEON (the cfg above).
                    unsafe { neon::sample_each(inverse, s_max, u, s) };
                    let mut lane_draws = vec![0.25; len];
                    distribution.sample_each_branch_free(uniforms, &mut lane_draws);
                    let whole = len - u_rest.len();
                    for (i, (a, b)) in neon_draws[..whole].iter().zip(&lane_draws).enumerate() {
                        assert_eq!(a.to_bits(), b.to_bits(), "{model:?}: u = {:e}", uniforms[i]);
                    }
                }
            }
        }
    }

    #[test]
    fn gauss_legendre_integrates_polynomials() {
        let rule = gauss_legendre(10);
        let integral: f64 = rule.iter().map(|&(x, w)| w * x.powi(18)).sum();
        assert!((integral - 2.0 / 19.0).abs() < 1e-15);
    }

    #[test]
    fn lobatto_piece_interpolates() {
        let mut values = [0.0; FWD_N];
        for (j, v) in values.iter_mut().enumerate() {
            *v = libm::exp(lobatto_point(1.0, 1.5, j, FWD_N));
        }
        let piece = Piece::<FWD_N>::from_lobatto(1.0, 1.5, &values);
        for i in 0..=50 {
            let x = 1.0 + 0.01 * i as f64;
            assert!((piece.eval(x) / libm::exp(x) - 1.0).abs() < 1e-14, "{x}");
        }
    }

    #[test]
    fn cb98_cdf_is_one_beyond_the_disc() {
        let (rule, total) = cb98_rule();
        assert!((cb98_cdf(R_SUN_KPC + CB98_EDGE_KPC + 0.01, &rule, total) - 1.0).abs() < 1e-14);
        // Near s = r_sun the graded quadrature stays smooth.
        let (a, b) = (cb98_cdf(R_SUN_KPC - 1e-9, &rule, total), cb98_cdf(R_SUN_KPC + 1e-9, &rule, total));
        assert!(b > a && b - a < 1e-9);
    }

    #[test]
    fn spiral_table_matches_the_quadrature() {
        // Off the table's points, against the quadrature it was made from.
        // The quadrature is good to about 1e-7 (quadrupling its radial order moves P by up to
        // 8e-8, irregularly in s), and the table, which interpolates it, to about 2e-7.
        let table = spiral_forward_table();
        let mut worst: f64 = 0.0;
        for s in [0.01, 0.37, 1.1, 2.93, 5.05, 7.87, 10.0, 12.3, 19.9, 23.99] {
            let reference = spiral_cdf_reference(s, SPIRAL_QUADRATURE);
            let got = s * s * table.eval(s);
            assert!((got - reference).abs() < 3e-7, "{s}: {got} vs {reference}");
            worst = worst.max((got - reference).abs());
        }
        std::println!("spiral table against the quadrature: worst {worst:.1e}");
        // G(0) from the density at the Sun agrees with the quadrature at small s.
        let g0 = PI * spiral_density_at_sun();
        let s = 0.02;
        assert!((spiral_cdf_reference(s, SPIRAL_QUADRATURE) / (s * s) / g0 - 1.0).abs() < 2e-3);
        assert!((SPIRAL_G_TABLE[0] / g0 - 1.0).abs() < 1e-12);
    }

    #[test]
    #[ignore]
    fn print_spiral_table() {
        let points = spiral_table_points();
        let g0 = PI * spiral_density_at_sun();
        std::println!("G(0) = {g0:e}");
        for chunk in points.chunks(4) {
            let line: Vec<std::string::String> = chunk
                .iter()
                .map(|&s| {
                    let g = if s == 0.0 { g0 } else { spiral_cdf_reference(s, SPIRAL_QUADRATURE) / (s * s) };
                    std::format!("{g:e},")
                })
                .collect();
            std::println!("    {}", line.join(" "));
        }
    }
}
