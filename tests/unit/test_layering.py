"""The engine runs without Qt: importing it never loads PySide6 or pyqtgraph."""

import subprocess
import sys


def test_importing_the_engine_and_config_never_loads_qt():
    code = (
        "import sys\n"
        "import finetune_gui.config, finetune_gui.presets, finetune_gui.cli\n"
        "import finetune_gui.core.training.engine, finetune_gui.core.training.lr_find\n"
        "import finetune_gui.core.models.catalog, finetune_gui.core.models.freezing\n"
        "import finetune_gui.core.data, finetune_gui.core.runs\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6'))\n"
        "assert not bad, bad\n"
        "assert not any(m.startswith('finetune_gui.gui') for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_cli_module_does_not_import_torch_until_a_command_needs_it():
    code = "import sys, finetune_gui.cli, finetune_gui.config; assert 'torch' not in sys.modules, 'torch loaded'"
    subprocess.run([sys.executable, "-c", code], check=True)
