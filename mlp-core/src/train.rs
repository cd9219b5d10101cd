//! Minibatch SGD with learning-rate decay, exactly as the problem set's
//! `TwoLayerMLP.train`.

use ndarray::{Array2, ArrayView1, ArrayView2, AsArray, Ix1, Ix2};

use crate::check::{check_non_negative, check_nonzero, check_positive, check_xy};
#[cfg(feature = "solutions")]
use crate::engine::{self, Input, OffsetSparse, Workspace, fast_fma, sgd_step};
use crate::error::{MlpError, Result};
use crate::model::{Params, TwoLayerMLP};
use crate::penalty::{Penalty, Reg};
use crate::report::{EpochSummary, InputKernel, PrintEpochs, Reporter, Silent, Stats};
use crate::rng::NumpyRng;

/// Above this fraction of stored entries, [`InputKernel::Auto`] keeps the dense
/// products. On MNIST (0.19 stored) a sparse step took 300 us against 390 us dense, and
/// about 240 us of it grows with the entries, so the two meet near 0.25 (docs/performance.md).
const SPARSE_MAX_DENSITY: f64 = 0.25;

/// Shorter runs than this keep the dense products under [`InputKernel::Auto`]: on MNIST
/// one epoch took 0.245 s sparse (about 0.09 s of it building the sparse forms) against
/// 0.25 s dense, two 0.354 s against 0.45 s.
const AUTO_MIN_EPOCHS: usize = 2;

impl InputKernel {
    /// The sparse form of `x`, if this choice takes it for `x`.
    #[cfg(feature = "solutions")]
    fn sparse_form(self, x: ArrayView2<f64>) -> Option<OffsetSparse> {
        if self == InputKernel::Dense {
            return None;
        }
        let (offset, density) = OffsetSparse::survey(x);
        if self == InputKernel::Auto && (density > SPARSE_MAX_DENSITY || !fast_fma()) {
            return None;
        }
        Some(OffsetSparse::new(x, offset, density))
    }
}

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
            Trainer::new(self, x, y, config).run(rng, x_val, y_val, reporter)
        })
    }
}

/// The training loop's state: buffers allocated once and reused every minibatch.
#[cfg(feature = "solutions")]
struct Trainer<'n, 'x> {
    net: &'n mut TwoLayerMLP,
    x: ArrayView2<'x, f64>,
    y: ArrayView1<'x, usize>,
    config: &'n TrainConfig,
    batch: usize,
    x_batch: Array2<f64>,
    y_batch: Vec<usize>,
    /// The training set's sparse form, when the config's kernel takes it.
    sparse: Option<OffsetSparse>,
    ws: Workspace,
    grads: Params,
}

#[cfg(feature = "solutions")]
impl<'n, 'x> Trainer<'n, 'x> {
    fn new(
        net: &'n mut TwoLayerMLP,
        x: ArrayView2<'x, f64>,
        y: ArrayView1<'x, usize>,
        config: &'n TrainConfig,
    ) -> Self {
        let batch = config.batch_size.min(x.nrows());
        let (d, h, c) = (net.input_size(), net.hidden_size(), net.output_size());
        Trainer {
            net,
            x,
            y,
            config,
            batch,
            x_batch: Array2::zeros((batch, d)),
            y_batch: vec![0; batch],
            sparse: None,
            ws: Workspace::new(batch, h, c),
            grads: Params::zeros(d, h, c),
        }
    }

    fn run(
        mut self,
        rng: &mut NumpyRng,
        x_val: ArrayView2<f64>,
        y_val: ArrayView1<usize>,
        reporter: &mut dyn Reporter,
    ) -> Result<Stats> {
        let num_train = self.x.nrows();
        let iterations_per_epoch = (num_train / self.config.batch_size).max(1);
        let mut stats = Stats::default();
        let mut learning_rate = self.config.learning_rate;
        // the sparse forms are built here, where both threads can work on them
        let kernel = match self.config.kernel {
            InputKernel::Auto if self.config.num_epochs < AUTO_MIN_EPOCHS => InputKernel::Dense,
            kernel => kernel,
        };
        self.sparse = kernel.sparse_form(self.x);
        stats.kernel = match self.sparse {
            Some(_) => InputKernel::Sparse,
            None => InputKernel::Dense,
        };
        let val_sparse = kernel.sparse_form(x_val);
        let val_rows: Vec<usize> = match val_sparse {
            Some(_) => (0..x_val.nrows()).collect(),
            None => Vec::new(),
        };
        // W1's rows start cache lines (the same values; see aligned_zeros). Where an
        // allocation lands otherwise changes from build to build: 16 against 19
        // cycles per entry of the sparse gather.
        engine::make_aligned(&mut self.net.params.w1);
        rng.seed(self.config.seed);
        for epoch in 1..=self.config.num_epochs {
            let perm = rng.permutation(num_train);
            let mut loss = f64::NAN;
            for it in 0..iterations_per_epoch {
                let grad_norm;
                (loss, grad_norm) = self.step(&perm[it * self.batch..], learning_rate);
                if !loss.is_finite() {
                    self.ws.sync_w1(&mut self.net.params.w1);
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
            // the sparse steps keep W1 in the workspace: the network's own copy now
            self.ws.sync_w1(&mut self.net.params.w1);
            let y_batch = ArrayView1::from(&self.y_batch);
            let (params, act) = (&self.net.params, self.net.activation);
            let train_acc = match &self.sparse {
                Some(s) => {
                    let last = (iterations_per_epoch - 1) * self.batch;
                    let idx = &perm[last..last + self.batch];
                    engine::accuracy_sparse(params, act, s, idx, y_batch)
                }
                None => engine::accuracy(params, act, self.x_batch.view(), y_batch),
            };
            let val_acc = match &val_sparse {
                Some(s) => engine::accuracy_sparse(params, act, s, &val_rows, y_val),
                None => engine::accuracy(params, act, x_val, y_val),
            };
            stats.train_acc_history.push(train_acc);
            stats.val_acc_history.push(val_acc);
            reporter.epoch(&EpochSummary {
                epoch,
                num_epochs: self.config.num_epochs,
                loss,
                train_acc,
                val_acc,
                learning_rate,
            });
            learning_rate *= self.config.learning_rate_decay;
        }
        Ok(stats)
    }

    /// Loss and gradients on the minibatch of the first `batch` rows of `rows`
    /// (gathered into the reused buffers), then the SGD step `param -= lr * grad`.
    /// Returns the loss and |dW1|. The next minibatch's rows follow in `rows`, if this
    /// is not the epoch's last.
    fn step(&mut self, rows: &[usize], learning_rate: f64) -> (f64, f64) {
        let (idx, rest) = rows.split_at(self.batch.min(rows.len()));
        let next = rest.get(..self.batch).unwrap_or_default();
        for (yb, &i) in self.y_batch.iter_mut().zip(idx) {
            *yb = self.y[i];
        }
        let input = match &self.sparse {
            Some(s) => Input::Sparse { s, idx, next },
            None => Input::Gather { src: self.x, idx, buf: &mut self.x_batch },
        };
        sgd_step(
            &mut self.net.params,
            self.net.activation,
            input,
            &self.y_batch,
            Reg { penalty: self.config.penalty, strength: self.config.reg },
            learning_rate,
            &mut self.ws,
            &mut self.grads,
        )
    }
}
