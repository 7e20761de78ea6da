//! C ABI of the MADE-MoG trainer (issue 16; SECRET section 3.2): one call that trains a model
//! (crk_made_train), and a trainer handle for epoch-by-epoch control with checkpoints.

use core::ffi::{c_char, c_void};
use std::ffi::CStr;
use std::path::Path;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::ffi::ensemble::crk_progress_fn;
use crate::ffi::made::{
    CRK_ACTIVATION_RELU, CRK_ACTIVATION_SIGMOID, CRK_ACTIVATION_TANH, crk_activation, crk_made,
};
use crate::ffi::network::{CRK_ACTIVATION_ELU, CRK_ACTIVATION_LEAKY_RELU};
use crate::ffi::{crk_status, free_handle, guard, handle, input, prepare_handle_out, write_handle};
use crate::nn::Activation;
use crate::nn::adam::{AdamConfig, LrSchedule};
use crate::nn::made_train::{DataOrder, MAX_HIDDEN_LAYERS};
use crate::train::{EpochReport, MadeTrainer, TrainOptions, TrainProgress, TrainReport};

/// The data dimensions in a random order drawn from the seed (the paper's choice).
pub const CRK_ORDER_RANDOM: i32 = 0;
/// The data dimensions in their natural order 1..D.
pub const CRK_ORDER_NATURAL: i32 = 1;

/// Context degrees 1..C: the parameters first in the autoregressive order (SECRET).
pub const CRK_CONTEXT_SECRET: i32 = 0;
/// Context degrees all 0: plain conditioning.
pub const CRK_CONTEXT_PLAIN: i32 = 1;

/// The same learning rate every epoch.
pub const CRK_SCHEDULE_CONSTANT: i32 = 0;
/// Cosine decay from learning_rate to schedule_value * learning_rate at max_epochs.
pub const CRK_SCHEDULE_COSINE: i32 = 1;
/// learning_rate * schedule_value^floor(epoch / schedule_every) (PyTorch's StepLR).
pub const CRK_SCHEDULE_STEP: i32 = 2;

/// Settings of a training run (crk_made_train_options_default gives the paper's
/// single-point recipe). The first twelve fields are the contract; later fields are
/// extensions with defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_made_train_options {
    /// Hidden layers, 1..8.
    pub n_hidden_layers: usize,
    /// Units of each hidden layer (the first n_hidden_layers entries), each >= 1.
    pub hidden_units: [usize; 8],
    /// Mixture components K >= 1.
    pub n_components: usize,
    /// CRK_ACTIVATION_SIGMOID, TANH, RELU, LEAKY_RELU (slope 0.01) or ELU (alpha 1).
    pub activation: crk_activation,
    /// CRK_ORDER_*.
    pub order: i32,
    /// Rows per minibatch >= 1.
    pub batch_size: usize,
    /// Adam's learning rate, finite and > 0.
    pub learning_rate: f64,
    /// The most epochs >= 1.
    pub max_epochs: usize,
    /// Epochs without a better validation NLL before stopping; 0 = never stop early.
    pub patience: usize,
    /// Fraction of the rows held out for validation, 0 <= f < 1.
    pub validation_fraction: f64,
    /// Seed of the order, initial weights, split and minibatches.
    pub seed: u64,
    /// Threads, 0 = all cores (the trained model does not depend on it).
    pub n_threads: usize,
    /// CRK_CONTEXT_SECRET (default) or CRK_CONTEXT_PLAIN.
    pub context_degrees: i32,
    /// Adam's coupled L2 weight decay (PyTorch's weight_decay), >= 0 (default 0).
    pub weight_decay: f64,
    /// CRK_SCHEDULE_* (default constant).
    pub schedule: i32,
    /// Cosine: the final fraction of the learning rate in [0, 1]; step: the factor in (0, 1].
    pub schedule_value: f64,
    /// Step: epochs per factor >= 1.
    pub schedule_every: usize,
    /// Adam's beta1, beta2 in [0, 1) and epsilon > 0 (defaults 0.9, 0.999, 1e-8).
    pub adam_beta1: f64,
    /// See adam_beta1.
    pub adam_beta2: f64,
    /// See adam_beta1.
    pub adam_epsilon: f64,
}

