"""Cases 16-18: loading files from strangers.

16  A malicious pickle in a .pth / .ckpt / resume state never runs: a canary file is never created. Checkpoints
    are safetensors; anything pickled loads only with weights_only=True, with no fallback to unsafe loading.
17  A Hugging Face folder that needs remote code is refused unless trust_remote_code is on, and the message
    names the code that would run.
18  Run folders never contain pickled code objects.
"""

from __future__ import annotations

import ast
import json
import pickle
import pickletools
import zipfile
from pathlib import Path

import pytest
import torch

from finetune_gui.config import validate_dict
from finetune_gui.core.checkpoints import list_checkpoints, load_checkpoint
from finetune_gui.core.errors import ModelLoadError, RunStateError
from finetune_gui.core.runs import RunDir
from finetune_gui.core.training.engine import fit, resume
from finetune_gui.core.training.events import EventLog, RunFailed
from finetune_gui.files import sha256_file
from tests.faults.helpers import image_config

REPO = Path(__file__).resolve().parents[2]


class Canary:
    """Unpickling this runs Python code that creates a file."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('pickled code ran')",))


def _evil_state_dict(canary: Path) -> dict:
    from torchvision.models import get_model

    sd = get_model("tinynet", num_classes=3).state_dict()
    sd["_extra"] = Canary(canary)
    return sd


def _pickle_runs_in_an_unsafe_loader(path: Path, canary: Path) -> bool:
    """Control: the file really is malicious (an unsafe load would create the canary)."""
    torch.load(path, map_location="cpu", weights_only=False)
    ran = canary.exists()
    canary.unlink(missing_ok=True)
    return ran


@pytest.fixture(autouse=True)
def _no_escape_hatch(monkeypatch):
    """The user's environment asks torch to load everything unsafely; explicit weights_only=True must still hold."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")


# ---------------------------------------------------------------- 16: pickles


@pytest.mark.parametrize("suffix,legacy", [(".pth", False), (".ckpt", False), (".pt", True), (".bin", False)])
def test_a_malicious_weights_file_is_refused_and_its_code_never_runs(tmp_path, tinynet, images, suffix, legacy):
    canary = tmp_path / "canary"
    evil = tmp_path / f"weights{suffix}"
    torch.save(_evil_state_dict(canary), evil, _use_new_zipfile_serialization=not legacy)
    assert _pickle_runs_in_an_unsafe_loader(evil, canary)

    config = image_config(images, model={"pretrained": True, "weights_path": str(evil)})
    log = EventLog()
    result = fit(config, log, output_dir=tmp_path / "runs")
    assert result.status == "failed"
    assert isinstance(result.error, ModelLoadError)
    assert "refused for safety" in str(result.error)
    assert not canary.exists()


def test_a_malicious_resume_state_is_refused_and_its_code_never_runs(tmp_path, tinynet, images):
    config = image_config(images, train={"epochs": 1})
    result = fit(config, None, output_dir=tmp_path / "runs")
    run = RunDir(result.run_dir)
    (ckpt,) = list_checkpoints(run)
    canary = tmp_path / "canary"
    state = torch.load(ckpt.state, weights_only=True)
    state["rng"] = Canary(canary)
    torch.save(state, ckpt.state)
    assert _pickle_runs_in_an_unsafe_loader(ckpt.state, canary)
    # the attacker also rewrites the hash manifest, so only the unpickler stands in the way
    ckpt.manifest.write_text(
        f"{sha256_file(ckpt.weights)}  {ckpt.weights.name}\n{sha256_file(ckpt.state)}  {ckpt.state.name}\n"
    )

    with pytest.raises(RunStateError, match="unreadable"):
        load_checkpoint(ckpt)
    with pytest.raises(RunStateError, match="nothing to resume from"):
        resume(run.root, EventLog())
    assert not canary.exists()


