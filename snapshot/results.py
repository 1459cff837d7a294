"""The result of a job (docs/contract.md#results): an Avro record, or the API's response JSON."""

from __future__ import annotations

import enum
import hashlib
import json
import math
import re
import time
import uuid
from dataclasses import dataclass
from importlib import resources


class State(enum.StrEnum):
    """A job's `State` in its result record."""

    SUCCESS = "Success"
    FAIL = "Fail"


SCHEMA_FILE = "snapshot_job.avsc"


_SHARD = re.compile(r"-\d+-of-\d+\.avro")


def is_shard(file_name: str, prefix_name: str) -> bool:
    """`file_name` is a results file PREFIX-SSSSS-of-NNNNN.avro of this prefix, not of a
    longer one (PREFIX-v2-...)."""
    return file_name.startswith(prefix_name) and bool(_SHARD.fullmatch(file_name[len(prefix_name) :]))


def load_schema() -> dict:
    return json.loads(resources.files("snapshot").joinpath(SCHEMA_FILE).read_text())


def utc_now() -> str:
    return utc(time.time())


def utc(seconds: float) -> str:
    """A time (seconds since the epoch) as the results write it: YYYY-MM-DDThh:mm:ssZ."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass(frozen=True)
class SnapshotImage:
    seq: int
    object: str
    url: str
    time_ms: int
    frame_time_ms: int
    width: int
    height: int
    color_in: str = ""  # color.Description.text of the frame
    tone_mapped: bool = False
    shot_ms: tuple[int, int] | None = None  # FrameType scene: the shot's start and end


@dataclass(frozen=True)
class JobResult:
    id: str
    source: str
    state: str
    creation_time: str
    finish_time: str
    code: str = ""
    message: str = ""
    input: dict | None = None
    snapshot_config: dict | None = None
    pipeline_id: str = ""
    user_data: str = ""
    snapshots: tuple[SnapshotImage, ...] = ()
    tiles: tuple[str, ...] = ()
    vtt: str | None = None
    mns_message_result: dict | None = None
    bytes_read: int = 0
    warnings: tuple[str, ...] = ()  # ext: what the job noticed but the API ignores

    @property
    def count(self) -> int:
        return len(self.snapshots)

    @property
    def color_in(self) -> str:
        """How the snapshots' frames were coded, each description once, in order."""
        return ",".join(dict.fromkeys(s.color_in for s in self.snapshots if s.color_in))

    def to_record(self) -> dict:
        """The Avro record (schema: snapshot_job.avsc), always writable: see `writable`."""
        return writable(
            {
                "Id": self.id,
                "Source": self.source,
                "State": self.state,
                "Code": self.code,
                "Message": self.message,
                "Count": self.count,
                "TileCount": len(self.tiles),
                "CreationTime": self.creation_time,
                "FinishTime": self.finish_time,
                "Input": _json_or_none(self.input),
                "SnapshotConfig": _json_or_none(self.snapshot_config),
                "PipelineId": self.pipeline_id,
                "UserData": self.user_data,
                "MNSMessageResult": self.mns_message_result,
                "Snapshots": [
                    {
                        "Object": s.object,
                        "Url": s.url,
                        "Time": s.time_ms,
                        "FrameTime": s.frame_time_ms,
                        "Width": s.width,
                        "Height": s.height,
                        "ShotStart": s.shot_ms[0] if s.shot_ms else None,
                        "ShotEnd": s.shot_ms[1] if s.shot_ms else None,
                    }
                    for s in self.snapshots
                ],
                "Tiles": list(self.tiles),
                "Vtt": self.vtt,
                "BytesRead": self.bytes_read,
                "ColorIn": self.color_in,
                "ToneMapped": any(s.tone_mapped for s in self.snapshots),
                "Warnings": list(self.warnings),
            }
        )


def api_response(record: dict) -> dict:
    """The API's SubmitSnapshotJob response for a result record, in the shapes of the official
    SDK's model: objects as objects, `TimePointList` as integers, every other scalar a string.
    An echoed value that cannot take its shape is left out, its text kept in the object's
    `Unparsed` (**ext**)."""
    job = {key: value for key, value in record.items() if key not in ("Input", "SnapshotConfig")}
    job = {key: value for key, value in _stringify(job).items() if value is not None}
    for key in ("Input", "SnapshotConfig"):
        value = _render(_loads(record[key]), _SHAPES[key]) if record[key] else None
        if value is not None:
            job[key] = value
    return {"RequestId": request_id(record["Id"]), "SnapshotJob": job}


_REF = {"Bucket": str, "Location": str, "Object": str, "RoleArn": str}
_SHAPES: dict[str, dict] = {
    "Input": _REF,
    "SnapshotConfig": {
        "OutputFile": _REF,
        "TileOutputFile": _REF,
        "TileOut": {},
        "SubOut": {},
        "TimeArray": {"TimePointList": [int]},
    },
}


def _loads(text):
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return text


def _render(value, shape: dict) -> dict | None:
    """`value` (an object, or text holding one) in `shape`; None when it is not an object."""
    value = _loads(value) if isinstance(value, str) else value
    if not isinstance(value, dict):
        return None
    rendered: dict = {}
    unparsed: dict = {}
    for key, item in value.items():
        inner = shape.get(key)
        item_rendered: object
        if isinstance(inner, dict):
            item_rendered = _render(item, inner)
        elif inner == [int]:
            item_rendered = _integers(item)
        else:
            item_rendered = item if item is None else _scalar_text(item)
        if item_rendered is None and item is not None:
            unparsed[key] = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
        elif item_rendered is not None:
            rendered[key] = item_rendered
    if unparsed:
        rendered["Unparsed"] = unparsed
    return rendered


def _integers(value) -> list[int] | None:
    value = _loads(value) if isinstance(value, str) else value
    if not isinstance(value, list):
        return None
    numbers = []
    for item in value:
        try:
            number = int(item) if isinstance(item, str) else item
            if isinstance(number, bool) or not isinstance(number, (int, float)) or number != int(number):
                return None
        except (ValueError, OverflowError):
            return None
        numbers.append(int(number))
    return numbers


def _scalar_text(value) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return _stringify(value)


def request_id(job_id: str) -> str:
    """The API's RequestId of a job: a UUID derived from the job id."""
    return str(uuid.UUID(hashlib.md5(f"request:{job_id}".encode()).hexdigest())).upper()


def _stringify(value):
    if isinstance(value, dict):
        return {key: _stringify(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_stringify(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _json_or_none(value: dict | None) -> str | None:
    return None if value is None else json.dumps(writable(value), ensure_ascii=False, sort_keys=True, allow_nan=False)


LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # what no encoder can write


def writable(value):
    """`value` with every string valid Unicode (a lone surrogate becomes U+FFFD) and every
    float finite (NaN and infinities become their names): what Avro and JSON can hold. The
    one sanitizer that every echoed field goes through."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {writable(key): writable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [writable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
