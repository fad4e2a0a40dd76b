"""`finetune-gui baseline CONFIG`: a linear probe on cached features, reported next to always answering the
most common class, saved as a run folder that `finetune-gui runs` lists like any other."""

from __future__ import annotations

import json
from pathlib import Path

import tomli_w

from finetune_gui.cli import EXIT_CONFIG, EXIT_OK, main
from tests.conftest import make_image_folder
from tests.faults.helpers import image_sections


def _config(tmp_path: Path, images: Path, **overrides) -> Path:
    sections = image_sections(images, model={"freeze": "none"}, **overrides)  # the probe freezes it anyway
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(sections), encoding="utf-8")
    return path


def test_the_baseline_reports_the_probe_next_to_the_majority_class_as_a_run(tmp_path, tinynet, capsys):
    images = make_image_folder(tmp_path / "images", per_class=8)
    for k, picture in enumerate(sorted((images / "circle").iterdir())):  # circles twice as common as the others
        (images / "circle" / f"copy{k}.png").write_bytes(picture.read_bytes())
    config = _config(tmp_path, images)
    assert main(["baseline", str(config), "--output", str(tmp_path / "runs"), "--quiet", "--epochs", "8"]) == EXIT_OK
    out = capsys.readouterr()
    assert "linear probe, val: accuracy" in out.out and "linear probe, test: accuracy" in out.out
    assert "(the most common class), accuracy: val" in out.out

    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert run.name.startswith("fault-baseline")
    record = json.loads((run / "baseline.json").read_text())
    majority = record["majority_class"]
    assert majority["label"] == "circle"
    evaluation = json.loads((run / "evaluation.json").read_text())  # the test split, per class
    circles = next(row["support"] for row in evaluation["per_class"] if row["label"] == "circle")
    assert majority["accuracy"]["test"] == circles / evaluation["num_samples"]
    assert record["test"]["test_accuracy"] == evaluation["accuracy"]
    log = (run / "log.txt").read_text()
    assert "feature cache: on" in log  # the probe turned augmentation off, so its features are cached
    config_text = (run / "config.toml").read_text()
    assert 'freeze = "head-only"' in config_text and "random_resized_crop = false" in config_text

    assert main(["runs", str(tmp_path / "runs")]) == EXIT_OK
    assert run.name in capsys.readouterr().out


def test_a_language_model_has_no_baseline(tmp_path, capsys):
    path = tmp_path / "lm.toml"
    path.write_text(tomli_w.dumps({"task": {"kind": "causal-lm"}, "data": {"path": "corpus.txt"},
                                   "model": {"name": "gpt2"}}), encoding="utf-8")  # fmt: skip
    assert main(["baseline", str(path)]) == EXIT_CONFIG
    assert "a baseline probe needs a classification or regression task" in capsys.readouterr().err
