"""Pillow: JPEG encoding of captured pictures."""
from __future__ import annotations

import io

from PIL import Image

JPEG_QUALITY = 85  # libjpeg-turbo, 4:2:0 chroma subsampling, baseline


def encode_jpeg(image: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()
