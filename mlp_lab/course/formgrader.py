"""Formgrader's formulas without the internet.

nbgrader's Formgrader shows a submission through nbconvert's `mathjax()` macro
(base/mathjax.html.j2) with its default address, MathJax 2 on cdnjs. A class machine
without internet cannot reach it, and the instructor then grades the written answers
(notebook 1's derivations) as raw LaTeX. `offline_mathjax` writes a copy of that macro
whose default address is the MathJax `make hub-setup` installed from npm (2.7.9, the
version the macro configures): the course service puts it on JUPYTER_PATH (nbconvert
looks there before its own templates) and serves MathJax's folder as a static path of its
own (`ServerApp.extra_static_paths`; the server refuses a symbolic link out of a static
path, and MathJax's names, config/, jax/, fonts/..., are none of the server's own).
"""

import os
import re

from jupyter_core.paths import jupyter_path

from mlp_lab import ROOT

MATHJAX = os.path.join(ROOT, ".tools", "npm", "node_modules", "mathjax")
TEMPLATE = ("nbconvert", "templates", "base", "mathjax.html.j2")
# the macro's first line: {%- macro mathjax(url="https://cdnjs...") -%}
DEFAULT_URL = re.compile(r'(macro mathjax\(url=")[^"]*(")')


def offline_mathjax(folder, prefix):
    """Writes `folder`/nbconvert/templates/base/mathjax.html.j2 for a server at `prefix`
    (such as /services/course/) that serves MATHJAX as a static path. Returns `folder`
    (for JUPYTER_PATH), or None when MathJax is not installed or nbconvert's macro has
    another form (Formgrader then keeps the CDN)."""
    ours = os.path.join(folder, *TEMPLATE)
    upstream = [p for p in (os.path.join(d, *TEMPLATE[1:]) for d in jupyter_path("nbconvert"))
                if os.path.isfile(p) and p != ours]
    if not os.path.isfile(os.path.join(MATHJAX, "MathJax.js")) or not upstream:
        return None
    with open(upstream[0]) as f:
        text = f.read()
    url = prefix.rstrip("/") + "/static/MathJax.js?config=TeX-AMS_CHTML-full,Safe"
    text, found = DEFAULT_URL.subn(lambda m: m.group(1) + url + m.group(2), text, count=1)
    if not found:
        return None
    os.makedirs(os.path.dirname(ours), exist_ok=True)
    with open(ours, "w") as f:
        f.write(text)
    return folder
