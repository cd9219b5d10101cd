"""nbgrader configured for the evcxr Rust kernel (imported by nbgrader_config.py).

- `StudentDependency`: in the student edition (`nbgrader generate_assignment`), the set-up
  cell's `:dep mlp-core = { path = "../mlp-core" }` becomes an absolute path to this
  clone's mlp-core with `default-features = false`: the release notebooks build the
  library without its `solutions` feature, so they cannot call its finished loss,
  backward pass, predict or training, and they find it from any folder (release,
  a student's working copy, nbgrader's autograded/<student>/ folders). It runs before
  nbgrader saves the cells, so autograde restores this line in every submission.

evcxr's error replies lack `ename`/`evalue`, which nbgrader's Execute reads: the kernel
relay (tools/mlp_kernel.py) fills them in.
"""

import copy
import os
import re
import subprocess
import sys
import uuid

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "deploy"))
import hub_containers  # noqa: E402 (the course image and podman's settings)

MLP_CORE = os.path.abspath(os.path.join(HERE, "..", "mlp-core"))
DEP = re.compile(r'^:dep mlp-core = \{ path = "[^"]*" \}$', re.M)
STUDENT_DEP = ':dep mlp-core = { path = "%s", default-features = false }' % MLP_CORE


class StudentDependency(NbGraderPreprocessor):
    """The set-up cell's `:dep mlp-core` line for the student edition."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and DEP.search(cell.source):
            cell.source = DEP.sub(STUDENT_DEP.replace("\\", "\\\\"), cell.source)
        return cell, resources


# ---------------------------------------------------------------------------------
# Grading in a sandbox

MLP_CORE_PATH = re.compile(r'(:dep mlp-core = \{[^}\n]*path = ")[^"]*(")')


class SandboxedExecute(Execute):
    """nbgrader's Execute, with the notebook run in a container of the course image
    (deploy/Dockerfile) instead of on this machine: the student's code runs as nobody in
    particular (uid 1000 in the container), with no network, none of this machine's files
    (the course folder, the gradebook, the other submissions and the instructor's home
    are not there), a memory limit with no swap (`MLP_GRADE_MEM`, 3g), a CPU limit
    (`MLP_GRADE_CPUS`, the machine's cores), a process limit, and `Execute.timeout` per
    cell. nbgrader keeps the bookkeeping here: it restores the cells, this sends the
    notebook in and takes its outputs back, nbgrader reads the grades from them.

    A check cell that did not run to its end (the kernel died, the sandbox was stopped,
    the notebook could not run) gets an error output that says why, so nbgrader gives it
    no points (it gives full points to a test cell with no output at all)."""

    def preprocess(self, nb, resources=None, km=None):
        sent = copy.deepcopy(nb)
        for cell in sent.cells:
            if cell.cell_type == "code":
                # the image's mlp-core, wherever the notebook says it is on this machine
                cell.source = MLP_CORE_PATH.sub(r"\g<1>%s\g<2>" % hub_containers.IMAGE_MLP_CORE, cell.source)
                cell.outputs = []
        done, reason = self.run_in_sandbox(sent)
        if reason is None and len(done.cells) != len(nb.cells):
            reason = "the grading sandbox returned %d cells for %d" % (len(done.cells), len(nb.cells))
        for k, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            cell.outputs = done.cells[k].get("outputs", []) if reason is None else []
            cell.execution_count = done.cells[k].get("execution_count") if reason is None else None
            grade = cell.metadata.get("nbgrader", {})
            if grade.get("grade") and not grade.get("solution") and not any(
                    o.output_type in ("execute_result", "error") for o in cell.outputs):
                why = reason or "this check did not run to its end"
                cell.outputs.append(NotebookNode(output_type="error", ename="NotGraded", evalue=why,
                                                 traceback=["not graded: " + why]))
        if reason:
            self.log.warning("%s", reason)
        return nb, resources

    def run_in_sandbox(self, nb):
        """(the notebook executed, None) or (None, why it could not be)."""
        image = hub_containers.course_image()
        if not image:
            return None, "the course image is not built: run make image (make autograde does)"
        timeout = int(self.timeout or 600)
        limit = timeout * sum(1 for cell in nb.cells if cell.cell_type == "code") + 300
        mem = os.environ.get("MLP_GRADE_MEM", "3g")
        cpus = os.environ.get("MLP_GRADE_CPUS", str(os.cpu_count() or 1))
        name = "mlp-grade-%s" % uuid.uuid4().hex[:12]
        cmd = ["podman", "run", "--rm", "-i", "--name", name, "--network", "none",
               "--memory", mem, "--memory-swap", mem, "--cpus", cpus,
               "--pids-limit", "512", "--cap-drop", "ALL", "--cap-add", "SETUID", "--cap-add", "SETGID",
               "--security-opt", "no-new-privileges", "--user", "0", "--entrypoint", "python",
               image, "/opt/mlp-lab/execute-notebook.py", str(timeout)]
        try:
            out = subprocess.run(cmd, input=nbformat.writes(nb).encode(), capture_output=True,
                                 env=hub_containers.podman_env(), timeout=limit)
        except subprocess.TimeoutExpired:
            subprocess.run(["podman", "rm", "-f", name], env=hub_containers.podman_env(), capture_output=True)
            return None, "the notebook ran for more than %d s and was stopped" % limit
        if out.returncode != 0:
            said = out.stderr.decode("utf-8", "replace").strip().splitlines()
            return None, "the grading sandbox stopped (exit %d): %s" % (out.returncode, said[-1] if said else "")
        try:
            return nbformat.reads(out.stdout.decode("utf-8", "replace"), as_version=4), None
        except ValueError as e:
            return None, "the grading sandbox's result could not be read: %s" % e
