//! The normalisation and solar-modulation fit of seed 000 ("Fitting the Spectra to the Data"):
//! model interstellar spectra of several species, modulated by the charge-sign dependent force
//! field, are fitted to data sets of fluxes and flux ratios by minimising the total chi2 over
//! per-species normalisations and (Phi0, Phi1+, Phi1-) within bounds; then each experiment's
//! chi2, ndof, p-value and NLL, Sum-NLL and Max-NLL.
//!
//! Model. Species s has a rigidity grid R_j [GV] and interstellar fluxes J_s(R_j) per GV,
//! read by log-log interpolation (power-law extension beyond the grid). A data point at Earth
//! abscissa x (rigidity [GV] or kinetic energy per nucleon [GeV/n]) predicts
//! - a flux: N_s J_s,TOA(x), per unit of the abscissa (per GV or per GeV/n), with
//!   J_TOA(T) = J_IS,T(T_IS) T (T + 2m) / (T_IS (T_IS + 2m)) per unit T (physics::modulation),
//!   J_IS,T = J_IS,R dR/dT, and per GV J_TOA,R = J_TOA,T dT/dR at Earth;
//! - a ratio of species a and b at the same abscissa (B/C at the same T/n, the antiproton
//!   fraction pbar/p at the same rigidity): N_a J_a,TOA(x) / (N_b J_b,TOA(x)).
//!
//! chi2 = sum_i ((model_i - value_i) / sigma_i)^2. Parameters, in this order: the
//! normalisations N_0 .. N_(K-1), then Phi0, Phi1+, Phi1- [GV]; each has a start and bounds
//! (lower == upper fixes it). Every species names the normalisation that multiplies it, so
//! several species can share one (a secondary tied to its parent: B with C, pbar with p).
//!
//! Minimiser: Levenberg-Marquardt (Marquardt 1963, diagonal scaling; Nocedal & Wright 2nd ed.
//! 10.3) with an analytic Jacobian and projection onto the bounds: a parameter on a bound whose
//! gradient points outwards is held for the iteration, steps are clipped to the box, and a
//! step is taken only if chi2 decreases. Converged when chi2 stops decreasing (relative change
//! below 1e-13) or no step decreases it. Uncertainties: sqrt of the diagonal of (J^T J)^-1 over
//! the parameters that are free and not on a bound (zero for those, infinite for parameters
//! the data do not constrain, e.g. Phi1- without negative species).
//!
//! Per experiment, ndof = its number of points (the fitted parameters are shared by all
//! experiments and not charged to any one; the caller can recompute the statistics with its
//! own ndof via stats::chi2).
//!
//! Memory (n data points, k = K + 3 parameters, E experiments, G grid points over all
//! species): the dense Jacobian (8 n k bytes), the normal matrix, the damped system and the
//! covariance (8 k^2 each), 152 bytes per data point (the point, its two Earth terms, two
//! residual vectors) and 56 per experiment, plus the species' tables (16 G): 8 n k + 24 k^2 +
//! 152 n + 56 E + 16 G bytes (tests/bounded_resources.rs measures it). k is limited to
//! [`MAX_PARAMETERS`] and n k to [`MAX_JACOBIAN_VALUES`], E to n (each experiment needs a
//! point): checked when the problem is built, before the Jacobian is allocated. Time: n k^2
//! multiply-adds per iteration for the normal equations, at most 500 iterations.

use alloc::vec;
use alloc::vec::Vec;

use super::chi2::{ExperimentStatistics, NllSummary, summarise};
use crate::error::{Result, invalid};
use crate::math::interpolation::LogLogTable;
use crate::math::linalg::{cholesky_in_place, cholesky_solve};
use crate::math::{exp, ln, sqrt};
use crate::physics::modulation::ModulationPotential;
use crate::physics::particle::Particle;

/// Iteration limit of the minimiser.
const MAX_ITERATIONS: usize = 500;
/// Relative decrease of chi2 below which the fit has converged.
const RELATIVE_DECREASE: f64 = 1e-13;
/// The largest number of fitted parameters k (normalisations and the three potentials): the
/// normal matrix, the damped system and the covariance take 8 k^2 bytes each (384 MiB together
/// at the limit), and each step's Cholesky factorisation k^3 / 3 multiply-adds.
pub const MAX_PARAMETERS: usize = 4096;
/// The largest Jacobian, data points x parameters (n k <= 2^28 values: 2 GiB).
pub const MAX_JACOBIAN_VALUES: usize = 1 << 28;

