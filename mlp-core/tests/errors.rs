//! Bad input gives a named error, never a panic.

use mlp_core::ndarray::{Array1, Array2, array};
use mlp_core::{
    Activation, MlpError, NumpyRng, Param, Toy, TrainConfig, TwoLayerMLP, eval_numerical_gradient,
};

fn net() -> TwoLayerMLP {
    TwoLayerMLP::new(4, 10, 3, 0.1, Activation::Sigmoid, &mut NumpyRng::new(0)).unwrap()
}

fn toy_xy() -> (Array2<f64>, Array1<usize>) {
    Toy::default().data(&mut NumpyRng::new(0)).unwrap()
}

#[test]
fn rejects_mismatching_x_and_y() {
    let (x, _) = toy_xy();
    let err = net().loss(&x, &array![0usize, 1, 2], 0.1).unwrap_err();
    assert!(matches!(err, MlpError::RowsLabelsMismatch { rows: 5, labels: 3, .. }));
    assert_eq!(
        err.to_string(),
        "loss: X has 5 rows but y has 3 labels; give exactly one label per row"
    );
    assert!(err.is_usage());
}

#[test]
fn rejects_x_with_the_wrong_number_of_columns() {
    let x = Array2::<f64>::zeros((5, 7));
    let err = net().predict(&x).unwrap_err();
    assert!(matches!(err, MlpError::InputSizeMismatch { expected: 4, found: 7, .. }));
    assert_eq!(
        err.to_string(),
        "predict: X has 7 columns but the network expects input_size = 4; reshape X to (N, 4)"
    );
}

#[test]
fn rejects_labels_out_of_range() {
    let (x, _) = toy_xy();
    let err = net().loss(&x, &array![0usize, 1, 3, 2, 1], 0.0).unwrap_err();
    assert!(matches!(err, MlpError::LabelOutOfRange { index: 2, label: 3, num_classes: 3, .. }));
    assert_eq!(err.to_string(), "loss: label 3 at index 2 is out of range; labels must be in 0..3");
}

#[test]
fn rejects_empty_x() {
    let x = Array2::<f64>::zeros((0, 4));
    let y = Array1::<usize>::zeros(0);
    let err = net().loss(&x, &y, 0.1).unwrap_err();
    assert!(matches!(err, MlpError::EmptyInput { what: "X" }));
    assert_eq!(err.to_string(), "X is empty (0 rows): pass at least one example");
}

#[test]
fn rejects_zero_sizes() {
    for (sizes, name) in
        [((0, 10, 3), "input_size"), ((4, 0, 3), "hidden_size"), ((4, 10, 0), "output_size")]
    {
        let err = TwoLayerMLP::new(
            sizes.0,
            sizes.1,
            sizes.2,
            0.1,
            Activation::Relu,
            &mut NumpyRng::new(0),
        )
        .unwrap_err();
        assert!(matches!(err, MlpError::ZeroSize { name: n } if n == name));
        assert_eq!(err.to_string(), format!("{name} must be at least 1, got 0"));
    }
}

#[test]
fn rejects_negative_or_non_finite_std_and_reg() {
    for std in [-0.1, f64::NAN, f64::INFINITY] {
        let err =
            TwoLayerMLP::new(4, 10, 3, std, Activation::Relu, &mut NumpyRng::new(0)).unwrap_err();
        assert!(matches!(err, MlpError::InvalidHyperparameter { name: "std", .. }));
    }
    let err =
        TwoLayerMLP::new(4, 10, 3, -1.0, Activation::Relu, &mut NumpyRng::new(0)).unwrap_err();
    assert_eq!(err.to_string(), "std must be finite and >= 0, got -1.0");
    let (x, y) = toy_xy();
    let err = net().loss(&x, &y, -0.5).unwrap_err();
    assert_eq!(err.to_string(), "reg must be finite and >= 0, got -0.5");
}

fn train_err(config: TrainConfig) -> MlpError {
    let (x, y) = toy_xy();
    net().train(&mut NumpyRng::new(0), &x, &y, &x, &y, &config).unwrap_err()
}

