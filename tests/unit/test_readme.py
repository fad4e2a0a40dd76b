"""The README stays true: its config reference matches the config model, and CI runs its test command."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _reference_module():
    spec = importlib.util.spec_from_file_location("config_reference", REPO / "scripts" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_config_reference_is_current():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert _reference_module().updated_readme(readme) == readme, "run: python scripts/config_reference.py"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()
