"""What trains and what stays fixed: module tree, freeze strategies, gradual unfreezing, parameter groups, LoRA."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

from finetune_gui.config import ConfigError
from finetune_gui.core.errors import ModelLoadError

if TYPE_CHECKING:
    from finetune_gui.config import LoraConfig, ModelConfig
    from finetune_gui.core.models.bundle import ModelBundle

__all__ = [
    "ModuleNode",
    "apply_freeze",
    "apply_lora",
    "count_params",
    "frozen_modules_for",
    "is_lora",
    "module_tree",
    "own_params",
    "param_groups",
    "planned_trainable",
    "set_frozen_batchnorm_eval",
    "unfreeze_next_block",
]


# ---------------------------------------------------------------- module tree


@dataclass
class ModuleNode:
    """One module of the layer tree: its parameter counts include its children's."""

    name: str  # full name as in named_modules ("" for the root)
    type_name: str
    num_params: int
    trainable_params: int
    children: list[ModuleNode] = field(default_factory=list)

    @property
    def short_name(self) -> str:
        return self.name.rpartition(".")[2] or "(model)"

    @property
    def frozen(self) -> bool:
        return self.num_params > 0 and self.trainable_params == 0

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


def module_tree(model: nn.Module) -> ModuleNode:
    """The model as a tree of ModuleNode (shared parameters counted once, where first seen)."""
    seen: set[int] = set()

    def build(name: str, module: nn.Module) -> ModuleNode:
        total = trainable = 0
        for p in module.parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            total += p.numel()
            trainable += p.numel() if p.requires_grad else 0
        children = []
        for child_name, child in module.named_children():
            node = build(f"{name}.{child_name}" if name else child_name, child)
            children.append(node)
            total += node.num_params
            trainable += node.trainable_params
        return ModuleNode(name, type(module).__name__, total, trainable, children)

    return build("", model)


