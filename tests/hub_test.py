"""`make hub-test`: the course's JupyterHub (deploy/jupyterhub_config.py) with students.

    python tests/hub_test.py [--students N ...] [--pool N] [--browser]
        (default: 3 students, a pool of warm kernels as large as the largest round;
        `--students 1 2 4` sizes a class; make hub-test adds --browser)

Starts the hub on a free loopback port with a test authenticator (JupyterHub's
shared-password one) and an admin service token, creates the students through the REST
API, starts their servers at once, and runs the solved notebook 2 in every server at
the same time through the hub's proxy (the kernel's websocket at /user/<name>/api/...),
checking every output as `make notebooks` does (mlp_lab/notebooks/check.py). Then the walls:
student A's token gets 403 on student B's server and on B in the hub's API, a request
without a token gets no content, a student cannot list users. Measures the time from
asking for a server to the first cell's output and to the whole notebook, and the peak
memory of each student's server with its kernel (RSS of the process tree, with the warm
evcxr it took from the pool). Each round starts on a warm machine: the pool full. Stops
everything it started and checks that no process is left. With --browser, also `make
hub`'s own sign-up (NativeAuthenticator) in headless Chromium: the instructor approves a
student, who logs in and runs their notebook 2 with Run All.

Closes with 'hub: N passed, N failed'.
"""

import argparse
import asyncio
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

import nbformat
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from browser_test import free_port  # noqa: E402
from mlp_lab.checks import Checks  # noqa: E402
from mlp_lab.hub import containers as hub_containers  # noqa: E402
from mlp_lab.kernel.home import kernel_home  # noqa: E402
from mlp_lab.kernel.pool import claimed_kernels, dep_lines, ready_kernels  # noqa: E402
from mlp_lab.notebooks.check import check_notebook  # noqa: E402

OUT = os.path.join(ROOT, "target", "hub")
NOTEBOOK = os.path.join(ROOT, "notebooks", "02_toy_network.ipynb")
PASSWORD = "hub-test-%s" % uuid.uuid4().hex[:12]
TOKEN = uuid.uuid4().hex
# each student in a container of the course image (make hub's default), or all as this
# user (MLP_HUB_ISOLATION=none)
CONTAINERS = os.environ.get("MLP_HUB_ISOLATION", "containers") == "containers"
MLP_CORE = hub_containers.IMAGE_MLP_CORE if CONTAINERS else os.path.join(ROOT, "mlp-core")