def test_a_malicious_pickle_in_a_hugging_face_folder_never_runs(tmp_path):
    from tests.factories import tiny_bert_dir

    folder = tiny_bert_dir(tmp_path, num_labels=2)
    from safetensors.torch import load_file

    sd = load_file(str(folder / "model.safetensors"))
    canary = tmp_path / "canary"
    sd["evil"] = Canary(canary)
    (folder / "model.safetensors").unlink()
    torch.save(sd, folder / "pytorch_model.bin")
    assert _pickle_runs_in_an_unsafe_loader(folder / "pytorch_model.bin", canary)
    from tests.conftest import make_reviews_csv

    config = validate_dict(
        {
            "task": {"kind": "text-classification"},
            "data": {"path": str(make_reviews_csv(tmp_path / "r.csv"))},
            "model": {"name": str(folder)},
            "train": {"epochs": 1, "batch_size": 8},
        }
    )
    log = EventLog()
    result = fit(config, log, output_dir=tmp_path / "runs")
    assert not canary.exists()
    assert result.status == "failed" and isinstance(result.error, ModelLoadError), log.events[-1]
    assert "refused for safety" in str(result.error)


def _torch_load_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            base = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            yield node, base, name


def test_no_code_path_loads_pickles_unsafely():
    """Every torch.load in the package passes weights_only=True literally; nothing uses pickle/dill/joblib loads."""
    problems, loads = [], 0
    for py in sorted((REPO / "finetune_gui").rglob("*.py")):
        tree = ast.parse(py.read_text(encoding="utf-8"))
        for node, base, name in _torch_load_calls(tree):
            where = f"{py.relative_to(REPO)}:{node.lineno}"
            if base == "torch" and name == "load":
                loads += 1
                kw = {k.arg: k.value for k in node.keywords}
                value = kw.get("weights_only")
                if not (isinstance(value, ast.Constant) and value.value is True):
                    problems.append(f"{where}: torch.load without weights_only=True")
            if base in ("pickle", "dill", "joblib", "cloudpickle", "marshal") and name in ("load", "loads"):
                problems.append(f"{where}: {base}.{name}")
            if name == "from_pretrained":
                kw = {k.arg: k.value for k in node.keywords}
                value = kw.get("trust_remote_code")
                if isinstance(value, ast.Constant) and value.value is True:
                    problems.append(f"{where}: trust_remote_code=True hard-coded")
    assert loads >= 2, "the scan found no torch.load calls; is it looking in the right place?"
    assert not problems, problems


# ---------------------------------------------------------------- 17: remote code


def _remote_code_folder(tmp_path: Path, where: str) -> tuple[Path, Path]:
    from tests.factories import tiny_bert_dir

    folder = tiny_bert_dir(tmp_path, num_labels=2, name="remote")
    canary = tmp_path / "canary"
    code = (
        f"import pathlib\npathlib.Path({str(canary)!r}).write_text('remote code ran')\n"
        "from transformers import BertForSequenceClassification, BertTokenizerFast\n"
        "class EvilModel(BertForSequenceClassification):\n    pass\n"
        "class EvilTokenizer(BertTokenizerFast):\n    pass\n"
    )
    (folder / "modeling_evil.py").write_text(code, encoding="utf-8")
    name = "config.json" if where == "config" else "tokenizer_config.json"
    cfg = json.loads((folder / name).read_text(encoding="utf-8"))
    if where == "config":
        cfg["auto_map"] = {"AutoModelForSequenceClassification": "modeling_evil.EvilModel"}
    else:
        cfg["auto_map"] = {"AutoTokenizer": [None, "modeling_evil.EvilTokenizer"]}
        cfg.pop("tokenizer_class", None)
    (folder / name).write_text(json.dumps(cfg), encoding="utf-8")
    return folder, canary


@pytest.mark.parametrize("where", ["config", "tokenizer"])
@pytest.mark.parametrize("task", ["text-classification", "causal-lm"])
def test_a_model_that_needs_remote_code_is_refused_and_named(tmp_path, where, task):
    from tests.conftest import make_reviews_csv

    folder, canary = _remote_code_folder(tmp_path, where)
    config = validate_dict(
        {
            "task": {"kind": task},
            "data": {"path": str(make_reviews_csv(tmp_path / "r.csv"))},
            "model": {"name": str(folder)},
            "train": {"epochs": 1, "batch_size": 8},
        }
    )
    log = EventLog()
    result = fit(config, log, output_dir=tmp_path / "runs")
    assert result.status == "failed" and isinstance(result.error, ModelLoadError)
    (failed,) = log.of(RunFailed)
    assert "modeling_evil.py" in failed.message and "trust_remote_code" in failed.message
    assert not canary.exists()


