//! A trained network in and out: `W1.npy`, `b1.npy`, `W2.npy`, `b2.npy` in numpy's
//! `.npy` format (float64, C order; written and read with `ndarray-npy`) and a small
//! `model.json` (activation, sizes, training settings, accuracies), so that numpy
//! loads the weights with `np.load` and `mlp evaluate --load` or a notebook loads
//! them back.
//!
//! Reading checks every file before `ndarray-npy` allocates for it (it would allocate
//! what a header claims): the header must fit in the file, describe little-endian
//! float64 in C order of the shape the other files imply, and the data must fill the
//! rest of the file exactly. A bad file is an [`MlpError::BadModelFile`] naming it.

use std::fs;
use std::io::Read;
use std::path::Path;

use ndarray::{Array, ArrayBase, Data, Dimension, Ix1, Ix2};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use serde_json::{Value, json};

use crate::check::check_params;
use crate::error::{MlpError, Result};
use crate::model::{Activation, Params, TwoLayerMLP};
use crate::penalty::Penalty;
use crate::train::TrainConfig;

/// The description file written beside the weights.
pub const MODEL_JSON: &str = "model.json";

/// Larger `model.json` files are refused unread: the real one is a few hundred bytes.
const MAX_JSON_BYTES: u64 = 1 << 20;

/// What `model.json` records about a saved network besides its weights.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub activation: Activation,
    /// `(D, H, C)`.
    pub sizes: (usize, usize, usize),
    /// The settings it was trained with, if saved after training.
    pub training: Option<TrainConfig>,
    /// Accuracies measured after training, by name (`"train"`, `"val"`, `"test"`).
    pub accuracy: Vec<(String, f64)>,
}

impl Params {
    /// Write `W1.npy`, `b1.npy`, `W2.npy`, `b2.npy` into `dir` (created if missing).
    pub fn save_npy(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(|e| MlpError::io(dir, e))?;
        write_npy(&dir.join("W1.npy"), &self.w1)?;
        write_npy(&dir.join("b1.npy"), &self.b1)?;
        write_npy(&dir.join("W2.npy"), &self.w2)?;
        write_npy(&dir.join("b2.npy"), &self.b2)
    }

    /// Read the four files [`Params::save_npy`] writes, checking each file and that
    /// their shapes agree (`W1 (D, H)`, `b1 (H,)`, `W2 (H, C)`, `b2 (C,)`).
    pub fn load_npy(dir: impl AsRef<Path>) -> Result<Params> {
        let dir = dir.as_ref();
        let w1: Array<f64, Ix2> = read_npy(&dir.join("W1.npy"), None)?;
        let (d, h) = w1.dim();
        let b1: Array<f64, Ix1> = read_npy(&dir.join("b1.npy"), Some(&[h]))?;
        let w2: Array<f64, Ix2> = read_npy(&dir.join("W2.npy"), None)?;
        let c = w2.ncols();
        let b2: Array<f64, Ix1> = read_npy(&dir.join("b2.npy"), Some(&[c]))?;
        let params = Params { w1, b1, w2, b2 };
        check_params([params.w1.shape(), params.b1.shape(), params.w2.shape(), params.b2.shape()])
            .map_err(|e| bad(&dir.join("W2.npy"), format!("{e} (against W1.npy's ({d}, {h}))")))?;
        Ok(params)
    }
}

impl TwoLayerMLP {
    /// [`Params::save_npy`] plus `model.json` with the activation and sizes.
    pub fn save_npy(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.save_npy_with(dir, None, &[])
    }

