"""Grading on hand-in: each submission graded the moment it arrives, its result back to
its student alone (make hub's `grading` service; `MLP_GRADE_ON_SUBMIT=0` turns it off).

    python -m mlp_lab.course.on_submit [--course DIR] [--once]

A JupyterHub service run as the grader account (mlp_lab/course/grader.py), never root.
Every second it lists every student's inbound (the grader's folders, each on the
student's own disk: mlp_lab/course/exchange.py, `entries`). A new submission is taken
through collect's checks (in its student's own inbound, owner, links, size, name:
`collect.check_submission`); one refused ends at once, with the reason. The others wait
in a queue kept on disk (`<course>/on_submit/queue.json`, rewritten whole at each
change): first come first served across students, at most one per student in flight (a
newer submission takes the place of their one still waiting, which ends as replaced), at
most `MLP_GRADE_RATE` (6) started per student per hour (the rest wait, the student sees until when), `MLP_GRADE_JOBS`
at once (make autograde's default). A submission found grading when the service starts
(the hub was restarted, the service or its sandbox killed) waits again in its place: each
one ends graded, refused, replaced or failed, with a reason.

Each is graded as make autograde grades it: `nbgrader autograde` with the course's own
configuration (the same sandbox) in a folder of its own (`<course>/on_submit/runs/<name>`)
holding a copy of the gradebook and the submission; the instructor's gradebook and
submitted/ are not touched (make autograde collects and grades as before). Its feedback is
nbgrader's for the visible checks alone: the test cells run as the student edition has
them, their hidden tests taken out of the copied gradebook (`strip_hidden`, nbgrader's
own ClearHiddenTests), so that nothing of a hidden check runs or shows (`HiddenChecks`:
the page says how many there are and that they are graded after the due date),
released to the exchange under the names nbgrader's fetch_feedback looks for, readable
by the student's uid alone. A status page beside it (`<hash>.json`, the same names'
scheme) says queued (and in which place), grading, graded (the points on the
visible checks, when, how long) or why not: the student's Assignment List shows it under
the submission (deploy/class-config/nbgrader_config.py).
"""

import argparse
import contextlib
import datetime
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time

from nbgrader.utils import notebook_hash, parse_utc

from mlp_lab.course import collect, exchange
from mlp_lab.course.autograde import NBGRADER, default_jobs, set_aside_unreadable
from mlp_lab.course.hand_in_feedback import ASSIGNMENT, HIDDEN_COUNTS, points, strip_hidden
from mlp_lab.course.private_feedback import release_private
from mlp_lab.hub import disks

STATUS_ID = "mlp-lab-status"  # the status page's "notebook id" in nbgrader's hash of names
WAITING, GRADING, GRADED, FAILED, REFUSED, REPLACED = "queued", "grading", "graded", "failed", "refused", "replaced"
ENDED = (GRADED, FAILED, REFUSED, REPLACED)  # a submission's last states
# SandboxedExecute's reasons for not grading a notebook, as its log says them
SANDBOX_SAID = ("the grading sandbox", "time limit", "printed more than", "the course image")
SANDBOXES = "mlp-on-submit"  # the names of this service's sandboxes (SandboxedExecute's prefix)


def rate():
    return int(os.environ.get("MLP_GRADE_RATE") or 6)


def clock(t):
    return datetime.datetime.fromtimestamp(t).strftime("%H:%M")


def queue_path(course):
    """Where the queue of `course` is kept."""
    return os.path.join(course, "on_submit", "queue.json")


