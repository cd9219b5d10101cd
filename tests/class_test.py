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
4. from ann's kernel, attacks on the exchange: listing `inbound/` (her own: each student
   hands in to an inbound of their own, mlp_lab/hub/disks.py) and `feedback/`, reading
   bob's submission (at its exact name, and at his inbound's host path: she has no way to
   it, what she sees of the exchange is printed) and, later, bob's feedback at their exact
   paths, writing into `outbound/`, and handing in a blank notebook under bob's name
   (`nbgrader submit --student bob`: it lands in her own inbound); from cat's, entries of
   her own making in her inbound: notebooks linked to the course's solved source and to
   bob's home, a far-future link named for bob, a name nbgrader cannot read; then she
   fills her inbound past its bound (fallocate, then writing: ENOSPC) and bob hands in
   again meanwhile (that one is collected and graded); bob's notebook 1 carries a script
   in a written answer (for the instructor's Formgrader);
5. the instructor runs `make autograde`'s grading (mlp_lab/course/autograde.py: collect, then
   the sandboxed, parallel autograde): the forged and planted entries set aside, ann 45, bob in
   between, cat 0 of the 45 automatic points; enters a manual grade for a written
   answer of ann's through Formgrader's API; generates and releases the feedback;
6. each student fetches their feedback: their own scores, nobody else's.

With --browser (make class-test), then the same screens in headless Chromium: a fourth
student, dan, whose server was running at the release, opens his Assignment List, fetches
and submits; the instructor opens Formgrader's list of submissions and grades one of
ann's written answers by hand. Screenshots in target/class/.

Closes with 'class: N passed, N failed'. Logs and the feedback in target/class/.
"""

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
from dataclasses import dataclass, field

import nbformat

from class_browser import browser
from class_on_submit import ON_HAND_IN, graded_on_hand_in
from mlp_lab.course import exchange, grader, on_submit
from mlp_lab.course.dep_line import in_image
from mlp_lab.hub import disks
from mlp_lab.hub.containers import COURSE_ID
from mlp_lab.tally import Checks
from support import ROOT, VENV_BIN, until
from support.course import edit, scores, scratch_course
from support.http import free_port, request
from support.hub import CONTAINERS, Hub, assignments, contents, formgrader, statuses
from support.kernel_ws import run_cell

OUT = os.path.join(ROOT, "target", "class")
STUDENTS = ("ann", "bob", "cat")
AUTOMATIC = 45.0  # the automatic points of the assignment (notebooks 2 and 3)
# seconds for a validation: it runs notebook 2 on evcxr in the student's container
VALIDATE_TIMEOUT = 600
# grading on hand-in (mlp_lab/course/on_submit.py): one at a time here, three an hour a student
GRADING_ENV = {"MLP_GRADE_JOBS": "1", "MLP_GRADE_RATE": "3"}

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
fn try_write(what: &str, path: &str) {
    match std::fs::write(path, "planted") {
        Ok(()) => println!("BREACHED {}: wrote {}", what, path),
        Err(e) => println!("HELD {}: {}", what, e),
    }
}
fn show(path: &str) {
    match std::fs::read_dir(path) {
        Ok(d) => {
            let mut names: Vec<String> = d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            println!("SEES {}: {:?}", path, names)
        }
        Err(e) => println!("SEES {}: {}", path, e),
    }
}
LINES
'''


@dataclass
class Class:
    """The class under test: its hub, the scratch course folder, everyone's token."""
    t: Checks
    hub: Hub
    course: str
    tokens: dict = field(default_factory=dict)
    students: tuple = STUDENTS
    late: str = "dan"  # the browser's student
    instructor: str = "instructor"
    out: str = OUT

    def exchange(self, *part):
        return os.path.join(self.hub.state, "exchange", COURSE_ID, *part)

    def inbound(self, student, *part):
        """`student`'s own inbound on the host (a disk of its own, mounted there by the hub)."""
        return os.path.join(disks.inbound_dir(self.hub.state, student), *part)

    def handed_in(self):
        """Every entry in every student's inbound, as the grader lists them: [Entry]."""
        return exchange.entries(self.course)

    def attack(self, user, lines):
        """`lines` of Rust run in `user`'s kernel with ATTACK's helpers: what it printed."""
        return run_cell(self.hub.base, user, self.tokens[user], ATTACK.replace("LINES", "\n".join(lines)))


