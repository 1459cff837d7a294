"""python -m pipeline.report RESULTS... --out report.html: one self-contained HTML page of a run.

A summary (jobs by state and code, images and sheets, the slowest jobs, a histogram of the
snapshots per job), then one card per job with its first thumbnails, its sheets, a scrubbable
preview of its WebVTT track and a contact sheet of all its images, with filters by state and
code and a search box. Each picture is embedded once, as a small JPEG data URI, within a
budget that the page states; every thumbnail links to its full-size image (a path relative to
the report for local buckets). The page is rendered by Jinja2, which escapes every value.
"""

from __future__ import annotations

import argparse
import base64
import collections
import io
import os
import posixpath
import re
import sys
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime

import jinja2
from apache_beam.io.filesystems import FileSystems
from PIL import Image

from pipeline import flags, show
from pipeline.show import input_name, warnings_of

THUMB_WIDTH = 160
SHEET_WIDTH = 480
CARD_THUMBS = 6  # thumbnails on a card; the contact sheet shows them all
MAX_CARDS = 10_000
IMAGE_BUDGET_MB = 6.0  # of embedded pictures, as written into the page
SLOWEST = 5
_CUE = re.compile(r"(\d+):(\d\d):(\d\d)\.(\d{3}) --> (\d+):(\d\d):(\d\d)\.(\d{3})\n(.+)")
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("pipeline", "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
)


@dataclass
class Pictures:
    """Small JPEG data URIs, one per picture URL however often it is shown, within `budget`
    bytes of the page."""

    budget: int
    used: int = 0
    wanted: set = field(default_factory=set)
    ids: dict = field(default_factory=dict)  # url -> (id, scale)
    data: dict = field(default_factory=dict)  # id -> data URI

    def add(self, url: str, width: int) -> None:
        """Embed the picture at `url` at most `width` wide, if it is readable and fits the budget."""
        if url in self.wanted:
            return
        self.wanted.add(url)
        if self.budget - self.used < 1000:
            return
        made = small_jpeg(url, width)
        if made and len(made[0]) <= self.budget - self.used:
            self.used += len(made[0])
            self.ids[url] = (f"p{len(self.data)}", made[1])
            self.data[f"p{len(self.data)}"] = made[0]

    def id(self, url: str) -> str | None:
        return self.ids[url][0] if url in self.ids else None


def small_jpeg(url: str, width: int) -> tuple[str, float] | None:
    """(data URI, scale) of the picture at `url` at most `width` wide; None if it cannot be read."""
    try:
        with FileSystems.open(_path(url)) as stream, Image.open(io.BytesIO(stream.read())) as picture:
            scale = min(1.0, width / picture.width)
            small = picture.convert("RGB").resize(
                (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
            )
    except Exception:  # noqa: BLE001 - a missing or damaged picture is shown as missing
        return None
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode(), scale


def _path(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path) if url.startswith("file://") else url


def link(url: str, here: str) -> str:
    """Where a browser finds the full-size object: a path relative to the report's folder for a
    local one, the public storage URL for gs://."""
    if url.startswith("file://"):
        return urllib.parse.quote(os.path.relpath(_path(url), os.path.abspath(here)).replace(os.sep, "/"))
    if url.startswith("gs://"):
        return "https://storage.googleapis.com/" + urllib.parse.quote(url[len("gs://") :])
    return url


def cues(vtt_url: str) -> list[tuple[float, float, str]]:
    """(start s, end s, target URL) of each cue of a WebVTT track."""
    try:
        with FileSystems.open(_path(vtt_url)) as stream:
            text = stream.read().decode("utf-8")
    except Exception:  # noqa: BLE001 - a missing track has no preview
        return []
    found = []
    for match in _CUE.finditer(text):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups()[:8])
        found.append(
            (
                h1 * 3600 + m1 * 60 + s1 + ms1 / 1000,
                h2 * 3600 + m2 * 60 + s2 + ms2 / 1000,
                urllib.parse.urljoin(vtt_url, match.group(9).strip()),
            )
        )
    return found


def card(record: dict, here: str) -> dict:
    """What one job's card shows, with its pictures as URLs (embedded later, or linked)."""
    snaps = [s for s in record["Snapshots"] if s["Url"]]
    return {
        "record": record,
        "input": input_name(record),
        "code": record["Code"] or "Success",
        "warnings": warnings_of(record),
        "thumbs": [
            {
                "url": s["Url"],
                "href": link(s["Url"], here),
                "name": s["Object"],
                "time": s["Time"],
                "at": s["FrameTime"],
            }
            for s in snaps
        ],
        "sheets": [{"url": url, "href": link(url, here)} for url in record["Tiles"]],
        "track": cues(record["Vtt"]) if record["Vtt"] else [],
    }


def embed(cards: list[dict], pictures: Pictures) -> None:
    """The first thumbnail of every card first, then the other thumbnails and sheets, until the
    budget is spent."""
    for each in cards:
        for thumb in each["thumbs"][:1]:
            pictures.add(thumb["url"], THUMB_WIDTH)
    for each in cards:
        for thumb in each["thumbs"][1:CARD_THUMBS]:
            pictures.add(thumb["url"], THUMB_WIDTH)
        for sheet in each["sheets"]:
            pictures.add(sheet["url"], SHEET_WIDTH)


