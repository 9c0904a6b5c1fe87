"""SiamFC-style cropping shared by the image processor (inference) and training.

Numerically follows the official ``trackit/core/utils/siamfc_cropping.py`` and the pixel-aligned
``scale_and_translate`` operator: a crop is an isotropic scale ``s`` and a translation ``t`` mapping
frame coordinates to crop coordinates, ``p_crop = p_frame * s + t`` (per axis). The image is resampled
only inside the integer-aligned region where the frame lands in the crop (bilinear,
``align_corners=False``) and the rest is filled with a background colour (a per-channel mean); the
parameters are then *adjusted* to the pixel-aligned region actually sampled, so boxes map back exactly.

Boxes here are ``xyxy`` in pixels (continuous coordinates). Sizes are ``(W, H)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .box_ops import clip_xyxy, is_valid_xyxy, rasterize_xyxy


@dataclass(frozen=True)
class CropParams:
    """Crop transform ``p_crop = p_frame * scale + translation``; both ``(2,)`` float64 (x, y)."""

    scale: np.ndarray
    translation: np.ndarray

    def inverse(self) -> CropParams:
        """The transform mapping crop coordinates back to the frame."""
        return CropParams(1.0 / self.scale, -self.translation / self.scale)

    def apply_to_boxes(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Map ``(..., 4)`` xyxy boxes through this transform (float64 copy)."""
        boxes = np.array(boxes_xyxy, dtype=np.float64)
        boxes[..., 0::2] = boxes[..., 0::2] * self.scale[0] + self.translation[0]
        boxes[..., 1::2] = boxes[..., 1::2] * self.scale[1] + self.translation[1]
        return boxes


def crop_params_from_box(box_xyxy: np.ndarray, area_factor: float, output_size) -> CropParams:
    """Crop of area ``(w + p)(h + p)``, ``p = (f - 1)(w + h) / 2``, centred on the box, resized to ``output_size``."""
    box = np.asarray(box_xyxy, dtype=np.float64)
    out = np.asarray(output_size, dtype=np.float64)
    wh = box[2:] - box[:2]
    area = wh + (area_factor - 1) * (wh.sum() * 0.5)
    scale = np.sqrt(out.prod() / area.prod()).repeat(2)
    center = (box[:2] + box[2:]) * 0.5
    return CropParams(scale, out / 2.0 - center * scale)


def jittered_crop_params_from_box(
    box_xyxy: np.ndarray,
    area_factor: float,
    output_size,
    scale_jitter: float,
    translation_jitter: float,
    rng: np.random.Generator,
) -> CropParams:
    """Training crop: scale divided by ``exp(N(0,1) * scale_jitter)`` per axis, then the translation
    shifted by ``U(-1, 1) * (s . wh).sum() / 2 * translation_jitter`` per axis (official order of draws)."""
    base = crop_params_from_box(box_xyxy, area_factor, output_size)
    box = np.asarray(box_xyxy, dtype=np.float64)
    scale = base.scale / np.exp(rng.standard_normal(2, dtype=np.float64) * scale_jitter)
    center = (box[:2] + box[2:]) * 0.5
    translation = np.asarray(output_size, dtype=np.float64) / 2.0 - center * scale
    max_shift = ((box[2:] - box[:2]) * scale).sum() * 0.5 * translation_jitter
    translation = rng.uniform(low=-1, high=1, size=2) * max_shift + translation
    return CropParams(scale, translation)


def sample_training_crop(
    box_xyxy: np.ndarray,
    area_factor: float,
    output_size,
    scale_jitter: float,
    translation_jitter: float,
    rng: np.random.Generator,
    min_object_size: float = 0.0,
    retries: int = 10,
) -> tuple[CropParams, bool]:
    """Draw jittered crop parameters until the object is visible with at least ``min_object_size``
    pixels per side in the crop (official retry rule); returns ``(params, is_positive)``."""
    if scale_jitter == 0 and translation_jitter == 0:
        return crop_params_from_box(box_xyxy, area_factor, output_size), True
    out = np.asarray(output_size, dtype=np.float64)
    for attempt in range(retries + 2):
        params = jittered_crop_params_from_box(
            box_xyxy, area_factor, output_size, scale_jitter, translation_jitter, rng
        )
        cropped = params.apply_to_boxes(box_xyxy)
        inside = cropped[0] < out[0] and cropped[1] < out[1] and cropped[2] > 0 and cropped[3] > 0
        if inside:
            wh = np.diff(clip_xyxy(cropped, out).reshape(2, 2), axis=0)[0]
            if np.all(wh >= min_object_size):
                return params, True
        if attempt > retries:
            break
    return params, False


