"""`make grading-test`: nbgrader grades five submissions as it would a class's.

    python tests/grading_test.py

In a scratch copy of the course folder (the real course/submitted/ is left alone), four
students hand in:

- `solved`: the solved edition (course/source/mlp/) as their work: all 45 autograded
  points;
- `blank`: the release untouched: 0 autograded points, and the autograder does not fail;
- `bug`: the solved edition with one planted bug, the sigmoid's derivative written
  `h * (1.0 + h)` in the backward pass (in notebook 2 and the copy in notebook 3): the
  checks that depend on it lose their points (Q2.2, Q2.3, Q2.5.1), the rest keep theirs
  (Q2.1, Q2.4, Q2.5.2);
- `typo`: the solved edition with a compile error in notebook 2's predict cell: the cells
  that need predict lose their points (Q2.3, Q2.4), the others are graded (Q2.1, Q2.2,
  and notebook 3's Q2.5).

- `snoop`: the solved edition whose backward-pass cell also tries to read the course's
  source, the gradebook, another submission and root's files, and to write into the
  course folder and over another submission: graded in the sandbox (each notebook in a
  container of the course image, course/mlp_nbgrader.py), every attempt fails, nothing
  on this machine changes, and it keeps its 45 points.

Then `nbgrader generate_feedback` and `nbgrader export` (grades.csv) for all four. Prints
each score per question, the time each autograde took, and closes with
'grading: N passed, N failed'.
"""

import csv
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from tally import Tally  # noqa: E402

import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COURSE = os.path.join(ROOT, "course")
NBGRADER = os.path.join(os.path.dirname(sys.executable), "nbgrader")

QUESTIONS = {"q2_1": 5, "q2_2": 10, "q2_3": 5, "q2_4": 5, "q2_5_1": 10, "q2_5_2": 10}
EXPECTED = {
    "solved": QUESTIONS,
    "blank": {q: 0 for q in QUESTIONS},
    "bug": {"q2_1": 5, "q2_2": 0, "q2_3": 0, "q2_4": 5, "q2_5_1": 0, "q2_5_2": 10},
    "typo": {"q2_1": 5, "q2_2": 10, "q2_3": 0, "q2_4": 0, "q2_5_1": 10, "q2_5_2": 10},
    # the solved edition that also tries to read the course's source, the gradebook and
    # another submission, and to write into the course folder (tried inside the sandbox)
    "snoop": QUESTIONS,
}


def edit(path, grade_ids, old, new):
    """Replace `old` with `new` in the cells `grade_ids` of a notebook."""
    nb = nbformat.read(path, as_version=4)
    hits = 0
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") in grade_ids and old in cell.source:
            cell.source = cell.source.replace(old, new)
            hits += 1
    assert hits, "no %r in %s %s" % (old, os.path.basename(path), grade_ids)
    nbformat.write(nb, path)


# Code a student could put in a solution cell to read what they must not and change what
# is not theirs, while being graded.
SNOOP = r"""
{
    for p in [READS] {
        match std::fs::read(p) {
            Ok(b) => println!("SNOOP read {} ({} bytes)", p, b.len()),
            Err(e) => println!("SNOOP could not read {}: {}", p, e),
        }
    }
    for p in [WRITES] {
        match std::fs::write(p, "planted") {
            Ok(_) => println!("SNOOP wrote {}", p),
            Err(e) => println!("SNOOP could not write {}: {}", p, e),
        }
    }
}
"""


def append(path, grade_id, code):
    """Add `code` at the end of the cell `grade_id` of a notebook."""
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    cell.source += "\n" + code
    nbformat.write(nb, path)


def hand_in(course, student, from_dir):
    target = os.path.join(course, "submitted", student, "mlp")
    os.makedirs(target)
    for path in glob.glob(os.path.join(from_dir, "*.ipynb")):
        shutil.copy(path, target)
    return target


