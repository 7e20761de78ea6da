//! The ensemble as flat tables for an accelerator (the CUDA kernel kernels/ensemble.cu), and
//! [`DeviceTables::realisation`], the same algorithm on the CPU: the kernel's specification and
//! the test that its tables reproduce [`Ensemble::realisation`].
//!
//! A GPU cannot sort every realisation's sources by age cheaply, so each source looks up its own
//! cell at each energy instead: `cell_of_bin[energy][bin]` gives the first cell of its age bin,
//! and a short search along the cells that follow (needed only in refined bins) the cell that
//! holds its age. The cells are the CPU's fitted segments, plus, where the CPU may use the direct
//! formula (a bin where no fit passed, and the bin holding the energy's last contributing age),
//! cells fitted on halves of that bin, halved again down to 2^-24 of a bin until the fit passes
//! the CPU's check (3e-13 in the exponent). A cell that still fails is marked
//! [`CellForm::Host`]: a realisation with a source in it is computed on the CPU instead. The
//! accelerator thus needs no transport tables at all: two polynomials and one exp per source
//! and energy, as on the CPU, and results that agree with the CPU's to rounding (1e-13 relative
//! at worst, mostly far less; tests/ensemble.rs measures it).

use alloc::vec::Vec;

use super::{
    AGE_BINS, CELL_POINTS, CELL_TOLERANCE, DirectProfile, Ensemble, F32_EXPONENT_FLOOR,
    F32_UNDERFLOW_FRACTION, Form, LOG_AGE_BINS, Polynomials, SinglePolynomials, estrin, estrin_f32,
    fit_with_errors,
};
use crate::math::{chebyshev, exp, exp_branchless, ln, mul_add, mul_add_f32};
use crate::physics::green::SPEED_OF_LIGHT_KPC_PER_MYR;
use crate::physics::sources::SamplerTables;
use crate::rng::{Stream, uniform_from_word};

/// A bin the CPU evaluates by the direct formula is halved at most this many times.
const MAX_REFINEMENT: u32 = 10;
/// In the first bins (young sources), cells halved this often accept NOISE_TOLERANCE.
const NOISE_DEPTH: u32 = 4;
/// The young sources' direct formula carries rounding noise of 2e-13 to 4e-13 (E0 - E is
/// quantised at the ulp of E, and l^2 is proportional to it), just above the CPU's tolerance, at
/// any cell width (up to ~1e-12 in places): this tolerance lets the halving stop.
const NOISE_TOLERANCE: f64 = 3e-12;
/// Pilot realisations that set each energy's flux scale (see [`Refiner`]).
const PILOT_REALISATIONS: u64 = 8;
/// The flux floor of an energy: this fraction of the smallest pilot flux (the total of ~1e4
/// positive terms has no heavy lower tail: 1e-2 is a wide margin).
const FLOOR_OF_PILOT: f64 = 1e-2;
/// A refined cell may err by at most this fraction of the floor per source.
const ERROR_PER_SOURCE: f64 = 1e-15;

/// `cell_of_bin` entry of a bin that contributes nothing at that energy.
pub const NO_CELL: u32 = u32::MAX;

/// How a cell's source adds to the flux.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellForm {
    /// exp(a(x) - s^2 h(x)).
    Plain = 0,
    /// exp(a(x) - 1.5 ln t - s^2 h(x) / t) (the log-age form near t = 0).
    LogAge = 1,
    /// No polynomial passed the check: the realisation is computed on the host.
    Host = 2,
}

/// One cell of ages [.., right): x = 2 fma(t, inverse_width, -index) - 1 in [-1, 1], and the
/// degree-8 polynomials a(x), h(x) (lowest degree first) evaluated by Estrin's scheme with fused
/// multiply-adds, as in `estrin` on the CPU. 176 bytes, C layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceCell {
    /// Right end of the cell [Myr] (the left end is the previous cell's right end).
    pub right: f64,
    /// 1 / width [1/Myr].
    pub inverse_width: f64,
    /// left / width.
    pub index: f64,
    /// A [`CellForm`] as an integer.
    pub form: u64,
    /// a(x): ln A (plain) or ln A + 1.5 ln t (log-age).
    pub a: [f64; CELL_POINTS],
    /// h(x): 1 / (4 l^2) (plain) or t / (4 l^2) (log-age) [kpc^-2].
    pub h: [f64; CELL_POINTS],
}

