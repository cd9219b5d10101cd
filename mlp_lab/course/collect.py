"""nbgrader's collect for the hub's exchange (mlp_lab/course/exchange.py): `CheckedCollect`,
plain submissions only.

Collect reads what students put in the exchange's inbound, and nbgrader
trusts it: it takes a submission's student from its folder name, which a student can
choose (`nbgrader submit --student someone-else`), its `check_owner` compares the
folder's owner with a user name the host does not have and only warns, its copy follows
links (a notebook linked to the course's solved source, another student's home, or
/dev/zero), and one entry it cannot read (a name without a time, a plain file, a FIFO, a
dangling link) stops it for everyone. Each student hands in to an inbound of their own
(mlp_lab/course/exchange.py, `inbounds`), and what is found in cat's is only ever cat's.
A submission is collected only when it names the student whose inbound it is in, and is
a folder owned by the uid the hub gave that student (the owner of their home,
`MLP_HUB_HOMES/<student>`; any uid when no hub's homes are known) holding only folders
and regular files of that uid, `MLP_GRADE_MAX_MB` megabytes in all at most (default
50; the four notebooks with their outputs take 1.6 MB), under a name nbgrader
reads. Any other is set aside, before each student's latest is picked, so that it can
never hide a student's own latest submission: moved to `<course>/refused/`, or, what
cannot leave its inbound (a student's own folder, anything on their inbound's disk),
renamed hidden there; its reason in nbgrader's log (make autograde prints it) and in
`refused/reasons.txt`. The others are collected. The copy never follows a link and is
checked again as it is made, since a student can change their submission meanwhile.

It runs as the grader account (mlp_lab/course/grader.py), never as root.
"""

import contextlib
import datetime
import errno
import fnmatch
import glob
import os
import shutil
import stat
import time

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.default import ExchangeCollect
from nbgrader.exchange.default.collect import groupby
from nbgrader.utils import parse_utc

from mlp_lab.course.exchange import home_owner, hub_state, inbounds

BLOCK = 4096  # what a file or folder takes on disk at least
MAX_DEPTH = 32  # folders in folders: a submission from the Assignment List has one level


def max_mb():
    """What a submission may hold in all, in megabytes: MLP_GRADE_MAX_MB, 50 by default."""
    return int(os.environ.get("MLP_GRADE_MAX_MB") or 50)


class Refused(Exception):
    """Why a submission is not collected (CheckedCollect sets it aside with this reason)."""


def what(name, dir_fd, st):
    """What `name`, neither a folder nor a regular file, is, for a refusal's reason."""
    if stat.S_ISLNK(st.st_mode):
        try:
            return "a symbolic link (to %s)" % os.readlink(name, dir_fd=dir_fd)
        except OSError:
            return "a symbolic link"
    kinds = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device",
             stat.S_IFBLK: "a device", stat.S_IFREG: "a plain file"}
    return kinds.get(stat.S_IFMT(st.st_mode), "neither a folder nor a regular file")


