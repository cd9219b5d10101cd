//! The engine's side of a training run: the training set's form (dense, or the sparse
//! form [`InputKernel`] chooses), the buffers every minibatch reuses, and the step and
//! the accuracies that the problem set's loop (`train.rs`) asks for.

use ndarray::{Array2, ArrayView1, ArrayView2};

use super::{
    Input, OffsetSparse, Workspace, accuracy, accuracy_sparse, fast_fma, make_aligned, sgd_step,
};
use crate::model::{Params, TwoLayerMLP};
use crate::penalty::Reg;
use crate::report::InputKernel;

/// Above this fraction of stored entries, [`InputKernel::Auto`] keeps the dense
/// products. On MNIST (0.19 stored) a sparse step took 300 us against 390 us dense, and
/// about 240 us of it grows with the entries, so the two meet near 0.25 (docs/performance.md).
const SPARSE_MAX_DENSITY: f64 = 0.25;

/// Shorter runs than this keep the dense products under [`InputKernel::Auto`]: on MNIST
/// one epoch took 0.245 s sparse (about 0.09 s of it building the sparse forms) against
/// 0.25 s dense, two 0.354 s against 0.45 s.
const AUTO_MIN_EPOCHS: usize = 2;

impl InputKernel {
    /// The sparse form of `x`, if this choice takes it for `x` in a run of `num_epochs`.
    fn sparse_form(self, x: ArrayView2<f64>, num_epochs: usize) -> Option<OffsetSparse> {
        let auto = self == InputKernel::Auto;
        if self == InputKernel::Dense || (auto && num_epochs < AUTO_MIN_EPOCHS) {
            return None;
        }
        let (offset, density) = OffsetSparse::survey(x);
        if auto && (density > SPARSE_MAX_DENSITY || !fast_fma()) {
            return None;
        }
        Some(OffsetSparse::new(x, offset, density))
    }
}

/// A training run's state: buffers allocated once and reused every minibatch.
pub(crate) struct Trainer<'n, 'x> {
    net: &'n mut TwoLayerMLP,
    x: ArrayView2<'x, f64>,
    y: ArrayView1<'x, usize>,
    x_val: ArrayView2<'x, f64>,
    y_val: ArrayView1<'x, usize>,
    reg: Reg,
    batch: usize,
    x_batch: Array2<f64>,
    y_batch: Vec<usize>,
    /// The training set's sparse form, when the kernel takes it.
    sparse: Option<OffsetSparse>,
    /// The validation set's, and all its rows.
    val_sparse: Option<(OffsetSparse, Vec<usize>)>,
    ws: Workspace,
    grads: Params,
}

impl<'n, 'x> Trainer<'n, 'x> {
    /// A run on `train`'s `(X, y)` with minibatches of `batch` rows (at most `N`),
    /// measured on `val`'s; `kernel` for a run of `num_epochs`. Builds the sparse forms
    /// (under `par::with_helper`, both threads work on them).
    pub(crate) fn new(
        net: &'n mut TwoLayerMLP,
        (x, y): (ArrayView2<'x, f64>, ArrayView1<'x, usize>),
        (x_val, y_val): (ArrayView2<'x, f64>, ArrayView1<'x, usize>),
        batch: usize,
        reg: Reg,
        kernel: InputKernel,
        num_epochs: usize,
    ) -> Self {
        let (d, h, c) = (net.input_size(), net.hidden_size(), net.output_size());
        let sparse = kernel.sparse_form(x, num_epochs);
        let val_sparse =
            kernel.sparse_form(x_val, num_epochs).map(|s| (s, (0..x_val.nrows()).collect()));
        // W1's rows start cache lines (the same values; see aligned_zeros). Where an
        // allocation lands otherwise changes from build to build: 16 against 19
        // cycles per entry of the sparse gather.
        make_aligned(&mut net.params.w1);
        Trainer {
            net,
            x,
            y,
            x_val,
            y_val,
            reg,
            batch,
            x_batch: Array2::zeros((batch, d)),
            y_batch: vec![0; batch],
            sparse,
            val_sparse,
            ws: Workspace::new(batch, h, c),
            grads: Params::zeros(d, h, c),
        }
    }

    /// The kernel this run uses for the training set: dense or sparse.
    pub(crate) fn kernel(&self) -> InputKernel {
        match self.sparse {
            Some(_) => InputKernel::Sparse,
            None => InputKernel::Dense,
        }
    }

    /// Loss and gradients on the minibatch of the first `batch` rows of `rows`
    /// (gathered into the reused buffers), then the SGD step `param -= lr * grad`.
    /// Returns the loss and |dW1|. The next minibatch's rows follow in `rows`, if this
    /// is not the epoch's last.
    pub(crate) fn step(&mut self, rows: &[usize], learning_rate: f64) -> (f64, f64) {
        let (idx, rest) = rows.split_at(self.batch.min(rows.len()));
        let next = rest.get(..self.batch).unwrap_or_default();
        for (yb, &i) in self.y_batch.iter_mut().zip(idx) {
            *yb = self.y[i];
        }
        let input = match &self.sparse {
            Some(s) => Input::Sparse { s, idx, next },
            None => Input::Gather { src: self.x, idx, buf: &mut self.x_batch },
        };
        let (params, act) = (&mut self.net.params, self.net.activation);
        sgd_step(
            params,
            act,
            input,
            &self.y_batch,
            self.reg,
            learning_rate,
            &mut self.ws,
            &mut self.grads,
        )
    }

    /// The network's own `W1` brought up to date (the sparse steps keep it in the
    /// workspace).
    pub(crate) fn sync_w1(&mut self) {
        self.ws.sync_w1(&mut self.net.params.w1);
    }

    /// After an epoch: the accuracy on its last minibatch (rows `last`) and on the
    /// validation set.
    pub(crate) fn accuracies(&mut self, last: &[usize]) -> (f64, f64) {
        self.sync_w1();
        let y_batch = ArrayView1::from(&self.y_batch);
        let (params, act) = (&self.net.params, self.net.activation);
        let train_acc = match &self.sparse {
            Some(s) => accuracy_sparse(params, act, s, last, y_batch),
            None => accuracy(params, act, self.x_batch.view(), y_batch),
        };
        let val_acc = match &self.val_sparse {
            Some((s, rows)) => accuracy_sparse(params, act, s, rows, self.y_val),
            None => accuracy(params, act, self.x_val, self.y_val),
        };
        (train_acc, val_acc)
    }
}
