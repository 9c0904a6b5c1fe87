"""``pipeline("single-object-tracking")``: track one object through a video with a LoRAT model.

```python
from transformers import pipeline
import modeling_lorat  # registers the model type and (via register_pipeline) the task

tracker = pipeline("single-object-tracking", model="path/or/hub-id", device="cpu")
for result in tracker("video.mp4", box=(x, y, w, h)):  # one video -> a list of per-frame dicts
    print(result["frame_index"], result["box"], result["score"])
tracks = tracker([{"video": "a.mp4", "box": (x, y, w, h)}, {"video": "b/", "box": ...}], batch_size=8)
```

The unit item is one video with the target box in its first frame; its output is the list of
per-frame ``{"frame_index", "box", "score"}`` dicts (boxes ``x, y, w, h`` in pixels of the original
frames; frame 0 is the given box with score 1.0). As for every transformers pipeline, one input gives
one output, a list gives a list and a generator or dataset gives a lazy iterator of outputs. The
``Pipeline`` machinery runs unchanged: ``preprocess`` (open the video, check the box) runs in
``num_workers`` DataLoader workers, ``Pipeline.forward`` (device placement, inference mode) runs
``_forward`` on ``batch_size`` videos at a time, which tracks them in lock-step through the shared
:func:`~modeling_lorat.tracking_session.track_lockstep` loop (one batched forward per frame), and
``postprocess`` formats the results. Frames are decoded one at a time inside ``_forward``; for a lazy
stream of one video's results use :func:`~modeling_lorat.tracking_session.iter_track` or ``lorat track``.
"""

from __future__ import annotations

import os
import types
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import AutoModel, Pipeline

from .image_processing_lorat import LoratImageProcessor, validate_box_xywh
from .loading_utils import resolve_device
from .tracking_lorat import LoratTracker
from .tracking_session import iter_track, track_lockstep

__all__ = ["TASK", "SingleObjectTrackingPipeline", "iter_track", "open_frames", "register_pipeline"]

TASK = "single-object-tracking"
_FRAME_TYPES = (np.ndarray, torch.Tensor, Image.Image)


def open_frames(video: Any) -> Iterable[Any]:
    """Frames of ``video``: :func:`modeling_lorat.video_io.open_frames` (video file, image folder, frames).

    The copy of this file shipped with checkpoints (``trust_remote_code``) runs without this package;
    there, video files and folders cannot be read (that needs the package and PyAV) and ``video`` must
    be the frames themselves: a list or iterator of PIL images / numpy arrays / torch tensors.
    """
    try:  # absolute import: video_io is not shipped with checkpoints
        from modeling_lorat.video_io import open_frames as open_video
    except ImportError:
        if isinstance(video, (str, bytes, os.PathLike)):
            raise ValueError(
                f"cannot read {video!r}: reading video files and image folders needs the lorat package "
                "(pip install lorat); pass the frames as a list of images instead"
            ) from None
        if not isinstance(video, Iterable):
            raise ValueError(
                f"video must be a list or iterator of frames, got {type(video).__name__}"
            ) from None
        return video
    return open_video(video)


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