def test_a_cached_hub_model_that_needs_remote_code_is_refused(tmp_path, monkeypatch):
    """The same check for a hub id served from the local Hugging Face cache."""
    import huggingface_hub.constants as hf_constants

    from finetune_gui.core.models.hf import check_remote_code

    folder, canary = _remote_code_folder(tmp_path, "config")
    cache = tmp_path / "hub"
    snap = cache / "models--stranger--evil" / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    for f in folder.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    (cache / "models--stranger--evil" / "refs").mkdir()
    (cache / "models--stranger--evil" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    with pytest.raises(ModelLoadError, match="modeling_evil.py"):
        check_remote_code("stranger/evil", False, trust=False)
    assert not canary.exists()


def test_turning_trust_on_warns_naming_the_code_that_will_run(tmp_path):
    from finetune_gui.core.models.hf import check_remote_code

    folder, _ = _remote_code_folder(tmp_path, "config")
    warning = check_remote_code(str(folder), True, trust=True)
    assert warning is not None and "modeling_evil.py" in warning and "trust_remote_code is on" in warning
    plain = tmp_path / "plain"
    from tests.factories import tiny_bert_dir

    assert check_remote_code(str(tiny_bert_dir(plain, num_labels=2)), True, trust=False) is None


# ---------------------------------------------------------------- 18: no pickled code in run folders


def pickled_globals(data: bytes) -> set[str]:
    """module.name of every global a pickle stream refers to (GLOBAL and STACK_GLOBAL)."""
    found, strings, memo = set(), [], {}
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
        elif op.name in (
            "SHORT_BINUNICODE",
            "BINUNICODE",
            "UNICODE",
            "BINUNICODE8",
            "SHORT_BINSTRING",
            "BINSTRING",
            "STRING",
        ):
            strings.append(arg)
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT") and strings:
            memo[arg] = strings[-1]
        elif op.name == "MEMOIZE" and strings:
            memo[len(memo)] = strings[-1]
        elif op.name in ("BINGET", "LONG_BINGET", "GET") and arg in memo:
            strings.append(memo[arg])
        elif op.name == "STACK_GLOBAL":
            found.add(f"{strings[-2]}.{strings[-1]}" if len(strings) >= 2 else "<unresolved STACK_GLOBAL>")
    return found


def pickles_in(path: Path) -> list[tuple[str, bytes]]:
    """The pickle streams inside a file: a torch zip archive's .pkl members, or the file itself."""
    data = path.read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return [(n, z.read(n)) for n in z.namelist() if n.endswith(".pkl")]
    if data[:1] == b"\x80" and len(data) > 2 and data[1] <= pickle.HIGHEST_PROTOCOL:
        return [(path.name, data)]
    return []


def assert_no_pickled_code(folder: Path) -> dict[str, set[str]]:
    """Every pickle under `folder` refers only to globals torch's weights-only unpickler allows, and loads
    with weights_only=True. Returns the globals found per file (for the caller's own checks)."""
    from torch._weights_only_unpickler import _get_allowed_globals

    allowed = set(_get_allowed_globals())
    found: dict[str, set[str]] = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        streams = pickles_in(f)
        if not streams:
            continue
        names = set().union(*(pickled_globals(s) for _, s in streams))
        found[str(f.relative_to(folder))] = names
        assert names <= allowed, (f, names - allowed)
        torch.load(f, map_location="cpu", weights_only=True)
    return found


def test_the_scanner_catches_pickled_code(tmp_path):
    canary = tmp_path / "canary"
    bad = tmp_path / "bad"
    bad.mkdir()
    torch.save({"x": torch.ones(2), "evil": Canary(canary)}, bad / "thing.pt")
    with pytest.raises(AssertionError, match="exec"):
        assert_no_pickled_code(bad)
    assert not canary.exists()


def test_run_folders_hold_no_pickled_code(tmp_path, tinynet, images):
    from finetune_gui.core.training.events import RunControl, StepMetrics

    config = image_config(images, train={"epochs": 1})
    done = fit(config, None, output_dir=tmp_path / "runs")
    control = RunControl()
    stopped = fit(
        config,
        lambda e: isinstance(e, StepMetrics) and e.step == 3 and control.stop(),
        control,
        output_dir=tmp_path / "runs",
    )
    assert done.status == "completed" and stopped.status == "stopped"
    for run in (done.run_dir, stopped.run_dir):
        found = assert_no_pickled_code(run)
        # pickles only in checkpoint state files; weights are safetensors everywhere
        assert found and all(name.endswith(".state.pt") for name in found), found
        for f in run.rglob("*.safetensors"):
            from safetensors.torch import load_file

            load_file(str(f))