# A written answer that would run in the instructor's browser when Formgrader shows it:
# it marks the page, writes a file into the course folder and opens a terminal on the
# course service, with the instructor's session (class_browser checks none of it happens).
XSS = """

<img src="x" onerror="window.__mlp_xss = 'onerror ran'; var m = document.cookie.match(/_xsrf=([^;]+)/);
var h = {'Content-Type': 'application/json', 'X-XSRFToken': m ? decodeURIComponent(m[1]) : ''};
fetch('/services/course/api/contents/xss-planted.txt', {method: 'PUT', headers: h,
  body: JSON.stringify({type: 'file', format: 'text', content: 'planted by a written answer'})});
fetch('/services/course/api/terminals', {method: 'POST', headers: h});">
<script>window.__mlp_xss = 'script ran';</script>
"""


def hand_in_edition(hub, user, token, source, bug=False, xss=False):
    """`user` fills in their ~/mlp with the notebooks of `source` (their cells as the
    student edition has them, the solutions filled in), as their JupyterLab saves them;
    `xss`: with XSS in their first written answer."""
    for path in sorted(glob.glob(os.path.join(source, "*.ipynb"))):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            cell.source = in_image(cell.source)
        written = [cell for cell in nb.cells if cell.cell_type == "markdown"
                   and cell.metadata.get("nbgrader", {}).get("solution")]
        if xss and written:
            written[0].source += XSS
        if bug and os.path.basename(path).startswith("02"):
            scratch = os.path.join(tempfile.mkdtemp(), "nb.ipynb")
            nbformat.write(nb, scratch)
            edit(scratch, ["backward"], "h * (1.0 - h)", "h * (1.0 + h)")
            nb = nbformat.read(scratch, as_version=4)
        status, _ = contents(hub, user, token, "mlp/" + os.path.basename(path),
                             {"type": "notebook", "format": "json", "content": nb})
        if status not in (200, 201):
            raise RuntimeError("saving %s for %s: %s" % (os.path.basename(path), user, status))



def enrol(c, with_browser):
    """The students and the instructor in the hub, with a token each; the instructor's
    Formgrader up; the students' servers started before anything is released."""
    t, hub = c.t, c.hub
    for user in c.students + ((c.late,) if with_browser else ()) + (c.instructor,):
        if user != c.instructor:
            status, _ = hub.call("/users/%s" % user, "POST", {})
            t.check("%s is a student of the hub" % user, status == 201, status)
        status, body = hub.call("/users/%s/tokens" % user, "POST", {"note": "class-test"})
        c.tokens[user] = (body or {}).get("token")
    answer = []

    def listed():
        answer[:] = formgrader(hub, c.tokens[c.instructor], "assignments")
        return answer[0] == 200

    until(listed, 120)
    status, body = answer or (None, None)
    t.check("the instructor's Formgrader answers at /services/course/ and lists mlp",
            status == 200 and any(a.get("name") == "mlp" for a in body or []), (status, str(body)[:500]))
    errors = {}

    def start(user):
        try:
            hub.start_server(user)
        except Exception as e:
            errors[user] = repr(e)

    threads = [threading.Thread(target=start, args=(u,)) for u in c.students + ((c.late,) if with_browser else ())]
    [th.start() for th in threads]
    [th.join() for th in threads]
    t.check("the students' servers started (before the release)", not errors, errors)


