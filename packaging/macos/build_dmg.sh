#!/usr/bin/env bash
# Build "Finetune GUI.app" with PyInstaller and pack it into a .dmg, on macOS (12+, Apple silicon or Intel).
#
#   bash packaging/macos/build_dmg.sh
#
# Output: dist/Finetune GUI.app and dist/finetune-gui-<version>-macos-<arch>.dmg. The app is self-tested
# before packing, and again from the mounted .dmg. Uses create-dmg when it is installed (brew install create-dmg:
# a window with the app and an Applications link laid out), else plain hdiutil (same contents, default layout).
#
# Signing: without MACOS_SIGN_IDENTITY the app is ad-hoc signed, which runs on the machine that built it and,
# after the user right-clicks > Open once, on others. For distribution set MACOS_SIGN_IDENTITY ("Developer ID
# Application: ...") and, to notarize, MACOS_NOTARY_PROFILE (a profile stored with
# `xcrun notarytool store-credentials`).
#
# Not run on the machine this was written on (Linux); built by .github/workflows/installers.yml on macos-14.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
PYTHON="${PYTHON:-.venv/bin/python}"
APP="dist/Finetune GUI.app"
die() { echo "error: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }
START=$SECONDS

[ "$(uname -s)" = Darwin ] || die "this script builds a macOS .dmg and runs only on macOS"
[ -x "$PYTHON" ] || die "no Python at $PYTHON: make the venv (bash scripts/run.sh) or set PYTHON"
VERSION="$("$PYTHON" -c 'import finetune_gui; print(finetune_gui.__version__)')"
ARCH="$(uname -m)"
DMG="dist/finetune-gui-${VERSION}-macos-${ARCH}.dmg"

if ! "$PYTHON" -c 'import PyInstaller, onnxruntime, onnxscript' 2>/dev/null; then
    step "installing the packaging and export extras into the venv"
    "$PYTHON" -m pip install --quiet -e ".[packaging,export]"
fi

step "building $APP (PyInstaller)"
"$PYTHON" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
    packaging/finetune_gui.spec
[ -d "$APP" ] || die "PyInstaller did not make $APP"

self_test() {  # a bare environment from a neutral folder: only what is inside the app counts
    (cd /tmp && env -i HOME="$HOME" PATH=/usr/bin:/bin LANG=en_US.UTF-8 "$1/Contents/MacOS/finetune-gui" --self-test)
}
step "self-test of the app"
self_test "$REPO/$APP" || die "the app's self-test failed (lines above say which check)"

step "signing"
if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    codesign --force --deep --options runtime --timestamp --sign "$MACOS_SIGN_IDENTITY" "$APP"
else
    codesign --force --deep --sign - "$APP"  # ad-hoc: required for arm64 binaries to run at all
fi
codesign --verify --deep --strict "$APP"

step "packing $DMG"
rm -f "$DMG"
if command -v create-dmg >/dev/null; then
    create-dmg --volname "Finetune GUI $VERSION" --volicon resources/icon.icns --window-size 540 360 \
        --icon-size 96 --icon "Finetune GUI.app" 140 170 --app-drop-link 400 170 --no-internet-enable \
        "$DMG" "$APP"
else
    staging="$(mktemp -d)"
    trap 'rm -rf "$staging"' EXIT
    cp -R "$APP" "$staging/"
    ln -s /Applications "$staging/Applications"
    hdiutil create -volname "Finetune GUI $VERSION" -srcfolder "$staging" -fs HFS+ -format UDZO -ov "$DMG"
fi
if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    codesign --sign "$MACOS_SIGN_IDENTITY" --timestamp "$DMG"
    if [ -n "${MACOS_NOTARY_PROFILE:-}" ]; then
        xcrun notarytool submit "$DMG" --keychain-profile "$MACOS_NOTARY_PROFILE" --wait
        xcrun stapler staple "$DMG"
    fi
fi
hdiutil verify "$DMG"

step "self-test from the mounted .dmg"
mount="$(mktemp -d)"
hdiutil attach -readonly -nobrowse -mountpoint "$mount" "$DMG" >/dev/null
ok=0
self_test "$mount/Finetune GUI.app" || ok=1
hdiutil detach "$mount" >/dev/null
[ "$ok" = 0 ] || die "the app inside the .dmg failed its self-test"

step "summary"
echo "app:   $APP  $(du -sh "$APP" | cut -f1)"
echo "dmg:   $DMG  $(du -h "$DMG" | cut -f1)"
echo "time:  $(((SECONDS - START) / 60)) min $(((SECONDS - START) % 60)) s"
