"""Messages to JSON Lines targets, delivered once per done part
(docs/operations.md#runs-and-their-results).

In a run, the pipeline writes a part's messages to file targets into the run's folder, one
file per target (RUN/messages/partNNNNN/KEY.jsonl, snapshot.notify.stage). Once the part is
done, the command appends each to its target. A journal beside the part's marker
(partNNNNN.delivery.json) makes each append happen once, even when a run is stopped and the
next one takes its parts over: before the bytes go down it notes where they go, and after,
how many lines were written. A message whose line could not be written gets NotifyFailed in
the part's results, which are rewritten whole.
"""

from __future__ import annotations

import io
import json
import posixpath
import threading

import fastavro
from apache_beam.io.filesystems import FileSystems

from pipeline import runs
from snapshot import storage
from snapshot.errors import SnapshotError
from snapshot.objects import PartialWrite, Retry
from snapshot.targets import Targets, staged_name


class Journal:
    """What was delivered of one part's messages: for each staged file, the intent of an
    append under way, or the outcome of one done. Saved whole after each change."""

    def __init__(self, folder: str, part: str):
        self.root, self.name = storage.connect(folder), f"{part}.delivery.json"
        self.entries: dict = runs.read_json(self.root, self.name) or {}

    def __setitem__(self, key: str, value) -> None:
        self.entries[key] = value
        runs.write_json(self.root, self.name, self.entries)

    def close(self) -> None:
        self.root.close()


def deliver(folder: str, part: str, shards: list[str], targets: Targets) -> set[str]:
    """Deliver the staged messages of part `part` of the run folder `folder`, once, and mark
    those not delivered in its `shards`; the targets that failed (down for the rest of the run)."""
    journal = Journal(folder, part)
    try:
        if "failed" not in journal.entries:
            by_name = {staged_name(target): target for target in targets.files()}
            outcomes: dict[str, dict] = {}
            failed = []
            for name in _staged(folder, part):
                with FileSystems.open(f"{folder}/messages/{part}/{name}") as stream:
                    lines = stream.read().splitlines(keepends=True)
                entry = journal.entries.get(name, {})
                if entry.get("state") != "done":
                    entry = _append(
                        by_name.get(name), lines, f"{posixpath.basename(folder)}/{part}", entry, targets, journal, name
                    )
                    journal[name] = entry
                if entry["written"] < len(lines):
                    failed.append(by_name.get(name, name))
                    not_sent = _not_written(entry["error"])
                    outcomes.update({json.loads(line)["JobId"]: not_sent for line in lines[entry["written"] :]})
            if outcomes:
                patch(shards, outcomes)
            journal["failed"] = sorted(failed)
        return set(journal.entries["failed"])
    finally:
        journal.close()


def _not_written(error: str) -> dict:
    """The MNSMessageResult of a message whose line was not written."""
    from snapshot import notify  # the sending machinery: only a run whose messages failed needs it here

    return notify.not_sent("NotifyFailed", f"writing the messages file failed: {error}")


def _append(
    target: str | None, lines: list[bytes], tag: str, entry: dict, targets: Targets, journal: Journal, name: str
) -> dict:
    """Append `lines` to `target` within the delivery's time; the outcome, as a journal entry."""
    if target is None:
        return {"state": "done", "written": 0, "error": "the target is no longer in the pipelines file"}
    if target in targets.down:
        return {"state": "done", "written": 0, "error": "target down"}

    given_up, going = threading.Event(), threading.Event()
    lock = threading.Lock()

    def note(intent: dict) -> None:
        """Called just before the bytes go down: not once the delivery was given up on."""
        with lock:
            if given_up.is_set():
                raise PartialWrite(0, "given up on")
            journal[name] = {"state": "intent", "intent": intent}
            going.set()

    outcome: dict = {}

    def work() -> None:
        try:
            outcome["written"] = storage.add_to_file(target, lines, Retry(), tag, entry.get("intent"), note)
        except PartialWrite as partial:
            outcome["written"], outcome["error"] = partial.lines_written, partial.reason
        except SnapshotError as error:
            outcome["written"], outcome["error"] = 0, error.message
        except Exception as error:  # noqa: BLE001 - a target, whatever it does, never fails the run
            outcome["written"], outcome["error"] = 0, type(error).__name__

    seconds = targets.delivery.timeout_s * max(1, targets.delivery.attempts)
    thread = threading.Thread(target=work, name="deliver", daemon=True)
    thread.start()
    thread.join(seconds)  # a target that blocks (locked by another writer, a hung mount) ...
    with lock:
        if "written" not in outcome and not going.is_set():
            given_up.set()  # ... is given up on: if it ever unblocks, it writes nothing
            return {"state": "done", "written": 0, "error": f"no answer within {seconds:g} s"}
    thread.join(seconds)  # the bytes are going down: they get the time once more
    if "written" not in outcome:  # a write the kernel is stuck in cannot be called back
        return {"state": "done", "written": 0, "error": f"no answer within {2 * seconds:g} s"}
    return {"state": "done", "written": outcome["written"], "error": outcome.get("error")}


def _staged(folder: str, part: str) -> list[str]:
    matched = FileSystems.match([f"{folder}/messages/{part}/*.jsonl"])[0].metadata_list
    return sorted(posixpath.basename(m.path) for m in matched)


def patch(shards: list[str], outcomes: dict[str, dict]) -> None:
    """Rewrite each shard that holds one of the jobs of `outcomes` (job id -> its
    MNSMessageResult), whole, with those results changed."""
    for path in shards:
        with FileSystems.open(path) as stream:
            reader = fastavro.reader(stream)
            schema, records = reader.writer_schema, [r for r in reader if isinstance(r, dict)]
        if not any(record["Id"] in outcomes for record in records):
            continue
        for record in records:
            record["MNSMessageResult"] = outcomes.get(record["Id"], record["MNSMessageResult"])
        data = io.BytesIO()
        fastavro.writer(data, schema, records, codec="deflate")
        folder, name = posixpath.split(path)
        root = storage.connect(folder)
        try:
            root.write(name, data.getvalue())
        finally:
            root.close()
