//! C ABI of the classifier two-sample test (SECRET section 3.2.2): how well a dense ReLU
//! classifier tells two samples apart (test accuracy 0.5: indistinguishable).

use crate::error::{Error, Result};
use crate::ffi::{crk_status, guard, input, require_out};
use crate::nn::classifier::{ClassifierOptions, MAX_HIDDEN_LAYERS, TwoSampleOptions, two_sample_test};

/// Settings of crk_two_sample_test (crk_two_sample_options_default fills in the SECRET
/// paper's classifier: one hidden layer of 32 ReLU units, 100 epochs, Adam at 1e-3).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_two_sample_options {
    /// Hidden layers, 1..8.
    pub n_hidden_layers: usize,
    /// Units of each hidden layer (the first n_hidden_layers entries are used, each >= 1).
    pub hidden_units: [usize; 8],
    /// Rows per minibatch, >= 1 (default 50).
    pub batch_size: usize,
    /// Adam's learning rate, finite and > 0 (default 1e-3).
    pub learning_rate: f64,
    /// Epochs, >= 1 (default 100).
    pub max_epochs: usize,
    /// Epochs without a lower validation BCE before stopping; 0 (default) = never stop early.
    pub patience: usize,
    /// Fraction of each sample for validation, in [0, 1) (default 0.1); the parameters with
    /// the lowest validation BCE are kept (with 0, the last epoch's).
    pub validation_fraction: f64,
    /// Fraction of each sample held out for the test, in (0, 1) (default 0.1).
    pub test_fraction: f64,
    /// Seed of every random choice (subsets, initial weights, minibatch order).
    pub seed: u64,
}

/// What crk_two_sample_test found.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct crk_two_sample_report {
    /// Fraction of the test rows classified right: 0.5 = indistinguishable, 1 = fully apart.
    pub test_accuracy: f64,
    /// Mean binary cross-entropy on the test rows [nats] (ln 2 for a classifier that learnt
    /// nothing).
    pub test_bce: f64,
    /// sqrt(0.25 / n_test): the standard error of test_accuracy if the samples are
    /// indistinguishable.
    pub null_standard_error: f64,
    /// Validation accuracy of the kept parameters (NaN without validation).
    pub validation_accuracy: f64,
    /// Validation BCE of the kept parameters (NaN without validation).
    pub best_validation_bce: f64,
    /// The last epoch's mean training BCE.
    pub final_train_bce: f64,
    /// Epochs run.
    pub epochs_run: usize,
    /// 0-based epoch of the kept parameters.
    pub best_epoch: usize,
    /// Rows used from each sample: min(n_a, n_b).
    pub n_per_class: usize,
    /// Training rows (both samples, equal numbers).
    pub n_train: usize,
    /// Validation rows (both samples, equal numbers).
    pub n_validation: usize,
    /// Test rows (both samples, equal numbers).
    pub n_test: usize,
}

impl From<&TwoSampleOptions> for crk_two_sample_options {
    fn from(o: &TwoSampleOptions) -> Self {
        let mut hidden_units = [0; 8];
        hidden_units[..o.classifier.hidden_units.len()].copy_from_slice(&o.classifier.hidden_units);
        Self {
            n_hidden_layers: o.classifier.hidden_units.len(),
            hidden_units,
            batch_size: o.classifier.batch_size,
            learning_rate: o.classifier.learning_rate,
            max_epochs: o.classifier.max_epochs,
            patience: o.classifier.patience,
            validation_fraction: o.validation_fraction,
            test_fraction: o.test_fraction,
            seed: o.classifier.seed,
        }
    }
}

fn options_from_c(o: &crk_two_sample_options) -> Result<TwoSampleOptions> {
    if o.n_hidden_layers == 0 || o.n_hidden_layers > MAX_HIDDEN_LAYERS {
        return Err(Error::InvalidArgument(format!(
            "n_hidden_layers must be 1 to {MAX_HIDDEN_LAYERS}, got {}",
            o.n_hidden_layers
        )));
    }
    Ok(TwoSampleOptions {
        classifier: ClassifierOptions {
            hidden_units: o.hidden_units[..o.n_hidden_layers].to_vec(),
            batch_size: o.batch_size,
            learning_rate: o.learning_rate,
            max_epochs: o.max_epochs,
            patience: o.patience,
            seed: o.seed,
            ..ClassifierOptions::default()
        },
        validation_fraction: o.validation_fraction,
        test_fraction: o.test_fraction,
    })
}

