"""class-test, step 7: grading on hand-in (mlp_lab/course/on_submit.py, the hub's
`grading` service), as each student sees it in their Assignment List.

The hub runs it with one grading at a time and three a student an hour (class_test's
GRADING_ENV). By now every submission of steps 3-6 has been graded without the
instructor doing anything: ann's untouched edition 0, her solved one 45, bob's the same
as make autograde gave him, cat's 0 of the 45 automatic points on the visible checks.
Then: nothing of a hidden check's source is in any file a student received; bob, cat and
ann hand in again, and while bob's is grading the service is killed (JupyterHub starts it
again) and then bob's sandbox (he gets a result with the reason); ann's fourth hand-in
waits for the rate (MLP_GRADE_RATE); the instructor's queue page lists them all.
"""

import glob
import html
import json
import os
import re
import signal
import subprocess
import time

import nbformat

from mlp_lab.course import grader, hand_in_feedback, on_submit
from support import until
from support.course import scores
from support.http import request
from support.hub import assignments

ON_HAND_IN = hand_in_feedback.ON_HAND_IN
RESULT_TIMEOUT = 900  # seconds a submission may take from hand-in to its result here


def submissions(c, user):
    """The Assignment List's rows of `user`'s submissions of mlp: [(time, what it says)]."""
    status, body = assignments(c.hub, user, c.tokens[user])
    rows = []
    for a in (body or {}).get("value", []) if status == 200 else []:
        if a.get("assignment_id") == "mlp" and a.get("status") == "submitted":
            rows += [tuple((s["timestamp"] + " · ").split(" · ", 1)) for s in a["submissions"]]
    return sorted((stamp, said.rstrip(" ·")) for stamp, said in rows)


def queue(c):
    return on_submit.Queue(on_submit.queue_path(c.course)).items


def settled(record):
    return record["state"] in on_submit.ENDED


def wait_for(c, names, what, timeout=RESULT_TIMEOUT):
    """Until each submission in `names` (their keys in the queue: `<student>/<name>`, in
    their student's inbound) has ended; returns the queue."""
    start = time.time()
    until(lambda: all(settled(queue(c).get(n, {"state": ""})) for n in names), timeout, step=2)
    q = queue(c)
    c.t.check("%s: all %d ended (%.0f s)" % (what, len(names), time.time() - start),
              all(settled(q.get(n, {"state": ""})) for n in names), {n: q.get(n, {}).get("state") for n in names})
    return q


