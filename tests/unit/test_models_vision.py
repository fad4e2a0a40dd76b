"""Vision model building: heads, the torch hub cache, offline behaviour, local weight files."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from finetune_gui.config import RunConfig, TaskKind
from finetune_gui.core.errors import ModelLoadError, OfflineError
from finetune_gui.core.models import ModelBundle, build_model
from finetune_gui.core.models.catalog import entries
from tests.factories import tiny_resnet18_state_dict


@pytest.fixture
def offline_home(tmp_path, monkeypatch):
    """An empty torch hub cache under tmp_path and offline mode on."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FINETUNE_GUI_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"


def _cfg(tmp_path, **model) -> RunConfig:
    cfg = RunConfig()
    cfg.data.image_size = 32
    for k, v in model.items():
        setattr(cfg.model, k, v)
    return cfg.with_base_dir(tmp_path)


def _forward(bundle: ModelBundle, size: int = 32, batch: int = 2) -> torch.Tensor:
    bundle.model.eval()
    with torch.no_grad():
        return bundle.model(torch.randn(batch, 3, size, size))


def test_offline_without_cache_names_the_file_and_folder(tmp_path, offline_home, monkeypatch):
    def no_download(*a, **k):  # offline mode must decide before any download is tried
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    with pytest.raises(OfflineError) as info:
        build_model(_cfg(tmp_path), 3)
    msg = str(info.value)
    assert "resnet18-f37072fd.pth" in msg
    assert str(offline_home) in msg
    assert "allow_random_init" in msg


def test_network_failure_becomes_offline_error(tmp_path, monkeypatch):
    import urllib.error

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("FINETUNE_GUI_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def fail(*a, **k):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    with pytest.raises(OfflineError, match="resnet18-f37072fd.pth"):
        build_model(_cfg(tmp_path), 3)


def test_allow_random_init_goes_on_with_a_warning(tmp_path, offline_home):
    bundle = build_model(_cfg(tmp_path, allow_random_init=True), 5)
    assert bundle.kind == "vision" and bundle.tokenizer is None
    assert any("random weights" in w and "resnet18" in w for w in bundle.warnings)
    assert "random init" in bundle.description
    assert _forward(bundle).shape == (2, 5)


def test_head_is_replaced_with_right_outputs(tmp_path, offline_home):
    bundle = build_model(_cfg(tmp_path, pretrained=False), 7)
    assert bundle.head == ["fc"]
    fc = bundle.model.get_submodule("fc")
    assert isinstance(fc, nn.Linear) and fc.out_features == 7 and fc.in_features == 512
    assert bundle.blocks == ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]
    assert bundle.image_size == 32
    assert bundle.warnings == []


def test_head_dropout_wraps_head_and_backbone_dropout_sets_p(tmp_path, offline_home):
    cfg = _cfg(tmp_path, name="mobilenet_v3_small", pretrained=False, head_dropout=0.3, backbone_dropout=0.05)
    bundle = build_model(cfg, 4)
    head = bundle.model.get_submodule(bundle.head[0])
    assert bundle.head == ["classifier.3"]
    assert isinstance(head, nn.Sequential) and head[0].p == 0.3 and head[1].out_features == 4
    others = [
        m.p for n, m in bundle.model.named_modules() if isinstance(m, nn.Dropout) and not n.startswith("classifier.3")
    ]
    assert others and all(p == 0.05 for p in others)
    assert _forward(bundle).shape == (2, 4)


def test_cached_hub_checkpoint_is_loaded(tmp_path, offline_home):
    state = tiny_resnet18_state_dict(seed=123)
    offline_home.mkdir(parents=True)
    torch.save(state, offline_home / "resnet18-f37072fd.pth")
    bundle = build_model(_cfg(tmp_path), 3)
    got = bundle.model.state_dict()
    assert torch.equal(got["conv1.weight"], state["conv1.weight"])
    assert torch.equal(got["layer4.1.bn2.running_mean"], state["layer4.1.bn2.running_mean"])
    assert bundle.warnings == []
    assert "IMAGENET1K_V1" in bundle.description
    assert bundle.mean == pytest.approx((0.485, 0.456, 0.406)) and bundle.std == pytest.approx((0.229, 0.224, 0.225))


def test_unknown_weights_name_lists_choices(tmp_path, offline_home):
    with pytest.raises(ModelLoadError, match="IMAGENET1K_V1"):
        build_model(_cfg(tmp_path, weights="IMAGENET1K_V9"), 3)