/// The f32 tier of a [`DeviceCell`] (the CPU's [`Precision::F32`](super::Precision) form of a
/// plain cell): the term is scale e^y with y = da(x) - s^2 h(x) in binary32, da = a - ref and
/// scale = e^ref (ref the largest a on the cell, so y <= ~0), x the cell's coordinate rounded to
/// binary32. Terms with y < -87 (`F32_EXPONENT_FLOOR`) are flushed to zero, each bounded by
/// `underflow_bound`. `scale` = 0 marks a cell the f32 tier evaluates in binary64 (log-age and
/// host cells, and e^ref beyond binary64). 88 bytes, C layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceSingleCell {
    /// da(x) in binary32, lowest degree first.
    pub da: [f32; CELL_POINTS],
    /// h(x) in binary32 [kpc^-2].
    pub h: [f32; CELL_POINTS],
    /// e^ref, or 0 for a cell evaluated in binary64.
    pub scale: f64,
    /// e^(ref + F32_EXPONENT_FLOOR): the largest term that can be flushed.
    pub underflow_bound: f64,
}

impl DeviceSingleCell {
    fn new(cell: &DeviceCell) -> Self {
        let single = (cell.form == CellForm::Plain as u64).then(|| SinglePolynomials::new(&[cell.a, cell.h]));
        match single.flatten() {
            Some(single) => DeviceSingleCell {
                da: single.polynomials[0],
                h: single.polynomials[1],
                scale: single.scale,
                underflow_bound: single.underflow_bound,
            },
            None => DeviceSingleCell {
                da: [0.0; CELL_POINTS],
                h: [0.0; CELL_POINTS],
                scale: 0.0,
                underflow_bound: 0.0,
            },
        }
    }
}

/// Where realisation k of seed s starts in its Philox stream (s, k).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RealisationStart {
    /// Number of young sources drawn.
    pub young_sources: u64,
    /// Word p of the stream where the sources' draws start, at the start of a block (a
    /// multiple of 4). Words p .. p + N - 1 are the N sources' age bins, bin = word >> (32 -
    /// log2 bins); the uniforms start at the next block, q = 4 ceil((p + N) / 4): the j-th
    /// source in bin order (bin after bin, each bin's sources in turn) takes words q + 2j (its
    /// position u1 in the bin) and q + 2j + 1 (its distance uniform), u = (word + 1/2) 2^-32.
    pub word_position: u64,
}

/// An [`Ensemble`] as flat arrays (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceTables {
    /// Width of an age bin [Myr]: a source in bin b at position u1 is (b + u1) width old.
    pub bin_width_myr: f64,
    /// 1 / (width of an age bin) [1/Myr]: bin = min(trunc(t / width), bins - 1).
    pub inverse_bin_width: f64,
    /// Number of age bins.
    pub bins: usize,
    /// Number of energies.
    pub energies: usize,
    /// Per energy: ages at or beyond this [Myr] add nothing.
    pub max_age_myr: Vec<f64>,
    /// [energies][bins]: the first cell of each bin, or [`NO_CELL`].
    pub cell_of_bin: Vec<u32>,
    /// The cells, energy after energy, in increasing age.
    pub cells: Vec<DeviceCell>,
    /// The f32 tier's form of each cell (same index).
    pub single_cells: Vec<DeviceSingleCell>,
    /// The distance draw.
    pub sampler: SamplerTables,
    /// Causal cut: a source adds only if s <= c t, c [kpc/Myr].
    pub light_speed_kpc_per_myr: f64,
}

impl Ensemble {
    /// The number of young sources of realisation k and where their uniforms start.
    pub fn realisation_start(&self, seed: u64, realisation: u64) -> RealisationStart {
        let mut stream = Stream::new(seed, realisation);
        let young_sources = self.draw_count(&mut stream) as u64;
        stream.skip_to_block_start();
        RealisationStart { young_sources, word_position: stream.word_position() }
    }

