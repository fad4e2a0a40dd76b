"""The loop's hook points: a hook sees every batch's backward, every optimiser step and every epoch, in order,
with the model's gradients in place after backward; a hook can end the run, and a resumed run keeps calling
hooks where it left off."""

from __future__ import annotations

from finetune_gui.core.training.engine import fit, resume
from finetune_gui.core.training.events import EventLog, StepMetrics
from finetune_gui.core.training.hooks import TrainingHook
from tests.faults.helpers import image_config


class Recorder(TrainingHook):
    def __init__(self):
        self.calls: list[tuple] = []

    def before_backward(self, trainer, loss):
        grads = [q.grad for q in trainer.params if q.grad is not None]
        self.calls.append(("before_backward", trainer.state.step, bool(loss.requires_grad), len(grads)))

    def after_backward(self, trainer, loss):
        grads = [q.grad for q in trainer.params if q.grad is not None]
        self.calls.append(("after_backward", trainer.state.step, len(grads) == len(trainer.params)))

    def on_step_end(self, trainer, step):
        self.calls.append(("on_step_end", step.step, step.epoch, step.logged))

    def on_epoch_end(self, trainer, epoch, metrics):
        self.calls.append(("on_epoch_end", epoch, sorted(metrics)))


def test_hooks_see_each_batch_step_and_epoch_in_order(tmp_path, tinynet, image_folder):
    # 18 training images, batch 4: 5 batches an epoch; accumulating 2 batches a step makes 3 steps an epoch
    config = image_config(image_folder, train={"epochs": 2, "batch_size": 4, "grad_accum": 2, "log_every": 2})
    hook = Recorder()
    result = fit(config, output_dir=tmp_path / "runs", hooks=[hook])
    assert result.status == "completed"

    kinds = [c[0] for c in hook.calls]
    assert kinds.count("before_backward") == kinds.count("after_backward") == 10
    assert [c[1:] for c in hook.calls if c[0] == "on_step_end"] == [
        (1, 0, False), (2, 0, True), (3, 0, False), (4, 1, True), (5, 1, False), (6, 1, True)
    ]  # fmt: skip
    epoch_ends = [c for c in hook.calls if c[0] == "on_epoch_end"]
    assert [c[1] for c in epoch_ends] == [0, 1]
    assert "train_loss" in epoch_ends[0][2] and "val_loss" in epoch_ends[0][2]
    # within a step: backward, backward, then the step; gradients are cleared after each step
    first_epoch = kinds[: kinds.index("on_epoch_end")]
    assert first_epoch[:5] == ["before_backward", "after_backward"] * 2 + ["on_step_end"]
    assert all(c[2] for c in hook.calls if c[0] == "before_backward")  # the loss still has its graph
    assert all(c[2] for c in hook.calls if c[0] == "after_backward")  # every trainable parameter has a gradient
    first_of_each_step = [
        c for k, c in enumerate(hook.calls) if c[0] == "before_backward" and kinds[k - 1] != "after_backward"
    ]
    assert all(c[3] == 0 for c in first_of_each_step)  # nothing left over from the step before


class StopAt(TrainingHook):
    def __init__(self, step: int):
        self.step, self.seen = step, []

    def on_step_end(self, trainer, step):
        self.seen.append(step.step)
        if step.step == self.step:
            trainer.control.stop()


def test_a_hook_can_stop_the_run_and_a_resumed_run_calls_hooks_from_there(tmp_path, tinynet, image_folder):
    config = image_config(image_folder, train={"epochs": 2, "batch_size": 4})
    first = StopAt(3)
    stopped = fit(config, output_dir=tmp_path / "runs", hooks=[first])
    assert stopped.status == "stopped"
    assert first.seen == [1, 2, 3]

    second, log = StopAt(-1), EventLog()
    finished = resume(stopped.run_dir, log, hooks=[second])
    assert finished.status == "completed"
    assert second.seen == list(range(4, 11))  # 5 steps an epoch, 2 epochs
    assert [e.step for e in log.of(StepMetrics)] == list(range(4, 11))
