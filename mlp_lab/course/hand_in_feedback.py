"""The feedback of a submission graded on hand-in (mlp_lab/course/on_submit.py), an
nbgrader hook and what its grading's gradebook needs: `strip_hidden` makes the copied
gradebook's test cells the student edition's (their hidden tests out, so that none runs),
`HiddenChecks` (a GenerateFeedback preprocessor) says at the top of each notebook's
page how many hidden checks there are and that they are graded after the due date."""

import contextlib
import json
import os
import sqlite3

from nbformat.v4 import new_markdown_cell
from nbgrader.preprocessors import NbGraderPreprocessor

ASSIGNMENT = "mlp"
HIDDEN_BEGIN = "BEGIN HIDDEN TESTS"  # nbgrader's ClearHiddenTests.begin_test_delimeter
ON_HAND_IN = "Graded on hand-in"  # the first words of its feedback
HIDDEN_COUNTS = "hidden.json"  # in a grading's folder: {notebook: its hidden checks}


def points(x):
    return ("%.1f" % x).rstrip("0").rstrip(".")


class HiddenChecks(NbGraderPreprocessor):
    """The feedback of a submission graded on hand-in: its test cells ran as the student
    edition has them (strip_hidden), so nothing of a hidden check is in it; the written
    answers lose their points (graded by hand later), and the page says at its top how
    many hidden checks there are and that they are graded after the due date."""

    def preprocess(self, nb, resources):
        with open(HIDDEN_COUNTS) as f:  # (nbgrader runs in the grading's folder)
            hidden = json.load(f).get(resources["nbgrader"]["notebook"], 0)
        score = most = 0
        for cell in nb.cells:
            grade = cell.metadata.get("nbgrader", {})
            if grade.get("grade") and cell.cell_type == "code":
                score += grade.get("score") or 0
                most += grade.get("points") or 0
            elif grade.get("grade"):
                grade["grade"] = False  # a written answer: graded by hand after the due date
        note = "**%s.** The points are the visible automatic checks' (%s of %s). " % (
            ON_HAND_IN, points(score), points(most))
        if hidden:
            note += "This notebook has %d hidden check%s, graded after the due date. " % (hidden, "s" * (hidden > 1))
        note += "Written answers are graded by hand after the due date."
        nb.cells = [new_markdown_cell(note)] + nb.cells
        resources["nbgrader"]["score"], resources["nbgrader"]["max_score"] = score, most
        return nb, resources


def strip_hidden(db, release):
    """The gradebook `db`'s test cells with hidden tests made as the student edition
    (`release`, nbgrader's generate_assignment made it with ClearHiddenTests) has them: their
    source and checksum. Returns {notebook: its hidden checks}."""
    import nbformat
    from nbgrader.utils import compute_checksum

    counts = {}
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        rows = con.execute("SELECT s.id, s.name, s.source, n.name FROM source_cell s JOIN notebook n "
                           "ON s.notebook_id = n.id JOIN assignment a ON n.assignment_id = a.id WHERE a.name = ?",
                           (ASSIGNMENT,)).fetchall()
        editions = {}
        for cell_id, grade_id, source, notebook in rows:
            counts.setdefault(notebook, 0)
            if not source or HIDDEN_BEGIN not in source:
                continue
            if notebook not in editions:
                nb = nbformat.read(os.path.join(release, notebook + ".ipynb"), as_version=4)
                editions[notebook] = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
            released = editions[notebook].get(grade_id)
            if released is None or HIDDEN_BEGIN in released.source:
                raise RuntimeError("the student edition's %s has no cell %s without its hidden tests: run make "
                                   "assignment" % (notebook, grade_id))
            counts[notebook] += source.count(HIDDEN_BEGIN)
            con.execute("UPDATE source_cell SET source = ?, checksum = ? WHERE id = ?",
                        (released.source, compute_checksum(released), cell_id))
    return counts
