//! Statistics of propagation fits (seed 000): the regularised incomplete gamma function,
//! chi2 p-values and NLLs per experiment with Sum-NLL and Max-NLL, the normalisation and
//! solar-modulation fit, and the ridge-regression surrogate of the likelihood with its
//! gradient step.

pub mod chi2;
pub mod fit;
pub mod gamma_q;
pub mod surrogate;
