//! The regularised incomplete gamma function and chi2 NLLs against mpmath at 30 digits
//! (tests/data/fit/gamma_q.csv from tests/reference/gammainc_reference.py) and closed forms.

mod fit_support;

use crkernels::stats::chi2::{chi2_neg_log_pvalue, chi2_pvalue};
use crkernels::stats::gamma_q::{gamma_p, gamma_q, neg_ln_gamma_q};
use fit_support::Table;

/// Relative error, with values below the normal range compared absolutely.
fn error(got: f64, want: f64) -> f64 {
    if want.abs() < f64::MIN_POSITIVE {
        if got.abs() < 1e-300 { 0.0 } else { 1.0 }
    } else {
        (got - want).abs() / want.abs()
    }
}

#[test]
fn matches_mpmath_on_the_whole_table() {
    let table = Table::read("gamma_q.csv");
    let (mut worst_q, mut worst_p, mut worst_nll) = ((0.0, 0), (0.0, 0), (0.0, 0));
    for row in 0..table.rows.len() {
        let (a, x) = (table.get(row, "a"), table.get(row, "x"));
        let q = gamma_q(a, x).unwrap();
        let p = gamma_p(a, x).unwrap();
        let nll = neg_ln_gamma_q(a, x).unwrap();
        for (worst, got, want) in [
            (&mut worst_q, q, table.get(row, "Q")),
            (&mut worst_p, p, table.get(row, "P")),
            (&mut worst_nll, nll, table.get(row, "neg_ln_Q")),
        ] {
            let e = error(got, want);
            if e > worst.0 {
                *worst = (e, row);
            }
        }
        // The chi2 form is the same function of (ndof/2, chi2/2).
        let (ndof, chi2) = (table.get(row, "ndof"), table.get(row, "chi2"));
        if ndof > 0.0 {
            assert_eq!(
                chi2_neg_log_pvalue(chi2, ndof).unwrap(),
                neg_ln_gamma_q(0.5 * ndof, 0.5 * chi2).unwrap()
            );
            assert_eq!(chi2_pvalue(chi2, ndof).unwrap(), q);
        }
    }
    println!(
        "worst relative errors: Q {:.2e} (row {}), P {:.2e} (row {}), -ln Q {:.2e} (row {})",
        worst_q.0, worst_q.1, worst_p.0, worst_p.1, worst_nll.0, worst_nll.1
    );
    assert!(worst_q.0 <= 1e-12, "Q: {:e} at row {}", worst_q.0, worst_q.1);
    assert!(worst_p.0 <= 1e-12, "P: {:e} at row {}", worst_p.0, worst_p.1);
    assert!(worst_nll.0 <= 1e-12, "-ln Q: {:e} at row {}", worst_nll.0, worst_nll.1);
}

/// Q(n, x) = e^-x sum_{k < n} x^k / k! and Q(n + 1/2, x) = erfc(sqrt x) + e^-x sum_{k=1}^{n}
/// x^(k - 1/2) / Gamma(k + 1/2): sums of positive terms, independent of the series and
/// continued fraction.
#[test]
fn integer_and_half_integer_closed_forms() {
    let mut worst: f64 = 0.0;
    for n in 1..=40u32 {
        for &x in &[1e-3, 0.7, 3.0, 12.5, 40.0, 95.0, 300.0] {
            let mut term = 1.0;
            let mut sum = 1.0;
            for k in 1..n {
                term *= x / k as f64;
                sum += term;
            }
            // In log space where -ln Q is not tiny (x - ln sum cancels for Q near 1).
            let want_nll = x - sum.ln();
            if want_nll > 0.1 {
                worst = worst.max(error(neg_ln_gamma_q(n as f64, x).unwrap(), want_nll));
            }
            let want_q = (-x).exp() * sum;
            if want_q > 1e-280 {
                worst = worst.max(error(gamma_q(n as f64, x).unwrap(), want_q));
            }
            // Half-integer a = n - 1/2.
            let mut half = 0.0;
            let mut term = (-x).exp() * x.sqrt() / (std::f64::consts::PI.sqrt() / 2.0); // k = 1
            for k in 1..n {
                half += term;
                term *= x / (k as f64 + 0.5);
            }
            let want = libm::erfc(x.sqrt()) + half;
            if want > 1e-280 {
                worst = worst.max(error(gamma_q(n as f64 - 0.5, x).unwrap(), want));
            }
        }
    }
    assert!(worst < 1e-13, "{worst:e}");
}

/// -ln Q(1/2, x) = -ln erfc(sqrt x) with erfc's asymptotic series, far beyond underflow.
#[test]
fn huge_chi2_stays_finite_and_accurate() {
    for &x in &[1e3, 1e4, 1e5, 5e5] {
        let series = 1.0 - 1.0 / (2.0 * x) + 3.0 / (4.0 * x * x) - 15.0 / (8.0 * x * x * x);
        let want = x + 0.5 * (std::f64::consts::PI * x).ln() - series.ln();
        let got = neg_ln_gamma_q(0.5, x).unwrap();
        assert!(error(got, want) < 1e-14, "x = {x}: {got} vs {want}");
        assert_eq!(gamma_q(0.5, x).unwrap(), 0.0);
    }
}

#[test]
fn bad_input_is_an_error() {
    assert!(chi2_neg_log_pvalue(-1e-9, 3.0).is_err());
    assert!(chi2_neg_log_pvalue(1.0, 0.0).is_err());
    assert!(chi2_neg_log_pvalue(1.0, -2.0).is_err());
    assert!(chi2_neg_log_pvalue(f64::NAN, 2.0).is_err());
    assert!(chi2_neg_log_pvalue(f64::INFINITY, 2.0).is_err());
    assert!(gamma_q(0.0, 1.0).is_err());
}
