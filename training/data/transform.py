"""Training-pair transform: SiamFC crops, augmentation, labels and template mask (official order).

For one sampled (template frame, search frame) pair:

1. template crop parameters: area factor 2, no jitter; search crop parameters: area factor 4 (5 for
   *-378), scale jitter 0.25, translation jitter 3, min object size 10 px in the crop
   (:func:`modeling_lorat.cropping.sample_training_crop`); if the search crop cannot show the target the
   pair is rejected (``None``) before any image is decoded — the caller draws a new pair, as the official
   code does;
2. frames are decoded (once when template and search are the same frame) and cropped with each frame's
   per-channel mean as padding; boxes are mapped with the *adjusted* (pixel-aligned) crop parameters;
3. augmentation (:mod:`training.data.augmentation`), then boxes clipped to the crops;
4. ``labels`` = the search box normalised to the crop (xyxy in [0, 1]; a NaN row for negative pairs),
   ``template_mask`` = the template box rasterised on the template token grid,
   crops normalised with :meth:`LoratImageProcessor.normalize_crop`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from modeling_lorat.box_ops import clip_xyxy, is_valid_xyxy, xywh_to_xyxy
from modeling_lorat.configuration_lorat import PROCESSING_DEFAULTS
from modeling_lorat.cropping import crop_image, sample_training_crop
from modeling_lorat.image_processing_lorat import LoratImageProcessor

from .augmentation import PairAugmentation

#: Official minimum object side (pixels) in a 224-px search crop.
OFFICIAL_MIN_OBJECT_SIZE = 10.0


class BadSampleError(ValueError):
    """A sample that cannot be used (empty box, unreadable frame, ...); ``reason`` names the cause."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


#: Crop geometry the transform shares with the model's image processor (read from it, never restated).
GEOMETRY_KEYS = ("template_size", "search_size", "patch_size", "template_area_factor", "search_area_factor")


@dataclass(frozen=True)
class TransformConfig:
    """Crop geometry (from the image processor: :meth:`from_processor`, :meth:`from_model_config`) and the
    training-only SiamFC parameters: scale / translation jitter and the minimum visible object size
    (pixels in the search crop, the official rejection rule; not the processor's inference enlargement)."""

    template_size: int = PROCESSING_DEFAULTS["template_size"]
    search_size: int = PROCESSING_DEFAULTS["search_size"]
    patch_size: int = PROCESSING_DEFAULTS["patch_size"]
    template_area_factor: float = PROCESSING_DEFAULTS["template_area_factor"]
    search_area_factor: float = PROCESSING_DEFAULTS["search_area_factor"]
    scale_jitter: float = 0.25
    translation_jitter: float = 3.0
    min_object_size: float = OFFICIAL_MIN_OBJECT_SIZE

    @classmethod
    def from_processor(cls, processor: LoratImageProcessor, **overrides) -> TransformConfig:
        """Geometry of ``processor`` (:data:`GEOMETRY_KEYS`). The minimum object size is the official 10 px
        for search crops of 224 px or more, and scaled with the crop below that (tiny test models)."""
        kwargs = {key: getattr(processor, key) for key in GEOMETRY_KEYS}
        kwargs["min_object_size"] = OFFICIAL_MIN_OBJECT_SIZE * min(1.0, processor.search_size / 224.0)
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def from_model_config(cls, config, **overrides) -> TransformConfig:
        """:meth:`from_processor` of the image processor of a ``LoratConfig`` (the one inference uses)."""
        return cls.from_processor(LoratImageProcessor.from_config(config), **overrides)

    def processor(self) -> LoratImageProcessor:
        """An image processor with this geometry (normalisation and template mask for the crops)."""
        return LoratImageProcessor(**{key: getattr(self, key) for key in GEOMETRY_KEYS})


@dataclass
class FramePair:
    """What the pair sampler hands to the transform.

    ``*_frame`` are zero-argument loaders returning ``(H, W, 3)`` uint8 RGB; boxes are ``x, y, w, h``
    pixels of their frame. ``same_image`` means both loaders return the same frame (decoded once).
    """

    template_frame: Callable[[], np.ndarray]
    template_box: np.ndarray
    search_frame: Callable[[], np.ndarray]
    search_box: np.ndarray
    is_positive: bool = True
    same_image: bool = False


