"""Kernel timings, for docs/performance.md, measured as a student meets the kernel: N
kernels started at once, each timed from the start request to ready, then notebook 2's
first code cell (`:dep mlp-core` and the build line) twice, then the one-line cell
`let one = 1 + 1;` seven times (its median; the first loads evcxr's type analysis once).

Each cell is timed from its execute_request to the last of its execute_reply and idle
status, and split by the relay's trace (MLP_KERNEL_TRACE): relay in (the request until
the relay has passed it to evcxr), evcxr (until evcxr's idle status and reply: its
compile, the library's load and the run, the outputs), the relay's hold (evcxr's idle
until the relay sends it on: late output), relay out (until the client has it). The CPU
time of the relay, evcxr and what they ran (cargo, rustc, the linker, the cell's process)
is counted too: the machine's load does not change it as it does the seconds. The load
average is printed beside each kernel.

    python -m mlp_lab.bench.kernel_timings [N ...]     (default: 1 3)
"""

import json
import os
import queue
import statistics
import sys
import tempfile
import threading
import time

from jupyter_client.manager import start_new_kernel

from mlp_lab import ROOT

NOTEBOOK = os.path.join(ROOT, "notebooks", "02_toy_network.ipynb")
ONE_LINE = "let one = 1 + 1;"
TICK = os.sysconf("SC_CLK_TCK")


def first_code_cell():
    with open(NOTEBOOK) as f:
        cells = json.load(f)["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


def cpu_ms(pid):
    """CPU time of a process and of the children it has waited for (ms), 0 once gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) * 1000.0 / TICK
    except OSError:
        return 0.0


def process_tree(pid):
    """pid and its descendants now."""
    tree = [pid]
    for p in tree:
        try:
            for task in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, task)) as f:
                    tree += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return tree


def stages(trace, msg_id, sent, events):
    """A cell's stages (seconds) from the relay's trace lines and the client's events."""
    at = {}
    for line in trace:
        t, where, kind, *parent = line.split()
        if parent and parent[0] == msg_id:
            at.setdefault(where + kind, float(t))
    done = max(events.values())
    from_evcxr = max(at.get("evcxr>status/idle", 0), at.get("evcxr>execute_reply", 0))
    to_front = max(at.get(">frontstatus/idle", 0), at.get(">frontexecute_reply", 0))
    if not (">evcxrexecute_request" in at and from_evcxr and to_front):
        return {"total": done - sent}
    return {"total": done - sent, "relay in": at[">evcxrexecute_request"] - sent,
            "evcxr": from_evcxr - at[">evcxrexecute_request"], "hold": to_front - from_evcxr,
            "relay out": done - to_front}


def one(results, k, first):
    trace = tempfile.NamedTemporaryFile(prefix="mlp-kernel-trace-", suffix=".txt", delete=False).name
    load = os.getloadavg()[0]
    t0 = time.time()
    km, kc = start_new_kernel(kernel_name="rust", startup_timeout=600, cwd=os.path.dirname(NOTEBOOK),
                              env=dict(os.environ, MLP_KERNEL_TRACE=trace))
    started = time.time() - t0
    relay = km.provisioner.process.pid

    def cell(code):
        tree = process_tree(relay)
        cpu = sum(cpu_ms(p) for p in tree)
        sent, events = time.time(), {}
        msg_id = kc.execute(code)
        while len(events) < 2:
            for kind, get in (("reply", kc.get_shell_msg), ("idle", kc.get_iopub_msg)):
                try:
                    msg = get(timeout=0.002)
                except queue.Empty:
                    continue
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if kind == "reply":
                    assert msg["content"]["status"] == "ok", msg["content"]
                    events[kind] = time.time()
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    events[kind] = time.time()
        with open(trace) as f:
            split = stages(f.readlines(), msg_id, sent, events)
        split["cpu"] = (sum(cpu_ms(p) for p in tree) - cpu) / 1000.0
        return split

    firsts = [cell(first), cell(first)]
    lines = [cell(ONE_LINE) for _ in range(7)]
    kc.stop_channels()
    km.shutdown_kernel(now=False)
    os.unlink(trace)
    results[k] = (load, started, firsts, lines)


def show(split):
    parts = ["%s %.0f" % (name, split[name] * 1000) for name in ("relay in", "evcxr", "hold", "relay out")
             if name in split]
    return "%.2f s (ms: %s; cpu %.0f)" % (split["total"], ", ".join(parts), split["cpu"] * 1000)


def main():
    first = first_code_cell()
    for n in [int(a) for a in sys.argv[1:]] or [1, 3]:
        results = {}
        threads = [threading.Thread(target=one, args=(results, k, first)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for k in sorted(results):
            load, started, firsts, lines = results[k]
            median = {key: statistics.median(s[key] for s in lines) for key in lines[0]}
            print("%d at once, kernel %d (load %.1f): started in %.1f s\n  first cell %s\n  again %s\n"
                  "  one-line cells median %s (each: %s)"
                  % (n, k, load, started, show(firsts[0]), show(firsts[1]), show(median),
                     " ".join("%.2f" % s["total"] for s in lines)), flush=True)


if __name__ == "__main__":
    main()
