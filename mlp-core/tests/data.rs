//! MNIST loading: every malformed file gives its own clear error, never a panic.
//! The files are written by the tests themselves.

use std::fs;
use std::io::Write;
use std::path::Path;

use mlp_core::{LoadOptions, MNIST_FILES, MlpError, MnistBytes, NumpyRng, load_mnist, split_mnist};

/// A valid IDX header followed by `count * item` bytes of `fill`.
fn idx(magic: u32, count: u32, image: bool, fill: u8) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(magic.to_be_bytes());
    v.extend(count.to_be_bytes());
    if image {
        v.extend(28u32.to_be_bytes());
        v.extend(28u32.to_be_bytes());
    }
    let item = if image { 784 } else { 1 };
    v.resize(v.len() + count as usize * item, fill);
    v
}

/// A folder with the four files, each structurally valid (right sizes and headers)
/// but not the official bytes.
fn structurally_valid_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in &MNIST_FILES {
        let image = f.magic == 2051;
        fs::write(dir.path().join(f.name), idx(f.magic, f.count as u32, image, 0)).unwrap();
    }
    dir
}

fn load(dir: &Path, verify: bool) -> MlpError {
    load_mnist(dir, &LoadOptions { verify_checksums: verify }).unwrap_err()
}

#[test]
fn missing_file_says_to_run_make_data() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(dir.path(), true);
    assert!(matches!(err, MlpError::MissingFile { .. }));
    let msg = err.to_string();
    assert!(msg.contains("train-images-idx3-ubyte not found"), "{msg}");
    assert!(msg.contains("make data") && msg.contains("MLP_DATA_DIR"), "{msg}");
    assert!(!err.is_usage());
}

/// Assert that the error's message contains `text`.
fn assert_says(err: impl ToString, text: &str) {
    let msg = err.to_string();
    assert!(msg.contains(text), "{msg:?} does not say {text:?}");
}

/// The error of loading a structurally valid folder in which file `name` was
/// replaced by `bytes` (checksums not verified, so only the replaced file is wrong).
fn error_with(name: &str, bytes: Vec<u8>) -> MlpError {
    let dir = structurally_valid_dir();
    fs::write(dir.path().join(name), bytes).unwrap();
    load(dir.path(), false)
}

#[test]
fn truncated_header_is_named() {
    let err = error_with("t10k-labels-idx1-ubyte", vec![0, 0, 8]);
    assert!(matches!(err, MlpError::CorruptFile { .. }));
    assert!(
        err.to_string().ends_with(
            "t10k-labels-idx1-ubyte is corrupt: truncated header: 3 bytes, an IDX label header has 8; \
             delete it and run `make data` again"
        ),
        "{err}"
    );
}

#[test]
fn truncated_data_is_named() {
    let mut bytes = idx(2051, 10_000, true, 0);
    bytes.truncate(1000);
    assert_says(
        error_with("t10k-images-idx3-ubyte", bytes),
        "t10k-images-idx3-ubyte is corrupt: truncated data: 1000 bytes, expected 7840016",
    );
}

#[test]
fn wrong_magic_is_named() {
    // a label file where the image file should be
    assert_says(
        error_with("train-images-idx3-ubyte", idx(2049, 60_000, true, 0)),
        "train-images-idx3-ubyte is corrupt: wrong magic number 2049, expected 2051 (image file)",
    );
}

#[test]
fn image_and_label_counts_must_agree() {
    assert_says(
        error_with("train-labels-idx1-ubyte", idx(2049, 59_999, false, 0)),
        "train-labels-idx1-ubyte is corrupt: header says 59999 items, expected 60000",
    );
}

#[test]
fn wrong_image_dimensions_are_named() {
    let mut bytes = idx(2051, 10_000, true, 0);
    bytes[8..12].copy_from_slice(&32u32.to_be_bytes());
    assert_says(error_with("t10k-images-idx3-ubyte", bytes), "images are 32x28, expected 28x28");
}

#[test]
fn wrong_checksum_names_the_file() {
    let dir = structurally_valid_dir();
    let err = load(dir.path(), true);
    assert!(matches!(err, MlpError::ChecksumMismatch { .. }));
    let msg = err.to_string();
    assert!(msg.contains("train-images-idx3-ubyte has SHA-256"), "{msg}");
    assert!(
        msg.contains("expected ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        "{msg}"
    );
}

#[test]
fn structurally_valid_files_load_without_checksums() {
    // the validation lets through exactly what the `mnist` parser accepts
    let dir = structurally_valid_dir();
    let m = load_mnist(dir.path(), &LoadOptions { verify_checksums: false }).unwrap();
    assert_eq!(m.len(), 70_000);
    assert_eq!(m.images.len(), 70_000 * 784);
}

#[test]
fn gzipped_files_are_read_and_errors_name_the_gz() {
    let dir = structurally_valid_dir();
    let name = "t10k-labels-idx1-ubyte";
    let raw = fs::read(dir.path().join(name)).unwrap();
    fs::remove_file(dir.path().join(name)).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    fs::write(dir.path().join(format!("{name}.gz")), gz.finish().unwrap()).unwrap();
    let m = load_mnist(dir.path(), &LoadOptions { verify_checksums: false }).unwrap();
    assert_eq!(m.len(), 70_000);

    // the first file checked is the training images (not gzipped here)
    assert_says(load(dir.path(), true), "train-images-idx3-ubyte has SHA-256");

    fs::write(dir.path().join(format!("{name}.gz")), b"not gzip at all").unwrap();
    assert_says(
        load(dir.path(), false),
        "t10k-labels-idx1-ubyte.gz is corrupt: not a valid gzip file",
    );
}

/// Ten 784-pixel images, image i filled with i, label i % 10.
fn tiny() -> MnistBytes {
    let mut images = Vec::new();
    for i in 0..10u8 {
        images.extend(std::iter::repeat_n(i * 10, 784));
    }
    MnistBytes { images, labels: (0..10).collect() }
}

#[test]
fn split_follows_the_problem_sets_semantics() {
    let mut rng = NumpyRng::new(123);
    let s = split_mnist(&tiny(), &mut rng, 5, 3, 2).unwrap();
    // np.random.seed(0); np.random.permutation(10) = 2 8 4 9 1 6 7 3 0 5
    assert_eq!(s.y_train.to_vec(), [2, 8, 4, 9, 1]);
    assert_eq!(s.y_val.to_vec(), [6, 7, 3]);
    assert_eq!(s.y_test.to_vec(), [0, 5]);
    // training mean: (20 + 80 + 40 + 90 + 10) / 5 = 48, subtracted from all three parts
    assert!(s.mean_image.iter().all(|&m| m == 48.0));
    assert_eq!(s.x_train[[0, 0]], 20.0 - 48.0);
    assert_eq!(s.x_val[[2, 783]], 30.0 - 48.0);
    assert_eq!(s.x_test[[1, 5]], 50.0 - 48.0);
    assert_eq!(s.x_train.dim(), (5, 784));
    // the generator is left where the permutation left it
    let mut expected = NumpyRng::new(0);
    expected.permutation(10);
    assert_eq!(rng.next_u32(), expected.next_u32());
}

#[test]
fn split_rejects_impossible_sizes() {
    let err = split_mnist(&tiny(), &mut NumpyRng::new(0), 8, 2, 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "num_training + num_validation + num_test must be at most the 70000 images MNIST has, got 11.0"
    );
    let err = split_mnist(&tiny(), &mut NumpyRng::new(0), 0, 2, 1).unwrap_err();
    assert_eq!(err.to_string(), "num_training must be at least 1, got 0");
}
