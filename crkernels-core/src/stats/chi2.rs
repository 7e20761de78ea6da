//! Model-quality statistics of seed 000 ("Optimizing DRAGON Parameters"): per experiment the
//! chi2 with its degrees of freedom, the p-value p = Q(ndof/2, chi2/2) (regularised upper
//! incomplete gamma) and NLL = -ln p computed in log space (finite when p underflows, chi2 in
//! the thousands); over experiments Sum-NLL = sum of the NLLs (every experiment weighs the
//! same) and Max-NLL = the NLL of the worst experiment.

use alloc::vec::Vec;

use super::gamma_q::{gamma_q, neg_ln_gamma_q};
use crate::error::{Result, invalid};

fn check(chi2: f64, ndof: f64) -> Result<()> {
    if !(chi2.is_finite() && chi2 >= 0.0) {
        return Err(invalid!("chi2 must be finite and >= 0, got {chi2}"));
    }
    if !(ndof.is_finite() && ndof > 0.0) {
        return Err(invalid!("the number of degrees of freedom must be finite and > 0, got {ndof}"));
    }
    Ok(())
}

/// The p-value of a chi2 with `ndof` degrees of freedom, Q(ndof/2, chi2/2).
pub fn chi2_pvalue(chi2: f64, ndof: f64) -> Result<f64> {
    check(chi2, ndof)?;
    gamma_q(0.5 * ndof, 0.5 * chi2)
}

/// NLL = -ln p = -ln Q(ndof/2, chi2/2), in log space.
pub fn chi2_neg_log_pvalue(chi2: f64, ndof: f64) -> Result<f64> {
    check(chi2, ndof)?;
    neg_ln_gamma_q(0.5 * ndof, 0.5 * chi2)
}

/// The statistics of one experiment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExperimentStatistics {
    /// chi2 of the experiment's points.
    pub chi2: f64,
    /// Degrees of freedom.
    pub ndof: f64,
    /// p-value Q(ndof/2, chi2/2) (0 where it underflows).
    pub p_value: f64,
    /// -ln p, finite even where p underflows.
    pub nll: f64,
}

impl ExperimentStatistics {
    /// The statistics of a chi2 with `ndof` degrees of freedom (chi2 >= 0, ndof > 0).
    pub fn new(chi2: f64, ndof: f64) -> Result<Self> {
        Ok(ExperimentStatistics {
            chi2,
            ndof,
            p_value: chi2_pvalue(chi2, ndof)?,
            nll: chi2_neg_log_pvalue(chi2, ndof)?,
        })
    }
}

/// Sum-NLL and Max-NLL over experiments.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NllSummary {
    /// Sum of the experiments' NLLs.
    pub sum_nll: f64,
    /// The largest NLL (the worst-fitting experiment).
    pub max_nll: f64,
    /// Index of the worst experiment (the first one if several tie).
    pub worst: usize,
}

/// Sum-NLL and Max-NLL of at least one experiment.
pub fn summarise(experiments: &[ExperimentStatistics]) -> Result<NllSummary> {
    if experiments.is_empty() {
        return Err(invalid!("no experiments to summarise"));
    }
    let mut summary = NllSummary { sum_nll: 0.0, max_nll: f64::NEG_INFINITY, worst: 0 };
    for (i, e) in experiments.iter().enumerate() {
        summary.sum_nll += e.nll;
        if e.nll > summary.max_nll {
            summary.max_nll = e.nll;
            summary.worst = i;
        }
    }
    Ok(summary)
}

/// The statistics of several experiments from their chi2 and ndof (equal lengths, >= 1).
pub fn experiment_statistics(chi2: &[f64], ndof: &[f64]) -> Result<(Vec<ExperimentStatistics>, NllSummary)> {
    crate::batch::check_lengths("chi2", chi2.len(), "ndof", ndof.len())?;
    // Exactly one entry per experiment (collecting a Result would grow the vector by doubling).
    let mut stats = crate::memory::try_with_capacity(chi2.len(), "the experiment statistics")?;
    for (i, (&c, &n)) in chi2.iter().zip(ndof).enumerate() {
        stats.push(ExperimentStatistics::new(c, n).map_err(|e| invalid!("experiment {i}: {}", e.message()))?);
    }
    let summary = summarise(&stats)?;
    Ok((stats, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_degrees_of_freedom_is_an_exponential() {
        // ndof = 2: p = e^(-chi2/2), NLL = chi2/2 exactly, also far beyond underflow.
        for chi2 in [0.0, 1.0, 30.0, 5000.0, 2e5] {
            let nll = chi2_neg_log_pvalue(chi2, 2.0).unwrap();
            assert!((nll - 0.5 * chi2).abs() <= 1e-14 * chi2, "{chi2}: {nll}");
        }
        assert!(chi2_neg_log_pvalue(-1.0, 2.0).is_err());
        assert!(chi2_neg_log_pvalue(1.0, 0.0).is_err());
    }

    #[test]
    fn summary_picks_the_worst() {
        let (stats, summary) = experiment_statistics(&[2.0, 40.0, 1.0], &[2.0, 2.0, 2.0]).unwrap();
        assert_eq!(stats.len(), 3);
        assert_eq!(summary.worst, 1);
        assert!((summary.sum_nll - 21.5).abs() < 1e-13 && (summary.max_nll - 20.0).abs() < 1e-13);
        assert!(experiment_statistics(&[], &[]).is_err());
    }
}
