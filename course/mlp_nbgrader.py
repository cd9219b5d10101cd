"""nbgrader configured for the evcxr Rust kernel (imported by nbgrader_config.py).

- `StudentDependency`: in the student edition (`nbgrader generate_assignment`), the set-up
  cell's `:dep mlp-core = { path = "../mlp-core" }` becomes an absolute path to this
  clone's mlp-core with `default-features = false`: the release notebooks build the
  library without its `solutions` feature, so they cannot call its finished loss,
  backward pass, predict or training, and they find it from any folder (release,
  a student's working copy, nbgrader's autograded/<student>/ folders). It runs before
  nbgrader saves the cells, so autograde restores this line in every submission.
- `fill_in_error_replies`: evcxr's error replies carry only `status` and
  `execution_count`; nbgrader's Execute reads `ename`, `evalue` and `traceback` from
  them (a KeyError otherwise, as nbgrader issue #1806 reports for another kernel). The
  wrapper fills them in from the cell's error output before nbgrader looks.
"""

import os
import re

from nbgrader.preprocessors import Execute, NbGraderPreprocessor

HERE = os.path.dirname(os.path.abspath(__file__))
MLP_CORE = os.path.abspath(os.path.join(HERE, "..", "mlp-core"))
DEP = re.compile(r'^:dep mlp-core = \{ path = "[^"]*" \}$', re.M)
STUDENT_DEP = ':dep mlp-core = { path = "%s", default-features = false }' % MLP_CORE


class StudentDependency(NbGraderPreprocessor):
    """The set-up cell's `:dep mlp-core` line for the student edition."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and DEP.search(cell.source):
            cell.source = DEP.sub(STUDENT_DEP.replace("\\", "\\\\"), cell.source)
        return cell, resources


def fill_in_error_replies(on_cell_executed):
    def wrapped(self, **kwargs):
        content = kwargs["execute_reply"]["content"]
        if content.get("status") == "error" and "ename" not in content:
            errors = [o for o in kwargs["cell"].outputs if o.get("output_type") == "error"]
            first = errors[0] if errors else {}
            content["ename"] = first.get("ename", "Error")
            content["evalue"] = first.get("evalue", "the kernel reported an error")
            content["traceback"] = first.get("traceback", [])
        return on_cell_executed(self, **kwargs)
    return wrapped


if not getattr(Execute.on_cell_executed, "_fills_in_error_replies", False):
    Execute.on_cell_executed = fill_in_error_replies(Execute.on_cell_executed)
    Execute.on_cell_executed._fills_in_error_replies = True
