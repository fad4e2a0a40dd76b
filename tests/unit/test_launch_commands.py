"""torchrun command lines: the exact argv each kind of launch gets, how it is printed, and the inputs refused."""

from __future__ import annotations

import subprocess
import sys

import pytest

from finetune_gui.core.distributed import launch
from finetune_gui.core.distributed.launch import (
    Endpoint,
    LaunchError,
    ShellExpr,
    check_count,
    default_nproc,
    exec_argv,
    multi_node_args,
    parse_endpoint,
    printable,
    rdzv_id_for,
    resume_program,
    shell_join,
    single_node_args,
    slurm_script,
    train_program,
    under_torchrun,
    visible_gpu_count,
)


def test_one_machine_runs_torchrun_standalone_with_one_process_per_gpu():
    program = train_program("demo-fashion", ["train.lr=3e-4"], "/runs", quiet=True)
    assert program == ["train", "demo-fashion", "--set", "train.lr=3e-4", "--output", "/runs", "--quiet"]
    assert single_node_args(4, program) == ["--standalone", "--nproc-per-node", "4", "-m", "finetune_gui", *program]


def test_a_resume_runs_the_run_folder_again_in_every_rank():
    assert resume_program("/runs/r1") == ["resume", "/runs/r1"]
    assert resume_program("/runs/r1", quiet=True) == ["resume", "/runs/r1", "--quiet"]


def test_the_exec_argv_runs_torchrun_as_a_module_of_this_interpreter():
    args = single_node_args(2, ["train", "c.toml"])
    assert exec_argv(args) == [sys.executable, "-m", "torch.distributed.run", *args]
    assert exec_argv(args, python="/venv/bin/python")[0] == "/venv/bin/python"


def test_several_machines_meet_at_a_c10d_rendezvous_with_the_same_command_on_each():
    args = multi_node_args(3, 8, Endpoint("node1", 29400), "job-7", ["train", "/shared/c.toml"])
    assert args == [
        "--nnodes", "3", "--nproc-per-node", "8",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", "node1:29400", "--rdzv-id", "job-7",
        "-m", "finetune_gui", "train", "/shared/c.toml",
    ]  # fmt: skip
    assert "--node-rank" not in args  # torchrun reads it only for the static backend; c10d numbers the nodes


def test_the_printed_command_quotes_what_the_shell_would_split_and_leaves_variables_to_expand():
    args = single_node_args(2, train_program("my config.toml", ["train.milestones=[5, 10]"]))
    assert printable(args) == (
        "torchrun --standalone --nproc-per-node 2 -m finetune_gui train 'my config.toml' --set 'train.milestones=[5, 10]'"
    )
    assert shell_join(["echo", ShellExpr('"$HOST:1"'), "$HOST"]) == "echo \"$HOST:1\" '$HOST'"


@pytest.mark.parametrize(
    "text, host, port",
    [("node1:29400", "node1", 29400), ("10.0.0.5", "10.0.0.5", 29500), ("[fe80::1]:1234", "fe80::1", 1234),
     (" gpu-01.cluster.local:80 ", "gpu-01.cluster.local", 80)],
)  # fmt: skip
def test_an_endpoint_is_host_and_port_with_torchruns_port_by_default(text, host, port):
    endpoint = parse_endpoint(text)
    assert (endpoint.host, endpoint.port) == (host, port)
    assert str(endpoint) == (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")


@pytest.mark.parametrize(
    "text, says",
    [("", "HOST:PORT"), ("node 1:29500", "characters a host name cannot have"), ("node1:abc", "must be a number"),
     ("node1:0", "from 1 to 65535"), ("node1:65536", "from 1 to 65535"), ("[fe80::1", "HOST:PORT"),
     (":29500", "characters a host name cannot have")],
)  # fmt: skip
def test_a_malformed_endpoint_is_refused_naming_the_option_and_the_expected_form(text, says):
    with pytest.raises(LaunchError, match="--master") as caught:
        parse_endpoint(text)
    assert says in str(caught.value)


@pytest.mark.parametrize("value", [0, -2, True, 1.5, "4"])
def test_node_and_process_counts_must_be_whole_numbers_of_at_least_one(value):
    with pytest.raises(LaunchError, match="--nodes must be a whole number of at least 1"):
        check_count(value, "--nodes")
    with pytest.raises(LaunchError, match="--gpus-per-node"):
        multi_node_args(2, value, Endpoint("n", 1), "id", ["train", "c"])
    with pytest.raises(LaunchError, match="--nproc-per-node"):
        single_node_args(value, ["train", "c"])


def test_a_rendezvous_id_with_shell_or_separator_characters_is_refused():
    with pytest.raises(LaunchError, match="rendezvous id 'a b'"):
        multi_node_args(2, 1, Endpoint("n", 1), "a b", ["train", "c"])


def test_the_rendezvous_id_comes_from_the_config_name_alike_on_every_machine():
    assert rdzv_id_for("/shared/exp/My Run.toml") == "finetune-gui-My-Run"
    assert rdzv_id_for("demo-fashion") == "finetune-gui-demo-fashion"


def test_the_slurm_script_runs_one_torchrun_per_node_meeting_at_the_first_host(tmp_path):
    script = slurm_script(4, 8, train_program("/shared/c.toml"), port=29600, job_name="finetune-gui-c",
                          activate="source /shared/venv/bin/activate")  # fmt: skip
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    directives = [line for line in lines if line.startswith("#SBATCH")]
    assert directives == [
        "#SBATCH --job-name=finetune-gui-c", "#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=8", "#SBATCH --output=%x-%j.log",
    ]  # fmt: skip
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    assert max(lines.index(d) for d in directives) < first_command  # sbatch reads no directive after a command
    assert 'head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)' in lines
    assert "source /shared/venv/bin/activate" in lines
    assert lines[-1] == (
        "srun --kill-on-bad-exit=1 torchrun --nnodes 4 --nproc-per-node 8 --rdzv-backend c10d "
        '--rdzv-endpoint "$head_node:29600" --rdzv-id "$SLURM_JOB_ID" -m finetune_gui train /shared/c.toml'
    )
    (tmp_path / "job.sbatch").write_text(script)
    subprocess.run(["bash", "-n", str(tmp_path / "job.sbatch")], check=True)  # the shell can parse it


def test_a_slurm_script_without_an_environment_line_says_where_to_put_one():
    assert "# source /path/to/venv/bin/activate" in slurm_script(1, 1, ["train", "c"])


def test_a_slurm_script_refuses_a_bad_port_or_job_name():
    with pytest.raises(LaunchError, match="--port: the port must be a number from 1 to 65535"):
        slurm_script(2, 1, ["train", "c"], port=0)
    with pytest.raises(LaunchError, match="job name"):
        slurm_script(2, 1, ["train", "c"], job_name="a;b")


def test_a_process_is_under_torchrun_when_rank_and_world_size_are_set():
    assert under_torchrun({"RANK": "0", "WORLD_SIZE": "2"})
    assert not under_torchrun({"RANK": "0"})
    assert not under_torchrun({})


def test_the_gpu_count_is_what_cuda_sees_and_zero_without_it(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert visible_gpu_count() == 0
    assert default_nproc() == 1  # one process on a machine without CUDA
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert visible_gpu_count() == 3
    assert default_nproc() == 3
    monkeypatch.setattr(launch, "visible_gpu_count", lambda: 0)
    assert default_nproc() == 1