def test_unknown_model_name_suggests(tmp_path, offline_home):
    with pytest.raises(ModelLoadError, match="resnet18"):
        build_model(_cfg(tmp_path, name="resnet-18", pretrained=False), 3)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_weights_file_loads(tmp_path, offline_home, suffix):
    state = tiny_resnet18_state_dict(seed=7)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({"state_dict": state}, path)
    bundle = build_model(_cfg(tmp_path, weights_path=path.name), 3)  # relative to the config's folder
    got = bundle.model.state_dict()
    assert torch.equal(got["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])
    assert bundle.model.fc.out_features == 3
    # the ImageNet fc (1000 classes) does not fit the new head: reported, not loaded
    assert any("fc.weight" in w for w in bundle.warnings)


def test_local_weights_missing_and_unexpected_keys_are_warned(tmp_path, offline_home):
    state = tiny_resnet18_state_dict(num_classes=3)
    del state["layer4.1.conv2.weight"]
    state["extra.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "w.pt")
    bundle = build_model(_cfg(tmp_path, weights_path="w.pt"), 3)
    text = " ".join(bundle.warnings)
    assert "layer4.1.conv2.weight" in text and "extra.weight" in text
    assert torch.equal(bundle.model.fc.weight, state["fc.weight"])


def test_local_weights_that_match_nothing_are_refused(tmp_path, offline_home):
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "w.pth")
    with pytest.raises(ModelLoadError, match="match"):
        build_model(_cfg(tmp_path, weights_path="w.pth"), 3)


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickle_with_code_is_refused(tmp_path, offline_home, capsys):
    torch.save({"conv1.weight": torch.zeros(1), "evil": _Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ModelLoadError, match="Python objects"):
        build_model(_cfg(tmp_path, weights_path="evil.pth"), 3)
    assert "pickled code ran" not in capsys.readouterr().out


def test_missing_weights_file(tmp_path, offline_home):
    with pytest.raises(ModelLoadError, match="not found"):
        build_model(_cfg(tmp_path, weights_path="nope.safetensors"), 3)


def test_lora_refused_for_vision(tmp_path, offline_home):
    cfg = _cfg(tmp_path, pretrained=False)
    cfg.model.lora.enabled = True
    with pytest.raises(ModelLoadError, match="LoRA"):
        build_model(cfg, 3)


def test_timm_missing_is_a_clear_error(tmp_path, offline_home, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "timm", None)  # import fails like an absent package
    with pytest.raises(ModelLoadError, match="pip install timm"):
        build_model(_cfg(tmp_path, name="resnet18", source="timm"), 3)


def test_text_source_for_image_task_is_refused(tmp_path, offline_home):
    cfg = _cfg(tmp_path, source="huggingface")
    cfg.task.kind = TaskKind.IMAGE_CLASSIFICATION
    with pytest.raises(ModelLoadError, match="image tasks"):
        build_model(cfg, 3)


_TV = [e for e in entries() if e.family == "torchvision"]


@pytest.mark.parametrize("entry", _TV, ids=[e.name for e in _TV])
def test_every_torchvision_catalog_entry_builds_and_runs(tmp_path, offline_home, entry):
    """Small models run a real forward; big ones are built on the meta device (no memory, no init cost),
    which still checks that the new head is wired to the right width and the output shape."""
    heavy = entry.params_m > 6
    cfg = _cfg(tmp_path, name=entry.name, allow_random_init=True)
    cfg.data.image_size = 64
    with torch.device("meta") if heavy else torch.device("cpu"):
        bundle = build_model(cfg, 3)
        assert bundle.warnings and "random" in bundle.warnings[0]
        assert bundle.blocks and bundle.head
        assert all(bundle.model.get_submodule(n) is not None for n in bundle.blocks + bundle.head)
        bundle.model.eval()
        out = bundle.model(torch.randn(1, 3, bundle.image_size, bundle.image_size))
    assert out.shape == (1, 3)
    assert bundle.image_size == (224 if entry.name.startswith("vit") else 64)


def test_an_unreachable_download_fails_at_once_without_torch_hub_starting_it(tmp_path, monkeypatch, capfd):
    """Offline without being told so: one quick connection try, then the offline message; torch.hub never
    starts a download (which prints "Downloading: …" and then fails)."""
    import socket

    def no_network(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("FINETUNE_GUI_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "create_connection", no_network)
    started = []
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: started.append(a))
    bundle = build_model(_cfg(tmp_path, allow_random_init=True), 3)
    assert started == []
    assert "Downloading" not in capfd.readouterr().err
    assert any("unavailable offline" in w for w in bundle.warnings)
