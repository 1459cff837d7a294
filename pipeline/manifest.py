"""python -m pipeline.manifest SOURCE... --out FILE: a manifest for folders or globs of videos.

One SubmitSnapshotJob request per video and preset (a poster, a shot every N seconds, N shots
spread evenly, a storyboard), each output named after its input's bucket and path, so that no
two inputs share a name (docs/running.md#a-manifest-for-your-own-videos). Reading manifests
is transforms/manifest.py; this module only writes them.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shlex
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pipeline import flags
from snapshot import naming, objects
from snapshot.errors import SnapshotError

VIDEO_EXTENSIONS = frozenset(
    {
        "3g2",
        "3gp",
        "asf",
        "avi",
        "f4v",
        "flv",
        "m2ts",
        "m4v",
        "mkv",
        "mov",
        "mp4",
        "mpeg",
        "mpg",
        "mts",
        "mxf",
        "ogv",
        "ts",
        "vob",
        "webm",
        "wmv",
    }
)  # containers PyAV opens
LOCATION = "local"  # required by the contract, ignored by local buckets (docs/contract.md#requests)
DEFAULT_POSTER_MS = 0
STORYBOARD_CELL_WIDTH = 160
STORYBOARD_GRID = 10  # lines and columns of a sheet
_GLOB = re.compile(r"[*?\[]")
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|min|h)?")
_UNIT_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, None: 1000}
HIDDEN, NOT_VIDEO, UNUSABLE = "hidden", "not a video", "unusable"
_SKIPPED = {  # reason -> (one, several)
    NOT_VIDEO: ("file that is not a video by its extension", "files that are not videos by their extension"),
    HIDDEN: ("hidden file", "hidden files"),
    UNUSABLE: ("file whose name cannot be used", "files whose names cannot be used"),
}


class ManifestError(Exception):
    """A source or flag that cannot make a manifest; the message says why."""


@dataclass(frozen=True, order=True)
class Video:
    """An input video: its bucket and its object name there."""

    bucket: str
    name: str


@dataclass(frozen=True)
class Presets:
    """What to capture of every video: each set field is one request per video."""

    poster_ms: int | None = None
    every_s: float | None = None
    spread: int | None = None
    storyboard_s: float | None = None
    width: int | None = None
    output_bucket: str = "thumbs"


# -- pure functions --------------------------------------------------------------------------


def parse_duration_ms(text: str) -> int:
    """Milliseconds of `5s`, `1500ms`, `1.5s`, `2min`, `1h` or a bare number of seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration: write it as 5s, 1500ms, 2min or 1h")
    ms = float(match.group(1)) * _UNIT_MS[match.group(2)]
    if ms != round(ms):
        raise ValueError(f"{text!r} is finer than a millisecond")
    return round(ms)


def is_video(name: str) -> bool:
    """Whether a file name has a video's extension, in any case (`.MP4` counts)."""
    stem, dot, extension = name.rpartition(".")
    return bool(dot and stem) and extension.lower() in VIDEO_EXTENSIONS


def below_root(path: str, root: str) -> Video:
    """The bucket and object name of `path` below the bucket root `root` (both local paths or
    both gs:// URLs): the first folder below the root is the bucket."""
    if root.startswith("gs://"):
        relative = path[len(root.rstrip("/")) + 1 :] if path.startswith(root.rstrip("/") + "/") else None
    else:
        relative = os.path.relpath(_real(path), _real(root))
        outside = relative == os.pardir or relative.startswith(os.pardir + os.sep)
        relative = None if outside else relative.replace(os.sep, "/")
    if relative is None:
        raise ManifestError(f"{path} is not below the bucket root {root}: put it in a bucket folder there")
    bucket, slash, name = relative.partition("/")
    if not slash:
        raise ManifestError(f"{path} is directly in the bucket root {root}: put it in a bucket folder there")
    return Video(bucket, name)


def gcs_video(url: str) -> Video:
    """The GCS bucket and object name of a gs:// URL."""
    bucket, _, name = url[len("gs://") :].partition("/")
    return Video(bucket, name)


def unusable(video: Video) -> str | None:
    """Why a video cannot be named in a request, or None."""
    try:
        video.name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not UTF-8"
    try:
        objects.check_bucket_name(video.bucket, "its bucket")
        objects.check_object_name(video.name, "its name")
        objects.check_object_name(naming.expand(output_folder(video) + "/poster.jpg", video.name), "an output name")
    except SnapshotError as error:
        return error.message
    return None


