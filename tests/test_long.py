"""The long tests as pytest tests, marked `slow`: each runs its make target (which sets up
what it needs: the kernel, the data, Chromium, the course image) and passes when every
check the script printed is `ok`; a failure quotes the FAIL lines and the output's end.

    pytest                       the fast tests alone (tests/unit: a second, no kernel)
    pytest -m slow               every long test, in make test's order
    pytest -m slow -k grading    one of them
    pytest -m ""                 all of it

`make test` runs the same targets itself (and lint, the Rust tests, MNIST parity)."""

import subprocess
import sys

import pytest

from support import ROOT

# make test's order: each target's set-up is shared with the ones after it
TARGETS = ["kernel-test", "notebooks", "browser-test", "assignment", "grading-test", "hub-test", "class-test"]


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_long(target):
    proc = subprocess.Popen(["make", "--no-print-directory", target], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)  # (live with -s; otherwise pytest shows it when the test fails)
        lines.append(line.rstrip("\n"))
    code = proc.wait()
    failed = [line for line in lines if line.startswith("FAIL")]
    assert code == 0 and not failed, "make %s exited %d; its failed checks:\n%s\n...\n%s" % (
        target, code, "\n".join(failed) or "(none printed)", "\n".join(lines[-30:]))
