"""The crates cargo compiles for a cell, shown in that cell while they compile.

rustc_progress.sh (cargo's rustc wrapper in every kernel) appends a line per library to
the slot's progress file; the relay shows the latest with the time so far, updated each
second, and clears it before the cell's own output. (evcxr itself passes on only some of
cargo's "Compiling" lines: none for a name with a hyphen, like mlp-core.)
"""

import html
import time


class Progress:
    def __init__(self, path, displays, publish):
        self.path = path
        self.displays = displays  # display.Displays: the line redrawn in place
        self.publish = publish  # publish(msg_type, content, parent), for clear_output
        open(path, "wb").close()
        self.seen = 0
        self.shown = {}  # msg_id -> {"id", "crates", "start", "shown"} of its "Compiling" display

    def read(self, current):
        """New lines of the progress file, shown in the running cell's (`current`)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.seen)
                data = f.read()
        except OSError:
            return
        *lines, _ = data.split(b"\n")
        for line in lines:
            self.seen += len(line) + 1
            name, _, version = line.decode("utf-8", "replace").partition(" ")
            if current:
                self.show(current, name, version)
        if current:
            entry = self.shown.get(current["msg_id"])
            if entry and time.time() - entry["shown"] >= 1.0:
                self.show(current)

    def show(self, parent, crate=None, version=None):
        """The cell's progress line: the library being compiled and the time so far."""
        parent_id = parent["msg_id"]
        entry = self.shown.get(parent_id)
        if entry is None:
            if crate is None:
                return
            entry = self.shown[parent_id] = {"id": "compiling-%s" % parent_id, "crates": [],
                                             "start": time.time(), "shown": 0}
        if crate:
            entry["crates"].append("%s v%s" % (crate, version))
        n = len(entry["crates"])
        text = ("Compiling %s ... %.0f s (%d librar%s so far, kept for the next kernel start)"
                % (entry["crates"][-1], time.time() - entry["start"], n, "y" if n == 1 else "ies"))
        data = {"text/plain": text, "text/html": "<div style=\"color:#666\">&#9203; %s</div>" % html.escape(text)}
        entry["shown"] = time.time()
        self.displays.show(entry["id"], data, parent)

    def clear(self, parent):
        if parent.get("msg_id") in self.shown:
            self.shown.pop(parent["msg_id"])
            self.publish("clear_output", {"wait": False}, parent)
