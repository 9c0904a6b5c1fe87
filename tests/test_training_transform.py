"""Training transform: crop labels, template mask, flip, colour jitter, DeiT-III, rejected crops."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_lorat.testing_utils import tiny_config  # noqa: E402
from training.data import (  # noqa: E402
    AugmentationConfig,
    BadSampleError,
    FramePair,
    PairAugmentation,
    PairTransform,
    TransformConfig,
)
from training.data.augmentation import color_jitter, deit3_augment, hflip  # noqa: E402

B224 = TransformConfig(template_size=112, search_size=224)


def _frame(box_xywh, size=(320, 240)) -> np.ndarray:
    """Gray frame with a white target exactly covering ``box_xywh``."""
    image = np.full((size[1], size[0], 3), 60, np.uint8)
    x, y, w, h = (int(v) for v in box_xywh)
    image[y : y + h, x : x + w] = 250
    return image


def _pair(t_box, s_box, **kw) -> FramePair:
    return FramePair(
        lambda: _frame(t_box), np.array(t_box, float), lambda: _frame(s_box), np.array(s_box, float), **kw
    )


def test_labels_are_the_target_box_inside_the_search_crop():
    transform = PairTransform(B224)
    for seed in range(20):
        s_box = [100.0 + seed, 80.0, 40.0, 30.0]
        out = transform(_pair([100, 80, 40, 30], s_box), np.random.default_rng(seed))
        if out is None:
            continue
        labels = out["labels"].numpy()
        assert ((labels >= 0) & (labels <= 1)).all() and (labels[:2] < labels[2:]).all()
        # undo the normalisation and check the crop is bright inside the labelled box
        crop = out["pixel_values_search"] * torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
        crop = (crop + torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)) * 255
        x1, y1, x2, y2 = (labels * 224).round().astype(int)
        inner = crop[:, y1 + 2 : y2 - 2, x1 + 2 : x2 - 2]
        assert inner.numel() and inner.mean() > 200
        assert out["pixel_values_search"].shape == (3, 224, 224)
        assert out["pixel_values_template"].shape == (3, 112, 112)


def test_template_mask_marks_the_cells_of_the_centred_target():
    out = PairTransform(B224)(_pair([100, 80, 40, 20], [100, 80, 40, 20]), np.random.default_rng(0))
    mask = out["template_mask"]
    assert mask.shape == (8, 8) and mask.dtype == torch.long
    # area factor 2: crop side sqrt(70 * 50) px -> scale 1.893; the box becomes x [18.1, 93.9), y [37.1, 74.9)
    # template pixels -> 14-px cells x 1..6, y 2..5
    expected = torch.zeros(8, 8, dtype=torch.long)
    expected[2:6, 1:7] = 1
    assert torch.equal(mask, expected)


def test_hflip_moves_the_box_with_the_image():
    image = torch.zeros(3, 10, 20)
    image[:, 2:5, 1:6] = 255
    flipped, box = hflip(image, np.array([1.0, 2.0, 6.0, 5.0]))
    np.testing.assert_allclose(box, [14.0, 2.0, 19.0, 5.0])
    assert flipped[:, 2:5, 14:19].min() == 255 and flipped[:, :, :14].max() == 0


def test_flip_augmentation_is_applied_to_crops_and_labels():
    flip_only = PairAugmentation(
        AugmentationConfig(flip_probability=1.0, brightness=0, contrast=0, saturation=0, deit3=False)
    )
    box = [60, 80, 40, 30]
    plain = PairTransform(B224)(_pair(box, box), np.random.default_rng(7))
    flipped = PairTransform(B224, augmentation=flip_only)(_pair(box, box), np.random.default_rng(7))
    np.testing.assert_allclose(
        flipped["labels"][[0, 2]].numpy(), 1 - plain["labels"][[2, 0]].numpy(), atol=1e-6
    )
    assert torch.allclose(flipped["pixel_values_search"], plain["pixel_values_search"].flip(-1))
    assert torch.equal(flipped["template_mask"], plain["template_mask"].flip(-1))


def test_color_jitter_and_deit3_stay_in_range_and_are_seeded():
    image = torch.rand(3, 16, 16) * 255
    a = color_jitter(image.clone(), np.random.default_rng(1))
    b = color_jitter(image.clone(), np.random.default_rng(1))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 255 and not torch.equal(a, image)
    for seed in range(6):
        outs = deit3_augment([image, image.clone()], np.random.default_rng(seed))
        assert torch.equal(outs[0], outs[1])  # joint: same op on both crops
        assert outs[0].min() >= 0 and outs[0].max() <= 255 and torch.equal(outs[0], outs[0].round())


def test_unreachable_search_crop_is_rejected_and_bad_inputs_raise():
    transform = PairTransform(TransformConfig(template_size=112, search_size=224, min_object_size=10000))
    assert transform(_pair([100, 80, 40, 30], [100, 80, 40, 30]), np.random.default_rng(0)) is None
    with pytest.raises(BadSampleError) as info:
        PairTransform(B224)(_pair([100, 80, 0, 30], [100, 80, 40, 30]), np.random.default_rng(0))
    assert info.value.reason == "empty_box"

    def broken():
        raise OSError("truncated JPEG")

    pair = FramePair(broken, np.array([10.0, 10, 20, 20]), broken, np.array([10.0, 10, 20, 20]))
    with pytest.raises(BadSampleError) as info:
        PairTransform(B224)(pair, np.random.default_rng(0))
    assert info.value.reason == "broken_image"


def test_tiny_config_transform_scales_min_object_size():
    cfg = TransformConfig.from_model_config(tiny_config())
    assert (cfg.template_size, cfg.search_size, cfg.search_area_factor) == (28, 56, 4.0)
    assert cfg.min_object_size == pytest.approx(2.5)
