"""`--events FILE` of `finetune-gui train` and `resume`: the run's events appended to FILE as JSON lines
(core/training/event_stream.py), besides the console. The GUI follows a run it started as a child process this
way. Under torchrun only rank 0 writes the file."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

EVENTS_HELP = (
    "also append the run's events to FILE, one JSON line each (what the app reads to follow a run it started); "
    "under torchrun only rank 0 writes it"
)


def add_events_options(sub) -> None:
    """Give the train and resume commands their --events option."""
    for command in ("train", "resume"):
        sub.choices[command].add_argument("--events", metavar="FILE", help=EVENTS_HELP)


def writes_events() -> bool:
    """Whether this process writes the event stream: torchrun's rank 0, or a process torchrun did not start."""
    return int(os.environ.get("RANK", "0")) == 0


def with_events(listener: Callable, args: argparse.Namespace) -> Callable:
    """`listener`, and when --events was given (and this is rank 0), the event file's writer before it."""
    path = getattr(args, "events", None)
    if not path or not writes_events():
        return listener
    from finetune_gui.core.training.event_stream import EventFileWriter

    writer = EventFileWriter(path)

    def both(event) -> None:
        writer(event)
        listener(event)

    return both
