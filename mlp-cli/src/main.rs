//! `mlp`: the problem set's experiments from a terminal.
//!
//! Human-readable output by default, one JSON object with `--json`. Exit status 2
//! for bad usage, 1 for failures; errors are one line on standard error.

mod args;
mod data;
mod evaluate;
mod gradcheck;
mod progress;
mod report;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mlp_core::MlpError;

use crate::evaluate::EvaluateArgs;
use crate::gradcheck::GradcheckArgs;
use crate::train::TrainArgs;

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

fn main() -> ExitCode {
    let cli = Cli::parse(); // clap prints usage errors itself and exits with 2
    let result = match cli.command {
        Command::Gradcheck(args) => gradcheck::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Evaluate(args) => evaluate::run(&args),
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
pub(crate) enum CliError {
    Usage(String),
    Mlp(MlpError),
}

impl From<MlpError> for CliError {
    fn from(e: MlpError) -> Self {
        CliError::Mlp(e)
    }
}