class Queue:
    """The submissions seen, kept in `path` (JSON): by `<student>/<name>`, their student's
    inbound and nbgrader's name there (`exchange.Entry.key`; an earlier version's, in the
    shared inbound, by the name alone). Each record's `name` is that key, `student` the
    student whose inbound it is in (the one its name gives, in the shared inbound)."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        try:
            with open(path) as f:
                self.items = json.load(f)
        except (OSError, ValueError):
            self.items = {}

    def save(self):
        with open(self.path + ".new", "w") as f:
            json.dump(self.items, f, indent=1, sort_keys=True)
        os.replace(self.path + ".new", self.path)

    def waiting(self):
        return sorted((r for r in self.items.values() if r["state"] == WAITING),
                      key=lambda r: (r["queued"], r.get("seq", 0)))

    def started_within_hour(self, student, now):
        return sorted(r["started"] for r in self.items.values()
                      if r["student"] == student and r.get("started") and now - r["started"] < 3600)

    def next_ready(self, now):
        """The first waiting submission that may start now (its student has none grading
        and has not used up their rate), or None; sets each waiting one's `until`."""
        busy = {r["student"] for r in self.items.values() if r["state"] == GRADING}
        chosen = None
        for r in self.waiting():
            started = self.started_within_hour(r["student"], now)
            r["until"] = started[0] + 3600 if len(started) >= rate() else None
            if chosen is None and r["student"] not in busy and r["until"] is None:
                chosen = r
        return chosen


def parse_name(name):
    """(student, assignment, the submission's time) from nbgrader's name of a submission,
    `student+assignment+timestamp[+random]`; ValueError when it is not one."""
    parts = name.split("+")
    if len(parts) not in (3, 4):
        raise ValueError("not student+assignment+time")
    return parts[0], parts[1], parse_utc(parts[2]).timestamp()


