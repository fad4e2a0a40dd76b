#!/usr/bin/env bash
# Build the Linux bundle (PyInstaller, one folder) and a .deb, and self-test both.
#
#   bash packaging/build_linux.sh                 # bundle + .deb, ~15-30 min and ~15 GB of disk on 2 cores
#   bash packaging/build_linux.sh --reuse-bundle  # keep dist/finetune-gui, rebuild and re-test the .deb only
#
# Output: dist/finetune-gui/ (the bundle; run dist/finetune-gui/finetune-gui) and
# dist/finetune-gui_<version>_<arch>.deb. Both are self-tested (`--self-test`: offscreen, offline, one training
# step, ONNX export); the script stops with a non-zero exit at the first thing that fails.
# Environment: DEB_MAINTAINER ("Name <email>"), DEB_COMPRESSION (zstd|xz|gzip|none, default zstd), DEB_LEVEL
# (default 3 for zstd, 6 otherwise), PYTHON (default .venv/bin/python). zstd, not xz: xz -6 packs the ~4 GB
# CUDA bundle at ~3 MB/s (20+ min on 2 cores) for a few % less; CUDA's libraries hold compressed code already.
# Every dpkg that can run this bundle reads zstd (Debian 12+, Ubuntu 21.10+; the bundle needs their glibc).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PYTHON="${PYTHON:-.venv/bin/python}"
REUSE_BUNDLE=0
for arg in "$@"; do
    case "$arg" in
        --reuse-bundle) REUSE_BUNDLE=1 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "error: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done

step() { printf '\n== %s\n' "$*"; }
die() { echo "error: $*" >&2; exit 1; }
START=$SECONDS

[ -x "$PYTHON" ] || die "no Python at $PYTHON: run 'bash scripts/run.sh' once (it makes .venv), or set PYTHON"
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing: install the 'dpkg' package (Debian/Ubuntu)"
VERSION="$("$PYTHON" -c 'import finetune_gui; print(finetune_gui.__version__)')"
ARCH="$(dpkg --print-architecture)"
BUNDLE="dist/finetune-gui"
DEB="dist/finetune-gui_${VERSION}_${ARCH}.deb"
STAGE="build/deb/finetune-gui_${VERSION}_${ARCH}"
SCRATCH="build/deb-installed"

free_gb=$(df -Pk "$REPO" | awk 'NR==2 {print int($4 / 1048576)}')
[ "$free_gb" -ge 15 ] || die "only ${free_gb} GB free under $REPO; the build needs about 15 GB (bundle, staging copy, .deb)"

step "finetune-gui $VERSION for $ARCH"
if ! "$PYTHON" -c 'import PyInstaller, onnxruntime, onnxscript' 2>/dev/null; then
    step "installing the packaging and export extras into the venv"
    "$PYTHON" -m pip install --quiet -e ".[packaging,export]"
fi
"$PYTHON" -c 'import PyInstaller; print("PyInstaller", PyInstaller.__version__)'

if [ "$REUSE_BUNDLE" = 1 ]; then
    [ -x "$BUNDLE/finetune-gui" ] || die "--reuse-bundle: there is no $BUNDLE/finetune-gui yet; run without it"
    echo "reusing $BUNDLE"
else
    step "building the bundle (PyInstaller)"
    t0=$SECONDS
    "$PYTHON" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
        packaging/finetune_gui.spec
    BUNDLE_TIME=$((SECONDS - t0))
    echo "bundle built in $((BUNDLE_TIME / 60)) min $((BUNDLE_TIME % 60)) s"
fi

# The self-test runs with a bare environment from a neutral folder, so it cannot lean on the venv or the
# checkout: only what is inside the bundle counts.
self_test() {
    local exe="$1"
    (cd /tmp && env -i HOME="$HOME" PATH=/usr/bin:/bin LANG=C.UTF-8 "$exe" --self-test)
}

step "self-test of the bundle"
self_test "$REPO/$BUNDLE/finetune-gui" || die "the bundle's self-test failed (lines above say which check)"

step "staging the .deb"
rm -rf "$STAGE" && mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
    "$STAGE/usr/share/icons/hicolor/256x256/apps" "$STAGE/usr/share/doc/finetune-gui"
