"""Request parsing and validation (docs/contract.md), without Beam or video."""

from __future__ import annotations

import json

import pytest
from alibabacloud_mts20140618 import models as mts

from snapshot import errors
from snapshot.errors import SnapshotError
from snapshot.spec import BlackFilter, decode_echo, parse_request, unknown_keys
from tests.helpers import request_line

OUT = {"Bucket": "out", "Location": "oss-cn-hangzhou", "Object": "{Count}.jpg"}
INPUT = {"Bucket": "in", "Location": "oss-cn-hangzhou", "Object": "v/a.mp4"}


def line(**config) -> str:
    return json.dumps({"Input": INPUT, "SnapshotConfig": {"OutputFile": OUT, **config}})


def code_of(text: str) -> str:
    with pytest.raises(SnapshotError) as caught:
        parse_request(text)
    return caught.value.code


def test_objects_and_json_strings_give_the_same_request():
    as_objects = parse_request(line(Time=5000, Num=3, Interval=2, Width=320))
    as_strings = parse_request(
        json.dumps(
            {
                "Input": json.dumps(INPUT),
                "SnapshotConfig": json.dumps(
                    {"OutputFile": OUT, "Time": "5000", "Num": "3", "Interval": "2", "Width": "320"}
                ),
            }
        )
    )
    assert as_objects == as_strings
    config = as_objects.config
    assert (config.time_ms, config.num, config.interval_ms, config.width) == (5000, 3, 2000, 320)
    assert config.is_async and config.frame_type == "intra"


def test_requests_built_by_the_official_sdk_are_manifest_lines():
    request = mts.SubmitSnapshotJobRequest(
        input=json.dumps({"Bucket": "in", "Location": "oss-cn-shanghai", "Object": "my%20video%2B1.mp4"}),
        snapshot_config=json.dumps(
            {
                "OutputFile": {
                    "Bucket": "out",
                    "Location": "oss-cn-shanghai",
                    "Object": "%7BFileName%7D-%7BCount%7D.jpg",
                },
                "Time": "1500",
                "Num": "4",
                "FrameType": "normal",
                "Height": "240",
            }
        ),
        pipeline_id="queue-1",
        user_data="hello",
    )
    parsed = parse_request(json.dumps(request.to_map()))
    assert parsed.input.name == "my video+1.mp4"
    assert parsed.config.output.name == "{FileName}-{Count}.jpg"
    assert (parsed.config.time_ms, parsed.config.num, parsed.config.interval_ms) == (1500, 4, 10_000)
    assert (parsed.config.frame_type, parsed.config.height) == ("normal", 240)
    assert (parsed.pipeline_id, parsed.user_data) == ("queue-1", "hello")


def test_object_names_are_percent_decoded_exactly_once():
    parsed = parse_request(
        json.dumps(
            {"Input": {**INPUT, "Object": "a%2Fb/c%2520d+e.mp4"}, "SnapshotConfig": {"OutputFile": OUT, "Time": 0}}
        )
    )
    assert parsed.input.name == "a/b/c%20d+e.mp4"


def test_sync_and_async_modes():
    assert not parse_request(line(Time=0)).config.is_async
    assert parse_request(line(Time=0, Num=1)).config.is_async
    assert parse_request(line(Time=0, Interval=5)).config.is_async
    assert parse_request(line(TimeArray={"TimePointList": [1, 2]})).config.is_async


def test_time_array_overrides_time_interval_and_num():
    config = parse_request(line(TimeArray={"TimePointList": ["300", 100]}, Num=5, Interval=1)).config
    assert (config.time_array, config.num, config.interval_ms) == ((300, 100), None, None)


def test_fractional_interval_and_frame_type_in_any_case():
    config = parse_request(line(Time=0, Interval="0.5", FrameType="NORMAL")).config
    assert (config.interval_ms, config.frame_type) == (500, "normal")


