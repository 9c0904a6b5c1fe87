"""Photometric / geometric augmentation of training crops (official LoRAT ``run.yaml`` list).

Applied to the template and search crops after cropping, in this order (official pipeline):

1. ``horizontal_flip`` p=0.5, drawn per image (``joint: false``), boxes flipped with the image;
2. ``color_jitter`` brightness / contrast / saturation 0.4, per image, random order of the three ops
   (torchvision semantics: factors ``U(0.6, 1.4)``, results clamped);
3. ``DeiT_3_aug``, joint for both crops: exactly one of grayscale / solarize / gaussian blur
   (radius ``U(0.1, 2)``), chosen uniformly, applied through 8-bit PIL images (as the official code,
   which also quantises the crops to 8 bits).

Crops here are ``(3, h, w)`` float tensors with values 0-255 and boxes ``x1, y1, x2, y2`` in crop pixels.
All randomness comes from the ``numpy.random.Generator`` passed in (deterministic per sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps

# ITU-R 601-2 luma, as torchvision.transforms.functional.rgb_to_grayscale
_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


def hflip(image: torch.Tensor, box_xyxy: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Mirror ``image`` ``(C, h, w)`` left-right and its box: ``x1' = w - x2``, ``x2' = w - x1``."""
    width = image.shape[-1]
    box = np.asarray(box_xyxy, dtype=np.float64)
    flipped = np.array([width - box[2], box[1], width - box[0], box[3]], dtype=np.float64)
    return image.flip(-1), flipped


def _grayscale(image: torch.Tensor) -> torch.Tensor:
    r, g, b = image[0], image[1], image[2]
    return (_GRAY_WEIGHTS[0] * r + _GRAY_WEIGHTS[1] * g + _GRAY_WEIGHTS[2] * b).unsqueeze(0)


def _blend(image: torch.Tensor, other: torch.Tensor | float, factor: float) -> torch.Tensor:
    return (factor * image + (1.0 - factor) * other).clamp_(0.0, 255.0)


def adjust_brightness(image: torch.Tensor, factor: float) -> torch.Tensor:
    """``image * factor`` clamped to 0-255."""
    return _blend(image, 0.0, factor)


def adjust_contrast(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with the mean gray level of the image."""
    return _blend(image, _grayscale(image).mean(), factor)


def adjust_saturation(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with the grayscale version of the image."""
    return _blend(image, _grayscale(image), factor)


def color_jitter(
    image: torch.Tensor,
    rng: np.random.Generator,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
) -> torch.Tensor:
    """Random brightness / contrast / saturation in random order (official draw order: the
    permutation of the four torchvision ops, then the three factors ``U(1 - v, 1 + v)``)."""
    order = rng.permutation(4)
    factors = {}
    for index, value in enumerate((brightness, contrast, saturation)):
        if value > 0:
            factors[index] = float(rng.uniform(max(0.0, 1.0 - value), 1.0 + value))
    ops = (adjust_brightness, adjust_contrast, adjust_saturation)
    for op_index in order:
        if op_index in factors:
            image = ops[op_index](image, factors[op_index])
    return image


def _to_pil(image: torch.Tensor) -> Image.Image:
    # torchvision's to_pil_image(float) does ``mul(255).byte()``: clamp, then truncate.
    array = image.clamp(0.0, 255.0).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(array, mode="RGB")


def _from_pil(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1).float()


def deit3_augment(images: list[torch.Tensor], rng: np.random.Generator) -> list[torch.Tensor]:
    """DeiT-III "3-augment", one choice for all ``images`` (joint): grayscale, solarize (threshold
    128) or gaussian blur with radius ``U(0.1, 2)``. Returns new 0-255 float tensors."""
    choice = int(rng.choice(3))
    pil = [_to_pil(image) for image in images]
    if choice == 0:
        pil = [img.convert("L").convert("RGB") for img in pil]
    elif choice == 1:
        pil = [ImageOps.solarize(img) for img in pil]
    else:
        blur = ImageFilter.GaussianBlur(radius=float(rng.uniform(0.1, 2.0)))
        pil = [img.filter(blur) for img in pil]
    return [_from_pil(img) for img in pil]


@dataclass(frozen=True)
class AugmentationConfig:
    """Official defaults; set a probability / strength to 0 (or ``deit3=False``) to disable a step."""

    flip_probability: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    deit3: bool = True


class PairAugmentation:
    """Augments a (template, search) crop pair with the official pipeline, boxes included."""

    def __init__(self, config: AugmentationConfig | None = None) -> None:
        self.config = config or AugmentationConfig()

    def __call__(
        self,
        images: list[torch.Tensor],
        boxes: list[np.ndarray],
        rng: np.random.Generator,
    ) -> tuple[list[torch.Tensor], list[np.ndarray]]:
        """``images``: crops ``(3, h, w)`` 0-255 (template first); ``boxes``: matching xyxy crop boxes."""
        cfg = self.config
        images, boxes = list(images), [np.asarray(b, dtype=np.float64) for b in boxes]
        if cfg.flip_probability > 0:
            for i in range(len(images)):
                if rng.random() < cfg.flip_probability:
                    images[i], boxes[i] = hflip(images[i], boxes[i])
        if cfg.brightness > 0 or cfg.contrast > 0 or cfg.saturation > 0:
            images = [color_jitter(img, rng, cfg.brightness, cfg.contrast, cfg.saturation) for img in images]
        if cfg.deit3:
            images = deit3_augment(images, rng)
        return images, boxes
