"""Videos as they come from the wild, remuxed with PyAV from the pattern videos of `synth`:
clips trimmed by stream copy (edit lists), WebM with no Cues, transport streams cut inside
a GOP or near the 33-bit timestamp wrap."""

from __future__ import annotations

import av

from snapshot import synth

FPS = 30
GOP = 30  # a keyframe every second
H264 = {"g": str(GOP), "bf": "2", "sc_threshold": "0"}


def trimmed_mp4(source: str, path: str, start_s: float) -> None:
    """What `ffmpeg -ss START -i SOURCE -c copy PATH` makes: the GOP before START is kept as
    pre-roll with negative timestamps, and the MP4 muxer writes an edit list that hides it."""
    with av.open(source) as inp, av.open(path, "w") as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        shift = round(start_s / stream.time_base)
        inp.seek(shift, stream=stream, backward=True)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = copy
            out.mux(packet)


def cut_stream(source: str, path: str, start_s: float, **container) -> None:
    """The packets of SOURCE from the first one at START on, keyframe or not: a transport
    stream cut inside a GOP."""
    with av.open(source) as inp, av.open(path, "w", **container) as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None or packet.dts * stream.time_base < start_s:
                continue
            packet.stream = copy
            out.mux(packet)


def pattern_video(path: str, frames: int = 180, **settings) -> None:
    """`frames` pattern frames at 30 fps, H.264 with B-frames and a keyframe every second."""
    synth.write_video(path, frames=frames, fps=FPS, **{"options": H264, **settings})
