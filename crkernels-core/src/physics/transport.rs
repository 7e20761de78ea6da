//! Transport of electrons with energy losses: the loss-time and loss-length integrals and the
//! initial energy of a particle of given age (SECRET eqs. 2.2 and 2.6; PHYSICS.md, "Transport").
//!
//! With kappa(E) = kappa0 (E / 1 GeV)^delta and E_top the upper end of the table:
//! - T(E) = integral_E^E_top dE'/b(E') [Myr], L(E) = integral_E^E_top kappa(E')/b(E') dE' [kpc^2];
//! - loss time tau(E, E0) = T(E) - T(E0), loss length l^2(E, E0) = L(E) - L(E0), E <= E0;
//! - initial energy E0(E, t), the solution of T(E) - T(E0) = t (infinite where E0 > E_top).
//!
//! Method. Both integrals are tabulated once on the piecewise grid of [`PiecewisePoly`]: on
//! each piece the integrand is interpolated at 10 Chebyshev points and integrated exactly, so
//! each piece holds P_j(t) = integral from x(t) to the piece's right edge. Differences
//! tau and l^2 are assembled from non-negative parts (the rest of E's piece, the whole pieces
//! in between, the start of E0's piece, with the same-piece case computed as a divided
//! difference), so they keep full relative accuracy even when E0 is within rounding of E.
//! E0 is read from a second table, of 1/E0 as a function of y = T(E0), on the same kind of
//! grid in y; below y = 2^-20 tau_top (E0 within 1e-6 of E_top) the first-order form
//! 1/E0 = 1/E_top + y / (tau_top E_top) is exact to 1e-12.

use alloc::vec::Vec;

use crate::batch::{map_checked, map2_checked};
use crate::error::{Result, invalid, out_of_domain, require_finite, require_non_negative, require_positive};
use crate::math::chebyshev;
use crate::math::piecewise::PiecewisePoly;
use crate::math::powf;
use crate::physics::losses::EnergyLosses;
use crate::units::{CM2_PER_S_TO_KPC2_PER_MYR, MYR_S};

/// Chebyshev points per piece for the integrands 1/b and kappa/b (degree 9).
const INTEGRAND_POINTS: usize = 10;
/// Coefficients per piece of the integrals (one degree more than the integrands).
const INTEGRAL_COEFFICIENTS: usize = INTEGRAND_POINTS + 1;
/// Coefficients per piece of the inverse table 1/E0(y).
const INVERSE_COEFFICIENTS: usize = 10;
/// An initial energy within this fraction of E gets one Newton step (see initial_energy).
const CLOSE_ENERGY_FRACTION: f64 = 1e-3;
/// Below this fraction of tau_top the initial energy uses its first-order form.
const INVERSE_LINEAR_BELOW: f64 = 1.0 / (1u64 << 20) as f64;

/// A tabulated integral I(E) = integral_E^E_top g(E') dE' of a positive integrand.
#[derive(Clone, Debug)]
struct LossIntegral {
    /// Per piece j: P_j(t) = integral from E(t) to the right edge of the piece.
    pieces: PiecewisePoly<INTEGRAL_COEFFICIENTS>,
    /// at_left[j] = I(left edge of piece j); at_left[n] = 0 (one entry more than pieces).
    at_left: Vec<f64>,
}

impl LossIntegral {
    fn build(lo: f64, hi: f64, integrand: impl Fn(f64) -> f64) -> Self {
        let nodes = chebyshev::nodes(INTEGRAND_POINTS);
        let pieces = PiecewisePoly::from_chebyshev(lo, hi, |left, right| {
            let half_width = 0.5 * (right - left);
            let samples: Vec<f64> = nodes.iter().map(|&t| integrand(left + half_width * (1.0 + t))).collect();
            // I(t) = integral_{-1}^{t} g; the piece's P(t) = half_width (I(1) - I(t)).
            let from_left = chebyshev::integral(&chebyshev::coefficients(&samples));
            let whole: f64 = from_left.iter().sum(); // I(1), as T_k(1) = 1
            let mut c = [0.0; INTEGRAL_COEFFICIENTS];
            for (ck, &ik) in c.iter_mut().zip(&from_left) {
                *ck = -half_width * ik;
            }
            c[0] += half_width * whole;
            c
        });
        let mut at_left = alloc::vec![0.0; pieces.pieces().len() + 1];
        for (j, piece) in pieces.pieces().iter().enumerate().rev() {
            at_left[j] = at_left[j + 1] + piece.poly(-1.0);
        }
        LossIntegral { pieces, at_left }
    }

