"""Output names: literal expansion of the placeholders of docs/contract.md#output-names.

Never `str.format`: only these tokens are replaced, everything else stays as written.
"""

from __future__ import annotations

import posixpath
import re

from snapshot import errors, objects
from snapshot.errors import SnapshotError

COUNT = "{Count}"
TILE_COUNT = "{TileCount}"
# One pass over the template, so a value that contains a token is never expanded again.
_TOKEN = re.compile(r"\{(?:Count|TileCount|SnapshotTime|ObjectPrefix|FileName|ExtName)\}")


def sequence(number: int) -> str:
    """The 1-based, 5-digit zero-padded sequence number: 1 -> '00001'."""
    return f"{number:05d}"


def input_tokens(input_name: str) -> dict[str, str]:
    """{ObjectPrefix}, {FileName} and {ExtName} of an input object name."""
    folder, base = posixpath.split(input_name)
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        stem, ext = base, ""
    return {
        "{ObjectPrefix}": folder + "/" if folder else "",
        "{FileName}": stem,
        "{ExtName}": ext,
    }


def expand(template: str, input_name: str, count: int = 1, snapshot_time: int = 0, tile_count: int = 1) -> str:
    """An object name: the `count`-th image (1-based) at `snapshot_time` ms, or the
    `tile_count`-th sprite sheet, written for `input_name`."""
    tokens = {
        **input_tokens(input_name),
        COUNT: sequence(count),
        TILE_COUNT: sequence(tile_count),
        "{SnapshotTime}": str(snapshot_time),
    }
    return _TOKEN.sub(lambda match: tokens[match.group(0)], template)


def vtt_name(first_output: str) -> str:
    """The WebVTT track's name: beside what its first cue points to, ending in .vtt."""
    return posixpath.splitext(first_output)[0] + ".vtt"


def check_output_template(template: str, input_name: str, field: str, required_token: str | None) -> None:
    """Reject, before any I/O, a template whose names would be invalid or collide."""
    if required_token and required_token not in template:
        raise SnapshotError(
            errors.INVALID_PARAMETER, f"{field} needs {required_token}: this job can write several of them"
        )
    objects.check_object_name(expand(template, input_name), field)
