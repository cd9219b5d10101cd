"""nbgrader in a student's container of `make hub` (the course image's JUPYTER_CONFIG_PATH):
the Assignment List fetches the released `mlp` into ~/mlp, validates, submits and
fetches feedback through nbgrader's file exchange, whose course folder the hub mounts at
/srv/nbgrader/exchange/mlp-lab (mlp_lab/hub/containers.py; the instructor's side is
course/nbgrader_config.py and mlp_lab/course/exchange.py)."""

import os

from nbgrader.exchange.default import ExchangeSubmit

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

    def copy_files(self):
        super().copy_files()
        handed_in = os.path.join(self.inbound_path, self.assignment_filename)
        for folder, _, files in os.walk(handed_in):
            os.chmod(folder, 0o750)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o640)


c.ExchangeFactory.submit = PrivateSubmit
