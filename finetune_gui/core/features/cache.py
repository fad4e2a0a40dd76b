"""The frozen-feature cache: when every layer below a cut is frozen and nothing random acts before it, the cut's
output is computed once per split (eval mode, no gradients, autocast where the device has it) and the run
trains and evaluates only the tail from it.

`attach_feature_cache(p, runs_folder, say)` decides (and logs why not), and returns the Prepared with loaders
that yield cached features and the tail to run on them. Each split is built lazily, the first time its loader
is read (after a resume has restored the weights), and kept in a file named by a content key: a hash of the
frozen weights, the cut, the dtype and device kind, and the split (its files' paths, sizes and times and the
preprocessing, or for text the token ids themselves). A run with the same key reuses the file; a changed
key builds a new one; a damaged file is rebuilt. With random per-sample augmentation and
train.feature_cache_aug_copies set, the training split holds augmented copies (see copies.py; their count, the
augmentation settings and the seed are in its key).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler

from finetune_gui.core.features.copies import AugmentedCopy, copies_key, copies_to_extract, copies_words, copy_row
from finetune_gui.core.features.cut import BaseOutputCapture, Cut, HeadInputCapture, refusal, text_cut, vision_cut
from finetune_gui.core.features.folder_limit import mark_used, trim_folder
from finetune_gui.core.features.graph_cut import graph_cut
from finetune_gui.core.features.layer_cut import differing_samples, layer_cut, stored_bytes, tail_matches_model
from finetune_gui.core.features.store import DamagedCache, Stored, TensorWriter, open_cache, write_cache
from finetune_gui.core.training.events import Listener, LogMessage
from finetune_gui.core.training.prepare import Prepared, make_loader

KEY_VERSION = 1
CACHE_FOLDER = ".feature-cache"


def split_fingerprint(dataset: Dataset) -> dict | None:
    """What identifies a split's inputs: image files (path, size, mtime) and preprocessing, or token ids.
    None for a data set of another kind (then there is no cache)."""
    if hasattr(dataset, "paths") and hasattr(dataset, "transform"):
        files = []
        for path in dataset.paths:
            try:
                st = os.stat(path)
                files.append([str(path), st.st_size, st.st_mtime_ns])
            except OSError:
                files.append([str(path), -1, -1])
        targets = [t if isinstance(t, (int, float, str)) else list(t) for t in dataset.targets]
        # images decoded once are resized by their store_transform, before `transform` (core/data/decoded.py)
        stored = repr(getattr(dataset, "store_transform", None))
        return {"kind": "images", "transform": repr(dataset.transform), "stored": stored, "files": files,
                "targets": targets}  # fmt: skip
    if hasattr(dataset, "input_ids"):
        ids = hashlib.sha256(json.dumps(dataset.input_ids).encode()).hexdigest()
        return {"kind": "tokens", "ids": ids, "targets": list(dataset.targets)}
    return None


def frozen_weights_hash(model: nn.Module, head: list[str], only: list[str] | None = None) -> str:
    """SHA-256 of every parameter and buffer outside the head, or of those under `only` (names, dtypes, shapes
    and values)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        if only is not None and not any(name == x or name.startswith(x + ".") for x in only):
            continue
        if only is None and any(name == x or name.startswith(x + ".") for x in head):
            continue
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        t = t.detach().contiguous().cpu().reshape(-1)
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def frozen_dropout(model: nn.Module, cut: Cut, head: list[str]) -> int:
    """Dropout layers with p > 0 below the cut: with the cache they act as in evaluation (off)."""
    if cut.frozen_modules is not None:  # the modules and what they hold (layer_cut names whole layers)
        below = [
            m for n, m in model.named_modules() if any(n == x or n.startswith(x + ".") for x in cut.frozen_modules)
        ]
    elif cut.kind == "head-input":
        below = [m for n, m in model.named_modules() if not any(n == x or n.startswith(x + ".") for x in head)]
    else:
        below = list(getattr(model, model.base_model_prefix).modules())
    return sum(1 for m in below if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0)


