"""python -m pipeline.manifest: folders of videos become a manifest, and the README's "Your own
videos" section, followed literally, runs it to one successful result per request."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from pipeline import manifest
from pipeline.manifest import ManifestError, Presets, Video
from pipeline.show import read_results
from snapshot import naming, spec, synth
from tests.gcs_servers import free_port
from tests.helpers import ROOT
from tests.test_gcs import default_credentials, emulator, gcs  # noqa: F401 - the GCS emulator's fixtures

ALL = Presets(poster_ms=5000, every_s=10, spread=4, storyboard_s=1, width=320)


def names_of(line: str) -> list[str]:
    """The expanded first output names (image, and sheet if any) of a manifest line, as the
    pipeline parses it."""
    request = spec.parse_request(line)
    found = [naming.expand(request.config.output.name, request.input.name)]
    if request.config.tile_output:
        found.append(naming.expand(request.config.tile_output.name, request.input.name))
    return found


@pytest.mark.parametrize(
    ("text", "ms"),
    [("5s", 5000), ("1500ms", 1500), ("1.5s", 1500), ("2min", 120_000), ("1h", 3_600_000), ("3", 3000), ("0s", 0)],
)
def test_durations_have_units_and_bare_numbers_are_seconds(text, ms):
    assert manifest.parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["5q", "", "inf", "nan", "-1s", "1e3", "0.0001s", "5 sec"])
def test_a_duration_that_is_not_one_is_refused(text):
    with pytest.raises(ValueError, match="duration|millisecond"):
        manifest.parse_duration_ms(text)


@pytest.mark.parametrize(
    ("name", "video"),
    [("a.mp4", True), ("A.MP4", True), ("x.Mov", True), ("clip.webm", True), ("notes.txt", False)]
    + [("mp4", False), (".mp4", False), ("frame.jpg", False), ("x.mp4.part", False)],
)
def test_videos_are_known_by_their_extension_in_any_case(name, video):
    assert manifest.is_video(name) is video


def test_every_preset_is_a_valid_request_with_its_own_names():
    lines = manifest.manifest_lines([Video("mine", "trips/a b.MP4")], ALL)
    requests = [spec.parse_request(line) for line in lines]
    assert [r.user_data for r in requests] == ["poster", "every 10 s", "spread 4", "storyboard"]
    assert {r.input for r in requests} == {spec.ObjectRef("mine", "local", "trips/a b.MP4")}
    poster, every, spread, storyboard = (r.config for r in requests)
    assert (poster.time_ms, poster.is_async, poster.width, poster.frame_type) == (5000, False, 320, "normal")
    assert (every.time_ms, every.interval_ms, every.num, every.width) == (0, 10_000, None, 320)
    assert (spread.num, spread.interval_ms, spread.width) == (4, 0, 320)
    tile, _ = storyboard.sheets
    assert (storyboard.interval_ms, storyboard.vtt, storyboard.vtt_sprite_fragments, tile.keep_cells) == (
        1000,
        True,
        True,
        False,
    )
    assert {r.config.output.bucket for r in requests} == {"thumbs"}
    assert [names_of(line) for line in lines] == [
        ["mine/trips/a b.MP4/poster.jpg"],
        ["mine/trips/a b.MP4/every10s-00001.jpg"],
        ["mine/trips/a b.MP4/spread4-00001.jpg"],
        ["mine/trips/a b.MP4/storyboard-00001.jpg", "mine/trips/a b.MP4/storyboard-00001.jpg"],
    ]


def test_no_two_videos_share_an_output_name():
    videos = [Video("mine", n) for n in ("a/x.mp4", "b/x.mp4", "x.mp4", "x.mov", "x_mp4.mp4", "{Count}.mp4")]
    videos.append(Video("other", "a/x.mp4"))
    lines = manifest.manifest_lines(videos, Presets(poster_ms=0, spread=3))
    outputs = [names_of(line)[0] for line in lines]
    assert len(lines) == 14 and len(set(outputs)) == 14
    assert "mine/{Count}.mp4/poster.jpg" in outputs  # a name's own braces are never expanded


def test_a_name_with_a_percent_sign_reaches_the_pipeline_unchanged():
    (line,) = manifest.manifest_lines([Video("mine", "100% real.mp4")], Presets(poster_ms=0))
    request = spec.parse_request(line)
    assert request.input.name == "100% real.mp4"
    assert names_of(line) == ["mine/100% real.mp4/poster.jpg"]


def test_lines_are_sorted_and_the_same_video_twice_is_one():
    one = manifest.manifest_lines([Video("b", "z.mp4"), Video("a", "y.mp4"), Video("b", "z.mp4")], Presets(0))
    assert [spec.parse_request(line).input.bucket for line in one] == ["a", "b"]


def test_a_local_file_is_named_by_its_place_below_the_bucket_root(tmp_path):
    root = tmp_path / "buckets"
    assert manifest.below_root(str(root / "mine" / "a b" / "x.mp4"), str(root)) == Video("mine", "a b/x.mp4")
    assert manifest.below_root(str(root / "..mine" / "x.mp4"), str(root)) == Video("..mine", "x.mp4")
    with pytest.raises(ManifestError, match="not below the bucket root"):
        manifest.below_root(str(tmp_path / "x.mp4"), str(root))
    with pytest.raises(ManifestError, match="directly in the bucket root"):
        manifest.below_root(str(root / "x.mp4"), str(root))
    assert manifest.below_root("gs://r/p/mine/a.mp4", "gs://r/p/") == Video("mine", "a.mp4")
    assert manifest.gcs_video("gs://media/videos/a.mp4") == Video("media", "videos/a.mp4")


def folder_of_videos(root: Path, videos) -> list[str]:
    """A bucket `mine` below `root`: nested folders, a space, an upper-case extension, a file that
    is not a video, a hidden file and two inputs of the same file name; the videos' names."""
    names = ["trip 2024/day one/Beach.MP4", "trip 2024/x.mp4", "other/x.mp4", "other/x.webm"]
    sources = ["h264.mp4", "h264.mp4", "phone.mp4", "vp9.webm"]
    for name, source in zip(names, sources, strict=True):
        (root / "mine" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(videos(source), root / "mine" / name)
    (root / "mine" / "notes.txt").write_text("not a video")
    (root / "mine" / "other" / "._x.mp4").write_text("macOS metadata")
    return names


def test_a_folder_gives_one_request_per_video_and_preset(tmp_path, videos, capsys, monkeypatch):
    names = folder_of_videos(tmp_path / "buckets", videos)
    monkeypatch.chdir(tmp_path)
    code = manifest.main(["buckets/mine", "--spread", "2", "--poster", "1s", "--out", "lists/m.jsonl"])
    out = capsys.readouterr().out
    assert code == 0
    assert "8 requests for 4 videos in lists/m.jsonl" in out
    assert "1 file that is not a video by its extension, 1 hidden file" in out
    lines = (tmp_path / "lists" / "m.jsonl").read_text().splitlines()
    assert [(spec.parse_request(line).input.name, json.loads(line)["UserData"]) for line in lines] == [
        (name, preset) for name in sorted(names) for preset in ("poster", "spread 2")
    ]
    again = manifest.main(["buckets/mine/", "--poster=1s", "--spread", "2", "--out", "lists/again.jsonl"])
    assert again == 0 and (tmp_path / "lists" / "again.jsonl").read_text() == "\n".join(lines) + "\n"


def test_globs_pick_files_and_the_default_preset_is_a_poster_at_0(tmp_path, videos, monkeypatch):
    folder_of_videos(tmp_path / "buckets", videos)
    monkeypatch.chdir(tmp_path)
    assert manifest.main(["buckets/mine/**/*.MP4", "buckets/mine/other/*.webm", "--out", "m.jsonl"]) == 0
    requests = [spec.parse_request(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [(r.input.name, r.config.time_ms, r.config.is_async) for r in requests] == [
        ("other/x.webm", 0, False),
        ("trip 2024/day one/Beach.MP4", 0, False),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["elsewhere", "--out", "m.jsonl"], "nothing matches elsewhere"),
        (["outside.mp4", "--out", "m.jsonl"], "outside.mp4 is not below the bucket root ./buckets"),
        (["buckets/top.mp4", "--out", "m.jsonl"], "directly in the bucket root"),
        (["buckets/mine/notes.txt", "--out", "m.jsonl"], "no videos in buckets/mine/notes.txt"),
        (["buckets/mine", "--out", "m.jsonl", "--bucket_root", "gs://b"], "is not below the bucket root gs://b"),
    ],
)
def test_sources_that_cannot_be_named_exit_2_with_one_line(tmp_path, videos, capsys, monkeypatch, args, message):
    folder_of_videos(tmp_path / "buckets", videos)
    shutil.copy(videos("h264.mp4"), tmp_path / "outside.mp4")
    shutil.copy(videos("h264.mp4"), tmp_path / "buckets" / "top.mp4")
    monkeypatch.chdir(tmp_path)
    assert manifest.main(args) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and error.count("\n") == 1
    assert not (tmp_path / "m.jsonl").exists()


def test_an_out_that_is_a_video_or_a_source_is_refused_and_left_alone(tmp_path, videos, capsys, monkeypatch):
    folder_of_videos(tmp_path / "buckets", videos)
    (tmp_path / "buckets" / "mine" / "list.txt").write_text("mine\n")
    monkeypatch.chdir(tmp_path)
    video = next((tmp_path / "buckets").rglob("*.mp4"))
    before = video.read_bytes()
    cases = [
        (["buckets/mine", "--out", str(video)], "has a video's extension"),
        (["buckets/mine", "--out", "new/clip.MKV"], "has a video's extension"),
        (["buckets/mine/list.txt", "--out", "buckets/mine/list.txt"], "is the source buckets/mine/list.txt"),
    ]
    for args, message in cases:
        assert manifest.main(args) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error
    assert video.read_bytes() == before and (tmp_path / "buckets" / "mine" / "list.txt").read_text() == "mine\n"
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--poster", "5q"), ("--every", "0"), ("--every", "nan"), ("--spread", "0"), ("--spread", "x")]
    + [("--width", "5000"), ("--output_bucket", "a/b"), ("--storyboard_every", "-1s")],
)
def test_bad_flag_values_exit_2(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        manifest.main(["buckets", flag, value, "--out", "m.jsonl"])
    assert exit_.value.code == 2
    assert flag in capsys.readouterr().err


def test_help_explains_every_flag_with_its_unit(capsys):
    with pytest.raises(SystemExit) as exit_:
        manifest.main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("--out FILE", "(required)", "--poster TIME", "5s, 1500ms", "--every SECONDS", "--spread N"):
        assert phrase in text
    for phrase in ("--width PX", "pixels", "--output_bucket NAME", "default: thumbs", "Without a preset: --poster 0s"):
        assert phrase in text


@pytest.mark.slow  # a GCS emulator
def test_a_gcs_prefix_or_glob_lists_its_videos(gcs, videos, tmp_path, capsys):  # noqa: F811
    media = gcs.bucket("media")
    for name in ("in/a b/x.mp4", "in/y.MOV", "in/notes.txt", "in2/z.mp4"):
        gcs.upload(media, name, videos("h264.mp4"))
    out = tmp_path / "m.jsonl"

    def inputs() -> list[tuple[str, str]]:
        return [(r.input.bucket, r.input.name) for r in map(spec.parse_request, out.read_text().splitlines())]

    assert manifest.main([f"gs://{media}/in", "--out", str(out)]) == 0
    assert inputs() == [(media, "in/a b/x.mp4"), (media, "in/y.MOV")]
    said = capsys.readouterr().out
    assert "1 file that is not a video" in said and json.dumps({media: f"gs://{media}"}) in said
    assert manifest.main([f"gs://{media}/in*/*.mp4", "--out", str(out)]) == 0
    assert inputs() == [(media, "in2/z.mp4")]
    assert manifest.main([f"gs://{media}/in2/", "--bucket_root", f"gs://{media}", "--out", str(out)]) == 0
    assert inputs() == [("in2", "z.mp4")]
    assert manifest.main([f"gs://{media}/none", "--out", str(out)]) == 2


# -- the README's section, followed literally --------------------------------------------------


def readme_commands() -> tuple[str, list[list[str]]]:
    """The prose and the commands of the README's "Your own videos" section."""
    readme = (Path(ROOT) / "README.md").read_text()
    section = readme[readme.index("## Your own videos") :]
    section = section[: section.index("\n## ")]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the section has a ```sh block"
    commands = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    return section, [command for command in commands if command]


@pytest.mark.slow  # whole runs of the commands
def test_the_readme_your_own_videos_section_runs_as_written(tmp_path, videos):
    prose, commands = readme_commands()
    assert [c[:3] for c in commands] == [
        ["python", "-m", "pipeline.manifest"],
        ["python", "-m", "pipeline"],
        ["python", "-m", "pipeline.report"],
    ]
    source = next(arg for arg in commands[0][3:] if not arg.startswith("-"))
    assert f"`{source}/`" in prose  # the prose says where the videos go
    bucket_root, _, bucket = source.rstrip("/").rpartition("/")
    names = folder_of_videos(tmp_path / bucket_root, videos)
    for command in commands:
        done = subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    out = commands[0][commands[0].index("--out") + 1]
    lines = [line for line in (tmp_path / out).read_text().splitlines() if line.strip()]
    assert len(lines) == 3 * len(names)  # the README asks for three presets
    prefix = commands[1][commands[1].index("--results") + 1]
    records = read_results(str(tmp_path / prefix))
    assert sorted(r["Source"] for r in records) == sorted(f"{os.path.basename(out)}:{n}" for n in range(1, 13))
    assert {(r["State"], r["Code"]) for r in records} == {("Success", "")}
    output_bucket = tmp_path / bucket_root / "thumbs"
    images = [s for r in records for s in r["Snapshots"] if s["Object"]]
    assert len({s["Object"] for s in images}) == len(images) > 0
    for shot in images:  # each image shows the frame it claims, upright, at 30 fps
        with Image.open(output_bucket / shot["Object"]) as image:
            assert synth.read_index(image) == round(shot["FrameTime"] * 30 / 1000), shot["Object"]
    beach = next(s for s in images if s["Object"] == f"{bucket}/trip 2024/day one/Beach.MP4/poster.jpg")
    assert beach["FrameTime"] == 1000
    report = commands[2][commands[2].index("--out") + 1]
    assert "Beach.MP4" in (tmp_path / report).read_text()


@pytest.mark.parametrize("without", ["a server", "credentials"])
def test_a_gcs_source_that_cannot_be_listed_fails_at_once_in_one_line(tmp_path, capsys, monkeypatch, without):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no gcloud credentials either
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    if without == "a server":
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    else:
        monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    started = time.monotonic()
    assert manifest.main(["gs://somebucket/videos", "--out", str(tmp_path / "m.jsonl")]) == 2
    assert time.monotonic() - started < 20
    error = capsys.readouterr().err
    assert error.startswith("error: cannot list gs://somebucket/videos: ") and error.count("\n") == 1, error
    if without == "credentials":
        assert "no Google Cloud credentials" in error