def release(c):
    """1. The instructor releases mlp from Formgrader; a student's token cannot."""
    t, hub, ann = c.t, c.hub, c.tokens["ann"]
    status, body = formgrader(hub, ann, "assignments")
    t.check("a student's token on the instructor's Formgrader: refused (%s)" % status,
            status in (302, 403, 404) and not isinstance(body, list), (status, str(body)[:200]))
    status, _ = request(hub.service() + "/api/contents", ann)
    t.check("a student's token on the course folder: refused (%s)" % status, status in (302, 403, 404), status)
    status, body = assignments(hub, "ann", ann)
    t.check("before the release, ann's Assignment List is empty", status == 200 and not statuses(body),
            (status, body))
    status, body = formgrader(hub, c.tokens[c.instructor], "assignment/mlp/release", "POST")
    t.check("the instructor releases mlp from Formgrader", status == 200 and (body or {}).get("success"),
            (status, str(body)[:1500]))
    released = c.exchange("outbound", "mlp", "02_toy_network.ipynb")
    text = open(released).read() if os.path.exists(released) else ""
    t.check("the released notebooks use the course image's mlp-core",
            "/opt/mlp-lab/mlp-core" in text and ROOT + "/mlp-core" not in text, text[:300])


def fetch(c):
    """2. Each student fetches mlp into ~/mlp; a second fetch leaves their work alone."""
    t, hub = c.t, c.hub
    for user in c.students:
        status, body = assignments(hub, user, c.tokens[user], "fetch")
        t.check("%s fetches mlp from the Assignment List (%s)" % (user, statuses(body)),
                status == 200 and statuses(body) == ["fetched"], (status, str(body)[:500]))
        status, body = contents(hub, user, c.tokens[user], "mlp")
        names = sorted(x["name"] for x in (body or {}).get("content", [])) if status == 200 else body
        t.check("%s has the four notebooks in ~/mlp" % user, status == 200 and len(
            [n for n in names if n.endswith(".ipynb")]) == 4, names)
    ann = c.tokens["ann"]
    contents(hub, "ann", ann, "mlp/notes.txt", {"type": "file", "format": "text", "content": "mine"})
    assignments(hub, "ann", ann, "fetch")
    status, body = contents(hub, "ann", ann, "mlp/notes.txt")
    t.check("fetching again leaves ann's work alone", status == 200 and body.get("content") == "mine", body)


def submit(c):
    """3. ann hands in the untouched edition, then the solved one; bob the solved one
    with a bug; cat the blank one; ann and bob validate notebook 2 first."""
    t, hub = c.t, c.hub
    status, body = assignments(hub, "ann", c.tokens["ann"], "submit")
    t.check("ann hands in the untouched edition", status == 200 and "submitted" in statuses(body), body)
    source = os.path.join(c.course, "source", "mlp")
    hand_in_edition(hub, "ann", c.tokens["ann"], source)
    hand_in_edition(hub, "bob", c.tokens["bob"], source, bug=True, xss=True)
    for user, passes in (("ann", True), ("bob", False)):
        start = time.time()
        status, body = request(hub.server(user) + "/assignments/validate", c.tokens[user], "POST",
                               {"path": "mlp/02_toy_network.ipynb"}, timeout=VALIDATE_TIMEOUT)
        value = (body or {}).get("value") if isinstance(body, dict) else None
        verdict = json.loads(value) if isinstance(value, str) and value.startswith("{") else value
        failed = isinstance(verdict, dict) and bool(verdict.get("failed") or verdict.get("changed"))
        t.check("%s validates notebook 2 (%.0f s): %s" % (user, time.time() - start,
                                                          "passes" if passes else "names the failing test"),
                status == 200 and body.get("success") and failed != passes, (status, str(body)[:1500]))
    for user in c.students:
        time.sleep(1.1)  # (nbgrader's timestamps: the resubmission is later)
        status, body = assignments(hub, user, c.tokens[user], "submit")
        t.check("%s submits from the Assignment List" % user,
                status == 200 and statuses(body) == ["fetched", "submitted"], (status, str(body)[:500]))
    handed = c.handed_in()
    t.check("four submissions are in the exchange, each in its student's own inbound (ann's twice)",
            len(handed) == 4 and all(e.name.startswith(e.student + "+") for e in handed), handed)
    return [e.name for e in handed if e.student == "bob"]


