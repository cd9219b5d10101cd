//! MNIST: finding, validating and loading the four IDX files, and the problem set's
//! 50,000 / 10,000 / 10,000 split.
//!
//! Parsing is done by the `mnist` crate. It panics on a missing or malformed file,
//! so every file is validated here first (presence, size, magic number, counts,
//! image dimensions, and optionally the official SHA-256): no input file can make
//! this module panic. Gzipped files (`*.gz`) are accepted too and decompressed to a
//! temporary folder for the parser.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use sha2::{Digest, Sha256};

use crate::check::check_nonzero;
use crate::error::{MlpError, Result};
use crate::rng::NumpyRng;

/// Pixels per image (28 x 28).
pub const MNIST_PIXELS: usize = 28 * 28;
/// Training images in the official files.
pub const MNIST_TRAIN: usize = 60_000;
/// Test images in the official files.
pub const MNIST_TEST: usize = 10_000;

/// One of the four official files: its name, what it holds and its checksum.
#[derive(Clone, Copy, Debug)]
pub struct IdxFile {
    pub name: &'static str,
    /// 2051 for images, 2049 for labels.
    pub magic: u32,
    pub count: usize,
    /// The uncompressed size in bytes.
    pub size: u64,
    pub sha256: &'static str,
}

impl IdxFile {
    fn is_images(&self) -> bool {
        self.magic == 2051
    }

    fn header_len(&self) -> usize {
        if self.is_images() { 16 } else { 8 }
    }
}