    /// I(E) for E in the table's range.
    #[inline(always)]
    fn value(&self, energy: f64) -> f64 {
        let j = self.pieces.index(energy);
        let piece = &self.pieces.pieces()[j];
        piece.poly(piece.local(energy)) + self.at_left[j + 1]
    }

    /// I(E) - I(E0) for E <= E0 in the table's range, as a sum of non-negative parts.
    #[inline]
    fn between(&self, energy: f64, initial_energy: f64) -> f64 {
        let j = self.pieces.index(energy);
        let k = self.pieces.index(initial_energy);
        let pieces = self.pieces.pieces();
        let (pj, pk) = (&pieces[j], &pieces[k]);
        if j == k {
            let (t, t0) = (pj.local(energy), pj.local(initial_energy));
            return pj.poly_difference(t, t0, pj.local_difference(energy, initial_energy));
        }
        let rest_of_first = pj.poly(pj.local(energy));
        let whole_pieces_between = self.at_left[j + 1] - self.at_left[k];
        let start_of_last =
            pk.poly_difference(-1.0, pk.local(initial_energy), pk.local_difference(pk.left, initial_energy));
        rest_of_first + whole_pieces_between + start_of_last
    }

    /// The energy E with I(E) = y, for 0 <= y <= I(lo), by Newton's method on the piece that
    /// holds it (bracketed, so it cannot leave the piece).
    fn solve(&self, y: f64) -> f64 {
        let pieces = self.pieces.pieces();
        let j = self.at_left.partition_point(|&v| v > y).clamp(1, pieces.len()) - 1;
        let piece = &pieces[j];
        let target = y - self.at_left[j + 1];
        let whole = self.at_left[j] - self.at_left[j + 1];
        // P decreases from `whole` at t = -1 to 0 at t = 1.
        let (mut lo, mut hi) = (-1.0, 1.0);
        let mut t = if whole > 0.0 { 1.0 - 2.0 * target / whole } else { 0.0 };
        for _ in 0..100 {
            let residual = piece.poly(t) - target;
            if residual > 0.0 {
                lo = t
            } else {
                hi = t
            }
            let slope = piece.poly_derivative(t);
            let mut next = t - residual / slope;
            if !(next > lo && next < hi) {
                next = 0.5 * (lo + hi);
            }
            if (next - t).abs() <= 1e-17 + 4.0 * f64::EPSILON * t.abs() {
                t = next;
                break;
            }
            t = next;
        }
        piece.at_local(t.clamp(-1.0, 1.0))
    }
}

/// Electron transport with energy losses on an energy range [E_min, E_max] (E_max = E_top):
/// the loss-time and loss-length tables and the initial-energy look-up.
///
/// Immutable after construction and safe to share across threads.
///
/// Accuracy (tests/transport.rs): tau and l^2 to ~1e-14 relative, also for E0 within rounding
/// of E; E0(E, t) to ~1e-11, plus what the conditioning of the problem adds near the
/// divergence: a relative error r in T moves E0 by r T(E) b(E0)/E0 (up to E0/E), for this or
/// any double-precision method.
#[derive(Clone, Debug)]
pub struct Transport {
    losses: EnergyLosses,
    kappa0_cm2_per_s: f64,
    delta: f64,
    halo_half_height_kpc: Option<f64>,
    energy_min_gev: f64,
    energy_max_gev: f64,
    /// T(E) [Myr].
    loss_time: LossIntegral,
    /// L(E) [kpc^2].
    loss_length: LossIntegral,
    /// 1/E0 [1/GeV] as a function of y = T(E0) [Myr], on [linear_below, T(E_min)].
    inverse: PiecewisePoly<INVERSE_COEFFICIENTS>,
    /// Below this y [Myr], 1/E0 = 1/E_top + y / (tau_top E_top).
    linear_below_myr: f64,
    /// tau_top = E_top / b(E_top) [Myr].
    top_loss_time_myr: f64,
}