@pytest.mark.parametrize(
    "text, code",
    [
        ("not json", errors.JSON_FORMAT_INVALID),
        ("[1, 2]", errors.JSON_OBJECT_FORMAT_INVALID),
        ('"a string"', errors.JSON_OBJECT_FORMAT_INVALID),
        (json.dumps({"Input": "{bad", "SnapshotConfig": {"OutputFile": OUT, "Time": 0}}), errors.JSON_FORMAT_INVALID),
        (
            json.dumps({"Input": "[1]", "SnapshotConfig": {"OutputFile": OUT, "Time": 0}}),
            errors.JSON_OBJECT_FORMAT_INVALID,
        ),
        (json.dumps({"Input": INPUT, "SnapshotConfig": "{bad"}), errors.JSON_FORMAT_INVALID),
        (json.dumps({"Input": INPUT, "SnapshotConfig": 7}), errors.JSON_OBJECT_FORMAT_INVALID),
        (json.dumps({"SnapshotConfig": {"OutputFile": OUT, "Time": 0}}), errors.NULL_VALUE),
        (json.dumps({"Input": INPUT}), errors.NULL_VALUE),
        (
            json.dumps({"Input": {"Bucket": "in", "Location": "x"}, "SnapshotConfig": {"OutputFile": OUT, "Time": 0}}),
            errors.NULL_VALUE,
        ),
        (
            json.dumps({"Action": "SubmitJobs", "Input": INPUT, "SnapshotConfig": {"OutputFile": OUT, "Time": 0}}),
            errors.INVALID_PARAMETER,
        ),
        (
            json.dumps({"Input": INPUT, "SnapshotConfig": {"OutputFile": OUT, "Time": 0}, "UserData": "x" * 1025}),
            errors.INVALID_PARAMETER,
        ),
        (json.dumps({"Input": INPUT, "SnapshotConfig": {"Time": 0}}), errors.NULL_VALUE),
        (line(), errors.NULL_VALUE),
        (line(Time=-1), errors.OUT_OF_RANGE),
        (line(Time="soon"), errors.INVALID_PARAMETER),
        (line(Time=1.5), errors.INVALID_PARAMETER),
        (line(Time=True), errors.INVALID_PARAMETER),
        (line(Time=0, Num=0), errors.OUT_OF_RANGE),
        (line(Time=0, Num="-3"), errors.OUT_OF_RANGE),
        (line(Time=0, Interval=-1), errors.OUT_OF_RANGE),
        (line(Time=0, Interval=0), errors.INVALID_PARAMETER),
        (line(Time=0, Interval="NaN"), errors.INVALID_PARAMETER),
        (line(Time=0, Width=7), errors.OUT_OF_RANGE),
        (line(Time=0, Width=4097), errors.OUT_OF_RANGE),
        (line(Time=0, Height=5000), errors.OUT_OF_RANGE),
        (line(Time=0, FrameType="key"), errors.INVALID_PARAMETER),
        (line(TimeArray={"TimePointList": []}), errors.INVALID_PARAMETER),
        (line(TimeArray={"TimePointList": [0, -5]}), errors.OUT_OF_RANGE),
        (line(TimeArray={}), errors.NULL_VALUE),
    ],
)
def test_invalid_requests_get_their_code(text, code):
    assert code_of(text) == code


def test_range_limits_and_their_neighbours():
    for size, ok in [(7, False), (8, True), (4096, True), (4097, False)]:
        if ok:
            assert parse_request(line(Time=0, Width=size, Height=size)).config.width == size
        else:
            assert code_of(line(Time=0, Width=size)) == errors.OUT_OF_RANGE


def test_messages_name_the_field():
    with pytest.raises(SnapshotError) as caught:
        parse_request(line(Time=0, Height="tall"))
    assert "SnapshotConfig.Height" in caught.value.message