    /// The flat tables of this ensemble for an accelerator.
    pub fn device_tables(&self) -> DeviceTables {
        let bins = AGE_BINS;
        let mut max_age_myr = Vec::with_capacity(self.profiles.len());
        let mut cell_of_bin = Vec::with_capacity(self.profiles.len() * bins);
        let mut cells = Vec::new();
        let grid = chebyshev::Grid::new(CELL_POINTS);
        let floors = self.flux_floors();
        for (profile, &flux_floor) in self.profiles.iter().zip(&floors) {
            let direct = DirectProfile {
                transport: &self.transport,
                spectrum: &self.params.spectrum,
                energy_gev: profile.energy_gev,
                ln_rate: profile.ln_rate,
            };
            let covered =
                profile.segments.last().map_or(0.0, |s| (s.first_bin + s.bins) as f64 * self.bin_width_myr);
            let limit = profile.max_age_myr.min(covered);
            max_age_myr.push(limit);
            let first_of_energy = cell_of_bin.len();
            let first_cell_of_energy = cells.len();
            cell_of_bin.resize(first_of_energy + bins, NO_CELL);
            for (segment, local) in profile.segments.iter().zip(&profile.local) {
                let before = cells.len();
                let left = segment.first_bin as f64 * self.bin_width_myr;
                match segment.fitted() {
                    // The CPU's own local coordinate.
                    Some(polynomials) => cells.push(DeviceCell::new(
                        (segment.first_bin + segment.bins) as f64 * self.bin_width_myr,
                        local.inverse_width,
                        local.index,
                        segment.form,
                        polynomials,
                    )),
                    None => {
                        let right = (left + self.bin_width_myr).min(limit);
                        let refiner = Refiner {
                            direct: &direct,
                            grid: &grid,
                            log_age_allowed: segment.first_bin < LOG_AGE_BINS,
                            ln_error_allowed: ln(ERROR_PER_SOURCE * flux_floor),
                        };
                        refiner.cover(left, right, 0, &mut cells);
                    }
                }
                // The cell holding the segment's left end: a host cell of the bin before may
                // have grown into it.
                let grown = before > first_cell_of_energy && cells[before - 1].right > left;
                let first = if grown { before - 1 } else { before };
                cell_of_bin
                    [first_of_energy + segment.first_bin..first_of_energy + segment.first_bin + segment.bins]
                    .fill(first as u32);
            }
        }
        DeviceTables {
            bin_width_myr: self.bin_width_myr,
            inverse_bin_width: 1.0 / self.bin_width_myr,
            bins,
            energies: self.profiles.len(),
            max_age_myr,
            cell_of_bin,
            single_cells: cells.iter().map(DeviceSingleCell::new).collect(),
            cells,
            sampler: self.spatial.sampler_tables(),
            light_speed_kpc_per_myr: SPEED_OF_LIGHT_KPC_PER_MYR,
        }
    }
}

impl Ensemble {
    /// Per energy, FLOOR_OF_PILOT times the smallest flux of PILOT_REALISATIONS realisations
    /// (of a fixed seed): the scale below which a refined cell's error cannot matter.
    fn flux_floors(&self) -> Vec<f64> {
        let mut floors = alloc::vec![f64::INFINITY; self.profiles.len()];
        let mut flux = alloc::vec![0.0; self.profiles.len()];
        let mut work = super::Workspace::default();
        for k in 0..PILOT_REALISATIONS {
            self.realisation_in(&mut work, 0x5eed_f100, k, &mut flux);
            for (floor, &f) in floors.iter_mut().zip(&flux) {
                *floor = floor.min(f);
            }
        }
        floors.iter().map(|&f| FLOOR_OF_PILOT * f).collect()
    }
}

impl DeviceCell {
    fn new(right: f64, inverse_width: f64, index: f64, form: Form, polynomials: &Polynomials) -> Self {
        DeviceCell {
            right,
            inverse_width,
            index,
            form: match form {
                Form::Plain => CellForm::Plain,
                Form::LogAge => CellForm::LogAge,
            } as u64,
            a: polynomials[0],
            h: polynomials[1],
        }
    }
}

/// Fits cells on [left, right) of a bin that the CPU evaluates directly, halving on failure.
///
/// A cell is accepted where its fit meets the CPU's tolerance, or where the largest error it
/// can put on one source's term, A_max (error of a + relative error of h) (the term is
/// A exp(-s^2 h) and x e^-x <= 1), is below ERROR_PER_SOURCE of the energy's flux floor. The
/// second test is what ends the halving near the last contributing age: there the direct
/// formula's own rounding noise (E0 to ~1e-11 times ln A's slope in E0) exceeds the CPU's
/// tolerance at any cell width, but A is tiny. In the first bins a cell halved NOISE_DEPTH times
/// also passes at NOISE_TOLERANCE (see there).
struct Refiner<'a> {
    direct: &'a DirectProfile<'a>,
    grid: &'a chebyshev::Grid,
    log_age_allowed: bool,
    /// ln of the largest error allowed on one source's term.
    ln_error_allowed: f64,
}

