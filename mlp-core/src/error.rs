//! The crate's one error type. Every variant names the offending value or size
//! and, where there is one, what to do about it.

use std::path::PathBuf;

use crate::pyfmt::py_float;

/// Everything a user of `mlp-core` can get wrong, or that can go wrong while
/// training or loading data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MlpError {
    /// A size that must be at least 1 is 0.
    #[error("{name} must be at least 1, got 0")]
    ZeroSize { name: &'static str },

    /// An array with no rows where data is needed.
    #[error("{what} is empty (0 rows): pass at least one example")]
    EmptyInput { what: &'static str },

    /// A real-valued setting that is negative, NaN or infinite.
    #[error("{name} must be {requirement}, got {}", py_float(*value))]
    InvalidHyperparameter { name: &'static str, value: f64, requirement: &'static str },

    /// X and y disagree on the number of examples.
    #[error("{what}: X has {rows} rows but y has {labels} labels; give exactly one label per row")]
    RowsLabelsMismatch { what: &'static str, rows: usize, labels: usize },

    /// X has a different number of columns than the network's input size.
    #[error(
        "{what}: X has {found} columns but the network expects input_size = {expected}; reshape X to (N, {expected})"
    )]
    InputSizeMismatch { what: &'static str, expected: usize, found: usize },

    /// A label is not a valid class index.
    #[error(
        "{what}: label {label} at index {index} is out of range; labels must be in 0..{num_classes}"
    )]
    LabelOutOfRange { what: &'static str, index: usize, label: usize, num_classes: usize },

    /// An array has a shape other than the one required.
    #[error("{what}: expected shape {expected:?}, found {found:?}")]
    ShapeMismatch { what: String, expected: Vec<usize>, found: Vec<usize> },

    /// NaN or infinity in input data.
    #[error("{what} contains a non-finite value ({}) at row {row}, column {col}; clean or rescale the data", py_float(*value))]
    NonFinite { what: &'static str, row: usize, col: usize, value: f64 },

    /// Training produced a NaN or infinite loss.
    #[error(
        "training diverged: the loss became {} at epoch {epoch}, iteration {iteration} (learning rate {}); lower the learning rate (try {})",
        py_float(*loss), py_float(*learning_rate), py_float(*suggested)
    )]
    Diverged { epoch: usize, iteration: usize, loss: f64, learning_rate: f64, suggested: f64 },

    /// A string that does not name a known choice (activation, parameter, dataset...).
    #[error("unknown {what} '{value}': expected one of {expected}")]
    UnknownChoice { what: &'static str, value: String, expected: &'static str },

    /// A data file is missing.
    #[error("{} not found: {hint}", path.display())]
    MissingFile { path: PathBuf, hint: String },

    /// A data file exists but is not what it should be.
    #[error("{} is corrupt: {reason}; delete it and run `make data` again", path.display())]
    CorruptFile { path: PathBuf, reason: String },

    /// A data file does not have the expected SHA-256.
    #[error(
        "{} has SHA-256 {found}, expected {expected}; delete it and run `make data` again",
        path.display()
    )]
    ChecksumMismatch { path: PathBuf, expected: String, found: String },

    /// A saved network's file (`.npy` weights or `model.json`) is not what it should be.
    #[error(
        "{} is not a saved network file: {reason}; save the network again (`mlp train --save DIR`, `net.save_npy(dir)`)",
        path.display()
    )]
    BadModelFile { path: PathBuf, reason: String },

    /// A function the student wrote returned something wrong: a result the harness or a
    /// check cannot use.
    #[error("your {function} is not right yet: {problem}; fix its cell and run it again")]
    StudentCode { function: &'static str, problem: String },

    /// A function the student has not finished: it returned nothing (an empty array)
    /// where there must be values. (A `todo!()` left in it panics instead: the cell that
    /// calls it stops with "not yet implemented".)
    #[error("your {function} is not finished: {problem}; write it and run its cell again")]
    Unfinished { function: &'static str, problem: String },

    /// The student's loss returned a gradient whose shape is not its parameter's (a
    /// mistake in their backward pass, such as a transposed product).
    #[error(
        "wrong shape: your {function} returned d{param} of shape {found:?}, but {param} is {expected:?}: a gradient must have its parameter's shape (check backward's d{param}{})",
        if found.len() == 2 && found.iter().rev().eq(expected.iter()) { "; it looks transposed" } else { "" }
    )]
    GradientShape {
        function: &'static str,
        param: &'static str,
        found: Vec<usize>,
        expected: Vec<usize>,
    },

    /// A checkpoint of the student edition: the student's value is not within the
    /// tolerance of the expected one.
    #[error(
        "{what} is off: yours is {yours}, expected {expected}; the difference {difference:.3e} is not below {tolerance:.0e}"
    )]
    CheckFailed { what: String, yours: f64, expected: f64, difference: f64, tolerance: f64 },

    /// A checkpoint of the student edition: a value that must stay below a bound (a
    /// gradient check's relative error) is not.
    #[error("{what} is {value:e}, not below {bound:.0e}: the gradient it checks is not right yet")]
    CheckTooLarge { what: String, value: f64, bound: f64 },

    /// A history to plot has nothing in it, or holds NaN/inf.
    #[error("cannot plot {what}: {reason}")]
    BadPlotData { what: String, reason: String },

    /// Drawing a figure failed.
    #[error("plotting failed: {0}")]
    Plot(String),

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with [`MlpError`].
pub type Result<T, E = MlpError> = std::result::Result<T, E>;

impl MlpError {
    /// Whether the error is the caller's mistake (bad arguments or shapes) rather
    /// than a failure while running (missing data, divergence, I/O).
    /// The `mlp` command uses it to pick exit status 2 or 1.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            MlpError::ZeroSize { .. }
                | MlpError::EmptyInput { .. }
                | MlpError::InvalidHyperparameter { .. }
                | MlpError::RowsLabelsMismatch { .. }
                | MlpError::InputSizeMismatch { .. }
                | MlpError::LabelOutOfRange { .. }
                | MlpError::ShapeMismatch { .. }
                | MlpError::UnknownChoice { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MlpError::Io { path: path.into(), source }
    }
}
