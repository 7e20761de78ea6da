//! The threaded MADE-MoG trainer (issue 16; SECRET section 3.2): Adam on minibatches drawn
//! from the Philox stream, a reproducible train/validation split, early stopping on the
//! validation NLL with the best model kept, checkpoints that resume exactly, progress with
//! cancellation. The kernels are in `crkernels_core::nn::made_train`.
//!
//! # Determinism
//!
//! Seed s fixes everything: the data order and hidden degrees (stream 0 of s), the split
//! (stream 1: a Fisher-Yates shuffle of the rows; the first floor(f n) are the validation
//! set), and epoch e's minibatch order (stream 2^32 + e: a shuffle of the training rows; the
//! last minibatch of an epoch may be short). Within a step the threads split the minibatch's
//! rows for the forward and backward pass, then the output panels for the weight gradient and
//! Adam; every value is computed by the same operations whichever thread does it, so the
//! trained model is bit for bit the same on any thread count. Losses are summed in row order
//! in f64.
//!
//! # Units
//!
//! The network sees standardised data xs = (x - mean) / std (per dimension, from the training
//! split, population standard deviation), and the context likewise. NLLs reported here are
//! per row in the user's units: -ln p(x | c) = -ln p(xs | cs) + sum_d ln std_d.

use std::hint::spin_loop;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::nn::Activation;
use crate::nn::adam::{AdamConfig, LrSchedule};
use crate::nn::made::{Made, Standardize};
use crate::nn::made_train::{
    Architecture, DataOrder, PanelRange, STREAM_EPOCHS, STREAM_SPLIT, SharedModel, TrainModel, TrainScratch,
};
use crate::rng::Stream;

/// The `format` metadata of a checkpoint.
pub const CHECKPOINT_FORMAT: &str = "crkernels.made_checkpoint.v1";

/// Rows of validation data evaluated per block (threads split each block).
const VALIDATION_BLOCK: usize = 1024;

/// The trainer's settings. [`Default`] gives the paper's single-point recipe (SECRET section
/// 3.2: one hidden layer of 200 sigmoid units, K = 10, a random order, Adam with learning
/// rate 1e-3, minibatch 50, a 90/10 split, at most 500 epochs as `train_made.py -e 500`),
/// with early stopping after 30 epochs without a better validation NLL.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    /// Units per hidden layer (1 to 8 layers).
    pub hidden_units: Vec<usize>,
    /// Mixture components K.
    pub n_components: usize,
    /// Hidden activation (not the identity).
    pub activation: Activation,
    /// The data order.
    pub order: DataOrder,
    /// Context degrees 1..C (SECRET: the parameters first in the order), or all 0.
    pub secret_context: bool,
    /// Rows per minibatch.
    pub batch_size: usize,
    /// Adam's learning rate at epoch 0.
    pub learning_rate: f64,
    /// How the learning rate changes with the epoch.
    pub schedule: LrSchedule,
    /// Adam's betas, epsilon and weight decay.
    pub adam: AdamConfig,
    /// The most epochs.
    pub max_epochs: usize,
    /// Epochs without a better validation NLL before stopping (0: never stop early).
    pub patience: usize,
    /// Fraction of the rows held out for validation, in [0, 1).
    pub validation_fraction: f64,
    /// Seed of the order, the initial weights, the split and the minibatches.
    pub seed: u64,
    /// Threads (0: all cores). The result does not depend on it.
    pub n_threads: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            hidden_units: vec![200],
            n_components: 10,
            activation: Activation::Sigmoid,
            order: DataOrder::Random,
            secret_context: true,
            batch_size: 50,
            learning_rate: 1e-3,
            schedule: LrSchedule::Constant,
            adam: AdamConfig::default(),
            max_epochs: 500,
            patience: 30,
            validation_fraction: 0.1,
            seed: 0,
            n_threads: 0,
        }
    }
}

/// One epoch's figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport {
    /// Epochs finished (1 for the first).
    pub epoch: usize,
    /// Mean NLL per row over the epoch's minibatches (the model changing as it goes), user units.
    pub train_nll: f64,
    /// Mean NLL per row on the validation split after the epoch (NaN without one).
    pub validation_nll: f64,
    /// The learning rate of the epoch.
    pub learning_rate: f64,
    /// Wall time of the epoch with its validation [s].
    pub seconds: f64,
}

/// What a finished run reports.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// Epochs run (in all, counting those before a resume).
    pub epochs_run: usize,
    /// The epoch whose model is kept (1-based; the last one without validation).
    pub best_epoch: usize,
    /// Its validation NLL per row, user units (NaN without validation).
    pub best_validation_nll: f64,
    /// The last epoch's training NLL per row.
    pub final_train_nll: f64,
    /// Every epoch (those before a resume too).
    pub history: Vec<EpochReport>,
}

