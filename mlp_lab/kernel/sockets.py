"""The relay's sockets: the frontend's side (bound, from the kernel's connection file)
and evcxr's (connected: evcxr started on a connection file of its own, or a pool's warm
evcxr adopted), with signing, passing on and publishing."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import zmq
from jupyter_client.session import Session

from .launch import Adopted, keep_lock, launch_evcxr, restore_lock


class Sockets:
    def __init__(self, connection, work):
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
        self.proc = None          # evcxr (an Adopted one from the pool)
        self.backend_file = None  # its connection file, when this relay started it
        self.warm = None          # (pool entry, claim file) of an adopted evcxr
        self.lock_kept = False    # the work directory's Cargo.lock put aside (launch.keep_lock)
        trace = os.environ.get("MLP_KERNEL_TRACE")
        self.trace = open(trace, "a", buffering=1) if trace else None

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
        # in a folder of its own (jupyter_client writes it afresh, 0600): the slot's folder
        # is not writable in the grading sandbox (deploy/Dockerfile)
        path = os.path.join(tempfile.mkdtemp(prefix="mlp-kernel-"), "evcxr-connection.json")
        keep_lock(self.work)
        self.lock_kept = True  # put back at evcxr's first reply (restore_evcxr_lock)
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

    def restore_evcxr_lock(self):
        """At evcxr's first reply (it has started, so its start no longer empties the lock),
        the Cargo.lock kept before it started goes back (launch.restore_lock)."""
        if self.lock_kept:
            self.lock_kept = False
            restore_lock(self.work)

    # --- messages --------------------------------------------------------------
    def split(self, frames, session):
        idents, rest = session.feed_identities(frames, copy=True)
        return idents, session.deserialize(rest, content=True, copy=True)

    def send(self, socket, msg, idents, session):
        session.send(socket, msg, ident=idents)
        if self.trace and socket in (self.f_shell, self.f_iopub):
            self.note(">front", msg)

    def note(self, event, msg):
        """A line in the trace file (MLP_KERNEL_TRACE): the time, where the message went
        (`front>` from the frontend, `evcxr>` from evcxr, `>evcxr`, `>front`), its type
        (a status's state) and the request it belongs to."""
        if not self.trace:
            return
        header, parent = msg["header"], msg.get("parent_header") or {}
        kind = header["msg_type"]
        if kind == "status":
            kind += "/" + msg["content"].get("execution_state", "")
        request = header["msg_id"] if kind.endswith("_request") else parent.get("msg_id", "")
        self.trace.write("%.6f %s %s %s\n" % (time.time(), event, kind, request))

    def pass_on(self, frames, socket, to_evcxr, split=None):
        """A message passed on unchanged (signed again when evcxr's key is not the
        frontend's: a pool's evcxr). `split`: (idents, msg) if already read."""
        if self.bsession is self.fsession:
            return socket.send_multipart(frames)
        source, target = (self.fsession, self.bsession) if to_evcxr else (self.bsession, self.fsession)
        idents, msg = split or self.split(frames, source)
        self.send(socket, msg, idents, target)

    def publish(self, msg_type, content, parent, metadata=None):
        msg = self.fsession.send(self.f_iopub, msg_type, content=content, parent=parent, metadata=metadata or {},
                                 ident=[("kernel.relay.%s" % msg_type).encode()])
        self.note(">front", msg)

    # --- evcxr's own standard error ---------------------------------------------
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
        if self.backend_file:
            shutil.rmtree(os.path.dirname(self.backend_file), ignore_errors=True)
