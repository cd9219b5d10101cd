//! The engine's contract (`mod.rs`): its loss, gradients and step equal `model.rs`'s.
//! `make unit` runs these at every `MLP_SIMD` level; the MNIST ones (ignored without
//! the data) run in `make mnist`.

use ndarray::{Array2, ArrayView, Axis, Dimension};

use super::arrays::{aligned_zeros, make_aligned, penalty_sum_split};
use super::{Input, OffsetSparse, Workspace, par, sgd_step};
use crate::model::{Activation, Grads, Param, Params, TwoLayerMLP};
use crate::penalty::{Penalty, Reg};
use crate::{NumpyRng, Toy};

#[path = "../../tests/common/images.rs"]
mod common;

/// The largest difference over the largest magnitude (of either array).
fn rel<D: Dimension>(a: ArrayView<f64, D>, b: ArrayView<f64, D>) -> f64 {
    let scale = a.iter().chain(&b).fold(0.0, |m: f64, v| m.max(v.abs()));
    let diff = a.iter().zip(&b).fold(0.0, |m: f64, (p, q)| m.max((p - q).abs()));
    if diff == 0.0 { 0.0 } else { diff / scale }
}

#[derive(Clone, Copy, Debug)]
enum Kernel {
    Dense,
    Sparse,
}

/// One engine step at learning rate 1 on rows `idx` of `x`: the loss, the gradients
/// and the parameters after it. The sparse step keeps no `dW1`: it is read off the
/// step, `W1 - W1'` (so for it the gradient check and the step check are one).
fn engine_step(
    net: &TwoLayerMLP,
    (x, y, idx): (&Array2<f64>, &[usize], &[usize]),
    reg: Reg,
    kernel: Kernel,
    two_threads: bool,
) -> (f64, Grads, Params) {
    let (d, h, c) = (net.input_size(), net.hidden_size(), net.output_size());
    let mut params = net.params.clone();
    make_aligned(&mut params.w1);
    let mut ws = Workspace::new(idx.len(), h, c);
    let mut grads = Params::zeros(d, h, c);
    let y_batch: Vec<usize> = idx.iter().map(|&i| y[i]).collect();
    let mut step = || match kernel {
        Kernel::Dense => {
            let mut buf = Array2::zeros((idx.len(), d));
            let input = Input::Gather { src: x.view(), idx, buf: &mut buf };
            let act = net.activation;
            sgd_step(&mut params, act, input, &y_batch, reg, 1.0, &mut ws, &mut grads).0
        }
        Kernel::Sparse => {
            let (offset, density) = OffsetSparse::survey(x.view());
            let s = OffsetSparse::new(x.view(), offset, density);
            let input = Input::Sparse { s: &s, idx, next: &[] };
            let act = net.activation;
            sgd_step(&mut params, act, input, &y_batch, reg, 1.0, &mut ws, &mut grads).0
        }
    };
    let loss = if two_threads { par::with_helper(&mut step) } else { step() };
    ws.sync_w1(&mut params.w1);
    if let Kernel::Sparse = kernel {
        grads.w1 = &net.params.w1 - &params.w1;
    }
    (loss, grads, params)
}

/// The engine's loss, gradients and step against `model.rs`'s on rows `idx` of `x`,
/// with every kernel on one thread and on two, for the L2 penalty `reg` and for L1 at
/// the same strength.
fn assert_engine_is_the_model(
    net: &TwoLayerMLP,
    x: &Array2<f64>,
    y: &[usize],
    idx: &[usize],
    reg: f64,
    what: &str,
) {
    let xb = x.select(Axis(0), idx);
    let yb = ndarray::Array1::from_iter(idx.iter().map(|&i| y[i]));
    let cases = [Kernel::Dense, Kernel::Sparse].into_iter().flat_map(|k| [(k, false), (k, true)]);
    for reg in [Reg::from(reg), Reg::l1(reg)] {
        let (loss, grads) = net.loss(&xb, &yb, reg).expect("a valid batch");
        for (kernel, two_threads) in cases.clone() {
            let act = net.activation;
            let case = format!("{what}, {act:?}, {reg:?}, {kernel:?}, two threads {two_threads}");
            let (e_loss, e_grads, after) = engine_step(net, (x, y, idx), reg, kernel, two_threads);
            let l = (e_loss - loss).abs() / loss.abs();
            assert!(l < 1e-12, "{case}: loss {e_loss} against the model's {loss} ({l:e})");
            for p in Param::ALL {
                let g = rel(e_grads.get(p), grads.get(p));
                assert!(g < 1e-12, "{case}: d{p} differs by {g:e}");
                // the step: param - 1.0 * grad, with the model's gradient
                let step = &net.params.get(p) - &after.get(p);
                let s = rel(step.view(), grads.get(p));
                assert!(s < 1e-12, "{case}: the step of {p} differs by {s:e}");
            }
        }
    }
}

