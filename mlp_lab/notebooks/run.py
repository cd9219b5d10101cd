"""`make notebooks`: execute every notebook headless under the evcxr Rust kernel.

    python -m mlp_lab.notebooks.run [--jobs 2] [NOTEBOOK ...]

Each notebook in notebooks/ is executed in its own folder (so `:dep mlp-core = { path =
"../mlp-core" }` resolves) and written, with its outputs, to target/notebooks/ as .ipynb
and as .html for reading without a kernel. A cell that fails stops that notebook and the
run exits non-zero, unless the cell is tagged `raises-exception` (the one cell that shows an
error on purpose). Notebooks run two at a time: most of the time is compilation, one core
each.
"""

import argparse
import glob
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from nbconvert.preprocessors.coalescestreams import CoalesceStreamsPreprocessor

from mlp_lab import ROOT

OUT = os.path.join(ROOT, "target", "notebooks")
# `make mathjax` installs MathJax 2 (the version nbconvert's templates configure) here; the
# exports load it from target/notebooks/mathjax/
MATHJAX = os.path.join(ROOT, ".tools", "npm", "node_modules", "mathjax")
MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"


# Two kernels started at the same moment can be given the same free port by
# jupyter_client; the loser exits at once ("Address already in use") and the client
# reports "Kernel died before replying to kernel_info". Such a start is tried again.
KERNEL_STARTS = 3


def execute(path):
    start = time.time()
    error = None
    name = os.path.basename(path)
    # the kernel's own stderr (cargo's "Compiling ..." lines) goes to a log beside the outputs
    with open(os.path.join(OUT, name.replace(".ipynb", ".kernel.log")), "w") as log:
        for attempt in range(1, KERNEL_STARTS + 1):
            nb = nbformat.read(path, as_version=4)
            client = NotebookClient(nb, timeout=1800, kernel_name="rust", allow_errors=False,
                                    resources={"metadata": {"path": os.path.dirname(path)}})
            try:
                client.execute(stdout=log, stderr=log)
                break
            except CellExecutionError as e:
                error = str(e) or repr(e)
                break
            except RuntimeError as e:
                if "before replying to kernel_info" not in str(e) or attempt == KERNEL_STARTS:
                    raise
                print("%s: the kernel did not start (%s); starting it again" % (name, e), file=log, flush=True)
                time.sleep(attempt)
    nbformat.write(nb, os.path.join(OUT, name))
    # a cell's printed lines in one block (evcxr sends each line as a message of its own)
    # formulas typeset with no network: MathJax from the npm registry, beside the exports
    exporter = HTMLExporter(mathjax_url=MATHJAX_URL, require_js_url="data:text/javascript,")
    exporter.register_preprocessor(CoalesceStreamsPreprocessor, enabled=True)
    html, _ = exporter.from_notebook_node(nb)
    with open(os.path.join(OUT, name.replace(".ipynb", ".html")), "w", encoding="utf-8") as f:
        f.write(html)
    return name, time.time() - start, error


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("notebooks", nargs="*")
    args = parser.parse_args()
    paths = args.notebooks or sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
    paths = [os.path.abspath(p) for p in paths]
    os.makedirs(OUT, exist_ok=True)
    if os.path.lexists(os.path.join(OUT, "mathjax")):
        os.remove(os.path.join(OUT, "mathjax"))
    os.symlink(MATHJAX, os.path.join(OUT, "mathjax"))
    start = time.time()
    failed = 0
    # the longest first, so that two workers finish close together
    paths.sort(key=lambda p: -os.path.getsize(p))
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for name, seconds, error in pool.map(execute, paths):
            if error:
                failed += 1
                print("FAILED %s after %.1f s:\n%s" % (name, seconds, error), flush=True)
            else:
                print("executed %s in %.1f s" % (name, seconds), flush=True)
    print("notebooks executed in %.1f s; outputs in %s" % (time.time() - start, os.path.relpath(OUT, ROOT)))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
