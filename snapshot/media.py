"""PyAV: probe a video and capture the frames a plan asks for.

Time is measured in the video stream's own timestamps (`pts`, in `time_base` units) from
`start_pts`, the presentation time of the first frame, so a stream whose timestamps start
at 10 s (MPEG-TS) counts from 0 like any other.
"""

from __future__ import annotations

import bisect
import io
import itertools
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import BinaryIO, NoReturn, TypeVar

import av
import numpy as np
from av.container import InputContainer
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream
from PIL import Image

from snapshot import best, color, errors, images, shots
from snapshot.errors import SnapshotError
from snapshot.limits import Limits
from snapshot.spec import BlackFilter
from snapshot.video import BLACK_WINDOW_S, Probe, Shot

DEFAULT_LIMITS = Limits()
Image.preinit()  # Pillow's JPEG and PNG plugins: loaded at import, in the decoding processes, not at a first image
Source = BinaryIO | io.RawIOBase  # a seekable binary file: an open file, or a storage reader
Frames = Iterator[VideoFrame]

# PIL transposes that make a frame upright, keyed by PyAV's `frame.rotation` (degrees the
# display matrix turns the picture counter-clockwise).
_UPRIGHT = {
    90: Image.Transpose.ROTATE_90,
    -90: Image.Transpose.ROTATE_270,
    270: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    -180: Image.Transpose.ROTATE_180,
}


SEEK_ATTEMPTS = 10
IO_BUFFER = 1 << 16  # bytes FFmpeg asks the reader for at a time
# Demuxers that read one self-contained file (no playlists, concat, image sequences, devices).
ALLOWED_FORMATS = {"mov", "matroska", "mpegts", "avi", "flv", "mpeg", "ogg", "mxf", "asf", "ivf"}
INDEXED_FORMATS = {"mov", "mp4", "matroska", "webm"}  # demuxers whose index lists every keyframe
BLACK_TEST_WIDTH = 160  # frames are tested for black at this width (luma only)
THREAD_TYPE = "SLICE"  # frame threading delays every frame by its thread count: it slows seeks
# Shot detection's 64x36 pictures need no deblocking (about 10% of an H.264 or HEVC decode).
DETECT_OPTIONS = {"skip_loop_filter": "all"}
LEFT_OUT_TRIAL, LEFT_OUT_ENOUGH = 150, 0.3


@dataclass
class Captured:
    shot: Shot
    image: Image.Image  # sRGB
    color: color.Description  # what the frame's samples meant
    frame_pts: int
    decoded: int = 0  # frames the decoder made for this shot
    _encoded: dict[tuple[str, int], bytes] = field(default_factory=dict)  # shared by shots of the same picture
    clear: bool = True  # False: FrameType best found no clear frame in the window

    def encoded(self, image_format: str, quality: int) -> bytes:
        """The picture in `image_format` (images.FORMATS), encoded once per format and
        quality for every shot that shows it."""
        key = (image_format, quality)
        if key not in self._encoded:
            self._encoded[key] = images.encode(self.image, image_format, quality)
        return self._encoded[key]

    def again(self, shot: Shot) -> Captured:
        """The same picture for another shot of the same size, sharing its encodings."""
        return Captured(shot, self.image, self.color, self.frame_pts, 0, self._encoded, self.clear)


def probe(source: Source, limits: Limits = DEFAULT_LIMITS) -> Probe:
    """Timing and keyframes of a video, and its upright display size.

    Time 0 is the first frame the decoder shows: frames that an edit list hides (a clip
    trimmed by stream copy) and packets before the first decodable frame (a transport
    stream cut inside a GOP) come before it. Keyframes come from the container's index
    (MP4 sample tables, Matroska cues) when it has one that covers the whole stream,
    reading no media data; otherwise every packet is demuxed (not decoded), from the first
    byte of the file.
    """
    with _open(source) as container:
        stream = _video_stream(container, limits)
        try:
            first_packet, first = _first_frame(container, stream)
            start = _first_pts(stream, first_packet, first)
            found = _from_index(container, stream, first_packet, start)
        except av.FFmpegError:
            raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the video stream cannot be decoded") from None
        width, height = _display_size(stream, first)
        rotation = int(first.rotation or 0)
        time_base = stream.time_base
        if time_base is None:
            raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the video stream has no time base")
    if found is None:
        with _open(source) as container:  # opened anew: a seek to timestamp 0 can miss the head (PTS wrap)
            try:
                found = _from_packets(container, _video_stream(container, limits), start)
            except av.FFmpegError:
                raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the video stream cannot be read") from None
    if rotation in (90, -90, 270):
        width, height = height, width
    return Probe(time_base, width=width, height=height, rotation=rotation, **found)


