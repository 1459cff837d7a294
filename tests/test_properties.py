"""Property-based tests: any request gives a request or a coded error, and no expanded name
ever leaves its bucket."""

from __future__ import annotations

import json
import posixpath

from hypothesis import given, settings
from hypothesis import strategies as st

from snapshot import errors, naming
from snapshot.errors import SnapshotError
from snapshot.spec import Request, parse_request

CODES = {value for name, value in vars(errors).items() if name.isupper()}
KEYS = [
    "Input",
    "SnapshotConfig",
    "OutputFile",
    "Bucket",
    "Location",
    "Object",
    "Time",
    "Interval",
    "Num",
    "TimeArray",
    "TimePointList",
    "Width",
    "Height",
    "FrameType",
    "TileOut",
    "TileOutputFile",
    "Lines",
    "Columns",
    "CellWidth",
    "Padding",
    "Margin",
    "Color",
    "IsKeepCellPic",
    "CellSelStep",
    "Format",
    "SubOut",
    "IsSptFrag",
    "BlackLevel",
    "PixelBlackThreshold",
    "PipelineId",
    "UserData",
    "Action",
    "RoleArn",
]
# names made of the pieces that matter: separators, dots, tokens, escapes, control characters
NAME_PIECES = st.sampled_from(
    [
        "/",
        ".",
        "..",
        "a",
        "é",
        "{Count}",
        "{FileName}",
        "{ObjectPrefix}",
        "{ExtName}",
        "{TileCount}",
        "{SnapshotTime}",
        "%2e",
        "%2F",
        "%00",
        "\\",
        "\n",
        " ",
        "{",
        "}",
    ]
)
names = st.lists(NAME_PIECES, max_size=12).map("".join)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    names,
    st.sampled_from(["0", "5000", "-1", "1e999", "nan", "intra"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=6).map(json.dumps),
    ),
    max_leaves=30,
)
good_input = st.fixed_dictionaries({"Bucket": st.just("in"), "Location": st.just("l"), "Object": names})
good_config = st.fixed_dictionaries(
    {"OutputFile": st.fixed_dictionaries({"Bucket": st.just("out"), "Location": st.just("l"), "Object": names})},
    optional=dict.fromkeys(KEYS[6:30], values),
)
lines = st.one_of(
    st.text(max_size=200),
    values.map(json.dumps),
    st.fixed_dictionaries(
        {"Input": st.one_of(good_input, values), "SnapshotConfig": st.one_of(good_config, values)},
        optional={"PipelineId": values, "UserData": values, "Action": values},
    ).map(json.dumps),
)


@settings(max_examples=400, deadline=None)
@given(lines)
def test_any_line_gives_a_request_or_a_coded_error(text):
    try:
        assert isinstance(parse_request(text), Request)
    except SnapshotError as error:
        assert error.code in CODES and error.message
        assert "Traceback" not in error.message


@settings(max_examples=400, deadline=None)
@given(names, names, st.integers(1, 99_999), st.integers(0, 10**9))
def test_an_accepted_output_name_never_leaves_its_bucket(template, input_name, count, time_ms):
    try:
        naming.check_output_template(template, input_name, "F", None)
    except SnapshotError as error:
        assert error.code in (errors.INVALID_PARAMETER, errors.PERMISSION_DENIED)
        return
    name = naming.expand(template, input_name, count, time_ms, count)
    parts = name.split("/")
    if not name.startswith("/") and ".." not in parts and all(parts):
        assert posixpath.normpath(posixpath.join("/srv/b", name)).startswith("/srv/b/")
    else:
        # only {Count} and friends changed between the checked and this name, and they are digits
        raise AssertionError(f"{template!r} with {input_name!r} expands to {name!r}")


@settings(max_examples=300, deadline=None)
@given(st.lists(NAME_PIECES, max_size=15))
def test_expansion_replaces_exactly_the_tokens(pieces):
    values = {
        "{Count}": "00007",
        "{TileCount}": "00003",
        "{SnapshotTime}": "1234",
        "{FileName}": "fi{Count}le",
        "{ExtName}": "ext",
        "{ObjectPrefix}": "dir/",
    }
    expected = "".join(values.get(piece, piece) for piece in pieces)
    assert naming.expand("".join(pieces), "dir/fi{Count}le.ext", 7, 1234, 3) == expected
