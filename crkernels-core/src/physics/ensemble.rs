//! The stochastic ensemble of electron spectra (SECRET section 2.1; PHYSICS.md, "The
//! stochastic ensemble"): realisations of the flux of a population of burst-like sources with
//! random ages and distances, each the sum of the Green's function over its sources.
//!
//! One realisation k of seed s draws, from the Philox stream (s, k):
//! 1. the number of young sources: every source older than the oldest age that still
//!    contributes at the lowest-energy point of the grid, T_young = max_i T(E_i), adds exactly
//!    zero at every energy (its initial energy would exceed the transport table), so only the
//!    young fraction f = T_young / t_max is drawn: Binomial(N, f) for a fixed count N (the
//!    paper) or Poisson(N f) for a Poisson count, N = R_SN t_max P(s < s_max). Both thinnings
//!    leave the distribution of the young sources exactly as in the full draw;
//! 2. per young source, its age bin b among the AGE_BINS equal bins of [0, T_young): one 32-bit
//!    word, b = word >> 19 (from the next block of the stream on);
//! 3. bin after bin, per source of the bin, its position u1 in the bin and its distance
//!    uniform u2, one word each, u = (word + 1/2) 2^-32 (from the block after the last bin word
//!    on): age t = (b + u1) T_young / AGE_BINS and distance s = inverse CDF(u2) of the spatial
//!    model. The ages are uniform on (0, T_young) and independent of the distances, as in a
//!    plain draw t = T_young u, and come out sorted into their bins: no sort is needed.
//!
//! The realisation is defined by (seed, k, parameters, transport, and the grid's T_young):
//! the same on any thread count and in any split of the realisations into calls.
//!
//! Evaluation. At energy E_i everything but the distance depends on the age alone:
//! n = A_i(t) exp(-s^2 / (4 l_i^2(t))) with A_i = Q(E0) b(E0)/b(E) (4 pi l^2)^(-3/2) Theta(l).
//! The young ages [0, T_young) are cut into AGE_BINS equal bins shared by all energies, in
//! which a realisation draws its sources. Per energy, the ages up to its last contributing one
//! are covered by segments of the bins: cells of BINS_PER_CELL bins,
//! halved where needed. On each segment a_i(t) = ln A_i(t) + (3/2) ln t and h_i(t) =
//! t / (4 l_i^2(t)) (smooth down to t = 0) are interpolated by degree-8 polynomials, checked
//! between the interpolation points against the direct formula to 3e-13; a segment that fails
//! the check is halved, and a single bin that still fails, or that holds the energy's last
//! contributing age, uses the direct formula, unless (near T(E), where ln A falls steeply) a fit
//! to 1e-3 passes and the bin's sources cannot move that realisation's flux by 1e-16 of itself
//! with that error (a loose bin). Each segment is one run of sorted sources with
//! the same polynomials: a branch-free loop of two short polynomials and one exp per source
//! over lanes of 8, compiled for the widest vector instruction set of the CPU (bit-identical
//! results on every set). Ages where ln A_i < -750 underflow to exactly zero and are skipped.
//!
//! Memory. The age tables take at most 8192 segments of about 220 bytes per energy (typically
//! 10 to 50 KB); their total is limited to [`MAX_TABLE_BYTES`] and the grid to
//! [`MAX_ENERGIES`] energies. A realisation's workspace ([`Workspace`], one per thread) holds
//! at most 32 bytes per young source of the largest realisation it has drawn (up to twice that
//! while its vectors grow) plus 32 KiB; [`Ensemble::sources`] 16 bytes per young source plus
//! 32 KiB. The expected number of young sources N_young = R_SN t_max P(s < s_max) T_young /
//! t_max is limited so that N_young + 8 sqrt(N_young) + 8 <= [`MAX_YOUNG_SOURCES`] (2^27:
//! about 4 GiB a workspace); a Poisson draw beyond that bound has probability below 1e-15. The
//! checks run in [`Ensemble::new`] before the tables are built.

use alloc::vec::Vec;

mod device_tables;
pub use device_tables::{CellForm, DeviceCell, DeviceSingleCell, DeviceTables, NO_CELL, RealisationStart};

use crate::batch::check_each;
use crate::error::{Result, invalid, require_positive};
use crate::math::simd::VectorIsa;
use crate::math::{chebyshev, exp, exp_branchless, ln, mul_add, mul_add_f32};
use crate::physics::green::{FLUX_PER_DENSITY, SPEED_OF_LIGHT_KPC_PER_MYR, SourceSpectrum, halo_factor};
use crate::physics::sources::{SpatialDistribution, SpatialModel};
use crate::physics::transport::Transport;
use crate::rng::{Stream, uniform_from_word};

/// Parameters of a source population (PHYSICS.md; SECRET table 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnsembleParams {
    /// Galactic supernova rate R_SN [1/Myr].
    pub sn_rate_per_myr: f64,
    /// Oldest source age t_max [Myr].
    pub t_max_myr: f64,
    /// Largest source distance s_max [kpc].
    pub s_max_kpc: f64,
    /// Spatial distribution of the sources.
    pub spatial: SpatialModel,
    /// false: the number of sources is fixed at R_SN t_max P(s < s_max), rounded (the paper);
    /// true: Poisson with that mean.
    pub poisson_count: bool,
    /// The source spectrum Q(E).
    pub spectrum: SourceSpectrum,
}

/// How the per-source terms of a realisation are evaluated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// Binary64 throughout (the default): the polynomials within 3e-13 of the direct formula.
    #[default]
    Exact,
    /// The terms of the plain fitted segments (all but the first 1/128 of the ages and the few
    /// loose or direct bins) in binary32, each segment's sum accumulated in binary64: each
    /// flux within 1e-5 relative of the exact tier's for the same sources (typically 1e-6), for
    /// ensembles whose realisation-to-realisation spread is 10% to 100% (training sets,
    /// quantile bands). Deterministic as the exact tier: the same bits on any thread count,
    /// split and instruction set. See [`SinglePolynomials`] for the error budget.
    F32,
}

/// ln A below which a contribution underflows to zero whatever the distance.
const NEGLIGIBLE_LN_AMPLITUDE: f64 = -750.0;
/// Interpolation points (degree + 1) per cell of an age table.
const CELL_POINTS: usize = 9;
/// Accuracy demanded of a cell: |error of a| and |relative error of h|. The direct formula
/// itself carries rounding noise of about 1e-13 in both (E0 is good to a few ulps, and l^2
/// amplifies that by E0/(E0 - E) for young sources), so the check cannot ask for less.
const CELL_TOLERANCE: f64 = 3e-13;
/// Bins of the shared age grid on [0, T_young): the sort key of the sources.
const AGE_BINS: usize = 8192;
/// Bins per cell, the first try of a fit (a power of two: cells halve down to one bin).
const BINS_PER_CELL: usize = 32;
/// A direct bin is skipped where (its sources) x (its bound of A) is below this fraction of
/// the sum of the other bins: the result moves by less than 1e-16 of itself.
const NEGLIGIBLE_FRACTION: f64 = 1e-18;
/// Largest errors (of a, and relative of h) of a loose fit (see [`Evaluation::Loose`]).
const LOOSE_TOLERANCE: f64 = 1e-3;
/// A loose bin's polynomials are used where its sources' error bound is below this fraction of
/// the sum of the fitted segments (a lower bound of the flux).
const LOOSE_FRACTION: f64 = 1e-16;
/// Bins where a segment may use the log-age form (their sources need ln t and 1/t: only the
/// first 1/128 of the ages, where ln A and l^2 are not smooth in t).
const LOG_AGE_BINS: usize = 64;
/// Sources per vector chunk: 8 f64 lanes (one AVX-512 register, two AVX2 registers).
const LANES: usize = 8;
/// Sources per block of the draw: the block's bins, words, ages and distances (11 KiB) stay in
/// the L1 cache between the steps of the draw.
const DRAW_BLOCK: usize = 256;
/// Sources per chunk of the f32 tier: 8 binary32 lanes (one AVX2 register; their binary64 sums
/// two). 16 and 32 lanes measured 5% to 10% slower on AVX2 (their sums spill).
const F32_LANES: usize = 8;
/// The largest energy grid of an ensemble (the age tables take 10 to 50 KB an energy, up to
/// 1.8 MB; the GPU tables 32 KB more).
pub const MAX_ENERGIES: usize = 1 << 14;
/// The limit of the age tables' memory over all energies [bytes] (4 GiB): building stops with
/// an error once the tables built so far pass it.
pub const MAX_TABLE_BYTES: usize = u32::MAX as usize;
/// The limit of N_young + 8 sqrt(N_young) + 8, N_young the expected number of young sources of
/// a realisation (2^27: a workspace of about 4 GiB, 32 bytes a source, and seconds per
/// realisation and energy).
pub const MAX_YOUNG_SOURCES: usize = 1 << 27;
/// Bytes of a workspace per young source: the columns t, ln t, 1/t and s^2 (32). The draw's
/// uniforms take a fixed block ([`DRAW_BLOCK`]) on the stack.
pub const WORKSPACE_BYTES_PER_SOURCE: usize = 32;
/// The extra bytes per young source of a [`Precision::F32`] workspace: the binary32 columns
/// (bin, position in the bin, s^2).
pub const WORKSPACE_BYTES_PER_SOURCE_F32: usize = 12;
/// A binary32 exponent below this (relative to a segment's reference) may have lost its
/// relative precision (e^-87 is near the smallest normal binary32 number, 1.2e-38).
const F32_EXPONENT_FLOOR: f64 = -87.0;
/// The f32 tier keeps an energy's sum where the terms that could have underflowed can move it
/// by less than this fraction; otherwise the energy is summed by the exact tier.
const F32_UNDERFLOW_FRACTION: f64 = 1e-7;

