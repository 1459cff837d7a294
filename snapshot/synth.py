"""Synthetic videos whose frames show their own index, for tests, samples and benchmarks.

Each upright picture is a 5 x 4 grid of cells: the top-left cell is red (it tells which way
is up), the other 19 cells are the bits of the frame index, white for 1 and black for 0.
`read_index` recovers the index from any scaled, JPEG-compressed copy of such a picture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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
    edit: Callable[[int, Image.Image], Image.Image] | None = None,
) -> None:
    """Encode `frames` pattern frames (index 0, 1, ...) into a video file.

    `size` is the upright picture. `times` (seconds) gives each frame's presentation time
    for variable frame rate; otherwise frame i is shown at i / fps. `rotation` stores the
    picture turned and a display matrix that turns it back (as phones do: -90 means the
    player turns it 90 degrees clockwise). `start_seconds` offsets every timestamp. The
    first `black_frames` frames are all black. `noise` adds random grain of that amplitude,
    which makes frames big (for tests of how much is read). `edit(index, picture)` may
    change any upright picture (black, white, blurred frames).
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
            if edit is not None:
                picture = edit(index, picture)
            if rotation:
                picture = picture.rotate(-rotation, expand=True)
            frame = av.VideoFrame.from_image(picture)
            seconds = times[index] if times is not None else index / fps
            frame.pts = round((seconds + start_seconds) / time_base)
            frame.time_base = time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def write_pictures(
    path: str, pictures: Iterable[np.ndarray], *, fps: Fraction | int = 30, options: dict | None = None
) -> None:
    """Encode RGB pictures (height x width x 3, uint8) as H.264 (yuv420p), picture i shown
    at i / fps; `options` go to the encoder (`g`, `bf`, `preset`, `crf`)."""
    time_base = 1 / Fraction(fps)
    with av.open(path, "w") as out:
        stream: av.VideoStream | None = None
        for index, pixels in enumerate(pictures):
            if stream is None:
                stream = out.add_stream("libx264", rate=Fraction(fps))
                stream.height, stream.width = pixels.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.time_base = stream.codec_context.time_base = time_base
                stream.options = dict(options or {})
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = index, time_base
            out.mux(stream.encode(frame))
        if stream is not None:
            out.mux(stream.encode(None))


# Colour-coded videos whose true sRGB picture is known, for the colour tests and benchmark.
# The HDR coding below is written from the standards (BT.2100, BT.2408) on its own, without
# snapshot.color, so that a test compares the decoder against an independent encoder.
_SWS_MATRIX = {"bt601": "itu601", "bt709": "itu709", "bt2020": "bt2020"}
_TAGS = {"bt601": (6, 6), "bt709": (1, 1), "bt2020": (9, 9)}  # matrix -> (AVColorPrimaries, AVColorSpace)
_TRANSFER_TAG = {"sdr": 1, "pq": 16, "hlg": 18}
_BT709_TO_BT2020 = np.array([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]])
WHITE_NITS = 203  # BT.2408's reference white: where SDR white sits in HDR


