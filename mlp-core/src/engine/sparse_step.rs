//! The SGD step for rows of a sparse batch (`X = S + 1 c^T`, `sparse.rs`), split
//! between the two threads by hidden units.

use ndarray::{Array2, ArrayViewMut1, Axis};

use super::arrays::{aligned_zeros, contiguous, sum_rows_into};
use super::dense::{W2Rows, w2_rows, w2_step};
use super::rows::{batch_loss, rows_backward};
use super::sparse::OffsetSparse;
use super::workspace::{Carried, Workspace, WorkspaceRows};
use super::{ParamViews, row_split};
use crate::model::{Activation, Grads, Params};
use crate::penalty::{Penalty, Reg};

/// [`super::sgd_step`] for rows `idx` of `X = S + 1 c^T` (see `sparse.rs`): the same
/// parameters to the bit as the dense products' chains in row order (the loss's
/// `sum(W1^2)` and `|dW1|` are summed in another order: the last bits differ), with the
/// work split between the two threads so that each keeps its data in its own core's
/// caches:
///
/// 1. by hidden units: each thread computes its half of the hidden layer's columns
///    for all rows, `act(S W1[:, half] + c W1[:, half] + b1[half])`, from its half of
///    `W1`'s columns (which only it ever reads or writes);
/// 2. by rows: each thread takes its half of the batch through the second layer, the
///    softmax and back to `dz1`, as [`super::rows::rows_pass`] does; and the sum of the squares of
///    its panel of `W1`, for the loss;
/// 3. by hidden units again: `dW1[:, half] = S^T dz1[:, half] + c db1[half]^T + reg
///    W1[:, half]`, added up in a buffer in row order, each block of rows used for the
///    update of the same columns of `W1` as soon as it is complete; and the same half
///    of `W2`'s rows. Meanwhile each thread asks for half of the `next` step's rows.
///
/// Only the hidden layer's rows (phase 2 reads the other thread's columns), `dz1`
/// (phase 3 reads the other thread's rows) and a few small vectors pass from one
/// core to the other; with the rows of `W1` shared instead, their transfers cost
/// more than the arithmetic where the two cores do not share a cache.
///
/// `c W1` for the next step is taken in the update too, in two parts (the rows before
/// and after the middle of `W1`, summed apart as the first version of this step did).
pub(super) fn sparse_sgd_step(
    params: &mut Params,
    act: Activation,
    (s, idx, next): (&OffsetSparse, &[usize], &[usize]),
    y: &[usize],
    (reg, learning_rate): (Reg, f64),
    ws: &mut Workspace,
    grads: &mut Grads,
) -> (f64, f64) {
    let n = y.len();
    let (d, h) = params.w1.dim();
    ws.fit(n, h, params.w2.ncols());
    let split = row_split(n, d * h);
    let half = row_split(d, n * h);
    let two = half.is_some();
    let j_half = if two { h / 2 } else { h };
    for (a, w) in ws.columns.iter_mut().zip([j_half, h - j_half]) {
        if a.dim() != (n, w) {
            *a = aligned_zeros(n, w);
        }
    }
    for (a, w) in ws.dw1.iter_mut().zip([j_half, h - j_half]) {
        if a.dim() != (d, w) {
            *a = aligned_zeros(d, w);
        }
    }
    let carried = std::mem::take(&mut ws.carried);
    let fresh = [(0, j_half), (j_half, h - j_half)];
    if !carried.panels || ws.panels.iter().zip(fresh).any(|(a, (_, w))| a.dim() != (d, w)) {
        for (panel, (j0, w)) in ws.panels.iter_mut().zip(fresh) {
            *panel = aligned_zeros(d, w);
            panel.assign(&params.w1.slice(ndarray::s![.., j0..j0 + w]));
        }
    }

    // c W1 from the parts the last step left (at the first step, computed)
    let mut shift = std::mem::take(&mut ws.shift);
    if carried.shift {
        let [p0, p1] = &ws.shift_parts;
        shift.clear();
        shift.extend(p0.iter().zip(p1).map(|(a, b)| a + b));
    } else {
        shift.resize(h, 0.0);
        s.offset_times(&contiguous(params.w1.view()), &mut shift);
    }

    // 1. the hidden layer, by columns
    {
        let b1 = contiguous(params.b1.view());
        let layer = |j0: usize, w1: &Array2<f64>, z: &mut Array2<f64>| {
            let w = z.ncols();
            if let (Some(z), Some(w1)) = (z.as_slice_mut(), w1.as_slice())
                && w > 0
            {
                z.fill(0.0);
                s.rows_times(idx, w1, w, 0, z);
                let (c, b) = (&shift[j0..j0 + w], &b1[j0..j0 + w]);
                for row in z.chunks_exact_mut(w) {
                    super::fastexp::activate(act, row, c, b);
                }
            }
        };
        let [z0, z1] = &mut ws.columns;
        let [pa, pb] = &ws.panels;
        super::par::join_if(two, || layer(0, pa, z0), || layer(j_half, pb, z1));
    }

    // 2. by rows: the rest of the forward pass, back to dz1; pen.sum(W1) for the loss
    let p = ParamViews::of(params);
    // pen.sum(W1): each thread over its own panel, in numpy's order within it (so all
    // in numpy's order on one thread). numpy's order across the two panels would need
    // each thread to read half of the other's panel at every step, and the other to
    // take those cache lines back for its update: that made the step 60% slower where
    // the cores share no cache. The loss differs from numpy's in the last bits only;
    // nothing else depends on it.
    let (columns, panels) = (std::mem::take(&mut ws.columns), std::mem::take(&mut ws.panels));
    let panel_squares = |t: usize| reg.penalty.sum(&panels[t]);
    let [z0, z1] = &columns;
    let tail = |r0: usize, mut w: WorkspaceRows| {
        w.prefetch();
        let r1 = r0 + w.hidden.nrows();
        for (part, j0) in [(z0, 0), (z1, j_half)] {
            let cols = part.slice(ndarray::s![r0..r1, ..]);
            w.hidden.slice_mut(ndarray::s![.., j0..j0 + part.ncols()]).assign(&cols);
        }
        rows_backward(p, act, &y[r0..r1], n as f64, w);
    };
    let (a0, a1) = match split {
        None => {
            tail(0, ws.all_rows());
            (panel_squares(0), panel_squares(1))
        }
        Some(r) => {
            let (w0, w1) = ws.split_rows(r);
            super::par::join(
                || {
                    tail(0, w0);
                    panel_squares(0)
                },
                || {
                    tail(r, w1);
                    panel_squares(1)
                },
            )
        }
    };
    ws.columns = columns;
    ws.panels = panels;
    let loss = batch_loss(p, &ws.row_loss, a0 + a1, reg);
    // db2 = sum_rows dscores (C,)
    sum_rows_into(ws.scores.view(), &mut grads.b2);

    // 3. dW1 and the update, by columns; W2 by rows (the same hidden units)
    let (hidden, dscores) = (ws.hidden.view(), ws.scores.view());
    let dz = contiguous(ws.dhidden.view());
    let c = s.offset();
    let mid = half.unwrap_or(d);
    let [p0, p1] = &mut ws.shift_parts;
    for part in [&mut *p0, &mut *p1] {
        part.clear();
        part.resize(h, 0.0);
    }
    let (p0a, p0b) = p0.split_at_mut(j_half);
    let (p1a, p1b) = p1.split_at_mut(j_half);
    let (db1a, db1b) = grads.b1.view_mut().split_at(Axis(0), j_half);
    let [w1a, w1b] = &mut ws.panels;
    let [w2a, w2b] = w2_rows(&mut params.w2, &mut grads.w2, two);
    let [acc0, acc1] = &mut ws.dw1;
    let update = |j0: usize,
                  w1: &mut Array2<f64>,
                  acc: &mut Array2<f64>,
                  mut db1: ArrayViewMut1<f64>,
                  parts: [&mut [f64]; 2],
                  w2: W2Rows| {
        let w = w1.ncols();
        let mut squares = 0.0;
        if let (Some(w1), Some(acc), Some(db1)) =
            (w1.as_slice_mut(), acc.as_slice_mut(), db1.as_slice_mut())
            && w > 0
        {
            // db1 = sum_rows dz1 (its columns)
            db1.fill(0.0);
            for row in dz.chunks_exact(h) {
                for (o, &x) in db1.iter_mut().zip(&row[j0..j0 + w]) {
                    *o += x;
                }
            }
            // |g|^2 in 16 running sums, through all the blocks
            let mut lanes = [0.0; 16];
            let [part0, part1] = parts;
            // The next step's rows come from memory (the sparse set does not fit in
            // the caches), and the next forward pass waited for them: each thread asks
            // for half of them here, a share after each block, where the update's own
            // data are in the caches (forward pass 167 -> 130 kcycles per step, this
            // phase +20).
            let ahead = if j0 == 0 { &next[..next.len() / 2] } else { &next[next.len() / 2..] };
            let mut asked = 0;
            // each block of rows of W1 updated as soon as its dW1 rows are complete,
            // while they are in the near caches
            let update = |k0: usize, acc: &mut [f64]| {
                let k1 = k0 + acc.len() / w;
                let upto = ahead.len() * k1 / d;
                for &i in &ahead[asked..upto] {
                    s.prefetch_row(i);
                }
                asked = upto;
                update_columns(
                    (&c[k0..k1], mid.saturating_sub(k0)),
                    &mut w1[k0 * w..k1 * w],
                    acc,
                    db1,
                    (reg, learning_rate),
                    &mut lanes,
                    [&mut *part0, &mut *part1],
                );
            };
            s.add_transposed_times(idx, &dz, h, j0, acc, update);
            squares = lanes.iter().sum();
        }
        w2_step(hidden, dscores, w2, reg, learning_rate);
        squares
    };
    let (s0, s1) = super::par::join_if(
        two,
        || update(0, w1a, acc0, db1a, [p0a, p1a], w2a),
        || update(j_half, w1b, acc1, db1b, [p0b, p1b], w2b),
    );
    ws.shift = shift;
    ws.carried = Carried { w1_penalty: None, shift: true, panels: true };
    params.b1.scaled_add(-learning_rate, &grads.b1);
    params.b2.scaled_add(-learning_rate, &grads.b2);
    (loss, (s0 + s1).sqrt())
}

