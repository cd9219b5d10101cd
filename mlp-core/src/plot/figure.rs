//! A figure: an image encoded as PNG, saved to a file or shown inline by evcxr, and the
//! canvas every figure is drawn on (a white bitmap in memory, the shipped font).

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use base64::Engine;
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingAreaErrorKind, IntoDrawingArea};
use plotters::style::{FontStyle, register_font};
use plotters_bitmap::{BitMapBackend, BitMapBackendError};

use crate::error::{MlpError, Result};

/// Figure size in pixels, as matplotlib's `figsize=(10, 8)` at 100 dpi.
pub const FIGURE_SIZE: (u32, u32) = (1000, 800);

/// The family name text is drawn in: DejaVu Sans, shipped with the crate.
pub(super) const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Register the shipped font with plotters, once per process.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    if *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()) {
        Ok(())
    } else {
        Err(MlpError::Plot("the shipped DejaVu Sans font could not be loaded".into()))
    }
}

/// What a figure is drawn on: the whole of an in-memory RGB bitmap.
pub(super) type Canvas<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// What drawing on a [`Canvas`] returns.
pub(super) type CanvasResult = std::result::Result<(), DrawingAreaErrorKind<BitMapBackendError>>;

/// Draw with `draw` on a white canvas of `(w, h)` pixels: its pixels, row-major RGB.
pub(super) fn render_rgb(
    (w, h): (u32, u32),
    draw: impl FnOnce(&Canvas) -> CanvasResult,
) -> Result<Vec<u8>> {
    ensure_font()?;
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw(&root).and_then(|()| root.present()).map_err(|e| MlpError::Plot(e.to_string()))?;
    }
    Ok(rgb)
}

/// [`render_rgb`] encoded as a figure.
pub(super) fn render(
    (w, h): (u32, u32),
    draw: impl FnOnce(&Canvas) -> CanvasResult,
) -> Result<Figure> {
    Figure::from_rgb(&render_rgb((w, h), draw)?, w, h)
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
    pub(super) fn from_rgb(rgb: &[u8], width: u32, height: u32) -> Result<Self> {
        Self::encode(rgb, width, height, png::ColorType::Rgb)
    }

    /// Encode an 8-bit grayscale buffer (`width * height` bytes) as PNG.
    pub(super) fn from_gray(gray: &[u8], width: u32, height: u32) -> Result<Self> {
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
