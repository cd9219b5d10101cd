"""`make bench`: the MNIST run in Rust and in numpy, side by side, in the same conditions.

    python -m mlp_lab.bench path/to/mlp [--rounds 3]

For each activation, runs the numpy baseline (mlp_lab/bench/reference.py, the problem set's
TwoLayerMLP.train), `mlp train --dataset mnist --json` (its default kernel: sparse on
MNIST) and the same with `--kernel dense` alternately, `--rounds` times each, and prints
every time, the medians, the ratios numpy/Rust and the GFLOP/s. GFLOP/s are the dense
run's operation count over the time: what the dense kernel performs, and for the sparse
kernel a dense-equivalent rate (it skips the work on each image's background pixels).
Also measures the machine's f64 matrix-multiply peak (numpy/OpenBLAS on both cores,
4096x4096) and the peak resident memory of one run of each.

The student path too: the course's solution (the solved notebook 3, an ndarray network
as a good student writes it, trained by mlp-core's `Implementation::train`) executed in
the notebooks' Rust kernel, its two training cells' own times ("(trained in X s)"): with
ndarray on OpenBLAS (mlp-core's default `blas` feature) and the live figure, without the
live figure (MLP_KERNEL_DISPLAY=0), and on ndarray's portable kernels (no `blas`).

numpy runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (they are set on some of
these machines for old OpenBLAS builds and slow a current one); the OpenBLAS kernel it
then uses is printed.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys

import nbformat
from nbclient import NotebookClient

from mlp_lab import ROOT

REFERENCE = ["-m", "mlp_lab.bench.reference"]
NOTEBOOK3 = os.path.join(ROOT, "notebooks", "03_mnist.ipynb")
DEP = ':dep mlp-core = { path = "../mlp-core" }'
# the student path's builds: (name, the notebook's :dep line, MLP_KERNEL_DISPLAY)
STUDENT_BUILDS = [
    ("openblas, live", DEP, "1"),
    ("openblas", DEP, "0"),
    ("portable", ':dep mlp-core = { path = "../mlp-core", default-features = false, features = ["solutions"] }', "0"),
]

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


def student_path(dep, live):
    """The solved notebook 3 executed in the Rust kernel with `dep` as its :dep line:
    ({"sigmoid": s, "relu": s} as its training cells print them, the build's line)."""
    nb = nbformat.read(NOTEBOOK3, as_version=4)
    first = next(cell for cell in nb.cells if cell.cell_type == "code")
    first.source = first.source.replace(DEP, dep)
    NotebookClient(nb, timeout=1800, kernel_name="rust", resources={"metadata": {"path": os.path.dirname(NOTEBOOK3)}}
                   ).execute(env=dict(os.environ, MLP_KERNEL_DISPLAY=live), stderr=subprocess.DEVNULL)
    out = "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                  for o in cell.outputs if o.output_type == "stream")
    trained = [float(t) for t in re.findall(r"\(trained in ([0-9.]+) s\)", out)]
    build = re.search(r"matrix products on (.*)", out)
    if len(trained) != 2:
        sys.exit("notebook 3 printed %d training times, not 2:\n%s" % (len(trained), out[-2000:]))
    return {"sigmoid": trained[0], "relu": trained[1]}, build.group(1) if build else "?"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mlp")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-student", action="store_true", help="leave out the student path (notebook 3)")
    args = parser.parse_args()
    total = flops()
    peak, kernel, threads = matmul_peak()
    print("machine: f64 matrix-multiply peak %.1f GFLOP/s (numpy/OpenBLAS %s kernel, %s threads, 4096^3)"
          % (peak, kernel, threads))
    print("MNIST run: 784-64-10, batch 100, 20 epochs: %.1f GFLOP" % (total / 1e9))
    keys = ["numpy", "rust", "dense"] + [name for name, _, _ in STUDENT_BUILDS]
    times = {a: {k: [] for k in keys} for a in ["sigmoid", "relu"]}
    builds = {}
    for r in range(args.rounds):
        for activation in ["sigmoid", "relu"]:
            ref = run_json([sys.executable, *REFERENCE, "train", "--dataset", "mnist",
                            "--activation", activation], env=numpy_env())
            mlp = [args.mlp, "train", "--dataset", "mnist", "--activation", activation, "--json"]
            ours = run_json(mlp)
            dense = run_json(mlp + ["--kernel", "dense"])
            for key, run in [("numpy", ref), ("rust", ours), ("dense", dense)]:
                times[activation][key].append(run["train_seconds"])
            print("%-8s round %d: numpy %6.2f s   rust %6.2f s (%s)   rust dense %6.2f s   "
                  "(val acc numpy %.4f, rust %.4f, dense %.4f)"
                  % (activation, r + 1, ref["train_seconds"], ours["train_seconds"], ours["kernel"],
                     dense["train_seconds"], ref["accuracy"]["val"], ours["accuracy"]["val"],
                     dense["accuracy"]["val"]), flush=True)
        if args.no_student:
            continue
        for name, dep, live in STUDENT_BUILDS:
            trained, builds[name] = student_path(dep, live)
            for activation, seconds in trained.items():
                times[activation][name].append(seconds)
            print("student path (%s) round %d: sigmoid %.1f s, relu %.1f s   (%s)"
                  % (name, r + 1, trained["sigmoid"], trained["relu"], builds[name]), flush=True)
    print()
    print("medians; GFLOP/s = %.1f GFLOP / time (dense-equivalent for the sparse kernel)" % (total / 1e9))
    print("%-8s %-28s %10s %16s %12s %10s" % ("", "", "time", "numpy / this", "GFLOP/s", "of peak"))
    rows = [("numpy", "numpy"), ("engine (mlp, sparse)", "rust"), ("engine (mlp, dense)", "dense")]
    rows += [("student path (%s)" % name, name) for name, _, _ in STUDENT_BUILDS if not args.no_student]
    for activation in ["sigmoid", "relu"]:
        med = {k: statistics.median(v) for k, v in times[activation].items() if v}
        for label, key in rows:
            gflops = total / med[key] / 1e9
            print("%-8s %-28s %8.2f s %15.2fx %12.1f %9.0f%%"
                  % (activation, label, med[key], med["numpy"] / med[key], gflops, 100 * gflops / peak))
    for name, build in builds.items():
        print("student path (%s): matrix products on %s" % (name, build))
    one_epoch = [args.mlp, "train", "--dataset", "mnist", "--epochs", "1", "--json", "--kernel"]
    rss_sparse = peak_rss_mb(one_epoch + ["sparse"])
    rss_dense = peak_rss_mb(one_epoch + ["dense"])
    rss_np = peak_rss_mb([sys.executable, *REFERENCE, "train", "--dataset", "mnist", "--epochs", "1"],
                         env=numpy_env())
    print()
    print("peak resident memory (load, split, 1 epoch): rust %.0f MB (sparse kernel), %.0f MB (dense), "
          "numpy %.0f MB" % (rss_sparse, rss_dense, rss_np))


if __name__ == "__main__":
    main()
