"""nbgrader in a student's container of `make hub` (the course image's JUPYTER_CONFIG_PATH):
the Assignment List fetches the released `mlp` into ~/mlp, validates, submits and
fetches feedback through nbgrader's file exchange, whose course folder the hub mounts at
/srv/nbgrader/exchange/mlp-lab (mlp_lab/hub/containers.py; the instructor's side is
course/nbgrader_config.py and mlp_lab/course/exchange.py)."""

import copy
import json
import os
import shutil

from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange import ExchangeFactory
from nbgrader.exchange.default import ExchangeList, ExchangeSubmit
from nbgrader.utils import ignore_patterns, notebook_hash

from mlp_lab.course.on_submit import STATUS_ID  # the name of a submission's status page

c = get_config()  # noqa: F821

c.Exchange.root = "/srv/nbgrader/exchange"
c.CourseDirectory.course_id = "mlp-lab"
# the student's name in the hub (nbgrader takes it from the operating system's user name,
# which is only `jovyan` there when the uid is the image's, not the student's own)
c.CourseDirectory.student_id = os.environ.get("JUPYTERHUB_USER", "*")
# a cell's time limit when the Assignment List validates (training an MNIST network takes
# about 15 s of one core)
c.Execute.timeout = 300


class PrivateSubmit(ExchangeSubmit):
    """nbgrader's submit, with what is handed in readable by its student and the grader
    account alone: inbound/ is set-group-ID and the grader's (mlp_lab/hub/containers.py),
    so what is handed in there has the grader's group, which no student is in. nbgrader
    leaves it readable by every student, hidden only by its random name."""

    def do_copy(self, src, dest, log=None):
        """nbgrader's copy; into inbound/, with the two files nbgrader writes after it made
        first: the copy's last step (shutil's copystat) takes the folder's set-group-ID bit,
        and files made after it would have the student's group, which the grader is not in."""
        if os.path.dirname(os.path.abspath(dest)) != os.path.abspath(self.inbound_path):
            return super().do_copy(src, dest, log)
        if self.get_size(src) > 1000 * self.coursedir.max_dir_size:
            raise RuntimeError("Directory size is too big (CourseDirectory.max_dir_size)")
        os.mkdir(dest)  # the grader's group, from inbound/
        try:
            for name in ("timestamp.txt", "submission_secret.txt"):  # (nbgrader writes them in place)
                open(os.path.join(dest, name), "w").close()
            shutil.copytree(src, dest, dirs_exist_ok=True, ignore=ignore_patterns(
                exclude=self.coursedir.ignore, include=self.coursedir.include,
                max_file_size=self.coursedir.max_file_size, log=self.log))
        except Exception:
            # a hand-in cut short (the student's inbound full: mlp_lab/hub/disks.py) is not left
            # half-written, where collect would take it as their latest
            shutil.rmtree(dest, ignore_errors=True)
            raise

    def copy_files(self):
        super().copy_files()
        handed_in = os.path.join(self.inbound_path, self.assignment_filename)
        for folder, _, files in os.walk(handed_in):
            os.chmod(folder, 0o750)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o640)


c.ExchangeFactory.submit = PrivateSubmit


class ResultsList(ExchangeList):
    """nbgrader's list of what was handed in, with each submission's grading on hand-in
    (mlp_lab/course/on_submit.py) shown under it in the Assignment List: its status page
    (queued and in which place, grading, graded with the points on the visible checks,
    or why not) follows the submission's time, and feedback that is ready is fetched into
    ~/mlp/feedback/<time>/ at once, so that its "(view feedback)" link is there."""

    def parse_assignments(self):
        assignments = super().parse_assignments()
        if not (self.inbound or self.cached):
            return assignments
        ready = {(a["course_id"], a["assignment_id"]) for a in assignments for s in a.get("submissions", [])
                 if s.get("has_exchange_feedback") and (not s.get("has_local_feedback") or s.get("feedback_updated"))
                 and (self.status(s) or {}).get("state") == "graded"}
        for course_id, assignment_id in sorted(ready):
            config = copy.deepcopy(self.config)
            config.CourseDirectory.course_id = course_id
            config.CourseDirectory.assignment_id = assignment_id
            try:
                ExchangeFactory(config=config).FetchFeedback(
                    coursedir=CourseDirectory(config=config), authenticator=self.authenticator, config=config).start()
            except Exception as e:  # the list still shows; the Fetch Feedback button is there
                self.log.warning("fetching the feedback of %s failed: %s", assignment_id, e)
        if ready:
            assignments = super().parse_assignments()
        for assignment in assignments:
            for submission in assignment.get("submissions", []):
                status = self.status(submission)
                if status and status.get("text"):
                    submission["timestamp"] = "%s · %s" % (submission["timestamp"], status["text"])
        return assignments

    def status(self, submission):
        """The grading service's status page of a submission, or None."""
        try:
            with open(os.path.join(submission["path"], "submission_secret.txt")) as f:
                secret = f.read()
            name = notebook_hash(secret=secret, notebook_id=STATUS_ID) + ".json"
            with open(os.path.join(self.root, submission["course_id"], "feedback", name)) as f:
                return json.load(f)
        except (OSError, ValueError, KeyError):
            return None


c.ExchangeFactory.list = ResultsList
