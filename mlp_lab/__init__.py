"""The course machinery around mlp-core: what makes the notebooks a class.

    mlp_lab.kernel   the notebooks' Rust kernel (evcxr behind a Jupyter-protocol relay),
                     its work directories and the warm pool
"""

import os

# the project's folder (the package is installed editable: it stays in the clone)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
