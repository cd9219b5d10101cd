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

use ndarray::{
    Array1, Array2, ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut1, ArrayViewMut2,
    ArrayViewMutD, AsArray, Axis, Ix1, Ix2, Zip,
};

use crate::error::{MlpError, Result, check_non_negative, check_nonzero};
use crate::gradcheck::eval_numerical_gradient;
use crate::matmul::{PARALLEL_MIN_WORK, matmul_into, par_matmul_into};
use crate::rng::NumpyRng;
use crate::sparse::OffsetSparse;

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
    /// Each row's cross-entropy, `(n,)`.
    row_loss: Vec<f64>,
    /// For a sparse batch, each thread's columns of the hidden layer `(n, w)` (see
    /// [`sparse_sgd_step`]), and its columns of `S^T dz1` `(D, w)`: all zero between
    /// steps.
    columns: [Array2<f64>; 2],
    dw1: [Array2<f64>; 2],
    /// `W1`'s columns in two blocks `(D, w)`, one per thread of a sparse step: in one
    /// array the two threads' halves of each row were neighbouring cache lines, and
    /// the cores took them from each other at every step (the half-width step ran no
    /// faster on two threads than the whole on one).
    panels: [Array2<f64>; 2],
    /// What the last [`sgd_step`] computed for the next one (see there).
    carried: Carried,
    /// `c W1` for a sparse batch in two parts (the rows of `W1` each thread updated),
    /// from the last [`sgd_step`] if `carried.shift`; and `c W1` for the current step.
    shift_parts: [Vec<f64>; 2],
    shift: Vec<f64>,
}

/// What an [`sgd_step`] computes for the next step's loss and forward pass while it
/// updates `W1`. Only valid while nothing else changes the parameters in between (as in
/// training); a new [`Workspace`] has none of it.
#[derive(Clone, Copy, Debug, Default)]
struct Carried {
    /// `sum(W1^2)` in numpy's pairwise order.
    w1_squares: Option<f64>,
    /// Whether `Workspace::shift_parts` hold `c W1` for the current `W1`.
    shift: bool,
    /// Whether `Workspace::panels` hold the current `W1` (the parameters' copy is then
    /// up to date only after [`Workspace::sync_w1`]).
    panels: bool,
}

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

impl Workspace {
    pub(crate) fn new(n: usize, hidden: usize, classes: usize) -> Self {
        Workspace {
            hidden: aligned_zeros(n, hidden),
            scores: aligned_zeros(n, classes),
            dhidden: aligned_zeros(n, hidden),
            row_loss: vec![0.0; n],
            columns: Default::default(),
            dw1: Default::default(),
            panels: Default::default(),
            carried: Carried::default(),
            shift_parts: Default::default(),
            shift: Vec::new(),
        }
    }

    /// Bring `w1` up to date with the last sparse steps, which kept it in
    /// `self.panels` (nothing to do otherwise).
    pub(crate) fn sync_w1(&self, w1: &mut Array2<f64>) {
        if self.carried.panels {
            let mut j0 = 0;
            for panel in &self.panels {
                let w = panel.ncols();
                w1.slice_mut(ndarray::s![.., j0..j0 + w]).assign(panel);
                j0 += w;
            }
        }
    }

    /// Sized for `n` rows (new buffers if it was not).
    /// What the last step carried over (see [`Carried`]) is kept.
    fn fit(&mut self, n: usize, hidden: usize, classes: usize) {
        if self.hidden.nrows() != n {
            let old = std::mem::replace(self, Workspace::new(n, hidden, classes));
            self.carried = old.carried;
            self.shift_parts = old.shift_parts;
            self.panels = old.panels;
        }
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
        let mut hidden = Array2::zeros((x.nrows(), self.hidden_size()));
        let mut scores = Array2::zeros((x.nrows(), self.output_size()));
        forward_rows(
            self.params.views(),
            self.activation,
            Rows::Dense(x),
            &mut hidden.view_mut(),
            &mut scores.view_mut(),
        );
        Ok(scores)
    }

