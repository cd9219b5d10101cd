"""nbgrader's release_assignment for the hub's exchange (mlp_lab/course/exchange.py):
`ContainerRelease`.

The released notebooks' `:dep mlp-core` line names mlp-core where
the course image has it (the students' containers), not where this machine has it
(autograde restores the line from the gradebook, and its sandbox points it at the
image again). The exchange serves only the hub's containers: `MLP_HUB_ISOLATION=none`
hands out the student edition without it.
"""

import glob
import os

import nbformat
from nbgrader.exchange.default import ExchangeReleaseAssignment

from mlp_lab.course.dep_line import in_image


class ContainerRelease(ExchangeReleaseAssignment):
    def copy_files(self):
        super().copy_files()
        for path in glob.glob(os.path.join(self.dest_path, "*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                cell.source = in_image(cell.source)
            nbformat.write(nb, path)
            os.chmod(path, 0o644)
