"""Grading on hand-in's queue (mlp_lab/course/on_submit.py): first come first served
across students, one in flight per student (a newer submission takes the place of the
one still waiting), MLP_GRADE_RATE an hour, and what survives a restart."""

import json
import os

import pytest

from mlp_lab.course import on_submit

T0 = 1_800_000_000.0


def record(name, student, queued, state=on_submit.WAITING, **kw):
    return dict(name=name, student=student, queued=queued, seen=queued, state=state, **kw)


def make_queue(tmp_path, *records):
    q = on_submit.Queue(str(tmp_path / "queue.json"))
    q.items = {r["name"]: r for r in records}
    return q


def test_names_nbgrader_gives_a_submission():
    assert on_submit.parse_name("ann+mlp+2026-12-07 10:02:11.123456 UTC+x1Y2")[:2] == ("ann", "mlp")
    assert on_submit.parse_name("ann+mlp+2026-12-07 10:02:11.123456 UTC")[0] == "ann"
    for bad in ("ann+mlp", "a+b+c+d+e", "ann+mlp+not-a-time+x"):
        with pytest.raises((ValueError, OverflowError)):
            on_submit.parse_name(bad)


def test_first_come_first_served_across_students(tmp_path):
    q = make_queue(tmp_path, record("b", "bob", T0 + 1), record("a", "ann", T0 + 2), record("c", "cat", T0))
    assert q.next_ready(T0 + 10)["name"] == "c"


def test_one_in_flight_per_student(tmp_path):
    q = make_queue(tmp_path, record("a1", "ann", T0, on_submit.GRADING, started=T0),
                   record("a2", "ann", T0 + 1), record("b", "bob", T0 + 2))
    assert q.next_ready(T0 + 10)["name"] == "b"


def test_rate_per_student_an_hour(tmp_path, monkeypatch):
    monkeypatch.setenv("MLP_GRADE_RATE", "2")
    q = make_queue(tmp_path, record("a1", "ann", T0, on_submit.GRADED, started=T0 + 100),
                   record("a2", "ann", T0 + 1, on_submit.GRADED, started=T0 + 200),
                   record("a3", "ann", T0 + 2), record("b", "bob", T0 + 3))
    assert q.next_ready(T0 + 300)["name"] == "b"
    assert q.items["a3"]["until"] == T0 + 100 + 3600  # the oldest of the hour's two, an hour on
    assert q.next_ready(T0 + 3700)["name"] == "a3"


def test_the_queue_is_kept_whole_on_disk(tmp_path):
    q = make_queue(tmp_path, record("a", "ann", T0))
    q.save()
    assert json.loads((tmp_path / "queue.json").read_text())["a"]["state"] == on_submit.WAITING
    assert on_submit.Queue(str(tmp_path / "queue.json")).items == q.items
    assert not os.path.exists(str(tmp_path / "queue.json.new"))


def test_a_newer_submission_takes_the_place_of_the_waiting_one(tmp_path, monkeypatch):
    course = tmp_path / "course"
    inbound = tmp_path / "state" / "exchange" / "mlp-lab" / "inbound"
    inbound.mkdir(parents=True)
    course.mkdir()
    monkeypatch.setenv("MLP_HUB_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("MLP_HUB_HOMES", raising=False)
    monkeypatch.setattr(on_submit.Service, "remove_stale_sandboxes", lambda self: None)
    monkeypatch.setattr(on_submit.Service, "tell", lambda self, r: None)
    names = ["ann+mlp+2026-12-07 10:00:00.000000 UTC+a", "bob+mlp+2026-12-07 10:00:01.000000 UTC+b"]
    for name in names:
        (inbound / name).mkdir()
        (inbound / name / "01.ipynb").write_text("{}")
    service = on_submit.Service(str(course), jobs=1)
    service.scan()
    first = service.queue.items[names[0]]["queued"]
    later = "ann+mlp+2026-12-07 10:05:00.000000 UTC+c"
    (inbound / later).mkdir()
    (inbound / "cat+mlp+not-a-time+d").mkdir()
    service.scan()
    items = service.queue.items
    assert items[names[0]]["state"] == on_submit.REPLACED and later in items[names[0]]["reason"]
    assert items[later]["state"] == on_submit.WAITING and items[later]["queued"] == first
    assert items["cat+mlp+not-a-time+d"]["state"] == on_submit.REFUSED
    assert service.queue.next_ready(items[later]["queued"] + 1)["name"] == later


def test_a_grading_cut_short_waits_again_in_its_place(tmp_path, monkeypatch):
    course = tmp_path / "course"
    (course / "on_submit").mkdir(parents=True)
    monkeypatch.setenv("MLP_HUB_STATE", str(tmp_path / "state"))
    monkeypatch.setattr(on_submit.Service, "remove_stale_sandboxes", lambda self: None)
    (course / "on_submit" / "queue.json").write_text(json.dumps({
        "a": record("a", "ann", T0, on_submit.GRADING, started=T0 + 5, pid=None),
        "b": record("b", "bob", T0 + 1)}))
    service = on_submit.Service(str(course), jobs=1)
    a = service.queue.items["a"]
    assert a["state"] == on_submit.WAITING and a["again"] == 1 and "started" not in a
    assert service.queue.next_ready(T0 + 10)["name"] == "a"


def test_every_students_inbound_is_scanned_and_an_entry_is_its_inbounds_students(tmp_path, monkeypatch):
    """Each student hands in to an inbound of their own (<state>/inbound/<student>): the
    service lists them all, keys each entry by its inbound and name, and an entry in cat's
    named for bob is cat's, refused (and its page would go to cat, not bob)."""
    course = tmp_path / "course"
    course.mkdir()
    state = tmp_path / "state"
    for student in ("ann", "cat"):
        (state / "inbound" / student).mkdir(parents=True)
    monkeypatch.setenv("MLP_HUB_STATE", str(state))
    monkeypatch.delenv("MLP_HUB_HOMES", raising=False)
    monkeypatch.setattr(on_submit.Service, "remove_stale_sandboxes", lambda self: None)
    monkeypatch.setattr(on_submit.Service, "tell", lambda self, r: None)
    ann = "ann+mlp+2026-12-07 10:00:00.000000 UTC+a"
    forged = "bob+mlp+2099-01-01 00:00:00.000000 UTC+b"
    (state / "inbound" / "ann" / ann).mkdir()
    (state / "inbound" / "cat" / forged).mkdir()
    (state / "inbound" / "cat" / ann).mkdir()  # ann's very name, in cat's inbound
    service = on_submit.Service(str(course), jobs=1)
    service.scan()
    items = service.queue.items
    assert sorted(items) == ["ann/" + ann, "cat/" + ann, "cat/" + forged]
    assert items["ann/" + ann]["state"] == on_submit.WAITING and items["ann/" + ann]["student"] == "ann"
    for key in ("cat/" + forged, "cat/" + ann):
        assert items[key]["state"] == on_submit.REFUSED and items[key]["student"] == "cat"
        assert "but is in cat's inbound" in items[key]["reason"]
    assert on_submit.entry_path(str(course), items["ann/" + ann]) == str(state / "inbound" / "ann" / ann)
    assert service.queue.next_ready(items["ann/" + ann]["queued"] + 1)["name"] == "ann/" + ann