/// A fitted parameter: start value and bounds (lower <= start <= upper; lower == upper fixes it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitParameter {
    /// Start value.
    pub start: f64,
    /// Lower bound (may be -infinity for the potentials).
    pub lower: f64,
    /// Upper bound (may be +infinity).
    pub upper: f64,
}

impl FitParameter {
    /// A parameter fixed at `value`.
    pub fn fixed(value: f64) -> Self {
        FitParameter { start: value, lower: value, upper: value }
    }

    fn validate(&self, what: &str) -> Result<()> {
        if !self.start.is_finite() || self.lower.is_nan() || self.upper.is_nan() {
            return Err(invalid!("{what}: start must be finite and bounds not NaN"));
        }
        if !(self.lower <= self.start && self.start <= self.upper) {
            return Err(invalid!(
                "{what}: need lower <= start <= upper, got {} <= {} <= {}",
                self.lower,
                self.start,
                self.upper
            ));
        }
        Ok(())
    }
}

/// The abscissa of a data point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abscissa {
    /// Rigidity [GV]; fluxes are per GV.
    Rigidity,
    /// Kinetic energy per nucleon [GeV/n]; fluxes are per GeV/n.
    KineticEnergyPerNucleon,
}

/// The interstellar model spectrum of one species and the index of its normalisation.
#[derive(Clone, Debug)]
pub struct SpeciesModel {
    particle: Particle,
    table: LogLogTable,
    normalisation: usize,
}

impl SpeciesModel {
    /// `flux_per_gv` > 0 at increasing `rigidity_gv` > 0 (at least two points), multiplied by
    /// normalisation parameter `normalisation`.
    pub fn new(
        particle: Particle,
        rigidity_gv: &[f64],
        flux_per_gv: &[f64],
        normalisation: usize,
    ) -> Result<Self> {
        Ok(SpeciesModel {
            particle,
            table: LogLogTable::new("model spectrum", rigidity_gv, flux_per_gv)?,
            normalisation,
        })
    }
}

/// One measured value: a flux of species `numerator`, or the ratio numerator / denominator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DataPoint {
    /// Experiment index (0 .. number of experiments).
    pub experiment: usize,
    /// Species index of the flux or of the ratio's numerator.
    pub numerator: usize,
    /// Species index of the ratio's denominator; None for a flux.
    pub denominator: Option<usize>,
    /// What `x` is.
    pub abscissa: Abscissa,
    /// Abscissa at Earth [GV or GeV/n], finite > 0.
    pub x: f64,
    /// Measured value (flux per unit abscissa, or ratio), finite.
    pub value: f64,
    /// Its 1-sigma uncertainty, finite > 0.
    pub sigma: f64,
}

/// The Earth-side quantities of one species at one data point (fixed during the fit).
#[derive(Clone, Copy, Debug)]
struct EarthTerm {
    species: usize,
    /// Kinetic energy per nucleon at Earth [GeV/n].
    kinetic: f64,
    /// ln (T (T + 2m)) + ln of the abscissa Jacobian (dT/dR for rigidity data).
    ln_constant: f64,
    /// Drift shape g = (1 + (R/R0)^2) / (beta (R/R0)^3) at Earth.
    drift_shape: f64,
}

/// ln of a term's modulated flux and its derivative with respect to T_IS.
struct TermValue {
    ln_flux: f64,
    d_ln_flux_d_t_is: f64,
}

/// The fit problem: species, data and the modulation parameters' bounds.
#[derive(Clone, Debug)]
pub struct ModulationFit {
    species: Vec<SpeciesModel>,
    normalisations: Vec<FitParameter>,
    points: Vec<DataPoint>,
    /// Per point: the numerator's term and the denominator's.
    terms: Vec<(EarthTerm, Option<EarthTerm>)>,
    n_experiments: usize,
    modulation: [FitParameter; 3],
}

