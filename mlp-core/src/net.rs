//! The two-layer network: parameters, forward pass, softmax cross-entropy loss
//! with L2, and the backward pass written out by hand.
//!
//! Dimensions are named once and used everywhere:
//! `N` examples, `D` input size, `H` hidden size, `C` classes.
//!
//! | parameter | shape    |
//! |-----------|----------|
//! | `W1`      | `(D, H)` |
//! | `b1`      | `(H,)`   |
//! | `W2`      | `(H, C)` |
//! | `b2`      | `(C,)`   |

use std::fmt;
use std::str::FromStr;

use ndarray::linalg::general_mat_mul;
use ndarray::{
    Array1, Array2, ArrayView1, ArrayView2, ArrayViewD, ArrayViewMutD, AsArray, Axis, Ix1, Ix2, Zip,
};

use crate::error::{MlpError, Result, check_non_negative, check_nonzero};
use crate::gradcheck::eval_numerical_gradient;
use crate::rng::NumpyRng;

/// The hidden layer's nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `1 / (1 + exp(-z))`
    Sigmoid,
    /// `max(0, z)`
    Relu,
}

impl Activation {
    /// The name the problem set uses (`"sigmoid"`, `"relu"`).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Relu => "relu",
        }
    }

    /// Apply the activation to a pre-activation value.
    #[inline]
    pub fn apply(self, z: f64) -> f64 {
        match self {
            Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
            Activation::Relu => z.max(0.0),
        }
    }

    /// The local derivative, written in terms of the activation's *output* `h`
    /// (what the forward pass kept): `h (1 - h)` for sigmoid, `1[h > 0]` for ReLU.
    #[inline]
    pub fn derivative_from_output(self, h: f64) -> f64 {
        match self {
            Activation::Sigmoid => h * (1.0 - h),
            Activation::Relu => {
                if h > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = MlpError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sigmoid" => Ok(Activation::Sigmoid),
            "relu" => Ok(Activation::Relu),
            _ => Err(MlpError::UnknownChoice {
                what: "activation",
                value: s.to_string(),
                expected: "sigmoid, relu",
            }),
        }
    }
}

/// The name of one parameter, as the keys of the problem set's `params` dict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Param {
    W1,
    B1,
    W2,
    B2,
}

impl Param {
    /// All four, in the order the problem set creates them.
    pub const ALL: [Param; 4] = [Param::W1, Param::B1, Param::W2, Param::B2];

    /// `"W1"`, `"b1"`, `"W2"` or `"b2"`.
    pub fn name(self) -> &'static str {
        match self {
            Param::W1 => "W1",
            Param::B1 => "b1",
            Param::W2 => "W2",
            Param::B2 => "b2",
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Param {
    type Err = MlpError;

    fn from_str(s: &str) -> Result<Self> {
        Param::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| MlpError::UnknownChoice {
                what: "parameter",
                value: s.to_string(),
                expected: "W1, b1, W2, b2",
            })
    }
}

/// The four parameters (or, returned by [`TwoLayerMLP::loss`], their gradients:
/// the same names and shapes).
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// First-layer weights, `(D, H)`.
    pub w1: Array2<f64>,
    /// First-layer biases, `(H,)`.
    pub b1: Array1<f64>,
    /// Second-layer weights, `(H, C)`.
    pub w2: Array2<f64>,
    /// Second-layer biases, `(C,)`.
    pub b2: Array1<f64>,
}

/// Gradients have the same names and shapes as the parameters.
pub type Grads = Params;

impl Params {
    /// All zeros for sizes `D`, `H`, `C`.
    pub fn zeros(input_size: usize, hidden_size: usize, output_size: usize) -> Self {
        Params {
            w1: Array2::zeros((input_size, hidden_size)),
            b1: Array1::zeros(hidden_size),
            w2: Array2::zeros((hidden_size, output_size)),
            b2: Array1::zeros(output_size),
        }
    }

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

