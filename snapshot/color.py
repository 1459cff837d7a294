"""Colour: what a frame's numbers mean, and the sRGB picture a viewer should see
(docs/contract.md#colour).

SDR video converts with its own matrix and range, and is scaled in its own gamma. HDR video
(PQ, HLG) is scaled in the gamma a viewer's picture has: at full size, each channel goes
through a lookup table from the HDR signal to the sRGB curve of its light (an FFmpeg filter
graph), and only then is the picture scaled. Scaling the HDR signal itself would average
values on a curve far from sRGB's, and make fine detail darker. On the small picture follow
the light itself, a 3x3 matrix from BT.2020 to BT.709, a smooth roll-off of what is brighter
than SDR white when the frame holds any, and the sRGB curve.
"""

from __future__ import annotations

import functools
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from av.filter import Graph
from av.sidedata.sidedata import Type as SideData
from av.video.format import VideoFormat
from av.video.frame import VideoFrame
from PIL import Image

REFERENCE_WHITE_NITS = 203.0  # BT.2408: HDR's diffuse white, shown as SDR white
DEFAULT_PEAK_NITS = 1000.0  # when a PQ stream does not say; HLG's nominal display peak
HLG_SYSTEM_GAMMA = 1.2  # BT.2100's for a 1000-nit display
KNEE = 0.9  # sRGB-encoded level where highlights of 1000 nits or more start to roll off
SPECK = 4  # a highlight is at least this many pixels wide and high: ringing around detail is not
ENCODE_STEPS = 16384  # linear levels of the table that applies the sRGB curve
SHOULDER_STEPS = 4096  # levels of the table of the highlight roll-off

# AVColorSpace codes -> (our name, swscale's name for the matrix)
_MATRICES = {
    0: ("rgb", "default"),
    1: ("bt709", "itu709"),
    4: ("fcc", "fcc"),
    5: ("bt601", "itu601"),
    6: ("bt601", "itu601"),
    7: ("smpte240m", "smpte240m"),
    9: ("bt2020", "bt2020"),
    10: ("bt2020", "bt2020"),  # constant luminance, converted as non-constant
}
_SWS_MATRIX = dict(_MATRICES.values())  # our name -> swscale's
_PQ, _HLG = 16, 18  # AVColorTransferCharacteristic codes
_BT2020_PRIMARIES = 9
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG

# Linear BT.2020 RGB -> linear BT.709 RGB (BT.2087), and BT.2020's luminance weights.
BT2020_TO_BT709 = np.array(
    [[1.660491, -0.587641, -0.072850], [-0.124550, 1.132900, -0.008349], [-0.018151, -0.100579, 1.118730]],
    np.float32,
)
BT2020_LUMA = np.array([0.2627, 0.6780, 0.0593], np.float32)


@dataclass(frozen=True)
class Description:
    """How a frame's samples map to colour: the tags it carries, untagged ones filled in."""

    matrix: str  # bt601, bt709, bt2020, fcc, smpte240m or rgb
    transfer: str  # sdr, pq or hlg
    full_range: bool
    wide_gamut: bool  # BT.2020 primaries
    peak_nits: float = DEFAULT_PEAK_NITS  # the brightest pixel an HDR stream says it holds

    @property
    def hdr(self) -> bool:
        return self.transfer != "sdr"

    @property
    def text(self) -> str:
        """For the result record, for example `bt2020/pq/limited`."""
        return f"{self.matrix}/{self.transfer}/{'full' if self.full_range else 'limited'}"


def describe(frame: VideoFrame) -> Description:
    """The frame's colour tags. RGB samples are `rgb`, full range. Untagged YUV follows the
    usual convention: BT.601 below 720 lines, BT.709 from 720 up (BT.2020 when the transfer is
    HDR), limited range."""
    transfer = {_PQ: "pq", _HLG: "hlg"}.get(int(frame.color_trc), "sdr")
    if frame.format.is_rgb:  # RGB samples (QuickTime Animation, PNG): no matrix, whatever the tags say
        return Description("rgb", transfer, True, int(frame.color_primaries) == _BT2020_PRIMARIES)
    matrix = _MATRICES.get(int(frame.colorspace), (None, None))[0]
    if matrix is None:
        matrix = "bt2020" if transfer != "sdr" else "bt601" if frame.height < 720 else "bt709"
    primaries = int(frame.color_primaries)
    wide = primaries == _BT2020_PRIMARIES or (primaries == 2 and transfer != "sdr")  # 2: unspecified
    full = full_range(frame)
    peak = _peak_nits(frame) if transfer == "pq" else DEFAULT_PEAK_NITS
    return Description(matrix, transfer, full, wide, peak)