/// The outcome of [`ModulationFit::run`].
#[derive(Clone, Debug, PartialEq)]
pub struct FitResult {
    /// Best-fit parameters: N_0 .. N_(K-1), Phi0, Phi1+, Phi1- [GV].
    pub parameters: Vec<f64>,
    /// 1-sigma uncertainties (0 for fixed or bound parameters, infinity if unconstrained).
    pub uncertainties: Vec<f64>,
    /// Total chi2 at the best fit.
    pub chi2: f64,
    /// Per experiment: chi2, ndof (its number of points), p-value, NLL.
    pub experiments: Vec<ExperimentStatistics>,
    /// Sum-NLL and Max-NLL over the experiments.
    pub summary: NllSummary,
    /// Iterations taken.
    pub iterations: usize,
    /// Whether the convergence test was met (false: the iteration limit was reached).
    pub converged: bool,
}

impl ModulationFit {
    /// Builds and checks a fit problem: normalisation bounds > 0 and every species' index in
    /// range; `n_experiments` >= 1 and each has at least one point; species indices in range, a
    /// ratio's species distinct; x > 0, value finite, sigma > 0; at most [`MAX_PARAMETERS`]
    /// parameters and [`MAX_JACOBIAN_VALUES`] Jacobian entries (see the module documentation).
    pub fn new(
        species: Vec<SpeciesModel>,
        normalisations: Vec<FitParameter>,
        points: Vec<DataPoint>,
        n_experiments: usize,
        modulation: [FitParameter; 3],
    ) -> Result<Self> {
        if species.is_empty() {
            return Err(invalid!("the fit needs at least one species"));
        }
        for (i, n) in normalisations.iter().enumerate() {
            n.validate("normalisation")?;
            if n.lower.is_nan() || n.lower <= 0.0 {
                return Err(invalid!("normalisation {i}: the lower bound must be > 0, got {}", n.lower));
            }
        }
        if let Some(i) = species.iter().position(|s| s.normalisation >= normalisations.len()) {
            return Err(invalid!(
                "species {i}: normalisation index out of range (have {})",
                normalisations.len()
            ));
        }
        if n_experiments == 0 {
            return Err(invalid!("the fit needs at least one experiment"));
        }
        if n_experiments > points.len() {
            return Err(invalid!(
                "n_experiments = {n_experiments} exceeds the number of data points ({}): every experiment needs a point",
                points.len()
            ));
        }
        let k = normalisations.len().saturating_add(3);
        if k > MAX_PARAMETERS {
            return Err(invalid!(
                "{} normalisations give k = {k} fitted parameters: the normal matrices would need 24 k^2 = {}, \
                 above the limit of {MAX_PARAMETERS} parameters",
                normalisations.len(),
                crate::memory::describe_bytes(k.checked_mul(k).and_then(|v| v.checked_mul(24)))
            ));
        }
        if points.len().checked_mul(k).is_none_or(|values| values > MAX_JACOBIAN_VALUES) {
            return Err(invalid!(
                "{} data points x {k} parameters: the Jacobian would need 8 n k = {}, above the limit of \
                 2^28 values (2 GiB); fit fewer points or normalisations at once",
                points.len(),
                crate::memory::describe_bytes(points.len().checked_mul(k).and_then(|v| v.checked_mul(8)))
            ));
        }
        for (what, p) in ["Phi0", "Phi1+", "Phi1-"].iter().zip(&modulation) {
            p.validate(what)?;
        }
        let mut counts = vec![0usize; n_experiments];
        let mut terms = Vec::with_capacity(points.len());
        for (i, p) in points.iter().enumerate() {
            if p.experiment >= n_experiments {
                return Err(invalid!(
                    "data point {i}: experiment {} >= number of experiments {n_experiments}",
                    p.experiment
                ));
            }
            counts[p.experiment] += 1;
            let in_range = |s: usize| s < species.len();
            if !in_range(p.numerator) || !p.denominator.is_none_or(in_range) {
                return Err(invalid!("data point {i}: species index out of range (have {})", species.len()));
            }
            if p.denominator == Some(p.numerator) {
                return Err(invalid!("data point {i}: a ratio of a species to itself"));
            }
            if !(p.x.is_finite() && p.x > 0.0) {
                return Err(invalid!("data point {i}: abscissa must be finite and > 0, got {}", p.x));
            }
            if !p.value.is_finite() {
                return Err(invalid!("data point {i}: value must be finite, got {}", p.value));
            }
            if !(p.sigma.is_finite() && p.sigma > 0.0) {
                return Err(invalid!("data point {i}: uncertainty must be finite and > 0, got {}", p.sigma));
            }
            let term = |s: usize| earth_term(&species[s].particle, s, p.abscissa, p.x);
            terms.push((term(p.numerator), p.denominator.map(term)));
        }
        if let Some(empty) = counts.iter().position(|&c| c == 0) {
            return Err(invalid!("experiment {empty} has no data points"));
        }
        Ok(ModulationFit { species, normalisations, points, terms, n_experiments, modulation })
    }