    /// The predicted class of each row of `X` `(N, D)`: the argmax of its scores,
    /// shape `(N,)`. Ties go to the lowest class, as `np.argmax`.
    pub fn predict<'a>(&self, x: impl AsArray<'a, f64, Ix2>) -> Result<Array1<usize>> {
        let x = x.into();
        self.check_x("predict", x, false)?;
        let mut out = vec![0; x.nrows()];
        self.with_helper_for(x, || self.predict_into(Rows::Dense(x), &mut out));
        Ok(Array1::from(out))
    }

    /// The fraction of rows of `X` `(N, D)` whose prediction equals `y` `(N,)`.
    pub fn accuracy<'a, 'b>(
        &self,
        x: impl AsArray<'a, f64, Ix2>,
        y: impl AsArray<'b, usize, Ix1>,
    ) -> Result<f64> {
        let (x, y) = (x.into(), y.into());
        self.check_xy("accuracy", x, y)?;
        Ok(self.with_helper_for(x, || self.accuracy_unchecked(Rows::Dense(x), y)))
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
        let loss = self.with_helper_for(x, || {
            loss_and_grads(
                self.params.views(),
                self.activation,
                x,
                &y,
                reg,
                &mut ws,
                &mut grads,
            )
        });
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

    /// Argmax predictions into `out` (`len ==` the number of rows), in blocks so that
    /// memory stays bounded for large `X`.
    pub(crate) fn predict_into(&self, x: Rows, out: &mut [usize]) {
        match row_split(x.len(), self.input_size() * self.hidden_size()) {
            None => self.predict_blocks(x, out),
            Some(half) => {
                let (x0, x1) = x.split_at(half);
                let (o0, o1) = out.split_at_mut(half);
                crate::par::join(
                    || self.predict_blocks(x0, o0),
                    || self.predict_blocks(x1, o1),
                );
            }
        }
    }

    /// Run `f` with a second thread available (see `par.rs`) when `x` is large enough
    /// for the forward pass to be split; on this thread alone otherwise.
    fn with_helper_for<R>(&self, x: ArrayView2<f64>, f: impl FnOnce() -> R) -> R {
        if x.nrows() * x.ncols() * self.hidden_size() >= PARALLEL_MIN_WORK {
            crate::par::with_helper(f)
        } else {
            f()
        }
    }

    /// Argmax predictions on this thread, in blocks of rows.
    fn predict_blocks(&self, x: Rows, out: &mut [usize]) {
        const BLOCK: usize = 1000;
        let (h, c) = (self.hidden_size(), self.output_size());
        let mut hidden = aligned_zeros(BLOCK.min(x.len()), h);
        let mut scores = aligned_zeros(BLOCK.min(x.len()), c);
        for (start, ob) in (0..x.len()).step_by(BLOCK).zip(out.chunks_mut(BLOCK)) {
            let rows = ob.len();
            let xb = x.slice(start, start + rows);
            let mut hb = hidden.slice_mut(ndarray::s![..rows, ..]);
            let mut sb = scores.slice_mut(ndarray::s![..rows, ..]);
            forward_rows(self.params.views(), self.activation, xb, &mut hb, &mut sb);
            for (row, o) in sb.rows().into_iter().zip(ob.iter_mut()) {
                *o = argmax(row);
            }
        }
    }

    /// The accuracy on rows `rows` of a sparse matrix with labels `y`.
    pub(crate) fn accuracy_sparse(
        &self,
        s: &OffsetSparse,
        rows: &[usize],
        y: ArrayView1<usize>,
    ) -> f64 {
        let mut shift = vec![0.0; self.hidden_size()];
        s.offset_times(&contiguous(self.params.w1.view()), &mut shift);
        let x = Rows::Sparse {
            s,
            rows,
            shift: &shift,
        };
        self.accuracy_unchecked(x, y)
    }

    pub(crate) fn accuracy_unchecked(&self, x: Rows, y: ArrayView1<usize>) -> f64 {
        let mut pred = vec![0usize; x.len()];
        self.predict_into(x, &mut pred);
        let correct = pred.iter().zip(y.iter()).filter(|(p, t)| p == t).count();
        correct as f64 / y.len() as f64
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
    // the common case first: a pass over contiguous memory without early exits (which
    // vectorises), in two halves on two threads for a large X (it is bound by memory
    // bandwidth: 28 ms on one core for MNIST's 50,000 rows); the indexed search below
    // only runs to name a bad entry
    let finite = |v: &[f64]| {
        v.chunks(64)
            .all(|c| c.iter().fold(true, |ok, x| ok & x.is_finite()))
    };
    if let Some(v) = x.as_slice_memory_order() {
        let (a, b) = v.split_at(v.len() / 2);
        let (a, b) = crate::par::join_if(v.len() >= PARALLEL_MIN_WORK, || finite(a), || finite(b));
        if a && b {
            return Ok(());
        }
    }
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

/// Where to split `n` rows of work between two threads, if it pays: the rows of a
/// batch are independent until the gradients are summed over them.
pub(crate) fn row_split(n: usize, work_per_row: usize) -> Option<usize> {
    (n >= 2 && n * work_per_row >= PARALLEL_MIN_WORK && crate::par::threads() >= 2).then_some(n / 2)
}

/// The inputs of a block of rows, as the first layer reads them.
#[derive(Clone, Copy)]
pub(crate) enum Rows<'a> {
    /// `X`'s rows in place.
    Dense(ArrayView2<'a, f64>),
    /// Rows `rows` of `X = S + 1 c^T` (see `sparse.rs`), with `shift = c W1` for the
    /// current `W1`.
    Sparse {
        s: &'a OffsetSparse,
        rows: &'a [usize],
        shift: &'a [f64],
    },
}

impl<'a> Rows<'a> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Rows::Dense(x) => x.nrows(),
            Rows::Sparse { rows, .. } => rows.len(),
        }
    }

    /// Rows `start..end`.
    fn slice(self, start: usize, end: usize) -> Self {
        match self {
            Rows::Dense(x) => Rows::Dense(x.slice_move(ndarray::s![start..end, ..])),
            Rows::Sparse { s, rows, shift } => Rows::Sparse {
                s,
                rows: &rows[start..end],
                shift,
            },
        }
    }

    /// The rows before `half` and from `half` on.
    fn split_at(self, half: usize) -> (Self, Self) {
        (self.slice(0, half), self.slice(half, self.len()))
    }
}