def _frame_tensor(loader: Callable[[], np.ndarray]) -> torch.Tensor:
    try:
        frame = np.asarray(loader())
    except (OSError, ValueError, RuntimeError) as exc:
        raise BadSampleError("broken_image", f"cannot decode frame: {exc}") from exc
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise BadSampleError("broken_image", f"frame has shape {frame.shape}, expected (H, W, 3)")
    frame = np.require(
        frame, dtype=np.uint8, requirements=["C", "W"]
    )  # decoders may hand out read-only views
    return torch.from_numpy(frame).permute(2, 0, 1).float()


def _checked_box(box_xywh: np.ndarray, what: str) -> np.ndarray:
    box = xywh_to_xyxy(np.asarray(box_xywh, dtype=np.float64).reshape(4))
    if not is_valid_xyxy(box):
        raise BadSampleError(
            "empty_box", f"{what} box {np.asarray(box_xywh).tolist()} is empty or not finite"
        )
    return box


class PairTransform:
    """Turns a :class:`FramePair` into model inputs (see the module docstring).

    Returns ``None`` when the jittered search crop cannot show the target (official rule: resample);
    raises :class:`BadSampleError` for unusable inputs (empty boxes, undecodable frames).
    """

    def __init__(
        self,
        config: TransformConfig,
        processor: LoratImageProcessor | None = None,
        augmentation: PairAugmentation | None = None,
    ) -> None:
        self.config = config
        if processor is not None:
            differ = [k for k in GEOMETRY_KEYS if getattr(processor, k) != getattr(config, k)]
            if differ:
                raise ValueError(
                    "the image processor and the transform config disagree on "
                    + ", ".join(f"{k} ({getattr(processor, k)} vs {getattr(config, k)})" for k in differ)
                    + ": build the config with TransformConfig.from_processor(processor)"
                )
        self.processor = processor or config.processor()
        self.augmentation = augmentation

    def __call__(self, pair: FramePair, rng: np.random.Generator) -> dict[str, torch.Tensor] | None:
        cfg = self.config
        t_size, s_size = (cfg.template_size,) * 2, (cfg.search_size,) * 2
        t_box = _checked_box(pair.template_box, "template")
        s_box = _checked_box(pair.search_box, "search")
        t_params, _ = sample_training_crop(t_box, cfg.template_area_factor, t_size, 0.0, 0.0, rng)
        s_params, visible = sample_training_crop(
            s_box,
            cfg.search_area_factor,
            s_size,
            cfg.scale_jitter,
            cfg.translation_jitter,
            rng,
            min_object_size=cfg.min_object_size,
        )
        if not visible:
            return None

        t_frame = _frame_tensor(pair.template_frame)
        s_frame = t_frame if pair.same_image else _frame_tensor(pair.search_frame)
        t_crop, _, t_params = crop_image(t_frame, t_params, t_size)
        s_crop, _, s_params = crop_image(s_frame, s_params, s_size)
        t_crop_box = t_params.apply_to_boxes(t_box)
        s_crop_box = s_params.apply_to_boxes(s_box)

        if self.augmentation is not None:
            (t_crop, s_crop), (t_crop_box, s_crop_box) = self.augmentation(
                [t_crop, s_crop], [t_crop_box, s_crop_box], rng
            )
        t_crop_box = clip_xyxy(t_crop_box, t_size)
        s_crop_box = clip_xyxy(s_crop_box, s_size)
        if not is_valid_xyxy(t_crop_box):
            raise BadSampleError("empty_box", f"template box {t_crop_box.tolist()} is empty inside its crop")

        if pair.is_positive:
            if not is_valid_xyxy(s_crop_box):
                return None
            labels = torch.from_numpy((s_crop_box / cfg.search_size).astype(np.float32))
        else:
            labels = torch.full((4,), float("nan"), dtype=torch.float32)
        return {
            "pixel_values_template": self.processor.normalize_crop(t_crop),
            "pixel_values_search": self.processor.normalize_crop(s_crop),
            "template_mask": self.processor.template_mask(t_crop_box),
            "labels": labels,
        }
