"""Parsing and validating one SubmitSnapshotJob request (docs/contract.md#requests).

`parse_request` turns a manifest line into a frozen `Request` or raises `SnapshotError`
with the documented code and a message naming the field. `decode_echo` recovers what can
be echoed in a failed job's result.
"""

from __future__ import annotations

import difflib
import enum
import json
import math
import re
import urllib.parse
from dataclasses import dataclass, replace
from typing import Any

from PIL import ImageColor

from snapshot import errors, naming, objects
from snapshot.errors import SnapshotError
from snapshot.results import LONE_SURROGATE

MIN_SIZE, MAX_SIZE = 8, 4096
MAX_USER_DATA_BYTES = 1024
MAX_TILE_CELLS = 10_000
MAX_TIME_MS = 10**10  # Time and TimeArray points: about 115 days
MAX_COUNT = 2**31 - 1  # Num and CellSelStep
DEFAULT_QUALITY = 85
DEFAULT_INTERVAL_S = 10
DEFAULT_BEST_WINDOW_MS, MAX_BEST_WINDOW_MS = 2000, 60_000


class FrameType(enum.StrEnum):
    """`SnapshotConfig.FrameType`: which frame a time point shows."""

    INTRA = "intra"  # the nearest keyframe
    NORMAL = "normal"  # the frame a player shows at that time
    BEST = "best"  # ext: the best frame within BestWindow around the point (snapshot.best)
    SCENE = "scene"  # ext: one snapshot per shot, its best frame (snapshot.shots)


@dataclass(frozen=True)
class ObjectRef:
    """An object in a bucket; `name` is percent-decoded (and may hold placeholders)."""

    bucket: str
    location: str
    name: str
    role_arn: str = ""


@dataclass(frozen=True)
class TileSpec:
    """TileOut: how snapshots are laid out on sprite sheets (docs/contract.md#sprite-sheets)."""

    lines: int = 10
    columns: int = 10
    cell_width: int | None = None  # default: the snapshot size
    cell_height: int | None = None
    padding: int = 0
    margin: int = 0
    color: str = "black"  # a colour name, #rrggbb, or random
    keep_cells: bool = True  # IsKeepCellPic: also write the single images
    cell_step: int = 1  # CellSelStep: every n-th snapshot goes on the sheet


@dataclass(frozen=True)
class BlackFilter:
    """Skip black frames for the first image (docs/contract.md#black-frames)."""

    level: int = 98  # percent of black pixels that makes a frame black
    threshold: int = 32  # a pixel with luma below this is black