class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def request(url, token=None, method="GET", body=None, timeout=60):
    """(status, parsed JSON or text) of one HTTP request, without following redirects;
    `timeout` seconds for the answer (raise it for requests that run notebooks)."""
    headers = {"Authorization": "token " + token} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with OPENER.open(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


# --- processes and memory ---------------------------------------------------------------
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


def tree_rss(table, root, extra=None):
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            total += table[pid][1]
            stack.extend(p for p, v in table.items() if v[0] == pid)
            if extra and pid in extra:
                stack.append(extra[pid])
    return total


def server_pids(table, user):
    """The single-user servers of `user` (their environment names the user)."""
    return [pid for pid, v in table.items() if "JUPYTERHUB_USER=%s\0" % user in v[2] + "\0"
            and "jupyterhub-singleuser" in v[3]]


class MemoryWatch(threading.Thread):
    """Each student's peak memory and, in containers, when their container's own pool
    had its first warm kernel ready."""

    def __init__(self, users, hub):
        super().__init__(daemon=True)
        self.users, self.peak, self.running = users, {u: 0 for u in users}, True
        self.hub, self.warm, self.upper = hub, {}, {}

    def run(self):
        while self.running:
            table, extra = processes(), adopted()
            for u in self.users:
                rss = sum(tree_rss(table, pid, extra) for pid in server_pids(table, u))
                self.peak[u] = max(self.peak[u], rss)
                if CONTAINERS and u not in self.warm and self.warm_in_container(u):
                    self.warm[u] = time.time()
            time.sleep(0.5)

    def warm_in_container(self, user):
        """Whether the pool in `user`'s container has (or had) a warm kernel: its entry in
        the container's writable layer, read from the host."""
        if user not in self.upper:
            info = self.hub.inspect(user)
            if not info:
                return False
            self.upper[user] = info["GraphDriver"]["Data"]["UpperDir"]
        pool = os.path.join(self.upper[user] + hub_containers.IMAGE_KERNEL_HOME, "pool")
        return any(os.listdir(os.path.join(pool, part)) for part in ("ready", "claimed")
                   if os.path.isdir(os.path.join(pool, part)))


# --- a notebook through the hub's proxy -------------------------------------------------------
def solved_cells():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = cell.source.replace('path = "../mlp-core"', 'path = "%s"' % MLP_CORE)
            cell.outputs = []
    return nb


def message(session, code):
    return {"header": {"msg_id": uuid.uuid4().hex, "username": "hub-test", "session": session,
                       "msg_type": "execute_request", "version": "5.3",
                       "date": datetime.datetime.now(datetime.UTC).isoformat()},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}


async def run_notebook(base, user, token, nb, timings):
    status, kernel = request("%s/user/%s/api/kernels" % (base, user), token, "POST", {"name": "rust"})
    if status != 201:
        raise RuntimeError("starting a kernel: %s %s" % (status, kernel))
    url = "%s/user/%s/api/kernels/%s/channels" % (base.replace("http", "ws", 1), user, kernel["id"])
    # (the server answers once the kernel has replied to kernel_info: give it time)
    ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": "token " + token},
                                             connect_timeout=300, request_timeout=300))
    session = uuid.uuid4().hex
    try:
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            msg = message(session, cell.source)
            ws.write_message(json.dumps(msg))
            reply = idle = False
            while not (reply and idle):
                raw = await asyncio.wait_for(ws.read_message(), 900)
                if raw is None:
                    raise RuntimeError("the kernel's websocket closed")
                m = json.loads(raw)
                if m.get("parent_header", {}).get("msg_id") != msg["header"]["msg_id"]:
                    continue
                kind, content = m["header"]["msg_type"], m["content"]
                if kind == "execute_reply":
                    reply = True
                    timings.setdefault("first_cell", time.time())
                    cell.execution_count = content.get("execution_count")
                elif kind == "status" and content["execution_state"] == "idle":
                    idle = True
                elif kind == "clear_output":
                    cell.outputs = []
                elif kind == "stream":
                    cell.outputs.append(nbformat.v4.new_output("stream", name=content["name"], text=content["text"]))
                elif kind in ("execute_result", "display_data"):
                    out = nbformat.v4.new_output(kind, data=content["data"], metadata=content.get("metadata", {}))
                    if kind == "execute_result":
                        out.execution_count = content.get("execution_count")
                    cell.outputs.append(out)
                elif kind == "error":
                    cell.outputs.append(nbformat.v4.new_output("error", ename=content["ename"],
                                                               evalue=content["evalue"],
                                                               traceback=content["traceback"]))
                if kind in ("stream", "execute_result", "display_data", "error") and "first_output" not in timings:
                    timings["first_output"] = time.time()
    finally:
        ws.close()
        request("%s/user/%s/api/kernels/%s" % (base, user, kernel["id"]), token, "DELETE")
    timings["done"] = time.time()


