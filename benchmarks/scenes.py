"""Shots and best frames: `FrameType: scene` against PySceneDetect and ffmpeg's scene score,
and `FrameType: best` against ffmpeg's `thumbnail` filter, on videos made of known shots.

    .venv/bin/python benchmarks/scenes.py [--quick] [--runs 3] [--workdir /tmp/snapshot-scenes]

1. Accuracy. Five H.264 files of known shots (25, 30 and 29.97 fps; 640x360 and 1280x720;
   38 to 63 s) are made once in the workdir: distinct sources (textures, colours, moving
   patterns) joined by hard cuts, fades through black and dissolves, and long shots whose
   content moves (a zoom, moving objects, a cellular automaton, a plasma, a fast pan) that
   must make no boundary. Each detector's boundaries are scored against the truth: a
   boundary matches a hard cut within 2 frames, a gradual transition anywhere in its span
   (2 frames of slack at each end); each truth matches at most once.
   - ours: `python -m pipeline`, one `FrameType: scene` job per file, boundaries from the
     `ShotStart` of each snapshot;
   - PySceneDetect with its defaults, `scenedetect -i FILE detect-content list-scenes`, in a
     venv of its own made once (~/.cache/snapshot-pipeline/scenedetect-venv);
   - ffmpeg's `select='gt(scene,0.4)'`.
2. Speed. A 2-minute 1280x720 30 fps H.264 video (GOP 2 s, 2 B-frames) made once; the whole
   command of each, alternated, best of `--runs`: a `scene` job, PySceneDetect, ffmpeg's
   select; a `best` poster at 60 s and ffmpeg's `thumbnail` over the same 2 s.
3. Best frames. A clip whose points have black, faded, blurred and flashed frames around them:
   which frame `best` and ffmpeg's `thumbnail` (over the same window) pick, and whether it is
   clear (judged with snapshot/best.py's measures).

--quick times one round and leaves out the 2-minute file's accuracy row.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import pipeline_command as the_command  # noqa: E402
from benchmarks.common import require_ffmpeg  # noqa: E402
from pipeline.show import read_results  # noqa: E402
from snapshot import best, synth  # noqa: E402
from snapshot.spec import BlackFilter  # noqa: E402

GENERATION = "v2"  # bump when the videos change: the workdir keeps them
SCENEDETECT_VENV = os.path.expanduser("~/.cache/snapshot-pipeline/scenedetect-venv")
SCENEDETECT_PACKAGE = "scenedetect-headless==0.7.2"  # PySceneDetect with OpenCV's headless build
CUT_SLACK = 2  # frames
REFERENCE_WIDTH = 640  # sources are drawn in pixels of a 640-wide picture, then scaled

# ---------------------------------------------------------------------------------------------
# Sources: each a picture (float RGB, height x width x 3) at a frame of its own shot


class Sources:
    """The pictures of every source at one size."""

    def __init__(self, width: int, height: int, seed: int = 7) -> None:
        self.width, self.height = width, height
        scale = REFERENCE_WIDTH / width
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        self.u, self.v = x * scale, y * scale  # reference pixels
        rng = np.random.default_rng(seed)
        self.texture = _value_noise(rng, 2 * width, 2 * height)
        self.canvas = _blocks_canvas(rng, 4 * width, height)
        self.clouds = _value_noise(rng, 2 * width, height, octaves=2)
        self.grain = [rng.integers(-3, 4, (height, width, 1)).astype(np.float32) for _ in range(4)]
        self.life: dict[int, list[np.ndarray]] = {}
        self.shot = 0

    def picture(self, name: str, t: int, shot: int) -> np.ndarray:
        """Source `name` at frame `t` of a shot; each shot (numbered) of a source is another take."""
        self.shot = shot
        return getattr(self, name)(t + 157 * shot)

    def checker(self, t: int) -> np.ndarray:
        on = ((self.u + 2 * t) // 40 + self.v // 40) % 2 == 1
        shade = (0.8 + 0.2 * self.v / 360)[..., None]
        return np.where(on[..., None], [230, 140, 40], [20, 40, 110]) * shade

    def stripes(self, t: int) -> np.ndarray:
        on = ((self.u + self.v - 3 * t) // 24) % 2 == 1
        return np.where(on[..., None], [40, 200, 90], [180, 40, 160]).astype(np.float32)

    def zoom(self, t: int) -> np.ndarray:
        """A slow zoom (4x in 8 s at 30 fps) into a mottled texture."""
        factor = 1.006 ** (t - 157 * self.shot)
        rows = ((self.v / REFERENCE_WIDTH * self.width - self.height / 2) / factor + self.height).astype(int)
        columns = ((self.u / REFERENCE_WIDTH * self.width - self.width / 2) / factor + self.width).astype(int)
        level = self.texture[rows, columns][..., None]
        return level * np.array([0.55, 0.75, 0.35]) * 255 + np.array([40, 30, 10]) * (1 - level[..., :1])

    def ball(self, t: int) -> np.ndarray:
        """A yellow disc and a red square moving over a dark gradient."""
        picture = np.zeros((self.height, self.width, 3), np.float32) + (self.v / 360)[..., None] * [60, 20, 90]
        cx, cy = 320 + 230 * np.sin(0.05 * t), 180 + 110 * np.sin(0.083 * t)
        disc = (self.u - cx) ** 2 + (self.v - cy) ** 2 < 70**2
        picture[disc] = [250, 220, 60]
        sx, sy = (37 + 7 * t) % 1100, 40 + (3 * t) % 200
        square = (np.abs(self.u - (sx if sx < 560 else 1100 - sx) - 40) < 40) & (np.abs(self.v - sy - 40) < 40)
        picture[square] = [210, 30, 40]
        return picture

    def cells(self, t: int) -> np.ndarray:
        """Conway's life on a 64 x 36 torus, a step a frame, from random cells for each shot,
        shown from the 30th step (the first steps change half the cells)."""
        steps = self.life.setdefault(self.shot, [np.random.default_rng(self.shot).random((36, 64)) < 0.35])
        t += LIFE_START - 157 * self.shot
        while len(steps) <= t:
            steps.append(_life_step(steps[-1]))
        alive = steps[t][(self.v // 10).astype(int) % 36, (self.u // 10).astype(int) % 64]
        return np.where(alive[..., None], [120, 230, 140], [25, 30, 35]).astype(np.float32)

    def plasma(self, t: int) -> np.ndarray:
        u, v = self.u, self.v
        r = np.sqrt((u - 320) ** 2 + (v - 180) ** 2)
        wave = np.sin(u / 37 + 0.07 * t) + np.sin(v / 23 - 0.05 * t) + np.sin((u + v) / 53 + 0.04 * t)
        level = (wave + np.sin(r / 29 - 0.09 * t)) * np.pi / 4
        return 128 + 100 * np.stack([np.sin(level), np.sin(level + 2), np.sin(level + 4)], axis=-1)

    def blocks(self, t: int) -> np.ndarray:
        """A slow pan over coloured blocks."""
        return self._pan(t, 1.5)

    def fast_pan(self, t: int) -> np.ndarray:
        """The same blocks, panned fast (12 px a frame at 640 wide)."""
        return self._pan(t + 500, 12)

    def sky(self, t: int) -> np.ndarray:
        """A warm gradient with soft clouds drifting."""
        column = (np.arange(self.width) + int(t * self.width / 640)) % self.clouds.shape[1]
        clouds = self.clouds[:, column][..., None]
        gradient = (self.v / 360)[..., None]
        return (1 - gradient) * [250, 200, 120] + gradient * [200, 90, 60] + 50 * clouds

    def _pan(self, t: int, speed: float) -> np.ndarray:
        """Along the canvas and back: a camera that turns, not a jump."""
        room = self.canvas.shape[1] - self.width
        start = int(t * speed * self.width / REFERENCE_WIDTH) % (2 * room)
        start = min(start, 2 * room - start)
        return self.canvas[:, start : start + self.width].astype(np.float32)


LIFE_START = 30
SOURCES = ["checker", "stripes", "zoom", "ball", "cells", "plasma", "blocks", "fast_pan", "sky"]


def _value_noise(rng: np.random.Generator, width: int, height: int, octaves: int = 4) -> np.ndarray:
    """Smooth noise in [0, 1] (height x width): octaves of random grids scaled up."""
    total = np.zeros((height, width), np.float32)
    for octave in range(octaves):
        cells = rng.random((3 * 2**octave, 5 * 2**octave)).astype(np.float32)
        layer = Image.fromarray(cells, mode="F").resize((width, height), Image.Resampling.BICUBIC)
        total += np.asarray(layer) / 2**octave
    return (total - total.min()) / (total.max() - total.min())


def _blocks_canvas(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A wide picture of coloured rectangles over a fine texture (height x width x 3, uint8)."""
    canvas = Image.new("RGB", (width, height), (90, 80, 70))
    draw = ImageDraw.Draw(canvas)
    for _ in range(width // 12):
        x, y = int(rng.integers(0, width)), int(rng.integers(-height // 4, height))
        w, h = (int(n) for n in rng.integers(height // 12, height // 3, 2))
        draw.rectangle((x, y, x + w, y + h), fill=tuple(int(c) for c in rng.integers(20, 240, 3)))
    pixels = np.asarray(canvas).astype(np.int16)
    y, x = np.mgrid[0:height, 0:width]
    return np.clip(pixels + 12 * (((x // 3 + y // 3) % 2) * 2 - 1)[..., None], 0, 255).astype(np.uint8)


def _life_step(alive: np.ndarray) -> np.ndarray:
    neighbours = sum(np.roll(np.roll(alive, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) - alive
    return (neighbours == 3) | (alive & (neighbours == 2))


# ---------------------------------------------------------------------------------------------
# Timelines: shots joined by transitions, and the truth they make


@dataclass(frozen=True)
class Transition:
    kind: str  # cut, fade (through black), dissolve
    out_s: float = 0.0  # fade: fading out; dissolve: its length
    in_s: float = 0.0  # fade: fading in
    black: int = 0  # fade: black frames between


CUT = Transition("cut")


@dataclass(frozen=True)
class Segment:
    source: str
    start: int  # first frame in the file
    end: int  # past its last frame
    shot: int  # its number
    ramp_in: int = 0  # frames at its start that fade in, or its share of a dissolve rises
    ramp_out: int = 0  # frames at its end that fade out, or its share of a dissolve falls


@dataclass(frozen=True)
class Truth:
    kind: str
    first: int  # a cut: the first frame of the new shot; a transition: its first mixed frame
    last: int  # a transition: its last mixed frame


@dataclass(frozen=True)
class Layout:
    fps: Fraction
    frames: int
    segments: tuple[Segment, ...]
    truths: tuple[Truth, ...]


def lay_out(plan: list, fps: Fraction) -> Layout:
    """Frames of a plan [("source", seconds), Transition, ("source", seconds), ...]; a shot's
    seconds include its fades and the dissolves it shares with its neighbours."""
    segments: list[Segment] = []
    truths: list[Truth] = []
    start, ramp_in = 0, 0
    for position in range(0, len(plan), 2):
        source, seconds = plan[position]
        end = start + round(seconds * fps)
        following = plan[position + 1] if position + 1 < len(plan) else CUT
        ramp_out = round(following.out_s * fps)
        segments.append(Segment(source, start, end, position // 2, ramp_in, ramp_out))
        if position + 1 == len(plan):
            break
        if following.kind == "cut":
            truths.append(Truth("cut", end, end))
            start, ramp_in = end, 0
        elif following.kind == "fade":
            start, ramp_in = end + following.black, round(following.in_s * fps)
            truths.append(Truth("fade", end - ramp_out, start + ramp_in - 1))
        else:
            start, ramp_in = end - ramp_out, ramp_out
            truths.append(Truth("dissolve", start, end - 1))
    return Layout(fps, segments[-1].end, tuple(segments), tuple(truths))


def random_plan(seed: int, seconds: float) -> list:
    """Shots of 2.5 to 6 s of random sources, half joined by cuts, a quarter by fades, a
    quarter by dissolves."""
    rng = np.random.default_rng(seed)
    plan: list = []
    total, previous = 0.0, ""
    while total < seconds:
        source = str(rng.choice([s for s in SOURCES if s != previous]))
        length = float(np.round(rng.uniform(2.5, 6.0), 1))
        if plan:
            draw = rng.random()
            if draw < 0.5:
                plan.append(CUT)
            elif draw < 0.75:
                plan.append(Transition("fade", float(rng.choice([0.3, 0.5, 0.8])), float(rng.choice([0.3, 0.5])), 2))
            else:
                plan.append(Transition("dissolve", float(rng.choice([0.5, 1.0, 1.5]))))
                total -= plan[-1].out_s  # the shots overlap
        plan.append((source, length))
        total, previous = total + length, source
    return plan


def pictures(layout: Layout, sources: Sources) -> Iterator[np.ndarray]:
    """Every frame of a layout, in order."""
    for index in range(layout.frames):
        total = np.zeros((sources.height, sources.width, 3), np.float32)
        for segment in layout.segments:
            if segment.start <= index < segment.end:
                shown = sources.picture(segment.source, index - segment.start, segment.shot)
                total += _weight(segment, index) * shown
        total += sources.grain[index % len(sources.grain)]
        yield np.clip(total, 0, 255).astype(np.uint8)


def _weight(segment: Segment, index: int) -> float:
    """How much of a segment a frame shows: in a dissolve, the shares of the two segments add
    up to 1 (the incoming one's start is the outgoing one's end minus the same ramp)."""
    into, left = index - segment.start, segment.end - index
    weight = (into + 1) / (segment.ramp_in + 1) if into < segment.ramp_in else 1.0
    return weight * left / (segment.ramp_out + 1) if left <= segment.ramp_out else weight


@dataclass(frozen=True)
class TestFile:
    name: str
    size: tuple[int, int]
    fps: Fraction
    plan: list = field(hash=False)
    options: dict = field(hash=False, default_factory=dict)

    @property
    def layout(self) -> Layout:
        return lay_out(self.plan, self.fps)


F25, F30, F2997 = Fraction(25), Fraction(30), Fraction(30000, 1001)
ENCODE = {"preset": "fast", "crf": "20", "bf": "2"}
FILES = [
    TestFile(
        "cuts",
        (640, 360),
        F25,
        [
            *[("checker", 3.0), CUT, ("stripes", 2.5), CUT, ("ball", 4.0), CUT, ("sky", 3.0), CUT],
            *[("cells", 3.5), CUT, ("blocks", 3.0), CUT, ("plasma", 4.0), CUT, ("zoom", 3.0), CUT],
            *[("fast_pan", 3.0), CUT, ("checker", 2.0), CUT, ("ball", 2.5), CUT, ("stripes", 3.0), CUT],
            ("sky", 3.5),
        ],
    ),
    TestFile(
        "fades",
        (640, 360),
        F30,
        [
            *[("blocks", 4.0), Transition("fade", 0.5, 0.5, 3), ("ball", 4.0), CUT, ("plasma", 3.0)],
            *[Transition("fade", 1.0, 1.0), ("checker", 4.5), Transition("fade", 0.3, 0.3, 2), ("cells", 4.0)],
            *[Transition("fade", 0.7, 0.4, 5), ("sky", 4.0), CUT, ("zoom", 3.5), Transition("fade", 0.5, 0.5, 0)],
            *[("stripes", 4.0), Transition("fade", 1.5, 1.0, 8), ("fast_pan", 5.0), Transition("fade", 0.5, 0.5, 3)],
            ("blocks", 4.0),
        ],
    ),
    TestFile(
        "dissolves",
        (1280, 720),
        F2997,
        [
            *[("sky", 4.0), Transition("dissolve", 0.5), ("checker", 4.0), Transition("dissolve", 1.0)],
            *[("plasma", 5.0), Transition("dissolve", 1.5), ("blocks", 5.0), CUT, ("ball", 4.0)],
            *[Transition("dissolve", 2.0), ("zoom", 6.0), Transition("dissolve", 1.0), ("stripes", 4.0)],
            *[Transition("dissolve", 0.5), ("cells", 4.0), Transition("dissolve", 1.0), ("fast_pan", 5.0)],
            *[CUT, ("sky", 4.0)],
        ],
    ),
    TestFile(
        "motion",
        (640, 360),
        F30,
        [
            *[("zoom", 8.0), CUT, ("ball", 8.0), CUT, ("cells", 8.0), CUT, ("plasma", 8.0), CUT],
            *[("fast_pan", 8.0), CUT, ("blocks", 7.0)],
        ],
    ),
    TestFile("mixed", (640, 360), F2997, random_plan(11, 60)),
]
SPEED_FILE = TestFile("long720", (1280, 720), F30, random_plan(23, 120), {"g": "60"})


def make_video(test: TestFile, path: str) -> None:
    """The file of a test, once: generation is slow, so it stays in the workdir."""
    if os.path.exists(path):
        return
    print(f"making {os.path.basename(path)} ({test.layout.frames} frames) ...", flush=True)
    sources = Sources(*test.size)
    options = {"g": str(round(2 * test.fps)), **ENCODE, **test.options}
    synth.write_pictures(path + ".part.mp4", pictures(test.layout, sources), fps=test.fps, options=options)
    os.replace(path + ".part.mp4", path)


# ---------------------------------------------------------------------------------------------
# The detectors: each gives the first frame of every shot but the first


def request(name: str, output: str, **config) -> str:
    """A manifest line: video `name` of bucket `in`, images to bucket `out`."""
    output_file = {"Bucket": "out", "Location": "local", "Object": output}
    config = {"OutputFile": output_file, **config}
    if "TimeArray" not in config:
        config.setdefault("Time", 0)
    return json.dumps({"Input": {"Bucket": "in", "Location": "local", "Object": name}, "SnapshotConfig": config})


def pipeline_command(workdir: str, lines: list[str], label: str) -> tuple[list[str], str]:
    """The whole command on a manifest of `lines`, and its results prefix (new each run)."""
    manifest = os.path.join(workdir, f"{label}.jsonl")
    with open(manifest, "w") as out:
        out.write("".join(line + "\n" for line in lines))
    results = os.path.join(fresh(os.path.join(workdir, "results", label)), "results")
    root = os.path.join(workdir, "buckets")
    return the_command(manifest, results, root), results


def our_records(results: str) -> dict[str, dict]:
    """The result records of a run by input object; each must have succeeded."""
    found = {}
    for record in read_results(results):
        if record["State"] != "Success":
            sys.exit(f"the pipeline failed a job: {record['Code']} {record['Message']}")
        found[json.loads(record["Input"])["Object"]] = record
    return found


def our_boundaries(record: dict, fps: Fraction) -> list[int]:
    return [round(s["ShotStart"] * fps / 1000) for s in record["Snapshots"][1:]]


def scenedetect_bin() -> str:
    """PySceneDetect's command, in a venv of its own made the first time."""
    command = os.path.join(SCENEDETECT_VENV, "bin", "scenedetect")
    if not os.path.exists(command):
        print(f"installing {SCENEDETECT_PACKAGE} in {SCENEDETECT_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", SCENEDETECT_VENV], check=True)
        pip = os.path.join(SCENEDETECT_VENV, "bin", "pip")
        subprocess.run([pip, "install", "-q", SCENEDETECT_PACKAGE], check=True)
    return command


def scenedetect_command(video: str, out_dir: str) -> list[str]:
    """Its defaults: `scenedetect -i FILE detect-content list-scenes`, the CSV to `out_dir`."""
    return [scenedetect_bin(), "-i", video, "-o", out_dir, "detect-content", "list-scenes", "-f", "scenes.csv"]


def scenedetect_boundaries(out_dir: str, fps: Fraction) -> list[int]:
    """The start frame of each scene after the first, from the CSV (after its cut-list row)."""
    with open(os.path.join(out_dir, "scenes.csv"), newline="") as listing:
        rows = list(csv.reader(listing))
    header = next(n for n, row in enumerate(rows) if row and row[0] == "Scene Number")
    seconds = rows[header].index("Start Time (seconds)")
    return [round(float(row[seconds]) * fps) for row in rows[header + 2 :] if row]


def select_command(video: str, out_dir: str) -> list[str]:
    """ffmpeg's scene score: a JPG per frame that scores over 0.4, each one logged."""
    select = "select='gt(scene,0.4)',showinfo"
    pattern = os.path.join(out_dir, "%04d.jpg")
    return ["ffmpeg", "-hide_banner", "-nostats", "-y", "-i", video, "-vf", select, "-vsync", "vfr", pattern]


def select_boundaries(stderr: str, fps: Fraction) -> list[int]:
    return [round(float(t) * fps) for t in re.findall(r"Parsed_showinfo.*pts_time:\s*([0-9.]+)", stderr)]


def run(command: list[str], cwd: str = ROOT) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds of a command that must succeed, and its output; CPU_SECONDS gets its CPU time."""
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    CPU_SECONDS.append(_children_cpu() - cpu)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done


CPU_SECONDS: list[float] = []  # user + system seconds of each command run, and of its processes


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fresh(path: str) -> str:
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


# ---------------------------------------------------------------------------------------------
# Scoring


@dataclass
class Score:
    hits: int = 0
    false: list[int] = field(default_factory=list)  # boundaries that match no truth
    missed: list[Truth] = field(default_factory=list)

    def add(self, other: Score) -> None:
        self.hits += other.hits
        self.false += other.false
        self.missed += other.missed

    @property
    def f1(self) -> float:
        found, truths = self.hits + len(self.false), self.hits + len(self.missed)
        precision, recall = self.hits / max(found, 1), self.hits / max(truths, 1)
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    def summary(self) -> str:
        found, truths = self.hits + len(self.false), self.hits + len(self.missed)
        precision, recall = self.hits / max(found, 1), self.hits / max(truths, 1)
        return f"{precision:4.2f} {recall:4.2f} {self.f1:5.3f}"


def fits(truth: Truth, boundary: int) -> bool:
    return truth.first - CUT_SLACK <= boundary <= truth.last + CUT_SLACK


def score(truths: tuple[Truth, ...], boundaries: list[int]) -> Score:
    """Each truth takes the nearest boundary that fits it and no other truth took."""
    left = sorted(boundaries)
    result = Score()
    for truth in truths:
        fitting = [b for b in left if fits(truth, b)]
        if not fitting:
            result.missed.append(truth)
            continue
        left.remove(min(fitting, key=lambda b: abs(b - (truth.first + truth.last) / 2)))
        result.hits += 1
    result.false = left
    return result


def where(layout: Layout, frame: int) -> str:
    """What the file shows at a frame: the sources (and shot numbers) on screen."""
    shown = [f"{s.source}#{s.shot}" for s in layout.segments if s.start <= frame < s.end]
    return "+".join(shown) or "black"


def explain(layout: Layout, result: Score) -> list[str]:
    fps = layout.fps
    lines = []
    for truth in result.missed:
        before, after = where(layout, truth.first - 1), where(layout, truth.last + 1)
        span = f"frames {truth.first}-{truth.last}" if truth.last > truth.first else f"frame {truth.first}"
        lines.append(f"missed {truth.kind} {before} -> {after}, {span} ({float(truth.first / fps):.2f} s)")
    for frame in result.false:
        lines.append(f"false boundary at frame {frame} ({float(frame / fps):.2f} s), inside {where(layout, frame)}")
    return lines


# ---------------------------------------------------------------------------------------------
# Best frames: a clip whose points sit among bad frames

CLIP_FPS, CLIP_SECONDS = 30, 12
JUDGE_WIDTH = best.SCORE_WIDTH


def clip_changes() -> dict[int, str]:
    """Frame index -> what is wrong with it (frames not listed are clean)."""
    changes: dict[int, str] = {}
    changes.update(dict.fromkeys(range(0, 12), "black"))  # the start: black, then a fade in
    changes.update({i: f"fade*{(i - 11) / 11:.2f}" for i in range(12, 22)})
    changes.update({i: f"fade*{(60 - i) / 16:.2f}" for i in range(45, 60)})  # 2 s: through black
    changes.update(dict.fromkeys(range(60, 63), "black"))
    changes.update({i: f"fade*{(i - 62) / 16:.2f}" for i in range(63, 78)})
    changes.update(dict.fromkeys(range(160, 201), "blur"))  # 6 s: a shaken camera and a flash
    changes.update(dict.fromkeys(range(178, 182), "white"))
    changes.update({i: f"bright+{(i - 284) * 12}" for i in range(285, 300)})  # 10 s: through white
    changes.update(dict.fromkeys(range(300, 304), "white"))
    changes.update({i: f"bright+{(316 - i) * 12}" for i in range(304, 316)})
    return changes


CLIP_POINTS_MS = {0: "black start", 2000: "fade through black", 6000: "shake and flash", 10000: "fade through white"}


def clip_edit(changes: dict[int, str]) -> Callable[[int, Image.Image], Image.Image]:
    def edit(index: int, picture: Image.Image) -> Image.Image:
        pixels = np.asarray(picture).astype(np.int16)
        y, x = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]]
        pixels = np.clip(pixels + 50 * (((y // 4 + x // 4) % 2) * 2 - 1)[..., None], 0, 255)  # texture
        change = changes.get(index, "clean")
        if change in ("black", "white"):
            return Image.new("RGB", picture.size, change)
        if change.startswith("fade*"):
            pixels = pixels * float(change[5:])
        elif change.startswith("bright+"):
            pixels = pixels + int(change[7:])
        textured = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        return textured.filter(ImageFilter.GaussianBlur(4)) if change == "blur" else textured

    return edit


def small_luma(image: Image.Image) -> np.ndarray:
    height = round(image.height * JUDGE_WIDTH / image.width)
    return np.asarray(image.convert("L").resize((JUDGE_WIDTH, height), Image.Resampling.BILINEAR)).astype(np.float64)


def decoded_lumas(path: str) -> list[np.ndarray]:
    with av.open(path) as container:
        return [small_luma(frame.to_image()) for frame in container.decode(video=0)]


@dataclass(frozen=True)
class Judged:
    frame: int
    kind: str
    mean: float
    sharpness: float  # relative to the clean frames' median
    clear: bool


def judge(image_path: str, lumas: list[np.ndarray], changes: dict[int, str]) -> Judged:
    """Which frame an image shows (the decoded frame nearest it) and whether it is clear, by
    best.py's measures: exposed, and at least 80% as sharp as the clean frames' median."""
    with Image.open(image_path) as image:
        luma = small_luma(image)
    frame = int(np.argmin([np.square(luma - other).mean() for other in lumas]))
    clean = [n for n in range(len(lumas)) if n not in changes]
    reference_sharpness = float(np.median([best.sharpness(lumas[n]) for n in clean]))
    sharpness = best.sharpness(luma) / reference_sharpness
    mean = float(luma.mean())
    clear = best.exposed(luma, BlackFilter()) and sharpness >= 0.8
    return Judged(frame, changes.get(frame, "clean").split("*")[0].split("+")[0], mean, sharpness, clear)


def compare_best(workdir: str) -> list[str]:
    """`best` and ffmpeg's thumbnail over the same window around each point of the clip."""
    changes = clip_changes()
    name = f"best-clip-{GENERATION}.mp4"
    path = os.path.join(workdir, "buckets", "in", name)
    if not os.path.exists(path):
        frames = CLIP_FPS * CLIP_SECONDS
        synth.write_video(path, frames=frames, fps=CLIP_FPS, size=(640, 360), edit=clip_edit(changes))
    points = list(CLIP_POINTS_MS)
    line = request(name, "best/{Count}.jpg", FrameType="best", TimeArray={"TimePointList": points})
    command, results = pipeline_command(workdir, [line], "best-clip")
    run(command)
    (record,) = our_records(results).values()
    lumas = decoded_lumas(path)
    out_dir = fresh(os.path.join(workdir, "thumbnail"))
    rows = ["point     what is there         best: frame kind  clear | thumbnail: frame kind  clear"]
    for point, snapshot in zip(points, record["Snapshots"], strict=True):
        ours = judge(os.path.join(workdir, "buckets", "out", snapshot["Object"]), lumas, changes)
        start = max(0.0, (point - 1000) / 1000)
        count = round((point / 1000 + 1 - start) * CLIP_FPS) + 1
        theirs_path = os.path.join(out_dir, f"{point}.jpg")
        thumbnail = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-ss", f"{start}", "-i", path]
        run([*thumbnail, "-vf", f"thumbnail={count}", "-frames:v", "1", theirs_path])
        theirs = judge(theirs_path, lumas, changes)
        rows.append(
            f"{point:>5} ms  {CLIP_POINTS_MS[point]:<20}  {ours.frame:>5} {ours.kind:<6} {_yes(ours.clear):<5}"
            f" | {theirs.frame:>5} {theirs.kind:<6} {_yes(theirs.clear)}"
            f"   (mean luma {ours.mean:.0f} / {theirs.mean:.0f},"
            f" sharpness {ours.sharpness:.2f} / {theirs.sharpness:.2f})"
        )
    return rows


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


# ---------------------------------------------------------------------------------------------
# Accuracy and speed


def accuracy(workdir: str, tests: list[TestFile]) -> dict[str, dict[str, list[int]]]:
    """Every detector's boundaries on every file: {detector: {file: frames}}."""
    found: dict[str, dict[str, list[int]]] = {"ours": {}, "scenedetect": {}, "ffmpeg": {}}
    names = {t.name: os.path.basename(video_path(workdir, t)) for t in tests}
    lines = [request(names[t.name], f"scene/{t.name}/{{Count}}.jpg", FrameType="scene") for t in tests]
    command, results = pipeline_command(workdir, lines, "accuracy")
    seconds, _ = run(command)
    print(f"  pipeline, {len(tests)} scene jobs in one run: {seconds:.1f} s", flush=True)
    records = our_records(results)
    for test in tests:
        video = video_path(workdir, test)
        found["ours"][test.name] = our_boundaries(records[names[test.name]], test.fps)
        out_dir = fresh(os.path.join(workdir, "scenedetect", test.name))
        seconds, _ = run(scenedetect_command(video, out_dir))
        found["scenedetect"][test.name] = scenedetect_boundaries(out_dir, test.fps)
        select_seconds, done = run(select_command(video, fresh(os.path.join(workdir, "select", test.name))))
        found["ffmpeg"][test.name] = select_boundaries(done.stderr, test.fps)
        print(f"  {test.name}: scenedetect {seconds:.1f} s, ffmpeg select {select_seconds:.1f} s", flush=True)
    return found


def video_path(workdir: str, test: TestFile) -> str:
    return os.path.join(workdir, "buckets", "in", f"{test.name}-{GENERATION}.mp4")


def report_accuracy(tests: list[TestFile], found: dict[str, dict[str, list[int]]]) -> list[str]:
    detectors = list(found)
    head = f"{'file':<10} {'size':>9} {'fps':>6} {'s':>4} cuts fades dissolves | " + " | ".join(
        f"{d + ' P R F1':<19}" for d in detectors
    )
    rows, notes = [head], []
    totals = {d: Score() for d in detectors}
    for test in tests:
        layout = test.layout
        kinds = [sum(t.kind == k for t in layout.truths) for k in ("cut", "fade", "dissolve")]
        scores = {d: score(layout.truths, found[d][test.name]) for d in detectors}
        size = f"{test.size[0]}x{test.size[1]}"
        rows.append(
            f"{test.name:<10} {size:>9} {float(test.fps):>6.2f} {float(layout.frames / test.fps):>4.0f} "
            f"{kinds[0]:>4} {kinds[1]:>5} {kinds[2]:>9} | "
            + " | ".join(f"{scores[d].summary():<19}" for d in detectors)
        )
        for detector in detectors:
            totals[detector].add(scores[detector])
            notes += [f"  {detector} on {test.name}: {line}" for line in explain(layout, scores[detector])]
    rows.append(f"{'all':<51} | " + " | ".join(f"{totals[d].summary():<19}" for d in detectors))
    return rows + ["", "what each detector got wrong:", *notes]


def speed(workdir: str, test: TestFile, runs: int) -> tuple[list[str], dict[str, list[int]]]:
    """The whole command of each, alternated (the order turns each round), best of `runs`."""
    video = video_path(workdir, test)
    name = os.path.basename(video)
    scene_line = request(name, "long/{Count}.jpg", FrameType="scene")
    best_line = request(name, "poster/best.jpg", FrameType="best", Time=60000)
    poster = os.path.join(workdir, "thumbnail-poster.jpg")
    thumbnail = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-ss", "59", "-i", video, "-vf", "thumbnail=61"]
    commands: dict[str, Callable[[], list[str]]] = {
        "scene (ours)": lambda: pipeline_command(workdir, [scene_line], "long-scene")[0],
        "PySceneDetect detect-content": lambda: scenedetect_command(video, fresh(os.path.join(workdir, "sd-long"))),
        "ffmpeg select gt(scene,0.4)": lambda: select_command(video, fresh(os.path.join(workdir, "select-long"))),
        "best poster at 60 s (ours)": lambda: pipeline_command(workdir, [best_line], "long-best")[0],
        "ffmpeg thumbnail=61 at 59 s": lambda: [*thumbnail, "-frames:v", "1", poster],
    }
    times: dict[str, list[float]] = {label: [] for label in commands}
    cpu: dict[str, list[float]] = {label: [] for label in commands}
    outputs: dict[str, subprocess.CompletedProcess] = {}
    for round_ in range(runs):
        labels = list(commands)
        for label in labels[round_ % len(labels) :] + labels[: round_ % len(labels)]:
            seconds, outputs[label] = run(commands[label]())
            times[label].append(seconds)
            cpu[label].append(CPU_SECONDS[-1])
            print(f"  {label}: {seconds:.1f} s, CPU {CPU_SECONDS[-1]:.1f} s", flush=True)
    found = {
        "ours": our_boundaries(our_records(os.path.join(workdir, "results", "long-scene", "results"))[name], test.fps),
        "scenedetect": scenedetect_boundaries(os.path.join(workdir, "sd-long"), test.fps),
        "ffmpeg": select_boundaries(outputs["ffmpeg select gt(scene,0.4)"].stderr, test.fps),
    }
    shots = {"scene (ours)": len(found["ours"]) + 1, "PySceneDetect detect-content": len(found["scenedetect"]) + 1}
    shots["ffmpeg select gt(scene,0.4)"] = len(found["ffmpeg"])
    ours = min(times["scene (ours)"])
    rows = [f"{'command':<30} best of {runs} (s)  all runs (s)           vs scene (ours)  CPU s (least)  shots"]
    for label, taken in times.items():
        every = ", ".join(f"{s:.1f}" for s in taken)
        count = str(shots.get(label, ""))
        rows.append(
            f"{label:<30} {min(taken):>10.1f}    {every:<22} {min(taken) / ours:>10.2f}x"
            f" {min(cpu[label]):>12.1f}     {count}"
        )
    return rows, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one timed round; no accuracy row for the 2-min file")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/snapshot-scenes")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    require_ffmpeg()
    scenedetect_bin()
    for bucket in ("in", "out"):
        os.makedirs(os.path.join(args.workdir, "buckets", bucket), exist_ok=True)
    for test in [*FILES, SPEED_FILE]:
        make_video(test, video_path(args.workdir, test))
    print(f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores); accuracy ...", flush=True)
    found = accuracy(args.workdir, FILES)
    print(
        f"load average {os.getloadavg()[0]:.2f}; speed on {SPEED_FILE.name} (120 s, 1280x720, 30 fps) ...", flush=True
    )
    speed_rows, long_found = speed(args.workdir, SPEED_FILE, runs)
    tests = FILES
    if not args.quick:
        tests = [*FILES, SPEED_FILE]
        for detector, boundaries in long_found.items():
            found[detector][SPEED_FILE.name] = boundaries
    print(f"load average {os.getloadavg()[0]:.2f}; best frames ...", flush=True)
    best_rows = compare_best(args.workdir)
    print(f"load average after {os.getloadavg()[0]:.2f}\n")
    print("\n".join(["ACCURACY (precision, recall, F1)", *report_accuracy(tests, found), ""]))
    print("\n".join(["SPEED", *speed_rows, ""]))
    print("\n".join(["BEST FRAMES (our best vs ffmpeg thumbnail, same 2 s window)", *best_rows]))


if __name__ == "__main__":
    main()
