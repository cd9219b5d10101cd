//! Minibatch SGD with learning-rate decay, exactly as the problem set's
//! `TwoLayerMLP.train`: the settings ([`TrainConfig`]), the loop ([`sgd`], written once
//! for the library's `TwoLayerMLP::train` and a student's
//! [`crate::Implementation::train`]), and which [`Reporter`] a run reports to.
//!
//! The loop asks a [`Learner`] for each minibatch's step and each epoch's accuracies:
//! the engine's trainer (`engine/trainer.rs`, the `solutions` feature) or the student's
//! functions (`student.rs`).

#[cfg(feature = "solutions")]
use ndarray::{AsArray, Ix1, Ix2};

use crate::check::{check_non_negative, check_nonzero, check_positive, check_xy};
#[cfg(feature = "solutions")]
use crate::engine::{self, Trainer};
use crate::error::{MlpError, Result};
use crate::model::TwoLayerMLP;
use crate::penalty::{Penalty, Reg};
use crate::report::{EpochSummary, InputKernel, PrintEpochs, Reporter, Silent, Stats};
use crate::rng::NumpyRng;

/// Training settings. `Default` gives the problem set's defaults:
/// `learning_rate=1e-3, learning_rate_decay=0.95, reg=1e-5, num_epochs=10,
/// batch_size=200, verbose=False`.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// SGD step size for the first epoch.
    pub learning_rate: f64,
    /// Multiplies the learning rate after every epoch.
    pub learning_rate_decay: f64,
    /// The penalty's strength: the loss adds `0.5 * reg * (|W1|^2 + |W2|^2)` for L2,
    /// `reg * (sum |W1| + sum |W2|)` for L1.
    pub reg: f64,
    /// Which penalty `reg` weighs: [`Penalty::L2`] (the problem set's) or L1.
    pub penalty: Penalty,
    /// Passes over the training set.
    pub num_epochs: usize,
    /// Examples per minibatch (all of them if the set is smaller).
    pub batch_size: usize,
    /// Print `Epoch %d: loss %f, train_acc %f, val_acc %f` after each epoch.
    pub verbose: bool,
    /// The seed the generator is reset to when training starts (the problem set
    /// calls `np.random.seed(1)`).
    pub seed: u32,
    /// How the first layer's products are computed (the numbers agree up to rounding).
    pub kernel: InputKernel,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            learning_rate: 1e-3,
            learning_rate_decay: 0.95,
            reg: 1e-5,
            penalty: Penalty::L2,
            num_epochs: 10,
            batch_size: 200,
            verbose: false,
            seed: 1,
            kernel: InputKernel::Auto,
        }
    }
}

impl TrainConfig {
    /// Reject settings that cannot train: zero epochs or batch size, non-positive or
    /// non-finite learning rate or decay, negative or non-finite reg.
    pub fn validate(&self) -> Result<()> {
        check_positive("learning_rate", self.learning_rate)?;
        check_positive("learning_rate_decay", self.learning_rate_decay)?;
        check_non_negative("reg", self.reg)?;
        check_nonzero("num_epochs", self.num_epochs)?;
        check_nonzero("batch_size", self.batch_size)?;
        Ok(())
    }

    /// Rows in a minibatch of a training set of `num_train` rows.
    pub(crate) fn batch_rows(&self, num_train: usize) -> usize {
        self.batch_size.min(num_train)
    }

    /// The penalty and its strength.
    pub(crate) fn reg(&self) -> Reg {
        Reg { penalty: self.penalty, strength: self.reg }
    }
}

/// The reporter a `train` call uses: nothing; with `config.verbose` the problem set's
/// epoch lines; and in a notebook's kernel those lines under a live figure of the
/// training so far ([`crate::live`]).
pub(crate) fn reporter_for(config: &TrainConfig) -> Box<dyn Reporter> {
    if !config.verbose {
        Box::new(Silent)
    } else if crate::live::enabled() {
        Box::new(crate::live::LiveTraining::new(config.num_epochs))
    } else {
        Box::new(PrintEpochs)
    }
}

/// What the training loop asks of whoever computes the steps: the engine's trainer
/// (`TwoLayerMLP::train`) or a student's functions ([`crate::Implementation::train`]).
pub(crate) trait Learner {
    /// The SGD step on the minibatch of the first `batch` rows of `rows` (the rest of the
    /// epoch's permutation follows them): the minibatch's loss before the step and
    /// `|dW1|`. A loss that is not finite need not step.
    fn step(&mut self, rows: &[usize], learning_rate: f64) -> Result<(f64, f64)>;
    /// After an epoch's steps: the accuracy on its last minibatch (rows `last`) and on
    /// the validation set.
    fn accuracies(&mut self, last: &[usize]) -> Result<(f64, f64)>;
    /// Training stops at the step whose loss was not finite: leave the network as it is.
    fn diverged(&mut self) {}
}

