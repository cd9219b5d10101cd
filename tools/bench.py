"""`make bench`: the MNIST run in Rust and in numpy, side by side, in the same conditions.

    python tools/bench.py path/to/mlp [--rounds 3]

For each activation, runs the numpy baseline (tools/reference_mlp.py, the problem set's
TwoLayerMLP.train), `mlp train --dataset mnist --json` (its default kernel: sparse on
MNIST) and the same with `--kernel dense` alternately, `--rounds` times each, and prints
every time, the medians, the ratios numpy/Rust and the GFLOP/s. GFLOP/s are the dense
run's operation count over the time: what the dense kernel performs, and for the sparse
kernel a dense-equivalent rate (it skips the work on each image's background pixels).
Also measures the machine's f64 matrix-multiply peak (numpy/OpenBLAS on both cores,
4096x4096) and the peak resident memory of one run of each.

numpy runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (they are set on some of
these machines for old OpenBLAS builds and slow a current one); the OpenBLAS kernel it
then uses is printed.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(ROOT, "tools", "reference_mlp.py")

# the problem set's MNIST cell: 784-64-10, batch 100, 20 epochs, 50,000 training images,
# validation accuracy on 10,000 after each epoch
D, H, C, B, N, NVAL, EPOCHS = 784, 64, 10, 100, 50_000, 10_000, 20


def flops():
    per_step = 2 * B * D * H * 2 + 2 * B * H * C * 3  # X W1, X^T dZ1; h W2, dW2, dh
    per_epoch = (N // B) * per_step + 2 * NVAL * (D * H + H * C)
    return EPOCHS * per_epoch


def numpy_env():
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    return env


def run_json(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out)


def peak_rss_mb(cmd, env=None):
    """Peak resident memory of `cmd`, measured in a fresh process of its own."""
    probe = ("import resource, subprocess, sys; "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe] + cmd, check=True, capture_output=True,
                         text=True, env=env).stdout
    return int(out.strip()) / 1024


def matmul_peak():
    code = r"""
import time, numpy as np
from threadpoolctl import threadpool_info
n = 4096
a = np.random.rand(n, n); b = np.random.rand(n, n)
a @ b
best = 1e9
for _ in range(3):
    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
info = [i for i in threadpool_info() if i.get("internal_api") == "openblas"]
print(2 * n ** 3 / best / 1e9, info[0].get("architecture") if info else "?",
      info[0].get("num_threads") if info else "?")
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env=numpy_env()).stdout.split()
    return float(out[0]), out[1], out[2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mlp")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    total = flops()
    peak, kernel, threads = matmul_peak()
    print("machine: f64 matrix-multiply peak %.1f GFLOP/s (numpy/OpenBLAS %s kernel, %s threads, 4096^3)"
          % (peak, kernel, threads))
    print("MNIST run: 784-64-10, batch 100, 20 epochs: %.1f GFLOP" % (total / 1e9))
    summary = []
    for activation in ["sigmoid", "relu"]:
        times = {"numpy": [], "rust": [], "dense": []}
        for r in range(args.rounds):
            ref = run_json([sys.executable, REFERENCE, "train", "--dataset", "mnist",
                            "--activation", activation], env=numpy_env())
            times["numpy"].append(ref["train_seconds"])
            mlp = [args.mlp, "train", "--dataset", "mnist", "--activation", activation, "--json"]
            ours = run_json(mlp)
            times["rust"].append(ours["train_seconds"])
            dense = run_json(mlp + ["--kernel", "dense"])
            times["dense"].append(dense["train_seconds"])
            print("%-8s round %d: numpy %6.2f s   rust %6.2f s (%s)   rust dense %6.2f s   "
                  "(val acc numpy %.4f, rust %.4f, dense %.4f)"
                  % (activation, r + 1, ref["train_seconds"], ours["train_seconds"], ours["kernel"],
                     dense["train_seconds"], ref["accuracy"]["val"], ours["accuracy"]["val"],
                     dense["accuracy"]["val"]), flush=True)
        summary.append((activation, {k: statistics.median(v) for k, v in times.items()}))
    print()
    print("medians; GFLOP/s = %.1f GFLOP / time (dense-equivalent for the sparse kernel)" % (total / 1e9))
    print("%-8s %-12s %10s %16s %12s %10s" % ("", "", "time", "numpy / this", "GFLOP/s", "of peak"))
    for activation, med in summary:
        for name, key in [("numpy", "numpy"), ("rust", "rust"), ("rust dense", "dense")]:
            gflops = total / med[key] / 1e9
            print("%-8s %-12s %8.2f s %15.2fx %12.1f %9.0f%%"
                  % (activation, name, med[key], med["numpy"] / med[key], gflops, 100 * gflops / peak))
    one_epoch = [args.mlp, "train", "--dataset", "mnist", "--epochs", "1", "--json", "--kernel"]
    rss_sparse = peak_rss_mb(one_epoch + ["sparse"])
    rss_dense = peak_rss_mb(one_epoch + ["dense"])
    rss_np = peak_rss_mb([sys.executable, REFERENCE, "train", "--dataset", "mnist", "--epochs", "1"],
                         env=numpy_env())
    print()
    print("peak resident memory (load, split, 1 epoch): rust %.0f MB (sparse kernel), %.0f MB (dense), "
          "numpy %.0f MB" % (rss_sparse, rss_dense, rss_np))


if __name__ == "__main__":
    main()