def full_range(frame: VideoFrame) -> bool:
    """The frame's samples use the full range of their bits (tagged so, or a `yuvj` format)."""
    return int(frame.color_range) == _FULL_RANGE or frame.format.name.startswith("yuvj")


def render(frame: VideoFrame, width: int, height: int) -> tuple[Image.Image, Description]:
    """The frame as an sRGB picture of width x height."""
    described = describe(frame)
    if not described.hdr and not described.wide_gamut:
        return _scaled(frame, described, width, height, "rgb24").to_image(), described
    if described.hdr:
        signal = _scaled_in_light(frame, described, width, height)
    else:
        signal = _scaled(frame, described, width, height, "gbrp16le")
    green, blue, red = (
        np.frombuffer(memoryview(plane), np.uint16).reshape(height, -1)[:, :width] for plane in signal.planes
    )
    return Image.fromarray(to_srgb((red, green, blue), described)), described


def _scaled(frame: VideoFrame, described: Description, width: int, height: int, pixel_format: str) -> VideoFrame:
    return frame.reformat(
        width=width,
        height=height,
        format=pixel_format,
        src_colorspace=_SWS_MATRIX[described.matrix],
        src_color_range="JPEG" if described.full_range else "MPEG",
        interpolation="BICUBIC",
    )


def _scaled_in_light(frame: VideoFrame, described: Description, width: int, height: int) -> VideoFrame:
    """An HDR frame as 16-bit planar RGB of width x height, each channel coded as `light_code`
    says: converted and coded at full size, then scaled."""
    geometry = (frame.width, frame.height, frame.format.name, width, height)
    graph, lock = _light_graph(*geometry, described.matrix, described.full_range, described.transfer)
    with lock:  # a graph holds one frame at a time; threads share the cached graphs
        graph.vpush(frame)
        return graph.vpull()


@functools.lru_cache(maxsize=16)
def _light_graph(
    in_width: int,
    in_height: int,
    pixel_format: str,
    width: int,
    height: int,
    matrix: str,
    full_range: bool,
    transfer: str,
) -> tuple[Graph, threading.Lock]:
    """FFmpeg's filters for `_scaled_in_light`, built once per process and geometry: building
    the lookup table costs about 40 ms, using it about 2 ms per 1080p frame."""
    graph = Graph()
    matrix_option = "" if matrix == "rgb" else f"in_color_matrix={matrix}:"
    code = _LIGHT_CODE_EXPRESSIONS[transfer]
    chain = [
        graph.add_buffer(width=in_width, height=in_height, format=VideoFormat(pixel_format), time_base=_TIME_BASE),
        graph.add(
            "scale",
            f"{matrix_option}in_range={'pc' if full_range else 'tv'}:out_range=pc:flags=bicubic",
        ),
        graph.add("format", "gbrp16le"),
        graph.add("lutrgb", f"r='{code}':g='{code}':b='{code}'"),
        graph.add("scale", f"w={width}:h={height}:flags=bicubic"),
        graph.add("buffersink"),
    ]
    for source, sink in zip(chain, chain[1:], strict=False):
        source.link_to(sink)
    graph.configure()
    return graph, threading.Lock()


