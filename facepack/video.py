"""Video files and webcams through OpenCV (cv2.VideoCapture / cv2.VideoWriter) for predict.py.

OpenCV hands out frames as BGR; ``read_frames`` converts each to RGB exactly once
(cv2.COLOR_BGR2RGB), and ``VideoOut.write`` takes RGB and converts back for the writer, so
everything in between (the pipeline, the drawings) sees RGB like a decoded photo.

Frame index: 0-based position in the source (what `--every N` counts: frames 0, N, 2N, ...).
Time: milliseconds from the start, the decoder's timestamp of that frame
(cv2.CAP_PROP_POS_MSEC; a stream without timestamps: index * 1000 / fps); for a webcam, which has
none, wall-clock milliseconds since the first frame.

Annotated video: MPEG-4 Part 2 ("mp4v" FourCC) in an .mp4 container, the encoder the
opencv-python-headless wheel's FFmpeg has (its FFmpeg has no H.264 encoder: "avc1" fails to open).
It plays in VLC, ffmpeg and most desktop players; browsers mostly do not play MPEG-4 Part 2.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np

# FFmpeg's own log lines ("moov atom not found", ...) go straight to stderr; OpenCV reads this
# variable once, when its FFmpeg backend first starts, so it is set before any capture opens
# (-8 = AV_LOG_QUIET). Our errors name the file instead.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

# Extensions read as video without trying them as images first (other files are tried as images,
# then probed: facepack/video.py:probe).
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv",
                              ".flv", ".3gp", ".ts", ".mts", ".m2ts", ".ogv"})
FOURCC = "mp4v"
WEBCAM_FPS = 30.0  # fps written for a webcam that does not report one
PROBE_MIN_FRAMES = 2  # a probed file must report at least this many frames (FFmpeg opens a JPEG as a 1-frame video)


class VideoError(ValueError):
    """A video or webcam that cannot be opened or written; the message names it."""


def is_video_name(path) -> bool:
    """Whether the file's extension is a video's (VIDEO_EXTENSIONS, any case)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@contextlib.contextmanager
def quiet_opencv():
    """OpenCV's own log silenced (a file it cannot open prints a WARN line; we report our own)."""
    import cv2

    level = cv2.getLogLevel()
    cv2.setLogLevel(0)  # LOG_LEVEL_SILENT
    try:
        yield
    finally:
        cv2.setLogLevel(level)


def probe(path) -> bool:
    """Whether OpenCV's FFmpeg backend opens ``path`` as a video of >= PROBE_MIN_FRAMES frames."""
    import cv2

    with quiet_opencv():
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        return bool(cap.isOpened()) and cap.get(cv2.CAP_PROP_FRAME_COUNT) >= PROBE_MIN_FRAMES
    finally:
        cap.release()


def open_capture(source):
    """cv2.VideoCapture of a file path (FFmpeg backend) or a webcam index (int); VideoError if closed."""
    import cv2

    if isinstance(source, int):
        with quiet_opencv():
            cap = cv2.VideoCapture(source)
        what = f"webcam {source}"
        hint = "check the index (0 is the first camera) and that no other program holds it"
    else:
        with quiet_opencv():
            cap = cv2.VideoCapture(str(source), cv2.CAP_FFMPEG)
        what = str(source)
        hint = "not a video OpenCV's FFmpeg can read"
    if not cap.isOpened():
        cap.release()
        if not isinstance(source, int) and _container(source):  # e.g. an .mp4 written with 0 frames
            raise VideoError(f"{what}: no frames (a video container without a stream OpenCV's FFmpeg can decode)")
        raise VideoError(f"{what}: cannot open ({hint})")
    return cap


# Magic bytes of video containers: (offset, bytes). A file that has one but does not open holds no
# (decodable) video stream, e.g. an .mp4 written with 0 frames.
CONTAINER_MAGIC = ((4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (0, b"RIFF"), (0, b"\x1a\x45\xdf\xa3"),
                   (0, b"OggS"), (0, b"\x00\x00\x01\xba"), (0, b"FLV"))


def _container(path) -> bool:
    """Whether ``path`` starts like a video container (CONTAINER_MAGIC)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return any(head[o:o + len(m)] == m for o, m in CONTAINER_MAGIC)


def capture_info(cap, webcam: bool = False) -> dict:
    """{fps, frames (None when unknown, e.g. a webcam), width, height} of an open capture."""
    import cv2

    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    return {"fps": fps if fps > 0 else (WEBCAM_FPS if webcam else None),
            "frames": frames if frames > 0 and not webcam else None,
            "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))}


def read_frames(cap, every: int = 1, max_frames: int | None = None, webcam: bool = False):
    """Yield (frame index, time ms, (H, W, 3) uint8 RGB) for frames 0, every, 2*every, ...

    Stops at the end of the stream or after ``max_frames`` yielded frames. Skipped frames are
    only grabbed (not converted). The one BGR -> RGB conversion of the video path happens here.
    """
    import cv2

    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    index, yielded, t_start = 0, 0, None
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    while max_frames is None or yielded < max_frames:
        if index % every:
            if not cap.grab():
                return
            index += 1
            continue
        ok, bgr = cap.read()
        if not ok:
            return
        now = time.monotonic()
        t_start = now if t_start is None else t_start
        time_ms = (now - t_start) * 1000.0 if webcam else float(cap.get(cv2.CAP_PROP_POS_MSEC))
        if not webcam and time_ms <= 0 and index > 0 and fps > 0:  # no timestamps in the stream
            time_ms = index * 1000.0 / fps
        yield index, time_ms, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        yielded += 1
        index += 1


def frames_to_analyse(info: dict, every: int, max_frames: int | None) -> int | None:
    """How many frames read_frames will yield (None when the stream's length is unknown)."""
    if info["frames"] is None:
        return max_frames
    n = -(-info["frames"] // every)
    return n if max_frames is None else min(n, max_frames)


class VideoOut:
    """An annotated video: ``write(rgb)`` frame by frame, ``close()`` finishes the file.

    path: .mp4 (FOURCC mp4v); fps: frames per second written (predict.py: source fps / every, so
    the video lasts as long as the source); size: (width, height) of every frame.
    """

    def __init__(self, path, fps: float, size: tuple[int, int]):
        import cv2

        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self.frames = 0
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*FOURCC), float(fps), self.size)
        if not self._writer.isOpened():
            raise VideoError(f"{self.path}: cannot write a {FOURCC} video there (check the folder and the .mp4 name)")

    def write(self, rgb) -> None:
        import cv2

        frame = np.asarray(rgb, dtype=np.uint8)
        if (frame.shape[1], frame.shape[0]) != self.size:
            raise ValueError(f"{self.path}: frame {frame.shape[1]}x{frame.shape[0]} != video {self.size[0]}x{self.size[1]}")
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        self._writer.release()