impl Transport {
    /// Builds the tables.
    ///
    /// - `losses`: the energy-loss model b(E);
    /// - `kappa0_cm2_per_s`: the diffusion coefficient at 1 GeV [cm^2/s], finite and > 0;
    /// - `delta`: its power-law index, kappa = kappa0 (E/GeV)^delta (finite; 1 works);
    /// - `z_max_kpc`: the halo half-height [kpc]; <= 0 or +infinity means no boundary;
    /// - `energy_min_gev` < `energy_max_gev` [GeV]: the table's range; E_max is E_top.
    ///
    /// Errors: a parameter that is NaN, infinite where it must be finite, or of the wrong sign
    /// (InvalidArgument); E_min >= E_max (InvalidArgument); losses that vanish (an empty field
    /// without magnetic field: InvalidArgument); losses undefined somewhere in the range
    /// (OutOfDomain: the first-order Klein-Nishina expansion above its zero); a range so wide
    /// that b(E_min) underflows or T(E_min), L(E_min) overflow (OutOfDomain).
    ///
    /// Memory and time: the tables have one piece per eighth of an octave of [E_min, E_max]
    /// (P = 8 log2(E_max / E_min) + 2 pieces of 2 x 128 bytes) and of the loss-time range of the
    /// inverse table (P' pieces of 112 bytes, P' = 8 log2(T(E_min) / y_lin) + 2, y_lin =
    /// 2^-20 min(tau_top, T(E_min))); both are at most 16376, the eighth-octaves of all positive
    /// doubles, so 256 P + 112 P' <= 6.1 MB for any range (plus the copy of the losses). Each
    /// piece costs 20 loss evaluations and the inverse's 10 root solves: about 0.25 s for
    /// [1e-150, 1e150] GeV.
    pub fn new(
        losses: &EnergyLosses,
        kappa0_cm2_per_s: f64,
        delta: f64,
        z_max_kpc: f64,
        energy_min_gev: f64,
        energy_max_gev: f64,
    ) -> Result<Self> {
        require_positive("diffusion coefficient kappa0 [cm^2/s]", kappa0_cm2_per_s)?;
        require_finite("diffusion index delta", delta)?;
        if z_max_kpc.is_nan() {
            return Err(invalid!("halo half-height z_max [kpc] must not be NaN"));
        }
        require_positive("minimum energy E_min [GeV]", energy_min_gev)?;
        require_positive("maximum energy E_max [GeV]", energy_max_gev)?;
        if energy_min_gev >= energy_max_gev {
            return Err(invalid!(
                "the energy range needs E_min < E_max, got E_min = {energy_min_gev} GeV, E_max = {energy_max_gev} GeV"
            ));
        }
        if energy_max_gev >= losses.max_energy_gev() {
            return Err(out_of_domain!(
                "the loss model is undefined above {} GeV, below the table's E_max = {energy_max_gev} GeV",
                losses.max_energy_gev()
            ));
        }
        if !losses.rate_unchecked(energy_max_gev).is_finite() {
            return Err(out_of_domain!(
                "the loss rate b(E) overflows at E_max = {energy_max_gev:e} GeV: the loss time there is beyond \
                 double precision; lower E_max"
            ));
        }
        if losses.rate_unchecked(energy_min_gev) <= 0.0 && losses.rate_unchecked(energy_max_gev) > 0.0 {
            return Err(out_of_domain!(
                "the loss rate b(E) underflows to zero at E_min = {energy_min_gev:e} GeV: the loss time there is \
                 beyond double precision; raise E_min"
            ));
        }
        if losses.rate_unchecked(energy_min_gev) <= 0.0 {
            return Err(invalid!(
                "the losses vanish (no photon field and no magnetic field): loss times are infinite"
            ));
        }
        let halo_half_height_kpc = (z_max_kpc > 0.0 && z_max_kpc.is_finite()).then_some(z_max_kpc);

        let kappa0_kpc2_per_myr = kappa0_cm2_per_s * CM2_PER_S_TO_KPC2_PER_MYR;
        let rate_per_myr = |e: f64| losses.rate_unchecked(e) * MYR_S; // GeV/Myr
        let loss_time = LossIntegral::build(energy_min_gev, energy_max_gev, |e| 1.0 / rate_per_myr(e));
        let loss_length = LossIntegral::build(energy_min_gev, energy_max_gev, |e| {
            kappa0_kpc2_per_myr * powf(e, delta) / rate_per_myr(e)
        });

        let top_loss_time_myr = energy_max_gev / rate_per_myr(energy_max_gev);
        let oldest = loss_time.at_left[0];
        if !(oldest.is_finite() && loss_length.at_left[0].is_finite() && top_loss_time_myr > 0.0) {
            return Err(out_of_domain!(
                "the energy range [{energy_min_gev:e}, {energy_max_gev:e}] GeV is beyond double precision for these \
                 losses: T(E_min) = {oldest} Myr, L(E_min) = {} kpc^2, E_max / b(E_max) = {top_loss_time_myr} Myr; \
                 narrow it",
                loss_length.at_left[0]
            ));
        }
        // Where E0 is within 2^-20 of E_top in loss-time units, the first-order form is exact to
        // 2^-40 of E0 - E, also for a table narrower than tau_top.
        let linear_below_myr = INVERSE_LINEAR_BELOW * top_loss_time_myr.min(oldest);
        let inverse = PiecewisePoly::interpolate(linear_below_myr, oldest, |y| 1.0 / loss_time.solve(y));

        Ok(Transport {
            losses: losses.clone(),
            kappa0_cm2_per_s,
            delta,
            halo_half_height_kpc,
            energy_min_gev,
            energy_max_gev,
            loss_time,
            loss_length,
            inverse,
            linear_below_myr,
            top_loss_time_myr,
        })
    }

