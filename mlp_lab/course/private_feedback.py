"""nbgrader's release_feedback for the hub's exchange (mlp_lab/course/exchange.py):
`PrivateFeedback`.

Each released feedback file is readable by its student's uid alone
(a POSIX ACL entry; the file stays the grader's) and the grader's group: nbgrader leaves
it readable by anyone who has its name.
"""

import glob
import os
import shutil
import subprocess

from nbgrader.exchange.default import ExchangeReleaseFeedback
from nbgrader.utils import notebook_hash

from mlp_lab.course.exchange import home_owner


def make_private(path, uid):
    """A released feedback page readable by the grader's group and, through an ACL, by
    the student's `uid`: nobody else (nbgrader leaves it readable by anyone who has its
    name)."""
    os.chmod(path, 0o640)
    subprocess.run(["setfacl", "-m", "u:%d:r" % uid, path], check=True, capture_output=True)


def release_private(html, dest, uid):
    """`html` copied to `dest` in the exchange's feedback folder, private to `uid`
    (make_private) before it appears under its name."""
    shutil.copyfile(html, dest + ".new")
    make_private(dest + ".new", uid)
    os.replace(dest + ".new", dest)


class PrivateFeedback(ExchangeReleaseFeedback):
    def copy_files(self):
        super().copy_files()
        for html in glob.glob(os.path.join(self.src_path, "*.html")):
            folder = os.path.dirname(html)  # feedback/<student>/<assignment>/
            student = os.path.basename(os.path.dirname(folder))
            uid = home_owner(student)
            with open(os.path.join(folder, "submission_secret.txt")) as f:
                name = notebook_hash(secret=f.read(), notebook_id=os.path.splitext(os.path.basename(html))[0])
            released = os.path.join(self.dest_path, name + ".html")
            if uid and os.path.exists(released):
                make_private(released, uid)
