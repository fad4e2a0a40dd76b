"""Training on several GPUs or machines with torchrun: `finetune-gui launch-command` prints the command (or a
SLURM batch script) to copy, and `finetune-gui train CONFIG --nproc-per-node N` (or `resume RUN --nproc-per-node
N`) execs torchrun itself.
The command lines come from core/distributed/launch.py; see docs/distributed.md."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from finetune_gui.config import load_config
from finetune_gui.core.distributed.launch import (
    DEFAULT_PORT,
    LaunchError,
    default_nproc,
    exec_argv,
    multi_node_args,
    parse_endpoint,
    printable,
    rdzv_id_for,
    resume_program,
    single_node_args,
    slurm_script,
    train_program,
    under_torchrun,
    visible_gpu_count,
)
from finetune_gui.paths import expand_user

EXIT_USAGE = 2  # the CLI's exit code for bad config or usage


def count(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"give a whole number of at least 1 (got {text!r})")
    return value


def nproc(text: str) -> int | str:
    """argparse type for --nproc-per-node: a whole number >= 1, or `auto` (one per visible GPU)."""
    return "auto" if text.strip().lower() == "auto" else count(text)


def add_commands(sub) -> None:
    """Add `launch-command` to the `finetune-gui` parser's subparsers, and `--nproc-per-node` to the `train` and
    `resume` parsers already there."""
    for command in ("train", "resume"):
        sub.choices[command].add_argument(
            "--nproc-per-node",
            type=nproc,
            metavar="N|auto",
            help="train with N processes on this machine (one per GPU; auto = every visible GPU) by starting "
            "torchrun with these same arguments; ignored inside a process torchrun started",
        )
    p = sub.add_parser(
        "launch-command", help="print the torchrun command (or SLURM script) that trains on many GPUs or machines"
    )
    p.add_argument("config", help="config TOML file, or the name of a preset (see `finetune-gui presets`)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    p.add_argument("--output", help="folder to make the run folder in; on a filesystem every machine shares")
    p.add_argument("--nodes", type=count, default=1, help="machines (default 1)")
    p.add_argument("--gpus-per-node", type=count, help="processes per machine (default: the GPUs visible here)")
    p.add_argument("--master", metavar="HOST:PORT", help="more than one node: the first machine's address and a port")
    p.add_argument("--slurm", action="store_true", help="print an sbatch script instead (nodes found by SLURM)")
    p.add_argument("--port", type=int, help=f"--slurm: rendezvous port on the first node (default {DEFAULT_PORT})")
    p.add_argument("--rdzv-id", help="rendezvous id shared by the machines (default: finetune-gui-<config name>)")
    p.set_defaults(func=cmd_launch_command)


def checked_config(config: str, sets: list[str]) -> str:
    """The config as the other processes should name it: an absolute path for a file, the name for a preset.

    Loads it (with the overrides) first, so a bad config is reported once here, not by every rank.
    """
    from finetune_gui.presets import find_preset

    load_config(find_preset(config), sets)
    as_path = expand_user(config)
    return str(as_path.resolve()) if as_path.is_file() else config


def checked_run(run: str) -> str:
    """The run folder as an absolute path; RunStateError when it is not a folder."""
    from finetune_gui.core.errors import RunStateError

    folder = expand_user(run)
    if not folder.is_dir():
        raise RunStateError(f"{run}: no such run folder (give the folder `train` made, e.g. runs/NAME-DATE-TIME)")
    return str(folder.resolve())


def speaks() -> bool:
    """Whether this process prints a run's summary: alone, or as torchrun's rank 0 (it speaks for the job)."""
    return not under_torchrun() or os.environ.get("RANK") == "0"


def prints_findings(args, result) -> bool:
    """Whether `train` prints the run's diagnosis: a run that got that far, not --quiet, and this process speaks."""
    return result.status != "failed" and not args.quiet and speaks() and (result.run_dir / "diagnostics.json").is_file()


def exec_torchrun_if_asked(args) -> None:
    """`train`/`resume` with --nproc-per-node outside torchrun: replace this process with torchrun running the
    same command, checked first (a bad config or run folder is reported once, not by every rank).

    Returns (doing nothing) when the option is absent or this process is already one of torchrun's ranks.
    """
    wanted = getattr(args, "nproc_per_node", None)
    if wanted is None or under_torchrun():
        return
    if args.command == "resume":
        program = resume_program(checked_run(args.run), args.quiet)
    else:
        program = train_program(checked_config(args.config, args.set), args.set, args.output, args.quiet)
    processes = default_nproc() if wanted == "auto" else wanted
    torchrun_args = single_node_args(processes, program)
    print(f"starting {processes} training process(es): {printable(torchrun_args)}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    if sys.platform == "win32":  # Windows has no exec: os.execv starts a new process and returns to the shell
        raise SystemExit(subprocess.call(exec_argv(torchrun_args)))
    argv = exec_argv(torchrun_args)
    os.execv(argv[0], argv)


def activate_line() -> str | None:
    """`source <venv>/bin/activate` when this runs from a virtual environment, else None."""
    script = Path(sys.prefix) / "bin" / "activate"
    return f"source {shlex.quote(str(script))}" if sys.prefix != sys.base_prefix and script.is_file() else None


def cmd_launch_command(args) -> int:
    try:
        print(launch_text(args), end="")
    except LaunchError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def launch_text(args) -> str:
    """What `launch-command` prints: comment lines saying where to run it, then the command; or the script."""
    config = checked_config(args.config, args.set)
    output = os.path.abspath(expand_user(args.output)) if args.output else None
    program = train_program(config, args.set, output)
    gpus = args.gpus_per_node or visible_gpu_count()
    if not gpus:
        raise LaunchError("no GPU is visible on this machine: say how many each node has with --gpus-per-node N")
    if args.slurm:
        if args.master or args.rdzv_id:
            raise LaunchError(
                "--slurm finds the first node itself and uses the job id: leave out --master and --rdzv-id "
                "(choose the port with --port)"
            )
        port = DEFAULT_PORT if args.port is None else args.port
        return slurm_script(args.nodes, gpus, program, port, rdzv_id_for(config), activate_line())
    if args.port is not None:
        raise LaunchError("--port is for --slurm; for several machines give the port in --master HOST:PORT")
    if args.nodes == 1 and not args.master:
        if args.rdzv_id:
            raise LaunchError("--rdzv-id is for several machines (with --master); one machine picks its own")
        return (
            "# on the machine with the GPUs, in the Python environment finetune-gui is installed in:\n"
            + printable(single_node_args(gpus, program))
            + "\n"
        )
    if not args.master:
        raise LaunchError(
            f"--nodes {args.nodes} needs --master HOST:PORT: the first machine's host name or IP address and a "
            f"port the others can reach (e.g. --master node1:{DEFAULT_PORT})"
        )
    endpoint = parse_endpoint(args.master)
    command = multi_node_args(args.nodes, gpus, endpoint, args.rdzv_id or rdzv_id_for(config), program)
    return (
        f"# run this same command on each of the {args.nodes} machines, in any order (they wait up to 10 minutes\n"
        f"# for each other); {endpoint.host} must be one of them, and port {endpoint.port} open between them.\n"
        "# torchrun numbers the machines itself when they meet. Config, data and output folder must be at the\n"
        "# same paths on every machine (a shared filesystem).\n" + printable(command) + "\n"
    )
