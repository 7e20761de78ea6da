//! C ABI of the fit statistics: incomplete gamma, chi2 p-values and NLLs, Sum-/Max-NLL, and
//! the normalisation + solar-modulation fit.

use crate::error::{Error, Result};
use crate::ffi::propagation::{crk_particle, particle};
use crate::ffi::{crk_status, guard, input, output, require_out, write_out};
use crate::stats::chi2::{self, ExperimentStatistics};
use crate::stats::fit::{Abscissa, DataPoint, FitParameter, ModulationFit, SpeciesModel};
use crate::stats::gamma_q;

/// The regularised upper incomplete gamma function Q(a, x), a > 0, x >= 0 (0 where it
/// underflows: use crk_gamma_q_neg_log there).
///
/// # Safety
/// `q` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_gamma_q(a: f64, x: f64, q: *mut f64) -> crk_status {
    // SAFETY: forwarded from the caller.
    guard(|| unsafe { write_out(q, gamma_q::gamma_q(a, x)?, "q") })
}

/// The regularised lower incomplete gamma function P(a, x) = 1 - Q(a, x).
///
/// # Safety
/// `p` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_gamma_p(a: f64, x: f64, p: *mut f64) -> crk_status {
    // SAFETY: forwarded from the caller.
    guard(|| unsafe { write_out(p, gamma_q::gamma_p(a, x)?, "p") })
}

/// -ln Q(a, x) computed in log space: finite and accurate (1e-12 relative) for any finite x.
///
/// # Safety
/// `neg_log_q` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_gamma_q_neg_log(a: f64, x: f64, neg_log_q: *mut f64) -> crk_status {
    // SAFETY: forwarded from the caller.
    guard(|| unsafe { write_out(neg_log_q, gamma_q::neg_ln_gamma_q(a, x)?, "neg_log_q") })
}

/// The p-value Q(ndof/2, chi2/2) of a chi2 (>= 0) with ndof (> 0, need not be an integer)
/// degrees of freedom.
///
/// Errors: CRK_ERR_INVALID_ARGUMENT (chi2 < 0, ndof <= 0, NaN); CRK_ERR_NULL_POINTER.
///
/// # Safety
/// `p_value` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_chi2_pvalue(chi2: f64, ndof: f64, p_value: *mut f64) -> crk_status {
    // SAFETY: forwarded from the caller.
    guard(|| unsafe { write_out(p_value, chi2::chi2_pvalue(chi2, ndof)?, "p_value") })
}

/// NLL = -ln Q(ndof/2, chi2/2), computed in log space (finite when the p-value underflows).
///
/// Errors: CRK_ERR_INVALID_ARGUMENT (chi2 < 0, ndof <= 0, NaN); CRK_ERR_NULL_POINTER.
///
/// # Safety
/// `nll` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_chi2_neg_log_pvalue(chi2: f64, ndof: f64, nll: *mut f64) -> crk_status {
    // SAFETY: forwarded from the caller.
    guard(|| unsafe { write_out(nll, chi2::chi2_neg_log_pvalue(chi2, ndof)?, "nll") })
}

/// The statistics of one experiment.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct crk_experiment_result {
    /// chi2 of its points.
    pub chi2: f64,
    /// Degrees of freedom.
    pub ndof: f64,
    /// p-value Q(ndof/2, chi2/2) (0 where it underflows).
    pub p_value: f64,
    /// NLL = -ln p (finite).
    pub nll: f64,
}

/// Sum-NLL and Max-NLL over experiments.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct crk_nll_summary {
    /// Sum of the NLLs.
    pub sum_nll: f64,
    /// The largest NLL.
    pub max_nll: f64,
    /// Index of the experiment with the largest NLL.
    pub worst_experiment: usize,
}

impl From<ExperimentStatistics> for crk_experiment_result {
    fn from(e: ExperimentStatistics) -> Self {
        crk_experiment_result { chi2: e.chi2, ndof: e.ndof, p_value: e.p_value, nll: e.nll }
    }
}

