//! The student edition's harness: what the problem set's `utils.py` and notebook give a
//! student around the functions they write themselves (the problem set's `mlp.py`: the
//! loss with its gradients, `predict` and the SGD step). [`Implementation`] holds those
//! functions; its `train` is the problem set's training loop over them, its
//! `gradient_check` the notebook's check, and [`check_close`] a checkpoint that prints
//! the student's value, the expected one, the difference and the tolerance.
//!
//! Nothing here computes the network's loss or gradients: that is the student's part
//! (the library's own, `model.rs` and the engine, need the `solutions` feature, which
//! the student edition's notebooks leave off).

use ndarray::{Array1, Array2, ArrayView1};

use crate::batch;
use crate::check::{check_non_negative, check_xy};
use crate::error::{MlpError, Result};
use crate::gradcheck::{eval_numerical_gradient, rel_error};
use crate::model::{Grads, Param, TwoLayerMLP};
use crate::penalty::{Penalty, Reg};
use crate::pyfmt::py_e;
use crate::report::Stats;
use crate::rng::NumpyRng;
use crate::sums::sum_of_squares;
use crate::train::{Learner, TrainConfig, reporter_for, sgd};

/// The student's loss: `(loss, grads)` for `X` `(N, D)`, labels `y` `(N,)` and the L2
/// strength `reg`.
pub type LossFn = fn(&TwoLayerMLP, &Array2<f64>, &Array1<usize>, f64) -> (f64, Grads);
/// The student's `predict`: the class of each row of `X` `(N, D)`, `(N,)`.
pub type PredictFn = fn(&TwoLayerMLP, &Array2<f64>) -> Array1<usize>;
/// The student's SGD step: `param -= learning_rate * grad` for the four parameters.
pub type StepFn = fn(&mut TwoLayerMLP, &Grads, f64);

/// A student's implementation of the network's three functions.
#[derive(Clone, Copy, Debug)]
pub struct Implementation {
    pub loss: LossFn,
    pub predict: PredictFn,
    pub sgd_step: StepFn,
}

impl Implementation {
    /// [`checked_loss`] with this implementation's loss.
    pub fn loss(
        &self,
        net: &TwoLayerMLP,
        x: &Array2<f64>,
        y: &Array1<usize>,
        reg: impl Into<Reg>,
    ) -> Result<(f64, Grads)> {
        checked_loss(self.loss, net, x, y, reg)
    }

    /// The student's `predict`, with its output checked (one class per row, in range).
    pub fn predict(&self, net: &TwoLayerMLP, x: &Array2<f64>) -> Result<Array1<usize>> {
        let pred = (self.predict)(net, x);
        let problem = if pred.is_empty() && x.nrows() > 0 {
            let problem = format!("it returned no predictions for {} rows", x.nrows());
            return Err(MlpError::Unfinished { function: "predict", problem });
        } else if pred.len() != x.nrows() {
            format!(
                "it returned {} predictions for {} rows (one class per row of X)",
                pred.len(),
                x.nrows()
            )
        } else if let Some(&c) = pred.iter().find(|&&c| c >= net.output_size()) {
            format!("it predicted class {c}; the classes are 0..{}", net.output_size())
        } else {
            return Ok(pred);
        };
        Err(MlpError::StudentCode { function: "predict", problem })
    }

    /// The fraction of rows of `X` whose predicted class (the student's `predict`) is `y`'s.
    pub fn accuracy(&self, net: &TwoLayerMLP, x: &Array2<f64>, y: &Array1<usize>) -> Result<f64> {
        check_xy("accuracy", x.view(), y.view(), net.input_size(), net.output_size())?;
        Ok(hits(self.predict(net, x)?.view(), y.view()))
    }