/// Fills `options` with the defaults: the SECRET paper's classifier (one hidden layer of 32
/// ReLU units, sigmoid output, binary cross-entropy, 100 epochs, Adam at 1e-3), minibatch 50,
/// no early stopping, an 80/10/10 train/validation/test split, seed 0. NULL is a no-op.
///
/// # Safety
/// `options` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_two_sample_options_default(options: *mut crk_two_sample_options) {
    if !options.is_null() {
        // SAFETY: non-null; the caller promises it is writable.
        unsafe { options.write((&TwoSampleOptions::default()).into()) };
    }
}

/// The classifier two-sample test of SECRET section 3.2.2 (Lopez-Paz & Oquab 2017): trains a
/// dense classifier (ReLU hidden layers, sigmoid output, binary cross-entropy, Adam) to tell
/// rows of `a` ([n_a][n_features], label 0) from rows of `b` ([n_b][n_features], label 1) and
/// reports its accuracy on held-out rows: 0.5 = indistinguishable. The sets are balanced
/// (min(n_a, n_b) rows of each, a random subset of the larger), each split the same way into
/// training, validation and test rows (stratified: every split is exactly balanced), and the
/// inputs standardised per feature with the training rows' mean and standard deviation.
/// Single-threaded and deterministic: the same data, options and seed give the same report,
/// bit for bit. `options` may be NULL (the defaults of crk_two_sample_options_default).
///
/// Errors (nothing written to `report`): CRK_ERR_NULL_POINTER (a, b or report NULL);
/// CRK_ERR_INVALID_ARGUMENT (n_features = 0; NaN or infinite values, naming the sample, row
/// and column; a feature of zero variance in the training rows; too few rows for one test row,
/// one validation row and one minibatch of training rows; n_hidden_layers outside 1..8, a
/// hidden layer of 0 units, batch_size 0, learning_rate <= 0 or not finite, max_epochs 0,
/// fractions out of range, patience > 0 without validation); CRK_ERR_OUT_OF_DOMAIN (training
/// diverged: a parameter became infinite).
///
/// Memory: a copy of the 2 min(n_a, n_b) rows used (4 bytes per value, twice: raw and
/// standardised) and a few kB for the network.
///
/// # Safety
/// `a`, `b` NULL or arrays of the given sizes; `options` readable or NULL; `report` writable
/// or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_two_sample_test(
    a: *const f32,
    n_a: usize,
    b: *const f32,
    n_b: usize,
    n_features: usize,
    options: *const crk_two_sample_options,
    report: *mut crk_two_sample_report,
) -> crk_status {
    guard(|| {
        require_out(report, "report")?;
        if a.is_null() {
            return Err(Error::NullPointer("a is NULL".into()));
        }
        if b.is_null() {
            return Err(Error::NullPointer("b is NULL".into()));
        }
        if n_features == 0 {
            return Err(Error::InvalidArgument("n_features must be >= 1, got 0".into()));
        }
        let count = |n: usize, name: &str| {
            n.checked_mul(n_features)
                .ok_or_else(|| Error::InvalidArgument(format!("{name}: n = {n} is too large")))
        };
        // SAFETY: forwarded from the caller.
        let a = unsafe { input(a, count(n_a, "a")?, "a")? };
        // SAFETY: forwarded from the caller.
        let b = unsafe { input(b, count(n_b, "b")?, "b")? };
        // SAFETY: the caller promises a readable struct or NULL.
        let options = match unsafe { options.as_ref() } {
            Some(o) => options_from_c(o)?,
            None => TwoSampleOptions::default(),
        };
        let r = two_sample_test(a, b, n_features, &options)?;
        let out = crk_two_sample_report {
            test_accuracy: r.test_accuracy,
            test_bce: r.test_bce,
            null_standard_error: r.null_standard_error,
            validation_accuracy: r.validation_accuracy,
            best_validation_bce: r.best_validation_bce,
            final_train_bce: r.final_train_bce,
            epochs_run: r.epochs_run,
            best_epoch: r.best_epoch,
            n_per_class: r.n_per_class,
            n_train: r.n_train,
            n_validation: r.n_validation,
            n_test: r.n_test,
        };
        // SAFETY: checked non-null above; the caller promises it is writable.
        unsafe { report.write(out) };
        Ok(())
    })
}
