"""TraX server loop of ``lorat vot-server``: the VOT toolkit drives a tracker over stdin/stdout.

Protocol (TraX 4, single object, ``color`` channel):

* The server announces **rectangle** regions only. The TraX library on the toolkit's side converts
  any other initial region to its bounding rectangle before it is sent: a polygon (VOT2013-2019
  rotated boxes) becomes ``[min x, max x] x [min y, max y]`` of its corners, a mask (VOT2020+)
  the bounding box of its pixels. lorat then tracks that axis-aligned box.
* Images arrive as file paths (what the toolkit sends), raw memory or encoded buffers, and are
  decoded to RGB like every other frame in this package.
* ``initialize`` replies with the box the tracker starts from (confidence 1); every ``frame`` replies
  with the tracked box (``x, y, w, h`` pixels, clipped to the frame) and the tracker's score as the
  ``confidence`` property (what the toolkit's long-term analyses read). A new ``initialize`` in the
  same session restarts tracking (the toolkit's multistart and reset experiments do this).
* Bad input from the toolkit - an initial region outside the image or with no area, a frame that
  cannot be read or changes size, a frame before ``initialize``, several objects - ends the session
  with a TraX ``quit`` whose reason names the problem (the toolkit shows it as
  ``Server terminated the session: lorat vot-server: ...``); the process exits with status 1.
* A lost connection (the toolkit crashed or closed the pipe) ends the process with status 1 and a
  message on stderr; a ``quit`` from the toolkit ends it with status 0.

The model is loaded on the first ``initialize`` so that loading errors reach the toolkit as a TraX
error too. While serving, Python's ``sys.stdout`` and ``sys.stderr`` go to stderr through a
:class:`LineWriter`: stdout carries the protocol, and the toolkit reads stderr from the same pipe, where
a partial line (a progress bar's ``\\r`` updates) would swallow the next TraX message.
"""

from __future__ import annotations

import contextlib
import io
import os
import traceback
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from ..image_processing_lorat import validate_box_xywh
from ..video_io import read_image_file, to_rgb_uint8

REGION_FORMATS = ("rectangle",)
IMAGE_FORMATS = ("path", "memory", "buffer")
PREFIX = "lorat vot-server"


class SingleObjectTracker(Protocol):
    """What the server needs from a tracker (``LoratTracker`` has it)."""

    def init(self, frame: Any, box_xywh: Any) -> None: ...

    def track(self, frame: Any) -> tuple[Any, float]: ...


class SessionError(Exception):
    """Input from the TraX client that the server cannot serve; the message is sent as the quit reason."""


class LineWriter(io.TextIOBase):
    """Text stream writing only whole, non-empty lines to file descriptor ``fd`` (``\\r`` ends a line too).

    Each line goes out in one ``os.write`` call, so it never splits a TraX message sharing the pipe.
    Text after the last newline waits for the next write or :meth:`close`.
    """

    def __init__(self, fd: int = 2) -> None:
        super().__init__()
        self.fd = fd
        self._pending = ""

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def write(self, text: str) -> int:
        lines = (self._pending + text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._pending = lines.pop()
        self._emit(lines)
        return len(text)

    def _emit(self, lines: list[str]) -> None:
        data = "".join(line + "\n" for line in lines if line.strip()).encode("utf-8", "replace")
        while data:
            data = data[os.write(self.fd, data) :]

    def close(self) -> None:
        if not self.closed:
            self._emit([self._pending])
            self._pending = ""
        super().close()


def import_trax() -> Any:
    """Import the ``trax`` bindings, or raise ImportError saying how to install them."""
    try:
        import trax
        import trax.server  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            'lorat vot-server needs the TraX bindings: pip install "lorat[vot]" (vot-trax, vot-toolkit)'
        ) from exc
    return trax


def decode_image(image: Any) -> np.ndarray:
    """A TraX image (path, memory or buffer) -> ``(H, W, 3)`` uint8 RGB; raises SessionError."""
    kind = image.type()
    try:
        if kind == "path":
            return read_image_file(image.path())
        if kind == "memory":
            return to_rgb_uint8(image.array(), what="TraX memory image")
        if kind == "buffer":
            from PIL import Image

            with Image.open(io.BytesIO(image.buffer())) as decoded:
                decoded.load()
                return to_rgb_uint8(decoded, what="TraX buffer image")
    except (OSError, ValueError) as exc:
        raise SessionError(f"cannot read the frame: {exc}") from None
    raise SessionError(f"unsupported TraX image type {kind!r}; lorat accepts {', '.join(IMAGE_FORMATS)}")