def attack_exchange(c, bobs):
    """4. ann's attacks on the exchange from her kernel; the forged submission in bob's
    name (nbgrader allows it; collect must refuse it)."""
    t = c.t
    course = "/srv/nbgrader/exchange/mlp-lab"
    said = c.attack("ann", [
        'try_list("listing the submissions (her own inbound)", "%s/inbound");' % course,
        'try_read("reading bob\'s submission at its exact name", "%s/inbound/%s/02_toy_network.ipynb");'
        % (course, bobs[0]),
        'try_list("listing bob\'s inbound at its host path", "%s");' % c.inbound("bob"),
        'try_read("reading bob\'s submission at its host path", "%s");'
        % c.inbound("bob", bobs[0], "02_toy_network.ipynb"),
        'try_list("listing the feedback", "%s/feedback");' % course,
        'try_write("writing into the released assignment", "%s/outbound/mlp/planted.txt");' % course,
        'try_write("writing beside inbound/", "%s/planted.txt");' % course,
        'try_read("reading the gradebook", "%s/gradebook.db");' % c.course,
        'show("%s"); show("%s"); show("/srv/nbgrader/exchange");' % (course, c.inbound("")),
        'for l in std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().filter(|l| l.contains('
        '"nbgrader")) { println!("SEES mount: {}", l); }',
        'let out = Command::new("nbgrader").args(["submit", "mlp", "--student", "bob"]).current_dir('
        '"/home/jovyan").output().unwrap();',
        'println!("forged: {}", out.status);'])
    for line in said.splitlines():
        if line.startswith(("HELD", "BREACHED")):
            t.check("ann, " + line, line.startswith("HELD"), line)
        elif line.startswith("SEES"):
            print("  ann " + line)
    t.check("ann's attempts all reported", len(re.findall(r"^(HELD|BREACHED)", said, re.M)) == 8, said[-1500:])
    sees = [line for line in said.splitlines() if line.startswith("SEES %s:" % course)]
    t.check("ann sees in the exchange's course folder outbound/, feedback/ and an inbound/ (her own), no other "
            "student's", sees == ['SEES %s: ["feedback", "inbound", "outbound"]' % course], sees)
    mounts = [line for line in said.splitlines() if line.startswith("SEES mount:") and "/inbound" in line]
    with open("/proc/self/mounts") as f:
        hers = [line.split()[0] for line in f if line.split()[1] == c.inbound("ann")]
    t.check("ann's container mounts one inbound, her own disk (%s, as the host mounts %s)"
            % (mounts[0].split(" - ")[-1] if mounts else "", hers),
            len(mounts) == 1 and len(hers) == 1 and " - ext4 %s " % hers[0] in mounts[0], (mounts, hers))
    forged = [e.name for e in c.handed_in() if e.student == "ann" and e.name.startswith("bob+")]
    t.check("ann could hand in a notebook named as bob's (nbgrader allows it): it is in her own inbound (collect "
            "must refuse it)", len(forged) == 1 and not [n for n in os.listdir(c.inbound("bob")) if n not in bobs],
            said[-1500:])
    odd = plant_entries(c)
    return [("ann", name) for name in forged] + [("cat", name) for name in odd]