def output_folder(video: Video) -> str:
    """The output template folder of a video: its bucket, path and extension, by tokens
    (docs/contract.md#output-names), so a name that holds `{Count}` is never expanded."""
    return f"{video.bucket}/{{ObjectPrefix}}{{FileName}}.{{ExtName}}"


def _number(value: float) -> int | float:
    return int(value) if value == int(value) else value


def configs(presets: Presets, folder: str) -> list[tuple[str, dict]]:
    """(preset name, SnapshotConfig without OutputFile's bucket) of each preset, in a fixed order."""
    sized = {"Width": presets.width} if presets.width else {}
    found = []
    if presets.poster_ms is not None:
        found.append(
            ("poster", {"Object": f"{folder}/poster.jpg", "Time": presets.poster_ms, "FrameType": "normal", **sized})
        )
    if presets.every_s is not None:
        every = _number(presets.every_s)
        found.append(
            (
                f"every {every} s",
                {
                    "Object": f"{folder}/every{every}s-{naming.COUNT}.jpg",
                    "Time": 0,
                    "Interval": every,
                    "FrameType": "normal",
                    **sized,
                },
            )
        )
    if presets.spread is not None:
        found.append(
            (
                f"spread {presets.spread}",
                {
                    "Object": f"{folder}/spread{presets.spread}-{naming.COUNT}.jpg",
                    "Time": 0,
                    "Num": presets.spread,
                    "Interval": 0,
                    "FrameType": "normal",
                    **sized,
                },
            )
        )
    if presets.storyboard_s is not None:
        found.append(
            (
                "storyboard",
                {
                    "Object": f"{folder}/storyboard-{naming.COUNT}.jpg",
                    "Tiles": f"{folder}/storyboard-{naming.TILE_COUNT}.jpg",
                    "Time": 0,
                    "Interval": _number(presets.storyboard_s),
                    "FrameType": "normal",
                    "TileOut": {
                        "Lines": STORYBOARD_GRID,
                        "Columns": STORYBOARD_GRID,
                        "CellWidth": STORYBOARD_CELL_WIDTH,
                        "IsKeepCellPic": "false",
                    },
                    "Format": "vtt",
                    "SubOut": {"IsSptFrag": "true"},
                },
            )
        )
    return found


def requests(video: Video, presets: Presets) -> list[dict]:
    """The requests for one video, one per preset."""

    def where(name: str) -> dict:
        return {"Bucket": presets.output_bucket, "Location": LOCATION, "Object": name.replace("%", "%25")}

    found = []
    for preset, config in configs(presets, output_folder(video)):
        config = dict(config)
        snapshot_config = {"OutputFile": where(config.pop("Object"))}
        if "Tiles" in config:
            snapshot_config["TileOutputFile"] = where(config.pop("Tiles"))
        source = {"Bucket": video.bucket, "Location": LOCATION, "Object": video.name.replace("%", "%25")}
        found.append({"Input": source, "SnapshotConfig": {**snapshot_config, **config}, "UserData": preset})
    return found


def manifest_lines(videos: Iterable[Video], presets: Presets) -> list[str]:
    """The manifest's lines: sorted by bucket and name, then in preset order."""
    return [
        json.dumps(request, ensure_ascii=False) for video in sorted(set(videos)) for request in requests(video, presets)
    ]


# -- finding the videos ----------------------------------------------------------------------


@dataclass
class Found:
    """The videos that the sources name, and what was skipped and why."""

    videos: set[Video]
    skipped: Counter[str]  # reason -> files
    gcs_buckets: set[str]  # GCS buckets named as buckets, outside a local bucket root


def find(sources: list[str], bucket_root: str) -> Found:
    """The videos of local or gs:// folders, files and globs."""
    found = Found(set(), Counter(), set())
    for source in sources:
        paths = list(_gcs_files(source) if source.startswith("gs://") else _local_files(source))
        if not paths:
            raise ManifestError(f"nothing matches {source}")
        for path in paths:
            name = path.rsplit("/", 1)[-1] if path.startswith("gs://") else os.path.basename(path)
            if name.startswith("."):
                found.skipped[HIDDEN] += 1
                continue
            if not is_video(name):
                found.skipped[NOT_VIDEO] += 1
                continue
            video = _locate(path, bucket_root)
            reason = unusable(video)
            if reason:
                print(f"warning: skipped {path}: {reason}", file=sys.stderr)
                found.skipped[UNUSABLE] += 1
                continue
            found.videos.add(video)
            if path.startswith("gs://") and not bucket_root.startswith("gs://"):
                found.gcs_buckets.add(video.bucket)
    return found