/// The `W1` update of [`sparse_sgd_step`] for a block of rows of its columns, row by
/// row: `g = (S^T dz1 + c db1^T) + reg pen'(W1)`, from `acc = S^T dz1` (left zero),
/// then `W1 -= learning_rate g`; `c[k] W1[k]` (new) summed into `parts[0]` for the rows
/// before `mid`, `parts[1]` after; element `j` of `g^2` added to `lanes[j % 16]`.
/// Compiled for the widest instruction set, like the gathers, and for each penalty.
pub(super) fn update_columns(
    c_mid: (&[f64], usize),
    w1: &mut [f64],
    acc: &mut [f64],
    db1: &[f64],
    (reg, learning_rate): (Reg, f64),
    lanes: &mut [f64; 16],
    parts: [&mut [f64]; 2],
) {
    let rates = (reg.strength, learning_rate);
    match reg.penalty {
        Penalty::L2 => update_columns_for(c_mid, w1, acc, db1, rates, lanes, parts, |w| w),
        Penalty::L1 => {
            let sign = |w| Penalty::L1.grad(w);
            update_columns_for(c_mid, w1, acc, db1, rates, lanes, parts, sign)
        }
    }
}

/// [`update_columns`] with the penalty's gradient `pen` (over `reg`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn update_columns_for(
    (c, mid): (&[f64], usize),
    w1: &mut [f64],
    acc: &mut [f64],
    db1: &[f64],
    (reg, learning_rate): (f64, f64),
    lanes: &mut [f64; 16],
    parts: [&mut [f64]; 2],
    pen: impl Fn(f64) -> f64 + Copy,
) {
    super::simd::dispatch_fn(
        #[inline(always)]
        || {
            let [part0, part1] = parts;
            // |g|^2's running sums (independent chains; no fused multiply-add, so the
            // same on every instruction set) in registers for the whole loop (through
            // a reference, each row's sums went to memory and came back)
            let mut sums = *lanes;
            let w = db1.len();
            for (k, g) in acc.chunks_exact_mut(w).enumerate() {
                let wk = &mut w1[k * w..(k + 1) * w];
                let ck = c[k];
                // element j's square into lane j % 16; acc is left zero here (a
                // separate fill of the row was a call to memset). Whole chunks of 16,
                // so that the loop is vectorised and the lanes stay in registers;
                // then the rest.
                let mut gs = g.chunks_exact_mut(16);
                let mut ws = wk.chunks_exact_mut(16);
                let mut ds = db1.chunks_exact(16);
                for ((g, w), db) in (&mut gs).zip(&mut ws).zip(&mut ds) {
                    update_step(&mut sums, g, w, db, (ck, reg, learning_rate), pen);
                }
                let (g, w, db) = (gs.into_remainder(), ws.into_remainder(), ds.remainder());
                update_step(&mut sums, g, w, db, (ck, reg, learning_rate), pen);
                if ck != 0.0 {
                    let part = if k < mid { &mut *part0 } else { &mut *part1 };
                    for (s, &w) in part.iter_mut().zip(wk.iter()) {
                        *s += ck * w;
                    }
                }
            }
            *lanes = sums;
        },
    )
}

/// Up to sixteen elements of a row of [`update_columns`]: `g = (acc + ck db) + reg pen(w)`,
/// `w -= learning_rate g`, `lanes[j] += g^2`, `acc = 0`. A function of its own, so
/// that the compiler knows the slices apart and, given whole chunks of 16, vectorises
/// it (as a closure over slices it was a scalar loop).
#[inline(always)]
pub(super) fn update_step(
    lanes: &mut [f64],
    acc: &mut [f64],
    w: &mut [f64],
    db: &[f64],
    (ck, reg, learning_rate): (f64, f64, f64),
    pen: impl Fn(f64) -> f64,
) {
    for (l, ((g, w), &db)) in lanes.iter_mut().zip(acc.iter_mut().zip(w).zip(db)) {
        let gk = (*g + ck * db) + reg * pen(*w);
        *w += -learning_rate * gk;
        *l += gk * gk;
        *g = 0.0;
    }
}
