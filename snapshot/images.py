"""Pillow and NumPy: JPEG encoding, sprite sheets and the black-frame test."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageColor

CELL_QUALITY = 95  # cells travel between steps as JPEG, nearly lossless


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """Baseline JPEG with libjpeg-turbo (Pillow's wheel) and 4:2:0 chroma subsampling."""
    out = io.BytesIO()
    (image if image.mode == "RGB" else image.convert("RGB")).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def cell_jpeg(image: Image.Image, size: tuple[int, int]) -> bytes:
    """The picture of one sprite cell: the snapshot resized to `size`, as JPEG."""
    if image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    return encode_jpeg(image, CELL_QUALITY)


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
