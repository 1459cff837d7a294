"""One spelling for every flag of the commands: `--async-timeout` is `--async_timeout`.

Beam spells its flags with underscores and silently drops a flag it does not know, so a
user who types `--bucket-root` would get the default buckets. Every command therefore
rewrites the names of its flags to underscores before parsing, and the main command warns
about any flag that neither it nor Beam knows. The documented spelling is underscores.
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


def unknown(options) -> list[str]:
    """The flags of a Beam PipelineOptions that no options class knows (Beam drops them)."""
    every = options.get_all_options(retain_unknown_options=True)
    known = options.get_all_options()
    return sorted(f"--{name}" for name in set(every) - set(known))
