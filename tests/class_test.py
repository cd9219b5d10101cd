"""`make class-test`: the assignment's round trip through the course's JupyterHub.

    python tests/class_test.py

A hub as `make hub` serves it (a container per student, nbgrader's exchange, the
instructor's Formgrader service at /services/course/) on a free loopback port, with a
scratch copy of the course folder. Three students start their servers before anything
is released; then, through the same HTTP APIs their JupyterLab and the instructor's
Formgrader use:

1. the instructor releases `mlp` (Formgrader's Release);
2. each student fetches it into ~/mlp (the Assignment List's Fetch); a second fetch
   leaves their work alone;
3. ann hands in the untouched edition, then the solved one (a late resubmission that
   must replace the first); bob the solved one with a planted bug in his backward pass;
   cat the blank edition; ann and bob validate notebook 2 first (the Assignment List's
   Validate: ann's passes, bob's names the failing test);
4. from ann's kernel, attacks on the exchange: listing `inbound/` and `feedback/`,
   reading bob's submission and, later, bob's feedback at their exact paths, and
   handing in a blank notebook under bob's name (`nbgrader submit --student bob`);
5. the instructor runs `make autograde`'s grading (mlp_lab/course/autograde.py: collect, then
   the sandboxed, parallel autograde): the forged submission refused, ann 45, bob in
   between, cat 0 of the 45 automatic points; enters a manual grade for a written
   answer of ann's through Formgrader's API; generates and releases the feedback;
6. each student fetches their feedback: their own scores, nobody else's.

With --browser (make class-test), then the same screens in headless Chromium: a fourth
student, dan, whose server was running at the release, opens his Assignment List, fetches
and submits; the instructor opens Formgrader's list of submissions and grades one of
ann's written answers by hand. Screenshots in target/class/.

Closes with 'class: N passed, N failed'. Logs and the feedback in target/class/.
"""

import asyncio
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from browser_test import free_port  # noqa: E402
from grading_test import edit, scratch_course  # noqa: E402
from hub_test import CONTAINERS, PASSWORD, Hub, request, run_notebook  # noqa: E402
from mlp_lab.checks import Checks  # noqa: E402
from mlp_lab.course.preprocessors import in_image  # noqa: E402

OUT = os.path.join(ROOT, "target", "class")
COURSE_ID = "mlp-lab"
STUDENTS = ["ann", "bob", "cat"]
LATE = "dan"  # the browser's student
INSTRUCTOR = "instructor"
AUTOMATIC = 45.0  # the automatic points of the assignment (notebooks 2 and 3)
# seconds for a validation: it runs notebook 2 on evcxr in the student's container
VALIDATE_TIMEOUT = 600

# Rust, from ann's kernel in her container: what she can reach of the exchange
ATTACK = r'''
use std::process::Command;
fn try_read(what: &str, path: &str) {
    match std::fs::read(path) {
        Ok(b) => println!("BREACHED {}: read {} bytes of {}", what, b.len(), path),
        Err(e) => println!("HELD {}: {}", what, e),
    }
}
fn try_list(what: &str, path: &str) {
    match std::fs::read_dir(path) {
        Ok(d) => println!("BREACHED {}: listed {} entries", what, d.count()),
        Err(e) => println!("HELD {}: {}", what, e),
    }
}
LINES
'''


def formgrader(hub, token, path, method="GET", body=None):
    return request("%s/services/course/formgrader/api/%s" % (hub.base, path), token, method, body)


def assignments(hub, user, token, action=None):
    """The Assignment List's server API in `user`'s server: the list, or an action on `mlp`."""
    if action is None:
        return request("%s/user/%s/assignments?course_id=%s" % (hub.base, user, COURSE_ID), token)
    return request("%s/user/%s/assignments/%s" % (hub.base, user, action), token, "POST",
                   {"course_id": COURSE_ID, "assignment_id": "mlp"})


def contents(hub, user, token, path, model=None):
    url = "%s/user/%s/api/contents/%s" % (hub.base, user, urllib.parse.quote(path))
    if model is None:
        return request(url, token)
    return request(url, token, "PUT", model)