/// ln A(t) and l^2(t) at one energy, by the direct formula (PHYSICS.md, "Green's function").
#[derive(Clone, Copy, Debug)]
struct DirectProfile<'a> {
    transport: &'a Transport,
    spectrum: &'a SourceSpectrum,
    energy_gev: f64,
    ln_rate: f64,
}

impl DirectProfile<'_> {
    /// (ln A, l^2 [kpc^2]) at age t [Myr], 0 < t < T(E); ln A = -inf where E0 is infinite.
    fn at(&self, age_myr: f64) -> (f64, f64) {
        let e0 = self.transport.initial_energy_unchecked(self.energy_gev, age_myr);
        if !e0.is_finite() {
            return (f64::NEG_INFINITY, f64::INFINITY);
        }
        let l2 = self.transport.loss_length2_unchecked(self.energy_gev, e0);
        let s = self.spectrum;
        let ln_q = ln(s.q_star_per_gev) - s.gamma * ln(e0) - e0 / s.cutoff_gev;
        let ln_jacobian = ln(self.transport.losses().rate_unchecked(e0)) - self.ln_rate;
        let theta = halo_factor(l2, self.transport.halo_half_height_kpc(), 0.0, 0.0);
        let ln_a = ln_q + ln_jacobian - 1.5 * ln(4.0 * core::f64::consts::PI * l2)
            + ln(theta)
            + ln(FLUX_PER_DENSITY);
        (ln_a, l2)
    }

    /// The pair a segment of `form` interpolates at age t [Myr].
    fn smooth_at(&self, form: Form, age_myr: f64) -> (f64, f64) {
        let (ln_a, l2) = self.at(age_myr);
        match form {
            Form::Plain => (ln_a, 1.0 / (4.0 * l2)),
            Form::LogAge => (ln_a + 1.5 * ln(age_myr), age_myr / (4.0 * l2)),
        }
    }
}

/// What a segment's two polynomials interpolate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// ln A(t) and 1/(4 l^2(t)): a source adds exp(a - s^2 h).
    Plain,
    /// ln A(t) + 1.5 ln t and t/(4 l^2(t)), smooth down to t = 0 where A ~ t^-1.5 and
    /// l^2 ~ t: a source adds exp(a - 1.5 ln t - s^2 h / t). Needed only near t = 0.
    LogAge,
}

/// The polynomials of a and h on one segment, in the local coordinate x in [-1, 1].
type Polynomials = [[f64; CELL_POINTS]; 2];

/// How a segment's sources are summed.
#[derive(Clone, Debug)]
enum Evaluation {
    /// Polynomials within CELL_TOLERANCE: always used.
    Fitted(Polynomials),
    /// A single bin where no fit met CELL_TOLERANCE (near T(E), where E0 runs up the cutoff and
    /// ln A falls steeply), but polynomials within LOOSE_TOLERANCE do, with the largest error
    /// they can put on one source's term: used where the bin's sources together cannot move the
    /// flux by LOOSE_FRACTION of itself, else the direct formula.
    Loose { polynomials: Polynomials, error_bound: f64 },
    /// The direct formula (a single bin).
    Direct,
}

/// A run of consecutive age bins that shares one pair of polynomials (or the direct formula).
#[derive(Clone, Debug)]
struct Segment {
    /// First bin; a multiple of `bins`.
    first_bin: usize,
    /// Number of bins, a power of two.
    bins: usize,
    evaluation: Evaluation,
    /// What the polynomials interpolate.
    form: Form,
    /// For a loose or direct bin: an upper bound of A on it (+inf where none is established),
    /// so that a bin whose sources cannot reach NEGLIGIBLE_FRACTION of the sum is skipped.
    /// (Bounds are kept as values, not logarithms: no exp per bin and realisation.)
    amplitude_bound: f64,
}

impl Segment {
    /// The polynomials of a segment that always uses them.
    fn fitted(&self) -> Option<&Polynomials> {
        match &self.evaluation {
            Evaluation::Fitted(polynomials) => Some(polynomials),
            _ => None,
        }
    }
}

/// A plain fitted segment's polynomials for the [`Precision::F32`] tier. A source at local
/// coordinate x and squared distance s^2 adds e^ref e^(da(x) - s^2 h(x)), with
/// da = a - ref, ref the largest a on the segment (33 points), so that the binary32 exponent
/// stays near or below 0 and carries no large constant. Error budget of one term (relative):
/// the coefficients rounded to binary32 (6e-8 of the sum of their magnitudes in da and h), the
/// local coordinate from the bin index and the position in the bin (2.4e-7 of the segment's
/// width, times da' and s^2 h'), s^2 h to 1.2e-7 of itself, and e^y to 2.5e-7: about 1e-6 for
/// the terms that dominate a flux (s^2 h below about 20).
#[derive(Clone, Debug)]
struct SinglePolynomials {
    /// da and h in x, binary32.
    polynomials: [[f32; CELL_POINTS]; 2],
    /// e^ref.
    scale: f64,
    /// e^(ref + F32_EXPONENT_FLOOR): a bound of one term whose binary32 exponent underflowed.
    underflow_bound: f64,
}

impl SinglePolynomials {
    /// The binary32 form of a plain fitted segment, None where e^ref is not a finite binary64.
    fn new(polynomials: &Polynomials) -> Option<Self> {
        const POINTS: usize = 33;
        let reference = (0..POINTS)
            .map(|k| estrin(&polynomials[0], -1.0 + 2.0 * k as f64 / (POINTS - 1) as f64))
            .fold(f64::NEG_INFINITY, f64::max);
        let scale = exp(reference);
        if !(scale.is_finite() && scale > 0.0) {
            return None;
        }
        let mut single = [[0.0f32; CELL_POINTS]; 2];
        for (k, (a, h)) in polynomials[0].iter().zip(&polynomials[1]).enumerate() {
            single[0][k] = (if k == 0 { a - reference } else { *a }) as f32;
            single[1][k] = *h as f32;
        }
        Some(SinglePolynomials {
            polynomials: single,
            scale,
            underflow_bound: exp(reference + F32_EXPONENT_FLOOR),
        })
    }
}

/// The age profile of one energy on the shared bins.
#[derive(Clone, Debug)]
struct AgeProfile {
    energy_gev: f64,
    ln_rate: f64,
    /// Beyond this age [Myr] contributions are exactly zero.
    max_age_myr: f64,
    /// Segments covering [0, max_age), in increasing age.
    segments: Vec<Segment>,
    /// Indices of the segments that are not fitted (loose or direct), in increasing age.
    unfitted: Vec<usize>,
    /// Per segment, the map from age to its polynomials' coordinate.
    local: Vec<LocalCoordinate>,
    /// Per segment, its binary32 polynomials where the ensemble is [`Precision::F32`] and the
    /// segment is plain and fitted (empty for the exact tier).
    single: Vec<Option<SinglePolynomials>>,
}