/// Progress of a run, for a callback (return false to cancel).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainProgress {
    /// Training rows processed so far (over all epochs of the run).
    pub rows_done: usize,
    /// Rows of max_epochs epochs.
    pub rows_total: usize,
    /// The last finished epoch, if any.
    pub last_epoch: Option<EpochReport>,
}

/// A training run in progress: data, split, model, optimizer state and the best model so far.
/// Drive it epoch by epoch ([`Self::run_epoch`]) or to the end ([`Self::train`]); save and
/// resume it with [`Self::checkpoint`] and [`Self::resume`].
pub struct MadeTrainer {
    options: TrainOptions,
    model: TrainModel,
    n_context: usize,
    n_dims: usize,
    /// The rows (user units) and their standardisation.
    data: Arc<dyn TrainData>,
    standardize: Standardize,
    train_rows: Vec<usize>,
    validation_rows: Vec<usize>,
    /// sum_d ln std_d: -ln p(x) = -ln p(xs) + this.
    log_std_sum: f64,
    steps: u64,
    epochs_done: usize,
    best: Option<(usize, f64, Vec<f32>)>,
    epochs_since_best: usize,
    last_train_nll: f64,
    history: Vec<EpochReport>,
    threads: usize,
    data_fingerprint: u64,
}

fn invalid(message: String) -> Error {
    Error::InvalidArgument(message)
}

impl TrainOptions {
    /// Checks the settings that do not depend on the data.
    ///
    /// Errors: [`Error::InvalidArgument`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(invalid("batch_size must be at least 1".into()));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(invalid(format!("learning_rate must be finite and > 0, got {}", self.learning_rate)));
        }
        if !(self.validation_fraction.is_finite() && (0.0..1.0).contains(&self.validation_fraction)) {
            return Err(invalid(format!(
                "validation_fraction must be in [0, 1), got {}",
                self.validation_fraction
            )));
        }
        if self.max_epochs == 0 {
            return Err(invalid("max_epochs must be at least 1".into()));
        }
        self.schedule.validate()?;
        self.adam.validate()
    }

    fn architecture(&self, n_context: usize, n_dims: usize) -> Architecture {
        Architecture {
            n_context,
            secret_context: self.secret_context,
            n_dims,
            hidden_units: self.hidden_units.clone(),
            n_components: self.n_components,
            activation: self.activation,
            order: self.order,
        }
    }
}

/// Per column of the rows `which` (context columns, then data columns): the mean and the
/// population standard deviation, summed in the order of `which`.
fn column_moments(data: &dyn TrainData, which: &[usize]) -> Vec<(f64, f64)> {
    let (c, d) = (data.n_context(), data.n_dims());
    let mut row = vec![0.0f32; c + d];
    let read = |r: usize, row: &mut [f32]| {
        let (context, x) = row.split_at_mut(c);
        data.read_row(r, context, x);
    };
    let n = which.len() as f64;
    let mut sums = vec![0.0f64; c + d];
    for &r in which {
        read(r, &mut row);
        for (sum, &v) in sums.iter_mut().zip(&row) {
            *sum += f64::from(v);
        }
    }
    let means: Vec<f64> = sums.iter().map(|s| s / n).collect();
    let mut squares = vec![0.0f64; c + d];
    for &r in which {
        read(r, &mut row);
        for ((square, &v), mean) in squares.iter_mut().zip(&row).zip(&means) {
            *square += (f64::from(v) - mean).powi(2);
        }
    }
    means.into_iter().zip(squares).map(|(mean, square)| (mean, (square / n).sqrt())).collect()
}

fn shuffled(n: usize, stream: &mut Stream) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    stream.shuffle(&mut order);
    order
}

/// Rows of training data in the user's units, read on demand by the trainer's threads.
/// [`MadeTrainer::new`] keeps a copy of slices in one; `crk train` reads memory-mapped grid
/// shards through one, so that a data set larger than memory trains without a copy.
pub trait TrainData: Send + Sync {
    /// Rows n.
    fn n_rows(&self) -> usize;
    /// Context values per row C (0: no context).
    fn n_context(&self) -> usize;
    /// Data values per row D.
    fn n_dims(&self) -> usize;
    /// Row `row` (< n): its context into `context` [C] and its data into `x` [D].
    fn read_row(&self, row: usize, context: &mut [f32], x: &mut [f32]);
}

/// Rows held in memory ([n][C] and [n][D], row-major).
struct SliceData {
    context: Vec<f32>,
    x: Vec<f32>,
    n_context: usize,
    n_dims: usize,
}

