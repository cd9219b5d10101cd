"""The course's JupyterHub (deploy/jupyterhub_config.py) started for a test: on a free
loopback port, with a scratch state folder, an admin service token, and (`test_auth`)
JupyterHub's shared-password authenticator; students in containers of the course image
(make hub's default) or all as this user (MLP_HUB_ISOLATION=none)."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

import nbformat

from mlp_lab.hub import containers as hub_containers
from mlp_lab.hub import disks
from mlp_lab.kernel.home import kernel_home
from mlp_lab.kernel.pool import dep_lines, ready_kernels
from support import ROOT, VENV_BIN, until
from support.http import free_port, request, server_url, service_url, subdomain
from support.procs import adopted, processes

OUT = os.path.join(ROOT, "target", "hub")
NOTEBOOK = os.path.join(ROOT, "notebooks", "02_toy_network.ipynb")
PASSWORD = "hub-test-%s" % uuid.uuid4().hex[:12]
TOKEN = uuid.uuid4().hex
CONTAINERS = os.environ.get("MLP_HUB_ISOLATION", "containers") == "containers"
MLP_CORE = hub_containers.IMAGE_MLP_CORE if CONTAINERS else os.path.join(ROOT, "mlp-core")


# --- a notebook through the hub's proxy -------------------------------------------------------
def solved_cells():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = cell.source.replace('path = "../mlp-core"', 'path = "%s"' % MLP_CORE)
            cell.outputs = []
    return nb


class Hub:
    """A running hub: its URLs, state folder and process; the admin's API calls."""

    def __init__(self, test_auth=True, pool=4, env=None):
        self.port = free_port()
        self.pool = pool
        self.pool_on_host = pool and not CONTAINERS  # in containers, each student's own
        # the hub's origin; each student's server and each service on one of their own
        # (server(), service())
        self.base = "http://hub.localhost:%d" % self.port
        self.api = self.base + "/hub/api"
        self.state = tempfile.mkdtemp(prefix="mlp-hub-test-")
        os.makedirs(OUT, exist_ok=True)
        env = dict(os.environ, MLP_HUB_PORT=str(self.port), MLP_HUB_API_PORT=str(free_port()),
                   MLP_HUB_STATE=self.state, MLP_HUB_TEST_TOKEN=TOKEN, MLP_HUB_POOL=str(pool), **(env or {}))
        if test_auth:
            env["MLP_HUB_TEST_PASSWORD"] = PASSWORD
            # the warm kernels run the solved notebook's `:dep` line (the student
            # edition's, in make hub): the one this test's notebook starts with
            env["MLP_HUB_POOL_DEP"] = "\n".join(dep_lines(solved_cells()))
        self.log = open(os.path.join(OUT, "hub.log" if test_auth else "hub-browser.log"), "w")
        self.proc = subprocess.Popen([os.path.join(VENV_BIN, "jupyterhub"), "-f",
                                      os.path.join(ROOT, "deploy", "jupyterhub_config.py")],
                                     cwd=self.state, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

        def answers():
            if self.proc.poll() is not None:
                raise SystemExit("the hub exited (%s); see target/hub/hub.log" % self.proc.returncode)
            return request(self.api + "/")[0] == 200

        if until(answers, 120):
            return
        self.stop()
        raise SystemExit("the hub did not answer; see target/hub/hub.log")

    def release(self, course=None):
        """The instructor's release of the student edition into this hub's exchange
        (`nbgrader release_assignment`, as Formgrader's Release button runs it): each
        student's server fetches it into ~/mlp as it starts."""
        if course is None:
            course = os.path.join(ROOT, "course")
        # (as the grader account, whose the exchange is: mlp_lab/course/grader.py)
        out = subprocess.run([sys.executable, "-m", "mlp_lab.course.grader", "--course", course,
                              os.path.join(VENV_BIN, "nbgrader"), "release_assignment", "mlp", "--force"],
                             cwd=course, env=dict(os.environ, MLP_HUB_STATE=self.state), capture_output=True, text=True)
        if out.returncode:
            raise SystemExit("nbgrader release_assignment failed:\n" + out.stderr[-2000:])

    def wait_for_pool(self, t):
        """A warm machine: the pool's kernels all ready (the hub's pool; in containers,
        each student's pool starts with their server)."""
        if not self.pool_on_host:
            return
        start = time.time()
        until(lambda: len(ready_kernels(kernel_home())) >= self.pool, 600, step=1)
        n = len(ready_kernels(kernel_home()))
        t.check("the kernel pool has %d warm kernels ready (%.0f s)" % (self.pool, time.time() - start),
                n >= self.pool, n)

    def origin(self, user):
        return subdomain(self.base, user)

    def server(self, user):
        return server_url(self.base, user)

    def service(self, name="course"):
        return service_url(self.base, name)

    def call(self, path, method="GET", body=None, token=TOKEN):
        return request(self.api + path, token, method, body)

    def start_server(self, user):
        status, body = self.call("/users/%s/server" % user, "POST", {})
        if status not in (201, 202):
            raise RuntimeError("starting %s's server: %s %s" % (user, status, body))
        if until(lambda: (self.call("/users/%s" % user)[1] or {}).get("servers", {}).get("", {}).get("ready"),
                 120, step=0.2):
            return
        raise RuntimeError("%s's server did not become ready" % user)

    def stop(self):
        """As Ctrl-C on `make hub` stops it: SIGINT to the hub's whole process group (the
        hub stops the students' containers and the proxy, its podman service outlives the
        signal until then); then whatever of the group is left. Returns the containers
        running before and after."""
        before = self.containers()
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(90)
        except subprocess.TimeoutExpired:
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(2)
        self.proc.wait(10)
        after = self.containers()
        if CONTAINERS:
            print("  SIGINT to the hub's process group (Ctrl-C on make hub): %d student containers before, %d after%s"
                  % (len(before), len(after), (": " + " ".join(after)) if after else ""), flush=True)
        return before, after

    def leftovers(self):
        """Processes of this hub still running (their command line or environment names
        its state folder or its port)."""
        mark = "127.0.0.1:%d" % self.port
        warm = {e["pid"] for _, e in ready_kernels(kernel_home())} | set(adopted().values())
        left = [(pid, v[3][:120]) for pid, v in processes().items()
                if pid != os.getpid() and (self.state in v[3] or self.state in v[2] or mark in v[2]
                                           or "mlp_lab.kernel --pool" in v[3] or pid in warm)]
        return (left + ["container %s" % name for name in self.containers()]
                + ["disk mounted at %s" % path for path in disks.mounted(self.state)])

    def inspect(self, user):
        """podman's description of `user`'s container, or None."""
        out = subprocess.run(["podman", "inspect", hub_containers.container_name(self.state, user)],
                             env=hub_containers.podman_env(), capture_output=True, text=True)
        return json.loads(out.stdout)[0] if out.returncode == 0 else None

    def containers(self):
        """The names of this hub's student containers that podman has (running or not)."""
        if not CONTAINERS:
            return []
        out = subprocess.run(["podman", "ps", "-a", "--format", "{{.Names}}", "--filter",
                              "name=" + hub_containers.container_prefix(self.state)],
                             env=hub_containers.podman_env(), capture_output=True, text=True).stdout
        return out.split()



def login(page, hub, name, password, next_url=None):
    """`name` logs in on the hub's login form in `page`, then goes to `next_url`: a path on
    the hub's origin, or a URL on a server's or a service's origin (the hub's `?next=`
    keeps only paths of its own)."""
    elsewhere = next_url and "://" in next_url
    after = "/hub/home" if elsewhere else next_url
    page.goto(hub.base + "/hub/login" + ("?next=" + urllib.parse.quote(after) if after else ""))
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_load_state()
    if elsewhere:
        page.goto(next_url)
        page.wait_for_load_state()


# --- the servers' APIs that JupyterLab's nbgrader extensions use --------------------------
def formgrader(hub, token, path, method="GET", body=None):
    """The instructor's Formgrader API (the course service at /services/course/)."""
    return request("%s/formgrader/api/%s" % (hub.service(), path), token, method, body)


def assignments(hub, user, token, action=None):
    """The Assignment List's server API in `user`'s server: the list, or an action on `mlp`."""
    if action is None:
        return request("%s/assignments?course_id=%s" % (hub.server(user), hub_containers.COURSE_ID), token)
    return request("%s/assignments/%s" % (hub.server(user), action), token, "POST",
                   {"course_id": hub_containers.COURSE_ID, "assignment_id": "mlp"})


def statuses(listing):
    """The statuses of `mlp` in an Assignment List answer ({"success", "value": [...]}):
    "released", "fetched", "submitted" (one entry per submission)."""
    if not isinstance(listing, dict) or not listing.get("success"):
        return ["error: %s" % str(listing)[:300]]
    return sorted({a.get("status") for a in listing["value"] if a.get("assignment_id") == "mlp"})


def contents(hub, user, token, path, model=None):
    """A file or folder of `user`'s home through their server's contents API (`model`:
    write it)."""
    url = "%s/api/contents/%s" % (hub.server(user), urllib.parse.quote(path))
    if model is None:
        return request(url, token)
    return request(url, token, "PUT", model)
