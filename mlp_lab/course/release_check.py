"""`make assignment`'s checks of the student edition nbgrader generated into
course/release/mlp/ from course/source/mlp/:

- no line of any solution region, and no hidden test, survives in the release;
- the release builds mlp-core without its `solutions` feature, from an absolute path;
- `nbgrader validate` passes on the source (the solved edition passes every test);
- every release notebook runs top to bottom under the kernel without crashing it: every
  cell executes, no cell has a compile error, and the unfinished functions stop with
  `not yet implemented` (the notebook's state survives them);
- every test cell names only what a student's code cannot change (mlp_lab/course/test_cells.py:
  `::mlp_core::grade`'s exports, its own locals, the student's functions);
- `nbgrader validate` fails on the release, as it should.

Closes with 'assignment: N passed, N failed'.
"""

import glob
import os
import re
import subprocess
import sys

import nbformat
from nbclient import NotebookClient

from mlp_lab import ROOT
from mlp_lab.course import test_cells
from mlp_lab.tally import Tally

COURSE = os.path.join(ROOT, "course")
SOURCE = os.path.join(COURSE, "source", "mlp")
RELEASE = os.path.join(COURSE, "release", "mlp")
NBGRADER = os.path.join(os.path.dirname(sys.executable), "nbgrader")

REGION = re.compile(r"BEGIN (SOLUTION|HIDDEN TESTS)(.*?)END (SOLUTION|HIDDEN TESTS)", re.S)


def region_lines(source):
    """The lines inside solution and hidden-test regions that mean something (not a lone
    brace or blank), stripped."""
    lines = set()
    for m in REGION.finditer(source):
        for line in m.group(2).split("\n")[1:-1]:
            line = line.strip()
            if len(line) > 3 and not line.startswith("//"):
                lines.add(line)
    return lines


def leaked_lines(cells, released):
    """(the source cells' solution and hidden-test lines, those of them in the `released`
    text). Lines that stand outside the regions too (a closing brace, a shared `let`)
    can legitimately be in the release."""
    outside = set()
    for cell in cells:
        outside |= {line.strip() for line in REGION.sub("", cell.source).split("\n")}
    secret = set()
    for cell in cells:
        secret |= region_lines(cell.source) - outside
    return secret, sorted(line for line in secret if line in released)


def validate(path):
    out = subprocess.run([NBGRADER, "validate", path], cwd=COURSE, capture_output=True, text=True)
    return out.returncode, out.stdout + out.stderr


def run_release(path, check):
    """Execute a release notebook as a student would, top to bottom, errors allowed."""
    name = os.path.basename(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=1200, kernel_name="rust", allow_errors=True,
                            resources={"metadata": {"path": os.path.dirname(path)}})
    log_path = os.path.join(ROOT, "target", "assignment", name.replace(".ipynb", ".kernel.log"))
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "w") as log:  # the kernel's own output (cargo's lines)
        client.execute(stdout=log, stderr=log)
    nbformat.write(nb, log_path.replace(".kernel.log", ".ipynb"))
    code = [c for c in nb.cells if c.cell_type == "code"]
    ran = sum(1 for c in code if c.get("execution_count") is not None)
    errors = [c for c in code if any(o.output_type == "error" for o in c.outputs)]
    stderr = ["".join(o.get("text", "")) for c in code for o in c.outputs
              if o.output_type == "stream" and o.name == "stderr"]
    stubs = sum(1 for t in stderr if "not yet implemented" in t)
    first = errors[0].source.split("\n")[0] if errors else ""
    check(ran == len(code) and not errors and stubs > 0,
          "%s runs top to bottom under the kernel: %d of %d cells, %d compile errors%s, %d stops at "
          "`not yet implemented`" % (name, ran, len(code), len(errors), (" (" + first + ")") if first else "", stubs))


def main():
    tally = Tally(show_passes=True)
    check = tally.check

    sources = sorted(glob.glob(os.path.join(SOURCE, "*.ipynb")))
    check(len(sources) >= 4, "%d source notebooks in %s" % (len(sources), SOURCE))
    for src_path in sources:
        name = os.path.basename(src_path)
        rel_path = os.path.join(RELEASE, name)
        check(os.path.exists(rel_path), "%s released" % name)
        if not os.path.exists(rel_path):
            continue
        src = nbformat.read(src_path, as_version=4)
        rel = nbformat.read(rel_path, as_version=4)
        released = "\n".join(cell.source for cell in rel.cells)
        secret, leaked = leaked_lines(src.cells, released)
        check(not leaked, "%s: none of its %d solution and hidden-test lines is in the release%s"
              % (name, len(secret), (": " + leaked[0]) if leaked else ""))
        stubs = released.count("// YOUR CODE HERE") + released.count("YOUR ANSWER HERE")
        regions = sum(1 for cell in src.cells if cell.metadata.get("nbgrader", {}).get("solution"))
        check(stubs >= regions, "%s: %d stubs for %d solution cells" % (name, stubs, regions))
        allowed = test_cells.grade_exports()
        theirs = test_cells.student_functions(src.cells)
        clash = allowed & theirs
        check(not clash, "%s: mlp_core::grade exports none of the student's functions%s"
              % (name, (": " + ", ".join(sorted(clash))) if clash else ""))
        for cell in src.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                problems = test_cells.bare_names(cell.source, allowed | theirs)
                check(not problems, "%s, test cell %s: nothing a student's cell could redefine%s"
                      % (name, meta.get("grade_id"), "".join("\n    " + p for p in problems)))
        # and the check itself refuses what it is for: a notebook variable, a bare macro
        bad = test_cells.bare_names("(::mlp_core::grade::points(1.0, || { let v = x; "
                                    "assert!(v > 0.0); Ok(()) }))", allowed | theirs)
        check(len(bad) == 2, "%s: the test-cell check refuses a read of `x` and a bare `assert!` (%d problems)"
              % (name, len(bad)))
        deps = [line for line in released.split("\n") if line.startswith(":dep mlp-core")]
        check(deps and all("default-features = false" in d and '"/' in d and 'features = ["blas"]' in d
                           and "solutions" not in d for d in deps),
              "%s: mlp-core without `solutions`, with `blas`, by absolute path: %s" % (name, deps))

    for path in sources:
        code, out = validate(path)
        check(code == 0 and "Success!" in out,
              "nbgrader validate passes on the source %s%s"
              % (os.path.basename(path), "" if code == 0 else ":\n" + out[-2000:]))
    for path in sorted(glob.glob(os.path.join(RELEASE, "*.ipynb"))):
        name = os.path.basename(path)
        run_release(path, check)
        code, out = validate(path)
        check("VALIDATION FAILED" in out, "nbgrader validate fails on the release %s, as it should" % name)
    tally.close("assignment")


if __name__ == "__main__":
    main()