/// The forward pass for a block of rows: `hidden = act(X W1 + b1)` `(n, H)`,
/// `scores = hidden W2 + b2` `(n, C)`.
fn forward_rows(
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
fn first_layer(p: ParamViews, act: Activation, x: Rows, hidden: &mut ArrayViewMut2<f64>) {
    let b1 = contiguous(p.b1);
    match x {
        Rows::Dense(x) => {
            // z1 = X W1, then + b1 and the activation in one pass
            matmul_into(x, p.w1, hidden);
            for row in hidden.rows_mut() {
                with_slice(row, |z| {
                    z.iter_mut()
                        .zip(b1.iter())
                        .for_each(|(z, &b)| *z = act.apply(*z + b))
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
                with_slice(row, |z| crate::fastexp::activate(act, z, shift, &b1));
            }
        }
    }
}

/// `scores = hidden W2 + b2` for a block of rows.
fn second_layer(p: ParamViews, hidden: ArrayView2<f64>, scores: &mut ArrayViewMut2<f64>) {
    matmul_into(hidden, p.w2, scores);
    for mut row in scores.rows_mut() {
        row += &p.b2;
    }
}

/// Forward pass, softmax cross-entropy and the backward pass down to `dL/dz1` for a
/// block of rows of a batch of `n` rows. Each row's loss goes to `w.row_loss`;
/// `w.scores` ends as `dL/dscores = (probs - onehot(y)) / n` and `w.dhidden` as `dL/dz1`.
fn rows_pass(p: ParamViews, act: Activation, x: Rows, y: &[usize], n: f64, mut w: WorkspaceRows) {
    w.prefetch();
    first_layer(p, act, x, &mut w.hidden);
    rows_backward(p, act, y, n, w);
}

/// [`rows_pass`] from `w.hidden` on: the second layer, softmax cross-entropy and the
/// backward pass down to `dL/dz1`.
fn rows_backward(p: ParamViews, act: Activation, y: &[usize], n: f64, w: WorkspaceRows) {
    let WorkspaceRows {
        hidden,
        mut scores,
        mut dhidden,
        row_loss,
    } = w;
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
    Zip::from(&mut dhidden)
        .and(&hidden)
        .for_each(|d, &h| *d *= act.derivative_from_output(h));
}

/// One row of scores `s` with correct class `label`, in a batch of `n`: returns
/// `-ln softmax(s)[label] = ln sum_j exp(s_j - max) - (s_label - max)` and leaves
/// `dL/ds = (softmax(s) - onehot(label)) / n` in `s`.
fn softmax_cross_entropy_row(s: &mut [f64], label: usize, n: f64) -> f64 {
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

/// A block of rows of a [`Workspace`].
struct WorkspaceRows<'w> {
    hidden: ArrayViewMut2<'w, f64>,
    scores: ArrayViewMut2<'w, f64>,
    dhidden: ArrayViewMut2<'w, f64>,
    row_loss: &'w mut [f64],
}

impl WorkspaceRows<'_> {
    /// These rows were read by the other core since this one last wrote them (the
    /// dW1 and dW2 products read all rows): ask for them back, writable, at once.
    fn prefetch(&self) {
        for a in [&self.hidden, &self.scores, &self.dhidden] {
            if let Some(v) = a.as_slice() {
                crate::simd::prefetch_write(v);
            }
        }
    }
}

impl Workspace {
    /// All rows, or the rows before and after `half`.
    fn all_rows(&mut self) -> WorkspaceRows<'_> {
        WorkspaceRows {
            hidden: self.hidden.view_mut(),
            scores: self.scores.view_mut(),
            dhidden: self.dhidden.view_mut(),
            row_loss: &mut self.row_loss,
        }
    }

    fn split_rows(&mut self, half: usize) -> (WorkspaceRows<'_>, WorkspaceRows<'_>) {
        let (h0, h1) = self.hidden.view_mut().split_at(Axis(0), half);
        let (s0, s1) = self.scores.view_mut().split_at(Axis(0), half);
        let (d0, d1) = self.dhidden.view_mut().split_at(Axis(0), half);
        let (l0, l1) = self.row_loss.split_at_mut(half);
        (
            WorkspaceRows {
                hidden: h0,
                scores: s0,
                dhidden: d0,
                row_loss: l0,
            },
            WorkspaceRows {
                hidden: h1,
                scores: s1,
                dhidden: d1,
                row_loss: l1,
            },
        )
    }
}

/// Forward and backward pass. Returns the loss; writes the gradients into `grads`.
/// The rows are split between two threads up to `dL/dz1`, and `dW1`'s rows after that;
/// every sum over the batch is taken in row order, so the result does not depend on
/// the split.
fn loss_and_grads(
    p: ParamViews,
    act: Activation,
    x: ArrayView2<f64>,
    y: &[usize],
    reg: f64,
    ws: &mut Workspace,
    grads: &mut Grads,
) -> f64 {
    let loss = loss_and_grads_but_w1(p, act, x, y, reg, Carried::default(), ws, grads);
    // dW2 = hidden^T dscores + reg W2 (H, C)
    matmul_into(ws.hidden.t(), ws.scores.view(), &mut grads.w2.view_mut());
    axpy(grads.w2.view_mut(), reg, p.w2);
    // dW1 = X^T dz1 + reg W1 (D, H)
    par_matmul_into(x.t(), ws.dhidden.view(), &mut grads.w1.view_mut());
    axpy(grads.w1.view_mut(), reg, p.w1);
    loss
}

/// Everything of [`loss_and_grads`] but `dW1` and `dW2` for the batch `x`: returns the
/// loss; `ws.dhidden` holds `dL/dz1` and `ws.scores` `dL/dscores`, from which
/// `dW1 = X^T dz1 + reg W1` and `dW2 = hidden^T dscores + reg W2` follow.
/// `carried` is what the last SGD step computed for this one, if anything.
#[allow(clippy::too_many_arguments)]
fn loss_and_grads_but_w1(
    p: ParamViews,
    act: Activation,
    x: ArrayView2<f64>,
    y: &[usize],
    reg: f64,
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
            crate::par::join(
                || rows_pass(p, act, x0, &y[..half], n as f64, w0),
                || rows_pass(p, act, x1, &y[half..], n as f64, w1),
            );
        }
    }
    let w1_squares = carried
        .w1_squares
        .unwrap_or_else(|| sum_of_squares_split(p.w1));
    let loss = batch_loss(p, &ws.row_loss, w1_squares, reg);

    // db2 = sum_rows dscores (C,)
    sum_rows_into(ws.scores.view(), &mut grads.b2);
    // db1 = sum_rows dz1 (H,)
    sum_rows_into(ws.dhidden.view(), &mut grads.b1);
    loss
}

