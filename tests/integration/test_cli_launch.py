"""Many GPUs and machines from the command line: `launch-command` prints what to run, `train --nproc-per-node`
becomes torchrun, and the printed commands really start PyTorch's launcher (tiny `validate` runs, no training)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from finetune_gui.cli import EXIT_CONFIG, EXIT_OK, EXIT_RUN, main
from finetune_gui.core.distributed import launch
from finetune_gui.core.distributed.launch import (
    Endpoint,
    exec_argv,
    multi_node_args,
    single_node_args,
    slurm_script,
)

REPO = Path(__file__).resolve().parents[2]


class Execd(Exception):
    """What the fake os.execv raises: a real exec never returns."""


@pytest.fixture
def execs(monkeypatch) -> list[list[str]]:
    """The argv of each os.execv; nothing is exec'd. Runs as if outside torchrun."""
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    calls: list[list[str]] = []

    def fake_execv(path, argv):
        assert path == argv[0]
        calls.append(list(argv))
        raise Execd

    monkeypatch.setattr(os, "execv", fake_execv)
    return calls


def test_train_with_nproc_per_node_becomes_torchrun_running_the_same_train(execs, capsys):
    with pytest.raises(Execd):
        main(["train", "demo-fashion", "--nproc-per-node", "2", "--set", "train.lr=0.01", "--output", "out", "--quiet"])
    assert execs == [
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "finetune_gui", "train", "demo-fashion", "--set", "train.lr=0.01", "--output", "out", "--quiet"]
    ]  # fmt: skip
    assert "starting 2 training process(es): torchrun --standalone --nproc-per-node 2" in capsys.readouterr().err


def test_a_config_file_reaches_the_ranks_as_an_absolute_path(execs, tmp_path, monkeypatch):
    config = tmp_path / "mine.toml"
    config.write_text((REPO / "presets" / "demo-fashion.toml").read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Execd):
        main(["train", "mine.toml", "--nproc-per-node", "1"])
    assert execs[0][-2:] == ["train", str(config)]


def test_nproc_per_node_auto_starts_one_process_per_visible_gpu(execs, monkeypatch):
    monkeypatch.setattr(launch, "visible_gpu_count", lambda: 3)
    with pytest.raises(Execd):
        main(["train", "demo-fashion", "--nproc-per-node", "auto"])
    assert execs[0][4:6] == ["--nproc-per-node", "3"]


def test_a_bad_config_is_reported_once_before_any_process_starts(execs, capsys):
    assert main(["train", "demo-fashio", "--nproc-per-node", "2"]) == EXIT_CONFIG
    assert execs == []
    assert "unknown preset 'demo-fashio'; did you mean 'demo-fashion'?" in capsys.readouterr().err


def test_a_process_count_below_one_is_a_usage_error(execs, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["train", "demo-fashion", "--nproc-per-node", "0"])
    assert exited.value.code == 2 and execs == []
    assert "--nproc-per-node: give a whole number of at least 1 (got '0')" in capsys.readouterr().err


def test_inside_torchrun_the_option_is_ignored_and_the_rank_trains(execs, monkeypatch):
    import finetune_gui.core.training.engine as engine

    class Trained(Exception):
        pass

    def fake_fit(*args, **kwargs):
        raise Trained

    monkeypatch.setattr(engine, "fit", fake_fit)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(Trained):
        main(["train", "demo-fashion", "--nproc-per-node", "2"])
    assert execs == []


def test_resume_with_nproc_per_node_becomes_torchrun_resuming_the_same_run_folder(execs, tmp_path, monkeypatch):
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Execd):
        main(["resume", "runs/r1", "--nproc-per-node", "4", "--quiet"])
    assert execs == [
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4",
         "-m", "finetune_gui", "resume", str(tmp_path / "runs" / "r1"), "--quiet"]
    ]  # fmt: skip


def test_resuming_a_missing_run_folder_is_refused_before_any_process_starts(execs, tmp_path, capsys):
    assert main(["resume", str(tmp_path / "nope"), "--nproc-per-node", "2"]) == EXIT_RUN
    assert execs == []
    assert "nope: no such run folder" in capsys.readouterr().err


