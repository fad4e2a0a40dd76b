#!/usr/bin/env bash
# The whole test suite, headless. Extra arguments go to pytest (e.g. -m "not real").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# the real-weights tests (tests/real) need assets listed in ../shared; elsewhere they skip with the reason
if [ -f "${FINETUNE_GUI_SHARED:-../shared}/OFFLINE_ASSETS.md" ]; then bash scripts/setup_real_assets.sh; fi
# lint first: ruff's rules and formatting (pyproject.toml [tool.ruff]), then the import layers ([tool.importlinter])
.venv/bin/ruff check --quiet . || { echo "ruff found the problems above; \`.venv/bin/ruff check --fix .\` fixes many" >&2; exit 1; }
.venv/bin/ruff format --check --quiet . || { echo "files above differ from ruff format; run \`.venv/bin/ruff format .\`" >&2; exit 1; }
.venv/bin/lint-imports --no-cache > /tmp/finetune-gui-lint-imports.txt 2>&1 || { cat /tmp/finetune-gui-lint-imports.txt >&2; echo "an import breaks the layers in pyproject.toml [tool.importlinter]" >&2; exit 1; }
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest "$@"
