//! The student edition's harness, driven by a "student" who writes the three functions
//! with the library's own model: its training is the library's, to rounding.

use mlp_core::ndarray::{Array1, Array2};
use mlp_core::{
    Activation, Grads, Implementation, MlpError, NumpyRng, Penalty, Toy, TrainConfig, TwoLayerMLP,
    check_below, check_close,
};

fn loss(net: &TwoLayerMLP, x: &Array2<f64>, y: &Array1<usize>, reg: f64) -> (f64, Grads) {
    net.loss(x, y, reg).unwrap()
}
fn predict(net: &TwoLayerMLP, x: &Array2<f64>) -> Array1<usize> {
    net.predict(x).unwrap()
}
fn sgd_step(net: &mut TwoLayerMLP, g: &Grads, lr: f64) {
    let p = &mut net.params;
    p.w1.scaled_add(-lr, &g.w1);
    p.b1.scaled_add(-lr, &g.b1);
    p.w2.scaled_add(-lr, &g.w2);
    p.b2.scaled_add(-lr, &g.b2);
}

const STUDENT: Implementation = Implementation { loss, predict, sgd_step };

fn toy() -> (TwoLayerMLP, Array2<f64>, Array1<usize>, NumpyRng) {
    let toy = Toy::default();
    let mut rng = NumpyRng::default();
    let (x, y) = toy.data(&mut rng).unwrap();
    (toy.model(Activation::Sigmoid, 0.1, &mut rng).unwrap(), x, y, rng)
}

#[test]
fn the_harness_trains_as_the_library_does_and_reaches_the_problem_sets_loss() {
    for penalty in [Penalty::L2, Penalty::L1] {
        let (net, x, y, rng) = toy();
        let config = TrainConfig {
            learning_rate: 0.5,
            reg: 1e-5,
            penalty,
            num_epochs: 100,
            ..TrainConfig::default()
        };
        let (mut ours, mut theirs) = (net.clone(), net);
        let stats = STUDENT.train(&mut ours, &mut rng.clone(), &x, &y, &x, &y, &config).unwrap();
        let library = theirs.train(&mut rng.clone(), &x, &y, &x, &y, &config).unwrap();
        for (a, b) in stats.loss_history.iter().zip(&library.loss_history) {
            assert!((a - b).abs() < 1e-9 * b.abs(), "{penalty:?}: {a} {b}");
        }
        assert_eq!(stats.train_acc_history, library.train_acc_history);
        assert_eq!(stats.val_acc_history, library.val_acc_history);
        if penalty == Penalty::L2 {
            assert!((stats.final_loss() - 0.10926794610680679).abs() < 1e-9);
        }
    }
}

#[test]
fn the_gradient_check_passes_for_a_right_loss_and_checkpoints_say_what_is_off() {
    let (net, x, y, _) = toy();
    let errors = mlp_core::gradient_check(loss, &net, &x, &y, 0.1).unwrap();
    assert_eq!(errors.len(), 4);
    assert!(errors.iter().all(|(_, e)| *e < 1e-5), "{errors:?}");
    assert!(check_close("loss", 1.1822479803941373, 1.182248, 1e-6).is_ok());
    let e = check_close("loss", 1.19, 1.182248, 1e-6).unwrap_err();
    assert!(matches!(e, MlpError::CheckFailed { .. }));
    assert!(e.to_string().contains("loss is off: yours is 1.19, expected 1.182248"), "{e}");
    let e = check_below("W1 max relative error", 2e-3, 1e-7).unwrap_err().to_string();
    assert!(e.contains("W1 max relative error is 2e-3, not below 1e-7"), "{e}");
}