    fn views(&self) -> ParamViews<'_> {
        ParamViews {
            w1: self.w1.view(),
            b1: self.b1.view(),
            w2: self.w2.view(),
            b2: self.b2.view(),
        }
    }
}

/// Borrowed parameters: what the forward/backward pass reads.
#[derive(Clone, Copy)]
struct ParamViews<'a> {
    w1: ArrayView2<'a, f64>,
    b1: ArrayView1<'a, f64>,
    w2: ArrayView2<'a, f64>,
    b2: ArrayView1<'a, f64>,
}

/// Buffers reused between calls of the forward/backward pass, so training does not
/// allocate per minibatch. Sized for `n` rows.
#[derive(Clone, Debug)]
pub(crate) struct Workspace {
    /// Hidden activations `h = act(X W1 + b1)`, `(n, H)`.
    hidden: Array2<f64>,
    /// Scores, then probabilities, then `dL/dscores`, `(n, C)`.
    scores: Array2<f64>,
    /// `dL/dh`, then `dL/dz1`, `(n, H)`.
    dhidden: Array2<f64>,
}

impl Workspace {
    pub(crate) fn new(n: usize, hidden: usize, classes: usize) -> Self {
        Workspace {
            hidden: Array2::zeros((n, hidden)),
            scores: Array2::zeros((n, classes)),
            dhidden: Array2::zeros((n, hidden)),
        }
    }

    fn rows(&self) -> usize {
        self.hidden.nrows()
    }
}

/// A fully-connected network with one hidden layer and a softmax output:
/// `scores = act(X W1 + b1) W2 + b2`.
///
/// ```
/// use mlp_core::{Activation, NumpyRng, TwoLayerMLP};
/// let mut rng = NumpyRng::new(0);
/// let net = TwoLayerMLP::new(4, 10, 3, 0.1, Activation::Sigmoid, &mut rng)?;
/// let x = ndarray::Array2::<f64>::zeros((2, 4));
/// assert_eq!(net.scores(&x)?.dim(), (2, 3));
/// # Ok::<(), mlp_core::MlpError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TwoLayerMLP {
    /// The parameters; change them freely (shapes must stay).
    pub params: Params,
    /// The hidden nonlinearity.
    pub activation: Activation,
}

impl TwoLayerMLP {
    /// A network with `W1 = std * randn(D, H)`, `b1 = 0`, `W2 = std * randn(H, C)`,
    /// `b2 = 0`, drawn in that order from `rng` (as the problem set's constructor
    /// draws from numpy's global generator).
    pub fn new(
        input_size: usize,
        hidden_size: usize,
        output_size: usize,
        std: f64,
        activation: Activation,
        rng: &mut NumpyRng,
    ) -> Result<Self> {
        check_nonzero("input_size", input_size)?;
        check_nonzero("hidden_size", hidden_size)?;
        check_nonzero("output_size", output_size)?;
        check_non_negative("std", std)?;
        let w1 = rng.randn(input_size, hidden_size).mapv_into(|v| std * v);
        let w2 = rng.randn(hidden_size, output_size).mapv_into(|v| std * v);
        Ok(TwoLayerMLP {
            params: Params {
                w1,
                b1: Array1::zeros(hidden_size),
                w2,
                b2: Array1::zeros(output_size),
            },
            activation,
        })
    }

    /// A network with the given parameters, after checking their shapes agree.
    pub fn from_params(params: Params, activation: Activation) -> Result<Self> {
        let (d, h) = params.w1.dim();
        let c = params.w2.ncols();
        check_nonzero("input_size", d)?;
        check_nonzero("hidden_size", h)?;
        check_nonzero("output_size", c)?;
        let expect = |what: &str, expected: Vec<usize>, found: &[usize]| {
            if expected == found {
                Ok(())
            } else {
                Err(MlpError::ShapeMismatch {
                    what: what.to_string(),
                    expected,
                    found: found.to_vec(),
                })
            }
        };
        expect("b1", vec![h], params.b1.shape())?;
        expect("W2", vec![h, c], params.w2.shape())?;
        expect("b2", vec![c], params.b2.shape())?;
        Ok(TwoLayerMLP { params, activation })
    }