def main():
    tally = Tally(show_passes=True)
    check = tally.check

    with tempfile.TemporaryDirectory(prefix="mlp-course-") as scratch:
        course = os.path.join(scratch, "course")
        # the configuration, the source, the release and the gradebook nbgrader made
        shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns(
            "submitted", "autograded", "feedback", "grades.csv", "__pycache__"))
        # the grading sandbox's settings and the course image, as make autograde finds them
        os.symlink(os.path.join(ROOT, "deploy"), os.path.join(scratch, "deploy"))
        # the mlp-core path in the release is absolute: the scratch course still finds it
        source = os.path.join(course, "source", "mlp")
        release = os.path.join(course, "release", "mlp")
        hand_in(course, "solved", source)
        hand_in(course, "blank", release)
        bug = hand_in(course, "bug", source)
        for name, cell in [("02_toy_network.ipynb", "backward"), ("03_mnist.ipynb", "helpers")]:
            edit(os.path.join(bug, name), [cell], "h * (1.0 - h)", "h * (1.0 + h)")
        typo = hand_in(course, "typo", source)
        edit(os.path.join(typo, "02_toy_network.ipynb"), ["predict_sgd"], "let (_, scores) = forward(net, x);",
             "let (_, scores) = forward(net, x)")

        snoop = hand_in(course, "snoop", source)
        reads = [os.path.join(source, "02_toy_network.ipynb"), os.path.join(course, "gradebook.db"),
                 os.path.join(course, "submitted", "solved", "mlp", "02_toy_network.ipynb"), "/root/.bash_history"]
        writes = [os.path.join(course, "planted.txt"),
                  os.path.join(course, "submitted", "solved", "mlp", "02_toy_network.ipynb")]
        solved_before = open(writes[1], "rb").read()
        append(os.path.join(snoop, "02_toy_network.ipynb"), "backward",
               SNOOP.replace("READS", ", ".join('"%s"' % p for p in reads))
               .replace("WRITES", ", ".join('"%s"' % p for p in writes)))

        for student in EXPECTED:
            start = time.time()
            out = subprocess.run([NBGRADER, "autograde", "mlp", "--student", student, "--force"],
                                 cwd=course, capture_output=True, text=True)
            seconds = time.time() - start
            check(out.returncode == 0, "autograde %s: exit %d in %.0f s%s" % (
                student, out.returncode, seconds, "" if out.returncode == 0 else "\n" + out.stderr[-3000:]))
        out = subprocess.run([NBGRADER, "generate_feedback", "mlp", "--force"], cwd=course,
                             capture_output=True, text=True)
        check(out.returncode == 0, "generate_feedback" + ("" if out.returncode == 0 else ": " + out.stderr[-2000:]))
        out = subprocess.run([NBGRADER, "export", "--to", "grades.csv"], cwd=course, capture_output=True, text=True)
        check(out.returncode == 0 and os.path.exists(os.path.join(course, "grades.csv")), "export grades.csv")

        sys.path.insert(0, course)
        from nbgrader.api import Gradebook
        with Gradebook("sqlite:///" + os.path.join(course, "gradebook.db")) as gb:
            for student, expected in EXPECTED.items():
                scores = {}
                for nb in gb.find_submission("mlp", student).notebooks:
                    for grade in nb.grades:
                        if grade.name in QUESTIONS:
                            scores[grade.name] = grade.score
                total = sum(scores.values())
                print("  %-7s %s  autograded %g of 45" % (student, "  ".join(
                    "%s %g/%d" % (q, scores.get(q, -1), QUESTIONS[q]) for q in QUESTIONS), total))
                check(scores == expected, "%s scores %s" % (student, "as expected" if scores == expected
                                                            else "%s, expected %s" % (scores, expected)))
        nb = nbformat.read(os.path.join(course, "autograded", "snoop", "mlp", "02_toy_network.ipynb"), as_version=4)
        said = [line for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
                for line in o.get("text", "").splitlines() if line.startswith("SNOOP")]
        for line in said:
            print("  snoop, while graded: " + line)
        check(len(said) == len(reads) + len(writes) and all("could not" in line for line in said),
              "snoop: nothing outside the sandbox read or written (%d attempts)" % len(said))
        check(not os.path.exists(writes[0]), "snoop: nothing planted in the course folder")
        check(open(writes[1], "rb").read() == solved_before, "snoop: the other student's submission is intact")
        with open(os.path.join(course, "grades.csv")) as f:
            rows = {r["student_id"]: r for r in csv.DictReader(f)}
        check(set(rows) == set(EXPECTED), "grades.csv has a row per student: %s" % sorted(rows))
        for student in EXPECTED:
            pages = glob.glob(os.path.join(course, "feedback", student, "mlp", "*.html"))
            check(len(pages) == 4, "%s: %d feedback pages" % (student, len(pages)))
        # keep what a person would look at
        keep = os.path.join(ROOT, "target", "grading")
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(os.path.join(course, "feedback"), os.path.join(keep, "feedback"))
        shutil.copy(os.path.join(course, "grades.csv"), keep)
        print("feedback and grades.csv copied to %s" % os.path.relpath(keep, ROOT))
    tally.close("grading")


if __name__ == "__main__":
    main()
