//! The first layer's weights as pictures: the problem set's `visualize_grid`, gray images,
//! the network's weight grid (`show_net_weights`), and Problem 3's comparisons of two
//! networks (`show_weight_grids`, `plot_weight_histograms`).

use ndarray::{Array2, ArrayView3, AsArray, Axis, Ix3};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::chart::{BLUE, DrawResult, chart_on, draw_mesh};
use super::figure::{FIGURE_SIZE, FONT, Figure, render, render_rgb};
use crate::error::{MlpError, Result};
use crate::model::TwoLayerMLP;

/// The problem set's `visualize_grid(Xs, ubound, padding)` for `Xs` of shape
/// `(N, H, W)`: a square grid of `ceil(sqrt(N))` tiles per side, `padding` zero
/// pixels between tiles, each tile scaled on its own from its `(min, max)` to
/// `(0, ubound)`. Shape `(H*g + padding*(g-1), W*g + padding*(g-1))`. A constant
/// tile (min = max, where numpy would divide by zero) is drawn as zeros.
pub fn visualize_grid<'a>(
    xs: impl AsArray<'a, f64, Ix3>,
    ubound: f64,
    padding: usize,
) -> Result<Array2<f64>> {
    let xs: ArrayView3<f64> = xs.into();
    let (n, h, w) = xs.dim();
    if n == 0 || h == 0 || w == 0 {
        return Err(MlpError::BadPlotData {
            what: "visualize_grid input".into(),
            reason: format!("shape ({n}, {h}, {w}) has no pixels"),
        });
    }
    if let Some(v) = xs.iter().find(|v| !v.is_finite()) {
        return Err(MlpError::BadPlotData {
            what: "visualize_grid input".into(),
            reason: format!("it contains the non-finite value {v}"),
        });
    }
    let g = (n as f64).sqrt().ceil() as usize;
    let mut grid = Array2::zeros((h * g + padding * (g - 1), w * g + padding * (g - 1)));
    for (k, img) in xs.axis_iter(Axis(0)).enumerate() {
        let (y0, x0) = ((k / g) * (h + padding), (k % g) * (w + padding));
        let low = img.fold(f64::INFINITY, |a, &b| a.min(b));
        let high = img.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let mut tile = grid.slice_mut(ndarray::s![y0..y0 + h, x0..x0 + w]);
        if high > low {
            tile.zip_mut_with(&img, |t, &v| *t = ubound * (v - low) / (high - low));
        }
    }
    Ok(grid)
}

/// Show a 2-d array as a gray image, nearest-neighbour upscaled by `scale`: values
/// are cast to `u8` as numpy's `astype('uint8')` does for 0..=255 (truncated), and
/// shown with matplotlib's gray colormap over the image's min..max.
pub fn show_gray(image: &Array2<f64>, scale: usize) -> Result<Figure> {
    let (gray, wide, tall) = gray_pixels(image, scale)?;
    Figure::from_gray(&gray, wide as u32, tall as u32)
}

/// [`show_gray`]'s pixels, row-major, with their width and height.
fn gray_pixels(image: &Array2<f64>, scale: usize) -> Result<(Vec<u8>, usize, usize)> {
    if image.is_empty() || scale == 0 {
        return Err(MlpError::BadPlotData {
            what: "image".into(),
            reason: format!("shape {:?} at scale {scale} has no pixels", image.dim()),
        });
    }
    let bytes = image.mapv(|v| v.clamp(0.0, 255.0) as u8);
    let lo = bytes.iter().copied().min().unwrap_or(0);
    let hi = bytes.iter().copied().max().unwrap_or(0);
    let norm = |b: u8| {
        if hi > lo { ((u32::from(b - lo) * 255) / u32::from(hi - lo)) as u8 } else { 0 }
    };
    let (rows, cols) = image.dim();
    let (wide, tall) = (cols * scale, rows * scale);
    let mut gray = Vec::with_capacity(wide * tall);
    for r in 0..tall {
        let row = bytes.row(r / scale);
        gray.extend((0..wide).map(|c| norm(row[c / scale])));
    }
    Ok((gray, wide, tall))
}

/// The notebook's `show_net_weights`: W1 `(784, H)` transposed and reshaped to
/// `(H, 28, 28)`, laid out by [`visualize_grid`] with padding 3, gray,
/// nearest-neighbour upscaled to about 800 pixels.
pub fn show_net_weights(net: &TwoLayerMLP) -> Result<Figure> {
    let grid = weight_grid(net)?;
    let scale = (FIGURE_SIZE.1 as usize / grid.nrows().max(grid.ncols())).max(1);
    show_gray(&grid, scale)
}

