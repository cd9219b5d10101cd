//! Sums in numpy's order, so that a loss prints the problem set's digits.

use ndarray::{ArrayBase, Data, Dimension};

/// The sum of all entries of `a` in memory order, added as numpy's `np.sum` adds them
/// ([`pairwise_sum`]): the same double.
pub(crate) fn numpy_sum<S: Data<Elem = f64>, D: Dimension>(a: &ArrayBase<S, D>) -> f64 {
    numpy_sum_of(a, |x| x)
}

/// The sum of the squares of all entries, as `np.sum(a * a)` adds them.
pub(crate) fn sum_of_squares<S: Data<Elem = f64>, D: Dimension>(a: &ArrayBase<S, D>) -> f64 {
    numpy_sum_of(a, |x| x * x)
}

/// `np.sum(f(a))`: the sum of `f` of all entries of `a` in memory order, in numpy's order.
pub(crate) fn numpy_sum_of<S: Data<Elem = f64>, D: Dimension>(
    a: &ArrayBase<S, D>,
    f: impl Fn(f64) -> f64 + Copy,
) -> f64 {
    match a.as_slice_memory_order() {
        Some(v) => pairwise_sum(v, f),
        None => pairwise_sum(&a.iter().copied().collect::<Vec<f64>>(), f),
    }
}

/// The sum of `f(v[i])` in exactly the order of numpy's `pairwise_sum` for float64
/// (numpy/_core/src/umath/loops_utils.h.src): sequential below 8 terms, eight running
/// sums up to 128, halves (at a multiple of 8) above. So `np.sum` and this give the
/// same double.
pub(crate) fn pairwise_sum(v: &[f64], f: impl Fn(f64) -> f64 + Copy) -> f64 {
    let n = v.len();
    if n < 8 {
        v.iter().fold(0.0, |acc, &x| acc + f(x))
    } else if n <= 128 {
        let mut r = [0.0; 8];
        for (rj, &x) in r.iter_mut().zip(v) {
            *rj = f(x);
        }
        let whole = n - n % 8;
        for block in v[8..whole].chunks_exact(8) {
            for (rj, &x) in r.iter_mut().zip(block) {
                *rj += f(x);
            }
        }
        let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        v[whole..].iter().fold(res, |acc, &x| acc + f(x))
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&v[..n2], f) + pairwise_sum(&v[n2..], f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::NumpyRng;

    #[test]
    fn sums_are_numpys_to_the_last_bit() {
        // np.random.seed(0); a = np.random.randn(r, c); np.sum(a * a) (and np.sum(a))
        let sq = |r, c| sum_of_squares(&NumpyRng::new(0).randn(r, c));
        assert_eq!(sq(784, 64), 49886.11859285609);
        assert_eq!(sq(4, 10), 49.2195742210083);
        assert_eq!(sq(1, 100), 101.94036179371047);
        assert_eq!(numpy_sum(&NumpyRng::new(0).randn(1, 100)), 5.9808015534485);
    }
}