def to_srgb(signal: Sequence[np.ndarray], described: Description) -> np.ndarray:
    """The R, G and B planes (uint16) of a wide-gamut or HDR picture -> 8-bit sRGB (height x
    width x 3). HDR planes hold `light_code`, others their signal at full range. Planes rather
    than interleaved samples: every step is a pass over contiguous memory."""
    linear = [np.take(_to_linear(described.transfer), plane) for plane in signal]
    if described.transfer == "hlg":
        linear = _hlg_ootf(linear)
    if described.wide_gamut:
        linear = [sum(weight * channel for weight, channel in zip(row, linear, strict=True)) for row in BT2020_TO_BT709]
    gain: np.ndarray | float = ENCODE_STEPS - 1
    if described.hdr:
        brightest = np.maximum(np.maximum(linear[0], linear[1]), linear[2])
        peak = min(described.peak_nits / REFERENCE_WHITE_NITS, float(brightest.max()))
        if peak > 1:
            peak = min(peak, _frame_peak(brightest))
        if peak > 1:  # the frame holds light brighter than SDR white: roll it off to its own peak
            peak = np.ceil(peak * 100) / 100  # a few tables serve every frame
            brightest *= (SHOULDER_STEPS - 1) / peak
            np.clip(brightest, 0, SHOULDER_STEPS - 1, out=brightest)
            gain = np.take(_shoulder(peak) * (ENCODE_STEPS - 1), brightest.astype(np.int32))
    srgb = np.empty((*linear[0].shape, 3), np.uint8)
    for index, channel in enumerate(linear):
        channel *= gain
        channel += 0.5
        np.clip(channel, 0, ENCODE_STEPS - 1, out=channel)  # colours outside BT.709 and above white clip
        srgb[..., index] = np.take(_encode(), channel.astype(np.int32))
    return srgb


