"""nbgrader's generate_assignment hook for the student edition: `StudentDependency`.

In the student edition (`nbgrader generate_assignment`), the set-up cell's
`:dep mlp-core = { path = "../mlp-core" }` becomes an absolute path to this clone's
mlp-core with `default-features = false, features = ["blas"]` (dep_line.py): the release
notebooks build the library without its `solutions` feature (with OpenBLAS under
ndarray), so they cannot call its finished loss, backward pass, predict or training, and
they find it from any folder (release, a student's working copy, nbgrader's
autograded/<student>/ folders). It runs before nbgrader saves the cells, so autograde
restores this line in every submission.
"""

from nbgrader.preprocessors import NbGraderPreprocessor

from mlp_lab.course.dep_line import DEP, STUDENT_DEP


class StudentDependency(NbGraderPreprocessor):
    """The set-up cell's `:dep mlp-core` line for the student edition."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and DEP.search(cell.source):
            cell.source = DEP.sub(STUDENT_DEP.replace("\\", "\\\\"), cell.source)
        return cell, resources