    /// The same problem with new measured values (one per data point, finite), e.g. for
    /// pseudo-experiments; everything else is kept.
    pub fn with_values(&self, values: &[f64]) -> Result<Self> {
        crate::batch::check_lengths("values", values.len(), "data points", self.points.len())?;
        crate::batch::check_each("values", values, |v| crate::error::require_finite("measured value", v))?;
        let mut fit = self.clone();
        for (p, &v) in fit.points.iter_mut().zip(values) {
            p.value = v;
        }
        Ok(fit)
    }

    /// Number of parameters: the normalisations and the three potentials.
    pub fn n_parameters(&self) -> usize {
        self.normalisations.len() + 3
    }

    fn bounds(&self) -> Vec<FitParameter> {
        self.normalisations.iter().copied().chain(self.modulation).collect()
    }

    fn term_value(&self, term: &EarthTerm, potential: &ModulationPotential) -> Option<TermValue> {
        let particle = &self.species[term.species].particle;
        let phi = potential.phi0_gv + potential.drift_amplitude_gv(particle) * term.drift_shape;
        let t_is = term.kinetic + particle.charge_per_nucleon() * phi;
        if !(t_is > 0.0 && t_is.is_finite()) {
            return None;
        }
        let m = particle.nucleon_mass_gev();
        let p2_is = t_is * (t_is + 2.0 * m);
        let (ln_flux_r, slope) =
            self.species[term.species].table.ln_value_and_slope(ln(particle.rigidity_gv(t_is)));
        let ln_flux = ln_flux_r + ln(particle.rigidity_jacobian(t_is)) - ln(p2_is) + term.ln_constant;
        let energy_is = t_is + m;
        Some(TermValue { ln_flux, d_ln_flux_d_t_is: (slope - 3.0) * energy_is / p2_is + 1.0 / energy_is })
    }

    /// Model values at every data point for the parameters `theta` (layout as in
    /// [`FitResult::parameters`]); Err if a potential gives an interstellar energy <= 0.
    pub fn model(&self, theta: &[f64], out: &mut [f64]) -> Result<()> {
        crate::batch::check_lengths("parameters", theta.len(), "expected parameters", self.n_parameters())?;
        crate::batch::check_lengths("output", out.len(), "data points", self.points.len())?;
        let mut jac = Vec::new();
        let mut residuals = vec![0.0; self.points.len()];
        self.evaluate(theta, &mut residuals, &mut jac, false)
            .ok_or_else(|| invalid!("the potential gives an interstellar energy <= 0"))?;
        for ((o, r), p) in out.iter_mut().zip(&residuals).zip(&self.points) {
            *o = p.value + r * p.sigma;
        }
        Ok(())
    }

