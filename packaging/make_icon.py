"""Draw the app icon with Pillow and write resources/icon.png, icon.ico (Windows) and icon.icns (macOS).

The design: three mixer sliders set at different heights on a rounded blue tile -- settings being tuned.
Drawn at 1024 px and scaled down, so edges are smooth at every size. Run: `.venv/bin/python packaging/make_icon.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
SIZE = 1024
TOP, BOTTOM = (64, 140, 235), (28, 72, 160)  # tile gradient, top to bottom
TRACK, KNOB, KNOB_EDGE = (255, 255, 255, 90), (255, 255, 255, 255), (20, 50, 120, 255)
KNOB_HEIGHTS = (0.62, 0.30, 0.48)  # where each slider sits, as a share of the track from the top
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]


def draw(size: int = SIZE) -> Image.Image:
    """The icon as an RGBA image of size x size."""
    s = size / 1024
    gradient = Image.new("RGBA", (size, size))
    gd = ImageDraw.Draw(gradient)
    for y in range(size):
        t = y / (size - 1)
        gd.line([(0, y), (size, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(TOP, BOTTOM)) + (255,))
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).rounded_rectangle([40 * s, 40 * s, 984 * s, 984 * s], radius=200 * s, fill=255)
    icon = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    icon.paste(gradient, (0, 0), mask)

    tracks = Image.new("RGBA", (size, size), (0, 0, 0, 0))  # drawn apart, then blended: ImageDraw does not
    knobs = Image.new("RGBA", (size, size), (0, 0, 0, 0))  # mix translucent fills into what lies below
    td, kd = ImageDraw.Draw(tracks), ImageDraw.Draw(knobs)
    top, bottom = 240 * s, 784 * s
    for i, height in enumerate(KNOB_HEIGHTS):
        x = (302 + 210 * i) * s
        y = top + (bottom - top) * height
        td.rounded_rectangle([x - 22 * s, top, x + 22 * s, bottom], radius=22 * s, fill=TRACK)
        kd.rounded_rectangle([x - 22 * s, y, x + 22 * s, bottom], radius=22 * s, fill=KNOB)
        kd.rounded_rectangle(
            [x - 78 * s, y - 46 * s, x + 78 * s, y + 46 * s],
            radius=30 * s,
            fill=KNOB,
            outline=KNOB_EDGE,
            width=max(1, round(10 * s)),
        )
    return Image.alpha_composite(Image.alpha_composite(icon, tracks), knobs)


def write_all(folder: Path) -> list[Path]:
    """Write icon.png (512 px), icon.ico and icon.icns into folder; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    big = draw()
    png, ico, icns = folder / "icon.png", folder / "icon.ico", folder / "icon.icns"
    big.resize((512, 512), Image.LANCZOS).save(png, optimize=True)
    big.save(ico, sizes=ICO_SIZES)
    big.save(icns)
    return [png, ico, icns]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "resources"
    for path in write_all(target):
        print(f"{path}  {path.stat().st_size / 1024:.0f} KiB")
