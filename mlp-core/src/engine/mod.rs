//! The fast training path behind [`TwoLayerMLP::train`](crate::TwoLayerMLP::train):
//! the same network as `model.rs`, computed with reused buffers, two threads, SIMD
//! kernels and, for inputs that are mostly one value per column (MNIST), a sparse form.
//!
//! # The contract with `model.rs`
//!
//! For the same parameters and batch, [`sgd_step`] computes the loss and the four
//! gradients that [`TwoLayerMLP::loss`](crate::TwoLayerMLP::loss) computes, to 1e-12
//! relative (the largest difference over the largest magnitude of each array: the
//! sums run in other orders and the sparse form rounds `x - c` once), and takes the
//! step `param -= learning_rate * grad` with them. This holds for the dense and the
//! sparse batch, on one thread and on two, on every instruction set (`MLP_SIMD`);
//! `tests.rs` checks it on toy and MNIST-like batches, and on MNIST itself.
//!
//! # Map
//!
//! - `trainer.rs`: a training run's state and policy (the kernel [`InputKernel`](crate::InputKernel)
//!   chooses), the step and accuracies the loop in `train.rs` asks for;
//! - `workspace.rs`: the buffers a step reuses and what it carries to the next;
//! - `rows.rs`: the forward pass and the backward pass to `dz1` for a block of rows;
//! - `dense.rs`: the step for a dense batch (rows split between the threads);
//! - `sparse.rs`, `gather.rs`: the sparse form `X = S + 1 c^T` and its products;
//! - `sparse_step.rs`: the step for a sparse batch (hidden units split);
//! - `simd.rs`, `fastexp.rs`: instruction-set dispatch, a vectorised `exp`;
//! - `par.rs`, `matmul.rs`, `arrays.rs`: fork-join, matrix products, array plumbing.
//!
//! Nothing here validates input: callers check it first (`check.rs`).

mod arrays;
mod dense;
mod fastexp;
mod gather;
mod matmul;
pub(crate) mod par;
mod rows;
mod simd;
mod sparse;
mod sparse_step;
#[cfg(test)]
mod tests;
mod trainer;
mod workspace;

use ndarray::{Array2, ArrayView1, ArrayView2};

pub(crate) use arrays::make_aligned;
pub(crate) use gather::fast_fma;
use matmul::PARALLEL_MIN_WORK;
pub(crate) use sparse::OffsetSparse;
pub(crate) use trainer::Trainer;
pub(crate) use workspace::Workspace;

use crate::model::{Activation, Grads, Params};
use crate::penalty::Reg;

/// Borrowed parameters: what the forward/backward pass reads.
#[derive(Clone, Copy)]
struct ParamViews<'a> {
    w1: ArrayView2<'a, f64>,
    b1: ArrayView1<'a, f64>,
    w2: ArrayView2<'a, f64>,
    b2: ArrayView1<'a, f64>,
}

impl<'a> ParamViews<'a> {
    fn of(p: &'a Params) -> Self {
        ParamViews { w1: p.w1.view(), b1: p.b1.view(), w2: p.w2.view(), b2: p.b2.view() }
    }
}

/// A batch for an SGD step: rows to be gathered, or rows of a sparse matrix.
pub(crate) enum Input<'a> {
    /// Rows `idx` of `src`, copied into `buf` `(idx.len(), D)` first.
    Gather { src: ArrayView2<'a, f64>, idx: &'a [usize], buf: &'a mut Array2<f64> },
    /// Rows `idx` of `s`, read where they are; `next`, the next step's rows (to be
    /// asked for early), if known.
    Sparse { s: &'a OffsetSparse, idx: &'a [usize], next: &'a [usize] },
}

/// One SGD step on a batch with labels `y`: the loss and gradients of `model.rs`'s
/// `loss` with the penalty `reg`, then `param -= learning_rate * grad` for all four. Returns the loss (before
/// the step) and `|dW1|` (Frobenius). `grads` ends with `db1`, `dW2`, `db2`, and for a
/// dense batch `dW1` (a sparse step uses each block of `dW1` as it completes and keeps
/// none of it). A sparse step keeps `W1` in `ws`: [`Workspace::sync_w1`] brings
/// `params.w1` up to date.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgd_step(
    params: &mut Params,
    act: Activation,
    input: Input,
    y: &[usize],
    reg: Reg,
    learning_rate: f64,
    ws: &mut Workspace,
    grads: &mut Grads,
) -> (f64, f64) {
    match input {
        Input::Sparse { s, idx, next } => {
            let batch = (s, idx, next);
            sparse_step::sparse_sgd_step(params, act, batch, y, (reg, learning_rate), ws, grads)
        }
        Input::Gather { src, idx, buf } => {
            let x = dense::gather_rows(src, idx, buf, params.w1.ncols());
            dense::dense_sgd_step(params, act, x, y, reg, learning_rate, ws, grads)
        }
    }
}

