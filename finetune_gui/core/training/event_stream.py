"""The engine's events as a stream of JSON lines, so another process can follow a run.

One line per event: `{"event": "StepMetrics", "epoch": 0, ...}` (the event's class name and its fields). A run
started as a child process (the GUI's separate-process mode, or torchrun's rank 0) writes them with
`EventFileWriter`; the follower reads what is new with `EventTail`. Lines are only ever appended whole, so a
reader that keeps an unfinished last line for later never sees half an event.
"""

from __future__ import annotations

import json
import os
import threading
import typing
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

from finetune_gui.core.errors import StorageError
from finetune_gui.core.training.events import Event, LogMessage

#: every event class the engine may send, by the name the stream carries
EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in typing.get_args(Event)}


def _plain(value: Any) -> Any:
    """A number-like value json cannot write (a numpy or torch scalar) as a plain number; anything else as text."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def event_to_json(event: Event) -> str:
    """The event as one JSON line (without the newline). NaN and infinities are written as NaN/Infinity."""
    name = type(event).__name__
    if name not in EVENT_TYPES:
        raise TypeError(f"{name} is not an engine event (see core/training/events.py Event)")
    data = {"event": name, **{f.name: getattr(event, f.name) for f in fields(event)}}
    return json.dumps(data, default=_plain, separators=(",", ":"))


@cache
def _tuple_fields(cls: type) -> frozenset[str]:
    hints = typing.get_type_hints(cls)
    return frozenset(name for name, hint in hints.items() if typing.get_origin(hint) is tuple)


def event_from_json(line: str) -> Event:
    """The event a line holds. Fields the event does not have (from a newer writer) are left out; a line that is
    not JSON, names no known event or lacks a field raises ValueError saying which."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    name = data.pop("event", None)
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown event {name!r}")
    known = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in known}
    for key in _tuple_fields(cls) & kwargs.keys():
        if isinstance(kwargs[key], list):
            kwargs[key] = tuple(kwargs[key])
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ValueError(f"{name}: {e}") from None


class EventFileWriter:
    """A listener that appends each event to `path` as one line, written with a single write and not buffered,
    so a follower sees it at once. Safe to call from several threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise StorageError(
                f"cannot write the event stream to {self.path}: {e.strerror or e}; pick a file in a folder you can "
                "write to"
            ) from None
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        data = (event_to_json(event) + "\n").encode("utf-8")
        with self._lock:
            if self._fd < 0:
                return
            view = memoryview(data)
            while view:  # a regular file takes it in one write; a signal may cut one short
                view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> EventFileWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EventTail:
    """Follows an event file as another process writes it: each `read()` returns the events completed since the
    last one. The file may not exist yet; an unfinished last line waits for the next read; a line that cannot be
    read becomes a warning LogMessage in its place."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file = None
        self._partial = b""
        self._line_no = 0

    def read(self) -> list[Event]:
        if self._file is None:
            try:
                self._file = open(self.path, "rb")  # kept open between reads; close() closes it
            except FileNotFoundError:
                return []
        chunk = self._file.read()
        if not chunk:
            return []
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        events: list[Event] = []
        for raw in lines:
            self._line_no += 1
            if not raw.strip():
                continue
            try:
                events.append(event_from_json(raw.decode("utf-8")))
            except (ValueError, UnicodeDecodeError) as e:
                events.append(LogMessage("warning", f"{self.path.name} line {self._line_no} skipped: {e}"))
        return events

    @property
    def unfinished(self) -> bytes:
        """What was read after the last newline (an event still being written, or the rest of a writer that died)."""
        return self._partial

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
