"""A causal LM with LoRA under torchrun, copied to each process (DDP) or sharded over them (FSDP2): both learn
what one process learns, and FSDP's gathered checkpoint is the same single file a run in one process reads."""

from __future__ import annotations

import sys

import pytest

from tests.distributed.launching import (
    cli,
    interrupted_copy,
    largest_difference,
    make_lm_task,
    metrics,
    run,
    standalone,
    train,
    weights,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    for strategy in ("ddp", "fsdp"):
        make_lm_task(root, strategy)
    return root


@pytest.fixture(scope="module")
def alone(lm):
    return train(lm, "alone", config="ddp.toml")


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_lora_under_two_processes_learns_what_one_process_learns(lm, alone, strategy):
    folder = train(lm, strategy, 2, config=f"{strategy}.toml")
    rows = metrics(folder)
    assert rows[2]["train_loss"] < rows[0]["train_loss"], "the loss falls"
    assert largest_difference(weights(folder / "model.safetensors"), weights(alone / "model.safetensors")) < 1e-5
    log = (folder / "log.txt").read_text()
    assert ("FSDP (fully_shard)" if strategy == "fsdp" else "DistributedDataParallel") in log


def test_an_fsdp_checkpoint_resumes_in_one_process_and_a_single_process_one_under_fsdp(lm, alone, tmp_path):
    sharded = train(lm, "sharded", 2, config="fsdp.toml")
    copy = interrupted_copy(sharded, tmp_path / "from-fsdp")
    run([sys.executable, *cli("resume", str(copy), "--quiet")], lm)  # name-keyed optimiser state, plain model
    assert largest_difference(weights(copy / "model.safetensors"), weights(sharded / "model.safetensors")) < 1e-5

    copy = interrupted_copy(alone, tmp_path / "to-fsdp")
    config = (copy / "config.toml").read_text().replace('strategy = "ddp"', 'strategy = "fsdp"')
    (copy / "config.toml").write_text(config)
    run(standalone(2) + cli("resume", str(copy), "--quiet"), lm)  # position-keyed state into the sharded model
    assert "FSDP (fully_shard)" in (copy / "log.txt").read_text()
    assert largest_difference(weights(copy / "model.safetensors"), weights(alone / "model.safetensors")) < 1e-5


def test_fsdp_is_refused_for_a_model_that_is_copied_anyway(tmp_path):
    from tests.distributed.launching import environment, make_task

    make_task(tmp_path)
    config = tmp_path / "config.toml"
    text = config.read_text().replace("[train]\n", '[train]\nstrategy = "fsdp"\n')
    config.write_text(text)
    import subprocess

    done = subprocess.run(standalone(2) + cli("train", "config.toml", "--output", "runs", "--quiet"), cwd=tmp_path,
                          env=environment(), capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode != 0
    assert "train.strategy: fsdp shards causal language models" in done.stdout + done.stderr
