"""nbgrader configured for the evcxr Rust kernel (imported by nbgrader_config.py).

- `StudentDependency`: in the student edition (`nbgrader generate_assignment`), the set-up
  cell's `:dep mlp-core = { path = "../mlp-core" }` becomes an absolute path to this
  clone's mlp-core with `default-features = false`: the release notebooks build the
  library without its `solutions` feature, so they cannot call its finished loss,
  backward pass, predict or training, and they find it from any folder (release,
  a student's working copy, nbgrader's autograded/<student>/ folders). It runs before
  nbgrader saves the cells, so autograde restores this line in every submission.

evcxr's error replies lack `ename`/`evalue`, which nbgrader's Execute reads: the kernel
relay (tools/mlp_kernel.py) fills them in.
"""

import os
import re

from nbgrader.preprocessors import NbGraderPreprocessor

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