/// Statistics of n >= 1 experiments from their chi2 and ndof: per experiment (results, n
/// entries) and Sum-NLL / Max-NLL (summary).
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (n = 0: no experiments; chi2 < 0,
/// ndof <= 0, NaN, naming the experiment).
///
/// Memory: 32 n bytes.
///
/// # Safety
/// `chi2`, `ndof`, `results` must hold n values; `summary` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_experiment_statistics(
    chi2: *const f64,
    ndof: *const f64,
    n: usize,
    results: *mut crk_experiment_result,
    summary: *mut crk_nll_summary,
) -> crk_status {
    guard(|| {
        require_out(summary, "summary")?;
        // SAFETY: forwarded from the caller.
        let (chi2, ndof) = unsafe { (input(chi2, n, "chi2")?, input(ndof, n, "ndof")?) };
        // SAFETY: forwarded from the caller.
        let results = unsafe { output(results, n, "results")? };
        let (stats, s) = chi2::experiment_statistics(chi2, ndof)?;
        for (r, e) in results.iter_mut().zip(stats) {
            *r = e.into();
        }
        let s = crk_nll_summary { sum_nll: s.sum_nll, max_nll: s.max_nll, worst_experiment: s.worst };
        // SAFETY: forwarded from the caller.
        unsafe { write_out(summary, s, "summary") }
    })
}

/// The abscissa of a data point (one of the CRK_ABSCISSA_* constants).
pub type crk_abscissa = i32;
/// Rigidity [GV]; fluxes per GV.
pub const CRK_ABSCISSA_RIGIDITY: crk_abscissa = 0;
/// Kinetic energy per nucleon [GeV/n]; fluxes per GeV/n.
pub const CRK_ABSCISSA_KINETIC_PER_NUCLEON: crk_abscissa = 1;

/// A fitted parameter: start value within [lower, upper]; lower == upper fixes it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_fit_parameter {
    /// Start value (finite).
    pub start: f64,
    /// Lower bound (> 0 for normalisations; -INFINITY allowed for potentials).
    pub lower: f64,
    /// Upper bound (INFINITY allowed).
    pub upper: f64,
}

/// The interstellar model spectrum of one species: flux per GV at increasing rigidities [GV]
/// (log-log interpolation), multiplied by normalisation parameter `normalisation`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_fit_species {
    /// The species.
    pub particle: crk_particle,
    /// Rigidity grid [GV], increasing, n_grid >= 2 values.
    pub rigidity_GV: *const f64,
    /// Interstellar flux per GV at the grid, > 0.
    pub flux_per_GV: *const f64,
    /// Grid size.
    pub n_grid: usize,
    /// Index of its normalisation parameter (several species may share one).
    pub normalisation: usize,
}

/// One measured value: the flux of species `numerator` (denominator < 0), or the ratio
/// numerator / denominator, at Earth abscissa x.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_data_point {
    /// Experiment index, 0 .. n_experiments - 1.
    pub experiment: usize,
    /// Species index of the flux or of the ratio's numerator.
    pub numerator: i32,
    /// Species index of the ratio's denominator; -1 for a flux.
    pub denominator: i32,
    /// What x is (CRK_ABSCISSA_*).
    pub abscissa: crk_abscissa,
    /// Abscissa at Earth [GV or GeV/n], > 0.
    pub x: f64,
    /// Measured flux (per unit abscissa) or ratio.
    pub value: f64,
    /// 1-sigma uncertainty, > 0.
    pub sigma: f64,
}

/// Summary of a fit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct crk_fit_summary {
    /// Total chi2 at the best fit.
    pub chi2: f64,
    /// Sum-NLL over experiments.
    pub sum_nll: f64,
    /// Max-NLL over experiments.
    pub max_nll: f64,
    /// Index of the worst experiment.
    pub worst_experiment: usize,
    /// Iterations of the minimiser.
    pub iterations: usize,
    /// 1 if converged, 0 if the iteration limit was reached.
    pub converged: i32,
}

fn species_model(s: &crk_fit_species, index: usize) -> Result<SpeciesModel> {
    let particle = particle(&s.particle)
        .map_err(|e| Error::InvalidArgument(format!("species {index}: {}", e.message())))?;
    // SAFETY: the caller promises n_grid values behind each pointer.
    let (grid, flux) = unsafe {
        (input(s.rigidity_GV, s.n_grid, "rigidity_GV")?, input(s.flux_per_GV, s.n_grid, "flux_per_GV")?)
    };
    SpeciesModel::new(particle, grid, flux, s.normalisation)
}

fn data_point(p: &crk_data_point, index: usize) -> Result<DataPoint> {
    let abscissa = match p.abscissa {
        CRK_ABSCISSA_RIGIDITY => Abscissa::Rigidity,
        CRK_ABSCISSA_KINETIC_PER_NUCLEON => Abscissa::KineticEnergyPerNucleon,
        other => {
            return Err(Error::InvalidArgument(format!(
                "data point {index}: unknown abscissa {other} (CRK_ABSCISSA_RIGIDITY = 0, CRK_ABSCISSA_KINETIC_PER_NUCLEON = 1)"
            )));
        }
    };
    let numerator = usize::try_from(p.numerator).map_err(|_| {
        Error::InvalidArgument(format!("data point {index}: numerator species {} < 0", p.numerator))
    })?;
    let denominator = if p.denominator < 0 { None } else { Some(p.denominator as usize) };
    Ok(DataPoint {
        experiment: p.experiment,
        numerator,
        denominator,
        abscissa,
        x: p.x,
        value: p.value,
        sigma: p.sigma,
    })
}

