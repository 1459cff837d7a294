"""Sprite geometry, sheet composition and the WebVTT text: pure functions."""

from __future__ import annotations

import pytest
import webvtt
from PIL import Image

from snapshot import errors, images, tiles, vtt
from snapshot.errors import SnapshotError
from snapshot.spec import TileSpec


def test_cells_fill_rows_then_sheets():
    layout = tiles.layout(TileSpec(lines=2, columns=3, padding=4, margin=6), (100, 50))
    assert (layout.cell_width, layout.cell_height, layout.per_sheet) == (100, 50, 6)
    assert [layout.cell(i) for i in (0, 1, 2, 3, 5, 6, 8)] == [
        tiles.Cell(1, 6, 6, 100, 50),
        tiles.Cell(1, 110, 6, 100, 50),
        tiles.Cell(1, 214, 6, 100, 50),
        tiles.Cell(1, 6, 60, 100, 50),
        tiles.Cell(1, 214, 60, 100, 50),
        tiles.Cell(2, 6, 6, 100, 50),
        tiles.Cell(2, 214, 6, 100, 50),
    ]
    assert layout.sheet_count(8) == 2
    assert layout.sheet_size(1, 8) == (6 + 3 * 100 + 2 * 4 + 6, 6 + 2 * 50 + 4 + 6)
    assert layout.sheet_size(2, 8) == (320, 6 + 50 + 6)  # the last sheet keeps only the lines it fills


def test_cell_step_and_cell_size_defaults():
    layout = tiles.layout(TileSpec(cell_step=3, cell_width=64), (320, 180))
    assert (layout.cell_width, layout.cell_height) == (64, 36)
    assert [layout.cell_index(seq) for seq in range(1, 8)] == [0, None, None, 1, None, None, 2]
    assert (tiles.layout(TileSpec(cell_height=90), (320, 180)).cell_width) == 160


def test_a_sheet_over_the_jpeg_limit_is_refused():
    assert tiles.layout(TileSpec(lines=1, columns=15, padding=10), (4096, 100)).per_sheet == 15  # 61,580 px
    for tile in (TileSpec(lines=1, columns=16), TileSpec(lines=700, columns=1)):  # 65,536 and 70,000 px
        with pytest.raises(SnapshotError) as caught:
            tiles.layout(tile, (4096, 100))
        assert caught.value.code == errors.INVALID_PARAMETER and "TileOut" in caught.value.message


@pytest.mark.parametrize("image_format, side", [("JPEG", 65_500), ("WEBP", 16_383), ("AVIF", 32_768)])
def test_a_sheet_is_held_to_its_own_format_s_limit(image_format, side):
    fits = TileSpec(lines=1, columns=side // 100)
    assert tiles.layout(fits, (100, 56), 10**12, image_format).per_sheet == side // 100
    with pytest.raises(SnapshotError) as caught:
        tiles.layout(TileSpec(lines=1, columns=side // 100 + 1), (100, 56), 10**12, image_format)
    assert caught.value.code == errors.INVALID_PARAMETER and f"{image_format} allows at most {side} px" in str(
        caught.value
    )


def test_compose_sheet_places_each_cell_on_the_colour():
    red = images.cell_jpeg(Image.new("RGB", (20, 10), (255, 0, 0)), (10, 5))
    sheet = images.compose_sheet((30, 20), (0, 0, 255), [((2, 3), red), ((15, 12), red)])
    assert sheet.size == (30, 20)
    assert _close(sheet.getpixel((6, 5)), (255, 0, 0)) and _close(sheet.getpixel((20, 14)), (255, 0, 0))
    assert _close(sheet.getpixel((0, 0)), (0, 0, 255)) and _close(sheet.getpixel((14, 10)), (0, 0, 255))


def test_sheet_colours():
    assert images.sheet_color("black", "j") == (0, 0, 0)
    assert images.sheet_color("#10ff20", "j") == (16, 255, 32)
    assert images.sheet_color("random", "job-a") == images.sheet_color("RANDOM", "job-a")
    assert images.sheet_color("random", "job-a") != images.sheet_color("random", "job-b")


def test_vtt_track_parses_and_covers_the_video():
    text = vtt.track([(5000, "b.jpg"), (0, "a.jpg"), (5000, "dup.jpg"), (3_725_042, "c.jpg#xywh=0,0,8,8")], 3_800_000)
    assert text.startswith("WEBVTT\n\n")
    cues = webvtt.from_string(text, strict=True).captions
    assert [(c.start, c.end, c.text) for c in cues] == [
        ("00:00:00.000", "00:00:05.000", "a.jpg"),
        ("00:00:05.000", "01:02:05.042", "b.jpg"),
        ("00:00:05.000", "01:02:05.042", "dup.jpg"),  # one cue per image: the same time shares its span
        ("01:02:05.042", "01:03:20.000", "c.jpg#xywh=0,0,8,8"),
    ]


def test_vtt_timestamps():
    assert [vtt.timestamp(ms) for ms in (0, 999.6, 61_001, 36_000_000)] == [
        "00:00:00.000",
        "00:00:01.000",
        "00:01:01.001",
        "10:00:00.000",
    ]


def _close(pixel, expected, tolerance=40):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))
