//! The chart every training figure is made of: panels stacked in one figure, each with
//! its title, axes, lines (cut to the y range as matplotlib clips them) and legend; the
//! mesh style and chart layout the histograms share.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::figure::{FONT, Figure, render};
use crate::error::{MlpError, Result};

pub(super) const BLUE: RGBColor = RGBColor(31, 119, 180);
pub(super) const ORANGE: RGBColor = RGBColor(255, 127, 14);

/// One line of a panel.
pub(super) struct Series<'a> {
    pub label: Option<&'a str>,
    pub values: &'a [f64],
    pub color: RGBColor,
}

/// One panel: title, axis labels, the lines, and optional fixed y limits.
pub(super) struct Panel<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<Series<'a>>,
    pub y_range: Option<Range<f64>>,
    /// The x of each line's first value (0 for iterations, 1 for epochs).
    pub x_start: f64,
    /// A logarithmic y axis (a loss that falls from hundreds to below one).
    pub log_y: bool,
}

impl<'a> Panel<'a> {
    /// A panel of values per iteration from 0, with a linear y axis fitted to the data.
    pub fn per_iteration(title: &'a str, y_label: &'a str, values: &'a [f64]) -> Self {
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
}

/// Reject empty histories and NaN/inf values, naming the history and the index.
pub(super) fn check_history(name: &str, values: &[f64]) -> Result<()> {
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

/// Draw stacked panels into one figure of `size` pixels.
pub(super) fn stacked(panels: &[Panel], size: (u32, u32)) -> Result<Figure> {
    for p in panels {
        for s in &p.series {
            check_history(s.label.unwrap_or(p.title), s.values)?;
        }
    }
    render(size, |root| {
        for (area, panel) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
            draw_panel(area, panel)?;
        }
        Ok(())
    })
}

/// What drawing on a backend's area returns.
pub(super) type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A chart on `area` under `title`, with room for the axes' labels.
pub(super) fn chart_on<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
) -> ChartBuilder<'a, 'static, DB> {
    let mut builder = ChartBuilder::on(area);
    builder.caption(title, (FONT, 20)).margin(10).x_label_area_size(42).y_label_area_size(70);
    builder
}

/// The figures' mesh: light grey major lines and no minor ones, the axes' descriptions and
/// tick labels in the shipped font, each tick labelled by `x_format` and `y_format`.
pub(super) fn draw_mesh<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    (x_desc, y_desc): (&str, &str),
    x_format: &dyn Fn(&X::ValueType) -> String,
    y_format: &dyn Fn(&Y::ValueType) -> String,
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    chart
        .configure_mesh()
        .x_label_formatter(x_format)
        .y_label_formatter(y_format)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(235, 235, 235))
        .draw()
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> DrawResult<DB> {
    let n = p.series.iter().map(|s| s.values.len()).max().unwrap_or(1);
    let x_range = p.x_start..p.x_start + (n.max(2) - 1) as f64;
    let y_range = p.y_range.clone().unwrap_or_else(|| auto_range(&p.series, p.log_y));
    let mut builder = chart_on(area, p.title);
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
    mut chart: ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    p: &Panel,
    y_range: Range<f64>,
    y_format: &dyn Fn(&f64) -> String,
) -> DrawResult<DB>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    draw_mesh(&mut chart, (p.x_label, p.y_label), &|x| format!("{x:.0}"), y_format)?;
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
