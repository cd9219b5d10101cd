"""What the student reads: evcxr's panics, errors and lost state, translated.

Pure functions of the text evcxr and mlp-core print (and of the cell's generated source
in the work directory), so they are tested without a kernel (tests/unit/).
"""

import json
import os
import re
import subprocess
import time

from .home import ROOT, panic_file

# mlp-core's panic hook (src/kernel.rs) prints this line on standard output
PANIC_MARKER = "MLP_KERNEL_PANIC "
# mlp-core's live display: a line of JSON {"display_id", "data"} (mlp-core/src/live.rs)
DISPLAY_MARKER = "MLP_KERNEL_DISPLAY "
PANICKED = re.compile(r"^thread '[^']*'(?: \(\d+\))? panicked at (.*):$")
FRAME = re.compile(r"^\s*\d+: (.*)$")
TERMINATED = "Subprocess terminated"
SEE_BACKTRACE = "(the full report: run `:backtrace` in a cell)"


def lost_state_text(interrupted, status, cells):
    """What the student reads when evcxr's process holding the variables has ended."""
    ran = ""
    if cells:
        ran = " (cells [%d] to [%d] ran in this kernel)" % (cells[0], cells[-1]) if len(cells) > 1 else \
            " (cell [%d] ran in this kernel)" % cells[0]
    if interrupted:
        first = "Interrupted. Stopping a running Rust cell ends the process that holds the notebook's variables"
    else:
        first = "The process running the notebook's code ended (%s), taking the notebook's variables with it" % status
    return (first + ": every variable is gone now; the functions, types and `use` lines are kept.\n"
            "Run the cells that create the variables again: Run > Run All Above Selected Cell" + ran + ".")


def describe_location(location, work):
    """`src/lib.rs:2:34` is evcxr's generated source of the notebook's cells (in the
    work directory): say which function of the notebook (or which cell) that line is
    in, and show it."""
    m = re.match(r"^(.*):(\d+):(\d+)$", location)
    if not m:
        return "at " + location
    path, line = m.group(1), int(m.group(2))
    if path == "src/lib.rs":
        try:
            with open(os.path.join(work, "src", "lib.rs")) as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        if 0 < line <= len(lines):
            code = lines[line - 1].strip()
            for k in range(line - 1, -1, -1):
                fn = re.match(r"^\s*(?:pub(?:\(crate\))?\s+)?fn\s+(\w+)", lines[k])
                if fn:
                    if fn.group(1).startswith("run_user_code"):
                        break
                    return "in your function `%s`, at: %s" % (fn.group(1), code)
            return "in this cell, at: %s" % code
        return "in the notebook's code"
    if path.startswith(ROOT + os.sep):
        path = os.path.relpath(path, ROOT)
    else:  # a dependency's source, e.g. .../index.crates.io-*/ndarray-0.17.2/src/x.rs
        path = re.sub(r"^.*/registry/src/[^/]+/", "", path)
    return "at %s:%d" % (path, line)


def notebook_frame(report, work):
    """The innermost frame of the panic's stack in the notebook's code, as
    `src/lib.rs:LINE:0`, from the offsets into the cell's library that mlp-core's
    hook lists (`addr2line -i` names the inlined functions' lines too); None when
    there is none or addr2line cannot tell."""
    library, frames = report.get("library"), report.get("frames")
    if not library or not frames:
        return None
    try:
        out = subprocess.run(["addr2line", "-a", "-i", "-e", library] + ["%#x" % f for f in frames],
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    source = os.path.realpath(os.path.join(work, "src", "lib.rs"))
    for entry in out.splitlines():
        m = re.match(r"^(.*):(\d+)(?: \(discriminator \d+\))?$", entry)
        if m and m.group(2) != "0" and (m.group(1) == "src/lib.rs" or os.path.realpath(m.group(1)) == source):
            return "src/lib.rs:%s:0" % m.group(2)
    return None


def panic_report(text, work):
    """mlp-core's one-line reports (PANIC_MARKER lines) as the student reads them."""
    out = []
    for line in text.splitlines():
        if line.startswith(PANIC_MARKER):
            report = json.loads(line[len(PANIC_MARKER):])
            where = describe_location(report["location"], work) if report.get("location") else "somewhere"
            caller = None if where.startswith("in ") else notebook_frame(report, work)
            if caller:  # in a library the notebook's code called: say which line did
                where = "%s\n  (inside %s)" % (describe_location(caller, work), where.removeprefix("at "))
            out.append("panicked: %s\n  %s\n  %s" % (report["message"], where, SEE_BACKTRACE))
        else:
            out.append(line)
    return "\n".join(out) + "\n"


class Panics:
    """The runtime's panic reports on standard error, without their backtraces: the
    message, then where it happened in the notebook's own code. `active` holds the
    cells whose report is still being printed; the last backtrace is kept for
    `:backtrace`."""

    def __init__(self, work):
        self.work = work
        self.active = {}  # msg_id -> {"where", "frames"} while its panic is being printed
        self.last_backtrace = []
        self.last_backtrace_time = 0

    def filter(self, parent_id, text):
        out = []
        for line in text.splitlines(keepends=True):
            state = self.active.get(parent_id)
            bare = line.rstrip("\n")
            m = PANICKED.match(bare)
            if m:
                self.active[parent_id] = {"where": describe_location(m.group(1), self.work), "frames": [bare]}
                out.append("panicked: ")
            elif state is None:
                out.append(line)
            elif bare == "stack backtrace:" or FRAME.match(bare) or bare.startswith("             at "):
                state["frames"].append(bare)
            elif bare.startswith("note: "):
                state["frames"].append(bare)
                self.last_backtrace = state["frames"]
                self.last_backtrace_time = time.time()
                self.active.pop(parent_id)
                out.append("  %s\n  %s\n" % (state["where"], SEE_BACKTRACE))
            else:  # the panic's message
                state["frames"].append(bare)
                out.append(line)
        return "".join(out)

    def full_backtrace(self):
        """The last panic's whole report: mlp-core's file, or the one evcxr printed."""
        candidates = [("\n".join(self.last_backtrace), self.last_backtrace_time)]
        try:
            with open(panic_file(self.work)) as f:
                candidates.append((f.read(), os.path.getmtime(panic_file(self.work))))
        except OSError:
            pass
        candidates = [c for c in candidates if c[0]]
        if not candidates:
            return "No panic in this kernel yet."
        return max(candidates, key=lambda c: c[1])[0]