    /// The loss model.
    pub fn losses(&self) -> &EnergyLosses {
        &self.losses
    }

    /// kappa0 [cm^2/s].
    pub fn kappa0_cm2_per_s(&self) -> f64 {
        self.kappa0_cm2_per_s
    }

    /// delta.
    pub fn delta(&self) -> f64 {
        self.delta
    }

    /// The halo half-height [kpc], None without a boundary.
    pub fn halo_half_height_kpc(&self) -> Option<f64> {
        self.halo_half_height_kpc
    }

    /// The table's range [E_min, E_max] [GeV].
    pub fn energy_range_gev(&self) -> (f64, f64) {
        (self.energy_min_gev, self.energy_max_gev)
    }

    /// Checks an observed energy [GeV]: finite and in [E_min, E_max].
    pub fn check_energy(&self, energy_gev: f64) -> Result<()> {
        require_positive("electron energy [GeV]", energy_gev)?;
        if energy_gev < self.energy_min_gev || energy_gev > self.energy_max_gev {
            return Err(out_of_domain!(
                "energy {energy_gev} GeV is outside the transport table [{}, {}] GeV",
                self.energy_min_gev,
                self.energy_max_gev
            ));
        }
        Ok(())
    }

    /// Checks a pair (E, E0): E in the table, E <= E0, and E0 in the table or +infinity.
    fn check_pair(&self, energy_gev: f64, initial_energy_gev: f64) -> Result<()> {
        self.check_energy(energy_gev)?;
        if initial_energy_gev == f64::INFINITY {
            return Ok(());
        }
        require_positive("initial energy E0 [GeV]", initial_energy_gev)?;
        if initial_energy_gev < energy_gev {
            return Err(out_of_domain!(
                "initial energy E0 = {initial_energy_gev} GeV is below the observed energy E = {energy_gev} GeV"
            ));
        }
        if initial_energy_gev > self.energy_max_gev {
            return Err(out_of_domain!(
                "initial energy E0 = {initial_energy_gev} GeV is above the transport table's E_max = {} GeV",
                self.energy_max_gev
            ));
        }
        Ok(())
    }

    /// The oldest age [Myr] that still contributes at E [GeV] (E checked): T(E), the age at
    /// which the initial energy reaches E_top.
    #[inline]
    pub fn max_age_unchecked(&self, energy_gev: f64) -> f64 {
        self.loss_time.value(energy_gev)
    }

    /// Loss time tau(E, E0) = T(E) - T(E0) [Myr] (arguments checked; E0 = +inf gives +inf).
    #[inline]
    pub fn loss_time_unchecked(&self, energy_gev: f64, initial_energy_gev: f64) -> f64 {
        if initial_energy_gev == f64::INFINITY {
            return f64::INFINITY;
        }
        self.loss_time.between(energy_gev, initial_energy_gev)
    }

    /// Loss length l^2(E, E0) = L(E) - L(E0) [kpc^2] (arguments checked; E0 = +inf gives +inf).
    #[inline]
    pub fn loss_length2_unchecked(&self, energy_gev: f64, initial_energy_gev: f64) -> f64 {
        if initial_energy_gev == f64::INFINITY {
            return f64::INFINITY;
        }
        self.loss_length.between(energy_gev, initial_energy_gev)
    }

