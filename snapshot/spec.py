"""Parsing and validating one SubmitSnapshotJob request (SPEC.md sections 1 and 2).

`parse_request` turns a manifest line into a frozen `Request` or raises `SnapshotError`
with the documented code and a message naming the field. `decode_echo` recovers what can
be echoed in a failed job's result.
"""
from __future__ import annotations

import json
import math
import urllib.parse
from dataclasses import dataclass
from typing import Any

from snapshot import errors, naming, storage
from snapshot.errors import SnapshotError

INTRA, NORMAL = "intra", "normal"
MIN_SIZE, MAX_SIZE = 8, 4096
MAX_USER_DATA_BYTES = 1024
DEFAULT_INTERVAL_S = 10


@dataclass(frozen=True)
class ObjectRef:
    """An object in a bucket; `name` is percent-decoded (and may hold placeholders)."""
    bucket: str
    location: str
    name: str


@dataclass(frozen=True)
class SnapshotConfig:
    output: ObjectRef
    time_ms: int = 0
    interval_ms: int | None = None
    num: int | None = None
    time_array: tuple[int, ...] | None = None
    width: int | None = None
    height: int | None = None
    frame_type: str = INTRA

    @property
    def is_async(self) -> bool:
        """Async as soon as Interval, Num or TimeArray is present (SPEC.md section 2)."""
        return self.interval_ms is not None or self.num is not None or self.time_array is not None

    @property
    def can_make_several(self) -> bool:
        if self.time_array is not None:
            return len(self.time_array) > 1
        if self.num is not None:
            return self.num > 1
        return self.interval_ms is not None


@dataclass(frozen=True)
class Request:
    input: ObjectRef
    config: SnapshotConfig
    pipeline_id: str = ""
    user_data: str = ""


@dataclass(frozen=True)
class Echo:
    """The decoded parts of a request, echoed in its result whether it succeeds or not."""
    input: dict | None = None
    config: dict | None = None
    pipeline_id: str = ""
    user_data: str = ""


def parse_request(text: str) -> Request:
    """Parse and validate one manifest line; raise SnapshotError on any invalid part."""
    line = _json_object(text, "the manifest line")
    action = line.get("Action")
    if action is not None and action != "SubmitSnapshotJob":
        raise SnapshotError(errors.INVALID_PARAMETER, f"Action must be SubmitSnapshotJob, got {_show(action)}")
    pipeline_id = _optional_text(line, "PipelineId")
    user_data = _optional_text(line, "UserData")
    if len(user_data.encode("utf-8")) > MAX_USER_DATA_BYTES:
        raise SnapshotError(errors.INVALID_PARAMETER, f"UserData is longer than {MAX_USER_DATA_BYTES} bytes")
    input_ref = _object_ref(_required_object(line, "Input"), "Input")
    storage.check_object_name(input_ref.name, "Input.Object")
    config = _snapshot_config(_required_object(line, "SnapshotConfig"))
    naming.check_output_template(config.output.name, input_ref.name, "SnapshotConfig.OutputFile.Object",
                                 needs_count=config.can_make_several)
    return Request(input_ref, config, pipeline_id, user_data)


def decode_echo(text: str) -> Echo:
    """Whatever parts of a (possibly invalid) line decode, for the result's echo fields."""
    try:
        line = _json_object(text, "the manifest line")
    except SnapshotError:
        return Echo()
    parts = {}
    for key in ("Input", "SnapshotConfig"):
        try:
            parts[key] = _required_object(line, key)
        except SnapshotError:
            parts[key] = None
    return Echo(parts["Input"], parts["SnapshotConfig"],
                _text_or_empty(line.get("PipelineId")), _text_or_empty(line.get("UserData")))


def _snapshot_config(cfg: dict) -> SnapshotConfig:
    output = _object_ref(_required_object(cfg, "OutputFile", "SnapshotConfig.OutputFile"),
                         "SnapshotConfig.OutputFile")
    time_array = _time_array(cfg)
    time_ms = _integer(cfg, "Time", minimum=0)
    if time_ms is None and time_array is None:
        raise SnapshotError(errors.NULL_VALUE, "SnapshotConfig.Time is required")
    num = _integer(cfg, "Num", minimum=1)
    interval = _interval_ms(cfg)
    if num is not None and interval is None:
        interval = DEFAULT_INTERVAL_S * 1000
    if interval == 0 and num is None and time_array is None:
        raise SnapshotError(errors.INVALID_PARAMETER,
                            "SnapshotConfig.Interval 0 (spread evenly) needs SnapshotConfig.Num")
    frame_type = _optional_text(cfg, "FrameType", "SnapshotConfig.FrameType") or INTRA
    if frame_type.lower() not in (INTRA, NORMAL):
        raise SnapshotError(errors.INVALID_PARAMETER,
                            f"SnapshotConfig.FrameType must be intra or normal, got {_show(frame_type)}")
    if time_array is not None:
        time_ms, interval, num = 0, None, None
    return SnapshotConfig(
        output=output,
        time_ms=time_ms or 0,
        interval_ms=interval,
        num=num,
        time_array=time_array,
        width=_integer(cfg, "Width", minimum=MIN_SIZE, maximum=MAX_SIZE),
        height=_integer(cfg, "Height", minimum=MIN_SIZE, maximum=MAX_SIZE),
        frame_type=frame_type.lower(),
    )


