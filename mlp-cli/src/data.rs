//! The data `mlp train` and `mlp evaluate` run on: the toy points, or MNIST split as
//! the problem set does.

use mlp_core::ndarray::{Array1, Array2};
use mlp_core::{LoadOptions, MlpError, NumpyRng, Toy, default_mnist_dir, load_mnist, split_mnist};

use crate::args::{DataArgs, Dataset};

/// The data a training run uses.
pub(crate) struct Data {
    pub(crate) x_train: Array2<f64>,
    pub(crate) y_train: Array1<usize>,
    pub(crate) x_val: Array2<f64>,
    pub(crate) y_val: Array1<usize>,
    pub(crate) test: Option<(Array2<f64>, Array1<usize>)>,
}

/// The toy data (training and validation alike), or MNIST split as the problem set
/// does; `note` prints MNIST's shapes on stderr.
pub(crate) fn load_data(
    args: &DataArgs,
    toy: &Toy,
    rng: &mut NumpyRng,
    note: bool,
) -> Result<Data, MlpError> {
    Ok(match args.dataset {
        Dataset::Toy => {
            let (x, y) = toy.data(rng)?;
            Data { x_train: x.clone(), y_train: y.clone(), x_val: x, y_val: y, test: None }
        }
        Dataset::Mnist => {
            let dir = args.data_dir.clone().unwrap_or_else(default_mnist_dir);
            let bytes = load_mnist(&dir, &LoadOptions::default())?;
            let m = split_mnist(&bytes, rng, 50_000, 10_000, 10_000)?;
            if note {
                eprintln!(
                    "MNIST from {}: train {:?}, validation {:?}, test {:?}",
                    dir.display(),
                    m.x_train.dim(),
                    m.x_val.dim(),
                    m.x_test.dim()
                );
            }
            Data {
                x_train: m.x_train,
                y_train: m.y_train,
                x_val: m.x_val,
                y_val: m.y_val,
                test: Some((m.x_test, m.y_test)),
            }
        }
    })
}
