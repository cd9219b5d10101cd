"""Starting evcxr: on a connection file of its own, ended with its parent; and a pool's
evcxr (started by the pool, ended by the relay that claimed it) as a process object; the
Cargo.lock its start empties; what its cell process has written."""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time

from .home import EVCXR


def write_private(path, text):
    """A file only this user can read (evcxr's connection file: Jupyter's format, with the
    key that signs its messages), written as jupyter_client's write_connection_file does,
    which the pool's process does not import (15 MB of modules)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def process_state(pid):
    """R, S, Z... of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid):
    return process_state(pid) not in (None, "Z", "X")


def cell_process(pid):
    """The pid of evcxr's (`pid`'s) process that runs the cells and holds the variables: its
    child of the same program (cargo and rustc come and go beside it); None if not found."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            comm = f.read()
        children = []
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                children += f.read().split()
        for child in children:
            with open("/proc/%s/comm" % child) as f:
                if f.read() == comm:
                    return int(child)
    except (OSError, ValueError):
        pass
    return None


def writes(pid):
    """(write calls, bytes written) so far by a process (/proc/PID/io), or None."""
    try:
        with open("/proc/%d/io" % pid) as f:
            fields = dict(line.split(": ", 1) for line in f.read().splitlines())
        return int(fields["syscw"]), int(fields["wchar"])
    except (OSError, KeyError, ValueError):
        return None


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


PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def backend_ports():
    """Five free loopback ports for evcxr, from below the ephemeral range. Jupyter picks a
    kernel's ports by binding port 0, so from that range, and the relay binds them a moment
    later; evcxr's ports drawn from there could take one of them in between (the relay then
    failed with EADDRINUSE when three kernels started at once)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    low = max(low, 2048)
    ports = []
    for port in random.sample(range(low // 2, low), 64):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == len(PORT_NAMES):
            return dict(zip(PORT_NAMES, ports, strict=True))
    raise OSError("no free loopback port for evcxr below %d (ip_local_port_range)" % low)


def launch_evcxr(path, key, signature_scheme, argv, **popen):
    """evcxr on a connection file of its own at `path` (loopback ports, this key):
    (process, the connection's settings). A port taken by another kernel's evcxr in the
    meantime makes evcxr exit at once: then new ports, up to three times."""
    for _attempt in range(3):
        backend = dict(backend_ports(), ip="127.0.0.1", key=key, signature_scheme=signature_scheme,
                       transport="tcp", kernel_name="")
        write_private(path, json.dumps(backend, indent=1))
        proc = subprocess.Popen(argv + ["--control_file", path], preexec_fn=die_with_parent, **popen)
        time.sleep(0.3)
        if proc.poll() is None:
            break
    return proc, backend


def kept_lock(work):
    return os.path.join(work, "Cargo.lock.kept")  # (cargo and evcxr leave other files alone)


def locked_packages(path):
    try:
        with open(path) as f:
            return f.read().count("[[package]]")
    except OSError:
        return 0


def keep_lock(work):
    """The work directory's Cargo.lock, put aside before evcxr starts. evcxr's start builds
    a cell with no dependencies, and cargo then drops every other package from the lock; the
    first `:dep` resolved mlp-core's ~140 packages again against the crates.io index (1.2-1.9 s
    on the network at every kernel start, each package's index entry asked for afresh)."""
    lock = os.path.join(work, "Cargo.lock")
    if locked_packages(lock) > 1:
        copy(lock, kept_lock(work))


def restore_lock(work):
    """The kept Cargo.lock back, once evcxr has started (it answers requests only then) and
    before its first cell: cargo takes the locked versions without asking the index, and
    resolves only what a `:dep` adds (locked packages it no longer needs, it drops)."""
    kept, lock = kept_lock(work), os.path.join(work, "Cargo.lock")
    if locked_packages(kept) > locked_packages(lock):
        copy(kept, lock)


def copy(source, target):
    """A file copied whole into place (one that cannot be only leaves the first `:dep` to
    the index, as evcxr alone would)."""
    try:
        shutil.copyfile(source, target + ".new")
        os.replace(target + ".new", target)
    except OSError:
        pass


def die_with_parent():
    """evcxr ends when the relay does (Linux's PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass
