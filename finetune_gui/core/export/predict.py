"""Predictions from an export folder alone, the way a deployment would make them (no run folder, no training code).

    model = load_export("runs/x/exports/20250101-120000")      # ONNX Runtime if there (fp32, else int8), else
                                                                # TorchScript, else .pt2
    model.predict_images(["shoe.png"]); model.predict_texts(["what a film"]); model.generate("Once upon", 20)

Preprocessing comes from preprocessing.json and tokenizer/, labels from labels.json; the artefact is the only
model code that runs. A causal LM's exported graph gives logits; the generation loop here feeds it the text so far
(no key/value cache) and picks the next token greedily, or by sampling when temperature > 0.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from finetune_gui.core.errors import DataError, ExportError
from finetune_gui.core.export.formats import FILES
from finetune_gui.core.inference import MULTILABEL_THRESHOLD, Prediction, sorted_scores

#: Which artefact runs predictions, best first, and what loads it.
BACKENDS = (
    ("onnx", "onnxruntime"),
    ("onnx-int8", "onnxruntime, int8"),
    ("torchscript", "torch.jit"),
    ("pt2", "torch.export"),
    ("hf", "transformers"),
)
TOP_K = 50


def is_export_folder(path: str | Path) -> bool:
    return (Path(path) / "export.json").is_file()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(
            f"{path.parent}: {path.name} missing; the export folder is incomplete, export again"
        ) from None
    except (OSError, ValueError) as e:
        raise ExportError(f"{path}: unreadable ({e})") from None


def outputs_to_predictions(task: str, labels: list[str], outputs: torch.Tensor) -> list[Prediction]:
    """Logits → Predictions, as core.inference makes them (softmax, a sigmoid per label, or the value)."""
    if task.endswith("-regression"):
        return [Prediction(f"{v:.4g}", {}, value=float(v)) for v in outputs.reshape(-1).tolist()]
    if task == "image-multilabel":
        out = []
        for row in torch.sigmoid(outputs).tolist():
            on = tuple(lbl for lbl, p in zip(labels, row) if p >= MULTILABEL_THRESHOLD)
            out.append(Prediction(", ".join(on), sorted_scores(labels, row), labels=on))
        return out
    out = []
    for row in torch.softmax(outputs, dim=1).tolist():
        best = max(range(len(row)), key=row.__getitem__)
        out.append(Prediction(labels[best] if best < len(labels) else str(best), sorted_scores(labels, row)))
    return out


class ExportedModel:
    """One artefact of an export folder with its preprocessing. Not thread-safe."""

    def __init__(self, folder: Path, backend: str, run: Callable[..., torch.Tensor], manifest: dict[str, Any]):
        self.folder, self.backend, self._run = folder, backend, run
        self.warning = ""  # set when the artefact failed verification but was asked for by name
        self.task: str = manifest["task"]
        self.labels: list[str] = [str(x) for x in _read_json(folder / "labels.json").get("labels", [])]
        self.preprocessing: dict[str, Any] = _read_json(folder / "preprocessing.json")
        self.tokenizer = None
        if self.preprocessing.get("kind") in ("text", "causal-lm"):
            from transformers import AutoTokenizer

            tok_dir = folder / self.preprocessing.get("tokenizer", "tokenizer")
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
            except (OSError, ValueError) as e:
                raise ExportError(f"{tok_dir}: the export's tokenizer cannot be loaded ({e})") from None

    @property
    def artefact(self) -> str:
        return FILES[self.backend]

    def describe(self) -> str:
        engine = dict(BACKENDS)[self.backend]
        return f"{self.folder / self.artefact} ({engine})"

    # -- images

    def image_tensor(self, paths: Sequence[str | Path]) -> torch.Tensor:
        from torchvision.transforms import v2

        from finetune_gui.core.data.image_files import load_rgb

        p = self.preprocessing
        transform = v2.Compose(
            [
                v2.Resize(int(p["resize_shorter_side"]), antialias=bool(p.get("antialias", True))),
                v2.CenterCrop(int(p["center_crop"])),
                v2.ToImage(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean=p["mean"], std=p["std"]),
            ]
        )
        tensors = []
        for path in paths:
            try:
                tensors.append(transform(load_rgb(path)))
            except Exception as e:  # noqa: BLE001 - any decoder failure is the same problem to the user
                raise DataError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
        return torch.stack(tensors)

    def predict_images(self, paths: Sequence[str | Path], batch_size: int = 32) -> list[Prediction]:
        if self.preprocessing.get("kind") != "image":
            raise DataError(f"this export is a {self.task} model; it predicts from text, not images")
        paths = list(paths)
        out: list[Prediction] = []
        for a in range(0, len(paths), batch_size):
            out += outputs_to_predictions(
                self.task, self.labels, self._run(self.image_tensor(paths[a : a + batch_size]))
            )
        return out

    # -- text

    def text_batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.preprocessing
        rows = self.tokenizer(list(texts), truncation=True, max_length=int(p["max_length"]), verbose=False)["input_ids"]
        longest = max(len(r) for r in rows)
        ids = torch.full((len(rows), longest), int(p["pad_token_id"]), dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for k, r in enumerate(rows):
            ids[k, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[k, : len(r)] = 1
        return ids, mask

    def predict_texts(self, texts: Sequence[str], batch_size: int = 32) -> list[Prediction]:
        if self.preprocessing.get("kind") != "text":
            what = "images" if self.preprocessing.get("kind") == "image" else "a prompt"
            raise DataError(f"this export is a {self.task} model; it predicts from {what}, not text")
        texts = [str(t) for t in texts]
        if any(not t.strip() for t in texts):
            raise DataError("empty text: give something to predict from")
        out: list[Prediction] = []
        for a in range(0, len(texts), batch_size):
            out += outputs_to_predictions(
                self.task, self.labels, self._run(*self.text_batch(texts[a : a + batch_size]))
            )
        return out

    # -- generation

    def generate(self, prompt: str, max_new_tokens: int = 30, temperature: float = 0.0, seed: int | None = None) -> str:
        """The continuation of `prompt`: greedy at temperature 0, else sampled from the top 50 tokens."""
        if self.preprocessing.get("kind") != "causal-lm":
            raise DataError(f"this export is a {self.task} model; only causal-LM exports write text")
        p, tok = self.preprocessing, self.tokenizer
        ids = tok(prompt, add_special_tokens=False)["input_ids"] if prompt else []
        if not ids:
            start = p.get("bos_token_id") if p.get("bos_token_id") is not None else p.get("eos_token_id")
            if start is None:
                raise DataError("give a prompt: this tokenizer has no start-of-text token to begin from")
            ids = [int(start)]
        window = int(p.get("max_positions") or p["max_length"])
        eos = p.get("eos_token_id")
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        new: list[int] = []
        for _ in range(max(1, int(max_new_tokens))):
            context = (ids + new)[-window:]
            x = torch.tensor([context], dtype=torch.long)
            logits = self._run(x, torch.ones_like(x))[0, -1].float()
            if temperature > 0:
                values, index = torch.topk(logits / float(temperature), min(TOP_K, logits.numel()))
                choice = int(index[torch.multinomial(torch.softmax(values, dim=-1), 1, generator=gen)])
            else:
                choice = int(logits.argmax())
            if eos is not None and choice == int(eos):
                break
            new.append(choice)
        return tok.decode(new, skip_special_tokens=True)


def load_export(folder: str | Path, backend: str | None = None) -> ExportedModel:
    """The export folder's best runnable artefact (or `backend`), ready to predict.

    Raises ExportError when the folder is not an export, has no runnable artefact, or the artefact will not load.
    """
    from finetune_gui.core.export.verify import format_module

    folder = Path(folder)
    if not is_export_folder(folder):
        raise ExportError(f"{folder}: not an export folder (export.json missing); export a run first")
    manifest = _read_json(folder / "export.json")
    present = [fmt for fmt, _ in BACKENDS if fmt in manifest.get("formats", []) and (folder / FILES[fmt]).exists()]
    failed = _failed_verification(folder)
    warning = ""
    if backend is not None:
        if backend not in dict(BACKENDS):
            raise ExportError(f"unknown backend {backend!r}; choose from {', '.join(f for f, _ in BACKENDS)}")
        if backend not in present:
            raise ExportError(f"{folder}: has no {backend} artefact; it has {', '.join(present) or 'none that runs'}")
        if backend in failed:
            warning = f"{FILES[backend]} FAILED verification when it was exported; its predictions may be wrong"
        present = [backend]
    else:
        if importlib.util.find_spec("onnxruntime") is None:  # without it the next format does the work
            present = [fmt for fmt in present if fmt not in ("onnx", "onnx-int8")]
        if present and all(fmt in failed for fmt in present):
            raise ExportError(
                f"{folder}: every runnable artefact failed verification ({', '.join(present)}); export "
                "again, or pick one anyway with --backend"
            )
        present = [fmt for fmt in present if fmt not in failed]
    if not present:
        raise ExportError(
            f"{folder}: no runnable artefact (it holds {', '.join(manifest.get('formats', [])) or 'nothing'}); "
            "predict from the run folder instead, or export onnx, torchscript or pt2"
        )
    fmt = present[0]
    path = folder / FILES[fmt]
    context = _HfContext(manifest["kind"]) if fmt == "hf" else None
    try:
        run = format_module(fmt).load(path, context)
    except ExportError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged file, said in words
        raise ExportError(
            f"cannot load {path} ({type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}); "
            "the file is damaged: export the run again"
        ) from None
    model = ExportedModel(folder, fmt, run, manifest)
    model.warning = warning
    return model


def _failed_verification(folder: Path) -> set[str]:
    """The formats verification.json marks as failed (none when it is missing or unreadable)."""
    try:
        results = json.loads((folder / "verification.json").read_text(encoding="utf-8"))["results"]
        return {r["format"] for r in results if not r.get("passed")}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


class _HfContext:
    """What hf.load needs to know about the model: whether it is a causal LM."""

    def __init__(self, kind: str):
        self.kind = kind
