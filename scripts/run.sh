#!/usr/bin/env bash
# The main job: the desktop app when there is a display, otherwise the headless demo preset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
has_display() { [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || [ "$(uname -s)" = Darwin ]; }
if has_display && .venv/bin/python -c "import finetune_gui.gui.app" 2>/dev/null; then
    exec .venv/bin/finetune-gui "$@"
fi
echo "no display: running the headless demo preset (presets/demo-fashion.toml)" >&2
exec .venv/bin/finetune-gui train presets/demo-fashion.toml "$@"