    /// The problem set's `train(X, y, X_val, y_val, ...)` over the student's functions:
    /// the generator re-seeded with `config.seed`, one permutation per epoch, each
    /// minibatch's loss and gradients, the SGD step, the histories, the accuracies after
    /// each epoch (the `Epoch %d: ...` line with `config.verbose`), the learning-rate
    /// decay. A loss that turns NaN or infinite is [`MlpError::Diverged`].
    #[allow(clippy::too_many_arguments)]
    pub fn train(
        &self,
        net: &mut TwoLayerMLP,
        rng: &mut NumpyRng,
        x: &Array2<f64>,
        y: &Array1<usize>,
        x_val: &Array2<f64>,
        y_val: &Array1<usize>,
        config: &TrainConfig,
    ) -> Result<Stats> {
        config.validate()?;
        let (d, c) = (net.input_size(), net.output_size());
        check_xy("train (training set)", x.view(), y.view(), d, c)?;
        check_xy("train (validation set)", x_val.view(), y_val.view(), d, c)?;
        let mut reporter = reporter_for(config);
        let batch = config.batch_rows(x.nrows());
        // each minibatch is copied into the same arrays (numpy's X[idx], without an
        // allocation a step)
        let (xb, yb) = (Array2::zeros((batch, d)), Array1::zeros(batch));
        let mut run = StudentRun { code: self, net, x, y, x_val, y_val, reg: config.reg(), xb, yb };
        sgd(&mut run, rng, x.nrows(), config, &mut *reporter)
    }
}

/// A training run over a student's functions: what the loop ([`sgd`]) asks for.
struct StudentRun<'a> {
    code: &'a Implementation,
    net: &'a mut TwoLayerMLP,
    x: &'a Array2<f64>,
    y: &'a Array1<usize>,
    x_val: &'a Array2<f64>,
    y_val: &'a Array1<usize>,
    reg: Reg,
    /// The minibatch.
    xb: Array2<f64>,
    yb: Array1<usize>,
}

impl Learner for StudentRun<'_> {
    fn step(&mut self, rows: &[usize], learning_rate: f64) -> Result<(f64, f64)> {
        let idx = &rows[..self.yb.len()];
        batch::copy_rows(self.x.view(), idx, self.xb.view_mut());
        self.yb.iter_mut().zip(idx).for_each(|(label, &i)| *label = self.y[i]);
        // (X, y and reg were checked above: not again for every minibatch)
        let (loss, grads) = call_loss(self.code.loss, self.net, &self.xb, &self.yb, self.reg)?;
        if !loss.is_finite() {
            return Ok((loss, f64::NAN));
        }
        (self.code.sgd_step)(self.net, &grads, learning_rate);
        Ok((loss, sum_of_squares(&grads.w1).sqrt()))
    }

    fn accuracies(&mut self, _last: &[usize]) -> Result<(f64, f64)> {
        // (the minibatch holds the epoch's last)
        let train_acc = hits(self.code.predict(self.net, &self.xb)?.view(), self.yb.view());
        let val_acc = hits(self.code.predict(self.net, self.x_val)?.view(), self.y_val.view());
        Ok((train_acc, val_acc))
    }
}

fn hits(pred: ArrayView1<usize>, y: ArrayView1<usize>) -> f64 {
    pred.iter().zip(y).filter(|(p, t)| p == t).count() as f64 / y.len() as f64
}

/// A checkpoint, as the problem set's cells print one: the student's value, the
/// expected value, their difference and the tolerance; an error when the difference is
/// not below the tolerance (so that a test cell fails).
pub fn check_close(what: &str, yours: f64, expected: f64, tolerance: f64) -> Result<()> {
    let difference = (yours - expected).abs();
    println!("your {what}:     {yours}");
    println!("expected {what}: {expected}");
    println!("difference: {difference:.3e} (must be below {tolerance:.0e})");
    if difference < tolerance {
        Ok(())
    } else {
        Err(MlpError::CheckFailed {
            what: what.to_string(),
            yours,
            expected,
            difference,
            tolerance,
        })
    }
}

/// [`check_close`] for a value that must stay below a bound (a relative error).
pub fn check_below(what: &str, value: f64, bound: f64) -> Result<()> {
    println!("{what}: {} (must be below {bound:.0e})", py_e(value));
    if value < bound {
        Ok(())
    } else {
        Err(MlpError::CheckTooLarge { what: what.to_string(), value, bound })
    }
}

