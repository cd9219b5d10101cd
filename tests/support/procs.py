"""The processes of this machine as /proc shows them: parents, memory, environment,
command line; the single-user servers of a hub's student and what they started."""

import os

from mlp_lab.kernel.home import kernel_home
from mlp_lab.kernel.pool import claimed_kernels


def processes():
    """{pid: (ppid, rss bytes, environ text, cmdline)} of every process readable."""
    table = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().decode("utf-8", "replace")
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            table[int(pid)] = (int(fields[1]), int(fields[21]) * page, env, cmd)
        except (OSError, IndexError, ValueError):
            continue
    return table


def adopted():
    """{relay pid: evcxr pid} of the kernels running a warm evcxr of the pool (whose
    parent is the pool, not the student's server)."""
    return {relay: entry["pid"] for _, relay, entry in claimed_kernels(kernel_home())}


def tree_pids(table, root, extra=None):
    """root and its descendants, with `extra`'s adopted processes ({pid: pid}) and theirs."""
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            found.append(pid)
            stack.extend(p for p, v in table.items() if v[0] == pid)
            if extra and pid in extra:
                stack.append(extra[pid])
    return found


def tree_rss(table, root, extra=None):
    return sum(table[pid][1] for pid in tree_pids(table, root, extra))


def pss(pid):
    """A process's proportional set size (bytes): each page it shares counted in part (its
    share among every process mapping it), 0 once gone."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


def server_pids(table, user):
    """The single-user servers of `user` (their environment names the user)."""
    return [pid for pid, v in table.items() if "JUPYTERHUB_USER=%s\0" % user in v[2] + "\0"
            and "jupyterhub-singleuser" in v[3]]


def descendants(table, root):
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        children = [p for p, v in table.items() if v[0] == pid]
        out.extend(children)
        stack.extend(children)
    return out

