"""nbgrader's file exchange, configured for a class in containers (`make hub`).

The exchange is nbgrader's own (`nbgrader release_assignment`, `collect`,
`release_feedback` here; `fetch_assignment`, `submit`, `fetch_feedback` in each student's
Assignment List), on a folder of the hub's state (`<state>/exchange/<course id>`) that
each student's container mounts at `/srv/nbgrader/exchange/<course id>`. Each student's
container runs under a uid of their own (mlp_lab/hub/containers.py), so nbgrader's
permission scheme holds: `outbound/` readable by all, `inbound/` writable but not
listable, `feedback/` reachable only by the name a student's own submission secret gives.
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

This module holds what they share (no hook): where the exchange is, and whose a
student's home is.
"""

import os

from mlp_lab.hub import containers as hub_containers

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


def inbound(course_root):
    """Where the students' submissions arrive."""
    return os.path.join(hub_state(course_root), "exchange", COURSE_ID, "inbound")
