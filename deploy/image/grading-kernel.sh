#!/bin/sh
# The grading sandbox's kernel (deploy/image/grading-kernel.json): the runner (root in the
# container) hands the connection to the student's uid 1000, then the Rust kernel runs as
# that user, with no capabilities and no way to gain any. The sandbox has no network:
# cargo works offline, from the crates the image holds; the kernel works in the prebuilt
# template itself (the container is thrown away after one notebook).
set -eu
conn=$(mktemp /tmp/kernel-XXXXXX.json)
cat "$1" > "$conn"
chmod 644 "$conn"
cd /home/jovyan
exec env HOME=/home/jovyan CARGO_NET_OFFLINE=true MLP_KERNEL_SLOT=template setpriv --reuid 1000 --regid 100 --clear-groups --inh-caps=-all \
  /opt/mlp-lab/.venv/bin/python -m mlp_lab.kernel -f "$conn"