/// The problem set's training loop over a training set of `num_train` rows: the
/// generator re-seeded with `config.seed`, one permutation per epoch, `max(1, N /
/// batch_size)` steps an epoch, the loss and `|dW1|` of every step, the accuracies after
/// each epoch, the learning rate multiplied by `config.learning_rate_decay` after it. A
/// loss that turns NaN or infinite is [`MlpError::Diverged`].
pub(crate) fn sgd(
    learner: &mut impl Learner,
    rng: &mut NumpyRng,
    num_train: usize,
    config: &TrainConfig,
    reporter: &mut dyn Reporter,
) -> Result<Stats> {
    let batch = config.batch_rows(num_train);
    let iterations_per_epoch = (num_train / config.batch_size).max(1);
    let mut stats = Stats::default();
    let mut learning_rate = config.learning_rate;
    rng.seed(config.seed);
    for epoch in 1..=config.num_epochs {
        let perm = rng.permutation(num_train);
        let mut loss = f64::NAN;
        for it in 0..iterations_per_epoch {
            let grad_norm;
            (loss, grad_norm) = learner.step(&perm[it * batch..], learning_rate)?;
            if !loss.is_finite() {
                learner.diverged();
                return Err(MlpError::Diverged {
                    epoch,
                    iteration: it + 1,
                    loss,
                    learning_rate,
                    suggested: learning_rate / 10.0,
                });
            }
            stats.loss_history.push(loss);
            stats.grad_magnitude_history.push(grad_norm);
            reporter.iteration(epoch, it, iterations_per_epoch, loss);
        }
        // (the last minibatch's accuracy, as the problem set's train reports it)
        let last = (iterations_per_epoch - 1) * batch;
        let (train_acc, val_acc) = learner.accuracies(&perm[last..last + batch])?;
        stats.train_acc_history.push(train_acc);
        stats.val_acc_history.push(val_acc);
        let num_epochs = config.num_epochs;
        reporter.epoch(&EpochSummary {
            epoch,
            num_epochs,
            loss,
            train_acc,
            val_acc,
            learning_rate,
        });
        learning_rate *= config.learning_rate_decay;
    }
    Ok(stats)
}

#[cfg(feature = "solutions")]
impl TwoLayerMLP {
    /// Train with minibatch SGD, as the problem set's `train(X, y, X_val, y_val, ...)`:
    /// `X` `(N, D)`, `y` `(N,)`, `X_val` `(M, D)`, `y_val` `(M,)`.
    ///
    /// `rng` is re-seeded with `config.seed` (1) first, then draws one permutation
    /// per epoch; it is left where training ends, so a network created afterwards
    /// draws its weights from there, as in the problem set's notebook.
    /// With `config.verbose`, prints one line per epoch (in a notebook, under a figure
    /// of the training so far, redrawn as it goes: [`crate::live`]).
    ///
    /// A loss that turns NaN or infinite stops training with
    /// [`MlpError::Diverged`]; the parameters are left as they were at that point.
    pub fn train<'a, 'b, 'c, 'd>(
        &mut self,
        rng: &mut NumpyRng,
        x: impl AsArray<'a, f64, Ix2>,
        y: impl AsArray<'b, usize, Ix1>,
        x_val: impl AsArray<'c, f64, Ix2>,
        y_val: impl AsArray<'d, usize, Ix1>,
        config: &TrainConfig,
    ) -> Result<Stats> {
        self.train_with(rng, x, y, x_val, y_val, config, &mut *reporter_for(config))
    }

    /// [`TwoLayerMLP::train`] with progress going to `reporter` (`config.verbose`
    /// is ignored here: the reporter decides what to show).
    #[allow(clippy::too_many_arguments)]
    pub fn train_with<'a, 'b, 'c, 'd>(
        &mut self,
        rng: &mut NumpyRng,
        x: impl AsArray<'a, f64, Ix2>,
        y: impl AsArray<'b, usize, Ix1>,
        x_val: impl AsArray<'c, f64, Ix2>,
        y_val: impl AsArray<'d, usize, Ix1>,
        config: &TrainConfig,
        reporter: &mut dyn Reporter,
    ) -> Result<Stats> {
        let (x, y, x_val, y_val) = (x.into(), y.into(), x_val.into(), y_val.into());
        config.validate()?;
        // A spinning helper thread takes the second half of each split (see engine/par.rs),
        // the checks of the data's values included.
        engine::par::with_helper(|| {
            let (d, c) = (self.input_size(), self.output_size());
            check_xy("train (training set)", x, y, d, c)?;
            check_xy("train (validation set)", x_val, y_val, d, c)?;
            let (batch, reg) = (config.batch_rows(x.nrows()), config.reg());
            let (kernel, epochs) = (config.kernel, config.num_epochs);
            let mut trainer =
                Trainer::new(self, (x, y), (x_val, y_val), batch, reg, kernel, epochs);
            let kernel = trainer.kernel();
            Ok(Stats { kernel, ..sgd(&mut trainer, rng, x.nrows(), config, reporter)? })
        })
    }
}

/// The engine's trainer as the loop's [`Learner`].
#[cfg(feature = "solutions")]
impl Learner for Trainer<'_, '_> {
    fn step(&mut self, rows: &[usize], learning_rate: f64) -> Result<(f64, f64)> {
        Ok(Trainer::step(self, rows, learning_rate))
    }

    fn accuracies(&mut self, last: &[usize]) -> Result<(f64, f64)> {
        Ok(Trainer::accuracies(self, last))
    }

    fn diverged(&mut self) {
        self.sync_w1();
    }
}
