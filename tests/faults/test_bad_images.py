"""Case 11: zero-byte, truncated JPEG, PNG named .jpg, CMYK, 16-bit, palette with transparency, EXIF-rotated,
decompression bomb and a 20000x20000 header. Each file is either skipped at the scan (and listed with its
reason) or read correctly as RGB; the scan never decodes a huge image; a run over all of them finishes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from finetune_gui.core.data.image_files import check_image, load_rgb
from finetune_gui.core.training.engine import fit
from finetune_gui.core.training.events import EventLog
from tests.faults.bad_images import SKIPPED, USABLE, jpeg_bytes, make_all
from tests.faults.helpers import image_config

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # the bomb is the point


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, Path]:
    return make_all(tmp_path_factory.mktemp("bad-images"))


@pytest.mark.parametrize("kind", sorted(SKIPPED))
def test_unusable_files_are_refused_at_the_scan_with_a_reason_that_says_what_to_do(bad, kind):
    reason = check_image(bad[kind])
    assert reason is not None, f"{kind} was accepted"
    expected = {
        "zero-byte": "empty file",
        "truncated-jpeg": "truncated",
        "bomb": "decompression bomb",
        "huge": "decompression bomb",
    }[kind]
    assert expected in reason
    assert any(w in reason for w in ("delete", "replace", "remove", "shrink")), reason


@pytest.mark.parametrize("kind", sorted(USABLE))
def test_odd_but_valid_files_are_accepted_and_decode_to_8_bit_rgb(bad, kind):
    assert check_image(bad[kind]) is None
    im = load_rgb(bad[kind])
    assert im.mode == "RGB"


def test_the_odd_modes_decode_to_the_colours_a_viewer_shows(bad):
    assert load_rgb(bad["png-named-jpg"]).getpixel((10, 10)) == (10, 200, 10)
    cmyk = load_rgb(bad["cmyk"]).getpixel((1, 10))  # (200, 30, 30) went through CMYK and JPEG
    assert cmyk[0] > 150 and cmyk[1] < 80 and cmyk[2] < 80, cmyk
    sixteen = load_rgb(bad["16-bit"])
    assert sixteen.getpixel((0, 0)) == (0, 0, 0) and sixteen.getpixel((19, 19)) == (248, 248, 248)  # 63840/257
    palette = load_rgb(bad["palette-transparent"])
    assert palette.getpixel((0, 0)) == (255, 255, 255)  # transparent index on white, not black
    assert palette.getpixel((10, 10)) == (255, 0, 0)
    assert load_rgb(bad["exif-rotated"]).size == (32, 48)  # stored 48x32, orientation 6 = turned upright


@pytest.mark.parametrize("cut", [0.9, 0.5, 0.2])
def test_a_jpeg_cut_off_anywhere_in_its_data_is_skipped(tmp_path, cut):
    data = jpeg_bytes((96, 64))
    f = tmp_path / "cut.jpg"
    f.write_bytes(data[: int(len(data) * cut)])
    assert "not a readable image" in (check_image(f) or "")


def test_a_jpeg_with_data_after_its_end_marker_is_still_accepted(tmp_path):
    """Motion photos and some cameras append data after the image; the end-marker check must not refuse them."""
    f = tmp_path / "motion.jpg"
    f.write_bytes(jpeg_bytes((64, 48)) + b"\x00\x00ftypmp42" + bytes(range(256)) * 8)
    assert check_image(f) is None
    assert load_rgb(f).size == (64, 48)


def test_the_scan_never_decodes_a_bomb_or_a_huge_header_memory_stays_bounded(bad, tmp_path):
    """Peak memory of a fresh process scanning the whole folder: decoding the 9000x9000 bomb alone would need
    81 MB, the 20000x20000 header 1.2 GB; the scan must stay far below that."""
    folder = bad["bomb"].parent
    script = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        from finetune_gui.core.data.image_files import check_image, load_rgb
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        reasons = {{p.name: check_image(p) for p in sorted(Path({str(folder)!r}).iterdir())}}
        for name in ("bomb.png", "huge.png"):
            try:
                load_rgb(Path({str(folder)!r}) / name)
                reasons[name] = "LOADED"
            except Exception as e:
                pass
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) // 1024, sum(r is not None for r in reasons.values()), reasons.get("bomb.png") is not None)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    grown_mb, skipped, bomb_refused = out.stdout.split()
    assert bomb_refused == "True" and int(skipped) == len(SKIPPED)
    assert int(grown_mb) < 40, f"scanning grew peak memory by {grown_mb} MB"


def test_a_run_over_every_kind_of_bad_image_finishes_and_lists_exactly_the_skipped_files(tmp_path, tinynet, images):
    files = make_all(tmp_path / "bad")
    classes = sorted(p.name for p in images.iterdir())
    for k, (_kind, path) in enumerate(sorted(files.items())):
        path.rename(images / classes[k % len(classes)] / path.name)  # mixed in among the good pictures
    config = image_config(images, train={"epochs": 1})
    log = EventLog()
    result = fit(config, log, output_dir=tmp_path / "runs")
    assert result.status == "completed", log.events[-1]
    problems = json.loads((result.run_dir / "data_problems.json").read_text())
    assert sorted(Path(p["path"]).name for p in problems) == sorted(files[k].name for k in SKIPPED)
    started = next(e for e in log.events if type(e).__name__ == "RunStarted")
    assert started.num_train + started.num_val + started.num_test == 36 + len(USABLE)


def test_an_image_that_breaks_after_the_scan_is_replaced_by_the_next_and_the_run_goes_on(tmp_path, tinynet, images):
    """The scan passed it, then the file was cut off on disk (a sync client, a full disk) while training."""
    from finetune_gui.core.data import build_data

    config = image_config(images, train={"epochs": 1})
    data = build_data(config, image_size=32)
    victim = Path(data.train.paths[0])
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 3])
    x, y = data.train[0]
    assert tuple(x.shape) == (3, 32, 32) and y == data.train.targets[1]  # the next sample stood in
    assert [Path(p.path) for p in data.train.failures] == [victim]
    assert "delete or replace" in data.train.failures[0].reason
    with Image.open(data.train.paths[1]) as im:
        assert im.size == (20, 20)