def to_device(batch: Any, device: torch.device) -> Any:
    """A batch (tensor, tuple/list or dict of tensors) on `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


class FeatureCache:
    """The cut's output for each split of one run, built or reused on first use."""

    def __init__(self, p: Prepared, cut: Cut, folder: Path, say: Listener):
        self.p, self.cut, self.folder, self.say = p, cut, folder, say
        self.ram_bytes = p.config.train.feature_cache_ram_mb * 2**20
        self.splits: dict[str, Stored] = {}
        self.in_use: set[Path] = set()  # this run's files: never deleted to keep the folder under its limit
        self.frozen_hash: str | None = None
        self.copies = copies_to_extract(p.config) if not cut.is_text else 0  # of each training image

    def copies_of(self, split: str) -> int:
        """Augmented copies the split holds (0: one plain pass)."""
        return self.copies if split == "train" else 0

    def key(self, dataset: Dataset, copies: int = 0) -> str:
        p = self.p
        if self.frozen_hash is None:
            self.frozen_hash = frozen_weights_hash(p.model, p.bundle.head, self.cut.frozen_modules)
        parts = {"version": KEY_VERSION, "cut": self.cut.describe(), "model": type(p.model).__name__,
                 "frozen": self.frozen_hash, "dtype": str(p.amp_dtype), "device": p.device.type,
                 "split": split_fingerprint(dataset)}  # fmt: skip
        if copies:  # a plain cache keeps its key, so the files of runs without copies stay valid
            parts["augmented"] = copies_key(p.config, copies)
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def path(self, split: str, key: str) -> Path:
        return self.folder / f"{split}-{key[:32]}.features"

    def get(self, split: str, dataset: Dataset) -> Stored:
        """The split's cached tensors: reused from its file when the key matches and the file checks out."""
        if split in self.splits:
            return self.splits[split]
        copies = self.copies_of(split)
        key = self.key(dataset, copies)
        path = self.path(split, key)
        stored = None
        if path.exists():
            try:
                stored = open_cache(path, key, self.ram_bytes)
                mark_used(path)
                self.say(LogMessage("info", f"feature cache: reused the {split} features in {path}"))
            except (DamagedCache, KeyError, OSError, ValueError) as e:
                self.say(LogMessage("warning", f"feature cache: {e}; computing the {split} features again"))
        if stored is None:
            started = time.monotonic()  # a long pass on a big split: say what the run is doing meanwhile
            what = f"{copies} augmented copies of the {split} features" if copies else f"the {split} features"
            self.say(LogMessage("info", f"feature cache: computing {what} of {len(dataset)} samples"))
            write_cache(path, key, lambda w: self.compute(dataset, w, copies))
            stored = open_cache(path, key, self.ram_bytes)
            held = "memory-mapped" if stored.mapped else "in memory"
            self.say(LogMessage("info", f"feature cache: computed {len(dataset)} {split} features "
                                f"({stored.nbytes / 2**20:.1f} MB, {held}) in {time.monotonic() - started:.1f} s"))  # fmt: skip
            self.keep_folder_in_limit(path)
        self.in_use.add(path)
        self.splits[split] = stored
        return stored

    def keep_folder_in_limit(self, written: Path) -> None:
        """After writing a file: delete the folder's least recently used other files down to
        train.feature_cache_disk_mb (logged)."""
        limit_mb = self.p.config.train.feature_cache_disk_mb
        if not limit_mb:
            return
        trimmed = trim_folder(self.folder, limit_mb * 2**20, self.in_use | {written})
        line = trimmed.describe(self.folder, limit_mb)
        if line:
            self.say(LogMessage("info", line))

    @torch.no_grad()
    def compute(self, dataset: Dataset, writer: TensorWriter, copies: int = 0) -> None:
        """One pass of the frozen part over a split, in eval mode; streams the cut's output into `writer`.
        copies: one pass per augmented copy instead (image models), their rows one copy after another."""
        p, cut, model = self.p, self.cut, self.p.model
        passes = [AugmentedCopy(dataset, p.config.train.seed, k) for k in range(copies)] or [dataset]
        autocast = torch.autocast(p.device.type, dtype=p.amp_dtype) if p.amp_dtype else nullcontext()
        vision = not cut.is_text
        # per-token states ("hidden") are stored padded to the split's longest sample; the batch's mask goes with them
        longest = max((len(ids) for ids in dataset.input_ids), default=0) if cut.kind == "hidden" else 0
        kept = [(n, mode) for n, mode, _ in cut.fields if mode in ("all", "first")]
        later: dict[str, list[torch.Tensor]] = {}
        was_training = model.training
        model.eval()  # frozen BatchNorm statistics stay as they are; dropout is off
        capture: Any = None
        if cut.kind == "base-output":
            capture = BaseOutputCapture(getattr(model, model.base_model_prefix))
        elif vision and cut.prefix is None:
            capture = HeadInputCapture(cut.tail)
        try:
            for copy, part in enumerate(passes):
                for batch in make_loader(part, p.config.train.batch_size, p.data, p.config):
                    batch = to_device(batch, p.device)
                    with autocast:
                        if vision:
                            out = model(batch[0]) if cut.prefix is None else cut.prefix(batch[0])
                            writer.add("features", capture.value if capture is not None else out)
                            if copy == 0:  # the copies share their targets
                                later.setdefault("targets", []).append(batch[1])
                            continue
                        if cut.kind == "hidden":
                            states = cut.prefix(batch["input_ids"], batch["attention_mask"])
                            writer.add("feature_hidden", F.pad(states, (0, 0, 0, longest - states.shape[1])))
                            continue
                        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                    for i, (name, mode) in enumerate(kept):
                        value = capture.value[name]
                        value = value[:, :1] if mode == "first" else value
                        if i == 0:
                            writer.add(f"feature_{name}", value)
                        else:
                            later.setdefault(f"feature_{name}", []).append(value.cpu())
        finally:
            if capture is not None:
                capture.remove()
            model.train(was_training)
        for name, parts in later.items():
            writer.add(name, torch.cat([t.cpu() for t in parts]))