def count_params(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts, shared parameters counted once."""
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total


# ---------------------------------------------------------------- freezing


def own_params(node: ModuleNode) -> int:
    """Parameters held by the node's module itself, not by its children."""
    return node.num_params - sum(c.num_params for c in node.children)


def _own_under(node: ModuleNode, prefixes: list[str]) -> bool:
    """Whether the node's own parameters fall under one of the module prefixes (the root's never do)."""
    return bool(node.name) and _under(node.name, [p for p in prefixes if p])


def planned_trainable(
    tree: ModuleNode, model_cfg: ModelConfig, head: list[str], blocks: list[str], lora: bool = False
) -> dict[str, int]:
    """Trainable parameters of every node (by name) once `apply_freeze(bundle, model_cfg)` has run.

    Pure: works on the module tree (the GUI's copy), the bundle's head and block names, and, with LoRA,
    the tree's own trainable counts (peft's choice). Unknown names in `frozen_modules` are ignored here.
    """
    nodes = list(tree.walk())  # preorder: the order of named_parameters()
    strategy = model_cfg.freeze
    frozen = list(model_cfg.frozen_modules)
    own_trainable: dict[str, int] = {}
    if lora:
        for n in nodes:
            base = n.trainable_params - sum(c.trainable_params for c in n.children)
            own_trainable[n.name] = 0 if strategy == "modules" and _own_under(n, frozen) else base
    elif strategy == "none":
        own_trainable = {n.name: own_params(n) for n in nodes}
    elif strategy == "modules":
        own_trainable = {n.name: 0 if _own_under(n, frozen) else own_params(n) for n in nodes}
    elif strategy in ("head-only", "last-n"):
        chosen = list(head)
        if strategy == "last-n" and model_cfg.unfreeze_last_n > 0 and blocks:
            chosen += blocks[-model_cfg.unfreeze_last_n :]
            holders = [n for n in nodes if own_params(n) > 0]
            last = max((i for i, n in enumerate(holders) if _own_under(n, [blocks[-1]])), default=-1)
            if last >= 0:  # the tail after the last block (final norm, pooler) trains with it, as in _tail
                chosen += [n.name for n in holders[last + 1 :] if not _own_under(n, [*head, *blocks])]
        own_trainable = {n.name: own_params(n) if _own_under(n, chosen) else 0 for n in nodes}
    else:  # pragma: no cover - config validation prevents it
        raise ConfigError([f"model.freeze: unknown strategy '{strategy}'"])

    totals: dict[str, int] = {}

    def total(node: ModuleNode) -> int:
        totals[node.name] = own_trainable.get(node.name, 0) + sum(total(c) for c in node.children)
        return totals[node.name]

    total(tree)
    return totals


def frozen_modules_for(tree: ModuleNode, frozen: set[str], lora: bool = False) -> list[str]:
    """The shortest `frozen_modules` list (strategy "modules") that freezes the own parameters of the nodes
    named in `frozen`, and nothing else that would otherwise train.

    A whole subtree is listed by its top module; parameters held directly by a module whose children differ
    cannot be frozen on their own by a module list and stay trainable. Without LoRA everything starts
    trainable; with LoRA, what peft left trainable (the tree's counts).
    """

    def baseline(n: ModuleNode) -> int:
        return n.trainable_params - sum(c.trainable_params for c in n.children) if lora else own_params(n)

    def nothing_to_freeze(n: ModuleNode) -> bool:
        return all(m.name not in frozen or baseline(m) == 0 for m in n.walk())

    def all_frozen(n: ModuleNode) -> bool:
        return all(m.name in frozen or baseline(m) == 0 for m in n.walk())

    def visit(n: ModuleNode) -> list[str]:
        if nothing_to_freeze(n):
            return []
        if n.name and all_frozen(n):
            return [n.name]
        return [name for c in n.children for name in visit(c)]

    return visit(tree)


def is_lora(bundle: ModelBundle) -> bool:
    return hasattr(bundle.model, "peft_config")


def _under(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _set(model: nn.Module, prefixes: list[str], trainable: bool) -> None:
    for name, p in model.named_parameters():
        if _under(name, prefixes):
            p.requires_grad_(trainable)


def _tail(bundle: ModelBundle) -> list[str]:
    """Parameters after the last block that are neither block nor head (final norm, pooler): they go with
    the last block when it trains."""
    if not bundle.blocks:
        return []
    names = [n for n, _ in bundle.model.named_parameters()]
    last = bundle.blocks[-1]
    idx = max((i for i, n in enumerate(names) if _under(n, [last])), default=-1)
    if idx < 0:
        return []
    return [n for n in names[idx + 1 :] if not _under(n, bundle.head) and not _under(n, bundle.blocks)]


def _check_names(model: nn.Module, names: list[str], field_name: str) -> None:
    known = [n for n, _ in model.named_modules() if n]
    known_set = set(known)
    problems = []
    for n in names:
        if n not in known_set:
            close = difflib.get_close_matches(n, known, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            problems.append(f"{field_name}: no module named '{n}'{hint}")
    if problems:
        raise ConfigError(problems)


def apply_freeze(bundle: ModelBundle, model_cfg: ModelConfig) -> None:
    """Set requires_grad by the strategy in model_cfg.freeze (none | head-only | last-n | modules).

    With LoRA the adapters (and the saved head) are what trains; peft has already set that up, so the
    strategy is left aside except "modules", which may still freeze parts of it.
    """
    model = bundle.model
    strategy = model_cfg.freeze
    if strategy == "modules":
        _check_names(model, list(model_cfg.frozen_modules), "model.frozen_modules")
    if is_lora(bundle):
        if strategy == "modules":
            _set(model, list(model_cfg.frozen_modules), False)
        return
    if strategy == "none":
        model.requires_grad_(True)
    elif strategy == "head-only":
        model.requires_grad_(False)
        _set(model, bundle.head, True)
    elif strategy == "last-n":
        model.requires_grad_(False)
        n = model_cfg.unfreeze_last_n
        chosen = bundle.blocks[-n:] if n > 0 else []
        _set(model, chosen, True)
        if chosen:
            _set(model, _tail(bundle), True)
        _set(model, bundle.head, True)
    elif strategy == "modules":
        model.requires_grad_(True)
        _set(model, list(model_cfg.frozen_modules), False)
    else:  # pragma: no cover - config validation prevents it
        raise ConfigError([f"model.freeze: unknown strategy '{strategy}'"])


def unfreeze_next_block(bundle: ModelBundle) -> str | None:
    """Gradual unfreezing: make the last still-frozen block trainable; its name, or None when all train."""
    if is_lora(bundle):
        return None
    params = dict(bundle.model.named_parameters())
    for block in reversed(bundle.blocks):
        ps = [p for n, p in params.items() if _under(n, [block])]
        if ps and any(not p.requires_grad for p in ps):
            for p in ps:
                p.requires_grad_(True)
            _set(bundle.model, _tail(bundle), True)
            return block
    return None


def set_frozen_batchnorm_eval(model: nn.Module) -> int:
    """Put BatchNorm layers whose parameters are all frozen in eval mode (their running stats stay fixed).

    Call after every model.train(). Returns how many were switched.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            ps = list(module.parameters(recurse=False))
            if all(not p.requires_grad for p in ps):
                module.eval()
                count += 1
    return count


def param_groups(
    bundle: ModelBundle, lr: float, backbone_lr_mult: float = 1.0, weight_decay: float = 0.0
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: head at lr, the rest at lr * backbone_lr_mult; no decay on 1-D params
    (biases, norm weights). Only trainable parameters; empty groups left out. LoRA adapters count as head."""
    lora = is_lora(bundle)
    buckets: dict[str, list[nn.Parameter]] = {"head": [], "head_no_decay": [], "backbone": [], "backbone_no_decay": []}
    for name, p in bundle.model.named_parameters():
        if not p.requires_grad:
            continue
        new = _under(name, bundle.head) or (lora and ("lora_" in name or "modules_to_save" in name))
        key = "head" if new else "backbone"
        if p.ndim <= 1:
            key += "_no_decay"
        buckets[key].append(p)
    groups = []
    for key, ps in buckets.items():
        if not ps:
            continue
        groups.append(
            {
                "params": ps,
                "lr": lr if key.startswith("head") else lr * backbone_lr_mult,
                "weight_decay": 0.0 if key.endswith("no_decay") else weight_decay,
                "name": key,
            }
        )
    return groups


# ---------------------------------------------------------------- LoRA

_ATTENTION_NAMES = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",  # Llama, Mistral, OPT, BART
    "query",
    "key",
    "value",  # BERT, RoBERTa, ELECTRA
    "q_lin",
    "k_lin",
    "v_lin",
    "out_lin",  # DistilBERT
    "c_attn",
    "c_proj",  # GPT-2
    "query_key_value",
    "dense",  # GPT-NeoX, Falcon
    "Wqkv",
    "Wo",  # ModernBERT
)


def default_lora_targets(model: nn.Module) -> list[str]:
    """Attention projection names present in the model (falls back to every Linear outside the head)."""
    leaf_names = {
        n.rpartition(".")[2]
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D"
    }
    preferred = [
        n
        for n in (
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "query",
            "key",
            "value",
            "q_lin",
            "k_lin",
            "v_lin",
            "out_lin",
            "c_attn",
            "query_key_value",
            "Wqkv",
        )
        if n in leaf_names
    ]
    if preferred:
        return preferred
    return sorted(leaf_names - {"classifier", "score", "lm_head", "pre_classifier", "out_proj"})


def apply_lora(bundle: ModelBundle, lora_cfg: LoraConfig) -> None:
    """Wrap bundle.model in a peft LoRA model; the head stays trainable (modules_to_save) for classifiers."""
    if bundle.kind == "vision":
        raise ModelLoadError(
            "model.lora.enabled: LoRA adapters are for Hugging Face text models here; use a freeze strategy for "
            "image models"
        )
    if is_lora(bundle):
        return
    try:
        from peft import LoraConfig as PeftLoraConfig
        from peft import TaskType, get_peft_model
    except ImportError:  # pragma: no cover - peft is a dependency
        raise ModelLoadError("model.lora.enabled needs the peft package; install it with `pip install peft`") from None

    model = bundle.model
    causal = bundle.kind == "hf-causal"
    targets = list(lora_cfg.target_modules) or default_lora_targets(model)
    leaf_names = {n.rpartition(".")[2] for n, _ in model.named_modules()}
    full_names = {n for n, _ in model.named_modules()}
    unknown = [t for t in targets if t not in leaf_names and t not in full_names]
    if unknown and lora_cfg.target_modules:
        raise ConfigError(
            [f"model.lora.target_modules: no module named '{t}' in {type(model).__name__}" for t in unknown]
        )
    # GPT-2 style Conv1D layers store their weight transposed.
    conv1d = any(
        type(m).__name__ == "Conv1D" and (n.rpartition(".")[2] in targets or n in targets)
        for n, m in model.named_modules()
    )
    peft_cfg = PeftLoraConfig(
        fan_in_fan_out=conv1d,
        task_type=TaskType.CAUSAL_LM if causal else TaskType.SEQ_CLS,
        r=lora_cfg.r,
        lora_alpha=lora_cfg.alpha,
        lora_dropout=lora_cfg.dropout,
        target_modules=targets,
        modules_to_save=None if causal else list(bundle.head),
    )
    try:
        peft_model = get_peft_model(model, peft_cfg)
    except (ValueError, TypeError) as e:
        raise ModelLoadError(f"cannot add LoRA adapters to {type(model).__name__}: {e}") from e
    prefix = "base_model.model."
    bundle.model = peft_model
    bundle.head = [prefix + h for h in bundle.head]
    bundle.blocks = [prefix + b for b in bundle.blocks]
    bundle.description += f" + LoRA r={lora_cfg.r}"