impl AgeProfile {
    fn build(transport: &Transport, spectrum: &SourceSpectrum, energy_gev: f64, bin_width: f64) -> Self {
        let ln_rate = ln(transport.losses().rate_unchecked(energy_gev));
        let direct = DirectProfile { transport, spectrum, energy_gev, ln_rate };
        let max_age_myr = negligible_beyond(&direct, transport.max_age_unchecked(energy_gev));
        let grid = chebyshev::Grid::new(CELL_POINTS);
        let cell_width = BINS_PER_CELL as f64 * bin_width;
        let n_cells = (libm::ceil(max_age_myr / cell_width) as usize).min(AGE_BINS / BINS_PER_CELL);
        let mut segments = Vec::new();
        for c in 0..n_cells {
            let builder = SegmentBuilder { direct: &direct, max_age_myr, bin_width, grid: &grid };
            builder.cover(c * BINS_PER_CELL, BINS_PER_CELL, &mut segments);
        }
        let unfitted = (0..segments.len()).filter(|&i| segments[i].fitted().is_none()).collect();
        let local = segments
            .iter()
            .map(|segment| LocalCoordinate {
                inverse_width: (1.0 / bin_width) / segment.bins as f64,
                index: (segment.first_bin / segment.bins) as f64,
            })
            .collect();
        AgeProfile { energy_gev, ln_rate, max_age_myr, segments, unfitted, local, single: Vec::new() }
    }

    /// Adds the binary32 polynomials of the [`Precision::F32`] tier.
    fn add_single_precision(&mut self) {
        self.single = self
            .segments
            .iter()
            .map(|segment| match (segment.fitted(), segment.form) {
                (Some(polynomials), Form::Plain) => SinglePolynomials::new(polynomials),
                _ => None,
            })
            .collect();
    }

    /// The heap memory of the profile [bytes].
    fn heap_bytes(&self) -> usize {
        self.segments.capacity() * core::mem::size_of::<Segment>()
            + self.unfitted.capacity() * core::mem::size_of::<usize>()
            + self.local.capacity() * core::mem::size_of::<LocalCoordinate>()
            + self.single.capacity() * core::mem::size_of::<Option<SinglePolynomials>>()
    }
}

/// The expected number of young sources of a realisation, N_young, and the bound
/// N_young + 8 sqrt(N_young) + 8 (exceeded by a Poisson draw with probability below 1e-15).
fn young_sources(params: &EnsembleParams, mean_sources: f64, young_age_myr: f64) -> (f64, f64) {
    let young_fraction = young_age_myr / params.t_max_myr;
    let young_mean = if params.poisson_count {
        mean_sources * young_fraction
    } else {
        libm::round(mean_sources) * young_fraction
    };
    (young_mean, young_mean + 8.0 * libm::sqrt(young_mean) + 8.0)
}

/// Covers runs of bins with fitted segments, halving where a fit fails.
struct SegmentBuilder<'a> {
    direct: &'a DirectProfile<'a>,
    max_age_myr: f64,
    bin_width: f64,
    grid: &'a chebyshev::Grid,
}

impl SegmentBuilder<'_> {
    fn cover(&self, first_bin: usize, bins: usize, out: &mut Vec<Segment>) {
        let left = first_bin as f64 * self.bin_width;
        let width = bins as f64 * self.bin_width;
        if left >= self.max_age_myr {
            return;
        }
        // A segment holding max_age mixes contributing and silent ages: never fitted.
        let holds_last_age = left + width >= self.max_age_myr;
        // The plain form where it fits (ln t is smooth away from 0), else, in the first cells,
        // the log-age form (elsewhere halving is cheaper: it keeps ln t off most sources).
        let fit = |form| fit_cell(self.direct, form, left, width, self.grid).map(|p| (p, form));
        let log_age_allowed = first_bin + bins <= LOG_AGE_BINS;
        let fitted = if holds_last_age {
            None
        } else {
            fit(Form::Plain).or_else(|| if log_age_allowed { fit(Form::LogAge) } else { None })
        };
        match fitted {
            Some((polynomials, form)) => out.push(Segment {
                first_bin,
                bins,
                evaluation: Evaluation::Fitted(polynomials),
                form,
                amplitude_bound: f64::INFINITY,
            }),
            None if bins > 1 => {
                self.cover(first_bin, bins / 2, out);
                self.cover(first_bin + bins / 2, bins / 2, out);
            }
            None => {
                let ln_amplitude_bound = self.ln_amplitude_bound(left, width.min(self.max_age_myr - left));
                let amplitude_bound = exp(ln_amplitude_bound);
                let evaluation = self.loose_fit(left, width, amplitude_bound).unwrap_or(Evaluation::Direct);
                out.push(Segment { first_bin, bins, evaluation, form: Form::Plain, amplitude_bound })
            }
        }
    }

    /// The plain-form polynomials of a bin where their errors are within LOOSE_TOLERANCE and A is
    /// bounded by `amplitude_bound`, with the largest error of one source's term: the term is A e^-x with
    /// x = s^2 h >= 0, so errors da of a and dh (relative) of h move it by at most
    /// A e^-x (da + x dh) e^(da + x dh) <= A_max (da + dh / (e (1 - dh))) e^da, below
    /// A_max (2 da + dh) for errors below 1e-3; a factor 10 covers errors between the check
    /// points.
    fn loose_fit(&self, left: f64, width: f64, amplitude_bound: f64) -> Option<Evaluation> {
        if !amplitude_bound.is_finite() {
            return None;
        }
        let fit = fit_with_errors(self.direct, Form::Plain, left, width, self.grid)?;
        (fit.a_error <= LOOSE_TOLERANCE && fit.h_error <= LOOSE_TOLERANCE).then_some(Evaluation::Loose {
            polynomials: fit.polynomials,
            error_bound: amplitude_bound * 10.0 * (2.0 * fit.a_error + fit.h_error),
        })
    }

    /// ln A at the left end plus 1, where ln A is found falling through 17 points of the bin
    /// (it does near T(E), where E0 runs up the cutoff); +inf otherwise.
    fn ln_amplitude_bound(&self, left: f64, width: f64) -> f64 {
        const POINTS: usize = 17;
        if left <= 0.0 {
            return f64::INFINITY;
        }
        let ln_a = |k: usize| self.direct.at(left + width * k as f64 / (POINTS - 1) as f64).0;
        let first = ln_a(0);
        let mut previous = first;
        for k in 1..POINTS {
            let current = ln_a(k);
            if current.is_nan() || current > previous {
                return f64::INFINITY;
            }
            previous = current;
        }
        first + 1.0
    }
}

/// The age beyond which ln A < NEGLIGIBLE_LN_AMPLITUDE (contributions underflow), at most T(E).
fn negligible_beyond(direct: &DirectProfile, oldest: f64) -> f64 {
    // ln A is finite below T(E) and falls as E0 grows; scan down from T(E), then bisect.
    let just_below = oldest * (1.0 - 1e-12);
    if direct.at(just_below).0 >= NEGLIGIBLE_LN_AMPLITUDE {
        return oldest;
    }
    let (mut lo, mut hi) = (0.0, just_below);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if direct.at(mid).0 >= NEGLIGIBLE_LN_AMPLITUDE { lo = mid } else { hi = mid }
    }
    hi
}

/// A cell's polynomials with their worst errors at the check points.
#[derive(Clone, Debug)]
struct Fit {
    polynomials: Polynomials,
    /// Worst |error of a|.
    a_error: f64,
    /// Worst |relative error of h|.
    h_error: f64,
    /// Largest ln A at the points and check points.
    ln_amplitude_max: f64,
}

