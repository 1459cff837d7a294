"""Pillow and NumPy: image encoding, sprite sheets and the black-frame test."""

from __future__ import annotations

import hashlib
import io
import posixpath
from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageColor

CELL_QUALITY = 95  # cells travel between steps as JPEG, nearly lossless

# An output name's extension picks its encoder (docs/contract.md#image-formats); any other is JPEG.
FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".avif": "AVIF", ".png": "PNG"}
# The longest side each format can hold: libjpeg's, libwebp's, and the largest AVIF that
# libavif reads back (it writes up to 65,536, but reads at most 32,768); PNG's is 2^31 - 1.
MAX_SIDE = {"JPEG": 65_500, "WEBP": 16_383, "AVIF": 32_768, "PNG": 2**31 - 1}
# libavif's speed (0 slowest, 10 fastest; Pillow's default 6): 8 encodes a 4096 px grainy
# picture 9x faster than 6 at the same size and error, half WebP's time (docs/benchmarks.md#colour)
AVIF_SPEED = 8


def format_of(name: str) -> str:
    """The image format an object name asks for by its extension: JPEG unless it names another."""
    return FORMATS.get(posixpath.splitext(name)[1].lower(), "JPEG")


def encode(image: Image.Image, image_format: str, quality: int) -> bytes:
    """The picture in `image_format`. `quality` applies to the lossy ones: JPEG (libjpeg-turbo,
    4:2:0), WebP and AVIF; PNG is lossless."""
    out = io.BytesIO()
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if image_format == "PNG":
        rgb.save(out, format="PNG")
    elif image_format == "AVIF":
        rgb.save(out, format="AVIF", quality=quality, speed=AVIF_SPEED)
    else:
        rgb.save(out, format=image_format, quality=quality)
    return out.getvalue()


def cell_jpeg(image: Image.Image, size: tuple[int, int]) -> bytes:
    """The picture of one sprite cell: the snapshot resized to `size`, as JPEG."""
    if image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    return encode(image, "JPEG", CELL_QUALITY)


def sheet_color(color: str, seed: str) -> tuple[int, int, int]:
    """A colour name or #rrggbb; `random` picks one from `seed`, the same on every run."""
    if color.lower() == "random":
        red, green, blue = hashlib.md5(seed.encode()).digest()[:3]
        return red, green, blue
    red, green, blue = ImageColor.getrgb(color)[:3]
    return red, green, blue


def compose_sheet(
    size: tuple[int, int], color: tuple[int, int, int], cells: Iterable[tuple[tuple[int, int], bytes]]
) -> Image.Image:
    """A sheet of `size` filled with `color`, each cell JPEG pasted at its (x, y)."""
    sheet = Image.new("RGB", size, color)
    for position, jpeg in cells:
        with Image.open(io.BytesIO(jpeg)) as cell:
            sheet.paste(cell, position)
    return sheet


def black_share(luma: np.ndarray, threshold: int) -> float:
    """Percent of pixels whose luma is below `threshold`."""
    return 100.0 * np.count_nonzero(luma < threshold) / luma.size
