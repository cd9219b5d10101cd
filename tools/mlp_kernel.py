"""The notebooks' Rust kernel: evcxr_jupyter, behind a thin Jupyter-protocol relay.

    python tools/mlp_kernel.py -f CONNECTION_FILE      (what kernel.json runs)
    python tools/mlp_kernel.py --prebuild DEP [DEP ...] (what `make kernel` runs)
    python tools/mlp_kernel.py --pool N --dep DEP     (warm kernels, for make hub)

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
import uuid

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

# The notebook's own code (evcxr's crate, `ctx`) with line tables: mlp-core's panic hook
# lists the stack, and the relay finds the notebook's line in it (notebook_frame).
[profile.dev.package.ctx]
debug = "line-tables-only"
strip = "none"

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
    # mlp-core's training shows a live figure (mlp-core/src/live.rs; 0 turns it off)
    env.setdefault("MLP_KERNEL_DISPLAY", "1")
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
# mlp-core's live display: a line of JSON {"display_id", "data"} (mlp-core/src/live.rs)
DISPLAY_MARKER = "MLP_KERNEL_DISPLAY "
LATE_OUTPUT = 0.05  # seconds of quiet after evcxr's idle status before a cell is over
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
    def __init__(self, connection, evcxr_argv_env, work, adopt=None):
        self.connection = connection
        self.work = work
        self.fsession = Session(key=connection["key"].encode(), signature_scheme=connection["signature_scheme"],
                                username="kernel")
        self.bsession = self.fsession  # a pool's evcxr has a key of its own (adopt)
        self.ctx = zmq.Context()
        ip = connection["ip"]

        def url(port):
            return "%s://%s:%d" % (connection["transport"], ip, port)

        self.f_shell = self.bind(zmq.ROUTER, url(connection["shell_port"]))
        self.f_control = self.bind(zmq.ROUTER, url(connection["control_port"]))
        self.f_stdin = self.bind(zmq.ROUTER, url(connection["stdin_port"]))
        self.f_iopub = self.bind(zmq.PUB, url(connection["iopub_port"]))
        self.hb = self.bind(zmq.REP, url(connection["hb_port"]))
        threading.Thread(target=self.heartbeat, daemon=True).start()
        self.argv, self.env = evcxr_argv_env or (None, None)
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
        self.held_idle = {}       # msg_id -> (due, idents, idle status) of a cell's late outputs
        self.interrupted = set()  # msg_ids interrupted
        self.interrupted_idle = False
        self.ok_cells = []
        self.offset = 1           # evcxr's count before the notebook's first cell
        self.raw_last = 1         # evcxr's count of the last reply
        self.hidden = set()       # msg_ids of the relay's own requests (not shown)
        self.displays = set()     # display ids mlp-core's live display has shown
        self.cwd = os.getcwd()    # the notebook's folder, where its code runs
        self.warm = None
        if adopt:
            self.adopt(*adopt)
        else:
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
        path = os.path.join(os.path.dirname(self.work), "evcxr-connection.json")
        self.proc, backend = launch_evcxr(path, self.connection["key"], self.connection["signature_scheme"],
                                          self.argv, env=self.env, stderr=subprocess.PIPE, close_fds=False)
        self.backend_file = path
        self.connect_evcxr(backend)

    def adopt(self, entry, claim):
        """A warm evcxr from the pool (pool()): mlp-core loaded, rust-analyzer's analysis
        done. It runs in the pool's folder; the notebook's code should run in the
        notebook's, so the first (hidden) cell moves there."""
        self.warm = (entry, claim)
        self.proc = Adopted(entry["pid"])
        self.backend_file = None
        self.bsession = Session(key=entry["key"].encode(), signature_scheme=entry["signature_scheme"],
                                username="kernel")
        self.offset = self.raw_last = entry["count"]
        with open(entry["connection"]) as f:
            self.connect_evcxr(json.load(f))
        self.move_to_cwd()

    def move_to_cwd(self):
        if self.warm and self.cwd != self.warm[0]["cwd"]:
            code = "std::env::set_current_dir(r#\"%s\"#).ok();" % self.cwd
            msg = self.bsession.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                                        "user_expressions": {}, "allow_stdin": False,
                                                        "stop_on_error": False})
            self.hidden.add(msg["header"]["msg_id"])
            self.send(self.b_shell, msg, [], self.bsession)

    def connect_evcxr(self, backend):
        def url(port):
            return "tcp://127.0.0.1:%d" % port

        ident = ("relay-%d" % os.getpid()).encode()
        self.b_shell = self.connect(zmq.DEALER, url(backend["shell_port"]), ident)
        self.b_control = self.connect(zmq.DEALER, url(backend["control_port"]), ident + b"-c")
        self.b_stdin = self.connect(zmq.DEALER, url(backend["stdin_port"]), ident)
        self.b_iopub = self.connect(zmq.SUB, url(backend["iopub_port"]))
        self.b_iopub.setsockopt(zmq.SUBSCRIBE, b"")
        if self.proc.stderr:
            os.set_blocking(self.proc.stderr.fileno(), False)

    def connect(self, kind, url, ident=None):
        s = self.ctx.socket(kind)
        s.linger = 0
        if ident:
            s.setsockopt(zmq.IDENTITY, ident)
        s.connect(url)
        return s

    # --- messages --------------------------------------------------------------
    def split(self, frames, session):
        idents, rest = session.feed_identities(frames, copy=True)
        return idents, session.deserialize(rest, content=True, copy=True)

    def send(self, socket, msg, idents, session):
        session.send(socket, msg, ident=idents)

    def pass_on(self, frames, socket, to_evcxr, split=None):
        """A message passed on unchanged (signed again when evcxr's key is not the
        frontend's: a pool's evcxr). `split`: (idents, msg) if already read."""
        if self.bsession is self.fsession:
            return socket.send_multipart(frames)
        source, target = (self.fsession, self.bsession) if to_evcxr else (self.bsession, self.fsession)
        idents, msg = split or self.split(frames, source)
        self.send(socket, msg, idents, target)

    def publish(self, msg_type, content, parent, metadata=None):
        self.fsession.send(self.f_iopub, msg_type, content=content, parent=parent, metadata=metadata or {},
                          ident=[("kernel.relay.%s" % msg_type).encode()])

    def run(self):
        parent = os.getppid()
        poller = zmq.Poller()
        for s in (self.f_shell, self.f_control, self.f_stdin, self.b_shell, self.b_control, self.b_stdin,
                  self.b_iopub):
            poller.register(s, zmq.POLLIN)
        if self.proc.stderr:
            poller.register(self.proc.stderr.fileno(), zmq.POLLIN)
        timeout = 200
        while True:
            events = dict(poller.poll(timeout))
            if self.f_shell in events:
                self.from_frontend_shell(self.f_shell.recv_multipart())
            if self.f_control in events:
                frames = self.f_control.recv_multipart()
                idents, msg = self.split(frames, self.fsession)
                if msg["header"]["msg_type"] == "interrupt_request":
                    if self.current:
                        self.interrupted.add(self.current["msg_id"])
                    else:
                        self.interrupted_idle = True
                self.pass_on(frames, self.b_control, True, (idents, msg))
            if self.f_stdin in events:
                self.pass_on(self.f_stdin.recv_multipart(), self.b_stdin, True)
            if self.b_stdin in events:
                self.pass_on(self.b_stdin.recv_multipart(), self.f_stdin, False)
            if self.b_control in events:
                self.pass_on(self.b_control.recv_multipart(), self.f_control, False)
            if self.b_iopub in events:
                self.from_evcxr_iopub(self.b_iopub.recv_multipart())
            if self.b_shell in events:
                self.from_evcxr_shell(self.b_shell.recv_multipart())
            if self.proc.stderr and self.proc.stderr.fileno() in events:
                self.from_evcxr_stderr()
            if self.current:
                self.from_progress_file()
                entry = self.progress.get(self.current["msg_id"])
                if entry and time.time() - entry["shown"] >= 1.0:
                    self.show_progress(self.current)
            next_due = self.release_due()
            timeout = 200 if next_due is None else max(1, min(200, int(next_due * 1000) + 1))
            if self.proc.poll() is not None:
                self.from_evcxr_stderr()
                return self.proc.returncode
            if os.getppid() != parent:
                # the Jupyter server that started this kernel is gone (as ipykernel does)
                return 0

    def from_frontend_shell(self, frames):
        idents, msg = self.split(frames, self.fsession)
        header = msg["header"]
        if header["msg_type"] == "execute_request":
            if msg["content"].get("code", "").strip() == ":backtrace":
                # evcxr runs an empty cell (and counts it); the relay adds the output
                self.backtrace_requests.add(header["msg_id"])
                msg["content"]["code"] = ""
                return self.send(self.b_shell, msg, idents, self.bsession)
        self.pass_on(frames, self.b_shell, True, (idents, msg))

    def from_evcxr_shell(self, frames):
        idents, msg = self.split(frames, self.bsession)
        header, content = msg["header"], msg["content"]
        if header["msg_type"] == "execute_reply":
            parent_id = msg["parent_header"].get("msg_id")
            raw = content.get("execution_count")
            if isinstance(raw, int):
                if parent_id in self.hidden:  # the relay's cell is not counted
                    self.offset += raw - self.raw_last
                self.raw_last = raw
            if parent_id in self.hidden:
                return
            self.renumber(content)
            if content.get("status") == "error":
                error = self.errors.get(parent_id) or {"ename": "Error", "evalue": "the cell failed",
                                                       "traceback": []}
                for key in ("ename", "evalue", "traceback"):
                    content.setdefault(key, error[key])
            elif content.get("execution_count"):
                self.ok_cells.append(content["execution_count"])
            self.errors.pop(parent_id, None)
        self.send(self.f_shell, msg, idents, self.fsession)

    def renumber(self, content):
        if isinstance(content.get("execution_count"), int) and content["execution_count"] > self.offset:
            content["execution_count"] -= self.offset

    def from_evcxr_iopub(self, frames):
        idents, msg = self.split(frames, self.bsession)
        if msg["parent_header"].get("msg_id") in self.hidden:
            return
        self.from_evcxr_iopub_msg(idents, msg)

    def from_evcxr_iopub_msg(self, idents, msg):
        msg_type = msg["header"]["msg_type"]
        parent = msg["parent_header"]
        parent_id = parent.get("msg_id")
        content = msg["content"]
        if msg_type == "status":
            if content.get("execution_state") == "busy" and parent.get("msg_type") == "execute_request":
                self.current = parent
            elif content.get("execution_state") == "idle" and parent.get("msg_type") == "execute_request":
                # a cell's last output lines can still be on their way (evcxr sends the
                # process's output from another thread, which can lose the race with the
                # idle status), and a panic's report comes late (evcxr passes standard
                # error on late): the cell ends once its outputs have been quiet for
                # LATE_OUTPUT seconds, or a second after a panic
                wait = 1.0 if parent_id in self.panic else LATE_OUTPUT
                self.held_idle[parent_id] = (time.time() + wait, idents, msg)
                return
        elif msg_type in ("stream", "display_data", "execute_result", "error"):
            self.clear_progress(parent)
        if msg_type in ("execute_input", "execute_result"):
            self.renumber(content)
        if msg_type == "stream" and content.get("name") == "stdout" and content["text"].startswith(DISPLAY_MARKER):
            self.live_display(parent, content["text"])
            return
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
        self.send(self.f_iopub, msg, idents, self.fsession)
        if parent_id in self.held_idle and parent_id not in self.panic:
            _, held_idents, held = self.held_idle[parent_id]
            self.held_idle[parent_id] = (time.time() + LATE_OUTPUT, held_idents, held)

    def live_display(self, parent, text):
        """mlp-core's display lines as Jupyter's display messages: a display id's first
        as display_data, the later ones as update_display_data (the frontend redraws that
        output in place; a saved notebook keeps the last)."""
        for line in text.splitlines():
            try:
                shown = json.loads(line[len(DISPLAY_MARKER):])
                display_id, data = shown["display_id"], shown["data"]
            except (ValueError, KeyError, TypeError):
                continue
            msg_type = "update_display_data" if display_id in self.displays else "display_data"
            self.displays.add(display_id)
            self.publish(msg_type, {"data": data, "metadata": {}, "transient": {"display_id": display_id}}, parent)

    def release_idle(self, parent_id):
        """The cell is over: its idle status goes out, after what the relay adds."""
        _, idents, msg = self.held_idle.pop(parent_id)
        self.panic.pop(parent_id, None)
        parent = msg["parent_header"]
        self.clear_progress(parent)
        if parent_id in self.backtrace_requests:
            self.backtrace_requests.discard(parent_id)
            self.publish("stream", {"name": "stdout", "text": self.full_backtrace() + "\n"}, parent)
        if self.current and self.current.get("msg_id") == parent_id:
            self.current = None
        self.send(self.f_iopub, msg, idents, self.fsession)

    def release_due(self):
        """Releases the held idle statuses that are due; the seconds until the next one."""
        now = time.time()
        for parent_id, (due, _, _) in list(self.held_idle.items()):
            if due <= now:
                self.release_idle(parent_id)
        return min((due - now for due, _, _ in self.held_idle.values()), default=None)

    def panic_report(self, text):
        """mlp-core's one-line report, as the student reads it."""
        out = []
        for line in text.splitlines():
            if line.startswith(PANIC_MARKER):
                report = json.loads(line[len(PANIC_MARKER):])
                where = self.describe_location(report["location"]) if report.get("location") else "somewhere"
                caller = None if where.startswith("in ") else self.notebook_frame(report)
                if caller:  # in a library the notebook's code called: say which line did
                    where = "%s\n  (inside %s)" % (self.describe_location(caller), where.removeprefix("at "))
                out.append("panicked: %s\n  %s\n  (the full report: run `:backtrace` in a cell)"
                           % (report["message"], where))
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

    def notebook_frame(self, report):
        """The innermost frame of the panic's stack in the notebook's code, as
        `src/lib.rs:LINE:0`, from the offsets into the cell's library that mlp-core's
        hook lists (`addr2line -i` names the inlined functions' lines too); None when
        there is none or addr2line cannot tell."""
        library, frames = report.get("library"), report.get("frames")
        if not library or not frames:
            return None
        try:
            out = subprocess.run(["addr2line", "-a", "-i", "-e", library] + ["%#x" % f for f in frames],
                                 capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        source = os.path.realpath(os.path.join(self.work, "src", "lib.rs"))
        for entry in out.splitlines():
            m = re.match(r"^(.*):(\d+)(?: \(discriminator \d+\))?$", entry)
            if m and m.group(2) != "0" and (m.group(1) == "src/lib.rs" or os.path.realpath(m.group(1)) == source):
                return "src/lib.rs:%s:0" % m.group(2)
        return None

    def explain_error(self, parent_id, content):
        text = content.get("evalue") or ""
        interrupted = parent_id in self.interrupted or self.interrupted_idle
        if TERMINATED in text or interrupted and "terminated" in text.lower():
            status = text.split(TERMINATED, 1)[-1].strip(" :\n") or "it stopped"
            message = lost_state_text(interrupted, status, self.ok_cells)
            self.interrupted.discard(parent_id)
            self.interrupted_idle = False
            self.ok_cells = []
            self.move_to_cwd()  # evcxr's new process starts in the pool's folder
            content["ename"] = "Interrupted" if interrupted else "KernelProcessEnded"
            content["evalue"] = message
            content["traceback"] = [message]
        elif content.get("ename") in (None, "", "Error"):
            content["ename"] = "Error"

    # --- progress ----------------------------------------------------------------
    def from_evcxr_stderr(self):
        if not self.proc.stderr:
            return  # a pool's evcxr writes to its slot's evcxr.log
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
        for path in (self.backend_file, self.warm and self.warm[1]):
            try:
                if path:
                    os.unlink(path)
            except OSError:
                pass


# ---------------------------------------------------------------------------------
# The warm pool: evcxr started and warmed before anyone asks (`--pool`)
#
# A kernel's first cells are mostly rust-analyzer (evcxr types every variable with it):
# it reads the standard library and every dependency, about 18 s of one core before the
# first `let` answers. `--pool N` keeps N evcxr processes that have done that work, in
# slots of their own, each listed in <kernel home>/pool/ready/. A new kernel's relay
# claims one by renaming its entry into pool/claimed/ (atomic: one relay wins), and
# passes messages to it, signed with the pool's key; with none ready it starts its own
# evcxr as before. The pool warms one replacement at a time.

def pool_dir(home, part):
    path = os.path.join(home, "pool", part)
    os.makedirs(path, exist_ok=True)
    return path


def read_json(path):
    """A pool entry, or None when it is gone or half written."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ready_kernels(home):
    """[(entry file, entry)] of the warm kernels not claimed yet."""
    folder = pool_dir(home, "ready")
    entries = [(os.path.join(folder, name), read_json(os.path.join(folder, name)))
               for name in sorted(os.listdir(folder)) if name.endswith(".json")]
    return [(path, entry) for path, entry in entries if entry]


def claimed_kernels(home):
    """[(claim file, relay pid, entry)] of the warm kernels relays have claimed (the
    claim is named <slot>.<relay pid>)."""
    folder = pool_dir(home, "claimed")
    out = []
    for name in os.listdir(folder):
        relay = name.rpartition(".")[2]
        entry = read_json(os.path.join(folder, name))
        if relay.isdigit() and entry:
            out.append((os.path.join(folder, name), int(relay), entry))
    return out


def process_state(pid):
    """R, S, Z... of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid):
    return process_state(pid) not in (None, "Z", "X")