def run_cell(hub, user, token, code):
    """One cell in a fresh kernel of `user`'s server: its printed text."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    asyncio.run(run_notebook(hub.base, user, token, nb, {}))
    return "".join(o.get("text", "") + o.get("evalue", "") for o in nb.cells[0].outputs)


def hand_in_edition(hub, user, token, source, bug=False):
    """`user` fills in their ~/mlp with the notebooks of `source` (their cells as the
    student edition has them, the solutions filled in), as their JupyterLab saves them."""
    for path in sorted(glob.glob(os.path.join(source, "*.ipynb"))):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            cell.source = in_image(cell.source)
        if bug and os.path.basename(path).startswith("02"):
            scratch = os.path.join(tempfile.mkdtemp(), "nb.ipynb")
            nbformat.write(nb, scratch)
            edit(scratch, ["backward"], "h * (1.0 - h)", "h * (1.0 + h)")
            nb = nbformat.read(scratch, as_version=4)
        status, _ = contents(hub, user, token, "mlp/" + os.path.basename(path),
                             {"type": "notebook", "format": "json", "content": nb})
        if status not in (200, 201):
            raise RuntimeError("saving %s for %s: %s" % (os.path.basename(path), user, status))


def statuses(listing):
    """The statuses of `mlp` in an Assignment List answer ({"success", "value": [...]}):
    "released", "fetched", "submitted" (one entry per submission)."""
    if not isinstance(listing, dict) or not listing.get("success"):
        return ["error: %s" % str(listing)[:300]]
    return sorted({a.get("status") for a in listing["value"] if a.get("assignment_id") == "mlp"})


def scores(course):
    """{student: (automatic points, points of the written answers)} from the gradebook."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook("sqlite:///" + os.path.join(course, "gradebook.db"), COURSE_ID) as gb:
        for student in STUDENTS:
            try:
                sub = gb.find_submission("mlp", student)
            except Exception:  # nbgrader's MissingEntry: nothing graded
                continue
            out[student] = (sub.code_score, sub.written_score)
    return out


def browser(t, hub, course):
    """dan's Assignment List (fetch, submit) and the instructor's Formgrader (the list of
    submissions, a grade by hand), in headless Chromium."""
    from playwright.sync_api import sync_playwright

    from browser_test import CHROMIUM

    def shot(page, name):
        return page.screenshot(path=os.path.join(OUT, name + ".png"))

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"] if os.getuid() == 0 else [])

        def login(name, password, next_url):
            page = chromium.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.goto("%s/hub/login?next=%s" % (hub.base, urllib.parse.quote(next_url)))
            page.fill("#username_input", name)
            page.fill("#password_input", password)
            page.click("#login_submit")
            return page

        page = login(LATE, PASSWORD, "/user/%s/lab" % LATE)
        page.wait_for_selector("#jp-main-dock-panel", timeout=120000)
        page.wait_for_timeout(2000)
        page.keyboard.press("Control+Shift+c")
        page.locator('#modal-command-palette li[data-command="nbgrader:open-assignment-list"]').click()
        released = page.locator("#released_assignments_list > .list_item")
        released.first.wait_for(timeout=60000)
        shot(page, "assignment-list-released")
        t.check("browser: dan's Assignment List shows mlp released (%s)" % released.first.inner_text().split("\n"),
                "mlp" in released.first.inner_text())
        released.first.locator(".item_status button").click()
        fetched = page.locator("#fetched_assignments_list > .list_item")
        fetched.first.wait_for(timeout=60000)
        t.check("browser: dan presses Fetch: mlp is in his fetched list", "mlp" in fetched.first.inner_text())
        fetched.first.locator('.item_status button:text("Submit")').click()
        submitted = page.locator("#submitted_assignments_list > .list_item")
        submitted.first.wait_for(timeout=120000)
        page.wait_for_timeout(500)
        shot(page, "assignment-list-submitted")
        inbound = os.listdir(os.path.join(hub.state, "exchange", COURSE_ID, "inbound"))
        t.check("browser: dan presses Submit: it is in his submitted list and in the exchange",
                "mlp" in submitted.first.inner_text() and any(h.startswith(LATE + "+") for h in inbound), inbound)

        page = login(INSTRUCTOR, PASSWORD * 4, "/services/course/formgrader/manage_submissions/mlp")
        page.locator("#main-table tr").filter(has_text="cat").first.wait_for(timeout=60000)
        page.wait_for_timeout(500)
        page.wait_for_timeout(1000)
        shot(page, "formgrader-submissions")
        text = page.locator("#main-table").inner_text()
        t.check("browser: Formgrader lists the submissions (ann, bob, cat)",
                all(s in text for s in STUDENTS), text[:500])
        status, subs = request("%s/services/course/formgrader/api/submitted_notebooks/mlp/01_backprop_derivations"
                               % hub.base, TOKENS[INSTRUCTOR])
        bob = [x for x in subs if x["student"] == "bob"][0]
        page.goto("%s/services/course/formgrader/submissions/%s/" % (hub.base, bob["id"]))
        score = page.locator("input.score.needs_manual_grade").first
        score.wait_for(timeout=60000)
        score.fill("3")
        score.press("Tab")
        page.locator(".score-saved").first.wait_for(state="visible", timeout=30000)
        page.wait_for_timeout(500)
        shot(page, "formgrader-grade-by-hand")
        marks = scores(course)
        t.check("browser: the instructor grades bob's first written answer by hand: 3 (gradebook: %s)"
                % marks.get("bob", (0, 0))[1], marks.get("bob", (0, 0))[1] == 3, marks)
        chromium.close()


