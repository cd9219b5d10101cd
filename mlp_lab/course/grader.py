"""The grader account: whatever reads what students wrote runs as it, never as root.

    python -m mlp_lab.course.grader [--course DIR] [--give DIR]... COMMAND [ARG...]

runs COMMAND as the grader account (made first if missing), the way make autograde's
nbgrader steps and the tests run them: root only sets the account up, then hands over
with util-linux's `runuser`. make hub's course service (Formgrader) runs as it too, through
JupyterHub's own `user` setting of a service (deploy/jupyterhub_config.py).

The account (`MLP_GRADER`, default `mlp-grader`) is a system user with no login shell and
no password, its home in /var/lib/mlp-grader. It owns the course folder's gradebook and
what nbgrader writes there, the course's folder of the exchange (so collect reads what
students hand in through the group nbgrader's set-group-ID inbound gives it, and releases
feedback readable by its student alone through an ACL, mlp_lab/course/private_feedback.py), and a
store of podman's of its own: the grading sandbox is rootless podman (a user namespace in
which the container's root is this account and the student's code a subordinate uid,
`SUBIDS`). On these machines' cgroups v1 rootless podman cannot set limits (it says
"Resource limits are not supported and ignored on cgroups V1 rootless systems"), so root
hands the account a cgroup of its own in the memory, pids and cpu controllers (the
kernel's delegation: the folder is the account's), and each sandbox runs in a child
cgroup with its limits (`sandbox_cgroup`); runc puts the container below it.
"""

import contextlib
import os
import pwd
import shutil
import stat
import subprocess
import sys
import uuid

from mlp_lab import ROOT
from mlp_lab.hub import containers as hub_containers

ACCOUNT = os.environ.get("MLP_GRADER") or "mlp-grader"
HOME = "/var/lib/" + ACCOUNT
SUBIDS = (1000000, 65536)  # the sandbox's uids and gids on the host: far from the students' (20000 + id)
CGROUPS = "/sys/fs/cgroup"
CONTROLLERS = ("memory", "pids", "cpu")
# what nbgrader writes in a course folder (and Formgrader, make autograde, collect)
COURSE_OUTPUTS = ("gradebook.db", "submitted", "autograded", "feedback", "refused", "grades.csv",
                  ".gradebook.lock", ".nbgrader.log", "release", "on_submit")


def account():
    """The account's passwd entry, or None when it does not exist."""
    try:
        return pwd.getpwnam(ACCOUNT)
    except KeyError:
        return None


def is_grader():
    """True in a process of the grader account."""
    entry = account()
    return entry is not None and os.getuid() == entry.pw_uid


def environment(entry=None):
    """The variables a process of the account needs: its home, podman's runtime folder,
    this clone's programs first on PATH."""
    entry = entry or account()
    return {
        "HOME": entry.pw_dir, "USER": ACCOUNT, "LOGNAME": ACCOUNT,
        "XDG_RUNTIME_DIR": "/run/user/%d" % entry.pw_uid,
        "CONTAINERS_CONF": hub_containers.CONTAINERS_CONF,
        "PATH": os.path.join(ROOT, ".venv", "bin") + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
    }


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def make_account():
    """The system account with its subordinate uids and gids and podman's settings for
    it (overlay storage: the kernel's own overlay works in a user namespace here)."""
    if account() is None:
        run(["useradd", "--system", "--user-group", "--home-dir", HOME, "--create-home",
             "--shell", "/usr/sbin/nologin", ACCOUNT])
    entry = account()
    with open("/etc/subuid") as f:
        has = any(line.split(":")[0] == ACCOUNT for line in f)
    if not has:
        ids = "%d-%d" % (SUBIDS[0], SUBIDS[0] + SUBIDS[1] - 1)
        run(["usermod", "--add-subuids", ids, "--add-subgids", ids, ACCOUNT])
    config = os.path.join(entry.pw_dir, ".config", "containers")
    os.makedirs(config, exist_ok=True)
    with open(os.path.join(config, "storage.conf"), "w") as f:
        f.write('[storage]\ndriver = "overlay"\n')
    runtime = "/run/user/%d" % entry.pw_uid
    os.makedirs(runtime, mode=0o700, exist_ok=True)
    for path in (entry.pw_dir, os.path.join(entry.pw_dir, ".config"), config,
                 os.path.join(config, "storage.conf"), runtime):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(runtime, 0o700)
    return entry


