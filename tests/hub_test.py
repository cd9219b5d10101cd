"""`make hub-test`: the course's JupyterHub (deploy/jupyterhub_config.py) with students.

    python tests/hub_test.py [--students N ...] [--pool N] [--browser]
        (default: 3 students, a pool of warm kernels as large as the largest round;
        `--students 1 2 4` sizes a class; make hub-test adds --browser)

Starts the hub on a free loopback port with a test authenticator (JupyterHub's
shared-password one) and an admin service token, creates the students through the REST
API, starts their servers at once, and runs the solved notebook 2 in every server at
the same time through the hub's proxy (the kernel's websocket at /user/<name>/api/...),
checking every output as `make notebooks` does (mlp_lab/notebooks/outputs_check.py). Then the walls:
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
import os
import shutil
import threading
import time

import nbformat

from hub_browser import browser_student
from hub_walls import container_settings, listening, no_answers, user_config, walls_inside
from mlp_lab.hub import containers as hub_containers
from mlp_lab.notebooks.outputs_check import check_notebook
from mlp_lab.tally import Checks
from support.http import redirect_of, request
from support.hub import CONTAINERS, OUT, Hub, solved_cells
from support.kernel_ws import run_notebook
from support.procs import adopted, processes, pss, server_pids, tree_pids, tree_rss


class MemoryWatch(threading.Thread):
    """Each student's peak memory and, in containers, when their container's own pool
    had its first warm kernel ready."""

    def __init__(self, users, hub):
        super().__init__(daemon=True)
        self.users, self.peak, self.running = users, {u: 0 for u in users}, True
        self.hub, self.warm, self.parts = hub, {}, {}

    def run(self):
        while self.running:
            table, extra = processes(), adopted()
            for u in self.users:
                rss = sum(tree_rss(table, pid, extra) for pid in server_pids(table, u))
                self.peak[u] = max(self.peak[u], rss)
                if CONTAINERS and u not in self.warm and self.warm_in_container(u):
                    self.warm[u] = time.time()
            time.sleep(0.5)

    def now(self, user):
        """What everything of `user`'s server holds in memory now (bytes): resident (RSS,
        summed over its processes) and proportional (PSS: a page shared with others, such
        as the interpreter's and evcxr's code, counted in part)."""
        table, extra = processes(), adopted()
        pids = [p for pid in server_pids(table, user) for p in tree_pids(table, pid, extra)]
        self.parts[user] = [(table[p][3].split(" -f ")[0][-60:], table[p][1], pss(p)) for p in pids]
        return [sum(part[1] for part in self.parts[user]), sum(part[2] for part in self.parts[user])]

    def warm_in_container(self, user):
        """Whether the pool in `user`'s container has (or had) a warm kernel: its entry in
        their kernels' home on their disk, read from the host."""
        pool = os.path.join(self.hub.state, "homes", user,
                            os.path.relpath(hub_containers.STUDENT_KERNEL_HOME, "/home/jovyan"), "pool")
        return any(os.listdir(os.path.join(pool, part)) for part in ("ready", "claimed")
                   if os.path.isdir(os.path.join(pool, part)))


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
            asyncio.run(run_notebook(hub.base, u, tokens[u], notebooks[u], timings[u],
                                     before_end=lambda: timings[u].update(held=watch.now(u))))
            # Kernel > Restart: the kernel ends, a new one starts cold (the pool warms one
            # kernel a container) and the student runs the first cell again
            first = next(c for c in notebooks[u].cells if c.cell_type == "code")
            again = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(first.source)])
            restarted = {"asked": time.time()}
            asyncio.run(run_notebook(hub.base, u, tokens[u], again, restarted))
            timings[u]["restart"] = restarted["first_cell"] - restarted["asked"]
            timings[u]["restarted_outputs"] = again.cells[0].outputs
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
        restarted = timings[u]["restarted_outputs"]
        t.check("%s: after a restart, the first cell ran again (its build line, no error)" % u,
                any("matrix products on" in o.get("text", "") for o in restarted)
                and not any(o.output_type == "error" for o in restarted), restarted)
        nbformat.write(notebooks[u], os.path.join(OUT, "02_toy_network-%s.ipynb" % u))
        tm = timings[u]
        warm = watch.warm.get(u)
        rows.append((u, tm["ready"] - tm["asked"], tm["first_cell"] - tm["asked"], tm["first_output"] - tm["asked"],
                     tm["done"] - tm["asked"], watch.peak[u] / 2 ** 20, warm - tm["asked"] if warm else None,
                     tm["first_cell"] - tm["sent"], tm["held"][0] / 2 ** 20, tm["held"][1] / 2 ** 20, tm["restart"]))
    print("  %d student(s) at once, seconds from asking for the server (first cell: also from %s):"
          % (len(users), "the server ready" if not think else "when it was run, %d s after the server was ready"
             % think))
    print("    %-14s %6s %18s %13s %9s %12s %12s %25s %11s" % (
        "student", "ready", "first cell", "first output", "notebook", "peak memory", "warm kernel",
        "held after (PSS)", "restart"))
    for u, ready, first, output, done, mib, warm, after, held, held_pss, restart in rows:
        print("    %-14s %6.1f %7.1f (%4.1f after) %13.1f %9.1f %8.0f MiB %12s %8.0f MiB (%4.0f MiB) %9.1f s"
              % (u, ready, first, after, output, done, mib, "%.1f" % warm if warm else "-", held, held_pss,
                 restart))
    print("    (held after: everything of the student's server in memory once notebook 2 has run, its kernel "
          "still open, resident (RSS) and proportional (PSS: shared pages counted in part); restart: a new "
          "kernel's first cell, from asking for the kernel)")
    if rows:
        print("    %s's server held, process by process (RSS, PSS):" % rows[0][0])
        for cmd, rss, share in watch.parts.get(rows[0][0], []):
            print("      %6.0f MiB %6.0f MiB  %s" % (rss / 2 ** 20, share / 2 ** 20, cmd))
    if CONTAINERS and hub.pool:
        t.check("each student's container warmed a kernel of its own", all(row[6] for row in rows), rows)
    return tokens, rows


