//! The figures: PNGs that decode to the expected size, the weight grid pixel-exact,
//! something drawn in every panel, and clear errors for bad input.

use mlp_core::ndarray::{Array2, Array3, array};
use mlp_core::plot::{FIGURE_SIZE, show_gray};
use mlp_core::{
    Activation, Figure, MlpError, NumpyRng, Stats, TwoLayerMLP, plot_loss_and_gradient, plot_stats,
    show_net_weights, visualize_grid,
};

/// Decode a figure: (width, height, bytes per pixel, pixels).
fn decode(fig: &Figure) -> (u32, u32, usize, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(fig.png_bytes().to_vec()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, info.color_type.samples(), buf)
}

fn stats(epochs: usize, per_epoch: usize) -> Stats {
    let n = epochs * per_epoch;
    Stats {
        loss_history: (0..n).map(|i| 80.0 * (-(i as f64) / 300.0).exp() + 2.0).collect(),
        grad_magnitude_history: (0..n).map(|i| 10.0 - i as f64 / n as f64 * 5.0).collect(),
        train_acc_history: (0..epochs).map(|e| 0.2 + 0.7 * e as f64 / epochs as f64).collect(),
        val_acc_history: (0..epochs).map(|e| 0.25 + 0.6 * e as f64 / epochs as f64).collect(),
        ..Stats::default()
    }
}

/// Whether rows `rows` of an RGB image hold any pixel that is not white or light grid grey.
fn has_ink(pixels: &[u8], width: u32, rows: std::ops::Range<u32>) -> bool {
    rows.flat_map(|r| (0..width).map(move |c| ((r * width + c) * 3) as usize))
        .any(|i| pixels[i..i + 3].iter().any(|&v| v < 200))
}

/// Whether the band holds a blue line pixel (the series colour, not text or axes).
fn has_line(pixels: &[u8], width: u32, rows: std::ops::Range<u32>) -> bool {
    rows.flat_map(|r| (0..width).map(move |c| ((r * width + c) * 3) as usize))
        .any(|i| pixels[i] < 60 && pixels[i + 1] > 90 && pixels[i + 1] < 150 && pixels[i + 2] > 150)
}

#[test]
fn stats_plot_is_a_1000x800_png_with_a_line_in_each_of_three_panels() {
    let fig = plot_stats(&stats(20, 500)).unwrap();
    let (w, h, channels, pixels) = decode(&fig);
    assert_eq!((w, h), FIGURE_SIZE);
    assert_eq!(fig.size(), FIGURE_SIZE);
    assert_eq!(channels, 3);
    let third = h / 3;
    for panel in 0..3 {
        let band = panel * third..(panel + 1) * third;
        assert!(has_ink(&pixels, w, band.clone()), "panel {panel} is blank");
        assert!(has_line(&pixels, w, band), "panel {panel} has no data line");
    }
}

#[test]
fn toy_plot_has_two_panels_with_lines() {
    let mut s = stats(100, 1);
    // a toy sigmoid run's gradient norms stay below 1, the panel's fixed range
    s.grad_magnitude_history = (0..100).map(|i| 0.3 / (1.0 + i as f64 / 10.0)).collect();
    for range in [Some(0.0..1.0), None] {
        let fig = plot_loss_and_gradient(&s, range).unwrap();
        let (w, h, _, pixels) = decode(&fig);
        assert_eq!((w, h), FIGURE_SIZE);
        assert!(has_line(&pixels, w, 0..h / 2));
        assert!(has_line(&pixels, w, h / 2..h));
    }
}

#[test]
fn visualize_grid_is_pixel_exact() {
    // three 2x2 tiles -> a 2x2 grid of tiles (ceil(sqrt(3)) = 2), padding 1: 5x5
    let xs = Array3::from_shape_vec(
        (3, 2, 2),
        vec![
            0.0, 1.0, 2.0, 4.0, // tile 0: min 0, max 4
            -1.0, -1.0, 1.0, 0.0, // tile 1: min -1, max 1
            5.0, 5.0, 5.0, 5.0, // tile 2: constant
        ],
    )
    .unwrap();
    let grid = visualize_grid(&xs, 255.0, 1).unwrap();
    let expected: Array2<f64> = array![
        [0.0, 63.75, 0.0, 0.0, 0.0],
        [127.5, 255.0, 0.0, 255.0, 127.5],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
    ];
    assert_eq!(grid, expected);
    // ubound scales, padding 0 packs the tiles
    let grid = visualize_grid(&xs, 1.0, 0).unwrap();
    assert_eq!(grid.dim(), (4, 4));
    assert_eq!(grid[[1, 1]], 1.0);
    assert_eq!(grid[[1, 2]], 1.0);
}

