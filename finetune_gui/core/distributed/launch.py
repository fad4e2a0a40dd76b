"""torchrun command lines for a run on several GPUs or machines, and a SLURM batch script that runs one.

We write no launcher and no process manager: these pure functions build the argv of PyTorch's own launcher,
torchrun (torch.distributed.run, elastic launch with c10d rendezvous), which then starts one process per GPU,
each running `python -m finetune_gui train CONFIG`. The CLI prints them (`launch-command`) or execs them
(`train --nproc-per-node N`).

Node ranks: with the c10d rendezvous backend torchrun assigns each machine its rank when they meet (torchrun's
`--node-rank` is read only by the static backend and ignored with a warning otherwise), so every machine runs
the same command; the machine named in `--rdzv-endpoint` hosts the rendezvous store.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_PORT",
    "Endpoint",
    "LaunchError",
    "ShellExpr",
    "check_count",
    "check_port",
    "default_nproc",
    "exec_argv",
    "multi_node_args",
    "parse_endpoint",
    "printable",
    "rdzv_id_for",
    "resume_program",
    "shell_join",
    "single_node_args",
    "slurm_script",
    "train_program",
    "under_torchrun",
    "visible_gpu_count",
]

DEFAULT_PORT = 29500  # torchrun's own default master port
TORCHRUN = "torchrun"
TORCHRUN_MODULE = "torch.distributed.run"  # what `torchrun` runs; exec'd as `python -m` so the same venv is used
PACKAGE_MODULE = "finetune_gui"
_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_IPV6_RE = re.compile(r"^[0-9A-Fa-f:.]+$")
_ID_RE = re.compile(r"^[A-Za-z0-9._-]+$")


class LaunchError(ValueError):
    """A launch setting that cannot work; the message names the option and says what to give instead."""


class ShellExpr(str):
    """Shell text kept unquoted in a printed command, so the shell expands it (e.g. `"$SLURM_JOB_ID"`)."""


@dataclass(frozen=True)
class Endpoint:
    """The rendezvous address: the machine that hosts torchrun's c10d store, and its port."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 needs brackets before the port
        return f"{host}:{self.port}"


def check_count(value: int, option: str) -> int:
    """`value` as a whole number >= 1, else LaunchError naming `option`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LaunchError(f"{option} must be a whole number of at least 1 (got {value!r})")
    return value


def check_port(value: int, option: str = "port") -> int:
    """A TCP port number, 1 to 65535."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise LaunchError(f"{option}: the port must be a number from 1 to 65535 (got {value!r}); torchrun's is 29500")
    return value


def parse_endpoint(text: str, option: str = "--master") -> Endpoint:
    """HOST:PORT (or HOST alone, port 29500; IPv6 as [ADDR]:PORT) as an Endpoint; LaunchError when malformed."""
    text = (text or "").strip()
    usage = (
        f"{option}: give the first machine's address as HOST:PORT, e.g. node1:{DEFAULT_PORT} or 10.0.0.5:{DEFAULT_PORT}"
    )
    if not text:
        raise LaunchError(usage)
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not host or not _IPV6_RE.match(host) or (rest and not rest.startswith(":")):
            raise LaunchError(f"{usage} (got {text!r})")
        port_text = rest[1:] if rest else str(DEFAULT_PORT)
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, str(DEFAULT_PORT)
        if not _HOST_RE.match(host):
            raise LaunchError(f"{usage} (got {text!r}; the host has characters a host name cannot have)")
    if not port_text.isdigit():
        raise LaunchError(f"{usage} (got {text!r}; the port must be a number)")
    return Endpoint(host, check_port(int(port_text), option))


def train_program(config: str, sets: Sequence[str] = (), output: str | None = None, quiet: bool = False) -> list[str]:
    """The `finetune_gui` arguments each rank runs: `train CONFIG [--set ...] [--output DIR] [--quiet]`."""
    program = ["train", config]
    for override in sets:
        program += ["--set", override]
    if output:
        program += ["--output", output]
    if quiet:
        program.append("--quiet")
    return program


def resume_program(run: str, quiet: bool = False) -> list[str]:
    """The `finetune_gui` arguments each rank runs to continue a run: `resume RUN [--quiet]`."""
    return ["resume", run, *(["--quiet"] if quiet else [])]


def single_node_args(nproc_per_node: int, program: Sequence[str]) -> list[str]:
    """torchrun's arguments for one machine: `--standalone` picks a free local port, so jobs never collide."""
    nproc = check_count(nproc_per_node, "--nproc-per-node")
    return ["--standalone", "--nproc-per-node", str(nproc), "-m", PACKAGE_MODULE, *program]


