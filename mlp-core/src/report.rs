//! What a training run reports, and to whom: the data ([`Stats`], the problem set's
//! returned dict; [`EpochSummary`], one epoch's line) and the [`Reporter`] trait that
//! receives it while training runs, with the plain reporters ([`Silent`],
//! [`PrintEpochs`]).
//!
//! This module imports nothing else of the crate: the training loop calls a
//! [`Reporter`], and the reporters (these, `live.rs`'s figure, the `mlp` command's
//! progress bar) never import the loop.

/// How training computes the first layer's products `X W1` and `X^T dZ1`.
///
/// Both give the same numbers up to rounding; they differ in speed. An input that is
/// mostly one value per column (MNIST images, mean-subtracted or not: the background)
/// is stored as those values plus the entries that differ, and the products read only
/// those (about a fifth of MNIST's pixels). `TrainConfig::kernel` asks for one;
/// [`Stats::kernel`] says which one training used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum InputKernel {
    /// Sparse when at most a quarter of the entries differ from their column's most
    /// common value, the CPU has fused multiply-add, and the run is long enough (2
    /// epochs) to repay building the sparse form (about a third of an MNIST epoch);
    /// dense otherwise.
    #[default]
    Auto,
    /// Always the dense matrix products.
    Dense,
    /// Always the sparse form (slow on dense inputs: for testing and comparison).
    Sparse,
}

impl InputKernel {
    /// `"auto"`, `"dense"` or `"sparse"`.
    pub fn name(self) -> &'static str {
        match self {
            InputKernel::Auto => "auto",
            InputKernel::Dense => "dense",
            InputKernel::Sparse => "sparse",
        }
    }
}

/// What training records, as the problem set's returned dict.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// The minibatch loss of every iteration.
    pub loss_history: Vec<f64>,
    /// The Frobenius norm of `dW1` of every iteration.
    pub grad_magnitude_history: Vec<f64>,
    /// Accuracy on the last minibatch of every epoch.
    pub train_acc_history: Vec<f64>,
    /// Accuracy on the whole validation set after every epoch.
    pub val_acc_history: Vec<f64>,
    /// The kernel training used for the training set: [`InputKernel::Dense`] or
    /// [`InputKernel::Sparse`] ([`InputKernel::Auto`] before any training).
    pub kernel: InputKernel,
}

impl Stats {
    /// The last minibatch loss, `stats['loss_history'][-1]` (NaN before any training).
    pub fn final_loss(&self) -> f64 {
        self.loss_history.last().copied().unwrap_or(f64::NAN)
    }
}

/// One epoch's summary, handed to a [`Reporter`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochSummary {
    /// 1-based.
    pub epoch: usize,
    pub num_epochs: usize,
    /// The last minibatch loss of the epoch.
    pub loss: f64,
    pub train_acc: f64,
    pub val_acc: f64,
    /// The learning rate this epoch used.
    pub learning_rate: f64,
}

impl EpochSummary {
    /// The problem set's line: `Epoch %d: loss %f, train_acc %f, val_acc %f`.
    pub fn line(&self) -> String {
        format!(
            "Epoch {}: loss {:.6}, train_acc {:.6}, val_acc {:.6}",
            self.epoch, self.loss, self.train_acc, self.val_acc
        )
    }
}

/// Receives progress while training runs. Both methods do nothing by default.
pub trait Reporter {
    /// After each SGD step: 1-based epoch, 0-based iteration in the epoch, iterations
    /// per epoch, and the minibatch loss.
    fn iteration(
        &mut self,
        _epoch: usize,
        _iteration: usize,
        _iterations_per_epoch: usize,
        _loss: f64,
    ) {
    }
    /// After each epoch.
    fn epoch(&mut self, _summary: &EpochSummary) {}
}

/// Reports nothing.
pub struct Silent;
impl Reporter for Silent {}

/// Prints the problem set's epoch line to standard output.
pub struct PrintEpochs;
impl Reporter for PrintEpochs {
    fn epoch(&mut self, summary: &EpochSummary) {
        println!("{}", summary.line());
    }
}