def exact_keyframes(source: Source, probe_: Probe, targets: Iterable[int], limits: Limits = DEFAULT_LIMITS) -> Probe:
    """The probe with the true pts of the keyframes around each target, where the index only
    gave estimates (MP4 indexes decode timestamps): one packet read per keyframe."""
    if probe_.keyframes_exact:
        return probe_
    keyframes = list(probe_.keyframes)
    near: set[int] = set()
    for target in targets:
        index = bisect.bisect_right(keyframes, target)
        near.update(range(max(0, index - 2), min(len(keyframes), index + 2)))
    with _open(source) as container:
        stream = _video_stream(container, limits)
        try:
            for index in sorted(near):
                keyframes[index] = _keyframe_pts(container, stream, keyframes[index], probe_.index_offset)
        except av.FFmpegError:
            raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the video cannot be read at its keyframes") from None
    return replace(probe_, keyframes=tuple(sorted(set(keyframes))))


def _keyframe_pts(container: InputContainer, stream: VideoStream, estimate: int, offset: int) -> int:
    """The true pts of the keyframe whose estimate (its decode timestamp + `offset`) is
    `estimate`. A seek to the estimate lands on it, or, where an edit list shifts the
    demuxer's timeline (a clip trimmed by stream copy), on the keyframe before: then the
    packets are read (not decoded) up to it."""
    wanted = estimate - offset
    container.seek(estimate, stream=stream, backward=True)
    for packet in _packets(container, stream):
        if packet.dts is not None and packet.dts > wanted:
            break
        if packet.is_keyframe and packet.dts == wanted and packet.pts is not None:
            return packet.pts
    return estimate


def _first_frame(container: InputContainer, stream: VideoStream) -> tuple[Packet | None, VideoFrame]:
    """(first packet with a timestamp, first decoded frame)."""
    first_packet = None
    for packet in _packets(container, stream):
        if first_packet is None and packet.pts is not None:
            first_packet = packet
        for frame in packet.decode():
            return first_packet, frame
    for frame in stream.codec_context.decode(None):
        return first_packet, frame
    raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the video has no decodable frame")


def _first_pts(stream: VideoStream, first_packet: Packet | None, first: VideoFrame) -> int:
    """The timestamp of the first frame shown."""
    for pts in (first.pts, first_packet.pts if first_packet else None, stream.start_time):
        if pts is not None:
            return pts
    raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the video has no timestamps")


def _from_index(container: InputContainer, stream: VideoStream, first_packet: Packet | None, start: int) -> dict | None:
    """Keyframes from the index of a format that has one, and the end from the packets of
    the last keyframe's GOP; None when there is no index or it does not cover the stream
    (a WebM from a browser or a pipe has no Cues: the demuxer's index then holds only the
    keyframes it has met so far)."""
    if first_packet is None or first_packet.pts is None or not INDEXED_FORMATS & set(container.format.name.split(",")):
        return None
    container.seek(start, stream=stream, backward=True)  # Matroska reads its cues on the first seek
    index = sorted(entry.timestamp for entry in stream.index_entries if entry.is_keyframe)
    if not index:
        return None
    container.seek(index[-1], stream=stream, backward=True)
    end = None
    for packet in _packets(container, stream):
        if packet.pts is None:
            continue
        if packet.is_keyframe and min(packet.pts, packet.dts if packet.dts is not None else packet.pts) > index[-1]:
            return None  # a keyframe after the last one the index lists (MP4 lists decode times)
        end = max(end if end is not None else packet.pts, packet.pts + (packet.duration or 0))
    if end is None:
        return None
    offset = first_packet.pts - index[0] if first_packet.is_keyframe else 0
    keyframes = tuple(k + offset for k in index)
    return {
        "start_pts": start,
        "end_pts": end,
        "keyframes": keyframes,
        "keyframes_exact": offset == 0,
        "index_offset": offset,
    }


