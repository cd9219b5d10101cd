//! The forward pass and the backward pass down to `dL/dz1` for a block of a batch's
//! rows: what both threads of a step run on their halves (every row is independent up
//! to `dz1`).

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Zip};

use super::arrays::{contiguous, penalty_sum_split, sum_rows_into, with_rows_slice, with_slice};
use super::matmul::matmul_into;
use super::workspace::{Carried, Workspace, WorkspaceRows};
use super::{ParamViews, Rows, row_split};
use crate::model::{Activation, Grads};
use crate::penalty::Reg;
use crate::sums::pairwise_sum;

/// The forward pass for a block of rows: `hidden = act(X W1 + b1)` `(n, H)`,
/// `scores = hidden W2 + b2` `(n, C)`.
pub(super) fn forward_rows(
    p: ParamViews,
    act: Activation,
    x: Rows,
    hidden: &mut ArrayViewMut2<f64>,
    scores: &mut ArrayViewMut2<f64>,
) {
    first_layer(p, act, x, hidden);
    second_layer(p, hidden.view(), scores);
}

/// `hidden = act(X W1 + b1)` for a block of rows.
pub(super) fn first_layer(
    p: ParamViews,
    act: Activation,
    x: Rows,
    hidden: &mut ArrayViewMut2<f64>,
) {
    let b1 = contiguous(p.b1);
    match x {
        Rows::Dense(x) => {
            // z1 = X W1, then + b1 and the activation in one pass
            matmul_into(x, p.w1, hidden);
            for row in hidden.rows_mut() {
                with_slice(row, |z| {
                    z.iter_mut().zip(b1.iter()).for_each(|(z, &b)| *z = act.apply(*z + b))
                });
            }
        }
        Rows::Sparse { s, rows, shift } => {
            // z1 = S W1 + c W1 from the stored entries; + b1 and the activation (with
            // the vectorised exp, see fastexp.rs)
            let w1 = contiguous(p.w1);
            hidden.fill(0.0);
            let h = p.w1.ncols();
            with_rows_slice(hidden, |z| s.rows_times(rows, &w1, h, 0, z));
            for row in hidden.rows_mut() {
                with_slice(row, |z| super::fastexp::activate(act, z, shift, &b1));
            }
        }
    }
}

/// `scores = hidden W2 + b2` for a block of rows.
pub(super) fn second_layer(
    p: ParamViews,
    hidden: ArrayView2<f64>,
    scores: &mut ArrayViewMut2<f64>,
) {
    matmul_into(hidden, p.w2, scores);
    for mut row in scores.rows_mut() {
        row += &p.b2;
    }
}

/// Forward pass, softmax cross-entropy and the backward pass down to `dL/dz1` for a
/// block of rows of a batch of `n` rows. Each row's loss goes to `w.row_loss`;
/// `w.scores` ends as `dL/dscores = (probs - onehot(y)) / n` and `w.dhidden` as `dL/dz1`.
pub(super) fn rows_pass(
    p: ParamViews,
    act: Activation,
    x: Rows,
    y: &[usize],
    n: f64,
    mut w: WorkspaceRows,
) {
    w.prefetch();
    first_layer(p, act, x, &mut w.hidden);
    rows_backward(p, act, y, n, w);
}

/// [`rows_pass`] from `w.hidden` on: the second layer, softmax cross-entropy and the
/// backward pass down to `dL/dz1`.
pub(super) fn rows_backward(p: ParamViews, act: Activation, y: &[usize], n: f64, w: WorkspaceRows) {
    let WorkspaceRows { hidden, mut scores, mut dhidden, row_loss } = w;
    second_layer(p, hidden.view(), &mut scores);
    // Softmax cross-entropy, shifted by each row's maximum for stability:
    // loss_i = ln sum_j exp(s_ij - max_i) - (s_iy - max_i)
    for ((mut row, &label), loss) in scores.rows_mut().into_iter().zip(y).zip(row_loss) {
        match row.as_slice_mut() {
            Some(r) => *loss = softmax_cross_entropy_row(r, label, n),
            None => {
                let mut r = row.to_vec();
                *loss = softmax_cross_entropy_row(&mut r, label, n);
                row.assign(&ArrayView1::from(&r));
            }
        }
    }
    // Into the hidden layer: dhidden = dscores W2^T (rows, H); dz1 = dhidden * act'(z1)
    matmul_into(scores.view(), p.w2.t(), &mut dhidden);
    Zip::from(&mut dhidden).and(&hidden).for_each(|d, &h| *d *= act.derivative_from_output(h));
}

