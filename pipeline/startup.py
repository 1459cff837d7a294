"""The command's first import: a run on this machine that names no gs:// path imports Beam
without its Google Cloud modules.

`import apache_beam` loads the BigQuery, Pub/Sub, Cloud Storage and Dataflow clients, for
Beam's BigQuery and Pub/Sub transforms, its gs:// file system and its Dataflow runner; every
Beam Write (the Avro results) imports its Pub/Sub module again, to tell a Pub/Sub sink from
the others. Such a run uses none of them: its manifest, results and --resume are local files
(Beam's file systems read them), and a gs:// bucket of its lines or targets goes through
snapshot.gcs, which imports the Cloud Storage client itself. Any other run (a gs:// flag,
another runner) imports Beam whole, as does every import of pipeline.__main__ that is not the
command.

The command's imports run with Python's cyclic garbage collector off: they make a million
objects and next to no garbage, and collecting while they grow cost the command 0.1 to 0.2 s.
Once they are done (`imported`), what they made is frozen out of the collector's scans.
"""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Sequence

# Beam imports each only inside try/except ImportError (the BigQuery one guards Pub/Sub too)
SKIPPED = (
    "apache_beam.io.gcp.bigquery",
    "apache_beam.io.gcp.gcsfilesystem",
    "google.cloud.pubsub",
    "google.cloud.dataflow",  # the Dataflow runner's client
)
LOCAL_RUNNERS = ("FnApiRunner", "DirectRunner")  # as pipeline.local, which imports Beam


class _Skip:
    """A module finder that says the SKIPPED modules are not installed."""

    def find_spec(self, name, path=None, target=None):
        if name in SKIPPED:
            raise ModuleNotFoundError(f"{name} is not imported by a local run", name=name)
        return None


def lean(argv: Sequence[str]) -> bool:
    """The command line runs on this machine and names no gs:// path."""
    return not any("gs://" in arg for arg in argv) and all(runner in LOCAL_RUNNERS for runner in runners(argv))


def runners(argv: Sequence[str]) -> list[str]:
    """The values of --runner (`--runner X` or `--runner=X`, or an abbreviation of it)."""
    found = []
    for position, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if len(name) > 2 and "--runner".startswith(name):
            found.append(value if equals else "".join(argv[position + 1 : position + 2]))
    return found


def import_beam(argv: Sequence[str]) -> None:
    """Import Beam: without SKIPPED when `lean(argv)`. The finder is gone afterwards, so a
    later import of a skipped module works (and registers gs:// again)."""
    finder = _Skip()
    if lean(argv):
        sys.meta_path.insert(0, finder)
    try:
        importlib.import_module("apache_beam")
        importlib.import_module("apache_beam.io.filesystems")
        importlib.import_module("apache_beam.io.gcp.pubsub")  # every Write asks it for its Pub/Sub sink
    finally:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)


def imported() -> None:
    """The command's imports are done: the objects they made are left out of every later
    collection (gc.freeze), and the collector is on again."""
    gc.freeze()
    gc.enable()


if getattr(sys.modules["__main__"].__spec__, "name", None) == "pipeline.__main__":  # python -m pipeline
    gc.disable()  # until imported()
    import_beam(sys.argv[1:])
