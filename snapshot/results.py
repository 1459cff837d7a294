"""The result of a job (SPEC.md section 3): an Avro record, or the API's response JSON."""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from dataclasses import dataclass
from importlib import resources

SUCCESS, FAIL = "Success", "Fail"
SCHEMA_FILE = "snapshot_job.avsc"


def load_schema() -> dict:
    return json.loads(resources.files("snapshot").joinpath(SCHEMA_FILE).read_text())


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class SnapshotImage:
    seq: int
    object: str
    url: str
    time_ms: int
    frame_time_ms: int
    width: int
    height: int


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

    @property
    def count(self) -> int:
        return len(self.snapshots)

    def to_record(self) -> dict:
        """The Avro record (schema: snapshot_job.avsc), always writable: see `writable`."""
        return writable({
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
                {"Object": s.object, "Url": s.url, "Time": s.time_ms, "FrameTime": s.frame_time_ms,
                 "Width": s.width, "Height": s.height}
                for s in self.snapshots
            ],
            "Tiles": list(self.tiles),
            "Vtt": self.vtt,
            "BytesRead": self.bytes_read,
        })


def api_response(record: dict) -> dict:
    """The API's SubmitSnapshotJob response for a result record: every scalar a string."""
    job = dict(record)
    for key in ("Input", "SnapshotConfig"):
        job[key] = json.loads(job[key]) if job[key] else None
    job = {key: value for key, value in _stringify(job).items() if value is not None}
    return {"RequestId": request_id(record["Id"]), "SnapshotJob": job}


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
    return None if value is None else json.dumps(writable(value), ensure_ascii=False, sort_keys=True,
                                                  allow_nan=False)


_SURROGATE = re.compile("[\ud800-\udfff]")


def writable(value):
    """`value` with every string valid Unicode (a lone surrogate becomes U+FFFD) and every
    float finite (NaN and infinities become their names): what Avro and JSON can hold. The
    one sanitizer that every echoed field goes through."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {writable(key): writable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [writable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
