"""Case 11b: data files the operating system refuses — a name longer than the OS allows, a symbolic link that
points at itself, a file or folder without read permission, a name with a NUL byte. Each one is a problem
with the file and a plain reason (the rest of the data is used), or, when it is the data path itself, a
DataError naming it; never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune_gui.cli import EXIT_DATA, EXIT_OK, main
from finetune_gui.config import load_config
from finetune_gui.core.data import scan_data
from finetune_gui.core.data.image_files import check_image
from finetune_gui.core.data.image_records import collect_images
from finetune_gui.core.errors import DataError
from tests.faults.helpers import image_sections, only_run

LONG_NAME = "x" * 300 + ".png"  # longer than the 255 bytes a file name may have (ENAMETOOLONG)


def _permissions_bind() -> bool:
    """False for root (with its usual capabilities), who reads a file whatever its permissions say."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        probe = Path(d) / "probe"
        probe.write_bytes(b"x")
        probe.chmod(0)
        try:
            probe.read_bytes()
        except PermissionError:
            return True
        return False


NOT_AS_ROOT = pytest.mark.skipif(not _permissions_bind(), reason="root reads files whatever their permissions say")


def _manifest(images: Path, fmt: str, extra: list[str]) -> Path:
    """A manifest of the 36 good pictures (absolute paths) plus `extra` paths labelled 'circle'."""
    rows = [(str(p), p.parent.name) for p in sorted(images.rglob("*.png"))] + [(e, "circle") for e in extra]
    path = images.parent / f"manifest.{fmt}"
    if fmt == "csv":
        path.write_text("path,label\n" + "".join(f'"{p}",{y}\n' for p, y in rows), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps({"path": p, "label": y}) + "\n" for p, y in rows), encoding="utf-8")
    return path