@dataclass(frozen=True)
class SnapshotConfig:
    output: ObjectRef
    time_ms: int = 0
    interval_ms: int | None = None
    num: int | None = None
    time_array: tuple[int, ...] | None = None
    width: int | None = None
    height: int | None = None
    frame_type: FrameType = FrameType.INTRA
    tile: TileSpec | None = None
    tile_output: ObjectRef | None = None
    vtt: bool = False  # Format: vtt
    vtt_sprite_fragments: bool = False  # SubOut.IsSptFrag
    black: BlackFilter | None = None
    quality: int = DEFAULT_QUALITY  # ext: JPEG quality of images and sheets
    best_window_ms: int = DEFAULT_BEST_WINDOW_MS  # ext: BestWindow, the span FrameType best looks in

    @property
    def is_async(self) -> bool:
        """Async as soon as Interval, Num or TimeArray is present (docs/contract.md#which-times),
        and with FrameType scene."""
        several = self.interval_ms is not None or self.num is not None or self.time_array is not None
        return several or self.frame_type == FrameType.SCENE

    @property
    def max_images(self) -> int | None:
        """The most images the job can make; None when only the video's length bounds it."""
        if self.time_array is not None:
            return len(self.time_array)
        if self.num is not None:
            return self.num
        return None if self.interval_ms is not None else 1

    @property
    def writes_images(self) -> bool:
        return self.tile is None or self.tile.keep_cells

    @property
    def sheets(self) -> tuple[TileSpec, ObjectRef]:
        """`TileOut` and `TileOutputFile` of a job with sprite sheets: parsing keeps them together."""
        if self.tile is None or self.tile_output is None:
            raise ValueError("the job makes no sprite sheets")
        return self.tile, self.tile_output


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
    line = _json_object(text, "the manifest line", top=True)
    action = line.get("Action")
    if action is not None and action != "SubmitSnapshotJob":
        raise SnapshotError(errors.INVALID_PARAMETER, f"Action must be SubmitSnapshotJob, got {_show(action)}")
    pipeline_id = _optional_text(line, "PipelineId")
    user_data = _optional_text(line, "UserData")
    if len(user_data.encode("utf-8")) > MAX_USER_DATA_BYTES:
        raise SnapshotError(errors.INVALID_PARAMETER, f"UserData is longer than {MAX_USER_DATA_BYTES} bytes")
    input_ref = _object_ref(_required_object(line, "Input"), "Input")
    objects.check_object_name(input_ref.name, "Input.Object")
    config = _snapshot_config(_required_object(line, "SnapshotConfig"))
    several = config.max_images is None or config.max_images > 1
    naming.check_output_template(
        config.output.name,
        input_ref.name,
        "SnapshotConfig.OutputFile.Object",
        naming.COUNT if several and config.writes_images else None,
    )
    if config.tile is not None and config.tile_output is not None:
        naming.check_output_template(
            config.tile_output.name,
            input_ref.name,
            "SnapshotConfig.TileOutputFile.Object",
            naming.TILE_COUNT if _several_sheets(config.max_images, config.tile) else None,
        )
    return Request(input_ref, config, pipeline_id, user_data)