def test_on_windows_torchrun_runs_as_a_child_whose_exit_code_is_the_commands(execs, monkeypatch):
    children = []
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(subprocess, "call", lambda argv: children.append(argv) or 3)
    with pytest.raises(SystemExit) as exited:
        main(["train", "demo-fashion", "--nproc-per-node", "2"])
    assert exited.value.code == 3 and execs == []
    assert children[0][:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def test_launch_command_for_one_machine_prints_a_standalone_torchrun(capsys):
    assert main(["launch-command", "demo-fashion", "--gpus-per-node", "4", "--set", "train.epochs=3"]) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# ")
    assert out[-1] == "torchrun --standalone --nproc-per-node 4 -m finetune_gui train demo-fashion --set train.epochs=3"


def test_launch_command_for_several_machines_prints_one_command_for_all(capsys, tmp_path):
    output = tmp_path / "shared runs"
    args = ["launch-command", "demo-fashion", "--nodes", "2", "--gpus-per-node", "8", "--master", "node1:29400"]
    assert main([*args, "--output", str(output)]) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == (
        "torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint node1:29400 "
        f"--rdzv-id finetune-gui-demo-fashion -m finetune_gui train demo-fashion --output '{output}'"
    )
    assert any("same command on each of the 2 machines" in line for line in out)


def test_launch_command_slurm_prints_an_sbatch_script(capsys):
    args = ["launch-command", "demo-fashion", "--nodes", "3", "--gpus-per-node", "4", "--slurm", "--port", "29400"]
    assert main(args) == EXIT_OK
    script = capsys.readouterr().out
    assert script.startswith("#!/bin/bash\n")
    assert "#SBATCH --nodes=3\n#SBATCH --ntasks-per-node=1\n#SBATCH --gpus-per-node=4\n" in script
    assert script.rstrip().endswith(
        '--rdzv-endpoint "$head_node:29400" --rdzv-id "$SLURM_JOB_ID" -m finetune_gui train demo-fashion'
    )


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--nodes", "2", "--gpus-per-node", "1"], "--nodes 2 needs --master HOST:PORT"),
        (["--nodes", "2", "--gpus-per-node", "1", "--master", "node1:99999"], "from 1 to 65535"),
        (["--nodes", "2", "--gpus-per-node", "1", "--master", "node1:1", "--rdzv-id", "a b"], "rendezvous id 'a b'"),
        (["--slurm", "--gpus-per-node", "1", "--master", "node1:1"], "--slurm finds the first node itself"),
        (["--slurm", "--gpus-per-node", "1", "--port", "0"], "--port: the port must be"),
        (["--slurm", "--gpus-per-node", "1", "--rdzv-id", "x"], "leave out --master and --rdzv-id"),
        (["--gpus-per-node", "1", "--port", "29400"], "--port is for --slurm"),
        (["--gpus-per-node", "1", "--rdzv-id", "x"], "--rdzv-id is for several machines"),
        (["--gpus-per-node", "x"], "--gpus-per-node: give a whole number of at least 1 (got 'x')"),
    ],
)
def test_launch_command_refuses_settings_that_cannot_work_saying_what_to_give(capsys, extra, says):
    try:
        code = main(["launch-command", "demo-fashion", *extra])
    except SystemExit as exited:  # argparse's own refusal of a value
        code = exited.code
    assert code == EXIT_CONFIG
    assert says in capsys.readouterr().err


def test_launch_command_asks_for_gpus_per_node_where_no_gpu_is_visible(capsys, monkeypatch):
    monkeypatch.setattr(launch, "visible_gpu_count", lambda: 0)
    assert main(["launch-command", "demo-fashion"]) == EXIT_CONFIG
    assert "no GPU is visible on this machine: say how many each node has with --gpus-per-node N" in (
        capsys.readouterr().err
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    """This environment as outside torchrun, one thread per process (the launched ranks share two cores)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def test_the_single_machine_command_starts_each_process_under_torchrun(tmp_path):
    argv = exec_argv(single_node_args(2, ["validate", "demo-fashion"]))
    result = subprocess.run(argv, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("demo-fashion: valid (image-classification, model resnet18)") == 2


def test_two_machines_meet_at_the_rendezvous_with_the_same_command(tmp_path):
    args = multi_node_args(2, 1, Endpoint("127.0.0.1", _free_port()), "test-meet", ["validate", "demo-fashion"])
    agents = [
        subprocess.Popen(exec_argv(args), cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [agent.communicate(timeout=120) for agent in agents]
    assert [agent.returncode for agent in agents] == [0, 0], [err for _, err in outputs]
    assert all(out.count("demo-fashion: valid") == 1 for out, _ in outputs)


def test_the_slurm_script_runs_with_srun_and_scontrol_as_a_cluster_would_call_them(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(  # `show hostnames LIST` prints one host per line
        '#!/bin/sh\n[ "$*" = "show hostnames node[1-2]" ] || exit 9\necho 127.0.0.1\necho node2\n'
    )
    (bin_dir / "srun").write_text('#!/bin/sh\nwhile [ "${1#--}" != "$1" ]; do shift; done\nexec "$@"\n')  # one node
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    script = tmp_path / "job.sbatch"
    script.write_text(slurm_script(1, 2, ["validate", "demo-fashion"], port=_free_port(), activate="true"))
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = _env(PATH=path, SLURM_JOB_NODELIST="node[1-2]", SLURM_JOB_ID="4242")
    result = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("demo-fashion: valid") == 2
