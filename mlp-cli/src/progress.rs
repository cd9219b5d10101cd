//! What the command shows while training (a [`Reporter`]): the problem set's epoch lines
//! on standard output ([`PrintEpochs`]) and, when standard error is a terminal, a
//! progress bar there.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use mlp_core::{EpochSummary, PrintEpochs, Reporter};

pub struct TrainProgress {
    bar: Option<ProgressBar>,
    print_epochs: bool,
}

impl TrainProgress {
    /// `show_bar`: draw a bar if standard error is a terminal; `print_epochs`: print
    /// `Epoch %d: loss %f, train_acc %f, val_acc %f` lines.
    pub fn new(show_bar: bool, print_epochs: bool, num_epochs: usize) -> Self {
        let bar = (show_bar && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(num_epochs as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} epoch {pos}/{len} [{bar:30}] {msg} ({elapsed})",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar
        });
        TrainProgress { bar, print_epochs }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Reporter for TrainProgress {
    fn iteration(&mut self, _epoch: usize, iteration: usize, per_epoch: usize, loss: f64) {
        if let Some(bar) = &self.bar
            && (iteration.is_multiple_of(20) || iteration + 1 == per_epoch)
        {
            bar.set_message(format!("batch {}/{per_epoch} loss {loss:.4}", iteration + 1));
        }
    }

    fn epoch(&mut self, summary: &EpochSummary) {
        match &self.bar {
            Some(bar) => {
                if self.print_epochs {
                    bar.suspend(|| PrintEpochs.epoch(summary));
                }
                bar.inc(1);
            }
            None if self.print_epochs => PrintEpochs.epoch(summary),
            None => {}
        }
    }
}