/// Fits a and h on [left, left + width] and measures the errors halfway between the points;
/// None where a point's value is not finite.
fn fit_with_errors(
    direct: &DirectProfile,
    form: Form,
    left: f64,
    width: f64,
    grid: &chebyshev::Grid,
) -> Option<Fit> {
    let nodes = &grid.nodes;
    let age_at = |x: f64| left + 0.5 * width * (1.0 + x);
    let at = |x: f64| direct.smooth_at(form, age_at(x));
    let ln_amplitude = |x: f64, a: f64| match form {
        Form::Plain => a,
        Form::LogAge => a - 1.5 * ln(age_at(x)),
    };
    let samples: Vec<(f64, f64)> = nodes.iter().map(|&x| at(x)).collect();
    if samples.iter().any(|&(a, h)| !a.is_finite() || !h.is_finite()) {
        return None;
    }
    let monomial = |values: Vec<f64>| {
        let m = chebyshev::to_monomial(&grid.coefficients(&values));
        let mut out = [0.0; CELL_POINTS];
        out.copy_from_slice(&m);
        out
    };
    let a_poly = monomial(samples.iter().map(|s| s.0).collect());
    let h_poly = monomial(samples.iter().map(|s| s.1).collect());
    let mut fit = Fit {
        polynomials: [a_poly, h_poly],
        a_error: 0.0,
        h_error: 0.0,
        ln_amplitude_max: nodes
            .iter()
            .zip(&samples)
            .map(|(&x, s)| ln_amplitude(x, s.0))
            .fold(f64::MIN, f64::max),
    };
    // Check halfway between consecutive points and between the outermost points and the ends
    // (not at the ends: t = 0 and t = T(E) are singular).
    let mut checks: Vec<f64> = nodes.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
    checks.push(0.5 * (1.0 + nodes[0]));
    checks.push(-0.5 * (1.0 + nodes[0]));
    for x in checks {
        let (a, h) = at(x);
        let a_error = (estrin(&a_poly, x) - a).abs();
        let h_error = (estrin(&h_poly, x) - h).abs() / h;
        // NaN (a value that is not finite here) fails every tolerance.
        fit.a_error = if a_error.is_nan() { f64::INFINITY } else { fit.a_error.max(a_error) };
        fit.h_error = if h_error.is_nan() { f64::INFINITY } else { fit.h_error.max(h_error) };
        fit.ln_amplitude_max = fit.ln_amplitude_max.max(ln_amplitude(x, a));
    }
    Some(fit)
}

/// The polynomials of [`fit_with_errors`] where both errors are within CELL_TOLERANCE.
fn fit_cell(
    direct: &DirectProfile,
    form: Form,
    left: f64,
    width: f64,
    grid: &chebyshev::Grid,
) -> Option<Polynomials> {
    fit_with_errors(direct, form, left, width, grid)
        .filter(|fit| fit.a_error <= CELL_TOLERANCE && fit.h_error <= CELL_TOLERANCE)
        .map(|fit| fit.polynomials)
}

const _: () = assert!(CELL_POINTS == 9, "estrin is written for degree 8");

/// A degree-8 polynomial by Estrin's scheme: a dependency chain of 4 multiply-add levels
/// instead of Horner's 8, so that the vectorised loop is not bound by latency; fused
/// multiply-adds (one instruction each on AVX2 and AVX-512).
#[inline(always)]
fn estrin(c: &[f64; CELL_POINTS], x: f64) -> f64 {
    let x2 = x * x;
    let x4 = x2 * x2;
    let low = mul_add(mul_add(c[3], x, c[2]), x2, mul_add(c[1], x, c[0]));
    let high = mul_add(c[8], x4, mul_add(mul_add(c[7], x, c[6]), x2, mul_add(c[5], x, c[4])));
    mul_add(high, x4, low)
}

/// The young sources of one realisation: distances [kpc] and ages [Myr].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sources {
    /// Distances from the observer in the plane [kpc].
    pub distance_kpc: Vec<f64>,
    /// Ages [Myr].
    pub age_myr: Vec<f64>,
}

/// log2 of [`AGE_BINS`]: a source's bin is the top bits of one 32-bit word.
const AGE_BIN_BITS: u32 = AGE_BINS.trailing_zeros();
const _: () = assert!(AGE_BINS == 1 << AGE_BIN_BITS, "the bin of a source is the top bits of a word");

/// Slots of a block given their bin by one store (one AVX-512 register of 32-bit bins).
const BIN_RUN: usize = 16;

/// Bin words drawn at a time while counting (16 KiB on the stack).
const WORD_BLOCK: usize = 4096;

/// Draws the age bins of `count` sources, one 32-bit word each (bin = word >> (32 -
/// AGE_BIN_BITS), uniform on the AGE_BINS bins), and adds them up per bin into `bin_counts`.
/// The words start at the next block of the stream, and the sources' uniforms at the block
/// after the last word (so that every fill runs on whole batches of blocks).
#[inline(always)]
fn count_bins(stream: &mut Stream, count: usize, bin_counts: &mut [u32; AGE_BINS]) {
    stream.skip_to_block_start();
    let mut words = [0u32; WORD_BLOCK];
    let mut left = count;
    while left > 0 {
        let n = left.min(WORD_BLOCK);
        stream.fill_words(&mut words[..n]);
        for &word in &words[..n] {
            bin_counts[(word >> (32 - AGE_BIN_BITS)) as usize] += 1;
        }
        left -= n;
    }
    stream.skip_to_block_start();
}

/// A realisation's young sources in age-bin order, drawn in blocks of [`DRAW_BLOCK`] (a
/// block's words, ages and distances stay in the L1 cache), after [`count_bins`]: bin after
/// bin, per source two words, its position u1 in its bin and its distance uniform u2 (each
/// [`uniform_from_word`]); t = (bin + u1) T_young / AGE_BINS and s = inverse CDF(u2). Ages
/// uniform on (0, T_young), as T_young u would be, and already sorted into their bins.
///
/// 32 bits a uniform: ages resolved to T_young 2^-45 and s^2 (the CDF near the observer goes
/// as s^2) to s_max^2 2^-32, far below any scale of the Green's function (l^2 >> 1e-6 kpc^2);
/// 53-bit uniforms would take twice the words.
struct BlockDraw {
    stream: Stream,
    /// The next bin to open, and the sources of the open one not yet drawn.
    next_bin: usize,
    left_in_bin: u32,
    /// Each slot's bin, with BIN_RUN slots of room past the block.
    bins: [u32; DRAW_BLOCK + BIN_RUN],
    words: [u32; 2 * DRAW_BLOCK],
    positions: [f64; DRAW_BLOCK],
    ages: [f64; DRAW_BLOCK],
    distance_uniforms: [f64; DRAW_BLOCK],
    distances: [f64; DRAW_BLOCK],
}

/// One block of [`BlockDraw`]: per source its age bin, position in the bin, age [Myr] and
/// distance [kpc].
struct Block<'a> {
    bins: &'a [u32],
    positions: &'a [f64],
    ages: &'a [f64],
    distances: &'a [f64],
}

impl BlockDraw {
    /// The draw from `stream`, positioned after the bin words.
    fn new(stream: Stream) -> Self {
        BlockDraw {
            stream,
            next_bin: 0,
            left_in_bin: 0,
            bins: [0; DRAW_BLOCK + BIN_RUN],
            words: [0; 2 * DRAW_BLOCK],
            positions: [0.0; DRAW_BLOCK],
            ages: [0.0; DRAW_BLOCK],
            distance_uniforms: [0.0; DRAW_BLOCK],
            distances: [0.0; DRAW_BLOCK],
        }
    }

    /// The next block of the sources counted in `bin_counts`; None after the last.
    #[inline(always)]
    fn next_block(&mut self, ensemble: &Ensemble, bin_counts: &[u32; AGE_BINS]) -> Option<Block<'_>> {
        // The walk in registers (fields are reloaded after every store to `bins`).
        let (mut next_bin, mut left_in_bin, mut n) = (self.next_bin, self.left_in_bin, 0);
        while n < DRAW_BLOCK {
            if left_in_bin == 0 {
                if next_bin == AGE_BINS {
                    break;
                }
                left_in_bin = bin_counts[next_bin];
                next_bin += 1;
                continue;
            }
            let take = (left_in_bin as usize).min(DRAW_BLOCK - n);
            // Whole runs of BIN_RUN slots (one vector store; most bins hold fewer sources):
            // the slots past this bin's are overwritten by the next bin's or never read.
            let bin = [(next_bin - 1) as u32; BIN_RUN];
            for first in (n..n + take).step_by(BIN_RUN) {
                self.bins[first..first + BIN_RUN].copy_from_slice(&bin);
            }
            left_in_bin -= take as u32;
            n += take;
        }
        (self.next_bin, self.left_in_bin) = (next_bin, left_in_bin);
        if n == 0 {
            return None;
        }
        self.stream.fill_words(&mut self.words[..2 * n]);
        let width = ensemble.bin_width_myr;
        for ((((position, age), u), &bin), pair) in self.positions[..n]
            .iter_mut()
            .zip(&mut self.ages[..n])
            .zip(&mut self.distance_uniforms[..n])
            .zip(&self.bins[..n])
            .zip(self.words[..2 * n].chunks_exact(2))
        {
            let u1 = uniform_from_word(pair[0]);
            (*position, *age, *u) = (u1, (f64::from(bin) + u1) * width, uniform_from_word(pair[1]));
        }
        // Equal lengths: cannot fail.
        let _ = ensemble.spatial.sample_each(&self.distance_uniforms[..n], &mut self.distances[..n]);
        Some(Block {
            bins: &self.bins[..n],
            positions: &self.positions[..n],
            ages: &self.ages[..n],
            distances: &self.distances[..n],
        })
    }
}

