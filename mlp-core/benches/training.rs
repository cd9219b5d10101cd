//! The MNIST run's hot paths, on data of MNIST's shapes (784 inputs, 64 hidden units,
//! 10 classes, pixel-like values): one minibatch's loss and gradients (batch 100),
//! one epoch of training (50,000 examples, batch 100), prediction on 10,000 images,
//! and rendering each figure. `make bench` runs these beside the numpy comparison.

use criterion::{Criterion, criterion_group, criterion_main};
use mlp_core::ndarray::{Array1, Array2};
use mlp_core::{
    Activation, NumpyRng, Stats, TrainConfig, TwoLayerMLP, plot_loss_and_gradient, plot_stats,
    show_net_weights,
};

/// `n` MNIST-like rows: values spread like mean-subtracted pixels, labels 0..10.
fn data(n: usize, rng: &mut NumpyRng) -> (Array2<f64>, Array1<usize>) {
    let x = rng
        .randn(n, 784)
        .mapv_into(|v| (v * 80.0).clamp(-130.0, 255.0));
    let y = Array1::from_iter((0..n).map(|_| (rng.next_u32() % 10) as usize));
    (x, y)
}

fn net(activation: Activation, rng: &mut NumpyRng) -> TwoLayerMLP {
    TwoLayerMLP::new(784, 64, 10, 0.1, activation, rng).expect("valid sizes")
}

fn benches(c: &mut Criterion) {
    let mut rng = NumpyRng::new(0);
    let (x, y) = data(50_000, &mut rng);
    let (x_val, y_val) = data(10_000, &mut rng);
    for activation in [Activation::Sigmoid, Activation::Relu] {
        let n = net(activation, &mut rng);
        let (xb, yb) = (
            x.slice(mlp_core::ndarray::s![..100, ..]),
            y.slice(mlp_core::ndarray::s![..100]),
        );
        c.bench_function(
            &format!("minibatch loss+grad 100x784 ({activation})"),
            |b| b.iter(|| n.loss(xb, yb, 0.5).expect("valid")),
        );
    }
    let n = net(Activation::Sigmoid, &mut rng);
    c.bench_function("predict 10000x784", |b| {
        b.iter(|| n.predict(&x_val).expect("valid"))
    });

    let mut group = c.benchmark_group("epoch");
    group.sample_size(10);
    for activation in [Activation::Sigmoid, Activation::Relu] {
        group.bench_function(format!("one epoch 50000 batch 100 ({activation})"), |b| {
            let config = TrainConfig {
                num_epochs: 1,
                batch_size: 100,
                learning_rate: 1e-3,
                reg: 0.5,
                ..TrainConfig::default()
            };
            b.iter(|| {
                let mut n = net(activation, &mut NumpyRng::new(0));
                n.train(&mut NumpyRng::new(1), &x, &y, &x_val, &y_val, &config)
                    .expect("trains")
            })
        });
    }
    group.finish();

    let stats = Stats {
        loss_history: (0..10_000)
            .map(|i| 80.0 * (-(i as f64) / 1500.0).exp() + 1.5)
            .collect(),
        grad_magnitude_history: (0..10_000)
            .map(|i| 10.0 / (1.0 + i as f64 / 2000.0))
            .collect(),
        train_acc_history: (0..20).map(|e| 0.3 + 0.03 * e as f64).collect(),
        val_acc_history: (0..20).map(|e| 0.27 + 0.03 * e as f64).collect(),
    };
    let mut group = c.benchmark_group("render");
    group.sample_size(10);
    group.bench_function("plot_stats 10000 iterations", |b| {
        b.iter(|| plot_stats(&stats).expect("plots"))
    });
    group.bench_function("toy loss and gradient figure", |b| {
        b.iter(|| plot_loss_and_gradient(&stats, Some(0.0..1.0)).expect("plots"))
    });
    group.bench_function("show_net_weights 64 units", |b| {
        b.iter(|| show_net_weights(&n).expect("plots"))
    });
    group.finish();
}

criterion_group!(training, benches);
criterion_main!(training);
