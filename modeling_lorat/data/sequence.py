"""The one in-memory description of a tracking sequence, shared by evaluation and training.

Box convention (used everywhere outside the model): ``x, y, w, h`` in pixels of the original
frame, float64. Unknown ground truth is a row of NaN; ``absent[i]`` is True when the target
is marked absent / fully occluded / out of view in frame ``i``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FrameRef = str | Path | Callable[[], np.ndarray]


def load_image(ref: FrameRef) -> np.ndarray:
    """Load one frame as an ``(H, W, 3)`` uint8 RGB array.

    ``ref`` is a file path or a zero-argument callable returning an image. Grayscale and RGBA
    images are converted to RGB and 16-bit images scaled to 8 bits (see
    :func:`modeling_lorat.video_io.to_rgb_uint8`). Raises ``FileNotFoundError`` / ``ValueError``
    naming the frame.
    """
    from ..video_io import read_image_file, to_rgb_uint8

    if callable(ref):
        return to_rgb_uint8(ref())
    return read_image_file(ref)


@dataclass
class TrackingSequence:
    """A video with per-frame ground truth.

    Attributes:
        name: sequence name, unique within its dataset (used for result file names).
        frames: one reference per frame (path or loader callable); frames are read lazily.
        boxes: ``(N, 4)`` float64 ``x, y, w, h`` pixels; NaN rows where unknown.
        absent: ``(N,)`` bool, True where the target is absent (benchmark flags).
        dataset: dataset name, e.g. ``"lasot"``.
        attributes: free-form metadata (class name, per-sequence attribute flags, ...).
    """

    name: str
    frames: Sequence[FrameRef]
    boxes: np.ndarray
    absent: np.ndarray | None = None
    dataset: str = ""
    attributes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        if self.absent is None:
            self.absent = np.zeros(len(self.boxes), dtype=bool)
        self.absent = np.asarray(self.absent, dtype=bool).reshape(-1)
        if len(self.boxes) != len(self.absent):
            raise ValueError(f"{self.name}: {len(self.boxes)} boxes but {len(self.absent)} absent flags")

    def __len__(self) -> int:
        return len(self.frames)

    def load_frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as ``(H, W, 3)`` uint8 RGB."""
        return load_image(self.frames[index])

    def valid(self) -> np.ndarray:
        """``(N,)`` bool: ground truth known, positive size and target present."""
        finite = np.all(np.isfinite(self.boxes), axis=1)
        with np.errstate(invalid="ignore"):
            sized = (self.boxes[:, 2] > 0) & (self.boxes[:, 3] > 0)
        return finite & sized & ~self.absent
