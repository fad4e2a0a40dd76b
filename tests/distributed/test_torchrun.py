"""The engine under torchrun (gloo, on the CPU): N processes train what one process trains with the same global
batch, rank 0 alone writes the run, and a run continues on a different number of processes."""

from __future__ import annotations

import sys

import pytest

from tests.distributed.launching import (
    cli,
    free_port,
    interrupted_copy,
    largest_difference,
    make_task,
    metrics,
    run,
    torchrun,
    train,
    weights,
)

pytestmark = pytest.mark.slow

WEIGHTS_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    make_task(root)
    return root


@pytest.fixture(scope="module")
def alone(task):
    return train(task, "alone")


@pytest.fixture(scope="module")
def two(task):
    return train(task, "two", 2, "--events", str(task / "two-events.jsonl"))


def test_two_processes_of_8_samples_train_the_weights_of_one_process_of_16(alone, two):
    one, both = weights(alone / "model.safetensors"), weights(two / "model.safetensors")
    assert largest_difference(one, both) < WEIGHTS_TOLERANCE
    start = weights(next((alone / "checkpoints").glob("step-*.safetensors")))
    assert largest_difference(one, start) > 1e-3, "the weights must have moved for the comparison to mean anything"


def test_the_epoch_metrics_of_two_processes_are_those_of_one(alone, two):
    for a, b in zip(metrics(alone), metrics(two), strict=True):
        assert a.keys() - {"time_s"} == b.keys() - {"time_s"}
        for k in a.keys() - {"time_s"}:
            assert b[k] == (a[k] if isinstance(a[k], str) else pytest.approx(a[k], rel=1e-5, abs=1e-6)), k


def test_rank_0_alone_writes_the_run_folder(task, two):
    assert [p.name for p in (task / "two").iterdir()] == [two.name]
    log = (two / "log.txt").read_text()
    assert log.count("distributed: 2 processes (gloo)") == 1, "one process writes the log"
    assert "global batch 16 = 8 per process" in log
    steps = [line for line in (two / "steps.jsonl").read_text().splitlines() if line.strip()]
    assert len(steps) == len({line for line in steps}), "each step is logged once"


def test_the_event_stream_of_a_job_is_rank_0s_alone(task, two):
    from finetune_gui.core.training import events as ev
    from finetune_gui.core.training.event_stream import EventTail

    said = EventTail(task / "two-events.jsonl").read()
    assert [type(e) for e in said].count(ev.RunStarted) == 1
    assert [type(e) for e in said].count(ev.RunFinished) == 1
    assert len([e for e in said if isinstance(e, ev.EpochMetrics)]) == 2


def test_two_machines_on_one_host_meet_through_c10d_and_train_the_same_weights(task, alone):
    import subprocess

    from tests.distributed.launching import environment

    endpoint = f"127.0.0.1:{free_port()}"
    args = cli("train", "config.toml", "--output", "nodes", "--quiet")
    nodes = [
        subprocess.Popen(
            torchrun(
                "--nnodes",
                "2",
                "--node-rank",
                str(rank),
                "--nproc-per-node",
                "1",
                "--rdzv-backend",
                "c10d",
                "--rdzv-endpoint",
                endpoint,
                "--rdzv-id",
                "two-nodes",
                *args,
            ),
            cwd=task,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=240)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    (folder,) = (task / "nodes").iterdir()
    assert largest_difference(weights(folder / "model.safetensors"), weights(alone / "model.safetensors")) < 1e-5


@pytest.mark.parametrize(("started", "resumed"), [(2, 1), (1, 2)])
def test_a_run_resumes_on_a_different_number_of_processes(task, alone, two, started, resumed, tmp_path):
    finished = two if started == 2 else alone
    copy = interrupted_copy(finished, tmp_path / "run")
    resume = cli("resume", str(copy), "--quiet")
    from tests.distributed.launching import standalone

    run(standalone(2) + resume if resumed == 2 else [sys.executable, *resume], task)
    assert largest_difference(weights(copy / "model.safetensors"), weights(finished / "model.safetensors")) < 1e-5


def test_train_with_nproc_per_node_becomes_torchrun_and_only_rank_0_speaks(task, alone):
    done = run([sys.executable, *cli("train", "config.toml", "--output", "flag", "--nproc-per-node", "2")], task)
    said = done.stdout + done.stderr
    assert said.count("finished (completed)") == 1, said
    assert said.count("[warning] The same samples are in training and evaluation") == 1, "findings said once"
    (folder,) = (task / "flag").iterdir()
    assert largest_difference(weights(folder / "model.safetensors"), weights(alone / "model.safetensors")) < 1e-5