def multi_node_args(
    nodes: int, nproc_per_node: int, endpoint: Endpoint | ShellExpr, rdzv_id: str, program: Sequence[str]
) -> list[str]:
    """torchrun's arguments for `nodes` machines meeting at `endpoint` (c10d rendezvous), the same on each."""
    check_count(nodes, "--nodes")
    check_count(nproc_per_node, "--gpus-per-node")
    if not isinstance(rdzv_id, ShellExpr) and not _ID_RE.match(rdzv_id or ""):
        raise LaunchError(f"rendezvous id {rdzv_id!r}: use letters, digits, '.', '_' and '-' only")
    endpoint_text = endpoint if isinstance(endpoint, ShellExpr) else str(endpoint)
    return [
        "--nnodes", str(nodes),
        "--nproc-per-node", str(nproc_per_node),
        "--rdzv-backend", "c10d",
        "--rdzv-endpoint", endpoint_text,
        "--rdzv-id", rdzv_id,
        "-m", PACKAGE_MODULE, *program,
    ]  # fmt: skip


def exec_argv(torchrun_args: Sequence[str], python: str | None = None) -> list[str]:
    """The argv to exec: `python -m torch.distributed.run ARGS` with this interpreter, so ranks use this venv."""
    return [python or sys.executable, "-m", TORCHRUN_MODULE, *torchrun_args]


def shell_join(argv: Sequence[str]) -> str:
    """`argv` as one shell line: every word quoted where needed, ShellExpr words left for the shell to expand."""
    return " ".join(word if isinstance(word, ShellExpr) else shlex.quote(word) for word in argv)


def printable(torchrun_args: Sequence[str]) -> str:
    """The command a person copies: `torchrun ARGS`."""
    return shell_join([TORCHRUN, *torchrun_args])


def rdzv_id_for(config: str) -> str:
    """A rendezvous id every machine derives alike from the config's name: `finetune-gui-<stem>`."""
    stem = os.path.basename(str(config).rstrip("/\\"))
    stem = stem[: -len(".toml")] if stem.endswith(".toml") else stem
    return "finetune-gui-" + (re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-") or "run")


def slurm_script(
    nodes: int,
    gpus_per_node: int,
    program: Sequence[str],
    port: int = DEFAULT_PORT,
    job_name: str = "finetune-gui",
    activate: str | None = None,
) -> str:
    """An sbatch script: one task per node, each `srun torchrun` meeting at the allocation's first host.

    `activate` is a shell line that enters the Python environment (e.g. `source /venv/bin/activate`); without
    it the script says where to put one.
    """
    check_port(port, "--port")
    if not _ID_RE.match(job_name):
        raise LaunchError(f"job name {job_name!r}: use letters, digits, '.', '_' and '-' only")
    args = multi_node_args(
        nodes, gpus_per_node, ShellExpr(f'"$head_node:{port}"'), ShellExpr('"$SLURM_JOB_ID"'), program
    )
    environment = activate or "# source /path/to/venv/bin/activate   # the environment finetune-gui is installed in"
    return "\n".join(
        [
            "#!/bin/bash",
            f"# finetune-gui on {nodes} node(s) x {gpus_per_node} GPU(s), started by torchrun. Submit: sbatch THIS_FILE",
            "# Every node reads the same config, data and Python environment; the output folder must be on a",
            "# filesystem all nodes share (rank 0 alone writes the run folder).",
            f"#SBATCH --job-name={job_name}",
            f"#SBATCH --nodes={nodes}",
            "#SBATCH --ntasks-per-node=1",
            f"#SBATCH --gpus-per-node={gpus_per_node}",
            "#SBATCH --output=%x-%j.log",
            "set -eu",
            environment,
            "# export NCCL_SOCKET_IFNAME=eth0   # if NCCL picks the wrong network: the interface the nodes share",
            "# The allocation's first host holds the rendezvous; torchrun numbers the nodes when they meet.",
            'head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
            shell_join(["srun", "--kill-on-bad-exit=1", TORCHRUN, *args]),
            "",
        ]
    )


def visible_gpu_count() -> int:
    """CUDA GPUs this process can see (honours CUDA_VISIBLE_DEVICES); 0 without CUDA."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def default_nproc() -> int:
    """Processes per machine when none is given: one per visible GPU, one on a machine without CUDA."""
    return max(1, visible_gpu_count())


def under_torchrun(environ: Mapping[str, str] | None = None) -> bool:
    """True inside a process torchrun started (it sets RANK and WORLD_SIZE for each)."""
    env = os.environ if environ is None else environ
    return "RANK" in env and "WORLD_SIZE" in env


def command_for(config: str, nodes: int, gpus_per_node: int, master: str, output: str | None = None) -> str:
    """The torchrun line that trains `config` (an absolute path) on `nodes` machines of `gpus_per_node` GPUs,
    meeting at `master` (HOST:PORT; unused for one machine): what the GUI's "Copy launch command" gives."""
    program = train_program(config, (), output)
    if nodes == 1:
        return printable(single_node_args(gpus_per_node, program))
    endpoint = parse_endpoint(master, "First machine")  # the window's field, not the CLI's --master
    return printable(multi_node_args(nodes, gpus_per_node, endpoint, rdzv_id_for(config), program))
