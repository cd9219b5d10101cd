//! What `mlp train` writes once the network is trained: the summary (text, or one
//! JSON object) and the notebook's figures as PNG files.

use std::path::{Path, PathBuf};

use mlp_core::{
    Activation, MlpError, Stats, TrainConfig, TwoLayerMLP, plot_loss_and_gradient, plot_stats,
    py_float, show_net_weights,
};
use serde_json::json;

use crate::args::Dataset;

/// The notebook's figures for this run, as PNG files in `dir`.
pub(crate) fn write_plots(
    dir: &Path,
    dataset: Dataset,
    net: &TwoLayerMLP,
    stats: &Stats,
) -> Result<Vec<PathBuf>, MlpError> {
    std::fs::create_dir_all(dir)
        .map_err(|source| MlpError::Io { path: dir.to_path_buf(), source })?;
    let figures = match dataset {
        // the sigmoid cell fixes the gradient panel to 0..1, the ReLU cell does not
        Dataset::Toy => {
            let grad_range = (net.activation == Activation::Sigmoid).then_some(0.0..1.0);
            vec![("loss.png", plot_loss_and_gradient(stats, grad_range)?)]
        }
        Dataset::Mnist => {
            vec![("stats.png", plot_stats(stats)?), ("weights.png", show_net_weights(net)?)]
        }
    };
    let mut written = Vec::new();
    for (name, figure) in figures {
        let path = dir.join(name);
        figure.save(&path)?;
        written.push(path);
    }
    Ok(written)
}

/// The run's final loss, accuracies and time: as text, or as one JSON object (with the
/// histories) if `as_json`.
pub(crate) fn report(
    as_json: bool,
    config: &TrainConfig,
    net: &TwoLayerMLP,
    stats: &Stats,
    (train_acc, val_acc, test_acc): (f64, f64, Option<f64>),
    train_seconds: f64,
) {
    let final_loss = stats.final_loss();
    if as_json {
        let mut accuracy = json!({"train": train_acc, "val": val_acc});
        if let Some(t) = test_acc {
            accuracy["test"] = json!(t);
        }
        println!(
            "{}",
            json!({
                "loss_history": stats.loss_history,
                "grad_magnitude_history": stats.grad_magnitude_history,
                "train_acc_history": stats.train_acc_history,
                "val_acc_history": stats.val_acc_history,
                "final_loss": final_loss,
                "accuracy": accuracy,
                "train_seconds": train_seconds,
                "kernel": stats.kernel.name(),
                "regularization": config.penalty.name(),
                "reg": config.reg,
            })
        );
        return;
    }
    let name = match net.activation {
        Activation::Sigmoid => "Sigmoid",
        Activation::Relu => "ReLU",
    };
    println!("Final training loss:  {}", py_float(final_loss));
    println!("{name} final training accuracy:  {}", py_float(train_acc));
    println!("{name} final validation accuracy:  {}", py_float(val_acc));
    if let Some(t) = test_acc {
        println!("{name} test accuracy:  {}", py_float(t));
    }
    println!("Training time: {train_seconds:.2} s ({} kernel)", stats.kernel.name());
}