/// What a run reports. NLLs are per row, in the user's units (with the standardisation's
/// Jacobian).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct crk_made_train_report {
    /// Epochs run (in all, counting those before a resume).
    pub epochs_run: usize,
    /// The epoch whose model is kept (1-based; the last one without validation).
    pub best_epoch: usize,
    /// Mean -log p per row on the validation split of the kept model (NaN without validation).
    pub best_validation_nll: f64,
    /// The last epoch's mean training NLL per row.
    pub final_train_nll: f64,
    /// The last epoch's validation NLL (NaN without validation).
    pub last_validation_nll: f64,
    /// Wall time of the epochs run [s].
    pub seconds: f64,
}

/// One epoch's figures (crk_made_trainer_epoch).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct crk_made_epoch_report {
    /// Epochs finished (1 for the first).
    pub epoch: usize,
    /// Mean training NLL per row over the epoch's minibatches.
    pub train_nll: f64,
    /// Validation NLL per row after the epoch (NaN without validation).
    pub validation_nll: f64,
    /// The epoch's learning rate.
    pub learning_rate: f64,
    /// Wall time [s].
    pub seconds: f64,
}

/// A training run in progress: made by crk_made_trainer_new, released with
/// crk_made_trainer_free. Calls on one trainer are serialised (a lock): it may be passed
/// between threads, but two threads calling at once wait for each other.
pub struct crk_made_trainer {
    inner: Mutex<MadeTrainer>,
}

/// Writes the paper's single-point settings (SECRET section 3.2: one hidden layer of 200
/// sigmoid units, K = 10, random order, Adam with learning rate 1e-3, minibatch 50, 90/10
/// split, at most 500 epochs), early stopping after 30 epochs without improvement, seed 0, all
/// cores, SECRET context degrees, constant learning rate. Does nothing when options is NULL.
///
/// # Safety
/// `options` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_train_options_default(options: *mut crk_made_train_options) {
    let defaults = TrainOptions::default();
    let mut hidden_units = [0usize; 8];
    hidden_units[..defaults.hidden_units.len()].copy_from_slice(&defaults.hidden_units);
    let value = crk_made_train_options {
        n_hidden_layers: defaults.hidden_units.len(),
        hidden_units,
        n_components: defaults.n_components,
        activation: CRK_ACTIVATION_SIGMOID,
        order: CRK_ORDER_RANDOM,
        batch_size: defaults.batch_size,
        learning_rate: defaults.learning_rate,
        max_epochs: defaults.max_epochs,
        patience: defaults.patience,
        validation_fraction: defaults.validation_fraction,
        seed: defaults.seed,
        n_threads: defaults.n_threads,
        context_degrees: CRK_CONTEXT_SECRET,
        weight_decay: defaults.adam.weight_decay,
        schedule: CRK_SCHEDULE_CONSTANT,
        schedule_value: 1.0,
        schedule_every: 1,
        adam_beta1: defaults.adam.beta1,
        adam_beta2: defaults.adam.beta2,
        adam_epsilon: defaults.adam.epsilon,
    };
    // SAFETY: writable or NULL (the caller promises).
    if let Some(out) = unsafe { options.as_mut() } {
        *out = value;
    }
}