def _config_file(tmp_path: Path, data_path: str | Path, **data) -> Path:
    sections = image_sections(Path(data_path), data={"label_columns": ["label"], **data}, train={"epochs": 1})
    cfg = tmp_path / "run.toml"
    from finetune_gui.config import validate_dict

    cfg.write_text(validate_dict(sections).to_toml(), encoding="utf-8")
    return cfg


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_name_longer_than_the_os_allows_in_a_manifest_is_a_problem_and_the_rest_trains(
    tmp_path, images, tinynet, fmt, capsys
):
    manifest = _manifest(images, fmt, [LONG_NAME, str(images / LONG_NAME)])
    config = load_config(_config_file(tmp_path, manifest))

    report = scan_data(config)
    assert report.num_samples == 36
    long = [p for p in report.problems if LONG_NAME in p.reason]
    assert len(long) == 2 and all(p.line is not None for p in long), report.problems
    assert all("cannot be read" in p.reason and "name too long" in p.reason.lower() for p in long), long
    assert len(collect_images(config, verify=False).paths) == 36  # the Data page's thumbnails take this path

    code = main(["train", str(tmp_path / "run.toml"), "--output", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err
    assert code == EXIT_OK, err
    assert "Traceback" not in err
    problems = json.loads((only_run(tmp_path / "runs") / "data_problems.json").read_text())
    assert sum(LONG_NAME in p["reason"] for p in problems) == 2


def test_a_data_path_longer_than_the_os_allows_is_a_data_error_naming_it(tmp_path, capsys):
    cfg = _config_file(tmp_path, tmp_path / ("m" * 300 + ".csv"))
    with pytest.raises(DataError, match="cannot be read .*name too long"):
        scan_data(load_config(cfg))
    assert main(["train", str(cfg), "--output", str(tmp_path / "runs")]) == EXIT_DATA
    assert "Traceback" not in capsys.readouterr().err


def test_a_data_path_that_is_a_symlink_loop_is_a_data_error_naming_it(tmp_path, capsys):
    (tmp_path / "loop.csv").symlink_to("loop.csv")
    cfg = _config_file(tmp_path, "loop.csv")  # relative: resolved against the config's folder
    with pytest.raises(DataError, match="loop.csv.*symbolic links"):
        scan_data(load_config(cfg))
    assert main(["train", str(cfg), "--output", str(tmp_path / "runs")]) == EXIT_DATA
    assert "Traceback" not in capsys.readouterr().err


def test_a_symlink_loop_and_a_nul_byte_in_a_manifest_are_problems(tmp_path, images):
    (images / "loop.png").symlink_to("loop.png")  # fails for root too
    manifest = _manifest(images, "jsonl", [str(images / "loop.png"), "~a\x00b.png", "bad\x00.png"])
    report = scan_data(load_config(_config_file(tmp_path, manifest)))
    assert report.num_samples == 36
    reasons = " | ".join(p.reason for p in report.problems)
    assert "symbolic links" in reasons and reasons.count("not a valid file name") == 2, reasons


def test_a_symlink_loop_among_images_in_folders_is_a_problem(tmp_path, images):
    (images / "circle" / "loop.png").symlink_to("loop.png")
    (images / "square" / "loopdir").symlink_to("loopdir")
    report = scan_data(load_config(_config_file(tmp_path, images)))
    assert report.num_samples == 36
    assert [Path(p.path).name for p in report.problems] == ["loop.png"]
    assert "cannot be read" in report.problems[0].reason and "symbolic links" in report.problems[0].reason


def test_a_link_to_a_parent_folder_lists_each_image_once_and_says_why_it_was_left_out(tmp_path, images):
    (images / "circle" / "back-up").symlink_to("..")  # a link to the dataset's own root
    (images / "square" / "again").symlink_to("../circle")  # a second way into a class folder
    report = scan_data(load_config(_config_file(tmp_path, images)))
    assert report.num_samples == 36
    assert sorted(Path(p.path).name for p in report.problems) == ["again", "back-up"]
    assert all("a folder listed already" in p.reason for p in report.problems)


def test_a_text_file_that_cannot_be_read_among_several_is_a_problem_and_the_rest_is_used(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for k in range(3):
        (docs / f"{k}.txt").write_text(f"document {k}\n\nanother one {k}\n", encoding="utf-8")
    (docs / "loop.txt").symlink_to("loop.txt")
    cfg = tmp_path / "lm.toml"
    cfg.write_text(f'[task]\nkind = "causal-lm"\n[data]\npath = "{docs}"\n', encoding="utf-8")
    report = scan_data(load_config(cfg))
    assert report.num_samples == 6
    assert [Path(p.path).name for p in report.problems] == ["loop.txt"]
    assert "cannot be read" in report.problems[0].reason


@NOT_AS_ROOT
def test_an_image_without_read_permission_is_a_problem_saying_so(tmp_path, images):
    victim = images / "circle" / "000.png"
    victim.chmod(0)
    try:
        assert "cannot be read" in (check_image(victim) or "")
        report = scan_data(load_config(_config_file(tmp_path, images)))
    finally:
        victim.chmod(0o644)
    assert report.num_samples == 35
    assert [(Path(p.path).name, "Permission denied" in p.reason) for p in report.problems] == [("000.png", True)]


@NOT_AS_ROOT
@pytest.mark.parametrize("mode", [0, 0o600])  # no access at all; listable but not enterable
def test_a_class_folder_without_permission_is_a_problem_and_the_rest_is_used(tmp_path, images, mode):
    (tmp_path / "split" / "train").mkdir(parents=True)
    for name in ("circle", "square", "stripes"):
        (images / name).rename(tmp_path / "split" / "train" / name)
    victim = tmp_path / "split" / "train" / "stripes"
    victim.chmod(mode)
    try:
        report = scan_data(load_config(_config_file(tmp_path, tmp_path / "split")))
    finally:
        victim.chmod(0o755)
    assert report.num_samples == 24
    assert any("stripes" in p.path and "cannot be read" in p.reason for p in report.problems), report.problems
