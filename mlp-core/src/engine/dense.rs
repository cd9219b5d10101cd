//! The SGD step for a dense batch: the rows split between two threads up to `dz1`,
//! then `W1`'s rows, each thread computing its rows of `dW1` and updating them while
//! they are in its cache.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};

use super::arrays::{add_penalty_grad, axpy};
use super::matmul::matmul_into;
use super::rows::loss_and_grads_but_w1;
use super::workspace::{Carried, Workspace};
use super::{ParamViews, row_split};
use crate::batch::copy_rows;
use crate::model::{Activation, Grads, Params};
use crate::penalty::Reg;
use crate::sums::sum_of_squares;

/// Rows `idx` of `src` into `buf`, each thread copying the rows it then uses.
pub(super) fn gather_rows<'b>(
    src: ArrayView2<f64>,
    idx: &[usize],
    buf: &'b mut Array2<f64>,
    hidden: usize,
) -> ArrayView2<'b, f64> {
    let gather = |idx: &[usize], rows: ArrayViewMut2<f64>| copy_rows(src, idx, rows);
    match row_split(idx.len(), src.ncols() * hidden) {
        None => gather(idx, buf.view_mut()),
        Some(half) => {
            let (b0, b1) = buf.view_mut().split_at(Axis(0), half);
            super::par::join(|| gather(&idx[..half], b0), || gather(&idx[half..], b1));
        }
    }
    buf.view()
}

/// One SGD step on the dense batch `x` (see [`super::sgd_step`]): each thread
/// computes its half of the rows of `dW1` and updates the same rows of `W1` at once,
/// while they are in its cache, and the same for its half of `dW2`'s rows.
///
/// What the next step needs of the new `W1` is taken here, by each thread over the
/// half it has just updated, and kept in `ws` (see [`Carried`]): `pen.sum(W1)` for the
/// loss.
#[allow(clippy::too_many_arguments)]
pub(super) fn dense_sgd_step(
    params: &mut Params,
    act: Activation,
    x: ArrayView2<f64>,
    y: &[usize],
    reg: Reg,
    learning_rate: f64,
    ws: &mut Workspace,
    grads: &mut Grads,
) -> (f64, f64) {
    let (d, h) = params.w1.dim();
    ws.sync_w1(&mut params.w1);
    let carried = std::mem::take(&mut ws.carried);
    let loss = loss_and_grads_but_w1(ParamViews::of(params), act, x, y, reg, carried, ws, grads);
    let half = row_split(d, y.len() * h);
    // the W1 penalty comes out in numpy's order (pairwise_sum's) if the halves are its
    // first split
    let n = d * h;
    let numpy_halves = half.is_none_or(|half| n > 128 && half * h == n / 2 - (n / 2) % 8);
    let hidden = ws.hidden.view();
    let dscores = ws.scores.view();
    let dz = ws.dhidden.view();
    // Each thread: its rows of W1 (dW1 rows = X[:, rows]^T dz1 + reg pen'(W1 rows),
    // |dW1 rows|^2, the update, pen.sum(W1 rows)), then its hidden units' rows of W2.
    let step =
        |xs: ArrayView2<f64>, mut w: ArrayViewMut2<f64>, mut g: ArrayViewMut2<f64>, w2: W2Rows| {
            matmul_into(xs.t(), dz, &mut g);
            add_penalty_grad(g.view_mut(), reg, w.view());
            let squares = sum_of_squares(&g);
            axpy(w.view_mut(), -learning_rate, g.view());
            let w1_penalty = if numpy_halves { reg.penalty.sum(&w) } else { f64::NAN };
            w2_step(hidden, dscores, w2, reg, learning_rate);
            (squares, w1_penalty)
        };
    let half = half.unwrap_or(d);
    let (x0, x1) = x.split_at(Axis(1), half);
    let (w0, w1) = params.w1.view_mut().split_at(Axis(0), half);
    let (g0, g1) = grads.w1.view_mut().split_at(Axis(0), half);
    let [w2a, w2b] = w2_rows(&mut params.w2, &mut grads.w2, half < d);
    let ((s0, q0), (s1, q1)) =
        super::par::join_if(half < d, || step(x0, w0, g0, w2a), || step(x1, w1, g1, w2b));
    ws.carried =
        Carried { w1_penalty: numpy_halves.then_some(q0 + q1), shift: false, panels: false };
    params.b1.scaled_add(-learning_rate, &grads.b1);
    params.b2.scaled_add(-learning_rate, &grads.b2);
    (loss, (s0 + s1).sqrt())
}

/// A block of `W2`'s rows (hidden units `j0..`) and the same rows of `dW2`.
pub(super) type W2Rows<'a> = (usize, ArrayViewMut2<'a, f64>, ArrayViewMut2<'a, f64>);

/// `W2` and `dW2` in two blocks of rows, split in the middle when `split` (for two
/// threads), else all in the first.
pub(super) fn w2_rows<'a>(
    w2: &'a mut Array2<f64>,
    g2: &'a mut Array2<f64>,
    split: bool,
) -> [W2Rows<'a>; 2] {
    let h = w2.nrows();
    let j_half = if split { h / 2 } else { h };
    let (w2a, w2b) = w2.view_mut().split_at(Axis(0), j_half);
    let (g2a, g2b) = g2.view_mut().split_at(Axis(0), j_half);
    [(0, w2a, g2a), (j_half, w2b, g2b)]
}

/// `dW2 rows = hidden[:, rows]^T dscores + reg pen'(W2 rows)` for a block of `W2`'s
/// rows, and their update.
pub(super) fn w2_step(
    hidden: ArrayView2<f64>,
    dscores: ArrayView2<f64>,
    (j0, mut w2, mut g2): W2Rows,
    reg: Reg,
    learning_rate: f64,
) {
    let cols = hidden.slice(ndarray::s![.., j0..j0 + w2.nrows()]);
    matmul_into(cols.t(), dscores, &mut g2);
    add_penalty_grad(g2.view_mut(), reg, w2.view());
    axpy(w2.view_mut(), -learning_rate, g2.view());
}
