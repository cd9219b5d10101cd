//! The buffers a training step reuses, so that training allocates nothing per
//! minibatch, and what one step leaves computed for the next.

use ndarray::{Array2, ArrayViewMut2, Axis};

use super::arrays::aligned_zeros;

/// Buffers reused between calls of the forward/backward pass, so training does not
/// allocate per minibatch. Sized for `n` rows.
#[derive(Clone, Debug)]
pub(crate) struct Workspace {
    /// Hidden activations `h = act(X W1 + b1)`, `(n, H)`.
    pub(super) hidden: Array2<f64>,
    /// Scores, then probabilities, then `dL/dscores`, `(n, C)`.
    pub(super) scores: Array2<f64>,
    /// `dL/dh`, then `dL/dz1`, `(n, H)`.
    pub(super) dhidden: Array2<f64>,
    /// Each row's cross-entropy, `(n,)`.
    pub(super) row_loss: Vec<f64>,
    /// For a sparse batch, each thread's columns of the hidden layer `(n, w)` (see
    /// [`super::sparse_step::sparse_sgd_step`]), and its columns of `S^T dz1` `(D, w)`: all zero between
    /// steps.
    pub(super) columns: [Array2<f64>; 2],
    pub(super) dw1: [Array2<f64>; 2],
    /// `W1`'s columns in two blocks `(D, w)`, one per thread of a sparse step: in one
    /// array the two threads' halves of each row were neighbouring cache lines, and
    /// the cores took them from each other at every step (the half-width step ran no
    /// faster on two threads than the whole on one).
    pub(super) panels: [Array2<f64>; 2],
    /// What the last [`super::sgd_step`] computed for the next one (see there).
    pub(super) carried: Carried,
    /// `c W1` for a sparse batch in two parts (the rows of `W1` each thread updated),
    /// from the last [`super::sgd_step`] if `carried.shift`; and `c W1` for the current step.
    pub(super) shift_parts: [Vec<f64>; 2],
    pub(super) shift: Vec<f64>,
}

/// What an [`super::sgd_step`] computes for the next step's loss and forward pass while it
/// updates `W1`. Only valid while nothing else changes the parameters in between (as in
/// training); a new [`Workspace`] has none of it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Carried {
    /// `pen.sum(W1)` (`sum(W1^2)` for L2) in numpy's pairwise order.
    pub(super) w1_penalty: Option<f64>,
    /// Whether `Workspace::shift_parts` hold `c W1` for the current `W1`.
    pub(super) shift: bool,
    /// Whether `Workspace::panels` hold the current `W1` (the parameters' copy is then
    /// up to date only after [`Workspace::sync_w1`]).
    pub(super) panels: bool,
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
    pub(super) fn fit(&mut self, n: usize, hidden: usize, classes: usize) {
        if self.hidden.nrows() != n {
            let old = std::mem::replace(self, Workspace::new(n, hidden, classes));
            self.carried = old.carried;
            self.shift_parts = old.shift_parts;
            self.panels = old.panels;
        }
    }
}

/// A block of rows of a [`Workspace`].
pub(super) struct WorkspaceRows<'w> {
    pub(super) hidden: ArrayViewMut2<'w, f64>,
    pub(super) scores: ArrayViewMut2<'w, f64>,
    pub(super) dhidden: ArrayViewMut2<'w, f64>,
    pub(super) row_loss: &'w mut [f64],
}

impl WorkspaceRows<'_> {
    /// These rows were read by the other core since this one last wrote them (the
    /// dW1 and dW2 products read all rows): ask for them back, writable, at once.
    pub(super) fn prefetch(&self) {
        for a in [&self.hidden, &self.scores, &self.dhidden] {
            if let Some(v) = a.as_slice() {
                super::simd::prefetch_write(v);
            }
        }
    }
}

impl Workspace {
    /// All rows, or the rows before and after `half`.
    pub(super) fn all_rows(&mut self) -> WorkspaceRows<'_> {
        WorkspaceRows {
            hidden: self.hidden.view_mut(),
            scores: self.scores.view_mut(),
            dhidden: self.dhidden.view_mut(),
            row_loss: &mut self.row_loss,
        }
    }

    pub(super) fn split_rows(&mut self, half: usize) -> (WorkspaceRows<'_>, WorkspaceRows<'_>) {
        let (h0, h1) = self.hidden.view_mut().split_at(Axis(0), half);
        let (s0, s1) = self.scores.view_mut().split_at(Axis(0), half);
        let (d0, d1) = self.dhidden.view_mut().split_at(Axis(0), half);
        let (l0, l1) = self.row_loss.split_at_mut(half);
        (
            WorkspaceRows { hidden: h0, scores: s0, dhidden: d0, row_loss: l0 },
            WorkspaceRows { hidden: h1, scores: s1, dhidden: d1, row_loss: l1 },
        )
    }
}
