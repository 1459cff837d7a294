"""One spelling for every flag of the commands: `--async-timeout` is `--async_timeout`.

Beam spells its flags with underscores and silently drops a flag it does not know, so a
user who types `--bucket-root` would get the default buckets. Every command therefore
rewrites the names of its flags to underscores before parsing, and the main command warns
about any flag that neither it nor Beam knows. The documented spelling is underscores.

A switch (a flag without a value, `--quiet`) may also be given as `--quiet=true` or
`--quiet=false`, which is how a Flex template's launcher passes a parameter.
"""

from __future__ import annotations


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
