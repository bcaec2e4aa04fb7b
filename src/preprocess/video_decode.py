"""Video frames with PyAV: the frame count and the RGB frames at given indices, read sequentially.

Seeking in H.264 files is unreliable (frame-exact positions depend on the container's index and on B-frames),
so ``read_frames`` decodes every frame up to the last wanted index and converts only the wanted ones to RGB
(the conversion, not the decoding, is the costly part of a skipped frame). Frame ``i`` is the ``i``-th decoded
frame in presentation order, as with OpenCV's sequential ``grab``. Both functions raise ``VideoOpenError``
when the file cannot be opened as a video.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class VideoOpenError(OSError):
    """The file cannot be opened as a video (missing, not a media file, or without a video stream)."""


def _open(path: Path, threads: int):
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise VideoOpenError(f"cannot open {Path(path).name} as a video: {reason}") from error
    if not container.streams.video:
        container.close()
        raise VideoOpenError(f"cannot open {Path(path).name} as a video: no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = max(0, int(threads))
    return container, stream


def frame_count(path: Path, threads: int = 1) -> int:
    """The video stream's frame count from the container header, else counted from its packets (no
    decoding)."""
    import av

    container, stream = _open(path, threads)
    try:
        count = int(stream.frames or 0)
        if count <= 0:
            try:
                count = sum(1 for packet in container.demux(stream) if packet.size)
            except av.error.FFmpegError:
                count = 0
        return count
    finally:
        container.close()


def read_frames(path: Path, indices: list[int], threads: int = 1) -> dict[int, np.ndarray]:
    """The wanted frames as ``[H, W, 3]`` uint8 RGB, by index; frames that cannot be decoded are absent.

    Decoding stops at the last wanted index, or at the first decoding error (the frames after it are absent).
    ``threads``: decoder threads (0 = FFmpeg's choice).
    """
    import av

    wanted = set(indices)
    if not wanted:
        return {}
    last = max(wanted)
    out: dict[int, np.ndarray] = {}
    container, stream = _open(path, threads)
    try:
        for position, frame in enumerate(container.decode(stream)):
            if position in wanted:
                out[position] = frame.to_ndarray(format="rgb24")
            if position >= last:
                break
    except (av.error.FFmpegError, OSError):
        pass  # a damaged stream: what was decoded before the error is kept, the rest is reported missing
    finally:
        container.close()
    return out
