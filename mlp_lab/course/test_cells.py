"""What a test cell of the student edition may name (`make assignment` checks it, in
mlp_lab/course/release_check.py; grading relies on it, in mlp_lab/course/sandbox.py).

A test cell is one expression, `(::mlp_core::grade::points(MAX, || { ... }))`, whose
block imports `::mlp_core::grade::*` (in parentheses: evcxr would read a first line that
starts with `:` as one of its commands). A student's cells can define any name at their crate's
root (a function `points` or `Err`, a type `f64`, a `macro_rules! assert`), and evcxr
lets a later cell replace a function or a variable of an earlier one; a nearer import
wins over the first kind, a path from the crate root over all of them. So a test cell
may use, unqualified, only:

- the names `mlp_core::grade` exports (read from mlp-core/src/grade.rs),
- names it binds itself (`let`, `for`, closure parameters),
- the student's functions: those defined in the notebook's solution cells, and those of
  other cells built from them (notebook 2's `loss` calls the student's `forward_loss`
  and `backward`), whose results the library's checks then judge,
- a notebook variable as the target of an assignment (`stats = trained.clone();`, for
  the figures after it), never read;

and every macro by its path (`::std::println!`). `bare_names` lists what breaks that.
"""

import os
import re

from mlp_lab import ROOT

GRADE_RS = os.path.join(ROOT, "mlp-core", "src", "grade.rs")
HEAD = "::mlp_core::grade::points("

KEYWORDS = set("""as async await break const continue dyn else enum extern false fn for if impl in let
loop match mod move mut pub ref return static struct trait true type unsafe use where while _""".split())
# paths that start at the student's own crate
OWN = {"crate", "super", "self", "Self"}

TOKEN = re.compile(r"""
    (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>b?r(?P<hashes>\#*)".*?"(?P=hashes)|b?"(?:\\.|[^"\\])*")
  | (?P<char>b?'(?:\\.|[^'\\])'(?!\w))
  | (?P<lifetime>'\w+)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<number>\d[\w.]*)
  | (?P<punct>::|\.\.=?|=>|==|!=|<=|>=|&&|\|\||->|[^\s\w])
""", re.S | re.X)


def tokens(source):
    """(kind, text) for each token of Rust source, comments dropped."""
    out = []
    for m in TOKEN.finditer(source):
        kind = m.lastgroup if m.lastgroup != "hashes" else "string"
        for k in ("comment", "string", "char", "lifetime", "ident", "number", "punct"):
            if m.group(k) is not None:
                kind = k
                break
        if kind != "comment":
            out.append((kind, m.group(kind)))
    return out


def grade_exports(path=GRADE_RS):
    """The names `use ::mlp_core::grade::*` brings: its `pub use` and `pub fn` items."""
    text = open(path).read()
    names = set(re.findall(r"^pub fn (\w+)", text, re.M))
    for m in re.finditer(r"^pub use ([^;]*);", text, re.M | re.S):
        body = m.group(1)
        prefix, _, listed = body.partition("{")
        items = listed.rstrip("}").split(",") if listed else [body]
        for item in items:
            item = item.strip()
            if not item:
                continue
            name = item.split(" as ")[-1].split("::")[-1].strip()
            names.add(prefix.rstrip(":").split("::")[-1] if name == "self" else name)
    return names


def functions(source):
    return set(re.findall(r"\bfn\s+(\w+)", source))


def student_functions(cells):
    """The functions of the notebook's solution cells, and those of its other code cells
    that call one of them (what the student's code is made of)."""
    meta = [c.metadata.get("nbgrader", {}) for c in cells]
    theirs = set()
    for cell, m in zip(cells, meta, strict=True):
        if cell.cell_type == "code" and m.get("solution"):
            theirs |= functions(cell.source)
    for cell, m in zip(cells, meta, strict=True):
        if cell.cell_type == "code" and not m.get("solution") and not m.get("grade"):
            body = " ".join(t for k, t in tokens(cell.source) if k == "ident")
            if any(re.search(r"\b%s\b" % f, body) for f in theirs):
                theirs |= functions(cell.source)
    return theirs


def bound_names(toks):
    """Names the cell binds itself: `let` and `for` patterns, closure parameters."""
    bound = set()
    for i, (_kind, text) in enumerate(toks):
        if text in ("let", "for") or (text == "|" and i > 0 and toks[i - 1][1] in ("(", ",", "=", "move", "{", ";")):
            stop = {"let": ("=", ":", ";"), "for": ("in",), "|": ("|",)}[text]
            j, depth = i + 1, 0
            while j < len(toks) and not (depth == 0 and toks[j][1] in stop):
                t = toks[j][1]
                depth += t in "([{" and 1 or (t in ")]}" and -1 or 0)
                after = toks[j + 1][1] if j + 1 < len(toks) else ""
                before = toks[j - 1][1]
                if toks[j][0] == "ident" and t not in KEYWORDS and after not in ("(", "{", "::") \
                        and before not in (":", "::", "<"):
                    bound.add(t)
                if text == "|" and t == ":":  # skip a parameter's type
                    while j + 1 < len(toks) and toks[j + 1][1] not in (",", "|"):
                        j += 1
                j += 1
    return bound


def bare_names(source, allowed):
    """The problems of one test cell, as sentences: names a student could redefine, bare
    macros, a shape other than one `::mlp_core::grade::points(...)` expression."""
    toks = tokens(source)
    problems = []
    code = "".join(t for _, t in toks[:9])
    if not code.startswith("(" + HEAD) or "".join(t for _, t in toks[-2:]) != "))":
        problems.append("it is not one expression `(%s...))`" % HEAD)
    ok = allowed | bound_names(toks)
    seen = set()
    for i, (kind, text) in enumerate(toks):
        before = toks[i - 1][1] if i else ""
        after = toks[i + 1][1] if i + 1 < len(toks) else ""
        uses = []
        if kind == "string":
            # inline format arguments, `{name}` and `{name:...}`
            uses = [(n, "") for n in re.findall(r"(?<!\{)\{([A-Za-z_]\w*)[:}]", text.replace("{{", ""))]
        elif kind == "ident" and before not in ("::", ".") and text not in KEYWORDS - OWN:
            if after == "!":
                problems.append("`%s!` is a bare macro (a student's `macro_rules! %s` would replace it): "
                                "call it by its path, `::std::%s!`" % (text, text, text))
                continue
            if after == ":" or (after == "=" and text not in ok):
                continue  # a field or parameter name; an assignment's target
            uses = [(text, "")]
        for name, _ in uses:
            if name in OWN:
                problems.append("`%s::` names the student's own crate" % name)
            elif name not in ok and name not in seen:
                seen.add(name)
                problems.append("`%s` is a bare name a student's cell could redefine: use a name "
                                "`::mlp_core::grade` exports, a path from the crate root, or a local" % name)
    return problems
