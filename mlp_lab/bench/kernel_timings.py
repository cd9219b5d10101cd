"""Kernel start-up times, for docs/performance.md: N kernels started at once, each
timed from the start request to ready, then its first cell (`:dep mlp-core`), then the
median of ten one-line cells.

    python -m mlp_lab.bench.kernel_timings [N ...]     (default: 1 3)
"""

import os
import statistics
import sys
import threading
import time

from jupyter_client.manager import start_new_kernel

from mlp_lab import ROOT

DEP = ':dep mlp-core = { path = "%s" }' % os.path.join(ROOT, "mlp-core")


def one(results, k):
    t0 = time.time()
    km, kc = start_new_kernel(kernel_name="rust", startup_timeout=600)
    started = time.time() - t0

    def cell(code):
        t = time.time()
        reply = kc.execute_interactive(code, timeout=1800, output_hook=lambda m: None)
        assert reply["content"]["status"] == "ok", reply["content"]
        return time.time() - t

    first = cell(DEP)
    cell("use mlp_core::*;")
    cell("let x = 1;")  # the first variable loads evcxr's type analysis once
    lines = [cell("x + %d" % i) for i in range(10)]
    kc.stop_channels()
    km.shutdown_kernel(now=False)
    results[k] = (started, first, statistics.median(lines))


def main():
    for n in [int(a) for a in sys.argv[1:]] or [1, 3]:
        results = {}
        threads = [threading.Thread(target=one, args=(results, k)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for k in sorted(results):
            s, f, m = results[k]
            print("%d at once, kernel %d: started in %.1f s, first cell %.1f s, one-line cells median %.2f s"
                  % (n, k, s, f, m), flush=True)


if __name__ == "__main__":
    main()