TOKENS = {}


def main():
    if not CONTAINERS:
        sys.exit("make class-test needs the hub's containers (MLP_HUB_ISOLATION=containers)")
    t = Checks()
    os.makedirs(OUT, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="mlp-class-")
    course = scratch_course(scratch)
    os.environ.update(MLP_HUB_COURSE=course, MLP_HUB_COURSE_PORT=str(free_port()))
    hub = Hub(pool=1)
    env = dict(os.environ, MLP_HUB_STATE=hub.state, PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep
               + os.environ["PATH"])
    tokens = TOKENS
    with_browser = "--browser" in sys.argv
    try:
        for user in STUDENTS + ([LATE] if with_browser else []) + [INSTRUCTOR]:
            if user != INSTRUCTOR:
                status, _ = hub.call("/users/%s" % user, "POST", {})
                t.check("%s is a student of the hub" % user, status == 201, status)
            status, body = hub.call("/users/%s/tokens" % user, "POST", {"note": "class-test"})
            tokens[user] = (body or {}).get("token")
        teacher = tokens[INSTRUCTOR]
        for _ in range(240):
            status, body = formgrader(hub, teacher, "assignments")
            if status == 200:
                break
            time.sleep(0.5)
        t.check("the instructor's Formgrader answers at /services/course/ and lists mlp",
                status == 200 and any(a.get("name") == "mlp" for a in body or []), (status, str(body)[:500]))
        errors = {}

        def start(user):
            try:
                hub.start_server(user)
            except Exception as e:
                errors[user] = repr(e)

        threads = [threading.Thread(target=start, args=(u,)) for u in STUDENTS + ([LATE] if with_browser else [])]
        [th.start() for th in threads]
        [th.join() for th in threads]
        t.check("the students' servers started (before the release)", not errors, errors)

        # 1. release
        status, body = formgrader(hub, tokens["ann"], "assignments")
        t.check("a student's token on the instructor's Formgrader: refused (%s)" % status,
                status in (302, 403, 404) and not isinstance(body, list), (status, str(body)[:200]))
        status, _ = request("%s/services/course/api/contents" % hub.base, tokens["ann"])
        t.check("a student's token on the course folder: refused (%s)" % status, status in (302, 403, 404), status)
        status, body = assignments(hub, "ann", tokens["ann"])
        t.check("before the release, ann's Assignment List is empty", status == 200 and not statuses(body),
                (status, body))
        status, body = formgrader(hub, teacher, "assignment/mlp/release", "POST")
        t.check("the instructor releases mlp from Formgrader", status == 200 and (body or {}).get("success"),
                (status, str(body)[:1500]))
        released = os.path.join(hub.state, "exchange", COURSE_ID, "outbound", "mlp", "02_toy_network.ipynb")
        text = open(released).read() if os.path.exists(released) else ""
        t.check("the released notebooks use the course image's mlp-core",
                "/opt/mlp-lab/mlp-core" in text and ROOT + "/mlp-core" not in text, text[:300])

        # 2. fetch
        for user in STUDENTS:
            status, body = assignments(hub, user, tokens[user], "fetch")
            t.check("%s fetches mlp from the Assignment List (%s)" % (user, statuses(body)),
                    status == 200 and statuses(body) == ["fetched"], (status, str(body)[:500]))
            status, body = contents(hub, user, tokens[user], "mlp")
            names = sorted(c["name"] for c in (body or {}).get("content", [])) if status == 200 else body
            t.check("%s has the four notebooks in ~/mlp" % user, status == 200 and len(
                [n for n in names if n.endswith(".ipynb")]) == 4, names)
        contents(hub, "ann", tokens["ann"], "mlp/notes.txt", {"type": "file", "format": "text", "content": "mine"})
        assignments(hub, "ann", tokens["ann"], "fetch")
        status, body = contents(hub, "ann", tokens["ann"], "mlp/notes.txt")
        t.check("fetching again leaves ann's work alone", status == 200 and body.get("content") == "mine", body)

        # 3. validate, submit
        status, body = assignments(hub, "ann", tokens["ann"], "submit")
        t.check("ann hands in the untouched edition", status == 200 and "submitted" in statuses(body), body)
        source = os.path.join(course, "source", "mlp")
        hand_in_edition(hub, "ann", tokens["ann"], source)
        hand_in_edition(hub, "bob", tokens["bob"], source, bug=True)
        for user, passes in (("ann", True), ("bob", False)):
            start_v = time.time()
            status, body = request("%s/user/%s/assignments/validate" % (hub.base, user), tokens[user], "POST",
                                   {"path": "mlp/02_toy_network.ipynb"}, timeout=VALIDATE_TIMEOUT)
            value = (body or {}).get("value") if isinstance(body, dict) else None
            verdict = json.loads(value) if isinstance(value, str) and value.startswith("{") else value
            failed = isinstance(verdict, dict) and bool(verdict.get("failed") or verdict.get("changed"))
            t.check("%s validates notebook 2 (%.0f s): %s" % (user, time.time() - start_v,
                                                              "passes" if passes else "names the failing test"),
                    status == 200 and body.get("success") and failed != passes, (status, str(body)[:1500]))
        for user in STUDENTS:
            time.sleep(1.1)  # (nbgrader's timestamps: the resubmission is later)
            status, body = assignments(hub, user, tokens[user], "submit")
            t.check("%s submits from the Assignment List" % user,
                    status == 200 and statuses(body) == ["fetched", "submitted"],
                    (status, str(body)[:500]))
        inbound = os.path.join(hub.state, "exchange", COURSE_ID, "inbound")
        handed = sorted(os.listdir(inbound))
        t.check("four submissions are in the exchange (ann's twice)", len(handed) == 4, handed)
        bobs = [h for h in handed if h.startswith("bob+")]

        # 4. ann's attacks on the exchange
        lines = ['try_list("listing the submissions", "/srv/nbgrader/exchange/mlp-lab/inbound");',
                 'try_read("reading bob\'s submission", '
                 '"/srv/nbgrader/exchange/mlp-lab/inbound/%s/02_toy_network.ipynb");' % bobs[0],
                 'try_list("listing the feedback", "/srv/nbgrader/exchange/mlp-lab/feedback");',
                 'try_read("reading the gradebook", "%s/gradebook.db");' % course,
                 'let out = Command::new("nbgrader").args(["submit", "mlp", "--student", "bob"]).current_dir('
                 '"/home/jovyan").output().unwrap();',
                 'println!("forged: {}", out.status);']
        said = run_cell(hub, "ann", tokens["ann"], ATTACK.replace("LINES", "\n".join(lines)))
        for line in said.splitlines():
            if line.startswith(("HELD", "BREACHED")):
                t.check("ann, " + line, line.startswith("HELD"), line)
        t.check("ann's attempts all reported", len(re.findall(r"^(HELD|BREACHED)", said, re.M)) == 4, said[-1500:])
        forged = [h for h in os.listdir(inbound) if h.startswith("bob+") and h not in bobs]
        t.check("ann could hand in a notebook named as bob's (nbgrader allows it; collect must refuse it)",
                len(forged) == 1, said[-1500:])

        # 5. collect, autograde, a manual grade, feedback
        start_g = time.time()
        out = subprocess.run([sys.executable, "-m", "mlp_lab.course.autograde", "--course", course,
                              "--logs", os.path.join(OUT, "autograde")], env=env, capture_output=True, text=True)
        print(out.stdout, end="")
        t.check("make autograde's grading collected and graded the class (%.0f s)" % (time.time() - start_g),
                out.returncode == 0, out.stderr[-2000:])
        t.check("the submission ann made in bob's name was refused, not collected",
                "refused" in out.stdout and forged and os.path.exists(os.path.join(course, "refused", forged[0])),
                out.stdout[-1500:])
        marks = scores(course)
        print("  automatic points: %s" % ", ".join("%s %.0f" % (s, marks.get(s, (0, 0))[0]) for s in STUDENTS))
        t.check("ann's resubmission counts: %.0f of 45" % marks.get("ann", (0, 0))[0],
                marks.get("ann", (0, 0))[0] == AUTOMATIC, marks)
        t.check("bob, with his bug: in between (%.0f)" % marks.get("bob", (0, 0))[0],
                0 < marks.get("bob", (0, 0))[0] < AUTOMATIC, marks)
        t.check("cat, blank: 0", "cat" in marks and marks["cat"][0] == 0, marks)

        status, body = formgrader(hub, teacher, "submitted_notebooks/mlp/01_backprop_derivations")
        ann_nb = [s for s in (body or []) if s.get("student") == "ann"] if status == 200 else []
        t.check("Formgrader lists ann's notebook 1", bool(ann_nb), (status, str(body)[:500]))
        written, grades = [], None
        if ann_nb:
            status, grades = formgrader(hub, teacher, "grades?submission_id=%s" % ann_nb[0]["id"])
            written = [g for g in (grades or []) if g.get("cell_type") == "markdown" and g.get("needs_manual_grade")]
        t.check("ann's notebook 1 has written answers to grade by hand (%d)" % len(written), bool(written), grades)
        if written:
            status, body = formgrader(hub, teacher, "grade/%s" % written[0]["id"], "PUT",
                                      {"manual_score": written[0]["max_score"] - 1})
            t.check("the instructor grades ann's %s by hand: %s of %s" % (
                written[0].get("name"), written[0]["max_score"] - 1, written[0]["max_score"]),
                status == 200 and (body or {}).get("manual_score") == written[0]["max_score"] - 1, (status, body))
            marks = scores(course)
            t.check("the gradebook has ann's written points: %s" % marks.get("ann", (0, 0))[1],
                    marks.get("ann", (0, 0))[1] == written[0]["max_score"] - 1, marks)
        for step in ("generate_feedback", "release_feedback"):
            status, body = formgrader(hub, teacher, "assignment/mlp/" + step, "POST")
            t.check("the instructor: %s" % step.replace("_", " "), status == 200 and (body or {}).get("success"),
                    (status, str(body)[:1500]))
        feedback = os.path.join(hub.state, "exchange", COURSE_ID, "feedback")
        released = sorted(os.listdir(feedback))
        t.check("feedback released: %d files, each readable by its student alone" % len(released),
                len(released) >= 6 and all(os.stat(os.path.join(feedback, f)).st_mode & 0o077 == 0 for f in released),
                released)

        # 6. feedback, each their own
        for user in STUDENTS:
            status, body = assignments(hub, user, tokens[user], "fetch_feedback")
            status, listing = contents(hub, user, tokens[user], "mlp/feedback")
            stamps = [c["name"] for c in (listing or {}).get("content", [])] if status == 200 else []
            html = ""
            for stamp in stamps:
                status, body = contents(hub, user, tokens[user], "mlp/feedback/%s/02_toy_network.html" % stamp)
                if status == 200:
                    html = body["content"]
                    with open(os.path.join(OUT, "feedback-%s-02.html" % user), "w") as f:
                        f.write(html)
            t.check("%s fetched the feedback of their submission (%s)" % (user, stamps),
                    bool(html) and len(stamps) == 1, stamps)
            others = [o for o in STUDENTS if o != user and re.search(r"\b%s\b" % o, html)]
            t.check("%s's feedback is theirs (names no other student)" % user, html and not others, others)
        mine = [f for f in os.listdir(feedback) if os.stat(os.path.join(feedback, f)).st_uid
                == os.stat(os.path.join(hub.state, "homes", "bob")).st_uid]
        if mine:
            said = run_cell(hub, "ann", tokens["ann"], ATTACK.replace("LINES", 'try_read("reading bob\'s feedback", '
                                                                                '"/srv/nbgrader/exchange/mlp-lab/feedback/%s");'
                                                                                % mine[0]))
            t.check("ann, " + said.strip().splitlines()[0] if said.strip() else "ann's attempt on bob's feedback",
                    said.startswith("HELD"), said)
        if with_browser:
            browser(t, hub, course)
    finally:
        hub.stop()
    time.sleep(1)
    left = hub.leftovers()
    t.check("nothing left running after the hub stopped", not left, left)
    if not left:
        shutil.rmtree(hub.state, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    t.close("class")


if __name__ == "__main__":
    main()
