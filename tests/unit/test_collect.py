"""make autograde's collect (mlp_lab/course/collect.py, CheckedCollect): nbgrader's own
collect on a scratch exchange, whose submissions belong to uids of their own as in `make
hub`, each student's in an inbound of their own (these tests run as root, as the
instructor's collect did). Each attack on it is handed in by ann, to her own inbound (the
only one her container has), beside ann's and bob's honest submissions: it must be set
aside with its reason, and the honest ones collected, byte for byte."""

import os
import shutil
import stat
import subprocess
import sys
from types import SimpleNamespace

import pytest
from nbgrader.api import Gradebook
from nbgrader.coursedir import CourseDirectory

from mlp_lab import ROOT
from mlp_lab.course import autograde, exchange
from mlp_lab.course.collect import CheckedCollect

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: submissions owned by the students' uids")

UIDS = {"ann": 20001, "bob": 20002}
NB = "02_toy_network.ipynb"
HONEST = {"ann": b'{"cells": [], "by": "ann, handed in"}', "bob": b'{"cells": [], "by": "bob, handed in"}'}
DRAFT = {"ann": b'{"cells": [], "by": "ann, not handed in"}', "bob": b'{"cells": [], "by": "bob, not handed in"}'}
SOLVED = b'{"cells": [], "by": "the course: solved"}'
LATE = b'{"cells": [], "by": "a later submission"}'
EARLY, LATER, FAR = "2024-05-01 10:00:00.000000 UTC", "2024-05-02 10:00:00.000000 UTC", "2999-01-01 00:00:00.000000 UTC"

CONFIG = """\
from mlp_lab.course.collect import CheckedCollect

c = get_config()  # noqa: F821
c.CourseDirectory.root = %r
c.CourseDirectory.course_id = "mlp-lab"
c.Exchange.root = %r
c.ExchangeFactory.collect = CheckedCollect
"""


def chown_tree(path, uid):
    """`path` and all it holds, links themselves included, owned by `uid`."""
    os.lchown(path, uid, uid)
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), uid, uid)


def inbound(k, student):
    """`student`'s own inbound (the hub's <state>/inbound/<student>)."""
    return os.path.join(k.inbounds, student)


def hand_in(k, student, when, files=None, uid=None, by=None):
    """A submission as nbgrader submit leaves it in the inbound of `by` (default: the
    student it names), named for `student` with a random tail: a folder of `by`'s (or
    `uid`'s) holding `files` (default: the student's honest notebook) and timestamp.txt.
    Returns its name."""
    by = by or student
    name = "%s+mlp+%s+%s" % (student, when, os.urandom(6).hex())
    path = os.path.join(inbound(k, by), name)
    os.mkdir(path, 0o700)
    for rel, data in dict({NB: HONEST[student], "timestamp.txt": when.encode()}, **(files or {})).items():
        os.makedirs(os.path.dirname(os.path.join(path, rel)), exist_ok=True)
        with open(os.path.join(path, rel), "wb") as f:
            f.write(data)
    chown_tree(path, UIDS[by] if uid is None else uid)
    return name


def as_link(k, name, target, student="ann"):
    """<name> in `student`'s inbound, a symbolic link of theirs to `target`."""
    os.symlink(target, os.path.join(inbound(k, student), name))
    os.lchown(os.path.join(inbound(k, student), name), UIDS[student], UIDS[student])
    return name


