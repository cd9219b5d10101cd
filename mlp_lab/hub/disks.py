"""A disk of its own for each student of `make hub`, two of them:

- their home is a fixed-size ext4 filesystem in a file (`<state>/disks/<name>.ext4`,
  `MLP_HUB_DISK`, default 2G; 0 for none), mounted on the host at `<state>/homes/<name>`
  (loop, nosuid, nodev) before their container starts and unmounted after it stops;
- their inbound, where nbgrader's submit puts what they hand in, is another
  (`<state>/disks/inbound/<name>.ext4`, `MLP_HUB_INBOUND`, default 64M; 0 for a plain
  folder), mounted on the host at `<state>/inbound/<name>` (loop, nosuid, nodev, noexec),
  the grader account's with nbgrader's inbound mode (3733), and mounted in their container
  alone at the exchange's `inbound/` (mlp_lab/hub/containers.py). It stays mounted while
  the hub runs, since the grader reads it whether or not the student's server runs
  (collect, grading on hand-in: mlp_lab/course/exchange.py, `inbounds`), and is unmounted
  when the hub stops.

A student who fills either fills only it: the hub's state, the course, the gradebook, the
other homes and inbounds are on other filesystems. The files are sparse: each takes on
the host's disk what the student has written, and ext4's own structures (an empty 64M
inbound takes 4.4 MB, docs/performance.md).

Their container's root filesystem is read-only (mlp_lab/hub/containers.py): the home, the
inbound, a small /tmp on tmpfs (counted in their memory limit) are all they can write, and
their kernels' work folders are in their home (`~/.mlp-kernels`).

This machine's kernel has no disk quotas (CONFIG_QUOTA), so a filesystem per student is
the bound: the established alternatives, per-uid quotas or podman's `--storage-opt size`
(overlay on XFS with project quotas), are not available on these ext4 machines.
"""

import os
import shutil
import subprocess
import tempfile

DEFAULT = "2G"
# the four notebooks handed in with their outputs take 1.6 MB; 64M holds 35 such
# hand-ins (each is a folder of its own that nbgrader never removes) and one at collect's
# limit (MLP_GRADE_MAX_MB, 50): docs/performance.md
INBOUND_DEFAULT = "64M"
HOME_OPTIONS = "nosuid,nodev"
INBOUND_OPTIONS = "nosuid,nodev,noexec"  # nothing there is ever run
INBOUND_MODE = 0o3733  # nbgrader's: written, not listed; sticky; set-group-ID (the grader's group)


def setting(name, default):
    """A disk's size from the environment, as `truncate -s` reads it (2G, 1500M), or None
    for no disk of their own (`0`)."""
    value = os.environ.get(name, default).strip()
    return None if value in ("", "0") else value


def size():
    """MLP_HUB_DISK: each student's home disk, or None for a plain folder."""
    return setting("MLP_HUB_DISK", DEFAULT)


def inbound_size():
    """MLP_HUB_INBOUND: each student's inbound disk, or None for a plain folder."""
    return setting("MLP_HUB_INBOUND", INBOUND_DEFAULT)


def image(state, name):
    return os.path.join(state, "disks", name + ".ext4")


def inbound_images(state):
    """The folder of the students' inbound disk images: one `<name>.ext4` in it each."""
    return os.path.join(state, "disks", "inbound")


def inbound_image(state, name):
    return os.path.join(inbound_images(state), name + ".ext4")


def inbound_root(state):
    """The folder of the students' inbounds on the host: one `<name>` in it each."""
    return os.path.join(state, "inbound")


def inbound_dir(state, name):
    return os.path.join(inbound_root(state), name)


def run(*cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError("%s: %s" % (" ".join(cmd), (out.stderr or out.stdout).strip()))
    return out.stdout


def mount_disk(path, at, disk_size, owner, options, mode=None):
    """The ext4 filesystem in the file `path` (made `disk_size`, sparse, its root `owner`'s,
    when missing) mounted at `at` (loop, `options`), its root with `mode`; the folder under
    the mount `owner`'s too. Returns False when something is mounted there already."""
    if os.path.ismount(at):
        return False
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        run("truncate", "-s", disk_size, path + ".new")
        run("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "root_owner=%d:%d" % owner, path + ".new")
        os.rename(path + ".new", path)
    os.makedirs(at, exist_ok=True)
    os.chown(at, *owner)
    if mode is not None:
        os.chmod(at, 0o700)  # the folder under the mount: no one's way in while it is not mounted
    run("mount", "-o", "loop," + options, path, at)
    lost = os.path.join(at, "lost+found")
    if os.path.isdir(lost) and not os.listdir(lost):
        os.rmdir(lost)
    if mode is not None:
        os.chmod(at, mode)
    return True


def attach(state, name, home, uid, gid):
    """`home` on the student's own disk (made at their first start): mounted, theirs. A home
    an earlier version made as a plain folder is moved onto the disk."""
    if os.path.ismount(home):
        return
    before = None
    if os.path.isdir(home) and os.listdir(home):
        before = tempfile.mkdtemp(prefix=name + ".", dir=os.path.dirname(home))
        os.rename(home, os.path.join(before, "home"))
    # the folder under the mount is theirs too: collect reads a student's uid from it
    # (mlp_lab/course/exchange.py, home_owner) while their disk is not mounted
    mount_disk(image(state, name), home, size(), (uid, gid), HOME_OPTIONS)
    if before:
        run("cp", "-a", os.path.join(before, "home") + "/.", home)
        shutil.rmtree(before)


def attach_inbound(state, name, grader):
    """The student's inbound (`inbound_dir`), the grader's (`grader`: its uid and gid) with
    nbgrader's mode: on a disk of its own (made at their first start) when MLP_HUB_INBOUND
    is not 0, else a plain folder. Returns its path."""
    at = inbound_dir(state, name)
    os.makedirs(inbound_root(state), exist_ok=True)
    os.chown(inbound_root(state), 0, grader[1])  # root's; the grader may list it, no one else
    os.chmod(inbound_root(state), 0o750)
    if inbound_size():
        mount_disk(inbound_image(state, name), at, inbound_size(), grader, INBOUND_OPTIONS, INBOUND_MODE)
    else:
        os.makedirs(at, exist_ok=True)
        os.chown(at, *grader)
        os.chmod(at, INBOUND_MODE)
    return at


def attach_inbounds(state, grader):
    """Every student's inbound disk made before (at their first start) mounted: collect and
    grading on hand-in read them whether or not the student's server runs. Returns those
    mounted now (the others were already)."""
    folder = inbound_images(state)
    names = sorted(n[:-5] for n in os.listdir(folder) if n.endswith(".ext4")) if os.path.isdir(folder) else []
    names = [name for name in names if not os.path.ismount(inbound_dir(state, name))]
    return [attach_inbound(state, name, grader) for name in names]


def detach(home):
    """A student's disk unmounted (their container has stopped, or the hub); lazily if
    something on the host still holds it."""
    if os.path.ismount(home):
        if subprocess.run(["umount", home], capture_output=True).returncode:
            subprocess.run(["umount", "-l", home], capture_output=True)


def detach_inbounds(state):
    """Every student's inbound disk unmounted (the hub stops)."""
    for path in mounted(state):
        if path.startswith(inbound_root(os.path.abspath(state)) + os.sep):
            detach(path)


def mounted(state):
    """The students' disks of this hub's state folder still mounted (homes and inbounds)."""
    state = os.path.abspath(state)
    places = tuple(os.path.join(state, part) + os.sep for part in ("homes", "inbound"))
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(places)]
