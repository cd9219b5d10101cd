"""A disk of its own for each student of `make hub`: their home is a fixed-size ext4
filesystem in a file (`<state>/disks/<name>.ext4`, `MLP_HUB_DISK`, default 2G; 0 for none),
mounted on the host at `<state>/homes/<name>` (loop, nosuid, nodev) before their container
starts and unmounted after it stops. A student who fills it fills only it: the hub's
state, the course and the other homes are on other filesystems. The file is sparse: it
takes on the host's disk what the student has written.

Their container's root filesystem is read-only (mlp_lab/hub/containers.py): the home, a
small /tmp on tmpfs (counted in their memory limit) and the course's folder of the
exchange are all they can write, and their kernels' work folders are in their home
(`~/.mlp-kernels`).

This machine's kernel has no disk quotas (CONFIG_QUOTA), so a filesystem per student is
the bound: the established alternatives, per-uid quotas or podman's `--storage-opt size`
(overlay on XFS with project quotas), are not available on these ext4 machines.
"""

import os
import shutil
import subprocess
import tempfile

DEFAULT = "2G"


def size():
    """MLP_HUB_DISK: each student's disk, as `truncate -s` reads it (2G, 1500M), or None
    for no disk of their own."""
    value = os.environ.get("MLP_HUB_DISK", DEFAULT).strip()
    return None if value in ("", "0") else value


def image(state, name):
    return os.path.join(state, "disks", name + ".ext4")


def run(*cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError("%s: %s" % (" ".join(cmd), (out.stderr or out.stdout).strip()))
    return out.stdout


def attach(state, name, home, uid, gid):
    """`home` on the student's own disk (made at their first start): mounted, theirs. A home
    an earlier version made as a plain folder is moved onto the disk."""
    if os.path.ismount(home):
        return
    path = image(state, name)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        run("truncate", "-s", size(), path + ".new")
        run("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "root_owner=%d:%d" % (uid, gid), path + ".new")
        os.rename(path + ".new", path)
    before = None
    if os.path.isdir(home) and os.listdir(home):
        before = tempfile.mkdtemp(prefix=name + ".", dir=os.path.dirname(home))
        os.rename(home, os.path.join(before, "home"))
    os.makedirs(home, exist_ok=True)
    # the folder under the mount is theirs too: collect reads a student's uid from it
    # (mlp_lab/course/exchange.py, home_owner) while their disk is not mounted
    os.chown(home, uid, gid)
    run("mount", "-o", "loop,nosuid,nodev", path, home)
    lost = os.path.join(home, "lost+found")
    if os.path.isdir(lost) and not os.listdir(lost):
        os.rmdir(lost)
    if before:
        run("cp", "-a", os.path.join(before, "home") + "/.", home)
        shutil.rmtree(before)


def detach(home):
    """The student's disk unmounted (their container has stopped); lazily if something on
    the host still holds it."""
    if os.path.ismount(home):
        if subprocess.run(["umount", home], capture_output=True).returncode:
            subprocess.run(["umount", "-l", home], capture_output=True)


def mounted(state):
    """The students' disks of this hub's state folder still mounted."""
    homes = os.path.join(os.path.abspath(state), "homes") + os.sep
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(homes)]
