"""Colour: what a frame's numbers mean, and the sRGB picture a viewer should see
(docs/contract.md#colour).

SDR video converts with its own matrix and range. HDR video (PQ, HLG) is tone-mapped after
scaling, on the small picture: a lookup table to linear light, a 3x3 matrix from BT.2020 to
BT.709, a smooth roll-off of what is brighter than SDR white, and the sRGB curve.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from av.sidedata.sidedata import Type as SideData
from av.video.frame import VideoFrame
from PIL import Image

REFERENCE_WHITE_NITS = 203.0  # BT.2408: HDR's diffuse white, shown as SDR white
DEFAULT_PEAK_NITS = 1000.0  # when a PQ stream does not say; HLG's nominal display peak
HLG_SYSTEM_GAMMA = 1.2  # BT.2100's for a 1000-nit display
KNEE = 0.9  # sRGB-encoded level where HDR highlights start to roll off
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
    full = int(frame.color_range) == _FULL_RANGE or frame.format.name.startswith("yuvj")
    peak = _peak_nits(frame) if transfer == "pq" else DEFAULT_PEAK_NITS
    return Description(matrix, transfer, full, wide, peak)


def render(frame: VideoFrame, width: int, height: int) -> tuple[Image.Image, Description]:
    """The frame as an sRGB picture of width x height, scaled during colour conversion."""
    described = describe(frame)
    if not described.hdr and not described.wide_gamut:
        return _scaled(frame, described, width, height, "rgb24").to_image(), described
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


def to_srgb(signal: Sequence[np.ndarray], described: Description) -> np.ndarray:
    """The R, G and B planes (uint16, full range) of a wide-gamut or HDR picture -> 8-bit sRGB
    (height x width x 3). Planes rather than interleaved samples: every step is a pass over
    contiguous memory."""
    if described.transfer == "pq":
        linear = [np.take(_pq_to_linear(), plane) for plane in signal]
    elif described.transfer == "hlg":
        linear = _hlg_ootf([np.take(_hlg_to_scene(), plane) for plane in signal])
    else:
        linear = [np.take(_sdr_to_linear(), plane) for plane in signal]
    if described.wide_gamut:
        linear = [sum(weight * channel for weight, channel in zip(row, linear, strict=True)) for row in BT2020_TO_BT709]
    gain: np.ndarray | float = ENCODE_STEPS - 1
    if described.hdr and described.peak_nits > REFERENCE_WHITE_NITS:
        peak = described.peak_nits / REFERENCE_WHITE_NITS
        brightest = np.maximum(np.maximum(linear[0], linear[1]), linear[2])
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


@functools.lru_cache(maxsize=16)
def _shoulder(peak: float) -> np.ndarray:
    """The gain for each level of a pixel's brightest channel, from 0 to `peak` (relative to
    SDR white) in SHOULDER_STEPS: 1 up to the knee, then an exponential shoulder in sRGB
    levels that reaches white at the peak. Scaling each pixel as a whole keeps its hue."""
    brightest = np.linspace(0, peak, SHOULDER_STEPS)
    span = 1 - KNEE
    reach = (srgb_encode(peak) - KNEE) / span
    level = (srgb_encode(brightest) - KNEE) / span
    rolled = srgb_decode(KNEE + span * np.expm1(-level) / np.expm1(-reach))
    gain = np.where(level > 0, rolled / np.maximum(brightest, 1e-9), 1.0)
    return gain.astype(np.float32)


def srgb_encode(linear: np.ndarray | float) -> np.ndarray:
    """The sRGB curve (IEC 61966-2-1), its power law carried on above 1."""
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.maximum(linear, 0) ** (1 / 2.4) - 0.055)


def srgb_decode(encoded: np.ndarray | float) -> np.ndarray:
    return np.where(encoded <= 0.04045, encoded / 12.92, ((np.maximum(encoded, 0) + 0.055) / 1.055) ** 2.4)


def _levels() -> np.ndarray:
    return np.arange(65536, dtype=np.float64) / 65535


@functools.cache
def _pq_to_linear() -> np.ndarray:
    """SMPTE ST 2084's EOTF, relative to the reference white, for every 16-bit sample."""
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 32, 3424 / 4096, 2413 / 128, 2392 / 128
    power = _levels() ** (1 / m2)
    nits = 10000 * (np.maximum(power - c1, 0) / (c2 - c3 * power)) ** (1 / m1)
    return (nits / REFERENCE_WHITE_NITS).astype(np.float32)


@functools.cache
def _hlg_to_scene() -> np.ndarray:
    """ARIB STD-B67's inverse OETF: scene light in [0, 1] for every 16-bit sample."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    signal = _levels()
    scene = np.where(signal <= 0.5, signal**2 / 3, (np.exp((signal - c) / a) + b) / 12)
    return scene.astype(np.float32)


def _hlg_ootf(scene: list[np.ndarray]) -> list[np.ndarray]:
    """BT.2100's HLG OOTF for a display of DEFAULT_PEAK_NITS, relative to the reference white."""
    luma = np.maximum(sum(weight * channel for weight, channel in zip(BT2020_LUMA, scene, strict=True)), 1e-6)
    scale = DEFAULT_PEAK_NITS / REFERENCE_WHITE_NITS * luma ** (HLG_SYSTEM_GAMMA - 1)
    return [channel * scale for channel in scene]


@functools.cache
def _sdr_to_linear() -> np.ndarray:
    return srgb_decode(_levels()).astype(np.float32)


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