    /// Residuals (model - value)/sigma and, when asked, the Jacobian (row-major, points x
    /// parameters). None when a potential makes an interstellar energy <= 0.
    fn evaluate(
        &self,
        theta: &[f64],
        residuals: &mut [f64],
        jacobian: &mut Vec<f64>,
        with_jacobian: bool,
    ) -> Option<()> {
        let n_norm = self.normalisations.len();
        let k = self.n_parameters();
        let potential = ModulationPotential {
            phi0_gv: theta[n_norm],
            phi1_positive_gv: theta[n_norm + 1],
            phi1_negative_gv: theta[n_norm + 2],
        };
        if with_jacobian {
            jacobian.clear();
            jacobian.resize(self.points.len() * k, 0.0);
        }
        for (i, (point, (num, den))) in self.points.iter().zip(&self.terms).enumerate() {
            let a = self.term_value(num, &potential)?;
            let norm = |term: &EarthTerm| self.species[term.species].normalisation;
            let mut ln_value = a.ln_flux + ln(theta[norm(num)]);
            let b = match den {
                Some(den) => {
                    let b = self.term_value(den, &potential)?;
                    ln_value -= b.ln_flux + ln(theta[norm(den)]);
                    Some((den, b))
                }
                None => None,
            };
            let value = exp(ln_value);
            residuals[i] = (value - point.value) / point.sigma;
            if with_jacobian {
                let row = &mut jacobian[i * k..(i + 1) * k];
                let scale = value / point.sigma;
                let mut add = |term: &EarthTerm, tv: &TermValue, sign: f64| {
                    let particle = &self.species[term.species].particle;
                    row[norm(term)] += sign * scale / theta[norm(term)];
                    let d_t = sign * scale * tv.d_ln_flux_d_t_is * particle.charge_per_nucleon();
                    row[n_norm] += d_t;
                    let drift = if particle.charge() > 0 { n_norm + 1 } else { n_norm + 2 };
                    row[drift] += d_t * term.drift_shape;
                };
                add(num, &a, 1.0);
                if let Some((den, b)) = b {
                    add(den, &b, -1.0);
                }
            }
        }
        Some(())
    }

    fn chi2(&self, theta: &[f64], residuals: &mut [f64]) -> f64 {
        let mut unused = Vec::new();
        match self.evaluate(theta, residuals, &mut unused, false) {
            Some(()) => residuals.iter().map(|r| r * r).sum(),
            None => f64::INFINITY,
        }
    }

    /// Runs the bounded Levenberg-Marquardt fit from the parameters' start values.
    pub fn run(&self) -> Result<FitResult> {
        let bounds = self.bounds();
        let k = bounds.len();
        let n = self.points.len();
        let mut theta: Vec<f64> = bounds.iter().map(|b| b.start).collect();
        let mut residuals = vec![0.0; n];
        let mut trial_residuals = vec![0.0; n];
        let mut jacobian = crate::memory::try_with_capacity(n * k, "the fit's Jacobian")?;
        let (mut normal, mut gradient) =
            (crate::memory::try_filled(k * k, "the normal matrix")?, vec![0.0; k]);
        let mut system = crate::memory::try_with_capacity(k * k, "the damped system")?;
        let mut step = Vec::with_capacity(k);
        let mut trial = theta.clone();
        let mut workspace = Vec::new();
        let mut lambda = 1e-3;
        let mut converged = false;
        let mut iterations = 0;
        if self.evaluate(&theta, &mut residuals, &mut jacobian, true).is_none() {
            return Err(invalid!("the start potentials give an interstellar energy <= 0"));
        }
        let mut chi2: f64 = residuals.iter().map(|r| r * r).sum();
        let mut active: Vec<usize> = Vec::with_capacity(k);
        while iterations < MAX_ITERATIONS {
            iterations += 1;
            normal_equations(&jacobian, &residuals, k, &mut normal, &mut gradient);
            active.clear();
            active.extend((0..k).filter(|&j| {
                let b = &bounds[j];
                let held =
                    (theta[j] <= b.lower && gradient[j] > 0.0) || (theta[j] >= b.upper && gradient[j] < 0.0);
                b.lower < b.upper && !held && normal[j * k + j] > 0.0
            }));
            if active.is_empty() || chi2 == 0.0 {
                converged = true;
                break;
            }
            let mut accepted = None;
            while lambda < 1e16 {
                let m = active.len();
                system.clear();
                step.clear();
                for &i in &active {
                    for &j in &active {
                        let mut v = normal[i * k + j];
                        if i == j {
                            v *= 1.0 + lambda;
                        }
                        system.push(v);
                    }
                    step.push(-gradient[i]);
                }
                if cholesky_in_place(&mut system, m, m, &mut workspace).is_ok() {
                    cholesky_solve(&system, m, m, &mut step);
                    trial.copy_from_slice(&theta);
                    for (&j, &d) in active.iter().zip(&step) {
                        trial[j] = (theta[j] + d).clamp(bounds[j].lower, bounds[j].upper);
                    }
                    let trial_chi2 = self.chi2(&trial, &mut trial_residuals);
                    if trial_chi2 < chi2 {
                        accepted = Some(trial_chi2);
                        lambda = (lambda * 0.1).max(1e-12);
                        break;
                    }
                }
                lambda *= 10.0;
            }
            let Some(new_chi2) = accepted else {
                converged = true; // no step decreases chi2: a minimum to working precision
                break;
            };
            let decrease = chi2 - new_chi2;
            core::mem::swap(&mut theta, &mut trial);
            chi2 = new_chi2;
            // The new point's residuals and Jacobian (finite: chi2 was).
            let _ = self.evaluate(&theta, &mut residuals, &mut jacobian, true);
            if decrease <= RELATIVE_DECREASE * chi2 {
                converged = true;
                break;
            }
        }
        normal_equations(&jacobian, &residuals, k, &mut normal, &mut gradient);
        let uncertainties = self.uncertainties(&bounds, &theta, &normal, &mut workspace);
        let mut per_experiment = vec![(0.0, 0.0); self.n_experiments];
        for (p, r) in self.points.iter().zip(&residuals) {
            per_experiment[p.experiment].0 += r * r;
            per_experiment[p.experiment].1 += 1.0;
        }
        let experiments = per_experiment
            .iter()
            .map(|&(c, n)| ExperimentStatistics::new(c, n))
            .collect::<Result<Vec<_>>>()?;
        let summary = summarise(&experiments)?;
        Ok(FitResult { parameters: theta, uncertainties, chi2, experiments, summary, iterations, converged })
    }

