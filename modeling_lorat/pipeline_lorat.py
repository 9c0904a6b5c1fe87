"""``pipeline("single-object-tracking")``: track one object through a video with a LoRAT model.

```python
from transformers import pipeline
import modeling_lorat  # registers the model type and (via register_pipeline) the task

tracker = pipeline("single-object-tracking", model="path/or/hub-id", device="cpu")
for result in tracker("video.mp4", box=(x, y, w, h)):  # lazy: one frame decoded and tracked per step
    print(result["frame_index"], result["box"], result["score"])
```

Boxes are ``x, y, w, h`` in pixels of the original frames. Frame 0 returns the given box with score
1.0. Tracking is sequential within a video, so a single video is streamed frame by frame through
:class:`LoratTracker`; several videos (``box`` a list of boxes, one per video) are tracked in
lock-step, ``batch_size`` videos per batched forward pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from transformers import AutoModel, Pipeline

from .image_processing_lorat import validate_box_xywh
from .loading_utils import resolve_device
from .tracking_lorat import LoratTracker, TrackerState
from .video_io import FrameSource, open_frames

TASK = "single-object-tracking"


def iter_track(
    tracker: LoratTracker, frames: FrameSource, box_xywh: Any
) -> Iterator[tuple[int, np.ndarray, np.ndarray, float]]:
    """Track one object lazily: yields ``(frame_index, frame (H, W, 3) uint8, box_xywh (4,) pixels, score)``.

    Frame 0 yields the given box (validated against the frame) with score 1.0.
    """
    state: TrackerState | None = None
    for index, frame in enumerate(frames):
        if state is None:
            state = tracker.initialize(frame, box_xywh)
            yield index, frame, validate_box_xywh(box_xywh), 1.0
            continue
        result = tracker.step([state], [frame])[0]
        yield index, frame, result.box_xywh, result.score


def _as_result(index: int, box: np.ndarray, score: float) -> dict[str, Any]:
    return {"frame_index": int(index), "box": [float(v) for v in box], "score": float(score)}


def _check_box_values(box: Any) -> None:
    """Raise ``ValueError`` (one line) for a box, or list of boxes, holding strings instead of numbers."""
    pending, strings = [box], []
    while pending and not strings:
        value = pending.pop(0)
        if isinstance(value, (str, bytes)):
            strings.append(value)
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
    if strings:
        raise ValueError(
            f"box must be numbers x, y, w, h (pixels), got the string {strings[0]!r} in {box!r}; "
            "convert first, e.g. box=tuple(float(v) for v in text.split(','))"
        )


def _is_box_list(box: Any) -> bool:
    """True for ``[(x, y, w, h), ...]`` (one box per video), False for a single box."""
    if isinstance(box, (np.ndarray, torch.Tensor)):
        return box.ndim == 2
    return isinstance(box, (list, tuple)) and len(box) > 0 and hasattr(box[0], "__len__")


def _resolve_dtype(dtype: Any) -> torch.dtype | None:
    if dtype is None or dtype == "auto":
        return None
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype.replace("torch.", ""), None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}; expected e.g. 'float32', 'float16' or 'bfloat16'")
        return resolved
    return dtype


class SingleObjectTrackingPipeline(Pipeline):
    """Single-object tracking pipeline around [`LoratTracker`] (see the module docstring).

    Args:
        model: a `LoratForTracking` (peft-wrapped models are merged first).
        image_processor: a `LoratImageProcessor` (default: built from the model config).
        device: where to run (Pipeline convention: int ordinal, ``"cpu"``, ``"cuda:0"``, torch.device).
        dtype / torch_dtype: model dtype for tracking (``"auto"`` keeps the model's).
        compile: wrap the model forward in ``torch.compile``.
    """

    _load_processor = False
    _load_image_processor = None
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, model: Any, *args: Any, **kwargs: Any) -> None:
        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        dtype = kwargs.get("dtype", None)
        if dtype is None or dtype == "auto":
            dtype = kwargs.get("torch_dtype", None)
        compile_model = bool(kwargs.pop("compile", False))
        device = kwargs.get("device")
        if device is not None and not (isinstance(device, int) and device < 0):
            resolve_device(device)  # one clear line for "gpu" or "cuda" without a GPU
        super().__init__(model, *args, **kwargs)
        self.tracker = LoratTracker(
            self.model,
            image_processor=self.image_processor,
            device=self.device,
            dtype=_resolve_dtype(dtype),
            compile=compile_model,
        )
        self.model = self.tracker.model

    # ------------------------------------------------------------------ Pipeline protocol
    def _sanitize_parameters(self, box: Any = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        preprocess = {"box": box} if box is not None else {}
        return preprocess, {}, {}

    def preprocess(self, inputs: Any, box: Any = None) -> dict[str, Any]:
        """Open the video (path, folder, frames) and validate the box -> ``{"frames", "box"}``."""
        if box is None:
            raise ValueError("single-object-tracking needs the target box: pipe(video, box=(x, y, w, h))")
        return {"frames": open_frames(inputs), "box": validate_box_xywh(box)}

    def _forward(self, model_inputs: dict[str, Any]) -> Iterator[tuple[int, np.ndarray, np.ndarray, float]]:
        """Lazy tracking loop (one batched tracker step per frame)."""
        return iter_track(self.tracker, model_inputs["frames"], model_inputs["box"])

    def postprocess(self, model_outputs: Iterator[tuple]) -> Iterator[dict[str, Any]]:
        """Per-frame ``{"frame_index", "box": [x, y, w, h] (pixels), "score"}`` dicts, lazily."""
        for index, _frame, box, score in model_outputs:
            yield _as_result(index, box, score)

    # ------------------------------------------------------------------ entry point
    def __call__(  # type: ignore[override]
        self, video: Any, box: Any = None, batch_size: int | None = None, **kwargs: Any
    ) -> Iterator[dict[str, Any]] | list[list[dict[str, Any]]]:
        """Track the object ``box`` (``x, y, w, h`` pixels in frame 0) through ``video``.

        Args:
            video: video file, image folder, list/iterator of frames (PIL/numpy/torch) or a
                ``FrameSource``; or a list of those when ``box`` is a list of boxes.
            box: ``(x, y, w, h)`` for one video, or ``[(x, y, w, h), ...]`` for a list of videos.
            batch_size: videos tracked together per forward pass (several videos only; a single video
                is sequential by nature).

        Returns:
            one video: a lazy generator of ``{"frame_index", "box", "score"}`` dicts (frame 0 = ``box``,
            score 1.0); several videos: a list with one list of such dicts per video.
        """
        if kwargs:
            raise TypeError(f"unexpected arguments: {sorted(kwargs)}")
        if box is None:
            box = self._preprocess_params.get("box")
        if box is None:
            raise ValueError("single-object-tracking needs the target box: pipe(video, box=(x, y, w, h))")
        _check_box_values(box)
        if _is_box_list(box):
            if not isinstance(video, (list, tuple)) or len(video) != len(box):
                raise ValueError(
                    f"got {len(box)} boxes: pass a list of as many videos (got {type(video).__name__})"
                )
            return self._track_many(list(video), list(box), batch_size or self._batch_size or len(video))
        model_inputs = self.preprocess(video, box=box)
        return self.postprocess(self._forward(model_inputs))

    def _track_many(self, videos: list[Any], boxes: list[Any], batch_size: int) -> list[list[dict[str, Any]]]:
        """Track several videos in lock-step, ``batch_size`` of them per batched forward pass."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        inputs = [self.preprocess(video, box=box) for video, box in zip(videos, boxes)]
        results: list[list[dict[str, Any]]] = [[] for _ in videos]
        for start in range(0, len(inputs), batch_size):
            group = list(range(start, min(start + batch_size, len(inputs))))
            iterators = {i: iter(inputs[i]["frames"]) for i in group}
            states: dict[int, TrackerState] = {}
            for i in group:
                frame = next(iterators[i])
                states[i] = self.tracker.initialize(frame, inputs[i]["box"])
                results[i].append(_as_result(0, inputs[i]["box"], 1.0))
            while states:
                active, frames = [], []
                for i in list(states):
                    frame = next(iterators[i], None)
                    if frame is None:
                        del states[i]
                        continue
                    active.append(i)
                    frames.append(frame)
                if not active:
                    break
                step = self.tracker.step([states[i] for i in active], frames)
                for i, result in zip(active, step):
                    results[i].append(_as_result(len(results[i]), result.box_xywh, result.score))
        return results


def register_pipeline() -> None:
    """Register ``"single-object-tracking"`` with ``transformers.pipeline`` (idempotent)."""
    from transformers.pipelines import PIPELINE_REGISTRY

    current = PIPELINE_REGISTRY.supported_tasks.get(TASK)
    if current is not None and current.get("impl") is SingleObjectTrackingPipeline:
        return
    PIPELINE_REGISTRY.register_pipeline(
        TASK, pipeline_class=SingleObjectTrackingPipeline, pt_model=AutoModel, type="image"
    )
