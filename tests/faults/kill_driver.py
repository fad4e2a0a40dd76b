"""Runs `finetune-gui train` in a child process for the kill -9 tests (case 1), and can freeze it at an exact
point of a checkpoint save so the test kills it there.

    python -m tests.faults.kill_driver CONFIG OUTPUT [PAUSE_AT]

PAUSE_AT names the moment, as `what:file-name`:
    mid-write:NAME   half of NAME's temp file written and flushed
    written:NAME     NAME's temp file complete, before anything else happens
    renamed:NAME     NAME just renamed into place (its temp file gone)
A `#N` suffix pauses at the Nth time only (`renamed:best.safetensors#2`: when epoch 2's best replaces epoch 1's).
A `slow-` prefix (`slow-written:NAME`) makes it a slow save instead: it prints PAUSED, sleeps 0.5 s and goes on.
`steps:SECONDS` makes every training batch take that long and print `STEP` (to stop a run mid-epoch).
The child prints `PAUSED <PAUSE_AT>` and sleeps until killed. Every write and rename is printed as it
happens (`WRITE name`, `RENAME name`), so a test can also kill at random moments and know what was going on.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path


def _pause(label: str) -> None:
    print(f"PAUSED {label}", flush=True)
    time.sleep(0.5 if label.startswith("slow-") else 600)


def install(pause_at: str) -> None:
    from finetune_gui import files
    from finetune_gui.core import checkpoints

    what, _, target = pause_at.removeprefix("slow-").partition(":")
    if what == "steps":
        _slow_steps(float(target))
        return
    target, _, nth = target.partition("#")
    wanted, seen = int(nth or 1), {"n": 0}
    real_write_temp, real_replace = checkpoints.write_temp, os.replace

    def now(kind: str, name: str) -> bool:
        if what != kind or name != target:
            return False
        seen["n"] += 1
        return seen["n"] == wanted

    def write_temp(path, write):
        path = Path(path)
        print(f"WRITE {path.name}", flush=True)
        if now("mid-write", path.name):

            def half_then_pause(f):
                buf = io.BytesIO()
                write(buf)
                data = buf.getvalue()
                f.write(data[: len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
                _pause(pause_at)

            return real_write_temp(path, half_then_pause)
        tmp = real_write_temp(path, write)
        if now("written", path.name):
            _pause(pause_at)
        return tmp

    def replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        name = Path(dst).name
        print(f"RENAME {name}", flush=True)
        if now("renamed", name):
            _pause(pause_at)

    checkpoints.write_temp = files.write_temp = write_temp  # checkpoint saves and the run folder's atomic writes
    os.replace = replace


def _slow_steps(seconds: float) -> None:
    from finetune_gui.core.training import engine

    real_forward = engine.forward_batch

    def forward_batch(p, batch, *, train):
        if train:
            print("STEP", flush=True)
            time.sleep(seconds)
        return real_forward(p, batch, train=train)

    engine.forward_batch = forward_batch


def main(argv: list[str]) -> int:
    config, output = argv[0], argv[1]
    pause_at = argv[2] if len(argv) > 2 else ""
    from tests.faults.helpers import register_tinynet

    register_tinynet()
    install(pause_at)
    from finetune_gui.cli import main as cli_main

    return cli_main(["train", config, "--output", output, "--quiet"])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
