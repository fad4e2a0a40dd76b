"""A task run by the bridge may report progress: each value reaches the main thread, in order, before the result."""

from __future__ import annotations

import threading


def count_to(n: int, progress) -> str:
    for i in range(1, n + 1):
        progress(("step", i, threading.get_ident()))
    return "done"


def test_progress_of_a_task_arrives_in_the_main_thread_in_order_before_its_result(qtbot, bridge):
    main = threading.get_ident()
    heard, results = [], []
    bridge.run_task(
        count_to,
        50,
        on_result=lambda value: results.append((value, len(heard))),
        on_progress=lambda value: heard.append((value, threading.get_ident())),
    )
    qtbot.waitUntil(lambda: bool(results), timeout=10_000)
    assert [value[1] for value, _ in heard] == list(range(1, 51))
    assert all(receiver == main != sender for (_, _, sender), receiver in heard)
    assert results == [("done", 50)]


def test_a_task_without_a_progress_receiver_is_called_as_before(qtbot, bridge):
    results = []
    bridge.run_task(lambda: "plain", on_result=results.append)
    qtbot.waitUntil(lambda: bool(results), timeout=10_000)
    assert results == ["plain"]
