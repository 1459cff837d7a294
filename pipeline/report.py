"""python -m pipeline.report PREFIX --out report.html: one self-contained HTML page of a run.

A summary (jobs by state and code, images and sheets, the slowest inputs, a histogram of the
snapshots per job), then one card per job with its thumbnails, sheets and a scrubbable preview
of its WebVTT track, with filters by state, code and input and a search box. Images are
embedded as small JPEG data URIs (from local or gs:// buckets alike), so the file works
anywhere, offline; past a size budget they are left out, and the page says so.
"""

from __future__ import annotations

import argparse
import base64
import collections
import html
import io
import json
import posixpath
import re
import sys
import urllib.parse
from datetime import datetime

from apache_beam.io.filesystems import FileSystems
from PIL import Image

from pipeline import flags, runs
from pipeline.show import read_results

THUMB_WIDTH = 160
SHEET_WIDTH = 480
MAX_CARDS = 2000
IMAGE_BUDGET = 40 << 20  # bytes of embedded images in one report
_CUE = re.compile(r"(\d+):(\d\d):(\d\d)\.(\d{3}) --> (\d+):(\d\d):(\d\d)\.(\d{3})\n(.+)")


class Embedder:
    """Images as small JPEG data URIs, within a budget of bytes for the whole report."""

    def __init__(self, budget: int = IMAGE_BUDGET):
        self.left, self.skipped = budget, 0

    def uri(self, url: str, width: int) -> tuple[str, float] | None:
        """(data URI, scale) of the picture at `url`, at most `width` wide; None when it cannot be read
        or the budget is spent."""
        if self.left <= 0:
            self.skipped += 1
            return None
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
        self.left -= out.tell()
        return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode(), scale


def _path(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path) if url.startswith("file://") else url


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


def card(record: dict, embed: Embedder) -> str:
    """One job's card."""
    source = json.loads(record["Input"]) if record["Input"] else {}
    name = source.get("Object", "") if isinstance(source, dict) else ""
    state, code = record["State"], record["Code"] or "Success"
    parts = [
        f'<div class="card" data-job-id="{html.escape(record["Id"])}" data-state="{html.escape(state)}" '
        f'data-code="{html.escape(code)}" data-input="{html.escape(str(name))}">',
        f'<h3>{html.escape(record["Source"])} <span class="state {state.lower()}">{html.escape(state)}</span></h3>',
        f'<div class="input">{html.escape(str(name))}</div>',
    ]
    if record["Code"]:
        parts.append(f'<div class="error"><b>{html.escape(record["Code"])}</b> {html.escape(record["Message"])}</div>')
    thumbs = {}
    for snap in record["Snapshots"]:
        if not snap["Url"]:
            continue
        made = embed.uri(snap["Url"], THUMB_WIDTH)
        if made:
            thumbs[snap["Url"]] = made[0]
            parts.append(
                f'<figure><img src="{made[0]}" alt="{html.escape(snap["Object"])}">'
                f"<figcaption>{snap['Time']} ms &rarr; {snap['FrameTime']} ms</figcaption></figure>"
            )
    sheets = {}
    for url in record["Tiles"]:
        made = embed.uri(url, SHEET_WIDTH)
        if made:
            sheets[url] = made
            parts.append(f'<figure class="sheet"><img src="{made[0]}" alt="sprite sheet"></figure>')
    if record["Vtt"]:
        parts.append(_scrubber(cues(record["Vtt"]), thumbs, sheets, embed))
    parts.append("</div>")
    return "\n".join(parts)


def _scrubber(track: list[tuple[float, float, str]], thumbs: dict, sheets: dict, embed: Embedder) -> str:
    """A bar over the video's length; hovering shows the picture of the cue at that time."""
    items = []
    for start, end, target in track:
        url, _, fragment = target.partition("#")
        if fragment.startswith("xywh=") and url in sheets:
            uri, scale = sheets[url]
            x, y, w, h = (round(int(v) * scale) for v in fragment[5:].split(","))
            items.append({"s": start, "e": end, "src": uri, "box": [x, y, w, h]})
        elif url in thumbs:
            items.append({"s": start, "e": end, "src": thumbs[url]})
        elif made := embed.uri(url, THUMB_WIDTH):
            items.append({"s": start, "e": end, "src": made[0]})
    if not items:
        return ""
    data = html.escape(json.dumps(items), quote=True)
    return (
        f'<div class="vtt" data-cues="{data}"><div class="bar"></div><div class="cue"></div>'
        f'<div class="when">hover the bar: the WebVTT track ({len(items)} cues)</div></div>'
    )


def summary(records: list[dict]) -> str:
    states = collections.Counter(r["State"] for r in records)
    codes = collections.Counter(r["Code"] for r in records if r["Code"])
    images, sheets = sum(r["Count"] for r in records), sum(r["TileCount"] for r in records)
    slowest: dict[str, float] = collections.defaultdict(float)
    for record in records:
        try:
            seconds = (
                datetime.fromisoformat(record["FinishTime"].rstrip("Z"))
                - datetime.fromisoformat(record["CreationTime"].rstrip("Z"))
            ).total_seconds()
            source = json.loads(record["Input"] or "{}")
            name = source.get("Object", "?") if isinstance(source, dict) else "?"
        except (ValueError, AttributeError):
            continue
        slowest[name] = max(slowest[name], seconds)
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{v}</td></tr>" for k, v in states.most_common())
    rows += "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in codes.most_common())
    slow = "".join(
        f"<li>{html.escape(str(name))}: {seconds:.0f} s</li>"
        for name, seconds in sorted(slowest.items(), key=lambda kv: -kv[1])[:5]
    )
    return (
        f'<section class="summary"><h2>{len(records)} jobs</h2><table>{rows}</table>'
        f"<p>{images} images and {sheets} sprite sheets written.</p>"
        f"<h3>Slowest inputs (creation to finish)</h3><ol>{slow}</ol>"
        f"<h3>Snapshots per job</h3>{histogram([r['Count'] for r in records])}</section>"
    )


