//! `mlp`: the problem set's experiments from a terminal.
//!
//! Human-readable output by default, one JSON object with `--json`. Exit status 2
//! for bad usage, 1 for failures; errors are one line on standard error.

mod progress;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mlp_core::ndarray::{Array1, Array2};
use mlp_core::{
    Activation, InputKernel, LoadOptions, MNIST_PIXELS, MlpError, NumpyRng, Param, Penalty, Reg,
    Stats, Toy, TrainConfig, TwoLayerMLP, default_mnist_dir, load_mnist, plot_loss_and_gradient,
    plot_stats, py_e, py_float, rel_error, show_net_weights, split_mnist,
};
use serde_json::{Value, json};

use crate::progress::TrainProgress;

/// A two-layer neural network, backprop by hand: the CS231n-derived problem set in Rust.
#[derive(Parser, Debug)]
#[command(name = "mlp", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build the toy model and data as the notebook does, print the loss and each
    /// parameter's max relative error between analytic and numerical gradients.
    Gradcheck(GradcheckArgs),
    /// Train a network on the toy data or MNIST with the notebook's settings
    /// (any flag overrides its preset) and report loss and accuracies.
    Train(TrainArgs),
    /// Load a network saved with `mlp train --save DIR` and print its accuracies.
    Evaluate(EvaluateArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ActivationArg {
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
enum PenaltyArg {
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
enum KernelArg {
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
enum Dataset {
    /// Five 4-d points, used as training and validation data.
    Toy,
    /// MNIST, split 50,000 / 10,000 / 10,000 as the problem set does.
    Mnist,
}

/// The toy problem's sizes, labels and seeds (the notebook's `init_toy_model` /
/// `init_toy_data`).
#[derive(Args, Debug, Clone)]
struct ToyArgs {
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
    fn toy(&self, hidden_size: Option<usize>) -> Toy {
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

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
struct GradcheckArgs {
    /// Hidden-layer activation
    #[arg(long, value_enum, default_value = "sigmoid")]
    activation: ActivationArg,
    /// Standard deviation of the initial weights
    #[arg(long, default_value_t = 0.1)]
    std: f64,
    /// Regularisation strength
    #[arg(long, default_value_t = 0.1)]
    reg: f64,
    /// The weight penalty `--reg` weighs
    #[arg(long, value_enum, default_value = "l2")]
    regularization: PenaltyArg,
    /// Hidden size H [default: 10]
    #[arg(long)]
    hidden_size: Option<usize>,
    /// Step of the centred differences
    #[arg(long, default_value_t = 1e-5)]
    step: f64,
    #[command(flatten)]
    toy: ToyArgs,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
struct TrainArgs {
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

/// Which data a command runs on.
#[derive(Args, Debug)]
struct DataArgs {
    /// Which data to train or evaluate on
    #[arg(long, value_enum)]
    dataset: Dataset,
    /// Folder with the MNIST IDX files, raw or .gz [default: $MLP_DATA_DIR or data/mnist]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    toy: ToyArgs,
}

impl DataArgs {
    /// The toy flags are refused with another dataset.
    fn check(&self) -> Result<(), CliError> {
        match self.toy.given().first() {
            Some(flag) if self.dataset != Dataset::Toy => Err(CliError::Usage(format!(
                "{flag} only goes with --dataset toy; MNIST has its own sizes and labels"
            ))),
            _ => Ok(()),
        }
    }
}

#[derive(Args, Debug)]
struct EvaluateArgs {
    /// Folder written by `mlp train --save`
    #[arg(long)]
    load: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse(); // clap prints usage errors itself and exits with 2
    let result = match cli.command {
        Command::Gradcheck(args) => gradcheck(&args),
        Command::Train(args) => train(&args),
        Command::Evaluate(args) => evaluate(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(CliError::Mlp(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
    }
}

/// What a subcommand can fail with: a flag combination clap cannot check, or an
/// error from the library.
enum CliError {
    Usage(String),
    Mlp(MlpError),
}

impl From<MlpError> for CliError {
    fn from(e: MlpError) -> Self {
        CliError::Mlp(e)
    }
}

fn gradcheck(args: &GradcheckArgs) -> Result<(), CliError> {
    let toy = args.toy.toy(args.hidden_size);
    let mut rng = NumpyRng::default();
    let (x, y) = toy.data(&mut rng)?;
    let net = toy.model(args.activation.into(), args.std, &mut rng)?;
    let reg = Reg { penalty: args.regularization.into(), strength: args.reg };
    let (loss, grads) = net.loss(&x, &y, reg)?;
    let mut errors = Vec::new();
    for p in Param::ALL {
        let num = net.numerical_gradient(p, &x, &y, reg, args.step)?;
        errors.push((p, rel_error(&num, &grads.get(p))?));
    }
    if args.json {
        let grads_json: serde_json::Map<String, Value> = Param::ALL
            .into_iter()
            .map(|p| (p.name().to_string(), array_json(&grads.get(p))))
            .collect();
        let err_json: serde_json::Map<String, Value> =
            errors.iter().map(|(p, e)| (p.name().to_string(), json!(e))).collect();
        let regularization = reg.penalty.name();
        println!(
            "{}",
            json!({"loss": loss, "grads": grads_json, "rel_error": err_json,
                   "regularization": regularization})
        );
    } else {
        println!(
            "Toy {} network {} -> {} -> {}, std {}, {} reg {}, {} points (model seed {}, data seed {})",
            net.activation,
            toy.input_size,
            toy.hidden_size,
            toy.num_classes,
            args.std,
            reg.penalty.name().to_uppercase(),
            args.reg,
            toy.num_inputs,
            toy.model_seed,
            toy.data_seed
        );
        println!("loss = {}", py_float(loss));
        for (p, e) in errors {
            println!("{p} max relative error: {}", py_e(e));
        }
    }
    Ok(())
}

/// A 1-d or 2-d array as nested JSON lists.
fn array_json(a: &mlp_core::ndarray::ArrayViewD<f64>) -> Value {
    match a.ndim() {
        1 => json!(a.iter().copied().collect::<Vec<f64>>()),
        _ => Value::Array(a.outer_iter().map(|row| array_json(&row)).collect()),
    }
}

/// The data a training run uses.
struct Data {
    x_train: Array2<f64>,
    y_train: Array1<usize>,
    x_val: Array2<f64>,
    y_val: Array1<usize>,
    test: Option<(Array2<f64>, Array1<usize>)>,
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

fn train(args: &TrainArgs) -> Result<(), CliError> {
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
    report(args, &config, &net, &stats, (train_acc, val_acc, test_acc), train_seconds);
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

/// The toy data (training and validation alike), or MNIST split as the problem set
/// does; `note` prints MNIST's shapes on stderr.
fn load_data(args: &DataArgs, toy: &Toy, rng: &mut NumpyRng, note: bool) -> Result<Data, MlpError> {
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

fn evaluate(args: &EvaluateArgs) -> Result<(), CliError> {
    args.data.check()?;
    let net = TwoLayerMLP::load_npy(&args.load)?;
    let toy = args.data.toy.toy(None);
    let data = load_data(&args.data, &toy, &mut NumpyRng::default(), false)?;
    let (d, c) = (data.x_train.ncols(), data.y_train.iter().max().map_or(1, |m| m + 1));
    if net.input_size() != d || net.output_size() < c {
        return Err(CliError::Usage(format!(
            "the network in {} is {} -> {} -> {}, but --dataset {} has {d} inputs and {c} classes; \
             evaluate it on the data it was trained on",
            args.load.display(),
            net.input_size(),
            net.hidden_size(),
            net.output_size(),
            args.data.dataset.to_possible_value().map_or("?".into(), |v| v.get_name().to_string()),
        )));
    }
    let mut accuracy = vec![("train", net.accuracy(&data.x_train, &data.y_train)?)];
    if let Some((x, y)) = &data.test {
        accuracy.push(("val", net.accuracy(&data.x_val, &data.y_val)?));
        accuracy.push(("test", net.accuracy(x, y)?));
    }
    if args.json {
        let acc: serde_json::Map<String, Value> =
            accuracy.iter().map(|&(k, v)| (k.to_string(), json!(v))).collect();
        let sizes = [net.input_size(), net.hidden_size(), net.output_size()];
        println!(
            "{}",
            json!({"activation": net.activation.name(), "sizes": sizes, "accuracy": acc})
        );
        return Ok(());
    }
    println!(
        "Loaded a {} network {} -> {} -> {} from {}",
        net.activation,
        net.input_size(),
        net.hidden_size(),
        net.output_size(),
        args.load.display()
    );
    for (name, a) in accuracy {
        let name = match name {
            "train" if data.test.is_none() => "toy data",
            "train" => "training",
            "val" => "validation",
            _ => "test",
        };
        println!("{name} accuracy:  {}", py_float(a));
    }
    Ok(())
}

/// The notebook's figures for this run, as PNG files in `dir`.
fn write_plots(
    dir: &Path,
    dataset: Dataset,
    net: &TwoLayerMLP,
    stats: &Stats,
) -> Result<Vec<PathBuf>, MlpError> {
    std::fs::create_dir_all(dir)
        .map_err(|source| MlpError::Io { path: dir.to_path_buf(), source })?;
    let figures = match dataset {
        // the sigmoid cell fixes the gradient panel to 0..1, the ReLU cell does not
        Dataset::Toy => {
            let grad_range = (net.activation == Activation::Sigmoid).then_some(0.0..1.0);
            vec![("loss.png", plot_loss_and_gradient(stats, grad_range)?)]
        }
        Dataset::Mnist => {
            vec![("stats.png", plot_stats(stats)?), ("weights.png", show_net_weights(net)?)]
        }
    };
    let mut written = Vec::new();
    for (name, figure) in figures {
        let path = dir.join(name);
        figure.save(&path)?;
        written.push(path);
    }
    Ok(written)
}

fn report(
    args: &TrainArgs,
    config: &TrainConfig,
    net: &TwoLayerMLP,
    stats: &Stats,
    (train_acc, val_acc, test_acc): (f64, f64, Option<f64>),
    train_seconds: f64,
) {
    let final_loss = stats.final_loss();
    if args.json {
        let mut accuracy = json!({"train": train_acc, "val": val_acc});
        if let Some(t) = test_acc {
            accuracy["test"] = json!(t);
        }
        println!(
            "{}",
            json!({
                "loss_history": stats.loss_history,
                "grad_magnitude_history": stats.grad_magnitude_history,
                "train_acc_history": stats.train_acc_history,
                "val_acc_history": stats.val_acc_history,
                "final_loss": final_loss,
                "accuracy": accuracy,
                "train_seconds": train_seconds,
                "kernel": stats.kernel.name(),
                "regularization": config.penalty.name(),
                "reg": config.reg,
            })
        );
        return;
    }
    let name = match net.activation {
        Activation::Sigmoid => "Sigmoid",
        Activation::Relu => "ReLU",
    };
    println!("Final training loss:  {}", py_float(final_loss));
    println!("{name} final training accuracy:  {}", py_float(train_acc));
    println!("{name} final validation accuracy:  {}", py_float(val_acc));
    if let Some(t) = test_acc {
        println!("{name} test accuracy:  {}", py_float(t));
    }
    println!("Training time: {train_seconds:.2} s ({} kernel)", stats.kernel.name());
}
