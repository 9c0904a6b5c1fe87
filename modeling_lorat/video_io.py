"""Lazy frame sources and annotated-video / result-file writers (PyAV, no system ffmpeg needed).

* :func:`open_frames` turns a video file, a folder of images or in-memory images into a
  :class:`FrameSource` that yields ``(H, W, 3)`` uint8 RGB frames one at a time (memory does not
  grow with the video length). Grayscale frames are repeated to 3 channels and RGBA frames lose
  their alpha channel; every frame must have the size of the first one.
* :class:`AnnotatedVideoWriter` draws the tracked box (``x, y, w, h`` pixels) and its score on each
  frame and encodes H.264 (``libx264``, yuv420p) or MPEG-4 Part 2 (``mp4v``) as a fallback. It writes
  to a temporary file and renames it on a successful close, so the final path never holds a
  half-written video.
* :func:`write_results_txt` / :func:`read_results_txt`: benchmark result files, one ``x,y,w,h`` line
  per frame (written atomically).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .image_utils import to_rgb_uint8
from .io_utils import atomic_write_text, format_boxes, natural_sort_key, read_result_boxes

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")


def read_image_file(path: str | os.PathLike) -> np.ndarray:
    """Decode one image file to ``(H, W, 3)`` uint8 RGB with :func:`to_rgb_uint8` (16-bit files scaled).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file when it cannot be
    decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"frame not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            return to_rgb_uint8(img, what=f"frame {path}")
    except OSError as exc:
        raise ValueError(f"cannot read frame {path}: {exc}") from None


