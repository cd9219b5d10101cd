//! What the student edition's test cells use, under names that no cell of a student's
//! can change. A test cell reaches this module from the crate root and imports it inside
//! its own block:
//!
//! ```
//! # fn forward_loss(_: &mlp_core::TwoLayerMLP, _: &mlp_core::ndarray::Array2<f64>,
//! #     _: &mlp_core::ndarray::Array1<usize>, _: f64) -> f64 { 0.0 }
//! ::mlp_core::grade::points(5.0, || {
//!     use ::mlp_core::grade::*;
//!     let (net, x, y) = toy_problem(Activation::Sigmoid)?;
//!     check_below("a loss", forward_loss(&net, &x, &y, 0.1), 1e9)?;
//!     Ok(())
//! });
//! ```
//!
//! Everything a student defines (a function `points`, a type `f64`, a function `Err`, a
//! module `mlp_core` of their own) lives at their crate's root; the block's import is
//! nearer and wins, and `::mlp_core` names this crate. Macros are the exception (a
//! student's `macro_rules!` wins over an import), so test cells call them by path:
//! `::std::println!`, `::std::format!`, `::mlp_core::ndarray::array!`. The inputs a
//! check needs (the toy problem, the MNIST split, the training settings) are made here
//! afresh, not read from the notebook's variables, which a student's cell can replace.
//! `make assignment` refuses a test cell that uses any other bare name
//! (mlp_lab/course/release_check.py).

use std::sync::OnceLock;

pub use core::option::Option::{self, None, Some};
pub use core::primitive::{bool, f64, str, u32, usize};
pub use core::result::Result::{Err, Ok};
pub use ndarray::{Array1, Array2, ArrayViewD, Axis};
pub use std::string::{String, ToString};
pub use std::time::Instant;
pub use std::vec::Vec;

pub use crate::student::{
    Implementation, check_below, check_close, checked_loss, gradient_check, points,
};
pub use crate::{
    Activation, Grads, MlpError, MnistSplit, NumpyRng, Param, Stats, Toy, TrainConfig, TwoLayerMLP,
    py_float,
};

use crate::data::{LoadOptions, default_mnist_dir, load_mnist, split_mnist};
use crate::error::Result;

/// The notebook's toy problem, made afresh: the network `init_toy_model(activation,
/// 1e-1)` and the data `init_toy_data()` (`Toy::default()`): `(net, X, y)`.
pub fn toy_problem(activation: Activation) -> Result<(TwoLayerMLP, Array2<f64>, Array1<usize>)> {
    let toy = Toy::default();
    let mut rng = NumpyRng::new(0);
    let (x, y) = toy.data(&mut rng)?;
    let net = toy.model(activation, 1e-1, &mut rng)?;
    Ok((net, x, y))
}

/// The MNIST notebook's training settings: 20 epochs, batch 100, learning rate 1e-3
/// decaying by 0.95, reg 0.5, a line per epoch.
pub fn mnist_config() -> TrainConfig {
    TrainConfig {
        num_epochs: 20,
        batch_size: 100,
        learning_rate: 1e-3,
        learning_rate_decay: 0.95,
        reg: 0.5,
        verbose: true,
        ..TrainConfig::default()
    }
}

/// The MNIST notebook's problem for one network, made afresh: the split
/// `get_mnist_data(50000, 10000, 10000)` (loaded once per process, checksums checked),
/// the `784 -> 64 -> 10` network the notebook creates for `activation` (the sigmoid
/// network right after the split; the ReLU network after the sigmoid network's
/// training has used the generator), and the generator where the notebook has it then.
pub fn mnist_problem(
    activation: Activation,
) -> Result<(&'static MnistSplit, TwoLayerMLP, NumpyRng)> {
    static SPLIT: OnceLock<(MnistSplit, NumpyRng)> = OnceLock::new();
    let (data, after_split) = match SPLIT.get() {
        Some(loaded) => loaded,
        None => {
            let bytes = load_mnist(&default_mnist_dir(), &LoadOptions::default())?;
            let mut rng = NumpyRng::new(0);
            let data = split_mnist(&bytes, &mut rng, 50_000, 10_000, 10_000)?;
            SPLIT.get_or_init(|| (data, rng))
        }
    };
    let mut rng = after_split.clone();
    let new = |activation, rng: &mut NumpyRng| TwoLayerMLP::new(784, 64, 10, 1e-1, activation, rng);
    let mut net = new(Activation::Sigmoid, &mut rng)?;
    if activation != Activation::Sigmoid {
        // what the sigmoid network's training takes from the generator: its seed, then
        // one permutation of the training set per epoch
        let config = mnist_config();
        rng.seed(config.seed);
        for _ in 0..config.num_epochs {
            rng.permutation(data.x_train.nrows());
        }
        net = new(activation, &mut rng)?;
    }
    Ok((data, net, rng))
}

/// [`points`], as the grader runs a test cell: the score is also printed on a line of
/// its own with `seal`, a word the grader chose for this cell and run and put in the
/// cell's source, so that the grader can tell the score this cell's checks gave from
/// anything a student's code printed (evcxr takes a cell's value from standard output,
/// where a student's code can write too). mlp_lab/course/sandbox.py reads and removes the
/// line.
pub fn sealed(seal: &str, max: f64, checks: impl FnOnce() -> Result<()>) -> f64 {
    let score = points(max, checks);
    println!();
    println!("mlp-grade {seal} {score:?}");
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toy_problem_is_the_notebooks() {
        let (net, x, y) = toy_problem(Activation::Sigmoid).unwrap();
        let toy = Toy::default();
        let mut rng = NumpyRng::new(0);
        let (x0, y0) = toy.data(&mut rng).unwrap();
        let net0 = toy.model(Activation::Sigmoid, 1e-1, &mut rng).unwrap();
        assert_eq!((x, y), (x0, y0));
        assert_eq!(net.params.w1, net0.params.w1);
        assert_eq!(net.params.b2, net0.params.b2);
    }
}
