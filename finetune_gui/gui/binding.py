"""A check of the installed Qt binding for a defect that crashes the app later, at a random moment.

PySide6 6.12.0 drops one reference to None on every Qt call that returns nothing (upstream PYSIDE-3474). On
Python 3.12+ None is immortal and nothing happens; on 3.11 None's count runs down during a session until the
garbage collector or the interpreter crashes ("Fatal Python error: none_dealloc", or a segfault while a worker
thread collects garbage). pyproject.toml excludes that release; this check names the problem for anyone whose
environment has it anyway, before a window opens.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

_CALLS = 64


def dropped_none_references(call: Callable[[], object] | None = None, calls: int = _CALLS) -> int:
    """How many references to None `calls` runs of `call` (default: a Qt setter) lose; 0 for a sound binding."""
    if call is None:
        from PySide6.QtCore import QObject

        probe = QObject()
        call = lambda: probe.setObjectName("probe")  # noqa: E731 - returns nothing, as the defect needs
    call()  # first call: caches and lazy imports may take references of their own
    before = sys.getrefcount(None)
    for _ in range(calls):
        call()
    return before - sys.getrefcount(None)


def binding_problem(call: Callable[[], object] | None = None) -> str | None:
    """What is wrong with the installed Qt binding and how to fix it, or None when it is sound."""
    if sys.version_info >= (3, 12):
        return None  # None is immortal: the defect cannot hurt
    lost = dropped_none_references(call)
    if lost < _CALLS // 2:  # other threads may take or drop a few references meanwhile
        return None
    import PySide6

    return (
        f"PySide6 {PySide6.__version__} has a known defect on Python {sys.version_info.major}."
        f"{sys.version_info.minor}: it drops a reference to None on Qt calls ({lost} in {_CALLS} calls), "
        "and the app would crash after a while. Install another release:\n"
        '    pip install "pyside6-essentials>=6.6,!=6.12.0"\n'
        "(or use Python 3.12 or newer)."
    )