class FrameSource:
    """Iterable of ``(H, W, 3)`` uint8 RGB frames, read lazily.

    Attributes:
        fps: frames per second for videos (None when unknown, e.g. image folders).
        name: human-readable origin (path or ``"<frames>"``), used in error messages.

    ``len(source)`` works when the frame count is known (folders, lists, most videos); otherwise it
    raises ``TypeError``. Frames are always writable arrays owned by the caller. Iterating checks that every frame has the size of the first one and raises
    ``ValueError`` naming the frame index otherwise.
    """

    fps: float | None = None
    name: str = "<frames>"

    def _raw_frames(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def _length(self) -> int | None:
        return None

    def __len__(self) -> int:
        length = self._length()
        if length is None:
            raise TypeError(f"the number of frames of {self.name} is not known in advance")
        return length

    @property
    def num_frames(self) -> int | None:
        """Frame count when known, else None."""
        return self._length()

    def __iter__(self) -> Iterator[np.ndarray]:
        first_shape = None
        count = 0
        for index, frame in enumerate(self._raw_frames()):
            if first_shape is None:
                first_shape = frame.shape
            elif frame.shape != first_shape:
                raise ValueError(
                    f"{self.name}: frame {index} is {frame.shape[1]}x{frame.shape[0]} but frame 0 is "
                    f"{first_shape[1]}x{first_shape[0]} (all frames must have the same size)"
                )
            count += 1
            yield frame if frame.flags.writeable else frame.copy()
        if count == 0:
            raise ValueError(f"{self.name}: no frames")


class TruncatedVideoWarning(UserWarning):
    """Fewer frames decoded than the video container declares (a cut or damaged file)."""


class VideoFrameSource(FrameSource):
    """Frames decoded one at a time from a video file with PyAV.

    Attributes:
        frame_size: ``(W, H)`` of the first frame, pixels.
        declared_frames: the frame count the container declares (the stream's count, or duration x
            frame rate when the container stores no count, e.g. Matroska); None when unknown.
        decoded_frames: frames decoded by the last full iteration (None before one finished).
        truncated: True when the last iteration decoded fewer frames than declared (beyond a
            tolerance of 2 frames or 1%, 2% for estimated counts) or stopped at undecodable data (e.g. an mp4 with its index at the front, cut in half). A
            :class:`TruncatedVideoWarning` is issued too; the frames decoded up to there keep their
            indices (nothing is shifted or invented).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import av

        self.path = Path(path)
        self.name = str(self.path)
        if not self.path.is_file():
            raise FileNotFoundError(f"video not found: {self.path}")
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise ValueError(f"{self.path}: no video stream")
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate
                self.fps = float(rate) if rate else None
                self._frames = int(stream.frames) or None
                self.declared_frames, self._declared_exact = self._frames, self._frames is not None
                if self._frames is None and self.fps and container.duration:
                    self.declared_frames = round(container.duration / 1_000_000 * self.fps)
                first = next(iter(container.decode(stream)), None)
        except av.FFmpegError as exc:
            raise ValueError(f"cannot read video {self.path}: {exc}") from None
        if first is None:
            raise ValueError(f"{self.path}: the video has no decodable frames")
        self.frame_size = (int(first.width), int(first.height))
        self.decoded_frames: int | None = None
        self.truncated = False

    def _length(self) -> int | None:
        return self._frames

    def _missing_frames(self, decoded: int) -> int:
        """Declared frames that did not decode (0 within a small tolerance, see below)."""
        if not self.declared_frames:
            return 0
        # a frame or two may legitimately not decode (mp4 edit lists); estimated counts are rounder
        slack = max(2, round((0.01 if self._declared_exact else 0.02) * self.declared_frames))
        missing = self.declared_frames - decoded
        return missing if missing > slack else 0

    def _raw_frames(self) -> Iterator[np.ndarray]:
        import warnings

        import av

        decoded, error = 0, None
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                frames = container.decode(stream)
                while True:
                    try:
                        frame = next(frames)
                    except StopIteration:
                        break
                    except av.FFmpegError as exc:
                        if decoded == 0:
                            raise
                        error = exc  # damaged or cut data: keep what decoded, report below
                        break
                    decoded += 1
                    yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise ValueError(f"cannot decode video {self.path}: {exc}") from None
        missing = self._missing_frames(decoded)
        self.decoded_frames, self.truncated = decoded, bool(missing or error)
        if self.truncated:
            declared = f" of the {self.declared_frames} frames the container declares" if missing else ""
            reason = f" (decoding stopped: {error})" if error else ""
            warnings.warn(
                f"{self.path}: decoded only {decoded}{declared}{reason}; the file looks truncated or "
                f"damaged, frames from {decoded} on are missing",
                TruncatedVideoWarning,
                stacklevel=2,
            )


class ImageFolderSource(FrameSource):
    """Image files of a folder in natural order (``1.jpg, 2.jpg, 10.jpg``), loaded one at a time."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder)
        self.name = str(self.path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.path}")
        files = [p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        if not files:
            raise ValueError(f"{self.path}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
        self.files = sorted(files, key=lambda p: natural_sort_key(p.name))

    def _length(self) -> int | None:
        return len(self.files)

    def _raw_frames(self) -> Iterator[np.ndarray]:
        for file in self.files:
            yield read_image_file(file)


class IterableFrameSource(FrameSource):
    """Frames from a list / iterator of PIL, numpy or torch images (converted one at a time).

    A list (or other sized sequence) can be iterated several times and has a length; a plain
    iterator or generator can be consumed only once.
    """

    def __init__(self, frames: Iterable[Any], fps: float | None = None) -> None:
        self._frames = frames
        self.fps = fps
        self._consumed = False

    def _length(self) -> int | None:
        try:
            return len(self._frames)  # type: ignore[arg-type]
        except TypeError:
            return None

    def _raw_frames(self) -> Iterator[np.ndarray]:
        if isinstance(self._frames, Iterator):
            if self._consumed:
                raise ValueError("this frame iterator was already consumed")
            self._consumed = True
        for index, frame in enumerate(self._frames):
            if isinstance(frame, (str, os.PathLike)):
                yield read_image_file(frame)
            else:
                yield to_rgb_uint8(frame, what=f"frame {index}")


def open_frames(source: Any, fps: float | None = None) -> FrameSource:
    """Open a video file, an image folder or in-memory frames as a lazy :class:`FrameSource`.

    Args:
        source: path to a video file (anything FFmpeg/PyAV decodes) or to a folder of images; a
            ``FrameSource``; a list / iterator of PIL images, numpy or torch arrays, or image paths;
            or one ``(N, H, W, C)`` array / tensor.
        fps: frame rate to report for in-memory frames (videos report their own).

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: unreadable video, a file without a video stream, an empty folder.
    """
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"video or image folder not found: {path}")
        return ImageFolderSource(path) if path.is_dir() else VideoFrameSource(path)
    if isinstance(source, Image.Image):
        raise ValueError("got a single image; pass a list of frames, a video file or an image folder")
    if hasattr(source, "ndim") and getattr(source, "ndim", 0) == 4:
        return IterableFrameSource(list(source), fps=fps)
    if isinstance(source, Iterable) and not (hasattr(source, "ndim") and source.ndim < 4):
        return IterableFrameSource(source, fps=fps)
    raise ValueError(
        f"cannot read frames from {type(source).__name__}; expected a video path, an image folder, "
        "or a list of images"
    )


# ---------------------------------------------------------------------------------------------- writing
def _even(value: int) -> int:
    return value + (value % 2)


class AnnotatedVideoWriter:
    """Write frames with the tracked box and score drawn on them to a video file.

    Args:
        path: output file (``.mp4`` recommended; the container follows the extension).
        fps: frames per second.
        size: frame size ``(W, H)`` in pixels; odd sizes are padded (bottom/right, black) to even.
        codec: ``"libx264"`` (H.264, yuv420p) by default; falls back to ``"mpeg4"`` (mp4v) when
            the FFmpeg build inside PyAV has no libx264.
        color: RGB colour of the box and label.

    Use as a context manager; frames go to a temporary file next to ``path`` that is renamed to
    ``path`` only when the block exits without an exception (otherwise it is deleted).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        size: tuple[int, int],
        codec: str = "libx264",
        color: tuple[int, int, int] = (0, 255, 0),
        crf: int = 23,
    ) -> None:
        if not fps or fps <= 0 or not np.isfinite(fps):
            raise ValueError(f"fps must be a positive number, got {fps}")
        width, height = int(size[0]), int(size[1])
        if width < 1 or height < 1:
            raise ValueError(f"video size must be positive, got {width}x{height}")
        self.path = Path(path)
        self.fps = float(fps)
        self.size = (width, height)
        self.codec = codec
        self.color = tuple(color)
        self.crf = crf
        self.frames_written = 0
        self._tmp = self.path.with_name(f".{self.path.stem}.{uuid.uuid4().hex[:8]}.partial{self.path.suffix}")
        self._container = None
        self._stream = None
        self._font = None

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> AnnotatedVideoWriter:
        """Create the temporary file and the encoder (called by ``__enter__``)."""
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        rate = Fraction(self.fps).limit_denominator(1001)
        codecs = [self.codec] + (["mpeg4"] if self.codec != "mpeg4" else [])
        last_error: Exception | None = None
        for codec in codecs:
            if codec not in av.codecs_available:
                continue
            try:
                container = av.open(str(self._tmp), mode="w")
            except ValueError as exc:  # includes av.FFmpegError
                raise ValueError(
                    f"cannot write video {self.path}: {exc} (use an extension such as .mp4, .mkv or .avi)"
                ) from exc
            try:
                stream = container.add_stream(codec, rate=rate)
                stream.width, stream.height = _even(self.size[0]), _even(self.size[1])
                stream.pix_fmt = "yuv420p"
                if codec == "libx264":
                    stream.options = {"crf": str(self.crf), "preset": "veryfast"}
                else:
                    stream.bit_rate = 4_000_000
            except (av.FFmpegError, ValueError) as exc:
                container.close()
                self._tmp.unlink(missing_ok=True)
                last_error = exc
                continue
            self._container, self._stream, self.codec = container, stream, codec
            return self
        raise ValueError(f"no usable video encoder among {codecs}: {last_error}")

    def __enter__(self) -> AnnotatedVideoWriter:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(success=exc_type is None)

    def close(self, success: bool = True) -> None:
        """Flush the encoder; on success move the file to ``path``, otherwise delete it."""
        if self._container is None:
            return
        container, stream = self._container, self._stream
        self._container = self._stream = None
        try:
            if success:
                for packet in stream.encode(None):
                    container.mux(packet)
            container.close()
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        if success and self.frames_written > 0:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)
            if success:
                raise ValueError(f"no frames were written to {self.path}")

    # ------------------------------------------------------------------ frames
    def annotate(
        self, frame: Any, box_xywh: Any | None = None, score: float | None = None, label: str | None = None
    ) -> Image.Image:
        """Return ``frame`` as a PIL image with the box (``x, y, w, h`` pixels) and ``score`` drawn on it."""
        image = Image.fromarray(to_rgb_uint8(frame))
        if box_xywh is None:
            return image
        box = np.asarray(box_xywh, dtype=np.float64).reshape(-1)
        if box.size != 4 or not np.all(np.isfinite(box)):
            return image
        draw = ImageDraw.Draw(image)
        thickness = max(2, round(min(image.size) / 240))
        x1, y1 = box[0], box[1]
        x2, y2 = max(x1, box[0] + box[2] - 1), max(y1, box[1] + box[3] - 1)
        draw.rectangle([x1, y1, x2, y2], outline=self.color, width=thickness)
        text = label if label is not None else (f"{score:.2f}" if score is not None else None)
        if text:
            font = self._get_font(image.size)
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            tx = min(max(x1, 0), max(image.size[0] - (right - left) - 2, 0))
            ty = y1 - (bottom - top) - 4
            if ty < 0:
                ty = min(max(y2 + 2, 0), max(image.size[1] - (bottom - top) - 4, 0))
            draw.rectangle([tx, ty, tx + right - left + 3, ty + bottom - top + 3], fill=self.color)
            draw.text((tx + 2 - left, ty + 2 - top), text, fill=(0, 0, 0), font=font)
        return image

    def _get_font(self, size: tuple[int, int]) -> Any:
        if self._font is None:
            font_size = max(10, round(min(size) / 30))
            try:
                self._font = ImageFont.load_default(size=font_size)
            except TypeError:  # Pillow < 10.1
                self._font = ImageFont.load_default()
        return self._font

    def write(
        self, frame: Any, box_xywh: Any | None = None, score: float | None = None, label: str | None = None
    ) -> None:
        """Annotate and encode one frame (``(H, W, 3)`` RGB, the writer's ``size``)."""
        import av

        if self._container is None:
            raise RuntimeError("the writer is not open; use it as a context manager")
        image = self.annotate(frame, box_xywh, score, label)
        if image.size != self.size:
            raise ValueError(
                f"frame {self.frames_written} is {image.size[0]}x{image.size[1]}, "
                f"the video is {self.size[0]}x{self.size[1]}"
            )
        array = np.asarray(image)
        pad_w, pad_h = _even(self.size[0]) - self.size[0], _even(self.size[1]) - self.size[1]
        if pad_w or pad_h:
            array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)))
        video_frame = av.VideoFrame.from_ndarray(array, format="rgb24").reformat(format="yuv420p")
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames_written += 1


# ---------------------------------------------------------------------------------------------- results
def write_results_txt(path: str | os.PathLike, boxes_xywh: Any) -> Path:
    """Write ``(N, 4)`` boxes ``x, y, w, h`` (pixels) as ``x,y,w,h`` lines, atomically. Returns the path."""
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    atomic_write_text(path, format_boxes(boxes))
    return Path(path)


def read_results_txt(path: str | os.PathLike, num_frames: int | None = None) -> np.ndarray:
    """Read an ``x,y,w,h`` result file (comma/tab/space separated) as ``(N, 4)`` float64 pixels.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a malformed line or, when
    ``num_frames`` is given, a different number of lines.
    """
    return read_result_boxes(path, num_frames=num_frames)
