"""Errors the user can act on. Each message says what went wrong and what to do."""

from __future__ import annotations

from finetune_gui.config import ConfigError

__all__ = [
    "ConfigError",
    "DataError",
    "Diverged",
    "ExportError",
    "FinetuneError",
    "ModelLoadError",
    "OfflineError",
    "OutOfMemory",
    "RunStateError",
    "StorageError",
]


class FinetuneError(Exception):
    """Base of the errors a user can act on (as opposed to bugs)."""


class DataError(FinetuneError):
    """The data cannot be read or cannot train a model."""


class ModelLoadError(FinetuneError):
    """A model or its weights could not be loaded."""


class OfflineError(ModelLoadError):
    """Weights are needed from the internet but there is no connection or offline mode is on."""


class OutOfMemory(FinetuneError):
    """The device ran out of memory; the message suggests a batch size."""


class Diverged(FinetuneError):
    """The loss became NaN or infinite."""


class RunStateError(FinetuneError):
    """A run folder or checkpoint is missing, damaged or incompatible."""


class StorageError(FinetuneError):
    """The run folder cannot be written: the disk is full, a quota is reached, or it is read-only."""


class ExportError(FinetuneError):
    """A trained model cannot be exported as asked: an unusable run, a format the task does not support, or an
    export folder that already holds files."""
