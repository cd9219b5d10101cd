//! The problem set's network, its loss and its gradients, as the problem set writes
//! them: `N` examples, `D` inputs, `H` hidden units, `C` classes; `W1 (D, H)`,
//! `b1 (H,)`, `W2 (H, C)`, `b2 (C,)`. Every line is a whole-batch ndarray
//! expression with its shape beside it. This is the code [`TwoLayerMLP::loss`],
//! [`TwoLayerMLP::scores`] and [`TwoLayerMLP::predict`] run, and what the gradient
//! check checks. Training runs a faster engine (`engine/`) held equal to it by tests.
//! (Both are the problem set's answers: they need the `solutions` feature, on by
//! default and off in the student edition.)

use ndarray::{Array1, Array2, ArrayView2, AsArray, Axis, Ix1, Ix2};

use crate::check::{check_non_negative, check_nonzero, check_params, check_x, check_xy, choice};
use crate::error::Result;
use crate::penalty::Reg;
use crate::rng::NumpyRng;
use crate::sums::numpy_sum;

/// The hidden layer's nonlinearity: `Sigmoid` `1 / (1 + exp(-z))`, `Relu` `max(0, z)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    Sigmoid,
    Relu,
}

#[cfg(feature = "solutions")]
impl Activation {
    /// `h = act(z)` for one pre-activation value.
    #[inline]
    pub fn apply(self, z: f64) -> f64 {
        match self {
            Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
            Activation::Relu => z.max(0.0),
        }
    }

    /// `dh/dz`, written with the output `h` the forward pass kept: `h (1 - h)` for
    /// sigmoid, `1[h > 0]` for ReLU.
    #[inline]
    pub fn derivative_from_output(self, h: f64) -> f64 {
        match self {
            Activation::Sigmoid => h * (1.0 - h),
            Activation::Relu => f64::from(u8::from(h > 0.0)),
        }
    }
}
choice!(Activation, "activation", [Sigmoid "sigmoid", Relu "relu"]);

/// One parameter's name, as the keys of the problem set's `params` dict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Param {
    W1,
    B1,
    W2,
    B2,
}
choice!(Param, "parameter", [W1 "W1", B1 "b1", W2 "W2", B2 "b2"]);

impl Param {
    /// All four, in the order the problem set creates them.
    pub const ALL: [Param; 4] = [Param::W1, Param::B1, Param::W2, Param::B2];
}

/// The four parameters; as [`Grads`], their gradients (the same names and shapes).
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub w1: Array2<f64>, // (D, H)
    pub b1: Array1<f64>, // (H,)
    pub w2: Array2<f64>, // (H, C)
    pub b2: Array1<f64>, // (C,)
}

/// Gradients have the same names and shapes as the parameters.
pub type Grads = Params;

impl Params {
    /// All zeros for sizes `D`, `H`, `C`.
    pub fn zeros(d: usize, h: usize, c: usize) -> Self {
        let (w1, w2) = (Array2::zeros((d, h)), Array2::zeros((h, c)));
        Params { w1, b1: Array1::zeros(h), w2, b2: Array1::zeros(c) }
    }
}

/// `scores = act(X W1 + b1) W2 + b2`, with a softmax on the scores.
#[derive(Clone, Debug)]
pub struct TwoLayerMLP {
    /// The parameters; change them freely (shapes must stay).
    pub params: Params,
    pub activation: Activation,
}

impl TwoLayerMLP {
    /// `W1 = std * randn(D, H)`, `b1 = 0`, `W2 = std * randn(H, C)`, `b2 = 0`, drawn in
    /// that order from `rng`, as the problem set's constructor draws from numpy's.
    pub fn new(
        d: usize,
        h: usize,
        c: usize,
        std: f64,
        act: Activation,
        rng: &mut NumpyRng,
    ) -> Result<Self> {
        check_nonzero("input_size", d)?;
        check_nonzero("hidden_size", h)?;
        check_nonzero("output_size", c)?;
        check_non_negative("std", std)?;
        let w1 = rng.randn(d, h) * std;
        let w2 = rng.randn(h, c) * std;
        let params = Params { w1, b1: Array1::zeros(h), w2, b2: Array1::zeros(c) };
        Ok(TwoLayerMLP { params, activation: act })
    }

    /// A network with the given parameters, after checking their shapes agree.
    pub fn from_params(params: Params, activation: Activation) -> Result<Self> {
        let Params { w1, b1, w2, b2 } = &params;
        check_params([w1.shape(), b1.shape(), w2.shape(), b2.shape()])?;
        Ok(TwoLayerMLP { params, activation })
    }

    /// `D`, `H` and `C`.
    pub fn input_size(&self) -> usize {
        self.params.w1.nrows()
    }
    pub fn hidden_size(&self) -> usize {
        self.params.w1.ncols()
    }
    pub fn output_size(&self) -> usize {
        self.params.w2.ncols()
    }
}