def test_json_errors_say_where():
    text = line(Time=0, Width=320)[:-2] + ",}}"  # a trailing comma
    with pytest.raises(SnapshotError) as caught:
        parse_request(text)
    assert caught.value.message == (
        f"the manifest line is not valid JSON: column {len(text) - 1}: "
        "Expecting property name enclosed in double quotes"
    )
    with pytest.raises(SnapshotError) as caught:
        parse_request(json.dumps({"Input": INPUT, "SnapshotConfig": '{"Time": 0,\n "Num": }'}))
    assert caught.value.message == "SnapshotConfig is not valid JSON: line 2, column 9: Expecting value"


def test_unknown_keys_are_warnings_that_name_the_nearest_known_key():
    text = json.dumps(
        {
            "Input": {**INPUT, "bucket": "in"},
            "SnapshotConfig": json.dumps(
                {
                    "OutputFile": {**OUT, "Objet": "x"},
                    "Time": 0,
                    "Widht": 320,
                    "TileOut": {"Line": 2},
                    "TileOutputFile": {**OUT, "Object": "s.jpg"},
                    "SubOut": {"IsSptFrag": "false"},
                    "TimeArray": {"TimePointList": [0], "Extra": [1]},
                }
            ),
            "UserData": "",
            "Callback": "http://example.com",
            "OwnerId": "1",  # the SDK's and the API's own parameters are known
            "RegionId": "cn-shanghai",
        }
    )
    request = parse_request(text)  # the request still parses, and ignores them as the API does
    assert request.config.width is None and request.config.tile.lines == 10
    assert unknown_keys(text) == (
        'unknown key "bucket" in Input (did you mean "Bucket"?)',
        'unknown key "Objet" in SnapshotConfig.OutputFile (did you mean "Object"?)',
        'unknown key "Widht" in SnapshotConfig (did you mean "Width"?)',
        'unknown key "Line" in SnapshotConfig.TileOut (did you mean "Lines"?)',
        'unknown key "Extra" in SnapshotConfig.TimeArray',
        "and 1 more unknown keys",
    )
    assert unknown_keys(request_line(Width=320)) == () and unknown_keys("not json") == ()
    assert unknown_keys(line(time=0)) == ('unknown key "time" in SnapshotConfig (did you mean "Time"?)',)


def test_several_images_need_count_in_the_output_name():
    single = {"Bucket": "out", "Location": "x", "Object": "poster.jpg"}

    def config(**fields):
        return json.dumps({"Input": INPUT, "SnapshotConfig": {"OutputFile": single, **fields}})

    assert parse_request(config(Time=0)).config.output.name == "poster.jpg"
    assert parse_request(config(Time=0, Num=1)).config.num == 1
    assert parse_request(config(TimeArray={"TimePointList": [5]})).config.time_array == (5,)
    for fields in ({"Num": 2}, {"Interval": 5}, {"TimeArray": {"TimePointList": [1, 2]}}):
        assert code_of(config(Time=0, **fields)) == errors.INVALID_PARAMETER


@pytest.mark.parametrize(
    "name, code",
    [
        ("../x.mp4", errors.PERMISSION_DENIED),
        ("a/../../x.mp4", errors.PERMISSION_DENIED),
        ("%2e%2e/x.mp4", errors.PERMISSION_DENIED),
        ("/etc/passwd", errors.PERMISSION_DENIED),
        ("%2Fetc/passwd", errors.PERMISSION_DENIED),
        ("a%00b.mp4", errors.INVALID_PARAMETER),
        ("a%0D%0Ab.mp4", errors.INVALID_PARAMETER),
        ("a\\b.mp4", errors.INVALID_PARAMETER),
        ("a//b.mp4", errors.INVALID_PARAMETER),
        ("./a.mp4", errors.INVALID_PARAMETER),
        ("a/", errors.INVALID_PARAMETER),
        ("x" * 1025, errors.INVALID_PARAMETER),
        ("%FF.mp4", errors.INVALID_PARAMETER),
    ],
)
def test_hostile_names_fail_for_inputs_and_outputs(name, code):
    as_input = json.dumps({"Input": {**INPUT, "Object": name}, "SnapshotConfig": {"OutputFile": OUT, "Time": 0}})
    as_output = line(Time=0).replace('"{Count}.jpg"', json.dumps(name))
    assert code_of(as_input) == code
    assert code_of(as_output) == code