FUTURE = "2099-01-0%d 00:00:00.000000 UTC"
# Rust, from cat's kernel: entries of her own making in the exchange's inbound/, each of
# which root's collect used to follow or choke on
PLANT = r"""
fn entry(inbound: &str, name: &str, links_to: &str) -> std::io::Result<()> {
    let notebooks = ["01_backprop_derivations.ipynb", "02_toy_network.ipynb", "03_mnist.ipynb",
                     "04_regularization.ipynb"];
    let dir = format!("{}/{}", inbound, name);
    std::fs::create_dir(&dir)?;
    std::fs::write(format!("{}/timestamp.txt", dir), name.splitn(3, '+').nth(2).unwrap())?;
    for nb in notebooks {
        std::os::unix::fs::symlink(format!("{}/{}", links_to, nb), format!("{}/{}", dir, nb))?;
    }
    Ok(())
}
{
    let inbound = "/srv/nbgrader/exchange/mlp-lab/inbound";
    println!("PLANTED links to the course's solved source: {:?}", entry(inbound, "cat+mlp+FUTURE1", "SOURCE"));
    println!("PLANTED links to bob's home: {:?}", entry(inbound, "cat+mlp+FUTURE2", "BOBS"));
    println!("PLANTED a link named for bob: {:?}",
             std::os::unix::fs::symlink("/home/jovyan/mlp", format!("{}/bob+mlp+FUTURE3", inbound)));
    println!("PLANTED a name nbgrader cannot read: {:?}",
             std::fs::create_dir(format!("{}/cat+mlp+not-a-time+x", inbound)));
}
"""


def plant_entries(c):
    """4b. cat's own entries in inbound/, from her kernel: notebooks linked to the course's
    solved source (its host path), to bob's home, a far-future link named for bob, and a
    name nbgrader cannot parse; collect must set each aside and grade everyone on what
    they handed in (cat: the blank edition, 0)."""
    code = (PLANT.replace("FUTURE1", FUTURE % 1).replace("FUTURE2", FUTURE % 2).replace("FUTURE3", FUTURE % 3)
            .replace("SOURCE", os.path.join(c.course, "source", "mlp"))
            .replace("BOBS", os.path.join(c.hub.state, "homes", "bob", "mlp")))
    said = c.attack("cat", [code])
    planted = [line for line in said.splitlines() if line.startswith("PLANTED")]
    for line in planted:
        print("  cat, " + line)
    t_ok = len(planted) == 4 and all(line.endswith("Ok(())") for line in planted)
    c.t.check("cat planted four entries in the exchange from her kernel (collect must set them aside)", t_ok,
              said[-1500:])
    return ["cat+mlp+" + FUTURE % 1, "cat+mlp+" + FUTURE % 2, "bob+mlp+" + FUTURE % 3, "cat+mlp+not-a-time+x"]


# Rust, from cat's kernel: her inbound filled past its bound, at once (fallocate) and by
# writing; the file kept until KEEP is removed (bob hands in meanwhile)
FILL = r"""
{
    use std::io::Write;
    let path = "/srv/nbgrader/exchange/mlp-lab/inbound/fill";
    let out = Command::new("fallocate").args(["-l", "1G", path]).output().unwrap();
    println!("{} fallocate -l 1G in her inbound: {} {}", if out.status.success() { "BREACHED" } else { "HELD" },
             out.status, String::from_utf8_lossy(&out.stderr).trim());
    let mut f = std::fs::OpenOptions::new().create(true).write(true).open(path).unwrap();
    let chunk = vec![1u8; 1 << 20];
    let mut mb = 0;
    let stopped = loop {
        if mb > 1024 { break None; }
        match f.write_all(&chunk).and_then(|_| f.sync_data()) { Ok(()) => mb += 1, Err(e) => break Some(e) }
    };
    match stopped {
        Some(e) => println!("HELD writing 1 GB in her inbound: stopped after {} MB: {} (errno {:?})", mb, e,
                            e.raw_os_error()),
        None => println!("BREACHED writing 1 GB in her inbound: wrote {} MB", mb),
    }
}
"""


