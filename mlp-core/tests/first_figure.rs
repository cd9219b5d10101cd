//! A process's first figure can be any of them: notebook 4's kernel draws the weight grids
//! before anything else has registered the shipped font (this file is a process of its
//! own, with this one test, so that nothing draws before it).

use mlp_core::{Activation, NumpyRng, TwoLayerMLP};

#[test]
fn weight_grids_as_a_process_first_figure() {
    let mut rng = NumpyRng::new(0);
    let a = TwoLayerMLP::new(784, 4, 10, 1e-4, Activation::Sigmoid, &mut rng).unwrap();
    let b = TwoLayerMLP::new(784, 4, 10, 1e-4, Activation::Sigmoid, &mut rng).unwrap();
    let figure = mlp_core::show_weight_grids(&[("L2", &a), ("L1", &b)]);
    assert!(figure.is_ok(), "{:?}", figure.err());
}
