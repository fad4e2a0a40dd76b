"""Offline without being told so: one quick connection try decides, models on disk are found, and the
configured model is judged usable or not before anything is built (issue 13, item 2)."""

from __future__ import annotations

import socket

import pytest

from finetune_gui.config import RunConfig, TaskKind
from finetune_gui.core.errors import OfflineError
from finetune_gui.core.models import build_model
from finetune_gui.core.models.network import reachable
from finetune_gui.core.models.on_disk import hub_cache_entries, opened_folder_entries
from finetune_gui.core.models.readiness import model_problem
from tests.factories import tiny_bert_dir, tiny_gpt2_dir


def text_config(name: str, task: TaskKind = TaskKind.TEXT_CLASSIFICATION, **model) -> RunConfig:
    config = RunConfig()
    config.task.kind = task
    config.model.name = name
    for key, value in model.items():
        setattr(config.model, key, value)
    return config


def fake_hub_cache(cache, repo_id: str, source_folder) -> None:
    """Lay out `source_folder` in a Hugging Face cache as `repo_id` (refs/main → snapshots/<rev>)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    for file in source_folder.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")


def test_a_hub_model_that_is_not_cached_fails_at_once_when_the_hub_cannot_be_reached(no_network, monkeypatch):
    import transformers

    asked_the_hub = []
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", lambda *a, **k: asked_the_hub.append(a))
    with pytest.raises(OfflineError, match="no connection to huggingface.co"):
        build_model(text_config("distilbert-base-uncased"), 2)
    assert asked_the_hub == []  # no download started, so none of huggingface_hub's retries
    assert len(no_network) == 1


def test_one_connection_try_per_host_is_remembered_for_a_while(no_network):
    assert not reachable("https://huggingface.co/x")
    assert not reachable("https://huggingface.co/y")
    assert not reachable("https://download.pytorch.org/z")
    assert [host for host, _ in no_network] == ["huggingface.co", "download.pytorch.org"]


def test_a_cached_hub_model_loads_from_disk_when_the_hub_cannot_be_reached(no_network, tmp_path):
    fake_hub_cache(tmp_path / "hf-cache", "someone/tiny-bert", tiny_bert_dir(tmp_path))
    assert model_problem(text_config("someone/tiny-bert")) is None
    bundle = build_model(text_config("someone/tiny-bert"), 3)
    assert bundle.model.config.num_labels == 3


def test_whether_the_model_can_be_had_is_said_before_building_it(no_network, tmp_path):
    said = model_problem(text_config("distilbert-base-uncased"))
    assert "'distilbert-base-uncased' is not on this computer" in said and "no connection" in said
    assert model_problem(text_config(str(tiny_bert_dir(tmp_path)))) is None  # a local folder
    assert "folder not found" in model_problem(text_config(str(tmp_path / "gone")))

    image = RunConfig()  # resnet18 with ImageNet weights, not in the torch cache
    assert "pretrained weights of resnet18 are not on this computer" in model_problem(image)
    image.model.allow_random_init = True
    assert model_problem(image) is None
    image.model.allow_random_init, image.model.pretrained = False, False
    assert model_problem(image) is None
    image.model.pretrained, image.model.weights_path = True, str(tmp_path / "missing.safetensors")
    assert "missing.safetensors is not there" in model_problem(image)


def test_models_on_disk_are_the_hub_cache_ones_and_the_folders_opened_before(no_network, tmp_path):
    fake_hub_cache(tmp_path / "hf-cache", "someone/tiny-gpt2", tiny_gpt2_dir(tmp_path))
    (cached,) = hub_cache_entries()
    assert (cached.name, cached.source, cached.family) == ("someone/tiny-gpt2", "someone/tiny-gpt2", "huggingface")
    assert TaskKind.CAUSAL_LM in cached.tasks  # a decoder: it can generate text as well as classify
    assert cached.params_m > 0

    bert = tiny_bert_dir(tmp_path / "mine")
    not_a_model = tmp_path / "holiday"
    not_a_model.mkdir()
    rows = opened_folder_entries([str(bert), str(tmp_path / "deleted"), str(not_a_model), str(bert)])
    assert [r.name for r in rows] == [str(bert.resolve())]  # gone, not a model, or twice: left out
    assert TaskKind.CAUSAL_LM not in rows[0].tasks and rows[0].input_size == 128


def test_a_probe_waits_seconds_not_the_systems_minutes_for_a_hanging_connection(monkeypatch):
    timeouts = []

    def hang(address, timeout=None, *args, **kwargs):
        timeouts.append(timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    assert not reachable("https://example.invalid/")
    assert timeouts == [3.0]
