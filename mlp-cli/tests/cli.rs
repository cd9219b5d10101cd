//! The `mlp` command's contract: numbers, JSON shapes, exit statuses, no panics.

use std::process::{Command, Output};

fn mlp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlp")).args(args).output().expect("mlp runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(args: &[&str]) -> serde_json::Value {
    let o = mlp(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    assert!(o.stderr.is_empty(), "--json writes nothing on stderr: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("one JSON object")
}

#[test]
fn gradcheck_json_has_the_problem_sets_loss_and_small_errors() {
    let v = json(&["gradcheck", "--json"]);
    assert!((v["loss"].as_f64().unwrap() - 1.1822479803941373).abs() < 1e-12);
    assert_eq!(v["grads"]["W1"].as_array().unwrap().len(), 4);
    assert_eq!(v["grads"]["W1"][0].as_array().unwrap().len(), 10);
    assert_eq!(v["grads"]["b1"].as_array().unwrap().len(), 10);
    assert_eq!(v["grads"]["W2"].as_array().unwrap().len(), 10);
    assert_eq!(v["grads"]["b2"].as_array().unwrap().len(), 3);
    for p in ["W1", "W2", "b2"] {
        assert!(v["rel_error"][p].as_f64().unwrap() < 1e-7, "{p}");
    }
    let v = json(&["gradcheck", "--activation", "relu", "--json"]);
    assert!((v["loss"].as_f64().unwrap() - 1.3037878913298206).abs() < 1e-12);
    for p in ["W1", "b1", "W2", "b2"] {
        assert!(v["rel_error"][p].as_f64().unwrap() < 1e-7, "{p}");
    }
}

#[test]
fn gradcheck_prints_the_notebooks_lines() {
    let o = mlp(&["gradcheck"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.contains("loss = 1.1822479803941373\n"), "{out}");
    assert!(out.contains("W1 max relative error: 1.126755e-08\n"), "{out}");
}

#[test]
fn toy_training_reaches_the_problem_sets_final_losses() {
    let v = json(&["train", "--dataset", "toy", "--json"]);
    assert!((v["final_loss"].as_f64().unwrap() - 0.10926794610680679).abs() < 1e-9);
    assert_eq!(v["loss_history"].as_array().unwrap().len(), 100);
    assert_eq!(v["val_acc_history"].as_array().unwrap().len(), 100);
    assert!(v["accuracy"]["train"].is_f64() && v["accuracy"]["val"].is_f64());
    assert!(v["accuracy"].get("test").is_none());
    assert!(v["train_seconds"].is_f64());
    let v = json(&["train", "--dataset", "toy", "--activation", "relu", "--json"]);
    assert!((v["final_loss"].as_f64().unwrap() - 0.0178562204869839).abs() < 1e-9);
    assert_eq!(v["grad_magnitude_history"].as_array().unwrap().len(), 50);
}

#[test]
fn toy_training_prints_the_final_loss() {
    let o = mlp(&["train", "--dataset", "toy", "--quiet"]);
    assert!(o.status.success());
    assert!(stdout(&o).starts_with("Final training loss:  0.109267946106806"), "{}", stdout(&o));
    assert!(o.stderr.is_empty());
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    for args in [
        &["train", "--dataset", "toy", "--learning-rate", "-1"][..],
        &["train", "--dataset", "toy", "--batch-size", "0"],
        &["gradcheck", "--labels", "0,1,7,2,1"],
        &["gradcheck", "--num-inputs", "3"],
        &["gradcheck", "--std", "-0.1"],
    ] {
        let o = mlp(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.starts_with("error: ") && err.lines().count() == 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"));
    }
    // clap's own usage errors also exit 2
    for args in [
        &["train"][..],
        &["train", "--dataset", "cifar"],
        &["gradcheck", "--reg", "abc"],
        &["nope"],
    ] {
        let o = mlp(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(!stderr(&o).contains("panicked"));
    }
}

#[test]
fn divergence_exits_1_with_a_hint() {
    let o = mlp(&["train", "--dataset", "toy", "--activation", "relu", "--learning-rate", "1e200"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("training diverged") && err.contains("lower the learning rate"), "{err}");
}

#[test]
fn help_is_there_for_each_subcommand() {
    for sub in ["gradcheck", "train"] {
        let o = mlp(&[sub, "--help"]);
        assert!(o.status.success());
        assert!(stdout(&o).contains("--json"));
    }
}

#[test]
fn plots_flag_writes_the_figure_and_says_where() {
    let dir = std::env::temp_dir().join(format!("mlp-plots-test-{}", std::process::id()));
    let o = mlp(&["train", "--dataset", "toy", "--quiet", "--plots", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let png = dir.join("loss.png");
    assert!(stdout(&o).contains(&format!("Wrote {}", png.display())));
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    std::fs::remove_dir_all(&dir).unwrap();

    let o = mlp(&["train", "--dataset", "toy", "--plots", "/proc/not-a-place/plots"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("error: /proc/not-a-place/plots: "), "{}", stderr(&o));
}

#[test]
fn l1_is_a_flag_and_shows_in_the_json() {
    let v = json(&["gradcheck", "--regularization", "l1", "--json"]);
    assert_eq!(v["regularization"], "l1");
    // numpy: loss + reg * sum|W| over the L2 run's; tests/numpy_parity.py checks the digits
    assert!(v["loss"].as_f64().unwrap() > 1.1822479803941373);
    let v =
        json(&["train", "--dataset", "toy", "--regularization", "l1", "--reg", "0.01", "--json"]);
    assert_eq!((v["regularization"].as_str(), v["reg"].as_f64()), (Some("l1"), Some(0.01)));
    let o = mlp(&["train", "--dataset", "toy", "--regularization", "l3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("possible values: l2, l1"), "{}", stderr(&o));
}

#[test]
fn a_saved_toy_network_evaluates_to_the_accuracy_training_printed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let trained =
        json(&["train", "--dataset", "toy", "--activation", "relu", "--save", d, "--json"]);
    for f in ["W1.npy", "b1.npy", "W2.npy", "b2.npy", "model.json"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let v = json(&["evaluate", "--load", d, "--dataset", "toy", "--json"]);
    assert_eq!(v["accuracy"]["train"], trained["accuracy"]["train"]);
    assert_eq!(v["activation"], "relu");
    let o = mlp(&["evaluate", "--load", d, "--dataset", "toy"]);
    assert!(stdout(&o).contains("toy data accuracy:  "), "{}", stdout(&o));
    // a folder without a saved network: exit 1, naming the file and how to make one
    let o = mlp(&["evaluate", "--load", "/nonexistent/net", "--dataset", "toy"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("/nonexistent/net/model.json not found") && e.contains("--save"), "{e}");
    // a network for other data: exit 2
    let o = mlp(&["evaluate", "--load", d, "--dataset", "toy", "--input-size", "6"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("has 6 inputs"), "{}", stderr(&o));
}
