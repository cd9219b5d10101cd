"""nbgrader's file exchange, configured for a class in containers (`make hub`).

The exchange is nbgrader's own (`nbgrader release_assignment`, `collect`,
`release_feedback` here; `fetch_assignment`, `submit`, `fetch_feedback` in each student's
Assignment List), on a folder of the hub's state (`<state>/exchange/<course id>`) that
each student's container mounts at `/srv/nbgrader/exchange/<course id>`. Each student's
container runs under a uid of their own (mlp_lab/hub/containers.py), so nbgrader's
permission scheme holds: `outbound/` readable by all, `inbound/` writable but not
listable, `feedback/` reachable only by the name a student's own submission secret gives.
Three steps are tightened here (nbgrader_config.py sets them as the exchange's classes;
the students' side, deploy/class-config/nbgrader_config.py, makes what a student hands in
readable by them alone):

- `CheckedCollect`: nbgrader takes a submission's student from its folder name, which a
  student can choose (`nbgrader submit --student someone-else`); its own `check_owner`
  compares the folder's owner with a user name the host does not have, and only warns. A
  submission is collected only when its owner is the uid the hub gave that student (the
  owner of their home, `MLP_HUB_HOMES/<student>`); any other is moved to
  `<course>/refused/` with a warning naming both, so that it can never hide the
  student's own latest submission.
- `ContainerRelease`: the released notebooks' `:dep mlp-core` line names mlp-core where
  the course image has it (the students' containers), not where this machine has it
  (autograde restores the line from the gradebook, and its sandbox points it at the
  image again). The exchange serves only the hub's containers: `MLP_HUB_ISOLATION=none`
  hands out the student edition without it.
- `PrivateFeedback`: each released feedback file belongs to its student's uid and is
  readable by them alone (nbgrader leaves it readable by anyone who has its name).
"""

import glob
import os
import shutil

import nbformat
from nbgrader.exchange.default import ExchangeCollect, ExchangeReleaseAssignment, ExchangeReleaseFeedback
from nbgrader.utils import notebook_hash

from mlp_lab.course.preprocessors import in_image
from mlp_lab.hub import containers as hub_containers

COURSE_ID = hub_containers.COURSE_ID  # the course's folder in the exchange


def hub_state(course_root):
    """The hub's state folder, where the exchange and the students' homes are: MLP_HUB_STATE
    (make hub's setting), or the clone's deploy/state beside this course folder."""
    return os.environ.get("MLP_HUB_STATE") or os.path.join(os.path.dirname(course_root), "deploy", "state")


def student_uid(student):
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


class CheckedCollect(ExchangeCollect):
    def init_src(self):
        self.set_aside_forged()
        super().init_src()

    def set_aside_forged(self):
        """Each submission not handed in by the uid of the student it names, moved out of
        `inbound/` before nbgrader picks each student's latest."""
        inbound = os.path.join(self.root, self.coursedir.course_id, "inbound")
        if student_uid("") is False or not os.path.isdir(inbound):
            return  # no hub: nbgrader's own check_owner warning
        refused = os.path.join(self.coursedir.root, "refused")
        for path in sorted(glob.glob(os.path.join(inbound, "*+%s+*" % self.coursedir.assignment_id))):
            student = os.path.basename(path).rsplit("+", 3)[0]
            owner, uid = os.stat(path).st_uid, student_uid(student)
            if owner == uid:
                continue
            os.makedirs(refused, mode=0o700, exist_ok=True)
            shutil.move(path, os.path.join(refused, os.path.basename(path)))
            self.log.warning("refused %s: it names %s but was handed in by uid %d (%s); moved to %s",
                             os.path.basename(path), student, owner,
                             "%s is not a student of this hub" % student if uid is None
                             else "%s's uid is %d" % (student, uid), refused)


class ContainerRelease(ExchangeReleaseAssignment):
    def copy_files(self):
        super().copy_files()
        for path in glob.glob(os.path.join(self.dest_path, "*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                cell.source = in_image(cell.source)
            nbformat.write(nb, path)
            os.chmod(path, 0o644)


class PrivateFeedback(ExchangeReleaseFeedback):
    def copy_files(self):
        super().copy_files()
        for html in glob.glob(os.path.join(self.src_path, "*.html")):
            folder = os.path.dirname(html)  # feedback/<student>/<assignment>/
            student = os.path.basename(os.path.dirname(folder))
            uid = student_uid(student)
            with open(os.path.join(folder, "submission_secret.txt")) as f:
                name = notebook_hash(secret=f.read(), notebook_id=os.path.splitext(os.path.basename(html))[0])
            released = os.path.join(self.dest_path, name + ".html")
            if uid and os.path.exists(released):
                os.chown(released, uid, -1)
                os.chmod(released, 0o400)
