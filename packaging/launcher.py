"""Entry script of the frozen app: the same as `python -m finetune_gui` (no arguments opens the app)."""

import multiprocessing
import sys

if __name__ == "__main__":
    # Data-loader worker processes re-run this executable on Windows and macOS (spawn); without this call each
    # of them would start another copy of the app instead of the worker.
    multiprocessing.freeze_support()
    from finetune_gui.cli import main

    sys.exit(main())
