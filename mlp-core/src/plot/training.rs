//! The problem set's training figures: the toy loss and gradient ([`plot_loss_and_gradient`]),
//! the notebook's `plot_stats`, and the live display's [`plot_progress`].

use std::ops::Range;

use super::chart::{BLUE, ORANGE, Panel, Series, check_history, stacked};
use super::figure::{FIGURE_SIZE, Figure};
use crate::error::Result;
use crate::report::Stats;

/// The loss per iteration on a logarithmic axis: the first iterations' large losses and
/// the last ones' small differences both in view.
fn loss_panel(values: &[f64]) -> Panel<'_> {
    Panel { log_y: true, ..Panel::per_iteration("Loss history", "Loss (log scale)", values) }
}

/// Training and validation accuracy per epoch, epochs counted from 1 as the training log
/// prints them.
fn accuracy_panel<'a>(train: &'a [f64], val: &'a [f64]) -> Panel<'a> {
    Panel {
        title: "Classification accuracy history",
        x_label: "Epoch",
        y_label: "Classification accuracy",
        series: vec![
            Series { label: Some("train"), values: train, color: BLUE },
            Series { label: Some("val"), values: val, color: ORANGE },
        ],
        y_range: None,
        x_start: 1.0,
        log_y: false,
    }
}

/// The gradient magnitude of W1 per iteration.
fn grad_panel(stats: &Stats) -> Panel<'_> {
    let title = "Gradient magnitude history (∇W1)";
    Panel::per_iteration(title, "‖∇W1‖", &stats.grad_magnitude_history)
}

/// The toy figure of Q2.3/Q2.4: training loss per iteration above, the gradient
/// magnitude of W1 per iteration below. `grad_y_range`: fixed y limits for the lower
/// panel (the sigmoid cell uses `Some(0.0..1.0)`), `None` to fit the data.
pub fn plot_loss_and_gradient(stats: &Stats, grad_y_range: Option<Range<f64>>) -> Result<Figure> {
    stacked(
        &[
            Panel {
                x_label: "iteration",
                ..Panel::per_iteration(
                    "Training Loss history",
                    "training loss",
                    &stats.loss_history,
                )
            },
            Panel { x_label: "iteration", y_range: grad_y_range, ..grad_panel(stats) },
        ],
        FIGURE_SIZE,
    )
}

/// The notebook's `plot_stats`: gradient magnitude of W1 per iteration (y from 0 to
/// `min(100, max)`), loss per iteration, and training and validation accuracy per epoch
/// with a legend. Two departures from the problem set's figure: the loss is on a log axis
/// (the problem set cuts it at 100, which hides the first few hundred iterations of the
/// MNIST runs), and epochs count from 1, as the training log prints them.
pub fn plot_stats(stats: &Stats) -> Result<Figure> {
    check_history("grad_magnitude_history", &stats.grad_magnitude_history)?;
    let grad_max = stats.grad_magnitude_history.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let grad_top = grad_max.min(100.0);
    let grad_top = if grad_top > 0.0 { grad_top } else { 1.0 };
    stacked(
        &[
            Panel { y_range: Some(0.0..grad_top), ..grad_panel(stats) },
            loss_panel(&stats.loss_history),
            accuracy_panel(&stats.train_acc_history, &stats.val_acc_history),
        ],
        FIGURE_SIZE,
    )
}

/// Training as it goes, for the live display (`mlp_core::live`): the loss per iteration
/// so far and the accuracies of the epochs done, in a smaller figure (800 x 560). Before
/// the first epoch ends the accuracy panel is left out.
pub fn plot_progress(loss: &[f64], train_acc: &[f64], val_acc: &[f64]) -> Result<Figure> {
    if train_acc.is_empty() {
        stacked(&[loss_panel(loss)], (800, 280))
    } else {
        stacked(&[loss_panel(loss), accuracy_panel(train_acc, val_acc)], (800, 560))
    }
}
