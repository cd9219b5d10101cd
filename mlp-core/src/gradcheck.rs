//! Numerical gradient checking, as the problem set's `utils.eval_numerical_gradient`
//! and the notebook's `rel_error`; the parameters by name, to loop over them.

use ndarray::{
    Array, ArrayD, ArrayView, ArrayViewD, ArrayViewMutD, AsArray, Dimension, Ix1, Ix2, Zip,
};

use crate::check::check_positive;
use crate::error::{MlpError, Result};
use crate::model::{Param, Params, TwoLayerMLP};
use crate::penalty::Reg;

/// The centred-difference gradient of `f` at `x`: for each entry `x[i]`, set it to
/// `x[i] + h`, evaluate `f`, set it to `x[i] - h`, evaluate `f`, restore it, and take
/// `(f(x + h) - f(x - h)) / (2h)`. `x` is perturbed in place and left as it was.
/// The result has `x`'s shape. Any error from `f` is returned (and `x` restored).
///
/// ```
/// use mlp_core::eval_numerical_gradient;
/// use ndarray::array;
/// // f(x) = sum x^2 has gradient 2x
/// let mut x = array![1.0, -2.0, 0.5];
/// let g = eval_numerical_gradient(|v| Ok(v.iter().map(|a| a * a).sum()), &mut x, 1e-5)?;
/// assert!((g[1] + 4.0).abs() < 1e-8);
/// # Ok::<(), mlp_core::MlpError>(())
/// ```
pub fn eval_numerical_gradient<D, F>(
    mut f: F,
    x: &mut Array<f64, D>,
    h: f64,
) -> Result<Array<f64, D>>
where
    D: Dimension,
    F: FnMut(ArrayView<f64, D>) -> Result<f64>,
{
    check_positive("h", h)?;
    // An owned array is contiguous; walk its memory in order, and write each
    // derivative at the same place of `grad`, which has the same layout.
    let mut grad = x.clone();
    for k in 0..x.len() {
        let old = *entry(x, k);
        *entry(x, k) = old + h;
        let plus = f(x.view());
        *entry(x, k) = old - h;
        let minus = f(x.view());
        *entry(x, k) = old;
        *entry(&mut grad, k) = (plus? - minus?) / (2.0 * h);
    }
    Ok(grad)
}

/// The `k`-th entry of an owned array in memory order.
fn entry<D: Dimension>(a: &mut Array<f64, D>, k: usize) -> &mut f64 {
    &mut a.as_slice_memory_order_mut().expect("owned arrays are contiguous")[k]
}

/// The relative error `max |x - y| / max(1e-8, |x| + |y|)` taken elementwise, as the
/// problem set's `rel_error`. `x` and `y` must have the same shape.
pub fn rel_error<'a, 'b, D: Dimension + 'a + 'b>(
    x: impl AsArray<'a, f64, D>,
    y: impl AsArray<'b, f64, D>,
) -> Result<f64> {
    let (x, y) = (x.into(), y.into());
    if x.shape() != y.shape() {
        return Err(MlpError::ShapeMismatch {
            what: "rel_error: y".to_string(),
            expected: x.shape().to_vec(),
            found: y.shape().to_vec(),
        });
    }
    if x.is_empty() {
        return Err(MlpError::EmptyInput { what: "rel_error input" });
    }
    let mut worst = f64::NEG_INFINITY;
    Zip::from(&x).and(&y).for_each(|&a, &b| {
        let e = (a - b).abs() / (a.abs() + b.abs()).max(1e-8);
        // a NaN anywhere makes the result NaN, as np.max does
        worst = if e.is_nan() || worst.is_nan() { f64::NAN } else { worst.max(e) };
    });
    Ok(worst)
}

impl Params {
    /// One parameter by name, as an n-dimensional view.
    pub fn get(&self, p: Param) -> ArrayViewD<'_, f64> {
        match p {
            Param::W1 => self.w1.view().into_dyn(),
            Param::B1 => self.b1.view().into_dyn(),
            Param::W2 => self.w2.view().into_dyn(),
            Param::B2 => self.b2.view().into_dyn(),
        }
    }

    /// One parameter by name, mutable.
    pub fn get_mut(&mut self, p: Param) -> ArrayViewMutD<'_, f64> {
        match p {
            Param::W1 => self.w1.view_mut().into_dyn(),
            Param::B1 => self.b1.view_mut().into_dyn(),
            Param::W2 => self.w2.view_mut().into_dyn(),
            Param::B2 => self.b2.view_mut().into_dyn(),
        }
    }
}

#[cfg(feature = "solutions")]
impl TwoLayerMLP {
    /// The numerical gradient of the loss for one parameter, by centred differences
    /// with step `h` ([`eval_numerical_gradient`]): to check [`TwoLayerMLP::loss`]'s.
    pub fn numerical_gradient<'a, 'b>(
        &self,
        param: Param,
        x: impl AsArray<'a, f64, Ix2>,
        y: impl AsArray<'b, usize, Ix1>,
        reg: impl Into<Reg>,
        h: f64,
    ) -> Result<ArrayD<f64>> {
        let (x, y, reg) = (x.into(), y.into(), reg.into());
        self.loss(x, y, reg)?; // (the checks, once)
        let mut net = self.clone();
        let mut value = self.params.get(param).to_owned();
        eval_numerical_gradient(
            |v| {
                net.params.get_mut(param).assign(&v);
                Ok(net.loss(x, y, reg)?.0)
            },
            &mut value,
            h,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn numerical_gradient_of_a_quadratic_is_2x_and_restores_x() {
        let mut x = array![[1.0, -2.0], [0.5, 3.0]];
        let before = x.clone();
        let g =
            eval_numerical_gradient(|v| Ok(v.iter().map(|a| a * a).sum()), &mut x, 1e-5).unwrap();
        assert_eq!(x, before);
        for (gi, xi) in g.iter().zip(x.iter()) {
            assert!((gi - 2.0 * xi).abs() < 1e-8, "{gi} vs {}", 2.0 * xi);
        }
    }

    #[test]
    fn numerical_gradient_rejects_non_positive_step() {
        let mut x = array![1.0];
        let err = eval_numerical_gradient(|_| Ok(0.0), &mut x, 0.0).unwrap_err();
        assert!(matches!(err, MlpError::InvalidHyperparameter { name: "h", .. }));
    }

    #[test]
    fn numerical_gradient_passes_errors_through_and_restores_x() {
        let mut x = array![1.0, 2.0];
        let err = eval_numerical_gradient(|_| Err(MlpError::ZeroSize { name: "n" }), &mut x, 1e-5)
            .unwrap_err();
        assert!(matches!(err, MlpError::ZeroSize { .. }));
        assert_eq!(x, array![1.0, 2.0]);
    }

    #[test]
    fn rel_error_follows_the_problem_set_formula() {
        let x = array![1.0, 2.0, 0.0];
        let y = array![1.1, 2.0, 0.0];
        // |1 - 1.1| / 2.1 is the largest; 0 vs 0 uses the 1e-8 floor and gives 0
        assert!((rel_error(&x, &y).unwrap() - 0.1 / 2.1).abs() < 1e-15);
    }

    #[test]
    fn rel_error_rejects_mismatching_shapes() {
        let err = rel_error(&array![1.0, 2.0], &array![1.0]).unwrap_err();
        assert_eq!(err.to_string(), "rel_error: y: expected shape [2], found [1]");
    }

    #[test]
    fn rel_error_propagates_nan() {
        assert!(rel_error(&array![1.0, f64::NAN], &array![1.0, 1.0]).unwrap().is_nan());
    }
}