/// The mathematics: what the student edition asks the student to write (its notebooks
/// leave the `solutions` feature off, and these with it).
#[cfg(feature = "solutions")]
impl TwoLayerMLP {
    /// The forward pass: the hidden layer `h` `(N, H)` and the scores `(N, C)`.
    fn forward(&self, x: ArrayView2<f64>) -> (Array2<f64>, Array2<f64>) {
        let Params { w1, b1, w2, b2 } = &self.params;
        let z1 = x.dot(w1) + b1; //                           (N, H)
        let h = z1.mapv(|z| self.activation.apply(z)); //     (N, H)
        let scores = h.dot(w2) + b2; //                       (N, C)
        (h, scores)
    }

    /// Class scores for `X` `(N, D)`: `(N, C)` (the problem set's `loss(X)`).
    pub fn scores<'a>(&self, x: impl AsArray<'a, f64, Ix2>) -> Result<Array2<f64>> {
        let x = x.into();
        check_x("scores", x, self.input_size())?;
        Ok(self.forward(x).1)
    }

    /// Loss and gradients for `X` `(N, D)`, labels `y` `(N,)`: mean softmax
    /// cross-entropy plus the penalty: `0.5 * reg * (sum W1^2 + sum W2^2)` for a plain
    /// `reg`, `reg * (sum |W1| + sum |W2|)` for [`Reg::l1(reg)`](crate::Reg::l1).
    pub fn loss<'a, 'b>(
        &self,
        x: impl AsArray<'a, f64, Ix2>,
        y: impl AsArray<'b, usize, Ix1>,
        reg: impl Into<Reg>,
    ) -> Result<(f64, Grads)> {
        let (x, y) = (x.into(), y.into());
        check_xy("loss", x, y, self.input_size(), self.output_size())?;
        let Reg { penalty: pen, strength: reg } = reg.into();
        check_non_negative("reg", reg)?;
        let (n, act) = (x.nrows() as f64, self.activation);
        let Params { w1, w2, .. } = &self.params;

        // forward: h = act(X W1 + b1), scores = h W2 + b2
        let (h, scores) = self.forward(x); //                  (N, H), (N, C)
        // softmax, shifted by each row's maximum so that exp cannot overflow
        let max = scores.fold_axis(Axis(1), f64::NEG_INFINITY, |m, &s| m.max(s)); // (N,)
        let shifted = scores - max.insert_axis(Axis(1)); //    (N, C)
        let exp = shifted.exp(); //                            (N, C)
        let sum_exp = exp.sum_axis(Axis(1)).insert_axis(Axis(1)); // (N, 1)
        let probs = exp / &sum_exp; //                         (N, C)
        // loss_i = -ln probs[i, y_i] = ln sum_j exp(shifted_ij) - shifted[i, y_i]
        let correct = Array1::from_iter(y.iter().enumerate().map(|(i, &c)| shifted[[i, c]]));
        let data_loss = numpy_sum(&(sum_exp.remove_axis(Axis(1)).ln() - correct)) / n;
        let reg_loss = pen.factor() * reg * (pen.sum(w1) + pen.sum(w2));
        let loss = data_loss + reg_loss;

        // backward, from the loss to each parameter
        let mut dscores = probs; //          d loss / d scores = (probs - onehot(y)) / N
        for (i, &c) in y.iter().enumerate() {
            dscores[[i, c]] -= 1.0;
        }
        dscores /= n; //                                        (N, C)
        // scores = h W2 + b2
        let dw2 = h.t().dot(&dscores) + reg * w2.mapv(|w| pen.grad(w)); // (H, C)
        let db2 = dscores.sum_axis(Axis(0)); //                 (C,)
        let dh = dscores.dot(&w2.t()); //                       (N, H)
        // h = act(z1)
        let dz1 = dh * h.mapv(|h| act.derivative_from_output(h)); // (N, H)
        // z1 = X W1 + b1
        let dw1 = x.t().dot(&dz1) + reg * w1.mapv(|w| pen.grad(w)); // (D, H)
        let db1 = dz1.sum_axis(Axis(0)); //                     (H,)
        Ok((loss, Params { w1: dw1, b1: db1, w2: dw2, b2: db2 }))
    }

    /// The predicted class of each row of `X` `(N, D)`: the argmax of its scores
    /// `(N,)`; ties go to the lowest class, as `np.argmax`.
    pub fn predict<'a>(&self, x: impl AsArray<'a, f64, Ix2>) -> Result<Array1<usize>> {
        let x = x.into();
        check_x("predict", x, self.input_size())?;
        let scores = self.forward(x).1; //                      (N, C)
        let argmax = |row: ndarray::ArrayView1<f64>| {
            (0..row.len()).fold(0, |best, j| if row[j] > row[best] { j } else { best })
        };
        Ok(scores.map_axis(Axis(1), argmax))
    }

    /// The fraction of rows of `X` `(N, D)` whose prediction equals `y` `(N,)`.
    pub fn accuracy<'a, 'b>(
        &self,
        x: impl AsArray<'a, f64, Ix2>,
        y: impl AsArray<'b, usize, Ix1>,
    ) -> Result<f64> {
        let (x, y) = (x.into(), y.into());
        check_xy("accuracy", x, y, self.input_size(), self.output_size())?;
        let hits = self.predict(x)?.iter().zip(y).filter(|(p, t)| p == t).count();
        Ok(hits as f64 / y.len() as f64)
    }
}
