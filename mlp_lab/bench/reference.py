"""The problem set's TwoLayerMLP in numpy, written as the problem set's mlp.py and
utils.py do it: the reference the Rust crate is compared with (`make test`) and the
baseline `make bench` times.

    python -m mlp_lab.bench.reference gradcheck [--activation sigmoid] [--std 0.1] [--reg 0.1] ...
    python -m mlp_lab.bench.reference train --dataset toy|mnist [...]

prints the same JSON objects as `mlp gradcheck --json` / `mlp train --json`.
"""

import argparse
import json
import os
import sys
import time

import numpy as np


class TwoLayerMLP:
    def __init__(self, input_size, hidden_size, output_size, std=1e-4, activation="relu"):
        self.params = {}
        self.params["W1"] = std * np.random.randn(input_size, hidden_size)
        self.params["b1"] = np.zeros(hidden_size)
        self.params["W2"] = std * np.random.randn(hidden_size, output_size)
        self.params["b2"] = np.zeros(output_size)
        self.activation = activation

    def loss(self, X, y=None, reg=0.0, regularization="l2"):
        W1, b1 = self.params["W1"], self.params["b1"]
        W2, b2 = self.params["W2"], self.params["b2"]
        N, D = X.shape
        z1 = X.dot(W1) + b1
        if self.activation == "relu":
            hidden = np.maximum(0, z1)
        else:
            with np.errstate(over="ignore"):
                hidden = 1 / (1 + np.exp(-z1))
        scores = hidden.dot(W2) + b2
        if y is None:
            return scores
        shifted = scores - np.max(scores, axis=1, keepdims=True)
        sum_exp = np.sum(np.exp(shifted), axis=1, keepdims=True)
        log_probs = shifted - np.log(sum_exp)
        probs = np.exp(log_probs)
        loss = -np.sum(log_probs[np.arange(N), y]) / N
        if regularization == "l1":  # Problem 3: reg * (sum |W1| + sum |W2|), subgradient reg * sign(W)
            loss += reg * (np.sum(np.abs(W1)) + np.sum(np.abs(W2)))
            dpen1, dpen2 = np.sign(W1), np.sign(W2)
        else:
            loss += 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
            dpen1, dpen2 = W1, W2

        grads = {}
        dscores = probs.copy()
        dscores[np.arange(N), y] -= 1
        dscores /= N
        grads["W2"] = hidden.T.dot(dscores) + reg * dpen2
        grads["b2"] = np.sum(dscores, axis=0)
        dhidden = dscores.dot(W2.T)
        if self.activation == "relu":
            dz1 = dhidden * (z1 > 0)
        else:
            dz1 = dhidden * hidden * (1 - hidden)
        grads["W1"] = X.T.dot(dz1) + reg * dpen1
        grads["b1"] = np.sum(dz1, axis=0)
        return loss, grads

    def train(self, X, y, X_val, y_val, learning_rate=1e-3, learning_rate_decay=0.95,
              reg=1e-5, num_epochs=10, batch_size=200, verbose=False, regularization="l2"):
        num_train = X.shape[0]
        iterations_per_epoch = max(num_train // batch_size, 1)
        np.random.seed(1)
        loss_history, grad_magnitude_history = [], []
        train_acc_history, val_acc_history = [], []
        for epoch in range(num_epochs):
            perm = np.random.permutation(num_train)
            for it in range(iterations_per_epoch):
                idx = perm[it * batch_size:(it + 1) * batch_size]
                X_batch, y_batch = X[idx], y[idx]
                loss, grads = self.loss(X_batch, y=y_batch, reg=reg, regularization=regularization)
                loss_history.append(loss)
                for param in self.params:
                    self.params[param] -= learning_rate * grads[param]
                grad_magnitude_history.append(np.linalg.norm(grads["W1"]))
            train_acc = (self.predict(X_batch) == y_batch).mean()
            val_acc = (self.predict(X_val) == y_val).mean()
            train_acc_history.append(train_acc)
            val_acc_history.append(val_acc)
            if verbose:
                print("Epoch %d: loss %f, train_acc %f, val_acc %f"
                      % (epoch + 1, loss, train_acc, val_acc), file=sys.stderr)
            learning_rate *= learning_rate_decay
        return {
            "loss_history": loss_history,
            "grad_magnitude_history": grad_magnitude_history,
            "train_acc_history": train_acc_history,
            "val_acc_history": val_acc_history,
        }

    def predict(self, X):
        return np.argmax(self.loss(X), axis=1)


def eval_numerical_gradient(f, x, h=1e-5):
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        oldval = x[ix]
        x[ix] = oldval + h
        fxph = f(x)
        x[ix] = oldval - h
        fxmh = f(x)
        x[ix] = oldval
        grad[ix] = (fxph - fxmh) / (2 * h)
        it.iternext()
    return grad


def rel_error(x, y):
    return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def get_MNIST_data(data_dir, num_training=50000, num_validation=10000, num_test=10000):
    np.random.seed(0)
    images = np.concatenate([read_idx(os.path.join(data_dir, "train-images-idx3-ubyte")),
                             read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte"))])
    labels = np.concatenate([read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte")),
                             read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte"))])
    X = images.reshape(70000, 784).astype(np.float64)
    y = labels.astype(np.int64)
    I = np.random.permutation(X.shape[0])  # noqa: E741 (utils.py's name, as mlp-core/src/data.rs quotes it)
    X, y = X[I], y[I]
    X_train, y_train = X[:num_training], y[:num_training]
    X_val = X[num_training:num_training + num_validation]
    y_val = y[num_training:num_training + num_validation]
    X_test = X[num_training + num_validation:num_training + num_validation + num_test]
    y_test = y[num_training + num_validation:num_training + num_validation + num_test]
    mean_image = np.mean(X_train, axis=0)
    return X_train - mean_image, y_train, X_val - mean_image, y_val, X_test - mean_image, y_test


def toy(args):
    np.random.seed(args.data_seed)
    X = 10 * np.random.randn(args.num_inputs, args.input_size)
    y = np.array(args.labels)
    np.random.seed(args.model_seed)
    net = TwoLayerMLP(args.input_size, args.hidden_size, args.num_classes, std=args.std,
                      activation=args.activation)
    return net, X, y


def parse(argv=None):
    """The command line below (the defaults of each flag when `argv` is just a command)."""
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["gradcheck", "train"])
    p.add_argument("--dataset", default="toy")
    p.add_argument("--activation", default="sigmoid")
    p.add_argument("--std", type=float, default=0.1)
    p.add_argument("--reg", type=float)
    p.add_argument("--regularization", choices=["l2", "l1"], default="l2")
    p.add_argument("--input-size", type=int, default=4)
    p.add_argument("--hidden-size", type=int)
    p.add_argument("--num-classes", type=int, default=3)
    p.add_argument("--num-inputs", type=int, default=5)
    p.add_argument("--labels", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2, 2, 1])
    p.add_argument("--model-seed", type=int, default=0)
    p.add_argument("--data-seed", type=int, default=1)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--learning-rate-decay", type=float, default=0.95)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--data-dir", default=os.environ.get("MLP_DATA_DIR", "data/mnist"))
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args(argv)
    a.hidden_size = a.hidden_size or (10 if a.dataset == "toy" else 64)
    return a


def main():
    a = parse()
    sigmoid = a.activation == "sigmoid"

    if a.command == "gradcheck":
        reg = 0.1 if a.reg is None else a.reg
        net, X, y = toy(a)
        pen = a.regularization
        loss, grads = net.loss(X, y, reg=reg, regularization=pen)
        errors = {}
        for name in ["W1", "b1", "W2", "b2"]:
            num = eval_numerical_gradient(lambda W: net.loss(X, y, reg=reg, regularization=pen)[0],
                                          net.params[name])
            errors[name] = rel_error(num, grads[name])
        print(json.dumps({"loss": loss, "grads": {k: v.tolist() for k, v in grads.items()},
                          "rel_error": errors, "regularization": pen}))
        return

    if a.dataset == "toy":
        net, X, y = toy(a)
        data = (X, y, X, y, None, None)
        lr = a.learning_rate or (0.5 if sigmoid else 0.1)
        epochs = a.epochs or (100 if sigmoid else 50)
        reg = 1e-5 if a.reg is None else a.reg
        batch = a.batch_size or 200
    else:
        data = get_MNIST_data(a.data_dir)
        net = TwoLayerMLP(784, a.hidden_size, 10, std=a.std, activation=a.activation)
        lr = a.learning_rate or 1e-3
        epochs = a.epochs or 20
        reg = 0.5 if a.reg is None else a.reg
        batch = a.batch_size or 100
    X_train, y_train, X_val, y_val, X_test, y_test = data
    start = time.perf_counter()
    stats = net.train(X_train, y_train, X_val, y_val, learning_rate=lr,
                      learning_rate_decay=a.learning_rate_decay, reg=reg, num_epochs=epochs,
                      batch_size=batch, verbose=a.verbose, regularization=a.regularization)
    seconds = time.perf_counter() - start
    accuracy = {"train": (net.predict(X_train) == y_train).mean(),
                "val": (net.predict(X_val) == y_val).mean()}
    if X_test is not None:
        accuracy["test"] = (net.predict(X_test) == y_test).mean()
    stats = {k: [float(v) for v in vs] for k, vs in stats.items()}
    stats.update(final_loss=stats["loss_history"][-1],
                 accuracy={k: float(v) for k, v in accuracy.items()}, train_seconds=seconds,
                 regularization=a.regularization, reg=reg)
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