#[test]
fn rejects_bad_training_settings() {
    let cases: [(TrainConfig, &str); 6] = [
        (
            TrainConfig { learning_rate: -1.0, ..Default::default() },
            "learning_rate must be finite and > 0, got -1.0",
        ),
        (
            TrainConfig { learning_rate: f64::NAN, ..Default::default() },
            "learning_rate must be finite and > 0, got nan",
        ),
        (
            TrainConfig { learning_rate_decay: 0.0, ..Default::default() },
            "learning_rate_decay must be finite and > 0, got 0.0",
        ),
        (
            TrainConfig { reg: f64::INFINITY, ..Default::default() },
            "reg must be finite and >= 0, got inf",
        ),
        (
            TrainConfig { batch_size: 0, ..Default::default() },
            "batch_size must be at least 1, got 0",
        ),
        (
            TrainConfig { num_epochs: 0, ..Default::default() },
            "num_epochs must be at least 1, got 0",
        ),
    ];
    for (config, message) in cases {
        let err = train_err(config);
        assert!(matches!(err, MlpError::InvalidHyperparameter { .. } | MlpError::ZeroSize { .. }));
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn rejects_nan_and_inf_in_x() {
    let (mut x, y) = toy_xy();
    x[[3, 1]] = f64::NAN;
    let err = net().loss(&x, &y, 0.1).unwrap_err();
    assert!(matches!(err, MlpError::NonFinite { row: 3, col: 1, .. }));
    assert_eq!(
        err.to_string(),
        "X contains a non-finite value (nan) at row 3, column 1; clean or rescale the data"
    );
    x[[3, 1]] = f64::NEG_INFINITY;
    let err =
        net().train(&mut NumpyRng::new(0), &x, &y, &x, &y, &TrainConfig::default()).unwrap_err();
    assert!(matches!(err, MlpError::NonFinite { row: 3, col: 1, .. }));
}

#[test]
fn validation_set_is_checked_too() {
    let (x, y) = toy_xy();
    let err = net()
        .train(&mut NumpyRng::new(0), &x, &y, &x, &array![0usize, 1], &TrainConfig::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "train (validation set): X has 5 rows but y has 2 labels; give exactly one label per row"
    );
}

#[test]
fn divergence_stops_training_with_the_epoch_and_a_hint() {
    let (x, y) = toy_xy();
    let mut net = Toy::default().model(Activation::Relu, 0.1, &mut NumpyRng::new(0)).unwrap();
    let config = TrainConfig { learning_rate: 1e200, num_epochs: 20, ..Default::default() };
    let err = net.train(&mut NumpyRng::new(0), &x, &y, &x, &y, &config).unwrap_err();
    match &err {
        MlpError::Diverged { epoch, iteration, learning_rate, .. } => {
            assert_eq!((*epoch, *iteration), (2, 1));
            assert_eq!(*learning_rate, 1e200 * 0.95);
        }
        other => panic!("expected Diverged, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "training diverged: the loss became nan at epoch 2, iteration 1 (learning rate 9.5e+199); lower the learning rate (try 9.5e+198)"
    );
    assert!(!err.is_usage());
}

#[test]
fn toy_labels_must_match_the_number_of_inputs() {
    let toy = Toy { num_inputs: 6, ..Toy::default() };
    let err = toy.data(&mut NumpyRng::new(0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "toy data (pass one label per input): X has 6 rows but y has 5 labels; give exactly one label per row"
    );
}

#[test]
fn from_params_checks_shapes() {
    let mut p = net().params;
    p.b2 = Array1::zeros(4);
    let err = TwoLayerMLP::from_params(p, Activation::Relu).unwrap_err();
    assert_eq!(err.to_string(), "b2: expected shape [3], found [4]");
}

#[test]
fn unknown_names_are_errors() {
    let err = "tanh".parse::<Activation>().unwrap_err();
    assert_eq!(err.to_string(), "unknown activation 'tanh': expected one of sigmoid, relu");
    assert_eq!("w1".parse::<Param>().unwrap(), Param::W1);
    assert!("W3".parse::<Param>().is_err());
}

#[test]
fn numerical_gradient_rejects_a_bad_step() {
    let mut x = array![1.0];
    let err = eval_numerical_gradient(|v| Ok(v[0]), &mut x, f64::NAN).unwrap_err();
    assert_eq!(err.to_string(), "h must be finite and > 0, got nan");
}
