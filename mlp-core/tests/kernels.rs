//! The sparse and the dense first-layer kernels train the same network: every loss,
//! gradient norm and accuracy agrees, on MNIST-like images (mostly background) and on
//! dense data, for both activations.

use mlp_core::ndarray::{Array1, Array2, ShapeBuilder};
use mlp_core::{Activation, InputKernel, NumpyRng, Params, Stats, TrainConfig, TwoLayerMLP};

#[path = "common/images.rs"]
mod common;
use common::images;

fn train(
    activation: Activation,
    kernel: InputKernel,
    (x, y): (&Array2<f64>, &Array1<usize>),
    (x_val, y_val): (&Array2<f64>, &Array1<usize>),
) -> (Stats, Params) {
    let mut rng = NumpyRng::new(0);
    let mut net = TwoLayerMLP::new(784, 64, 10, 0.1, activation, &mut rng).expect("sizes");
    let config = TrainConfig {
        num_epochs: 3,
        batch_size: 100,
        learning_rate: 3e-3,
        reg: 0.05,
        kernel,
        ..TrainConfig::default()
    };
    let stats = net.train(&mut rng, x, y, x_val, y_val, &config).expect("trains");
    (stats, net.params)
}

/// Largest relative difference between two equally long series.
fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs() / p.abs().max(q.abs()).max(1e-300))
        .fold(0.0, f64::max)
}

fn assert_same_training(sparse: &(Stats, Params), dense: &(Stats, Params), what: &str) {
    let ((s, ps), (d, pd)) = (sparse, dense);
    assert_eq!(s.kernel, InputKernel::Sparse, "{what}");
    assert_eq!(d.kernel, InputKernel::Dense, "{what}");
    let loss = max_rel(&s.loss_history, &d.loss_history);
    let grad = max_rel(&s.grad_magnitude_history, &d.grad_magnitude_history);
    assert!(loss < 1e-10, "{what}: losses differ by {loss:e}");
    assert!(grad < 1e-10, "{what}: |dW1| differ by {grad:e}");
    assert_eq!(s.train_acc_history, d.train_acc_history, "{what}");
    assert_eq!(s.val_acc_history, d.val_acc_history, "{what}");
    let scale = pd.w1.iter().fold(0.0, |m: f64, w| m.max(w.abs()));
    let w1 = (&ps.w1 - &pd.w1).iter().fold(0.0, |m: f64, d| m.max(d.abs())) / scale;
    assert!(w1 < 1e-10, "{what}: W1 differs by {w1:e} of its largest entry");
}

#[test]
fn sparse_and_dense_kernels_train_the_same_network_on_images() {
    let mut rng = NumpyRng::new(7);
    let (x, y) = images(1000, &mut rng);
    let (x_val, y_val) = images(300, &mut rng);
    for activation in [Activation::Sigmoid, Activation::Relu] {
        let sparse = train(activation, InputKernel::Sparse, (&x, &y), (&x_val, &y_val));
        let dense = train(activation, InputKernel::Dense, (&x, &y), (&x_val, &y_val));
        assert_same_training(&sparse, &dense, activation.name());
        // it learns something: the band with the most ink is easy
        // it learns (chance is 0.1), so the runs compared go somewhere
        let val = &dense.0.val_acc_history;
        assert!(val[2] > 0.25, "{activation}: {val:?}");
        // on images, Auto takes the sparse kernel, and it is the same run
        let auto = train(activation, InputKernel::Auto, (&x, &y), (&x_val, &y_val));
        assert_eq!(auto, sparse);
    }
}

#[test]
fn the_sparse_kernel_is_right_on_dense_data_too_and_auto_leaves_it_dense() {
    let mut rng = NumpyRng::new(3);
    let x = rng.randn(400, 784).mapv_into(|v| 50.0 * v);
    let y = Array1::from_iter((0..400).map(|i| (i * 7) % 10));
    let sparse = train(Activation::Relu, InputKernel::Sparse, (&x, &y), (&x, &y));
    let dense = train(Activation::Relu, InputKernel::Dense, (&x, &y), (&x, &y));
    assert_same_training(&sparse, &dense, "gaussian");
    let auto = train(Activation::Relu, InputKernel::Auto, (&x, &y), (&x, &y));
    assert_eq!(auto.0.kernel, InputKernel::Dense);
}

#[test]
fn the_sparse_kernel_handles_parameters_in_any_memory_layout() {
    let mut rng = NumpyRng::new(11);
    let (x, y) = images(300, &mut rng);
    let config = TrainConfig {
        num_epochs: 2,
        batch_size: 50,
        kernel: InputKernel::Sparse,
        ..TrainConfig::default()
    };
    let run = |column_major: bool| {
        let mut rng = NumpyRng::new(0);
        let mut net = TwoLayerMLP::new(784, 20, 10, 0.1, Activation::Sigmoid, &mut rng).unwrap();
        if column_major {
            let mut w1 = Array2::zeros((784, 20).f());
            w1.assign(&net.params.w1);
            net.params.w1 = w1;
        }
        let stats = net.train(&mut rng, &x, &y, &x, &y, &config).unwrap();
        (stats, net.params)
    };
    let (standard, fortran) = (run(false), run(true));
    assert_eq!(standard.0, fortran.0);
    assert_eq!(standard.1, fortran.1);
}

#[test]
fn a_diverging_sparse_run_leaves_the_network_as_its_steps_made_it() {
    // the sparse steps keep W1 in their own buffers: the network's copy must be brought
    // up to date before the error returns, not left as it was when training started
    let mut rng = NumpyRng::new(3);
    let (x, y) = images(600, &mut rng);
    let mut net = TwoLayerMLP::new(784, 64, 10, 0.1, Activation::Relu, &mut rng).expect("sizes");
    let before = net.params.w1.clone();
    let config = TrainConfig {
        num_epochs: 5,
        batch_size: 100,
        learning_rate: 1e30,
        kernel: InputKernel::Sparse,
        ..TrainConfig::default()
    };
    let err = net.train(&mut rng, &x, &y, &x, &y, &config).unwrap_err();
    assert!(matches!(err, mlp_core::MlpError::Diverged { .. }), "{err}");
    let changed =
        net.params.w1.iter().zip(&before).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    assert!(changed > before.len() / 2, "only {changed} entries of W1 changed");
}
