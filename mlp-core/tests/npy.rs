//! Trained weights in and out as `.npy` + `model.json`, and what a bad file gives.

use std::fs;
use std::path::Path;

use mlp_core::ndarray::{Array2, ShapeBuilder};
use mlp_core::{
    Activation, MlpError, ModelInfo, NumpyRng, Params, Penalty, TrainConfig, TwoLayerMLP,
};

fn net() -> TwoLayerMLP {
    TwoLayerMLP::new(6, 4, 3, 0.1, Activation::Relu, &mut NumpyRng::new(3)).unwrap()
}

fn saved(dir: &Path) -> TwoLayerMLP {
    let net = net();
    let config =
        TrainConfig { reg: 0.25, penalty: Penalty::L1, num_epochs: 7, ..TrainConfig::default() };
    net.save_npy_with(dir, Some(&config), &[("train", 0.5), ("val", 0.25)]).unwrap();
    net
}

/// The error's text, which must name `file`.
fn error_naming(e: MlpError, file: &str) -> String {
    let text = e.to_string();
    assert!(text.contains(file), "{text:?} does not name {file}");
    text
}

#[test]
fn a_saved_network_loads_back_the_same_with_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let net = saved(dir.path());
    let back = TwoLayerMLP::load_npy(dir.path()).unwrap();
    assert_eq!(back.params, net.params);
    assert_eq!(back.activation, Activation::Relu);
    let info = ModelInfo::read(dir.path()).unwrap();
    assert_eq!(info.sizes, (6, 4, 3));
    let training = info.training.unwrap();
    assert_eq!((training.reg, training.penalty, training.num_epochs), (0.25, Penalty::L1, 7));
    assert_eq!(info.accuracy, vec![("train".to_string(), 0.5), ("val".to_string(), 0.25)]);
    // and the weights alone
    assert_eq!(Params::load_npy(dir.path()).unwrap(), net.params);
}

#[test]
fn weights_in_another_memory_layout_are_saved_in_c_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut fortran = net();
    let mut w1 = Array2::zeros((6, 4).f());
    w1.assign(&fortran.params.w1);
    fortran.params.w1 = w1;
    fortran.save_npy(dir.path()).unwrap();
    assert_eq!(TwoLayerMLP::load_npy(dir.path()).unwrap().params, net().params);
}

#[test]
fn each_bad_file_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    let w1 = dir.path().join("W1.npy");
    let good = fs::read(&w1).unwrap();
    let load = || TwoLayerMLP::load_npy(dir.path()).unwrap_err();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated data",
            good[..good.len() - 8].to_vec(),
            "needs 192 bytes of data, the file has 184",
        ),
        ("trailing data", [good.clone(), vec![0; 8]].concat(), "the file has 200"),
        ("no magic", b"hello".to_vec(), "no \\x93NUMPY magic"),
        ("truncated header", good[..20].to_vec(), "truncated header"),
    ];
    for (what, bytes, message) in cases {
        fs::write(&w1, bytes).unwrap();
        let text = error_naming(load(), "W1.npy");
        assert!(text.contains(message), "{what}: {text}");
    }
    // dtype, order and shapes, written by ndarray-npy itself
    use mlp_core::ndarray::Array1;
    use ndarray_npy::WriteNpyExt;
    let write =
        |name: &str, f: &dyn Fn(fs::File)| f(fs::File::create(dir.path().join(name)).unwrap());
    write("W1.npy", &|f| Array2::<f32>::zeros((6, 4)).write_npy(f).unwrap());
    assert!(error_naming(load(), "W1.npy").contains("dtype <f4 is not little-endian float64"));
    write("W1.npy", &|f| Array2::<f64>::zeros((6, 4).f()).write_npy(f).unwrap());
    assert!(error_naming(load(), "W1.npy").contains("Fortran order"));
    write("W1.npy", &|f| Array1::<f64>::zeros(24).write_npy(f).unwrap());
    assert!(error_naming(load(), "W1.npy").contains("has 1 dimensions, expected 2"));
    write("W1.npy", &|f| Array2::<f64>::zeros((6, 5)).write_npy(f).unwrap());
    assert!(error_naming(load(), "b1.npy").contains("shape [4], expected [5]"));
    write("W1.npy", &|f| Array2::<f64>::zeros((7, 4)).write_npy(f).unwrap());
    assert!(
        error_naming(load(), "W1.npy")
            .contains("(7, 4, 3) (D, H, C) but model.json says (6, 4, 3)")
    );
    write("W1.npy", &|f| Array2::<f64>::zeros((6, 4)).write_npy(f).unwrap());
    write("W2.npy", &|f| Array2::<f64>::zeros((5, 3)).write_npy(f).unwrap());
    assert!(error_naming(load(), "W2.npy").contains("W2: expected shape [4, 3], found [5, 3]"));
}

#[test]
fn a_bad_model_json_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    let json = dir.path().join("model.json");
    for (text, message) in [
        ("{", "not valid JSON"),
        ("[]", "no \"activation\""),
        (
            r#"{"activation": "tanh", "input_size": 6, "hidden_size": 4, "output_size": 3}"#,
            "unknown activation",
        ),
        (
            r#"{"activation": "relu", "input_size": 0, "hidden_size": 4, "output_size": 3}"#,
            "\"input_size\" is not a positive whole number",
        ),
        (
            r#"{"activation": "relu", "input_size": 6, "hidden_size": 4, "output_size": 3, "accuracy": {"val": 3}}"#,
            "accuracy \"val\" is not in 0..1",
        ),
        (
            r#"{"activation": "relu", "input_size": 6, "hidden_size": 4, "output_size": 3, "training": {"learning_rate": -1}}"#,
            "training",
        ),
    ] {
        fs::write(&json, text).unwrap();
        let text = error_naming(TwoLayerMLP::load_npy(dir.path()).unwrap_err(), "model.json");
        assert!(text.to_lowercase().contains(&message.to_lowercase()), "{text}");
    }
    fs::remove_file(&json).unwrap();
    let e = TwoLayerMLP::load_npy(dir.path()).unwrap_err();
    assert!(matches!(e, MlpError::MissingFile { .. }), "{e}");
}
