//! `mlp evaluate`: a network saved by `mlp train --save` and its accuracies.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mlp_core::{NumpyRng, TwoLayerMLP, py_float};
use serde_json::{Value, json};

use crate::CliError;
use crate::args::DataArgs;
use crate::data::load_data;

#[derive(Args, Debug)]
pub(crate) struct EvaluateArgs {
    /// Folder written by `mlp train --save`
    #[arg(long)]
    load: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &EvaluateArgs) -> Result<(), CliError> {
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
