"""Starting evcxr: on a connection file of its own, ended with its parent; and a pool's
evcxr (started by the pool, ended by the relay that claimed it) as a process object."""

import json
import os
import signal
import subprocess
import time

from jupyter_client.connect import write_connection_file

from .home import EVCXR


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
