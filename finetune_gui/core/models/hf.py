"""Text models from Hugging Face transformers: sequence classification/regression and causal LMs.

`model.name` is a hub id (loaded from the local HF cache, or downloaded when online) or a local folder
(resolved against the config file's folder). Remote code never runs unless model.trust_remote_code is on.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from finetune_gui.core.errors import ModelLoadError, OfflineError
from finetune_gui.core.models.network import hub_endpoint, why_no_downloads
from finetune_gui.core.plan import IMAGENET_MEAN, IMAGENET_STD

if TYPE_CHECKING:
    from finetune_gui.config import RunConfig
    from finetune_gui.core.models.bundle import ModelBundle

# Config attributes holding the backbone's dropout rates, by architecture family.
BACKBONE_DROPOUT_ATTRS = (
    "hidden_dropout_prob",  # BERT, RoBERTa, ELECTRA ...
    "attention_probs_dropout_prob",
    "resid_pdrop",  # GPT-2
    "embd_pdrop",
    "attn_pdrop",
    "dropout",  # DistilBERT, BART
    "attention_dropout",  # DistilBERT, Llama
    "hidden_dropout",
    "activation_dropout",
)
# Config attributes holding the dropout before the classification head.
HEAD_DROPOUT_ATTRS = ("classifier_dropout", "seq_classif_dropout", "summary_first_dropout")

_OFFLINE_WORDS = (
    "offline",
    "connection",
    "connect to",
    "couldn't connect",
    "could not connect",
    "network",
    "resolve",
    "timed out",
    "name or service not known",
    "temporary failure",
    "huggingface.co",
    "local_files_only",
    "cannot find the requested files",
)


def is_local_reference(name: str) -> bool:
    """True when `name` is written as a path (./x, ../x, /x, ~/x, C:\\x) rather than a hub id."""
    return name.startswith((".", "/", "~", "\\")) or (len(name) > 2 and name[1] == ":" and name[0].isalpha())


def locate(config: RunConfig) -> tuple[str, bool]:
    """(what to pass to from_pretrained, whether it is a local folder)."""
    name = config.model.name.strip()
    if not name:
        raise ModelLoadError("model.name is empty; give a Hugging Face id (e.g. distilbert-base-uncased) or a folder")
    path = config.resolve(name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"model.name: the folder {path} has no config.json; point it at a folder written by save_pretrained"
            )
        return str(path), True
    if is_local_reference(name) or path.is_file() or name.count("/") > 1:
        raise ModelLoadError(f"model.name: folder not found: {path}")
    return name, False


def cached_file(repo_id: str, filename: str = "config.json") -> Path | None:
    """The locally cached copy of a hub file, or None; never touches the network."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # noqa: BLE001 - an odd id is simply "not cached"
        return None
    return Path(found) if isinstance(found, str) else None


def _offline_error(name: str, detail: str = "") -> OfflineError:
    why = detail.strip().splitlines()[0][:300] if detail.strip() else "offline"
    return OfflineError(
        f"The Hugging Face model '{name}' is not in the local cache and cannot be downloaded ({why}). "
        f"Download it on a connected machine (e.g. `huggingface-cli download {name}`, or from_pretrained then "
        f"save_pretrained to a folder) and copy it here, then point model.name at that local folder."
    )


def _local_only(source: str, is_local: bool) -> bool:
    """Whether to load from disk alone: a local folder, or no downloads possible now (offline switches, or
    one quick connection try to the Hub fails). A hub id that is not cached then fails at once, instead of
    after huggingface_hub's retries."""
    if is_local:
        return True
    blocked = why_no_downloads(hub_endpoint())
    if blocked and cached_file(source) is None:
        raise _offline_error(source, blocked)
    return blocked is not None


def _auto_map_modules(cfg_file: Path | None) -> set[str]:
    """Python files named by the auto_map of a config.json / tokenizer_config.json (empty when none)."""
    if cfg_file is None or not cfg_file.is_file():
        return set()
    try:
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    auto_map = cfg.get("auto_map") if isinstance(cfg, dict) else None
    if not auto_map:
        return set()
    modules: set[str] = set()
    refs = auto_map.values() if isinstance(auto_map, dict) else [auto_map]
    for ref in refs:
        for item in ref if isinstance(ref, (list, tuple)) else [ref]:
            if isinstance(item, str) and "." in item:
                modules.add(item.split("--")[-1].rsplit(".", 1)[0] + ".py")
    return modules or {"(the model's own .py files)"}


