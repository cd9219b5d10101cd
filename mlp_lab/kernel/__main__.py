"""The notebooks' Rust kernel: evcxr_jupyter, behind a thin Jupyter-protocol relay.

    python -m mlp_lab.kernel -f CONNECTION_FILE        (what kernel.json runs)
    python -m mlp_lab.kernel --prebuild DEP [DEP ...]  (what `make kernel` runs)
    python -m mlp_lab.kernel --pool N --dep DEP        (warm kernels, for make hub)
"""

import argparse
import fcntl
import json
import os
import shutil
import signal
import sys
import time

from .home import EVCXR, ROOT, evcxr_env, kernel_home, prepare_home, take_slot
from .pool import claim_warm, dep_lines, pool


def serve(connection_file):
    from .relay import Relay  # jupyter_client and zmq: not in the pool's or prebuild's process

    with open(connection_file) as f:
        connection = json.load(f)
    home = kernel_home()
    prepare_home(home)
    warm = None if os.environ.get("MLP_KERNEL_SLOT") else claim_warm(home, wait=45)
    if warm:
        fd, work = None, warm[0]["work"]
    else:
        fd, work = take_slot(home, os.environ.get("MLP_KERNEL_SLOT"))
    relay = Relay(connection, None if warm else ([EVCXR], evcxr_env(home, work)), work, adopt=warm)
    signal.signal(signal.SIGTERM, lambda *_: (relay.close(), sys.exit(0)))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = relay.run()
    finally:
        relay.close()
    if fd is not None:
        os.close(fd)
    sys.exit(code or 0)


def prebuild(deps):
    """Compile every dependency line in the template slot, which new slots copy: one
    kernel, one cell per line (e.g. the solved and the student edition's mlp-core)."""
    from jupyter_client.manager import start_new_kernel
    home = kernel_home()
    prepare_home(home)
    fd, work = take_slot(home, "template")
    os.close(fd)  # the kernel below takes it again (blocking) and holds it
    start = time.time()
    km, kc = start_new_kernel(kernel_name="rust", env=dict(os.environ, MLP_KERNEL_SLOT="template"),
                              startup_timeout=120)
    compiled = []

    def hook(msg):
        if msg["msg_type"] in ("display_data", "update_display_data"):
            compiled.append(msg["content"]["data"].get("text/plain", ""))
    try:
        for dep in deps:
            code = dep + "\nuse mlp_core::*;\n"
            reply = kc.execute_interactive(code, timeout=1800, output_hook=hook)
            if reply["content"]["status"] != "ok":
                sys.exit("prebuild failed for %s: %s" % (dep, reply["content"].get("evalue")))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    if compiled:
        # the slots not in use start again from the new template
        for slot in os.listdir(os.path.join(home, "slots")):
            path = os.path.join(home, "slots", slot)
            if slot == "template" or not os.path.isdir(os.path.join(path, "work")):
                continue
            fd = os.open(os.path.join(path, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(os.path.join(path, "work"))
            except BlockingIOError:
                pass  # in use: cargo brings it up to date at its next cell
            finally:
                os.close(fd)
    print("kernel prebuilt in %.0f s (%s)" % (time.time() - start, os.path.join(home, "slots", "template")))


def main():
    parser = argparse.ArgumentParser(prog="python -m mlp_lab.kernel", description=__doc__.splitlines()[0])
    parser.add_argument("-f", dest="connection_file")
    parser.add_argument("--prebuild", nargs="+", metavar="DEP")
    parser.add_argument("--pool", type=int, metavar="N", help="keep N warm kernels ready (with --dep)")
    parser.add_argument("--dep", action="append", default=[],
                        help="a dependency line the pool's kernels run (several: one per line)")
    parser.add_argument("--no-refill", action="store_true",
                        help="warm the pool's kernels once; start no replacement for a claimed one")
    parser.add_argument("--dep-from", metavar="NOTEBOOK",
                        help="the pool's kernels run this notebook's `:dep` lines (its first code cell)")
    parser.add_argument("--cwd", default=os.path.join(ROOT, "notebooks"),
                        help="where the pool's kernels start (relative :dep paths resolve from it)")
    args = parser.parse_args()
    if args.prebuild:
        prebuild(args.prebuild)
    elif args.pool:
        deps = [line for dep in args.dep for line in dep.splitlines() if line.strip()]
        if args.dep_from:
            with open(args.dep_from) as f:
                deps += dep_lines(json.load(f))
        pool(args.pool, deps, args.cwd, refill=not args.no_refill)
    elif args.connection_file:
        serve(args.connection_file)
    else:
        parser.error("give -f CONNECTION_FILE, --prebuild DEP or --pool N --dep DEP")


if __name__ == "__main__":
    main()