/// The student's loss `loss`, with what it returned checked: a finite loss, gradients of
/// the parameters' shapes. For [`Penalty::L1`] (Problem 3, which asks for its update
/// rule on paper) the student's loss is called without a penalty and the harness
/// adds `reg * (sum |W1| + sum |W2|)` and `reg * sign(W)`.
pub fn checked_loss(
    loss: LossFn,
    net: &TwoLayerMLP,
    x: &Array2<f64>,
    y: &Array1<usize>,
    reg: impl Into<Reg>,
) -> Result<(f64, Grads)> {
    let reg = reg.into();
    check_xy("loss", x.view(), y.view(), net.input_size(), net.output_size())?;
    check_non_negative("reg", reg.strength)?;
    call_loss(loss, net, x, y, reg)
}

/// [`checked_loss`] for inputs already checked (a minibatch of a checked training set).
fn call_loss(
    loss: LossFn,
    net: &TwoLayerMLP,
    x: &Array2<f64>,
    y: &Array1<usize>,
    Reg { penalty, strength }: Reg,
) -> Result<(f64, Grads)> {
    let l2 = if penalty == Penalty::L2 { strength } else { 0.0 };
    let (mut value, mut grads) = loss(net, x, y, l2);
    let p = &net.params;
    for param in Param::ALL {
        let (got, want) = (grads.get(param).shape().to_vec(), p.get(param).shape().to_vec());
        if got == want {
            continue;
        }
        if got.contains(&0) && !want.contains(&0) {
            // nothing computed yet (an empty placeholder), not a wrong computation
            let problem =
                format!("it returned an empty d{param} (shape {got:?}); {param} is {want:?}");
            return Err(MlpError::Unfinished { function: "loss", problem });
        }
        let (function, param) = ("loss", param.name());
        return Err(MlpError::GradientShape { function, param, found: got, expected: want });
    }
    if penalty == Penalty::L1 {
        value += strength * (penalty.sum(&p.w1) + penalty.sum(&p.w2));
        grads.w1.zip_mut_with(&p.w1, |g, &w| *g += strength * penalty.grad(w));
        grads.w2.zip_mut_with(&p.w2, |g, &w| *g += strength * penalty.grad(w));
    }
    Ok((value, grads))
}

/// The notebook's gradient check: each parameter's numerical gradient of the
/// student's loss (centred differences, `h = 1e-5`) against the gradient the loss
/// returned: each parameter's relative error, in the problem set's order.
pub fn gradient_check(
    loss: LossFn,
    net: &TwoLayerMLP,
    x: &Array2<f64>,
    y: &Array1<usize>,
    reg: impl Into<Reg>,
) -> Result<Vec<(Param, f64)>> {
    let reg = reg.into();
    let (_, grads) = checked_loss(loss, net, x, y, reg)?;
    let mut probe = net.clone();
    let mut errors = Vec::new();
    for p in Param::ALL {
        let mut value = net.params.get(p).to_owned();
        let num = eval_numerical_gradient(
            |v| {
                probe.params.get_mut(p).assign(&v);
                Ok(checked_loss(loss, &probe, x, y, reg)?.0)
            },
            &mut value,
            1e-5,
        )?;
        probe.params.get_mut(p).assign(&net.params.get(p));
        let e = rel_error(&num, &grads.get(p))?;
        errors.push((p, e));
    }
    Ok(errors)
}

/// A test cell's score, for nbgrader: `max` points when `checks` passes, 0 when a check
/// fails or a function it calls is unfinished (a panic, such as `todo!()`'s). What went
/// wrong is printed on standard output, in order with the checks' lines. A test cell
/// ends with it, so that its value is the cell's grade (nbgrader reads a number there as
/// the points): evcxr may deliver a cell's standard error after the cell has finished,
/// too late for nbgrader to see it.
pub fn points(max: f64, checks: impl FnOnce() -> Result<()>) -> f64 {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(checks)) {
        Ok(Ok(())) => max,
        Ok(Err(e)) => {
            println!("not passed: {e}");
            0.0
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            println!("not passed: a function this cell calls stopped: {message}");
            0.0
        }
    }
}
