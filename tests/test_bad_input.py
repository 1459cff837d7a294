"""Bad input: every case gets its exact code, and the good jobs of the same run are untouched.

One pipeline run (decoding isolated, as in production) holds all the cases below, interleaved
with good jobs whose pixels are checked afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from PIL import Image

from pipeline import graph
from pipeline.show import read_results
from snapshot import assemble, errors, guarded, jobs, synth
from snapshot.jobs import ManifestLine
from snapshot.limits import Limits
from snapshot.storage import Buckets

from . import wild

E = errors
OK = "Success"
OUT = {"Bucket": "out", "Location": "l", "Object": "{Count}.jpg"}
INPUT = {"Bucket": "in", "Location": "l", "Object": "v/h264.mp4"}
TILES = {"Bucket": "out", "Location": "l", "Object": "t/{TileCount}.jpg"}


def req(input_=None, output=None, **config) -> str:
    config = {"OutputFile": {**OUT, **(output or {})}, **config}
    if "TimeArray" not in config:
        config.setdefault("Time", 0)
    return json.dumps({"Input": {**INPUT, **(input_ or {})}, "SnapshotConfig": config})


def media(name: str, **config) -> str:
    return req({"Object": f"bad/{name}"}, {"Object": f"bad-{name}/{{Count}}.jpg"}, **config)


def raw(**fields) -> str:
    return json.dumps(fields)


def with_field(text: str, name: str, value_json: str) -> str:
    """`text` (a JSON object) with SnapshotConfig field `name` set to raw JSON `value_json`,
    which json.dumps cannot write: NaN, Infinity, integers of hundreds of digits."""
    line = json.loads(text)
    line["SnapshotConfig"][name] = "@@"
    return json.dumps(line).replace('"@@"', value_json)


HUGE = "9" * 400


# (case, manifest line, expected code or OK)
CASES = (
    [
        # malformed JSON at each level
        ("line not json", "{'Input': 1}", E.JSON_FORMAT_INVALID),
        ("line truncated", req()[:-5], E.JSON_FORMAT_INVALID),
        ("line is a list", "[1, 2]", E.JSON_OBJECT_FORMAT_INVALID),
        ("line is a number", "42", E.JSON_OBJECT_FORMAT_INVALID),
        ("line is null", "null", E.JSON_OBJECT_FORMAT_INVALID),
        (
            "Input bad json string",
            raw(Input="{oops", SnapshotConfig={"OutputFile": OUT, "Time": 0}),
            E.JSON_FORMAT_INVALID,
        ),
        (
            "Input json array",
            raw(Input="[]", SnapshotConfig={"OutputFile": OUT, "Time": 0}),
            E.JSON_OBJECT_FORMAT_INVALID,
        ),
        ("Input number", raw(Input=5, SnapshotConfig={"OutputFile": OUT, "Time": 0}), E.JSON_OBJECT_FORMAT_INVALID),
        ("SnapshotConfig bad json", raw(Input=INPUT, SnapshotConfig='{"Time":'), E.JSON_FORMAT_INVALID),
        ("SnapshotConfig list", raw(Input=INPUT, SnapshotConfig=[1]), E.JSON_OBJECT_FORMAT_INVALID),
        (
            "OutputFile bad json",
            raw(Input=INPUT, SnapshotConfig={"OutputFile": "{x", "Time": 0}),
            E.JSON_FORMAT_INVALID,
        ),
        ("TimeArray bad json", req(TimeArray="{x"), E.JSON_FORMAT_INVALID),
        ("TimePointList bad json", req(TimeArray={"TimePointList": "[1,"}), E.JSON_FORMAT_INVALID),
        ("TileOut bad json", req(TileOut="{x", TileOutputFile=TILES), E.JSON_FORMAT_INVALID),
        ("SubOut bad json", req(Format="vtt", SubOut="{x"), E.JSON_FORMAT_INVALID),
        # missing and wrongly typed fields
        ("no Input", raw(SnapshotConfig={"OutputFile": OUT, "Time": 0}), E.NULL_VALUE),
        ("no SnapshotConfig", raw(Input=INPUT), E.NULL_VALUE),
        ("no OutputFile", raw(Input=INPUT, SnapshotConfig={"Time": 0}), E.NULL_VALUE),
        ("no Time", raw(Input=INPUT, SnapshotConfig={"OutputFile": OUT}), E.NULL_VALUE),
        ("no Bucket", req({"Bucket": ""}), E.NULL_VALUE),
        (
            "no Object",
            raw(Input={"Bucket": "in", "Location": "l"}, SnapshotConfig={"OutputFile": OUT, "Time": 0}),
            E.NULL_VALUE,
        ),
        ("Bucket is a number", req({"Bucket": 7}), E.INVALID_PARAMETER),
        ("Time is text", req(Time="noon"), E.INVALID_PARAMETER),
        ("Time is a list", req(Time=[1]), E.INVALID_PARAMETER),
        ("Time is fractional", req(Time=1.5), E.INVALID_PARAMETER),
        ("Num is a bool", req(Num=True), E.INVALID_PARAMETER),
        ("Width is an object", req(Width={"px": 5}), E.INVALID_PARAMETER),
        ("FrameType unknown", req(FrameType="key"), E.INVALID_PARAMETER),
        ("Action wrong", json.dumps({"Action": "SubmitJobs", **json.loads(req())}), E.INVALID_PARAMETER),
        ("UserData is a number", json.dumps({"UserData": 5, **json.loads(req())}), E.INVALID_PARAMETER),
        ("TimePointList empty", req(TimeArray={"TimePointList": []}), E.INVALID_PARAMETER),
        ("Interval 0 without Num", req(Interval=0), E.INVALID_PARAMETER),
        ("Format srt", req(Format="srt"), E.INVALID_PARAMETER),
        ("Color unknown", req(TileOut={"Color": "blurple"}, TileOutputFile=TILES), E.INVALID_PARAMETER),
        # every range limit and its neighbours
        ("Width 7", req(Width=7), E.OUT_OF_RANGE),
        ("Width 8", req(Width=8), OK),
        ("Width 4096", req(Width=4096, output={"Object": "w4096.jpg"}), OK),
        ("Width 4097", req(Width=4097), E.OUT_OF_RANGE),
        ("Height 7", req(Height=7), E.OUT_OF_RANGE),
        ("Height 8", req(Height=8, output={"Object": "h8.jpg"}), OK),
        ("Height 4097", req(Height=4097), E.OUT_OF_RANGE),
        ("Num 0", req(Num=0), E.OUT_OF_RANGE),
        ("Num 1", req(Num=1, output={"Object": "num1.jpg"}), OK),
        ("Time -1", req(Time=-1), E.OUT_OF_RANGE),
        ("Interval -1", req(Interval=-1, Num=2), E.OUT_OF_RANGE),
        ("Interval 0.0004", req(Interval=0.0004, Num=2), E.OUT_OF_RANGE),
        ("TimeArray point -1", req(TimeArray={"TimePointList": [0, -1]}), E.OUT_OF_RANGE),
        ("BlackLevel 29", req(BlackLevel=29, Num=2), E.OUT_OF_RANGE),
        ("BlackLevel 30", req(BlackLevel=30, Num=2, output={"Object": "bl30/{Count}.jpg"}), OK),
        ("BlackLevel 101", req(BlackLevel=101, Num=2), E.OUT_OF_RANGE),
        ("PixelBlackThreshold -1", req(PixelBlackThreshold=-1), E.OUT_OF_RANGE),
        ("PixelBlackThreshold 256", req(PixelBlackThreshold=256), E.OUT_OF_RANGE),
        ("Lines 0", req(TileOut={"Lines": 0}, TileOutputFile=TILES), E.OUT_OF_RANGE),
        ("Columns 10001", req(TileOut={"Columns": 10001}, TileOutputFile=TILES), E.OUT_OF_RANGE),
        ("CellSelStep 0", req(TileOut={"CellSelStep": 0}, TileOutputFile=TILES), E.OUT_OF_RANGE),
        ("UserData 1025 bytes", json.dumps({"UserData": "é" * 512 + "x", **json.loads(req())}), E.INVALID_PARAMETER),
        (
            "UserData 1024 bytes",
            json.dumps({"UserData": "é" * 512, **json.loads(req(output={"Object": "ud.jpg"}))}),
            OK,
        ),
        ("too many points", req(TimeArray={"TimePointList": [0] * 10_001}), E.OUT_OF_RANGE),
        # numbers that overflow, or are not numbers at all
        ("Interval 1e308", req(Interval=1e308, Num=2), E.OUT_OF_RANGE),
        ("Interval 1e308 as text", req(Interval="1e308", Num=2), E.OUT_OF_RANGE),
        ("Time of 400 digits", with_field(req(), "Time", HUGE), E.OUT_OF_RANGE),
        ("Width of 400 digits", with_field(req(), "Width", HUGE), E.OUT_OF_RANGE),
        ("Num of 400 digits", with_field(req(), "Num", HUGE), E.OUT_OF_RANGE),
        (
            "TimePointList entry of 400 digits",
            with_field(req(), "TimeArray", f'{{"TimePointList": [0, {HUGE}]}}'),
            E.OUT_OF_RANGE,
        ),
        (
            "CellSelStep of 400 digits",
            with_field(req(TileOutputFile=TILES), "TileOut", f'{{"CellSelStep": {HUGE}}}'),
            E.OUT_OF_RANGE,
        ),
        ("Time past an Avro long", req(Time=2**63), E.OUT_OF_RANGE),
        ("Time past its range", req(Time=10**10 + 1), E.OUT_OF_RANGE),
        ("Time 1e400 as text", req(Time="1e400"), E.INVALID_PARAMETER),
        ("Time NaN", with_field(req(), "Time", "NaN"), E.JSON_FORMAT_INVALID),
        ("Width Infinity", with_field(req(), "Width", "Infinity"), E.JSON_FORMAT_INVALID),
        ("Height -Infinity", with_field(req(), "Height", "-Infinity"), E.JSON_FORMAT_INVALID),
        ("Time nan as text", req(Time="nan"), E.INVALID_PARAMETER),
        # lone surrogates, which no encoder can write
        ("UserData lone surrogate", json.dumps({"UserData": "\udc80", **json.loads(req())}), E.INVALID_PARAMETER),
        ("Object lone surrogate", req(output={"Object": "a\ud800.jpg"}), E.INVALID_PARAMETER),
        ("PipelineId lone surrogate", json.dumps({"PipelineId": "\ud800", **json.loads(req())}), E.INVALID_PARAMETER),
        ("key lone surrogate", req(**{"\udfff": 1}), E.INVALID_PARAMETER),
        ("Object surrogate percent-encoded", req(output={"Object": "a%ED%A0%80.jpg"}), E.INVALID_PARAMETER),
        # names
        ("missing {Count}", req(output={"Object": "same.jpg"}, Num=3), E.INVALID_PARAMETER),
        (
            "missing {TileCount}",
            req(Interval=1, TileOut={}, TileOutputFile={**TILES, "Object": "t.jpg"}),
            E.INVALID_PARAMETER,
        ),
        ("missing TileOutputFile", req(TileOut={}), E.NULL_VALUE),
        ("OutputFile oops", raw(Input=INPUT, SnapshotConfig={"OutputFile": "oops", "Time": 0}), E.JSON_FORMAT_INVALID),
        ("TileOut a list", req(TileOut=[1], TileOutputFile=TILES), E.JSON_OBJECT_FORMAT_INVALID),
        ("TimeArray text of words", req(TimeArray={"TimePointList": ["soon"]}), E.INVALID_PARAMETER),
        (
            "nested objects as JSON text",
            req(
                output=None,
                Num=2,
                Interval=1,
                TileOut=json.dumps({"Lines": 1}),
                TileOutputFile=json.dumps({**TILES, "Object": "nested/sheet{TileCount}.jpg"}),
                SubOut=json.dumps({"IsSptFrag": "false"}),
            ).replace(
                '"OutputFile": {"Bucket": "out", "Location": "l", "Object": "{Count}.jpg"}',
                '"OutputFile": ' + json.dumps(json.dumps({**OUT, "Object": "nested/{Count}.jpg"})),
            ),
            OK,
        ),
        (
            "TimeArray as JSON text",
            req(TimeArray=json.dumps({"TimePointList": [0, "1000"]}), output={"Object": "ta/{Count}.jpg"}),
            OK,
        ),
        (
            "output is the input",
            req(output={"Bucket": "in", "Object": "{ObjectPrefix}{FileName}.{ExtName}"}),
            E.INVALID_PARAMETER,
        ),
        (
            "output is the input through the bucket map",
            req(output={"Bucket": "alias", "Object": "v/h264.mp4"}),
            E.INVALID_PARAMETER,
        ),
        (
            "sheets on the images",
            req(
                Num=3,
                Interval=1,
                output={"Object": "coll/{Count}.jpg"},
                TileOut={},
                TileOutputFile={**TILES, "Object": "coll/{TileCount}.jpg"},
            ),
            E.INVALID_PARAMETER,
        ),
        (
            "track on an image",
            req(Num=3, Interval=1, output={"Object": "trk/{Count}.vtt"}, Format="vtt"),
            E.INVALID_PARAMETER,
        ),
        ("output component of 300 bytes", req(output={"Object": "x" * 300 + "/{Count}.jpg"}), E.INVALID_PARAMETER),
        ("input component of 300 bytes", req({"Object": "v/" + "x" * 300 + ".mp4"}), E.RESOURCE_NOT_FOUND),
        ("unknown RoleArn", req({"RoleArn": "acs:ram::1:role/nobody"}), E.ENTITY_NOT_EXIST_ROLE),
    ]
    + [
        (f"{where} {label}", req(**{where: {"Object": name}}), code)
        for where in ("input_", "output")
        for label, name, code in [
            ("..", "../x.mp4", E.PERMISSION_DENIED),
            ("%2e%2e", "%2e%2e/%2e%2e/x.mp4", E.PERMISSION_DENIED),
            ("absolute", "/etc/passwd", E.PERMISSION_DENIED),
            ("NUL", "a%00b.mp4", E.INVALID_PARAMETER),
            ("CR/LF", "a%0D%0Ab.mp4", E.INVALID_PARAMETER),
            ("backslash", "a\\b.mp4", E.INVALID_PARAMETER),
            ("1025 bytes", "x" * 1025, E.INVALID_PARAMETER),
            ("empty component", "a//b.mp4", E.INVALID_PARAMETER),
        ]
    ]
    + [
        # hostile and broken media
        ("missing object", req({"Object": "v/nope.mp4"}), E.RESOURCE_NOT_FOUND),
        ("missing bucket", req({"Bucket": "nobucket"}), E.RESOURCE_NOT_FOUND),
        ("empty file", media("empty.mp4"), E.RESOURCE_CONTENT_BAD),
        ("truncated: moov lost, mdat cut", media("truncated.mp4"), E.RESOURCE_CONTENT_BAD),
        ("audio only", media("audio.m4a"), E.RESOURCE_CONTENT_BAD),
        ("cover art only", media("cover.m4a"), E.RESOURCE_CONTENT_BAD),
        ("text file", media("notes.mp4"), E.RESOURCE_CONTENT_BAD),
        ("JPEG image", media("picture.mp4"), E.RESOURCE_CONTENT_BAD),
        ("PNG image", media("picture.png"), E.RESOURCE_CONTENT_BAD),
        ("HLS playlist as .mp4", media("playlist.mp4"), E.RESOURCE_CONTENT_BAD),
        ("concat script as .mp4", media("concat.mp4"), E.RESOURCE_CONTENT_BAD),
        ("no frame at a normal sync point", req(Time=60_000, FrameType="normal"), E.RESOURCE_CONTENT_BAD),
        ("TimeArray past the end", req(TimeArray={"TimePointList": [0, 3001]}), E.TIME_ARRAY),
        ("no point inside", req(Time=5000, Num=3, Interval=1), E.RESOURCE_CONTENT_BAD),
        (
            "sheet over 65,500 px",
            req(Num=2, TileOut={"Columns": 300, "Lines": 1}, TileOutputFile=TILES),
            E.INVALID_PARAMETER,
        ),
        ("stuck input", media("stuck.mp4"), E.SNAPSHOT_TIMEOUT),
        # files from the wild, default request (sync intra at 0) and normal past the middle
        ("trimmed by stream copy", media("trimmed.mp4"), OK),
        ("trimmed by stream copy, normal", media("trimmed.mp4", Time=2500, FrameType="normal"), OK),
        ("webm without cues", media("live.webm", TimeArray={"TimePointList": [0, 2000, 5000]}), OK),
        ("transport stream cut in a GOP", media("cut.ts", Time=0, FrameType="normal"), OK),
        ("transport stream across the wrap", media("wrap.ts", Time=5900, FrameType="normal"), OK),
    ]
)

# good jobs between the bad ones: (manifest line, object written, frame it must show)
GOOD = [
    (req(output={"Object": f"good/{n}.jpg"}, Time=1010 * (n % 3), FrameType="normal"), f"good/{n}.jpg", 30 * (n % 3))
    for n in range(6)
]


def make_bad_media(folder, videos) -> None:
    folder.mkdir(parents=True)
    (folder / "empty.mp4").write_bytes(b"")
    data = Path(videos("h264.mp4")).read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: data.find(b"moov") // 2])  # moov lost, mdat cut
    import av

    with av.open(str(folder / "audio.m4a"), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 44100
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with av.open(str(folder / "cover.m4a"), "w", format="mp4") as out:
        audio, cover = out.add_stream("aac", rate=44100), out.add_stream("mjpeg")
        cover.width, cover.height, cover.pix_fmt = 64, 64, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(synth.pattern(5, 64, 64), format="rgb24").reformat(format="yuvj420p")
        out.mux(cover.encode(picture))
        out.mux(cover.encode(None))
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 44100
        out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    (folder / "notes.mp4").write_text("these are not the frames you are looking for\n" * 50)
    Image.fromarray(synth.pattern(7, 320, 180)).save(folder / "picture.mp4", format="JPEG")
    Image.fromarray(synth.pattern(7, 320, 180)).save(folder / "picture.png")
    (folder / "playlist.mp4").write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://{folder}/secret.fifo\n#EXT-X-ENDLIST\n"
    )
    (folder / "concat.mp4").write_text(f"ffconcat version 1.0\nfile '{folder}/secret.fifo'\n")
    os.mkfifo(folder / "secret.fifo")  # what the playlists name: opening it would show
    os.mkfifo(folder / "stuck.mp4")  # reading it blocks forever
    wild.pattern_video(str(folder / "whole.mp4"))
    wild.trimmed_mp4(str(folder / "whole.mp4"), str(folder / "trimmed.mp4"), 1.5)
    wild.pattern_video(
        str(folder / "live.webm"), codec="libvpx-vp9", options={"g": "30"}, container_options={"live": "1"}
    )
    wild.pattern_video(str(folder / "whole.ts"), container_format="mpegts")
    wild.cut_stream(str(folder / "whole.ts"), str(folder / "cut.ts"), 1.2, format="mpegts")
    wild.pattern_video(str(folder / "wrap.ts"), container_format="mpegts", start_seconds=95_440)


def reader_appeared(fifo: str, stop: threading.Event, seen: list) -> None:
    """Watch a FIFO: opening it for writing without blocking succeeds only while a reader has it open."""
    while not stop.is_set():
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            seen.append(time.monotonic())
        except OSError:
            pass
        time.sleep(0.01)


@pytest.fixture(scope="module")
def run(tmp_path_factory, videos):
    root = tmp_path_factory.mktemp("bad")
    buckets_dir = root / "buckets"
    (buckets_dir / "in" / "v").mkdir(parents=True)
    shutil.copy(videos("h264.mp4"), buckets_dir / "in" / "v" / "h264.mp4")
    make_bad_media(buckets_dir / "in" / "bad", videos)
    lines = []
    for n, (_, text, _) in enumerate(CASES):
        lines.append(text)
        if n % 15 == 0:
            lines.append(GOOD[len(lines) % len(GOOD)][0])
    lines += [text for text, _, _ in GOOD]
    (root / "m.jsonl").write_text("\n".join(lines) + "\n")
    stop, opened = threading.Event(), []
    watcher = threading.Thread(
        target=reader_appeared, args=(str(buckets_dir / "in" / "bad" / "secret.fifo"), stop, opened)
    )
    watcher.start()
    limits = Limits(sync_timeout_s=3)
    buckets = Buckets(str(buckets_dir), {"alias": str(buckets_dir / "in")}, roles={"acs:ram::1:role/known": {}})
    try:
        with BeamTestPipeline(runner="FnApiRunner") as p:
            graph.build(p, str(root / "m.jsonl"), str(root / "res"), buckets, limits=limits)
    finally:
        stop.set()
        watcher.join()
    by_text = {}
    for record in read_results(str(root / "res")):
        number = int(record["Source"].rsplit(":", 1)[1])
        by_text.setdefault(lines[number - 1], []).append(record)
    return by_text, buckets_dir, opened, len(lines)


def test_there_are_at_least_sixty_bad_cases():
    assert sum(code != OK for _, _, code in CASES) >= 60


@pytest.mark.parametrize("case, text, code", CASES, ids=[c[0] for c in CASES])
def test_each_case_gets_its_exact_code(run, case, text, code):
    by_text, _, _, _ = run
    (record,) = by_text[text]
    assert (record["State"], record["Code"]) == ((OK, "") if code == OK else ("Fail", code)), record["Message"]
    if code != OK:
        assert record["Message"] and "Traceback" not in record["Message"] and "/tmp" not in record["Message"]


def test_every_line_has_one_result_and_the_good_jobs_are_untouched(run):
    by_text, buckets_dir, _, line_count = run
    assert sum(len(records) for records in by_text.values()) == line_count
    for text, name, frame in GOOD:
        assert all(r["State"] == OK for r in by_text[text])
        assert synth.read_index(Image.open(buckets_dir / "out" / name)) == frame


def test_every_result_renders_as_a_response_the_sdk_reads(run):
    from alibabacloud_mts20140618 import models as mts

    from snapshot import results

    by_text, _, _, _ = run
    for records in by_text.values():
        for record in records:
            body = mts.SubmitSnapshotJobResponseBody().from_map(results.api_response(record))
            assert (body.snapshot_job.id, body.snapshot_job.state) == (record["Id"], record["State"])
            assert mts.SubmitSnapshotJobResponseBody().from_map(body.to_map()).to_map() == body.to_map()
            config = body.snapshot_job.snapshot_config
            if config is not None and config.time_array is not None:
                assert all(isinstance(t, int) for t in config.time_array.time_point_list or [])


def test_no_job_overwrites_its_input(run, videos):
    _, buckets_dir, _, _ = run
    assert (buckets_dir / "in" / "v" / "h264.mp4").read_bytes() == Path(videos("h264.mp4")).read_bytes()


def test_playlists_never_open_what_they_name(run):
    _, buckets_dir, opened, _ = run
    assert opened == []
    assert not (buckets_dir / "out" / "bad-playlist.mp4").exists()


def test_nothing_is_written_outside_the_buckets(run):
    _, buckets_dir, _, _ = run
    outside = [p for p in buckets_dir.parent.rglob("*") if "buckets" not in p.parts and p.is_file()]
    assert sorted(p.name for p in outside if not p.name.startswith("res-")) == ["m.jsonl"]
    assert not (buckets_dir / "x.mp4").exists() and not (buckets_dir.parent / "x.mp4").exists()


def blocked_on_a_fifo() -> list[int]:
    """Children of this process that wait in open() for a FIFO's writer: a stuck decoder."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/wchan") as wchan:
                waiting = wchan.read().strip()
        except OSError:
            continue
        if parent == os.getpid() and waiting == "wait_for_partner":
            found.append(int(pid))
    return found