def _frame_peak(brightest: np.ndarray) -> float:
    """The brightest light of a frame that is more than a speck: the largest mean of SPECK x
    SPECK pixels. A codec's ringing around fine detail (4:2:0 chroma on a PQ signal) lights
    single pixels far above their neighbours; a real highlight covers an area."""
    height, width = (side // SPECK * SPECK for side in brightest.shape)
    if not height or not width:
        return float(brightest.max())
    blocks = brightest[:height, :width].reshape(height // SPECK, SPECK, width // SPECK, SPECK)
    return float(blocks.mean(axis=(1, 3)).max())


@functools.lru_cache(maxsize=64)
def _shoulder(peak: float) -> np.ndarray:
    """The gain for each level of a pixel's brightest channel, from 0 to `peak` (relative to
    SDR white) in SHOULDER_STEPS: 1 up to the knee, then an exponential shoulder in sRGB
    levels that reaches white at the peak. Scaling each pixel as a whole keeps its hue. The
    knee is KNEE for a peak of DEFAULT_PEAK_NITS or more, and nearer white for a lower peak:
    a frame a little brighter than SDR white gives up only its top levels."""
    knee = 1 - (1 - KNEE) * min(1.0, np.log(peak) / np.log(DEFAULT_PEAK_NITS / REFERENCE_WHITE_NITS))
    brightest = np.linspace(0, peak, SHOULDER_STEPS)
    span = 1 - knee
    reach = (srgb_encode(peak) - knee) / span
    level = np.maximum(srgb_encode(brightest) - knee, 0) / span  # 0: below the knee, left alone
    rolled = srgb_decode(knee + span * np.expm1(-level) / np.expm1(-reach))
    gain = np.where(level > 0, rolled / np.maximum(brightest, 1e-9), 1.0)
    return gain.astype(np.float32)


def srgb_encode(linear: np.ndarray | float) -> np.ndarray:
    """The sRGB curve (IEC 61966-2-1), its power law carried on above 1."""
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.maximum(linear, 0) ** (1 / 2.4) - 0.055)


def srgb_decode(encoded: np.ndarray | float) -> np.ndarray:
    return np.where(encoded <= 0.04045, encoded / 12.92, ((np.maximum(encoded, 0) + 0.055) / 1.055) ** 2.4)


# The light of an HDR signal, per channel: PQ relative to the reference white (up to 10,000
# nits), HLG as scene light in [0, 1] (BT.2100's OOTF mixes channels: it follows the scaling).
_PQ_M1, _PQ_M2, _PQ_C1, _PQ_C2, _PQ_C3 = 2610 / 16384, 2523 / 32, 3424 / 4096, 2413 / 128, 2392 / 128
_HLG_A, _HLG_B, _HLG_C = 0.17883277, 0.28466892, 0.55991073
_LIGHT_TOP = {"pq": 10000 / REFERENCE_WHITE_NITS, "hlg": 1.0}
_TIME_BASE = Fraction(1, 1000)


def light_code(light: np.ndarray | float, transfer: str) -> np.ndarray:
    """How an HDR picture's channels are coded while it is scaled: its light (as `_LIGHT_TOP`
    says) on the sRGB curve, so that scaling averages what a viewer sees, spread over 0-1."""
    return srgb_encode(light) / srgb_encode(_LIGHT_TOP[transfer])


def _light_expression(transfer: str) -> str:
    """`light_code` of a 16-bit HDR sample `val`, 0-65535, for FFmpeg's lutrgb filter."""
    signal = "(val/65535)"
    if transfer == "pq":
        power = f"pow({signal},{1 / _PQ_M2!r})"
        nits = f"10000*pow(max({power}-{_PQ_C1!r},0)/({_PQ_C2!r}-{_PQ_C3!r}*{power}),{1 / _PQ_M1!r})"
        light = f"{nits}/{REFERENCE_WHITE_NITS!r}"
    else:
        light = f"if(lte({signal},0.5),{signal}*{signal}/3,(exp(({signal}-{_HLG_C!r})/{_HLG_A!r})+{_HLG_B!r})/12)"
    top = float(srgb_encode(_LIGHT_TOP[transfer]))
    encoded = f"if(lte(ld(0),0.0031308),12.92*ld(0),1.055*pow(ld(0),{1 / 2.4!r})-0.055)"
    return f"st(0,{light});65535*{encoded}/{top!r}"


_LIGHT_CODE_EXPRESSIONS = {transfer: _light_expression(transfer) for transfer in _LIGHT_TOP}


def _levels() -> np.ndarray:
    return np.arange(65536, dtype=np.float64) / 65535


@functools.cache
def _to_linear(transfer: str) -> np.ndarray:
    """Linear light for every 16-bit plane value: HDR planes hold `light_code`."""
    if transfer == "sdr":
        return srgb_decode(_levels()).astype(np.float32)
    return srgb_decode(_levels() * srgb_encode(_LIGHT_TOP[transfer])).astype(np.float32)


def _hlg_ootf(scene: list[np.ndarray]) -> list[np.ndarray]:
    """BT.2100's HLG OOTF for a display of DEFAULT_PEAK_NITS, relative to the reference white."""
    luma = np.maximum(sum(weight * channel for weight, channel in zip(BT2020_LUMA, scene, strict=True)), 1e-6)
    scale = DEFAULT_PEAK_NITS / REFERENCE_WHITE_NITS * luma ** (HLG_SYSTEM_GAMMA - 1)
    return [channel * scale for channel in scene]


@functools.cache
def _encode() -> np.ndarray:
    linear = np.arange(ENCODE_STEPS, dtype=np.float64) / (ENCODE_STEPS - 1)
    return (np.clip(srgb_encode(linear), 0, 1) * 255 + 0.5).astype(np.uint8)


def _peak_nits(frame: VideoFrame) -> float:
    """MaxCLL when the stream gives it, else the mastering display's peak, else the default."""
    light = _side_data(frame, SideData.CONTENT_LIGHT_LEVEL)
    if len(light) >= 4 and struct.unpack_from("=I", light)[0] > 0:
        return float(struct.unpack_from("=I", light)[0])
    mastering = _side_data(frame, SideData.MASTERING_DISPLAY_METADATA)
    if len(mastering) >= 88:
        fields = struct.unpack_from("=22i", mastering)  # AVMasteringDisplayMetadata
        numerator, denominator, has_luminance = fields[18], fields[19], fields[21]
        if has_luminance and denominator > 0 and numerator > 0:
            return numerator / denominator
    return DEFAULT_PEAK_NITS


def _side_data(frame: VideoFrame, kind: SideData) -> bytes:
    return bytes(frame.side_data[kind]) if kind in frame.side_data else b""  # type: ignore[literal-required]  # PyAV types side_data as a TypedDict