def test_a_1024_byte_name_is_allowed():
    assert len(parse_request(line(Time=0).replace('"{Count}.jpg"', json.dumps("x" * 1024))).config.output.name) == 1024


@pytest.mark.parametrize("bucket", ["..", ".", "a/b", "", "a b", "-x"])
def test_bucket_names_are_checked(bucket):
    text = json.dumps({"Input": {**INPUT, "Bucket": bucket}, "SnapshotConfig": {"OutputFile": OUT, "Time": 0}})
    assert code_of(text) in (errors.INVALID_PARAMETER, errors.NULL_VALUE)


def test_expanded_output_name_is_validated_again():
    # {ObjectPrefix} of an input at the root is empty, so "{ObjectPrefix}/x" starts with "/".
    text = json.dumps(
        {
            "Input": {**INPUT, "Object": "a.mp4"},
            "SnapshotConfig": {"OutputFile": {**OUT, "Object": "{ObjectPrefix}/{Count}.jpg"}, "Time": 0},
        }
    )
    assert code_of(text) == errors.PERMISSION_DENIED


def test_echo_keeps_what_decodes_even_when_the_request_fails():
    echo = decode_echo(
        json.dumps({"Input": json.dumps(INPUT), "SnapshotConfig": "{bad", "UserData": "u", "PipelineId": "p"})
    )
    assert (echo.input, echo.config, echo.user_data, echo.pipeline_id) == (INPUT, None, "u", "p")
    assert decode_echo("not json").input is None


def test_request_line_helper_is_valid():
    assert parse_request(request_line()).input.bucket == "in"


TILES = {"Bucket": "out", "Location": "x", "Object": "sprites/{TileCount}.jpg"}


def test_tile_out_and_vtt_fields():
    config = parse_request(
        line(
            Time=0,
            Num=5,
            TileOutputFile=TILES,
            Format="VTT",
            SubOut={"IsSptFrag": "true"},
            TileOut={
                "Lines": "2",
                "Columns": 3,
                "CellWidth": "64",
                "Padding": 2,
                "Margin": "4",
                "Color": "#ff0000",
                "IsKeepCellPic": "false",
                "CellSelStep": 2,
            },
        )
    ).config
    tile = config.tile
    assert (tile.lines, tile.columns, tile.cell_width, tile.cell_height, tile.padding, tile.margin) == (
        2,
        3,
        64,
        None,
        2,
        4,
    )
    assert (tile.color, tile.keep_cells, tile.cell_step) == ("#ff0000", False, 2)
    assert config.tile_output.name == "sprites/{TileCount}.jpg"
    assert config.vtt and config.vtt_sprite_fragments and not config.writes_images
    defaults = parse_request(line(Time=0, Num=5, TileOutputFile=TILES, TileOut="{}")).config.tile
    assert (defaults.lines, defaults.columns, defaults.color, defaults.keep_cells, defaults.cell_step) == (
        10,
        10,
        "black",
        True,
        1,
    )


def test_tile_count_is_needed_only_when_several_sheets_can_result():
    one_sheet = {**TILES, "Object": "sprite.jpg"}
    assert parse_request(line(Time=0, Num=100, TileOut={}, TileOutputFile=one_sheet)).config.tile
    assert parse_request(
        line(Time=0, Num=8, TileOut={"Lines": 2, "Columns": 2, "CellSelStep": 2}, TileOutputFile=one_sheet)
    ).config.tile
    for fields in ({"Num": 101}, {"Interval": 1}, {"TimeArray": {"TimePointList": list(range(101))}}):
        assert code_of(line(Time=0, TileOut={}, TileOutputFile=one_sheet, **fields)) == errors.INVALID_PARAMETER


