"""Colour, proven on pixels: each video is coded from an sRGB picture the test knows, and a
snapshot of it must show that picture. HDR (PQ, HLG) is tone-mapped; output formats beyond JPEG."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
import webvtt
from PIL import Image

from snapshot import assemble, color, jobs, media, synth
from snapshot.jobs import ManifestLine
from snapshot.storage import Buckets
from tests.helpers import request_line

WIDTH = 320  # snapshots are compared at this width

# name -> (size, write_color_video settings, the description a snapshot reports)
CODINGS = {
    "bt709_limited": ((1280, 720), {"matrix": "bt709"}, "bt709/sdr/limited"),
    "bt601_limited_sd": ((640, 480), {"matrix": "bt601"}, "bt601/sdr/limited"),
    "bt709_full": ((1280, 720), {"matrix": "bt709", "full_range": True}, "bt709/sdr/full"),
    "untagged_hd": ((1280, 720), {"matrix": "bt709", "tagged": False}, "bt709/sdr/limited"),
    "untagged_sd": ((640, 360), {"matrix": "bt601", "tagged": False}, "bt601/sdr/limited"),
    "pq": ((1280, 720), {"matrix": "bt2020", "transfer": "pq"}, "bt2020/pq/limited"),
    "hlg": ((1280, 720), {"matrix": "bt2020", "transfer": "hlg"}, "bt2020/hlg/limited"),
}


def mean_error(image: Image.Image, picture: np.ndarray) -> np.ndarray:
    """Mean absolute error per channel (0-255) against `picture` scaled to the image's size."""
    expected = np.asarray(Image.fromarray(picture).resize(image.size, Image.Resampling.BICUBIC), np.float64)
    return np.abs(np.asarray(image.convert("RGB"), np.float64) - expected).mean(axis=(0, 1))


def first_frame(path):
    with av.open(str(path)) as container:
        return next(container.decode(video=0))


def snapshot(bucket_root, name: str, output: str = "{Count}.jpg", **config):
    line = request_line(f"v/{name}", output=output, **{"Width": WIDTH, **config})
    return assemble.run(jobs.read_job(ManifestLine("m.jsonl", 1, line), "now"), Buckets(str(bucket_root)))


@pytest.mark.parametrize("coding", sorted(CODINGS))
def test_a_snapshot_shows_the_picture_the_video_was_coded_from(bucket_root, coding):
    (width, height), settings, described = CODINGS[coding]
    picture = synth.color_picture(width, height)
    synth.write_color_video(str(bucket_root / "in" / "v" / f"{coding}.mp4"), [picture] * 2, **settings)

    result = snapshot(bucket_root, f"{coding}.mp4")

    assert result.state == "Success", result.message
    record = result.to_record()
    assert (record["ColorIn"], record["ToneMapped"]) == (described, settings.get("transfer", "sdr") != "sdr")
    image = Image.open(bucket_root / "out" / "00001.jpg")
    assert image.size == (WIDTH, round(height * WIDTH / width))
    limit = 12 if "transfer" in settings else 8
    assert mean_error(image, picture).max() <= limit


@pytest.mark.parametrize("coding", ["pq", "hlg", "untagged_hd"])
def test_the_colour_test_fails_for_a_conversion_that_ignores_the_coding(tmp_path, coding):
    """PyAV's plain conversion, as the ffmpeg command line does by default, misses by far."""
    (width, height), settings, _ = CODINGS[coding]
    picture = synth.color_picture(width, height)
    synth.write_color_video(str(tmp_path / "v.mp4"), [picture], **settings)
    plain = first_frame(tmp_path / "v.mp4").to_image(width=WIDTH, height=round(height * WIDTH / width))
    assert mean_error(plain, picture).max() > (20 if "transfer" in settings else 8)


MASTER_DISPLAY = "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L({},1)"


