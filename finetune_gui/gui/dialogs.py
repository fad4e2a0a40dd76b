"""Error dialogs: the message first, the technical details behind a button."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def error_box(parent: QWidget | None, title: str, message: str, details: str = "") -> QMessageBox:
    """A non-blocking error dialog (shown with open(), so tests and workers never hang on it)."""
    box = QMessageBox(parent)
    box.setObjectName("errorDialog")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(message)
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.open()
    return box


FRIENDLY_TITLES = {
    "DataError": "Problem with the data",
    "ModelLoadError": "The model could not be loaded",
    "OfflineError": "Offline: the model is not on this computer",
    "OutOfMemory": "Out of memory",
    "Diverged": "Training diverged",
    "ConfigError": "Setting not allowed",
    "RunStateError": "Run folder problem",
}


#: Failures the user can act on: said once, inline where they happened, with what to do. Any other error
#: type is a fault of the app and gets the error dialog with its details.
EXPECTED_ERRORS = frozenset(
    {
        "DataError",
        "UnreadableFile",
        "ModelLoadError",
        "OfflineError",
        "ConfigError",
        "RunStateError",
        "StorageError",
        "ExportError",
        "OutOfMemory",
        "Diverged",
    }
)


def is_expected(error_type: str) -> bool:
    """Whether a failure is the user's to fix (shown inline) rather than a fault of the app (a dialog)."""
    return error_type in EXPECTED_ERRORS


def title_for(error_type: str) -> str:
    return FRIENDLY_TITLES.get(error_type, "Something went wrong")
