"""Make DataLoader workers forked from a GUI thread exit cleanly on Python < 3.12.

CPython 3.11 records a thread it did not start (a QThread running the engine) as a ``_DummyThread``; a child
forked from it keeps that record as its main thread, and ``threading._shutdown`` then fails at exit, so every
worker ends with exit code 1 (CPython gh-102512, fixed in 3.12). torch's SIGCHLD check reports such a worker as
crashed. The hook below repairs the child's record the way 3.12 does.
"""

from __future__ import annotations

import os
import sys
import threading

_installed = False


def _repair_main_thread_in_child() -> None:
    main = threading.main_thread()
    if isinstance(main, threading._DummyThread):
        main.__class__ = threading._MainThread
        main._name = "MainThread"
        main._daemonic = False
        main._set_tstate_lock()


def install_fork_repair() -> None:
    """Register the child-side repair once (a no-op where Python already does it or cannot fork)."""
    global _installed
    if _installed or sys.version_info >= (3, 12) or not hasattr(os, "register_at_fork"):
        return
    os.register_at_fork(after_in_child=_repair_main_thread_in_child)
    _installed = True