def _from_packets(container: InputContainer, stream: VideoStream, start: int) -> dict:
    """Keyframes and end from every packet's timestamps."""
    keyframes, end = [], None
    for packet in _packets(container, stream):
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None:
            continue
        if packet.is_keyframe:
            keyframes.append(pts)
        end = max(end if end is not None else pts, pts + (packet.duration or 0))
    if not keyframes or end is None:
        raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the video has no keyframe")
    return {"start_pts": start, "end_pts": end, "keyframes": tuple(sorted(set(keyframes)))}


def capture(
    source: Source,
    shots: Iterable[Shot],
    probe_: Probe,
    limits: Limits = DEFAULT_LIMITS,
    skip: Callable[[str], bool] = lambda owner: False,
) -> Iterator[Captured]:
    """Decode the frames of `shots` in time order, opening the video once.

    A keyframe shot seeks to its keyframe and decodes that frame alone. Any other shot takes
    the last frame whose pts is <= its target: between such shots the decoder keeps going
    forward unless a keyframe lies between, then it seeks. Each picture is scaled during
    colour conversion and turned upright. Shots of the same frame share its decoding, and
    at the same size its picture and JPEGs. Shots whose owner `skip` names are left out.
    """
    with _open(source) as container:
        stream = _video_stream(container, limits)
        walker = _Walker(container, stream, probe_, limits)
        frames: Walk | None = None
        last: VideoFrame | None = None
        ahead: VideoFrame | None = None
        previous: Captured | None = None
        previous_frame: VideoFrame | None = None
        try:
            for shot in sorted(shots, key=lambda s: s.target_pts):
                if skip(shot.owner):
                    continue
                decoded = walker.decoded
                clear = shot.clear
                if shot.black is not None:
                    frame = _first_non_black(walker, shot.black, shot.keyframe)
                    frames = None  # the next frame-exact shot seeks afresh
                elif shot.window is not None:
                    same = previous is not None and (previous.shot.window, previous.shot.target_pts) == (
                        shot.window,
                        shot.target_pts,
                    )
                    if same and previous is not None and previous_frame is not None:
                        frame, clear = previous_frame, previous.clear
                    else:
                        frame, clear = _best(walker, shot)
                    frames = None
                elif shot.keyframe:
                    same = previous is not None and previous.shot.keyframe and previous.frame_pts == shot.target_pts
                    if same and previous_frame is not None:
                        frame = previous_frame
                    else:
                        frame = _keyframe(walker, shot.target_pts)
                    frames = None
                else:
                    keyframe = probe_.keyframe_at_or_before(shot.target_pts)
                    position = ahead if ahead is not None else last
                    if frames is None or position is None or (position.pts is not None and keyframe > position.pts):
                        frames, last, ahead = walker.start(keyframe, shot.target_pts)
                    last, ahead = _advance(frames, last, ahead, shot.target_pts, limits.max_frames_per_point)
                    if last is None:
                        raise SnapshotError(errors.RESOURCE_CONTENT_BAD, f"no frame at {shot.requested_ms} ms")
                    frame = last
                if previous is not None and frame is previous_frame and shot.size == previous.shot.size:
                    captured = previous.again(shot)
                else:
                    shown = frame.pts if frame.pts is not None else shot.target_pts
                    captured = Captured(shot, *_picture(frame, shot.size), frame_pts=shown, clear=clear)
                captured.decoded = walker.decoded - decoded
                previous, previous_frame = captured, frame
                yield captured
        except av.FFmpegError:
            raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the video cannot be decoded") from None
        finally:
            walker.finish()