/// W1 `(784, H)` as the grid of [`show_net_weights`], before scaling.
fn weight_grid(net: &TwoLayerMLP) -> Result<Array2<f64>> {
    let w1 = &net.params.w1;
    if w1.nrows() != 28 * 28 {
        return Err(MlpError::ShapeMismatch {
            what: "show_net_weights: W1 (one 28x28 image per hidden unit)".into(),
            expected: vec![784, w1.ncols()],
            found: w1.shape().to_vec(),
        });
    }
    let tiles =
        w1.t().as_standard_layout().into_owned().into_shape_with_order((w1.ncols(), 28, 28));
    let tiles = tiles.map_err(|e| MlpError::Plot(e.to_string()))?;
    visualize_grid(&tiles, 255.0, 3)
}

/// Several networks' weight grids ([`show_net_weights`]) side by side, each under its
/// title: to compare what two penalties did to the same network.
pub fn show_weight_grids(nets: &[(&str, &TwoLayerMLP)]) -> Result<Figure> {
    let grids = nets.iter().map(|(_, net)| weight_grid(net)).collect::<Result<Vec<_>>>()?;
    let Some(side) = grids.iter().map(|g| g.nrows().max(g.ncols())).max() else {
        return Err(MlpError::BadPlotData {
            what: "weight grids".into(),
            reason: "no network given".into(),
        });
    };
    let (w, title) = (FIGURE_SIZE.0, 40u32);
    let cell = w / nets.len() as u32;
    let scale = (cell as usize / side).max(1);
    let h = title + (side * scale) as u32 + 10;
    let mut rgb = render_rgb((w, h), |root| {
        // (made here, once render_rgb has registered the font: plotters loads it as the
        // style is made, and this may be a process's first figure)
        let style =
            TextStyle::from((FONT, 20).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
        for (k, (name, _)) in nets.iter().enumerate() {
            let x = (k as u32 * cell + cell / 2) as i32;
            root.draw_text(name, &style, (x, (title / 2) as i32))?;
        }
        Ok(())
    })?;
    for (k, grid) in grids.iter().enumerate() {
        let (gray, gw, gh) = gray_pixels(grid, scale)?;
        let x0 = (k as u32 * cell) as usize + (cell as usize - gw) / 2;
        for (r, row) in gray.chunks_exact(gw).enumerate().take(gh) {
            let start = ((title as usize + r) * w as usize + x0) * 3;
            for (px, &g) in rgb[start..start + 3 * gw].chunks_exact_mut(3).zip(row) {
                px.fill(g);
            }
        }
    }
    Figure::from_rgb(&rgb, w, h)
}

/// Problem 3's figure: a histogram of each network's first-layer weights, one panel
/// per network over the same bins, counts on a log scale (so that both the spike at 0
/// and the tails show).
pub fn plot_weight_histograms(nets: &[(&str, &TwoLayerMLP)]) -> Result<Figure> {
    const BINS: usize = 81;
    let weights: Vec<_> = nets.iter().map(|(_, net)| &net.params.w1).collect();
    for ((name, _), w) in nets.iter().zip(&weights) {
        if let Some(v) = w.iter().find(|v| !v.is_finite()) {
            return Err(MlpError::BadPlotData {
                what: format!("W1 of {name}"),
                reason: format!("it holds {v}"),
            });
        }
    }
    let top = weights.iter().flat_map(|w| w.iter()).fold(0.0f64, |m, v| m.max(v.abs()));
    if nets.is_empty() || top == 0.0 {
        return Err(MlpError::BadPlotData {
            what: "weight histograms".into(),
            reason: "no nonzero weights to show".into(),
        });
    }
    let width = 2.0 * top / BINS as f64;
    let counts: Vec<Vec<usize>> = weights
        .iter()
        .map(|w| {
            let mut c = vec![0; BINS];
            for v in w.iter() {
                c[(((v + top) / width) as usize).min(BINS - 1)] += 1;
            }
            c
        })
        .collect();
    let most = counts.iter().flatten().copied().max().unwrap_or(1) as f64;
    render(FIGURE_SIZE, |root| {
        let areas = root.split_evenly((nets.len(), 1));
        for ((area, (name, _)), c) in areas.iter().zip(nets).zip(&counts) {
            draw_histogram(area, name, c, (top, width), most)?;
        }
        Ok(())
    })
}

/// One network's histogram: `counts` of the bins of `width` from `-top` to `top`, under `title`.
fn draw_histogram<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    counts: &[usize],
    (top, width): (f64, f64),
    most: f64,
) -> DrawResult<DB> {
    let mut chart =
        chart_on(area, title).build_cartesian_2d(-top..top, (0.8f64..most * 1.5).log_scale())?;
    // (a tick at zero prints as 0.00, not -0.00)
    let x_format = |x: &f64| format!("{:.2}", if x.abs() < 5e-3 { 0.0 } else { *x });
    let axes = ("first-layer weight", "count (log scale)");
    draw_mesh(&mut chart, axes, &x_format, &|y| format!("{y:.0}"))?;
    let bars = counts.iter().enumerate().filter(|&(_, &n)| n > 0).map(|(i, &n)| {
        let x0 = -top + i as f64 * width;
        Rectangle::new([(x0, 0.8), (x0 + width, n as f64)], BLUE.filled())
    });
    chart.draw_series(bars)?;
    Ok(())
}