    /// [`TwoLayerMLP::save_npy`], with the training settings and accuracies recorded
    /// in `model.json` too.
    pub fn save_npy_with(
        &self,
        dir: impl AsRef<Path>,
        training: Option<&TrainConfig>,
        accuracy: &[(&str, f64)],
    ) -> Result<()> {
        let dir = dir.as_ref();
        self.params.save_npy(dir)?;
        let mut info = json!({
            "activation": self.activation.name(),
            "input_size": self.input_size(),
            "hidden_size": self.hidden_size(),
            "output_size": self.output_size(),
            "accuracy": accuracy.iter().map(|&(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        });
        if let Some(t) = training {
            info["training"] = json!({
                "learning_rate": t.learning_rate,
                "learning_rate_decay": t.learning_rate_decay,
                "reg": t.reg,
                "regularization": t.penalty.name(),
                "num_epochs": t.num_epochs,
                "batch_size": t.batch_size,
                "seed": t.seed,
            });
        }
        let path = dir.join(MODEL_JSON);
        let text = serde_json::to_string_pretty(&info).expect("a JSON value prints") + "\n";
        fs::write(&path, text).map_err(|e| MlpError::io(&path, e))
    }

    /// A network saved by [`TwoLayerMLP::save_npy`]: `model.json`'s activation and
    /// sizes, and the weights, checked against them.
    pub fn load_npy(dir: impl AsRef<Path>) -> Result<TwoLayerMLP> {
        let dir = dir.as_ref();
        let info = ModelInfo::read(dir)?;
        let params = Params::load_npy(dir)?;
        let (d, h, c) = info.sizes;
        let found = (params.w1.nrows(), params.w1.ncols(), params.w2.ncols());
        if found != (d, h, c) {
            return Err(bad(
                &dir.join("W1.npy"),
                format!(
                    "the weights are {found:?} (D, H, C) but {MODEL_JSON} says ({d}, {h}, {c})"
                ),
            ));
        }
        TwoLayerMLP::from_params(params, info.activation)
    }
}

impl ModelInfo {
    /// Read `dir/model.json`.
    pub fn read(dir: impl AsRef<Path>) -> Result<ModelInfo> {
        let path = dir.as_ref().join(MODEL_JSON);
        let text = read_bounded(&path, MAX_JSON_BYTES)?;
        let text = String::from_utf8(text).map_err(|_| bad(&path, "not UTF-8 text".into()))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| bad(&path, format!("not valid JSON ({e})")))?;
        let field = |name: &str| v.get(name).ok_or_else(|| bad(&path, format!("no \"{name}\"")));
        let size = |name: &str| {
            field(name)?
                .as_u64()
                .filter(|&n| n > 0 && n <= u32::MAX as u64)
                .map(|n| n as usize)
                .ok_or_else(|| bad(&path, format!("\"{name}\" is not a positive whole number")))
        };
        let text_of = |name: &str| {
            field(name)?.as_str().ok_or_else(|| bad(&path, format!("\"{name}\" is not a string")))
        };
        let activation =
            text_of("activation")?.parse().map_err(|e: MlpError| bad(&path, e.to_string()))?;
        let sizes = (size("input_size")?, size("hidden_size")?, size("output_size")?);
        let accuracy = match v.get("accuracy") {
            None => Vec::new(),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| {
                    let a = v.as_f64().filter(|a| (0.0..=1.0).contains(a));
                    a.map(|a| (k.clone(), a))
                        .ok_or_else(|| bad(&path, format!("accuracy \"{k}\" is not in 0..1")))
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(bad(&path, "\"accuracy\" is not an object".into())),
        };
        let training = match v.get("training") {
            None | Some(Value::Null) => None,
            Some(t) => Some(training_from(t).map_err(|what| bad(&path, what))?),
        };
        Ok(ModelInfo { activation, sizes, training, accuracy })
    }
}

/// The training settings of `model.json`, validated as [`TrainConfig::validate`] does.
fn training_from(t: &Value) -> std::result::Result<TrainConfig, String> {
    let number = |k: &str| {
        t.get(k).and_then(Value::as_f64).ok_or(format!("training \"{k}\" is not a number"))
    };
    let count = |k: &str| {
        t.get(k)
            .and_then(Value::as_u64)
            .map(|n| n as usize)
            .ok_or(format!("training \"{k}\" is not a whole number"))
    };
    let penalty: Penalty = match t.get("regularization").and_then(Value::as_str) {
        Some(name) => name.parse().map_err(|e: MlpError| e.to_string())?,
        None => return Err("training \"regularization\" is not a string".into()),
    };
    let config = TrainConfig {
        learning_rate: number("learning_rate")?,
        learning_rate_decay: number("learning_rate_decay")?,
        reg: number("reg")?,
        penalty,
        num_epochs: count("num_epochs")?,
        batch_size: count("batch_size")?,
        seed: u32::try_from(count("seed")?).map_err(|_| "training \"seed\" is over 2^32")?,
        ..TrainConfig::default()
    };
    config.validate().map_err(|e| format!("training settings: {e}"))?;
    Ok(config)
}

fn bad(path: &Path, reason: String) -> MlpError {
    MlpError::BadModelFile { path: path.to_path_buf(), reason }
}

/// The whole of a file of at most `limit` bytes.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => MlpError::MissingFile {
            path: path.to_path_buf(),
            hint: "save a network there first (`mlp train --save DIR`, or \
                   `net.save_npy(dir)` in a notebook)"
                .into(),
        },
        _ => MlpError::io(path, e),
    })?;
    let len = file.metadata().map_err(|e| MlpError::io(path, e))?.len();
    if len > limit {
        return Err(bad(path, format!("{len} bytes is far too large (at most {limit})")));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit).read_to_end(&mut bytes).map_err(|e| MlpError::io(path, e))?;
    Ok(bytes)
}

