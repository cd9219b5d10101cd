# Two commands set everything up on a fresh machine:
#   make lab    set up and open the notebooks in JupyterLab
#   make test   set up and run every test (notebooks executed headless included)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
MLP    := target/release/mlp

.PHONY: help venv build lint unit parity test

help:
	@echo "make lab     set up and open the notebooks in JupyterLab"
	@echo "make test    set up and run every test"
	@echo "make build   build the mlp command (target/release/mlp)"

# --- set-up ---------------------------------------------------------------
venv: $(VENV)/.installed
$(VENV)/.installed: tools/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r tools/requirements.txt
	touch $@

build:
	cargo build --release --locked -p mlp-cli

# --- tests ----------------------------------------------------------------
lint:
	cargo fmt --all --check
	cargo clippy --locked --workspace --all-targets -- -D warnings

unit:
	cargo test --locked --workspace

parity: venv build
	$(PY) tests/numpy_parity.py $(MLP)

test: lint unit parity