def scrubber(track: list[tuple[float, float, str]], pictures: Pictures, here: str) -> list[dict]:
    """The cues of a track: the embedded picture (and the cell of a sheet) or the full image's link."""
    items = []
    for start, end, target in track:
        url, _, fragment = target.partition("#")
        item: dict = {"s": start, "e": end}
        scale = 1.0
        if pictures.id(url):
            item["p"], scale = pictures.ids[url]
        else:
            item["href"] = link(url, here)
        if fragment.startswith("xywh="):
            item["box"] = [round(int(v) * scale) for v in fragment[5:].split(",")]
        items.append(item)
    return items


def job_seconds(record: dict) -> float | None:
    """The job's own time from creation to finish."""
    try:
        return (
            datetime.fromisoformat(record["FinishTime"].rstrip("Z"))
            - datetime.fromisoformat(record["CreationTime"].rstrip("Z"))
        ).total_seconds()
    except (ValueError, AttributeError, KeyError):
        return None


def slowest(records: list[dict], top: int = SLOWEST) -> list[tuple[str, str, float]] | None:
    """(input, line, seconds) of the slowest jobs, ties with the most images first (the times
    are whole seconds); None when every job has the same times (results that do not record
    each job's own), which tell nothing."""
    timed = [(r, s) for r in records if (s := job_seconds(r)) is not None]
    if len(timed) > 1 and len({(r["CreationTime"], r["FinishTime"]) for r in records}) == 1:
        return None
    ordered = sorted(timed, key=lambda t: (-t[1], -t[0]["Count"]))[:top]
    return [(input_name(r) or "?", r["Source"], s) for r, s in ordered]


def step(low: int, high: int, most: int) -> int:
    """The bin width for whole numbers from `low` to `high` in at most `most` bins: 1, or the
    least round width (1, 2 or 5 x 10^k) whose bins start at multiples of it."""
    width = 1
    while high // width - low // width + 1 > most:
        width = width * 5 // 2 if str(width)[0] == "2" else width * 2
    return width


def bins(values: list[int], most: int = 10) -> list[tuple[int, int, int]]:
    """(first, last, jobs) of each bin of a histogram of whole numbers: one bin per value when
    there are at most `most` values from the smallest to the largest, else at most `most` bins
    of a round width, from a multiple of it."""
    if not values:
        return []
    width = step(min(values), max(values), most)
    counts = collections.Counter(v // width for v in values)
    return [(k * width, (k + 1) * width - 1, counts[k]) for k in range(min(values) // width, max(values) // width + 1)]


def pitch(found: list[tuple[int, int, int]]) -> int:
    """Pixels from one bar of the histogram to the next: room for the widest label under it (a
    value, or the edge between two bins), at most 7 px a digit, so that no two labels meet."""
    return max(40, 7 * max(len(str(last + 1)) for _, last, _ in found) + 10) if found else 40


def page(
    records: list[dict],
    title: str,
    max_cards: int = MAX_CARDS,
    here: str = ".",
    budget_mb: float = IMAGE_BUDGET_MB,
) -> str:
    """The report of `records`, to be written in the folder `here`."""
    shown = records[:max_cards]
    cards = [card(r, here) for r in shown]
    pictures = Pictures(round(budget_mb * (1 << 20)))
    embed(cards, pictures)
    for each in cards:
        each["cues"] = scrubber(each["track"], pictures, here)
    return _TEMPLATES.get_template("report.html.j2").render(
        title=title,
        records=records,
        cards=cards,
        pictures=pictures,
        card_thumbs=CARD_THUMBS,
        states=collections.Counter(r["State"] for r in records).most_common(),
        codes=collections.Counter(r["Code"] for r in records if r["Code"]).most_common(),
        images=sum(r["Count"] for r in records),
        sheets=sum(r["TileCount"] for r in records),
        slowest=(listed := slowest(records)),
        tied=listed is not None and len(listed) > 1 and len({seconds for _, _, seconds in listed}) == 1,
        bins=(found := bins([r["Count"] for r in records])),
        pitch=pitch(found),
        options={
            "state": sorted({c["record"]["State"] for c in cards}),
            "code": sorted({c["code"] for c in cards}),
        },
        budget_mb=budget_mb,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.report", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", metavar="RESULTS", help=show.RESULTS_HELP)
    parser.add_argument(
        "--out",
        default="report.html",
        help="the HTML file to write; its folder is made if missing (default: %(default)s)",
    )
    parser.add_argument(
        "--max_cards",
        type=int,
        default=MAX_CARDS,
        help="job cards at most, the first in manifest order (default: %(default)s)",
    )
    parser.add_argument(
        "--image_budget_mb",
        type=float,
        default=IMAGE_BUDGET_MB,
        help="MB of embedded pictures at most; the others are linked (default: %(default)s)",
    )
    args = parser.parse_args(flags.canonical(sys.argv[1:] if argv is None else argv))
    records, status = show.read_arguments(args.results)
    if status:
        return status
    folder = os.path.dirname(os.path.abspath(args.out))
    title = f"Snapshots: {' '.join(posixpath.basename(name) for name in args.results)}"
    text = page(records, title, args.max_cards, folder, args.image_budget_mb)
    try:
        os.makedirs(folder, exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as error:
        print(f"error: cannot write {args.out}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(f"{len(records)} jobs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