def _locate(path: str, bucket_root: str) -> Video:
    if path.startswith("gs://") and not bucket_root.startswith("gs://"):
        return gcs_video(path)
    if path.startswith("gs://") != bucket_root.startswith("gs://"):
        raise ManifestError(f"{path} is not below the bucket root {bucket_root}")
    return below_root(path, bucket_root)


def _real(path: str) -> str:
    """An absolute path with its folders' links resolved, but not a link at its end."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(os.path.realpath(folder), name)


def _local_files(source: str) -> Iterator[str]:
    """The files of a local path, folder (recursively) or glob, in sorted order."""
    matches = sorted(glob.glob(source, recursive=True)) if _GLOB.search(source) else [source]
    for match in matches:
        if os.path.isdir(match):
            for folder, subfolders, files in os.walk(match):
                subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
                yield from (os.path.join(folder, name) for name in sorted(files))
        elif os.path.isfile(match):
            yield match


def _gcs_files(source: str) -> list[str]:
    """The objects of a gs:// object, prefix (recursively) or glob."""
    from apache_beam.io.filesystems import FileSystems  # Beam is imported only for gs:// sources

    _check_listing(source)

    def match(pattern: str) -> list[str]:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)

    if _GLOB.search(source):
        return match(source)
    return match(source.rstrip("/") + "/**") or (match(source) if not source.endswith("/") else [])


def _check_listing(source: str, timeout_s: float = 10) -> None:
    """One listing request, without retries: a gs:// source that cannot be listed (no
    credentials, no server) fails at once in one line, not after minutes of Beam's retries."""
    from google.auth import exceptions as auth_errors
    from google.cloud import storage

    bucket, _, prefix = source[len("gs://") :].partition("/")
    try:
        client = storage.Client()
        next(
            iter(
                client.list_blobs(bucket, prefix=_GLOB.split(prefix)[0], max_results=1, timeout=timeout_s, retry=None)
            ),
            None,
        )
    except auth_errors.DefaultCredentialsError:
        raise ManifestError(
            f"cannot list {source}: no Google Cloud credentials (set GOOGLE_APPLICATION_CREDENTIALS, or run "
            "gcloud auth application-default login)"
        ) from None
    except Exception as error:  # noqa: BLE001 - any failure to list is one line
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise ManifestError(f"cannot list {source}: {type(error).__name__}: {first}") from None


# -- the command -----------------------------------------------------------------------------


def _duration(text: str) -> int:
    try:
        return parse_duration_ms(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _time(text: str) -> int:
    ms = _duration(text)
    if ms > 10**10:
        raise argparse.ArgumentTypeError(f"{text!r} is past 10,000,000 s")
    return ms


def _seconds(text: str) -> float:
    ms = _duration(text)
    if not 1 <= ms <= 10**10:
        raise argparse.ArgumentTypeError(f"{text!r} is outside 1 ms to 10,000,000 s")
    return ms / 1000


def _bounded(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside [{low}, {high}]")
        return value

    return parse


def _bucket(text: str) -> str:
    try:
        objects.check_bucket_name(text, "--output_bucket")
    except SnapshotError as error:
        raise argparse.ArgumentTypeError(error.message) from None
    return text


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        prog="python -m pipeline.manifest",
        description="Write a manifest of SubmitSnapshotJob requests for folders or globs of videos: "
        "one request per video and preset. Without a preset: --poster 0s.",
        epilog="Times are a number with a unit: 5s, 1500ms, 2min, 1h; a bare number is seconds. "
        "Outputs go to OUTPUT_BUCKET/INPUT_BUCKET/PATH/NAME.EXT/, so no two videos share a name. "
        "Files whose extension is not a video's are skipped and counted.",
        allow_abbrev=False,
    )
    made.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="a video, a folder of them (searched recursively) or a glob ('buckets/media/**/*.mp4'), below "
        "--bucket_root, or gs://bucket/prefix",
    )
    made.add_argument("--out", required=True, metavar="FILE", help="the manifest to write, JSON Lines (required)")
    made.add_argument(
        "--bucket_root",
        default="./buckets",
        metavar="DIR",
        help="the folder (or gs:// root) of the buckets, as the pipeline's --bucket_root: a video's bucket is "
        "the first folder below it (default: ./buckets)",
    )
    made.add_argument(
        "--poster",
        type=_time,
        metavar="TIME",
        help="one image at TIME (5s, 1500ms); 0s gives the first frame that is not black in the first 5 s; "
        "a video shorter than TIME fails with ResourceContentBad",
    )
    made.add_argument(
        "--every", type=_seconds, metavar="SECONDS", help="an image every SECONDS seconds, from 0 s to the end"
    )
    made.add_argument("--spread", type=_bounded(1, 10_000), metavar="N", help="N images spread evenly over the video")
    made.add_argument(
        "--storyboard",
        action="store_true",
        help=f"sprite sheets of {STORYBOARD_GRID}x{STORYBOARD_GRID} cells {STORYBOARD_CELL_WIDTH} px wide, one "
        "cell every --storyboard_every, and a WebVTT track whose cues point into them (for a scrub bar)",
    )
    made.add_argument(
        "--storyboard_every",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="seconds between the storyboard's cells (default: 1)",
    )
    made.add_argument(
        "--width",
        type=_bounded(8, 4096),
        metavar="PX",
        help="width in pixels of the poster, --every and --spread images; the height keeps the aspect "
        "(default: the video's own size)",
    )
    made.add_argument(
        "--output_bucket",
        type=_bucket,
        default="thumbs",
        metavar="NAME",
        help="the bucket the images go to (default: thumbs)",
    )
    return made


