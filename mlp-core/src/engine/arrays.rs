//! Array plumbing for the engine's kernels: cache-line-aligned buffers, contiguous
//! slices of views, `y += a x`, row sums, and the penalty of `W1` on two threads.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};

use super::matmul::PARALLEL_MIN_WORK;
use crate::penalty::{Penalty, Reg};

/// A zero `(rows, cols)` array in standard layout whose first element starts a
/// 64-byte cache line. With rows of a multiple of four doubles (64 hidden units), the
/// vectorised kernels' 32-byte loads of its rows then never straddle two lines:
/// measured on the sparse gather of `W1`'s rows, 16 against 19 cycles per entry.
pub(crate) fn aligned_zeros(rows: usize, cols: usize) -> Array2<f64> {
    const LINE: usize = 64 / std::mem::size_of::<f64>();
    let storage = vec![0.0; rows * cols + LINE];
    let skip = storage.as_ptr().align_offset(64).min(LINE);
    Array1::from_vec(storage)
        .slice_move(ndarray::s![skip..skip + rows * cols])
        .into_shape_with_order((rows, cols))
        .expect("rows * cols elements")
}

/// `a`, in an [`aligned_zeros`] array unless it is one already.
pub(crate) fn make_aligned(a: &mut Array2<f64>) {
    if !a.is_empty() && (a.as_ptr().align_offset(64) != 0 || !a.is_standard_layout()) {
        let mut copy = aligned_zeros(a.nrows(), a.ncols());
        copy.assign(a);
        *a = copy;
    }
}

/// `a`'s entries in row-major order: borrowed when they are contiguous already.
pub(super) fn contiguous<'a, D: ndarray::Dimension>(
    a: ndarray::ArrayView<'a, f64, D>,
) -> std::borrow::Cow<'a, [f64]> {
    match a.to_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(a.iter().copied().collect()),
    }
}

/// Run `f` on `row` as a slice (through a copy if the row is not contiguous).
pub(super) fn with_slice<R>(
    mut row: ndarray::ArrayViewMut1<f64>,
    f: impl FnOnce(&mut [f64]) -> R,
) -> R {
    if let Some(r) = row.as_slice_mut() {
        return f(r);
    }
    let mut copy = row.to_vec();
    let result = f(&mut copy);
    row.assign(&ArrayView1::from(&copy));
    result
}

/// [`with_slice`] for a matrix: its entries in row-major order.
pub(super) fn with_rows_slice<R>(a: &mut ArrayViewMut2<f64>, f: impl FnOnce(&mut [f64]) -> R) -> R {
    if let Some(r) = a.as_slice_mut() {
        return f(r);
    }
    let mut copy = a.as_standard_layout().into_owned();
    let result = f(copy.as_slice_mut().expect("standard layout"));
    a.assign(&copy);
    result
}

/// `y += a * x` elementwise (as `scaled_add`, in a plain loop over contiguous memory
/// so that it vectorises). Memory-bound: splitting it between threads was measured
/// slower than one thread.
pub(crate) fn axpy(mut y: ArrayViewMut2<f64>, a: f64, x: ArrayView2<f64>) {
    debug_assert_eq!(y.dim(), x.dim());
    match (y.as_slice_mut(), x.as_slice()) {
        (Some(ys), Some(xs)) => ys.iter_mut().zip(xs).for_each(|(y, &x)| *y += a * x),
        _ => y.scaled_add(a, &x),
    }
}

/// `y += reg * pen.grad(x)` elementwise: the penalty's gradient added to a gradient
/// (for L2 [`axpy`], exactly).
pub(super) fn add_penalty_grad(y: ArrayViewMut2<f64>, reg: Reg, x: ArrayView2<f64>) {
    match reg.penalty {
        Penalty::L2 => axpy(y, reg.strength, x),
        Penalty::L1 => {
            let s = reg.strength;
            let mut y = y;
            y.zip_mut_with(&x, |y, &x| *y += s * Penalty::L1.grad(x));
        }
    }
}

/// `pen.sum(a)`, its two halves on two threads when numpy's pairwise order splits the
/// entries between two rows (as it does for 784 x 64): the same double either way.
pub(crate) fn penalty_sum_split(a: ArrayView2<f64>, pen: Penalty) -> f64 {
    match sum_halves(a) {
        None => pen.sum(&a),
        Some((a0, a1)) => {
            let (s0, s1) = super::par::join(|| pen.sum(&a0), || pen.sum(&a1));
            s0 + s1
        }
    }
}

/// The two blocks of rows whose numpy-order sums add up to `a`'s (numpy's pairwise
/// order splits the entries between two rows), when a second thread can take one.
pub(super) fn sum_halves(a: ArrayView2<f64>) -> Option<(ArrayView2<f64>, ArrayView2<f64>)> {
    let (d, h) = a.dim();
    let n = d * h;
    let n2 = n / 2 - (n / 2) % 8;
    if n < PARALLEL_MIN_WORK / 8
        || h == 0
        || n2 % h != 0
        || !a.is_standard_layout()
        || super::par::threads() < 2
    {
        return None;
    }
    Some(a.split_at(Axis(0), n2 / h))
}

/// `out = a.sum(axis=0)`, without allocating: rows added in order (a plain loop over
/// contiguous rows where it can, which vectorises; ndarray's per-row `+=` cost more in
/// calls than in additions at 100 x 64).
pub(super) fn sum_rows_into(a: ArrayView2<f64>, out: &mut Array1<f64>) {
    out.fill(0.0);
    if let (Some(v), Some(o)) = (a.as_slice(), out.as_slice_mut())
        && !o.is_empty()
    {
        for row in v.chunks_exact(o.len()) {
            for (o, &x) in o.iter_mut().zip(row) {
                *o += x;
            }
        }
        return;
    }
    for row in a.rows() {
        *out += &row;
    }
}
