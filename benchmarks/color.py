"""Colour: what HDR tone mapping costs, how close it gets, and the size of each image format.

    .venv/bin/python benchmarks/color.py [--workdir /tmp/snapshot-color] [--seconds 10]

Makes a 1080p 10-bit HEVC video twice from the same pictures (a known sRGB picture that
slides a little each frame, GOP 1 s): once SDR BT.709, once HDR10 (PQ, white at 203 nits).
Then, on 10 `normal` snapshots at 640 px, one per second:
  (1) the HDR cost: the capture code on SDR against PQ, best of 3, and the colour conversion
      alone on one decoded frame;
  (2) against the ffmpeg command line on the PQ video, the same points, one process each:
      its default (`-vf scale`) and the tone-mapping recipe most often given (zscale, hable),
      their time and their mean error per channel against the picture, beside ours;
  (3) the same snapshot as JPEG, WebP, AVIF and PNG at quality 85: bytes and encode time;
  (4) a 4096x4096 grainy picture (the largest snapshot) as WebP, and as AVIF at libavif's
      speeds 6 (Pillow's default) and the pipeline's: encode time, bytes and mean error;
  (5) how exact: a 1280x720 picture with fine detail (synth.textured_picture) coded as SDR
      BT.709, HDR10 and HLG, one snapshot at 320 px and one at 1000 px of each: mean error
      per channel against the picture, beside an exact BT.2100 decode of the same file.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import time

import av
import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import require_ffmpeg  # noqa: E402
from snapshot import color, images, media, synth  # noqa: E402

SIZE = (1920, 1080)
FPS = 25
WIDTH, HEIGHT = 640, 360
SLIDE = 4  # pixels the picture moves per frame
HABLE = (
    "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,"
    "zscale=t=bt709:m=bt709:r=tv,format=yuv420p,"
)


def picture_at(base: np.ndarray, index: int) -> np.ndarray:
    return np.roll(base, SLIDE * index, axis=1)


def make_videos(work: str, seconds: int, base: np.ndarray) -> dict[str, str]:
    pictures = [picture_at(base, index) for index in range(seconds * FPS)]
    settings = {"codec": "libx265", "matrix": "bt709", "options": {"preset": "ultrafast"}}
    paths = {"sdr": os.path.join(work, "sdr.mp4"), "pq": os.path.join(work, "pq.mp4")}
    keyframes = f"keyint={FPS}:min-keyint={FPS}"
    synth.write_color_video(paths["sdr"], pictures, x265_params=keyframes, **settings)
    synth.write_color_video(
        paths["pq"], pictures, x265_params=keyframes, **{**settings, "matrix": "bt2020", "transfer": "pq"}
    )
    return paths


def shots(probe: media.Probe, seconds: int, offset_ms: int) -> list[media.Shot]:
    times = [second * 1000 + offset_ms for second in range(seconds)]
    return [media.Shot(seq, ms, probe.pts(ms), (WIDTH, HEIGHT)) for seq, ms in enumerate(times, start=1)]


def capture(path: str, seconds: int, offset_ms: int = 0) -> tuple[float, list[media.Captured]]:
    """Best of 3 of one pass of the capture code over every point, `offset_ms` after each second."""
    best, captured = float("inf"), []
    for _ in range(3):
        with open(path, "rb") as source:
            probe = media.probe(source)
            started = time.perf_counter()
            captured = list(media.capture(source, shots(probe, seconds, offset_ms), probe))
            best = min(best, time.perf_counter() - started)
    return best, captured


def conversion_ms(path: str) -> float:
    """The colour conversion of one decoded frame to 640 px, in ms (median of 50)."""
    with av.open(path) as container:
        frame = next(container.decode(video=0))
    times = []
    for _ in range(50):
        started = time.perf_counter()
        color.render(frame, WIDTH, HEIGHT)
        times.append(time.perf_counter() - started)
    return 1000 * sorted(times)[len(times) // 2]


def ffmpeg(path: str, work: str, seconds: int, filters: str) -> tuple[float, list[Image.Image]]:
    started, pictures = time.perf_counter(), []
    for second in range(seconds):
        out = os.path.join(work, f"ffmpeg-{second}.png")
        command = ["ffmpeg", "-v", "error", "-y", "-ss", str(second), "-i", path, "-frames:v", "1"]
        subprocess.run([*command, "-vf", f"{filters}scale={WIDTH}:{HEIGHT}", out], check=True)
        pictures.append(Image.open(out).convert("RGB"))
    return time.perf_counter() - started, pictures


def error(base: np.ndarray, pictures: list[Image.Image]) -> float:
    """Mean absolute error per channel, the worst channel, averaged over the points."""
    worst = []
    for second, picture in enumerate(pictures):
        expected = Image.fromarray(picture_at(base, second * FPS)).resize(picture.size, Image.Resampling.BICUBIC)
        difference = np.abs(np.asarray(picture, np.float64) - np.asarray(expected, np.float64))
        worst.append(difference.mean(axis=(0, 1)).max())
    return float(np.mean(worst))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/snapshot-color")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    require_ffmpeg()
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    base = synth.color_picture(*SIZE)
    started = time.perf_counter()
    paths = make_videos(args.workdir, args.seconds, base)
    print(f"2 videos, {SIZE[0]}x{SIZE[1]} 10-bit HEVC, {args.seconds} s: made in {time.perf_counter() - started:.0f} s")

    print(f"\n(1) {args.seconds} snapshots at {WIDTH}x{HEIGHT}, the capture code, best of 3, ms per snapshot:")
    for offset_ms, where in ((0, "on keyframes (decode 1 frame)"), (500, "mid-GOP, normal (decode ~13)")):
        sdr_s, _ = capture(paths["sdr"], args.seconds, offset_ms)
        pq_s, _ = capture(paths["pq"], args.seconds, offset_ms)
        per_sdr, per_pq = (1000 * s / args.seconds for s in (sdr_s, pq_s))
        print(f"    {where:32} SDR {per_sdr:6.1f}  PQ {per_pq:6.1f}  HDR costs {100 * (pq_s / sdr_s - 1):+4.0f}%")
    sdr_ms, pq_ms = conversion_ms(paths["sdr"]), conversion_ms(paths["pq"])
    print(f"    colour conversion of one frame: SDR {sdr_ms:.2f} ms, PQ with tone mapping {pq_ms:.2f} ms")
    pq_s, ours = capture(paths["pq"], args.seconds)

    print(f"\n(2) the PQ video, {args.seconds} points: mean error per channel (0-255) against the picture")
    print(f"    {'':34} {'seconds':>8} {'error':>6}")
    print(f"    {'this pipeline (capture code)':34} {pq_s:8.2f} {error(base, [c.image for c in ours]):6.1f}")
    for name, filters in (("ffmpeg, default", ""), ("ffmpeg, zscale + tonemap=hable", HABLE)):
        seconds, pictures = ffmpeg(paths["pq"], args.workdir, args.seconds, filters)
        print(f"    {name:34} {seconds:8.2f} {error(base, pictures):6.1f}")

    print(f"\n(3) one {WIDTH}x{HEIGHT} snapshot (SDR video, frame 0), quality 85:")
    _, sdr = capture(paths["sdr"], 1)
    for image_format in ("JPEG", "WEBP", "AVIF", "PNG"):
        started = time.perf_counter()
        encoded = images.encode(sdr[0].image, image_format, 85)
        print(f"    {image_format:5} {len(encoded):7,d} bytes {1000 * (time.perf_counter() - started):6.1f} ms")

    print("\n(4) a 4096x4096 grainy picture, quality 85:")
    for line in large_picture():
        print(f"    {line}")

    print("\n(5) a picture with fine detail: mean error per channel (R / G / B, 0-255) against it")
    for line in exactness(args.workdir):
        print(f"    {line}")


def large_picture() -> list[str]:
    """WebP, and AVIF at speed 6 and at the pipeline's speed: encode time, bytes, mean error."""
    rng = np.random.default_rng(1)
    picture = np.clip(synth.color_picture(4096, 4096).astype(np.int16) + rng.integers(-20, 21, (4096, 4096, 3)), 0, 255)
    image = Image.fromarray(picture.astype(np.uint8))
    lines = []
    for name, image_format, options in (
        ("WebP", "WEBP", {}),
        ("AVIF, speed 6", "AVIF", {"speed": 6}),
        (f"AVIF, speed {images.AVIF_SPEED}", "AVIF", {"speed": images.AVIF_SPEED}),
    ):
        out = io.BytesIO()
        started = time.perf_counter()
        image.save(out, format=image_format, quality=85, **options)
        seconds = time.perf_counter() - started
        back = np.asarray(Image.open(io.BytesIO(out.getvalue())).convert("RGB"), np.float64)
        error = np.abs(back - picture).mean()
        lines.append(f"{name:14} {seconds:6.2f} s {len(out.getvalue()):11,d} bytes  error {error:.2f}")
    return lines


