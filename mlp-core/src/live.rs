//! Training that shows itself in a notebook: one figure and one line, redrawn in place.
//!
//! When the notebooks' kernel relay runs this library (it sets `MLP_KERNEL_DISPLAY=1` in
//! evcxr's environment), a verbose `train`, the engine's and the student's
//! [`crate::Implementation::train`] alike, shows the loss so far and the accuracies of the
//! epochs done as a figure ([`crate::plot::plot_progress`]), and under it a line: epoch,
//! loss, accuracies, seconds so far and left. Both are updated while training runs; the
//! problem set's `Epoch ...` lines are printed below them as before.
//!
//! Each update is one line on standard output: [`DISPLAY_MARKER`] and JSON
//! `{"display_id": ..., "data": {mime type: content}}`. The relay turns a display id's
//! first line into Jupyter's `display_data` and later ones into `update_display_data`,
//! which JupyterLab and nbclient apply in place: a saved notebook keeps the last figure
//! and line, not every one. Redraws are at least [`MIN_INTERVAL`] apart, and further
//! when a figure takes long to draw (at most 1/[`COST_SHARE`] of the time between two),
//! so the figure costs training at most a few percent; the end of training always draws.

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::plot::plot_progress;
use crate::report::{EpochSummary, PrintEpochs, Reporter};

/// The start of a display line on standard output.
pub const DISPLAY_MARKER: &str = "MLP_KERNEL_DISPLAY ";

/// The shortest time between two redraws.
pub const MIN_INTERVAL: Duration = Duration::from_millis(400);

/// A redraw takes at most 1/COST_SHARE of the time since the one before.
pub const COST_SHARE: u32 = 40;

/// Whether this process shows training live: the kernel relay says so with
/// `MLP_KERNEL_DISPLAY` (`0` or empty: no).
pub fn enabled() -> bool {
    std::env::var("MLP_KERNEL_DISPLAY").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The live display of one training run (a [`Reporter`]); the epoch lines are printed too.
pub struct LiveTraining {
    figure_id: String,
    line_id: String,
    num_epochs: usize,
    start: Instant,
    last_draw: Option<Instant>,
    draw_cost: Duration,
    /// All the redraws' time so far (what showing training live cost it).
    pub drawing: Duration,
    loss: Vec<f64>,
    train_acc: Vec<f64>,
    val_acc: Vec<f64>,
    /// (epoch, iteration in it, iterations per epoch) of the last step
    at: (usize, usize, usize),
    /// How many figures were sent (for the tests).
    pub redraws: usize,
}

impl LiveTraining {
    /// A display for a run of `num_epochs` epochs.
    pub fn new(num_epochs: usize) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = format!("mlp-training-{}-{nanos:x}", std::process::id());
        LiveTraining {
            figure_id: format!("{id}-figure"),
            line_id: format!("{id}-line"),
            num_epochs,
            start: Instant::now(),
            last_draw: None,
            draw_cost: Duration::ZERO,
            drawing: Duration::ZERO,
            loss: Vec::new(),
            train_acc: Vec::new(),
            val_acc: Vec::new(),
            at: (1, 0, 1),
            redraws: 0,
        }
    }

    /// Time for a redraw: [`MIN_INTERVAL`] since the last, and long enough that drawing
    /// takes at most 1/[`COST_SHARE`] of training's time.
    fn due(&self, now: Instant) -> bool {
        let since = now - self.last_draw.unwrap_or(self.start);
        since >= MIN_INTERVAL.max(self.draw_cost * COST_SHARE)
    }

    /// The line under the figure.
    pub fn progress_line(&self) -> String {
        let (epoch, it, per_epoch) = self.at;
        let elapsed = self.start.elapsed().as_secs_f64();
        let done = (epoch - 1) * per_epoch + it + 1;
        let total = self.num_epochs * per_epoch;
        let mut line = format!("Epoch {epoch}/{}", self.num_epochs);
        if let Some(loss) = self.loss.last() {
            line += &format!(" · loss {loss:.4}");
        }
        if let (Some(t), Some(v)) = (self.train_acc.last(), self.val_acc.last()) {
            line += &format!(" · train_acc {t:.3} · val_acc {v:.3}");
        }
        line += &format!(" · {elapsed:.1} s");
        if done < total {
            let left = elapsed / done as f64 * (total - done) as f64;
            line += &format!(", about {left:.0} s left");
        } else {
            // what the figure cost training (the drawing before this last one)
            line += &format!(" (done; drawing took {:.2} s)", self.drawing.as_secs_f64());
        }
        line
    }

    /// Send the figure and the line (a figure that cannot be drawn leaves the line alone).
    fn draw(&mut self) {
        let t = Instant::now();
        let line = self.progress_line();
        let mut out = std::io::stdout().lock();
        if let Ok(fig) = plot_progress(&self.loss, &self.train_acc, &self.val_acc) {
            let png = base64::engine::general_purpose::STANDARD.encode(fig.png_bytes());
            let data = serde_json::json!({ "image/png": png, "text/plain": line.clone() });
            send(&mut out, &self.figure_id, data);
            self.redraws += 1;
        }
        send(&mut out, &self.line_id, serde_json::json!({ "text/plain": line }));
        let _ = out.flush();
        self.draw_cost = t.elapsed();
        self.drawing += self.draw_cost;
        self.last_draw = Some(Instant::now());
    }
}