@pytest.fixture(scope="session")
def gradebook(tmp_path_factory):
    """An empty gradebook, made once: nbgrader makes one by running the venv's alembic (a second)."""
    path = str(tmp_path_factory.mktemp("gradebook") / "gradebook.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        Gradebook("sqlite:///" + path, "mlp-lab").close()
    return path


@pytest.fixture
def k(tmp_path, monkeypatch, gradebook):
    """A class: ann's and bob's homes (each with a draft not handed in) and inbounds, the
    course's solved source, the exchange, and an honest submission of each."""
    state, course = str(tmp_path / "state"), str(tmp_path / "course")
    k = SimpleNamespace(course=course, homes=os.path.join(state, "homes"), exchange=os.path.join(state, "exchange"),
                        inbounds=os.path.join(state, "inbound"),
                        shared=os.path.join(state, "exchange", "mlp-lab", "inbound"),
                        solved=os.path.join(course, "source", "mlp", NB))
    for student, uid in UIDS.items():
        os.makedirs(os.path.join(k.homes, student, "mlp"))
        with open(os.path.join(k.homes, student, "mlp", NB), "wb") as f:
            f.write(DRAFT[student])
        chown_tree(os.path.join(k.homes, student), uid)
        os.makedirs(inbound(k, student))
        os.chmod(inbound(k, student), 0o3733)
    os.makedirs(k.shared)
    os.makedirs(os.path.dirname(k.solved))
    with open(k.solved, "wb") as f:
        f.write(SOLVED)
    shutil.copy(gradebook, course)
    with open(os.path.join(course, "nbgrader_config.py"), "w") as f:
        f.write(CONFIG % (course, k.exchange))
    monkeypatch.setenv("MLP_HUB_STATE", state)
    monkeypatch.setenv("MLP_HUB_HOMES", k.homes)
    monkeypatch.setenv("MLP_GRADE_MAX_MB", "1")
    monkeypatch.setenv("PYTHONPATH", ROOT)  # nbgrader collect's configuration imports mlp_lab
    for student in UIDS:
        hand_in(k, student, EARLY)
    return k


def collector(k):
    """CheckedCollect as `nbgrader collect mlp --update --before-duedate` makes it."""
    return CheckedCollect(coursedir=CourseDirectory(root=k.course, course_id="mlp-lab", assignment_id="mlp"),
                          root=k.exchange, update=True, before_duedate=True)


def collected(k, student):
    """The notebook collected for `student`, None when none was."""
    path = os.path.join(k.course, "submitted", student, "mlp", NB)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return f.read()


def assert_refused(k, name, why):
    """`name` is out of every inbound, in course/refused/, with a reason saying `why`."""
    assert not any(os.path.lexists(os.path.join(folder, name)) for folder in
                   [k.shared] + [inbound(k, s) for s in UIDS])
    assert os.path.lexists(os.path.join(k.course, "refused", name))
    with open(os.path.join(k.course, "refused", "reasons.txt")) as f:
        reasons = [line for line in f if " %s: " % name in line]
    assert reasons and why in reasons[0], reasons


# each attack: what it hands in (beside the honest submissions), and what its reason says
def solved_link(k):
    """ann's own submission, its notebook a link to the course's solved source."""
    name = hand_in(k, "ann", LATER)
    os.remove(os.path.join(inbound(k, "ann"), name, NB))
    as_link(k, os.path.join(name, NB), k.solved)
    return name, NB + " is a symbolic link (to %s)" % k.solved


def linked_entry(k):
    """ann's own latest submission, a link to her home's folder (what she never handed in)."""
    return as_link(k, "ann+mlp+%s+link" % LATER, os.path.join(k.homes, "ann", "mlp")), "it is a symbolic link"


def forged_name(k):
    """ann's folder, named as bob's latest (`nbgrader submit --student bob` in her container)."""
    return hand_in(k, "bob", LATER, {NB: LATE}, by="ann"), "names bob but is in ann's inbound"


def forged_future_link(k):
    """ann's link in bob's name, far in the future, to bob's home: his draft, as his latest."""
    return as_link(k, "bob+mlp+%s+zz" % FAR, os.path.join(k.homes, "bob", "mlp")), "names bob but is in ann's"


def unparsable_name(k):
    return hand_in(k, "ann", "not-a-time"), "nbgrader cannot read the time in its name"


def plain_file(k):
    name = "ann+mlp+%s+file" % LATER
    with open(os.path.join(inbound(k, "ann"), name), "wb") as f:
        f.write(LATE)
    os.lchown(os.path.join(inbound(k, "ann"), name), UIDS["ann"], UIDS["ann"])
    return name, "it is a plain file, not a folder"


def fifo(k):
    name = "ann+mlp+%s+fifo" % LATER
    os.mkfifo(os.path.join(inbound(k, "ann"), name))
    os.lchown(os.path.join(inbound(k, "ann"), name), UIDS["ann"], UIDS["ann"])
    return name, "it is a FIFO, not a folder"


def fifo_inside(k):
    name = hand_in(k, "ann", LATER, {NB: LATE})
    os.mkfifo(os.path.join(inbound(k, "ann"), name, "data"))
    os.lchown(os.path.join(inbound(k, "ann"), name, "data"), UIDS["ann"], UIDS["ann"])
    return name, "data is a FIFO"


def device(k):
    """ann's latest, holding a device (/dev/null's): none of a student's making, but root's copy would open it."""
    name = hand_in(k, "ann", LATER, {NB: LATE})
    os.mknod(os.path.join(inbound(k, "ann"), name, "null"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    os.lchown(os.path.join(inbound(k, "ann"), name, "null"), UIDS["ann"], UIDS["ann"])
    return name, "null is a device"


def too_large(k):
    """ann's latest, over MLP_GRADE_MAX_MB (1 here)."""
    return hand_in(k, "ann", LATER, {NB: LATE + b" " * 2**21}), "more than 1 MB (MLP_GRADE_MAX_MB)"


def many_files(k):
    """300 empty files: 4 KiB each on disk, over 1 MB."""
    return hand_in(k, "ann", LATER, dict({NB: LATE}, **{"f%d" % i: b"" for i in range(300)})), "more than 1 MB"


def too_deep(k):
    return hand_in(k, "ann", LATER, {NB: LATE, "d/" * 40 + "x": b""}), "folders more than 32 deep"


def dangling_entry(k):
    return as_link(k, "ann+mlp+%s+gone" % LATER, "/nonexistent/mlp"), "it is a symbolic link (to /nonexistent/mlp)"


def dangling_inside(k):
    name = hand_in(k, "ann", LATER, {NB: LATE})
    as_link(k, os.path.join(name, "gone"), "/nonexistent")
    return name, "gone is a symbolic link (to /nonexistent)"


def hard_link(k):
    """ann's latest, its notebook a hard link to bob's draft (bob's file)."""
    name = hand_in(k, "ann", LATER)
    os.remove(os.path.join(inbound(k, "ann"), name, NB))
    os.link(os.path.join(k.homes, "bob", "mlp", NB), os.path.join(inbound(k, "ann"), name, NB))
    return name, NB + " belongs to uid 20002, not to the submission's uid 20001"


def dev_zero(k):
    """ann's latest, holding a link to /dev/zero (nbgrader's copy would fill the disk)."""
    name = hand_in(k, "ann", LATER, {NB: LATE})
    as_link(k, os.path.join(name, "data"), "/dev/zero")
    return name, "data is a symbolic link (to /dev/zero)"


ATTACKS = [solved_link, linked_entry, forged_name, forged_future_link, unparsable_name, plain_file, fifo,
           fifo_inside, device, too_large, many_files, too_deep, dangling_entry, dangling_inside, hard_link, dev_zero]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.__name__ for a in ATTACKS])
def test_an_attack_is_set_aside_and_the_class_collected(k, attack):
    name, why = attack(k)
    collector(k).start()
    assert collected(k, "ann") == HONEST["ann"] and collected(k, "bob") == HONEST["bob"]
    assert_refused(k, name, why)


def test_make_autograde_collects_the_class_and_says_what_it_refused(k, tmp_path, capsys):
    """All the attacks at once, through make autograde's `nbgrader collect` (the real command,
    with the scratch course's nbgrader_config.py): each refusal printed, the class collected,
    an honest submission's subfolder with it and nbgrader's ignored files left out."""
    bobs = hand_in(k, "bob", LATER, {"data/table.csv": b"1,2\n", ".ipynb_checkpoints/x.ipynb": b"{}"})
    refused = [attack(k) for attack in ATTACKS]
    autograde.collect(k.course, "mlp", str(tmp_path))
    said = capsys.readouterr().out
    for name, why in refused:
        assert_refused(k, name, why)
        assert "collect: refused %s: " % name in said, said
    assert collected(k, "ann") == HONEST["ann"] and collected(k, "bob") == HONEST["bob"]
    bob = os.path.join(k.course, "submitted", "bob", "mlp")
    assert sorted(os.listdir(bob)) == sorted([NB, "data", "timestamp.txt"]), bobs
    with open(os.path.join(bob, "data", "table.csv"), "rb") as f:
        assert f.read() == b"1,2\n"


def test_a_file_swapped_for_a_link_after_the_check_is_not_followed(k):
    """ann's latest passes the check; she swaps its notebook for a link to the solved source
    before the copy: the copy refuses it, and the next collect takes her earlier one."""
    name = hand_in(k, "ann", LATER, {NB: LATE})
    collect = collector(k)
    collect.set_timestamp()
    collect.init_src()
    os.remove(os.path.join(inbound(k, "ann"), name, NB))
    as_link(k, os.path.join(name, NB), k.solved)
    collect.copy_files()
    assert_refused(k, name, NB + " is a symbolic link (to %s) (found while copying it)" % k.solved)
    assert collected(k, "ann") is None and collected(k, "bob") == HONEST["bob"]
    collector(k).start()
    assert collected(k, "ann") == HONEST["ann"]


def test_a_file_grown_after_the_check_is_copied_no_further_than_the_limit(k):
    name = hand_in(k, "ann", LATER, {NB: LATE})
    collect = collector(k)
    collect.set_timestamp()
    collect.init_src()
    with open(os.path.join(inbound(k, "ann"), name, NB), "ab") as f:
        f.write(b" " * 2**21)
    collect.copy_files()
    assert_refused(k, name, "more than 1 MB (MLP_GRADE_MAX_MB) (found while copying it)")
    assert collected(k, "ann") is None and collected(k, "bob") == HONEST["bob"]


def test_a_timestamp_nbgrader_cannot_read_is_refused_before_it_stops_the_next_collect(k):
    """nbgrader reads a collected submission's timestamp.txt at each later collect, and fails
    for everyone on one it cannot read."""
    name = hand_in(k, "ann", LATER, {NB: LATE, "timestamp.txt": b"soon"})
    collector(k).start()
    assert_refused(k, name, "its timestamp.txt is not a time nbgrader reads")
    hand_in(k, "bob", LATER, {NB: LATE})
    collector(k).start()  # the next collect: ann's earlier submission, bob's later one
    assert collected(k, "ann") == HONEST["ann"] and collected(k, "bob") == LATE


def test_without_the_hubs_homes_links_are_still_refused(k, monkeypatch):
    """No hub's homes known (MLP_HUB_HOMES unset): a submission's owner is not checked
    (nbgrader's check_owner warns), but links, FIFOs and unreadable names are refused."""
    monkeypatch.delenv("MLP_HUB_HOMES")
    link = as_link(k, "ann+mlp+%s+link" % LATER, os.path.join(k.homes, "ann", "mlp"))
    name, why = fifo(k)
    hand_in(k, "bob", LATER, {NB: LATE}, uid=UIDS["ann"])  # (in bob's own inbound: his)
    collector(k).start()
    assert_refused(k, link, "it is a symbolic link")
    assert_refused(k, name, why)
    assert collected(k, "ann") == HONEST["ann"] and collected(k, "bob") == LATE


def test_every_students_inbound_is_listed_and_the_shared_one_only_when_it_holds_something(k):
    """exchange.inbounds and entries, which collect and grading on hand-in read: each
    student's own inbound, with its student; the shared inbound/ only while an earlier
    version's submissions are in it; no hidden (set-aside) name."""
    assert exchange.inbounds(k.course) == [("ann", inbound(k, "ann")), ("bob", inbound(k, "bob"))]
    os.rename(os.path.join(inbound(k, "bob"), os.listdir(inbound(k, "bob"))[0]),
              os.path.join(inbound(k, "bob"), ".refused+x"))
    earlier = hand_in(k, "bob", EARLY)
    os.rename(os.path.join(inbound(k, "bob"), earlier), os.path.join(k.shared, earlier))
    assert exchange.inbounds(k.course)[-1] == (None, k.shared)
    listed = {(e.student, e.name, e.key) for e in exchange.entries(k.course)}
    anns = os.listdir(inbound(k, "ann"))[0]
    assert listed == {("ann", anns, "ann/" + anns), (None, earlier, earlier)}


def test_an_earlier_versions_shared_inbound_is_still_collected_by_name_and_owner(k):
    """Submissions an earlier version's hub took in the shared inbound/: collected as then,
    each by the student its name gives when it is a folder of that student's uid."""
    bobs = os.listdir(inbound(k, "bob"))[0]
    os.rename(os.path.join(inbound(k, "bob"), bobs), os.path.join(k.shared, bobs))
    forged = hand_in(k, "bob", LATER, {NB: LATE}, by="ann")
    os.rename(os.path.join(inbound(k, "ann"), forged), os.path.join(k.shared, forged))
    collector(k).start()
    assert collected(k, "ann") == HONEST["ann"] and collected(k, "bob") == HONEST["bob"]
    assert_refused(k, forged, "names bob but was handed in by uid 20001")


def test_what_is_refused_on_a_students_own_disk_stays_there_hidden(k):
    """ann's inbound a filesystem of its own (a tmpfs here, an ext4 disk in the hub): what
    she planted cannot be renamed into course/refused/ (EXDEV), so it is renamed hidden in
    her inbound, where it takes her space alone; the class is collected."""
    anns = inbound(k, "ann")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=3733", "tmpfs", anns], check=True)
    try:
        hand_in(k, "ann", EARLY)  # (the fixture's is under the mount)
        link = as_link(k, "bob+mlp+%s+zz" % FAR, os.path.join(k.homes, "bob", "mlp"))
        folder = hand_in(k, "ann", "not-a-time")
        collector(k).start()
        assert collected(k, "ann") == HONEST["ann"] and collected(k, "bob") == HONEST["bob"]
        hidden = sorted(n for n in os.listdir(anns) if n.startswith(".refused+"))
        assert hidden == sorted([".refused+" + link, ".refused+" + folder]), os.listdir(anns)
        with open(os.path.join(k.course, "refused", "reasons.txt")) as f:
            reasons = f.read()
        assert "names bob but is in ann's inbound" in reasons and "cannot read the time" in reasons
    finally:
        subprocess.run(["umount", anns], check=True)
