//! The notebook's toy problem: a small network and five 4-d points, each from its
//! own seed, so that losses and gradients can be checked against known numbers.

use ndarray::{Array1, Array2};

use crate::check::check_labels;
use crate::check::check_nonzero;
use crate::error::{MlpError, Result};
use crate::model::{Activation, TwoLayerMLP};
use crate::rng::NumpyRng;

/// The toy problem's sizes, seeds and labels. `Default` is the notebook's:
/// `input_size=4, hidden_size=10, num_classes=3, num_inputs=5`, labels
/// `[0, 1, 2, 2, 1]`, model seed 0, data seed 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Toy {
    pub input_size: usize,
    pub hidden_size: usize,
    pub num_classes: usize,
    pub num_inputs: usize,
    /// One label per input, each `< num_classes`.
    pub labels: Vec<usize>,
    /// `np.random.seed(model_seed)` before the network is created.
    pub model_seed: u32,
    /// `np.random.seed(data_seed)` before `X` is drawn.
    pub data_seed: u32,
}

impl Default for Toy {
    fn default() -> Self {
        Toy {
            input_size: 4,
            hidden_size: 10,
            num_classes: 3,
            num_inputs: 5,
            labels: vec![0, 1, 2, 2, 1],
            model_seed: 0,
            data_seed: 1,
        }
    }
}

impl Toy {
    /// `init_toy_model(activation, std)`: seeds `rng` with `model_seed`, then creates
    /// the network `(input_size, hidden_size, num_classes)` with weights `std * randn`.
    pub fn model(
        &self,
        activation: Activation,
        std: f64,
        rng: &mut NumpyRng,
    ) -> Result<TwoLayerMLP> {
        rng.seed(self.model_seed);
        TwoLayerMLP::new(self.input_size, self.hidden_size, self.num_classes, std, activation, rng)
    }

    /// `init_toy_data()`: seeds `rng` with `data_seed`, then `X = 10 * randn(num_inputs,
    /// input_size)` of shape `(num_inputs, input_size)`, and `y` the labels `(num_inputs,)`.
    pub fn data(&self, rng: &mut NumpyRng) -> Result<(Array2<f64>, Array1<usize>)> {
        check_nonzero("num_inputs", self.num_inputs)?;
        check_nonzero("input_size", self.input_size)?;
        check_nonzero("num_classes", self.num_classes)?;
        if self.labels.len() != self.num_inputs {
            return Err(MlpError::RowsLabelsMismatch {
                what: "toy data (pass one label per input)",
                rows: self.num_inputs,
                labels: self.labels.len(),
            });
        }
        let y = Array1::from(self.labels.clone());
        check_labels("toy data", y.view(), self.num_classes)?;
        rng.seed(self.data_seed);
        let x = rng.randn(self.num_inputs, self.input_size).mapv_into(|v| 10.0 * v);
        Ok((x, y))
    }
}
