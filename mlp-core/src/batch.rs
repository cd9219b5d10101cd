//! A minibatch: rows of the training set picked by index, copied into an array of their own
//! (numpy's `X[idx]`), for the student's training loop and the engine's dense steps.

use ndarray::{ArrayView2, ArrayViewMut2};

/// Rows `idx` of `src` into the rows of `dst` (`(idx.len(), src.ncols())`), in order:
/// numpy's `X[idx]` into an array kept from step to step. ndarray's `select` builds a new
/// array by appending row after row through its general iterators, which took 15 % of a
/// student's MNIST run (docs/performance.md); this copies each row's slice.
pub(crate) fn copy_rows(src: ArrayView2<f64>, idx: &[usize], mut dst: ArrayViewMut2<f64>) {
    touch(src, idx);
    for (mut row, &i) in dst.rows_mut().into_iter().zip(idx) {
        match (row.as_slice_mut(), src.row(i).to_slice()) {
            (Some(to), Some(from)) => to.copy_from_slice(from),
            _ => row.assign(&src.row(i)),
        }
    }
}

/// Every source row touched first: independent loads whose cache and TLB misses overlap,
/// instead of one miss after another while copying.
fn touch(src: ArrayView2<f64>, idx: &[usize]) {
    if src.ncols() > 0 {
        std::hint::black_box(idx.iter().fold(0.0, |acc, &i| acc + src[[i, 0]]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Axis, s};

    #[test]
    fn rows_are_ndarrays_select_for_any_layout() {
        let x = Array2::from_shape_fn((7, 8), |(i, j)| (10 * i + j) as f64);
        let idx = [6, 0, 3, 3, 1];
        for src in [x.view(), x.t(), x.slice(s![.., ..;2])] {
            let want = src.select(Axis(0), &idx);
            let mut buf = Array2::zeros(want.raw_dim());
            copy_rows(src, &idx, buf.view_mut());
            assert_eq!(buf, want);
        }
        let mut none = Array2::zeros((2, 0));
        copy_rows(Array2::<f64>::zeros((3, 0)).view(), &[2, 1], none.view_mut());
    }
}
