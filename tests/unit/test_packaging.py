"""The installer recipes' own logic, without building anything (the build is `bash packaging/build_linux.sh`)."""

from __future__ import annotations

import configparser
import importlib.util
import re
from pathlib import Path

from PIL import Image

import finetune_gui

REPO = Path(__file__).resolve().parents[2]


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_deps = _load(REPO / "packaging" / "linux" / "check_deps.py")


def test_depends_is_read_across_continuation_lines_alternatives_and_versions(tmp_path):
    control = tmp_path / "control"
    control.write_text(
        "Package: x\nDepends: libc6 (>= 2.36), libgl1 | libgl1-mesa-glx,\n libxcb1, libegl1 (>= 1.0)\nSection: misc\n"
    )
    assert check_deps.depends(control) == {"libc6", "libgl1", "libgl1-mesa-glx", "libxcb1", "libegl1"}
    assert check_deps.libc_minimum(control) == (2, 36)


def test_the_glibc_floor_is_the_highest_symbol_version_any_file_asks_for(tmp_path):
    a, b = tmp_path / "liba.so", tmp_path / "libb.so"
    a.write_bytes(b"\x7fELF....GLIBC_2.17\x00GLIBC_2.28\x00")
    b.write_bytes(b"\x7fELF....GLIBC_2.34\x00GLIBC_2.4\x00")
    assert check_deps.glibc_needed([a, b]) == (2, 34)
    (tmp_path / "notes.so.txt").write_text("GLIBC_2.99 in a text file is not a library")
    assert set(check_deps.elf_files(tmp_path)) == {a, b}


def test_the_control_template_has_every_field_the_build_fills_in():
    text = (REPO / "packaging" / "linux" / "control.in").read_text()
    for placeholder in ("@VERSION@", "@ARCH@", "@MAINTAINER@", "@INSTALLED_KB@", "@GLIBC@"):
        assert placeholder in text
    assert re.search(r"^Depends: libc6 \(>= @GLIBC@\)", text, re.MULTILINE)


def test_the_desktop_entry_starts_the_app_without_arguments_and_names_the_installed_icon():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(REPO / "packaging" / "linux" / "finetune-gui.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application"
    assert desktop["Exec"] == "finetune-gui"  # the CLI takes a subcommand, not a file, as its first argument
    assert desktop["Icon"] == "finetune-gui"
    assert desktop["Terminal"] == "false"


def test_the_icons_hold_every_size_the_systems_ask_for():
    png = Image.open(REPO / "resources" / "icon.png")
    assert png.size == (512, 512) and png.mode == "RGBA"
    ico = Image.open(REPO / "resources" / "icon.ico")
    assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    icns = Image.open(REPO / "resources" / "icon.icns")
    assert icns.size == (1024, 1024)


def test_the_spec_reads_the_version_the_package_declares():
    spec = (REPO / "packaging" / "finetune_gui.spec").read_text()
    pattern = re.search(r"re\.search\(r'(.+?)', ", spec).group(1)
    init = (REPO / "finetune_gui" / "__init__.py").read_text()
    assert re.search(pattern, init).group(1) == finetune_gui.__version__