def is_evcxr(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return os.path.basename(EVCXR).encode() in f.read()
    except OSError:
        return False


class Adopted:
    """A pool's evcxr as the relay sees it: the pool is its parent, the relay ends it."""

    stderr = None
    returncode = None  # its exit status goes to the pool: 0 once it has ended

    def __init__(self, pid):
        self.pid = pid

    def poll(self):
        if self.returncode is None and not alive(self.pid):
            self.returncode = 0
        return self.returncode

    def terminate(self, sig=signal.SIGTERM):
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self):
        self.terminate(signal.SIGKILL)

    def wait(self, timeout):
        end = time.time() + timeout
        while self.poll() is None:
            if time.time() > end:
                raise subprocess.TimeoutExpired("evcxr", timeout)
            time.sleep(0.05)
        return 0


def warming_kernels(home):
    """How many kernels a live pool is warming now."""
    folder = pool_dir(home, "warming")
    pids = [read_json(os.path.join(folder, name)) for name in os.listdir(folder)]
    return sum(1 for pid in pids if isinstance(pid, int) and alive(pid))


def claim_warm(home, wait=0):
    """A warm evcxr of the pool, now this relay's: (entry, claim file), or None. With
    none ready but one being warmed, waits up to `wait` seconds for it (it is further on
    than a cold start would be)."""
    end = time.time() + wait
    while True:
        warm = claim_ready(home)
        if warm or time.time() > end or not warming_kernels(home):
            return warm
        time.sleep(0.2)


