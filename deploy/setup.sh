#!/usr/bin/env bash
# Everything a course's JupyterHub needs from this clone, built once: the venv (JupyterLab,
# JupyterHub), the evcxr kernel, mlp-core prebuilt in the kernels' template, MNIST, the
# student edition (course/release/mlp) and configurable-http-proxy. `make hub` runs this
# as its first step (make hub-setup); the course image (deploy/Dockerfile) runs the same
# script with XDG_CACHE_HOME outside $HOME, which a user volume would hide.
set -euo pipefail
cd "$(dirname "$0")/.."
make hub-setup