# --- the hub ------------------------------------------------------------------------------------
class Hub:
    def __init__(self, test_auth=True, pool=4):
        self.port = free_port()
        self.pool = pool
        self.pool_on_host = pool and not CONTAINERS  # in containers, each student's own
        self.base = "http://127.0.0.1:%d" % self.port
        self.api = self.base + "/hub/api"
        self.state = tempfile.mkdtemp(prefix="mlp-hub-test-")
        os.makedirs(OUT, exist_ok=True)
        env = dict(os.environ, MLP_HUB_PORT=str(self.port), MLP_HUB_API_PORT=str(free_port()),
                   MLP_HUB_STATE=self.state, MLP_HUB_TEST_TOKEN=TOKEN, MLP_HUB_POOL=str(pool))
        if test_auth:
            env["MLP_HUB_TEST_PASSWORD"] = PASSWORD
            # the warm kernels run the solved notebook's `:dep` line (the student
            # edition's, in make hub): the one this test's notebook starts with
            env["MLP_HUB_POOL_DEP"] = "\n".join(dep_lines(solved_cells()))
        self.log = open(os.path.join(OUT, "hub.log" if test_auth else "hub-browser.log"), "w")
        self.proc = subprocess.Popen([os.path.join(ROOT, ".venv", "bin", "jupyterhub"), "-f",
                                      os.path.join(ROOT, "deploy", "jupyterhub_config.py")],
                                     cwd=self.state, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        for _ in range(240):
            if self.proc.poll() is not None:
                raise SystemExit("the hub exited (%s); see target/hub/hub.log" % self.proc.returncode)
            try:
                if request(self.api + "/")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit("the hub did not answer; see target/hub/hub.log")

    def release(self, course=None):
        """The instructor's release of the student edition into this hub's exchange
        (`nbgrader release_assignment`, as Formgrader's Release button runs it): each
        student's server fetches it into ~/mlp as it starts."""
        if course is None:
            course = os.path.join(ROOT, "course")
        out = subprocess.run([os.path.join(ROOT, ".venv", "bin", "nbgrader"), "release_assignment", "mlp", "--force"],
                             cwd=course, env=dict(os.environ, MLP_HUB_STATE=self.state), capture_output=True, text=True)
        if out.returncode:
            raise SystemExit("nbgrader release_assignment failed:\n" + out.stderr[-2000:])

    def wait_for_pool(self, t):
        """A warm machine: the pool's kernels all ready (the hub's pool; in containers,
        each student's pool starts with their server)."""
        if not self.pool_on_host:
            return
        start = time.time()
        while len(ready_kernels(kernel_home())) < self.pool and time.time() - start < 600:
            time.sleep(1)
        n = len(ready_kernels(kernel_home()))
        t.check("the kernel pool has %d warm kernels ready (%.0f s)" % (self.pool, time.time() - start),
                n >= self.pool, n)

    def call(self, path, method="GET", body=None, token=TOKEN):
        return request(self.api + path, token, method, body)

    def start_server(self, user):
        status, body = self.call("/users/%s/server" % user, "POST", {})
        if status not in (201, 202):
            raise RuntimeError("starting %s's server: %s %s" % (user, status, body))
        for _ in range(600):
            status, info = self.call("/users/%s" % user)
            server = (info or {}).get("servers", {}).get("", {})
            if server.get("ready"):
                return
            time.sleep(0.2)
        raise RuntimeError("%s's server did not become ready" % user)

    def stop(self):
        """The hub first (it stops the students' servers and the proxy), then whatever
        of its process group is left."""
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(2)
        self.proc.wait(10)

    def leftovers(self):
        """Processes of this hub still running (their command line or environment names
        its state folder or its port)."""
        mark = "127.0.0.1:%d" % self.port
        warm = {e["pid"] for _, e in ready_kernels(kernel_home())} | set(adopted().values())
        left = [(pid, v[3][:120]) for pid, v in processes().items()
                if pid != os.getpid() and (self.state in v[3] or self.state in v[2] or mark in v[2]
                                           or "mlp_lab.kernel --pool" in v[3] or pid in warm)]
        return left + ["container %s" % name for name in self.containers()]

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


def class_run(t, hub, users, think=0):
    """Every student's server started at once, notebook 2 run in each at the same time,
    `think` seconds after their server is ready."""
    tokens = {}
    for u in users:
        status, _ = hub.call("/users/%s" % u, "POST", {})
        t.check("created %s through the REST API" % u, status == 201, status)
        status, body = hub.call("/users/%s/tokens" % u, "POST", {"note": "hub-test"})
        t.check("a token for %s" % u, status == 201 and "token" in (body or {}), (status, body))
        tokens[u] = body["token"]
    timings = {u: {} for u in users}
    notebooks = {u: solved_cells() for u in users}
    watch = MemoryWatch(users, hub)
    watch.start()
    errors = {}

    def student(u):
        try:
            timings[u]["asked"] = time.time()
            hub.start_server(u)
            timings[u]["ready"] = time.time()
            time.sleep(think)  # the student opens the notebook and reads before running it
            timings[u]["sent"] = time.time()
            asyncio.run(run_notebook(hub.base, u, tokens[u], notebooks[u], timings[u]))
        except Exception as e:  # reported as a failed check
            errors[u] = repr(e)

    threads = [threading.Thread(target=student, args=(u,)) for u in users]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    watch.running = False
    watch.join()
    rows = []
    for u in users:
        t.check("%s: notebook 2 ran through the hub" % u, u not in errors, errors.get(u))
        if u in errors:
            continue
        check_notebook(lambda ok, what: t.check(what, ok), "02_toy_network", notebooks[u])
        nbformat.write(notebooks[u], os.path.join(OUT, "02_toy_network-%s.ipynb" % u))
        tm = timings[u]
        warm = watch.warm.get(u)
        rows.append((u, tm["ready"] - tm["asked"], tm["first_cell"] - tm["asked"], tm["first_output"] - tm["asked"],
                     tm["done"] - tm["asked"], watch.peak[u] / 2 ** 20, warm - tm["asked"] if warm else None,
                     tm["first_cell"] - tm["sent"]))
    print("  %d student(s) at once, seconds from asking for the server (first cell: also from %s):"
          % (len(users), "the server ready" if not think else "when it was run, %d s after the server was ready"
             % think))
    print("    %-14s %6s %18s %13s %9s %12s %12s" % ("student", "ready", "first cell", "first output", "notebook",
                                                    "peak memory", "warm kernel"))
    for u, ready, first, output, done, mib, warm, after in rows:
        print("    %-14s %6.1f %7.1f (%4.1f after) %13.1f %9.1f %8.0f MiB %12s"
              % (u, ready, first, after, output, done, mib, "%.1f" % warm if warm else "-"))
    if CONTAINERS and hub.pool:
        t.check("each student's container warmed a kernel of its own", all(row[6] for row in rows), rows)
    return tokens, rows


def walls(t, hub, tokens):
    a, b = sorted(tokens)[:2]
    status, _ = request("%s/user/%s/api/contents" % (hub.base, b), tokens[a])
    t.check("%s's token on %s's server: 403" % (a, b), status == 403, status)
    status, _ = request("%s/user/%s/api/kernels" % (hub.base, b), tokens[a], "POST", {"name": "rust"})
    t.check("%s's token cannot start a kernel on %s's server: 403" % (a, b), status == 403, status)
    status, _ = hub.call("/users/%s" % b, token=tokens[a])
    t.check("%s's token on %s in the hub's API: 403" % (a, b), status in (403, 404), status)
    status, _ = hub.call("/users/%s/tokens" % b, "POST", {}, token=tokens[a])
    t.check("%s's token cannot make a token for %s: 403" % (a, b), status in (403, 404), status)
    status, body = request("%s/user/%s/api/contents" % (hub.base, a))
    t.check("no token on %s's server: no content (%s %s)" % (a, status, str(body)[:60]),
            status in (302, 401, 403) and not (isinstance(body, dict) and "content" in body), (status, str(body)[:200]))
    status, _ = hub.call("/users", token=None)
    t.check("no token on the hub's API: 403", status in (401, 403), status)
    status, _ = hub.call("/users", token=tokens[a])
    t.check("a student cannot list users: 403", status == 403, status)
    status, body = request("%s/user/%s/api/contents/mlp" % (hub.base, a), tokens[a])
    names = sorted(c["name"] for c in (body or {}).get("content", [])) if status == 200 else body
    t.check("%s has the student edition in ~/mlp" % a, status == 200 and "02_toy_network.ipynb" in names, names)


# What one student's code tries against another student and the hub, from inside their
# own kernel: each attempt prints `HELD what: how it failed` or `BREACHED what: what it got`.
ATTACK = r"""
use std::io::Write;
fn report(what: &str, r: Result<String, String>) {
    match r {
        Ok(got) => println!("BREACHED {}: {}", what, got),
        Err(e) => println!("HELD {}: {}", what, e),
    }
}
fn read(p: &str) -> Result<String, String> {
    std::fs::read(p).map(|b| format!("read {} bytes", b.len())).map_err(|e| e.to_string())
}
unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
fn write(p: &str) -> Result<String, String> {
    std::fs::OpenOptions::new().create(true).append(true).open(p)
        .and_then(|mut f| f.write_all(b"overwritten by another student"))
        .map(|_| "wrote into it".to_string()).map_err(|e| e.to_string())
}
for p in [READS] { report(&format!("read {}", p), read(p)); }
for p in [WRITES] { report(&format!("write {}", p), write(p)); }
// every process this kernel can see: none may be the other student's
let mut seen = 0;
let mut theirs = Vec::new();
for entry in std::fs::read_dir("/proc").unwrap().flatten() {
    let name = entry.file_name().to_string_lossy().to_string();
    if !name.chars().all(|c| c.is_ascii_digit()) { continue; }
    seen += 1;
    for part in ["environ", "cmdline"] {
        if let Ok(bytes) = std::fs::read(format!("/proc/{}/{}", name, part)) {
            let text = String::from_utf8_lossy(&bytes).replace('\0', " ");
            if text.contains("OTHER") || text.contains("jupyterhub_cookie_secret") {
                theirs.push(format!("/proc/{}/{}", name, part));
            }
        }
    }
}
report(&format!("read the environment and command line of another student's processes ({} processes visible here)",
               seen),
       if theirs.is_empty() { Err("none of them is another student's or the hub's".into()) }
       else { Ok(theirs.join(" ")) });
let pids: Vec<u32> = vec![PIDS];
for pid in pids {
    let mine = std::fs::read(format!("/proc/{}/environ", pid)).map(|b| !String::from_utf8_lossy(&b).contains("OTHER"));
    let what = format!("send SIGKILL to the other student's kernel (host pid {})", pid);
    match mine {
        Ok(true) => report(&what, Err(format!("pid {} here is one of this student's own processes, left alone", pid))),
        _ => {
            let sent = unsafe { kill(pid as i32, 9) };
            report(&what, if sent == 0 { Ok("signal delivered".into()) }
                          else { Err(format!("kill(2): {}", std::io::Error::last_os_error())) });
        }
    }
}
"""
HOG = r"""
let mut hog: Vec<Vec<u8>> = Vec::new();
for i in 0..400 {
    hog.push(vec![7u8; 64 << 20]);
    if i % 16 == 15 { println!("allocated {} MiB", (i + 1) * 64); }
}
println!("BREACHED allocated {} MiB and was not stopped", hog.len() * 64);
"""


def rust_strings(paths):
    return ", ".join(json.dumps(p) for p in paths)


def container_settings(t, hub, user):
    """What podman gave a student's container: the limits, the one mount, and how the
    server runs (uid, capabilities, no privilege gain), read on the host."""
    info = hub.inspect(user) or {}
    host = info.get("HostConfig", {})
    mem = 3 * 2 ** 30 if os.environ.get("MLP_HUB_MEM", "3G") == "3G" else None
    t.check("%s's container: memory limit %s, no swap past it" % (user, host.get("Memory")),
            host.get("Memory") and host.get("MemorySwap") == host.get("Memory") and (mem is None
                                                                                  or host["Memory"] == mem), host)
    cpus = float(os.environ.get("MLP_HUB_CPUS", "1"))
    t.check("%s's container: CPU limit %.1f core(s)" % (user, cpus),
            host.get("CpuQuota") == int(cpus * host.get("CpuPeriod", 100000)), host)
    t.check("%s's container: process limit %s" % (user, host.get("PidsLimit")), host.get("PidsLimit") == 1024, host)
    mounts = [(m.get("Source"), m.get("Destination")) for m in info.get("Mounts", [])]
    exchange = (os.path.join(hub.state, "exchange", hub_containers.COURSE_ID),
                "%s/%s" % (hub_containers.EXCHANGE, hub_containers.COURSE_ID))
    t.check("%s's container mounts only their home and the course's exchange: %s" % (user, mounts),
            sorted(mounts) == sorted([(os.path.join(hub.state, "homes", user), "/home/jovyan"), exchange]), mounts)
    table = processes()
    status = {}
    for pid in server_pids(table, user)[:1]:
        with open("/proc/%d/status" % pid) as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
    home_uid = os.stat(os.path.join(hub.state, "homes", user)).st_uid
    t.check("%s's server runs as their own uid (their home's, %d, from %d up), no capabilities, no privilege "
            "gain (%s)" % (user, home_uid, hub_containers.UID_BASE, ", ".join(
                "%s %s" % (k, status.get(k, "?").split()[0]) for k in ("Uid", "CapEff", "NoNewPrivs"))),
            status.get("Uid", "").split()[:1] == [str(home_uid)] and home_uid > hub_containers.UID_BASE
            and int(status.get("CapEff", "1"), 16) == 0
            and status.get("NoNewPrivs", "").strip() == "1", status)


def walls_inside(t, hub, tokens):
    """Student A's code, from their kernel, against student B and the hub, while B runs
    notebook 2: every attempt must fail, A's runaway allocation must be stopped at A's
    memory limit, and B's notebook must end with the right outputs."""
    a, b = sorted(tokens)[:2]
    home_b = os.path.join(hub.state, "homes", b)
    nb_b = os.path.join(home_b, "mlp", "02_toy_network.ipynb")
    secret = os.path.join(hub.state, "jupyterhub_cookie_secret")
    database = os.path.join(hub.state, "jupyterhub.sqlite")
    t.check("the files attacked are there on the host (%s's notebook, the hub's secret and database)" % b,
            all(os.path.exists(p) for p in (nb_b, secret, database)), [nb_b, secret, database])
    before = open(nb_b, "rb").read()
    guesses = ["../%s/mlp/02_toy_network.ipynb" % b, "/home/%s/mlp/02_toy_network.ipynb" % b,
               "/home/jovyan/../%s/mlp/02_toy_network.ipynb" % b, "/proc/1/root" + nb_b,
               "/srv/jupyterhub/jupyterhub_cookie_secret", os.path.join(ROOT, "deploy", "state", "homes", b)]
    reads = [nb_b, secret, database] + guesses
    writes = [nb_b, os.path.join(home_b, "mlp", "planted.txt"), "../%s/mlp/02_toy_network.ipynb" % b,
              os.path.join(hub.state, "jupyterhub_cookie_secret")]
    victim = solved_cells()
    errors, timings = {}, {a: {}, b: {}}

    def run(user, nb):
        try:
            asyncio.run(run_notebook(hub.base, user, tokens[user], nb, timings[user]))
        except Exception as e:
            errors[user] = repr(e)

    victim_thread = threading.Thread(target=run, args=(b, victim))
    victim_thread.start()
    for _ in range(600):  # B's kernel is at work before A starts
        if "first_cell" in timings[b] or not victim_thread.is_alive():
            break
        time.sleep(0.2)
    table = processes()
    kernels_b = [pid for server in server_pids(table, b) for pid in descendants(table, server)
                 if "evcxr" in table[pid][3]]
    t.check("%s's kernel is running (host pids %s)" % (b, kernels_b), bool(kernels_b), kernels_b)
    code = (ATTACK.replace("READS", rust_strings(reads)).replace("WRITES", rust_strings(writes))
            .replace("PIDS", ", ".join(str(p) for p in kernels_b[:3]))
            .replace("OTHER", "JUPYTERHUB_USER=%s" % b))
    attacker = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code), nbformat.v4.new_code_cell(HOG),
                                               nbformat.v4.new_code_cell('println!("still here");')])
    run(a, attacker)
    victim_thread.join()
    t.check("%s's attack cells ran (%s)" % (a, errors.get(a, "ok")), a not in errors, errors.get(a))

    def text(cell):
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    lines = [line for line in text(attacker.cells[0]).splitlines() if line.startswith(("HELD", "BREACHED"))]
    print("  inside %s's container, against %s and the hub:" % (a, b))
    for line in lines:
        t.check("  " + line, line.startswith("HELD"), line)
    t.check("every attempt reported (%d)" % len(lines), len(lines) == len(reads) + len(writes) + 1 + len(kernels_b[:3]),
            text(attacker.cells[0])[-2000:])
    hog = attacker.cells[1].outputs
    hog_text = text(attacker.cells[1]) + "".join(" ".join(o.get("traceback", [])) + o.get("evalue", "")
                                                  for o in hog if o.output_type == "error")
    allocated = [line for line in text(attacker.cells[1]).splitlines() if line.startswith("allocated")]
    t.check("%s's runaway allocation was stopped at the memory limit (%s; then: %s)"
            % (a, allocated[-1] if allocated else "nothing printed",
               next((o.get("evalue", "")[:80] for o in hog if o.output_type == "error"), "no error")),
            "BREACHED" not in hog_text and any(o.output_type == "error" for o in hog), hog_text[-1500:])
    t.check("%s's kernel answers again after that" % a, "still here" in text(attacker.cells[2]),
            attacker.cells[2].outputs)
    t.check("%s's notebook 2 ran to the end meanwhile" % b, b not in errors, errors.get(b))
    if b not in errors:
        check_notebook(lambda ok, what: t.check("%s, meanwhile: %s" % (b, what), ok), "02_toy_network", victim)
    t.check("%s's notebook on the host is unchanged" % b, open(nb_b, "rb").read() == before)
    t.check("nothing was planted in %s's home" % b, not os.path.exists(os.path.join(home_b, "mlp", "planted.txt")))