/// An ensemble for one parameter set and energy grid: the population and the age tables,
/// built once; realisations are then drawn and summed on demand. Immutable and shareable.
#[derive(Clone, Debug)]
pub struct Ensemble {
    transport: Transport,
    params: EnsembleParams,
    spatial: SpatialDistribution,
    energies_gev: Vec<f64>,
    /// Mean number of sources with s < s_max and age < t_max.
    mean_sources: f64,
    /// T_young [Myr]: only sources younger than this are drawn.
    young_age_myr: f64,
    /// Width of the shared age bins [Myr].
    bin_width_myr: f64,
    profiles: Vec<AgeProfile>,
    /// Bins [0, log_age_bins) hold every log-age segment: their sources need ln t and 1/t.
    log_age_bins: usize,
    /// The vector instruction set the evaluation runs on (only x86-64 has more than one).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    isa: VectorIsa,
    /// How the terms are evaluated.
    precision: Precision,
}

/// The sources of one realisation in age-bin order, with what the evaluation needs; reused
/// from one realisation to the next (no allocation once grown).
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    /// Per bin b, its sources are at bin_start[b]..bin_start[b + 1] of the columns below (ln
    /// t and 1/t only for the bins of the log-age segments, a prefix); while drawing,
    /// bin_start[b + 1] counts the sources of bin b.
    bin_start: Vec<u32>,
    /// Ages [Myr], ln t and 1/t, squared distances [kpc^2], each with LANES entries of padding.
    age: Vec<f64>,
    ln_age: Vec<f64>,
    inverse_age: Vec<f64>,
    distance2: Vec<f64>,
    /// The f32 tier's columns (empty for the exact tier): each source's age bin (an integer,
    /// exact), its position in the bin, in [0, 1], and s^2 [kpc^2].
    bin_f32: Vec<f32>,
    position_f32: Vec<f32>,
    distance2_f32: Vec<f32>,
}

impl Ensemble {
    /// Validates the parameters and builds the per-energy age tables.
    ///
    /// Errors: rate, t_max or s_max not finite and > 0; a bad spectrum; an energy not finite,
    /// <= 0 or outside the transport table (OutOfDomain); an empty grid. Memory limits
    /// (InvalidArgument, before the tables are built; see the module documentation): more than
    /// [`MAX_ENERGIES`] energies; more young sources than [`MAX_YOUNG_SOURCES`] allows; age
    /// tables beyond [`MAX_TABLE_BYTES`] (found while building them).
    pub fn new(transport: &Transport, params: &EnsembleParams, energies_gev: &[f64]) -> Result<Self> {
        Self::new_with_precision(transport, params, energies_gev, Precision::Exact)
    }

    /// [`Ensemble::new`] with the terms evaluated at `precision` (the same sources either way).
    pub fn new_with_precision(
        transport: &Transport,
        params: &EnsembleParams,
        energies_gev: &[f64],
        precision: Precision,
    ) -> Result<Self> {
        require_positive("supernova rate R_SN [1/Myr]", params.sn_rate_per_myr)?;
        require_positive("oldest age t_max [Myr]", params.t_max_myr)?;
        require_positive("largest distance s_max [kpc]", params.s_max_kpc)?;
        params.spectrum.validate()?;
        if energies_gev.is_empty() {
            return Err(invalid!("the energy grid is empty"));
        }
        if energies_gev.len() > MAX_ENERGIES {
            return Err(invalid!(
                "n_energies = {} is above the limit of {MAX_ENERGIES} energies an ensemble (its age tables take \
                 up to 1.8 MB an energy)",
                energies_gev.len()
            ));
        }
        check_each("energy", energies_gev, |e| transport.check_energy(e))?;
        let spatial = SpatialDistribution::new(params.spatial, params.s_max_kpc)?;
        let mean_sources = params.sn_rate_per_myr * params.t_max_myr * spatial.fraction_within();
        if mean_sources.is_nan() || mean_sources >= 1e12 {
            return Err(invalid!("the mean number of sources {mean_sources} is not below 1e12"));
        }
        let oldest = energies_gev.iter().map(|&e| transport.max_age_unchecked(e)).fold(0.0, f64::max);
        let young_age_myr = oldest.min(params.t_max_myr);
        let (young_mean, young_bound) = young_sources(params, mean_sources, young_age_myr);
        if young_bound > MAX_YOUNG_SOURCES as f64 {
            return Err(invalid!(
                "R_SN t_max P(s < s_max) = {mean_sources:.4e} sources, {young_mean:.4e} of them young enough to \
                 contribute on this grid (T_young = {young_age_myr} Myr): a realisation's workspace would need about \
                 {WORKSPACE_BYTES_PER_SOURCE} x {young_bound:.4e} bytes = {:.1} GiB per thread, above the limit of \
                 {MAX_YOUNG_SOURCES} young sources; lower the supernova rate R_SN or t_max",
                WORKSPACE_BYTES_PER_SOURCE as f64 * young_bound / (1u64 << 30) as f64
            ));
        }
        let bin_width_myr = young_age_myr / AGE_BINS as f64;
        let mut profiles: Vec<AgeProfile> = Vec::with_capacity(energies_gev.len());
        let mut table_bytes = 0usize;
        for &e in energies_gev {
            let mut profile = AgeProfile::build(transport, &params.spectrum, e, bin_width_myr);
            if precision == Precision::F32 {
                profile.add_single_precision();
            }
            table_bytes =
                table_bytes.saturating_add(profile.heap_bytes() + core::mem::size_of::<AgeProfile>());
            if table_bytes > MAX_TABLE_BYTES {
                return Err(invalid!(
                    "the age tables of the first {} of n_energies = {} energies already take {table_bytes} bytes, \
                     above the limit of {MAX_TABLE_BYTES} bytes (4 GiB); use fewer energies",
                    profiles.len() + 1,
                    energies_gev.len()
                ));
            }
            profiles.push(profile);
        }
        let log_age_bins = profiles
            .iter()
            .flat_map(|p: &AgeProfile| &p.segments)
            .filter(|segment| segment.fitted().is_some() && segment.form == Form::LogAge)
            .map(|segment| segment.first_bin + segment.bins)
            .max()
            .unwrap_or(0);
        Ok(Ensemble {
            transport: transport.clone(),
            params: *params,
            spatial,
            energies_gev: energies_gev.to_vec(),
            mean_sources,
            young_age_myr,
            bin_width_myr,
            profiles,
            log_age_bins,
            isa: VectorIsa::selected()?,
            precision,
        })
    }

    /// How the terms are evaluated.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The energy grid [GeV].
    pub fn energies_gev(&self) -> &[f64] {
        &self.energies_gev
    }

    /// The mean number of sources of a realisation, R_SN t_max P(s < s_max).
    pub fn mean_sources(&self) -> f64 {
        self.mean_sources
    }

    /// T_young [Myr]: older sources contribute nothing on this grid and are not drawn.
    pub fn young_age_myr(&self) -> f64 {
        self.young_age_myr
    }

    /// A bound of the memory of one realisation's [`Workspace`] [bytes]: 32 bytes (44 for the
    /// f32 tier) for each of N_young + 8 sqrt(N_young) + 8 sources (N_young the expected number
    /// of young sources), plus 32 KiB. At most about 4 GiB ([`MAX_YOUNG_SOURCES`]).
    pub fn workspace_bytes_bound(&self) -> usize {
        let (_, bound) = young_sources(&self.params, self.mean_sources, self.young_age_myr);
        let per_source = match self.precision {
            Precision::Exact => WORKSPACE_BYTES_PER_SOURCE,
            Precision::F32 => WORKSPACE_BYTES_PER_SOURCE + WORKSPACE_BYTES_PER_SOURCE_F32,
        };
        (per_source as f64 * bound) as usize + (AGE_BINS + 1) * core::mem::size_of::<u32>()
    }

    /// The number of young sources: the first draw of a realisation's stream.
    fn draw_count(&self, stream: &mut Stream) -> usize {
        let fraction = self.young_age_myr / self.params.t_max_myr;
        (if self.params.poisson_count {
            stream.poisson(self.mean_sources * fraction)
        } else {
            stream.binomial(libm::round(self.mean_sources) as u64, fraction)
        }) as usize
    }