def claim_ready(home):
    claimed = pool_dir(home, "claimed")
    for path, _ in ready_kernels(home):
        claim = os.path.join(claimed, "%s.%d" % (os.path.basename(path)[:-5], os.getpid()))
        try:
            os.rename(path, claim)  # only one relay can
        except OSError:
            continue
        entry = read_json(claim) or {}
        if alive(entry.get("pid", 0)) and is_evcxr(entry["pid"]):
            return entry, claim
        os.unlink(claim)  # a pool that was killed left it
    return None


def dep_lines(nb):
    """The `:dep` lines of a notebook's (a dict's or nbformat's) first code cell: what the
    pool's kernels run for that edition."""
    first = next(cell for cell in nb["cells"] if cell["cell_type"] == "code")
    source = first["source"] if isinstance(first["source"], str) else "".join(first["source"])
    return [line for line in source.splitlines() if line.startswith(":dep ")]


WARM_COMPLETION = "let evcxr_warm = vec![1.0f64];\nevcxr_warm."


def warm_one(home, deps, cwd):
    """One evcxr, started and warmed: the dependency lines run, one completion asked
    (rust-analyzer's type analysis loaded). Returns (process, entry) or None."""
    fd, work = take_slot(home)
    slot = os.path.dirname(work)
    warming = os.path.join(pool_dir(home, "warming"), os.path.basename(slot))
    write_if_changed(warming, str(os.getpid()))
    try:
        return warm_in_slot(home, deps, cwd, fd, work)
    finally:
        os.unlink(warming)