/// Where to split `n` rows of work between two threads, if it pays: the rows of a
/// batch are independent until the gradients are summed over them.
fn row_split(n: usize, work_per_row: usize) -> Option<usize> {
    (n >= 2 && n * work_per_row >= PARALLEL_MIN_WORK && par::threads() >= 2).then_some(n / 2)
}

/// The inputs of a block of rows, as the first layer reads them.
#[derive(Clone, Copy)]
enum Rows<'a> {
    /// `X`'s rows in place.
    Dense(ArrayView2<'a, f64>),
    /// Rows `rows` of `X = S + 1 c^T` (see `sparse.rs`), with `shift = c W1` for the
    /// current `W1`.
    Sparse { s: &'a OffsetSparse, rows: &'a [usize], shift: &'a [f64] },
}

impl<'a> Rows<'a> {
    fn len(&self) -> usize {
        match self {
            Rows::Dense(x) => x.nrows(),
            Rows::Sparse { rows, .. } => rows.len(),
        }
    }

    /// Rows `start..end`.
    fn slice(self, start: usize, end: usize) -> Self {
        match self {
            Rows::Dense(x) => Rows::Dense(x.slice_move(ndarray::s![start..end, ..])),
            Rows::Sparse { s, rows, shift } => Rows::Sparse { s, rows: &rows[start..end], shift },
        }
    }

    /// The rows before `half` and from `half` on.
    fn split_at(self, half: usize) -> (Self, Self) {
        (self.slice(0, half), self.slice(half, self.len()))
    }
}

/// The fraction of the rows of a dense `x` whose predicted class is `y`'s: the
/// argmax of the scores, ties to the lowest class (as `model.rs`'s `predict`).
pub(crate) fn accuracy(
    params: &Params,
    act: Activation,
    x: ArrayView2<f64>,
    y: ArrayView1<usize>,
) -> f64 {
    accuracy_of(ParamViews::of(params), act, Rows::Dense(x), y)
}

/// [`accuracy`] on rows `rows` of a sparse matrix with labels `y`.
pub(crate) fn accuracy_sparse(
    params: &Params,
    act: Activation,
    s: &OffsetSparse,
    rows: &[usize],
    y: ArrayView1<usize>,
) -> f64 {
    let mut shift = vec![0.0; params.w1.ncols()];
    s.offset_times(&arrays::contiguous(params.w1.view()), &mut shift);
    let x = Rows::Sparse { s, rows, shift: &shift };
    accuracy_of(ParamViews::of(params), act, x, y)
}

fn accuracy_of(p: ParamViews, act: Activation, x: Rows, y: ArrayView1<usize>) -> f64 {
    let mut pred = vec![0usize; x.len()];
    predict_into(p, act, x, &mut pred);
    let correct = pred.iter().zip(y.iter()).filter(|(p, t)| p == t).count();
    correct as f64 / y.len() as f64
}

/// Argmax predictions into `out` (`len ==` the number of rows), in blocks so that
/// memory stays bounded for large `X`, the two halves of the rows on two threads.
fn predict_into(p: ParamViews, act: Activation, x: Rows, out: &mut [usize]) {
    match row_split(x.len(), p.w1.nrows() * p.w1.ncols()) {
        None => predict_blocks(p, act, x, out),
        Some(half) => {
            let (x0, x1) = x.split_at(half);
            let (o0, o1) = out.split_at_mut(half);
            par::join(|| predict_blocks(p, act, x0, o0), || predict_blocks(p, act, x1, o1));
        }
    }
}

/// Argmax predictions on this thread, in blocks of rows.
fn predict_blocks(p: ParamViews, act: Activation, x: Rows, out: &mut [usize]) {
    const BLOCK: usize = 1000;
    let (h, c) = (p.w1.ncols(), p.w2.ncols());
    let mut hidden = arrays::aligned_zeros(BLOCK.min(x.len()), h);
    let mut scores = arrays::aligned_zeros(BLOCK.min(x.len()), c);
    for (start, ob) in (0..x.len()).step_by(BLOCK).zip(out.chunks_mut(BLOCK)) {
        let rows = ob.len();
        let xb = x.slice(start, start + rows);
        let mut hb = hidden.slice_mut(ndarray::s![..rows, ..]);
        let mut sb = scores.slice_mut(ndarray::s![..rows, ..]);
        rows::forward_rows(p, act, xb, &mut hb, &mut sb);
        for (row, o) in sb.rows().into_iter().zip(ob.iter_mut()) {
            *o = argmax(row);
        }
    }
}

/// Index of the first maximum (as `np.argmax`).
fn argmax(row: ArrayView1<f64>) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    best
}