@pytest.mark.parametrize(
    ("metadata", "peak"),
    [
        ("", 1000),
        ("max-cll=600,200", 600),
        ("max-cll=203,100", 203),
        (MASTER_DISPLAY.format(2030000), 203),  # no MaxCLL: the mastering display's peak
        (f"max-cll=600,200:{MASTER_DISPLAY.format(2030000)}", 600),  # MaxCLL first
    ],
)
def test_highlights_roll_off_to_the_peak_the_stream_declares(tmp_path, metadata, peak):
    """Half the picture at 600 nits, half at SDR white. A stream whose peak is SDR white needs
    no roll-off: its white is white. A brighter peak lands on white, and SDR white rolls off a
    little below it."""
    white = np.full((180, 320), float(synth.WHITE_NITS))
    white[:, :160] = 600.0
    path = tmp_path / "v.mp4"
    picture = np.full((180, 320, 3), 255, np.uint8)
    synth.write_color_video(
        str(path), [picture], transfer="pq", matrix="bt2020", x265_params=metadata, white_nits=[white]
    )
    frame = first_frame(path)

    described = color.describe(frame)
    image = np.asarray(color.render(frame, 320, 180)[0]).astype(int)

    assert described.peak_nits == pytest.approx(peak)
    bright, reference_white = image[90, 40], image[90, 280]
    if peak == 203:
        assert bright.min() == reference_white.min() == 255  # clipped, as the stream says nothing is brighter
    else:
        assert bright.min() >= 253 and 240 <= reference_white.max() <= 250


def test_tone_mapping_is_smooth_and_leaves_what_is_darker_than_the_knee_alone():
    """A ramp of grey from 0.01 to 10,000 nits, as the planes of a scaled HDR picture hold it."""
    nits = np.geomspace(0.01, 10000, 4000)
    code = (color.light_code(nits / synth.WHITE_NITS, "pq") * 65535).round().astype(np.uint16)
    signal = np.repeat(code[None, :, None], 3, axis=2)
    described = color.Description("bt2020", "pq", False, False, peak_nits=1000)

    levels = color.to_srgb(signal.transpose(2, 0, 1), described)[0, :, 0].astype(int)

    assert np.all(np.diff(levels) >= 0) and np.abs(np.diff(levels)).max() <= 3
    straight = color.srgb_encode(nits / synth.WHITE_NITS) * 255
    dark = straight < 0.88 * 255
    assert np.abs(levels[dark] - straight[dark]).max() <= 1
    assert levels[nits >= 1000].min() == 255 and levels[nits < 203].max() < 255


@pytest.mark.parametrize("transfer", ["pq", "hlg"])
@pytest.mark.parametrize("width", [320, 1000])
def test_an_hdr_snapshot_is_as_close_to_the_picture_as_an_exact_decode(bucket_root, transfer, width):
    """Fine detail, scaled in the HDR signal, comes out darker than the picture; light near SDR
    white, rolled off when nothing is brighter, comes out grey; the ringing of 4:2:0 chroma
    around detail is not a highlight. The snapshot must be as close to the picture as a decode
    straight from BT.2100's equations, scaled as the picture is."""
    picture = synth.textured_picture(1280, 720)
    path = bucket_root / "in" / "v" / f"{transfer}.mp4"
    synth.write_color_video(str(path), [picture] * 2, matrix="bt2020", transfer=transfer)
    exact = Image.fromarray(synth.bt2100_decode(first_frame(path), transfer)).resize(
        (width, round(720 * width / 1280)), Image.Resampling.BICUBIC
    )

    result = snapshot(bucket_root, f"{transfer}.mp4", output="{Count}.png", Width=width)

    assert result.state == "Success", result.message
    ours, best = mean_error(Image.open(bucket_root / "out" / "00001.png"), picture), mean_error(exact, picture)
    assert ours.max() <= 8 and np.all(ours <= best + 1.5), (ours, best)