def remote_code_files(source: str, is_local: bool) -> tuple[list[str], Path | None]:
    """The Python files a model folder (or cached hub model) would run with trust_remote_code, and where."""
    found: set[str] = set()
    folder: Path | None = None
    for name in ("config.json", "tokenizer_config.json"):
        cfg_file = Path(source) / name if is_local else cached_file(source, name)
        modules = _auto_map_modules(cfg_file)
        if modules:
            found |= modules
            folder = cfg_file.parent  # type: ignore[union-attr]
    if not found or folder is None:
        return [], None
    present = {p.name for p in folder.glob("*.py")}
    named = {m for m in found if not m.startswith("(")}
    return sorted(named | present) or sorted(found), folder


def check_remote_code(source: str, is_local: bool, trust: bool) -> str | None:
    """Refuse a model whose config or tokenizer config asks for its own Python code unless the user trusts it.

    Returns a warning naming the code that will run when trust_remote_code is on, else None.
    """
    files, folder = remote_code_files(source, is_local)
    if not files:
        return None
    if trust:
        return (
            f"model.trust_remote_code is on: '{source}' runs its own Python code ({', '.join(files)} in "
            f"{folder}). Only do this for sources you trust."
        )
    raise ModelLoadError(
        f"'{source}' needs to run its own Python code ({', '.join(files)} in {folder}), which is off for safety. "
        "If you trust where this model comes from, set model.trust_remote_code = true (Model page: "
        "'Trust remote code')."
    )


def _load_config(source: str, config: RunConfig, local_only: bool):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(
        source, trust_remote_code=config.model.trust_remote_code, local_files_only=local_only
    )


def _apply_dropout(hf_config: Any, backbone: float | None, head: float) -> list[str]:
    changed = []
    if backbone is not None:
        for attr in BACKBONE_DROPOUT_ATTRS:
            if isinstance(getattr(hf_config, attr, None), (int, float)) and not isinstance(
                getattr(hf_config, attr), bool
            ):
                setattr(hf_config, attr, backbone)
                changed.append(attr)
    if head > 0:
        for attr in HEAD_DROPOUT_ATTRS:
            if hasattr(hf_config, attr):
                setattr(hf_config, attr, head)
                changed.append(attr)
    return changed


def hf_head(model: nn.Module) -> list[str]:
    """The task head: the model's top-level children outside its base model that hold parameters."""
    prefix = getattr(model, "base_model_prefix", "")
    base = getattr(model, prefix, None) if prefix else None
    head = [n for n, m in model.named_children() if m is not base and any(True for _ in m.parameters())]
    return head


def hf_blocks(model: nn.Module) -> list[str]:
    """Embeddings first, then the transformer layers (the longest ModuleList), earliest first."""
    layers_name, longest = None, -1
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > longest:
            layers_name, longest = name, len(module)
    if layers_name is None:
        return []
    layers = model.get_submodule(layers_name)
    # The base model: the module holding the layer stack directly or via an "encoder"/"transformer" container.
    prefix = getattr(model, "base_model_prefix", "")
    base_name = prefix if prefix and hasattr(model, prefix) else ""
    base = model.get_submodule(base_name) if base_name else model
    pre: list[str] = []
    for name, child in base.named_children():
        full = f"{base_name}.{name}" if base_name else name
        if full == layers_name or layers_name.startswith(full + "."):
            break
        if any(True for _ in child.parameters()):
            pre.append(full)
    return pre + [f"{layers_name}.{n}" for n, _ in layers.named_children()]


def _load_tokenizer(source: str, config: RunConfig, local_only: bool):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        source, trust_remote_code=config.model.trust_remote_code, local_files_only=local_only
    )


def ensure_pad_token(tokenizer: Any, model: nn.Module) -> str | None:
    """GPT-2-style tokenizers have no pad token: use eos (or add one). Returns a warning or None."""
    warning = None
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            tokenizer.add_special_tokens({"pad_token": "[PAD]"})
            model.resize_token_embeddings(len(tokenizer))
            warning = "The tokenizer had no pad or end-of-text token; a [PAD] token was added."
    model.config.pad_token_id = tokenizer.pad_token_id
    gen = getattr(model, "generation_config", None)
    if gen is not None and getattr(gen, "pad_token_id", None) is None:
        gen.pad_token_id = tokenizer.pad_token_id
    return warning


