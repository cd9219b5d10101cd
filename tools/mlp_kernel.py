"""The notebooks' Rust kernel: evcxr_jupyter, behind a thin Jupyter-protocol relay.

    python tools/mlp_kernel.py -f CONNECTION_FILE      (what kernel.json runs)
    python tools/mlp_kernel.py --prebuild DEP [DEP ...] (what `make kernel` runs)

evcxr does the work; this relay starts it and passes every message through, changing
only what a student would otherwise trip over:

- **A compiled work directory per kernel, kept between starts.** evcxr compiles each
  notebook's cells in a cargo project (EVCXR_TMPDIR). Each kernel takes a *slot*, a
  persistent work directory under the kernel home, locked (flock) for the kernel's life,
  so no two kernels ever share one; a new slot starts as a copy of the prebuilt
  template. mlp-core and its dependencies are then compiled once and found fresh by
  cargo at the next start. (evcxr's own `:cache` is not used: it never caches a path
  dependency such as mlp-core, and it has no locking between kernels.)
- **Progress.** The crates cargo compiles for a cell are shown in that cell while they
  compile, then cleared before the cell's own output.
- **Interrupt.** evcxr interrupts a cell by ending the process that holds the
  notebook's variables. The cell's error then says so plainly and what to rerun.
- **Panics** show their message and the notebook functions they passed through, not
  the runtime's backtrace; `:backtrace` in a cell prints the last full one.
- **Replies** carry `ename`/`evalue` on errors (evcxr leaves them out), and execution
  counts start at 1 (evcxr's start at 2).
"""

import argparse
import fcntl
import hashlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import zmq
from jupyter_client.connect import write_connection_file
from jupyter_client.session import Session

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVCXR = os.environ.get("MLP_EVCXR", os.path.join(ROOT, ".tools", "evcxr-0.22.0", "bin", "evcxr_jupyter"))


