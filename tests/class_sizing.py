"""`make class-sizing`: grading on hand-in for a class, on this machine.

    python tests/class_sizing.py [--students 30] [--minute 60] [--jobs N]

N students hand in within one minute (each at a random moment of it): each hand-in is
put in a scratch exchange as nbgrader's submit puts it (in the student's own inbound, a
disk of its own as the hub makes it; a folder of the student's own uid, readable by the
grader's group, with its timestamp and secret; the student edition
as released, or the solved edition for one in three), and the grading service
(mlp_lab/course/on_submit.py) grades them as the grader account, through the real
sandbox, `--jobs` at once (MLP_GRADE_JOBS, by default make autograde's). Prints, when the
last has its result: every submission graded or not, the median and the worst wait a
student saw from hand-in to result, and the machine time per submission (the wall time
of the whole class times the jobs, over the submissions), with what a 16-core machine
would give at that rate (not measured).
"""

import argparse
import glob
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from mlp_lab.course import grader, on_submit
from mlp_lab.course.autograde import default_jobs
from mlp_lab.hub import disks
from mlp_lab.hub.containers import make_exchange
from support import ROOT, until
from support.course import scratch_course

UID = 30000  # the scratch students' uids (the hub's start at 20000)


def hand_in(inbound, student, uid, gid, source):
    """A submission as nbgrader's submit leaves it in the student's inbound (deploy/class-config)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()) + ".%06d UTC" % random.randrange(10**6)
    path = os.path.join(inbound, "%s+mlp+%s+%s" % (student, stamp, secrets.token_hex(4)))
    os.mkdir(path)
    for nb in glob.glob(os.path.join(source, "*.ipynb")):
        shutil.copy(nb, path)
    with open(os.path.join(path, "timestamp.txt"), "w") as f:
        f.write(stamp)
    with open(os.path.join(path, "submission_secret.txt"), "w") as f:
        f.write(secrets.token_hex(64))
    for p in [path] + [os.path.join(path, n) for n in os.listdir(path)]:
        os.chown(p, uid, gid)
        os.chmod(p, 0o750 if p == path else 0o640)
    return os.path.basename(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--minute", type=float, default=60, help="the seconds over which they hand in")
    parser.add_argument("--jobs", type=int, default=default_jobs())
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="mlp-sizing-")
    course = scratch_course(scratch)
    state = os.environ["MLP_HUB_STATE"]
    account = grader.prepare(course)
    students = ["s%02d" % k for k in range(args.students)]
    for k, s in enumerate(students):
        os.makedirs(os.path.join(state, "homes", s))
        os.chown(os.path.join(state, "homes", s), UID + k, 100)
    make_exchange(state, (account.pw_uid, account.pw_gid))
    inbounds = {s: disks.attach_inbound(state, s, (account.pw_uid, account.pw_gid)) for s in students}
    grader.grant_passage(os.path.join(state, "homes"), account)
    log = open(os.path.join(ROOT, "target", "class-sizing.log"), "w")
    service = subprocess.Popen(grader.command([sys.executable, "-m", "mlp_lab.course.on_submit", "--course", course,
                                               "--jobs", str(args.jobs)]),
                               env=dict(os.environ, MLP_GRADE_RATE="1000"), stdout=log, stderr=subprocess.STDOUT,
                               cwd="/", start_new_session=True)
    editions = {"blank": os.path.join(course, "release", "mlp"), "solved": os.path.join(course, "source", "mlp")}
    moments = sorted(random.uniform(0, args.minute) for _ in students)
    start, names = time.time(), []
    print("class-sizing: %d students hand in within %.0f s, %d graded at once" % (len(students), args.minute,
                                                                                  args.jobs), flush=True)
    for k, (s, at) in enumerate(zip(students, moments, strict=True)):
        time.sleep(max(0, start + at - time.time()))
        names.append("%s/%s" % (s, hand_in(inbounds[s], s, UID + k, account.pw_gid,
                                           editions["solved" if k % 3 == 0 else "blank"])))

    def queue():
        return on_submit.Queue(on_submit.queue_path(course)).items

    until(lambda: all(queue().get(n, {}).get("state") in on_submit.ENDED for n in names),
          3600 * 3, step=5)
    wall = time.time() - start
    os.killpg(service.pid, signal.SIGTERM)
    service.wait(60)
    disks.detach_inbounds(state)
    q = queue()
    done = [q[n] for n in names if n in q]
    waits = sorted(r["finished"] - r["seen"] for r in done if r.get("finished"))
    graded = [r for r in done if r["state"] == on_submit.GRADED]
    # core-seconds per submission: the grading's wall time times this machine's cores, over the class
    cores = os.cpu_count() or 1
    machine = (max(r["finished"] for r in done) - min(r["started"] for r in done)) * cores / len(done)
    alone = statistics.median(r["finished"] - r["started"] for r in graded)
    print("  graded %d of %d (%s)" % (len(graded), len(names), ", ".join(
        "%s %d" % (s, sum(r["state"] == s for r in done)) for s in ("graded", "failed", "refused"))))
    print("  wait from hand-in to result: median %.0f s, worst %.0f s (the class in %.0f s)"
          % (statistics.median(waits), waits[-1], wall))
    print("  machine time per submission: %.1f core-seconds (%d at once on %d cores; one grading %.0f s)"
          % (machine, args.jobs, cores, alone))
    print("  on 16 cores (not measured): the last result about %.0f s after the last hand-in"
          % (len(names) * machine / 16 + alone))
    print("  | %d | %d | %d | %.0f s | %.0f s | %.1f s | about %.0f s |" % (
        len(names), cores, args.jobs, statistics.median(waits), waits[-1], machine, len(names) * machine / 16 + alone))
    shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(0 if len(graded) == len(names) else 1)


if __name__ == "__main__":
    main()
