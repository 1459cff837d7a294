"""Shared fixtures: test videos, made once per session, and a bucket root holding them.

Helpers that tests import are in tests/helpers.py."""

from __future__ import annotations

import os
import shutil

import pytest

from snapshot import synth
from tests.helpers import VIDEOS


@pytest.fixture(scope="session")
def videos(tmp_path_factory):
    """A function name -> path that writes each test video once per session."""
    folder = tmp_path_factory.mktemp("videos")

    def get(name: str) -> str:
        path = str(folder / name)
        if not os.path.exists(path):
            settings = {"frames": 90, **VIDEOS[name]}
            synth.write_video(path, **settings)
        return path

    return get


@pytest.fixture
def bucket_root(tmp_path, videos):
    """A bucket root with bucket `in` holding the test videos under `v/`, and bucket `out`."""
    root = tmp_path / "buckets"
    (root / "in" / "v").mkdir(parents=True)
    (root / "out").mkdir()
    for name in VIDEOS:
        shutil.copy(videos(name), root / "in" / "v" / name)
    return root