def test_count_is_not_needed_when_no_single_image_is_written():
    single = {**OUT, "Object": "unused.jpg"}
    text = json.dumps(
        {
            "Input": INPUT,
            "SnapshotConfig": {
                "OutputFile": single,
                "Time": 0,
                "Num": 5,
                "TileOut": {"IsKeepCellPic": False},
                "TileOutputFile": TILES,
            },
        }
    )
    assert not parse_request(text).config.writes_images


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"TileOut": {}}, errors.NULL_VALUE),
        ({"TileOut": {"Lines": 0}, "TileOutputFile": TILES}, errors.OUT_OF_RANGE),
        ({"TileOut": {"Columns": 10001}, "TileOutputFile": TILES}, errors.OUT_OF_RANGE),
        ({"TileOut": {"Lines": 10000, "Columns": 10000}, "TileOutputFile": TILES}, None),
        ({"TileOut": {"Padding": -1}, "TileOutputFile": TILES}, errors.OUT_OF_RANGE),
        ({"TileOut": {"CellWidth": 7}, "TileOutputFile": TILES}, errors.OUT_OF_RANGE),
        ({"TileOut": {"CellSelStep": 0}, "TileOutputFile": TILES}, errors.OUT_OF_RANGE),
        ({"TileOut": {"Color": "blurple"}, "TileOutputFile": TILES}, errors.INVALID_PARAMETER),
        ({"TileOut": {"Color": "random"}, "TileOutputFile": TILES}, None),
        ({"TileOut": {"IsKeepCellPic": "maybe"}, "TileOutputFile": TILES}, errors.INVALID_PARAMETER),
        ({"TileOut": "[]", "TileOutputFile": TILES}, errors.JSON_OBJECT_FORMAT_INVALID),
        ({"TileOut": {}, "TileOutputFile": {**TILES, "Object": "../{TileCount}.jpg"}}, errors.PERMISSION_DENIED),
        ({"Format": "srt"}, errors.INVALID_PARAMETER),
        ({"Format": "vtt", "SubOut": {"IsSptFrag": "true"}}, errors.NULL_VALUE),
        ({"Format": "vtt", "TileOut": {"IsKeepCellPic": "false"}, "TileOutputFile": TILES}, errors.INVALID_PARAMETER),
        ({"BlackLevel": 29}, errors.OUT_OF_RANGE),
        ({"BlackLevel": 101}, errors.OUT_OF_RANGE),
        ({"BlackLevel": 30, "PixelBlackThreshold": 0}, None),
        ({"BlackLevel": 100, "PixelBlackThreshold": 255}, None),
        ({"PixelBlackThreshold": 256}, errors.OUT_OF_RANGE),
        ({"PixelBlackThreshold": -1}, errors.OUT_OF_RANGE),
    ],
)
def test_tile_vtt_and_black_errors(fields, code):
    text = line(Time=0, Num=3, **fields)
    if code is None:
        parse_request(text)
    else:
        assert code_of(text) == code


def test_black_filter_rules():
    def black(**fields):
        return parse_request(line(**fields)).config.black

    assert black(Time=0) == BlackFilter()  # single image at 0: always on
    assert black(Time=0, Num=1) == BlackFilter()
    assert black(Time=0, Num=3) is None  # several: only with BlackLevel
    assert black(Time=0, Num=3, BlackLevel=50) == BlackFilter(50, BlackFilter().threshold)
    assert black(Time=0, Interval=2, BlackLevel="60", PixelBlackThreshold="10") == BlackFilter(60, 10)
    assert black(Time=1, Num=3, BlackLevel=50) is None  # only at Time=0
    assert black(Time=1) is None
    assert black(TimeArray={"TimePointList": [0, 5]}, BlackLevel=50) is None
