"""nbgrader's autograde hook: `SandboxedExecute`, nbgrader's Execute with each notebook run
in a container of the course image (deploy/Dockerfile, deploy/image/execute-notebook.py)
instead of on this machine, its test cells sealed so that a cell's score is only what
`::mlp_core::grade` printed (the class's description). Its helpers: `neutralise` (a
student's cell without evcxr commands or `extern crate`), `GradebookLock` (several
students graded at once, mlp_lab/course/autograde.py), `Budget` (one time limit a
submission), `capped_run` (the sandbox's output read up to a cap).

evcxr's error replies lack `ename`/`evalue`, which nbgrader's Execute reads: the kernel
relay (mlp_lab/kernel/) fills them in.
"""

import contextlib
import copy
import fcntl
import os
import re
import secrets
import subprocess
import threading
import time
import uuid

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import Execute
from traitlets import Bool

from mlp_lab.course import grader
from mlp_lab.course.dep_line import in_image
from mlp_lab.hub import containers as hub_containers  # the course image and podman's settings

# evcxr reads commands (`:dep`, `:opt`, ...) and shell lines (`!...`) from a cell's first
# lines, before its first line of Rust (evcxr's CodeBlock::from_original_user_code)
EVCXR_COMMAND = re.compile(r"^ *(:[^ ]*)( +(.*))?$")
EXTERN_CRATE = re.compile(r"\bextern\s+crate\b")
# the line mlp-core's grade::sealed prints: mlp-grade <seal> <score> (the wire, ARCHITECTURE.md)
SEAL = re.compile(r"^mlp-grade ([0-9a-f]{32}) (\S+)\n?", re.M)
# a test cell's call (mlp-core/src/grade.rs), and what it becomes when sealed
POINTS = "::mlp_core::grade::points("
SEALED = "::mlp_core::grade::sealed("
NOT_RUN = "// (not run when grading: evcxr commands belong in the set-up cell) "
NO_EXTERN = ('compile_error!("`extern crate` is not allowed in your cells: it could '
             'change what the test cells call. Use the crates the set-up cell brings in.");')


def neutralise(source):
    """A student's cell as the grader runs it: the evcxr commands and shell lines it
    starts with turned into comments, each `extern crate` line into a compile error
    that says why. Returns (source, the lines changed)."""
    lines, changed, leading = source.split("\n"), [], True
    for k, line in enumerate(lines):
        if leading and (line.startswith("!") or EVCXR_COMMAND.match(line)):
            changed.append(line.strip())
            lines[k] = NOT_RUN + line
        elif leading and (line.startswith("//") or not line.strip()):
            continue
        else:
            leading = False
            if EXTERN_CRATE.search(line):
                changed.append(line.strip())
                lines[k] = NO_EXTERN
    return "\n".join(lines), changed


def is_test(cell):
    grade = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and grade.get("grade") and not grade.get("solution")


class GradebookLock:
    """`make autograde` with several jobs (mlp_lab/course/autograde.py) runs one `nbgrader
    autograde` per student at once; each holds this lock on the gradebook
    (`MLP_GRADEBOOK_LOCK`, a file) for its whole life except while its notebook runs in
    the sandbox, so that nbgrader's bookkeeping happens one student at a time."""

    def __init__(self):
        path = os.environ.get("MLP_GRADEBOOK_LOCK")
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600) if path else None
        self.acquire()

    def acquire(self):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)


GRADEBOOK = None  # made by nbgrader_config.py