fn write_npy<S: Data<Elem = f64>, D: Dimension>(path: &Path, a: &ArrayBase<S, D>) -> Result<()> {
    let file = fs::File::create(path).map_err(|e| MlpError::io(path, e))?;
    // in C order whatever `a`'s memory layout
    let a = a.as_standard_layout();
    a.write_npy(std::io::BufWriter::new(file))
        .map_err(|e| MlpError::io(path, std::io::Error::other(e.to_string())))
}

/// A float64 C-order array of `D::NDIM` dimensions from `path` (of shape `shape` when
/// given), checked before `ndarray-npy` reads it.
fn read_npy<D: Dimension>(path: &Path, shape: Option<&[usize]>) -> Result<Array<f64, D>> {
    // a weight file larger than 2^31 doubles is not one this crate wrote
    let bytes = read_bounded(path, 16 << 30)?;
    let header = npy_header(&bytes).map_err(|reason| bad(path, reason))?;
    let ndim = D::NDIM.unwrap_or(header.shape.len());
    if header.descr != "<f8" && header.descr != "|f8" {
        let hint = "save float64 arrays (np.float64, the default)";
        return Err(bad(
            path,
            format!("dtype {} is not little-endian float64; {hint}", header.descr),
        ));
    }
    if header.fortran {
        return Err(bad(path, "Fortran order; save it in C order (np.ascontiguousarray)".into()));
    }
    if header.shape.len() != ndim {
        return Err(bad(
            path,
            format!(
                "shape {:?} has {} dimensions, expected {ndim}",
                header.shape,
                header.shape.len()
            ),
        ));
    }
    if let Some(shape) = shape
        && header.shape != shape
    {
        return Err(bad(
            path,
            format!("shape {:?}, expected {shape:?} to match the other files", header.shape),
        ));
    }
    let elements = header.shape.iter().try_fold(1usize, |n, &k| n.checked_mul(k));
    let data = bytes.len() - header.data_start;
    if elements.and_then(|n| n.checked_mul(8)) != Some(data) {
        return Err(bad(
            path,
            format!(
                "the header's shape {:?} needs {} bytes of data, the file has {data}",
                header.shape,
                elements.map_or("too many".to_string(), |n| (n * 8).to_string())
            ),
        ));
    }
    let a = Array::<f64, D>::read_npy(&bytes[..])
        .map_err(|e| bad(path, format!("not a valid .npy file ({e})")))?;
    match a.indexed_iter().find(|(_, v)| !v.is_finite()) {
        Some((at, v)) => Err(bad(path, format!("entry {:?} is {v}; weights must be finite", at))),
        None => Ok(a),
    }
}

/// The parts of a `.npy` header this crate checks.
struct NpyHeader {
    descr: String,
    fortran: bool,
    shape: Vec<usize>,
    /// Where the data starts.
    data_start: usize,
}

/// Parse the header of a `.npy` file held in `bytes`: the magic string, the version,
/// a header length that fits in the file, and the dictionary, through `ndarray-npy`'s
/// own header parser (given only bytes that are there).
fn npy_header(bytes: &[u8]) -> std::result::Result<NpyHeader, String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if bytes.len() < MAGIC.len() + 2 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a .npy file (no \\x93NUMPY magic string at the start)".into());
    }
    let (len_bytes, start) = match bytes[MAGIC.len()] {
        1 => (2, MAGIC.len() + 4),
        2 | 3 => (4, MAGIC.len() + 6),
        v => return Err(format!("unknown .npy format version {v}")),
    };
    if bytes.len() < start {
        return Err(format!("truncated header: {} bytes", bytes.len()));
    }
    let mut len = 0usize;
    for (i, &b) in bytes[MAGIC.len() + 2..start].iter().enumerate().take(len_bytes) {
        len |= usize::from(b) << (8 * i);
    }
    let data_start = start.checked_add(len).filter(|&e| e <= bytes.len()).ok_or_else(|| {
        format!("truncated header: it claims {len} bytes, the file has {}", bytes.len() - start)
    })?;
    let header = ndarray_npy::npy::header::Header::from_reader(&mut &bytes[..data_start])
        .map_err(|e| format!("bad header ({e})"))?;
    // a plain dtype prints as a quoted Python string, '<f8'
    let descr = header.type_descriptor.to_string().trim_matches('\'').to_string();
    Ok(NpyHeader { descr, fortran: header.layout.is_fortran(), shape: header.shape, data_start })
}