    /// The stream of realisation k, positioned after its first draw, and the number of young
    /// sources it draws.
    fn draw_start(&self, seed: u64, realisation: u64) -> (Stream, usize) {
        let mut stream = Stream::new(seed, realisation);
        let count = self.draw_count(&mut stream);
        (stream, count)
    }

    /// The young sources of realisation k (the ones that can contribute on this grid, before
    /// the causal cut), in age-bin order.
    pub fn sources(&self, seed: u64, realisation: u64) -> Sources {
        let (mut stream, count) = self.draw_start(seed, realisation);
        let mut bin_counts = alloc::boxed::Box::new([0u32; AGE_BINS]);
        count_bins(&mut stream, count, &mut bin_counts);
        let mut sources =
            Sources { distance_kpc: Vec::with_capacity(count), age_myr: Vec::with_capacity(count) };
        let mut draw = BlockDraw::new(stream);
        while let Some(block) = draw.next_block(self, &bin_counts) {
            sources.age_myr.extend_from_slice(block.ages);
            sources.distance_kpc.extend_from_slice(block.distances);
        }
        sources
    }

    /// The flux phi(E_i) [GeV^-1 m^-2 s^-1 sr^-1] of realisation k on the grid, into `flux`
    /// (one value per energy).
    pub fn realisation(&self, seed: u64, realisation: u64, flux: &mut [f64]) {
        self.realisation_in(&mut Workspace::default(), seed, realisation, flux);
    }

    /// [`Ensemble::realisation`] reusing a workspace across calls.
    pub fn realisation_in(&self, work: &mut Workspace, seed: u64, realisation: u64, flux: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        match self.isa {
            // SAFETY: VectorIsa::detect found the instruction set on this CPU.
            VectorIsa::Avx512 => return unsafe { self.realisation_avx512(work, seed, realisation, flux) },
            VectorIsa::Avx2 => return unsafe { self.realisation_avx2(work, seed, realisation, flux) },
            VectorIsa::Baseline | VectorIsa::Neon => {}
        }
        self.realisation_lanes(work, seed, realisation, flux)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    unsafe fn realisation_avx512(&self, work: &mut Workspace, seed: u64, realisation: u64, flux: &mut [f64]) {
        self.realisation_lanes(work, seed, realisation, flux)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn realisation_avx2(&self, work: &mut Workspace, seed: u64, realisation: u64, flux: &mut [f64]) {
        self.realisation_lanes(work, seed, realisation, flux)
    }

    /// Draw and sum, compiled for the vector instruction set of the caller.
    #[inline(always)]
    fn realisation_lanes(&self, work: &mut Workspace, seed: u64, realisation: u64, flux: &mut [f64]) {
        self.draw_sorted(work, seed, realisation);
        match self.precision {
            Precision::Exact => {
                for (out, profile) in flux.iter_mut().zip(&self.profiles) {
                    *out = self.energy_sum(profile, work);
                }
            }
            Precision::F32 => {
                for (out, profile) in flux.iter_mut().zip(&self.profiles) {
                    *out = self.energy_sum_f32(profile, work);
                }
            }
        }
    }

    /// Draws the young sources of realisation k in age-bin order ([`BlockDraw`]) into the
    /// columns of the workspace, with `bin_start`, and ln t and 1/t for the sources of the
    /// log-age bins. The causal cut (c t < s) drops sources here.
    #[inline(always)]
    fn draw_sorted(&self, work: &mut Workspace, seed: u64, realisation: u64) {
        // Each column borrowed on its own: the compiler then keeps their addresses in registers
        // instead of reloading them after every store (which it must assume could alias).
        let Workspace {
            bin_start,
            age,
            ln_age,
            inverse_age,
            distance2,
            bin_f32,
            position_f32,
            distance2_f32,
        } = work;
        let (mut stream, count) = self.draw_start(seed, realisation);
        bin_start.clear();
        bin_start.resize(AGE_BINS + 1, 0);
        let bin_counts: &mut [u32; AGE_BINS] =
            (&mut bin_start[1..]).try_into().expect("AGE_BINS + 1 entries");
        count_bins(&mut stream, count, bin_counts);
        // Room for every source and LANES entries of padding (2 F32_LANES for the f32 tier's):
        // a chunk may always load LANES sources. Resized without clearing: every entry up to
        // the number kept is overwritten, and the rest are never used unmasked.
        let single = self.precision == Precision::F32;
        let len = count + LANES;
        age.resize(len, 0.0);
        distance2.resize(len, 0.0);
        if single {
            for column in [&mut *bin_f32, &mut *position_f32, &mut *distance2_f32] {
                column.resize(count + 2 * F32_LANES, 0.0);
            }
        }
        let mut kept = 0;
        let mut draw = BlockDraw::new(stream);
        while let Some(block) = draw.next_block(self, bin_counts) {
            let n = block.ages.len();
            let inside_horizon = |t: f64, s: f64| (t > 0.0) & (s <= SPEED_OF_LIGHT_KPC_PER_MYR * t);
            // Branch-free test of the block; only the youngest bins ever drop a source.
            let all_inside =
                block.ages.iter().zip(block.distances).fold(true, |all, (&t, &s)| all & inside_horizon(t, s));
            if all_inside {
                for ((out_t, out_s2), (&t, &s)) in age[kept..kept + n]
                    .iter_mut()
                    .zip(&mut distance2[kept..kept + n])
                    .zip(block.ages.iter().zip(block.distances))
                {
                    (*out_t, *out_s2) = (t, s * s);
                }
                if single {
                    for (((b, p), d), ((&bin, &u), &s)) in bin_f32[kept..kept + n]
                        .iter_mut()
                        .zip(&mut position_f32[kept..kept + n])
                        .zip(&mut distance2_f32[kept..kept + n])
                        .zip(block.bins.iter().zip(block.positions).zip(block.distances))
                    {
                        (*b, *p, *d) = (bin as f32, u as f32, (s * s) as f32);
                    }
                }
                kept += n;
                continue;
            }
            for (((&bin, &u), &t), &s) in
                block.bins.iter().zip(block.positions).zip(block.ages).zip(block.distances)
            {
                if !inside_horizon(t, s) {
                    bin_counts[bin as usize] -= 1;
                    continue;
                }
                (age[kept], distance2[kept]) = (t, s * s);
                if single {
                    (bin_f32[kept], position_f32[kept], distance2_f32[kept]) =
                        (bin as f32, u as f32, (s * s) as f32);
                }
                kept += 1;
            }
        }
        // Counts to starts. The running total in a register (a chain through memory costs a
        // store-to-load forwarding per bin).
        let mut total = 0;
        for start in bin_start.iter_mut() {
            total += *start;
            *start = total;
        }
        // ln t and 1/t for the sources of the log-age bins, a prefix of the columns.
        let n_log_age = bin_start[self.log_age_bins] as usize;
        ln_age.clear();
        ln_age.extend(age[..n_log_age].iter().map(|&t| ln(t)));
        ln_age.resize(n_log_age + LANES, 0.0);
        inverse_age.clear();
        inverse_age.extend(age[..n_log_age].iter().map(|&t| 1.0 / t));
        inverse_age.resize(n_log_age + LANES, 0.0);
    }

    /// The flux at one energy: the polynomial loop over the fitted segments, then the loose
    /// and direct bins that can matter.
    #[inline(always)]
    fn energy_sum(&self, profile: &AgeProfile, work: &Workspace) -> f64 {
        let sources_of = |segment: &Segment| {
            work.bin_start[segment.first_bin] as usize
                ..work.bin_start[segment.first_bin + segment.bins] as usize
        };
        // One partial sum per lane over all the fitted segments, added up once at the end.
        let mut partial = [0.0; LANES];
        for (segment, &local) in profile.segments.iter().zip(&profile.local) {
            let range = sources_of(segment);
            if let (Some(polynomials), false) = (segment.fitted(), range.is_empty()) {
                polynomial_sum(segment.form, polynomials, local, work, range, &mut partial);
            }
        }
        let fitted_total = lane_total(&partial);
        self.add_unfitted(profile, work, fitted_total)
    }

    /// `fitted_total` (the sum of the fitted segments) plus the loose and direct bins that can
    /// matter next to it, added one by one.
    #[inline(always)]
    fn add_unfitted(&self, profile: &AgeProfile, work: &Workspace, fitted_total: f64) -> f64 {
        let sources_of = |segment: &Segment| {
            work.bin_start[segment.first_bin] as usize
                ..work.bin_start[segment.first_bin + segment.bins] as usize
        };
        let mut total = fitted_total;
        for &i in &profile.unfitted {
            let (segment, local) = (&profile.segments[i], profile.local[i]);
            let range = sources_of(segment);
            let count = range.len() as f64;
            let negligible = || count * segment.amplitude_bound <= NEGLIGIBLE_FRACTION * fitted_total;
            match &segment.evaluation {
                Evaluation::Fitted(_) => {}
                _ if range.is_empty() || negligible() => {}
                Evaluation::Loose { polynomials, error_bound }
                    if count * error_bound <= LOOSE_FRACTION * fitted_total =>
                {
                    let mut partial = [0.0; LANES];
                    polynomial_sum(segment.form, polynomials, local, work, range, &mut partial);
                    total += lane_total(&partial);
                }
                _ => total += self.direct_sum(profile, work, range),
            }
        }
        total
    }

    /// [`Self::energy_sum`] with the plain fitted segments in binary32 ([`Precision::F32`]);
    /// the energy is summed by the exact tier where terms that underflowed in binary32 could
    /// move it by F32_UNDERFLOW_FRACTION.
    #[inline(always)]
    fn energy_sum_f32(&self, profile: &AgeProfile, work: &Workspace) -> f64 {
        let sources_of = |segment: &Segment| {
            work.bin_start[segment.first_bin] as usize
                ..work.bin_start[segment.first_bin + segment.bins] as usize
        };
        let columns = SingleColumns {
            bin: &work.bin_f32,
            position: &work.position_f32,
            distance2: &work.distance2_f32,
        };
        let mut partial = [0.0; LANES];
        let (mut single_total, mut underflow_bound) = (0.0, 0.0);
        for ((segment, &local), single) in profile.segments.iter().zip(&profile.local).zip(&profile.single) {
            let range = sources_of(segment);
            if range.is_empty() {
                continue;
            }
            match (single, segment.fitted()) {
                (Some(single), _) => {
                    let count = range.len() as f64;
                    single_total += single.scale * segment_sum_f32(single, segment, &columns, range);
                    underflow_bound += count * single.underflow_bound;
                }
                (None, Some(polynomials)) => {
                    polynomial_sum(segment.form, polynomials, local, work, range, &mut partial)
                }
                (None, None) => {}
            }
        }
        let fitted_total = lane_total(&partial) + single_total;
        if underflow_bound > F32_UNDERFLOW_FRACTION * fitted_total {
            return self.energy_sum(profile, work);
        }
        self.add_unfitted(profile, work, fitted_total)
    }

    /// The direct formula over the sources `range` (ages beyond max_age add exactly zero).
    #[inline(never)]
    fn direct_sum(&self, profile: &AgeProfile, work: &Workspace, range: core::ops::Range<usize>) -> f64 {
        let direct = DirectProfile {
            transport: &self.transport,
            spectrum: &self.params.spectrum,
            energy_gev: profile.energy_gev,
            ln_rate: profile.ln_rate,
        };
        range
            .filter(|&j| work.age[j] < profile.max_age_myr)
            .map(|j| {
                let (ln_a, l2) = direct.at(work.age[j]);
                exp(ln_a - work.distance2[j] / (4.0 * l2))
            })
            .sum()
    }
}

/// Adds the terms of the sources `range` of a segment of `form` by its polynomials to
/// `partial`.
#[inline(always)]
fn polynomial_sum(
    form: Form,
    polynomials: &Polynomials,
    local: LocalCoordinate,
    work: &Workspace,
    range: core::ops::Range<usize>,
    partial: &mut [f64; LANES],
) {
    match form {
        Form::Plain => {
            let columns =
                Columns { age: &work.age, ln_age: &[], inverse_age: &[], distance2: &work.distance2 };
            segment_sum::<false>(polynomials, local, &columns, range, partial);
        }
        Form::LogAge => {
            let columns = Columns {
                age: &work.age,
                ln_age: &work.ln_age,
                inverse_age: &work.inverse_age,
                distance2: &work.distance2,
            };
            segment_sum::<true>(polynomials, local, &columns, range, partial);
        }
    }
}

/// The map from age t to the local coordinate x = 2 (t / width - index) - 1 of a segment.
#[derive(Clone, Copy, Debug)]
struct LocalCoordinate {
    inverse_width: f64,
    index: f64,
}

/// The sorted source columns, each with LANES entries of padding at the end (ln t and 1/t
/// cover the log-age prefix only, and are empty for a plain segment).
#[derive(Clone, Copy, Debug)]
struct Columns<'a> {
    age: &'a [f64],
    ln_age: &'a [f64],
    inverse_age: &'a [f64],
    distance2: &'a [f64],
}

/// One chunk of LANES sources.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    age: [f64; LANES],
    ln_age: [f64; LANES],
    inverse_age: [f64; LANES],
    distance2: [f64; LANES],
}