def wait_for(find, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.01)
    return []


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGSEGV, E.RESOURCE_CONTENT_BAD), (signal.SIGKILL, E.INTERNAL_ERROR)])
def test_a_decoder_that_dies_fails_its_job_and_the_pipeline_goes_on(tmp_path, videos, sig, code):
    root = tmp_path / "buckets"
    (root / "in" / "v").mkdir(parents=True)
    shutil.copy(videos("h264.mp4"), root / "in" / "v" / "h264.mp4")
    fifo = root / "in" / "v" / "doomed.mp4"
    os.mkfifo(fifo)
    (tmp_path / "m.jsonl").write_text(
        req({"Object": "v/doomed.mp4"})
        + "\n"
        + req(output={"Object": "fine.jpg"}, Time=1010, FrameType="normal")
        + "\n"
    )

    def kill_the_decoder():
        for pid in wait_for(blocked_on_a_fifo):
            os.kill(pid, sig)

    killer = threading.Thread(target=kill_the_decoder)
    killer.start()
    with BeamTestPipeline(runner="FnApiRunner") as p:
        graph.build(
            p, str(tmp_path / "m.jsonl"), str(tmp_path / "res"), Buckets(str(root)), limits=Limits(sync_timeout_s=60)
        )
    killer.join()
    found = {r["Source"]: r for r in read_results(str(tmp_path / "res"))}
    assert (found["m.jsonl:1"]["State"], found["m.jsonl:1"]["Code"]) == ("Fail", code)
    assert signal.Signals(sig).name in found["m.jsonl:1"]["Message"]
    assert found["m.jsonl:2"]["State"] == OK
    assert synth.read_index(Image.open(root / "out" / "fine.jpg")) == 30


