//! The problem set's figures, drawn with `plotters` into an in-memory bitmap and
//! encoded as PNG: the toy loss/gradient figure, `plot_stats`, and the first-layer
//! weight grid (`visualize_grid`, `show_net_weights`), and Problem 3's comparison of
//! two penalties (`plot_weight_histograms`, `show_weight_grids`).
//!
//! A [`Figure`] holds the PNG bytes. In an evcxr notebook a cell whose last
//! expression is a `Figure` shows it inline; elsewhere, [`Figure::save`] writes it.
//! Text uses DejaVu Sans, shipped with the crate, so no system fonts are needed.

use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use base64::Engine;
use ndarray::{Array2, ArrayView3, AsArray, Axis, Ix3};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};
use plotters_bitmap::BitMapBackend;

use crate::error::{MlpError, Result};
use crate::model::TwoLayerMLP;
use crate::report::Stats;

/// Figure size in pixels, as matplotlib's `figsize=(10, 8)` at 100 dpi.
pub const FIGURE_SIZE: (u32, u32) = (1000, 800);

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Register the shipped font with plotters, once per process.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    if *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()) {
        Ok(())
    } else {
        Err(MlpError::Plot("the shipped DejaVu Sans font could not be loaded".into()))
    }
}

/// An encoded PNG image.
#[derive(Clone, PartialEq, Eq)]
pub struct Figure {
    png: Vec<u8>,
    width: u32,
    height: u32,
}

impl std::fmt::Debug for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Figure({}x{} PNG, {} bytes)", self.width, self.height, self.png.len())
    }
}

impl Figure {
    /// Encode an RGB buffer (`width * height * 3` bytes) as PNG.
    fn from_rgb(rgb: &[u8], width: u32, height: u32) -> Result<Self> {
        Self::encode(rgb, width, height, png::ColorType::Rgb)
    }

    /// Encode an 8-bit grayscale buffer (`width * height` bytes) as PNG.
    fn from_gray(gray: &[u8], width: u32, height: u32) -> Result<Self> {
        Self::encode(gray, width, height, png::ColorType::Grayscale)
    }

    fn encode(data: &[u8], width: u32, height: u32, color: png::ColorType) -> Result<Self> {
        let mut png_bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let plot_err = |e: png::EncodingError| MlpError::Plot(format!("PNG encoding failed: {e}"));
        let mut writer = encoder.write_header().map_err(plot_err)?;
        writer.write_image_data(data).map_err(plot_err)?;
        writer.finish().map_err(plot_err)?;
        Ok(Figure { png: png_bytes, width, height })
    }

    /// The encoded PNG.
    pub fn png_bytes(&self) -> &[u8] {
        &self.png
    }

    /// `(width, height)` in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Write the PNG to `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, &self.png).map_err(|e| MlpError::io(path, e))
    }

    /// Show the figure inline in an evcxr notebook: prints
    /// `EVCXR_BEGIN_CONTENT image/png`, the base64 PNG and `EVCXR_END_CONTENT` in
    /// one write. evcxr calls this when a cell's last expression is a `Figure`.
    pub fn evcxr_display(&self) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.png);
        let block = format!("EVCXR_BEGIN_CONTENT image/png\n{b64}\nEVCXR_END_CONTENT\n");
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(block.as_bytes());
        let _ = out.flush();
    }
}

/// One line of a panel.
struct Series<'a> {
    label: Option<&'a str>,
    values: &'a [f64],
    color: RGBColor,
}

/// One panel: title, axis labels, the lines, and optional fixed y limits.
struct Panel<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    series: Vec<Series<'a>>,
    y_range: Option<Range<f64>>,
    /// The x of each line's first value (0 for iterations, 1 for epochs).
    x_start: f64,
    /// A logarithmic y axis (a loss that falls from hundreds to below one).
    log_y: bool,
}

impl<'a> Panel<'a> {
    /// A panel of values per iteration from 0, with a linear y axis fitted to the data.
    fn per_iteration(title: &'a str, y_label: &'a str, values: &'a [f64]) -> Self {
        Panel {
            title,
            x_label: "Iteration",
            y_label,
            series: vec![Series { label: None, values, color: BLUE }],
            y_range: None,
            x_start: 0.0,
            log_y: false,
        }
    }

    /// The loss per iteration on a logarithmic axis: the first iterations' large losses
    /// and the last ones' small differences both in view.
    fn loss(values: &'a [f64]) -> Self {
        Panel { log_y: true, ..Panel::per_iteration("Loss history", "Loss (log scale)", values) }
    }

    /// Training and validation accuracy per epoch, epochs counted from 1 as the training
    /// log prints them.
    fn accuracies(train: &'a [f64], val: &'a [f64]) -> Self {
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
}

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);

/// Reject empty histories and NaN/inf values, naming the history and the index.
fn check_history(name: &str, values: &[f64]) -> Result<()> {
    if values.is_empty() {
        return Err(MlpError::BadPlotData {
            what: name.to_string(),
            reason: "the history is empty (train for at least one epoch first)".into(),
        });
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(MlpError::BadPlotData {
            what: name.to_string(),
            reason: format!("value {} at index {i} is not finite", values[i]),
        });
    }
    Ok(())
}

