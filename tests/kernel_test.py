"""`make kernel-test`: the notebooks' Rust kernel (mlp_lab.kernel in front of evcxr).

1. Concurrency: three kernels started together on a cold kernel home (no template, no
   slots: each compiles mlp-core in its own work directory), then three again on the
   same home (each finds its work directory compiled); every kernel computes the toy
   data of the problem set and a value of its own, checked to the digit.
2. State: in one kernel, a wrong-shape error, a compile error and a panic each stop
   only their cell, and the variables built before are still there after each; the
   panic's report names the notebook function, not the runtime's frames; `:backtrace`
   prints the full one; a panic inside ndarray (a bad `.dot`) names the notebook function
   and line that called it; Kernel > Interrupt says the variables are gone and which cells
   to rerun; counts start at 1 and error replies carry ename/evalue; what rust-analyzer
   gives (a variable's type, Tab completion, even while it loads; hover) still works.
3. The direct path (evcxr/): a cell with only its code changed is compiled by rustc
   alone, without cargo; a path dependency edited between two cells is compiled again
   and a compile error on the direct path is the same error.

Closes with 'kernel: N passed, N failed'.
"""

import os
import tempfile
import threading
import time

from jupyter_client.manager import start_new_kernel

from mlp_lab.tally import Checks
from support import ROOT
from support.procs import descendants, processes

DEP = ':dep mlp-core = { path = "%s" }' % os.path.join(ROOT, "mlp-core")
# the problem set's toy data: X = 10 * randn(5, 4) after seed 1
TOY_X00 = "16.243453636632417"



class Kernel:
    def __init__(self, env=None):
        self.km, self.kc = start_new_kernel(kernel_name="rust", startup_timeout=300,
                                            env=dict(os.environ, **(env or {})))

    def run(self, code, interrupt_after=None):
        """(reply content, [output messages]) of one cell."""
        outputs = []
        if interrupt_after:
            threading.Timer(interrupt_after, self.km.interrupt_kernel).start()
        reply = self.kc.execute_interactive(code, timeout=1800, output_hook=outputs.append)
        return reply["content"], outputs

    def variables(self):
        """evcxr's `:vars`: each variable and its type, as text."""
        _, out = self.run(":vars")
        return "".join(m["content"]["data"].get("text/plain", "") for m in out if "data" in m["content"])

    def complete(self, code):
        """The matches of a Tab completion at the end of `code`."""
        return self.kc.complete(code, len(code), reply=True, timeout=300)["content"]["matches"]

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


def text(outputs, kind=None):
    parts = []
    for m in outputs:
        c = m["content"]
        if m["msg_type"] == "stream" and (kind is None or c["name"] == kind):
            parts.append(c["text"])
        elif m["msg_type"] == "execute_result" and kind in (None, "result"):
            parts.append(c["data"].get("text/plain", ""))
        elif m["msg_type"] == "error" and kind in (None, "error"):
            parts.append(c["evalue"])
    return "".join(parts)


def one_student(k, env, results):
    start = time.time()
    try:
        kernel = Kernel(env)
        try:
            steps = [kernel.run(DEP), kernel.run("use mlp_core::*;"),
                     kernel.run("let mut rng = NumpyRng::new(1);\nlet x = rng.randn(5, 4) * 10.0;\n"
                                "println!(\"{:?}\", x[[0, 0]]);"),
                     kernel.run("x.nrows() * 100 + %d" % k)]
        finally:
            kernel.close()
        results[k] = (steps, time.time() - start)
    except Exception as e:  # reported as a failed check below
        results[k] = (e, time.time() - start)