fn send(out: &mut impl Write, id: &str, data: serde_json::Value) {
    let msg = serde_json::json!({ "display_id": id, "data": data });
    let _ = writeln!(out, "{DISPLAY_MARKER}{msg}");
}

impl Reporter for LiveTraining {
    fn iteration(&mut self, epoch: usize, iteration: usize, per_epoch: usize, loss: f64) {
        self.loss.push(loss);
        self.at = (epoch, iteration, per_epoch);
        if self.due(Instant::now()) {
            self.draw();
        }
    }

    fn epoch(&mut self, summary: &EpochSummary) {
        self.train_acc.push(summary.train_acc);
        self.val_acc.push(summary.val_acc);
        PrintEpochs.epoch(summary);
        if summary.epoch == summary.num_epochs || self.due(Instant::now()) {
            self.draw();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(epoch: usize, num_epochs: usize) -> EpochSummary {
        EpochSummary {
            epoch,
            num_epochs,
            loss: 0.5,
            train_acc: 0.8,
            val_acc: 0.75,
            learning_rate: 1e-3,
        }
    }

    #[test]
    fn the_end_of_training_always_draws_and_says_done() {
        let mut live = LiveTraining::new(2);
        for epoch in 1..=2 {
            for it in 0..3 {
                live.iteration(epoch, it, 3, 1.0 / (it + 1) as f64);
            }
            live.epoch(&summary(epoch, 2));
        }
        // too fast for a redraw before the end: only the last one
        assert_eq!(live.redraws, 1);
        let line = live.progress_line();
        assert!(
            line.starts_with("Epoch 2/2 · loss 0.3333 · train_acc 0.800 · val_acc 0.750 · "),
            "{line}"
        );
        assert!(line.contains("(done; drawing took 0.") && line.ends_with(" s)"), "{line}");
    }

    #[test]
    fn redraws_wait_for_the_interval_and_for_a_slow_figure() {
        let mut live = LiveTraining::new(1);
        live.last_draw = Some(Instant::now());
        assert!(!live.due(Instant::now()));
        assert!(live.due(Instant::now() + MIN_INTERVAL));
        live.draw_cost = Duration::from_millis(50);
        assert!(!live.due(Instant::now() + MIN_INTERVAL));
        assert!(live.due(Instant::now() + Duration::from_millis(50) * COST_SHARE));
    }

    #[test]
    fn the_line_estimates_the_time_left() {
        let mut live = LiveTraining::new(4);
        live.iteration(1, 0, 10, 2.5);
        let line = live.progress_line();
        assert!(line.starts_with("Epoch 1/4 · loss 2.5000 · "), "{line}");
        assert!(line.contains("s left"), "{line}");
    }
}
