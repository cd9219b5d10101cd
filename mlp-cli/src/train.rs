//! `mlp train`: the notebook's presets per dataset and activation, overridden by the
//! flags, and the training run itself.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use mlp_core::{Activation, MNIST_PIXELS, NumpyRng, Toy, TrainConfig, TwoLayerMLP};

use crate::CliError;
use crate::args::{ActivationArg, DataArgs, Dataset, KernelArg, PenaltyArg};
use crate::data::load_data;
use crate::progress::TrainProgress;
use crate::report::{report, write_plots};

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub(crate) struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Hidden-layer activation [default: sigmoid]
    #[arg(long, value_enum, default_value = "sigmoid")]
    activation: ActivationArg,
    /// Hidden size H [default: toy 10, mnist 64]
    #[arg(long)]
    hidden_size: Option<usize>,
    /// Standard deviation of the initial weights [default: 0.1]
    #[arg(long)]
    std: Option<f64>,
    /// SGD step size [default: toy sigmoid 0.5, toy relu 0.1, mnist 1e-3]
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Learning-rate factor applied after every epoch [default: 0.95]
    #[arg(long)]
    learning_rate_decay: Option<f64>,
    /// Regularisation strength [default: toy 1e-5, mnist 0.5]
    #[arg(long)]
    reg: Option<f64>,
    /// The weight penalty `--reg` weighs
    #[arg(long, value_enum, default_value = "l2")]
    regularization: PenaltyArg,
    /// Number of epochs [default: toy sigmoid 100, toy relu 50, mnist 20]
    #[arg(long)]
    epochs: Option<usize>,
    /// Minibatch size [default: toy 200, mnist 100]
    #[arg(long)]
    batch_size: Option<usize>,
    /// Write the run's figures as PNG files into this folder (loss.png for toy;
    /// stats.png and weights.png for MNIST)
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Write the trained network into this folder: W1.npy, b1.npy, W2.npy, b2.npy
    /// (numpy's format, float64) and model.json (activation, sizes, settings, accuracies)
    #[arg(long)]
    save: Option<PathBuf>,
    /// How the first layer's products are computed (same numbers up to rounding)
    #[arg(long, value_enum, default_value = "auto")]
    kernel: KernelArg,
    /// Print one JSON object instead of text (nothing on stderr)
    #[arg(long)]
    json: bool,
    /// No progress bar or notes on stderr
    #[arg(long)]
    quiet: bool,
}

/// Presets per dataset and activation, as the notebook's cells set them.
struct Preset {
    hidden_size: usize,
    std: f64,
    learning_rate: f64,
    reg: f64,
    epochs: usize,
    batch_size: usize,
}

fn preset(dataset: Dataset, activation: Activation) -> Preset {
    let defaults = TrainConfig::default();
    match dataset {
        Dataset::Toy => Preset {
            hidden_size: Toy::default().hidden_size,
            std: 0.1,
            learning_rate: if activation == Activation::Sigmoid { 0.5 } else { 0.1 },
            reg: 1e-5,
            epochs: if activation == Activation::Sigmoid { 100 } else { 50 },
            batch_size: defaults.batch_size,
        },
        Dataset::Mnist => Preset {
            hidden_size: 64,
            std: 0.1,
            learning_rate: 1e-3,
            reg: 0.5,
            epochs: 20,
            batch_size: 100,
        },
    }
}

pub(crate) fn run(args: &TrainArgs) -> Result<(), CliError> {
    let activation: Activation = args.activation.into();
    args.data.check()?;
    let dataset = args.data.dataset;
    let p = preset(dataset, activation);
    let config = TrainConfig {
        learning_rate: args.learning_rate.unwrap_or(p.learning_rate),
        learning_rate_decay: args
            .learning_rate_decay
            .unwrap_or(TrainConfig::default().learning_rate_decay),
        reg: args.reg.unwrap_or(p.reg),
        penalty: args.regularization.into(),
        num_epochs: args.epochs.unwrap_or(p.epochs),
        batch_size: args.batch_size.unwrap_or(p.batch_size),
        verbose: false,
        kernel: args.kernel.into(),
        ..TrainConfig::default()
    };
    config.validate()?;
    let hidden_size = args.hidden_size.unwrap_or(p.hidden_size);
    let std = args.std.unwrap_or(p.std);

    let mut rng = NumpyRng::default();
    let toy = args.data.toy.toy(Some(hidden_size));
    let note = !args.json && !args.quiet;
    let data = load_data(&args.data, &toy, &mut rng, note)?;
    // created right after the data, as in the notebook: the weights come from where the
    // toy data or the MNIST split left the generator
    let mut net = match dataset {
        Dataset::Toy => toy.model(activation, std, &mut rng)?,
        Dataset::Mnist => {
            TwoLayerMLP::new(MNIST_PIXELS, hidden_size, 10, std, activation, &mut rng)?
        }
    };

    let show_progress = !args.json && !args.quiet;
    let print_epochs = !args.json && dataset != Dataset::Toy;
    let mut reporter = TrainProgress::new(show_progress, print_epochs, config.num_epochs);
    let start = Instant::now();
    let stats = net.train_with(
        &mut rng,
        &data.x_train,
        &data.y_train,
        &data.x_val,
        &data.y_val,
        &config,
        &mut reporter,
    )?;
    let train_seconds = start.elapsed().as_secs_f64();
    reporter.finish();

    let train_acc = net.accuracy(&data.x_train, &data.y_train)?;
    let val_acc = net.accuracy(&data.x_val, &data.y_val)?;
    let test_acc = match &data.test {
        Some((x, y)) => Some(net.accuracy(x, y)?),
        None => None,
    };
    report(args.json, &config, &net, &stats, (train_acc, val_acc, test_acc), train_seconds);
    if let Some(dir) = &args.save {
        let mut accuracy = vec![("train", train_acc), ("val", val_acc)];
        accuracy.extend(test_acc.map(|t| ("test", t)));
        net.save_npy_with(dir, Some(&config), &accuracy)?;
        if !args.json {
            println!("Saved the network to {}", dir.display());
        }
    }
    if let Some(dir) = &args.plots {
        let written = write_plots(dir, dataset, &net, &stats)?;
        if !args.json {
            for path in written {
                println!("Wrote {}", path.display());
            }
        }
    }
    Ok(())
}