def load_tokenizer(config: RunConfig) -> Any:
    """The tokenizer of `config.model.name` alone (the data is read before the model, which needs the label count)."""
    source, is_local = locate(config)
    local_only = _local_only(source, is_local)
    remote_warning = check_remote_code(source, is_local, config.model.trust_remote_code)
    if remote_warning:
        import logging

        logging.getLogger(__name__).warning("%s", remote_warning)
    try:
        tokenizer = _load_tokenizer(source, config, local_only)
    except OSError as e:
        if not is_local and (local_only or any(w in str(e).lower() for w in _OFFLINE_WORDS)):
            raise _offline_error(source, str(e)) from e
        raise ModelLoadError(f"cannot load the tokenizer of '{source}': {e}") from e
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_hf(config: RunConfig, num_outputs: int) -> ModelBundle:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from finetune_gui.config import TaskKind
    from finetune_gui.core.models.bundle import ModelBundle

    mc = config.model
    task = config.task.kind
    causal = task == TaskKind.CAUSAL_LM
    source, is_local = locate(config)
    local_only = _local_only(source, is_local)
    remote_warning = check_remote_code(source, is_local, mc.trust_remote_code)
    if mc.weights_path:
        raise ModelLoadError(
            "model.weights_path is for image models; for Hugging Face models point model.name at a local folder "
            "written by save_pretrained"
        )

    warnings: list[str] = [remote_warning] if remote_warning else []
    try:
        hf_config = _load_config(source, config, local_only)
        _apply_dropout(hf_config, mc.backbone_dropout, mc.head_dropout)
        if causal:
            auto = AutoModelForCausalLM
        else:
            auto = AutoModelForSequenceClassification
            hf_config.num_labels = 1 if task.is_regression else num_outputs
            hf_config.problem_type = "regression" if task.is_regression else "single_label_classification"
        kwargs: dict[str, Any] = dict(
            config=hf_config,
            trust_remote_code=mc.trust_remote_code,
            local_files_only=local_only,
            output_loading_info=True,
        )
        if not causal:
            kwargs["ignore_mismatched_sizes"] = True
        if not mc.pretrained:
            model = auto.from_config(hf_config, trust_remote_code=mc.trust_remote_code)
            info: dict[str, Any] = {}
            warnings.append(f"model.pretrained is off: {source} starts from random weights.")
        else:
            model, info = auto.from_pretrained(source, **kwargs)
        tokenizer = _load_tokenizer(source, config, local_only)
    except (OfflineError, ModelLoadError):
        raise
    except pickle.UnpicklingError:
        raise ModelLoadError(
            f"the weights of '{source}' (a pickled .bin/.pt file) hold Python objects besides tensors, which are "
            "refused for safety. Ask for, or convert to, model.safetensors."
        ) from None
    except OSError as e:
        text = str(e).lower()
        if not is_local and (local_only or any(w in text for w in _OFFLINE_WORDS)):
            raise _offline_error(source, str(e)) from e
        raise ModelLoadError(f"cannot load the Hugging Face model '{source}': {e}") from e
    except ValueError as e:
        if "trust_remote_code" in str(e):
            raise ModelLoadError(
                f"'{source}' needs to run its own Python code, which is off for safety. If you trust it, set "
                "model.trust_remote_code = true."
            ) from e
        raise ModelLoadError(f"cannot load the Hugging Face model '{source}' for {task.value}: {e}") from e
    except KeyError as e:
        raise ModelLoadError(
            f"'{source}' has a model type this transformers version does not know ({e}); update transformers"
        ) from e

    pad_warning = ensure_pad_token(tokenizer, model)
    if pad_warning:
        warnings.append(pad_warning)
    head = hf_head(model)
    if causal:
        # An LM keeps its own head; it is not new, but the output layer is what "head-only" trains.
        head = [h for h in head if h in ("lm_head", "embed_out", "output")] or head
    missing = [k for k in (info.get("missing_keys") or []) if not any(k.startswith(h + ".") for h in head)]
    if missing:
        warnings.append(
            f"{len(missing)} weights of {source} were not in the checkpoint and start random: "
            + ", ".join(sorted(missing)[:5])
            + (" ..." if len(missing) > 5 else "")
        )
    arch = type(model).__name__
    where = "local folder" if is_local else "Hugging Face"
    name = Path(source).name if is_local else source
    return ModelBundle(
        model=model,
        kind="hf-causal" if causal else "hf-sequence",
        tokenizer=tokenizer,
        image_size=0,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        head=head,
        blocks=hf_blocks(model),
        warnings=warnings,
        description=f"{name} ({where}, {arch})",
        random_init=not config.model.pretrained,
    )
