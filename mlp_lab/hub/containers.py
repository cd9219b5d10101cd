"""One container per student for deploy/jupyterhub_config.py: JupyterHub's DockerSpawner
talking to podman's Docker-compatible API, which the hub starts on a socket in its state
folder and which ends with the hub.

The walls are podman's: each student's server and kernels run under a uid of their own
(20000 + their id in the hub's database) in a container of the course image with its
own process, mount and network namespaces, only their own home, the course's folder
of nbgrader's exchange (read-only) and in it their own inbound mounted, a memory limit
(no swap past it), a CPU limit, a process limit, no capabilities and no privilege gain.
The hub and its proxy stay outside: the proxy reaches a student's server through a port
published on 127.0.0.1; a server reaches the hub's API through the gateway of the
class's own podman network (`mlp-class`).
"""

import atexit
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time

from mlp_lab import ROOT
from mlp_lab.hub import disks
from mlp_lab.kernel.launch import die_with_parent  # the podman service ends with the hub

CONTAINERS_CONF = os.path.join(ROOT, "deploy", "containers.conf")
NETWORK = "mlp-class"
USER_GID = 100  # users, jovyan's group in the course image (deploy/Dockerfile)
UID_BASE = 20000  # a student's uid: this plus their id in the hub's database
COURSE_ID = "mlp-lab"  # course/nbgrader_config.py's course_id: the exchange's folder
EXCHANGE = "/srv/nbgrader/exchange"  # nbgrader's default exchange root, in each container
IMAGE_MLP_CORE = "/opt/mlp-lab/mlp-core"  # where the image has mlp-core
IMAGE_KERNEL_HOME = "/opt/mlp-kernels"  # and the kernels' home (MLP_KERNEL_HOME there)
STUDENT_KERNEL_HOME = "/home/jovyan/.mlp-kernels"  # a student's kernels' home in their container


def podman_env():
    return dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)


def course_image():
    """The course image's name: MLP_HUB_IMAGE, or the one `make image` built."""
    if os.environ.get("MLP_HUB_IMAGE"):
        return os.environ["MLP_HUB_IMAGE"]
    try:
        with open(os.path.join(ROOT, ".tools", "course-image")) as f:
            return f.read().strip()
    except OSError:
        return None


def missing_piece():
    """Why containers cannot run here, or None."""
    if shutil.which("podman") is None:
        return "podman is not installed (Debian: apt-get install podman runc; make hub installs them as root)"
    if os.getuid() != 0:
        return ("podman runs the students' containers as root on these machines (runc, cgroupfs): "
                "run make hub as root")
    image = course_image()
    if not image:
        return "the course image is not built: run make image (make hub does)"
    if subprocess.run(["podman", "image", "exists", image], env=podman_env()).returncode != 0:
        return "the course image %s is not in podman's store: run make image" % image
    return None


def start_podman_api(state):
    """`podman system service` on <state>/podman.sock, a child of the hub: its URL."""
    path = os.path.join(state, "podman.sock")
    if os.path.exists(path):
        os.unlink(path)
    log = open(os.path.join(state, "podman.log"), "ab")
    # a session of its own: Ctrl-C on `make hub` reaches the hub's process group, and the
    # hub needs this service to stop the students' containers before it exits (it ends
    # when the hub has: die_with_parent)
    subprocess.Popen(["podman", "system", "service", "--time=0", "unix://" + path], env=podman_env(),
                     stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent, start_new_session=True)
    for _ in range(100):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
            os.chmod(path, 0o600)  # root's podman is root: its socket is root's alone
            return "unix://" + path
        except OSError:
            time.sleep(0.1)
    sys.exit("podman's API did not answer on %s (see %s)" % (path, log.name))