def _time_array(cfg: dict) -> tuple[int, ...] | None:
    if cfg.get("TimeArray") is None:
        return None
    holder = _required_object(cfg, "TimeArray", "SnapshotConfig.TimeArray")
    points = holder.get("TimePointList")
    if isinstance(points, str):
        points = _json(points, "SnapshotConfig.TimeArray.TimePointList")
    if points is None:
        raise SnapshotError(errors.NULL_VALUE, "SnapshotConfig.TimeArray.TimePointList is required")
    if not isinstance(points, list) or not points:
        raise SnapshotError(errors.INVALID_PARAMETER,
                            "SnapshotConfig.TimeArray.TimePointList must be a non-empty list of milliseconds")
    return tuple(_as_integer(p, f"SnapshotConfig.TimeArray.TimePointList[{i}]", minimum=0)
                 for i, p in enumerate(points))


def _object_ref(obj: dict, field: str) -> ObjectRef:
    bucket = _required_text(obj, "Bucket", f"{field}.Bucket")
    storage.check_bucket_name(bucket, f"{field}.Bucket")
    location = _required_text(obj, "Location", f"{field}.Location")
    encoded = _required_text(obj, "Object", f"{field}.Object")
    try:
        name = urllib.parse.unquote(encoded, errors="strict")
    except UnicodeDecodeError:
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field}.Object is not UTF-8 once percent-decoded") from None
    return ObjectRef(bucket, location, name)


# -- JSON and scalar helpers -------------------------------------------------------------

def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise SnapshotError(errors.JSON_FORMAT_INVALID, f"{what} is not valid JSON") from None


def _json_object(text: str, what: str) -> dict:
    value = _json(text, what)
    if not isinstance(value, dict):
        raise SnapshotError(errors.JSON_OBJECT_FORMAT_INVALID, f"{what} is not a JSON object")
    return value


def _required_object(parent: dict, key: str, field: str | None = None) -> dict:
    """A JSON object given as an object or as a string holding JSON."""
    field = field or key
    value = parent.get(key)
    if value is None or value == "":
        raise SnapshotError(errors.NULL_VALUE, f"{field} is required")
    if isinstance(value, str):
        return _json_object(value, field)
    if not isinstance(value, dict):
        raise SnapshotError(errors.JSON_OBJECT_FORMAT_INVALID, f"{field} is not a JSON object")
    return value


def _required_text(parent: dict, key: str, field: str) -> str:
    value = parent.get(key)
    if value is None or value == "":
        raise SnapshotError(errors.NULL_VALUE, f"{field} is required")
    if not isinstance(value, str):
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field} must be a string")
    return value


def _optional_text(parent: dict, key: str, field: str | None = None) -> str:
    value = parent.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field or key} must be a string")
    return value


def _text_or_empty(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _interval_ms(cfg: dict) -> int | None:
    """Interval, given in seconds (fractions allowed), as whole milliseconds."""
    value = cfg.get("Interval")
    if value is None or value == "":
        return None
    seconds = _as_number(value, "SnapshotConfig.Interval")
    milliseconds = round(seconds * 1000)
    if seconds < 0 or (seconds > 0 and milliseconds == 0):
        raise SnapshotError(errors.OUT_OF_RANGE, f"SnapshotConfig.Interval must be 0 or at least 0.001 s, "
                                                 f"got {_show(value)}")
    return milliseconds


def _integer(parent: dict, key: str, minimum: int, maximum: int | None = None) -> int | None:
    value = parent.get(key)
    if value is None or value == "":
        return None
    return _as_integer(value, f"SnapshotConfig.{key}", minimum, maximum)


def _as_number(value: Any, field: str) -> float:
    """A finite number given as a JSON number or a string."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field} must be a number, got {_show(value)}") from None
    if not math.isfinite(number):
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field} must be a finite number, got {_show(value)}")
    return number


def _as_integer(value: Any, field: str, minimum: int, maximum: int | None = None) -> int:
    number = _as_number(value, field)
    if number != int(number):
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field} must be an integer, got {_show(value)}")
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise SnapshotError(errors.OUT_OF_RANGE, f"{field} must be {bounds}, got {_show(value)}")
    return int(number)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."
