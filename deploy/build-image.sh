#!/usr/bin/env bash
# make image: the course image (deploy/Dockerfile) built here with podman, and its name
# written to .tools/course-image. Nothing is pulled: the base is Debian bookworm made with
# debootstrap and imported once (localhost/mlp-lab-base:bookworm); the Rust toolchain is
# this machine's, the evcxr kernel the one make kernel built. The image is tagged with a
# hash of everything staged for it, so a second run with the same inputs builds nothing;
# podman's layer cache keeps the slow layers (packages, toolchain, mlp-core compiled)
# when only the notebooks change.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF="$PWD/deploy/containers.conf"
BASE=localhost/mlp-lab-base:bookworm
NAME=localhost/mlp-lab-course
CTX=target/image/context
EVCXR=${EVCXR:-.tools/evcxr-0.22.0/bin/evcxr_jupyter}
MIRROR=${MLP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
start=$(date +%s)
if [ "$(id -u)" != 0 ]; then
  echo "make image: podman builds and runs the course's containers as root on these machines (runc, cgroupfs):" >&2
  echo "run it as root, or serve a class without containers: MLP_HUB_ISOLATION=none make hub (deploy/README.md)" >&2
  exit 1
fi

if ! podman image exists "$BASE"; then
  echo "image: making the Debian base with debootstrap (about a minute, once)"
  root=$(mktemp -d /var/tmp/mlp-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" > target/image-debootstrap.log 2>&1 \
    || { tail -20 target/image-debootstrap.log; exit 1; }
  tar -C "$root" -c . | podman import --quiet - "$BASE" > /dev/null
  rm -rf "$root"
  trap - EXIT
fi

# --- the build context ------------------------------------------------------------------
rm -rf "$CTX" && mkdir -p "$CTX"/{lab,course/release,course/data,lab/kernel,lab/.tools/evcxr-0.22.0/bin}
cp deploy/Dockerfile deploy/image/* "$CTX"/
cp /etc/ssl/certs/ca-certificates.crt "$CTX"/build-ca.crt
# the image's Python packages: the lab's and JupyterHub's, without the browser tests' Playwright
{ grep -v '^playwright' tools/requirements.txt; grep '^jupyterhub==' deploy/requirements.txt; } \
  > "$CTX"/requirements.txt
# the toolchain (rustc, cargo and the standard library; not the documentation)
sysroot=$(rustc --print sysroot)
mkdir -p "$CTX"/rust/bin
for tool in rustc cargo rustdoc; do cp -L "$sysroot/bin/$tool" "$CTX"/rust/bin/; done
cp -a "$sysroot"/lib "$CTX"/rust/
# the kernel and the library, as committed
git ls-files -z Cargo.toml Cargo.lock mlp-core mlp-cli pyproject.toml mlp_lab \
    tools/lab deploy/student-config deploy/class-config | tar --null -T - -c | tar -x -C "$CTX"/lab
cp "$EVCXR" "$CTX"/lab/.tools/evcxr-0.22.0/bin/
# without the problem set's answers: mlp-core's `solutions` items and engine, and the numpy
# reference of the benchmark (mlp_lab/course/student_source.py)
.venv/bin/python -m mlp_lab.course.student_source "$CTX"/lab/mlp-core > /dev/null
rm -rf "$CTX"/lab/mlp_lab/bench
# the image holds this clone's files at /opt/mlp-lab: the kernel spec make kernel wrote and
# the student edition (its `:dep` line) name them there
to_image() { sed "s|$PWD/|/opt/mlp-lab/|g" "$1" > "$2"; }
cp .venv/share/jupyter/kernels/rust/logo-* "$CTX"/lab/kernel/
to_image .venv/share/jupyter/kernels/rust/kernel.json "$CTX"/lab/kernel/kernel.json
mkdir -p "$CTX"/course/release/mlp "$CTX"/course/data/mnist
for nb in course/release/mlp/*.ipynb; do to_image "$nb" "$CTX/course/release/mlp/$(basename "$nb")"; done
if grep -q "$PWD" "$CTX"/lab/kernel/kernel.json "$CTX"/course/release/mlp/*.ipynb; then
  echo "image: the kernel spec or the student edition still names $PWD" >&2; exit 1
fi
# and MNIST
cp data/mnist/*-ubyte* "$CTX"/course/data/mnist/

# --- the image, tagged by its inputs ------------------------------------------------------------
hash=$( (rustc --version; cd "$CTX" && find . -path ./rust -prune -o -type f -print0 | sort -z \
        | xargs -0 sha256sum) | sha256sum | cut -c1-12)
image="$NAME:$hash"
if podman image exists "$image"; then
  echo "image: $image is built (its inputs have not changed)"
else
  echo "image: building $image (deploy/Dockerfile; log in target/image-build.log)"
  podman build --network host --build-arg BASE="$BASE" -t "$image" -f "$CTX"/Dockerfile "$CTX" \
    > target/image-build.log 2>&1 || { tail -30 target/image-build.log; exit 1; }
  echo "image: built in $(( $(date +%s) - start )) s"
fi
podman tag "$image" "$NAME:latest"
# the image this clone built before, if no container uses it any more (another clone's
# images are left alone)
previous=$(cat .tools/course-image 2>/dev/null || true)
mkdir -p .tools && echo "$image" > .tools/course-image
# the grader account's copy, for its rootless sandboxes (mlp_lab/course/grader.py; once per image)
.venv/bin/python -c 'from mlp_lab.course import grader; grader.prepare()'
if [ -n "$previous" ] && [ "$previous" != "$image" ]; then
  podman rmi "$previous" > /dev/null 2>&1 || true
fi
podman image prune --force > /dev/null 2>&1 || true