impl TrainData for SliceData {
    fn n_rows(&self) -> usize {
        self.x.len() / self.n_dims
    }
    fn n_context(&self) -> usize {
        self.n_context
    }
    fn n_dims(&self) -> usize {
        self.n_dims
    }
    fn read_row(&self, row: usize, context: &mut [f32], x: &mut [f32]) {
        let (c, d) = (self.n_context, self.n_dims);
        context.copy_from_slice(&self.context[row * c..(row + 1) * c]);
        x.copy_from_slice(&self.x[row * d..(row + 1) * d]);
    }
}

/// Reads rows and standardises them into a kernel record, with a thread's own buffers.
struct RowReader<'a> {
    data: &'a dyn TrainData,
    standardize: &'a Standardize,
    context: Vec<f32>,
    x: Vec<f32>,
}

impl<'a> RowReader<'a> {
    fn new(data: &'a dyn TrainData, standardize: &'a Standardize) -> Self {
        RowReader { data, standardize, context: vec![0.0; data.n_context()], x: vec![0.0; data.n_dims()] }
    }

    /// Row `row`, standardised ((v - mean) / std in f64, rounded to f32), into `record`.
    fn fill(&mut self, model: &TrainModel, row: usize, record: &mut [f32]) {
        self.data.read_row(row, &mut self.context, &mut self.x);
        let s = self.standardize;
        for (v, (mean, std)) in self.context.iter_mut().zip(s.context_mean.iter().zip(&s.context_std)) {
            *v = ((f64::from(*v) - mean) / std) as f32;
        }
        for (v, (mean, std)) in self.x.iter_mut().zip(s.x_mean.iter().zip(&s.x_std)) {
            *v = ((f64::from(*v) - mean) / std) as f32;
        }
        model.fill_input(&self.context, &self.x, record);
    }
}

