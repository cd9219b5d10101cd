"""Runs a notebook read on standard input in the course image's grading sandbox and writes
it, executed, on standard output (mlp_lab/course/sandbox.py's SandboxedExecute runs this in a
container of its own for each notebook graded).

    podman run -i --user 0 ... IMAGE python /opt/mlp-lab/execute-notebook.py CELL_TIMEOUT LEFT LIMIT

CELL_TIMEOUT is a cell's limit in seconds; LEFT the seconds the submission has left of its
limit LIMIT (MLP_GRADE_TIMEOUT): a cell that would run past it is stopped there, and the
cells after it are not run, each with an error that says why.

This runner is root inside the container (no capabilities but SETUID and SETGID); the
student's code runs in a kernel it starts as uid 1000 (the `rust-grading` kernel spec,
through setpriv), so that code cannot reach the runner's memory, its pipes or the
notebook it holds (the hidden tests). Standard output carries only the result: the
runner moves its own standard output aside before any kernel starts, and the kernel's
go to standard error.
"""

import os
import sys
import time

RESULT = os.fdopen(os.dup(1), "w")  # not inherited (close-on-exec)
os.dup2(2, 1)

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import DeadKernelError  # noqa: E402


class Deadline(NotebookClient):
    """nbclient's client with one deadline for the whole notebook besides each cell's
    limit."""

    def __init__(self, nb, cell_timeout, left, limit, **kwargs):
        super().__init__(nb, timeout=cell_timeout, **kwargs)
        self.cell_timeout, self.limit = cell_timeout, limit
        self.deadline = time.monotonic() + left

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        left = int(self.deadline - time.monotonic())
        if cell.cell_type == "code" and left < 1:
            cell.outputs = [nbformat.v4.new_output("error", ename="NotRun", evalue=self.over(),
                                                   traceback=["not run: " + self.over()])]
            return cell
        self.timeout = min(self.cell_timeout, left)
        why = (self.over() if left < self.cell_timeout else
               "this cell ran for more than %d s and was stopped" % self.cell_timeout)
        self.error_on_timeout = {"ename": "CellTimeoutError", "evalue": why, "traceback": [why]}
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    def over(self):
        return "the submission's time limit (MLP_GRADE_TIMEOUT, %d s) was reached" % self.limit


def main():
    cell_timeout = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    left = int(sys.argv[2]) if len(sys.argv) > 2 else 900
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else left
    nb = nbformat.read(sys.stdin, as_version=4)
    client = Deadline(
        nb, cell_timeout, left, limit, kernel_name="rust-grading", startup_timeout=120, allow_errors=True,
        interrupt_on_timeout=True, record_timing=False, resources={"metadata": {"path": "/tmp"}})
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