def _is_frame(value: Any) -> bool:
    """One image (as opposed to a video: a path, a frame list, a 4-D array, an input dict)."""
    return isinstance(value, _FRAME_TYPES) and getattr(value, "ndim", 3) <= 3


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
        batch_size: videos per ``_forward`` call, tracked in lock-step (one batched forward per frame).
        num_workers: DataLoader workers running ``preprocess`` for list and dataset inputs.
        compile: run the tracker's inference step through ``torch.compile``.
        cuda_graphs: replay the inference step as CUDA graphs (CUDA devices only).
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
        cuda_graphs = bool(kwargs.pop("cuda_graphs", False))
        device = kwargs.get("device")
        if device is not None and not (isinstance(device, int) and device < 0):
            resolve_device(device)  # one clear line for "gpu" or "cuda" without a GPU
        if kwargs.get("image_processor") is None:  # batching collates through the image processor
            kwargs["image_processor"] = LoratImageProcessor.from_config(model.config)
        super().__init__(model, *args, **kwargs)
        self.tracker = LoratTracker(
            self.model,
            image_processor=self.image_processor,
            device=self.device,
            dtype=_resolve_dtype(dtype),
            compile=compile_model,
            cuda_graphs=cuda_graphs,
        )
        self.model = self.tracker.model

    # ------------------------------------------------------------------ entry point
    def __call__(self, inputs: Any, box: Any = None, **kwargs: Any) -> Any:
        """Track the object ``box`` (``x, y, w, h`` pixels in frame 0) through each video of ``inputs``.

        Args:
            inputs: one video — a video file, an image folder, a list / iterator of frames (PIL, numpy,
                torch), an ``(N, H, W, C)`` array, a ``FrameSource``, or ``{"video": ..., "box": ...}`` —,
                or a list, generator or dataset of videos.
            box: the target in frame 0: ``(x, y, w, h)`` for every video without its own box, or
                ``[(x, y, w, h), ...]``, one per video of a list.
            batch_size: videos tracked together (lock-step, one batched forward per frame).
            num_workers: DataLoader workers for ``preprocess`` (list / dataset inputs).

        Returns:
            per video, the list of ``{"frame_index", "box": [x, y, w, h], "score"}`` dicts (frame 0 =
            ``box``, score 1.0): one list for one video, a list of them for a list of videos, a lazy
            iterator of them for a generator or dataset of videos.
        """
        if box is not None:
            _check_box_values(box)
        if box is not None and _is_box_list(box):
            if not isinstance(inputs, (list, tuple)) or len(inputs) != len(box):
                raise ValueError(
                    f"got {len(box)} boxes: pass a list of as many videos (got {type(inputs).__name__})"
                )
            inputs, box = [{"video": video, "box": b} for video, b in zip(inputs, box)], None
        elif isinstance(inputs, (list, tuple)) and inputs and _is_frame(inputs[0]):
            inputs = {"video": inputs}  # the frames of one video
        elif isinstance(inputs, types.GeneratorType):
            inputs = self._peek_stream(inputs)
        if box is not None:
            kwargs["box"] = box
        return super().__call__(inputs, **kwargs)

    @staticmethod
    def _peek_stream(stream: Iterator[Any]) -> Any:
        """A generator of frames is one video; a generator of videos stays a stream of inputs."""
        try:
            first = next(stream)
        except StopIteration:
            return []
        rest = (item for items in ([first], stream) for item in items)
        return {"video": rest} if _is_frame(first) else rest

    # ------------------------------------------------------------------ Pipeline protocol
    def _sanitize_parameters(self, box: Any = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(f"single-object-tracking got unexpected arguments: {', '.join(sorted(kwargs))}")
        preprocess = {"box": box} if box is not None else {}
        return preprocess, {}, {}

    def preprocess(self, inputs: Any, box: Any = None) -> dict[str, Any]:
        """Open one video (path, folder, frames, or a ``{"video", "box"}`` dict) and check its box.

        Returns ``{"frames": lazy frame source, "box": (4,) float64}``; frames are decoded in ``_forward``.
        """
        if isinstance(inputs, dict):
            if "video" not in inputs:
                raise ValueError(
                    f"an input dict needs a 'video' (and a 'box'); got the keys {sorted(inputs)}"
                )
            box = inputs.get("box", box)
            inputs = inputs["video"]
        if box is None:
            raise ValueError("single-object-tracking needs the target box: pipe(video, box=(x, y, w, h))")
        _check_box_values(box)
        return {"frames": open_frames(inputs), "box": validate_box_xywh(box)}

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, list]:
        """Track the video(s) of ``model_inputs`` in lock-step (one batched tracker step per frame).

        ``model_inputs`` is one ``preprocess`` output, or ``batch_size`` of them collated (lists under
        ``"frames"`` and ``"box"``). Returns ``{"boxes", "scores"}``: per-frame lists for one video, a
        list of those per video for a batch (unbatched again by the Pipeline iterator).
        """
        batched = isinstance(model_inputs["box"], list)
        frames = model_inputs["frames"] if batched else [model_inputs["frames"]]
        boxes = model_inputs["box"] if batched else [model_inputs["box"]]
        out_boxes: list[list[list[float]]] = [[] for _ in frames]
        out_scores: list[list[float]] = [[] for _ in frames]
        for event in track_lockstep(self.tracker, list(zip(range(len(frames)), frames, boxes))):
            if event.kind == "frame":
                out_boxes[event.key].append([float(v) for v in event.result.box_xywh])
                out_scores[event.key].append(float(event.result.score))
        if batched:
            return {"boxes": out_boxes, "scores": out_scores}
        return {"boxes": out_boxes[0], "scores": out_scores[0]}

    def postprocess(self, model_outputs: dict[str, list]) -> list[dict[str, Any]]:
        """One video's per-frame ``{"frame_index", "box": [x, y, w, h] (pixels), "score"}`` dicts."""
        return [
            {"frame_index": index, "box": box, "score": score}
            for index, (box, score) in enumerate(zip(model_outputs["boxes"], model_outputs["scores"]))
        ]


def register_pipeline() -> None:
    """Register ``"single-object-tracking"`` with ``transformers.pipeline`` (idempotent)."""
    from transformers.pipelines import PIPELINE_REGISTRY

    current = PIPELINE_REGISTRY.supported_tasks.get(TASK)
    if current is not None and current.get("impl") is SingleObjectTrackingPipeline:
        return
    PIPELINE_REGISTRY.register_pipeline(
        TASK, pipeline_class=SingleObjectTrackingPipeline, pt_model=AutoModel, type="image"
    )
