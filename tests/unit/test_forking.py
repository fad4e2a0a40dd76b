"""DataLoader workers started from a thread Python did not create (a QThread) exit cleanly."""

from __future__ import annotations

import _thread
import threading
from types import SimpleNamespace

import torch
from torch.utils.data import TensorDataset
from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter

from finetune_gui.core.training import prepare


def _in_a_foreign_thread(fn) -> None:
    done = threading.Event()
    errors: list[BaseException] = []

    def body() -> None:
        threading.current_thread()  # Python now records this thread as a _DummyThread, as it does a QThread
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            errors.append(e)
        finally:
            done.set()

    _thread.start_new_thread(body, ())
    assert done.wait(120), "the loader thread did not finish"
    if errors:
        raise errors[0]


def test_loader_workers_forked_from_a_gui_thread_exit_with_code_0(monkeypatch):
    exit_codes: dict[int, int | None] = {}
    real_shutdown = _MultiProcessingDataLoaderIter._shutdown_workers

    def recording_shutdown(self):
        real_shutdown(self)  # runs at the end of the epoch and again when the iterator goes
        exit_codes.update({w.pid: w.exitcode for w in getattr(self, "_workers", [])})

    monkeypatch.setattr(_MultiProcessingDataLoaderIter, "_shutdown_workers", recording_shutdown)
    cfg = SimpleNamespace(data=SimpleNamespace(num_workers=2), train=SimpleNamespace(seed=0))
    loader = prepare.make_loader(TensorDataset(torch.arange(8.0)), 2, SimpleNamespace(collate_fn=None), cfg)

    _in_a_foreign_thread(lambda: [b for b in loader])

    # on Python 3.11 without the repair each worker ends with 1, which torch's SIGCHLD check reports as a crash
    assert list(exit_codes.values()) == [0, 0]
