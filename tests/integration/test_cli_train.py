"""End to end through the `finetune-gui` command: every task kind trains on tiny local models and data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w

from finetune_gui.cli import main
from tests.conftest import make_image_folder, make_reviews_csv


def write_config(path: Path, **sections) -> Path:
    path.write_text(tomli_w.dumps(sections), encoding="utf-8")
    return path


def only_run(output: Path) -> Path:
    runs = [p for p in output.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


TINY_TRAIN = {"epochs": 2, "batch_size": 8, "lr": 1e-3, "log_every": 1, "seed": 3}


def image_config(tmp_path: Path, **overrides) -> Path:
    make_image_folder(tmp_path / "images")
    sections = {
        "name": "tiny-image",
        "task": {"kind": "image-classification"},
        "data": {"path": "images", "image_size": 32, "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": "resnet18", "allow_random_init": True, "freeze": "none"},
        "train": dict(TINY_TRAIN),
    }
    for key, value in overrides.items():
        sections.setdefault(key, {}).update(value)
    return write_config(tmp_path / "image.toml", **sections)


def test_image_classification_trains_and_writes_a_complete_run_folder(tmp_path, capsys):
    cfg = image_config(tmp_path)
    assert main(["train", str(cfg), "--output", str(tmp_path / "runs")]) == 0
    run = only_run(tmp_path / "runs")
    for name in (
        "config.toml",
        "labels.json",
        "environment.json",
        "metrics.jsonl",
        "metrics.csv",
        "log.txt",
        "model.safetensors",
        "evaluation.json",
        "status.json",
        "checkpoints/best.safetensors",
    ):
        assert (run / name).exists(), name
    labels = json.loads((run / "labels.json").read_text())
    assert labels == {"task": "image-classification", "labels": ["circle", "square", "stripes"]}
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert len(evaluation["confusion_matrix"]) == 3
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in epochs if "split" not in r] == [1, 2]
    assert json.loads((run / "status.json").read_text())["state"] == "completed"
    err = capsys.readouterr().err
    assert "random weights" in err  # offline: says plainly that pretrained weights were unavailable
    assert "test_accuracy" in err


def test_without_random_init_offline_weights_fail_with_a_clear_message(tmp_path, capsys):
    cfg = image_config(tmp_path, model={"allow_random_init": False})
    assert main(["train", str(cfg), "--output", str(tmp_path / "runs")]) == 4
    err = capsys.readouterr().err
    assert "resnet18-f37072fd.pth" in err


def test_multilabel_and_regression_from_csv_manifests(tmp_path):
    make_image_folder(tmp_path / "images")
    pics = sorted((tmp_path / "images").rglob("*.png"))
    ml = ["path,label,label2"]
    reg = ["path,value"]
    for i, p in enumerate(pics):
        rel = p.relative_to(tmp_path).as_posix()
        ml.append(f"{rel},{p.parent.name},{'odd' if i % 2 else ''}")
        reg.append(f"{rel},{(i % 7) / 7:.3f}")
    (tmp_path / "ml.csv").write_text("\n".join(ml) + "\n")
    (tmp_path / "reg.csv").write_text("\n".join(reg) + "\n")
    base = {
        "model": {"name": "resnet18", "allow_random_init": True, "freeze": "head-only"},
        "train": dict(TINY_TRAIN, epochs=1),
    }
    ml_cfg = write_config(
        tmp_path / "ml.toml",
        task={"kind": "image-multilabel"},
        data={"path": "ml.csv", "image_size": 32, "label_columns": ["label", "label2"]},
        **base,
    )
    assert main(["train", str(ml_cfg), "--output", str(tmp_path / "ml-runs")]) == 0
    labels = json.loads((only_run(tmp_path / "ml-runs") / "labels.json").read_text())["labels"]
    assert sorted(labels) == ["circle", "odd", "square", "stripes"]

    reg_cfg = write_config(
        tmp_path / "reg.toml",
        task={"kind": "image-regression"},
        data={"path": "reg.csv", "image_size": 32, "label_columns": ["value"]},
        **base,
    )
    assert main(["train", str(reg_cfg), "--output", str(tmp_path / "reg-runs")]) == 0
    rows = (only_run(tmp_path / "reg-runs") / "metrics.jsonl").read_text()
    assert "val_mae" in rows and "test_rmse" in rows


def test_text_classification_with_a_local_bert_folder(tmp_path):
    from tests.factories import tiny_bert_dir

    model_dir = tiny_bert_dir(tmp_path / "bert")
    make_reviews_csv(tmp_path / "reviews.csv")
    cfg = write_config(
        tmp_path / "text.toml",
        task={"kind": "text-classification"},
        data={"path": "reviews.csv", "max_length": 16},
        model={"name": str(model_dir), "freeze": "none"},
        train=dict(TINY_TRAIN),
    )
    assert main(["train", str(cfg), "--output", str(tmp_path / "runs")]) == 0
    run = only_run(tmp_path / "runs")
    assert json.loads((run / "labels.json").read_text())["labels"] == ["negative", "positive"]
    assert "test_f1_macro" in (run / "metrics.jsonl").read_text()


def test_text_regression(tmp_path):
    from tests.factories import tiny_bert_dir

    model_dir = tiny_bert_dir(tmp_path / "bert")
    lines = ["text,score"] + [
        f"the film was {'great' if i % 2 else 'dull'} number {i},{i % 2 + 0.1 * (i % 3)}" for i in range(30)
    ]
    (tmp_path / "scores.csv").write_text("\n".join(lines) + "\n")
    cfg = write_config(
        tmp_path / "reg.toml",
        task={"kind": "text-regression"},
        data={"path": "scores.csv", "max_length": 16, "label_columns": ["score"]},
        model={"name": str(model_dir), "freeze": "none"},
        train=dict(TINY_TRAIN, epochs=1),
    )
    assert main(["train", str(cfg), "--output", str(tmp_path / "runs")]) == 0
    assert "val_mae" in (only_run(tmp_path / "runs") / "metrics.jsonl").read_text()


@pytest.mark.parametrize("lora", [False, True])
def test_causal_lm_with_a_local_gpt2_folder(tmp_path, lora):
    from tests.factories import tiny_gpt2_dir, tiny_text_corpus

    model_dir = tiny_gpt2_dir(tmp_path / "gpt2")
    (tmp_path / "corpus.txt").write_text("\n%\n".join(tiny_text_corpus() * 3) + "\n", encoding="utf-8")
    cfg = write_config(
        tmp_path / "lm.toml",
        task={"kind": "causal-lm"},
        data={"path": "corpus.txt", "max_length": 16, "val_fraction": 0.2, "test_fraction": 0.1},
        model={"name": str(model_dir), "freeze": "none", "lora": {"enabled": lora, "r": 4}},
        train=dict(TINY_TRAIN, lr=5e-3),
    )
    assert main(["train", str(cfg), "--output", str(tmp_path / "runs")]) == 0
    rows = [json.loads(line) for line in (only_run(tmp_path / "runs") / "metrics.jsonl").read_text().splitlines()]
    assert "val_perplexity" in rows[0]
    assert rows[1]["train_loss"] < rows[0]["train_loss"]  # it learns


def test_empty_data_folder_is_a_data_error(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    cfg = write_config(
        tmp_path / "c.toml",
        data={"path": "images", "image_size": 32},
        model={"allow_random_init": True},
        train=TINY_TRAIN,
    )
    assert main(["train", str(cfg), "--output", str(tmp_path / "runs")]) == 3
    assert "images" in capsys.readouterr().err


def test_validate_prints_field_level_errors_and_exits_2(tmp_path, capsys):
    cfg = write_config(tmp_path / "bad.toml", train={"lr": -1, "epoch": 3})
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "train.lr: must be > 0" in err and "got -1" in err
    assert "train.epoch: unknown key; did you mean 'epochs'?" in err


def test_validate_accepts_a_good_config(tmp_path, capsys):
    cfg = image_config(tmp_path)
    assert main(["validate", str(cfg)]) == 0
    assert "valid" in capsys.readouterr().out


def test_set_overrides_reach_the_run(tmp_path):
    cfg = image_config(tmp_path)
    assert (
        main(
            [
                "train",
                str(cfg),
                "--output",
                str(tmp_path / "runs"),
                "--set",
                "train.epochs=1",
                "--set",
                "checkpoint.run_name=override",
            ]
        )
        == 0
    )
    run = only_run(tmp_path / "runs")
    assert run.name.startswith("override-")
    assert "epochs = 1" in (run / "config.toml").read_text()


def test_lr_find_suggests_a_learning_rate(tmp_path, capsys):
    cfg = image_config(tmp_path)
    out = tmp_path / "lr.json"
    assert main(["lr-find", str(cfg), "--steps", "30", "--output", str(out)]) == 0
    curve = json.loads(out.read_text())
    assert len(curve["lrs"]) == len(curve["losses"]) > 5
    assert curve["lrs"] == sorted(curve["lrs"])


def test_presets_command_lists_the_demo(capsys):
    assert main(["presets"]) == 0
    assert "demo-fashion" in capsys.readouterr().out


def test_an_infinite_loss_stops_the_run_as_diverged_with_a_suggestion(tmp_path, capsys):
    make_image_folder(tmp_path / "images")
    rows = ["path,value"] + [
        f"{p.relative_to(tmp_path).as_posix()},1e30" for p in sorted((tmp_path / "images").rglob("*.png"))
    ]
    (tmp_path / "poison.csv").write_text("\n".join(rows) + "\n")
    cfg = write_config(
        tmp_path / "c.toml",
        task={"kind": "image-regression"},
        data={"path": "poison.csv", "image_size": 32, "label_columns": ["value"]},
        model={"allow_random_init": True},
        train=dict(TINY_TRAIN),
    )
    assert main(["train", str(cfg), "--output", str(tmp_path / "runs")]) == 5
    err = capsys.readouterr().err
    assert "at step 1" in err and "learning rate" in err
    status = json.loads((only_run(tmp_path / "runs") / "status.json").read_text())
    assert status["state"] == "diverged" and status["error"] == "Diverged"
