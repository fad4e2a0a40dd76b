"""The speed settings in a real run: train.compile reaches the model the loop calls, channels_last reaches the
batches, a failed compile leaves a warning and a completed run, and the log says what the run uses."""

from __future__ import annotations

import torch

from finetune_gui.core.training.engine import fit
from finetune_gui.core.training.events import LogMessage
from tests.conftest import make_image_folder
from tests.faults.helpers import image_config


def run(tmp_path, monkeypatch, **train):
    images = make_image_folder(tmp_path / "images", per_class=4)
    config = image_config(images, train={"epochs": 1, **train}, augment={"random_resized_crop": False})
    events: list = []
    result = fit(config, events.append, output_dir=tmp_path / "runs")
    assert result.status == "completed", result
    return events, result


def logged(events) -> list[str]:
    return [e.text for e in events if isinstance(e, LogMessage)]


def test_train_compile_sends_every_batch_through_the_compiled_model_in_channels_last_and_is_released_after(
    tmp_path, monkeypatch, tinynet
):
    compiled_models, layouts = [], []

    def recording_compile(model, **kwargs):
        compiled_models.append(model)

        def compiled(images):
            layouts.append(images.is_contiguous(memory_format=torch.channels_last))
            return model(images)

        return compiled

    monkeypatch.setattr(torch, "compile", recording_compile)
    resets = []
    monkeypatch.setattr(torch.compiler, "reset", lambda: resets.append(1))
    events, result = run(tmp_path, monkeypatch, compile=True, memory_format="channels_last")
    assert resets == [1]  # the compiled graphs, which hold the model, are dropped when the run ends
    assert len(compiled_models) == 1 and compiled_models[0].fc.out_features == 3  # the run's model, its head
    assert compiled_models[0].features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert len(layouts) >= 3 and all(layouts)  # training and evaluation batches alike
    assert "speed: fp32, channels_last, AdamW; compile on" in logged(events)
    assert "[info] speed: fp32, channels_last, AdamW; compile on" in (result.run_dir / "log.txt").read_text("utf-8")


def test_a_compile_failure_is_a_warning_and_the_run_completes_eagerly(tmp_path, monkeypatch, tinynet):
    def broken(*a, **k):
        raise RuntimeError("inductor: no working C++ compiler")

    monkeypatch.setattr(torch, "compile", broken)
    events, result = run(tmp_path, monkeypatch, compile=True)
    warnings = [t for t in logged(events) if t.startswith("torch.compile failed")]
    assert len(warnings) == 1 and "inductor: no working C++ compiler" in warnings[0]
    assert (result.run_dir / "model.safetensors").exists()


def test_by_default_a_cpu_run_neither_compiles_nor_changes_the_layout(tmp_path, monkeypatch, tinynet):
    def must_not_compile(*a, **k):
        raise AssertionError("compile is off by default")

    monkeypatch.setattr(torch, "compile", must_not_compile)
    events, _ = run(tmp_path, monkeypatch)
    assert "speed: fp32, AdamW; compile off" in logged(events)


def test_a_compile_failure_in_the_first_backward_is_one_warning_and_the_run_ends_as_an_eager_one(
    tmp_path, monkeypatch, tinynet
):
    from tests.factories import compile_whose_backward_breaks
    from tests.faults.helpers import weights_equal

    _, eager = run(tmp_path / "eager", monkeypatch)
    monkeypatch.setattr(torch, "compile", compile_whose_backward_breaks(torch.compile, RuntimeError("bw broke")))
    events, fell_back = run(tmp_path / "compiled", monkeypatch, compile=True)

    warnings = [t for t in logged(events) if t.startswith("torch.compile failed")]
    assert warnings == [
        "torch.compile failed (RuntimeError: bw broke); the run goes on without compiling (eager mode). "
        "Set train.compile = false to skip the attempt."
    ]
    assert weights_equal(fell_back.run_dir / "model.safetensors", eager.run_dir / "model.safetensors")
