"""The PySide6 desktop app. Holds no training logic: it edits the config and talks to the engine through worker.py."""