class Service:
    def __init__(self, course, jobs):
        self.course = course
        self.jobs = jobs
        self.root = os.path.join(course, "on_submit")
        os.makedirs(os.path.join(self.root, "runs"), exist_ok=True)
        self.exchange = exchange.exchange_course(course)
        # the students' uids: the owners of their homes (as course/nbgrader_config.py sets it)
        os.environ.setdefault("MLP_HUB_HOMES", os.path.join(exchange.hub_state(course), "homes"))
        self.queue = Queue(queue_path(course))
        self.running = {}  # name: its nbgrader process
        self.dirty = False
        self.stopping = False
        for r in self.queue.items.values():
            if r["state"] == GRADING:  # the service stopped while it graded: again, in its place
                if r.get("pid"):  # what is left of that grading (nbgrader, in a session of its own)
                    with contextlib.suppress(OSError):
                        os.killpg(r["pid"], signal.SIGKILL)
                r["state"], r["again"] = WAITING, r.get("again", 0) + 1
                for key in ("started", "pid", "told"):
                    r.pop(key, None)
        self.remove_stale_sandboxes()
        self.queue.save()

    # --- what the student sees ------------------------------------------------------
    def status_path(self, r):
        return os.path.join(self.exchange, "feedback", notebook_hash(secret=r["secret"], notebook_id=STATUS_ID)
                            + ".json")

    def tell(self, r):
        """The status page of submission `r`, readable by its student alone."""
        if not r.get("secret") or not r.get("uid"):
            return
        now = time.time()
        if r["state"] == WAITING:
            if r.get("until"):
                text = "waiting: %d graded this hour (MLP_GRADE_RATE), the next from %s" % (rate(), clock(r["until"]))
            else:
                place = [w["name"] for w in self.queue.waiting()].index(r["name"]) + 1
                text = "queued, %s" % ordinal(place)
        elif r["state"] == GRADING:
            text = "grading… (since %s)" % clock(r["started"])
        elif r["state"] == GRADED:
            text = "graded: %s of %s automatic points on the visible checks, %s, took %.0f s%s%s" % (
                points(r["score"]), points(r["max_score"]), clock(r["finished"]), r["finished"] - r["started"],
                "; %d hidden checks are graded after the due date" % r["hidden"] if r.get("hidden") else "",
                "; " + r["reason"] if r.get("reason") else "")
        else:
            text = "%s: %s" % ("not graded" if r["state"] != REPLACED else "replaced", r.get("reason", ""))
        if r.get("told") == text:
            return
        r["told"] = text
        self.dirty = True  # (saved with the queue: the instructor's page shows it)
        page = {"state": r["state"], "text": text, "updated": now}
        tmp = os.path.join(self.root, "status.tmp")
        with open(tmp, "w") as f:
            json.dump(page, f)
        release_private(tmp, self.status_path(r), r["uid"])

    def tell_waiting(self):
        for w in self.queue.waiting():
            self.tell(w)

    # --- the queue ------------------------------------------------------------------
    def scan(self):
        with self.queue.lock:
            self.scan_locked()

    def scan_locked(self):
        now = time.time()
        for entry in exchange.entries(self.course):
            name, path = entry.key, entry.path
            if name in self.queue.items:
                continue
            seq = 1 + max((x.get("seq", 0) for x in self.queue.items.values()), default=0)
            r = {"name": name, "seen": now, "queued": now, "seq": seq, "state": WAITING, "inbound": entry.student,
                 "entry": entry.name, "student": entry.student}
            try:
                named, assignment, r["time"] = parse_name(entry.name)
                if assignment != ASSIGNMENT:
                    continue
                # in a student's own inbound, it is theirs (or refused); in the shared one, its name's
                r["student"] = entry.student or named
                reason = collect.check_submission(path, named, entry.student)[0]
            except (ValueError, OverflowError) as e:
                reason = "nbgrader cannot read the time in its name (%s)" % e
            uid = exchange.home_owner(r["student"]) if r["student"] else None
            if uid:  # the status page goes to its student, if they handed it in (a folder of theirs)
                r["uid"], r["secret"] = uid, read_secret(path, uid)
            if reason:
                r.update(state=REFUSED, reason="set aside: %s" % reason, finished=now)
            else:
                for older in self.queue.waiting():
                    if older["student"] == r["student"]:  # the newer takes its place in the queue
                        older.update(state=REPLACED, finished=now, reason="a newer submission (%s) replaced it" % name)
                        r["queued"], r["seq"] = older["queued"], older.get("seq", 0)
                        self.tell(older)
            self.queue.items[name] = r
            self.log("%s: %s%s" % (name, r["state"], ": " + r["reason"] if r.get("reason") else ""))
            self.queue.save()
            self.tell(r)

    def start_ready(self):
        with self.queue.lock:
            while len(self.running) < self.jobs and not self.stopping:
                r = self.queue.next_ready(time.time())
                if r is None:
                    break
                r.update(state=GRADING, started=time.time())
                self.queue.save()
                self.tell(r)
                thread = threading.Thread(target=self.grade, args=(r,), daemon=True)
                self.running[r["name"]] = None
                thread.start()
            self.tell_waiting()

    # --- grading one ----------------------------------------------------------------
    def grade(self, r):
        try:
            result = self.autograde(r)
        except Exception as e:  # a grading that cannot finish ends with its reason, never silently
            result = {"state": FAILED, "reason": "the grader failed: %s" % e}
        with self.queue.lock:
            self.running.pop(r["name"], None)
            if self.stopping:
                return  # graded again when the service starts
            r.update(result, finished=time.time())
            self.queue.save()
            said = r.get("reason") or "%s of %s" % (r.get("score"), r.get("max_score"))
            self.log("%s: %s %s" % (r["name"], r["state"], said))
            self.tell(r)

    def autograde(self, r):
        # a folder of its own for each attempt: what a killed attempt left is never reused
        run = os.path.join(self.root, "runs", "%s+%d" % (r["name"].replace("/", "+"), r["started"]))
        target = os.path.join(run, "submitted", r["student"], ASSIGNMENT)
        os.makedirs(os.path.dirname(target))
        os.symlink(os.path.join(self.course, "source"), os.path.join(run, "source"))
        with open(os.path.join(run, "nbgrader_config.py"), "w") as f:
            f.write(RUN_CONFIG % {"course": os.path.join(self.course, "nbgrader_config.py")})
        # the gradebook as it is now (the assignment's cells, their points), copied whole
        with contextlib.closing(sqlite3.connect(os.path.join(self.course, "gradebook.db"))) as src, \
                contextlib.closing(sqlite3.connect(os.path.join(run, "gradebook.db"))) as dst:
            src.backup(dst)
        # the visible checks only: each test cell as the student edition has it
        with open(os.path.join(run, HIDDEN_COUNTS), "w") as f:
            json.dump(strip_hidden(os.path.join(run, "gradebook.db"), os.path.join(self.course, "release", ASSIGNMENT)),
                      f)
        path = entry_path(self.course, r)
        reason, st = collect.check_submission(path, r["student"], r.get("inbound"))
        if reason:
            return {"state": REFUSED, "reason": "set aside: %s" % reason}
        os.mkdir(target, 0o700)
        try:
            collect.read_submission(path, st, target)
            collect.check_timestamp(target)
        except collect.Refused as e:
            return {"state": REFUSED, "reason": "set aside: %s (found while copying it)" % e}
        notes = set_aside_unreadable(run, ASSIGNMENT, r["student"])
        log = os.path.join(run, "autograde.log")
        for step in (["autograde", ASSIGNMENT, "--student", r["student"], "--force"],
                     ["generate_feedback", ASSIGNMENT, "--student", r["student"], "--force"]):
            with open(log, "a") as out:
                proc = subprocess.Popen([NBGRADER, *step], cwd=run, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True, env=dict(os.environ, MLP_SANDBOX_PREFIX=SANDBOXES))
                self.running[r["name"]] = proc
                with self.queue.lock:
                    r["pid"] = proc.pid  # (a process group: a service started again kills what is left)
                    self.queue.save()
                code = proc.wait()
            if self.stopping:
                return {}
            if code:
                with open(log) as f:
                    said = [line for line in f.read().splitlines() if "ERROR" in line or "Error" in line]
                return {"state": FAILED, "reason": "nbgrader %s stopped (exit %d)%s" % (
                    step[0], code, ": " + said[-1][:300] if said else "")}
        score, max_score, hidden = self.visible_score(run, r["student"])
        feedback = os.path.join(run, "feedback", r["student"], ASSIGNMENT)
        uid = r["uid"]
        for html in sorted(os.listdir(feedback)):
            if html.endswith(".html"):
                name = notebook_hash(secret=r["secret"], notebook_id=html[:-5]) + ".html"
                release_private(os.path.join(feedback, html), os.path.join(self.exchange, "feedback", name),
                                         uid)
        with open(log) as f:  # what the sandbox said of the submission: its time limit, a stop
            notes += sorted({line.split("] ", 1)[1] for line in f.read().splitlines()
                             if "[AutogradeApp | WARNING]" in line and any(w in line for w in SANDBOX_SAID)})
        return {"state": GRADED, "score": score, "max_score": max_score, "hidden": hidden, "pid": None,
                "reason": "; ".join(notes) or None}

    @staticmethod
    def visible_score(run, student):
        """(points, the most points, hidden checks) of the automatic checks, the test cells
        as the student edition has them (their hidden tests taken out: strip_hidden)."""
        from nbgrader.api import Gradebook

        score = most = 0
        with Gradebook("sqlite:///" + os.path.join(run, "gradebook.db")) as gb:
            for nb in gb.find_submission(ASSIGNMENT, student).notebooks:
                for grade in nb.grades:
                    if grade.cell.cell_type == "code":
                        score += grade.score or 0
                        most += grade.max_score
        with open(os.path.join(run, HIDDEN_COUNTS)) as f:
            return score, most, sum(json.load(f).values())

    # --- the service --------------------------------------------------------------
    def remove_stale_sandboxes(self):
        """Grading sandboxes a killed service left: removed (their submissions wait again)."""
        out = subprocess.run(["podman", "ps", "-a", "--format", "{{.Names}}", "--filter", "name=^%s-" % SANDBOXES],
                             capture_output=True, text=True)
        names = out.stdout.split()
        if names:
            subprocess.run(["podman", "rm", "-f", *names], capture_output=True)

    def stop(self, *_):
        self.stopping = True
        for proc in list(self.running.values()):
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)

    @staticmethod
    def log(line):
        print("%s on-submit: %s" % (time.strftime("%H:%M:%S"), line), flush=True)

    def serve(self, once=False):
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.log("watching the students' inbounds in %s (%d at once, %d per student an hour)" % (
            disks.inbound_root(exchange.hub_state(self.course)), self.jobs, rate()))
        while not self.stopping:
            self.scan()
            self.start_ready()
            with self.queue.lock:
                if self.dirty:
                    self.queue.save()
                    self.dirty = False
            if once and not self.running and not self.queue.next_ready(time.time()):
                break
            time.sleep(1)
        deadline = time.time() + 20
        while any(p is not None and p.poll() is None for p in self.running.values()) and time.time() < deadline:
            time.sleep(0.2)
        self.remove_stale_sandboxes()