/// One pass over the rows in order: the first NaN or infinite value is an error; else the
/// FNV-1a hash of the values' bits (row by row, context then data), which a checkpoint
/// records to refuse other data.
fn check_and_fingerprint(data: &dyn TrainData) -> Result<u64> {
    let (c, d) = (data.n_context(), data.n_dims());
    let (mut context, mut x) = (vec![0.0f32; c], vec![0.0f32; d]);
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for row in 0..data.n_rows() {
        data.read_row(row, &mut context, &mut x);
        for (name, values) in [("context", &context), ("x", &x)] {
            if let Some(j) = values.iter().position(|v| !v.is_finite()) {
                return Err(invalid(format!("{name}[{row}][{j}] is {} (NaN or infinite)", values[j])));
            }
            for v in values.iter() {
                for byte in v.to_bits().to_le_bytes() {
                    hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
    }
    Ok(hash)
}

impl MadeTrainer {
    /// A run on `n` rows of context ([n][n_context], empty when n_context = 0) and data
    /// ([n][n_dims]), user units (copied).
    ///
    /// Errors: [`Error::InvalidArgument`] for bad options ([`TrainOptions::validate`],
    /// [`Architecture::validate`]), n = 0, wrong lengths, NaN or infinite values, fewer
    /// training rows than one minibatch, an empty validation split with a nonzero fraction, or
    /// a dimension with zero variance on the training split.
    pub fn new(
        context: &[f32],
        n_context: usize,
        x: &[f32],
        n_dims: usize,
        options: &TrainOptions,
    ) -> Result<Self> {
        options.validate()?;
        options.architecture(n_context, n_dims).validate()?;
        let n = x.len().checked_div(n_dims).unwrap_or(0);
        if n == 0 {
            return Err(invalid("no training data (n = 0)".into()));
        }
        if x.len() != n * n_dims || context.len() != n * n_context {
            return Err(invalid(format!(
                "x holds {} values and context {}: n rows need n x {n_dims} and n x {n_context}",
                x.len(),
                context.len()
            )));
        }
        let data = SliceData { context: context.to_vec(), x: x.to_vec(), n_context, n_dims };
        Self::from_data(Arc::new(data), options)
    }

    /// A run on rows read through [`TrainData`] (not copied: the trainer keeps `data` and
    /// reads each minibatch's rows from it). The same rows give the same model as
    /// [`Self::new`].
    ///
    /// Errors: as [`Self::new`].
    pub fn from_data(data: Arc<dyn TrainData>, options: &TrainOptions) -> Result<Self> {
        options.validate()?;
        let (n, n_context, n_dims) = (data.n_rows(), data.n_context(), data.n_dims());
        let arch = options.architecture(n_context, n_dims);
        arch.validate()?;
        if n == 0 {
            return Err(invalid("no training data (n = 0)".into()));
        }
        let data_fingerprint = check_and_fingerprint(&*data)?;
        let split = shuffled(n, &mut Stream::new(options.seed, STREAM_SPLIT));
        let n_validation = (options.validation_fraction * n as f64).floor() as usize;
        if options.validation_fraction > 0.0 && n_validation == 0 {
            return Err(invalid(format!(
                "a validation fraction of {} of {n} rows leaves no validation row",
                options.validation_fraction
            )));
        }
        let (validation_rows, train_rows) = split.split_at(n_validation);
        if train_rows.len() < options.batch_size {
            return Err(invalid(format!(
                "{} training rows are fewer than one minibatch of {}",
                train_rows.len(),
                options.batch_size
            )));
        }
        let mut standardize = Standardize::default();
        for (j, (mean, std)) in column_moments(&*data, train_rows).into_iter().enumerate() {
            // The stored standardisation is f32 (as the file holds it): standardise with that.
            let (mean, std) = (f64::from(mean as f32), f64::from(std as f32));
            let (name, column) = if j < n_context { ("context", j) } else { ("x", j - n_context) };
            if !(std > 0.0 && std.is_finite()) {
                return Err(invalid(format!(
                    "{name} column {column} has zero variance on the training split: it cannot be standardised"
                )));
            }
            let (means, stds) = if j < n_context {
                (&mut standardize.context_mean, &mut standardize.context_std)
            } else {
                (&mut standardize.x_mean, &mut standardize.x_std)
            };
            means.push(mean);
            stds.push(std);
        }
        let log_std_sum = standardize.x_std.iter().map(|&s| crate::math::ln(s)).sum();
        let model = TrainModel::new(arch, standardize.clone(), options.seed)?;
        let threads = match options.n_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            t => t,
        }
        .clamp(1, crate::parallel::MAX_THREADS);
        Ok(Self {
            options: options.clone(),
            model,
            n_context,
            n_dims,
            data_fingerprint,
            data,
            standardize,
            train_rows: train_rows.to_vec(),
            validation_rows: validation_rows.to_vec(),
            log_std_sum,
            steps: 0,
            epochs_done: 0,
            best: None,
            epochs_since_best: 0,
            last_train_nll: f64::NAN,
            history: Vec::new(),
            threads,
        })
    }

    /// Whether the run has ended (epoch limit, or early stopping).
    pub fn finished(&self) -> bool {
        self.epochs_done >= self.options.max_epochs
            || (self.options.patience > 0
                && !self.validation_rows.is_empty()
                && self.epochs_since_best >= self.options.patience)
    }

    /// Epochs run so far.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// The kernels' model (its architecture, order and multiply-add counts).
    pub fn model(&self) -> &TrainModel {
        &self.model
    }

    /// One epoch: every training row once in minibatches, then the validation NLL, early
    /// stopping's bookkeeping. `progress` is called about every 50 ms with the rows done.
    ///
    /// Errors: [`Error::Cancelled`] when progress returns false: during the epoch (it is not
    /// counted, but its minibatches so far have updated the model: resume from a checkpoint
    /// to repeat the epoch exactly) or at its end (it is counted); [`Error::InvalidArgument`] if a loss becomes NaN or infinite (learning
    /// rate too high; the diverged step updates nothing).
    pub fn run_epoch(
        &mut self,
        mut progress: Option<&mut dyn FnMut(TrainProgress) -> bool>,
    ) -> Result<EpochReport> {
        let started = Instant::now();
        let epoch = self.epochs_done;
        let learning_rate =
            self.options.schedule.rate(self.options.learning_rate, epoch, self.options.max_epochs);
        let order: Vec<usize> = shuffled(
            self.train_rows.len(),
            &mut Stream::new(self.options.seed, STREAM_EPOCHS + epoch as u64),
        )
        .into_iter()
        .map(|i| self.train_rows[i])
        .collect();
        let rows_before = epoch.saturating_mul(self.train_rows.len());
        let rows_total = self.options.max_epochs.saturating_mul(self.train_rows.len());
        let last = self.history.last().copied();
        let mut report = |done: usize, last: Option<EpochReport>| match progress.as_mut() {
            Some(callback) => {
                callback(TrainProgress { rows_done: rows_before + done, rows_total, last_epoch: last })
            }
            None => true,
        };
        let train_sum = self.run_minibatches(&order, learning_rate, &mut |done| report(done, last))?;
        let train_nll = train_sum / order.len() as f64 + self.log_std_sum;
        let validation_nll = if self.validation_rows.is_empty() {
            f64::NAN
        } else {
            let validation_rows = core::mem::take(&mut self.validation_rows);
            let loss = self.mean_loss(&validation_rows);
            self.validation_rows = validation_rows;
            loss + self.log_std_sum
        };
        self.epochs_done += 1;
        self.last_train_nll = train_nll;
        if !self.validation_rows.is_empty() {
            if self.best.as_ref().is_none_or(|&(_, best, _)| validation_nll < best) {
                self.best = Some((self.epochs_done, validation_nll, self.model.params().to_vec()));
                self.epochs_since_best = 0;
            } else {
                self.epochs_since_best += 1;
            }
        }
        let epoch_report = EpochReport {
            epoch: self.epochs_done,
            train_nll,
            validation_nll,
            learning_rate,
            seconds: started.elapsed().as_secs_f64(),
        };
        self.history.push(epoch_report);
        if !report(order.len(), Some(epoch_report)) {
            return Err(Error::Cancelled(format!(
                "training cancelled by the progress callback after epoch {} (the epoch is counted)",
                self.epochs_done
            )));
        }
        Ok(epoch_report)
    }

    /// Runs epochs until [`Self::finished`], then returns the kept model (the best on the
    /// validation split, else the last) and the report.
    ///
    /// Errors: those of [`Self::run_epoch`].
    pub fn train(
        &mut self,
        mut progress: Option<&mut dyn FnMut(TrainProgress) -> bool>,
    ) -> Result<(Made, TrainReport)> {
        while !self.finished() {
            let callback: Option<&mut dyn FnMut(TrainProgress) -> bool> = match progress.as_mut() {
                Some(callback) => Some(&mut **callback),
                None => None,
            };
            self.run_epoch(callback)?;
        }
        Ok((self.best_model()?, self.report()))
    }

    /// The report so far.
    pub fn report(&self) -> TrainReport {
        let (best_epoch, best_validation_nll) = match &self.best {
            Some((epoch, nll, _)) => (*epoch, *nll),
            None => (self.epochs_done, f64::NAN),
        };
        TrainReport {
            epochs_run: self.epochs_done,
            best_epoch,
            best_validation_nll,
            final_train_nll: self.last_train_nll,
            history: self.history.clone(),
        }
    }

    /// The kept model as a [`Made`]: the best on the validation split so far, else the
    /// current one.
    ///
    /// Errors: from [`Made::new`] (none expected).
    pub fn best_model(&self) -> Result<Made> {
        let mut model = self.model.clone();
        if let Some((_, _, params)) = &self.best {
            model.set_params(params)?;
        }
        Made::new(model.to_spec())
    }

    /// The run's settings and data identity as checkpoint metadata: a checkpoint resumes only
    /// a run with the same entries (max_epochs, patience and n_threads may change).
    fn identity(&self) -> Vec<(String, String)> {
        let o = &self.options;
        let hidden: Vec<String> = o.hidden_units.iter().map(|h| h.to_string()).collect();
        vec![
            ("n_context".into(), self.n_context.to_string()),
            ("n_dims".into(), self.n_dims.to_string()),
            ("n_rows".into(), (self.train_rows.len() + self.validation_rows.len()).to_string()),
            ("data_fingerprint".into(), format!("{:016x}", self.data_fingerprint)),
            ("hidden_units".into(), hidden.join(",")),
            ("n_components".into(), o.n_components.to_string()),
            ("activation".into(), o.activation.name().into()),
            ("order".into(), format!("{:?}", o.order)),
            ("secret_context".into(), o.secret_context.to_string()),
            ("batch_size".into(), o.batch_size.to_string()),
            ("learning_rate".into(), format!("{:?}", o.learning_rate)),
            ("schedule".into(), format!("{:?}", o.schedule)),
            ("adam".into(), format!("{:?}", o.adam)),
            ("validation_fraction".into(), format!("{:?}", o.validation_fraction)),
            ("seed".into(), o.seed.to_string()),
        ]
    }

    /// The run's whole state as a safetensors buffer (format `crkernels.made_checkpoint.v1`):
    /// parameters, Adam's moments and step count, the epoch, the best model and early
    /// stopping's count, the history, and the settings and data fingerprint it belongs to.
    /// [`Self::resume`] continues from it exactly as if the run had not stopped (the
    /// minibatch order of each epoch is a function of the seed and the epoch).
    ///
    /// Errors: none expected ([`crate::nn::save::f32_tensors_to_safetensors`]'s).
    pub fn checkpoint(&self) -> Result<Vec<u8>> {
        let (params, m, v) = self.model.state();
        let mut tensors: Vec<(&str, &[usize], &[f32])> = Vec::new();
        let shape = [params.len()];
        tensors.push(("params", &shape, params));
        tensors.push(("adam.m", &shape, m));
        tensors.push(("adam.v", &shape, v));
        if let Some((_, _, best)) = &self.best {
            tensors.push(("best.params", &shape, best));
        }
        let history: Vec<String> = self
            .history
            .iter()
            .map(|e| {
                format!(
                    "{} {:?} {:?} {:?} {:?}",
                    e.epoch, e.train_nll, e.validation_nll, e.learning_rate, e.seconds
                )
            })
            .collect();
        let mut metadata = self.identity();
        metadata.extend([
            ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
            ("steps".into(), self.steps.to_string()),
            ("epochs_done".into(), self.epochs_done.to_string()),
            ("epochs_since_best".into(), self.epochs_since_best.to_string()),
            ("best_epoch".into(), self.best.as_ref().map_or(0, |b| b.0).to_string()),
            ("best_validation_nll".into(), format!("{:?}", self.best.as_ref().map_or(f64::NAN, |b| b.1))),
            ("last_train_nll".into(), format!("{:?}", self.last_train_nll)),
            ("history".into(), history.join(";")),
        ]);
        crate::nn::save::f32_tensors_to_safetensors(&tensors, &metadata)
    }

    /// Continues a run from [`Self::checkpoint`]'s bytes: `self` must be a fresh trainer made
    /// with the same data and settings (max_epochs, patience and n_threads may differ).
    ///
    /// Errors: [`Error::Format`] for a buffer that is not such a checkpoint;
    /// [`Error::InvalidArgument`] for a checkpoint of another model, other settings or other
    /// data (the message names the first difference). Nothing changes on error.
    pub fn resume(&mut self, checkpoint: &[u8]) -> Result<()> {
        let (tensors, metadata) = crate::nn::save::f32_tensors_from_safetensors(checkpoint)?;
        let get = |key: &str| metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        if get("format") != Some(CHECKPOINT_FORMAT) {
            return Err(Error::Format(format!(
                "not a trainer checkpoint (format is not {CHECKPOINT_FORMAT})"
            )));
        }
        for (key, value) in self.identity() {
            match get(&key) {
                Some(stored) if stored == value => {}
                stored => {
                    return Err(invalid(format!(
                        "the checkpoint belongs to another run: its {key} is {}, this run's {value}",
                        stored.unwrap_or("missing")
                    )));
                }
            }
        }
        let corrupt = |what: &str| Error::Format(format!("corrupt checkpoint: {what}"));
        let number =
            |key: &str| -> Result<u64> { get(key).and_then(|v| v.parse().ok()).ok_or_else(|| corrupt(key)) };
        let float =
            |key: &str| -> Result<f64> { get(key).and_then(|v| v.parse().ok()).ok_or_else(|| corrupt(key)) };
        let tensor = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice());
        let (Some(params), Some(m), Some(v)) = (tensor("params"), tensor("adam.m"), tensor("adam.v")) else {
            return Err(corrupt("missing params, adam.m or adam.v"));
        };
        let mut history = Vec::new();
        for entry in get("history").unwrap_or("").split(';').filter(|e| !e.is_empty()) {
            let fields: Vec<&str> = entry.split(' ').collect();
            let parse = |i: usize| {
                fields.get(i).and_then(|f| f.parse::<f64>().ok()).ok_or_else(|| corrupt("history"))
            };
            history.push(EpochReport {
                epoch: fields.first().and_then(|f| f.parse().ok()).ok_or_else(|| corrupt("history"))?,
                train_nll: parse(1)?,
                validation_nll: parse(2)?,
                learning_rate: parse(3)?,
                seconds: parse(4)?,
            });
        }
        let epochs_done = number("epochs_done")? as usize;
        let best_epoch = number("best_epoch")? as usize;
        let best = match tensor("best.params") {
            Some(best) if best.len() == params.len() && best_epoch >= 1 && best_epoch <= epochs_done => {
                Some((best_epoch, float("best_validation_nll")?, best.to_vec()))
            }
            Some(_) => return Err(corrupt("best.params")),
            None => None,
        };
        let (steps, epochs_since_best) = (number("steps")?, number("epochs_since_best")? as usize);
        let last_train_nll = float("last_train_nll")?;
        let mut model = self.model.clone();
        model.set_state(params, m, v)?;
        self.model = model;
        self.steps = steps;
        self.epochs_done = epochs_done;
        self.epochs_since_best = epochs_since_best;
        self.best = best;
        self.last_train_nll = last_train_nll;
        self.history = history;
        Ok(())
    }

    /// Mean loss per row (standardised units) of some rows, threads splitting blocks.
    fn mean_loss(&mut self, which: &[usize]) -> f64 {
        let stride = self.model.row_stride();
        let block = VALIDATION_BLOCK.min(which.len());
        let threads = self.threads.min(block).max(1);
        let mut records = vec![0.0f32; block * stride];
        let mut losses = vec![0.0f64; block];
        let mut scratches: Vec<TrainScratch> = (0..threads).map(|_| self.model.scratch(block)).collect();
        let mut total = 0.0;
        for rows in which.chunks(block) {
            let n = rows.len();
            let model = &self.model;
            let (data, standardize) = (&*self.data, &self.standardize);
            std::thread::scope(|scope| {
                let record_parts = split_rows(&mut records[..n * stride], &mut losses[..n], stride, threads);
                for ((records, losses, first), scratch) in record_parts.into_iter().zip(scratches.iter_mut())
                {
                    scope.spawn(move || {
                        let mut reader = RowReader::new(data, standardize);
                        for (i, record) in records.chunks_exact_mut(stride).enumerate() {
                            reader.fill(model, rows[first + i], record);
                        }
                        model.forward_backward_rows(records, losses, None, scratch);
                    });
                }
            });
            total += losses[..n].iter().sum::<f64>();
        }
        total / which.len() as f64
    }

    /// One epoch's minibatches in `order`; returns the sum of the rows' losses.
    fn run_minibatches(
        &mut self,
        order: &[usize],
        learning_rate: f64,
        report: &mut dyn FnMut(usize) -> bool,
    ) -> Result<f64> {
        let batch = self.options.batch_size;
        let stride = self.model.row_stride();
        let threads = self.threads.min(batch).max(1);
        let assignment = assign_panels(&self.model, threads);
        let mut records = vec![0.0f32; batch * stride];
        let mut losses = vec![0.0f64; batch];
        let records_ptr = SyncPtr(records.as_mut_ptr());
        let losses_ptr = SyncPtr(losses.as_mut_ptr());
        let n_steps = order.len().div_ceil(batch);
        let barrier = SpinBarrier::new(threads);
        let stop = AtomicUsize::new(0); // 0 go on, 1 diverged, 2 cancelled
        let diverged = AtomicBool::new(false);
        let first_step = self.steps;
        let (data, standardize) = (&*self.data, &self.standardize);
        let adam = self.options.adam;
        let scratches: Vec<TrainScratch> = (0..threads).map(|_| self.model.scratch(batch)).collect();
        let shared = SharedModel::new(&mut self.model);
        let mut main_state =
            MainThread { epoch_loss: 0.0, steps_done: 0, report, last_report: Instant::now() };
        let worker = |id: usize, mut scratch: TrainScratch, mut main: Option<&mut MainThread<'_>>| {
            let mut reader = RowReader::new(data, standardize);
            for s in 0..n_steps {
                let rows = &order[s * batch..((s + 1) * batch).min(order.len())];
                let n = rows.len();
                let (start, end) = (id * n / threads, (id + 1) * n / threads);
                {
                    // SAFETY: phase 1: this thread alone writes records and losses
                    // start..end; no update runs (the barrier below separates them).
                    let (my_records, my_losses) = unsafe {
                        (
                            std::slice::from_raw_parts_mut(
                                records_ptr.get().add(start * stride),
                                (end - start) * stride,
                            ),
                            std::slice::from_raw_parts_mut(losses_ptr.get().add(start), end - start),
                        )
                    };
                    // SAFETY: no update_panels runs during phase 1.
                    let model = unsafe { shared.model() };
                    for (record, &r) in my_records.chunks_exact_mut(stride).zip(&rows[start..end]) {
                        reader.fill(model, r, record);
                    }
                    if !model.forward_backward_rows(my_records, my_losses, Some(1.0 / n as f32), &mut scratch)
                    {
                        diverged.store(true, Ordering::Relaxed);
                    }
                }
                barrier.wait();
                if let Some(main) = main.as_deref_mut() {
                    // SAFETY: phase 2 writes no record or loss; every thread has finished
                    // writing them (barrier).
                    let all = unsafe { std::slice::from_raw_parts(losses_ptr.get(), n) };
                    main.epoch_loss += all.iter().sum::<f64>();
                    main.steps_done = s + 1;
                    if diverged.load(Ordering::Relaxed) {
                        stop.store(1, Ordering::Relaxed);
                    } else if main.last_report.elapsed() >= Duration::from_millis(50) {
                        main.last_report = Instant::now();
                        if !(main.report)(((s + 1) * batch).min(order.len())) {
                            stop.store(2, Ordering::Relaxed);
                        }
                    }
                }
                if diverged.load(Ordering::Relaxed) {
                    break;
                }
                let step = adam.step_constants(learning_rate, first_step + s as u64 + 1);
                // SAFETY: phase 2: records are only read; each thread updates its own panels.
                let all_records = unsafe { std::slice::from_raw_parts(records_ptr.get(), n * stride) };
                for &range in &assignment[id] {
                    // SAFETY: no reference from shared.model() is alive (phase 1 ended at
                    // the barrier) and the assignment's panels are disjoint.
                    unsafe { shared.update_panels(range, all_records, &step, &mut scratch) };
                }
                barrier.wait();
                if stop.load(Ordering::Relaxed) != 0 {
                    break;
                }
            }
        };
        std::thread::scope(|scope| {
            let mut scratches = scratches.into_iter();
            let main_scratch = scratches.next().expect("at least one thread");
            for (id, scratch) in scratches.enumerate() {
                let worker = &worker;
                scope.spawn(move || worker(id + 1, scratch, None));
            }
            worker(0, main_scratch, Some(&mut main_state));
        });
        drop(shared);
        let MainThread { epoch_loss, steps_done, .. } = main_state;
        // The steps whose updates ran (a diverged step updated nothing).
        let diverged_now = diverged.load(Ordering::Relaxed);
        self.steps += (steps_done - usize::from(diverged_now)) as u64;
        match stop.load(Ordering::Relaxed) {
            1 => Err(invalid(format!(
                "training diverged: a loss became NaN or infinite at epoch {} step {steps_done} (lower the learning rate)",
                self.epochs_done + 1
            ))),
            2 => Err(Error::Cancelled("training cancelled by the progress callback".into())),
            _ => Ok(epoch_loss),
        }
    }
}

