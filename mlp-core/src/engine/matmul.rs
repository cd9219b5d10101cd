//! Matrix products for the forward and backward passes.
//!
//! With the `gemm` feature (the `mlp` command's), large products go through the `gemm`
//! crate (its AVX2/AVX-512 kernels are chosen at run time); small ones (the toy
//! network's), and all of them without the feature (notebooks), through ndarray's own
//! product (matrixmultiply). The
//! training steps split the large ones in two halves on two threads themselves
//! (`dense.rs`, `par.rs`).
//! Measured on the 2-core target machine for the minibatch products of the MNIST run
//! (see docs/performance.md): `X W1` (100x784 by 784x64) 247 us with ndarray's
//! matrixmultiply, 192 us with `gemm` on one thread, 120 us split in two; `X^T dZ`
//! 225 / 203 / 122 us.

use ndarray::{ArrayView2, ArrayViewMut2};

/// Below this many multiply-adds a product stays on one thread: the split's
/// synchronisation would cost more than it saves.
pub(crate) const PARALLEL_MIN_WORK: usize = 400_000;

#[cfg(feature = "gemm")]
/// Below this many multiply-adds, ndarray's `general_mat_mul` (matrixmultiply) is used:
/// it is as fast there, and it is the arithmetic the toy checks were first matched with.
const SMALL_WORK: usize = 20_000;

/// `c = a b` for `a` `(m, k)`, `b` `(k, n)`, `c` `(m, n)`, on this thread. `c`'s
/// previous contents are overwritten. Any strides (transposed views included).
pub(crate) fn matmul_into(a: ArrayView2<f64>, b: ArrayView2<f64>, c: &mut ArrayViewMut2<f64>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert!(b.nrows() == k && c.dim() == (m, n), "matmul shapes: internal invariant");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(0.0);
        return;
    }
    #[cfg(feature = "gemm")]
    if m * n * k >= SMALL_WORK {
        return gemm_into(a, b, c);
    }
    // small products (the toy network's), or all of them without the `gemm` feature
    ndarray::linalg::general_mat_mul(1.0, &a, &b, 0.0, c);
}

/// `c = a b` with the `gemm` crate's kernels.
#[cfg(feature = "gemm")]
fn gemm_into(a: ArrayView2<f64>, b: ArrayView2<f64>, c: &mut ArrayViewMut2<f64>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    // SAFETY: the pointers and strides describe exactly the three views, which are
    // valid for their shapes; `c` is borrowed mutably, so it cannot overlap `a` or `b`.
    // With read_dst = false, gemm writes c = 1.0 * (a b) without reading c.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c.strides()[1],
            c.strides()[0],
            false,
            a.as_ptr(),
            a.strides()[1],
            a.strides()[0],
            b.as_ptr(),
            b.strides()[1],
            b.strides()[0],
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn check(m: usize, k: usize, n: usize) {
        let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j) % 13) as f64 * 0.25);
        let expected = a.dot(&b);
        let mut c = Array2::from_elem((m, n), f64::NAN);
        matmul_into(a.view(), b.view(), &mut c.view_mut());
        assert_eq!(c, expected, "{m}x{k}x{n}");
        // transposed operands, as the backward pass uses them
        let mut ct = Array2::from_elem((n, m), f64::NAN);
        matmul_into(b.t(), a.t(), &mut ct.view_mut());
        assert_eq!(ct, expected.t());
    }

    #[test]
    fn products_match_ndarray_dot() {
        // small integers and quarters: every product is exact in any summation order
        for (m, k, n) in [
            (1, 1, 1),
            (5, 4, 10),
            (100, 784, 64),
            (784, 100, 64),
            (3, 0, 2),
            (1000, 784, 64),
            (10, 64, 300),
        ] {
            check(m, k, n);
        }
    }
}