/// A y range that shows all of `values` with a small margin (on a log axis: the
/// positive values, with a margin of a few percent in ratio).
fn auto_range(series: &[Series], log_y: bool) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in series.iter().flat_map(|s| s.values) {
        if !log_y || v > 0.0 {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if log_y {
        return if lo.is_finite() { lo / 1.1..hi * 1.1 } else { 0.1..1.0 };
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { lo.abs().max(1.0) * 0.05 };
    (lo - pad)..(hi + pad)
}

/// Draw stacked panels into one figure of [`FIGURE_SIZE`].
fn stacked(panels: &[Panel]) -> Result<Figure> {
    stacked_sized(panels, FIGURE_SIZE)
}

/// Draw stacked panels into one figure of `(w, h)` pixels.
fn stacked_sized(panels: &[Panel], (w, h): (u32, u32)) -> Result<Figure> {
    ensure_font()?;
    for p in panels {
        for s in &p.series {
            check_history(s.label.unwrap_or(p.title), s.values)?;
        }
    }
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        let areas = root.split_evenly((panels.len(), 1));
        for (area, panel) in areas.iter().zip(panels) {
            draw_panel(area, panel).map_err(|e| MlpError::Plot(e.to_string()))?;
        }
        root.present().map_err(|e| MlpError::Plot(e.to_string()))?;
    }
    Figure::from_rgb(&rgb, w, h)
}

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> DrawResult<DB> {
    let n = p.series.iter().map(|s| s.values.len()).max().unwrap_or(1);
    let x_range = p.x_start..p.x_start + (n.max(2) - 1) as f64;
    let y_range = p.y_range.clone().unwrap_or_else(|| auto_range(&p.series, p.log_y));
    let mut builder = ChartBuilder::on(area);
    builder.caption(p.title, (FONT, 20)).margin(10).x_label_area_size(42).y_label_area_size(70);
    if p.log_y {
        let chart = builder.build_cartesian_2d(x_range, y_range.clone().log_scale())?;
        draw_lines(chart, p, y_range, &|y: &f64| log_tick(*y))
    } else {
        let decimals = decimals_for(y_range.end - y_range.start);
        let chart = builder.build_cartesian_2d(x_range, y_range.clone())?;
        draw_lines(chart, p, y_range, &|y: &f64| format!("{y:.decimals$}"))
    }
}

/// A log axis's tick label: 1, 2 and 5 times a power of ten get one (0.5, 1, 2, 5, 10,
/// 20, ...: at most 3 decimals, no trailing zeros); the ticks between stay unlabelled, or
/// their labels would overlap.
fn log_tick(y: f64) -> String {
    let mantissa = y / 10f64.powf(y.log10().floor());
    if [1.0, 2.0, 5.0, 10.0].iter().any(|m| (mantissa - m).abs() < 1e-6) {
        format!("{y:.3}").trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        String::new()
    }
}

/// The mesh, the lines (cut to the y range) and the legend of one panel's chart.
fn draw_lines<'a, DB: DrawingBackend + 'a, Y>(
    mut chart: ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    p: &Panel,
    y_range: Range<f64>,
    y_format: &dyn Fn(&f64) -> String,
) -> DrawResult<DB>
where
    Y: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(y_format)
        .x_desc(p.x_label)
        .y_desc(p.y_label)
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(235, 235, 235))
        .draw()?;
    for s in &p.series {
        let style = s.color.stroke_width(2);
        let segments = clip_to(s.values, p.x_start, y_range.clone());
        let line =
            chart.draw_series(segments.into_iter().map(|seg| PathElement::new(seg, style)))?;
        if let Some(label) = s.label {
            line.label(label).legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
        }
    }
    if p.series.iter().any(|s| s.label.is_some()) {
        chart
            .configure_series_labels()
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
    }
    Ok(())
}

