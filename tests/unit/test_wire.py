"""The wire between the Rust and the Python halves (ARCHITECTURE.md's table): each constant
is read from mlp-core's source and from the mlp_lab module that uses it, and the two must
agree. A constant renamed on one side only fails here, not in a student's notebook."""

import glob
import os
import re
import secrets

from mlp_lab import ROOT
from mlp_lab.course import sandbox
from mlp_lab.kernel import home, messages

RUST_SRC = os.path.join(ROOT, "mlp-core", "src")


def rust_source():
    """Every .rs file under mlp-core/src/ (its subfolders too), by path from src/."""
    paths = glob.glob(os.path.join(RUST_SRC, "**", "*.rs"), recursive=True)
    assert paths, "no Rust source under %s" % RUST_SRC
    return {os.path.relpath(p, RUST_SRC): open(p).read() for p in paths}


def rust_const(name):
    """The string value of `pub const NAME: &str = "...";`, defined once in mlp-core."""
    found = [(path, m.group(1)) for path, text in rust_source().items()
             for m in re.finditer(r'\bconst\s+%s\s*:\s*&str\s*=\s*"((?:[^"\\]|\\.)*)"\s*;' % name, text)]
    assert len(found) == 1, "const %s in mlp-core/src: %s" % (name, found or "none")
    return found[0][1]


def rust_env_vars():
    """The environment variables mlp-core reads (`std::env::var("..")`, `var_os`)."""
    return {m.group(1) for text in rust_source().values()
            for m in re.finditer(r'std::env::var(?:_os)?\(\s*"([A-Z0-9_]+)"\s*\)', text)}


def test_the_panic_marker_is_the_same():
    assert messages.PANIC_MARKER == rust_const("PANIC_MARKER")


def test_the_display_marker_is_the_same():
    assert messages.DISPLAY_MARKER == rust_const("DISPLAY_MARKER")


def test_the_environment_the_relay_sets_is_what_mlp_core_reads():
    read = rust_env_vars()
    assert home.PANIC_FILE_ENV in read
    assert home.DISPLAY_ENV in read


def test_the_progress_file_is_what_the_rustc_wrapper_writes():
    # not Rust's: cargo's rustc wrapper in the kernel home writes it, the relay reads it
    wrapper = open(os.path.join(ROOT, "mlp_lab", "kernel", "rustc_progress.sh")).read()
    assert re.search(r'>>\s*"\$%s"' % re.escape(home.PROGRESS_FILE_ENV), wrapper)


def test_the_environment_names_are_set_by_evcxr_env():
    env = home.evcxr_env("/nonexistent/home", "/nonexistent/slot/work")
    for name in (home.PANIC_FILE_ENV, home.PROGRESS_FILE_ENV, home.DISPLAY_ENV):
        assert name in env


def grade_exports():
    """The functions `::mlp_core::grade::NAME` names: grade.rs's own `pub fn`s and those it
    re-exports with `pub use crate::module::{..}` (defined as `pub fn` in that module)."""
    src = rust_source()
    names = set(re.findall(r"^pub fn (\w+)", src["grade.rs"], re.M))
    for module, listed in re.findall(r"pub use crate::(\w+)::\{([^}]*)\};", src["grade.rs"]):
        for name in re.findall(r"\w+", listed):
            if re.search(r"^pub fn %s\b" % name, src.get(module + ".rs", ""), re.M):
                names.add(name)
    return names


def test_test_cells_call_what_grade_rs_exports():
    assert re.search(r"^pub mod grade;", rust_source()["lib.rs"], re.M)
    exports = grade_exports()
    for call in (sandbox.POINTS, sandbox.SEALED):
        m = re.fullmatch(r"::mlp_core::grade::(\w+)\(", call)
        assert m, call
        assert m.group(1) in exports, "::mlp_core::grade has no pub fn %s" % m.group(1)
    # sealed takes the seal first, then points' own arguments
    assert re.search(r"pub fn sealed\(seal: &str, max: f64,", rust_source()["grade.rs"])


def test_the_seal_line_grade_rs_prints_is_what_the_sandbox_reads():
    fmt = re.search(r'println!\("(mlp-grade \{seal\} \{score:\?\})"\)', rust_source()["grade.rs"])
    assert fmt, "grade.rs prints no seal line of the form the sandbox reads"
    seal = secrets.token_hex(16)  # the sandbox's seal: 32 hex digits
    for score in ("2.0", "0.5", "1e-7"):  # f64's {:?}
        line = fmt.group(1).replace("{seal}", seal).replace("{score:?}", score)
        m = sandbox.SEAL.search("a student's line\n\n%s\n" % line)
        assert m and m.groups() == (seal, score), line