def fill_inbound(c):
    """4c. cat fills her inbound past its bound from her kernel (fallocate, then writing:
    ENOSPC at MLP_HUB_INBOUND); what it takes of the host's disk is her image's size at
    most; her own hand-in then fails, leaving nothing half-written, and bob hands in
    meanwhile (his latest: graded in step 5). Then cat removes her file (her own, in her
    own inbound), and has room to hand in again."""
    t = c.t
    said = c.attack("cat", [FILL])
    for line in said.splitlines():
        if line.startswith(("HELD", "BREACHED")):
            print("  cat, " + line)
    lines = [line for line in said.splitlines() if line.startswith(("HELD", "BREACHED"))]
    t.check("cat fills her inbound (MLP_HUB_INBOUND %s) past its bound: fallocate refused, writing stopped with "
            "ENOSPC" % disks.inbound_size(), len(lines) == 2 and all(line.startswith("HELD") for line in lines)
            and "errno Some(28)" in lines[1] and "No space left" in said, said[-1500:])
    df = subprocess.run(["df", "-k", c.inbound("cat")], capture_output=True, text=True).stdout.splitlines()[-1]
    image = os.stat(disks.inbound_image(c.hub.state, "cat"))
    print("  cat's inbound on the host (df -k: size, used, free, use): %s" % " ".join(df.split()[1:5]))
    t.check("what cat's fill takes of the host's disk is her inbound's disk image, at most its size (%.1f MB "
            "allocated of %.0f MB)" % (image.st_blocks * 512 / 2**20, image.st_size / 2**20),
            image.st_blocks * 512 <= image.st_size + 2**20, image)
    cats = {e.name for e in c.handed_in() if e.student == "cat"}
    status, body = assignments(c.hub, "cat", c.tokens["cat"], "submit")
    left = sorted({e.name for e in c.handed_in() if e.student == "cat"} - cats)
    said = str((body or {}).get("value", body))
    print("  cat hands in with her inbound full: %s" % (said.strip().splitlines() or [""])[-1][:200])
    t.check("cat hands in with her inbound full: nbgrader's submit fails (no space left) and leaves nothing "
            "half-written in her inbound (%s)" % left, status == 200 and not (body or {}).get("success")
            and "No space left" in said and not left, (status, said[-800:], left))
    time.sleep(1.1)
    status, body = assignments(c.hub, "bob", c.tokens["bob"], "submit")
    bobs = sorted((e.name for e in c.handed_in() if e.student == "bob"), key=lambda n: on_submit.parse_name(n)[2])
    t.check("with cat's inbound full, bob hands in from his Assignment List (%d of his in his inbound)" % len(bobs),
            status == 200 and (body or {}).get("success") and len(bobs) == 2, (status, str(body)[:500], bobs))
    said = c.attack("cat", ['println!("REMOVED {:?}", std::fs::remove_file('
                            '"/srv/nbgrader/exchange/mlp-lab/inbound/fill"));'])
    t.check("cat removes her fill from her inbound (%s)" % said.strip(), "REMOVED Ok(())" in said, said)
    return bobs[-1]