/// The loss of a batch from its rows' cross-entropies and `sum(W1^2)`:
/// `mean(row_loss) + reg/2 (sum(W1^2) + sum(W2^2))`, the other sums in numpy's order.
fn batch_loss(p: ParamViews, row_loss: &[f64], w1_squares: f64, reg: f64) -> f64 {
    let data_loss = pairwise_sum(row_loss, |l| l) / row_loss.len() as f64;
    data_loss + 0.5 * reg * w1_squares + 0.5 * reg * sum_of_squares(p.w2)
}

/// Rows `idx` of `src` into `buf`, each thread copying the rows it then uses.
fn gather_rows<'b>(
    src: ArrayView2<f64>,
    idx: &[usize],
    buf: &'b mut Array2<f64>,
    hidden: usize,
) -> ArrayView2<'b, f64> {
    let gather = |idx: &[usize], mut rows: ArrayViewMut2<f64>| {
        // touch every source row first: independent loads that overlap their cache
        // and TLB misses, instead of one miss per row while copying
        let touched = idx.iter().fold(0.0, |acc, &i| acc + src[[i, 0]]);
        std::hint::black_box(touched);
        for (mut row, &i) in rows.rows_mut().into_iter().zip(idx) {
            row.assign(&src.row(i));
        }
    };
    match row_split(idx.len(), src.ncols() * hidden) {
        None => gather(idx, buf.view_mut()),
        Some(half) => {
            let (b0, b1) = buf.view_mut().split_at(Axis(0), half);
            crate::par::join(|| gather(&idx[..half], b0), || gather(&idx[half..], b1));
        }
    }
    buf.view()
}