class HostStaging:
    """Pinned host memory for the frame regions one tracker step sends to a CUDA device.

    A copy from pinned memory is asynchronous, so preparing the next region does not wait for the device
    to finish the work queued before it. Regions are packed one after another; call :meth:`reset` once
    the copies of the previous step are done (the tracker does, after its device-to-host read).
    """

    def __init__(self) -> None:
        self._buffers: list[torch.Tensor] = []
        self._offset = 0

    def reset(self) -> None:
        """Reuse the memory from the start (keeps only the largest buffer)."""
        self._buffers = self._buffers[-1:]
        self._offset = 0

    def to_device(self, array: np.ndarray, device: torch.device) -> torch.Tensor:
        """Copy a uint8 ``array`` through pinned memory to ``device`` (non-blocking)."""
        size = array.size
        if not self._buffers or self._offset + size > self._buffers[-1].numel():
            capacity = max(2 * size, 2 * self._buffers[-1].numel() if self._buffers else 1 << 20)
            pinned = torch.cuda.is_available()  # (plain memory where no CUDA: the same logic, tested on CPU)
            self._buffers.append(torch.empty(capacity, dtype=torch.uint8, pin_memory=pinned))
            self._offset = 0  # earlier buffers stay alive until reset: their copies may be in flight
        view = self._buffers[-1][self._offset : self._offset + size]
        self._offset += size
        np.copyto(view.numpy().reshape(array.shape), array)
        return view.view(array.shape).to(device, non_blocking=True)


def _frame_region(
    image: torch.Tensor | np.ndarray, src: np.ndarray, device: torch.device, staging: HostStaging | None
) -> torch.Tensor:
    """``(1, C, h, w)`` float32 pixels of ``src`` (xyxy ints); an ``(H, W, C)`` uint8 host frame is sliced
    on the host, so only the region crosses to ``device`` (through ``staging`` when given)."""
    if isinstance(image, np.ndarray):
        region = image[src[1] : src[3], src[0] : src[2]]
        if staging is not None and device.type == "cuda":
            tensor = staging.to_device(region, device)
        else:
            if not (region.flags.c_contiguous and region.flags.writeable):
                region = np.array(region)  # torch.from_numpy needs a writeable, contiguous buffer
            tensor = torch.from_numpy(region).to(device)
        return tensor.permute(2, 0, 1)[None].float()
    return image[None, :, src[1] : src[3], src[0] : src[2]]


def crop_image(
    image: torch.Tensor | np.ndarray,
    params: CropParams,
    output_size,
    background: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
    staging: HostStaging | None = None,
) -> tuple[torch.Tensor, torch.Tensor, CropParams]:
    """Crop ``image`` with ``params`` to ``output_size`` (W, H).

    ``image`` is a ``(C, H, W)`` float tensor (0–255), or an ``(H, W, 3)`` uint8 numpy frame (then
    ``background`` is required and the crop lands on ``background.device``: only the resampled region is
    copied there, through pinned ``staging`` memory when given). Pixels outside the frame are ``background`` (``(C,)``; default: the image's per-channel
    mean). Returns ``(crop (C, h, w) float32, background, adjusted_params)``: the parameters of the
    integer-aligned region actually resampled, to be used for every box mapping (as the official code does).
    """
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.dtype != np.uint8 or background is None:
            raise ValueError(
                f"crop_image takes a numpy frame only as (H, W, C) uint8 with a background colour, "
                f"got {image.shape} {image.dtype}"
            )
        height, width, channels = image.shape
        device, dtype = background.device, torch.float32
    elif image.ndim != 3 or not image.is_floating_point():
        raise ValueError(
            f"crop_image expects a (C, H, W) float tensor, got {tuple(image.shape)} {image.dtype}"
        )
    else:
        channels, height, width = image.shape
        device, dtype = image.device, image.dtype
    out_w, out_h = int(output_size[0]), int(output_size[1])
    if background is None:
        background = image.mean(dim=(-2, -1))
    if out is None:
        out = torch.empty((channels, out_h, out_w), dtype=dtype, device=device)
    out[:] = background.view(-1, 1, 1).to(out.dtype)

    inv = params.inverse()
    dst = rasterize_xyxy(
        clip_xyxy(params.apply_to_boxes(np.array([0.0, 0.0, width, height])), (out_w, out_h))
    )
    src = clip_xyxy(rasterize_xyxy(inv.apply_to_boxes(dst.astype(np.float64))), (width, height)).astype(
        np.int64
    )
    if is_valid_xyxy(dst.astype(np.float64)) and is_valid_xyxy(src.astype(np.float64)):
        region = _frame_region(image, src, out.device, staging)
        out[:, dst[1] : dst[3], dst[0] : dst[2]] = F.interpolate(
            region, size=(int(dst[3] - dst[1]), int(dst[2] - dst[0])), mode="bilinear", align_corners=False
        )[0]
        src_f, dst_f = src.astype(np.float32), dst.astype(np.float32)  # official: float32 arithmetic
        real_scale = (dst_f[2:] - dst_f[:2]) / (src_f[2:] - src_f[:2])
        real_translation = dst_f[:2] - src_f[:2] * real_scale
        params = CropParams(real_scale.astype(np.float64), real_translation.astype(np.float64))
    return out, background, params
