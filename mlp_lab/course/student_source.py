"""mlp-core's source without the problem set's answers, for the course image.

    python -m mlp_lab.course.student_source MLP_CORE_DIR

The students' containers and the grading sandbox run the course image, whose mlp-core
every notebook's `:dep` line builds. Its answers (`TwoLayerMLP`'s loss, forward and
backward passes, predict, training, the numerical gradient; the engine) are the items
`#[cfg(feature = "solutions")]` marks, as `make assignment`'s release leaves out what
`BEGIN SOLUTION` marks: this rewrites a staged copy of mlp-core (deploy/build-image.sh)
without them, as nbgrader's ClearSolutions does for the notebooks. Each marked item goes
with the doc comment above it (rustfmt's layout: an item ends at the first line that
closes it at its own indentation), `src/engine/` goes, and `solutions` is no longer a
default feature. The image's build compiles what is left, so a cut in the wrong place
fails `make image`.
"""

import os
import re
import shutil
import sys

MARK = '#[cfg(feature = "solutions")]'
DEFAULT = re.compile(r'^default = \[(.*)\]$', re.M)


def without_solutions(text):
    """`text` (a Rust file) without its items marked `MARK`; (text, how many)."""
    lines, out, k, cut = text.split("\n"), [], 0, 0
    while k < len(lines):
        line = lines[k]
        if line.strip() != MARK:
            out.append(line)
            k += 1
            continue
        indent = line[:len(line) - len(line.lstrip())]
        while out and out[-1].startswith(indent + "///"):
            out.pop()
        start = k + 1
        while lines[start].strip().startswith("#["):
            start += 1
        if lines[start].rstrip().endswith(";"):
            end = start
        else:
            end = next((j for j in range(start, len(lines)) if lines[j] in (indent + "}", indent + "};")), None)
            if end is None:
                raise ValueError("no end at indentation %d for the item marked on line %d" % (len(indent), k + 1))
        k, cut = end + 1, cut + 1
    return "\n".join(out), cut


def strip_crate(root):
    """mlp-core at `root` rewritten in place; the number of items cut."""
    cut = 0
    src = os.path.join(root, "src")
    shutil.rmtree(os.path.join(src, "engine"), ignore_errors=True)
    for folder, _, names in os.walk(src):
        for name in names:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            with open(path) as f:
                text = f.read()
            new, n = without_solutions(text)
            if n:
                with open(path, "w") as f:
                    f.write(new)
                cut += n
    manifest = os.path.join(root, "Cargo.toml")
    with open(manifest) as f:
        text = f.read()
    text, found = DEFAULT.subn(lambda m: "default = [%s]" % ", ".join(
        f for f in m.group(1).split(", ") if f != '"solutions"'), text, count=1)
    if not found:
        raise ValueError("no default features in %s" % manifest)
    with open(manifest, "w") as f:
        f.write(text)
    return cut


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    print("student source: %d items with the answers cut from %s" % (strip_crate(sys.argv[1]), sys.argv[1]))


if __name__ == "__main__":
    main()
