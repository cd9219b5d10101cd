"""Scratch copies of the course folder and the edits a test makes to a student's
notebooks: change or add code in a graded cell, hand a folder of notebooks in, read
the feedback lines the autograder wrote."""

import glob
import os
import shutil

import nbformat

from mlp_lab.hub.containers import COURSE_ID
from support import ROOT

COURSE = os.path.join(ROOT, "course")


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


def scratch_course(scratch):
    """A copy of course/ in `scratch`, without its submissions and grades."""
    course = os.path.join(scratch, "course")
    # the configuration, the source, the release and the gradebook nbgrader made
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns(
        "submitted", "autograded", "feedback", "grades.csv", "__pycache__", ".gradebook.lock", "refused",
        "on_submit"))
    # the grading sandbox's settings and the course image, as make autograde finds them
    os.symlink(os.path.join(ROOT, "deploy"), os.path.join(scratch, "deploy"))
    # its own hub state (none: no exchange to collect from), never the clone's deploy/state
    os.environ["MLP_HUB_STATE"] = os.path.join(scratch, "hub-state")
    return course


def feedback_lines(course, student):
    """What the autograded notebooks tell a student about a check or a cell: the
    grader's notes, compile errors, failed checks."""
    lines = []
    for path in sorted(glob.glob(os.path.join(course, "autograded", student, "mlp", "*.ipynb"))):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                text = out.get("text", "") if out.output_type == "stream" else (
                    "%s: %s" % (out.get("ename"), out.get("evalue")) if out.output_type == "error" else "")
                for line in text.splitlines():
                    if line.startswith(("not run when grading", "not passed", "NotGraded", "Interrupted",
                                        "KernelProcessEnded", "CellTimeoutError", "Error: ")) or "error[" in line:
                        lines.append("%s %s: %s" % (os.path.basename(path)[:2], cell.metadata.get(
                            "nbgrader", {}).get("grade_id", "a cell"), line.strip()))
    return lines



def scores(course, students, course_id=COURSE_ID):
    """{student: (automatic points, points of the written answers)} of `mlp` from the
    course's gradebook, for the students graded."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook("sqlite:///" + os.path.join(course, "gradebook.db"), course_id) as gb:
        for student in students:
            try:
                sub = gb.find_submission("mlp", student)
            except Exception:  # nbgrader's MissingEntry: nothing graded
                continue
            out[student] = (sub.code_score, sub.written_score)
    return out
