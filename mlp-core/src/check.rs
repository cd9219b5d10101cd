//! Input validation, in one place for the model, the engine and the data loaders:
//! each check returns the [`MlpError`] that names the bad value and how to fix it.

use ndarray::{ArrayView1, ArrayView2};

use crate::error::{MlpError, Result};

/// `X` against a network with `d` inputs: `d` columns, at least one row, finite values.
pub(crate) fn check_x(what: &'static str, x: ArrayView2<f64>, d: usize) -> Result<()> {
    if x.ncols() != d {
        return Err(MlpError::InputSizeMismatch { what, expected: d, found: x.ncols() });
    }
    if x.nrows() == 0 {
        return Err(MlpError::EmptyInput { what: "X" });
    }
    check_finite("X", x)
}

/// `X` and `y` together for `d` inputs and `c` classes: [`check_x`], one label per
/// row, labels in `0..c`.
pub(crate) fn check_xy(
    what: &'static str,
    x: ArrayView2<f64>,
    y: ArrayView1<usize>,
    d: usize,
    c: usize,
) -> Result<()> {
    check_x(what, x, d)?;
    if x.nrows() != y.len() {
        return Err(MlpError::RowsLabelsMismatch { what, rows: x.nrows(), labels: y.len() });
    }
    check_labels(what, y, c)
}

/// Reject NaN and infinities, naming the first one found.
pub(crate) fn check_finite(what: &'static str, x: ArrayView2<f64>) -> Result<()> {
    // the common case first: a pass without early exits over contiguous memory, which
    // vectorises; the indexed search below only runs to name a bad entry
    let all_finite =
        |v: &[f64]| v.chunks(64).all(|c| c.iter().fold(true, |ok, x| ok & x.is_finite()));
    if x.as_slice_memory_order().is_some_and(all_finite) {
        return Ok(());
    }
    match x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        Some(((row, col), &value)) => Err(MlpError::NonFinite { what, row, col, value }),
        None => Ok(()),
    }
}

/// Reject labels `>= num_classes`, naming the first one found.
pub(crate) fn check_labels(
    what: &'static str,
    y: ArrayView1<usize>,
    num_classes: usize,
) -> Result<()> {
    match y.iter().position(|&label| label >= num_classes) {
        Some(index) => Err(MlpError::LabelOutOfRange { what, index, label: y[index], num_classes }),
        None => Ok(()),
    }
}

/// The shapes of `W1`, `b1`, `W2`, `b2` agree with each other: `(D, H)`, `(H,)`,
/// `(H, C)`, `(C,)`, none of the sizes zero.
pub(crate) fn check_params([w1, b1, w2, b2]: [&[usize]; 4]) -> Result<()> {
    let (d, h) = (w1[0], w1[1]);
    let c = w2[1];
    check_nonzero("input_size", d)?;
    check_nonzero("hidden_size", h)?;
    check_nonzero("output_size", c)?;
    let expect = |what: &str, expected: Vec<usize>, found: &[usize]| {
        if expected == found {
            Ok(())
        } else {
            Err(MlpError::ShapeMismatch { what: what.to_string(), expected, found: found.to_vec() })
        }
    };
    expect("b1", vec![h], b1)?;
    expect("W2", vec![h, c], w2)?;
    expect("b2", vec![c], b2)
}

/// Check that `value` is finite and `>= 0`.
pub(crate) fn check_non_negative(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(MlpError::InvalidHyperparameter { name, value, requirement: "finite and >= 0" })
    }
}

/// Check that `value` is finite and `> 0`.
pub(crate) fn check_positive(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(MlpError::InvalidHyperparameter { name, value, requirement: "finite and > 0" })
    }
}

/// Check that a size is at least 1.
pub(crate) fn check_nonzero(name: &'static str, value: usize) -> Result<()> {
    if value == 0 { Err(MlpError::ZeroSize { name }) } else { Ok(()) }
}

/// `name()`, `Display` and a case-insensitive `FromStr` (an unknown name is
/// [`MlpError::UnknownChoice`], listing the valid ones) for an enum of named choices:
/// `choice!(Type, "what it is", [Variant "name", ...]);`
macro_rules! choice {
    ($ty:ident, $what:literal, [$($variant:ident $name:literal),+]) => {
        impl $ty {
            /// The name the problem set uses.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::error::MlpError;

            fn from_str(s: &str) -> $crate::error::Result<Self> {
                [$($ty::$variant),+]
                    .into_iter()
                    .find(|v| v.name().eq_ignore_ascii_case(s))
                    .ok_or_else(|| $crate::error::MlpError::UnknownChoice {
                        what: $what,
                        value: s.to_string(),
                        expected: concat!($($name, ", "),+).trim_end_matches(", "),
                    })
            }
        }
    };
}
pub(crate) use choice;
