"""mlp-core's `:dep` line in the notebooks, for each place they run: this clone (the solved
edition's `{ path = "../mlp-core" }`), the student edition (`STUDENT_DEP`: this clone's
mlp-core without its `solutions` feature), the course image (`in_image`: the students'
containers and the grading sandbox). No nbgrader hook: the hooks that rewrite the line
(student_edition.py, sandbox.py, container_release.py) import it from here.
"""

import os
import re

from mlp_lab import ROOT
from mlp_lab.hub import containers as hub_containers  # where the course image has mlp-core

MLP_CORE = os.path.join(ROOT, "mlp-core")
DEP = re.compile(r'^:dep mlp-core = \{ path = "[^"]*" \}$', re.M)
STUDENT_DEP = ':dep mlp-core = { path = "%s", default-features = false, features = ["blas"] }' % MLP_CORE
MLP_CORE_PATH = re.compile(r'(:dep mlp-core = \{[^}\n]*path = ")[^"]*(")')


def in_image(source):
    """A cell's `:dep mlp-core` line with the path where the course image has mlp-core."""
    return MLP_CORE_PATH.sub(r"\g<1>%s\g<2>" % hub_containers.IMAGE_MLP_CORE, source)