@pytest.mark.parametrize(
    "limits, text, code",
    [
        (Limits(max_input_pixels=320 * 180 - 1), req(), E.RESOURCE_CONTENT_BAD),
        (Limits(max_input_pixels=320 * 180), req(), OK),
        (Limits(max_points=3), req(Num=4, Interval=0.5), E.OUT_OF_RANGE),
        (Limits(max_points=3), req(Num=3, Interval=0.5), OK),
        (Limits(max_points=3), req(TimeArray={"TimePointList": [0, 1, 2, 3]}), E.OUT_OF_RANGE),
        (Limits(max_output_pixels=2 * 320 * 180), req(Num=3, Interval=0.5, FrameType="normal"), E.OUT_OF_RANGE),
        (Limits(max_output_pixels=3 * 320 * 180), req(Num=3, Interval=0.5, FrameType="normal"), OK),
        (
            Limits(max_sheet_pixels=3 * 320 * 180 - 1),
            req(Num=3, TileOut={"Columns": 3, "Lines": 1}, TileOutputFile=TILES),
            E.INVALID_PARAMETER,
        ),
        (Limits(max_frames_per_point=10), req(Time=900, FrameType="normal"), E.RESOURCE_CONTENT_BAD),
        (Limits(max_frames_per_point=30), req(Time=900, FrameType="normal"), OK),
    ],
)
def test_caps(bucket_root, limits, text, code):
    job = jobs.read_job(ManifestLine("m.jsonl", 1, text), "now")
    result = assemble.run(job, Buckets(str(bucket_root)), limits)
    assert (result.state, result.code) == ((OK, "") if code == OK else ("Fail", code)), result.message