impl Chunk {
    /// Sources start..start + LANES of the (padded) columns.
    #[inline(always)]
    fn load<const LOG_AGE: bool>(columns: &Columns, start: usize) -> Self {
        let lanes = |column: &[f64]| -> [f64; LANES] {
            let mut lanes = [0.0; LANES];
            lanes.copy_from_slice(&column[start..start + LANES]);
            lanes
        };
        Chunk {
            age: lanes(columns.age),
            ln_age: if LOG_AGE { lanes(columns.ln_age) } else { [0.0; LANES] },
            inverse_age: if LOG_AGE { lanes(columns.inverse_age) } else { [0.0; LANES] },
            distance2: lanes(columns.distance2),
        }
    }
}

/// Adds the contributions of the sources `range` of one segment (see [`Form`]) to the lane
/// sums `partial`: branch-free, in chunks of LANES sources, the lanes of the last chunk past
/// the segment's end masked to zero (the same order on every machine and instruction set).
#[inline(always)]
fn segment_sum<const LOG_AGE: bool>(
    polynomials: &Polynomials,
    local: LocalCoordinate,
    columns: &Columns,
    range: core::ops::Range<usize>,
    partial: &mut [f64; LANES],
) {
    const LANE_INDEX: [f64; LANES] = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
    let mut sums = *partial;
    // Sources left from the chunk's first on, as a float: the mask is one vector compare.
    let mut remaining = range.len() as f64;
    for start in range.step_by(LANES) {
        let terms = chunk_terms::<LOG_AGE>(polynomials, local, &Chunk::load::<LOG_AGE>(columns, start));
        for ((sum, term), index) in sums.iter_mut().zip(terms).zip(LANE_INDEX) {
            *sum += if index < remaining { term } else { 0.0 };
        }
        remaining -= LANES as f64;
    }
    *partial = sums;
}

/// The f32 tier's sorted source columns (see [`Workspace`]), with LANES entries of padding.
#[derive(Clone, Copy, Debug)]
struct SingleColumns<'a> {
    bin: &'a [f32],
    position: &'a [f32],
    distance2: &'a [f32],
}

/// The sum of e^(da - s^2 h) over the sources `range` of a plain fitted segment in binary32
/// (see [`SinglePolynomials`]), accumulated per lane in binary64, the lanes of the last chunk
/// past the segment's end masked to zero (the same order on every machine and instruction set).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // lane l of several arrays at once
fn segment_sum_f32(
    single: &SinglePolynomials,
    segment: &Segment,
    columns: &SingleColumns,
    range: core::ops::Range<usize>,
) -> f64 {
    const STEP: usize = 2 * F32_LANES;
    const LANE_INDEX: [f64; STEP] = {
        let mut index = [0.0; STEP];
        let mut l = 0;
        while l < STEP {
            index[l] = l as f64;
            l += 1;
        }
        index
    };
    // x = (2 / bins) ((bin - first_bin) + position) - 1: the difference of bins is exact.
    let first_bin = segment.first_bin as f32;
    let scale = 2.0 / segment.bins as f32;
    let [da, h] = &single.polynomials;
    let mut sums = [0.0f64; F32_LANES];
    let mut remaining = range.len() as f64;
    // Two chunks a step: two independent chains through the polynomials and e^y (one chain
    // of 8 lanes is bound by their latency), both added into the same 8 binary64 sums, first
    // chunk first.
    for start in range.step_by(STEP) {
        let lanes = |column: &[f32]| -> [f32; STEP] {
            let mut lanes = [0.0; STEP];
            lanes.copy_from_slice(&column[start..start + STEP]);
            lanes
        };
        let (bin, position, distance2) =
            (lanes(columns.bin), lanes(columns.position), lanes(columns.distance2));
        // The binary32 terms first, then their binary64 sums: one loop of each width, so that
        // both fill whole vector registers.
        let mut terms = [0.0f32; STEP];
        for l in 0..STEP {
            let x = ((bin[l] - first_bin) + position[l]) * scale - 1.0;
            terms[l] = exp_normal_f32(estrin_f32(da, x) - distance2[l] * estrin_f32(h, x));
        }
        for l in 0..STEP {
            sums[l % F32_LANES] += if LANE_INDEX[l] < remaining { f64::from(terms[l]) } else { 0.0 };
        }
        remaining -= STEP as f64;
    }
    lane_total(&sums)
}