# the folder of one grading: the course's configuration, in this folder, and the feedback
# without the hidden checks
RUN_CONFIG = '''import os
c = get_config()  # noqa: F821
load_subconfig(%(course)r)  # noqa: F821
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
from mlp_lab.course.hand_in_feedback import HiddenChecks
c.GenerateFeedback.preprocessors = c.GenerateFeedback.preprocessors + [HiddenChecks]
'''


def entry_path(course, r):
    """Where the submission of record `r` is: its name in its student's inbound, or in the
    shared one (an earlier version's record, or a submission found there)."""
    if r.get("inbound"):
        return os.path.join(disks.inbound_dir(exchange.hub_state(course), r["inbound"]), r["entry"])
    return os.path.join(exchange.shared_inbound(course), r.get("entry", r["name"]))


def ordinal(n):
    return "%d%s" % (n, {1: "st", 2: "nd", 3: "rd"}.get(n % 10 if n % 100 not in (11, 12, 13) else 0, "th"))


def read_secret(path, uid):
    """The submission secret nbgrader's submit wrote in the folder `path`, read without
    following a link, when `path` is a folder of `uid` (else None)."""
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
            return None
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            f = os.open("submission_secret.txt", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
            try:
                return os.read(f, 1024).decode("ascii", "replace").strip() or None
            finally:
                os.close(f)
        finally:
            os.close(fd)
    except OSError:
        return None


def queue_page(course):
    """The queue as one HTML page for the instructor (the course service's /grading-queue):
    per state, then per student, every submission seen, newest first."""
    from html import escape

    items = Queue(queue_path(course)).items.values()
    on = os.environ.get("MLP_GRADE_ON_SUBMIT", "1") != "0"
    counts = {s: sum(r["state"] == s for r in items) for s in (WAITING, GRADING, GRADED, FAILED, REFUSED, REPLACED)}
    rows = "".join(
        "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>" % tuple(escape(str(x)) for x in (
            r.get("student") or "?", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["seen"])), r["state"],
            "%s of %s" % (points(r["score"]), points(r["max_score"])) if r["state"] == GRADED else "",
            r.get("told") or r.get("reason") or ""))
        for r in sorted(items, key=lambda r: (r.get("student") or "", -r["seen"])))
    return ("<!doctype html><meta charset=utf-8><title>Grading on hand-in</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;text-align:left}"
            "tr:nth-child(even){background:#f4f4f4}</style>"
            "<h1>Grading on hand-in</h1><p>%s</p><p>%s</p>"
            "<table><tr><th>student</th><th>handed in</th><th>state</th><th>visible points</th><th>what the student"
            " sees</th></tr>%s</table>") % (
        "On (MLP_GRADE_ON_SUBMIT=0 turns it off)." if on else "Off (MLP_GRADE_ON_SUBMIT=0).",
        escape(", ".join("%s %d" % kv for kv in counts.items())), rows)


def main():
    from mlp_lab import ROOT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--course", default=os.environ.get("MLP_HUB_COURSE") or os.path.join(ROOT, "course"))
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--once", action="store_true", help="stop when nothing is left to grade")
    args = parser.parse_args()
    if os.getuid() == 0:
        sys.exit("on-submit grading runs as the grader account, never as root (make hub starts it as %s)"
                 % os.environ.get("MLP_GRADER", "mlp-grader"))
    Service(os.path.abspath(args.course), max(1, args.jobs)).serve(args.once)


if __name__ == "__main__":
    main()