def class_network():
    """The class's podman network (made if missing) and its gateway: the address at which
    a student's server reaches the hub, and the only address the hub's API listens on.

    netavark makes the network's bridge when a container first joins it and deletes it
    when the last one leaves; the hub binds its API to the gateway before any container
    runs and must go on answering there between classes. So the bridge is made here as
    netavark would make it (its name, the gateway's address), with one end of a veth pair
    of ours on it (`<bridge>k`): netavark uses a bridge that exists and keeps one that still
    has a port."""
    env = podman_env()

    def inspect():
        return json.loads(subprocess.run(["podman", "network", "inspect", NETWORK], env=env, check=True,
                                         capture_output=True, text=True).stdout)[0]

    if subprocess.run(["podman", "network", "exists", NETWORK], env=env).returncode == 0 and inspect().get(
            "dns_enabled"):
        # made by an earlier version with podman's DNS server: made again without (fails, and
        # is kept, while a container uses it)
        subprocess.run(["podman", "network", "rm", NETWORK], env=env, capture_output=True)
    if subprocess.run(["podman", "network", "exists", NETWORK], env=env).returncode != 0:
        # no DNS: a student's container needs no names, and no DNS server outlives the class
        subprocess.run(["podman", "network", "create", "--disable-dns", NETWORK], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    info = inspect()
    bridge, subnet = info["network_interface"], info["subnets"][0]
    gateway, prefix = subnet["gateway"], subnet["subnet"].split("/")[1]
    keep = (bridge + "k")[:15]

    def ip(*args):
        return subprocess.run(["ip", *args], capture_output=True, text=True)

    if ip("link", "show", bridge).returncode != 0:
        ip("link", "add", bridge, "type", "bridge")
    if gateway not in ip("-o", "addr", "show", "dev", bridge).stdout:
        ip("addr", "add", "%s/%s" % (gateway, prefix), "dev", bridge)
    if ip("link", "show", keep).returncode != 0:
        ip("link", "add", keep, "type", "veth", "peer", "name", keep[:14] + "p")
        ip("link", "set", keep, "master", bridge)
    for name in (bridge, keep, keep[:14] + "p"):
        ip("link", "set", name, "up")
    if gateway not in ip("-o", "addr", "show", "dev", bridge).stdout:
        sys.exit("make hub: the class network's bridge %s has no address %s (ip: %s)"
                 % (bridge, gateway, ip("-o", "addr", "show", "dev", bridge).stderr.strip()))
    return gateway


def remove_stale(state):
    """The containers a hub of this state folder left (the hub was killed, or the
    machine stopped): removed before the hub starts, their homes kept."""
    env = podman_env()
    names = subprocess.run(["podman", "ps", "-a", "--format", "{{.Names}}", "--filter",
                            "name=^%s-" % container_prefix(state)], env=env, capture_output=True,
                           text=True).stdout.split()
    if names:
        print("make hub: removing %d containers a hub left running: %s" % (len(names), " ".join(names)),
              file=sys.stderr, flush=True)
        subprocess.run(["podman", "rm", "--force", "--time", "5", *names], env=env, capture_output=True)


def container_prefix(state):
    """The names of a hub's containers start with this (one per state folder, so that a
    test's hub and a class's never share a name)."""
    return "mlp-%s" % hashlib.sha256(os.path.abspath(state).encode()).hexdigest()[:6]


def container_name(state, user):
    """A student's container (DockerSpawner's name template, "{prefix}-{username}")."""
    return "%s-%s" % (container_prefix(state), user)


def hub_uid(spawner):
    """A uid of the student's own, the same at every start: on the host, it owns their
    home and what they hand in to the exchange (mlp_lab/course/collect.py checks it)."""
    return UID_BASE + spawner.user.id


def make_exchange(state, owner):
    """The course's folder of nbgrader's file exchange, made before any student's
    container mounts it, with nbgrader's modes (release_assignment's): `outbound/`
    readable by all, `feedback/` reachable but not listable. `inbound/` is where each
    student's container mounts their own inbound (mlp_lab/hub/disks.py: nbgrader's mode
    3733 there, written but not listed, sticky, set-group-ID so that what is handed in has
    the grader's group); this folder under it is the grader's alone (0700: should a
    student's own not be mounted, their submit fails rather than writing here; an earlier
    version's shared inbound, whose submissions collect still reads). Owned by the grader
    account (`owner`, its uid and gid: mlp_lab/course/grader.py), so that no student can
    make it theirs first; what an earlier hub made as root becomes the grader's (the
    students' own entries stay theirs)."""
    course = os.path.join(state, "exchange", COURSE_ID)
    for path, mode in ((os.path.dirname(course), 0o1777), (course, 0o755), (os.path.join(course, "outbound"), 0o755),
                       (os.path.join(course, "inbound"), 0o700), (os.path.join(course, "feedback"), 0o711)):
        os.makedirs(path, exist_ok=True)
        if path != os.path.dirname(course):
            os.lchown(path, *owner)
        os.chmod(path, mode)
    for part in ("outbound", "feedback"):
        for folder, names, files in os.walk(os.path.join(course, part)):
            for name in names + files:
                if os.lstat(os.path.join(folder, name)).st_uid == 0:
                    os.lchown(os.path.join(folder, name), *owner)
    return course


def configure(c, state, pool, pool_dep, grader):
    problem = missing_piece()
    if problem:
        sys.exit("make hub: cannot give each student a container of their own: %s.\n"
                 "To serve the class without walls between students (each student's code can then read and "
                 "change every other student's files and read the hub's secrets), set MLP_HUB_ISOLATION=none."
                 % problem)
    homes = os.path.join(state, "homes")
    gateway = class_network()
    api_port = c.JupyterHub.hub_port
    # the hub's API listens on the class network's gateway alone, where the servers, the
    # proxy and the hub's services reach it (nothing on the machine's other addresses)
    c.JupyterHub.hub_ip = gateway
    c.JupyterHub.hub_connect_ip = gateway
    c.Spawner.hub_connect_url = "http://%s:%d" % (gateway, api_port)
    remove_stale(state)

    c.JupyterHub.spawner_class = "docker"
    c.DockerSpawner.client_kwargs = {"base_url": start_podman_api(state)}
    c.DockerSpawner.image = course_image()
    c.DockerSpawner.pull_policy = "never"
    c.DockerSpawner.remove = True  # the container goes with the server; the home stays
    c.DockerSpawner.prefix = container_prefix(state)
    c.DockerSpawner.network_name = NETWORK
    c.DockerSpawner.use_internal_ip = False
    c.DockerSpawner.host_ip = "127.0.0.1"
    # the exchange's course folder read-only (nothing of it is a student's to write), and in
    # it their own inbound, mounted in no other container (mlp_lab/hub/disks.py)
    course = "%s/%s" % (EXCHANGE, COURSE_ID)
    c.DockerSpawner.volumes = {os.path.join(homes, "{username}"): "/home/jovyan",
                               make_exchange(state, grader): {"bind": course, "mode": "ro"},
                               disks.inbound_dir(state, "{username}"): course + "/inbound"}
    c.DockerSpawner.extra_create_kwargs = lambda spawner: {"user": "%d:%d" % (hub_uid(spawner), USER_GID)}
    c.DockerSpawner.notebook_dir = "/home/jovyan"
    mem = os.environ.get("MLP_HUB_MEM", "3G")
    cpus = float(os.environ.get("MLP_HUB_CPUS", "1"))
    c.DockerSpawner.mem_limit = mem
    c.DockerSpawner.cpu_limit = cpus
    c.DockerSpawner.extra_host_config = {
        "memswap_limit": mem,  # no swap past the limit: a runaway allocation is stopped there
        "pids_limit": 1024,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        # nothing written outside the student's own disk but small tmpfs folders (in their
        # memory limit): the image's files stay as they are (mlp_lab/hub/disks.py)
        "read_only": True,
        "tmpfs": {"/tmp": "rw,nosuid,nodev,size=256m,mode=1777", "/var/tmp": "rw,nosuid,nodev,size=64m,mode=1777",
                  # (nbgrader wants its exchange root writable; the course's folder is mounted in it)
                  EXCHANGE: "rw,nosuid,nodev,size=1m,mode=1777"},
    }
    threads = str(max(1, int(cpus)))
    c.DockerSpawner.environment = {
        "HOME": "/home/jovyan",
        # nothing of the student's home runs in their server as it starts: no ~/.jupyter
        # configuration (Spawner.disable_user_config) and no user site-packages (a .pth file)
        "PYTHONNOUSERSITE": "1",
        "MLP_POOL": str(pool),
        "MLP_POOL_DEP": pool_dep,
        # the kernels' work folders on the student's own disk, each a copy of the image's
        # prebuilt template (kept across restarts of their server)
        "MLP_KERNEL_HOME": STUDENT_KERNEL_HOME,
        "MLP_KERNEL_TEMPLATE": IMAGE_KERNEL_HOME + "/slots/template",
        # the numeric libraries' threads: the cores this container may use
        "OPENBLAS_NUM_THREADS": threads,
        "RAYON_NUM_THREADS": threads,
    }

    # every student's inbound mounted while the hub runs (the grader reads them whether or not
    # their server runs); unmounted as the hub exits, after JupyterHub has stopped the servers
    # and services (its cleanup, on Ctrl-C or SIGTERM, runs before Python's atexit). A hub that
    # was killed left them mounted: this one finds them so and uses them.
    disks.attach_inbounds(state, grader)
    atexit.register(disks.detach_inbounds, state)

    def make_home(spawner):
        """The student's home, theirs alone (their uid, 0700), on a disk of its own
        (MLP_HUB_DISK, mlp_lab/hub/disks.py); a home made by an earlier version for another
        uid is given to them, with everything in it. And their inbound, on a disk of its own
        (MLP_HUB_INBOUND): their container does not start without it."""
        disks.attach_inbound(state, spawner.escaped_name, grader)
        home = os.path.join(homes, spawner.escaped_name)
        uid = hub_uid(spawner)
        os.makedirs(home, exist_ok=True)
        if disks.size():
            disks.attach(state, spawner.escaped_name, home, uid, USER_GID)
        if os.stat(home).st_uid != uid:
            for path in [home] + [os.path.join(d, n) for d, ds, fs in os.walk(home) for n in ds + fs]:
                os.lchown(path, uid, USER_GID)
        os.chmod(home, 0o700)

    def unmount_home(spawner):
        disks.detach(os.path.join(homes, spawner.escaped_name))

    c.Spawner.pre_spawn_hook = make_home
    c.Spawner.post_stop_hook = unmount_home
