//! The problem set's MNIST run, line for line. Needs the MNIST files (`make data`), so
//! these tests are ignored by a plain `cargo test`; `make test` fetches the data and
//! runs them with `--ignored`.

use std::process::Command;

fn mlp(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mlp")).args(args).output().expect("mlp runs")
}

#[test]
#[ignore = "needs data/mnist (make data); run by make test"]
fn sigmoid_run_prints_ps3s_lines_character_for_character() {
    let o = mlp(&["train", "--dataset", "mnist", "--activation", "sigmoid", "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty(), "--quiet writes nothing on stderr");
    let out = String::from_utf8(o.stdout).unwrap();
    let expected = include_str!("fixtures/ps3_sigmoid.txt");
    for line in expected.lines() {
        assert!(out.lines().any(|l| l == line), "missing line {line:?} in\n{out}");
    }
    let epochs: Vec<&str> = out.lines().filter(|l| l.starts_with("Epoch ")).collect();
    let expected_epochs: Vec<&str> = expected.lines().filter(|l| l.starts_with("Epoch ")).collect();
    assert_eq!(epochs, expected_epochs);
    assert!(out.lines().last().unwrap().starts_with("Training time: "));
}

#[test]
#[ignore = "needs data/mnist (make data); run by make test"]
fn mnist_json_has_test_accuracy_and_toy_flags_are_refused() {
    let o = mlp(&["train", "--dataset", "mnist", "--epochs", "1", "--json"]);
    assert!(o.status.success());
    assert!(o.stderr.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["loss_history"].as_array().unwrap().len(), 500);
    assert_eq!(v["val_acc_history"][0].as_f64().unwrap(), 0.2663);
    assert!(v["accuracy"]["test"].is_f64());

    let o = mlp(&["train", "--dataset", "mnist", "--num-inputs", "3"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "error: --num-inputs only goes with --dataset toy; MNIST has its own sizes and labels\n"
    );
}

#[test]
fn missing_data_dir_exits_1_and_says_what_to_do() {
    let dir = std::env::temp_dir().join("mlp-no-such-mnist-dir");
    let o = mlp(&["train", "--dataset", "mnist", "--data-dir", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error: ") && err.contains("make data"), "{err}");
}
