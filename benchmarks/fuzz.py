"""Coverage-guided fuzzing of the probe and the capture with atheris, seeded with the good test
videos. Not part of CI: it runs for a fixed time.

    .venv/bin/pip install atheris
    .venv/bin/python benchmarks/fuzz.py [--seconds 300] [--workdir /tmp/snapshot-fuzz]

An input for which probing or capturing raises anything but a coded SnapshotError is saved
under WORKDIR/found/ (libFuzzer's crash-* files). The repository holds no binaries: turn each
into a seeded recipe of tests/damage.py, so that the damage campaign makes it again.
"""

from __future__ import annotations

import argparse
import io
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import atheris  # noqa: E402

with atheris.instrument_imports():
    from snapshot import media, plan, synth
    from snapshot.errors import SnapshotError
    from snapshot.spec import FrameType, ObjectRef, SnapshotConfig

from tests.helpers import VIDEOS  # noqa: E402

CONFIGS = [
    SnapshotConfig(ObjectRef("o", "l", "{Count}.jpg"), time_array=(0, 900, 2100), frame_type=FrameType.NORMAL),
    SnapshotConfig(ObjectRef("o", "l", "{Count}.jpg"), time_ms=0, num=3, interval_ms=700, frame_type=FrameType.INTRA),
]


def one_input(data: bytes) -> None:
    """Probe and capture, as a job would; only coded errors may come out."""
    source = io.BytesIO(data)
    try:
        probe = media.probe(source)
        for config in CONFIGS:
            shots = plan.shots(config, probe)
            targets = [shot.target_pts for shot in shots if shot.keyframe]
            exact = media.exact_keyframes(source, probe, targets)
            for captured in media.capture(source, shots, exact):
                captured.encoded("JPEG", 85)
    except SnapshotError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--workdir", default="/tmp/snapshot-fuzz")
    args = parser.parse_args()
    corpus, found = os.path.join(args.workdir, "corpus"), os.path.join(args.workdir, "found")
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(found, exist_ok=True)
    for name, settings in VIDEOS.items():
        path = os.path.join(corpus, name)
        if name != "grain.mp4" and not os.path.exists(path):
            synth.write_video(path, **{"frames": 90, **settings})
    atheris.Setup(
        [
            sys.argv[0],
            f"-max_total_time={args.seconds}",
            f"-artifact_prefix={found}/",
            "-max_len=2000000",
            "-rss_limit_mb=4096",
            corpus,
        ],
        one_input,
    )
    atheris.Fuzz()


if __name__ == "__main__":
    main()
