"""What the long tests share (tests/*_test.py): talking to servers over HTTP and to
kernels over their websocket, starting the course's hub, reading processes, driving
JupyterLab in Chromium, scratch copies of the course. Each test script states what it
checks; the helpers here only fetch, start and wait."""

import os
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")


def until(ready, seconds, step=0.5):
    """Call `ready()` until it returns something true or `seconds` have passed; its last
    value (false when the deadline passed). Exceptions of the kinds a server that is
    still starting raises (OSError: refused, reset) count as not ready."""
    deadline = time.time() + seconds
    while True:
        try:
            value = ready()
        except OSError:
            value = None
        if value or time.time() >= deadline:
            return value
        time.sleep(step)