class Walk:
    """The frames decoded forward from where the container was sought, in presentation order.

    Set `target` before asking for the frames up to it: a packet is then decoded with
    `skip_frame = NONREF` when a packet already read lies after it and at or before the
    target. Such a frame can be neither the frame shown at the target nor one that it needs:
    if no other frame references it, the decoder leaves it out. Frames that others predict
    from are decoded as always.
    """

    def __init__(self, walker: _Walker):
        self.target: int | None = None
        self._walker = walker
        self._frames = self._decode()

    def __iter__(self) -> Walk:
        return self

    def __next__(self) -> VideoFrame:
        return next(self._frames)

    def close(self) -> None:
        """Let go of the frame and packet it holds."""
        self._frames.close()

    def _decode(self) -> Generator[VideoFrame, None, None]:
        walker = self._walker
        decoder = walker.stream.codec_context
        read: list[int] = []  # pts of the packets read: the newest at or before the target, and later ones
        try:
            for packet in _packets(walker.container, walker.stream):
                pts, target = packet.pts, self.target
                newest = max((q for q in read if q <= target), default=None) if target is not None else None
                if newest is not None:
                    read = [q for q in read if q >= newest]  # targets only grow: nothing older counts again
                skip = walker.limits.skip_nonref and pts is not None and newest is not None and pts < newest
                decoder.skip_frame = "NONREF" if skip or walker.nonref_only else "DEFAULT"
                if pts is not None:
                    read.append(pts)
                    if walker.demuxed is not None:
                        walker.demuxed.append(pts)
                for frame in packet.decode():
                    walker.decoded += 1
                    yield frame
        finally:
            decoder.skip_frame = "DEFAULT"


@dataclass
class _Walker:
    """What walks in one open video share: its container, stream and plan, and a count of the
    frames decoded."""

    container: InputContainer
    stream: VideoStream
    probe: Probe
    limits: Limits
    decoded: int = 0
    walk: Walk | None = None  # the current walk: closed when the next one starts
    demuxed: list[int] | None = None  # set: the pts of every packet read are added to it
    nonref_only: bool = False  # decode only the frames that others reference

    def finish(self) -> None:
        """Close the current walk and forget it: a walk and its walker refer to each other, and
        the cycle would keep the decoder and its frames alive until the cycle collector ran."""
        if self.walk is not None:
            self.walk.close()
            self.walk = None

    def start(self, keyframe: int, target: int) -> tuple[Walk, VideoFrame | None, VideoFrame | None]:
        """Seek so that the first decoded frame is at or before `target`; (frames, last, ahead).

        Demuxers may land late (MP4 seeks by decode timestamps, MPEG-TS by byte position):
        then seek again from further back, one second, two, four, ...
        """
        offset, back = keyframe, max(1, int(1 / self.probe.time_base))
        for _ in range(SEEK_ATTEMPTS):
            self.finish()
            try:
                self.container.seek(offset, stream=self.stream, backward=True)
                frames = self.walk = Walk(self)
                first = next(frames, None)
            except av.FFmpegError:
                raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the video cannot be decoded after seeking") from None
            if first is not None and (first.pts is None or first.pts <= target):
                return frames, None, first
            landed = first.pts if first is not None and first.pts is not None else offset
            offset, back = min(offset, landed) - back, back * 2
        raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "seeking in the video fails")


def _keyframe(walker: _Walker, target: int) -> VideoFrame:
    """The keyframe at `target`: its packet alone is decoded, then the decoder is drained,
    so no frame after it is decoded. Falls back to decoding forward when the demuxer does not
    land on it."""
    container, stream = walker.container, walker.stream
    container.seek(target, stream=stream, backward=True)
    packet = next((p for p in _packets(container, stream) if p.pts is not None), None)
    if packet is not None and packet.is_keyframe and packet.pts == target:
        decoder = stream.codec_context
        decoded = [*decoder.decode(packet), *decoder.decode(None)]
        decoder.flush_buffers()
        walker.decoded += len(decoded)
        frame = next((f for f in decoded if f.pts == target), None)
        if frame is not None:
            return frame
    frames, last, ahead = walker.start(target, target)
    last, _ = _advance(frames, last, ahead, target, walker.limits.max_frames_per_point)
    if last is None:
        raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the keyframe cannot be decoded")
    return last


