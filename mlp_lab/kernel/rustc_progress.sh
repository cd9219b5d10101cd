#!/bin/sh
# cargo's rustc wrapper in the notebooks' kernels (set in the kernel home's
# .cargo/config.toml by mlp_lab/kernel/): notes each library being compiled for a
# cell, which the kernel shows in that cell, then runs rustc. (evcxr itself passes on
# only some of cargo's "Compiling" lines: none for a name with a hyphen, like mlp-core.)
if [ -n "$MLP_PROGRESS_FILE" ] && [ -n "$CARGO_PKG_NAME" ] && [ "$CARGO_PKG_NAME" != ctx ]; then
  echo "$CARGO_PKG_NAME $CARGO_PKG_VERSION" >> "$MLP_PROGRESS_FILE"
fi
exec "$@"