def delegate_cgroups(entry):
    """A cgroup of the account's own in each controller the sandbox is limited by."""
    for controller in CONTROLLERS:
        path = os.path.join(CGROUPS, controller, ACCOUNT)
        if not os.path.isdir(os.path.join(CGROUPS, controller)):
            continue
        os.makedirs(path, exist_ok=True)
        for name in [path] + [os.path.join(path, n) for n in os.listdir(path)]:
            if os.path.isfile(name) or name == path:
                os.chown(name, entry.pw_uid, entry.pw_gid)


def grant_passage(path, entry):
    """The account may pass through (not list) every folder above `path` that others
    cannot: an ACL entry of its own on each (a clone in /root, a test's mkdtemp folder)."""
    path = os.path.abspath(path)
    parts = []
    while True:
        parts.append(path)
        if path == os.path.dirname(path):
            break
        path = os.path.dirname(path)
    for folder in parts:
        st = os.stat(folder)
        if not st.st_mode & stat.S_IXOTH and st.st_uid != entry.pw_uid:
            run(["setfacl", "-m", "u:%s:x" % ACCOUNT, folder])


def give(path, entry):
    """`path` and what root made in it become the account's (what another account owns,
    a link, or a file with other names is left as it is)."""
    if not os.path.lexists(path):
        return
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or st.st_uid != 0 or (not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1):
        return
    os.lchown(path, entry.pw_uid, entry.pw_gid)
    if stat.S_ISDIR(st.st_mode):
        for name in os.listdir(path):
            give(os.path.join(path, name), entry)


def give_course(course, entry):
    """The course folder itself (nbgrader writes its gradebook, log and lock there) and
    what nbgrader wrote in it; its configuration and source stay root's."""
    grant_passage(course, entry)
    os.lchown(course, entry.pw_uid, entry.pw_gid)
    for name in COURSE_OUTPUTS:
        give(os.path.join(course, name), entry)