def walls(t, hub, tokens):
    a, b = sorted(tokens)[:2]
    status, _ = request(hub.server(b) + "/api/contents", tokens[a])
    t.check("%s's token on %s's server: 403" % (a, b), status == 403, status)
    status, _ = request(hub.server(b) + "/api/kernels", tokens[a], "POST", {"name": "rust"})
    t.check("%s's token cannot start a kernel on %s's server: 403" % (a, b), status == 403, status)
    status, _ = hub.call("/users/%s" % b, token=tokens[a])
    t.check("%s's token on %s in the hub's API: 403" % (a, b), status in (403, 404), status)
    status, _ = hub.call("/users/%s/tokens" % b, "POST", {}, token=tokens[a])
    t.check("%s's token cannot make a token for %s: 403" % (a, b), status in (403, 404), status)
    status, body = request(hub.server(a) + "/api/contents")
    t.check("no token on %s's server: no content (%s %s)" % (a, status, str(body)[:60]),
            status in (302, 401, 403) and not (isinstance(body, dict) and "content" in body), (status, str(body)[:200]))
    status, _ = hub.call("/users", token=None)
    t.check("no token on the hub's API: 403", status in (401, 403), status)
    status, _ = hub.call("/users", token=tokens[a])
    t.check("a student cannot list users: 403", status == 403, status)
    # the hub's login page on a student's origin (a link they send the instructor, whose
    # password their script would read there): sent to the hub's own origin
    trap = hub.origin(a) + "/hub/login?next=%2Fhub%2Fhome"
    status, where = redirect_of(trap)
    print("  the hub's login page asked for on %s's origin (%s): %s %s" % (a, trap, status, where))
    t.check("the hub's pages are not served on a student's origin: sent to the hub's own",
            status == 302 and (where or "").startswith(hub.base + "/hub/login"), (status, where))
    status, body = request(hub.server(a) + "/api/contents/mlp", tokens[a])
    names = sorted(c["name"] for c in (body or {}).get("content", [])) if status == 200 else body
    t.check("%s has the student edition in ~/mlp" % a, status == 200 and "02_toy_network.ipynb" in names, names)


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
        status = hub.call("/")[0]
        t.check("the hub answers at %s (students' servers on <name>.%s)" % (hub.base, hub.base.split("://")[1]),
                status == 200, status)
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
                    listening(t, hub)
                    no_answers(t, hub, users[0], tokens[users[0]])
                    user_config(t, hub, users[0], tokens[users[0]])
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