/// One row of scores `s` with correct class `label`, in a batch of `n`: returns
/// `-ln softmax(s)[label] = ln sum_j exp(s_j - max) - (s_label - max)` and leaves
/// `dL/ds = (softmax(s) - onehot(label)) / n` in `s`.
pub(super) fn softmax_cross_entropy_row(s: &mut [f64], label: usize, n: f64) -> f64 {
    let max = s.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    let shifted_label = s[label] - max;
    let mut sum = 0.0;
    for v in s.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in s.iter_mut() {
        *v /= sum;
    }
    s[label] -= 1.0;
    for v in s.iter_mut() {
        *v /= n;
    }
    sum.ln() - shifted_label
}

/// Everything of `model.rs`'s loss but `dW1` and `dW2` for the batch `x`: returns the
/// loss; `ws.dhidden` holds `dL/dz1` and `ws.scores` `dL/dscores`, from which
/// `dW1 = X^T dz1 + reg pen'(W1)` and `dW2 = hidden^T dscores + reg pen'(W2)` follow.
/// `carried` is what the last SGD step computed for this one, if anything.
#[allow(clippy::too_many_arguments)]
pub(super) fn loss_and_grads_but_w1(
    p: ParamViews,
    act: Activation,
    x: ArrayView2<f64>,
    y: &[usize],
    reg: Reg,
    carried: Carried,
    ws: &mut Workspace,
    grads: &mut Grads,
) -> f64 {
    let n = y.len();
    ws.fit(n, p.w1.ncols(), p.w2.ncols());
    // Up to dL/dz1 every row is independent: two halves on two threads.
    match row_split(n, p.w1.nrows() * p.w1.ncols()) {
        None => rows_pass(p, act, Rows::Dense(x), y, n as f64, ws.all_rows()),
        Some(half) => {
            let (x0, x1) = Rows::Dense(x).split_at(half);
            let (w0, w1) = ws.split_rows(half);
            super::par::join(
                || rows_pass(p, act, x0, &y[..half], n as f64, w0),
                || rows_pass(p, act, x1, &y[half..], n as f64, w1),
            );
        }
    }
    let w1_penalty = carried.w1_penalty.unwrap_or_else(|| penalty_sum_split(p.w1, reg.penalty));
    let loss = batch_loss(p, &ws.row_loss, w1_penalty, reg);

    // db2 = sum_rows dscores (C,)
    sum_rows_into(ws.scores.view(), &mut grads.b2);
    // db1 = sum_rows dz1 (H,)
    sum_rows_into(ws.dhidden.view(), &mut grads.b1);
    loss
}

/// The loss of a batch from its rows' cross-entropies and `pen.sum(W1)`:
/// `mean(row_loss) + f reg (pen.sum(W1) + pen.sum(W2))` (`f = pen.factor()`), the other
/// sums in numpy's order.
pub(super) fn batch_loss(p: ParamViews, row_loss: &[f64], w1_penalty: f64, reg: Reg) -> f64 {
    let data_loss = pairwise_sum(row_loss, |l| l) / row_loss.len() as f64;
    let (pen, f, s) = (reg.penalty, reg.penalty.factor(), reg.strength);
    data_loss + f * s * w1_penalty + f * s * pen.sum(&p.w2)
}