def descendants(table, root):
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        children = [p for p, v in table.items() if v[0] == pid]
        out.extend(children)
        stack.extend(children)
    return out


def browser_student(t):
    """make hub's own configuration (NativeAuthenticator) in headless Chromium: the
    instructor signs up, a student signs up, the instructor approves them, the student
    logs in, opens notebook 2 of their student edition and runs it (Run All)."""
    from playwright.sync_api import sync_playwright

    from browser_test import inspect, run_all, wait_done, wait_idle

    hub = Hub(test_auth=False, pool=1)
    if CONTAINERS:
        hub.release()
    hub.wait_for_pool(t)
    base = hub.base + "/hub"

    def shots(page, name):
        return page.screenshot(path=os.path.join(OUT, name + ".png"))

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                        headless=True, args=["--no-sandbox"] if os.getuid() == 0 else [])

            def signup(page, name, password):
                page.goto(base + "/signup")
                page.fill("#username_input", name)
                page.fill("#password_input", password)
                page.fill("#password_confirmation_input", password)
                page.click("#signup_submit")
                page.wait_for_load_state()
                return page.inner_text("body")

            def login(page, name, password, next_url=None):
                page.goto(base + "/login" + ("?next=" + urllib.request.quote(next_url) if next_url else ""))
                page.fill("#username_input", name)
                page.fill("#password_input", password)
                page.click("#login_submit")
                page.wait_for_load_state()

            instructor = browser.new_context().new_page()
            text = signup(instructor, "instructor", "instructor-pass-%s" % TOKEN[:6])
            t.check("browser: the instructor signs up", "created" in text.lower() or "success" in text.lower(),
                    text[:300])
            student = browser.new_context().new_page()
            student.set_viewport_size({"width": 1400, "height": 1000})
            password = "student-pass-%s" % TOKEN[:6]
            text = signup(student, "alice", password)
            t.check("browser: a student signs up and waits for approval", "sent to the admin" in text, text[:300])
            login(student, "alice", password)
            t.check("browser: before approval the student cannot log in", "/login" in student.url, student.url)
            login(instructor, "instructor", "instructor-pass-%s" % TOKEN[:6], next_url="/hub/authorize")
            instructor.wait_for_url("**/hub/authorize**")
            instructor.click("a[href$='authorize/alice']")
            instructor.wait_for_load_state()
            shots(instructor, "hub-authorize")
            login(student, "alice", password)
            student.wait_for_url("**/user/alice/lab/**", timeout=180000)
            student.wait_for_selector(".jp-DirListing-item", timeout=120000)
            names = student.locator(".jp-DirListing-itemName").all_inner_texts()
            t.check("browser: the student's lab opens on ~/mlp, the student edition", "02_toy_network.ipynb" in names,
                    names)
            if CONTAINERS:
                running = hub.containers()
                print("  podman ps: %s" % " ".join(running))
                t.check("browser: one container per logged-in student (%s)" % ", ".join(running),
                        len(running) == 1 and running[0].endswith("-alice"), running)
            start = time.time()
            student.goto(hub.base + "/user/alice/lab/tree/mlp/02_toy_network.ipynb")
            wait_idle(student)
            shots(student, "hub-student-opened")
            run_all(student)
            # what the student is after: the first check cell's verdict on their unfinished code
            stderr = student.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            verdict = stderr.filter(has_text="not yet implemented").filter(has_text="in your function").first
            try:
                verdict.wait_for(timeout=600000)
            except Exception:
                shots(student, "hub-student-timeout")
                raise
            print("  browser: the student's first check cell answered %.1f s after Run All" % (time.time() - start))
            text = verdict.text_content()  # (inner_text is empty for a cell scrolled out of view)
            t.check("browser: the unfinished function stops with 'not yet implemented', named", "forward_loss" in text,
                    text)
            verdict.scroll_into_view_if_needed()
            shots(student, "hub-student-notebook2")
            wait_done(student)
            seen = inspect(student)
            print("  browser: Run All done %.1f s after it was asked" % (time.time() - start))
            t.check("browser: Run All ran every cell of the student's notebook 2 (numbered from [1])",
                    seen["prompts"] and seen["prompts"][0] == "[1]:" and all(p.startswith("[") and p[1:-2].isdigit()
                                                                           for p in seen["prompts"]), seen["prompts"])
            t.check("browser: no cell ended in an error (the unfinished code panics, it compiles)",
                    not seen["errors"], seen["errors"][:2])
            browser.close()
    finally:
        hub.stop()
    time.sleep(1)
    t.check("browser: nothing left running after that hub stopped", not hub.leftovers(), hub.leftovers())
    shutil.rmtree(hub.state, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="+", default=[3])
    parser.add_argument("--pool", type=int, help="warm kernels kept ready (default: one in each student's "
                        "container; without containers, the largest round; 0: none)")
    parser.add_argument("--think", type=float, default=0,
                        help="seconds each student waits after their server is ready before running notebook 2")
    parser.add_argument("--browser", action="store_true",
                        help="also make hub's own sign-up, approval and a student's Run All in headless Chromium")
    args = parser.parse_args()
    t = Checks()
    # (the hub's pool: as large as the largest round; in containers: one in each student's)
    hub = Hub(pool=(1 if CONTAINERS else max(args.students)) if args.pool is None else args.pool)
    try:
        t.check("the hub answers on 127.0.0.1:%d" % hub.port, True)
        if CONTAINERS:
            hub.release()
        first = None
        for k, n in enumerate(args.students):
            hub.wait_for_pool(t)
            users = ["%s%d" % (name, k) for name in ("ann", "bob", "cat", "dan", "eve", "fay")[:n]]
            tokens, _ = class_run(t, hub, users, args.think)
            first = first or tokens
            if len(tokens) >= 2:
                walls(t, hub, tokens)
                if CONTAINERS and k == 0:
                    container_settings(t, hub, users[0])
                    walls_inside(t, hub, tokens)
            for u in users:  # their servers stop before the next round
                hub.call("/users/%s/server" % u, "DELETE")
            for _ in range(100):
                if not any(hub.call("/users/%s" % u)[1].get("servers") for u in users):
                    break
                time.sleep(0.2)
    finally:
        hub.stop()
    time.sleep(1)
    left = hub.leftovers()
    t.check("nothing left running after the hub stopped", not left, left)
    if not left:
        shutil.rmtree(hub.state, ignore_errors=True)
    if args.browser:
        browser_student(t)
    t.close("hub")


if __name__ == "__main__":
    main()
