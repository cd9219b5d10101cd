//! The problem set's figures, drawn with `plotters` into an in-memory bitmap and
//! encoded as PNG: the toy loss/gradient figure, `plot_stats`, and the first-layer
//! weight grid (`visualize_grid`, `show_net_weights`), and Problem 3's comparison of
//! two penalties (`plot_weight_histograms`, `show_weight_grids`).
//!
//! A [`Figure`] holds the PNG bytes. In an evcxr notebook a cell whose last
//! expression is a `Figure` shows it inline; elsewhere, [`Figure::save`] writes it.
//! Text uses DejaVu Sans, shipped with the crate, so no system fonts are needed.

mod chart;
mod figure;
mod training;
mod weights;

pub use figure::{FIGURE_SIZE, Figure};
pub use training::{plot_loss_and_gradient, plot_progress, plot_stats};
pub use weights::{
    plot_weight_histograms, show_gray, show_net_weights, show_weight_grids, visualize_grid,
};