#[test]
fn the_engine_computes_the_models_loss_gradients_and_step_on_toy_batches() {
    let toy = Toy::default();
    for act in [Activation::Sigmoid, Activation::Relu] {
        let mut rng = NumpyRng::new(0);
        let (x, y) = toy.data(&mut rng).unwrap();
        let net = toy.model(act, 0.1, &mut rng).unwrap();
        let y = y.to_vec();
        assert_engine_is_the_model(&net, &x, &y, &[0, 1, 2, 3, 4], 0.1, "toy");
        assert_engine_is_the_model(&net, &x, &y, &[3, 0, 4], 1e-5, "toy rows 3, 0, 4");
    }
}

#[test]
fn the_engine_computes_the_models_loss_gradients_and_step_on_mnist_like_batches() {
    let mut rng = NumpyRng::new(5);
    let (x, y) = common::images(400, &mut rng);
    let y = y.to_vec();
    let perm = rng.permutation(400);
    for act in [Activation::Sigmoid, Activation::Relu] {
        // the problem set's MNIST network (784-64-10, std 0.1, batch 100, reg 0.5), and
        // odd sizes (hidden units that are no multiple of 16, a batch of 250)
        for (h, batch, reg) in [(64, 100, 0.5), (37, 250, 1e-3)] {
            let net = TwoLayerMLP::new(784, h, 10, 0.1, act, &mut rng).unwrap();
            let what = format!("images, H {h}, batch {batch}");
            assert_engine_is_the_model(&net, &x, &y, &perm[..batch], reg, &what);
        }
    }
}

#[test]
#[ignore = "needs data/mnist (make data); run by make mnist"]
fn the_engine_computes_the_models_loss_gradients_and_step_on_mnist_batches() {
    // the problem set's data and networks: the first minibatch of training (seed 1)
    let mut rng = NumpyRng::new(0);
    let data = crate::get_mnist_data(&mut rng, 50_000, 10_000, 10_000).expect("make data");
    let y = data.y_train.to_vec();
    for act in [Activation::Sigmoid, Activation::Relu] {
        let net = TwoLayerMLP::new(784, 64, 10, 0.1, act, &mut rng).unwrap();
        let perm = NumpyRng::new(1).permutation(50_000);
        assert_engine_is_the_model(&net, &data.x_train, &y, &perm[..100], 0.5, "MNIST");
        let last = &perm[49_900..];
        assert_engine_is_the_model(&net, &data.x_train, &y, last, 1e-5, "MNIST, last batch");
    }
}

#[test]
fn aligned_arrays_start_a_cache_line() {
    for (r, c) in [(0, 4), (784, 64), (100, 10), (3, 5)] {
        let a = aligned_zeros(r, c);
        assert_eq!(a.dim(), (r, c));
        assert!(a.is_standard_layout() && a.iter().all(|&x| x == 0.0));
        if r * c == 0 {
            continue; // (no element to align)
        }
        assert_eq!(a.as_ptr().align_offset(64), 0, "{r} x {c}");
        // an array that is not: copied into one, the same values
        let b = Array2::from_shape_fn((r, c + 1), |(i, j)| (i * 7 + j) as f64);
        let mut columns = b.slice_move(ndarray::s![.., 1..]);
        let want = columns.to_owned();
        make_aligned(&mut columns);
        assert_eq!(columns, want);
        assert!(columns.is_standard_layout());
        assert_eq!(columns.as_ptr().align_offset(64), 0);
    }
}

#[test]
fn penalties_on_two_threads_are_numpys_sums() {
    // np.random.seed(0); a = np.random.randn(784, 64); np.sum(a * a), np.sum(np.abs(a))
    let w1 = NumpyRng::new(0).randn(784, 64);
    let l2 = par::with_helper(|| penalty_sum_split(w1.view(), Penalty::L2));
    assert_eq!(l2, 49886.11859285609);
    let l1 = par::with_helper(|| penalty_sum_split(w1.view(), Penalty::L1));
    assert_eq!(l1, 39826.197385239946);
}
