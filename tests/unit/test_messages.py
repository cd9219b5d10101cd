"""The kernel's translations of evcxr's panics, errors and lost state (mlp_lab/kernel/messages.py)."""

import os

from mlp_lab.kernel.messages import (
    PANIC_MARKER,
    SEE_BACKTRACE,
    Panics,
    describe_location,
    lost_state_text,
    panic_report,
)

LIB_RS = """pub fn helper() {}
fn backward(x: f64) -> f64 {
    let y = x * 2.0;
    y.sqrt()
}
fn run_user_code_3() {
    let z = backward(1.0);
}
"""


def work_dir(tmp_path):
    """A work directory with evcxr's generated source of the notebook's cells."""
    os.makedirs(tmp_path / "src")
    (tmp_path / "src" / "lib.rs").write_text(LIB_RS)
    return str(tmp_path)


def test_lost_state_names_the_cells_to_rerun():
    text = lost_state_text(True, "", [1, 2, 13])
    assert text.startswith("Interrupted. Stopping a running Rust cell ends the process")
    assert "every variable is gone now" in text
    assert text.endswith("Run All Above Selected Cell (cells [1] to [13] ran in this kernel).")
    assert lost_state_text(False, "signal 9", [4]).endswith("(cell [4] ran in this kernel).")
    ended = lost_state_text(False, "signal 9", [])
    assert "ended (signal 9)" in ended and ended.endswith("Run All Above Selected Cell.")


def test_a_location_in_the_notebook_names_the_function_and_the_line(tmp_path):
    work = work_dir(tmp_path)
    assert describe_location("src/lib.rs:4:5", work) == "in your function `backward`, at: y.sqrt()"
    # a cell's own statements are in evcxr's run_user_code_N: "this cell"
    assert describe_location("src/lib.rs:7:5", work) == "in this cell, at: let z = backward(1.0);"
    assert describe_location("src/lib.rs:99:1", work) == "in the notebook's code"


def test_a_location_in_a_dependency_is_its_crate_path(tmp_path):
    work = work_dir(tmp_path)
    registry = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ndarray-0.17.2/src/linalg/impl_linalg.rs"
    assert describe_location(registry + ":343:9", work) == "at ndarray-0.17.2/src/linalg/impl_linalg.rs:343"
    assert describe_location("somewhere odd", work) == "at somewhere odd"


def test_mlp_cores_panic_line_reads_as_a_sentence(tmp_path):
    work = work_dir(tmp_path)
    line = PANIC_MARKER + '{"message": "dW2 has the wrong shape", "location": "src/lib.rs:3:13"}'
    out = panic_report("before\n" + line, work)
    assert out == ("before\npanicked: dW2 has the wrong shape\n  in your function `backward`, at: let y = x * 2.0;\n"
                   "  %s\n" % SEE_BACKTRACE)


def test_the_runtimes_panic_loses_its_backtrace_and_keeps_it_for_later(tmp_path):
    panics = Panics(work_dir(tmp_path))
    assert panics.full_backtrace() == "No panic in this kernel yet."
    out = panics.filter("m1", "thread 'main' (12) panicked at src/lib.rs:4:5:\nnegative input\n")
    assert out == "panicked: negative input\n"
    assert "m1" in panics.active  # its report is still coming
    out = panics.filter("m1", "stack backtrace:\n   0: rust_begin_unwind\n             at /rustc/x/panicking.rs:1\n"
                              "note: Some details are omitted\n")
    assert out == "  in your function `backward`, at: y.sqrt()\n  %s\n" % SEE_BACKTRACE
    assert "m1" not in panics.active
    assert "0: rust_begin_unwind" in panics.full_backtrace()
    # standard error that is no panic passes unchanged
    assert panics.filter("m2", "warning: unused variable\n") == "warning: unused variable\n"
