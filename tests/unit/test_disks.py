"""Each student's inbound on a disk of its own (mlp_lab/hub/disks.py), made and mounted the
way their home is: a small ext4 image, loop-mounted nosuid, nodev, noexec, the grader's
with nbgrader's inbound mode; full at its size (ENOSPC, for its student alone); mounted
again by a hub's start, unmounted by its stop. Root only (mount)."""

import errno
import os
import stat

import pytest

from mlp_lab.hub import disks

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: loop mounts")

GRADER = (20999, 20999)


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("MLP_HUB_INBOUND", "4M")
    yield str(tmp_path)
    disks.detach_inbounds(str(tmp_path))


def options(path):
    with open("/proc/self/mounts") as f:
        return next(line.split()[3].split(",") for line in f if line.split()[1] == path)


def test_an_inbound_is_a_disk_of_its_own_the_graders_with_nbgraders_mode(state):
    at = disks.attach_inbound(state, "ann", GRADER)
    assert at == os.path.join(state, "inbound", "ann") and os.path.ismount(at)
    assert {"nosuid", "nodev", "noexec"} <= set(options(at))
    st = os.stat(at)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (*GRADER, 0o3733)
    assert os.listdir(at) == []  # (no lost+found)
    assert os.path.getsize(disks.inbound_image(state, "ann")) == 4 * 2**20
    root = os.stat(disks.inbound_root(state))
    assert (root.st_uid, root.st_gid, stat.S_IMODE(root.st_mode)) == (0, GRADER[1], 0o750)


def test_an_inbound_is_full_at_its_size_and_the_next_one_is_not(state):
    ann, bob = disks.attach_inbound(state, "ann", GRADER), disks.attach_inbound(state, "bob", GRADER)
    with pytest.raises(OSError) as e, open(os.path.join(ann, "big"), "wb") as f:
        os.posix_fallocate(f.fileno(), 0, 8 * 2**20)
    assert e.value.errno == errno.ENOSPC
    with open(os.path.join(bob, "x"), "wb") as f:
        f.write(b"handed in")


def test_a_hubs_start_mounts_them_all_again_and_its_stop_unmounts_them(state):
    for name in ("ann", "bob"):
        disks.attach_inbound(state, name, GRADER)
    with open(os.path.join(state, "inbound", "ann", "kept"), "w") as f:
        f.write("handed in")
    disks.detach_inbounds(state)
    assert disks.mounted(state) == []
    assert disks.attach_inbounds(state, GRADER) == [os.path.join(state, "inbound", n) for n in ("ann", "bob")]
    assert disks.attach_inbounds(state, GRADER) == []  # a killed hub's mounts: found, used
    with open(os.path.join(state, "inbound", "ann", "kept")) as f:
        assert f.read() == "handed in"
    assert sorted(disks.mounted(state)) == [os.path.join(state, "inbound", n) for n in ("ann", "bob")]


def test_without_a_disk_an_inbound_is_a_plain_folder(state, monkeypatch):
    monkeypatch.setenv("MLP_HUB_INBOUND", "0")
    at = disks.attach_inbound(state, "ann", GRADER)
    assert not os.path.ismount(at) and stat.S_IMODE(os.stat(at).st_mode) == 0o3733
