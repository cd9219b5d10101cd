"""nbgrader's file exchange, configured for a class in containers (`make hub`).

The exchange is nbgrader's own (`nbgrader release_assignment`, `collect`,
`release_feedback` here; `fetch_assignment`, `submit`, `fetch_feedback` in each student's
Assignment List), on a folder of the hub's state (`<state>/exchange/<course id>`) that
each student's container mounts at `/srv/nbgrader/exchange/<course id>`. Each student's
container runs under a uid of their own (mlp_lab/hub/containers.py), so nbgrader's
permission scheme holds: `outbound/` readable by all, `inbound/` writable but not
listable, `feedback/` reachable only by the name a student's own submission secret gives.
Each student's `inbound/` is their own (a small disk, mounted on the host at
`<state>/inbound/<student>` and in their container alone; mlp_lab/hub/disks.py): one
student cannot fill it for another, nor reach another's; collect and grading on hand-in
read every student's (`inbounds`).
Three steps are tightened, each by a hook of its own (nbgrader_config.py sets them as the
exchange's classes; the students' side, deploy/class-config/nbgrader_config.py, makes
what a student hands in readable by them alone):

- collect.py, `CheckedCollect`: plain submissions of their student's uid only;
- container_release.py, `ContainerRelease`: released notebooks with the image's mlp-core;
- private_feedback.py, `PrivateFeedback`: feedback readable by its student alone.

All three run as the grader account (mlp_lab/course/grader.py), never as root: it owns the
exchange's course folder, and what a student hands in is readable by its group (the
inbound folder is set-group-ID, nbgrader's own scheme, and a student's submit leaves
their files readable by that group alone, deploy/class-config).

This module holds what they share (no hook): where the exchange and the inbounds are, and
whose a student's home is.
"""

import os
import stat
from typing import NamedTuple

from mlp_lab.hub import containers as hub_containers
from mlp_lab.hub import disks

COURSE_ID = hub_containers.COURSE_ID  # the course's folder in the exchange


def hub_state(course_root):
    """The hub's state folder, where the exchange and the students' homes are: MLP_HUB_STATE
    (make hub's setting), or the clone's deploy/state beside this course folder."""
    return os.environ.get("MLP_HUB_STATE") or os.path.join(os.path.dirname(course_root), "deploy", "state")


def home_owner(student):
    """The uid the hub gave `student` (the owner of their home), None if they have no home
    in this hub, or False when no hub's homes are known here."""
    homes = os.environ.get("MLP_HUB_HOMES")
    if not homes or not os.path.isdir(homes):
        return False
    try:
        return os.stat(os.path.join(homes, student)).st_uid
    except OSError:
        return None


def exchange_course(course_root):
    """The hub's folder of the course in nbgrader's exchange (outbound/, feedback/)."""
    return os.path.join(hub_state(course_root), "exchange", COURSE_ID)


def shared_inbound(course_root):
    """The exchange's own inbound/: where each student's container mounts theirs, and where
    an earlier version's hub had every student hand in (its submissions still collected)."""
    return os.path.join(exchange_course(course_root), "inbound")


def inbounds(course_root):
    """Where the students' submissions arrive, [(student, folder)]: each student's own
    inbound (`<state>/inbound/<student>`, a disk of its own, mounted in their container
    alone: mlp_lab/hub/disks.py), then (None, the shared inbound/) when an earlier
    version's submissions are still there. What is in a student's inbound was handed in
    from their container, and is theirs or nobody's (collect refuses a name of another's)."""
    root = disks.inbound_root(hub_state(course_root))
    try:
        names = sorted(os.listdir(root))
    except OSError:
        names = []
    found = [(name, os.path.join(root, name)) for name in names
             if stat.S_ISDIR(os.lstat(os.path.join(root, name)).st_mode)]
    try:
        if any(not name.startswith(".") for name in os.listdir(shared_inbound(course_root))):
            found.append((None, shared_inbound(course_root)))
    except OSError:
        pass
    return found


class Entry(NamedTuple):
    """A name in an inbound: `student`, whose inbound it is in (None: the shared one);
    `name`, nbgrader's (`student+assignment+time+random`, as whoever made it chose it);
    `path`."""
    student: str | None
    name: str
    path: str

    @property
    def key(self):
        """What tells it from any other entry: `<student>/<name>` (the name alone in the
        shared inbound, as an earlier version kept it)."""
        return self.name if self.student is None else "%s/%s" % (self.student, self.name)


def entries(course_root):
    """Every name in every inbound (`inbounds`), as Entry; but the hidden ones (nbgrader
    lists none: collect's set-aside, `.refused+...`)."""
    return [Entry(student, name, os.path.join(folder, name)) for student, folder in inbounds(course_root)
            for name in sorted(os.listdir(folder)) if not name.startswith(".")]
