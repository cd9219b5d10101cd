"""Work directories (slots) and their locks (mlp_lab/kernel/home.py)."""

import os

from mlp_lab.kernel.home import prepare_home, take_slot, write_if_changed


def test_two_kernels_never_share_a_slot(tmp_path):
    home = str(tmp_path)
    prepare_home(home)
    fd1, work1 = take_slot(home)
    fd2, work2 = take_slot(home)
    assert work1 != work2 and os.path.isdir(work1) and os.path.isdir(work2)
    os.close(fd1)  # the first kernel has ended: its slot is free again
    fd3, work3 = take_slot(home)
    assert work3 == work1
    os.close(fd2)
    os.close(fd3)


def test_a_new_slot_starts_from_the_prebuilt_template(tmp_path):
    home = str(tmp_path)
    prepare_home(home)
    target = os.path.join(home, "slots", "template", "work", "target")
    os.makedirs(target)
    open(os.path.join(target, "libmlp_core.rlib"), "w").close()
    fd, work = take_slot(home)
    assert os.path.exists(os.path.join(work, "target", "libmlp_core.rlib"))
    os.close(fd)


def test_settings_are_rewritten_only_when_they_change(tmp_path):
    path = str(tmp_path / "evcxr.toml")
    write_if_changed(path, "a")
    first = os.stat(path).st_ino
    write_if_changed(path, "a")
    assert os.stat(path).st_ino == first  # untouched: cargo finds it as fresh as before
    write_if_changed(path, "b")
    assert open(path).read() == "b"
