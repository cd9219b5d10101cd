//! `mlp gradcheck`: the toy network's loss and each parameter's max relative error
//! between the analytic and the numerical gradient.

use clap::Args;
use mlp_core::{NumpyRng, Param, Reg, py_e, py_float, rel_error};
use serde_json::{Value, json};

use crate::CliError;
use crate::args::{ActivationArg, PenaltyArg, ToyArgs};

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub(crate) struct GradcheckArgs {
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

pub(crate) fn run(args: &GradcheckArgs) -> Result<(), CliError> {
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