#[test]
fn wrong_and_unfinished_functions_give_errors_that_say_which_and_what() {
    fn transposed_dw2(
        net: &TwoLayerMLP,
        x: &Array2<f64>,
        y: &Array1<usize>,
        reg: f64,
    ) -> (f64, Grads) {
        let (l, mut g) = loss(net, x, y, reg);
        g.w2 = g.w2.t().to_owned(); // a mistake in backward: W2 is (10, 3)
        (l, g)
    }
    fn db1_of_w1_shape(
        net: &TwoLayerMLP,
        x: &Array2<f64>,
        y: &Array1<usize>,
        reg: f64,
    ) -> (f64, Grads) {
        let (l, mut g) = loss(net, x, y, reg);
        g.w1 = Array2::zeros((3, 10));
        (l, g)
    }
    fn empty_grads(
        net: &TwoLayerMLP,
        x: &Array2<f64>,
        y: &Array1<usize>,
        reg: f64,
    ) -> (f64, Grads) {
        let (l, mut g) = loss(net, x, y, reg);
        g.w1 = Array2::zeros((0, 0)); // a placeholder: nothing computed yet
        (l, g)
    }
    fn short_predict(_: &TwoLayerMLP, _: &Array2<f64>) -> Array1<usize> {
        Array1::zeros(2)
    }
    fn no_predict(_: &TwoLayerMLP, _: &Array2<f64>) -> Array1<usize> {
        Array1::zeros(0)
    }
    fn out_of_range(_: &TwoLayerMLP, x: &Array2<f64>) -> Array1<usize> {
        Array1::from_elem(x.nrows(), 3)
    }
    let (net, x, y, _) = toy();
    let message = |i: Implementation| i.loss(&net, &x, &y, 0.1).unwrap_err().to_string();

    // a finished loss whose backward pass is wrong: the wrong shape, not "unfinished"
    let e = message(Implementation { loss: transposed_dw2, ..STUDENT });
    assert_eq!(
        e,
        "wrong shape: your loss returned dW2 of shape [3, 10], but W2 is [10, 3]: a gradient \
         must have its parameter's shape (check backward's dW2; it looks transposed)"
    );
    let e = message(Implementation { loss: db1_of_w1_shape, ..STUDENT });
    assert_eq!(
        e,
        "wrong shape: your loss returned dW1 of shape [3, 10], but W1 is [4, 10]: a gradient \
         must have its parameter's shape (check backward's dW1)"
    );
    assert!(matches!(
        Implementation { loss: transposed_dw2, ..STUDENT }.loss(&net, &x, &y, 0.1),
        Err(MlpError::GradientShape { function: "loss", param: "W2", .. })
    ));
    // what training reports is the same error
    let e = Implementation { loss: transposed_dw2, ..STUDENT }
        .train(&mut net.clone(), &mut NumpyRng::new(0), &x, &y, &x, &y, &TrainConfig::default())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("wrong shape: your loss returned dW2 of shape [3, 10]"), "{e}");

    // "not finished" only for nothing computed (an empty placeholder)
    let e = message(Implementation { loss: empty_grads, ..STUDENT });
    assert_eq!(
        e,
        "your loss is not finished: it returned an empty dW1 (shape [0, 0]); W1 is [4, 10]; \
         write it and run its cell again"
    );
    let accuracy = |i: Implementation| i.accuracy(&net, &x, &y).unwrap_err().to_string();
    assert_eq!(
        accuracy(Implementation { predict: no_predict, ..STUDENT }),
        "your predict is not finished: it returned no predictions for 5 rows; write it and run \
         its cell again"
    );
    assert_eq!(
        accuracy(Implementation { predict: short_predict, ..STUDENT }),
        "your predict is not right yet: it returned 2 predictions for 5 rows (one class per row \
         of X); fix its cell and run it again"
    );
    assert_eq!(
        accuracy(Implementation { predict: out_of_range, ..STUDENT }),
        "your predict is not right yet: it predicted class 3; the classes are 0..3; fix its \
         cell and run it again"
    );

    // a todo!() is the student's panic, at the cell that calls it
    fn unwritten(_: &TwoLayerMLP, _: &Array2<f64>, _: &Array1<usize>, _: f64) -> (f64, Grads) {
        todo!()
    }
    let stub = Implementation { loss: unwritten, ..STUDENT };
    let panic = std::panic::catch_unwind(|| stub.loss(&net, &x, &y, 0.1)).unwrap_err();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"not yet implemented"));
}

#[test]
fn a_test_cells_points_are_all_or_nothing_and_never_a_panic() {
    assert_eq!(mlp_core::points(5.0, || Ok(())), 5.0);
    assert_eq!(mlp_core::points(5.0, || check_close("loss", 1.19, 1.182248, 1e-6)), 0.0);
    assert_eq!(mlp_core::points(10.0, || todo!()), 0.0);
}
