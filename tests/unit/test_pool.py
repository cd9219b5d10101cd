"""The warm pool (mlp_lab/kernel/pool.py): one relay wins a warm kernel; a dead one is never
handed out; the warm-up in a forked child reports its result, its error, and a child that
dies without a word, and never returns into the pool's loop."""

import json
import os
import subprocess

import pytest

from mlp_lab.kernel.pool import claim_ready, claimed_kernels, dep_lines, in_child, pool_dir, ready_kernels


@pytest.fixture
def fake_evcxr(tmp_path):
    """A process whose command line says evcxr_jupyter (sleep, by another name)."""
    exe = tmp_path / "evcxr_jupyter"
    os.symlink("/bin/sleep", exe)
    proc = subprocess.Popen([str(exe), "60"])
    yield proc
    proc.kill()
    proc.wait()


def ready(home, slot, pid):
    path = os.path.join(pool_dir(home, "ready"), "%s.json" % slot)
    with open(path, "w") as f:
        json.dump({"pid": pid, "work": "/w/%s" % slot}, f)


def test_a_warm_kernel_is_claimed_once(tmp_path, fake_evcxr):
    home = str(tmp_path / "home")
    ready(home, "3", fake_evcxr.pid)
    entry, claim = claim_ready(home)
    assert entry["pid"] == fake_evcxr.pid
    assert os.path.basename(claim) == "3.%d" % os.getpid()  # named by the relay that claimed it
    assert ready_kernels(home) == []
    assert claim_ready(home) is None  # nothing left for the next relay
    assert [(pid, e["work"]) for _, pid, e in claimed_kernels(home)] == [(os.getpid(), "/w/3")]


def test_a_dead_or_foreign_process_is_never_handed_out(tmp_path):
    home = str(tmp_path / "home")
    done = subprocess.run(["true"])
    assert done.returncode == 0
    ready(home, "0", 999999999)  # gone
    ready(home, "1", os.getpid())  # alive, but not evcxr
    assert claim_ready(home) is None
    assert ready_kernels(home) == [] and claimed_kernels(home) == []


def test_half_written_entries_are_skipped(tmp_path):
    home = str(tmp_path / "home")
    with open(os.path.join(pool_dir(home, "ready"), "2.json"), "w") as f:
        f.write('{"pid": 12')
    assert ready_kernels(home) == []


def test_the_pool_runs_the_notebooks_dependency_lines():
    nb = {"cells": [{"cell_type": "markdown", "source": ":dep not this"},
                    {"cell_type": "code", "source": [':dep mlp-core = { path = "x" }\n', "use mlp_core::*;\n"]},
                    {"cell_type": "code", "source": ":dep nor this"}]}
    assert dep_lines(nb) == [':dep mlp-core = { path = "x" }']


def test_result_comes_back():
    assert in_child(lambda n: {"count": n, "pid": os.getpid()}, 3)["count"] == 3


def test_runs_in_another_process():
    assert in_child(lambda: {"pid": os.getpid()})["pid"] != os.getpid()


def test_an_error_is_reported():
    def fails():
        raise RuntimeError("evcxr never answered")

    assert in_child(fails) == {"error": "RuntimeError: evcxr never answered"}


def test_a_child_that_exits_never_returns_into_the_pool():
    def exits():
        raise SystemExit(3)

    parent = os.getpid()
    assert in_child(exits) == {"error": "the warm-up process ended without a word"}
    assert os.getpid() == parent
