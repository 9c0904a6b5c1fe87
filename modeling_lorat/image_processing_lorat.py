"""`LoratImageProcessor`: SiamFC crops, normalisation, template masks and exact box mapping.

Boxes at this boundary are ``x, y, w, h`` in pixels of the original frame. Crops are made with
:mod:`modeling_lorat.cropping` (the official pixel-aligned algorithm), so boxes map back exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from .box_ops import enlarge_to_min_size, rasterize_xyxy, xywh_to_xyxy
from .cropping import CropParams, HostStaging, crop_image, crop_params_from_box

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
    (16-bit, bool, float arrays) go through :func:`modeling_lorat.video_io.to_rgb_uint8`, which scales
    them by their dtype and refuses NaN or out-of-range values; float tensors stay on their device.
    """
    if (
        isinstance(image, Image.Image)
        or (isinstance(image, np.ndarray) and image.dtype != np.uint8)
        or (isinstance(image, torch.Tensor) and not image.is_floating_point() and image.dtype != torch.uint8)
    ):
        from .video_io import to_rgb_uint8

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


class LoratImageProcessor(BaseImageProcessor):
    r"""Crops template / search regions around boxes and normalises them for [`LoratForTracking`].

    Args:
        template_size, search_size (`int`): crop sides in pixels.
        template_area_factor, search_area_factor (`float`): context factors (2 and 4 or 5).
        min_object_size (`float`): boxes are enlarged to this size (pixels) before a search crop.
        patch_size (`int`): ViT patch size, to rasterise the template mask.
        image_mean, image_std: normalisation applied after scaling to [0, 1].
    """

    model_input_names = ["pixel_values_template", "pixel_values_search", "template_mask"]

    def __init__(
        self,
        template_size: int = 112,
        search_size: int = 224,
        template_area_factor: float = 2.0,
        search_area_factor: float = 4.0,
        min_object_size: float = 10.0,
        patch_size: int = 14,
        image_mean: tuple[float, ...] = IMAGENET_MEAN,
        image_std: tuple[float, ...] = IMAGENET_STD,
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
        self._norm_cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_config(cls, config: Any) -> LoratImageProcessor:
        """Processor matching a `LoratConfig`."""
        return cls(
            template_size=config.template_size,
            search_size=config.search_size,
            template_area_factor=config.template_area_factor,
            search_area_factor=config.search_area_factor,
            min_object_size=config.min_object_size,
            patch_size=config.patch_size,
            image_mean=config.image_mean,
            image_std=config.image_std,
        )

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output.pop("_norm_cache", None)
        return output

    # ------------------------------------------------------------------ pieces
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
        grid = self.template_size // self.patch_size
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

    # ------------------------------------------------------------------ HF entry point
    def preprocess(
        self,
        template_images: Any,
        template_boxes: Any,
        search_images: Any,
        search_boxes: Any,
        return_tensors: str | None = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        """Batch of model inputs from frames and boxes (``x, y, w, h`` pixels).

        ``search_boxes`` are the boxes to centre the search crops on (the previous prediction when tracking).
        Returns ``pixel_values_template``, ``pixel_values_search``, ``template_mask`` and the per-sample
        ``search_crop_params`` (for :meth:`boxes_to_frame`).
        """
        singles = not isinstance(template_images, (list, tuple))
        if singles:
            template_images, template_boxes = [template_images], [template_boxes]
            search_images, search_boxes = [search_images], [search_boxes]
        if not (len(template_images) == len(template_boxes) == len(search_images) == len(search_boxes)):
            raise ValueError(
                "template_images, template_boxes, search_images and search_boxes must have equal lengths"
            )
        templates, masks, searches, params = [], [], [], []
        for t_img, t_box, s_img, s_box in zip(template_images, template_boxes, search_images, search_boxes):
            template = self.crop_template(t_img, t_box)
            frame = to_chw_float(s_img)
            box = validate_box_xywh(s_box, (frame.shape[2], frame.shape[1]))
            crop, crop_params = self.crop_search(frame, xywh_to_xyxy(box), template["image_mean"])
            templates.append(template["pixel_values"])
            masks.append(template["template_mask"])
            searches.append(crop)
            params.append(crop_params)
        data = {
            "pixel_values_template": torch.stack(templates),
            "pixel_values_search": torch.stack(searches),
            "template_mask": torch.stack(masks),
        }
        feature = BatchFeature(data=data, tensor_type=return_tensors)
        feature["search_crop_params"] = params
        return feature
