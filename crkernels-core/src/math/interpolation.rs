//! Linear interpolation in log-log space: the way tabulated cosmic-ray spectra (DRAGON, GALPROP
//! output) are read between grid points, exact for power laws.

use alloc::vec::Vec;

use super::{exp, ln};
use crate::error::{Result, invalid};

/// y(x) tabulated at increasing x > 0 with y > 0, read as ln y linear in ln x. Outside the grid
/// the end pieces are extended (a power law with the end slope).
#[derive(Clone, Debug)]
pub struct LogLogTable {
    ln_x: Vec<f64>,
    ln_y: Vec<f64>,
}

impl LogLogTable {
    /// A table from `x` (strictly increasing, finite, > 0) and `y` (finite, > 0), at least two
    /// points; `what` names the table in error messages.
    pub fn new(what: &str, x: &[f64], y: &[f64]) -> Result<Self> {
        if x.len() != y.len() {
            return Err(invalid!("{what}: {} abscissae and {} values", x.len(), y.len()));
        }
        if x.len() < 2 {
            return Err(invalid!("{what}: a table needs at least 2 points, got {}", x.len()));
        }
        for (i, (&xi, &yi)) in x.iter().zip(y).enumerate() {
            if !(xi.is_finite() && xi > 0.0) {
                return Err(invalid!("{what}: abscissa {i} must be finite and > 0, got {xi}"));
            }
            if !(yi.is_finite() && yi > 0.0) {
                return Err(invalid!("{what}: value {i} must be finite and > 0 (log-log), got {yi}"));
            }
            if i > 0 && xi <= x[i - 1] {
                return Err(invalid!("{what}: abscissae must increase strictly (element {i}: {xi})"));
            }
        }
        Ok(LogLogTable { ln_x: x.iter().map(|&v| ln(v)).collect(), ln_y: y.iter().map(|&v| ln(v)).collect() })
    }

    /// (ln y, d ln y / d ln x) at ln x: the value and slope of the piece holding it.
    #[inline]
    pub fn ln_value_and_slope(&self, ln_x: f64) -> (f64, f64) {
        let n = self.ln_x.len();
        let j = self.ln_x.partition_point(|&v| v <= ln_x).clamp(1, n - 1) - 1;
        let slope = (self.ln_y[j + 1] - self.ln_y[j]) / (self.ln_x[j + 1] - self.ln_x[j]);
        (self.ln_y[j] + slope * (ln_x - self.ln_x[j]), slope)
    }

    /// y(x) for x > 0.
    pub fn value(&self, x: f64) -> f64 {
        exp(self.ln_value_and_slope(ln(x)).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_laws_are_exact() {
        let x = [1.0, 10.0, 100.0];
        let y: Vec<f64> = x.iter().map(|&v: &f64| 3.0 * v.powf(-2.7)).collect();
        let table = LogLogTable::new("test", &x, &y).unwrap();
        for v in [0.5, 2.0, 31.6, 300.0] {
            assert!((table.value(v) / (3.0 * v.powf(-2.7)) - 1.0).abs() < 1e-13, "{v}");
        }
        assert!(LogLogTable::new("test", &[1.0, 1.0], &[1.0, 2.0]).is_err());
        assert!(LogLogTable::new("test", &[1.0, 2.0], &[1.0, 0.0]).is_err());
        assert!(LogLogTable::new("test", &[1.0], &[1.0]).is_err());
    }
}