def load_image(entry):
    """The course image in the account's own store of podman's (a copy of root's: a
    rootless store keeps its files under the account's subordinate uids), once per image."""
    image = hub_containers.course_image()
    if not image:
        return
    env, home = dict(os.environ, **environment(entry)), entry.pw_dir  # (the caller's folder may be root's alone)
    if subprocess.run(command(["podman", "image", "exists", image]), env=env, cwd=home).returncode == 0:
        return
    print("grader: copying the course image %s into %s's store (once per image, 1-2 minutes)" % (image, ACCOUNT),
          file=sys.stderr, flush=True)
    save = subprocess.Popen(["podman", "save", image], stdout=subprocess.PIPE, env=hub_containers.podman_env())
    subprocess.run(command(["podman", "load", "--quiet"]), stdin=save.stdout, check=True,
                   stdout=subprocess.DEVNULL, env=env, cwd=home)
    save.stdout.close()
    if save.wait():
        sys.exit("grader: podman save %s failed" % image)
    # the copies of earlier images go (2-3 GB each)
    names = subprocess.run(command(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"]), env=env, cwd=home,
                           capture_output=True, text=True).stdout.split()
    old = [n for n in names if n.split(":")[0] == image.split(":")[0] and n != image]
    if old:
        subprocess.run(command(["podman", "rmi", *old]), env=env, cwd=home, capture_output=True)
        subprocess.run(command(["podman", "image", "prune", "--force"]), env=env, cwd=home, capture_output=True)


def prepare(course=None, gives=(), image=True):
    """Root's part, done before handing over: the account, its cgroups, its way to this
    clone, the course folder's outputs and the folders in `gives`, the course image."""
    if shutil.which("setfacl") is None:
        sys.exit("grader: setfacl is missing (Debian's acl package: make hub-setup installs it)")
    entry = make_account()
    delegate_cgroups(entry)
    # this clone's programs, and the Python they run on (pyenv's, in root's home, say)
    for path in (os.path.join(ROOT, ".venv"), os.path.realpath(sys.executable), sys.base_prefix):
        grant_passage(path, entry)
    if course:
        give_course(course, entry)
    for path in gives:
        os.makedirs(path, exist_ok=True)
        grant_passage(path, entry)
        give(path, entry)
    if image:
        load_image(entry)
    return entry


def command(args, entry=None):
    """`args` run as the account (util-linux's runuser), with its environment."""
    entry = entry or account()
    return ["runuser", "-u", ACCOUNT, "--", "env"] + ["%s=%s" % kv for kv in environment(entry).items()] + list(args)


def become(args, course=None, gives=()):
    """In root: prepares the account and replaces this process with `args` run as it.
    Elsewhere: returns (the caller goes on as itself)."""
    if os.getuid() != 0:
        return
    entry = prepare(course, gives)
    grant_passage(os.getcwd(), entry)  # the command runs where it was started
    sys.stdout.flush()
    sys.stderr.flush()
    keep = {k: v for k, v in os.environ.items() if k.startswith(("MLP_", "PYTHON"))}
    cmd = command(["%s=%s" % kv for kv in keep.items()] + list(args))
    os.execvp(cmd[0], cmd)


@contextlib.contextmanager
def sandbox_cgroup(memory, cpus, pids):
    """A child of the account's cgroups with a sandbox's limits (`memory` as podman writes
    it, `3g`; `cpus`, a number of cores; `pids` processes): yields a function for
    subprocess's preexec_fn that moves the new process (podman, and the container runc
    makes under it) into it; removed afterwards."""
    name = "sandbox-" + uuid.uuid4().hex[:12]
    present = [c for c in CONTROLLERS if os.path.isdir(os.path.join(CGROUPS, c, ACCOUNT))]
    if "memory" not in present:
        raise RuntimeError("the grader account has no cgroup of its own in %s/memory: run the grading as "
                           "root (make autograde), which delegates it" % CGROUPS)
    paths = [os.path.join(CGROUPS, c, ACCOUNT, name) for c in present]
    scale = {"k": 2**10, "m": 2**20, "g": 2**30}.get(memory[-1:].lower(), 1)
    limit = int(float(memory.rstrip("kmgKMG")) * scale)
    settings = {
        "memory": {"memory.limit_in_bytes": limit, "memory.memsw.limit_in_bytes": limit, "memory.swappiness": 0},
        "pids": {"pids.max": pids},
        "cpu": {"cpu.cfs_period_us": 100000, "cpu.cfs_quota_us": int(float(cpus) * 100000)},
    }
    for controller, path in zip(present, paths, strict=True):
        os.mkdir(path)
        for key, value in settings[controller].items():
            if os.path.exists(os.path.join(path, key)):  # (memsw: only with swap accounting)
                with open(os.path.join(path, key), "w") as f:
                    f.write(str(value))

    def enter():
        for path in paths:
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    try:
        yield enter
    finally:
        for path in reversed(paths):
            for sub in sorted((os.path.join(d, n) for d, ns, _ in os.walk(path) for n in ns), reverse=True):
                with contextlib.suppress(OSError):
                    os.rmdir(sub)
            with contextlib.suppress(OSError):
                os.rmdir(path)


def main():
    args, course, gives = sys.argv[1:], None, []
    while args[:1] in (["--course"], ["--give"]):
        if args[0] == "--course":
            course = os.path.abspath(args[1])
        else:
            gives.append(os.path.abspath(args[1]))
        args = args[2:]
    if not args:
        sys.exit(__doc__.split("\n\n")[1])
    become(args, course, gives)
    os.execvp(args[0], args)


if __name__ == "__main__":
    main()