def concurrency(t):
    home = tempfile.mkdtemp(prefix="mlp-kernel-home-")
    for round_ in ("cold", "warm"):
        results = {}
        threads = [threading.Thread(target=one_student, args=(k, {"MLP_KERNEL_HOME": home}, results))
                   for k in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for k in range(3):
            steps, seconds = results[k]
            name = "%s start, kernel %d (%.0f s)" % (round_, k, seconds)
            if isinstance(steps, Exception):
                t.check(name, False, repr(steps))
                continue
            statuses = [c["status"] for c, _ in steps]
            t.check(name + ": every cell ok", statuses == ["ok"] * 4, statuses)
            t.check(name + ": toy data", text(steps[2][1], "stdout").strip() == TOY_X00, text(steps[2][1]))
            t.check(name + ": its own value", text(steps[3][1], "result").strip() == str(500 + k),
                    text(steps[3][1]))
            kinds = [m["msg_type"] for m in steps[0][1] if m["msg_type"] != "status"]
            shown = [m["content"]["data"]["text/plain"] for m in steps[0][1]
                     if m["msg_type"] in ("display_data", "update_display_data")]
            if round_ == "cold":
                t.check(name + ": the first cell showed what it compiled, then cleared it",
                        any(x.startswith("Compiling mlp-core v") for x in shown) and kinds[-1] == "clear_output",
                        (kinds[:5], shown[-3:]))
            else:
                t.check(name + ": nothing to compile, nothing shown", not shown, shown)
    slots = sorted(os.listdir(os.path.join(home, "slots")))
    t.check("three kernels used three work directories", slots == ["0", "1", "2"], slots)


def state(t):
    kernel = Kernel()
    try:
        c, out = kernel.run(DEP)
        t.check("the first cell is In [1]", c.get("execution_count") == 1, c)
        # what rust-analyzer gives, asked at once: evcxr loads mlp-core's analysis in the
        # background after a `:dep` (evcxr/), and a completion waits for it
        start = time.time()
        matches = kernel.complete("use mlp_core::ndarray::Arr")
        print("  Tab completion asked right after the :dep cell: %.1f s, %s" % (time.time() - start, matches[:4]))
        t.check("Tab completion during the analysis' load: ndarray's names", "Array2" in matches, matches)
        kernel.run("use mlp_core::*;\nuse mlp_core::ndarray::{Array1, Array2};")
        kernel.run("let kept = 42;\nlet a = Array2::<f64>::zeros((2, 3));")
        shown = kernel.variables()
        t.check("a variable's type, as rust-analyzer gave it (:vars)",
                "a: ndarray::prelude::ArrayBase<ndarray::OwnedRepr<f64>" in shown, shown)
        # rust-analyzer leaves parts of the standard library and of mlp-core's dependencies
        # out (mlp_lab/kernel/home.py): common values still have their types
        kernel.run("let counts = std::collections::HashMap::<String, usize>::new();\n"
                   "let started = std::time::Instant::now();\nlet took = started.elapsed();\n"
                   "let shared = std::sync::Arc::new(std::sync::Mutex::new(vec![1.0f64]));\n"
                   "let worker = std::thread::spawn(|| 2);\nlet here = std::env::current_dir();\n"
                   "let file = std::fs::File::open(\"/dev/null\").map(std::io::BufReader::new);\n"
                   "let mut rng = NumpyRng::new(1);\nlet noise = rng.randn(2, 2);\n"
                   "let mean = a.mean_axis(mlp_core::ndarray::Axis(0));\nlet net = Toy::default();")
        shown = kernel.variables()
        expected = ["counts: std::collections::HashMap<String, usize>", "started: std::time::Instant",
                    "took: std::time::Duration", "shared: std::sync::Arc<std::sync::Mutex<Vec<f64>>>",
                    "worker: std::thread::JoinHandle<i32>",
                    "here: std::prelude::v1::Result<std::path::PathBuf, std::io::Error>",
                    "file: std::prelude::v1::Result<std::io::BufReader<std::fs::File>, std::io::Error>",
                    "rng: NumpyRng", "noise: ndarray::prelude::ArrayBase<ndarray::OwnedRepr<f64>",
                    "mean: Option<ndarray::prelude::ArrayBase", "net: Toy"]
        t.check("common values' types with the analysis' skips (:vars)",
                all(e in shown for e in expected), [e for e in expected if e not in shown] or shown)
        matches = kernel.complete("a.sh")
        t.check("Tab completion of a variable's methods", "shape()" in matches, matches)
        c = kernel.kc.inspect("a.shape", 7, reply=True, timeout=120)["content"]
        t.check("hover (inspect): the method's signature", c.get("found")
                and "pub fn shape(&self) -> &[usize]" in c["data"].get("text/plain", ""), c)

        c, out = kernel.run("let b = Array2::<f64>::zeros((4, 5));\nlet c = a.dot(&b);")
        t.check("wrong shapes: a panic with ndarray's message", "inputs 2 × 3 and 4 × 5 are not compatible"
                in text(out, "stderr"), text(out))
        c, out = kernel.run("kept")
        t.check("wrong shapes: variables kept", text(out, "result").strip() == "42", text(out))

        # the same mistake in a function of the notebook's, called from another: the report
        # names that function and its line (the stack's first frame in the notebook's code),
        # not ndarray's source, and still gives ndarray's message with the shapes
        kernel.run("fn backward_like(a: &Array2<f64>, rows: usize) -> Array2<f64> {\n"
                   "    let b = Array2::<f64>::ones((rows, 5));\n"
                   "    let dw = a.dot(&b);\n"
                   "    dw * 2.0\n"
                   "}\n"
                   "fn loss_like(a: &Array2<f64>) -> f64 { backward_like(a, 4).sum() }")
        c, out = kernel.run("let s = loss_like(&a);")
        err = text(out, "stderr")
        print("  a panic in ndarray, as the cell shows it:\n    " + err.strip().replace("\n", "\n    "))
        t.check("a panic in ndarray: its message (the shapes)",
                "panicked: ndarray: inputs 2 × 3 and 4 × 5 are not compatible" in err, err)
        t.check("a panic in ndarray: the notebook function and line that called it",
                "in your function `backward_like`, at: let dw = a.dot(&b);" in err, err)
        t.check("a panic in ndarray: where in ndarray, after that", "(inside ndarray-" in err
                and err.index("backward_like") < err.index("(inside ndarray-"), err)

        c, out = kernel.run("let z: i32 = \"not a number\";")
        t.check("compile error: an error reply with ename and evalue",
                c["status"] == "error" and c.get("ename") and "mismatched types" in c.get("evalue", ""), c)
        c, out = kernel.run("kept")
        t.check("compile error: variables kept", text(out, "result").strip() == "42", text(out))

        kernel.run("fn unfinished(x: i32) -> i32 {\n    if x > 1 {\n        todo!()\n    }\n    x\n}\n"
                   "fn caller(x: i32) -> i32 { unfinished(x) + 1 }")
        c, out = kernel.run("caller(5)")
        err = text(out, "stderr")
        print("  the panic, as the cell shows it:\n    " + err.strip().replace("\n", "\n    "))
        t.check("panic: the message", "panicked: not yet implemented" in err, err)
        t.check("panic: the notebook function it happened in", "in your function `unfinished`, at: todo!()"
                in err, err)
        t.check("panic: no runtime backtrace", "stack backtrace" not in err and "evcxr::runtime" not in err, err)
        c, out = kernel.run("kept")
        t.check("panic: variables kept", text(out, "result").strip() == "42", text(out))
        c, out = kernel.run(":backtrace")
        t.check(":backtrace prints the full report", "stack backtrace:" in text(out, "stdout")
                and "evcxr::runtime" in text(out, "stdout"), text(out))

        c, out = kernel.run("std::thread::sleep(std::time::Duration::from_secs(30));", interrupt_after=3)
        t.check("interrupt: the cell stops with an error", c["status"] == "error" and c.get("ename") == "Interrupted",
                c)
        message = text(out, "error")
        print("  the interrupt, as the cell shows it:\n    " + message.strip().replace("\n", "\n    "))
        t.check("interrupt: says the variables are gone and what to rerun",
                "every variable is gone now" in message and "Run All Above Selected Cell" in message, message)
        c, out = kernel.run("kept")
        t.check("interrupt: the variable is indeed gone", c["status"] == "error"
                and "cannot find value `kept`" in c.get("evalue", ""), c)
        c, out = kernel.run("caller(1)")
        t.check("interrupt: functions kept", text(out, "result").strip() == "2", text(out))
    finally:
        kernel.close()


def background_load(t):
    """evcxr's analysis loads in the background after a `:dep` (evcxr/): the `:dep` cell
    with a `let` of its own, cells without a `let` run while it loads and after it has
    ended unseen, then a `let`; every variable must have its own type (a stale or missing
    source once gave such variables `String`)."""
    kernel = Kernel()
    try:
        # the cell that starts the load declares a variable of its own
        kernel.run(DEP + "\nlet first = 41 + 1;")
        kernel.run("use mlp_core::*;")  # while the load runs
        time.sleep(15)  # the load ends, no cell asks for it
        kernel.run("use mlp_core::ndarray::Array2;")
        c, out = kernel.run("let toy_net = Toy::default();\nlet zeros = Array2::<f64>::zeros((2, 3));\nzeros.len()")
        t.check("a let after cells run during and after the background load: it runs",
                c["status"] == "ok" and text(out, "result").strip() == "6", (c, text(out)))
        shown = kernel.variables()
        t.check("... and its variables have their own types (:vars)",
                "toy_net: Toy\n" in shown and "zeros: ndarray::prelude::ArrayBase" in shown
                and "first: i32" in shown, shown)
    finally:
        kernel.close()


def work_directory(kernel):
    """The evcxr work directory of a kernel (EVCXR_TMPDIR in its evcxr's environment)."""
    table = processes()
    for pid in descendants(table, kernel.km.provisioner.process.pid):
        for entry in table[pid][2].split("\0"):
            if entry.startswith("EVCXR_TMPDIR="):
                return entry.split("=", 1)[1]
    raise RuntimeError("no evcxr under the kernel's relay")


def fingerprints(work):
    """cargo's fingerprint files of the cell's crate and their times: cargo rewrites them
    at every build of it."""
    found = {}
    for top, _, files in os.walk(os.path.join(work, "target")):
        if os.path.basename(top).startswith("ctx-") and os.sep + ".fingerprint" in top:
            found.update({os.path.join(top, f): os.stat(os.path.join(top, f)).st_mtime_ns for f in files})
    return found


def direct_rustc(t):
    """evcxr/ runs the cell crate's rustc command again without cargo while only the
    cell's code changed (the command cargo ran last, recorded by evcxr as cargo's
    RUSTC_WORKSPACE_WRAPPER)."""
    crate = tempfile.mkdtemp(prefix="mlp-scratch-dep-")
    os.makedirs(os.path.join(crate, "src"))
    with open(os.path.join(crate, "Cargo.toml"), "w") as f:
        f.write('[package]\nname = "scratch"\nversion = "0.1.0"\nedition = "2021"\n')

    def value(v):
        with open(os.path.join(crate, "src", "lib.rs"), "w") as f:
            f.write("pub fn value() -> i32 { %d }\n" % v)

    value(1)
    kernel = Kernel()
    try:
        work = work_directory(kernel)
        c, out = kernel.run(':dep scratch = { path = "%s" }\nscratch::value()' % crate)
        t.check("direct path: a :dep cell goes through cargo and runs",
                text(out, "result").strip() == "1", (c, text(out)))
        t.check("direct path: the rustc command recorded",
                os.path.exists(os.path.join(work, ".evcxr-rustc.json")), sorted(os.listdir(work)))
        before = fingerprints(work)
        c, out = kernel.run("let two = scratch::value() + 1;\ntwo")
        after = fingerprints(work)
        t.check("direct path: the next cell runs", text(out, "result").strip() == "2", (c, text(out)))
        t.check("direct path: ... without cargo (the cell crate's fingerprints untouched)",
                before and after == before, (before, after))
        value(5)
        c, out = kernel.run("scratch::value() + two")
        t.check("direct path: a path dependency edited between cells is compiled again",
                text(out, "result").strip() == "7", (c, text(out)))
        t.check("direct path: ... through cargo (its fingerprints rewritten)", fingerprints(work) != after,
                fingerprints(work))
        c, out = kernel.run('let wrong: i32 = "text";')
        t.check("direct path: a compile error, as cargo gives it",
                c["status"] == "error" and "mismatched types" in c.get("evalue", ""), c)
        c, out = kernel.run("two")
        t.check("direct path: variables kept after it", text(out, "result").strip() == "2", (c, text(out)))
    finally:
        kernel.close()


def main():
    t = Checks()
    start = time.time()
    concurrency(t)
    print("(concurrency in %.0f s)" % (time.time() - start), flush=True)
    state(t)
    background_load(t)
    direct_rustc(t)
    t.close("kernel")


if __name__ == "__main__":
    main()