def initial_box(region: Any, frame_size: tuple[int, int]) -> np.ndarray:
    """The initial TraX region -> validated ``x, y, w, h`` (float64); raises SessionError."""
    if region.type != "rectangle":
        raise SessionError(f"lorat serves rectangle regions; the toolkit sent a {region.type} region")
    try:
        return validate_box_xywh(region.bounds(), frame_size)
    except ValueError as exc:
        raise SessionError(f"bad initial region: {exc}") from None


class _Session:
    """State of one TraX session: the (lazily loaded) tracker and whether it was initialised."""

    def __init__(self, trax: Any, load_tracker: Callable[[], SingleObjectTracker]) -> None:
        self.trax = trax
        self.load_tracker = load_tracker
        self.tracker: SingleObjectTracker | None = None
        self.frame_size: tuple[int, int] | None = None

    def _rectangle(self, box: Any) -> Any:
        from trax.region import Rectangle

        x, y, w, h = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
        return Rectangle.create(x, y, w, h)

    def _frame(self, request: Any) -> np.ndarray:
        images = request.image or {}
        if "color" not in images:
            raise SessionError(f"the request has no color image (channels: {sorted(images)})")
        return decode_image(images["color"])

    def _load(self) -> SingleObjectTracker:
        if self.tracker is None:
            try:
                self.tracker = self.load_tracker()
            except (OSError, ValueError) as exc:
                raise SessionError(f"cannot load the model: {exc}") from None
        return self.tracker

    def handle(self, request: Any) -> list[tuple[Any, dict[str, str]]]:
        """Serve an ``initialize`` or ``frame`` request -> the objects to report."""
        status = self.trax.TraxStatus
        if request.type == status.INITIALIZE:
            objects = request.objects or []
            if len(objects) != 1:
                raise SessionError(f"lorat tracks one object; initialize sent {len(objects)} objects")
            frame = self._frame(request)
            size = (int(frame.shape[1]), int(frame.shape[0]))
            box = initial_box(objects[0][0], size)
            self._load().init(frame, box)
            self.frame_size = size
            return [(self._rectangle(box), {"confidence": "1.0"})]
        if request.type == status.FRAME:
            if self.frame_size is None:
                raise SessionError("the toolkit sent a frame before initialize")
            if request.objects:
                raise SessionError("lorat tracks one object; a frame request cannot add objects")
            frame = self._frame(request)
            size = (int(frame.shape[1]), int(frame.shape[0]))
            if size != self.frame_size:
                raise SessionError(
                    f"frame size changed from {self.frame_size[0]}x{self.frame_size[1]} to {size[0]}x{size[1]}"
                )
            box, score = self.tracker.track(frame)
            return [(self._rectangle(box), {"confidence": f"{float(score):.6f}"})]
        raise SessionError(f"unexpected TraX request {request.type!r}")


def _quit(server: Any, reason: str | None, trax: Any) -> None:
    with contextlib.suppress(trax.TraxException):
        server.quit(reason=reason)


def serve(
    load_tracker: Callable[[], SingleObjectTracker],
    *,
    name: str = "lorat",
    description: str = "LoRAT (ECCV 2024) single-object tracker",
) -> int:
    """Serve one TraX session on stdin/stdout (or ``TRAX_SOCKET``) -> process exit status.

    Args:
        load_tracker: builds the tracker; called once, on the first ``initialize``. ``OSError`` /
            ``ValueError`` from it are reported to the toolkit as "cannot load the model".
        name, description: the tracker's TraX metadata.

    Messages go to stderr (fd 2), which the toolkit records in its log.

    Returns 0 when the toolkit ends the session, 1 on bad input (sent as the quit reason), a lost
    connection or an internal error.
    """
    trax = import_trax()
    with LineWriter(2) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        server = trax.server.Server(
            list(REGION_FORMATS),
            list(IMAGE_FORMATS),
            ["color"],
            tracker_name=name,
            tracker_description=description,
            tracker_family="lorat",
        )
        session = _Session(trax, load_tracker)
        while True:
            try:
                request = server.wait()
            except trax.TraxException as exc:
                print(f"{PREFIX}: connection to the VOT toolkit lost while waiting ({exc})", file=log)
                return 1
            if request.type == trax.TraxStatus.QUIT:
                _quit(server, None, trax)
                return 0
            try:
                objects = session.handle(request)
            except SessionError as exc:
                message = f"{PREFIX}: {exc}"
                print(message, file=log)
                _quit(server, message, trax)
                return 1
            except Exception as exc:  # the toolkit must hear about it, not wait for a timeout
                traceback.print_exc(file=log)
                message = f"{PREFIX}: internal error: {type(exc).__name__}: {exc}"
                _quit(server, message, trax)
                return 1
            try:
                server.status(objects)
            except trax.TraxException as exc:
                print(f"{PREFIX}: connection to the VOT toolkit lost while replying ({exc})", file=log)
                return 1