/// One SGD step on a batch: loss and gradients as [`loss_and_grads`], then
/// `param -= learning_rate * grad` for all four. Returns the loss (before the step) and
/// `|dW1|` (Frobenius). A sparse batch takes [`sparse_sgd_step`]; for a dense one, each
/// thread computes its half of the rows of `dW1` and updates the same rows of `W1` at
/// once, while they are in its cache, and the same for its half of `dW2`'s rows.
///
/// What the next step needs of the new `W1` is taken here, by each thread over the
/// half it has just updated, and kept in `ws` (see [`Carried`]): `sum(W1^2)` for the
/// loss.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgd_step(
    params: &mut Params,
    act: Activation,
    input: Input,
    y: &[usize],
    reg: f64,
    learning_rate: f64,
    ws: &mut Workspace,
    grads: &mut Grads,
) -> (f64, f64) {
    let (d, h) = params.w1.dim();
    let x = match input {
        Input::Sparse { s, idx, next } => {
            let batch = (s, idx, next);
            return sparse_sgd_step(params, act, batch, y, (reg, learning_rate), ws, grads);
        }
        Input::Gather { src, idx, buf } => gather_rows(src, idx, buf, h),
    };
    ws.sync_w1(&mut params.w1);
    let carried = std::mem::take(&mut ws.carried);
    let loss = loss_and_grads_but_w1(params.views(), act, x, y, reg, carried, ws, grads);
    let half = row_split(d, y.len() * h);
    // the W1 squares come out in numpy's order (pairwise_sum's) if the halves are its
    // first split
    let n = d * h;
    let numpy_halves = half.is_none_or(|half| n > 128 && half * h == n / 2 - (n / 2) % 8);
    let hidden = ws.hidden.view();
    let dscores = ws.scores.view();
    let dz = ws.dhidden.view();
    // Each thread: its rows of W1 (dW1 rows = X[:, rows]^T dz1 + reg W1 rows, |dW1
    // rows|^2, the update, |W1 rows|^2), then its hidden units' rows of W2.
    let step =
        |xs: ArrayView2<f64>, mut w: ArrayViewMut2<f64>, mut g: ArrayViewMut2<f64>, w2: W2Rows| {
            matmul_into(xs.t(), dz, &mut g);
            axpy(g.view_mut(), reg, w.view());
            let squares = sum_of_squares(g.view());
            axpy(w.view_mut(), -learning_rate, g.view());
            let w1_squares = if numpy_halves {
                sum_of_squares(w.view())
            } else {
                f64::NAN
            };
            w2_step(hidden, dscores, w2, reg, learning_rate);
            (squares, w1_squares)
        };
    let half = half.unwrap_or(d);
    let (x0, x1) = x.split_at(Axis(1), half);
    let (w0, w1) = params.w1.view_mut().split_at(Axis(0), half);
    let (g0, g1) = grads.w1.view_mut().split_at(Axis(0), half);
    let [w2a, w2b] = w2_rows(&mut params.w2, &mut grads.w2, half < d);
    let ((s0, q0), (s1, q1)) =
        crate::par::join_if(half < d, || step(x0, w0, g0, w2a), || step(x1, w1, g1, w2b));
    ws.carried = Carried {
        w1_squares: numpy_halves.then_some(q0 + q1),
        shift: false,
        panels: false,
    };
    params.b1.scaled_add(-learning_rate, &grads.b1);
    params.b2.scaled_add(-learning_rate, &grads.b2);
    (loss, (s0 + s1).sqrt())
}

