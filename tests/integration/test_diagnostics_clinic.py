"""A clinic of sick runs: each is small enough for a CPU, trains through the real engine, and must be diagnosed
with its illness (issue 14). The checks are the engine's default ones, so removing one fails its test."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from finetune_gui.core.diagnostics.findings import Finding
from finetune_gui.core.diagnostics.hook import DiagnosticsHook
from finetune_gui.core.diagnostics.remedies import apply_remedy
from finetune_gui.core.training.engine import fit
from finetune_gui.core.training.events import Diagnosis, EventLog, LogMessage, RunFailed
from tests.conftest import make_image_folder
from tests.faults.helpers import image_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _register(name: str, build) -> None:
    """A model for this module's runs in torchvision's registry (built with random weights)."""
    from torchvision.models import _api

    def factory(*, weights=None, progress: bool = True, num_classes: int = 10, **kwargs: Any):
        return build(num_classes)

    _api.BUILTIN_MODELS[name] = factory


@pytest.fixture(scope="module", autouse=True)
def sick_models():
    from torch import nn
    from torchvision.models import _api

    class Mlp(nn.Module):
        def __init__(self, layers: list[nn.Module], width: int, num_classes: int):
            super().__init__()
            self.features = nn.Sequential(nn.Flatten(), *layers)
            self.fc = nn.Linear(width, num_classes)

        def forward(self, x):
            return self.fc(self.features(x))

    def sigmoid_net(n: int) -> nn.Module:  # twelve saturating layers: the input side hears almost nothing
        layers = [nn.Linear(3 * 20 * 20, 32), nn.Sigmoid()]
        for _ in range(11):
            layers += [nn.Linear(32, 32), nn.Sigmoid()]
        return Mlp(layers, 32, n)

    def dead_net(n: int) -> nn.Module:  # every ReLU starts below zero for every input
        first = nn.Linear(3 * 20 * 20, 64)
        nn.init.constant_(first.bias, -50.0)
        return Mlp([first, nn.ReLU()], 64, n)

    def wide_net(n: int) -> nn.Module:  # enough weights to learn 40 noise images by heart
        return Mlp([nn.Linear(3 * 20 * 20, 256), nn.ReLU()], 256, n)

    names = {"sigmoidnet": sigmoid_net, "deadnet": dead_net, "widenet": wide_net}
    for name, build in names.items():
        _register(name, build)
    from tests.faults.helpers import register_tinynet, unregister_tinynet

    added = register_tinynet()
    yield
    for name in names:
        _api.BUILTIN_MODELS.pop(name, None)
    if added:
        unregister_tinynet()


def run(tmp_path: Path, images: Path, net: str = "tinynet", *, hooks=None, remedy=None,
        **sections: dict) -> tuple[list[Finding], EventLog]:  # fmt: skip
    """Train (with `remedy` applied to the config when given), and return the findings saved in the run folder
    (or, for a failed run, the last ones said)."""
    sections.setdefault("model", {})
    sections["model"] = {"name": net, "pretrained": False, "freeze": "none", **sections["model"]}
    sections["train"] = {"log_every": 1, **sections.get("train", {})}
    sections["data"] = {"image_size": 20, **sections.get("data", {})}  # the MLPs take 20×20 pictures
    sections.setdefault("early_stopping", {"enabled": False})
    config = image_config(images, **sections)
    if remedy is not None:
        config = apply_remedy(config, remedy)
    events = EventLog()
    result = fit(config, events, output_dir=tmp_path / "runs", hooks=hooks)
    said = [e for e in events.events if isinstance(e, Diagnosis)]
    if result.status == "failed":
        return [Finding.from_dict(f) for f in said[-1].findings] if said else [], events
    data = json.loads((result.run_dir / "diagnostics.json").read_text(encoding="utf-8"))
    return [Finding.from_dict(f) for f in data["findings"]], events


def ids(findings: list[Finding]) -> set[str]:
    return {f.id for f in findings}


def noise_images(root: Path, n: int, classes=("a", "b"), seed: int = 0) -> Path:
    """Random pictures with random labels: nothing to learn but the pictures themselves."""
    rng = random.Random(seed)
    for i in range(n):
        folder = root / rng.choice(classes)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = bytes(rng.randrange(256) for _ in range(20 * 20 * 3))
        Image.frombytes("RGB", (20, 20), pixels).save(folder / f"{i}.png")
    return root


def test_a_deep_sigmoid_mlp_has_vanishing_gradients(tmp_path, image_folder):
    findings, _ = run(tmp_path, image_folder, "sigmoidnet", train={"epochs": 2})
    (f,) = [f for f in findings if f.id == "vanishing-gradients"]
    assert f.evidence["first_to_last_gradient"] < 1e-3
    assert len(f.series["gradient_flow"]) >= 12  # one point per trainable block


def test_a_learning_rate_of_10_is_called_too_high_before_the_run_turns_nan(tmp_path, image_folder):
    findings, events = run(tmp_path, image_folder, train={"epochs": 3, "lr": 10.0, "optimizer": "sgd"})
    assert "lr-too-high" in ids(findings)
    kinds = [type(e) for e in events.events]
    first = kinds.index(Diagnosis)
    if RunFailed in kinds:  # it diverged: the diagnosis came first
        assert first < kinds.index(RunFailed)
    (f,) = [f for f in findings if f.id == "lr-too-high"]
    assert f.remedies[0].changes == {"train.lr": 0.001}

    fixed, _ = run(tmp_path / "again", image_folder, train={"epochs": 3, "lr": 10.0, "optimizer": "sgd"},
                   remedy=f.remedies[0])  # fmt: skip
    assert "lr-too-high" not in ids(fixed)


def test_the_lr_finders_value_is_the_remedy_when_it_was_run(tmp_path, image_folder):
    findings, _ = run(tmp_path, image_folder, train={"epochs": 2, "lr": 10.0, "optimizer": "sgd"},
                      hooks=(DiagnosticsHook(suggested_lr=3e-4),))  # fmt: skip
    (f,) = [f for f in findings if f.id == "lr-too-high"]
    assert f.remedies[0].changes == {"train.lr": 3e-4} and "LR finder" in f.remedies[0].label


def test_relus_pushed_below_zero_are_dead_units(tmp_path, image_folder):
    findings, _ = run(tmp_path, image_folder, "deadnet", train={"epochs": 2})
    (f,) = [f for f in findings if f.id == "dead-units"]
    assert f.evidence["dead_share/features.2"] == 1.0


def test_40_samples_for_30_epochs_overfit_and_the_remedy_trains_without_it(tmp_path):
    images = noise_images(tmp_path / "noise", 40)
    findings, events = run(tmp_path, images, "widenet", train={"epochs": 30, "lr": 3e-3, "batch_size": 8})
    (f,) = [f for f in findings if f.id == "overfitting"]
    last_said = events.of(Diagnosis)[-1].findings  # what the window shows: the numbers of the end, not of the start
    assert [d["evidence"] for d in last_said if d["id"] == "overfitting"] == [f.evidence]
    assert f.severity == "warning" and f.evidence["last_val_loss"] > f.evidence["best_val_loss"]
    assert f.evidence["seconds_early_stopping_saves"] > 0
    stop_early = next(r for r in f.remedies if "early_stopping.enabled" in r.changes)
    shorter = next(r for r in f.remedies if "train.epochs" in r.changes)

    config = image_config(images, data={"image_size": 20}, model={"name": "widenet", "pretrained": False, "freeze": "none"},
                          train={"epochs": 30, "lr": 3e-3, "batch_size": 8, "log_every": 1},
                          early_stopping={"enabled": False})  # fmt: skip
    assert apply_remedy(config, stop_early).early_stopping.enabled
    fixed = apply_remedy(config, shorter)
    assert fixed.train.epochs == shorter.changes["train.epochs"] < 30
    again = fit(fixed, output_dir=tmp_path / "again")
    data = json.loads((again.run_dir / "diagnostics.json").read_text(encoding="utf-8"))
    assert "overfitting" not in {f["id"] for f in data["findings"]}


def test_a_learning_rate_of_1e_8_is_called_too_low(tmp_path, image_folder):
    findings, _ = run(tmp_path, image_folder, train={"epochs": 2, "lr": 1e-8})
    (f,) = [f for f in findings if f.id == "lr-too-low"]
    assert f.evidence["update_ratio"] < 1e-5
    assert f.remedies[0].changes["train.lr"] > 1e-8


def test_head_only_on_random_weights_has_nothing_to_transfer(tmp_path, image_folder):
    findings, events = run(tmp_path, image_folder, model={"freeze": "head-only"}, train={"epochs": 1})
    assert findings[0].id == "nothing-to-transfer" and findings[0].severity == "critical"
    assert {"model.freeze": "none"} in [r.changes for r in findings[0].remedies]


def test_a_class_the_model_never_predicts_is_named(tmp_path):
    images = make_image_folder(tmp_path / "images", classes=("circle", "square", "stripes"), per_class=2)
    make_image_folder(tmp_path / "more", classes=("circle",), per_class=40)
    for p in (tmp_path / "more" / "circle").iterdir():
        shutil.copy(p, images / "circle" / f"more-{p.name}")
    findings, _ = run(
        tmp_path, images, data={"test_fraction": 0.3, "val_fraction": 0.2}, train={"epochs": 2, "lr": 1e-4}
    )
    assert {"class-imbalance", "never-predicted"} <= ids(findings)
    (f,) = [f for f in findings if f.id == "class-imbalance"]
    assert {"train.class_weights": "balanced"} in [r.changes for r in f.remedies]


def test_the_same_files_in_training_and_evaluation_are_leakage(tmp_path):
    images = make_image_folder(tmp_path / "images", per_class=8)
    for p in sorted(images.rglob("*.png")):
        shutil.copy(p, p.with_name(f"copy-of-{p.name}"))
    findings, _ = run(tmp_path, images, train={"epochs": 1})
    (f,) = [f for f in findings if f.id == "leakage"]
    assert f.evidence["duplicates/train/val"] + f.evidence.get("duplicates/train/test", 0) > 0


def test_a_healthy_run_stays_quiet(tmp_path, image_folder):
    findings, events = run(tmp_path, image_folder, train={"epochs": 3}, early_stopping={"enabled": True})
    assert [f.line() for f in findings if f.severity != "info"] == []
    assert [e.text for e in events.of(LogMessage) if e.level == "warning" and "diagnosis" in e.text] == []


def test_the_command_line_says_the_findings_after_training_and_reads_them_back(tmp_path, image_folder, capsys):
    from finetune_gui.cli import EXIT_OK, EXIT_RUN, main
    from finetune_gui.config import validate_dict
    from tests.faults.helpers import image_sections

    sections = image_sections(image_folder, model={"freeze": "head-only", "pretrained": False}, train={"epochs": 1})
    config = tmp_path / "sick.toml"
    config.write_text(validate_dict(sections).to_toml(), encoding="utf-8")
    assert main(["train", str(config), "--output", str(tmp_path / "runs")]) == EXIT_OK
    err = capsys.readouterr().err
    assert "[critical] Nothing to transfer" in err and 'remedy: Train every layer: --set model.freeze="none"' in err

    run_dir = next((tmp_path / "runs").iterdir())
    assert main(["diagnose", str(run_dir), "--json"]) == EXIT_OK
    said = json.loads(capsys.readouterr().out)
    assert said["findings"][0]["id"] == "nothing-to-transfer"

    assert main(["diagnose", str(image_folder)]) == EXIT_RUN
    assert "check the folder is a run folder" in capsys.readouterr().err

    (run_dir / "diagnostics.json").unlink()  # a run that failed before its first step has none: it says why
    (run_dir / "status.json").write_text(json.dumps({"state": "failed", "message": "weights cannot be had"}))
    assert main(["diagnose", str(run_dir)]) == EXIT_RUN
    assert "failed before its first step, so there is nothing to diagnose: weights cannot be had" in (
        capsys.readouterr().err
    )


def test_a_whole_pretrained_transformer_at_a_heads_learning_rate_is_warned(tmp_path, reviews_csv):
    from finetune_gui.config import validate_dict
    from tests.factories import tiny_bert_dir

    config = validate_dict(
        {
            "task": {"kind": "text-classification"},
            "data": {"path": str(reviews_csv), "max_length": 16},
            "model": {"name": str(tiny_bert_dir(tmp_path)), "freeze": "none"},
            "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3},
        }
    )
    result = fit(config, output_dir=tmp_path / "runs")
    data = json.loads((result.run_dir / "diagnostics.json").read_text(encoding="utf-8"))
    (f,) = [f for f in data["findings"] if f["id"] == "transformer-lr"]
    assert f["remedies"][0]["changes"] == {"train.lr": 5e-05}
