//! MNIST-like test images, shared by the integration tests and the engine's unit tests
//! (which see the crate as `mlp_core` too).

use mlp_core::NumpyRng;
use mlp_core::ndarray::{Array1, Array2, Axis};

/// `n` 28x28 "images": ink (1..=255) more likely near the centre, background 0, then the
/// mean image subtracted as the problem set does, so the background of pixel `k` is
/// `-mean[k]`. The label says which of ten horizontal bands holds the most ink, so
/// that there is something to learn.
pub fn images(n: usize, rng: &mut NumpyRng) -> (Array2<f64>, Array1<usize>) {
    let mut x = Array2::<f64>::zeros((n, 784));
    for ((_, k), p) in x.indexed_iter_mut() {
        let (r, c) = ((k / 28) as f64 - 13.5, (k % 28) as f64 - 13.5);
        let ink = 0.45 * (-(r * r + c * c) / 90.0).exp();
        if rng.random() < ink {
            *p = (1.0 + 254.0 * rng.random()).floor();
        }
    }
    let y = Array1::from_iter(x.rows().into_iter().map(|row| {
        let band = |b: usize| row.iter().skip(b * 78).take(78).sum::<f64>();
        (0..10).fold(0, |best, b| if band(b) > band(best) { b } else { best })
    }));
    let mean = x.mean_axis(Axis(0)).expect("rows");
    (x - &mean, y)
}
