"""The work directory's Cargo.lock kept across evcxr's start (mlp_lab/kernel/launch.py):
evcxr's start empties it, and the first `:dep` then asked the crates.io index for every
package again."""

from mlp_lab.kernel.launch import keep_lock, restore_lock

FULL = '[[package]]\nname = "ctx"\n\n[[package]]\nname = "mlp-core"\n\n[[package]]\nname = "ndarray"\n'
EMPTIED = '[[package]]\nname = "ctx"\n'


def test_the_lock_evcxrs_start_empties_comes_back(tmp_path):
    lock = tmp_path / "Cargo.lock"
    lock.write_text(FULL)
    keep_lock(str(tmp_path))
    lock.write_text(EMPTIED)  # evcxr's start: a cell without dependencies
    restore_lock(str(tmp_path))
    assert lock.read_text() == FULL


def test_a_fuller_lock_is_left_alone(tmp_path):
    lock = tmp_path / "Cargo.lock"
    lock.write_text(FULL)
    keep_lock(str(tmp_path))
    lock.write_text(FULL + '\n[[package]]\nname = "rand"\n')  # a :dep added since
    restore_lock(str(tmp_path))
    assert "rand" in lock.read_text()


def test_no_lock_nothing_kept(tmp_path):
    keep_lock(str(tmp_path))  # a new work directory: nothing to keep
    restore_lock(str(tmp_path))
    assert not (tmp_path / "Cargo.lock").exists()