impl Refiner<'_> {
    fn cover(&self, left: f64, right: f64, depth: u32, out: &mut Vec<DeviceCell>) {
        if right <= left {
            return;
        }
        let width = right - left;
        let acceptable = |form| {
            fit_with_errors(self.direct, form, left, width, self.grid)
                .filter(|fit| {
                    let strict = fit.a_error <= CELL_TOLERANCE && fit.h_error <= CELL_TOLERANCE;
                    let noise_limited = depth >= NOISE_DEPTH
                        && self.log_age_allowed
                        && fit.a_error <= NOISE_TOLERANCE
                        && fit.h_error <= NOISE_TOLERANCE;
                    strict
                        || noise_limited
                        || fit.ln_amplitude_max + ln(fit.a_error + fit.h_error) <= self.ln_error_allowed
                })
                .map(|fit| (fit.polynomials, form))
        };
        let fitted = acceptable(Form::Plain)
            .or_else(|| if self.log_age_allowed { acceptable(Form::LogAge) } else { None });
        match fitted {
            Some((polynomials, form)) => {
                out.push(DeviceCell::new(right, 1.0 / width, left / width, form, &polynomials))
            }
            None if depth < MAX_REFINEMENT => {
                let middle = left + 0.5 * width;
                self.cover(left, middle, depth + 1, out);
                self.cover(middle, right, depth + 1, out);
            }
            // Consecutive host cells merge into one.
            None => match out.last_mut() {
                Some(previous) if previous.form == CellForm::Host as u64 && previous.right == left => {
                    previous.right = right
                }
                _ => out.push(DeviceCell {
                    right,
                    inverse_width: 0.0,
                    index: 0.0,
                    form: CellForm::Host as u64,
                    a: [0.0; CELL_POINTS],
                    h: [0.0; CELL_POINTS],
                }),
            },
        }
    }
}

impl DeviceTables {
    /// Cells that the accelerator cannot evaluate ([`CellForm::Host`]).
    pub fn host_cells(&self) -> usize {
        self.cells.iter().filter(|c| c.form == CellForm::Host as u64).count()
    }

    /// The distance [kpc] at the uniform u: [`SamplerTables`]' recipe, which is
    /// [`crate::physics::sources::SpatialDistribution::sample`] operation for operation.
    pub fn distance(&self, u: f64) -> f64 {
        let tables = &self.sampler;
        let w = crate::math::sqrt(u.clamp(0.0, 1.0));
        if tables.guide.is_empty() {
            return tables.s_max_kpc * w;
        }
        let cell = (((w - tables.lo) * tables.guide_scale) as usize).min(tables.guide.len() - 1);
        let mut i = tables.guide[cell] as usize;
        if tables.single_step {
            i = (i + usize::from(w > tables.guide_right[cell])).min(tables.right.len() - 1);
        } else {
            while w > tables.right[i] && i + 1 < tables.right.len() {
                i += 1;
            }
        }
        let t = (w - tables.center[i]) * tables.inv_half_width[i];
        let c = &tables.coefficients[i];
        let t2 = t * t;
        let t4 = t2 * t2;
        let low = (c[0] + c[1] * t) + (c[2] + c[3] * t) * t2;
        let high = (c[4] + c[5] * t) + (c[6] + c[7] * t) * t2;
        (low + high * t4).clamp(0.0, tables.s_max_kpc)
    }

    /// The contribution of a source of age t [Myr] and squared distance s2 [kpc^2] at energy
    /// `energy`: Some(0) beyond the last contributing age, None where its cell is
    /// [`CellForm::Host`].
    pub fn term(&self, energy: usize, age_myr: f64, distance2: f64, bin: usize) -> Option<f64> {
        // NaN ages fail the comparison and add nothing, as beyond the limit.
        if age_myr.partial_cmp(&self.max_age_myr[energy]) != Some(core::cmp::Ordering::Less) {
            return Some(0.0);
        }
        let first = self.cell_of_bin[energy * self.bins + bin];
        if first == NO_CELL {
            return Some(0.0);
        }
        let mut i = first as usize;
        while age_myr >= self.cells[i].right {
            i += 1;
        }
        let cell = &self.cells[i];
        let x = 2.0 * mul_add(age_myr, cell.inverse_width, -cell.index) - 1.0;
        let a = estrin(&cell.a, x);
        let h = estrin(&cell.h, x);
        let exponent = match cell.form {
            0 => mul_add(-distance2, h, a),
            1 => mul_add(-1.5, ln(age_myr), a) - distance2 * h * (1.0 / age_myr),
            _ => return None,
        };
        Some(exp_branchless(exponent))
    }

