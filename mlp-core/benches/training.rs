//! The MNIST run's hot paths, on MNIST itself (`make bench` fetches it first; set
//! MLP_DATA_DIR to use another copy): one minibatch's loss and gradients (batch 100,
//! hidden 64), one epoch of training (50,000 examples, batch 100) with each
//! first-layer kernel, prediction on 10,000 images, and rendering each figure.
//! `make bench` runs these beside the numpy comparison.

use criterion::{Criterion, criterion_group, criterion_main};
use mlp_core::ndarray::s;
use mlp_core::{
    Activation, InputKernel, NumpyRng, Stats, TrainConfig, TwoLayerMLP, get_mnist_data,
    plot_loss_and_gradient, plot_stats, show_net_weights,
};

fn net(activation: Activation, rng: &mut NumpyRng) -> TwoLayerMLP {
    TwoLayerMLP::new(784, 64, 10, 0.1, activation, rng).expect("valid sizes")
}

fn benches(c: &mut Criterion) {
    let mut rng = NumpyRng::new(0);
    let m = get_mnist_data(&mut rng, 50_000, 10_000, 10_000)
        .unwrap_or_else(|e| panic!("the benchmarks train on MNIST: {e}"));
    let (x, y, x_val, y_val) = (&m.x_train, &m.y_train, &m.x_val, &m.y_val);
    for activation in [Activation::Sigmoid, Activation::Relu] {
        let n = net(activation, &mut rng);
        let (xb, yb) = (x.slice(s![..100, ..]), y.slice(s![..100]));
        c.bench_function(&format!("minibatch loss+grad 100x784 ({activation})"), |b| {
            b.iter(|| n.loss(xb, yb, 0.5).expect("valid"))
        });
    }
    let n = net(Activation::Sigmoid, &mut rng);
    c.bench_function("predict 10000x784", |b| b.iter(|| n.predict(x_val).expect("valid")));

    let mut group = c.benchmark_group("epoch");
    group.sample_size(10);
    for activation in [Activation::Sigmoid, Activation::Relu] {
        for kernel in [InputKernel::Sparse, InputKernel::Dense] {
            let name = format!("one epoch 50000 batch 100 ({activation}, {})", kernel.name());
            group.bench_function(name, |b| {
                let config = TrainConfig {
                    num_epochs: 1,
                    batch_size: 100,
                    learning_rate: 1e-3,
                    reg: 0.5,
                    kernel,
                    ..TrainConfig::default()
                };
                b.iter(|| {
                    let mut n = net(activation, &mut NumpyRng::new(0));
                    n.train(&mut NumpyRng::new(1), x, y, x_val, y_val, &config).expect("trains")
                })
            });
        }
    }
    group.finish();

    let stats = Stats {
        loss_history: (0..10_000).map(|i| 80.0 * (-(i as f64) / 1500.0).exp() + 1.5).collect(),
        grad_magnitude_history: (0..10_000).map(|i| 10.0 / (1.0 + i as f64 / 2000.0)).collect(),
        train_acc_history: (0..20).map(|e| 0.3 + 0.03 * e as f64).collect(),
        val_acc_history: (0..20).map(|e| 0.27 + 0.03 * e as f64).collect(),
        ..Stats::default()
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
