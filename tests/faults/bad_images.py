"""Image files with every kind of problem, made on the fly (test helper for case 11)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path: Path, side: int = 12_000) -> Path:
    """A valid greyscale PNG of side x side black pixels: ~100 KB on disk, side² bytes decoded."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    parts = [comp.compress(row) for _ in range(side)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says width x height, with a tiny (short) pixel stream: the 20000x20000 case."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1000)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")
    )
    return path


def jpeg_bytes(size=(48, 32), colour=(200, 30, 30), mode="RGB", **save) -> bytes:
    im = Image.new("RGB", size, colour)
    for x in range(0, size[0], 6):  # some detail, so the entropy-coded data is not trivial
        for y in range(size[1]):
            im.putpixel((x, y), (20, 20, 200))
    if mode != "RGB":
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


def make_all(folder: Path) -> dict[str, Path]:
    """One file of each kind in `folder`; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    out["zero-byte"] = folder / "zero.jpg"
    out["zero-byte"].write_bytes(b"")

    full = jpeg_bytes((64, 64))
    out["truncated-jpeg"] = folder / "truncated.jpg"
    out["truncated-jpeg"].write_bytes(full[: len(full) // 2])

    out["png-named-jpg"] = folder / "really_a_png.jpg"
    Image.new("RGB", (20, 20), (10, 200, 10)).save(out["png-named-jpg"], "PNG")

    out["cmyk"] = folder / "cmyk.jpg"
    out["cmyk"].write_bytes(jpeg_bytes((20, 20), mode="CMYK"))

    out["16-bit"] = folder / "sixteen.png"
    im16 = Image.new("I;16", (20, 20))
    im16.putdata([i * 160 for i in range(400)])
    im16.save(out["16-bit"])

    out["palette-transparent"] = folder / "palette.png"
    pal = Image.new("P", (20, 20), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    pal.paste(1, (5, 5, 15, 15))
    pal.save(out["palette-transparent"], transparency=0)

    out["exif-rotated"] = folder / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    out["exif-rotated"].write_bytes(jpeg_bytes((48, 32), exif=exif.tobytes()))

    out["bomb"] = png_bomb(folder / "bomb.png", side=9_000)  # 81 MP: over our 64 MP limit, under Pillow's own
    out["huge"] = png_header_only(folder / "huge.png", 20_000, 20_000)
    return out


USABLE = {"png-named-jpg", "cmyk", "16-bit", "palette-transparent", "exif-rotated"}
SKIPPED = {"zero-byte", "truncated-jpeg", "bomb", "huge"}
