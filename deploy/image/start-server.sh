#!/bin/sh
# A student's server in the course image (its CMD, run by DockerSpawner as the student's
# uid 1000 in their own container, their home volume at /home/jovyan):
#   1. their copy of the student edition in ~/mlp, fetched with nbgrader from the
#      course's exchange (mounted at /srv/nbgrader/exchange/mlp-lab) once the instructor has
#      released it and while ~/mlp does not exist, as the Assignment List's Fetch would;
#      a student whose server started before the release fetches it there. Without an
#      exchange (the image run on its own), the image's copy, never overwriting;
#   2. MLP_POOL (default 1) Rust kernels warmed inside this container as it starts, so that
#      the first cell answers in about a second (mlp_lab.kernel --pool); once taken,
#      none is warmed again (each holds about 0.3 GB and a core while it warms); MLP_POOL_DEP
#      overrides the `:dep` line they run (one per line; default: the student edition's);
#   3. JupyterHub's single-user server, with the arguments the spawner gives.
set -eu
if [ -d /srv/nbgrader/exchange/mlp-lab ]; then
  if [ ! -e "$HOME/mlp" ] && [ -d /srv/nbgrader/exchange/mlp-lab/outbound/mlp ]; then
    (cd "$HOME" && nbgrader fetch_assignment mlp > /tmp/fetch.log 2>&1) || cat /tmp/fetch.log >&2
  fi
else
  mkdir -p "$HOME/mlp"
  cp -n /opt/mlp-lab/release/mlp/*.ipynb "$HOME/mlp/"
fi
if [ "${MLP_POOL:-1}" -gt 0 ]; then
  if [ -n "${MLP_POOL_DEP:-}" ]; then
    deps="--dep"; from="$MLP_POOL_DEP"
  else
    deps="--dep-from"; from=/opt/mlp-lab/release/mlp/02_toy_network.ipynb
  fi
  python -m mlp_lab.kernel --pool "${MLP_POOL:-1}" --no-refill --cwd "$HOME" "$deps" "$from" \
    > /tmp/kernel-pool.log 2>&1 &
fi
exec jupyterhub-singleuser "$@"