def hidden_lines(course):
    """The lines of the hidden tests in the source notebooks that the student edition does
    not have anywhere (`let mut rng = NumpyRng::new(0);` is in a visible cell too)."""
    lines = set()
    for path in glob.glob(os.path.join(course, "source", "mlp", "*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for block in re.findall(r"BEGIN HIDDEN TESTS(.*?)END HIDDEN TESTS", cell.source, re.S):
                lines |= {line.strip() for line in block.splitlines() if len(line.strip()) >= 16}
    edition = "".join(c.source for path in glob.glob(os.path.join(course, "release", "mlp", "*.ipynb"))
                      for c in nbformat.read(path, as_version=4).cells)
    return {line for line in lines if line not in edition}


def received(c, user):
    """Every file `user` has received from grading on hand-in: the feedback fetched into
    ~/mlp/feedback/ and the pages in the exchange their uid may read, but the instructor's
    feedback released after the due date (nbgrader's, the hidden tests' results in it by
    design)."""
    home = os.path.join(c.hub.state, "homes", user)
    uid = os.stat(home).st_uid
    files = glob.glob(os.path.join(home, "mlp", "feedback", "*", "*"))
    feedback = c.exchange("feedback")
    files += [os.path.join(feedback, f) for f in os.listdir(feedback)
              if "user:%d:r" % uid in subprocess.run(["getfacl", "-cn", os.path.join(feedback, f)],
                                                     capture_output=True, text=True).stdout]
    return [f for f in files if f.endswith(".json") or ON_HAND_IN in open(f, errors="replace").read()]


def graded_on_hand_in(c):
    t, hub = c.t, c.hub
    inbound_names = [n for n, r in queue(c).items() if r.get("student") in c.students]
    q = wait_for(c, inbound_names, "the submissions of steps 3-6, graded on hand-in")
    for name in sorted(inbound_names, key=lambda n: q[n]["seen"]):
        r = q[name]
        wait = r.get("finished", 0) - r["seen"]
        print("  %-4s handed in %s: %s, %.0f s from hand-in to result%s" % (
            r["student"], time.strftime("%H:%M:%S", time.localtime(r["seen"])), r["state"], wait,
            " (%s of %s)" % (r.get("score"), r.get("max_score")) if r["state"] == on_submit.GRADED else ""))
    rows = {user: submissions(c, user) for user in c.students}
    for user, row in rows.items():
        print("  %s's Assignment List: %s" % (user, " | ".join("%s · %s" % r for r in row)))
    marks = scores(c.course, c.students)
    for user, want in (("ann", "45"), ("bob", "%g" % marks.get("bob", (0, 0))[0]), ("cat", "0")):
        latest = rows[user][-1][1] if rows[user] else ""
        t.check("%s's Assignment List, under the latest submission: %s" % (user, latest or "nothing"),
                latest.startswith("graded: %s of 45 automatic points on the visible checks" % want)
                and "hidden checks are graded after the due date" in latest, rows[user])
    t.check("ann's first submission (the untouched edition) has its own result, 0, and the second replaces it",
            len(rows["ann"]) == 2 and rows["ann"][0][1].startswith("graded: 0 of 45"), rows["ann"])
    t.check("ann's feedback from hand-in is in ~/mlp/feedback/<time>/ (the list fetched it)",
            all(os.path.exists(os.path.join(hub.state, "homes", "ann", "mlp", "feedback", stamp, "02_toy_network.html"))
                for stamp, _ in rows["ann"]), rows["ann"])

    lines = hidden_lines(c.course)
    autograded = "".join(open(p).read() for p in glob.glob(os.path.join(c.course, "autograded", "ann", "mlp", "02_*")))
    t.check("the hidden tests' %d lines are in the instructor's autograded notebook (the grep finds them)"
            % len(lines), lines and any(line in autograded for line in lines), len(lines))
    leaks = {}
    for user in c.students:
        for path in received(c, user):
            text = open(path, errors="replace").read()
            if path.endswith(".html"):  # what a reader sees: the code's highlighting and entities gone
                text = html.unescape(re.sub(r"<[^>]+>", "", text))
            found = [line for line in lines if line in text or json.dumps(line)[1:-1] in text]
            if found:
                leaks[path] = found[:3]
    t.check("no file a student received holds a line of a hidden test (%d files grepped)"
            % sum(len(received(c, u)) for u in c.students), not leaks, leaks)

    crash_and_restart(c)
    rate_limited(c)
    status, page = request(hub.service() + "/grading-queue", c.tokens[c.instructor])
    page = page if isinstance(page, str) else str(page)
    t.check("the instructor's queue page (/services/course/grading-queue) lists every student's submissions",
            status == 200 and all(s in page for s in c.students) and "graded" in page and "queued" in page,
            (status, page[:500]))


def hand_in(c, user):
    status, body = assignments(c.hub, user, c.tokens[user], "submit")
    c.t.check("%s hands in again" % user, status == 200, body)
    time.sleep(1.1)
    theirs = [(stamp(e.name), e.key) for e in c.handed_in() if e.student == user and e.name.startswith(user + "+")]
    return max(t for t in theirs if t[0] is not None)[1]


def stamp(name):
    """The time nbgrader's name of a submission gives, None when it gives none."""
    try:
        return on_submit.parse_name(name)[2]
    except (ValueError, OverflowError):
        return None


def service_pids(c):
    out = subprocess.run(["pgrep", "-f", "mlp_lab.course.on_submit --course %s" % c.course],
                         capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def crash_and_restart(c):
    """Three hand in; while bob's grades and two wait, the grading service is killed (as
    a crash or a hub restart stops it); JupyterHub starts it again and loses none of
    them; then bob's sandbox is killed: his grading ends with the reason."""
    t = c.t
    names = [hand_in(c, user) for user in ("bob", "cat", "ann")]
    until(lambda: queue(c).get(names[0], {}).get("state") == on_submit.GRADING
          and all(n in queue(c) for n in names), 300, step=1)
    before = {n: queue(c).get(n, {}).get("state") for n in names}
    pids = service_pids(c)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    print("  killed the grading service (pids %s) with %s" % (pids, before))
    t.check("the grading service was killed while bob's grades and two wait",
            pids and before == {names[0]: "grading", names[1]: "queued", names[2]: "queued"}, before)
    start = time.time()
    until(lambda: service_pids(c) and queue(c).get(names[0], {}).get("again"), 120, step=1)
    t.check("JupyterHub started it again (%.0f s); bob's submission waits again in its place"
            % (time.time() - start), bool(service_pids(c)) and queue(c).get(names[0], {}).get("again") == 1,
            queue(c).get(names[0]))
    until(lambda: queue(c).get(names[0], {}).get("state") == on_submit.GRADING and sandboxes(), 300, step=1)
    killed = sandboxes()
    subprocess.run(grader.command(["podman", "kill", *killed]), capture_output=True, cwd="/")
    print("  killed bob's grading sandbox %s" % killed)
    q = wait_for(c, names, "after the crash: bob's, cat's and ann's")
    for n in names:
        print("  %s: %s" % (q[n]["student"], q[n].get("told")))
    t.check("bob's ends with the reason: %s" % q[names[0]].get("reason"),
            q[names[0]]["state"] == on_submit.GRADED and "sandbox stopped" in (q[names[0]].get("reason") or ""),
            q[names[0]])
    t.check("cat's and ann's graded after the restart", all(q[n]["state"] == on_submit.GRADED for n in names[1:]),
            [q[n] for n in names[1:]])


def sandboxes():
    out = subprocess.run(grader.command(["podman", "ps", "--format", "{{.Names}}", "--filter",
                                         "name=^%s-" % on_submit.SANDBOXES]), capture_output=True, text=True, cwd="/")
    return out.stdout.split()


def rate_limited(c):
    """ann's fourth hand-in within the hour waits for MLP_GRADE_RATE (3 here), and says until when."""
    name = hand_in(c, "ann")
    until(lambda: (queue(c).get(name) or {}).get("until"), 60, step=1)
    latest = submissions(c, "ann")[-1][1]
    print("  ann's fourth hand-in: %s" % latest)
    c.t.check("ann's fourth hand-in this hour waits (MLP_GRADE_RATE=3) and says until when: %s" % latest,
              latest.startswith("waiting: 3 graded this hour (MLP_GRADE_RATE), the next from"), latest)