def presets_of(args: argparse.Namespace) -> Presets:
    """The presets the flags ask for, or the default poster."""
    chosen = args.poster is not None or args.every is not None or args.spread is not None or args.storyboard
    return Presets(
        poster_ms=args.poster if chosen else DEFAULT_POSTER_MS,
        every_s=args.every,
        spread=args.spread,
        storyboard_s=args.storyboard_every if args.storyboard else None,
        width=args.width,
        output_bucket=args.output_bucket,
    )


def _count(number: int, one: str, several: str) -> str:
    return f"{number} {one if number == 1 else several}"


def summary(found: Found, lines: int, out: str) -> str:
    """What was written and what was skipped, in one line."""
    text = f"{_count(lines, 'request', 'requests')} for {_count(len(found.videos), 'video', 'videos')} in {out}"
    skipped = [_count(found.skipped[why], *_SKIPPED[why]) for why in _SKIPPED if found.skipped[why]]
    return text + ("; skipped " + ", ".join(skipped) if skipped else "")


def out_problem(out: str, sources: list[str]) -> str | None:
    """Why --out must not be written, or None: it would overwrite a video, or a source."""
    if is_video(os.path.basename(out)):
        return f"--out {out} has a video's extension; the manifest is JSON Lines (m.jsonl, say)"
    for source in sources:
        if "://" not in source and os.path.exists(out) and os.path.exists(source) and os.path.samefile(out, source):
            return f"--out {out} is the source {source}; the manifest goes to a file of its own"
    return None


def main(argv: list[str] | None = None) -> int:
    flags.open_closed_streams()
    args = parser().parse_args(flags.canonical(sys.argv[1:] if argv is None else argv))
    problem = out_problem(args.out, args.sources)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        found = find(args.sources, args.bucket_root)
    except ManifestError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - a listing that fails (gs:// access) is one line, not a traceback
        print(f"error: cannot list the sources: {error}", file=sys.stderr)
        return 2
    if not found.videos:
        print(f"error: no videos in {' '.join(args.sources)} ({summary(found, 0, args.out)})", file=sys.stderr)
        return 2
    lines = manifest_lines(found.videos, presets_of(args))
    try:
        folder = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(folder, exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
    except OSError as error:
        print(f"error: cannot write {args.out}: {error.strerror}", file=sys.stderr)
        return 1
    print(summary(found, len(lines), args.out))
    root = "" if args.bucket_root == "./buckets" else f" --bucket_root {shlex.quote(args.bucket_root)}"
    print(f"next: python -m pipeline --manifest {shlex.quote(args.out)} --results results/RUN{root}")
    if found.gcs_buckets:
        mapping = json.dumps({bucket: f"gs://{bucket}" for bucket in sorted(found.gcs_buckets)})
        print(
            f"note: the gs:// inputs are named by their GCS bucket; run the pipeline with a --bucket_map "
            f"file that holds {mapping}"
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