#[test]
fn weights_figure_is_the_grid_upscaled_in_gray() {
    let net =
        TwoLayerMLP::new(784, 64, 10, 0.1, Activation::Sigmoid, &mut NumpyRng::new(0)).unwrap();
    let fig = show_net_weights(&net).unwrap();
    let (w, h, channels, pixels) = decode(&fig);
    // 8x8 tiles of 28 px with 3 px padding = 245 px, upscaled x3
    assert_eq!((w, h, channels), (735, 735, 1));
    // the padding rows are black; tile 0's pixel (0, 0) matches the grid
    assert!(
        pixels[(28 * 3 * w as usize)..(28 * 3 * w as usize + w as usize)].iter().all(|&p| p == 0)
    );
    let tiles = net
        .params
        .w1
        .t()
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((64, 28, 28))
        .unwrap();
    let grid = visualize_grid(&tiles, 255.0, 3).unwrap();
    assert_eq!(pixels[0], grid[[0, 0]] as u8);
    assert_eq!(pixels[3 * 5 + 1], grid[[0, 5]] as u8);
}

#[test]
fn figures_show_inline_and_save() {
    let fig = show_gray(&array![[0.0, 255.0], [128.0, 64.0]], 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.png");
    fig.save(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), fig.png_bytes());
    assert_eq!(decode(&fig).0, 4);
}

#[test]
fn bad_plot_input_is_an_error() {
    let empty = Stats::default();
    let err = plot_stats(&empty).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot plot grad_magnitude_history: the history is empty (train for at least one epoch first)"
    );
    let mut s = stats(3, 10);
    s.loss_history[7] = f64::NAN;
    let err = plot_loss_and_gradient(&s, None).unwrap_err();
    assert!(matches!(err, MlpError::BadPlotData { .. }));
    assert!(err.to_string().contains("value NaN at index 7 is not finite"), "{err}");

    let toy = TwoLayerMLP::new(4, 10, 3, 0.1, Activation::Relu, &mut NumpyRng::new(0)).unwrap();
    let err = show_net_weights(&toy).unwrap_err();
    assert_eq!(
        err.to_string(),
        "show_net_weights: W1 (one 28x28 image per hidden unit): expected shape [784, 10], found [4, 10]"
    );
    let err = visualize_grid(&Array3::<f64>::zeros((0, 28, 28)), 255.0, 1).unwrap_err();
    assert!(err.to_string().contains("has no pixels"));

    let fig = plot_stats(&stats(2, 5)).unwrap();
    let err = fig.save("/proc/definitely/not/writable.png").unwrap_err();
    assert!(matches!(err, MlpError::Io { .. }));
}

#[test]
fn penalty_comparison_figures_show_both_networks() {
    let mut rng = NumpyRng::new(4);
    let a = TwoLayerMLP::new(784, 16, 10, 0.1, Activation::Relu, &mut rng).unwrap();
    let mut b = a.clone();
    b.params.w1.mapv_inplace(|w| if w.abs() < 0.1 { 0.0 } else { w }); // a sparse one
    let hist = mlp_core::plot_weight_histograms(&[("L2", &a), ("L1", &b)]).unwrap();
    let (w, h, channels, pixels) = decode(&hist);
    assert_eq!((w, h, channels), (FIGURE_SIZE.0, FIGURE_SIZE.1, 3));
    // bars in both panels
    assert!(has_line(&pixels, w, 60..h / 2 - 50) && has_line(&pixels, w, h / 2 + 60..h - 50));
    let grids = mlp_core::show_weight_grids(&[("L2", &a), ("L1", &b)]).unwrap();
    let (gw, gh, _, gpix) = decode(&grids);
    assert_eq!(gw, FIGURE_SIZE.0);
    // 16 tiles of 28 pixels, 4 x 4 with padding 3: 121 pixels a side, scaled 4 times
    assert_eq!(gh, 40 + 121 * 4 + 10);
    assert!(has_ink(&gpix, gw, 0..40), "the titles");
    // bad input: a network whose W1 is not 28x28 images, NaN weights, nothing to show
    let toy = TwoLayerMLP::new(4, 3, 2, 0.1, Activation::Relu, &mut rng).unwrap();
    assert!(matches!(
        mlp_core::show_weight_grids(&[("toy", &toy)]),
        Err(MlpError::ShapeMismatch { .. })
    ));
    assert!(matches!(mlp_core::show_weight_grids(&[]), Err(MlpError::BadPlotData { .. })));
    b.params.w1[[0, 0]] = f64::NAN;
    let e = mlp_core::plot_weight_histograms(&[("L1", &b)]).unwrap_err();
    assert!(e.to_string().contains("W1 of L1"), "{e}");
    assert!(mlp_core::plot_weight_histograms(&[]).is_err());
}
