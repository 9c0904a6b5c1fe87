"""`LoratTracker`: the batched tracking step on per-sequence states (no I/O).

The tracker holds the model and runs :meth:`LoratTracker.step` on a list of :class:`TrackerState`; the
states of the sequences being tracked live in a :class:`~modeling_lorat.tracking_session.LoratTrackingSession`
(``tracker.new_session()``), which ``init``/``track``, the pipeline and the benchmark runner all use.

Follows the official LoRAT tracker: template cropped once on the first frame (area factor 2, never
updated); every next frame a search region around the previous box (enlarged to the minimum object
size, padded with the template frame's mean colour); peak = argmax of
``score * (1 - p) + hann * p`` with the reported confidence the un-penalised score at that cell; box
mapped back to the frame and clipped; the next crop uses it unless it is empty/outside the frame.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .box_ops import is_valid_xyxy, xywh_to_xyxy, xyxy_to_xywh
from .cropping import HostStaging
from .cuda_graphs import CudaGraphRunner
from .image_processing_lorat import (  # noqa: F401  (hann_window_2d, select_peak: public here too)
    LoratImageProcessor,
    crop_info_row,
    hann_window_2d,
    select_peak,
    to_chw_float,
    validate_box_xywh,
)
from .tracking_session import LoratTrackingSession, TrackResult

__all__ = [
    "LoratTracker",
    "LoratTrackingSession",
    "TrackResult",
    "TrackerState",
    "hann_window_2d",
    "select_peak",
]


@dataclass
class TrackerState:
    """Everything a sequence carries between frames."""

    template: torch.Tensor  # (3, t, t) normalised, model dtype, on device
    template_mask: torch.Tensor  # (g, g) long, on device
    image_mean: torch.Tensor  # (3,) float32 padding colour, on device
    box_xyxy: np.ndarray  # last box used to centre the search crop, frame pixels
    frame_size: tuple[int, int]  # (W, H)
    frame_index: int = 0


class LoratTracker:
    """Tracks single objects with a [`LoratForTracking`] model.

    Args:
        model: a `LoratForTracking` (or a peft model around one: LoRA is merged when ``merge_lora``).
        image_processor: defaults to one built from ``model.config``.
        device, dtype: where/how to run the model (default: the model's).
        compile: run the inference step (model forward + peak selection) through ``torch.compile``.
        fuse: fuse the merged model for inference, in place (:meth:`LoratForTracking.fuse_for_inference`:
            fused q/k/v, folded layer scales; fewer kernels, same outputs up to rounding).
        cuda_graphs: replay the inference step as one captured CUDA graph per batch size (CUDA only;
            removes the kernel-launch cost that bounds batch-1 GPU tracking).

    Per step the frames' search regions are cropped on the device (a host frame sends only the region
    it needs), one batched forward picks each sequence's peak, and one device-to-host copy brings back
    the boxes and scores.

    API: :meth:`init` + :meth:`track` track one sequence (the tracker's own session); :meth:`new_session`
    tracks several in lock-step (``session.add`` / ``session.step``); underneath, :meth:`new_state` and
    :meth:`step` are the stateless batched step every driver uses.
    """

    def __init__(
        self,
        model: Any,
        image_processor: LoratImageProcessor | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        merge_lora: bool = True,
        compile: bool = False,
        fuse: bool = True,
        cuda_graphs: bool = False,
        _graph_backend: Any | None = None,
    ) -> None:
        if hasattr(model, "merge_and_unload") and merge_lora:
            model = model.merge_and_unload()
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        param = next(model.parameters())
        self.device = torch.device(device) if device is not None else param.device
        self.dtype = dtype or param.dtype
        if cuda_graphs and self.device.type != "cuda" and _graph_backend is None:
            raise ValueError(f"cuda_graphs=True needs a CUDA device, got {self.device}")
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        if fuse and hasattr(self.model, "fuse_for_inference"):
            self.model.fuse_for_inference()
        self.config = self.model.config
        self.processor = image_processor or LoratImageProcessor.from_config(self.config)
        self.window = self.processor.hann_window(self.config.search_grid, self.device)
        self._forward = self.model
        self._infer = torch.compile(self._infer_eager) if compile else self._infer_eager
        if cuda_graphs:
            self._infer = CudaGraphRunner(self._infer, backend=_graph_backend)
        self._staging = HostStaging()
        self._batch_cache: tuple[list[torch.Tensor], torch.Tensor, torch.Tensor] | None = None
        self._session: LoratTrackingSession | None = None

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str | os.PathLike,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        attn_implementation: str | None = "sdpa",
        compile: bool = False,
        cuda_graphs: bool = False,
    ) -> LoratTracker:
        """Load model (+ ``preprocessor_config.json`` when present) from a folder or Hub id.

        ``device`` is checked first: an unknown name or a missing GPU raises ``ValueError`` listing the
        valid devices (see :func:`modeling_lorat.loading_utils.resolve_device`).
        """
        from .loading_utils import resolve_device
        from .modeling_lorat import LoratForTracking

        device = resolve_device(device) if device is not None else None
        path = Path(model_name_or_path)
        looks_local = path.is_absolute() or str(model_name_or_path).startswith((".", "~")) or path.exists()
        if looks_local and not path.is_dir():
            raise FileNotFoundError(f"model folder not found: {model_name_or_path}")
        kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
        model = LoratForTracking.from_pretrained(str(model_name_or_path), **kwargs)
        try:
            processor = LoratImageProcessor.from_pretrained(str(model_name_or_path))
        except OSError:
            processor = None
        return cls(model, processor, device=device, dtype=dtype, compile=compile, cuda_graphs=cuda_graphs)

    # ------------------------------------------------------------------ device step
    def _infer_eager(
        self, template: torch.Tensor, search: torch.Tensor, template_mask: torch.Tensor
    ) -> torch.Tensor:
        """Forward + the processor's peak selection on the device -> ``(B, 5)`` float32: the peak cell's
        normalised ``x1, y1, x2, y2`` in the search crop and its confidence (static shapes, no host sync)."""
        output = self._forward(
            pixel_values_template=template, pixel_values_search=search, template_mask=template_mask
        )
        return self.processor.select_peaks(output.score_map, output.pred_boxes, self.window)

    def _templates(self, states: list[TrackerState]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked templates and masks, reused while the same sequences are stepped together."""
        cache = self._batch_cache
        if (
            cache is None
            or len(cache[0]) != len(states)
            or any(a is not s.template for a, s in zip(cache[0], states))
        ):
            templates = torch.stack([s.template for s in states])
            masks = torch.stack([s.template_mask for s in states])
            cache = self._batch_cache = ([s.template for s in states], templates, masks)
        return cache[1], cache[2]

    # ------------------------------------------------------------------ batched API
    def _frame(self, frame: Any) -> torch.Tensor | np.ndarray:
        """An ``(H, W, 3)`` uint8 numpy frame stays on the host (crops send only their region);
        anything else becomes a ``(3, H, W)`` float32 tensor on the device."""
        if (
            isinstance(frame, np.ndarray)
            and frame.dtype == np.uint8
            and frame.ndim == 3
            and frame.shape[2] == 3
        ):
            return frame
        return to_chw_float(frame).to(self.device)

    @staticmethod
    def _frame_size(image: torch.Tensor | np.ndarray) -> tuple[int, int]:
        return (
            (int(image.shape[1]), int(image.shape[0]))
            if isinstance(image, np.ndarray)
            else (
                int(image.shape[2]),
                int(image.shape[1]),
            )
        )

    def new_state(self, frame: Any, box_xywh: Any) -> TrackerState:
        """The state of a new sequence starting on ``frame`` with the target box ``x, y, w, h`` (pixels).

        Pass it to :meth:`step` (or use a session, :meth:`new_session`, which keeps the states for you).
        """
        image = to_chw_float(frame).to(self.device)
        size = (int(image.shape[2]), int(image.shape[1]))
        box = validate_box_xywh(box_xywh, size)
        template = self.processor.crop_template(image, box)
        return TrackerState(
            template=template["pixel_values"].to(self.dtype),
            template_mask=template["template_mask"].to(self.device),
            image_mean=template["image_mean"],
            box_xyxy=xywh_to_xyxy(box),
            frame_size=size,
        )

    @torch.inference_mode()
    def step(self, states: list[TrackerState], frames: list[Any]) -> list[TrackResult]:
        """Advance every sequence by one frame with a single batched forward pass (states updated in place)."""
        if len(states) != len(frames):
            raise ValueError(f"got {len(states)} states but {len(frames)} frames")
        if not states:
            return []
        size = self.processor.search_size
        searches = torch.empty((len(states), 3, size, size), dtype=self.dtype, device=self.device)
        crop_info = np.empty((len(states), 6), dtype=np.float64)
        for i, (state, frame) in enumerate(zip(states, frames)):
            image = self._frame(frame)
            frame_size = self._frame_size(image)
            if frame_size != state.frame_size:
                raise ValueError(
                    f"frame size changed from {state.frame_size[0]}x{state.frame_size[1]} to "
                    f"{frame_size[0]}x{frame_size[1]} at frame {state.frame_index + 1}"
                )
            crop, crop_params = self.processor.crop_search(
                image, state.box_xyxy, state.image_mean, staging=self._staging
            )
            searches[i] = crop
            crop_info[i] = crop_info_row(crop_params, frame_size)
        templates, masks = self._templates(states)
        peaks = self._infer(templates, searches, masks).cpu().double().numpy()  # the one device-to-host copy
        self._staging.reset()  # the read above waited for this step's uploads
        boxes, scores = self.processor.peaks_to_frame(peaks, crop_info)  # frame boxes, clipped
        results = []
        for state, frame_box, score in zip(states, boxes, scores):
            if is_valid_xyxy(frame_box):
                state.box_xyxy = frame_box.copy()
            state.frame_index += 1
            results.append(TrackResult(xyxy_to_xywh(frame_box), float(score)))
        return results

    # ------------------------------------------------------------------ sessions
    def new_session(self) -> LoratTrackingSession:
        """A :class:`~modeling_lorat.tracking_session.LoratTrackingSession` on this tracker: ``add`` sequences
        (frame 0 + box), ``step`` them together (one batched forward), ``remove`` them when they end."""
        return LoratTrackingSession(self)

    def init(self, frame: Any, box_xywh: Any) -> None:
        """Start tracking one sequence on ``frame`` with the box ``x, y, w, h`` (pixels); replaces the
        sequence of an earlier ``init``. Then call :meth:`track` on each next frame."""
        session = self.new_session()
        session.add(0, frame, box_xywh)
        self._session = session

    def track(self, frame: Any) -> TrackResult:
        """Track the sequence started with :meth:`init` on the next frame -> ``(box_xywh, score)``."""
        if self._session is None:
            raise RuntimeError("call init(frame, box) before track(frame)")
        return self._session.step({0: frame})[0]

    def initialize(self, frame: Any, box_xywh: Any) -> TrackerState:
        """Deprecated name of :meth:`new_state` (it returns a state and does not start :meth:`track`)."""
        warnings.warn(
            "LoratTracker.initialize(frame, box) is deprecated: use new_state(frame, box) for a state to "
            "pass to step(), init(frame, box) + track(frame) for one sequence, or new_session() for several",
            FutureWarning,
            stacklevel=2,
        )
        return self.new_state(frame, box_xywh)