def _several_sheets(max_images: int | None, tile: TileSpec) -> bool:
    if max_images is None:
        return True
    cells = -(-max_images // tile.cell_step)
    return cells > tile.lines * tile.columns


def decode_echo(text: str) -> Echo:
    """Whatever parts of a (possibly invalid) line decode, for the result's echo fields; the
    result record makes them writable."""
    line = _loose_json(text)
    if not isinstance(line, dict):
        return Echo()
    parts = {}
    for key in ("Input", "SnapshotConfig"):
        value = line.get(key)
        value = _loose_json(value) if isinstance(value, str) else value
        parts[key] = value if isinstance(value, dict) else None
    return Echo(
        parts["Input"],
        parts["SnapshotConfig"],
        _text_or_empty(line.get("PipelineId")),
        _text_or_empty(line.get("UserData")),
    )


_REF_KEYS = frozenset({"Bucket", "Location", "Object", "RoleArn"})
# The keys each object of a request may have, by its path; "" is the line itself, which may
# also carry the API's common parameters (an SDK's or a signed URL's).
KNOWN_KEYS: dict[str, frozenset[str]] = {
    "": frozenset(
        {"Input", "SnapshotConfig", "PipelineId", "UserData", "Action", "OwnerId", "OwnerAccount"}
        | {"ResourceOwnerId", "ResourceOwnerAccount", "RegionId", "Version", "Format", "AccessKeyId"}
        | {"Signature", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp", "SecurityToken"}
    ),
    "Input": _REF_KEYS,
    "SnapshotConfig": frozenset(
        {"OutputFile", "Time", "Interval", "Num", "TimeArray", "Width", "Height", "FrameType", "TileOut"}
        | {"TileOutputFile", "Format", "SubOut", "BlackLevel", "PixelBlackThreshold", "Quality"}
        | {"BestWindow"}
    ),
    "SnapshotConfig.OutputFile": _REF_KEYS,
    "SnapshotConfig.TileOutputFile": _REF_KEYS,
    "SnapshotConfig.TimeArray": frozenset({"TimePointList"}),
    "SnapshotConfig.SubOut": frozenset({"IsSptFrag"}),
    "SnapshotConfig.TileOut": frozenset(
        {"Lines", "Columns", "CellWidth", "CellHeight", "Padding", "Margin", "Color", "IsKeepCellPic", "CellSelStep"}
    ),
}
MAX_KEY_WARNINGS = 5


def unknown_keys(text: str) -> tuple[str, ...]:
    """A warning for each key of the line that the contract does not know (compared
    case-sensitively, as parsing reads them), naming the nearest known key; a request
    ignores them, as the API does."""
    found: list[str] = []
    _unknown_keys(_loose_json(text), "", found)
    if len(found) > MAX_KEY_WARNINGS:
        found[MAX_KEY_WARNINGS:] = [f"and {len(found) - MAX_KEY_WARNINGS} more unknown keys"]
    return tuple(found)


def _unknown_keys(value: Any, path: str, found: list[str]) -> None:
    value = _loose_json(value) if path and isinstance(value, str) else value
    if not isinstance(value, dict):
        return
    known = KNOWN_KEYS[path]
    for key in value:
        inner = f"{path}.{key}" if path else key
        if inner in KNOWN_KEYS:
            _unknown_keys(value[key], inner, found)
        elif key not in known:
            where = f"in {path}" if path else "at the top level"
            near = _nearest(key, known)
            found.append(f"unknown key {_show(key)} {where}" + (f" (did you mean {_show(near)}?)" if near else ""))


def _nearest(key: str, known: frozenset[str]) -> str | None:
    same_case = [k for k in sorted(known) if k.lower() == key.lower()]
    close = same_case or difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return close[0] if close else None


def _loose_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return None


def _snapshot_config(cfg: dict) -> SnapshotConfig:
    output = _object_ref(_required_object(cfg, "OutputFile", "SnapshotConfig.OutputFile"), "SnapshotConfig.OutputFile")
    time_array = _time_array(cfg)
    time_ms = _integer(cfg, "Time", minimum=0, maximum=MAX_TIME_MS)
    num = _integer(cfg, "Num", minimum=1, maximum=MAX_COUNT)
    interval = _interval_ms(cfg)
    if num is not None and interval is None:
        interval = DEFAULT_INTERVAL_S * 1000
    if interval == 0 and num is None and time_array is None:
        raise SnapshotError(
            errors.INVALID_PARAMETER, "SnapshotConfig.Interval 0 (spread evenly) needs SnapshotConfig.Num"
        )
    frame_type_text = _optional_text(cfg, "FrameType", "SnapshotConfig.FrameType") or FrameType.INTRA
    try:
        frame_type = FrameType(frame_type_text.lower())
    except ValueError:
        raise SnapshotError(
            errors.INVALID_PARAMETER,
            f"SnapshotConfig.FrameType must be intra, normal, best or scene, got {_show(frame_type_text)}",
        ) from None
    if frame_type == FrameType.SCENE and time_array is not None:
        raise SnapshotError(errors.INVALID_PARAMETER, "SnapshotConfig.TimeArray does not go with FrameType scene")
    if time_ms is None and time_array is None:
        if frame_type != FrameType.SCENE:  # scene: the shots from the start
            raise SnapshotError(errors.NULL_VALUE, "SnapshotConfig.Time is required")
        time_ms = 0
    if time_array is not None:
        time_ms, interval, num = 0, None, None
    tile = _tile_spec(cfg)
    tile_output = None
    if tile is not None:
        tile_output = _object_ref(
            _required_object(cfg, "TileOutputFile", "SnapshotConfig.TileOutputFile"), "SnapshotConfig.TileOutputFile"
        )
    vtt_format = _optional_text(cfg, "Format", "SnapshotConfig.Format")
    if vtt_format and vtt_format.lower() != "vtt":
        raise SnapshotError(errors.INVALID_PARAMETER, f"SnapshotConfig.Format must be vtt, got {_show(vtt_format)}")
    sub_out = _optional_object(cfg, "SubOut", "SnapshotConfig.SubOut")
    fragments = _boolean(sub_out, "IsSptFrag", "SnapshotConfig.SubOut.IsSptFrag", default=False)
    if vtt_format and fragments and tile is None:
        raise SnapshotError(errors.NULL_VALUE, "SnapshotConfig.TileOut is required when SubOut.IsSptFrag is true")
    if vtt_format and not fragments and tile is not None and not tile.keep_cells:
        raise SnapshotError(
            errors.INVALID_PARAMETER,
            "SnapshotConfig.Format vtt points to single images, which "
            "TileOut.IsKeepCellPic false does not write; set "
            "SubOut.IsSptFrag true",
        )
    config = SnapshotConfig(
        output=output,
        time_ms=time_ms or 0,
        interval_ms=interval,
        num=num,
        time_array=time_array,
        width=_integer(cfg, "Width", minimum=MIN_SIZE, maximum=MAX_SIZE),
        height=_integer(cfg, "Height", minimum=MIN_SIZE, maximum=MAX_SIZE),
        frame_type=frame_type,
        tile=tile,
        tile_output=tile_output,
        vtt=bool(vtt_format),
        vtt_sprite_fragments=fragments,
        quality=_integer(cfg, "Quality", 1, 100) or DEFAULT_QUALITY,
        best_window_ms=_best_window(cfg),
    )
    return replace(config, black=_black_filter(cfg, config))


def _best_window(cfg: dict) -> int:
    window = _integer(cfg, "BestWindow", 0, MAX_BEST_WINDOW_MS)
    return DEFAULT_BEST_WINDOW_MS if window is None else window


def _tile_spec(cfg: dict) -> TileSpec | None:
    tile = _optional_object(cfg, "TileOut", "SnapshotConfig.TileOut")
    if tile is None:
        return None
    prefix = "SnapshotConfig.TileOut"
    defaults = TileSpec()
    color = _optional_text(tile, "Color", f"{prefix}.Color") or defaults.color
    if color.lower() != "random":
        try:
            ImageColor.getrgb(color)
        except ValueError:
            raise SnapshotError(
                errors.INVALID_PARAMETER, f"{prefix}.Color is not a colour name, #rrggbb or random: {_show(color)}"
            ) from None
    return TileSpec(
        lines=_integer(tile, "Lines", 1, MAX_TILE_CELLS, prefix) or defaults.lines,
        columns=_integer(tile, "Columns", 1, MAX_TILE_CELLS, prefix) or defaults.columns,
        cell_width=_integer(tile, "CellWidth", MIN_SIZE, MAX_SIZE, prefix),
        cell_height=_integer(tile, "CellHeight", MIN_SIZE, MAX_SIZE, prefix),
        padding=_integer(tile, "Padding", 0, MAX_SIZE, prefix) or 0,
        margin=_integer(tile, "Margin", 0, MAX_SIZE, prefix) or 0,
        color=color,
        keep_cells=_boolean(tile, "IsKeepCellPic", f"{prefix}.IsKeepCellPic", default=True),
        cell_step=_integer(tile, "CellSelStep", 1, MAX_COUNT, prefix) or 1,
    )


def _black_filter(cfg: dict, config: SnapshotConfig) -> BlackFilter | None:
    """BlackLevel applies at Time=0 to a job of several images; a single image at 0 always
    filters, with the defaults unless BlackLevel and PixelBlackThreshold say otherwise."""
    level = _integer(cfg, "BlackLevel", 30, 100)
    threshold = _integer(cfg, "PixelBlackThreshold", 0, 255)
    if config.time_array is not None or config.time_ms != 0:
        return None
    if level is None and config.max_images != 1:
        return None
    defaults = BlackFilter()
    return BlackFilter(
        defaults.level if level is None else level, defaults.threshold if threshold is None else threshold
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
        raise SnapshotError(
            errors.INVALID_PARAMETER, "SnapshotConfig.TimeArray.TimePointList must be a non-empty list of milliseconds"
        )
    return tuple(
        _as_integer(p, f"SnapshotConfig.TimeArray.TimePointList[{i}]", 0, MAX_TIME_MS) for i, p in enumerate(points)
    )


def _object_ref(obj: dict, field: str) -> ObjectRef:
    bucket = _required_text(obj, "Bucket", f"{field}.Bucket")
    objects.check_bucket_name(bucket, f"{field}.Bucket")
    location = _required_text(obj, "Location", f"{field}.Location")
    encoded = _required_text(obj, "Object", f"{field}.Object")
    try:
        name = urllib.parse.unquote(encoded, errors="strict")
    except UnicodeDecodeError:
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field}.Object is not UTF-8 once percent-decoded") from None
    return ObjectRef(bucket, location, name, _optional_text(obj, "RoleArn", f"{field}.RoleArn"))


# -- JSON and scalar helpers -------------------------------------------------------------


def _json(text: str, what: str, top: bool = False) -> Any:
    """JSON as RFC 8259 has it (no NaN or Infinity), with no lone surrogate in any string."""
    try:
        value = json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as error:
        at = f"line {error.lineno}, column {error.colno}" if error.lineno > 1 else f"column {error.colno}"
        raise SnapshotError(errors.JSON_FORMAT_INVALID, f"{what} is not valid JSON: {at}: {error.msg}") from None
    except ValueError as error:  # NaN or Infinity
        raise SnapshotError(errors.JSON_FORMAT_INVALID, f"{what} is not valid JSON: {error}") from None
    except RecursionError:
        raise SnapshotError(errors.JSON_FORMAT_INVALID, f"{what} is not valid JSON: nested too deeply") from None
    where = _lone_surrogate(value, "" if top else what)
    if where is not None:
        raise SnapshotError(
            errors.INVALID_PARAMETER, f"{where or what} holds a lone surrogate, which is not valid Unicode"
        )
    return value


def _not_json(constant: str):
    raise ValueError(f"{constant} is not JSON")


def _lone_surrogate(value: Any, path: str) -> str | None:
    """The path of the first key or string holding a lone surrogate, or None."""
    if isinstance(value, str):
        return path if LONE_SURROGATE.search(value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        inner = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key
        if isinstance(key, str) and LONE_SURROGATE.search(key):
            return inner
        found = _lone_surrogate(item, inner)
        if found is not None:
            return found
    return None


def _json_object(text: str, what: str, top: bool = False) -> dict:
    value = _json(text, what, top)
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


def _optional_object(parent: dict, key: str, field: str) -> dict | None:
    return None if parent.get(key) in (None, "") else _required_object(parent, key, field)


def _boolean(parent: dict | None, key: str, field: str, default: bool) -> bool:
    value = (parent or {}).get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise SnapshotError(errors.INVALID_PARAMETER, f"{field} must be true or false, got {_show(value)}")


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
    if not 0 <= seconds <= MAX_TIME_MS / 1000 or (seconds > 0 and round(seconds * 1000) == 0):
        raise SnapshotError(
            errors.OUT_OF_RANGE,
            f"SnapshotConfig.Interval must be 0 or in [0.001, {MAX_TIME_MS // 1000}] s, got {_show(value)}",
        )
    return round(seconds * 1000)


def _integer(parent: dict, key: str, minimum: int, maximum: int, prefix: str = "SnapshotConfig") -> int | None:
    value = parent.get(key)
    if value is None or value == "":
        return None
    return _as_integer(value, f"{prefix}.{key}", minimum, maximum)


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


def _as_number(value: Any, field: str) -> int | float:
    """A finite number given as a JSON number or a string of one; integers stay exact."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        text = value.strip()
        value = int(text) if _INTEGER.fullmatch(text) and len(text) < 100 else float(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field} must be a number, got {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field} must be a finite number, got {_show(value)}")
    return value


def _as_integer(value: Any, field: str, minimum: int, maximum: int) -> int:
    number = _as_number(value, field)
    if not minimum <= number <= maximum:
        raise SnapshotError(errors.OUT_OF_RANGE, f"{field} must be in [{minimum}, {maximum}], got {_show(value)}")
    if number != int(number):
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field} must be an integer, got {_show(value)}")
    return int(number)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."