def histogram(values: list[int], bins: int = 10) -> str:
    """An inline SVG histogram."""
    if not values:
        return ""
    top = max(values) or 1
    counts = collections.Counter(min(bins - 1, v * bins // (top + 1)) for v in values)
    most = max(counts.values())
    bars = "".join(
        f'<rect x="{i * 30}" y="{100 - 100 * counts[i] // most}" width="26" '
        f'height="{100 * counts[i] // most}"><title>{i * (top + 1) // bins}-'
        f"{(i + 1) * (top + 1) // bins - 1}: {counts[i]} jobs</title></rect>"
        for i in range(bins)
    )
    return f'<svg class="chart" width="{bins * 30}" height="100" role="img">{bars}</svg>'


def page(records: list[dict], title: str, max_cards: int = MAX_CARDS) -> str:
    embed = Embedder()
    shown = records[:max_cards]
    cards = "\n".join(card(r, embed) for r in shown)
    options = {
        key: sorted({r[key] or "Success" if key == "Code" else r[key] for r in records}) for key in ("State", "Code")
    }
    note = (
        f"<p class=note>Showing the first {len(shown)} of {len(records)} jobs.</p>" if len(shown) < len(records) else ""
    )
    if embed.skipped:
        note += f"<p class=note>{embed.skipped} pictures were left out to keep the file small.</p>"
    select = "".join(
        f'<select id="{key.lower()}"><option value="">any {key.lower()}</option>'
        + "".join(f"<option>{html.escape(v)}</option>" for v in values)
        + "</select>"
        for key, values in options.items()
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{summary(records)}{note}
<div class="filters">{select}<input id="search" type="search" placeholder="search line, input, message"></div>
<main id="cards">{cards}</main><pre id="selftest"></pre><script>{SCRIPT}</script></body></html>"""


CSS = """body{font:14px system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
.summary table td{padding:0 .8em 0 0}.chart rect{fill:#4a7bd0}.filters{margin:1em 0;display:flex;gap:.5em}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em .9em;margin:.6em 0}
.card h3{margin:.1em 0;font-size:15px}.state{font-size:12px;padding:1px 6px;border-radius:8px;color:#fff}
.state.success{background:#2e8b57}.state.fail{background:#c0392b}.input{color:#666;font-size:12px}
.error{color:#c0392b;margin:.3em 0}figure{display:inline-block;margin:.3em;text-align:center}
figcaption{font-size:11px;color:#555}.vtt{margin:.5em 0}.vtt .bar{height:14px;background:#dde4f0;cursor:crosshair}
.vtt .cue{min-height:10px;margin-top:4px}.vtt .when{font-size:11px;color:#555}.note{color:#a66}"""

SCRIPT = r"""
const cards=[...document.querySelectorAll('.card')];
function apply(){const s=document.getElementById('state').value,c=document.getElementById('code').value,
q=document.getElementById('search').value.toLowerCase();
for(const k of cards){const ok=(!s||k.dataset.state===s)&&(!c||k.dataset.code===c)
&&(!q||k.textContent.toLowerCase().includes(q));
k.style.display=ok?'':'none';}}
for(const id of ['state','code','search'])document.getElementById(id).addEventListener('input',apply);
for(const v of document.querySelectorAll('.vtt')){const list=JSON.parse(v.dataset.cues),bar=v.querySelector('.bar'),
box=v.querySelector('.cue'),when=v.querySelector('.when'),end=list[list.length-1].e;
bar.addEventListener('mousemove',e=>{const t=end*(e.offsetX/bar.clientWidth),
q=list.find(x=>t>=x.s&&t<x.e)||list[list.length-1];
when.textContent=t.toFixed(1)+' s';if(q.box){const[x,y,w,h]=q.box;
box.innerHTML='<div style="width:'+w+'px;height:'+h+'px;background:url('+q.src+') -'+x+'px -'+y+'px"></div>';}
else box.innerHTML='<img src="'+q.src+'">';});}
if(location.hash==='#selftest')addEventListener('load',()=>{const imgs=[...document.images],
loaded=imgs.filter(i=>i.complete&&i.naturalWidth>0).length;
document.getElementById('state').value='Success';apply();
const failedShown=cards.filter(k=>k.dataset.state!=='Success'&&k.style.display!=='none').length;
document.getElementById('selftest').textContent=JSON.stringify({cards:cards.length,images:imgs.length,loaded,failedShown});});
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.report", description=__doc__.splitlines()[0])
    parser.add_argument("prefix", help="the results prefix of a run")
    parser.add_argument("--out", default="report.html", help="the HTML file to write (default: report.html)")
    parser.add_argument("--max_cards", type=int, default=MAX_CARDS, help=f"cards at most (default: {MAX_CARDS})")
    args = parser.parse_args(flags.canonical(sys.argv[1:] if argv is None else argv))
    try:
        records = read_results(args.prefix)
    except runs.Committing as error:
        print(f"error: {error}; try again once it is done", file=sys.stderr)
        return 1
    if not records:
        print(f"error: no results match {args.prefix}", file=sys.stderr)
        return 2
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(page(records, f"Snapshots: {posixpath.basename(args.prefix)}", args.max_cards))
    print(f"{len(records)} jobs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
