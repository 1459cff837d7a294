"""Damaged copies of good videos, seeded and reproducible: the kinds of damage that uploads,
disks and networks do, and some that only a hostile hand does."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator

MP4_BOXES = (
    b"moov",
    b"trak",
    b"mdia",
    b"minf",
    b"stbl",
    b"stsd",
    b"stts",
    b"stss",
    b"stsz",
    b"stco",
    b"co64",
    b"ctts",
    b"stsc",
    b"mdat",
    b"mvhd",
    b"tkhd",
    b"elst",
    b"avcC",
    b"hvcC",
)


def flip_bits(count: int) -> Callable[[bytes, random.Random], bytes]:
    def damage(data: bytes, rng: random.Random) -> bytes:
        out = bytearray(data)
        for _ in range(count):
            position = rng.randrange(len(out))
            out[position] ^= 1 << rng.randrange(8)
        return bytes(out)

    damage.__name__ = f"flip_{count}_bits"
    return damage


def zero_run(data: bytes, rng: random.Random) -> bytes:
    length = rng.choice([16, 256, 4096, 65536])
    start = rng.randrange(max(1, len(data) - length))
    return data[:start] + bytes(min(length, len(data) - start)) + data[start + length :]


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(1, len(data))]


def truncate_in_index(data: bytes, rng: random.Random) -> bytes:
    """Cut inside the MP4 index (moov), or anywhere when there is none."""
    where = data.find(b"moov")
    if where < 0:
        return truncate(data, rng)
    size = struct.unpack(">I", data[where - 4 : where])[0]
    return data[: rng.randrange(where, min(len(data), where + max(size, 8)))]


def move_block(data: bytes, rng: random.Random) -> bytes:
    length = rng.choice([188, 1024, 16384])
    if len(data) < 3 * length:
        return flip_bits(8)(data, rng)
    a, b = sorted(rng.sample(range(0, len(data) - length), 2))
    if b < a + length:
        b = a + length
    out = bytearray(data)
    out[a : a + length], out[b : b + length] = data[b : b + length], data[a : a + length]
    return bytes(out)


def damage_header(data: bytes, rng: random.Random) -> bytes:
    length = rng.choice([4, 16, 64, 512])
    return bytes(rng.randrange(256) for _ in range(length)) + data[length:]


def box_size(data: bytes, rng: random.Random) -> bytes:
    """An MP4 box (or the EBML header's first bytes) whose size is 0, 1 or past the file."""
    found = [i - 4 for name in MP4_BOXES for i in _all(data, name) if i >= 4]
    if not found:
        return damage_header(data, rng)
    where = rng.choice(found)
    size = rng.choice([0, 1, 7, len(data) * 2, 0xFFFFFFFF])
    return data[:where] + struct.pack(">I", size) + data[where + 4 :]


def keyframe_index(data: bytes, rng: random.Random) -> bytes:
    """Keyframes in the index duplicated, removed or moved: the MP4 sync-sample table (stss),
    or the Matroska Cues (CuePoint 0xBB)."""
    where = data.find(b"stss")
    if where >= 0:
        count_at = where + 8
        count = struct.unpack(">I", data[count_at : count_at + 4])[0]
        entries = [data[count_at + 4 + 4 * i : count_at + 8 + 4 * i] for i in range(min(count, 10_000))]
        if not entries:
            return data
        kind = rng.choice(["duplicate", "remove", "shift", "count"])
        if kind == "duplicate":
            i = rng.randrange(len(entries))
            entries[i] = entries[i - 1] if i else entries[min(1, len(entries) - 1)]
        elif kind == "remove":
            entries[rng.randrange(len(entries))] = struct.pack(">I", 0)
        elif kind == "shift":
            i = rng.randrange(len(entries))
            entries[i] = struct.pack(">I", struct.unpack(">I", entries[i])[0] + rng.randrange(1, 50))
        else:
            return data[:count_at] + struct.pack(">I", rng.choice([0, count * 3])) + data[count_at + 4 :]
        body = b"".join(entries)
        return data[: count_at + 4] + body + data[count_at + 4 + len(body) :]
    cues = list(_all(data, b"\xbb"))
    if not cues:
        return flip_bits(64)(data, rng)
    where = rng.choice(cues)
    return data[:where] + bytes(rng.randrange(256) for _ in range(8)) + data[where + 8 :]


KINDS: list[Callable[[bytes, random.Random], bytes]] = [
    flip_bits(1),
    flip_bits(8),
    flip_bits(64),
    flip_bits(512),
    zero_run,
    truncate,
    truncate_in_index,
    move_block,
    damage_header,
    box_size,
    keyframe_index,
]


def variants(data: bytes, seed: int, count: int) -> Iterator[tuple[str, bytes]]:
    """`count` damaged copies of `data`: (kind, bytes), the kinds in turn, each seeded."""
    for n in range(count):
        kind = KINDS[n % len(KINDS)]
        yield kind.__name__, kind(data, random.Random(seed * 100_003 + n))


def _all(data: bytes, needle: bytes) -> Iterator[int]:
    start = data.find(needle)
    while start >= 0:
        yield start
        start = data.find(needle, start + 1)