fn parameter(p: &crk_fit_parameter) -> FitParameter {
    FitParameter { start: p.start, lower: p.lower, upper: p.upper }
}

/// Fits normalisations and (Phi0, Phi1+, Phi1-) [GV] to flux and ratio data by a bounded
/// Levenberg-Marquardt minimisation of the total chi2 (see the Rust docs of
/// crkernels::stats::fit). Parameters are ordered N_0 .. N_(n_normalisations-1), Phi0, Phi1+,
/// Phi1-; `modulation` holds 3 parameters. Writes the best fit (`parameters`) and 1-sigma
/// uncertainties (`uncertainties`), both n_normalisations + 3 values; per experiment chi2,
/// ndof (= its number of points), p-value and NLL (`experiments`, n_experiments entries); and
/// the summary.
///
/// Errors (nothing is written): CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (empty
/// experiments, no species, bad bounds or start, unknown abscissa, bad species or grids, x <= 0,
/// sigma <= 0, NaN values, indices out of range; the memory limits, checked before the
/// Jacobian is allocated: n_experiments > n_points, k = n_normalisations + 3 > 4096 fitted
/// parameters, n_points x k > 2^28 Jacobian entries).
///
/// Memory, n = n_points, k = n_normalisations + 3, E = n_experiments, G the grid points of all
/// species: 8 n k (Jacobian) + 24 k^2 (normal matrix, damped system, covariance) + about
/// 152 n + 56 E + 16 G bytes. Time: n k^2 multiply-adds per iteration, at most 500 iterations.
///
/// # Safety
/// Every pointer must hold its count of values; `summary` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_modulation_fit(
    species: *const crk_fit_species,
    n_species: usize,
    normalisations: *const crk_fit_parameter,
    n_normalisations: usize,
    modulation: *const crk_fit_parameter,
    points: *const crk_data_point,
    n_points: usize,
    n_experiments: usize,
    parameters: *mut f64,
    uncertainties: *mut f64,
    experiments: *mut crk_experiment_result,
    summary: *mut crk_fit_summary,
) -> crk_status {
    guard(|| {
        require_out(summary, "summary")?;
        // SAFETY: forwarded from the caller.
        let (species, normalisations, modulation, points) = unsafe {
            (
                input(species, n_species, "species")?,
                input(normalisations, n_normalisations, "normalisations")?,
                input(modulation, 3, "modulation")?,
                input(points, n_points, "points")?,
            )
        };
        let k = n_normalisations + 3;
        // SAFETY: forwarded from the caller.
        let (parameters, uncertainties, experiments) = unsafe {
            (
                output(parameters, k, "parameters")?,
                output(uncertainties, k, "uncertainties")?,
                output(experiments, n_experiments, "experiments")?,
            )
        };
        let species =
            species.iter().enumerate().map(|(i, s)| species_model(s, i)).collect::<Result<Vec<_>>>()?;
        // Exactly n_points entries (collecting a Result would grow the vector by doubling).
        let mut converted = crkernels_core::memory::try_with_capacity(points.len(), "the data points")?;
        for (i, p) in points.iter().enumerate() {
            converted.push(data_point(p, i)?);
        }
        let points = converted;
        let fit = ModulationFit::new(
            species,
            normalisations.iter().map(parameter).collect(),
            points,
            n_experiments,
            [parameter(&modulation[0]), parameter(&modulation[1]), parameter(&modulation[2])],
        )?;
        let result = fit.run()?;
        parameters.copy_from_slice(&result.parameters);
        uncertainties.copy_from_slice(&result.uncertainties);
        for (o, e) in experiments.iter_mut().zip(&result.experiments) {
            *o = (*e).into();
        }
        let s = crk_fit_summary {
            chi2: result.chi2,
            sum_nll: result.summary.sum_nll,
            max_nll: result.summary.max_nll,
            worst_experiment: result.summary.worst,
            iterations: result.iterations,
            converged: i32::from(result.converged),
        };
        // SAFETY: forwarded from the caller.
        unsafe { write_out(summary, s, "summary") }
    })
}
