"""The relay's changes to evcxr's messages (mlp_lab/kernel/relay.py), without evcxr: a
relay on loopback ports whose evcxr side is fed by hand."""

import time

import pytest
from jupyter_client.connect import write_connection_file
from jupyter_client.session import Session

from mlp_lab.kernel.messages import DISPLAY_MARKER
from mlp_lab.kernel.relay import LATE_OUTPUT, Relay


class Recorded(Relay):
    """A relay that starts no evcxr and records what it sends the frontend."""

    def start_evcxr(self):
        self.sent = []

    def send(self, socket, msg, idents, session):
        self.sent.append((msg["header"]["msg_type"], msg["content"]))

    def publish(self, msg_type, content, parent, metadata=None):
        self.sent.append((msg_type, content))


@pytest.fixture
def relay(tmp_path):
    path, connection = write_connection_file(str(tmp_path / "kernel.json"), ip="127.0.0.1", key=b"k")
    (tmp_path / "slot" / "work").mkdir(parents=True)
    r = Recorded(connection, None, str(tmp_path / "slot" / "work"))
    yield r
    for socket in (r.channels.f_shell, r.channels.f_control, r.channels.f_stdin, r.channels.f_iopub):
        socket.close(linger=0)  # (the heartbeat's socket stays with its thread, a daemon)


SESSION = Session(key=b"k")
REQUEST = SESSION.msg("execute_request", {"code": "println!(...)"})


def from_evcxr(relay, msg_type, content):
    relay.from_evcxr_iopub_msg([], SESSION.msg(msg_type, content, parent=REQUEST))


def kinds(relay):
    return [kind for kind, _ in relay.sent]


def test_output_that_comes_after_evcxrs_idle_still_belongs_to_the_cell(relay):
    from_evcxr(relay, "status", {"execution_state": "busy"})
    from_evcxr(relay, "stream", {"name": "stdout", "text": "X = ...\n"})
    from_evcxr(relay, "status", {"execution_state": "idle"})
    from_evcxr(relay, "stream", {"name": "stdout", "text": "y =  [0 1 2 2 1]\n"})  # lost the race
    assert relay.release_due() is not None  # the idle is held
    assert kinds(relay) == ["status", "stream", "stream"]
    time.sleep(LATE_OUTPUT * 1.5)
    assert relay.release_due() is None
    assert kinds(relay) == ["status", "stream", "stream", "status"]
    assert relay.sent[-1][1]["execution_state"] == "idle"


def test_the_next_cells_busy_comes_after_the_last_cells_idle(relay):
    # Run All: evcxr starts the next cell while the last one's idle is held; the frontend
    # shows the kernel's state from the last status it got, so idle must not come after
    from_evcxr(relay, "status", {"execution_state": "busy"})
    from_evcxr(relay, "status", {"execution_state": "idle"})
    following = SESSION.msg("execute_request", {"code": "train(...)"})
    relay.from_evcxr_iopub_msg([], SESSION.msg("status", {"execution_state": "busy"}, parent=following))
    states = [c["execution_state"] for k, c in relay.sent if k == "status"]
    assert states == ["busy", "idle", "busy"]
    assert relay.release_due() is None  # nothing held back any more
    assert relay.current["msg_id"] == following["header"]["msg_id"]


def test_a_panics_report_delays_the_idle_up_to_a_second(relay):
    from_evcxr(relay, "stream", {"name": "stderr", "text": "thread 'main' panicked at src/lib.rs:1:1:\nboom\n"})
    from_evcxr(relay, "status", {"execution_state": "idle"})
    time.sleep(LATE_OUTPUT * 1.5)
    relay.release_due()
    assert "status" not in kinds(relay)  # the backtrace is still to come
    from_evcxr(relay, "stream", {"name": "stderr", "text": "stack backtrace:\nnote: run with RUST_BACKTRACE\n"})
    time.sleep(LATE_OUTPUT * 1.5)
    relay.release_due()
    assert kinds(relay)[-1] == "status"
    assert "".join(c["text"] for k, c in relay.sent if k == "stream").startswith("panicked: boom\n")


