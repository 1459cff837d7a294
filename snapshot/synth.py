"""Synthetic videos whose frames show their own index, for tests, samples and benchmarks.

Each upright picture is a 5 x 4 grid of cells: the top-left cell is red (it tells which way
is up), the other 19 cells are the bits of the frame index, white for 1 and black for 0.
`read_index` recovers the index from any scaled, JPEG-compressed copy of such a picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import av
import numpy as np
from PIL import Image

COLUMNS, ROWS = 5, 4
BITS = COLUMNS * ROWS - 1
RED = (220, 30, 30)


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """The RGB picture (height x width x 3) of frame `index`."""
    cells = np.zeros((ROWS, COLUMNS, 3), np.uint8)
    cells[0, 0] = RED
    for bit in range(BITS):
        if index >> bit & 1:
            row, column = divmod(bit + 1, COLUMNS)
            cells[row, column] = (235, 235, 235)
    rows = np.arange(height) * ROWS // height
    columns = np.arange(width) * COLUMNS // width
    return cells[rows][:, columns]


def read_index(image: Image.Image) -> int:
    """The frame index a picture shows; ValueError if it is not upright or not a pattern."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int32)
    height, width = pixels.shape[:2]

    def cell(bit_cell: int) -> np.ndarray:
        row, column = divmod(bit_cell, COLUMNS)
        y, x = int((row + 0.5) * height / ROWS), int((column + 0.5) * width / COLUMNS)
        return pixels[y, x]

    red = cell(0)
    if not (red[0] > 150 and red[1] < 100 and red[2] < 100):
        raise ValueError(f"no red marker at the top left: {red.tolist()}")
    index = 0
    for bit in range(BITS):
        value = cell(bit + 1)
        if abs(int(value[0]) - int(value[1])) > 60 or 70 < value.mean() < 170:
            raise ValueError(f"cell {bit + 1} is neither black nor white: {value.tolist()}")
        if value.mean() >= 128:
            index |= 1 << bit
    return index


def write_video(
    path: str,
    *,
    frames: int = 60,
    fps: int = 30,
    size: tuple[int, int] = (320, 180),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    container_format: str | None = None,
    options: dict | None = None,
    container_options: dict | None = None,
    times: Sequence[float] | None = None,
    rotation: int = 0,
    start_seconds: float = 0,
    black_frames: int = 0,
    noise: int = 0,
) -> None:
    """Encode `frames` pattern frames (index 0, 1, ...) into a video file.

    `size` is the upright picture. `times` (seconds) gives each frame's presentation time
    for variable frame rate; otherwise frame i is shown at i / fps. `rotation` stores the
    picture turned and a display matrix that turns it back (as phones do: -90 means the
    player turns it 90 degrees clockwise). `start_seconds` offsets every timestamp. The
    first `black_frames` frames are all black. `noise` adds random grain of that amplitude,
    which makes frames big (for tests of how much is read).
    """
    width, height = size
    turned = rotation in (90, -90, 270)
    time_base = Fraction(1, fps * 1000 if times is not None else fps)
    with av.open(path, "w", format=container_format, options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream), codec
        stream.width, stream.height = (height, width) if turned else (width, height)
        stream.pix_fmt = pix_fmt
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        if options:
            stream.options = dict(options)
        if rotation:
            stream.set_display_rotation(rotation)
        for index in range(frames):
            pixels = pattern(index, width, height) * (index >= black_frames)
            if noise:
                grain = np.random.default_rng(index).integers(-noise, noise + 1, pixels.shape)
                pixels = np.clip(pixels.astype(np.int16) + grain, 0, 255).astype(np.uint8)
            picture = Image.fromarray(pixels)
            if rotation:
                picture = picture.rotate(-rotation, expand=True)
            frame = av.VideoFrame.from_image(picture)
            seconds = times[index] if times is not None else index / fps
            frame.pts = round((seconds + start_seconds) / time_base)
            frame.time_base = time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
