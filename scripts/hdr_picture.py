"""Regenerate docs/hdr.jpg, the README's picture of an HDR snapshot before and after.

    .venv/bin/python scripts/hdr_picture.py

A known sRGB picture with a light at 1000 nits, coded as HDR10 (PQ) and as HLG; each row
shows the plain conversion (what the ffmpeg command line gives by default) beside this
pipeline's tone-mapped snapshot.
"""

from __future__ import annotations

import os
import sys
import tempfile

import av
import numpy as np
from PIL import Image, ImageDraw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from snapshot import color, synth  # noqa: E402

WIDTH, HEIGHT, LABEL = 320, 180, 18


def scene() -> tuple[np.ndarray, np.ndarray]:
    """The picture, and where its white sits in nits: 203 (SDR white) but for a light at 1000."""
    picture = synth.color_picture(WIDTH * 2, HEIGHT * 2)
    y, x = np.mgrid[0 : HEIGHT * 2, 0 : WIDTH * 2]
    light = (x - WIDTH * 0.6) ** 2 + (y - HEIGHT * 0.7) ** 2 < (HEIGHT * 0.25) ** 2
    picture[light] = 255
    white = np.where(light, 1000.0, float(synth.WHITE_NITS))
    return picture, white


def main() -> None:
    picture, white = scene()
    tiles = [("the picture", Image.fromarray(picture).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC))]
    with tempfile.TemporaryDirectory() as folder:
        for transfer in ("pq", "hlg"):
            path = os.path.join(folder, f"{transfer}.mp4")
            synth.write_color_video(path, [picture], matrix="bt2020", transfer=transfer, white_nits=[white])
            with av.open(path) as container:
                frame = next(container.decode(video=0))
            tiles.append((f"{transfer.upper()}: plain conversion", frame.to_image(width=WIDTH, height=HEIGHT)))
            tiles.append((f"{transfer.upper()}: this pipeline", color.render(frame, WIDTH, HEIGHT)[0]))
    sheet = Image.new("RGB", (WIDTH * 5, HEIGHT + LABEL), "white")
    draw = ImageDraw.Draw(sheet)
    for column, (label, tile) in enumerate(tiles):
        sheet.paste(tile, (column * WIDTH, LABEL))
        draw.text((column * WIDTH + 4, 3), label, fill="black")
    sheet.save(os.path.join(ROOT, "docs", "hdr.jpg"), quality=80)


if __name__ == "__main__":
    main()