fn options_from_c(o: &crk_made_train_options) -> Result<TrainOptions> {
    if o.n_hidden_layers == 0 || o.n_hidden_layers > MAX_HIDDEN_LAYERS {
        return Err(Error::InvalidArgument(format!(
            "n_hidden_layers must be 1..{MAX_HIDDEN_LAYERS}, got {}",
            o.n_hidden_layers
        )));
    }
    let activation = match o.activation {
        CRK_ACTIVATION_SIGMOID => Activation::Sigmoid,
        CRK_ACTIVATION_TANH => Activation::Tanh,
        CRK_ACTIVATION_RELU => Activation::Relu,
        CRK_ACTIVATION_LEAKY_RELU => Activation::LeakyRelu,
        CRK_ACTIVATION_ELU => Activation::Elu,
        other => {
            return Err(Error::InvalidArgument(format!(
                "unknown activation {other} (SIGMOID = 0, TANH = 1, RELU = 2, LEAKY_RELU = 3, ELU = 4)"
            )));
        }
    };
    let order = match o.order {
        CRK_ORDER_RANDOM => DataOrder::Random,
        CRK_ORDER_NATURAL => DataOrder::Natural,
        other => {
            return Err(Error::InvalidArgument(format!(
                "unknown order {other} (CRK_ORDER_RANDOM = 0, CRK_ORDER_NATURAL = 1)"
            )));
        }
    };
    let secret_context = match o.context_degrees {
        CRK_CONTEXT_SECRET => true,
        CRK_CONTEXT_PLAIN => false,
        other => {
            return Err(Error::InvalidArgument(format!(
                "unknown context_degrees {other} (CRK_CONTEXT_SECRET = 0, CRK_CONTEXT_PLAIN = 1)"
            )));
        }
    };
    let schedule = match o.schedule {
        CRK_SCHEDULE_CONSTANT => LrSchedule::Constant,
        CRK_SCHEDULE_COSINE => LrSchedule::Cosine { final_fraction: o.schedule_value },
        CRK_SCHEDULE_STEP => LrSchedule::Step { gamma: o.schedule_value, every: o.schedule_every },
        other => {
            return Err(Error::InvalidArgument(format!(
                "unknown schedule {other} (CONSTANT = 0, COSINE = 1, STEP = 2)"
            )));
        }
    };
    Ok(TrainOptions {
        hidden_units: o.hidden_units[..o.n_hidden_layers].to_vec(),
        n_components: o.n_components,
        activation,
        order,
        secret_context,
        batch_size: o.batch_size,
        learning_rate: o.learning_rate,
        schedule,
        adam: AdamConfig {
            beta1: o.adam_beta1,
            beta2: o.adam_beta2,
            epsilon: o.adam_epsilon,
            weight_decay: o.weight_decay,
        },
        max_epochs: o.max_epochs,
        patience: o.patience,
        validation_fraction: o.validation_fraction,
        seed: o.seed,
        n_threads: o.n_threads,
    })
}

fn report_to_c(report: &TrainReport) -> crk_made_train_report {
    crk_made_train_report {
        epochs_run: report.epochs_run,
        best_epoch: report.best_epoch,
        best_validation_nll: report.best_validation_nll,
        final_train_nll: report.final_train_nll,
        last_validation_nll: report.history.last().map_or(f64::NAN, |e| e.validation_nll),
        seconds: report.history.iter().map(|e| e.seconds).sum(),
    }
}

fn epoch_to_c(e: &EpochReport) -> crk_made_epoch_report {
    crk_made_epoch_report {
        epoch: e.epoch,
        train_nll: e.train_nll,
        validation_nll: e.validation_nll,
        learning_rate: e.learning_rate,
        seconds: e.seconds,
    }
}

/// A trainer from C arrays (checked).
///
/// # Safety
/// As crk_made_train for the data and options.
unsafe fn trainer_from_c(
    context: *const f32,
    n_context: usize,
    x: *const f32,
    n_dims: usize,
    n: usize,
    options: *const crk_made_train_options,
) -> Result<MadeTrainer> {
    // SAFETY: readable or NULL (the caller promises).
    let options = unsafe { options.as_ref() }.ok_or_else(|| Error::NullPointer("options is NULL".into()))?;
    let options = options_from_c(options)?;
    if n == 0 {
        return Err(Error::InvalidArgument("no training data (n = 0)".into()));
    }
    let size = |width: usize, name: &str| {
        n.checked_mul(width).ok_or_else(|| Error::InvalidArgument(format!("n x {name} overflows")))
    };
    if n_context > 0 && context.is_null() {
        return Err(Error::NullPointer("context is NULL but n_context > 0".into()));
    }
    // SAFETY: the caller promises n x n_context and n x n_dims readable values.
    let context = unsafe { input(context, size(n_context, "n_context")?, "context")? };
    // SAFETY: as above.
    let x = unsafe { input(x, size(n_dims, "n_dims")?, "x")? };
    if x.is_empty() {
        return Err(Error::InvalidArgument("n_dims must be at least 1".into()));
    }
    MadeTrainer::new(context, n_context, x, n_dims, &options)
}

/// Calls the C progress function with rows done and rows of max_epochs epochs.
fn progress_closure(progress: crk_progress_fn, user_data: *mut c_void) -> impl FnMut(TrainProgress) -> bool {
    move |p: TrainProgress| match progress {
        // SAFETY: the caller's callback, on the calling thread, with its user_data.
        Some(callback) => unsafe { callback(p.rows_done, p.rows_total, user_data) == 0 },
        None => true,
    }
}