/// The polyline through `(i, values[i])` cut to the band `y` as matplotlib clips it:
/// runs of points inside the band, each ending where the line crosses its edge. A line
/// that leaves the band is not drawn along its edge.
fn clip_to(values: &[f64], x_start: f64, y: Range<f64>) -> Vec<Vec<(f64, f64)>> {
    let inside = |v: f64| y.start <= v && v <= y.end;
    // where the segment from (x0, v0) to (x0 + 1, v1) meets the edge it crosses
    let cross = |x0: f64, v0: f64, v1: f64| {
        let edge = if v1 > y.end || v0 > y.end { y.end } else { y.start };
        (x0 + (edge - v0) / (v1 - v0), edge)
    };
    let mut segments = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for (i, &v) in values.iter().enumerate() {
        let x = x_start + i as f64;
        match (i.checked_sub(1).map(|j| values[j]), inside(v)) {
            (Some(prev), true) if !inside(prev) => current.push(cross(x - 1.0, prev, v)),
            (Some(prev), false) if inside(prev) => {
                current.push(cross(x - 1.0, prev, v));
                segments.push(std::mem::take(&mut current));
            }
            _ => {}
        }
        if inside(v) {
            current.push((x, v));
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

/// Decimals for tick labels on an axis spanning `span`: none from 10 up, then more
/// as the span shrinks.
fn decimals_for(span: f64) -> usize {
    if span >= 10.0 {
        0
    } else if span >= 1.0 {
        1
    } else {
        (-span.log10()).ceil() as usize + 1
    }
}

/// The toy figure of Q2.3/Q2.4: training loss per iteration above, the gradient
/// magnitude of W1 per iteration below. `grad_y_range`: fixed y limits for the lower
/// panel (the sigmoid cell uses `Some(0.0..1.0)`), `None` to fit the data.
pub fn plot_loss_and_gradient(stats: &Stats, grad_y_range: Option<Range<f64>>) -> Result<Figure> {
    stacked(&[
        Panel {
            x_label: "iteration",
            ..Panel::per_iteration("Training Loss history", "training loss", &stats.loss_history)
        },
        Panel {
            x_label: "iteration",
            y_range: grad_y_range,
            ..Panel::per_iteration(
                "Gradient magnitude history (∇W1)",
                "‖∇W1‖",
                &stats.grad_magnitude_history,
            )
        },
    ])
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
    stacked(&[
        Panel {
            y_range: Some(0.0..grad_top),
            ..Panel::per_iteration(
                "Gradient magnitude history (∇W1)",
                "‖∇W1‖",
                &stats.grad_magnitude_history,
            )
        },
        Panel::loss(&stats.loss_history),
        Panel::accuracies(&stats.train_acc_history, &stats.val_acc_history),
    ])
}

/// Training as it goes, for the live display ([`crate::live`]): the loss per iteration
/// so far and the accuracies of the epochs done, in a smaller figure (800 x 560). Before
/// the first epoch ends the accuracy panel is left out.
pub fn plot_progress(loss: &[f64], train_acc: &[f64], val_acc: &[f64]) -> Result<Figure> {
    if train_acc.is_empty() {
        stacked_sized(&[Panel::loss(loss)], (800, 280))
    } else {
        stacked_sized(&[Panel::loss(loss), Panel::accuracies(train_acc, val_acc)], (800, 560))
    }
}

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
    ensure_font()?;
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
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        let style =
            TextStyle::from((FONT, 20).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
        for (k, (name, _)) in nets.iter().enumerate() {
            let x = (k as u32 * cell + cell / 2) as i32;
            root.draw_text(name, &style, (x, (title / 2) as i32))
                .map_err(|e| MlpError::Plot(e.to_string()))?;
        }
        root.present().map_err(|e| MlpError::Plot(e.to_string()))?;
    }
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
    ensure_font()?;
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
    let (w, h) = FIGURE_SIZE;
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        let areas = root.split_evenly((nets.len(), 1));
        for ((area, (name, _)), c) in areas.iter().zip(nets).zip(&counts) {
            draw_histogram(area, name, c, (top, width), most)
                .map_err(|e| MlpError::Plot(e.to_string()))?;
        }
        root.present().map_err(|e| MlpError::Plot(e.to_string()))?;
    }
    Figure::from_rgb(&rgb, w, h)
}

fn draw_histogram<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    counts: &[usize],
    (top, width): (f64, f64),
    most: f64,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(10)
        .x_label_area_size(42)
        .y_label_area_size(70)
        .build_cartesian_2d(-top..top, (0.8f64..most * 1.5).log_scale())?;
    chart
        .configure_mesh()
        // (a tick at zero prints as 0.00, not -0.00)
        .x_label_formatter(&|x| format!("{:.2}", if x.abs() < 5e-3 { 0.0 } else { *x }))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_desc("first-layer weight")
        .y_desc("count (log scale)")
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let bars = counts.iter().enumerate().filter(|&(_, &n)| n > 0).map(|(i, &n)| {
        let x0 = -top + i as f64 * width;
        Rectangle::new([(x0, 0.8), (x0 + width, n as f64)], BLUE.filled())
    });
    chart.draw_series(bars)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_label_one_two_and_five_only() {
        let labels: Vec<String> =
            [0.5, 0.6, 1.0, 2.0, 3.0, 5.0, 20.0, 70.0, 100.0].map(log_tick).into();
        assert_eq!(labels, ["0.5", "", "1", "2", "", "5", "20", "", "100"]);
    }

    #[test]
    fn lines_leaving_the_band_are_cut_at_its_edge() {
        // from 120 down to 20 the line enters 0..100 at x = 1.2; from 10 up to 130 it
        // leaves at x = 3.75
        let segs = clip_to(&[150.0, 120.0, 20.0, 10.0, 130.0], 0.0, 0.0..100.0);
        assert_eq!(segs, vec![vec![(1.2, 100.0), (2.0, 20.0), (3.0, 10.0), (3.75, 100.0)]]);
        assert_eq!(clip_to(&[1.0, 2.0], 0.0, 0.0..100.0), vec![vec![(0.0, 1.0), (1.0, 2.0)]]);
        assert!(clip_to(&[200.0, 300.0], 0.0, 0.0..100.0).is_empty());
    }
}
