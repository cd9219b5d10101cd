"""The relay between the frontend (JupyterLab, nbclient) and evcxr: every message
passed through, changed only where a student would otherwise trip over evcxr.

- **Output order.** evcxr sends the cell process's output from another thread, which can
  lose the race with the idle status. A cell ends (its idle status goes out) once every
  byte its process wrote during the cell (/proc/PID/io, less evcxr's own end-of-cell line)
  has come as output, at once for a cell that wrote nothing; when that cannot be told
  (evcxr turned some of it into a result, no /proc), once its outputs have been quiet for
  LATE_OUTPUT seconds; always when evcxr starts the next cell (before its busy).
- **Progress.** The crates cargo compiles for a cell (progress.py).
- **Interrupt.** evcxr interrupts a cell by ending the process that holds the
  notebook's variables. The cell's error then says so plainly and what to rerun.
- **Panics** show their message and the notebook functions they passed through, not
  the runtime's backtrace; `:backtrace` in a cell prints the last full one (messages.py).
- **Live display.** mlp-core's DISPLAY_MARKER lines become display_data and
  update_display_data with a display id (evcxr has no such call).
- **Replies** carry `ename`/`evalue` on errors (evcxr leaves them out), and execution
  counts start at 1 (evcxr's start at 2).
- **A warm evcxr** from the pool (pool.py) is adopted instead of starting one.
- **Timings.** With `MLP_KERNEL_TRACE` set to a file, each execute message the relay
  receives or sends is noted there with the time (mlp_lab/bench/kernel_timings.py splits a
  cell into its stages from it).
"""

import json
import os
import time

import zmq

from .channels import Channels
from .display import Displays
from .home import progress_file
from .manager import EvcxrManager
from .messages import DISPLAY_MARKER, PANIC_MARKER, TERMINATED, Panics, lost_state_text, panic_report
from .progress import Progress

LATE_OUTPUT = 0.05  # seconds of quiet after evcxr's idle status before a cell is over
# what evcxr's cell process writes after every cell: EVCXR_EXECUTION_COMPLETE and a newline
COMPLETION_LINE = 25