/// Trains a MADE-MoG on n rows of context ([n][n_context], NULL when n_context = 0) and data
/// ([n][n_dims]) in the user's units, and returns the kept model (the best on the validation
/// split, else the last) in `out`; the model standardises with the training split's mean and
/// standard deviation, so its log-densities and samples are in the user's units. `progress`
/// (may be NULL) is called on the calling thread about every 50 ms with the training rows
/// processed and the rows of max_epochs epochs; a nonzero return cancels. `report` may be NULL.
/// The model is bit for bit the same for a seed on any thread count.
///
/// Errors (nothing is written to out or report): CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT
/// (n = 0, fewer training rows than one minibatch, NaN or infinite data, a dimension of zero
/// variance, hidden_units 0, more than 8 layers, K = 0, batch 0, learning rate <= 0 or NaN,
/// validation fraction outside [0, 1), unknown activation, order, context degrees or schedule,
/// training diverged); CRK_ERR_CANCELLED.
///
/// # Safety
/// `context` readable for n * n_context floats or NULL; `x` for n * n_dims; `options` readable;
/// `out` writable; `report` writable or NULL.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn crk_made_train(
    context: *const f32,
    n_context: usize,
    x: *const f32,
    n_dims: usize,
    n: usize,
    options: *const crk_made_train_options,
    progress: crk_progress_fn,
    user_data: *mut c_void,
    out: *mut *mut crk_made,
    report: *mut crk_made_train_report,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { prepare_handle_out(out, "out")? };
        // SAFETY: forwarded from the caller.
        let mut trainer = unsafe { trainer_from_c(context, n_context, x, n_dims, n, options)? };
        let mut callback = progress_closure(progress, user_data);
        let (made, result) = trainer.train(Some(&mut callback))?;
        // SAFETY: writable or NULL (the caller promises).
        if let Some(report) = unsafe { report.as_mut() } {
            *report = report_to_c(&result);
        }
        // SAFETY: checked by prepare_handle_out.
        unsafe { write_handle(out, crk_made::from_made(made)) }
    })
}

/// A trainer for epoch-by-epoch control, on the same data and options as crk_made_train (the
/// data are copied and standardised; the arrays may be freed afterwards).
///
/// Errors: as crk_made_train's checks (nothing is written but *out = NULL).
///
/// # Safety
/// As crk_made_train.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_trainer_new(
    context: *const f32,
    n_context: usize,
    x: *const f32,
    n_dims: usize,
    n: usize,
    options: *const crk_made_train_options,
    out: *mut *mut crk_made_trainer,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { prepare_handle_out(out, "out")? };
        // SAFETY: forwarded from the caller.
        let trainer = unsafe { trainer_from_c(context, n_context, x, n_dims, n, options)? };
        // SAFETY: checked by prepare_handle_out.
        unsafe { write_handle(out, crk_made_trainer { inner: Mutex::new(trainer) }) }
    })
}

fn lock(trainer: &crk_made_trainer) -> Result<std::sync::MutexGuard<'_, MadeTrainer>> {
    trainer
        .inner
        .lock()
        .map_err(|_| Error::InvalidArgument("the trainer is unusable: an earlier call panicked".into()))
}

/// Runs one epoch (every training row once, then the validation NLL and early stopping's
/// bookkeeping); `epoch` (may be NULL) gets its figures. Running an epoch after the run has
/// finished (crk_made_trainer_finished) is allowed: it trains on.
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_CANCELLED (the minibatches before the cancel have
/// updated the model: resume from a checkpoint to repeat the epoch exactly);
/// CRK_ERR_INVALID_ARGUMENT (training diverged).
///
/// # Safety
/// `trainer` a live handle or NULL; `epoch` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_trainer_epoch(
    trainer: *mut crk_made_trainer,
    progress: crk_progress_fn,
    user_data: *mut c_void,
    epoch: *mut crk_made_epoch_report,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let trainer = unsafe { handle(trainer, "trainer")? };
        let mut callback = progress_closure(progress, user_data);
        let result = lock(trainer)?.run_epoch(Some(&mut callback))?;
        // SAFETY: writable or NULL (the caller promises).
        if let Some(out) = unsafe { epoch.as_mut() } {
            *out = epoch_to_c(&result);
        }
        Ok(())
    })
}