    /// `D`.
    pub fn input_size(&self) -> usize {
        self.params.w1.nrows()
    }

    /// `H`.
    pub fn hidden_size(&self) -> usize {
        self.params.w1.ncols()
    }

    /// `C`.
    pub fn output_size(&self) -> usize {
        self.params.w2.ncols()
    }

    /// Class scores (logits) for `X` of shape `(N, D)`: shape `(N, C)`.
    /// This is the problem set's `loss(X)` without labels.
    pub fn scores<'a>(&self, x: impl AsArray<'a, f64, Ix2>) -> Result<Array2<f64>> {
        let x = x.into();
        self.check_x("scores", x, false)?;
        let mut ws = Workspace::new(x.nrows(), self.hidden_size(), self.output_size());
        forward(self.params.views(), self.activation, x, &mut ws);
        Ok(ws.scores)
    }

    /// The predicted class of each row of `X` `(N, D)`: the argmax of its scores,
    /// shape `(N,)`. Ties go to the lowest class, as `np.argmax`.
    pub fn predict<'a>(&self, x: impl AsArray<'a, f64, Ix2>) -> Result<Array1<usize>> {
        let x = x.into();
        self.check_x("predict", x, false)?;
        let mut out = Array1::zeros(x.nrows());
        self.predict_into(
            x,
            out.view_mut()
                .into_slice()
                .expect("fresh array is contiguous"),
        );
        Ok(out)
    }

    /// The fraction of rows of `X` `(N, D)` whose prediction equals `y` `(N,)`.
    pub fn accuracy<'a, 'b>(
        &self,
        x: impl AsArray<'a, f64, Ix2>,
        y: impl AsArray<'b, usize, Ix1>,
    ) -> Result<f64> {
        let (x, y) = (x.into(), y.into());
        self.check_xy("accuracy", x, y)?;
        Ok(self.accuracy_unchecked(x, y))
    }

    /// Loss and gradients for `X` `(N, D)` with labels `y` `(N,)`:
    /// mean softmax cross-entropy plus `0.5 * reg * (sum W1^2 + sum W2^2)`.
    /// The gradients have the parameters' names and shapes.
    pub fn loss<'a, 'b>(
        &self,
        x: impl AsArray<'a, f64, Ix2>,
        y: impl AsArray<'b, usize, Ix1>,
        reg: f64,
    ) -> Result<(f64, Grads)> {
        let (x, y) = (x.into(), y.into());
        self.check_xy("loss", x, y)?;
        check_non_negative("reg", reg)?;
        let mut ws = Workspace::new(x.nrows(), self.hidden_size(), self.output_size());
        let mut grads = Params::zeros(self.input_size(), self.hidden_size(), self.output_size());
        let y: Vec<usize> = y.to_vec();
        let loss = loss_and_grads(
            self.params.views(),
            self.activation,
            x,
            &y,
            reg,
            &mut ws,
            &mut grads,
        );
        Ok((loss, grads))
    }

    /// The numerical gradient of the loss with respect to one parameter, by centred
    /// differences with step `h` (see [`eval_numerical_gradient`]). Shape: the
    /// parameter's. Use it to check [`TwoLayerMLP::loss`]'s analytic gradients.
    pub fn numerical_gradient<'a, 'b>(
        &self,
        param: Param,
        x: impl AsArray<'a, f64, Ix2>,
        y: impl AsArray<'b, usize, Ix1>,
        reg: f64,
        h: f64,
    ) -> Result<ndarray::ArrayD<f64>> {
        let (x, y) = (x.into(), y.into());
        self.check_xy("numerical_gradient", x, y)?;
        check_non_negative("reg", reg)?;
        let y: Vec<usize> = y.to_vec();
        let mut ws = Workspace::new(x.nrows(), self.hidden_size(), self.output_size());
        let mut scratch = Params::zeros(self.input_size(), self.hidden_size(), self.output_size());
        let mut value = self.params.get(param).to_owned();
        eval_numerical_gradient(
            |v| {
                let mut views = self.params.views();
                let v = v.view();
                match param {
                    Param::W1 => views.w1 = v.into_dimensionality().expect("W1 is 2-d"),
                    Param::B1 => views.b1 = v.into_dimensionality().expect("b1 is 1-d"),
                    Param::W2 => views.w2 = v.into_dimensionality().expect("W2 is 2-d"),
                    Param::B2 => views.b2 = v.into_dimensionality().expect("b2 is 1-d"),
                }
                Ok(loss_and_grads(
                    views,
                    self.activation,
                    x,
                    &y,
                    reg,
                    &mut ws,
                    &mut scratch,
                ))
            },
            &mut value,
            h,
        )
    }

    /// Validate `X` against the network: non-empty, `D` columns, finite values.
    pub(crate) fn check_x(
        &self,
        what: &'static str,
        x: ArrayView2<f64>,
        allow_empty: bool,
    ) -> Result<()> {
        if x.ncols() != self.input_size() {
            return Err(MlpError::InputSizeMismatch {
                what,
                expected: self.input_size(),
                found: x.ncols(),
            });
        }
        if !allow_empty && x.nrows() == 0 {
            return Err(MlpError::EmptyInput { what: "X" });
        }
        check_finite("X", x)
    }

    /// Validate `X` and `y` together: [`Self::check_x`], one label per row, labels in range.
    pub(crate) fn check_xy(
        &self,
        what: &'static str,
        x: ArrayView2<f64>,
        y: ArrayView1<usize>,
    ) -> Result<()> {
        self.check_x(what, x, false)?;
        if x.nrows() != y.len() {
            return Err(MlpError::RowsLabelsMismatch {
                what,
                rows: x.nrows(),
                labels: y.len(),
            });
        }
        check_labels(what, y, self.output_size())
    }

    /// Argmax predictions into `out` (`len == X.nrows()`), in blocks so that memory
    /// stays bounded for large `X`.
    pub(crate) fn predict_into(&self, x: ArrayView2<f64>, out: &mut [usize]) {
        const BLOCK: usize = 1000;
        let mut ws = Workspace::new(BLOCK.min(x.nrows()), self.hidden_size(), self.output_size());
        for (xb, ob) in x
            .axis_chunks_iter(Axis(0), BLOCK)
            .zip(out.chunks_mut(BLOCK))
        {
            if xb.nrows() != ws.rows() {
                ws = Workspace::new(xb.nrows(), self.hidden_size(), self.output_size());
            }
            forward(self.params.views(), self.activation, xb, &mut ws);
            for (row, o) in ws.scores.rows().into_iter().zip(ob.iter_mut()) {
                *o = argmax(row);
            }
        }
    }

    pub(crate) fn accuracy_unchecked(&self, x: ArrayView2<f64>, y: ArrayView1<usize>) -> f64 {
        let mut pred = vec![0usize; x.nrows()];
        self.predict_into(x, &mut pred);
        let correct = pred.iter().zip(y.iter()).filter(|(p, t)| p == t).count();
        correct as f64 / y.len() as f64
    }

    /// One forward/backward pass on a batch into reused buffers: returns the loss and
    /// fills `grads`. Inputs must already be validated.
    pub(crate) fn loss_into(
        &self,
        x: ArrayView2<f64>,
        y: &[usize],
        reg: f64,
        ws: &mut Workspace,
        grads: &mut Grads,
    ) -> f64 {
        loss_and_grads(self.params.views(), self.activation, x, y, reg, ws, grads)
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

/// Reject NaN and infinities, naming the first one found.
pub(crate) fn check_finite(what: &'static str, x: ArrayView2<f64>) -> Result<()> {
    for ((row, col), &value) in x.indexed_iter() {
        if !value.is_finite() {
            return Err(MlpError::NonFinite {
                what,
                row,
                col,
                value,
            });
        }
    }
    Ok(())
}

/// Reject labels `>= num_classes`, naming the first one found.
pub(crate) fn check_labels(
    what: &'static str,
    y: ArrayView1<usize>,
    num_classes: usize,
) -> Result<()> {
    match y.iter().position(|&label| label >= num_classes) {
        Some(index) => Err(MlpError::LabelOutOfRange {
            what,
            index,
            label: y[index],
            num_classes,
        }),
        None => Ok(()),
    }
}

/// Forward pass into `ws`: `hidden = act(X W1 + b1)`, `scores = hidden W2 + b2`.
fn forward(p: ParamViews, act: Activation, x: ArrayView2<f64>, ws: &mut Workspace) {
    // z1 = X W1, then + b1 and the activation in one pass: (n, H)
    general_mat_mul(1.0, &x, &p.w1, 0.0, &mut ws.hidden);
    for mut row in ws.hidden.rows_mut() {
        Zip::from(&mut row)
            .and(&p.b1)
            .for_each(|h, &b| *h = act.apply(*h + b));
    }
    // scores = hidden W2 + b2: (n, C)
    general_mat_mul(1.0, &ws.hidden, &p.w2, 0.0, &mut ws.scores);
    ws.scores += &p.b2;
}

/// Forward and backward pass. Returns the loss; writes the gradients into `grads`.
fn loss_and_grads(
    p: ParamViews,
    act: Activation,
    x: ArrayView2<f64>,
    y: &[usize],
    reg: f64,
    ws: &mut Workspace,
    grads: &mut Grads,
) -> f64 {
    let n = x.nrows();
    if ws.rows() != n {
        *ws = Workspace::new(n, p.w1.ncols(), p.w2.ncols());
    }
    forward(p, act, x, ws);

    // Softmax cross-entropy, shifted by each row's maximum for stability.
    // Each row of `scores` becomes its probabilities, then dL/dscores = (probs - onehot(y)) / N.
    let mut data_loss = 0.0;
    for (mut row, &label) in ws.scores.rows_mut().into_iter().zip(y) {
        let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let shifted_label = row[label] - max;
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|e| e / sum);
        data_loss += sum.ln() - shifted_label;
        row[label] -= 1.0;
        row.mapv_inplace(|d| d / n as f64);
    }
    let loss = data_loss / n as f64
        + 0.5 * reg * p.w1.iter().map(|w| w * w).sum::<f64>()
        + 0.5 * reg * p.w2.iter().map(|w| w * w).sum::<f64>();
    let dscores = &ws.scores;

    // Second layer: dW2 = hidden^T dscores + reg W2 (H, C); db2 = sum_rows dscores (C,)
    general_mat_mul(1.0, &ws.hidden.t(), dscores, 0.0, &mut grads.w2);
    grads.w2.scaled_add(reg, &p.w2);
    sum_rows_into(dscores.view(), &mut grads.b2);

    // Into the hidden layer: dhidden = dscores W2^T (n, H); dz1 = dhidden * act'(z1)
    general_mat_mul(1.0, dscores, &p.w2.t(), 0.0, &mut ws.dhidden);
    Zip::from(&mut ws.dhidden)
        .and(&ws.hidden)
        .for_each(|d, &h| *d *= act.derivative_from_output(h));

    // First layer: dW1 = X^T dz1 + reg W1 (D, H); db1 = sum_rows dz1 (H,)
    general_mat_mul(1.0, &x.t(), &ws.dhidden, 0.0, &mut grads.w1);
    grads.w1.scaled_add(reg, &p.w1);
    sum_rows_into(ws.dhidden.view(), &mut grads.b1);
    loss
}

/// `out = a.sum(axis=0)`, without allocating.
fn sum_rows_into(a: ArrayView2<f64>, out: &mut Array1<f64>) {
    out.fill(0.0);
    for row in a.rows() {
        *out += &row;
    }
}