@contextlib.contextmanager
def opened(name, dir_fd, st, shown, flags=0):
    """`name` (in the folder open as `dir_fd`) open for reading without following a link
    (O_NOFOLLOW; O_NONBLOCK: a FIFO does not wait for a writer), and only if it is still
    the file `st` was read from: a name swapped since it was looked at is refused."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | flags, dir_fd=dir_fd)
    except OSError as e:  # ELOOP: now a link; ENOTDIR, ENOENT: replaced, removed
        raise Refused("%s changed while it was collected (%s)" % (shown, e.strerror)) from None
    try:
        if not os.path.samestat(os.fstat(fd), st):
            raise Refused("%s changed while it was collected" % shown)
        yield fd
    finally:
        os.close(fd)


def copy_at_most(fd, dest, most):
    """Copies what the file open as `fd` holds to a new file `dest` (root's alone), `most`
    bytes at most however long it grows meanwhile; returns the bytes copied."""
    copied = 0
    with open(dest, "xb", opener=lambda path, flags: os.open(path, flags | os.O_NOFOLLOW, 0o600)) as out:
        while copied < most:
            chunk = os.read(fd, min(2**20, most - copied))
            if not chunk:
                break
            out.write(chunk)
            copied += len(chunk)
    return copied


def read_tree(dir_fd, owner, left, dest=None, skip=None, where="", depth=0):
    """Reads the folder open as `dir_fd` and, given `dest`, copies it there (but the names
    `skip(name, is_dir)` is true of), never following a link: each name is looked at with
    lstat and opened relative to its folder's descriptor without following a link (a
    folder swapped for a link meanwhile is not followed either). Raises Refused when it
    holds anything but folders and regular files of uid `owner` (a link, a FIFO, a device,
    another's file hard-linked), folders more than MAX_DEPTH deep, or more than `left`
    bytes (each file or folder counts a block at least, as on disk: a million empty files
    are too much as well). Returns the bytes left."""
    if depth > MAX_DEPTH:
        raise Refused("%s: folders more than %d deep" % (where, MAX_DEPTH))
    for name in sorted(os.listdir(dir_fd)):
        shown = os.path.join(where, name)
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise Refused("%s changed while it was collected (removed)" % shown) from None
        is_dir = stat.S_ISDIR(st.st_mode)
        if not is_dir and not stat.S_ISREG(st.st_mode):
            raise Refused("%s is %s" % (shown, what(name, dir_fd, st)))
        if st.st_uid != owner:
            raise Refused("%s belongs to uid %d, not to the submission's uid %d" % (shown, st.st_uid, owner))
        if dest is not None and skip and skip(name, is_dir):
            continue
        if is_dir:
            sub = None if dest is None else os.path.join(dest, name)
            with opened(name, dir_fd, st, shown, os.O_DIRECTORY) as fd:
                if sub is not None:
                    os.mkdir(sub, 0o700)
                left = read_tree(fd, owner, left - BLOCK, sub, skip, shown, depth + 1)
        elif dest is None:
            left -= max(st.st_size, BLOCK)
        else:
            with opened(name, dir_fd, st, shown) as fd:
                left -= max(copy_at_most(fd, os.path.join(dest, name), left + 1), BLOCK)
        if left < 0:
            raise Refused("it holds more than %d MB (MLP_GRADE_MAX_MB)" % max_mb())
    return left


def read_submission(path, st, dest=None, skip=None):
    """Reads (and copies to `dest`) the submission folder at `path`, which must still be
    the folder `st` was read from: see read_tree."""
    with opened(path, None, st, os.path.basename(path), os.O_DIRECTORY) as fd:
        read_tree(fd, st.st_uid, max_mb() * 2**20, dest, skip)


def check_timestamp(dest):
    """A collected submission's timestamp.txt is read by nbgrader at each later collect
    (CourseDirectory.get_existing_timestamp), which stops for everyone on one it cannot read."""
    path = os.path.join(dest, "timestamp.txt")
    if os.path.lexists(path):
        try:
            with open(path) as f:
                parse_utc(f.read().strip() or None)
        except (OSError, ValueError, OverflowError) as e:
            raise Refused("its timestamp.txt is not a time nbgrader reads (%s)" % e) from None


def check_submission(path, student, inbound=None):
    """(why the submission at `path`, in `student`'s name, is not taken, or None; its
    lstat): found in `inbound`'s own inbound (None: the shared inbound of an earlier
    version), it must name them; it must be a folder of the uid the hub gave that student
    (any uid when no hub's homes are known: nbgrader's check_owner warns), holding only
    their folders and regular files, MLP_GRADE_MAX_MB at most. Collect and grading on
    hand-in (mlp_lab/course/on_submit.py) both take a submission through it."""
    if inbound is not None and student != inbound:
        return "it names %s but is in %s's inbound, which only %s hands in to" % (student, inbound, inbound), None
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            return "it is %s, not a folder" % what(path, None, st), st
        uid = home_owner(student)
        if uid is not False and st.st_uid != uid:
            return "it names %s but was handed in by uid %d (%s)" % (
                student, st.st_uid, "%s is not a student of this hub" % student if uid is None
                else "%s's uid is %d" % (student, uid)), st
        read_submission(path, st)
    except Refused as e:
        return str(e), None
    except OSError as e:
        return "it cannot be read (%s)" % e, None
    return None, st


def hidden_name(path, target):
    """Where set_aside keeps a refused entry it cannot move: beside it in its inbound."""
    return os.path.join(os.path.dirname(path), REFUSED_PREFIX + os.path.basename(target))


REFUSED_PREFIX = ".refused+"


class CheckedCollect(ExchangeCollect):
    """nbgrader's collect of plain submissions only (the module's docstring), from every
    student's own inbound: each name found there is checked as nbgrader reads it
    (`_path_to_record`), a refused one set aside before each student's latest is picked,
    and the copy (`do_copy`) made without following links, checked again as it is made.

    nbgrader 0.9.6's exchange has one inbound folder per course and nothing per student;
    its `init_src` globs that folder. This one globs each student's inbound
    (mlp_lab/course/exchange.py, `inbounds`), then picks each student's latest as
    nbgrader's does (the latest, or with --before-duedate the latest before the due date);
    nbgrader's `copy_files` then copies each from `inbound_path`, here the hub's state
    folder, under the record's `filename`, its path there (`inbound/ann/ann+mlp+...`)."""

    def init_src(self):
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.checked = {}  # the lstat of each submission that passed, by its path, for do_copy
        self.inbound_path = hub_state(self.coursedir.root)
        self.inbound_of = {}  # each inbound folder: the student whose it is (None: the shared one)
        student = self.coursedir.student_id or "*"
        records = []
        for owner, folder in inbounds(self.coursedir.root):
            self.inbound_of[folder] = owner
            pattern = os.path.join(glob.escape(folder), "%s+%s+*" % (student, self.coursedir.assignment_id))
            records += [self._path_to_record(path) for path in sorted(glob.glob(pattern))]
        # the refused, set aside by _path_to_record, are nobody's
        records = [r for r in records if r["username"] is not None]
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            try:
                self.duedate = gb.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                self.duedate = None
        self.src_records = []
        for student_records in groupby(records, lambda r: r["username"]).values():
            latest = self._sort_by_timestamp(student_records)
            if self.duedate is not None and self.before_duedate:
                latest = [r for r in latest if r["timestamp"] <= self.duedate] or latest
            self.src_records.append(latest[0])

    def _path_to_record(self, path):
        """nbgrader's reading of a submission's name (its student and time), for each one in
        an inbound before each student's latest is picked: a refused one is set aside and
        becomes a record of no one, which init_src drops. Checking here, at the list of
        names, leaves no submission handed in meanwhile unchecked."""
        try:
            record = super()._path_to_record(path)
        except Exception as e:  # dateutil's ValueError, an OverflowError: nbgrader would stop
            reason = "nbgrader cannot read the time in its name (%s)" % e
        else:
            reason = self.refusal(path, record["username"])
        if reason is None:
            return dict(record, filename=os.path.relpath(path, self.inbound_path))
        self.set_aside(path, reason)
        return {"username": None, "filename": os.path.basename(path), "timestamp": datetime.datetime.min}

    def refusal(self, path, student):
        """Why the submission at `path`, in `student`'s name, is not collected, or None
        (check_submission)."""
        reason, st = check_submission(path, student, self.inbound_of.get(os.path.dirname(path)))
        if reason is None:
            self.checked[path] = st
        return reason

    def set_aside(self, path, reason):
        """Moves a refused submission out of nbgrader's sight by a rename (a link is moved,
        not what it points to), so that it can never hide its student's own latest: into
        `<course>/refused/`, or, a student's own folder (which only root could move to
        another folder: its `..` would change) or anything on a student's own inbound disk
        (a rename does not leave a filesystem), to a hidden name in its inbound
        (`.refused+<name>`, which collect does not list; on that student's disk, it takes
        their space alone). Its reason goes to nbgrader's log and to refused/reasons.txt."""
        name = os.path.basename(path)
        refused = os.path.join(self.coursedir.root, "refused")
        os.makedirs(refused, mode=0o700, exist_ok=True)
        target = os.path.join(refused, name)
        while os.path.lexists(target) or os.path.lexists(hidden_name(path, target)):  # refused before
            target += "+again"
        moved = "moved to %s" % refused
        try:
            os.rename(path, target)
        except FileNotFoundError:
            moved = "its student has removed it"
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EPERM, errno.EXDEV):
                raise
            os.rename(path, hidden_name(path, target))
            owner = self.inbound_of.get(os.path.dirname(path))
            moved = "renamed %s in %s" % (os.path.basename(hidden_name(path, target)),
                                          "%s's inbound" % owner if owner else "inbound/")
        with open(os.path.join(refused, "reasons.txt"), "a") as f:  # no submission's name: it has no +
            f.write("%s %s: %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), os.path.basename(target), reason))
        self.log.warning("refused %s: %s; %s", name, reason, moved)

    def ignored(self, name, is_dir):
        """What nbgrader's own copy leaves out: CourseDirectory.ignore, and the files
        CourseDirectory.include does not match."""
        ignore, include = self.coursedir.ignore, self.coursedir.include
        return any(fnmatch.fnmatch(name, g) for g in ignore) or (
            not is_dir and bool(include) and not any(fnmatch.fnmatch(name, g) for g in include))

    def do_copy(self, src, dest, log=None):
        """nbgrader's copy of a submission into `submitted/`, made by read_submission instead
        of copytree: it follows no link, copies MLP_GRADE_MAX_MB at most however the files
        grow meanwhile, and is refused when the submission has changed since its check (a
        student may swap a file for a link in between), or when its timestamp.txt is not
        one nbgrader can read at the next collect. A submission refused here is set aside
        and its copy removed: the student's earlier ones stay in `inbound/` for the next
        collect."""
        os.mkdir(dest, 0o700)
        try:
            read_submission(src, self.checked[src], dest, self.ignored)
            check_timestamp(dest)
        except Refused as e:
            shutil.rmtree(dest)
            self.set_aside(src, "%s (found while copying it)" % e)
