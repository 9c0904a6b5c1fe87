"""`LoratImageProcessor`: the one owner of LoRAT's crop geometry and box post-processing.

* **Pre-processing** (``processor(images=..., boxes=...)``): SiamFC crops around boxes (``x, y, w, h``
  pixels), normalised, with the template's foreground mask; search crops come with their ``crop_info``.
  Crops are made with :mod:`modeling_lorat.cropping` (the official pixel-aligned algorithm), so boxes map
  back exactly.
* **Post-processing** (:meth:`LoratImageProcessor.post_process_tracking`): the Hann-window peak of the
  score map (:meth:`~LoratImageProcessor.select_peaks`, tensor ops with static shapes that stay on the
  device) and its box mapped back to the frame and clipped (:meth:`~LoratImageProcessor.peaks_to_frame`,
  on the host).

Its settings are those of the model's `LoratConfig` (:meth:`LoratImageProcessor.from_config`). This file
and its relative imports are shipped with every checkpoint (``auto_map``), so they import only torch,
numpy, PIL and transformers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from .box_ops import clip_xyxy, enlarge_to_min_size, rasterize_xyxy, xywh_to_xyxy, xyxy_to_xywh
from .configuration_lorat import PROCESSING_DEFAULTS, finish_package_registration
from .cropping import CropParams, HostStaging, crop_image, crop_params_from_box
from .image_utils import to_rgb_uint8

IMAGENET_MEAN = PROCESSING_DEFAULTS["image_mean"]
IMAGENET_STD = PROCESSING_DEFAULTS["image_std"]
#: Columns of ``crop_info`` rows: the crop transform ``p_crop = p_frame * scale + offset`` and the frame size.
CROP_INFO_COLUMNS = ("scale_x", "scale_y", "offset_x", "offset_y", "frame_width", "frame_height")
MODES = ("template", "search")


# ---------------------------------------------------------------------------------------------- inputs
def validate_box_xywh(box: Any, frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """Check a user box ``x, y, w, h`` (pixels) and return it as float64 ``(4,)``.

    Raises ``ValueError`` for a wrong number of values, non-finite values, non-positive size, or a box
    that does not overlap the frame ``(W, H)``.
    """
    try:
        arr = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"box must be 4 numbers x,y,w,h; got {box!r}") from exc
    if arr.size != 4:
        raise ValueError(f"box must have 4 values x,y,w,h; got {arr.size}: {box!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"box has non-finite values: {arr.tolist()}")
    if arr[2] <= 0 or arr[3] <= 0:
        raise ValueError(f"box width and height must be positive; got w={arr[2]}, h={arr[3]}")
    if frame_size is not None:
        width, height = frame_size
        if arr[0] >= width or arr[1] >= height or arr[0] + arr[2] <= 0 or arr[1] + arr[3] <= 0:
            raise ValueError(f"box {arr.tolist()} lies outside the {width}x{height} frame")
    return arr


def to_chw_float(image: Any) -> torch.Tensor:
    """PIL image / ``(H, W, C)`` numpy uint8 / ``(C, H, W)`` or ``(H, W, C)`` torch -> ``(3, H, W)`` float32, 0–255.

    Grayscale is repeated to 3 channels, RGBA drops alpha. Float inputs are taken as 0–255 unless their
    maximum is ≤ 1 (then scaled by 255). PIL images and numpy / integer torch inputs other than uint8
    (16-bit, bool, float arrays) go through :func:`to_rgb_uint8`, which scales them by their dtype and
    refuses NaN or out-of-range values; float tensors stay on their device.
    """
    if (
        isinstance(image, Image.Image)
        or (isinstance(image, np.ndarray) and image.dtype != np.uint8)
        or (isinstance(image, torch.Tensor) and not image.is_floating_point() and image.dtype != torch.uint8)
    ):
        image = to_rgb_uint8(image)
    if isinstance(image, np.ndarray):
        if not image.flags.writeable or not image.flags.c_contiguous:
            image = np.array(image)  # torch.from_numpy needs a writeable, contiguous buffer
        tensor = torch.from_numpy(image)
        channels_last = True
    elif isinstance(image, torch.Tensor):
        tensor = image
        channels_last = (
            tensor.ndim == 3 and tensor.shape[-1] in (1, 3, 4) and tensor.shape[0] not in (1, 3, 4)
        )
    else:
        raise ValueError(f"unsupported image type {type(image).__name__}; expected PIL, numpy or torch")
    if tensor.ndim == 2:
        tensor = tensor[:, :, None]
        channels_last = True
    if tensor.ndim != 3:
        raise ValueError(f"image must be 2-D or 3-D, got shape {tuple(tensor.shape)}")
    if channels_last:
        tensor = tensor.permute(2, 0, 1)
    if tensor.shape[0] == 1:
        tensor = tensor.expand(3, -1, -1)
    elif tensor.shape[0] == 4:
        tensor = tensor[:3]
    elif tensor.shape[0] != 3:
        raise ValueError(f"image must have 1, 3 or 4 channels, got {tensor.shape[0]}")
    if tensor.shape[1] < 1 or tensor.shape[2] < 1:
        raise ValueError(f"image is empty: shape {tuple(tensor.shape)}")
    if tensor.is_floating_point():
        tensor = tensor.float()
        if tensor.numel() and tensor.max() <= 1.0:
            tensor = tensor * 255.0
        return tensor.contiguous()
    return tensor.float().contiguous()


def _as_list(values: Any, what: str) -> tuple[list[Any], bool]:
    """``(items, batched)``: a list/tuple or a 4-D array/tensor is a batch, anything else one item."""
    if isinstance(values, (list, tuple)):
        if not values:
            raise ValueError(f"{what} is an empty list")
        return list(values), True
    if isinstance(values, (np.ndarray, torch.Tensor)) and values.ndim == 4:
        return list(values), True
    return [values], False


def _as_boxes(boxes: Any, count: int, what: str) -> list[Any]:
    """One box per image: ``(4,)`` for one image, ``(B, 4)`` / a list of boxes for a batch."""
    if boxes is None:
        raise ValueError(f"{what} are required: one box x, y, w, h (pixels) per image")
    if isinstance(boxes, torch.Tensor):
        boxes = boxes.detach().cpu().numpy()
    if isinstance(boxes, np.ndarray):
        rows = [boxes] if boxes.ndim <= 1 else list(boxes)
    elif isinstance(boxes, (list, tuple)) and boxes and hasattr(boxes[0], "__len__"):
        rows = list(boxes)
    else:
        rows = [boxes]
    if len(rows) != count:
        raise ValueError(f"got {count} image(s) but {len(rows)} {what}: pass one box x, y, w, h per image")
    return rows


# ---------------------------------------------------------------------------------------------- peaks
def hann_window_2d(size: int) -> torch.Tensor:
    """Symmetric ``(size, size)`` Hann window (outer product of ``torch.hann_window(periodic=False)``)."""
    window = torch.hann_window(size, periodic=False, dtype=torch.float32)
    return torch.outer(window, window)


def select_peak(
    score_logits: torch.Tensor, window: torch.Tensor, penalty: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Peak cell per sample: ``argmax(sigmoid(s) * (1 - p) + window * p)``.

    Returns ``(flat_index (B,), confidence (B,))`` with the confidence the un-penalised sigmoid score.
    """
    scores = score_logits.float().sigmoid().flatten(1)
    if penalty > 0:
        index = (scores * (1 - penalty) + window.flatten()[None] * penalty).argmax(dim=1)
    else:
        index = scores.argmax(dim=1)
    return index, scores.gather(1, index[:, None]).squeeze(1)


