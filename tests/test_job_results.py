"""A job's result beyond its images (docs/contract.md#results): its warnings, and its own times."""

from __future__ import annotations

import json
import re
import time

from alibabacloud_mts20140618 import models as mts
from PIL import Image

from snapshot import assemble, jobs, results, synth, tasks
from snapshot.jobs import ManifestLine
from snapshot.limits import Limits
from snapshot.storage import Buckets
from tests.helpers import request_line

PARSED = "2000-01-01T00:00:00Z"  # when the jobs below were parsed, long before their work


def run(bucket_root, text: str) -> dict:
    job = jobs.read_job(ManifestLine("m.jsonl", 1, text), PARSED)
    return assemble.run(job, Buckets(str(bucket_root)), Limits(isolate=False)).to_record()


def shown(bucket_root, record: dict) -> list[tuple[int, tuple[int, int]]]:
    """The frame index and size of each image the record lists."""
    found = []
    for snapshot in record["Snapshots"]:
        with Image.open(bucket_root / "out" / snapshot["Object"]) as image:
            found.append((synth.read_index(image), image.size))
    return found


def test_a_misspelled_key_is_a_warning_and_the_job_succeeds_as_the_api_would(bucket_root):
    record = run(bucket_root, request_line(output="a.jpg", Time=1010, FrameType="normal", Widht=160))
    assert (record["State"], record["Warnings"]) == (
        "Success",
        ['unknown key "Widht" in SnapshotConfig (did you mean "Width"?)'],
    )
    assert shown(bucket_root, record) == [(30, (320, 180))]  # full size: the key was ignored
    response = results.api_response(record)
    assert response["SnapshotJob"]["Warnings"] == record["Warnings"]
    assert mts.SubmitSnapshotJobResponseBody().from_map(response).snapshot_job.state == "Success"
    plain = run(bucket_root, request_line(output="b.jpg", Time=1010, FrameType="normal", Width=160))
    assert plain["Warnings"] == [] and shown(bucket_root, plain) == [(30, (160, 90))]


def test_points_past_the_end_and_a_count_below_the_points_asked_are_warnings(bucket_root):
    # 3 s at 30 fps: 1000, 2000 and 3000 ms (the end) are inside, 4000 and 5000 are not
    late = run(bucket_root, request_line(output="late/{Count}.jpg", Time=1000, Num=5, Interval=1, FrameType="normal"))
    assert (late["State"], late["Count"]) == ("Success", 3)
    assert [index for index, _ in shown(bucket_root, late)] == [30, 60, 89]
    assert late["Warnings"] == [
        "2 of the 5 points asked are past the end of the video (3000 ms): they have no image",
        "Count is 3, fewer than the 5 points asked (2 past the end)",
    ]
    # keyframes every second: 900 and 1100 ms share the keyframe of frame 30
    shared = run(bucket_root, request_line(output="kf/{Count}.jpg", TimeArray={"TimePointList": [900, 1100, 2000]}))
    assert [index for index, _ in shown(bucket_root, shared)] == [30, 60]
    assert shared["Warnings"] == ["Count is 2, fewer than the 3 points asked (1 sharing a keyframe (FrameType intra))"]
    after = run(bucket_root, request_line(output="last.jpg", Time=60_000))
    assert [index for index, _ in shown(bucket_root, after)] == [60]  # the last keyframe
    assert after["Warnings"] == [
        "SnapshotConfig.Time 60000 ms is past the end of the video (3000 ms): the image shows the last keyframe"
    ]


def test_an_interval_in_milliseconds_gets_a_hint(bucket_root):
    record = run(bucket_root, request_line(output="ms/{Count}.jpg", Time=5, Interval=1000, Num=3, FrameType="normal"))
    assert (record["State"], record["Count"]) == ("Success", 1)
    assert [index for index, _ in shown(bucket_root, record)] == [0]
    assert record["Warnings"][-1] == (
        "SnapshotConfig.Interval is in seconds (Time is in ms): 1000 s is longer than the video (3000 ms), "
        "so one point is taken; for one every 1 s, write Interval 1"
    )


def test_a_failed_request_keeps_its_warnings_and_json_errors_say_where(bucket_root):
    request = json.loads(request_line())
    request["SnapshotConfig"]["Tme"] = request["SnapshotConfig"].pop("Time")
    record = run(bucket_root, json.dumps(request))
    assert (record["Code"], record["Message"]) == ("InvalidParameter.NullValue", "SnapshotConfig.Time is required")
    assert record["Warnings"] == ['unknown key "Tme" in SnapshotConfig (did you mean "Time"?)']
    broken = run(bucket_root, '{"Input": {"Bucket": "in",}}')
    assert broken["Message"] == (
        "the manifest line is not valid JSON: column 27: Expecting property name enclosed in double quotes"
    )


def test_each_job_has_its_own_creation_and_finish_time(bucket_root):
    """When its first capture began and its last step ended, not when the run read its line."""
    buckets = Buckets(str(bucket_root))
    texts = [
        request_line(output="first/{Count}.jpg", Time=0, Num=3, Interval=1, FrameType="normal"),
        request_line(obj="v/vp9.webm", output="second.jpg", Time=1010, FrameType="normal"),
    ]
    found = []
    for number, text in enumerate(texts, 1):
        job = jobs.read_job(ManifestLine("m.jsonl", number, text), PARSED)
        planned, (task,) = tasks.plan_input([job], buckets)
        captured = list(tasks.run_task(task, buckets))
        found.append(assemble.finish(job, [outcome for _, outcome in planned + captured], buckets))
        time.sleep(1.1)  # the next job works in a later second
    first, second = found
    assert PARSED < first.creation_time <= first.finish_time < second.creation_time <= second.finish_time
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first.creation_time)
    unread = run(bucket_root, "not json")  # a line that was never planned: both times are its parsing's
    assert (unread["CreationTime"], unread["FinishTime"]) == (PARSED, PARSED)


def test_an_output_name_that_is_the_input_says_so(bucket_root):
    line = json.loads(request_line(output="v/h264.mp4"))
    line["SnapshotConfig"]["OutputFile"]["Bucket"] = "in"
    own = run(bucket_root, json.dumps(line))
    assert own["Message"] == "SnapshotConfig.OutputFile.Object names 'v/h264.mp4', which is also the job's own input"