def warm_in_slot(home, deps, cwd, fd, work):
    from jupyter_client import BlockingKernelClient
    slot = os.path.dirname(work)
    env = {k: v for k, v in evcxr_env(home, work).items()
           if not k.startswith(("JUPYTERHUB_", "JPY_", "MLP_HUB_"))}
    key = uuid.uuid4().hex
    connection = os.path.join(slot, "evcxr-connection.json")
    with open(os.path.join(slot, "evcxr.log"), "wb") as log:
        proc, _ = launch_evcxr(connection, key, "hmac-sha256", [EVCXR], env=env, cwd=cwd, stdout=log,
                               stderr=subprocess.STDOUT, pass_fds=(fd,), start_new_session=True)
    os.close(fd)  # evcxr holds the slot's lock now
    kc = BlockingKernelClient(connection_file=connection)
    kc.load_connection_file()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=300)
        count = 1
        for dep in deps:
            reply = kc.execute_interactive(dep, timeout=1800, output_hook=lambda m: None)
            if reply["content"]["status"] != "ok":
                raise RuntimeError("%s: %s" % (dep, reply["content"].get("evalue")))
            count = reply["content"]["execution_count"]
        kc.complete(WARM_COMPLETION, len(WARM_COMPLETION), reply=True, timeout=600)
    except Exception as e:
        print("pool: a kernel did not warm up (%s); see %s" % (e, os.path.join(slot, "evcxr.log")), flush=True)
        proc.kill()
        proc.wait()
        return None
    finally:
        kc.stop_channels()
    entry = {"pid": proc.pid, "connection": connection, "key": key, "signature_scheme": "hmac-sha256",
             "work": work, "cwd": cwd, "count": count, "deps": deps, "template": template_stamp(home)}
    path = os.path.join(pool_dir(home, "ready"), os.path.basename(slot) + ".json")
    write_if_changed(path, json.dumps(entry))
    return proc, entry