/// Whether the run has ended: 1 (epoch limit reached, or patience epochs without a better
/// validation NLL) or 0, in `finished`.
///
/// Errors: CRK_ERR_NULL_POINTER.
///
/// # Safety
/// `trainer` a live handle or NULL; `finished` writable or NULL (NULL: CRK_ERR_NULL_POINTER).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_trainer_finished(
    trainer: *const crk_made_trainer,
    finished: *mut i32,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let trainer = unsafe { handle(trainer, "trainer")? };
        let done = lock(trainer)?.finished();
        // SAFETY: forwarded from the caller.
        unsafe { crate::ffi::write_out(finished, i32::from(done), "finished") }
    })
}

/// The report so far (as crk_made_train's).
///
/// Errors: CRK_ERR_NULL_POINTER.
///
/// # Safety
/// `trainer` a live handle or NULL; `report` writable or NULL (NULL: CRK_ERR_NULL_POINTER).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_trainer_report(
    trainer: *const crk_made_trainer,
    report: *mut crk_made_train_report,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let trainer = unsafe { handle(trainer, "trainer")? };
        let value = report_to_c(&lock(trainer)?.report());
        // SAFETY: forwarded from the caller.
        unsafe { crate::ffi::write_out(report, value, "report") }
    })
}

/// The kept model so far (the best on the validation split, else the current one) as a new
/// crk_made handle (release it with crk_made_free; the trainer goes on independently).
///
/// Errors: CRK_ERR_NULL_POINTER.
///
/// # Safety
/// `trainer` a live handle or NULL; `out` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_trainer_model(
    trainer: *const crk_made_trainer,
    out: *mut *mut crk_made,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { prepare_handle_out(out, "out")? };
        // SAFETY: forwarded from the caller.
        let trainer = unsafe { handle(trainer, "trainer")? };
        let made = lock(trainer)?.best_model()?;
        // SAFETY: checked by prepare_handle_out.
        unsafe { write_handle(out, crk_made::from_made(made)) }
    })
}

fn path_from_c<'a>(path: *const c_char) -> Result<&'a Path> {
    if path.is_null() {
        return Err(Error::NullPointer("path is NULL".into()));
    }
    // SAFETY: non-null and NUL-terminated (the caller promises).
    let text = unsafe { CStr::from_ptr(path) }
        .to_str()
        .map_err(|_| Error::InvalidArgument("path is not valid UTF-8".into()))?;
    Ok(Path::new(text))
}

/// Writes the run's whole state to a checkpoint file (safetensors, format
/// `crkernels.made_checkpoint.v1`; written to a temporary file and renamed).
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (path not UTF-8); CRK_ERR_IO.
///
/// # Safety
/// `trainer` a live handle or NULL; `path` a NUL-terminated string or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_trainer_checkpoint(
    trainer: *const crk_made_trainer,
    path: *const c_char,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let trainer = unsafe { handle(trainer, "trainer")? };
        let path = path_from_c(path)?;
        let bytes = lock(trainer)?.checkpoint()?;
        crate::emulator::write_atomically(path, &bytes)
    })
}

/// Continues a run from a checkpoint file: the trainer must be fresh and made with the same
/// data and options (max_epochs, patience and n_threads may differ). The run then goes on
/// exactly as if it had not stopped.
///
/// Errors (the trainer is unchanged): CRK_ERR_NULL_POINTER; CRK_ERR_IO; CRK_ERR_FORMAT (not a
/// checkpoint); CRK_ERR_INVALID_ARGUMENT (a checkpoint of another model, other options or
/// other data: the message names the difference).
///
/// # Safety
/// `trainer` a live handle or NULL; `path` a NUL-terminated string or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_trainer_resume(
    trainer: *mut crk_made_trainer,
    path: *const c_char,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let trainer = unsafe { handle(trainer, "trainer")? };
        let path = path_from_c(path)?;
        let bytes =
            std::fs::read(path).map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
        lock(trainer)?.resume(&bytes)
    })
}

/// Releases a trainer (NULL is ignored).
///
/// # Safety
/// `trainer` made by crk_made_trainer_new and not used afterwards, or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_made_trainer_free(trainer: *mut crk_made_trainer) {
    // SAFETY: forwarded from the caller.
    unsafe { free_handle(trainer) }
}
