"""evcxr's process for one relay, as jupyter_client's KernelManager owns a kernel's: started
on a connection file of its own, or a pool's warm evcxr adopted; its standard error passed
on; the work directory's Cargo.lock put back after its start; ended with the relay."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from .launch import Adopted, cell_process, keep_lock, launch_evcxr, restore_lock, writes


class EvcxrManager:
    def __init__(self, work):
        self.work = work
        self.proc = None          # evcxr (an Adopted one from the pool)
        self.backend_file = None  # its connection file, when this relay started it
        self.warm = None          # (pool entry, claim file) of an adopted evcxr
        self.lock_kept = False    # the work directory's Cargo.lock put aside (launch.keep_lock)

    def start(self, argv, env, key, signature_scheme):
        """evcxr started on a connection file of its own; returns its connection (ports)."""
        # in a folder of its own (jupyter_client writes it afresh, 0600): the slot's folder
        # is not writable in the grading sandbox (deploy/Dockerfile)
        path = os.path.join(tempfile.mkdtemp(prefix="mlp-kernel-"), "evcxr-connection.json")
        keep_lock(self.work)
        self.lock_kept = True  # put back at evcxr's first reply (restore_lock)
        self.proc, backend = launch_evcxr(path, key, signature_scheme, argv, env=env,
                                          stderr=subprocess.PIPE, close_fds=False)
        self.backend_file = path
        os.set_blocking(self.proc.stderr.fileno(), False)
        return backend

    def adopt(self, entry, claim):
        """A warm evcxr from the pool (pool.py); returns its connection (ports)."""
        self.warm = (entry, claim)
        self.proc = Adopted(entry["pid"])
        self.backend_file = None
        with open(entry["connection"]) as f:
            return json.load(f)

    def restore_lock(self):
        """At evcxr's first reply (it has started, so its start no longer empties the lock),
        the Cargo.lock kept before it started goes back (launch.restore_lock)."""
        if self.lock_kept:
            self.lock_kept = False
            restore_lock(self.work)

    def stderr_fd(self):
        """evcxr's standard error when this relay started it (a pool's writes to its slot's
        evcxr.log), or None."""
        return self.proc.stderr.fileno() if self.proc and self.proc.stderr else None

    def pass_on_stderr(self):
        """What evcxr wrote on its standard error, onto the relay's."""
        fd = self.stderr_fd()
        if fd is None:
            return
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            return
        if data:
            sys.stderr.buffer.write(data)
            sys.stderr.flush()

    def cell_process_writes(self):
        """(pid, (write calls, bytes)) of evcxr's process that runs the cells, or None."""
        pid = self.proc and cell_process(self.proc.pid)
        counts = pid and writes(pid)
        return (pid, counts) if counts else None

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