class CachedSplit(Dataset):
    """A split served from the cache: indexed by a list of sample keys (one batch), read lazily."""

    def __init__(self, cache: FeatureCache, split: str, dataset: Dataset):
        self.cache, self.split, self.dataset = cache, split, dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, keys: list) -> Any:
        stored = self.cache.get(self.split, self.dataset).tensors
        rows = [k[0] if isinstance(k, tuple) else k for k in keys]  # training keys are (index, epoch)
        index = torch.tensor(rows, dtype=torch.long)
        if not self.cache.cut.is_text:
            copies = self.cache.copies_of(self.split)
            if copies:
                index_of_copy = [copy_row(i, epoch, len(self.dataset), copies) for i, epoch in keys]
                return stored["features"][torch.tensor(index_of_copy, dtype=torch.long)], stored["targets"][index]
            return stored["features"][index], stored["targets"][index]
        batch = self.cache.p.data.collate_fn([self.dataset[i] for i in rows])
        steps = batch["input_ids"].shape[1]  # per-token states: cut to the batch's padded length
        per_token = self.cache.cut.kind == "hidden"
        batch.update(
            {n: t[index, :steps] if per_token else t[index] for n, t in stored.items() if n.startswith("feature_")}
        )
        return batch


def cached_loader(cache: FeatureCache, split: str, dataset: Dataset, like: DataLoader | None, sampler) -> Any:
    """A loader with the batches of `like` (same order, size and last-batch rule), served from the cache."""
    if like is None:
        return None
    batches = BatchSampler(sampler, like.batch_size, like.drop_last)
    # its own generator, as `like` has: without one each epoch's iterator draws its seed from the global RNG,
    # which a run resumed mid-epoch would draw at another point (then dropout above the cut would differ)
    return DataLoader(CachedSplit(cache, split, dataset), batch_size=None, sampler=batches, num_workers=0,
                      generator=torch.Generator().manual_seed(cache.p.config.train.seed))  # fmt: skip


def find_cut(p: Prepared) -> Cut | str:
    """The cut of the run's model (a string says why there is none)."""
    if p.bundle.kind == "vision":
        if p.config.model.freeze == "head-only":
            return vision_cut(p.bundle)
        return checked_graph_cut(p)
    if p.bundle.kind != "hf-sequence":
        return f"{p.bundle.kind} models are not covered"
    base = getattr(p.model, getattr(p.model, "base_model_prefix", ""), None)
    if isinstance(base, nn.Module) and any(q.requires_grad for q in base.parameters()):  # last-n, modules
        return checked_layer_cut(p)
    take = min(4, len(p.data.train))
    probe = p.data.collate_fn([p.data.train[i] for i in range(take)])
    return text_cut(p.bundle, {k: v.to(p.device) for k, v in probe.items()})


