"""`make grading-bench`: how long `make autograde` takes for a class, by number of jobs.

    python tests/grading_bench.py [--jobs 1 2 4] [--students 10]

In a scratch copy of the course folder, N submissions (the solved edition, with every
third one the blank release and every fifth one the planted backward-pass bug of
tests/grading_test.py, so that the batch is a class's mix) are autograded by
mlp_lab/course/autograde.py once for each number of jobs, from an empty gradebook each time.
Prints a table: jobs, wall time of the batch, seconds per submission (the machine's
time each costs), and what a class of 30 and of 300 would take.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from support import ROOT
from support.course import edit, hand_in, scratch_course


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--students", type=int, default=10)
    args = parser.parse_args()
    rows = []
    for jobs in args.jobs:
        with tempfile.TemporaryDirectory(prefix="mlp-bench-") as scratch:
            course = scratch_course(scratch)
            source = os.path.join(course, "source", "mlp")
            release = os.path.join(course, "release", "mlp")
            for k in range(args.students):
                if k % 3 == 2:
                    hand_in(course, "s%02d" % k, release)
                else:
                    path = hand_in(course, "s%02d" % k, source)
                    if k % 5 == 4:
                        edit(os.path.join(path, "02_toy_network.ipynb"), ["backward"], "h * (1.0 - h)", "h * (1.0 + h)")
            start = time.time()
            out = subprocess.run([sys.executable, "-m", "mlp_lab.course.autograde", "--jobs", str(jobs),
                                  "--course", course, "--logs", os.path.join(ROOT, "target", "grading-bench")])
            wall = time.time() - start
            if out.returncode:
                sys.exit("autograde failed with %d jobs" % jobs)
            shutil.rmtree(os.path.join(course, "autograded"), ignore_errors=True)
            rows.append((jobs, wall))
    per = args.students
    print("\n| jobs | %d submissions | per submission | class of 30 | class of 300 |" % per)
    print("|---|---|---|---|---|")
    for jobs, wall in rows:
        each = wall / per
        print("| %d | %.0f s | %.1f s | %.0f min | %.1f h |" % (jobs, wall, each, 30 * each / 60, 300 * each / 3600))


if __name__ == "__main__":
    main()