def color_picture(width: int, height: int) -> np.ndarray:
    """A smooth sRGB picture (height x width x 3) with every hue, greys and a white corner."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    red, green = x / (width - 1), y / (height - 1)
    blue = 0.5 + 0.5 * np.sin(x / width * 9 + y / height * 5)
    picture = np.stack([red, green, blue], axis=-1)
    picture[: height // 6, -width // 6 :] = 1.0  # SDR white, the brightest an SDR picture holds
    return (picture * 255).round().astype(np.uint8)


def textured_picture(width: int, height: int) -> np.ndarray:
    """The colour picture with a fine checker of +-60 levels over it, and a pale band at the
    top: detail that a scaler must average as a viewer would, and light near SDR white."""
    y, x = np.mgrid[0:height, 0:width]
    checker = np.where((x + y) % 2 == 0, 60, -60)[..., None]
    picture = color_picture(width, height).astype(int) + checker
    picture[: height // 4] = 255 - (x[: height // 4, :, None] * [30, 10, 20]) // width
    return np.clip(picture, 0, 255).astype(np.uint8)


def bt2100_decode(frame: av.VideoFrame, transfer: str) -> np.ndarray:
    """A decoded 10-bit 4:2:0 BT.2020 frame as the sRGB picture BT.2100 defines, at full size:
    limited-range Y'CbCr, each chroma sample repeated over its 2x2 pixels, the non-constant-luminance matrix, PQ's EOTF
    (or HLG's inverse OETF and its OOTF for a 1000-nit display), SDR white at 203 nits,
    BT.2020 to BT.709 primaries, clipped to SDR, the sRGB curve. Written from the standards,
    not from the code under test."""
    height, width = frame.height, frame.width
    samples = frame.to_ndarray(format="yuv420p10le").astype(np.float64)
    luma = (samples[:height] - 64) / 876
    chroma = samples[height:].reshape(2, height // 2, width // 2)
    blue_diff, red_diff = ((np.repeat(np.repeat(plane, 2, 0), 2, 1) - 512) / 896 for plane in chroma)
    red = luma + 2 * (1 - 0.2627) * red_diff
    blue = luma + 2 * (1 - 0.0593) * blue_diff
    green = (luma - 0.2627 * red - 0.0593 * blue) / 0.6780
    signal = np.clip(np.stack([red, green, blue], axis=-1), 0, 1)
    if transfer == "pq":
        m1, m2, c1, c2, c3 = 0.1593017578125, 78.84375, 0.8359375, 18.8515625, 18.6875
        power = signal ** (1 / m2)
        nits = 10000 * (np.maximum(power - c1, 0) / (c2 - c3 * power)) ** (1 / m1)
    else:
        a, b, c = 0.17883277, 0.28466892, 0.55991073
        scene = np.where(signal <= 0.5, signal**2 / 3, (np.exp((signal - c) / a) + b) / 12)
        scene_luma = scene @ [0.2627, 0.6780, 0.0593]
        nits = 1000 * np.maximum(scene_luma, 1e-12)[..., None] ** 0.2 * scene
    to_bt709 = np.linalg.inv([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]])
    linear = np.clip(nits / 203 @ to_bt709.T, 0, 1)
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return (encoded * 255).round().astype(np.uint8)


def hdr_signal(srgb: np.ndarray, transfer: str, white_nits: float | np.ndarray = WHITE_NITS) -> np.ndarray:
    """An sRGB picture as the 16-bit BT.2020 R'G'B' signal of `pq` or `hlg`, its white at
    `white_nits` (an array: per pixel)."""
    encoded = srgb / 255.0
    linear = np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)
    nits = linear @ _BT709_TO_BT2020.T * np.asarray(white_nits, np.float64)[..., None]
    if transfer == "pq":
        m1, m2, c1, c2, c3 = 0.1593017578125, 78.84375, 0.8359375, 18.8515625, 18.6875
        power = (nits / 10000) ** m1
        signal = ((c1 + c2 * power) / (1 + c3 * power)) ** m2
    else:  # HLG: the inverse of BT.2100's OOTF for a 1000-nit display, then the OETF
        luma = np.maximum(nits @ [0.2627, 0.6780, 0.0593], 1e-9)
        scene_luma = (luma / 1000) ** (1 / 1.2)
        scene = np.clip(nits / 1000 / scene_luma[..., None] ** 0.2, 0, 1)
        a, b, c = 0.17883277, 0.28466892, 0.55991073
        signal = np.where(scene <= 1 / 12, np.sqrt(3 * scene), a * np.log(np.maximum(12 * scene - b, 1e-12)) + c)
    return (np.clip(signal, 0, 1) * 65535).round().astype(np.uint16)


def write_color_video(
    path: str,
    pictures: Sequence[np.ndarray],
    *,
    matrix: str = "bt709",
    transfer: str = "sdr",
    full_range: bool = False,
    tagged: bool = True,
    x265_params: str = "",
    white_nits: Sequence[float | np.ndarray] | None = None,
    fps: int = 25,
    codec: str = "",
    options: dict | None = None,
) -> None:
    """One frame per sRGB picture, coded with `matrix` (bt601, bt709, bt2020) and `transfer`
    (sdr: 8-bit H.264; pq, hlg: 10-bit HEVC, BT.2020), limited range unless `full_range`.
    Untagged (`tagged=False`), a player must guess. HDR pictures have their white at 203 nits,
    or at `white_nits` per picture. `x265_params` adds HDR metadata such as `max-cll=600,200`.
    `codec` libx265 makes SDR 10-bit HEVC too; `options` go to the encoder."""
    hdr = transfer != "sdr"
    height, width = pictures[0].shape[:2]
    with av.open(path, "w") as out:
        codec = codec or ("libx265" if hdr else "libx264")
        stream = out.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p10le" if codec == "libx265" else "yuv420p"
        time_base = Fraction(1, fps)  # the muxer changes the stream's when it starts
        stream.time_base = stream.codec_context.time_base = time_base
        # x265 through PyAV leaves some packets' dts unset (garbage): no B-frames, and dts = pts
        params = "crf=8:bframes=0:log-level=error" + (f":{x265_params}" if x265_params else "")
        settings = {"x265-params": params} if codec == "libx265" else {"crf": "8"}
        stream.options = {**settings, **(options or {})}
        primaries, colorspace = _TAGS[matrix]
        tags = {
            "color_primaries": primaries if tagged else 2,
            "color_trc": _TRANSFER_TAG[transfer] if tagged else 2,
            "colorspace": colorspace if tagged else 2,
            "color_range": 2 if full_range else 1 if tagged else 0,
        }
        for name, value in tags.items():
            setattr(stream.codec_context, name, value)
        for index, picture in enumerate(pictures):
            if hdr:
                white = white_nits[index] if white_nits is not None else WHITE_NITS
                rgb = av.VideoFrame.from_ndarray(hdr_signal(picture, transfer, white), format="rgb48le")
            else:
                rgb = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame = rgb.reformat(
                format=stream.pix_fmt,
                dst_colorspace=_SWS_MATRIX[matrix],
                dst_color_range="JPEG" if full_range else "MPEG",
            )
            for name, value in tags.items():
                setattr(frame, name, value)
            frame.pts, frame.time_base = index, time_base
            out.mux(_with_dts(stream.encode(frame), codec))
        out.mux(_with_dts(stream.encode(None), codec))


def _with_dts(packets: list[av.Packet], codec: str) -> list[av.Packet]:
    if codec == "libx265":
        for packet in packets:
            packet.dts = packet.pts
    return packets