def test_memory_cap_of_the_decoding_process():
    from snapshot import isolation

    worker = isolation.Worker("spawn", memory_mb=1024)
    try:
        with pytest.raises(MemoryError):
            worker.call(bytearray, (2 * 1024**3,), 30)
        assert worker.call(len, (bytearray(10),), 30) == 10  # the same process goes on
    finally:
        worker.close()


@pytest.mark.slow
def test_a_stuck_job_is_killed_not_abandoned(tmp_path):
    root = tmp_path / "b"
    (root / "in" / "v").mkdir(parents=True)
    os.mkfifo(root / "in" / "v" / "stuck.mp4")
    job = jobs.read_job(ManifestLine("m.jsonl", 1, req({"Object": "v/stuck.mp4"})), "now")
    seen = []
    watcher = threading.Thread(target=lambda: seen.extend(wait_for(blocked_on_a_fifo)))
    watcher.start()
    started = time.monotonic()
    ((_, outcome),), tasks = guarded.plan_input_guarded([job], Buckets(str(root)), Limits(sync_timeout_s=2))
    assert outcome.error.code == E.SNAPSHOT_TIMEOUT and tasks == []
    assert time.monotonic() - started < 10
    watcher.join()
    assert seen  # the decoder really was stuck ...
    for pid in seen:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # ... and is gone: killed and reaped, not abandoned