def crop_info_row(params: CropParams, frame_size: tuple[int, int]) -> np.ndarray:
    """One ``crop_info`` row (see :data:`CROP_INFO_COLUMNS`) from a crop's parameters and frame ``(W, H)``."""
    return np.array([*params.scale, *params.translation, *frame_size], dtype=np.float64)


def _as_crop_info(crop_info: Any, batch: int) -> np.ndarray:
    info = crop_info.detach().cpu().numpy() if isinstance(crop_info, torch.Tensor) else crop_info
    info = np.asarray(info, dtype=np.float64)
    if info.ndim == 1:
        info = info[None]
    if info.ndim != 2 or info.shape[1] != len(CROP_INFO_COLUMNS):
        raise ValueError(
            f"crop_info must be (B, {len(CROP_INFO_COLUMNS)}) ({', '.join(CROP_INFO_COLUMNS)}) as the processor "
            f"returns it in search mode, got shape {info.shape}"
        )
    if info.shape[0] != batch:
        raise ValueError(f"crop_info has {info.shape[0]} rows but the model outputs hold {batch} samples")
    return info


# ---------------------------------------------------------------------------------------------- processor
class LoratImageProcessor(BaseImageProcessor):
    r"""Crops template / search regions around boxes, normalises them for [`LoratForTracking`], and maps
    the model's outputs back to frame boxes.

    Track one step without the tracker::

        template = processor(images=first_frame, boxes=first_box)  # x, y, w, h pixels
        search = processor(images=frame, boxes=previous_box, mode="search",
                           background=template["template_image_mean"])
        outputs = model(pixel_values_template=template["pixel_values_template"],
                        template_mask=template["template_mask"],
                        pixel_values_search=search["pixel_values_search"])
        result = processor.post_process_tracking(outputs, search["crop_info"])[0]  # {"box", "score"}

    or with all model inputs from one call (the search crops padded with the template frame's mean, as
    the official tracker does): ``inputs = processor(template_images=..., template_boxes=...,
    search_images=..., search_boxes=...)``, ``outputs = model(**inputs)``,
    ``processor.post_process_tracking(outputs, inputs["crop_info"])``.

    Args:
        template_size, search_size (`int`): crop sides in pixels.
        template_area_factor, search_area_factor (`float`): context factors (2 and 4 or 5).
        min_object_size (`float`): boxes are enlarged to this size (pixels) before a search crop.
        window_penalty (`float`): weight of the Hann window in the peak selection.
        patch_size (`int`): ViT patch size, to rasterise the template mask.
        image_mean, image_std: normalisation applied after scaling to [0, 1].

    Defaults are those of :data:`~modeling_lorat.configuration_lorat.PROCESSING_DEFAULTS`; use
    :meth:`from_config` for a model's own values.
    """

    model_input_names = ["pixel_values_template", "pixel_values_search", "template_mask"]
    _auto_class = "AutoImageProcessor"  # saved folders ship this file (auto_map in preprocessor_config.json)

    def __init__(
        self,
        template_size: int = PROCESSING_DEFAULTS["template_size"],
        search_size: int = PROCESSING_DEFAULTS["search_size"],
        template_area_factor: float = PROCESSING_DEFAULTS["template_area_factor"],
        search_area_factor: float = PROCESSING_DEFAULTS["search_area_factor"],
        min_object_size: float = PROCESSING_DEFAULTS["min_object_size"],
        patch_size: int = PROCESSING_DEFAULTS["patch_size"],
        image_mean: tuple[float, ...] = IMAGENET_MEAN,
        image_std: tuple[float, ...] = IMAGENET_STD,
        window_penalty: float = PROCESSING_DEFAULTS["window_penalty"],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.template_size = int(template_size)
        self.search_size = int(search_size)
        self.template_area_factor = float(template_area_factor)
        self.search_area_factor = float(search_area_factor)
        self.min_object_size = float(min_object_size)
        self.patch_size = int(patch_size)
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.window_penalty = float(window_penalty)
        self._norm_cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._window_cache: dict[tuple[int, torch.device], torch.Tensor] = {}

    @classmethod
    def from_config(cls, config: Any) -> LoratImageProcessor:
        """Processor with the settings of a `LoratConfig` (every key of ``PROCESSING_DEFAULTS``)."""
        return cls(**{key: getattr(config, key) for key in PROCESSING_DEFAULTS})

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output.pop("_norm_cache", None)
        output.pop("_window_cache", None)
        return output

    @property
    def template_grid(self) -> int:
        """Template tokens per side (template mask side)."""
        return self.template_size // self.patch_size

    @property
    def search_grid(self) -> int:
        """Search tokens per side (score-map side)."""
        return self.search_size // self.patch_size

    # ------------------------------------------------------------------ crops
    def normalize_crop(self, crop: torch.Tensor) -> torch.Tensor:
        """``(..., 3, h, w)`` 0–255 -> ``(x / 255 - mean) / std``."""
        device = crop.device
        if device not in self._norm_cache:
            mean = torch.tensor(self.image_mean, device=device).view(3, 1, 1) * 255.0
            std = torch.tensor(self.image_std, device=device).view(3, 1, 1) * 255.0
            self._norm_cache[device] = (mean, std)
        mean, std = self._norm_cache[device]
        return (crop - mean) / std

    def template_mask(self, box_in_crop_xyxy: np.ndarray) -> torch.Tensor:
        """``(g, g)`` long mask, 1 on template cells covered by the box (pixels of the template crop)."""
        grid = self.template_grid
        stride = self.template_size / grid
        cells = rasterize_xyxy(np.asarray(box_in_crop_xyxy, dtype=np.float64) / stride)
        cells = np.clip(cells, 0, grid)
        mask = torch.zeros((grid, grid), dtype=torch.long)
        mask[cells[1] : cells[3], cells[0] : cells[2]] = 1
        return mask

    def crop_template(self, image: Any, box_xywh: Any) -> dict[str, Any]:
        """Template crop around ``box_xywh``: ``pixel_values (3, t, t)``, ``template_mask (g, g)``,
        ``crop_params`` and the frame's per-channel ``image_mean`` (used to pad later search crops)."""
        frame = to_chw_float(image)
        box = validate_box_xywh(box_xywh, (frame.shape[2], frame.shape[1]))
        size = (self.template_size, self.template_size)
        params = crop_params_from_box(xywh_to_xyxy(box), self.template_area_factor, size)
        crop, mean, params = crop_image(frame, params, size)
        return {
            "pixel_values": self.normalize_crop(crop),
            "template_mask": self.template_mask(params.apply_to_boxes(xywh_to_xyxy(box))),
            "crop_params": params,
            "image_mean": mean,
        }

    def crop_search(
        self,
        image: torch.Tensor | np.ndarray,
        box_xyxy: np.ndarray,
        background: torch.Tensor | None = None,
        staging: HostStaging | None = None,
    ) -> tuple[torch.Tensor, CropParams]:
        """Search crop ``(3, s, s)`` (normalised) around a frame box (xyxy pixels, enlarged to
        ``min_object_size``) and its adjusted crop parameters. ``image`` is ``(3, H, W)`` float 0–255, or an
        ``(H, W, 3)`` uint8 host frame with ``background`` (see :func:`~modeling_lorat.cropping.crop_image`)."""
        size = (self.search_size, self.search_size)
        box = enlarge_to_min_size(box_xyxy, self.min_object_size)
        params = crop_params_from_box(box, self.search_area_factor, size)
        crop, _, params = crop_image(image, params, size, background, staging=staging)
        return self.normalize_crop(crop), params

    def boxes_to_frame(self, boxes_norm_xyxy: np.ndarray, params: CropParams) -> np.ndarray:
        """Normalised search-crop xyxy boxes -> frame xyxy pixels (exact inverse of the crop)."""
        return params.inverse().apply_to_boxes(
            np.asarray(boxes_norm_xyxy, dtype=np.float64) * self.search_size
        )

    # ------------------------------------------------------------------ transformers entry point
    def __call__(self, images: Any = None, boxes: Any = None, **kwargs: Any) -> BatchFeature:
        """See :meth:`preprocess`."""
        return self.preprocess(images, boxes, **kwargs)

    def preprocess(
        self,
        images: Any = None,
        boxes: Any = None,
        *,
        mode: str = "template",
        background: Any = None,
        template_images: Any = None,
        template_boxes: Any = None,
        search_images: Any = None,
        search_boxes: Any = None,
        return_tensors: str | None = "pt",
    ) -> BatchFeature:
        """Model inputs from frames and boxes (``x, y, w, h`` pixels); one image or a list (a batch).

        Args:
            images, boxes: frames (PIL, ``(H, W, C)`` numpy, ``(C, H, W)`` torch) and one box each.
            mode: ``"template"``: crops around the target, returning ``pixel_values_template``,
                ``template_mask`` and ``template_image_mean`` (each frame's mean colour, the padding of
                later search crops). ``"search"``: crops around the previous box, returning
                ``pixel_values_search`` and ``crop_info``.
            background: search mode: ``(3,)`` or ``(B, 3)`` padding colour (0–255), normally the
                template's ``template_image_mean`` (the official tracker's); default each frame's own mean.
            template_images, template_boxes, search_images, search_boxes: instead of ``images``/``boxes``:
                all model inputs for template/search pairs at once (search crops padded with the template
                frame's mean), plus ``crop_info``.
            return_tensors: ``"pt"`` (or ``None``, the same here).

        ``crop_info`` is a float64 ``(B, 6)`` numpy array (:data:`CROP_INFO_COLUMNS`) for
        :meth:`post_process_tracking`; it stays on the host when the batch is moved with ``.to()``.
        """
        pair = (template_images, template_boxes, search_images, search_boxes)
        if any(value is not None for value in pair):
            if images is not None or boxes is not None:
                raise ValueError("pass either images/boxes or template_*/search_* arguments, not both")
            if any(value is None for value in pair):
                raise ValueError(
                    "template_images, template_boxes, search_images and search_boxes go together"
                )
            template = self.preprocess(template_images, template_boxes, return_tensors=return_tensors)
            search = self.preprocess(
                search_images,
                search_boxes,
                mode="search",
                background=template["template_image_mean"],
                return_tensors=return_tensors,
            )
            if len(search["crop_info"]) != len(template["template_mask"]):
                raise ValueError(
                    f"got {len(template['template_mask'])} template image(s) but "
                    f"{len(search['crop_info'])} search image(s)"
                )
            feature = BatchFeature(
                data={
                    "pixel_values_template": template["pixel_values_template"],
                    "pixel_values_search": search["pixel_values_search"],
                    "template_mask": template["template_mask"],
                },
                tensor_type=return_tensors,
            )
            feature["crop_info"] = search["crop_info"]
            return feature
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if images is None:
            raise ValueError("images are required (or template_images/search_images)")
        frames, _ = _as_list(images, "images")
        rows = _as_boxes(boxes, len(frames), "boxes")
        if mode == "template":
            crops = [self.crop_template(frame, box) for frame, box in zip(frames, rows)]
            data = {
                "pixel_values_template": torch.stack([c["pixel_values"] for c in crops]),
                "template_mask": torch.stack([c["template_mask"] for c in crops]),
                "template_image_mean": torch.stack([c["image_mean"].float().cpu() for c in crops]),
            }
            return BatchFeature(data=data, tensor_type=return_tensors)
        backgrounds = self._backgrounds(background, len(frames))
        searches, info = [], []
        for frame, box, fill in zip(frames, rows, backgrounds):
            image = to_chw_float(frame)
            size = (int(image.shape[2]), int(image.shape[1]))
            checked = validate_box_xywh(box, size)
            fill = None if fill is None else fill.to(image.device)
            crop, params = self.crop_search(image, xywh_to_xyxy(checked), fill)
            searches.append(crop)
            info.append(crop_info_row(params, size))
        feature = BatchFeature(
            data={"pixel_values_search": torch.stack(searches)}, tensor_type=return_tensors
        )
        feature["crop_info"] = np.stack(info)
        return feature

    @staticmethod
    def _backgrounds(background: Any, count: int) -> list[torch.Tensor | None]:
        if background is None:
            return [None] * count
        fill = torch.as_tensor(
            np.asarray(background.cpu() if isinstance(background, torch.Tensor) else background)
        )
        fill = fill.float()
        if fill.ndim == 1:
            fill = fill[None].expand(count, -1)
        if tuple(fill.shape) != (count, 3):
            raise ValueError(
                f"background must be (3,) or ({count}, 3) colours 0–255, got {tuple(fill.shape)}"
            )
        return list(fill)

    # ------------------------------------------------------------------ post-processing
    def hann_window(self, grid: int | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        """The ``(grid, grid)`` Hann window of the peak selection (default grid: the search grid), cached."""
        grid = self.search_grid if grid is None else int(grid)
        key = (grid, torch.device(device))
        if key not in self._window_cache:
            self._window_cache[key] = hann_window_2d(grid).to(key[1])
        return self._window_cache[key]

    def select_peaks(
        self,
        score_map: torch.Tensor,
        pred_boxes: torch.Tensor,
        window: torch.Tensor | None = None,
        window_penalty: float | None = None,
    ) -> torch.Tensor:
        """Device part of the post-processing: ``(B, H, W)`` score logits and ``(B, H, W, 4)`` boxes ->
        ``(B, 5)`` float32: the peak cell's box (normalised ``x1, y1, x2, y2`` in the search crop) and its
        confidence (the un-penalised sigmoid score). Static shapes and no host sync (CUDA graphs, compile).
        """
        penalty = self.window_penalty if window_penalty is None else float(window_penalty)
        if window is None:
            window = self.hann_window(score_map.shape[-1], score_map.device)
        index, confidence = select_peak(score_map, window, penalty)
        boxes = pred_boxes.flatten(1, 2).gather(1, index[:, None, None].expand(-1, 1, 4))[:, 0]
        return torch.cat((boxes, confidence[:, None].to(boxes.dtype)), dim=1)

    def peaks_to_frame(self, peaks: np.ndarray, crop_info: Any) -> tuple[np.ndarray, np.ndarray]:
        """Host part of the post-processing: :meth:`select_peaks` rows (a numpy array) and their search
        crops' ``crop_info`` -> frame boxes ``(B, 4)`` xyxy float64 pixels (exact inverse of the crop,
        clipped to the frame) and scores ``(B,)``."""
        peaks = np.asarray(peaks, dtype=np.float64).reshape(-1, 5)
        info = _as_crop_info(crop_info, len(peaks))
        scale, offset = info[:, 0:2], info[:, 2:4]
        inverse_scale, inverse_offset = 1.0 / scale, -offset / scale  # CropParams.inverse()
        boxes = peaks[:, :4] * self.search_size
        boxes[:, 0::2] = boxes[:, 0::2] * inverse_scale[:, :1] + inverse_offset[:, :1]
        boxes[:, 1::2] = boxes[:, 1::2] * inverse_scale[:, 1:] + inverse_offset[:, 1:]
        boxes = clip_xyxy(boxes, (info[:, 4:5], info[:, 5:6]))
        return boxes, peaks[:, 4].astype(np.float32).astype(np.float64)

    def post_process_tracking(
        self, outputs: Any, crop_info: Any, window_penalty: float | None = None
    ) -> list[dict[str, torch.Tensor]]:
        """Frame boxes and scores from [`LoratForTracking`] outputs and the search crops' ``crop_info``.

        Args:
            outputs: the model output (``score_map`` and ``pred_boxes``; a tuple from ``return_dict=False``
                works too).
            crop_info: ``crop_info`` of the search batch (see :meth:`preprocess`).
            window_penalty: Hann-window weight of the peak selection (default: the processor's).

        Returns:
            one dict per sample: ``"box"`` (float64 ``x, y, w, h`` pixels, clipped to the frame; its width or
            height is 0 when the prediction lies outside the frame) and ``"score"`` (float32, in [0, 1]).
        """
        if isinstance(outputs, (tuple, list)):
            score_map, pred_boxes = outputs[0], outputs[1]
        elif isinstance(outputs, dict):  # a ModelOutput too
            score_map, pred_boxes = outputs["score_map"], outputs["pred_boxes"]
        else:
            score_map, pred_boxes = outputs.score_map, outputs.pred_boxes
        peaks = self.select_peaks(score_map, pred_boxes, window_penalty=window_penalty)
        boxes, scores = self.peaks_to_frame(peaks.detach().cpu().double().numpy(), crop_info)
        return [
            {"box": torch.from_numpy(xyxy_to_xywh(box)), "score": torch.tensor(score, dtype=torch.float32)}
            for box, score in zip(boxes, scores)
        ]


finish_package_registration()