class Relay:
    """The relay holds evcxr's process (`manager`, manager.py) and the sockets to both
    sides (`channels`, channels.py); what it changes in the messages is its own."""

    def __init__(self, connection, evcxr_argv_env, work, adopt=None):
        self.work = work
        self.channels = Channels(connection)
        self.manager = EvcxrManager(work)
        self.argv, self.env = evcxr_argv_env or (None, None)
        self.displays = Displays(self.publish)  # display ids: mlp-core's live figures, progress
        self.progress = Progress(progress_file(work), self.displays, self.publish)
        self.current = None      # the header of the request evcxr is executing
        self.errors = {}         # msg_id -> content of the error output sent for it
        self.panics = Panics(work)
        self.backtrace_requests = set()
        self.held_idle = {}       # msg_id -> (due, idents, idle status) of a cell's late outputs
        self.writes_before = {}   # msg_id -> (pid, writes) of evcxr's cell process when the cell began
        self.streamed = {}        # msg_id -> bytes of standard output and error evcxr passed on for it
        self.interrupted = set()  # msg_ids interrupted
        self.interrupted_idle = False
        self.ok_cells = []
        self.offset = 1           # evcxr's count before the notebook's first cell
        self.raw_last = 1         # evcxr's count of the last reply
        self.hidden = set()       # msg_ids of the relay's own requests (not shown)
        self.cwd = os.getcwd()    # the notebook's folder, where its code runs
        if adopt:
            self.adopt(*adopt)
        else:
            self.start_evcxr()

    def start_evcxr(self):
        key, scheme = self.channels.connection["key"], self.channels.connection["signature_scheme"]
        self.channels.connect_evcxr(self.manager.start(self.argv, self.env, key, scheme))

    def adopt(self, entry, claim):
        """A warm evcxr from the pool (pool.py): mlp-core loaded, rust-analyzer's analysis
        done. It runs in the pool's folder; the notebook's code should run in the
        notebook's, so the first (hidden) cell moves there."""
        backend = self.manager.adopt(entry, claim)
        self.channels.evcxr_key(entry["key"], entry["signature_scheme"])
        self.offset = self.raw_last = entry["count"]
        self.channels.connect_evcxr(backend)
        self.move_to_cwd()

    def send(self, socket, msg, idents, session):
        self.channels.send(socket, msg, idents, session)

    def publish(self, msg_type, content, parent, metadata=None):
        self.channels.publish(msg_type, content, parent, metadata)

    def cell_process_writes(self):
        return self.manager.cell_process_writes()

    def close(self):
        self.manager.close()

    def move_to_cwd(self):
        if self.manager.warm and self.cwd != self.manager.warm[0]["cwd"]:
            code = "std::env::set_current_dir(r#\"%s\"#).ok();" % self.cwd
            msg = self.channels.bsession.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                                        "user_expressions": {}, "allow_stdin": False,
                                                        "stop_on_error": False})
            self.hidden.add(msg["header"]["msg_id"])
            self.send(self.channels.b_shell, msg, [], self.channels.bsession)

    def run(self):
        parent = os.getppid()
        ch = self.channels
        poller = zmq.Poller()
        for s in (ch.f_shell, ch.f_control, ch.f_stdin, ch.b_shell, ch.b_control, ch.b_stdin, ch.b_iopub):
            poller.register(s, zmq.POLLIN)
        stderr = self.manager.stderr_fd()
        if stderr is not None:
            poller.register(stderr, zmq.POLLIN)
        timeout = 200
        while True:
            events = dict(poller.poll(timeout))
            if ch.f_shell in events:
                self.from_frontend_shell(ch.f_shell.recv_multipart())
            if ch.f_control in events:
                frames = ch.f_control.recv_multipart()
                idents, msg = ch.split(frames, ch.fsession)
                if msg["header"]["msg_type"] == "interrupt_request":
                    if self.current:
                        self.interrupted.add(self.current["msg_id"])
                    else:
                        self.interrupted_idle = True
                ch.pass_on(frames, ch.b_control, True, (idents, msg))
            if ch.f_stdin in events:
                ch.pass_on(ch.f_stdin.recv_multipart(), ch.b_stdin, True)
            if ch.b_stdin in events:
                ch.pass_on(ch.b_stdin.recv_multipart(), ch.f_stdin, False)
            if ch.b_control in events:
                ch.pass_on(ch.b_control.recv_multipart(), ch.f_control, False)
            if ch.b_iopub in events:
                self.from_evcxr_iopub(ch.b_iopub.recv_multipart())
            if ch.b_shell in events:
                self.from_evcxr_shell(ch.b_shell.recv_multipart())
            if stderr is not None and stderr in events:
                self.manager.pass_on_stderr()
            if self.current:
                self.progress.read(self.current)
            next_due = self.release_due()
            timeout = 200 if next_due is None else max(1, min(200, int(next_due * 1000) + 1))
            if self.manager.proc.poll() is not None:
                self.manager.pass_on_stderr()
                return self.manager.proc.returncode
            if os.getppid() != parent:
                # the Jupyter server that started this kernel is gone (as ipykernel does)
                return 0

    def from_frontend_shell(self, frames):
        idents, msg = self.channels.split(frames, self.channels.fsession)
        header = msg["header"]
        self.channels.note("front>", msg)
        if header["msg_type"] == "execute_request":
            if msg["content"].get("code", "").strip() == ":backtrace":
                # evcxr runs an empty cell (and counts it); the relay adds the output
                self.backtrace_requests.add(header["msg_id"])
                msg["content"]["code"] = ""
                return self.send(self.channels.b_shell, msg, idents, self.channels.bsession)
        self.channels.pass_on(frames, self.channels.b_shell, True, (idents, msg))
        self.channels.note(">evcxr", msg)

    def from_evcxr_shell(self, frames):
        idents, msg = self.channels.split(frames, self.channels.bsession)
        self.channels.note("evcxr>", msg)
        self.manager.restore_lock()
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
        self.send(self.channels.f_shell, msg, idents, self.channels.fsession)

    def renumber(self, content):
        if isinstance(content.get("execution_count"), int) and content["execution_count"] > self.offset:
            content["execution_count"] -= self.offset

    def from_evcxr_iopub(self, frames):
        idents, msg = self.channels.split(frames, self.channels.bsession)
        self.channels.note("evcxr>", msg)
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
                # evcxr has moved on to the next cell: the held idles go out first (the
                # frontend shows the state of the last status it got: it must say busy)
                for held_id in [k for k in self.held_idle if k != parent_id]:
                    self.release_idle(held_id)
                self.current = parent
                self.writes_before[parent_id] = self.cell_process_writes()
            elif content.get("execution_state") == "idle" and parent.get("msg_type") == "execute_request":
                # a cell's last output lines can still be on their way (evcxr sends the
                # process's output from another thread, which can lose the race with the
                # idle status), and a panic's report comes late (evcxr passes standard
                # error on late): the cell ends once its outputs have been quiet for
                # LATE_OUTPUT seconds, or a second after a panic; at once when all it
                # wrote has come
                if parent_id in self.panics.active:
                    wait = 1.0
                else:
                    wait = 0 if self.unseen_output(parent_id) == 0 else LATE_OUTPUT
                self.held_idle[parent_id] = (time.time() + wait, idents, msg)
                if not wait:
                    self.release_idle(parent_id)
                return
        elif msg_type in ("stream", "display_data", "execute_result", "error"):
            self.progress.clear(parent)
        if msg_type == "stream":
            self.streamed[parent_id] = self.streamed.get(parent_id, 0) + len(content.get("text", "").encode())
        if msg_type in ("execute_input", "execute_result"):
            self.renumber(content)
        if msg_type == "stream" and content.get("name") == "stdout" and content["text"].startswith(DISPLAY_MARKER):
            self.live_display(parent, content["text"])
            return self.late_output(parent_id)
        if msg_type == "stream" and content.get("name") == "stdout" and content["text"].startswith(PANIC_MARKER):
            content["name"] = "stderr"
            content["text"] = panic_report(content["text"], self.work)
        elif msg_type == "stream" and content.get("name") == "stderr":
            content["text"] = self.panics.filter(parent_id, content["text"])
            if not content["text"]:
                return self.late_output(parent_id)
        if msg_type == "error":
            self.explain_error(parent_id, content)
            self.errors[parent_id] = content
        self.send(self.channels.f_iopub, msg, idents, self.channels.fsession)
        self.late_output(parent_id)

    def late_output(self, parent_id):
        """Output of a cell whose idle is held: the cell ends now if that was all its process
        wrote, else once its outputs have been quiet for LATE_OUTPUT (after a panic: the
        second its report may take)."""
        if parent_id not in self.held_idle or parent_id in self.panics.active:
            return
        if self.unseen_output(parent_id) == 0:
            return self.release_idle(parent_id)
        _, held_idents, held = self.held_idle[parent_id]
        self.held_idle[parent_id] = (time.time() + LATE_OUTPUT, held_idents, held)

    def live_display(self, parent, text):
        """mlp-core's display lines as Jupyter's display messages (display.py)."""
        for line in text.splitlines():
            try:
                shown = json.loads(line[len(DISPLAY_MARKER):])
                display_id, data = shown["display_id"], shown["data"]
            except (ValueError, KeyError, TypeError):
                continue
            self.displays.show(display_id, data, parent)

    def unseen_output(self, parent_id):
        """The bytes the cell's process has written since the cell began (less evcxr's
        end-of-cell line) that have not come as standard output or error: 0 when all has
        come, and nothing of the cell can trail its idle status. None when unknown (no
        /proc; another process since the cell began: a panic or an interrupt restarts it).
        Bytes evcxr turns into something else (a final expression's result, its own
        markers) keep it above 0: the cell then ends after LATE_OUTPUT's quiet."""
        before, now = self.writes_before.get(parent_id), self.cell_process_writes()
        if not before or not now or before[0] != now[0]:
            return None
        calls, written = (a - b for a, b in zip(now[1], before[1], strict=True))
        if calls:
            written -= COMPLETION_LINE
        return written - self.streamed.get(parent_id, 0)

    def release_idle(self, parent_id):
        """The cell is over: its idle status goes out, after what the relay adds."""
        _, idents, msg = self.held_idle.pop(parent_id)
        self.writes_before.pop(parent_id, None)
        self.streamed.pop(parent_id, None)
        self.panics.active.pop(parent_id, None)
        parent = msg["parent_header"]
        self.progress.clear(parent)
        if parent_id in self.backtrace_requests:
            self.backtrace_requests.discard(parent_id)
            self.publish("stream", {"name": "stdout", "text": self.panics.full_backtrace() + "\n"}, parent)
        if self.current and self.current.get("msg_id") == parent_id:
            self.current = None
        self.send(self.channels.f_iopub, msg, idents, self.channels.fsession)

    def release_due(self):
        """Releases the held idle statuses that are due; the seconds until the next one."""
        now = time.time()
        for parent_id, (due, _, _) in list(self.held_idle.items()):
            if due <= now:
                self.release_idle(parent_id)
        return min((due - now for due, _, _ in self.held_idle.values()), default=None)

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