def _first_non_black(walker: _Walker, black: BlackFilter, keyframes_only: bool) -> VideoFrame:
    """The first candidate frame of the first BLACK_WINDOW_S seconds that is not black; the
    first frame when all are."""
    probe_ = walker.probe
    limit = probe_.start_pts + int(BLACK_WINDOW_S / probe_.time_base)
    first = None
    for frame in _candidates(walker, limit, keyframes_only):
        first = first if first is not None else frame
        if not _is_black(frame, black):
            return frame
    if first is None:
        raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "no frame at 0 ms")
    return first


def _best(walker: _Walker, shot: Shot) -> tuple[VideoFrame, bool]:
    """The best frame of the shot's window, and whether it is clear: each frame is judged
    with its neighbours, one frame late."""
    chooser: best.Chooser[VideoFrame] = best.Chooser(shot.target_pts)
    scaler = VideoReformatter()
    previous: np.ndarray | None = None
    current: tuple[VideoFrame, bool, np.ndarray] | None = None
    for frame, inside in itertools.chain(_window(walker, shot), [(None, False)]):
        luma = _luma(frame, best.SCORE_WIDTH, scaler) if frame is not None else None
        if current is not None and current[1] and current[0].pts is not None:
            chooser.offer(current[0], current[0].pts, previous, current[2], luma)
        previous = current[2] if current is not None else None
        current = (frame, inside, luma) if frame is not None and luma is not None else None
    try:
        return chooser.choice()
    except ValueError:
        raise SnapshotError(errors.RESOURCE_CONTENT_BAD, f"no frame at {shot.requested_ms} ms") from None


def _window(walker: _Walker, shot: Shot) -> Iterator[tuple[VideoFrame, bool]]:
    """(frame, inside the window) in time order: the frames shown from the window's first pts
    to its last, with the frame before and the frame after when there are. Every frame
    decoded, from the keyframe before, counts against max_frames_per_point."""
    assert shot.window is not None
    first, last = shot.window
    limit = walker.limits.max_frames_per_point
    frames, _, ahead = walker.start(walker.probe.keyframe_at_or_before(first), first)
    frames.target = first
    held: list[VideoFrame] = []  # the last two frames at or before `first`
    for decoded, frame in enumerate(itertools.chain([ahead] if ahead else [], frames), start=1):
        if decoded > limit:
            raise SnapshotError(
                errors.RESOURCE_CONTENT_BAD,
                f"the window at {shot.requested_ms} ms needs over {limit} decoded frames: use a smaller BestWindow",
            )
        if frame.pts is None:
            continue
        if frame.pts <= first:
            held = [*held[-1:], frame]
            continue
        yield from _held(held)
        held = []
        if frame.pts > last:
            yield frame, False
            return
        yield frame, True
    yield from _held(held)


def _held(held: list[VideoFrame]) -> Iterator[tuple[VideoFrame, bool]]:
    """The frame before the one shown at the window's start, and that one."""
    if len(held) == 2:
        yield held[0], False
    if held:
        yield held[-1], True


def shot_measures(source: Source, probe_: Probe, first: int, limits: Limits = DEFAULT_LIMITS) -> shots.Measures:
    """What shot detection needs of the frames from pts `first` to the end: a pass that decodes
    only the frames others reference, then every frame between each hard cut it finds and
    the frame before (shots.completed)."""
    demuxed: list[int] = []
    coarse = shots.measure(small_lumas(source, probe_, first, limits, demuxed=demuxed), probe_.ms)
    left_out = set(demuxed) - set(coarse.pts.tolist())

    def span(start: int, last: int) -> shots.Measures:
        return shots.measure(small_lumas(source, probe_, start, limits, last=last), probe_.ms)

    return shots.completed(coarse, left_out, span)


T = TypeVar("T")
_END = object()


