"""The package's one frame converter: any image (PIL, numpy, torch) -> ``(H, W, 3)`` uint8 RGB.

Used by the image processor (shipped with checkpoints), the video readers and the dataset loaders, so
every entry point scales 16-bit, bool and float frames the same way. Imports numpy and PIL only (torch
tensors are recognised without importing torch) and no sibling module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

__all__ = ["to_rgb_uint8"]


def _scale_to_uint8(image: np.ndarray, what: str) -> np.ndarray:
    """Numeric array of any dtype -> uint8 0–255 by the dtype's range (see :func:`to_rgb_uint8`)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * np.uint8(255)
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)  # 65535 -> 255, 257*k -> k
    if np.issubdtype(image.dtype, np.integer):
        low, high = (int(image.min()), int(image.max())) if image.size else (0, 0)
        if low < 0 or high > 255:
            raise ValueError(
                f"{what} has {image.dtype} values in [{low}, {high}]; integer frames must be uint8 "
                "(0–255) or uint16 (0–65535): convert with .astype(np.uint16) for 16-bit data"
            )
        return image.astype(np.uint8)
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"{what} has unsupported dtype {image.dtype}; expected uint8, uint16, bool or float")
    image = image.astype(np.float32, copy=False)
    if not np.all(np.isfinite(image)):
        raise ValueError(f"{what} contains NaN or Inf values")
    low, high = (float(image.min()), float(image.max())) if image.size else (0.0, 0.0)
    scale = 255.0 if high <= 1.0 else 1.0  # floats are 0–1, or 0–255 when larger than 1
    # a little overshoot (e.g. from bicubic resizing) is clipped; anything further is not an image
    if low * scale < -_FLOAT_SLACK or high > 255.0 + _FLOAT_SLACK:
        raise ValueError(
            f"{what} has float values in [{low:g}, {high:g}]; float frames must be 0–1 or 0–255 "
            "(un-normalise them first)"
        )
    return np.clip(np.rint(image * scale), 0, 255).astype(np.uint8)


_FLOAT_SLACK = 16.0  # tolerated over/undershoot of float frames, in 0–255 units
_PIL_8BIT_MODES = (
    "1",
    "L",
    "P",
    "RGB",
    "RGBA",
    "RGBX",
    "RGBa",
    "CMYK",
    "YCbCr",
    "LAB",
    "HSV",
    "LA",
    "La",
    "PA",
)


def _pil_to_array(image: Image.Image) -> np.ndarray:
    """PIL image -> numpy array keeping the full bit depth (16-bit and float modes are not clipped)."""
    if image.mode in _PIL_8BIT_MODES:
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if image.mode.startswith("I;16"):
        return array.astype(np.uint16)  # native byte order
    if image.mode == "I" and array.size and array.min() >= 0 and 255 < array.max() <= 65535:
        return array.astype(np.uint16)  # 32-bit mode holding 16-bit samples (older Pillow, TIFF)
    return array


def to_rgb_uint8(image: Any, what: str = "frame") -> np.ndarray:
    """Any image -> contiguous ``(H, W, 3)`` uint8 RGB array (the one frame converter of this package).

    Accepts PIL images (every mode, including 16-bit ``I;16`` and float ``F``), numpy arrays and torch
    tensors (any device) of shape ``(H, W)``, ``(H, W, C)`` or (torch) ``(C, H, W)`` with C in 1–4:
    grayscale is repeated to 3 channels, gray+alpha keeps the gray, RGBA drops alpha. Values are
    scaled by their dtype's range: ``uint8`` as is; ``uint16`` (16-bit PNG/TIFF) divided by 257
    (``65535 -> 255``); ``bool`` to 0/255; other integer dtypes must hold 0–255; floats are 0–1
    (scaled by 255) or, when their maximum exceeds 1, 0–255 (rounded).

    Raises ``ValueError`` naming ``what`` for a wrong shape, an unsupported dtype, NaN/Inf, or values
    outside those ranges (e.g. ImageNet-normalised tensors) instead of clipping them silently.
    """
    if isinstance(image, Image.Image):
        image = _pil_to_array(image)
    elif type(image).__module__.startswith("torch"):
        tensor = image.detach().cpu()
        if tensor.ndim == 3 and tensor.shape[0] in (1, 2, 3, 4) and tensor.shape[-1] not in (1, 2, 3, 4):
            tensor = tensor.permute(1, 2, 0)
        if tensor.is_floating_point():
            tensor = tensor.float()  # bfloat16 has no numpy twin
        image = tensor.numpy()
    if not isinstance(image, np.ndarray):
        raise ValueError(f"unsupported {what} type {type(image).__name__}; expected PIL, numpy or torch")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"{what} must be (H, W), (H, W, 1-4) or (1-4, H, W); got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{what} is empty: shape {image.shape}")
    if image.shape[2] <= 2:
        image = np.repeat(image[:, :, :1], 3, axis=2)  # gray (+ alpha)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(_scale_to_uint8(image, what))