def test_an_hdr_frame_that_is_dark_to_the_eye_is_black(bucket_root):
    """Five frames of grey at 2 nits: their PQ code values are not dark (a plain luma reads
    about 44), but a viewer sees them as black. The snapshot at 0 skips them."""
    grey = np.full((180, 320, 3), 255, np.uint8)
    pictures = [grey] * 5 + [synth.pattern(index, 320, 180) for index in range(5, 30)]
    white_nits = [2.0] * 5 + [float(synth.WHITE_NITS)] * 25
    path = bucket_root / "in" / "v" / "dim.mp4"
    synth.write_color_video(str(path), pictures, matrix="bt2020", transfer="pq", white_nits=white_nits)
    plain_luma = first_frame(path).reformat(format="gray").to_ndarray()
    assert plain_luma.mean() > 32

    result = snapshot(bucket_root, "dim.mp4", Time=0, FrameType="normal")

    assert result.state == "Success", result.message
    assert synth.read_index(Image.open(bucket_root / "out" / "00001.jpg")) == 5


@pytest.mark.parametrize("extension", [".webp", ".avif", ".png", ".jpeg", ".jpg", ".bmp"])
def test_the_output_name_picks_the_image_format(bucket_root, extension):
    tiles = {"Bucket": "out", "Location": "local", "Object": "sheets/{TileCount}" + extension}
    result = snapshot(
        bucket_root,
        "h264.mp4",
        output="shots/{Count}" + extension,
        Num=3,
        Interval=1,
        FrameType="normal",
        Quality=80,
        TileOut={"Lines": 1, "Columns": 3, "CellWidth": 96, "Padding": 0, "Margin": 0},
        TileOutputFile=tiles,
        Format="vtt",
    )

    assert result.state == "Success", result.message
    expected = {".webp": "WEBP", ".avif": "AVIF", ".png": "PNG"}.get(extension, "JPEG")
    for seq, frame in enumerate([0, 30, 60], start=1):
        image = Image.open(bucket_root / "out" / "shots" / f"0000{seq}{extension}")
        assert (image.format, image.size) == (expected, (WIDTH, 180))
        assert synth.read_index(image) == frame
    sheet = Image.open(bucket_root / "out" / "sheets" / f"00001{extension}")
    assert sheet.format == expected
    assert [synth.read_index(sheet.crop((96 * k, 0, 96 * (k + 1), 54))) for k in range(3)] == [0, 30, 60]
    cues = webvtt.read_buffer(io.StringIO((bucket_root / "out" / "shots" / "00001.vtt").read_text()))
    assert [cue.text for cue in cues] == [f"0000{seq}{extension}" for seq in (1, 2, 3)]


def test_png_is_lossless_and_quality_shrinks_the_lossy_formats(tmp_path):
    picture = Image.fromarray(synth.color_picture(320, 180))
    png = Image.open(io.BytesIO(media.images.encode(picture, "PNG", 10)))
    assert np.array_equal(np.asarray(png.convert("RGB")), np.asarray(picture))
    for image_format in ("JPEG", "WEBP", "AVIF"):
        small, large = (len(media.images.encode(picture, image_format, q)) for q in (30, 90))
        assert small < large, image_format


@pytest.mark.parametrize("codec", ["qtrle", "png"])
def test_rgb_video_is_labelled_rgb_full_range(bucket_root, codec):
    """QuickTime Animation and PNG in MOV code RGB samples: no matrix, full range, whatever
    the (absent) colour tags would suggest for YUV."""
    picture = synth.color_picture(320, 180)
    with av.open(str(bucket_root / "in" / "v" / f"{codec}.mov"), "w") as out:
        stream = out.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "rgb24"
        for _ in range(2):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        out.mux(stream.encode())

    result = snapshot(bucket_root, f"{codec}.mov", FrameType="normal")

    assert result.state == "Success", result.message
    assert result.to_record()["ColorIn"] == "rgb/sdr/full"
    assert mean_error(Image.open(bucket_root / "out" / "00001.jpg"), picture).max() <= 8