def exactness(work: str) -> list[str]:
    """Snapshots at 320 and 1000 px of the textured picture coded as SDR, PQ and HLG, and the
    exact BT.2100 decode of the HDR files: mean error per channel against the picture."""
    picture = synth.textured_picture(1280, 720)
    lines = []
    for transfer in ("sdr", "pq", "hlg"):
        path = os.path.join(work, f"textured-{transfer}.mp4")
        matrix = "bt709" if transfer == "sdr" else "bt2020"
        synth.write_color_video(path, [picture], matrix=matrix, transfer=transfer)
        with av.open(path) as container:
            frame = next(container.decode(video=0))
        for width in (320, 1000):
            size = (width, round(720 * width / 1280))
            expected = np.asarray(Image.fromarray(picture).resize(size, Image.Resampling.BICUBIC), np.float64)
            pictures = {"this pipeline": color.render(frame, *size)[0]}
            if transfer != "sdr":
                exact = Image.fromarray(synth.bt2100_decode(frame, transfer))
                pictures["exact decode"] = exact.resize(size, Image.Resampling.BICUBIC)
            for name, image in pictures.items():
                error = np.abs(np.asarray(image.convert("RGB"), np.float64) - expected).mean(axis=(0, 1))
                lines.append(f"{transfer.upper():4} {width:5} px  {name:14} " + " / ".join(f"{e:4.1f}" for e in error))
    return lines


if __name__ == "__main__":
    main()