/// A block of `W2`'s rows (hidden units `j0..`) and the same rows of `dW2`.
type W2Rows<'a> = (usize, ArrayViewMut2<'a, f64>, ArrayViewMut2<'a, f64>);

/// `W2` and `dW2` in two blocks of rows, split in the middle when `split` (for two
/// threads), else all in the first.
fn w2_rows<'a>(w2: &'a mut Array2<f64>, g2: &'a mut Array2<f64>, split: bool) -> [W2Rows<'a>; 2] {
    let h = w2.nrows();
    let j_half = if split { h / 2 } else { h };
    let (w2a, w2b) = w2.view_mut().split_at(Axis(0), j_half);
    let (g2a, g2b) = g2.view_mut().split_at(Axis(0), j_half);
    [(0, w2a, g2a), (j_half, w2b, g2b)]
}

/// `dW2 rows = hidden[:, rows]^T dscores + reg W2 rows` for a block of `W2`'s rows,
/// and their update.
fn w2_step(
    hidden: ArrayView2<f64>,
    dscores: ArrayView2<f64>,
    (j0, mut w2, mut g2): W2Rows,
    reg: f64,
    learning_rate: f64,
) {
    let cols = hidden.slice(ndarray::s![.., j0..j0 + w2.nrows()]);
    matmul_into(cols.t(), dscores, &mut g2);
    axpy(g2.view_mut(), reg, w2.view());
    axpy(w2.view_mut(), -learning_rate, g2.view());
}

