"""Reading and writing videos for the serving layer, with PyAV.

Frames are decoded in order and handed over one at a time (a long video is never held in memory); the frame
count and frame size are checked against the limits. Written videos are H.264 (``libx264``, yuv420p) MP4 at
the input's frame rate, with only the video stream: audio, subtitles and the container's metadata (creation
time, GPS of phone videos, encoder tags) are not copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from src.inference.inputs import DEFAULT_LIMITS, InputError, InputLimits

__all__ = ["VideoWriter", "probe_video", "read_video_frames"]


def _open(path: Path):
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(
            f"{path}: cannot be opened as a video ({getattr(exc, 'strerror', None) or exc})"
        ) from exc
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: has no video stream")
    return container


def probe_video(path: str | Path, limits: InputLimits = DEFAULT_LIMITS) -> tuple[int, int, Fraction]:
    """``(width, height, frame rate)`` of a video file, checked against ``limits`` (size, bytes)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size > limits.max_bytes:
        raise InputError(
            f"{path}: {path.stat().st_size:,} bytes is more than the limit of {limits.max_bytes:,}"
        )
    container = _open(path)
    try:
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    finally:
        container.close()
    if width * height > limits.max_pixels:
        raise InputError(
            f"{path}: {width}x{height} frames have more pixels than the limit of {limits.max_pixels:,}"
        )
    if min(width, height) < limits.min_side:
        raise InputError(
            f"{path}: {width}x{height} frames are smaller than {limits.min_side} pixels on a side"
        )
    return width, height, Fraction(rate)


def read_video_frames(path: str | Path, limits: InputLimits = DEFAULT_LIMITS) -> Iterator[np.ndarray]:
    """The frames of a video as ``[H, W, 3]`` uint8 RGB, in order; over ``limits.max_frames`` is an error."""
    import av

    path = Path(path)
    probe_video(path, limits)
    container = _open(path)
    try:
        count = 0
        try:
            for frame in container.decode(video=0):
                count += 1
                if count > limits.max_frames:
                    raise InputError(f"{path}: more than {limits.max_frames} frames (the limit)")
                yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: corrupt video, decoding failed after {count} frames ({exc})") from exc
        if count == 0:
            raise InputError(f"{path}: no decodable video frame")
    finally:
        container.close()


class VideoWriter:
    """Writes RGB frames to an H.264 MP4 file (even frame size: an odd row/column is repeated)."""

    def __init__(self, path: str | Path, rate: Fraction) -> None:
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w", format="mp4")
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": "18"}
        self._sized = False

    def write(self, frame: np.ndarray) -> None:
        import av

        frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
        if not self._sized:
            self._stream.height, self._stream.width = frame.shape[:2]
            self._sized = True
        for packet in self._stream.encode(
            av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        ):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