    /// Initial energy E0(E, t) [GeV] of a particle seen at E [GeV] after t [Myr] (arguments
    /// checked); +infinity where E0 would exceed E_top.
    #[inline]
    pub fn initial_energy_unchecked(&self, energy_gev: f64, age_myr: f64) -> f64 {
        if age_myr == 0.0 {
            return energy_gev;
        }
        let y = self.loss_time.value(energy_gev) - age_myr;
        let from_table = if y < 0.0 {
            return f64::INFINITY;
        } else if y < self.linear_below_myr {
            self.energy_max_gev / (1.0 + y / self.top_loss_time_myr)
        } else {
            1.0 / self.inverse.eval(y)
        };
        if from_table - energy_gev >= CLOSE_ENERGY_FRACTION * from_table {
            return from_table;
        }
        // E0 close to E (a young source, or a narrow table): tau(E, E0) changes by
        // E0/(E0 - E) times E0's relative rounding, so the table's few ulps would show in tau
        // and l^2. One Newton step on tau(E, E0) = t with the cancellation-free tau brings E0
        // to the double nearest the solution: dE0 = -(tau(E, E0) - t) b(E0).
        let rate_per_myr = self.losses.rate_unchecked(from_table) * MYR_S;
        let refined = from_table - (self.loss_time.between(energy_gev, from_table) - age_myr) * rate_per_myr;
        refined.max(energy_gev)
    }

    /// [`Transport::max_age_unchecked`] with its argument checked.
    pub fn max_age(&self, energy_gev: f64) -> Result<f64> {
        self.check_energy(energy_gev)?;
        Ok(self.max_age_unchecked(energy_gev))
    }

    /// [`Transport::loss_time_unchecked`] with its arguments checked.
    pub fn loss_time(&self, energy_gev: f64, initial_energy_gev: f64) -> Result<f64> {
        self.check_pair(energy_gev, initial_energy_gev)?;
        Ok(self.loss_time_unchecked(energy_gev, initial_energy_gev))
    }

    /// [`Transport::loss_length2_unchecked`] with its arguments checked.
    pub fn loss_length2(&self, energy_gev: f64, initial_energy_gev: f64) -> Result<f64> {
        self.check_pair(energy_gev, initial_energy_gev)?;
        Ok(self.loss_length2_unchecked(energy_gev, initial_energy_gev))
    }

    /// [`Transport::initial_energy_unchecked`] with its arguments checked (age finite, >= 0).
    pub fn initial_energy(&self, energy_gev: f64, age_myr: f64) -> Result<f64> {
        self.check_energy(energy_gev)?;
        require_non_negative("age [Myr]", age_myr)?;
        Ok(self.initial_energy_unchecked(energy_gev, age_myr))
    }

    /// Batch of [`Transport::initial_energy`]. All inputs are checked before anything is
    /// written; the message of an error names the first bad element.
    pub fn initial_energies(&self, energy_gev: &[f64], age_myr: &[f64], out_gev: &mut [f64]) -> Result<()> {
        map2_checked(
            ("energy", energy_gev),
            ("age", age_myr),
            out_gev,
            |e, t| self.check_energy(e).and_then(|_| require_non_negative("age [Myr]", t)),
            |e, t| self.initial_energy_unchecked(e, t),
        )
    }

    /// Batch of [`Transport::loss_time`] [Myr].
    pub fn loss_times(
        &self,
        energy_gev: &[f64],
        initial_energy_gev: &[f64],
        out_myr: &mut [f64],
    ) -> Result<()> {
        map2_checked(
            ("energy", energy_gev),
            ("initial energy", initial_energy_gev),
            out_myr,
            |e, e0| self.check_pair(e, e0),
            |e, e0| self.loss_time_unchecked(e, e0),
        )
    }

    /// Batch of [`Transport::loss_length2`] [kpc^2].
    pub fn loss_lengths2(
        &self,
        energy_gev: &[f64],
        initial_energy_gev: &[f64],
        out_kpc2: &mut [f64],
    ) -> Result<()> {
        map2_checked(
            ("energy", energy_gev),
            ("initial energy", initial_energy_gev),
            out_kpc2,
            |e, e0| self.check_pair(e, e0),
            |e, e0| self.loss_length2_unchecked(e, e0),
        )
    }

    /// Batch of [`Transport::max_age`] [Myr].
    pub fn max_ages(&self, energy_gev: &[f64], out_myr: &mut [f64]) -> Result<()> {
        map_checked(energy_gev, out_myr, |e| self.check_energy(e), |e| self.max_age_unchecked(e))
    }
}