def template_stamp(home):
    try:
        return os.path.getmtime(os.path.join(home, "slots", "template", "prebuilt.stamp"))
    except OSError:
        return None


def pool(size, deps, cwd, refill=True):
    """Keep `size` warm kernels ready until stopped (SIGTERM); their evcxr processes end
    with the pool (PR_SET_PDEATHSIG), claimed ones too. Without `refill`, only the first
    `size` are warmed (a student's container: a replacement would double its memory and
    take its core while the student works)."""
    home = kernel_home()
    prepare_home(home)
    ready, claimed = pool_dir(home, "ready"), pool_dir(home, "claimed")
    for folder in (ready, claimed, pool_dir(home, "warming")):  # a previous pool's entries: its processes are gone
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
    procs = {}
    warmed_total = 0
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    print("pool: keeping %d warm kernel(s) in %s" % (size, ready), flush=True)
    while not stopping:
        for pid, proc in list(procs.items()):
            if proc.poll() is not None:
                del procs[pid]
        for path, relay, entry in claimed_kernels(home):  # a relay killed outright leaves its evcxr
            if not alive(relay):
                if alive(entry["pid"]):
                    os.kill(entry["pid"], signal.SIGTERM)
                else:
                    os.unlink(path)
        stamp = template_stamp(home)
        entries = []
        for path, entry in ready_kernels(home):
            if alive(entry["pid"]) and entry["template"] == stamp:
                entries.append(entry)
                continue
            try:  # dead, or warmed before the template was rebuilt: taken out of the list first
                os.rename(path, path + ".stale")
            except OSError:
                continue  # a relay claimed it in the meantime
            try:
                os.kill(entry["pid"], signal.SIGTERM)
            except OSError:
                pass
            os.unlink(path + ".stale")
        if len(entries) < size and (refill or warmed_total < size):
            start = time.time()
            warmed = warm_one(home, deps, cwd)
            if warmed:
                warmed_total += 1
                procs[warmed[0].pid] = warmed[0]
                print("pool: a kernel warmed in %.1f s (%d of %d ready)" % (time.time() - start, len(entries) + 1,
                                                                            size), flush=True)
            else:
                time.sleep(10)
        else:
            time.sleep(0.5)
    for proc in procs.values():
        proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    for name in os.listdir(ready):
        os.unlink(os.path.join(ready, name))


def launch_evcxr(path, key, signature_scheme, argv, **popen):
    """evcxr on a connection file of its own at `path` (loopback ports, this key):
    (process, the connection's settings). A port taken by another kernel in the meantime
    makes evcxr exit at once: then new ports, up to three times."""
    for _attempt in range(3):
        write_connection_file(path, ip="127.0.0.1", key=key.encode(), signature_scheme=signature_scheme,
                              transport="tcp")
        with open(path) as f:
            backend = json.load(f)
        proc = subprocess.Popen(argv + ["--control_file", path], preexec_fn=die_with_parent, **popen)
        time.sleep(0.3)
        if proc.poll() is None:
            break
    return proc, backend


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