    fn uncertainties(
        &self,
        bounds: &[FitParameter],
        theta: &[f64],
        normal: &[f64],
        workspace: &mut Vec<f64>,
    ) -> Vec<f64> {
        let k = bounds.len();
        let mut out = vec![0.0; k];
        let free: Vec<usize> = (0..k)
            .filter(|&j| {
                bounds[j].lower < bounds[j].upper && theta[j] > bounds[j].lower && theta[j] < bounds[j].upper
            })
            .collect();
        for &j in &free {
            if normal[j * k + j] == 0.0 {
                out[j] = f64::INFINITY;
            }
        }
        let constrained: Vec<usize> = free.into_iter().filter(|&j| normal[j * k + j] > 0.0).collect();
        let m = constrained.len();
        let mut matrix: Vec<f64> =
            constrained.iter().flat_map(|&i| constrained.iter().map(move |&j| normal[i * k + j])).collect();
        if cholesky_in_place(&mut matrix, m, m, workspace).is_err() {
            for &j in &constrained {
                out[j] = f64::INFINITY;
            }
            return out;
        }
        for (col, &j) in constrained.iter().enumerate() {
            let mut unit = vec![0.0; m];
            unit[col] = 1.0;
            cholesky_solve(&matrix, m, m, &mut unit);
            out[j] = sqrt(unit[col]);
        }
        out
    }
}

/// J^T J (full, k x k) and J^T r.
fn normal_equations(jacobian: &[f64], residuals: &[f64], k: usize, normal: &mut [f64], gradient: &mut [f64]) {
    normal.fill(0.0);
    gradient.fill(0.0);
    for (row, &r) in jacobian.chunks_exact(k).zip(residuals) {
        for i in 0..k {
            gradient[i] += row[i] * r;
            for j in 0..k {
                normal[i * k + j] += row[i] * row[j];
            }
        }
    }
}

fn earth_term(particle: &Particle, species: usize, abscissa: Abscissa, x: f64) -> EarthTerm {
    let kinetic = match abscissa {
        Abscissa::Rigidity => particle.kinetic_energy_gev(x),
        Abscissa::KineticEnergyPerNucleon => x,
    };
    let p2 = kinetic * (kinetic + 2.0 * particle.nucleon_mass_gev());
    let abscissa_factor = match abscissa {
        Abscissa::Rigidity => -ln(particle.rigidity_jacobian(kinetic)),
        Abscissa::KineticEnergyPerNucleon => 0.0,
    };
    EarthTerm {
        species,
        kinetic,
        ln_constant: ln(p2) + abscissa_factor,
        drift_shape: ModulationPotential::drift_shape(particle, kinetic),
    }
}