def checked_layer_cut(p: Prepared) -> Cut | str:
    """The layer cut of a Hugging Face encoder, checked on two training samples of different lengths."""
    found = layer_cut(p.model, p.bundle.blocks)
    if isinstance(found, str):
        return found
    lengths = [len(ids) for ids in p.data.train.input_ids[:16]]
    batch = p.data.collate_fn([p.data.train[i] for i in differing_samples(lengths)])
    if not tail_matches_model(found, p.model, {k: v.to(p.device) for k, v in batch.items()}):
        return "the model split at its cut does not give the model's output"
    limit_mb = p.config.train.feature_cache_disk_mb
    need = stored_bytes([p.data.train, p.data.val, p.data.test], p.model.config.hidden_size)
    if limit_mb and need > limit_mb * 2**20:  # per-token states grow with the split's longest sample
        return (
            f"the hidden states would take {need / 2**20:.0f} MB, more than train.feature_cache_disk_mb ({limit_mb} MB)"
        )
    return Cut("hidden", f"{found.where} (kept with the attention mask)", found.tail, prefix=found.prefix,
               frozen_modules=found.frozen_modules)  # fmt: skip


def checked_graph_cut(p: Prepared) -> Cut | str:
    """The graph cut of an image model, checked on two training pictures: tail(prefix(x)) must be model(x)."""
    found = graph_cut(p.model)
    if isinstance(found, str):
        return found
    with torch.random.fork_rng(devices=[]):  # random augmentation (augmented copies) leaves the run's RNG alone
        images = torch.stack([p.data.train[i][0] for i in range(min(2, len(p.data.train)))]).to(p.device)
    was_training = p.model.training
    p.model.eval()
    try:
        with torch.no_grad():
            same = torch.allclose(found.tail(found.prefix(images)), p.model(images), atol=1e-5)
    finally:
        p.model.train(was_training)
    if not same:
        return "the model split at its cut does not give the model's output"
    return Cut("graph", f"the output of {found.where}", found.tail, prefix=found.prefix,
               frozen_modules=found.frozen_modules)  # fmt: skip


def attach_feature_cache(p: Prepared, runs_folder: Path, say: Listener) -> Prepared:
    """The Prepared to train with: from cached features when the run allows it (logged either way)."""
    cfg = p.config
    reason = refusal(cfg, p.bundle)
    if reason is None:
        unknown = [s for s, d in (("train", p.data.train), ("val", p.data.val)) if split_fingerprint(d) is None]
        reason = f"the {unknown[0]} split's files cannot be fingerprinted" if unknown else None
    cut = find_cut(p) if reason is None else reason
    if isinstance(cut, str):
        say(LogMessage("info", f"feature cache: off - {cut}"))
        return p
    folder = Path(cfg.train.feature_cache_dir) if cfg.train.feature_cache_dir else Path(runs_folder) / CACHE_FOLDER
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        say(LogMessage("info", f"feature cache: off - cannot write to {folder} (set train.feature_cache_dir)"))
        return p
    cache = FeatureCache(p, cut, folder, say)

    def plain(ds: Dataset) -> SequentialSampler:
        return SequentialSampler(range(len(ds)))

    loaders = {
        "train_loader": cached_loader(cache, "train", p.data.train, p.train_loader, p.sampler),
        "val_loader": cached_loader(cache, "val", p.data.val, p.val_loader, plain(p.data.val)),
        "test_loader": cached_loader(cache, "test", p.data.test, p.test_loader, plain(p.data.test)),
    }
    dropped = frozen_dropout(p.model, cut, p.bundle.head)
    note = f"; the frozen part's {dropped} dropout layer(s) act as in evaluation (off)" if dropped else ""
    copies = f"{copies_words(cache.copies, cfg)}; " if cache.copies else ""
    verb = "are" if cut.kind == "hidden" else "is"
    say(
        LogMessage("info", f"feature cache: on - {copies}{cut.where} {verb} computed once per split, in {folder}{note}")
    )
    return dataclasses.replace(p, **loaders, tail=cut.tail)
