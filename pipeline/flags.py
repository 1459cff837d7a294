"""What the command lines share: one spelling of every flag, one-line errors, checked numbers,
the nearest flag or runner for a typo, and output that survives a closed pipe.

Beam spells its flags with underscores and silently drops a flag it does not know, so a
user who types `--bucket-root` would get the default buckets. Every command therefore
rewrites the names of its flags to underscores before parsing. The documented spelling is
underscores. A flag that no command knows but that is close to one it knows (`--bucket_rot`)
is a typo: every command refuses it, naming the flag meant.

A switch (a flag without a value, `--quiet`) may also be given as `--quiet=true` or
`--quiet=false`, which is how a Flex template's launcher passes a parameter.
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import sys
from dataclasses import dataclass

CLOSE = 0.8  # difflib's ratio from which an unknown name is taken as a typo of a known one


class Parser(argparse.ArgumentParser):
    """argparse, but a wrong command line is one line on stderr (exit 2), not the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def canonical(argv: list[str]) -> list[str]:
    """`argv` with every flag name (`--name` or `--name=value`) spelled with underscores;
    values, and everything after a bare `--`, are left alone."""
    result: list[str] = []
    for position, arg in enumerate(argv):
        if arg == "--":
            return result + argv[position:]
        if arg.startswith("--"):
            name, equals, value = arg.partition("=")
            arg = "--" + name[2:].replace("-", "_") + equals + value
        result.append(arg)
    return result


def switches(parser) -> set[str]:
    """The names of `parser`'s flags that take no value (`--quiet`), --help aside."""
    return {
        action.option_strings[0][2:]
        for action in parser._actions  # noqa: SLF001 - argparse lists its flags nowhere else
        if action.nargs == 0 and action.option_strings and action.dest != "help"
    }


def plain_switches(argv: list[str], names: set[str]) -> list[str]:
    """`argv` with `--name=true` as `--name` and `--name=false` left out, for the switches
    `names` (any case of true or false); every other argument is left alone."""
    result: list[str] = []
    for position, arg in enumerate(argv):
        if arg == "--":
            return result + argv[position:]
        name, equals, value = arg.partition("=")
        if equals and name[2:] in names and name.startswith("--") and value.lower() in ("true", "false"):
            if value.lower() == "true":
                result.append(name)
            continue
        result.append(arg)
    return result


def unknown(options) -> list[str]:
    """The flags of a Beam PipelineOptions that no options class knows (Beam drops them)."""
    every = options.get_all_options(retain_unknown_options=True)
    known = options.get_all_options()
    return sorted(f"--{name}" for name in set(every) - set(known))


def nearest(name: str, known: list[str]) -> str | None:
    """The known name that `name` is most likely a typo of, or None when none is close."""
    found = difflib.get_close_matches(name, known, n=1, cutoff=CLOSE)
    return found[0] if found else None


def typos(names: list[str], known: list[str]) -> list[str]:
    """'--bucket_rot: did you mean --bucket_root?' for each of `names` close to a known flag."""
    return [f"{name}: did you mean {meant}?" for name in names if (meant := nearest(name, known))]


@dataclass(frozen=True)
class Number:
    """The checked type of a number flag: a whole number or a finite number (`whole=False`),
    from `low` to `high`; with `above`, `low` itself is refused (seconds above 0). A value out
    of range is refused with the range it must be in."""

    high: float
    low: float = 1
    whole: bool = True
    above: bool = False

    def __call__(self, text: str) -> int | float:
        try:
            value: int | float = int(text) if self.whole else float(text)
        except ValueError:
            kind = "a whole number" if self.whole else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        low_ok = value > self.low if self.above else value >= self.low
        if not (math.isfinite(value) and low_ok and value <= self.high):
            raise argparse.ArgumentTypeError(f"{text!r} must be {self.range()}")
        return value

    def range(self) -> str:
        """'a whole number from 1 to 64', 'a number above 0 and at most 604,800'."""
        kind = "a whole number" if self.whole else "a number"
        if self.above:
            return f"{kind} above {self.low:,g} and at most {self.high:,}"
        return f"{kind} from {self.low:,} to {self.high:,}"

    @property
    def pattern(self) -> str:
        """A regular expression for the values' text (a Flex template parameter's check)."""
        if not self.whole:
            return r"^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$"
        return r"^[0-9]+$" if self.low <= 0 else r"^0*[1-9][0-9]*$"


WEEK_S = 604_800  # the longest time limit of any flag: a week
SECONDS = Number(WEEK_S, low=0, whole=False, above=True)  # a time limit, in seconds


def runner_problem(runner: str | None) -> str | None:
    """Why Beam has no runner of this name, in one line with every known runner and the
    nearest one; None for a known runner or a full class name (module.Class)."""
    from apache_beam.options.pipeline_options import StandardOptions

    names = list(StandardOptions.KNOWN_RUNNER_NAMES)
    lower = {name.lower() for name in names}
    if not runner or "." in runner or runner.lower() in lower or runner.lower() + "runner" in lower:
        return None
    meant = nearest(runner, names)
    hint = f" (did you mean {meant}?)" if meant else ""
    return f"unknown runner {runner}{hint}; Beam knows {', '.join(names)}, or a runner's full class name (module.Class)"


def print_out(text: str) -> None:
    """Print to stdout; a reader that went away (`| head -1`) ends the output quietly."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush must not fail again
        os.close(devnull)


def open_closed_streams() -> None:
    """A stdout or stderr that was closed (`2>&-`) as /dev/null: what is written to it is
    dropped, and no file that the command opens takes its number."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, "w", closefd=False))  # noqa: SIM115 - the process's own stream


def add_bucket_arguments(parser) -> None:
    """--bucket_root, --bucket_map and --roles: where buckets live, for every command."""
    parser.add_argument(
        "--bucket_root",
        metavar="DIR",
        default="./buckets",
        help="folder or gs://bucket[/prefix] holding one sub-folder per bucket (default: ./buckets)",
    )
    parser.add_argument(
        "--bucket_map", metavar="FILE", help='JSON file: bucket name (or "*") -> local folder or gs:// root'
    )
    parser.add_argument(
        "--roles", metavar="FILE", help='JSON file: RoleArn -> {"key_file": ...} or {"impersonate": ...}'
    )
