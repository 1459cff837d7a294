"""Output names: literal placeholder expansion (docs/contract.md#output-names)."""

from __future__ import annotations

import pytest

from snapshot import errors, naming
from snapshot.errors import SnapshotError


@pytest.mark.parametrize(
    "template, input_name, count, expected",
    [
        ("{Count}.jpg", "a.mp4", 1, "00001.jpg"),
        (
            "{ObjectPrefix}{FileName}/{Count}.{ExtName}.jpg",
            "dir/sub/movie.final.mov",
            42,
            "dir/sub/movie.final/00042.mov.jpg",
        ),
        ("{ObjectPrefix}{FileName}-{Count}.jpg", "noext", 3, "noext-00003.jpg"),
        ("{FileName}.jpg", ".hidden", 1, ".hidden.jpg"),
        ("{Count}{Count}.jpg", "a.mp4", 123456, "123456123456.jpg"),
        ("{count}-{Unknown}-{0}-{}.jpg", "a.mp4", 1, "{count}-{Unknown}-{0}-{}.jpg"),
        ("{FileName}.jpg", "{Count}.mp4", 7, "{Count}.jpg"),  # a value is never expanded again
    ],
)
def test_expand(template, input_name, count, expected):
    assert naming.expand(template, input_name, count) == expected


def test_template_checks():
    naming.check_output_template("a/{Count}.jpg", "v.mp4", "F", naming.COUNT)
    with pytest.raises(SnapshotError) as caught:
        naming.check_output_template("a.jpg", "v.mp4", "F", naming.COUNT)
    assert caught.value.code == errors.INVALID_PARAMETER and "{Count}" in caught.value.message
    with pytest.raises(SnapshotError) as caught:
        naming.check_output_template("{ObjectPrefix}../x.jpg", "up/v.mp4", "F", None)
    assert caught.value.code == errors.PERMISSION_DENIED
