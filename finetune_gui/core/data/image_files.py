"""Reading one image file safely: checks that skip broken, cut-off or enormous files, and decoding to RGB."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from finetune_gui.core.data.fs import os_reason

#: Largest image accepted (pixels); larger files are skipped as possible decompression bombs.
MAX_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class _Bomb(Exception):
    pass


def _open_checked(path: str | os.PathLike) -> Image.Image:
    im = Image.open(path)
    w, h = im.size
    if w * h > MAX_PIXELS:
        im.close()
        raise _Bomb(f"{w}x{h} pixels is over the {MAX_PIXELS // 1_000_000} megapixel limit")
    return im


def check_image(path: Path) -> str | None:
    """Why path is not a usable image, or None; reads headers and checksums, not the whole picture."""
    try:
        size = path.stat().st_size
    except (OSError, ValueError) as e:
        return os_reason(e) if isinstance(e, OSError) else "is not a valid file name (it holds a NUL character)"
    if size == 0:
        return "empty file (0 bytes); delete it or replace it with the real image"
    try:
        with _open_checked(path) as im:
            im.verify()  # PNG: every chunk's checksum; JPEG: nothing, hence the check below
            jpeg = im.format == "JPEG"
        if jpeg and not _ends_with_jpeg_eoi(path):
            _decode_small(path)  # cut off, or data after the image (motion photos): decoding tells which
    except (_Bomb, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        return f"too large to open safely ({e}); possibly a decompression bomb — shrink it or remove it"
    except OSError as e:
        if e.errno is not None:  # the file system refused (permissions, a link to itself), not the decoder
            return f"{os_reason(e)}; check the file's permissions"
        return f"not a readable image ({type(e).__name__}: {e}); delete or replace it"
    except Exception as e:  # noqa: BLE001 - any decoder failure means a skipped file
        return f"not a readable image ({type(e).__name__}: {e}); delete or replace it"
    return None


def _ends_with_jpeg_eoi(path: Path) -> bool:
    """True when a JPEG file ends with its end-of-image marker (what a file cut off while copying lacks)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 32))
        tail = f.read().rstrip(b"\x00\r\n ")
    return tail.endswith(b"\xff\xd9")


def _decode_small(path: Path) -> None:
    """Decode a JPEG at 1/8 scale (fast), which still reads all of its data: raises if it is cut off."""
    with _open_checked(path) as im:
        im.draft("RGB", (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
        im.load()


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB: 16/32-bit greys are scaled (not clipped), transparency goes on white."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(im).astype(np.float64)
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if mode.startswith("I;16") or (mode == "I" and lo >= 0 and hi <= 65535):
            arr = arr / 257.0
        elif mode == "F" and lo >= 0 and hi <= 1.0:
            arr = arr * 255.0
        else:
            arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        im = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
        return im.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        background.alpha_composite(rgba)
        return background.convert("RGB")
    return im.convert("RGB")


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode an image fully, apply its EXIF orientation, and return it as RGB (file closed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with _open_checked(path) as im:
            im.load()
            try:
                im = ImageOps.exif_transpose(im)
            except Exception:  # noqa: BLE001 - a broken EXIF block should not lose the picture
                pass
            return to_rgb(im)
