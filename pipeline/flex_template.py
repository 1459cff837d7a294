"""The Dataflow Flex Template's metadata.json, made from the pipeline's own flags
(SnapshotOptions), so that the two never drift apart:

    python -m pipeline.flex_template > metadata.json

Every flag is one parameter, with its help text; a switch (`--quiet`) takes `true` or
`false`, which the command reads (pipeline.flags). A flag the command requires is not
optional.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re

from pipeline import __main__ as command
from pipeline import flags
from pipeline.options import SnapshotOptions

NAME = "snapshot-pipeline"
DESCRIPTION = (
    "SubmitSnapshotJob in bulk: a JSON Lines manifest in, snapshots written to buckets, "
    "one Avro result record per manifest line"
)
SWITCH = r"^(true|false|True|False)$"


def options_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    SnapshotOptions._add_argparse_args(parser)  # noqa: SLF001 - Beam's way to declare options
    return parser


def required() -> set[str]:
    """The flags that the command refuses to run without, as its own error names them."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.suppress(SystemExit):
        command.parse_args([])
    message = stderr.getvalue().rpartition("required")[2]
    return set(re.findall(r"--(\w+)", message))


def label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def parameter(action: argparse.Action, prog: str, required: bool, switch: bool) -> dict:
    """One flag as a parameter: its help text expanded as --help shows it."""
    name = action.option_strings[0][2:]
    help_text = (action.help or "") % {**vars(action), "prog": prog}
    entry = {"name": name, "label": label(name), "helpText": help_text, "isOptional": not required}
    pattern = SWITCH if switch else getattr(action.type, "pattern", None)
    if pattern:
        entry["regexes"] = [pattern]
    return entry


def metadata() -> dict:
    parser = options_parser()
    needed, switches = required(), flags.switches(parser)
    parameters = []
    for action in parser._actions:  # noqa: SLF001 - argparse lists its flags nowhere else
        name = action.option_strings[0][2:]
        parameters.append(parameter(action, parser.prog, name in needed, name in switches))
    return {"name": NAME, "description": DESCRIPTION, "parameters": parameters}


def main() -> None:
    print(json.dumps(metadata(), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
