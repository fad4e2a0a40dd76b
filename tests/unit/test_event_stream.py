"""The event stream: every engine event survives a JSON line and back; a follower reads only whole lines."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import threading
import typing

import pytest

from finetune_gui.core.errors import StorageError
from finetune_gui.core.training import event_stream, events
from finetune_gui.core.training.event_stream import (
    EVENT_TYPES,
    EventFileWriter,
    EventTail,
    event_from_json,
    event_to_json,
)
from finetune_gui.core.training.events import EpochMetrics, LogMessage, Probed, RunFinished, StepMetrics

SAMPLES = {
    int: 7,
    float: 0.25,
    str: 'text with "quotes", a newline\nand ü',
    bool: True,
    dict: {"finding": [1, 2.5, "x"], "nested": {"a": None}},
}


def sample_for(hint, i: int):
    """A value of the type `hint` (different for each field `i`); fails for a type the stream cannot carry."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in SAMPLES:
        return SAMPLES[hint] if hint in (str, dict) else SAMPLES[hint] + i
    if origin is tuple:
        return tuple(sample_for(args[0], i + k) for k in range(3))
    if origin is dict:
        return {f"key{k}": sample_for(args[1], i + k) for k in range(2)}
    raise AssertionError(f"no sample for {hint}: can the event stream carry it?")


def sample_event(cls):
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: sample_for(hints[f.name], i) for i, f in enumerate(dataclasses.fields(cls))})


def event_classes_in_events_module() -> list[type]:
    return [
        cls
        for _, cls in inspect.getmembers(events, inspect.isclass)
        if dataclasses.is_dataclass(cls) and cls.__module__ == events.__name__ and cls.__dataclass_params__.frozen
    ]


def test_every_frozen_event_class_of_the_engine_is_one_the_stream_knows():
    classes = event_classes_in_events_module()
    assert len(classes) >= 10
    assert {cls.__name__ for cls in classes} == set(EVENT_TYPES)


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_every_event_type_survives_a_json_line_and_back(name):
    event = sample_event(EVENT_TYPES[name])
    line = event_to_json(event)
    assert "\n" not in line
    assert json.loads(line)["event"] == name
    assert event_from_json(line) == event


def test_nan_and_infinity_survive_the_round_trip():
    probed = Probed(3, ("stem", "head"), (float("nan"), 1.5), {"relu": float("inf")})
    back = event_from_json(event_to_json(probed))
    assert math.isnan(back.block_grad[0]) and back.block_grad[1] == 1.5 and back.dead == {"relu": float("inf")}


def test_a_numpy_scalar_in_an_event_is_written_as_a_plain_number():
    np = pytest.importorskip("numpy")
    line = event_to_json(EpochMetrics(0, 5, {"val_loss": np.float32(0.5)}, 1e-3, 2.0))
    assert event_from_json(line).metrics == {"val_loss": 0.5}


def test_a_field_from_a_newer_writer_is_left_out_and_a_missing_one_is_an_error():
    assert event_from_json('{"event":"LogMessage","level":"info","text":"hi","colour":"red"}') == LogMessage(
        "info", "hi"
    )
    with pytest.raises(ValueError, match="LogMessage"):
        event_from_json('{"event":"LogMessage","level":"info"}')


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"event":"Teleported","to":"mars"}', "unknown event 'Teleported'"),
        ("not json at all", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"level":"info","text":"no name"}', "unknown event None"),
    ],
)
def test_a_line_that_is_no_event_says_why(line, reason):
    with pytest.raises(ValueError, match=reason.replace("(", r"\(")):
        event_from_json(line)


def test_the_writer_appends_one_whole_line_per_event_in_a_single_write(tmp_path, monkeypatch):
    writes = []
    real_write = event_stream.os.write
    monkeypatch.setattr(event_stream.os, "write", lambda fd, data: writes.append(bytes(data)) or real_write(fd, data))
    path = tmp_path / "events.jsonl"
    path.write_text('{"event":"LogMessage","level":"info","text":"from before"}\n')
    with EventFileWriter(path) as writer:
        writer(LogMessage("info", "one"))
        writer(StepMetrics(0, 1, 10, 0.5, 1e-3, 1.0, 100.0, 9.0))
    assert len(writes) == 2 and all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)
    lines = path.read_text().splitlines()
    assert [event_from_json(line) for line in lines][1:] == [
        LogMessage("info", "one"),
        StepMetrics(0, 1, 10, 0.5, 1e-3, 1.0, 100.0, 9.0),
    ]  # appended after what the file held


def test_events_written_from_several_threads_never_mix_within_a_line(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventFileWriter(path) as writer:

        def write_many(who: str) -> None:
            for i in range(300):
                writer(LogMessage("info", f"{who} {i} " + "x" * 500))

        threads = [threading.Thread(target=write_many, args=(w,)) for w in "ab"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    read = [event_from_json(line) for line in path.read_text().splitlines()]
    assert len(read) == 600 and all(e.text.endswith("x" * 500) for e in read)


def test_a_writer_that_cannot_write_names_the_file(tmp_path):
    with pytest.raises(StorageError, match="missing"):
        EventFileWriter(tmp_path / "missing" / "events.jsonl")


def test_the_tail_waits_for_a_file_that_does_not_exist_yet(tmp_path):
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    assert tail.read() == []
    with EventFileWriter(path) as writer:
        writer(LogMessage("info", "first"))
    assert tail.read() == [LogMessage("info", "first")]
    assert tail.read() == []  # nothing new


def test_the_tail_keeps_an_unfinished_line_until_its_end_arrives(tmp_path):
    path = tmp_path / "events.jsonl"
    finished = event_to_json(RunFinished("/runs/a", "completed", 1, {"val_loss": 0.5}, {}))
    step = event_to_json(StepMetrics(0, 1, 10, 0.5, 1e-3, 1.0, 100.0, 9.0))
    tail = EventTail(path)
    with path.open("ab", buffering=0) as f:
        f.write((step + "\n" + finished[:20]).encode())
        assert tail.read() == [StepMetrics(0, 1, 10, 0.5, 1e-3, 1.0, 100.0, 9.0)]
        assert tail.unfinished == finished[:20].encode()
        f.write(finished[20:-5].encode())
        assert tail.read() == []  # still no newline: still not an event
        f.write((finished[-5:] + "\n").encode())
        assert tail.read() == [RunFinished("/runs/a", "completed", 1, {"val_loss": 0.5}, {})]
    assert tail.unfinished == b""
    tail.close()


def test_a_bad_line_becomes_a_warning_and_the_events_around_it_still_arrive(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(
        event_to_json(LogMessage("info", "before"))
        + "\n{garbage\n"
        + '{"event":"FromTheFuture","x":1}\n'
        + b"\xff\xfe\n".decode("latin-1")
        + "\n"
        + event_to_json(LogMessage("info", "after"))
        + "\n",
        encoding="latin-1",
    )
    read = EventTail(path).read()
    assert read[0] == LogMessage("info", "before") and read[-1] == LogMessage("info", "after")
    warnings = read[1:-1]
    assert len(warnings) == 3 and all(w.level == "warning" for w in warnings)
    assert "line 2" in warnings[0].text and "not JSON" in warnings[0].text
    assert "line 3" in warnings[1].text and "FromTheFuture" in warnings[1].text