/// The official files: training images, training labels, test images, test labels.
pub const MNIST_FILES: [IdxFile; 4] = [
    IdxFile {
        name: "train-images-idx3-ubyte",
        magic: 2051,
        count: MNIST_TRAIN,
        size: 47_040_016,
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    IdxFile {
        name: "train-labels-idx1-ubyte",
        magic: 2049,
        count: MNIST_TRAIN,
        size: 60_008,
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    IdxFile {
        name: "t10k-images-idx3-ubyte",
        magic: 2051,
        count: MNIST_TEST,
        size: 7_840_016,
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    IdxFile {
        name: "t10k-labels-idx1-ubyte",
        magic: 2049,
        count: MNIST_TEST,
        size: 10_008,
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
];

/// Where the MNIST files are looked for: `$MLP_DATA_DIR` if set, else the
/// project's `data/mnist/` (found from this crate's source location, so it works
/// from a notebook's folder as well as from the top of the project).
pub fn default_mnist_dir() -> PathBuf {
    match std::env::var_os("MLP_DATA_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            crate_dir.parent().unwrap_or(crate_dir).join("data").join("mnist")
        }
    }
}

/// The 70,000 images and labels in the official order (60,000 training, then 10,000
/// test), as bytes: `images` is `(70000, 784)` row-major, pixel values 0..=255.
#[derive(Clone, Debug)]
pub struct MnistBytes {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl MnistBytes {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i` as 784 bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * MNIST_PIXELS..(i + 1) * MNIST_PIXELS]
    }
}

/// Options for [`load_mnist`].
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Check each file's SHA-256 against the official one (about 0.2 s).
    pub verify_checksums: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { verify_checksums: true }
    }
}

/// Load the four MNIST files from `dir` (each as `name` or `name.gz`), validated,
/// through the `mnist` crate.
pub fn load_mnist(dir: &Path, options: &LoadOptions) -> Result<MnistBytes> {
    let mut sources = Vec::with_capacity(4);
    for file in &MNIST_FILES {
        sources.push(Source::find(dir, file)?);
    }
    // Decompress any .gz file into a private temporary folder: the parser reads paths.
    let scratch = if sources.iter().any(|s| s.gz) { Some(Scratch::new()?) } else { None };
    let mut raw_paths = Vec::with_capacity(4);
    for (file, source) in MNIST_FILES.iter().zip(&sources) {
        let path = match (&scratch, source.gz) {
            (Some(scratch), true) => {
                let target = scratch.dir.join(file.name);
                let bytes = gunzip(&source.path, file)?;
                fs::write(&target, bytes).map_err(|e| MlpError::io(&target, e))?;
                target
            }
            _ => source.path.clone(),
        };
        validate(&path, &source.path, file, options.verify_checksums)?;
        raw_paths.push(path);
    }
    // All four are valid: the parser will not panic on them. It joins each file name to
    // a base path; an absolute name replaces the base, so each file is named in full.
    let names: Vec<&str> = raw_paths
        .iter()
        .map(|p| {
            p.to_str().ok_or_else(|| MlpError::MissingFile {
                path: p.clone(),
                hint: "the path is not valid UTF-8; move the files or set MLP_DATA_DIR".into(),
            })
        })
        .collect::<Result<_>>()?;
    let m = mnist::MnistBuilder::new()
        .base_path("")
        .training_images_filename(names[0])
        .training_labels_filename(names[1])
        .test_images_filename(names[2])
        .test_labels_filename(names[3])
        .training_set_length(MNIST_TRAIN as u32)
        .validation_set_length(0)
        .test_set_length(MNIST_TEST as u32)
        .finalize();
    drop(scratch);
    let mut images = m.trn_img;
    images.extend_from_slice(&m.tst_img);
    let mut labels = m.trn_lbl;
    labels.extend_from_slice(&m.tst_lbl);
    Ok(MnistBytes { images, labels })
}

/// Where one file was found.
struct Source {
    path: PathBuf,
    gz: bool,
}

impl Source {
    fn find(dir: &Path, file: &IdxFile) -> Result<Self> {
        let raw = dir.join(file.name);
        if raw.is_file() {
            return Ok(Source { path: raw, gz: false });
        }
        let gz = dir.join(format!("{}.gz", file.name));
        if gz.is_file() {
            return Ok(Source { path: gz, gz: true });
        }
        Err(MlpError::MissingFile {
            path: raw,
            hint:
                "run `make data` to fetch MNIST, or set MLP_DATA_DIR to a folder holding the four \
                   IDX files (raw or .gz)"
                    .into(),
        })
    }
}

/// A temporary folder removed when dropped.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("mlp-mnist-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| MlpError::io(&dir, e))?;
        Ok(Scratch { dir })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Decompress a .gz file, refusing to produce more than the file's expected size.
fn gunzip(path: &Path, file: &IdxFile) -> Result<Vec<u8>> {
    let f = fs::File::open(path).map_err(|e| MlpError::io(path, e))?;
    // grown as the data come (a capacity of the expected size up front would be 47 MB
    // for a .gz of a few bytes)
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(f).take(file.size + 1).read_to_end(&mut out).map_err(|e| {
        MlpError::CorruptFile {
            path: path.to_path_buf(),
            reason: format!("not a valid gzip file ({e})"),
        }
    })?;
    Ok(out)
}

/// Check one uncompressed file before the parser sees it: header, size and (with
/// `verify`) SHA-256, streamed so the file is not held in memory. `shown` is the path
/// to name in errors (the `.gz` the user has, not our temporary copy).
fn validate(path: &Path, shown: &Path, file: &IdxFile, verify: bool) -> Result<()> {
    let corrupt = |reason: String| MlpError::CorruptFile { path: shown.to_path_buf(), reason };
    let io = |e| MlpError::io(shown, e);
    let mut f = fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let kind = if file.is_images() { "image" } else { "label" };
    let header_len = file.header_len();
    let mut header = [0u8; 16];
    if len < header_len as u64 {
        return Err(corrupt(format!(
            "truncated header: {len} bytes, an IDX {kind} header has {header_len}"
        )));
    }
    f.read_exact(&mut header[..header_len]).map_err(io)?;
    let word = |i: usize| {
        u32::from_be_bytes([header[4 * i], header[4 * i + 1], header[4 * i + 2], header[4 * i + 3]])
    };
    let magic = word(0);
    if magic != file.magic {
        return Err(corrupt(format!(
            "wrong magic number {magic}, expected {} ({kind} file)",
            file.magic
        )));
    }
    let count = word(1) as usize;
    if count != file.count {
        return Err(corrupt(format!("header says {count} items, expected {}", file.count)));
    }
    if file.is_images() && (word(2), word(3)) != (28, 28) {
        return Err(corrupt(format!("images are {}x{}, expected 28x28", word(2), word(3))));
    }
    if len != file.size {
        let reason = if len < file.size { "truncated data" } else { "trailing data" };
        return Err(corrupt(format!("{reason}: {len} bytes, expected {}", file.size)));
    }
    if verify {
        let mut hasher = Sha256::new();
        hasher.update(&header[..header_len]);
        std::io::copy(&mut std::io::BufReader::with_capacity(1 << 20, f), &mut hasher)
            .map_err(io)?;
        let found = format!("{:x}", hasher.finalize());
        if found != file.sha256 {
            return Err(MlpError::ChecksumMismatch {
                path: shown.to_path_buf(),
                expected: file.sha256.to_string(),
                found,
            });
        }
    }
    Ok(())
}

/// The problem set's MNIST split, as `get_MNIST_data` returns it: pixel values as
/// `f64`, the training mean image subtracted from all three parts.
#[derive(Clone, Debug)]
pub struct MnistSplit {
    /// `(num_training, 784)`
    pub x_train: Array2<f64>,
    /// `(num_training,)`, digits 0..=9
    pub y_train: Array1<usize>,
    /// `(num_validation, 784)`
    pub x_val: Array2<f64>,
    /// `(num_validation,)`
    pub y_val: Array1<usize>,
    /// `(num_test, 784)`
    pub x_test: Array2<f64>,
    /// `(num_test,)`
    pub y_test: Array1<usize>,
    /// The mean training image that was subtracted, `(784,)`.
    pub mean_image: Array1<f64>,
}

impl MnistSplit {
    /// The six shapes, as the notebook prints them.
    pub fn shapes(&self) -> String {
        format!(
            "Train data shape:  {:?}\nTrain labels shape:  {:?}\nValidation data shape:  {:?}\n\
             Validation labels shape:  {:?}\nTest data shape:  {:?}\nTest labels shape:  {:?}",
            self.x_train.dim(),
            (self.y_train.len(),),
            self.x_val.dim(),
            (self.y_val.len(),),
            self.x_test.dim(),
            (self.y_test.len(),)
        )
    }
}

/// `get_MNIST_data(num_training, num_validation, num_test)` from the default folder
/// ([`default_mnist_dir`]). See [`split_mnist`] for the semantics.
pub fn get_mnist_data(
    rng: &mut NumpyRng,
    num_training: usize,
    num_validation: usize,
    num_test: usize,
) -> Result<MnistSplit> {
    let bytes = load_mnist(&default_mnist_dir(), &LoadOptions::default())?;
    split_mnist(&bytes, rng, num_training, num_validation, num_test)
}

/// The problem set's split of the 70,000 images: seed `rng` with 0, draw
/// `I = permutation(70000)`, take the first `num_training` of the permuted set for
/// training, the next `num_validation` for validation and the next `num_test` for
/// test, and subtract the training mean image from all three. `rng` is left where the
/// permutation left it, so the next network draws its weights from there.
///
/// Only one `f64` copy of the selected images is made (from the bytes directly).
pub fn split_mnist(
    bytes: &MnistBytes,
    rng: &mut NumpyRng,
    num_training: usize,
    num_validation: usize,
    num_test: usize,
) -> Result<MnistSplit> {
    check_nonzero("num_training", num_training)?;
    let total = bytes.len();
    let wanted = num_training + num_validation + num_test;
    if wanted > total {
        return Err(MlpError::InvalidHyperparameter {
            name: "num_training + num_validation + num_test",
            value: wanted as f64,
            requirement: "at most the 70000 images MNIST has",
        });
    }
    rng.seed(0);
    let perm = rng.permutation(total);
    let (train_idx, rest) = perm.split_at(num_training);
    let (val_idx, rest) = rest.split_at(num_validation);
    let test_idx = &rest[..num_test];

    // The mean of integers below 2^53 summed in any order is exact, then divided once,
    // as np.mean does.
    let mut sums = vec![0u64; MNIST_PIXELS];
    for &i in train_idx {
        for (s, &p) in sums.iter_mut().zip(bytes.image(i)) {
            *s += u64::from(p);
        }
    }
    let mean_image = Array1::from_iter(sums.iter().map(|&s| s as f64 / num_training as f64));

    let part = |idx: &[usize]| -> (Array2<f64>, Array1<usize>) {
        let mut x = Array2::zeros((idx.len(), MNIST_PIXELS));
        for (mut row, &i) in x.rows_mut().into_iter().zip(idx) {
            for ((v, &p), &m) in row.iter_mut().zip(bytes.image(i)).zip(mean_image.iter()) {
                *v = f64::from(p) - m;
            }
        }
        let y = idx.iter().map(|&i| usize::from(bytes.labels[i])).collect();
        (x, y)
    };
    let (x_train, y_train) = part(train_idx);
    let (x_val, y_val) = part(val_idx);
    let (x_test, y_test) = part(test_idx);
    Ok(MnistSplit { x_train, y_train, x_val, y_val, x_test, y_test, mean_image })
}
