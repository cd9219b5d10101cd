//! The argument types more than one subcommand takes: the value enums mapped onto the
//! library's types, the toy problem's flags and the choice of data.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mlp_core::{Activation, InputKernel, Penalty, Toy};

use crate::CliError;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ActivationArg {
    Sigmoid,
    Relu,
}

impl From<ActivationArg> for Activation {
    fn from(a: ActivationArg) -> Self {
        match a {
            ActivationArg::Sigmoid => Activation::Sigmoid,
            ActivationArg::Relu => Activation::Relu,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum PenaltyArg {
    /// 0.5 * reg * (sum W1^2 + sum W2^2), gradient reg * W (the problem set's)
    L2,
    /// reg * (sum |W1| + sum |W2|), subgradient reg * sign(W)
    L1,
}

impl From<PenaltyArg> for Penalty {
    fn from(p: PenaltyArg) -> Self {
        match p {
            PenaltyArg::L2 => Penalty::L2,
            PenaltyArg::L1 => Penalty::L1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum KernelArg {
    /// Sparse when the inputs are mostly one value per column (MNIST) and the run has
    /// 2 epochs or more, else dense
    Auto,
    /// The dense matrix products
    Dense,
    /// Inputs stored as each column's background value plus the entries that differ
    Sparse,
}

impl From<KernelArg> for InputKernel {
    fn from(k: KernelArg) -> Self {
        match k {
            KernelArg::Auto => InputKernel::Auto,
            KernelArg::Dense => InputKernel::Dense,
            KernelArg::Sparse => InputKernel::Sparse,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Dataset {
    /// Five 4-d points, used as training and validation data.
    Toy,
    /// MNIST, split 50,000 / 10,000 / 10,000 as the problem set does.
    Mnist,
}

/// The toy problem's sizes, labels and seeds (the notebook's `init_toy_model` /
/// `init_toy_data`).
#[derive(Args, Debug, Clone)]
pub(crate) struct ToyArgs {
    /// Input dimension D of the toy data [default: 4]
    #[arg(long)]
    input_size: Option<usize>,
    /// Number of classes C [default: 3]
    #[arg(long)]
    num_classes: Option<usize>,
    /// Number of toy points N [default: 5]
    #[arg(long)]
    num_inputs: Option<usize>,
    /// Comma-separated labels, one per toy point [default: 0,1,2,2,1]
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<usize>>,
    /// Seed set before the network's weights are drawn [default: 0]
    #[arg(long)]
    model_seed: Option<u32>,
    /// Seed set before X = 10 * randn(N, D) is drawn [default: 1]
    #[arg(long)]
    data_seed: Option<u32>,
}

impl ToyArgs {
    pub(crate) fn toy(&self, hidden_size: Option<usize>) -> Toy {
        let d = Toy::default();
        Toy {
            input_size: self.input_size.unwrap_or(d.input_size),
            hidden_size: hidden_size.unwrap_or(d.hidden_size),
            num_classes: self.num_classes.unwrap_or(d.num_classes),
            num_inputs: self.num_inputs.unwrap_or(d.num_inputs),
            labels: self.labels.clone().unwrap_or(d.labels),
            model_seed: self.model_seed.unwrap_or(d.model_seed),
            data_seed: self.data_seed.unwrap_or(d.data_seed),
        }
    }

    /// The toy flags that were given (they only make sense with `--dataset toy`).
    fn given(&self) -> Vec<&'static str> {
        [
            ("--input-size", self.input_size.is_some()),
            ("--num-classes", self.num_classes.is_some()),
            ("--num-inputs", self.num_inputs.is_some()),
            ("--labels", self.labels.is_some()),
            ("--model-seed", self.model_seed.is_some()),
            ("--data-seed", self.data_seed.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }
}

/// Which data a command runs on.
#[derive(Args, Debug)]
pub(crate) struct DataArgs {
    /// Which data to train or evaluate on
    #[arg(long, value_enum)]
    pub(crate) dataset: Dataset,
    /// Folder with the MNIST IDX files, raw or .gz [default: $MLP_DATA_DIR or data/mnist]
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) toy: ToyArgs,
}

impl DataArgs {
    /// The toy flags are refused with another dataset.
    pub(crate) fn check(&self) -> Result<(), CliError> {
        match self.toy.given().first() {
            Some(flag) if self.dataset != Dataset::Toy => Err(CliError::Usage(format!(
                "{flag} only goes with --dataset toy; MNIST has its own sizes and labels"
            ))),
            _ => Ok(()),
        }
    }
}