cp -al "$BUNDLE" "$STAGE/opt/finetune-gui" 2>/dev/null || cp -a "$BUNDLE" "$STAGE/opt/finetune-gui"  # hard links: no 2nd copy
ln -s /opt/finetune-gui/finetune-gui "$STAGE/usr/bin/finetune-gui"
install -m 644 packaging/linux/finetune-gui.desktop "$STAGE/usr/share/applications/finetune-gui.desktop"
"$PYTHON" - "$STAGE/usr/share/icons/hicolor/256x256/apps/finetune-gui.png" <<'EOF'
import sys
from PIL import Image
Image.open("resources/icon.png").resize((256, 256), Image.LANCZOS).save(sys.argv[1], optimize=True)
EOF
chmod 644 "$STAGE/usr/share/icons/hicolor/256x256/apps/finetune-gui.png"
install -m 644 packaging/linux/copyright "$STAGE/usr/share/doc/finetune-gui/copyright"
INSTALLED_KB=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
GLIBC="$("$PYTHON" packaging/linux/check_deps.py --glibc "$BUNDLE")"  # the build machine's libraries set the floor
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@INSTALLED_KB@/$INSTALLED_KB/" -e "s/@GLIBC@/$GLIBC/" \
    -e "s/@MAINTAINER@/${DEB_MAINTAINER:-finetune-gui developers <finetune-gui@users.noreply.github.com>}/" \
    packaging/linux/control.in > "$STAGE/DEBIAN/control"
chmod 644 "$STAGE/DEBIAN/control"

# Every shared library the bundle loads from the system must come from a package in Depends.
step "system libraries the bundle links to, and the glibc it needs ($GLIBC)"
"$PYTHON" packaging/linux/check_deps.py "$BUNDLE" "$STAGE/DEBIAN/control" || die "Depends misses a library (above)"

step "building the .deb"
COMPRESSION="${DEB_COMPRESSION:-zstd}"
case "$COMPRESSION" in zstd) LEVEL="${DEB_LEVEL:-3}" ;; *) LEVEL="${DEB_LEVEL:-6}" ;; esac
t0=$SECONDS
rm -f "$DEB"
dpkg-deb --root-owner-group -Z"$COMPRESSION" -z"$LEVEL" --build "$STAGE" "$DEB"
DEB_TIME=$((SECONDS - t0))
rm -rf "$STAGE"

step "checking the .deb"
dpkg-deb --info "$DEB"
contents="$(dpkg-deb --contents "$DEB")"
for path in ./opt/finetune-gui/finetune-gui ./usr/bin/finetune-gui ./usr/share/applications/finetune-gui.desktop \
        ./usr/share/icons/hicolor/256x256/apps/finetune-gui.png ./opt/finetune-gui/_internal/presets/demo-fashion.toml; do
    grep -q " $path\( \|$\)" <<<"$contents" || die "the .deb lacks $path"
done
echo "$(wc -l <<<"$contents") entries; the launcher, /usr/bin link, .desktop entry, icon and presets are there"
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate packaging/linux/finetune-gui.desktop && echo "desktop-file-validate: ok"
fi
if command -v lintian >/dev/null; then
    # A PyInstaller bundle breaks several Debian-archive rules by design (bundled libraries, no man page,
    # unstripped binaries under /opt); lintian's findings are shown, not treated as failures. It reads every
    # one of the ~7,600 files: about 20 min here, so it has a time limit (LINTIAN_TIMEOUT seconds, 0 = skip).
    if [ "${LINTIAN_TIMEOUT:-1800}" != 0 ]; then
        timeout "${LINTIAN_TIMEOUT:-1800}" lintian --tag-display-limit 0 "$DEB" > build/lintian.txt 2>&1 \
            || [ $? != 124 ] || echo "lintian: stopped after ${LINTIAN_TIMEOUT:-1800} s"
        echo "lintian: $(grep -c '^E:' build/lintian.txt) errors, $(grep -c '^W:' build/lintian.txt) warnings" \
             "(all in build/lintian.txt); by tag:"
        grep -E '^[EW]:' build/lintian.txt | awk '{print $1, $3}' | sort | uniq -c | sort -rn | head -20 || true
    fi
else
    echo "lintian is not installed: skipped (apt-get install lintian)"
fi

step "installing the .deb into a scratch root (dpkg -x) and self-testing it there"
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH"
dpkg -x "$DEB" "$SCRATCH"
# /usr/bin/finetune-gui is an absolute link into /opt; re-create it inside the scratch root to prove that the
# launcher finds its _internal/ folder when started through a link.
ln -sfn "$REPO/$SCRATCH/opt/finetune-gui/finetune-gui" "$SCRATCH/usr/bin/finetune-gui"
self_test "$REPO/$SCRATCH/usr/bin/finetune-gui" || die "the installed .deb's self-test failed"
rm -rf "$SCRATCH"

step "summary"
echo "bundle:      $BUNDLE  $(du -sh "$BUNDLE" | cut -f1)  ($(find "$BUNDLE" -type f | wc -l) files)"
echo ".deb:        $DEB  $(du -h "$DEB" | cut -f1)  ($COMPRESSION -$LEVEL, installed size $((INSTALLED_KB / 1024)) MiB)"
[ -n "${BUNDLE_TIME:-}" ] && echo "bundle time: $((BUNDLE_TIME / 60)) min $((BUNDLE_TIME % 60)) s"
echo ".deb time:   $((DEB_TIME / 60)) min $((DEB_TIME % 60)) s"
echo "total time:  $(((SECONDS - START) / 60)) min $(((SECONDS - START) % 60)) s"