/// [`sgd_step`] for rows `idx` of `X = S + 1 c^T` (see `sparse.rs`): the same
/// parameters to the bit as the dense products' chains in row order (the loss's
/// `sum(W1^2)` and `|dW1|` are summed in another order: the last bits differ), with the
/// work split between the two threads so that each keeps its data in its own core's
/// caches:
///
/// 1. by hidden units: each thread computes its half of the hidden layer's columns
///    for all rows, `act(S W1[:, half] + c W1[:, half] + b1[half])`, from its half of
///    `W1`'s columns (which only it ever reads or writes);
/// 2. by rows: each thread takes its half of the batch through the second layer, the
///    softmax and back to `dz1`, as [`rows_pass`] does; and the sum of the squares of
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
fn sparse_sgd_step(
    params: &mut Params,
    act: Activation,
    (s, idx, next): (&OffsetSparse, &[usize], &[usize]),
    y: &[usize],
    (reg, learning_rate): (f64, f64),
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
    if !carried.panels
        || ws
            .panels
            .iter()
            .zip(fresh)
            .any(|(a, (_, w))| a.dim() != (d, w))
    {
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
                    crate::fastexp::activate(act, row, c, b);
                }
            }
        };
        let [z0, z1] = &mut ws.columns;
        let [pa, pb] = &ws.panels;
        crate::par::join_if(two, || layer(0, pa, z0), || layer(j_half, pb, z1));
    }

    // 2. by rows: the rest of the forward pass, back to dz1; sum(W1^2) for the loss
    let p = params.views();
    // sum(W1^2): each thread over its own panel, in numpy's order within it (so all
    // in numpy's order on one thread). numpy's order across the two panels would need
    // each thread to read half of the other's panel at every step, and the other to
    // take those cache lines back for its update: that made the step 60% slower where
    // the cores share no cache. The loss differs from numpy's in the last bits only;
    // nothing else depends on it.
    let (columns, panels) = (
        std::mem::take(&mut ws.columns),
        std::mem::take(&mut ws.panels),
    );
    let panel_squares = |t: usize| {
        let p: &Array2<f64> = &panels[t];
        p.as_slice().map_or(0.0, |v| pairwise_sum(v, |x| x * x))
    };
    let [z0, z1] = &columns;
    let tail = |r0: usize, mut w: WorkspaceRows| {
        w.prefetch();
        let r1 = r0 + w.hidden.nrows();
        for (part, j0) in [(z0, 0), (z1, j_half)] {
            let cols = part.slice(ndarray::s![r0..r1, ..]);
            w.hidden
                .slice_mut(ndarray::s![.., j0..j0 + part.ncols()])
                .assign(&cols);
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
            crate::par::join(
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
            let ahead = if j0 == 0 {
                &next[..next.len() / 2]
            } else {
                &next[next.len() / 2..]
            };
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
    let (s0, s1) = crate::par::join_if(
        two,
        || update(0, w1a, acc0, db1a, [p0a, p1a], w2a),
        || update(j_half, w1b, acc1, db1b, [p0b, p1b], w2b),
    );
    ws.shift = shift;
    ws.carried = Carried {
        w1_squares: None,
        shift: true,
        panels: true,
    };
    params.b1.scaled_add(-learning_rate, &grads.b1);
    params.b2.scaled_add(-learning_rate, &grads.b2);
    (loss, (s0 + s1).sqrt())
}

/// The `W1` update of [`sparse_sgd_step`] for a block of rows of its columns, row by
/// row: `g = (S^T dz1 + c db1^T) + reg W1`, from `acc = S^T dz1` (left zero), then
/// `W1 -= learning_rate g`; `c[k] W1[k]` (new) summed into `parts[0]` for the rows
/// before `mid`, `parts[1]` after; element `j` of `g^2` added to `lanes[j % 16]`.
/// Compiled for the widest instruction set, like the gathers.
fn update_columns(
    (c, mid): (&[f64], usize),
    w1: &mut [f64],
    acc: &mut [f64],
    db1: &[f64],
    (reg, learning_rate): (f64, f64),
    lanes: &mut [f64; 16],
    parts: [&mut [f64]; 2],
) {
    crate::simd::dispatch_fn(
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
                    update_step(&mut sums, g, w, db, (ck, reg, learning_rate));
                }
                let (g, w, db) = (gs.into_remainder(), ws.into_remainder(), ds.remainder());
                update_step(&mut sums, g, w, db, (ck, reg, learning_rate));
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

/// Up to sixteen elements of a row of [`update_columns`]: `g = (acc + ck db) + reg w`,
/// `w -= learning_rate g`, `lanes[j] += g^2`, `acc = 0`. A function of its own, so
/// that the compiler knows the slices apart and, given whole chunks of 16, vectorises
/// it (as a closure over slices it was a scalar loop).
#[inline(always)]
fn update_step(
    lanes: &mut [f64],
    acc: &mut [f64],
    w: &mut [f64],
    db: &[f64],
    (ck, reg, learning_rate): (f64, f64, f64),
) {
    for (l, ((g, w), &db)) in lanes.iter_mut().zip(acc.iter_mut().zip(w).zip(db)) {
        let gk = (*g + ck * db) + reg * *w;
        *w += -learning_rate * gk;
        *l += gk * gk;
        *g = 0.0;
    }
}

/// A batch for an SGD step: rows to be gathered, or rows of a sparse matrix.
pub(crate) enum Input<'a> {
    /// Rows `idx` of `src`, copied into `buf` `(idx.len(), D)` first.
    Gather {
        src: ArrayView2<'a, f64>,
        idx: &'a [usize],
        buf: &'a mut Array2<f64>,
    },
    /// Rows `idx` of `s`, read where they are; `next`, the next step's rows (to be
    /// asked for early), if known.
    Sparse {
        s: &'a OffsetSparse,
        idx: &'a [usize],
        next: &'a [usize],
    },
}

/// `a`'s entries in row-major order: borrowed when they are contiguous already.
fn contiguous<'a, D: ndarray::Dimension>(
    a: ndarray::ArrayView<'a, f64, D>,
) -> std::borrow::Cow<'a, [f64]> {
    match a.to_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(a.iter().copied().collect()),
    }
}

