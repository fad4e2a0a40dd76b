"""On a Linux desktop without the X11 libraries Qt's window plugin needs, the app names them and the packages to
install, and exits, instead of Qt aborting the process."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from finetune_gui.gui import app as app_module
from finetune_gui.gui.x11_libraries import debian_package, missing_libraries, uses_x11, x11_problem

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /opt/Qt/lib/libQt6XcbQpa.so.6 (0x00007f01)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f02)
"""
X11_DESKTOP = {"DISPLAY": ":0", "XDG_SESSION_TYPE": "x11"}


@pytest.fixture
def fake_ldd(tmp_path) -> str:
    """An ldd that reports two libraries missing, as on a fresh Debian with a desktop but no Qt packages."""
    (tmp_path / "ldd-output.txt").write_text(LDD_OUTPUT)
    script = tmp_path / "ldd"
    script.write_text(f"#!/bin/sh\ncat {tmp_path / 'ldd-output.txt'}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


@pytest.mark.parametrize(
    "soname, package",
    [
        ("libxcb-cursor.so.0", "libxcb-cursor0"),
        ("libxcb-icccm.so.4", "libxcb-icccm4"),
        ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
        ("libEGL.so.1", "libegl1"),
        ("libdbus-1.so.3", "libdbus-1-3"),
    ],
)
def test_a_library_is_named_by_its_debian_package(soname, package):
    assert debian_package(soname) == package


def test_the_libraries_ldd_cannot_find_are_listed_once_each(fake_ldd, tmp_path):
    assert missing_libraries(tmp_path / "libqxcb.so", ldd=fake_ldd) == ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]


def test_without_ldd_nothing_is_reported_missing(tmp_path):
    assert missing_libraries(tmp_path / "libqxcb.so", ldd=str(tmp_path / "no-such-ldd")) == []


def test_the_problem_names_the_missing_files_and_the_install_command(fake_ldd, tmp_path):
    problem = x11_problem(X11_DESKTOP, "linux", plugin=tmp_path / "libqxcb.so", ldd=fake_ldd)
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4" in problem
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4" in problem
    assert "finetune-gui train" in problem  # the headless way still works


@pytest.mark.parametrize(
    "env, platform, x11",
    [
        (X11_DESKTOP, "linux", True),
        ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux", False),  # Qt picks its Wayland plugin
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux", False),
        ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
        ({}, "linux", False),  # no display at all: the headless demo's case, not this one
        (X11_DESKTOP, "darwin", False),
    ],
)
def test_only_an_x11_session_is_checked(env, platform, x11):
    assert uses_x11(env, platform) is x11


def test_elsewhere_nothing_is_checked(fake_ldd, tmp_path):
    assert x11_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", plugin=tmp_path / "p.so", ldd=fake_ldd) is None
    assert x11_problem(X11_DESKTOP, "darwin", plugin=tmp_path / "p.so", ldd=fake_ldd) is None


def test_the_app_says_what_to_install_and_exits_before_making_a_qt_application(monkeypatch, capsys):
    monkeypatch.setattr(app_module, "x11_problem", lambda: "Qt cannot open a window: install libxcb-cursor0")
    monkeypatch.setattr(app_module, "make_app", lambda argv=None: pytest.fail("Qt would abort here"))
    assert app_module.main(["finetune-gui"]) == 2
    assert capsys.readouterr().err == "error: Qt cannot open a window: install libxcb-cursor0\n"


def test_the_installed_binding_has_an_x11_plugin_on_linux():
    import sys

    from finetune_gui.gui.x11_libraries import xcb_plugin

    if not sys.platform.startswith("linux"):
        pytest.skip("the X11 plugin ships with Linux wheels only")
    plugin = xcb_plugin()
    assert isinstance(plugin, Path) and plugin.name == "libqxcb.so"