def test_live_display_lines_become_one_updated_display(relay):
    line = DISPLAY_MARKER + '{"display_id": "train-1", "data": {"text/plain": "Epoch %d/20"}}\n'
    from_evcxr(relay, "stream", {"name": "stdout", "text": line % 1})
    from_evcxr(relay, "stream", {"name": "stdout", "text": line % 2})
    assert kinds(relay) == ["display_data", "update_display_data"]
    assert relay.sent[-1][1]["transient"] == {"display_id": "train-1"}
    assert relay.sent[-1][1]["data"] == {"text/plain": "Epoch 2/20"}


def test_replies_count_from_one_and_name_their_error(relay):
    from_evcxr(relay, "error", {"ename": "", "evalue": "cannot find value `x`", "traceback": []})
    relay.from_evcxr_shell(SESSION.serialize(SESSION.msg(
        "execute_reply", {"status": "error", "execution_count": 2}, parent=REQUEST)))
    kind, reply = relay.sent[-1]
    assert kind == "execute_reply"
    assert reply["execution_count"] == 1  # evcxr's count starts at 2
    assert reply["ename"] == "Error" and reply["evalue"] == "cannot find value `x`"



def counted_writes(relay, *counts):
    """The relay reads these (write calls, bytes) of evcxr's cell process, one per reading
    (the last one again after that)."""
    readings = list(counts)
    relay.cell_process_writes = lambda: (1234, readings.pop(0) if len(readings) > 1 else readings[0])


def test_a_cell_that_wrote_nothing_ends_at_once(relay):
    # `let one = 1 + 1;`: the cell's process wrote only evcxr's end-of-cell line, so no
    # output of the cell can trail the idle status: it is not held back
    counted_writes(relay, (10, 500), (11, 525))
    from_evcxr(relay, "status", {"execution_state": "busy"})
    from_evcxr(relay, "status", {"execution_state": "idle"})
    assert [c["execution_state"] for k, c in relay.sent if k == "status"] == ["busy", "idle"]
    assert relay.release_due() is None and relay.current is None


def test_a_cell_ends_once_all_its_process_wrote_has_come(relay):
    line = "y =  [0 1 2 2 1]\n"  # a println! besides the end-of-cell line
    counted_writes(relay, (10, 500), (12, 525 + len(line)))
    from_evcxr(relay, "status", {"execution_state": "busy"})
    from_evcxr(relay, "status", {"execution_state": "idle"})
    assert relay.release_due() is not None  # the line is still on its way: held
    from_evcxr(relay, "stream", {"name": "stdout", "text": line})
    assert kinds(relay) == ["status", "stream", "status"]  # then at once, not after LATE_OUTPUT
    assert relay.release_due() is None


def test_output_evcxr_turns_into_a_result_is_held_until_quiet(relay):
    # a final expression's value: the process wrote it between evcxr's markers, evcxr sends
    # it as execute_result, so the bytes never add up: the old quiet rule ends the cell
    counted_writes(relay, (10, 500), (13, 576))
    from_evcxr(relay, "status", {"execution_state": "busy"})
    from_evcxr(relay, "execute_result", {"data": {"text/plain": "2"}, "execution_count": 3})
    from_evcxr(relay, "status", {"execution_state": "idle"})
    assert relay.release_due() is not None
    time.sleep(LATE_OUTPUT * 1.5)
    assert relay.release_due() is None
    assert kinds(relay) == ["status", "execute_result", "status"]


def test_a_restarted_cell_process_counts_as_output(relay):
    # a panic or an interrupt gives evcxr a new process: its counts say nothing of the cell
    readings = iter([(1234, (10, 500)), (5678, (1, 25))])
    relay.cell_process_writes = lambda: next(readings)
    from_evcxr(relay, "status", {"execution_state": "busy"})
    from_evcxr(relay, "status", {"execution_state": "idle"})
    assert relay.release_due() is not None