/// e^y in binary32 for y >= F32_EXPONENT_FLOOR, 0 below, with fused multiply-adds (a short
/// dependency chain: one chain of 8 lanes is bound by its latency): y = k ln 2 + r, |r| <=
/// ln2/2, e^r by its degree-7 Taylor polynomial in Estrin's form (truncation 5e-9), 2^k from
/// exponent bits. No subnormal number is ever formed (x86 cores take a microcode assist for
/// each); the terms flushed are within the underflow bound of [`SinglePolynomials`]. Relative
/// error below 2.5e-7 (tested against binary64).
#[inline(always)]
fn exp_normal_f32(y: f32) -> f32 {
    const FLOOR: f32 = F32_EXPONENT_FLOOR as f32;
    const LOG2_E: f32 = core::f32::consts::LOG2_E;
    // ln 2 split so that k * LN2_HI is exact for |k| < 2^9.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding 1.5 * 2^23 rounds to an integer held in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    let clamped = y.clamp(FLOOR, 80.0);
    let shifted = mul_add_f32(clamped, LOG2_E, SHIFTER);
    let k = shifted - SHIFTER;
    let r = mul_add_f32(-k, LN2_LO, mul_add_f32(-k, LN2_HI, clamped));
    let r2 = r * r;
    let low = mul_add_f32(mul_add_f32(1.0 / 6.0, r, 0.5), r2, r + 1.0);
    let high =
        mul_add_f32(mul_add_f32(1.0 / 5040.0, r, 1.0 / 720.0), r2, mul_add_f32(1.0 / 120.0, r, 1.0 / 24.0));
    let p = mul_add_f32(high, r2 * r2, low);
    // k in [-126, 116]: 2^k is a normal number, and so is p 2^k.
    let power = f32::from_bits(shifted.to_bits().wrapping_sub(SHIFTER.to_bits()).wrapping_add(127) << 23);
    if y < FLOOR { 0.0 } else { p * power }
}

/// [`estrin`] in binary32 with fused multiply-adds (the same bits on every instruction set).
#[inline(always)]
fn estrin_f32(c: &[f32; CELL_POINTS], x: f32) -> f32 {
    let x2 = x * x;
    let x4 = x2 * x2;
    let low = mul_add_f32(mul_add_f32(c[3], x, c[2]), x2, mul_add_f32(c[1], x, c[0]));
    let high = mul_add_f32(c[8], x4, mul_add_f32(mul_add_f32(c[7], x, c[6]), x2, mul_add_f32(c[5], x, c[4])));
    mul_add_f32(high, x4, low)
}

/// The sum of the lane sums, in a fixed order. Not inlined: the loops above then keep their
/// lane sums in one vector register instead of the pairs this order suggests.
#[inline(never)]
fn lane_total(partial: &[f64; LANES]) -> f64 {
    ((partial[0] + partial[1]) + (partial[2] + partial[3]))
        + ((partial[4] + partial[5]) + (partial[6] + partial[7]))
}

/// The contributions of LANES sources from the segment polynomials.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // lane l of five arrays at once
fn chunk_terms<const LOG_AGE: bool>(
    polynomials: &Polynomials,
    local: LocalCoordinate,
    chunk: &Chunk,
) -> [f64; LANES] {
    let mut terms = [0.0; LANES];
    for l in 0..LANES {
        let x = 2.0 * mul_add(chunk.age[l], local.inverse_width, -local.index) - 1.0;
        let a = estrin(&polynomials[0], x);
        let h = estrin(&polynomials[1], x);
        let exponent = if LOG_AGE {
            mul_add(-1.5, chunk.ln_age[l], a) - chunk.distance2[l] * h * chunk.inverse_age[l]
        } else {
            mul_add(-chunk.distance2[l], h, a)
        };
        terms[l] = exp_branchless(exponent);
    }
    terms
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::physics::losses::{EnergyLosses, LossModel};
    use crate::physics::photon_field::PhotonField;

    /// The SECRET single-point setup (19 energies, exact KN losses, the spiral model) at the
    /// supernova rate `rate` [1/Myr], and its energies.
    fn secret_setup(rate: f64) -> (Ensemble, Vec<f64>) {
        let energies: Vec<f64> = (0..19).map(|i| libm::pow(10.0, 2.4 + 0.1 * i as f64)).collect();
        let losses = EnergyLosses::new(LossModel::KleinNishina, &PhotonField::default_field());
        let transport = Transport::new(&losses, 3e28, 0.6, 4.0, 100.0, 1e7).unwrap();
        let params = EnsembleParams {
            sn_rate_per_myr: rate,
            t_max_myr: 7.0,
            s_max_kpc: 10.0,
            spatial: SpatialModel::SpiralArms,
            poisson_count: false,
            spectrum: SourceSpectrum::from_energy_erg(1e48, 1.0, 2.2, 1e4).unwrap(),
        };
        (Ensemble::new(&transport, &params, &energies).unwrap(), energies)
    }

    /// The loose bins of the SECRET setup give the flux of the direct formula on them to
    /// 1e-15 (their polynomials are used only where their error cannot show).
    #[test]
    fn loose_bins_agree_with_the_direct_formula() {
        let (ensemble, energies) = secret_setup(4.55e4);
        let mut direct_only = ensemble.clone();
        let mut loose = 0;
        for segment in direct_only.profiles.iter_mut().flat_map(|p| &mut p.segments) {
            if let Evaluation::Loose { .. } = segment.evaluation {
                segment.evaluation = Evaluation::Direct;
                loose += 1;
            }
        }
        assert!(loose >= 100, "{loose} loose bins");
        let (mut flux, mut reference) = (std::vec![0.0; energies.len()], std::vec![0.0; energies.len()]);
        for k in 0..4 {
            ensemble.realisation(5, k, &mut flux);
            direct_only.realisation(5, k, &mut reference);
            for (f, r) in flux.iter().zip(&reference) {
                assert!(((f - r) / r).abs() <= 1e-15, "{f} vs {r}");
            }
        }
    }

    /// The f32 tier's e^y: within 2.5e-7 of binary64's on [-87, 80], 0 below, never subnormal.
    #[test]
    fn normal_f32_exp_is_accurate_and_flushes() {
        let mut worst: f64 = 0.0;
        for i in 0..=400_000 {
            let y = -87.0 + 167.0 * i as f32 / 400_000.0;
            let value = exp_normal_f32(y);
            assert!(value.is_normal(), "{y}: {value}");
            worst = worst.max((f64::from(value) / f64::from(y).exp() - 1.0).abs());
        }
        assert!(worst < 2.5e-7, "{worst:e}");
        for y in [-87.001f32, -100.0, -1e30, f32::NEG_INFINITY] {
            assert_eq!(exp_normal_f32(y), 0.0, "{y}");
        }
    }

    /// The baseline, AVX2 and AVX-512 builds of the evaluation give the same bits.
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let (mut ensemble, energies) = secret_setup(4e3);
        let flux_on = |ensemble: &Ensemble| {
            let mut flux = std::vec![0.0; 3 * energies.len()];
            for (k, row) in flux.chunks_mut(energies.len()).enumerate() {
                ensemble.realisation(11, k as u64, row);
            }
            flux
        };
        let widest = flux_on(&ensemble);
        for isa in VectorIsa::available() {
            ensemble.isa = isa;
            let flux = flux_on(&ensemble);
            assert!(flux.iter().zip(&widest).all(|(a, b)| a.to_bits() == b.to_bits()), "{isa:?}");
        }
        // The f32 tier too.
        let mut single =
            Ensemble::new_with_precision(&ensemble.transport, &ensemble.params, &energies, Precision::F32)
                .unwrap();
        let widest = flux_on(&single);
        for isa in VectorIsa::available() {
            single.isa = isa;
            let flux = flux_on(&single);
            assert!(flux.iter().zip(&widest).all(|(a, b)| a.to_bits() == b.to_bits()), "f32 tier, {isa:?}");
        }
    }
}