def _ahead(items: Generator[T, None, None], depth: int = 8) -> Iterator[T]:
    """The items of `items`, made by a thread of their own up to `depth` ahead of the caller,
    so that detection's decoding (which lets go of the GIL) overlaps its scaling and measures.
    An error of `items` is raised here; when the caller stops, the thread closes `items`."""
    made: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def hand(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                made.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def make() -> None:
        try:
            for item in items:
                if not hand((item, None)):
                    return
            hand((_END, None))
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            hand((_END, error))
        finally:
            items.close()

    maker = threading.Thread(target=make, name="detection-decoder", daemon=True)
    maker.start()
    try:
        while True:
            item, error = made.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        maker.join()


def small_lumas(
    source: Source,
    probe_: Probe,
    first: int,
    limits: Limits = DEFAULT_LIMITS,
    *,
    last: int | None = None,
    demuxed: list[int] | None = None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(pts, luma picture of shots.DETECT_SIZE, luma picture to judge, best.SCORE_WIDTH wide)
    of the frame shown at pts `first` (as `first`) and of every later frame up to pts `last`,
    seen one at a time. A thread decodes them ahead (_ahead) while this one scales and the
    caller measures. With `demuxed`, frames that no other frame references are left out, and
    the pts of every packet read is added to it."""
    small, judged = VideoReformatter(), VideoReformatter()
    for pts, frame in _ahead(_detection_frames(source, probe_, first, limits, last, demuxed)):
        yield pts, _gray(frame, shots.DETECT_SIZE, small), _luma(frame, best.SCORE_WIDTH, judged)


def _detection_frames(
    source: Source, probe_: Probe, first: int, limits: Limits, last: int | None, demuxed: list[int] | None
) -> Generator[tuple[int, VideoFrame], None, None]:
    """(pts, frame) for small_lumas, decoded without the loop filter. With `demuxed`, only the
    frames others reference are decoded while that leaves out LEFT_OUT_ENOUGH of them (judged
    from LEFT_OUT_TRIAL packets on): fewer, and the second pass would cost more than it saves."""
    with _open(source) as container:
        stream = _video_stream(container, limits)
        stream.codec_context.options = dict(DETECT_OPTIONS)
        walker = _Walker(container, stream, probe_, limits, demuxed=demuxed, nonref_only=demuxed is not None)
        try:
            frames, _, ahead = walker.start(probe_.keyframe_at_or_before(first), first)
            held: VideoFrame | None = None
            shown: int | None = None  # the last pts given: a damaged timestamp (back, or past the end) is left out
            for frame in itertools.chain([ahead] if ahead else [], frames):
                if demuxed is not None and len(demuxed) >= LEFT_OUT_TRIAL and walker.nonref_only:
                    walker.nonref_only = walker.decoded < (1 - LEFT_OUT_ENOUGH) * len(demuxed)
                pts = frame.pts
                if pts is None or pts >= probe_.end_pts or (shown is not None and pts <= shown):
                    continue
                if last is not None and pts > last:
                    break
                if pts <= first:
                    held = frame
                    continue
                if held is not None:
                    yield first, held
                    held = None
                shown = pts
                yield pts, frame
            if held is not None:
                yield first, held
        except av.FFmpegError:
            raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the video cannot be decoded for its shots") from None
        finally:
            walker.finish()


def _gray(frame: VideoFrame, size: tuple[int, int], scaler: VideoReformatter) -> np.ndarray:
    """The frame's luma at `size`, full range, each pixel the mean of its area. A scaler kept
    for a walk keeps its set-up: made anew for each frame, it would cost more than the scale."""
    return scaler.reformat(frame, *size, "gray", interpolation="AREA").to_ndarray()


def _luma(frame: VideoFrame, width: int, scaler: VideoReformatter | None = None) -> np.ndarray:
    """The luma of the picture a viewer sees, at most `width` wide: an SDR frame's own luma
    (as `_gray`, with `scaler` or a new one), an HDR frame's after tone mapping."""
    width = min(frame.width, width)
    height = max(1, round(frame.height * width / frame.width))
    if color.describe(frame).transfer == "sdr":
        return _gray(frame, (width, height), scaler or VideoReformatter())
    picture, _ = color.render(frame, width, height)
    return np.asarray(picture.convert("L"))


def _candidates(walker: _Walker, limit: int, keyframes_only: bool) -> Frames:
    """Every frame before `limit` (no target: nothing is skipped), or only its keyframes."""
    probe_ = walker.probe
    try:
        if keyframes_only:
            for keyframe in (k for k in probe_.keyframes if probe_.start_pts <= k < limit):
                frames, last, ahead = walker.start(keyframe, keyframe)
                last, _ = _advance(frames, last, ahead, keyframe, walker.limits.max_frames_per_point)
                if last is not None:
                    yield last
            return
        frames, _, frame = walker.start(probe_.keyframes[0], probe_.start_pts)
        while frame is not None and frame.pts is not None and frame.pts < limit:
            yield frame
            frame = next(frames, None)
    except av.FFmpegError:
        raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the video cannot be decoded near its start") from None


def _is_black(frame: VideoFrame, black: BlackFilter) -> bool:
    """Judged on the luma of the picture a viewer sees: an HDR frame after tone mapping."""
    return images.black_share(_luma(frame, BLACK_TEST_WIDTH), black.threshold) >= black.level


def _advance(
    frames: Walk, last: VideoFrame | None, ahead: VideoFrame | None, target: int, max_frames: int
) -> tuple[VideoFrame | None, VideoFrame | None]:
    """Decode forward to `target`: (last frame with pts <= target, the next one or None)."""
    frames.target = target
    if ahead is not None and ahead.pts is not None:
        if ahead.pts > target:
            return last, ahead
        last = ahead
    if last is not None and last.pts == target:
        return last, None
    for decoded, frame in enumerate(frames, start=1):
        if decoded > max_frames:
            raise SnapshotError(
                errors.RESOURCE_CONTENT_BAD, f"reaching a point needs more than {max_frames} decoded frames"
            )
        if frame.pts is None:
            continue
        if frame.pts > target:
            return last, frame
        last = frame
        if frame.pts == target:
            break
    return last, None


def _packets(container: InputContainer, stream: VideoStream) -> Iterator[Packet]:
    """The stream's packets. PyAV fails with IndexError when the container gains a stream
    mid-file (damaged MPEG-TS): that is damage, not a bug."""
    try:
        yield from container.demux(stream)
    except IndexError:
        raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the container's streams change mid-file") from None


def _picture(frame: VideoFrame, size: tuple[int, int]) -> tuple[Image.Image, color.Description]:
    """The frame as an upright sRGB image of `size`, scaled during colour conversion, and
    what its samples meant."""
    transpose = _UPRIGHT.get(int(frame.rotation or 0))
    width, height = size
    if transpose in (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270):
        width, height = height, width
    image, described = color.render(frame, width, height)
    return (image.transpose(transpose) if transpose is not None else image), described


def _display_size(stream: VideoStream, frame: VideoFrame) -> tuple[int, int]:
    width, height = frame.width, frame.height
    sar = stream.sample_aspect_ratio
    if sar and sar > 0 and sar != 1:
        width = max(1, round(width * sar))
    return width, height


def _open(source: Source) -> InputContainer:
    """Open a container from a reader: only allowed formats, and no second file or URL."""
    if hasattr(source, "seek"):
        source.seek(0)
    try:
        return av.open(
            source,
            mode="r",
            buffer_size=IO_BUFFER,
            io_open=refuse_nested_open,
            metadata_errors="replace",
            options={"format_whitelist": ",".join(sorted(ALLOWED_FORMATS))},
        )
    except (av.FFmpegError, OSError):
        raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the input is not a readable video") from None


def refuse_nested_open(url: str, flags: int, options: dict) -> NoReturn:
    """FFmpeg's hook for a demuxer that opens another file or URL (playlists, concat): never."""
    raise PermissionError("a video may not open other files")


def _video_stream(container: InputContainer, limits: Limits) -> VideoStream:
    if container.format.name.split(",")[0] not in ALLOWED_FORMATS:
        raise SnapshotError(errors.RESOURCE_CONTENT_BAD, f"the {container.format.name} format is not allowed")
    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not videos:
        raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "the input has no video stream")
    stream = videos[0]
    context = stream.codec_context
    if context is None or not context.width or not context.height:
        raise SnapshotError(
            errors.RESOURCE_CONTENT_BAD, "the video stream has no codec parameters (is the file cut short?)"
        )
    pixels = context.width * context.height
    if pixels > limits.max_input_pixels:
        raise SnapshotError(
            errors.RESOURCE_CONTENT_BAD,
            f"the video is {context.width}x{context.height}, over the cap of {limits.max_input_pixels} pixels",
        )
    stream.thread_type = THREAD_TYPE
    stream.thread_count = limits.decoder_threads
    return stream