def grade(c, forged, bob_after_fill):
    """5. make autograde's grading (collect, the sandboxed autograde), a written answer
    graded by hand through Formgrader's API, the feedback generated and released."""
    t, hub, course, teacher = c.t, c.hub, c.course, c.tokens[c.instructor]
    env = dict(os.environ, MLP_HUB_STATE=hub.state, PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    start = time.time()
    out = subprocess.run([sys.executable, "-m", "mlp_lab.course.autograde", "--course", course,
                          "--logs", os.path.join(OUT, "autograde")], env=env, capture_output=True, text=True)
    print(out.stdout, end="")
    t.check("make autograde's grading collected and graded the class (%.0f s)" % (time.time() - start),
            out.returncode == 0, out.stderr[-2000:])
    refused = os.path.join(course, "refused")
    reasons = open(os.path.join(refused, "reasons.txt")).read() if os.path.exists(
        os.path.join(refused, "reasons.txt")) else ""
    for student, name in forged:
        said = [line for line in reasons.splitlines() if name in line]
        print("  collect set aside %s in %s's inbound: %s"
              % (name, student, said[0].split(": ", 1)[-1][:160] if said else "NOT REFUSED"))
        t.check("collect set aside %s in %s's inbound, with its reason" % (name, student),
                not os.path.lexists(c.inbound(student, name)) and said, (os.listdir(refused), reasons[-1500:]))
    with open(os.path.join(course, "submitted", "bob", "mlp", "timestamp.txt")) as f:
        stamp = f.read().strip()
    t.check("bob's hand-in made while cat's inbound was full is the one collected (%s)" % stamp,
            bob_after_fill.split("+")[2] == stamp, (bob_after_fill, stamp))
    marks = scores(course, c.students)
    print("  automatic points: %s" % ", ".join("%s %.0f" % (s, marks.get(s, (0, 0))[0]) for s in c.students))
    t.check("ann's resubmission counts: %.0f of 45" % marks.get("ann", (0, 0))[0],
            marks.get("ann", (0, 0))[0] == AUTOMATIC, marks)
    t.check("bob, with his bug: in between (%.0f)" % marks.get("bob", (0, 0))[0],
            0 < marks.get("bob", (0, 0))[0] < AUTOMATIC, marks)
    t.check("cat, blank: 0 (not the course's solved source, nor bob's notebooks, she linked)",
            "cat" in marks and marks["cat"][0] == 0, marks)

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
        marks = scores(course, c.students)
        t.check("the gradebook has ann's written points: %s" % marks.get("ann", (0, 0))[1],
                marks.get("ann", (0, 0))[1] == written[0]["max_score"] - 1, marks)
    for step in ("generate_feedback", "release_feedback"):
        status, body = formgrader(hub, teacher, "assignment/mlp/" + step, "POST")
        t.check("the instructor: %s" % step.replace("_", " "), status == 200 and (body or {}).get("success"),
                (status, str(body)[:1500]))
    feedback = c.exchange("feedback")
    released = sorted(os.listdir(feedback))
    readers = {f: feedback_reader(os.path.join(feedback, f)) for f in released}
    uids = {os.stat(os.path.join(hub.state, "homes", s)).st_uid for s in c.students}
    t.check("feedback released: %d files, each the grader's and readable by its student's uid alone (an ACL)"
            % len(released), len(released) >= 6 and all(r in uids for r in readers.values()), readers)
    graders_own(c)


def feedback_reader(path):
    """The one uid besides the grader's group a released feedback file lets read it (its
    ACL, getfacl's numeric form), or why not."""
    st = os.stat(path)
    if st.st_uid != grader.account().pw_uid or st.st_mode & 0o007:
        return "uid %d, mode %o" % (st.st_uid, st.st_mode & 0o777)
    acl = subprocess.run(["getfacl", "-cn", path], capture_output=True, text=True).stdout.split()
    named = [int(e.split(":")[1]) for e in acl if e.startswith("user:") and e.split(":")[1]]
    return named[0] if len(named) == 1 else "ACL " + " ".join(acl)


def graders_own(c):
    """Nothing that read what students wrote ran as root: the course service's processes
    are the grader account's, and every file collect, autograde and Formgrader wrote."""
    t, entry = c.t, grader.account()

    def proc(pid, name):
        try:
            with open("/proc/%s/%s" % (pid, name), "rb") as f:
                return f.read()
        except OSError:
            return b""

    service = [pid for pid in os.listdir("/proc") if pid.isdigit() and b"jupyterhub-singleuser" in proc(pid, "cmdline")
               and c.course.encode() in proc(pid, "cmdline")]
    uids = {int(line.split()[1]) for pid in service for line in proc(pid, "status").decode().splitlines()
            if line.startswith("Uid:")}
    print("  the course service (Formgrader): pids %s, uid %s (%s is uid %d)"
          % (service, uids, grader.ACCOUNT, entry.pw_uid))
    t.check("the course service runs as the grader account %s, not root" % grader.ACCOUNT,
            service and uids == {entry.pw_uid}, (service, uids))
    made = [os.path.join(d, n) for part in ("submitted", "autograded", "feedback", "refused", "gradebook.db")
            for d, ds, fs in os.walk(os.path.join(c.course, part)) for n in ds + fs]
    made += [os.path.join(c.course, "gradebook.db")]
    roots = [p for p in made if os.lstat(p).st_uid == 0]
    t.check("what collect, autograde and Formgrader wrote in the course (%d files) is the grader's, none root's"
            % len(made), made and not roots, roots[:10])


def fetch_feedback(c):
    """6. Each student fetches their feedback: their own scores, nobody else's; ann
    cannot read bob's."""
    t, hub = c.t, c.hub
    for user in c.students:
        assignments(hub, user, c.tokens[user], "fetch_feedback")
        status, listing = contents(hub, user, c.tokens[user], "mlp/feedback")
        stamps = [x["name"] for x in (listing or {}).get("content", [])] if status == 200 else []
        html = ""
        for stamp in sorted(stamps)[-1:]:  # (earlier ones: feedback graded on hand-in, step 7)
            status, body = contents(hub, user, c.tokens[user], "mlp/feedback/%s/02_toy_network.html" % stamp)
            if status == 200:
                html = body["content"]
                with open(os.path.join(OUT, "feedback-%s-02.html" % user), "w") as f:
                    f.write(html)
        t.check("%s fetched the instructor's feedback of their submission (%s)" % (user, stamps),
                bool(html) and ON_HAND_IN not in html, stamps)
        others = [o for o in c.students if o != user and re.search(r"\b%s\b" % o, html)]
        t.check("%s's feedback is theirs (names no other student)" % user, html and not others, others)
    feedback = c.exchange("feedback")
    bob_uid = os.stat(os.path.join(hub.state, "homes", "bob")).st_uid
    mine = [f for f in os.listdir(feedback) if feedback_reader(os.path.join(feedback, f)) == bob_uid]
    if mine:
        said = c.attack("ann", ['try_read("reading bob\'s feedback", "/srv/nbgrader/exchange/mlp-lab/feedback/%s");'
                                % mine[0]])
        t.check("ann, " + said.strip().splitlines()[0] if said.strip() else "ann's attempt on bob's feedback",
                said.startswith("HELD"), said)


def main():
    if not CONTAINERS:
        sys.exit("make class-test needs the hub's containers (MLP_HUB_ISOLATION=containers)")
    t = Checks()
    os.makedirs(OUT, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="mlp-class-")
    course = scratch_course(scratch)
    os.environ.update(MLP_HUB_COURSE=course, MLP_HUB_COURSE_PORT=str(free_port()))
    c = Class(t, Hub(pool=1, env=GRADING_ENV), course)
    os.environ["MLP_HUB_STATE"] = c.hub.state  # (the exchange's inbounds, as the course service finds them)
    with_browser = "--browser" in sys.argv
    try:
        enrol(c, with_browser)
        release(c)
        fetch(c)
        bobs = submit(c)
        forged = attack_exchange(c, bobs)
        bob_after_fill = fill_inbound(c)
        grade(c, forged, bob_after_fill)
        fetch_feedback(c)
        graded_on_hand_in(c)
        if with_browser:
            browser(c)
    finally:
        c.hub.stop()
    time.sleep(1)
    left = c.hub.leftovers()
    t.check("nothing left running after the hub stopped", not left, left)
    if not left:
        shutil.rmtree(c.hub.state, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    t.close("class")


if __name__ == "__main__":
    main()