class SandboxedExecute(Execute):
    """nbgrader's Execute, with the notebook run in a container of the course image
    (deploy/Dockerfile) instead of on this machine: the student's code runs as nobody in
    particular (uid 1000 in the container), with no network, none of this machine's files
    (the course folder, the gradebook, the other submissions and the instructor's home
    are not there), a memory limit with no swap (`MLP_GRADE_MEM`, 3g), one core
    (`MLP_GRADE_CPUS`), a process limit, `Execute.timeout` per cell and one time limit
    for the whole submission (`MLP_GRADE_TIMEOUT`, `Budget`), its output capped
    (`MLP_GRADE_MAX_OUTPUT_MB`). Nothing the student's uid can write is read by cargo,
    rustc or evcxr before a later cell compiles (deploy/Dockerfile). nbgrader keeps the
    bookkeeping here: it restores the cells, this sends the notebook in and takes its
    outputs back, nbgrader reads the grades from them.

    Before the notebook goes in, every cell that is not exactly one of the source's
    locked or test cells (the student's) loses its evcxr commands and `extern crate`
    lines (`neutralise`), and each test cell is sealed: `::mlp_core::grade::points(` becomes
    `::mlp_core::grade::sealed("<a fresh random word>", `. When it comes back, a test
    cell's value is the score on its seal line, and nothing else it printed: a cell whose
    seal line is missing (the kernel died, the sandbox was stopped, a student's code
    printed evcxr's own protocol to end the cell early or to show another value) gets an
    error that says why, so nbgrader gives it no points."""

    run_without_checks = Bool(
        False, help="Also run notebooks that have no test cells (their written answers are "
                    "graded by hand; running them only shows their outputs in the feedback)"
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        sent = copy.deepcopy(nb)
        trusted = self.source_cells(resources)
        seals, notes = {}, {}
        for k, cell in enumerate(sent.cells):
            if cell.cell_type != "code":
                continue
            # the image's mlp-core, wherever the notebook says it is on this machine
            cell.source = in_image(cell.source)
            cell.outputs = []
            if nb.cells[k].source not in trusted:
                cell.source, changed = neutralise(cell.source)
                if changed:
                    notes[k] = changed
            elif is_test(cell) and POINTS in cell.source:
                seals[k] = secrets.token_hex(16)
                cell.source = cell.source.replace(POINTS, '%s"%s", ' % (SEALED, seals[k]), 1)
        if not any(is_test(cell) for cell in nb.cells) and not self.run_without_checks:
            self.log.info("no test cells: not run (SandboxedExecute.run_without_checks)")
            return nb, resources
        if GRADEBOOK:
            GRADEBOOK.release()
        try:
            done, reason = self.run_in_sandbox(sent)
        finally:
            if GRADEBOOK:
                GRADEBOOK.acquire()
        if reason is None and len(done.cells) != len(nb.cells):
            reason = "the grading sandbox returned %d cells for %d" % (len(done.cells), len(nb.cells))
        for k, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            cell.outputs = done.cells[k].get("outputs", []) if reason is None else []
            cell.execution_count = done.cells[k].get("execution_count") if reason is None else None
            if k in notes:
                cell.outputs.insert(0, NotebookNode(output_type="stream", name="stdout", text="".join(
                    "not run when grading: %s\n" % line for line in notes[k])))
            self.unseal(cell, seals.get(k), reason)
        if reason:
            self.log.warning("%s", reason)
        return nb, resources

    def unseal(self, cell, seal, reason):
        """A test cell's score from its seal line (see the class's description); every
        seal line out of every cell's printed text."""
        score = None
        for out in cell.outputs:
            if out.output_type == "stream":
                for m in SEAL.finditer(out.text):
                    if m.group(1) == seal:
                        score = m.group(2)
                out.text = SEAL.sub("", out.text)
        if not is_test(cell):
            return
        if any(o.output_type == "error" for o in cell.outputs):
            return
        if seal is None and any(o.output_type == "execute_result" for o in cell.outputs):
            return  # a test cell of another shape: nbgrader reads it as it is
        cell.outputs = [o for o in cell.outputs if o.output_type != "execute_result"]
        if score is not None:
            cell.outputs.append(NotebookNode(output_type="execute_result", execution_count=cell.execution_count,
                                             metadata={}, data={"text/plain": score}))
            return
        why = reason or ("this check did not report its score: it did not run to its end, or code "
                         "it called printed over its result")
        cell.outputs.append(NotebookNode(output_type="error", ename="NotGraded", evalue=why,
                                         traceback=["not graded: " + why]))

    def source_cells(self, resources):
        """The sources of the notebook's locked cells (its set-up and test cells among
        them), as nbgrader saved them in the gradebook and restored them in the
        submission."""
        info = (resources or {}).get("nbgrader", {})
        try:
            with Gradebook(info["db_url"]) as gb:
                notebook = gb.find_notebook(info["notebook"], info["assignment"])
                return {cell.source for cell in notebook.source_cells if cell.locked}
        except (KeyError, MissingEntry) as e:
            self.log.warning("the notebook's cells are not in the gradebook (%s): every cell is treated "
                             "as the student's", e)
            return set()

    def run_in_sandbox(self, nb):
        """(the notebook executed, None) or (None, why it could not be)."""
        image = hub_containers.course_image()
        if not image:
            return None, "the course image is not built: run make image (make autograde does)"
        left = SUBMISSION_TIME.left()
        if left <= 0:
            return None, ("the submission's time limit (MLP_GRADE_TIMEOUT, %d s) was used up by its notebooks "
                          "before this one" % SUBMISSION_TIME.limit)
        mem = os.environ.get("MLP_GRADE_MEM", "3g")
        cpus = os.environ.get("MLP_GRADE_CPUS", "1")
        name = "%s-%s" % (os.environ.get("MLP_SANDBOX_PREFIX") or "mlp-grade", uuid.uuid4().hex[:12])
        # as the grader account (mlp_lab/course/grader.py), rootless podman: the limits are
        # those of a cgroup of the account's; as root (nbgrader run by hand), podman's own
        rootless = os.getuid() != 0
        limits = [] if rootless else ["--memory", mem, "--memory-swap", mem, "--cpus", cpus, "--pids-limit", "512"]
        cmd = ["podman", "run", "--rm", "-i", "--name", name, "--network", "none", *limits,
               "--cap-drop", "ALL", "--cap-add", "SETUID", "--cap-add", "SETGID",
               "--security-opt", "no-new-privileges", "--user", "0", "--entrypoint", "python",
               image, "/opt/mlp-lab/execute-notebook.py", str(int(self.timeout or 600)), str(int(left)),
               str(SUBMISSION_TIME.limit)]
        # the runner stops the notebook at its deadline and says why; this is the backstop
        with grader.sandbox_cgroup(mem, cpus, 512) if rootless else contextlib.nullcontext() as enter:
            out, err, code = capped_run(cmd, nbformat.writes(nb).encode(), left + 60, OUTPUT_CAP, enter)
        if code is None:
            subprocess.run(["podman", "rm", "-f", name], env=hub_containers.podman_env(), capture_output=True)
            return None, ("the notebook was stopped at the submission's time limit (MLP_GRADE_TIMEOUT, %d s)"
                          % SUBMISSION_TIME.limit)
        if len(out) >= OUTPUT_CAP:
            return None, ("the notebook printed more than %d MB (MLP_GRADE_MAX_OUTPUT_MB) and was not graded"
                          % (OUTPUT_CAP >> 20))
        if code != 0:
            said = err.decode("utf-8", "replace").strip().splitlines()
            why = said[-1] if said else ("killed: its memory limit, or stopped from outside" if code in (137, -9)
                                         else "it said nothing")
            return None, "the grading sandbox stopped (exit %d): %s" % (code, why)
        try:
            return nbformat.reads(out.decode("utf-8", "replace"), as_version=4), None
        except ValueError as e:
            return None, "the grading sandbox's result could not be read: %s" % e


class Budget:
    """One `nbgrader autograde` process grades one student's submission (autograde.py):
    its notebooks share one time limit, `MLP_GRADE_TIMEOUT` seconds (default 900), counted
    from the first notebook's start, however many cells the student wrote."""

    def __init__(self):
        self.limit = int(os.environ.get("MLP_GRADE_TIMEOUT") or 900)
        self.start = None

    def left(self):
        if self.start is None:
            self.start = time.monotonic()
        return self.limit - (time.monotonic() - self.start)


SUBMISSION_TIME = Budget()
# what the sandbox may send back: the notebook with its outputs (a solved submission's is
# about 1 MB); more is refused, not read into the grader's memory
OUTPUT_CAP = int(float(os.environ.get("MLP_GRADE_MAX_OUTPUT_MB") or 32) * 2**20)


def capped_run(cmd, data, timeout, cap, preexec_fn=None):
    """`cmd` with `data` on its standard input: (its standard output, at most `cap` bytes;
    the last 64 kB of its standard error; its exit status, None when stopped at `timeout`
    seconds). Reading stops at the cap (the process is then killed): what a student's code
    prints never fills the grader's memory."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=hub_containers.podman_env(), preexec_fn=preexec_fn)
    got = {"out": bytearray(), "err": bytearray()}

    def read(stream, key, limit, keep_tail):
        while True:
            chunk = stream.read(1 << 16)
            if not chunk:
                return
            got[key] += chunk
            if keep_tail:
                del got[key][:-limit]
            elif len(got[key]) >= limit:
                del got[key][limit:]
                proc.kill()
                return

    readers = [threading.Thread(target=read, args=(proc.stdout, "out", cap, False), daemon=True),
               threading.Thread(target=read, args=(proc.stderr, "err", 1 << 16, True), daemon=True)]
    [r.start() for r in readers]
    try:
        proc.stdin.write(data)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    [r.join(10) for r in readers]
    return bytes(got["out"]), bytes(got["err"]), code
