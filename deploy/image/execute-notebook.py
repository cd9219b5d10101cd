"""Runs a notebook read on standard input in the course image's grading sandbox and writes
it, executed, on standard output (mlp_lab/course/preprocessors.py's SandboxedExecute runs this in a
container of its own for each notebook graded).

    podman run -i --user 0 ... IMAGE python /opt/mlp-lab/execute-notebook.py TIMEOUT

This runner is root inside the container (no capabilities but SETUID and SETGID); the
student's code runs in a kernel it starts as uid 1000 (the `rust-grading` kernel spec,
through setpriv), so that code cannot reach the runner's memory, its pipes or the
notebook it holds (the hidden tests). Standard output carries only the result: the
runner moves its own standard output aside before any kernel starts, and the kernel's
go to standard error.
"""

import os
import sys

RESULT = os.fdopen(os.dup(1), "w")  # not inherited (close-on-exec)
os.dup2(2, 1)

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import DeadKernelError  # noqa: E402


def main():
    timeout = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    nb = nbformat.read(sys.stdin, as_version=4)
    client = NotebookClient(
        nb, kernel_name="rust-grading", timeout=timeout, startup_timeout=120, allow_errors=True,
        interrupt_on_timeout=True, record_timing=False, resources={"metadata": {"path": "/tmp"}},
        error_on_timeout={"ename": "CellTimeoutError", "evalue": "",
                          "traceback": ["this cell ran for more than %d s and was stopped" % timeout]})
    try:
        client.execute()
    except DeadKernelError as e:
        stopped(nb, "the kernel stopped (%s): the process running the notebook's code was ended, for "
                    "example by the memory limit or by the code itself" % str(e).strip()[:200])
    except Exception as e:  # what the kernel could not run at all
        stopped(nb, "the notebook could not be run: %s" % str(e).strip()[:300])
    nbformat.write(nb, RESULT)
    RESULT.flush()


def stopped(nb, reason):
    """Every code cell that did not run gets an error output saying why."""
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.get("outputs") and cell.get("execution_count") is None:
            cell.outputs = [nbformat.v4.new_output("error", ename="NotRun", evalue=reason,
                                                   traceback=["not run: " + reason])]


if __name__ == "__main__":
    main()