/// Run `f` on `row` as a slice (through a copy if the row is not contiguous).
fn with_slice<R>(mut row: ndarray::ArrayViewMut1<f64>, f: impl FnOnce(&mut [f64]) -> R) -> R {
    if let Some(r) = row.as_slice_mut() {
        return f(r);
    }
    let mut copy = row.to_vec();
    let result = f(&mut copy);
    row.assign(&ArrayView1::from(&copy));
    result
}

/// [`with_slice`] for a matrix: its entries in row-major order.
fn with_rows_slice<R>(a: &mut ArrayViewMut2<f64>, f: impl FnOnce(&mut [f64]) -> R) -> R {
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

/// [`sum_of_squares`], its two halves on two threads when numpy's pairwise order splits
/// the entries between two rows (as it does for 784 x 64): the same double either way.
pub(crate) fn sum_of_squares_split(a: ArrayView2<f64>) -> f64 {
    match square_halves(a) {
        None => sum_of_squares(a),
        Some((a0, a1)) => {
            let (s0, s1) = crate::par::join(|| sum_of_squares(a0), || sum_of_squares(a1));
            s0 + s1
        }
    }
}

/// The two blocks of rows whose [`sum_of_squares`] add up to `a`'s (numpy's pairwise
/// order splits the entries between two rows), when a second thread can take one.
fn square_halves(a: ArrayView2<f64>) -> Option<(ArrayView2<f64>, ArrayView2<f64>)> {
    let (d, h) = a.dim();
    let n = d * h;
    let n2 = n / 2 - (n / 2) % 8;
    if n < PARALLEL_MIN_WORK / 8
        || h == 0
        || n2 % h != 0
        || !a.is_standard_layout()
        || crate::par::threads() < 2
    {
        return None;
    }
    Some(a.split_at(Axis(0), n2 / h))
}

/// The sum of the squares of all entries, as numpy's `np.sum(a * a)` adds them
/// (pairwise, [`pairwise_sum`]), in memory order.
pub(crate) fn sum_of_squares(a: ArrayView2<f64>) -> f64 {
    match a.as_slice_memory_order() {
        Some(v) => pairwise_sum(v, |w| w * w),
        None => pairwise_sum(&a.iter().copied().collect::<Vec<f64>>(), |w| w * w),
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

/// `out = a.sum(axis=0)`, without allocating: rows added in order (a plain loop over
/// contiguous rows where it can, which vectorises; ndarray's per-row `+=` cost more in
/// calls than in additions at 100 x 64).
fn sum_rows_into(a: ArrayView2<f64>, out: &mut Array1<f64>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_arrays_start_a_cache_line() {
        for (r, c) in [(0, 4), (784, 64), (100, 10), (3, 5)] {
            let a = aligned_zeros(r, c);
            assert_eq!(a.dim(), (r, c));
            assert!(a.is_standard_layout() && a.iter().all(|&x| x == 0.0));
            if r * c == 0 {
                continue; // (no element to align)
            }
            assert_eq!(a.as_ptr().align_offset(64), 0, "{r} x {c}");
            // an array that is not: copied into one, the same values
            let b = Array2::from_shape_fn((r, c + 1), |(i, j)| (i * 7 + j) as f64);
            let mut columns = b.slice_move(ndarray::s![.., 1..]);
            let want = columns.to_owned();
            make_aligned(&mut columns);
            assert_eq!(columns, want);
            assert!(columns.is_standard_layout());
            assert_eq!(columns.as_ptr().align_offset(64), 0);
        }
    }

    #[test]
    fn sums_are_numpys_to_the_last_bit() {
        // np.random.seed(0); a = np.random.randn(r, c); np.sum(a * a) (and np.sum(a))
        let sq = |r, c| sum_of_squares(NumpyRng::new(0).randn(r, c).view());
        assert_eq!(sq(784, 64), 49886.11859285609);
        assert_eq!(sq(4, 10), 49.2195742210083);
        assert_eq!(sq(1, 100), 101.94036179371047);
        let v = NumpyRng::new(0).randn(1, 100);
        assert_eq!(pairwise_sum(v.as_slice().unwrap(), |x| x), 5.9808015534485);
        // split over two threads, the same double
        let w1 = NumpyRng::new(0).randn(784, 64);
        let split = crate::par::with_helper(|| sum_of_squares_split(w1.view()));
        assert_eq!(split, 49886.11859285609);
    }
}