def kernel_home():
    """The slots, template and evcxr configuration for this clone's kernels."""
    if os.environ.get("MLP_KERNEL_HOME"):
        return os.environ["MLP_KERNEL_HOME"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha256(ROOT.encode()).hexdigest()[:10]
    version = os.path.basename(os.path.dirname(os.path.dirname(EVCXR)))  # evcxr-0.22.0
    return os.path.join(cache, "mlp-lab", "kernels", "%s-%s" % (version, key))


# evcxr's settings for every notebook (what the first cell set before: `:opt 2` and
# keeping variables through a panic), and cargo's profile for the dependencies.
EVCXR_TOML = """[evcxr]
opt_level = "2"
preserve_vars_on_panic = true
"""
# The dependencies (ndarray, matrixmultiply, mlp-core...) compiled as a release build
# would be; the notebook's own cells keep evcxr's debug assertions and overflow checks.
CARGO_CONFIG = """[profile.dev.package."*"]
opt-level = 3
debug-assertions = false
overflow-checks = false
codegen-units = 16

[build]
rustc-wrapper = "%s"
""" % os.path.join(ROOT, "tools", "rustc_progress.sh")


def write_if_changed(path, text):
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    tmp = "%s.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def prepare_home(home):
    os.makedirs(os.path.join(home, "evcxr"), exist_ok=True)
    os.makedirs(os.path.join(home, ".cargo"), exist_ok=True)
    os.makedirs(os.path.join(home, "slots"), exist_ok=True)
    write_if_changed(os.path.join(home, "evcxr", "evcxr.toml"), EVCXR_TOML)
    write_if_changed(os.path.join(home, ".cargo", "config.toml"), CARGO_CONFIG)


def take_slot(home, name=None):
    """A work directory no other kernel is using, locked until this process and evcxr
    (which inherits the lock) have exited. Returns (lock fd, work directory)."""
    slots = os.path.join(home, "slots")
    names = [name] if name else None
    k = 0
    while True:
        slot = names[0] if names else str(k)
        path = os.path.join(slots, slot)
        os.makedirs(path, exist_ok=True)
        fd = os.open(os.path.join(path, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if names else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            k += 1
            continue
        work = os.path.join(path, "work")
        template = os.path.join(home, "slots", "template", "work")
        if not os.path.isdir(work):
            if path != os.path.dirname(template) and os.path.isdir(os.path.join(template, "target")):
                # the template is only written under its own lock, by --prebuild
                tfd = os.open(os.path.join(os.path.dirname(template), "lock"), os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(tfd, fcntl.LOCK_EX)
                try:
                    shutil.copytree(template, work + ".new", symlinks=True)
                    os.rename(work + ".new", work)
                finally:
                    os.close(tfd)
            else:
                os.makedirs(work)
        os.set_inheritable(fd, True)
        return fd, work


def evcxr_env(home, work):
    env = dict(os.environ)
    env["EVCXR_TMPDIR"] = work
    env["EVCXR_CONFIG_DIR"] = os.path.join(home, "evcxr")
    env["MLP_PANIC_FILE"] = panic_file(work)
    env["MLP_PROGRESS_FILE"] = progress_file(work)
    # rustc writes each cell's library with a relative run path to the standard library
    # that counts one directory too many; it only resolves when the work directory is
    # one level below / (evcxr's default, /tmp/xyz). The loader path finds it anywhere.
    libdir = subprocess.run(["rustc", "--print", "target-libdir"], capture_output=True, text=True).stdout.strip()
    if libdir:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in [libdir, env.get("LD_LIBRARY_PATH")] if p)
    return env


def progress_file(work):
    """Where tools/rustc_progress.sh notes each library cargo compiles."""
    return os.path.join(os.path.dirname(work), "compiling.txt")


def panic_file(work):
    """Where mlp-core's panic hook writes the last panic's full report (src/kernel.rs)."""
    return os.path.join(os.path.dirname(work), "last-panic.txt")


# ---------------------------------------------------------------------------------
# What the student sees

# mlp-core's panic hook (src/kernel.rs) prints this line on standard output
PANIC_MARKER = "MLP_KERNEL_PANIC "
PANICKED = re.compile(r"^thread '[^']*'(?: \(\d+\))? panicked at (.*):$")
FRAME = re.compile(r"^\s*\d+: (.*)$")
TERMINATED = "Subprocess terminated"


def lost_state_text(interrupted, status, cells):
    """What the student reads when evcxr's process holding the variables has ended."""
    ran = ""
    if cells:
        ran = " (cells [%d] to [%d] ran in this kernel)" % (cells[0], cells[-1]) if len(cells) > 1 else \
            " (cell [%d] ran in this kernel)" % cells[0]
    if interrupted:
        first = "Interrupted. Stopping a running Rust cell ends the process that holds the notebook's variables"
    else:
        first = "The process running the notebook's code ended (%s), taking the notebook's variables with it" % status
    return (first + ": every variable is gone now; the functions, types and `use` lines are kept.\n"
            "Run the cells that create the variables again: Run > Run All Above Selected Cell" + ran + ".")


class Relay:
    def __init__(self, connection, evcxr_argv_env, work):
        self.connection = connection
        self.work = work
        self.session = Session(key=connection["key"].encode(), signature_scheme=connection["signature_scheme"],
                               username="kernel")
        self.ctx = zmq.Context()
        ip = connection["ip"]
        url = lambda port: "%s://%s:%d" % (connection["transport"], ip, port)
        self.f_shell = self.bind(zmq.ROUTER, url(connection["shell_port"]))
        self.f_control = self.bind(zmq.ROUTER, url(connection["control_port"]))
        self.f_stdin = self.bind(zmq.ROUTER, url(connection["stdin_port"]))
        self.f_iopub = self.bind(zmq.PUB, url(connection["iopub_port"]))
        self.hb = self.bind(zmq.REP, url(connection["hb_port"]))
        threading.Thread(target=self.heartbeat, daemon=True).start()
        self.argv, self.env = evcxr_argv_env
        self.progress_path = progress_file(work)
        open(self.progress_path, "wb").close()
        self.progress_seen = 0
        self.proc = None
        self.current = None      # the header of the request evcxr is executing
        self.progress = {}       # msg_id -> display id of its "Compiling" display
        self.errors = {}         # msg_id -> content of the error output sent for it
        self.panic = {}          # msg_id -> [state, frames] while a panic is being printed
        self.last_backtrace = []
        self.last_backtrace_time = 0
        self.backtrace_requests = set()
        self.held_idle = {}       # msg_id -> (since, idents, idle status) while a panic prints
        self.interrupted = set()  # msg_ids interrupted
        self.interrupted_idle = False
        self.ok_cells = []
        self.start_evcxr()

    def bind(self, kind, url):
        s = self.ctx.socket(kind)
        s.linger = 1000
        s.bind(url)
        return s

    def heartbeat(self):
        while True:
            try:
                self.hb.send(self.hb.recv())
            except zmq.ZMQError:
                return

    def start_evcxr(self):
        for attempt in range(3):
            path = os.path.join(os.path.dirname(self.work), "evcxr-connection.json")
            write_connection_file(path, ip="127.0.0.1", key=self.connection["key"].encode(),
                                  signature_scheme=self.connection["signature_scheme"], transport="tcp")
            with open(path) as f:
                backend = json.load(f)
            self.proc = subprocess.Popen(self.argv + ["--control_file", path], env=self.env,
                                         stderr=subprocess.PIPE, close_fds=False,
                                         preexec_fn=die_with_parent)
            # a port taken by another kernel in the meantime makes evcxr exit at once
            time.sleep(0.3)
            if self.proc.poll() is None:
                break
        self.backend_file = path
        url = lambda port: "tcp://127.0.0.1:%d" % port
        ident = ("relay-%d" % os.getpid()).encode()
        self.b_shell = self.connect(zmq.DEALER, url(backend["shell_port"]), ident)
        self.b_control = self.connect(zmq.DEALER, url(backend["control_port"]), ident + b"-c")
        self.b_stdin = self.connect(zmq.DEALER, url(backend["stdin_port"]), ident)
        self.b_iopub = self.connect(zmq.SUB, url(backend["iopub_port"]))
        self.b_iopub.setsockopt(zmq.SUBSCRIBE, b"")
        os.set_blocking(self.proc.stderr.fileno(), False)

    def connect(self, kind, url, ident=None):
        s = self.ctx.socket(kind)
        s.linger = 0
        if ident:
            s.setsockopt(zmq.IDENTITY, ident)
        s.connect(url)
        return s

    # --- messages --------------------------------------------------------------
    def split(self, frames):
        idents, rest = self.session.feed_identities(frames, copy=True)
        return idents, self.session.deserialize(rest, content=True, copy=True)

    def send(self, socket, msg, idents=None):
        self.session.send(socket, msg, ident=idents)

    def publish(self, msg_type, content, parent, metadata=None):
        self.session.send(self.f_iopub, msg_type, content=content, parent=parent, metadata=metadata or {},
                          ident=[("kernel.relay.%s" % msg_type).encode()])

    def run(self):
        parent = os.getppid()
        poller = zmq.Poller()
        for s in (self.f_shell, self.f_control, self.f_stdin, self.b_shell, self.b_control, self.b_stdin,
                  self.b_iopub):
            poller.register(s, zmq.POLLIN)
        poller.register(self.proc.stderr.fileno(), zmq.POLLIN)
        while True:
            events = dict(poller.poll(200))
            if self.f_shell in events:
                self.from_frontend_shell(self.f_shell.recv_multipart())
            if self.f_control in events:
                frames = self.f_control.recv_multipart()
                idents, msg = self.split(frames)
                if msg["header"]["msg_type"] == "interrupt_request":
                    if self.current:
                        self.interrupted.add(self.current["msg_id"])
                    else:
                        self.interrupted_idle = True
                self.b_control.send_multipart(frames)
            if self.f_stdin in events:
                self.b_stdin.send_multipart(self.f_stdin.recv_multipart())
            if self.b_stdin in events:
                self.f_stdin.send_multipart(self.b_stdin.recv_multipart())
            if self.b_control in events:
                self.f_control.send_multipart(self.b_control.recv_multipart())
            if self.b_iopub in events:
                self.from_evcxr_iopub(self.b_iopub.recv_multipart())
            if self.b_shell in events:
                self.from_evcxr_shell(self.b_shell.recv_multipart())
            if self.proc.stderr.fileno() in events:
                self.from_evcxr_stderr()
            if self.current:
                self.from_progress_file()
                entry = self.progress.get(self.current["msg_id"])
                if entry and time.time() - entry["shown"] >= 1.0:
                    self.show_progress(self.current)
            for parent_id, (since, _, _) in list(self.held_idle.items()):
                if time.time() - since > 1.0:
                    self.panic.pop(parent_id, None)
                    self.release_idle(parent_id)
            if self.proc.poll() is not None:
                self.from_evcxr_stderr()
                return self.proc.returncode
            if os.getppid() != parent:
                # the Jupyter server that started this kernel is gone (as ipykernel does)
                return 0

    def from_frontend_shell(self, frames):
        idents, msg = self.split(frames)
        header = msg["header"]
        if header["msg_type"] == "execute_request":
            if msg["content"].get("code", "").strip() == ":backtrace":
                # evcxr runs an empty cell (and counts it); the relay adds the output
                self.backtrace_requests.add(header["msg_id"])
                msg["content"]["code"] = ""
                return self.send(self.b_shell, msg, idents)
        self.b_shell.send_multipart(frames)

    def from_evcxr_shell(self, frames):
        idents, msg = self.split(frames)
        header, content = msg["header"], msg["content"]
        if header["msg_type"] == "execute_reply":
            parent_id = msg["parent_header"].get("msg_id")
            self.renumber(content)
            if content.get("status") == "error":
                error = self.errors.get(parent_id) or {"ename": "Error", "evalue": "the cell failed",
                                                       "traceback": []}
                for key in ("ename", "evalue", "traceback"):
                    content.setdefault(key, error[key])
            elif content.get("execution_count"):
                self.ok_cells.append(content["execution_count"])
            self.errors.pop(parent_id, None)
        self.send(self.f_shell, msg, idents)

    @staticmethod
    def renumber(content):
        if isinstance(content.get("execution_count"), int) and content["execution_count"] > 1:
            content["execution_count"] -= 1

    def from_evcxr_iopub(self, frames):
        self.from_evcxr_iopub_msg(*self.split(frames))

    def from_evcxr_iopub_msg(self, idents, msg):
        msg_type = msg["header"]["msg_type"]
        parent = msg["parent_header"]
        parent_id = parent.get("msg_id")
        content = msg["content"]
        if msg_type == "status":
            if content.get("execution_state") == "busy" and parent.get("msg_type") == "execute_request":
                self.current = parent
            elif content.get("execution_state") == "idle":
                if parent_id in self.panic:
                    # the panic's report is still coming (evcxr passes the process's
                    # standard error on late): the cell ends after it, or after a second
                    self.held_idle[parent_id] = (time.time(), idents, msg)
                    return
                self.clear_progress(parent)
                if parent_id in self.backtrace_requests:
                    self.backtrace_requests.discard(parent_id)
                    text = self.full_backtrace()
                    self.publish("stream", {"name": "stdout", "text": text + "\n"}, parent)
                if self.current and self.current.get("msg_id") == parent_id:
                    self.current = None
        elif msg_type in ("stream", "display_data", "execute_result", "error"):
            self.clear_progress(parent)
        if msg_type in ("execute_input", "execute_result"):
            self.renumber(content)
        if msg_type == "stream" and content.get("name") == "stdout" and content["text"].startswith(PANIC_MARKER):
            content["name"] = "stderr"
            content["text"] = self.panic_report(content["text"])
        elif msg_type == "stream" and content.get("name") == "stderr":
            content["text"] = self.filter_panic(parent_id, content["text"])
            if not content["text"]:
                return
        if msg_type == "error":
            self.explain_error(parent_id, content)
            self.errors[parent_id] = content
        self.send(self.f_iopub, msg, idents)
        if parent_id in self.held_idle and parent_id not in self.panic:
            self.release_idle(parent_id)

    def release_idle(self, parent_id):
        _, idents, msg = self.held_idle.pop(parent_id)
        self.from_evcxr_iopub_msg(idents, msg)

    def panic_report(self, text):
        """mlp-core's one-line report, as the student reads it."""
        out = []
        for line in text.splitlines():
            if line.startswith(PANIC_MARKER):
                report = json.loads(line[len(PANIC_MARKER):])
                where = self.describe_location(report["location"]) if report.get("location") else "somewhere"
                out.append("panicked: %s\n  %s\n  (the full report: run `:backtrace` in a cell)" % (report["message"], where))
            else:
                out.append(line)
        return "\n".join(out) + "\n"

    def filter_panic(self, parent_id, text):
        """The runtime's panic report without its backtrace: the message, then where it
        happened in the notebook's own code."""
        out = []
        for line in text.splitlines(keepends=True):
            state = self.panic.get(parent_id)
            bare = line.rstrip("\n")
            m = PANICKED.match(bare)
            if m:
                self.panic[parent_id] = {"where": self.describe_location(m.group(1)), "frames": [bare]}
                out.append("panicked: ")
            elif state is None:
                out.append(line)
            elif bare == "stack backtrace:" or FRAME.match(bare) or bare.startswith("             at "):
                state["frames"].append(bare)
            elif bare.startswith("note: "):
                state["frames"].append(bare)
                self.last_backtrace = state["frames"]
                self.last_backtrace_time = time.time()
                self.panic.pop(parent_id)
                out.append("  %s\n  (the full report: run `:backtrace` in a cell)\n" % state["where"])
            else:  # the panic's message
                state["frames"].append(bare)
                out.append(line)
        return "".join(out)

    def full_backtrace(self):
        """The last panic's whole report: mlp-core's file, or the one evcxr printed."""
        candidates = [("\n".join(self.last_backtrace), self.last_backtrace_time)]
        try:
            with open(panic_file(self.work)) as f:
                candidates.append((f.read(), os.path.getmtime(panic_file(self.work))))
        except OSError:
            pass
        candidates = [c for c in candidates if c[0]]
        if not candidates:
            return "No panic in this kernel yet."
        return max(candidates, key=lambda c: c[1])[0]

    def describe_location(self, location):
        """`src/lib.rs:2:34` is evcxr's generated source of the notebook's cells: say
        which function of the notebook (or which cell) that line is in, and show it."""
        m = re.match(r"^(.*):(\d+):(\d+)$", location)
        if not m:
            return "at " + location
        path, line = m.group(1), int(m.group(2))
        if path == "src/lib.rs":
            try:
                with open(os.path.join(self.work, "src", "lib.rs")) as f:
                    lines = f.read().splitlines()
            except OSError:
                lines = []
            if 0 < line <= len(lines):
                code = lines[line - 1].strip()
                for k in range(line - 1, -1, -1):
                    fn = re.match(r"^\s*(?:pub(?:\(crate\))?\s+)?fn\s+(\w+)", lines[k])
                    if fn:
                        if fn.group(1).startswith("run_user_code"):
                            break
                        return "in your function `%s`, at: %s" % (fn.group(1), code)
                return "in this cell, at: %s" % code
            return "in the notebook's code"
        if path.startswith(ROOT + os.sep):
            path = os.path.relpath(path, ROOT)
        else:  # a dependency's source, e.g. .../index.crates.io-*/ndarray-0.17.2/src/x.rs
            path = re.sub(r"^.*/registry/src/[^/]+/", "", path)
        return "at %s:%d" % (path, line)

    def explain_error(self, parent_id, content):
        text = content.get("evalue") or ""
        interrupted = parent_id in self.interrupted or self.interrupted_idle
        if TERMINATED in text or interrupted and "terminated" in text.lower():
            status = text.split(TERMINATED, 1)[-1].strip(" :\n") or "it stopped"
            message = lost_state_text(interrupted, status, self.ok_cells)
            self.interrupted.discard(parent_id)
            self.interrupted_idle = False
            self.ok_cells = []
            content["ename"] = "Interrupted" if interrupted else "KernelProcessEnded"
            content["evalue"] = message
            content["traceback"] = [message]
        elif content.get("ename") in (None, "", "Error"):
            content["ename"] = "Error"

    # --- progress ----------------------------------------------------------------
    def from_evcxr_stderr(self):
        try:
            data = os.read(self.proc.stderr.fileno(), 65536)
        except (BlockingIOError, OSError):
            return
        if not data:
            return
        sys.stderr.buffer.write(data)
        sys.stderr.flush()

    def from_progress_file(self):
        try:
            with open(self.progress_path, "rb") as f:
                f.seek(self.progress_seen)
                data = f.read()
        except OSError:
            return
        *lines, _ = data.split(b"\n")
        for line in lines:
            self.progress_seen += len(line) + 1
            name, _, version = line.decode("utf-8", "replace").partition(" ")
            if self.current:
                self.show_progress(self.current, name, version)

    def show_progress(self, parent, crate=None, version=None):
        """The cell's progress line: the library being compiled and the time so far
        (shown once a library starts compiling, updated each second, cleared before the
        cell's own output)."""
        parent_id = parent["msg_id"]
        entry = self.progress.get(parent_id)
        if entry is None:
            if crate is None:
                return
            entry = self.progress[parent_id] = {"id": "compiling-%s" % parent_id, "crates": [],
                                                "start": time.time(), "shown": 0}
        if crate:
            entry["crates"].append("%s v%s" % (crate, version))
        n = len(entry["crates"])
        text = ("Compiling %s ... %.0f s (%d librar%s so far, kept for the next kernel start)"
                % (entry["crates"][-1], time.time() - entry["start"], n, "y" if n == 1 else "ies"))
        data = {"text/plain": text, "text/html": "<div style=\"color:#666\">&#9203; %s</div>" % html.escape(text)}
        msg_type = "update_display_data" if entry["shown"] else "display_data"
        entry["shown"] = time.time()
        self.publish(msg_type, {"data": data, "metadata": {}, "transient": {"display_id": entry["id"]}}, parent)

    def clear_progress(self, parent):
        if parent.get("msg_id") in self.progress:
            self.progress.pop(parent["msg_id"])
            self.publish("clear_output", {"wait": False}, parent)

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        try:
            os.unlink(self.backend_file)
        except OSError:
            pass


def die_with_parent():
    """evcxr ends when the relay does (Linux's PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


def serve(connection_file):
    with open(connection_file) as f:
        connection = json.load(f)
    home = kernel_home()
    prepare_home(home)
    fd, work = take_slot(home, os.environ.get("MLP_KERNEL_SLOT"))
    relay = Relay(connection, ([EVCXR], evcxr_env(home, work)), work)
    signal.signal(signal.SIGTERM, lambda *_: (relay.close(), sys.exit(0)))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = relay.run()
    finally:
        relay.close()
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", dest="connection_file")
    parser.add_argument("--prebuild", nargs="+", metavar="DEP")
    args = parser.parse_args()
    if args.prebuild:
        prebuild(args.prebuild)
    elif args.connection_file:
        serve(args.connection_file)
    else:
        parser.error("give -f CONNECTION_FILE or --prebuild DEP")


if __name__ == "__main__":
    main()