/// Splits records [n][stride] and losses [n] into `threads` contiguous parts (with the first
/// row of each).
fn split_rows<'a>(
    mut records: &'a mut [f32],
    mut losses: &'a mut [f64],
    stride: usize,
    threads: usize,
) -> Vec<(&'a mut [f32], &'a mut [f64], usize)> {
    let n = losses.len();
    let mut parts = Vec::with_capacity(threads);
    for id in 0..threads {
        let (start, end) = (id * n / threads, (id + 1) * n / threads);
        let (r, rest_r) = records.split_at_mut((end - start) * stride);
        let (l, rest_l) = losses.split_at_mut(end - start);
        parts.push((r, l, start));
        records = rest_r;
        losses = rest_l;
    }
    parts
}

/// Splits the output panels of all layers into `threads` contiguous groups of about equal
/// cost (multiply-adds), as lists of per-layer panel ranges.
fn assign_panels(model: &TrainModel, threads: usize) -> Vec<Vec<PanelRange>> {
    let panels = model.panels();
    let total: usize = panels.iter().map(|p| p.2).sum();
    let mut groups = vec![Vec::<PanelRange>::new(); threads];
    let mut cumulative = 0usize;
    for &(layer, panel, cost) in &panels {
        // The group whose share of the total cost this panel's midpoint falls in.
        let middle = cumulative + cost / 2;
        let group = (middle * threads / total.max(1)).min(threads - 1);
        cumulative += cost;
        match groups[group].last_mut() {
            Some(range) if range.layer == layer && range.panels.1 == panel => range.panels.1 += 1,
            _ => groups[group].push(PanelRange { layer, panels: (panel, panel + 1) }),
        }
    }
    groups
}

/// What only the calling thread does in a step: sum the losses, report progress.
struct MainThread<'a> {
    epoch_loss: f64,
    steps_done: usize,
    report: &'a mut dyn FnMut(usize) -> bool,
    last_report: Instant,
}

/// A raw pointer the phase discipline makes safe to share (see `run_minibatches`).
#[derive(Clone, Copy)]
struct SyncPtr<T>(*mut T);

impl<T> SyncPtr<T> {
    fn get(self) -> *mut T {
        self.0
    }
}
// SAFETY: the threads write through it only to disjoint rows, phases separated by a barrier.
unsafe impl<T> Send for SyncPtr<T> {}
// SAFETY: as for Send.
unsafe impl<T> Sync for SyncPtr<T> {}

/// A barrier that spins (a step takes tens of microseconds: a futex sleep and wake-up would
/// cost a sizeable part of it), yielding after a while so that an oversubscribed machine still
/// makes progress.
struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    fn new(threads: usize) -> Self {
        Self { threads, arrived: AtomicUsize::new(0), generation: AtomicUsize::new(0) }
    }

    fn wait(&self) {
        if self.threads == 1 {
            return;
        }
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if spins < 20_000 {
                spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }
}
