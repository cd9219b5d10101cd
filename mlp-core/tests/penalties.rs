//! The two weight penalties of Problem 3: L2 (the problem set's) and L1, in the loss,
//! its gradients and training.

use mlp_core::ndarray::Array2;
use mlp_core::{Activation, NumpyRng, Param, Penalty, Reg, Toy, TrainConfig, rel_error};

fn toy(act: Activation) -> (mlp_core::TwoLayerMLP, Array2<f64>, mlp_core::ndarray::Array1<usize>) {
    let toy = Toy::default();
    let mut rng = NumpyRng::default();
    let (x, y) = toy.data(&mut rng).unwrap();
    (toy.model(act, 0.1, &mut rng).unwrap(), x, y)
}

#[test]
fn l1_gradients_pass_the_numerical_check_away_from_zero_weights() {
    for act in [Activation::Sigmoid, Activation::Relu] {
        let (net, x, y) = toy(act);
        // |w| > h everywhere, so no centred difference crosses the kink at 0
        let smallest =
            net.params.w1.iter().chain(&net.params.w2).fold(1.0f64, |m, w| m.min(w.abs()));
        assert!(smallest > 1e-4, "{smallest}");
        let (_, grads) = net.loss(&x, &y, Reg::l1(0.1)).unwrap();
        for p in Param::ALL {
            let num = net.numerical_gradient(p, &x, &y, Reg::l1(0.1), 1e-5).unwrap();
            let err = rel_error(&num, &grads.get(p)).unwrap();
            // b1 is unpenalised; its tiny entries put its error at the rounding floor
            // (the problem set prints 2.035406e-06 for it with L2; L1 gives the same)
            let bound = if p == Param::B1 { 1e-5 } else { 1e-7 };
            assert!(err < bound, "{act}, {p}: {err:e}");
        }
    }
}

#[test]
fn l1_adds_reg_times_the_sum_of_absolute_weights_and_its_sign() {
    let (mut net, x, y) = toy(Activation::Sigmoid);
    net.params.w1[[0, 0]] = 0.0; // sign(0) = 0: no pull on a weight at zero
    let (l0, g0) = net.loss(&x, &y, 0.0).unwrap();
    let (l1, g1) = net.loss(&x, &y, Reg::l1(0.3)).unwrap();
    let abs_sum: f64 = net.params.w1.iter().chain(&net.params.w2).map(|w| w.abs()).sum();
    assert!((l1 - l0 - 0.3 * abs_sum).abs() < 1e-12, "{l1} {l0}");
    let pull = &g1.w1 - &g0.w1;
    for ((i, j), &d) in pull.indexed_iter() {
        let w = net.params.w1[[i, j]];
        let expected = 0.3 * w.signum() * f64::from(u8::from(w != 0.0));
        assert!((d - expected).abs() < 1e-12, "W1[{i}, {j}] = {w}: {d}");
    }
    assert_eq!(g1.b1, g0.b1, "biases are not penalised");
    assert_eq!(g1.b2, g0.b2, "biases are not penalised");
    // a plain number is L2, the problem set's
    let (l2, _) = net.loss(&x, &y, Reg { penalty: Penalty::L2, strength: 0.3 }).unwrap();
    assert_eq!(l2, net.loss(&x, &y, 0.3).unwrap().0);
}

#[test]
fn l1_training_drives_weights_to_zero_where_l2_shrinks_them() {
    // MNIST-like images: the corner pixels are background in every image, so their W1
    // rows get no gradient from the data, only from the penalty
    let rng = NumpyRng::new(2);
    let x = Array2::from_shape_fn((300, 64), |(i, k)| {
        if k < 16 { 0.0 } else { ((i * 7 + k * 13) % 17) as f64 - 8.0 }
    });
    let y = mlp_core::ndarray::Array1::from_iter((0..300).map(|i| i % 3));
    let run = |penalty| {
        let mut net =
            mlp_core::TwoLayerMLP::new(64, 8, 3, 0.1, Activation::Relu, &mut rng.clone()).unwrap();
        let config = TrainConfig {
            learning_rate: 0.05,
            learning_rate_decay: 1.0,
            reg: 0.05,
            penalty,
            num_epochs: 30,
            batch_size: 50,
            ..TrainConfig::default()
        };
        net.train(&mut NumpyRng::new(0), &x, &y, &x, &y, &config).unwrap();
        net.params.w1
    };
    let (l1, l2) = (run(Penalty::L1), run(Penalty::L2));
    let zero_rows = |w: &Array2<f64>| {
        w.rows().into_iter().take(16).flatten().map(|v| v.abs()).fold(0.0, f64::max)
    };
    // L1: each step moves a weight by lr * reg = 2.5e-3 towards zero, then jitters around it
    assert!(zero_rows(&l1) <= 0.05 * 0.05 + 1e-15, "{}", zero_rows(&l1));
    // L2: geometric shrinking, to (1 - lr reg)^steps = 0.9975^180 = 0.64 of the start
    assert!(zero_rows(&l2) > 0.01, "{}", zero_rows(&l2));
}
