"""`make autograde`: every submission autograded by nbgrader, several at once.

    python -m mlp_lab.course.autograde [--jobs N] [--course DIR] [--assignment mlp] [STUDENT ...]

First, when `make hub`'s exchange has the course (mlp_lab/course/exchange.py), what students
handed in through their Assignment List (each to an inbound of their own, on a disk of its
own that the hub mounts while it runs and this mounts when it does not) is collected into
DIR/submitted/ (`nbgrader collect --update --before-duedate`: each student's latest before
the due date, and a submission handed in under another student's name refused). Then one
`nbgrader autograde ASSIGNMENT --student S` per student (all those in
DIR/submitted/ when none is named), `--jobs` of them at a time (`MLP_GRADE_JOBS`, default
twice the cores, as many as the machine's memory holds at MLP_GRADE_MEM each: on 2 cores
4 jobs take 45 s a submission, 2 jobs 63 s, docs/performance.md).
Each runs its notebooks in containers of the course image
(mlp_lab/course/sandbox.py's SandboxedExecute); nbgrader's bookkeeping (the gradebook, the
autograded/ folder) happens one student at a time, under a lock on the gradebook that
each holds except while its notebooks run. A student whose autograde fails does not stop
the others. Each one's log is in target/autograde/<student>.log; the lines printed are
the student, nbgrader's exit status and the seconds it took. Exits non-zero when one
failed. Started as root, it runs as the grader account (mlp_lab/course/grader.py).
"""

import argparse
import glob
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from mlp_lab import ROOT
from mlp_lab.course import grader
from mlp_lab.course.exchange import exchange_course, hub_state
from mlp_lab.hub import disks

NBGRADER = os.path.join(os.path.dirname(sys.executable), "nbgrader")


def set_aside_unreadable(course, assignment, student):
    """A submitted file that is not a notebook stops nbgrader's autograde of the whole
    submission: it is renamed `*.ipynb.unreadable` (kept, and graded as a missing
    notebook: no points for its cells). Returns what to tell the instructor."""
    import nbformat

    said = []
    for path in sorted(glob.glob(os.path.join(course, "submitted", student, assignment, "*.ipynb"))):
        try:
            nbformat.read(path, as_version=4)
        except Exception as e:  # nbformat's NotJSONError, a validation error, unreadable bytes
            os.rename(path, path + ".unreadable")
            said.append("%s is not a readable notebook (%s): graded as missing, kept as %s.unreadable"
                        % (os.path.basename(path), str(e).splitlines()[0][:80], os.path.basename(path)))
    return said


def collect(course, assignment, logs):
    """The exchange's submissions into submitted/, when the hub's exchange has this course;
    prints what nbgrader said of each student."""
    if not os.path.isdir(exchange_course(course)):
        return
    out = subprocess.run([NBGRADER, "collect", assignment, "--update", "--before-duedate"], cwd=course,
                         capture_output=True, text=True, env=dict(os.environ, PATH=os.path.dirname(sys.executable)
                                                                  + os.pathsep + os.environ.get("PATH", "")))
    with open(os.path.join(logs, "collect.log"), "w") as log:
        log.write(out.stdout + out.stderr)
    for line in (out.stdout + out.stderr).splitlines():
        if "] " in line and any(w in line for w in ("Collecting", "Updating", "No newer", "refused", "No submissions")):
            print("  collect: " + line.split("] ", 1)[1], flush=True)
    if out.returncode:
        sys.exit("nbgrader collect failed (%s):\n%s" % (os.path.join(logs, "collect.log"), out.stderr[-2000:]))


def grade(course, assignment, student, logs):
    env = dict(os.environ, MLP_GRADEBOOK_LOCK=os.path.join(course, ".gradebook.lock"),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    start = time.time()
    for line in set_aside_unreadable(course, assignment, student):
        print("  %-16s %s" % (student, line), flush=True)
    with open(os.path.join(logs, student + ".log"), "w") as log:
        code = subprocess.run([NBGRADER, "autograde", assignment, "--student", student, "--force"],
                              cwd=course, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    return student, code, time.time() - start


def default_jobs():
    """MLP_GRADE_JOBS, else twice the cores (while one submission's kernel links or
    nbgrader does its bookkeeping, another compiles), no more than the memory holds at each
    container's limit (MLP_GRADE_MEM, 3g)."""
    if os.environ.get("MLP_GRADE_JOBS"):
        return int(os.environ["MLP_GRADE_JOBS"])
    limit = os.environ.get("MLP_GRADE_MEM", "3g").lower()
    scale = {"k": 2**10, "m": 2**20, "g": 2**30}.get(limit[-1:], 1)
    each = int(limit.rstrip("kmg") or 1) * scale
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(1, min(2 * (os.cpu_count() or 1), total // each))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--course", default=os.path.join(ROOT, "course"))
    parser.add_argument("--assignment", default="mlp")
    parser.add_argument("--logs", default=os.path.join(ROOT, "target", "autograde"))
    parser.add_argument("students", nargs="*")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs (MLP_GRADE_JOBS) must be at least 1, not %d" % args.jobs)
    # never as root: run as root, this hands over to the grader account (mlp_lab/course/grader.py)
    args.course, args.logs = os.path.abspath(args.course), os.path.abspath(args.logs)
    if os.getuid() == 0 and os.path.isdir(exchange_course(args.course)):
        # the students' inbound disks, which a running hub has mounted: mounted when it is not
        # running (they stay so; the hub's next start uses them and its stop unmounts them)
        account = grader.make_account()
        mounted = disks.attach_inbounds(hub_state(args.course), (account.pw_uid, account.pw_gid))
        if mounted:
            print("autograde: mounted %d students' inbound disks (no hub had them mounted)" % len(mounted))
    grader.become([sys.executable, "-m", "mlp_lab.course.autograde", "--jobs", str(args.jobs), "--course",
                   args.course, "--assignment", args.assignment, "--logs", args.logs, *args.students],
                  course=args.course, gives=[args.logs])
    os.makedirs(args.logs, exist_ok=True)
    collect(args.course, args.assignment, args.logs)
    submitted = os.path.join(args.course, "submitted")
    students = args.students or sorted(
        s for s in os.listdir(submitted) if os.path.isdir(os.path.join(submitted, s, args.assignment))
    ) if os.path.isdir(submitted) else args.students
    if not students:
        sys.exit("no submissions: none handed in through make hub's Assignment List, and none in %s/<student>/%s/"
                 % (submitted, args.assignment))
    start, failed = time.time(), []
    print("autograde: %d submissions, %d at a time" % (len(students), args.jobs), flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        for student, code, seconds in pool.map(lambda s: grade(args.course, args.assignment, s, args.logs),
                                               students):
            print("  %-16s exit %d  %5.0f s%s"
                  % (student, code, seconds,
                     "" if code == 0 else "  (log: %s)" % os.path.join(args.logs, student + ".log")),
                  flush=True)
            if code:
                failed.append(student)
    wall = time.time() - start
    print("autograde: %d submissions in %.0f s with %d jobs: %.1f s each%s" % (
        len(students), wall, args.jobs, wall / len(students), (", failed: " + " ".join(failed)) if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