    /// [`Self::term`] in the f32 tier (the kernel `ensemble_realisations_f32`): Some((term,
    /// flushed)), where `flushed` bounds a term that underflowed (else 0); None where its cell
    /// is [`CellForm::Host`]. The kernel's e^y is CUDA's `__expf`, 2^(y log2(e)) with the
    /// product rounded to binary32 and 2 ulp of its own; here the product is rounded alike and
    /// 2^z taken exactly, which leaves out those 2 ulp (2.4e-7).
    pub fn term_f32(&self, energy: usize, age_myr: f64, distance2: f64, bin: usize) -> Option<(f64, f64)> {
        if age_myr.partial_cmp(&self.max_age_myr[energy]) != Some(core::cmp::Ordering::Less) {
            return Some((0.0, 0.0));
        }
        let first = self.cell_of_bin[energy * self.bins + bin];
        if first == NO_CELL {
            return Some((0.0, 0.0));
        }
        let mut i = first as usize;
        while age_myr >= self.cells[i].right {
            i += 1;
        }
        let (cell, single) = (&self.cells[i], &self.single_cells[i]);
        if single.scale == 0.0 {
            return self.term(energy, age_myr, distance2, bin).map(|term| (term, 0.0));
        }
        let x = (2.0 * mul_add(age_myr, cell.inverse_width, -cell.index) - 1.0) as f32;
        let y = mul_add_f32(-(distance2 as f32), estrin_f32(&single.h, x), estrin_f32(&single.da, x));
        if f64::from(y) < F32_EXPONENT_FLOOR {
            return Some((0.0, single.underflow_bound));
        }
        let z = y * core::f32::consts::LOG2_E;
        Some((single.scale * exp(f64::from(z) * core::f64::consts::LN_2), 0.0))
    }

    /// [`Self::realisation`] in the f32 tier: false also where the flushed terms could move an
    /// energy's flux by more than F32_UNDERFLOW_FRACTION (the kernel then leaves the
    /// realisation to the host, as the CPU's f32 tier sums such an energy exactly).
    pub fn realisation_f32(
        &self,
        seed: u64,
        realisation: u64,
        start: RealisationStart,
        flux: &mut [f64],
    ) -> bool {
        let mut flushed = alloc::vec![0.0; flux.len()];
        let drawn =
            self.for_each_source(seed, realisation, start, flux, |energy, age, distance2, bin, out| {
                let (term, bound) = self.term_f32(energy, age, distance2, bin)?;
                *out += term;
                flushed[energy] += bound;
                Some(())
            });
        drawn && flushed.iter().zip(flux.iter()).all(|(&bound, &f)| bound <= F32_UNDERFLOW_FRACTION * f)
    }

    /// Realisation k of seed s from these tables in draw order (what the kernel computes, up
    /// to the order of the sum), into `flux` [energies]; false (flux unspecified) where it
    /// needs the host: a source in a [`CellForm::Host`] cell.
    pub fn realisation(
        &self,
        seed: u64,
        realisation: u64,
        start: RealisationStart,
        flux: &mut [f64],
    ) -> bool {
        self.for_each_source(seed, realisation, start, flux, |energy, age, distance2, bin, out| {
            *out += self.term(energy, age, distance2, bin)?;
            Some(())
        })
    }

    /// Draws the sources of realisation k and calls `add(energy, age, s^2, bin, flux[energy])`
    /// for each contributing source and energy; false where `add` returns None.
    fn for_each_source(
        &self,
        seed: u64,
        realisation: u64,
        start: RealisationStart,
        flux: &mut [f64],
        mut add: impl FnMut(usize, f64, f64, usize, &mut f64) -> Option<()>,
    ) -> bool {
        flux.fill(0.0);
        let mut stream = Stream::new(seed, realisation);
        stream.skip_to_block(start.word_position / 4);
        let bin_bits = self.bins.trailing_zeros();
        let mut bin_counts = alloc::vec![0u64; self.bins];
        for _ in 0..start.young_sources {
            bin_counts[(stream.next_u32() >> (32 - bin_bits)) as usize] += 1;
        }
        stream.skip_to_block_start();
        for (bin, &count) in bin_counts.iter().enumerate() {
            for _ in 0..count {
                let u_position = uniform_from_word(stream.next_u32());
                let u_distance = uniform_from_word(stream.next_u32());
                let age = (bin as f64 + u_position) * self.bin_width_myr;
                let distance = self.distance(u_distance);
                if !(age > 0.0 && distance <= self.light_speed_kpc_per_myr * age) {
                    continue;
                }
                for (energy, out) in flux.iter_mut().enumerate() {
                    if add(energy, age, distance * distance, bin, out).is_none() {
                        return false;
                    }
                }
            }
        }
        true
    }
}
