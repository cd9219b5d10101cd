"""The relay's channels, as jupyter_client's: the frontend's sockets (bound, from the
kernel's connection file, and the heartbeat) and evcxr's (connected to the ports of the
evcxr the manager started or adopted, manager.py), with the sessions that sign each side,
passing on, publishing and the trace (MLP_KERNEL_TRACE). Nothing here knows evcxr's
process."""

import os
import threading
import time

import zmq
from jupyter_client.session import Session


class Channels:
    def __init__(self, connection):
        self.connection = connection
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

    def evcxr_key(self, key, signature_scheme):
        """A pool's evcxr signs with a key of its own: messages to and from it are signed
        again (pass_on)."""
        self.bsession = Session(key=key.encode(), signature_scheme=signature_scheme, username="kernel")

    def connect_evcxr(self, backend):
        def url(port):
            return "tcp://127.0.0.1:%d" % port

        ident = ("relay-%d" % os.getpid()).encode()
        self.b_shell = self.connect(zmq.DEALER, url(backend["shell_port"]), ident)
        self.b_control = self.connect(zmq.DEALER, url(backend["control_port"]), ident + b"-c")
        self.b_stdin = self.connect(zmq.DEALER, url(backend["stdin_port"]), ident)
        self.b_iopub = self.connect(zmq.SUB, url(backend["iopub_port"]))
        self.b_iopub.setsockopt(zmq.SUBSCRIBE, b"")

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
