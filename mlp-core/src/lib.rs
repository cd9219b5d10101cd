//! # mlp-core
//!
//! A two-layer neural network (multi-layer perceptron) written out by hand for
//! teaching: the forward pass, softmax cross-entropy with L2 regularisation, the
//! backward pass, minibatch SGD, and numerical gradient checking. It reproduces
//! the numbers of the CS231n-derived problem set exactly, because its random
//! generator ([`NumpyRng`]) is bit-compatible with numpy's legacy `RandomState`.
//!
//! Shapes: `N` examples, `D` inputs, `H` hidden units, `C` classes.
//!
//! ```
//! use mlp_core::{Activation, NumpyRng, Toy, rel_error, Param};
//!
//! let toy = Toy::default();
//! let mut rng = NumpyRng::new(0);
//! let (x, y) = toy.data(&mut rng)?;                        // X (5, 4), y (5,)
//! let net = toy.model(Activation::Sigmoid, 0.1, &mut rng)?; // 4 -> 10 -> 3
//! let (loss, grads) = net.loss(&x, &y, 0.1)?;
//! assert!((loss - 1.1822479803941373).abs() < 1e-12);
//! for p in Param::ALL {
//!     let num = net.numerical_gradient(p, &x, &y, 0.1, 1e-5)?;
//!     assert!(rel_error(&num, &grads.get(p))? < 1e-5);
//! }
//! # Ok::<(), mlp_core::MlpError>(())
//! ```
//!
//! Everything a user can get wrong returns [`MlpError`]; nothing here panics on bad
//! input.

// Without `solutions` (the student edition) the answers are left out, and with them the
// only users of some imports and helpers.
#![cfg_attr(not(feature = "solutions"), allow(unused_imports, dead_code))]

// the test helpers shared with the integration tests name the crate `mlp_core`
#[cfg(test)]
extern crate self as mlp_core;

mod batch;
mod blas;
mod check;
mod data;
#[cfg(feature = "solutions")]
mod engine;
mod error;
mod gradcheck;
pub mod grade;
pub mod kernel;
pub mod live;
mod model;
mod npy;
mod penalty;
pub mod plot;
mod pyfmt;
mod report;
mod rng;
mod student;
mod sums;
mod toy;
mod train;

pub use blas::{build_info, matrix_products};
pub use data::{
    IdxFile, LoadOptions, MNIST_FILES, MNIST_PIXELS, MnistBytes, MnistSplit, default_mnist_dir,
    get_mnist_data, load_mnist, split_mnist,
};
pub use error::{MlpError, Result};
pub use gradcheck::{eval_numerical_gradient, rel_error};
pub use model::{Activation, Grads, Param, Params, TwoLayerMLP};
pub use npy::{MODEL_JSON, ModelInfo};
pub use penalty::{Penalty, Reg};
pub use plot::{
    Figure, plot_loss_and_gradient, plot_progress, plot_stats, plot_weight_histograms,
    show_net_weights, show_weight_grids, visualize_grid,
};
pub use pyfmt::{numpy_str, py_e, py_float};
pub use report::{EpochSummary, InputKernel, PrintEpochs, Reporter, Silent, Stats};
pub use rng::NumpyRng;
pub use student::{
    Implementation, LossFn, PredictFn, StepFn, check_below, check_close, checked_loss,
    gradient_check, points,
};
pub use toy::Toy;
pub use train::TrainConfig;

/// The crates notebooks need alongside this one, re-exported so that a single
/// `:dep mlp-core` brings matching versions.
pub use ndarray;
pub use plotters;
