//! The weight penalties of Problem 3: L2, the problem set's, and L1.

use ndarray::{ArrayBase, Data, Dimension};

use crate::check::choice;
use crate::sums::numpy_sum_of;

/// The weight penalty (biases have none): `L2` adds `0.5 reg (sum W1^2 + sum W2^2)` to
/// the loss and `reg W` to the gradients; `L1` adds `reg (sum |W1| + sum |W2|)` and
/// `reg sign(W)`, with `sign(0) = 0`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Penalty {
    #[default]
    L2,
    L1,
}
choice!(Penalty, "regularization", [L2 "l2", L1 "l1"]);

impl Penalty {
    /// The factor before `reg (sum + sum)` in the loss: `0.5` for L2, `1` for L1.
    pub fn factor(self) -> f64 {
        if self == Penalty::L2 { 0.5 } else { 1.0 }
    }

    /// `sum w^2` (L2) or `sum |w|` (L1) over `w`'s entries, added in numpy's order.
    pub fn sum<S: Data<Elem = f64>, D: Dimension>(self, w: &ArrayBase<S, D>) -> f64 {
        match self {
            Penalty::L2 => numpy_sum_of(w, |x| x * x),
            Penalty::L1 => numpy_sum_of(w, f64::abs),
        }
    }

    /// The gradient of one weight's penalty, over `reg`: `w` (L2) or `sign(w)` (L1).
    #[inline]
    pub fn grad(self, w: f64) -> f64 {
        match self {
            Penalty::L2 => w,
            Penalty::L1 => f64::from(u8::from(w > 0.0)) - f64::from(u8::from(w < 0.0)),
        }
    }
}

/// A penalty and its strength, as [`TwoLayerMLP::loss`](crate::TwoLayerMLP::loss) takes it: a plain number is
/// L2 (`net.loss(&x, &y, 0.1)`), [`Reg::l1`] the other.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reg {
    pub penalty: Penalty,
    pub strength: f64,
}

impl Reg {
    /// `L1` at `strength`.
    pub fn l1(strength: f64) -> Self {
        Reg { penalty: Penalty::L1, strength }
    }
}

impl From<f64> for Reg {
    fn from(strength: f64) -> Self {
        Reg { penalty: Penalty::L2, strength }
    }
}
