"""`LoratImageProcessor`: input types, serialisation, template masks, batching, padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor

import modeling_lorat  # noqa: F401  (registers the Auto classes)
from modeling_lorat.image_processing_lorat import LoratImageProcessor
from modeling_lorat.testing_utils import tiny_config


@pytest.fixture
def processor() -> LoratImageProcessor:
    """112 px template (8x8 cells), 224 px search: fine enough to check masks cell by cell."""
    return LoratImageProcessor(template_size=112, search_size=224, patch_size=14)


@pytest.fixture
def frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)


def test_pil_numpy_torch_inputs_give_identical_crops(processor, frame):
    box = (40.3, 30.7, 25.2, 33.9)
    inputs = [
        frame,
        Image.fromarray(frame),
        torch.from_numpy(frame).permute(2, 0, 1),  # (3, H, W) uint8
        torch.from_numpy(frame).permute(2, 0, 1).float() / 255.0,  # (3, H, W) float in [0, 1]
    ]
    crops = [processor.crop_template(image, box) for image in inputs]
    for crop in crops[1:]:
        torch.testing.assert_close(crop["pixel_values"], crops[0]["pixel_values"], rtol=0, atol=1e-4)
        torch.testing.assert_close(crop["template_mask"], crops[0]["template_mask"])
    searches = [
        processor.crop_search(
            modeling_lorat.image_processing_lorat.to_chw_float(image), np.array([40, 30, 70, 60])
        )
        for image in inputs
    ]
    for crop, params in searches[1:]:
        torch.testing.assert_close(crop, searches[0][0], rtol=0, atol=1e-4)
        np.testing.assert_array_equal(params.scale, searches[0][1].scale)


def test_save_and_auto_round_trip(tmp_path):
    processor = LoratImageProcessor.from_config(tiny_config())
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "preprocessor_config.json").is_file()
    for loaded in (
        LoratImageProcessor.from_pretrained(tmp_path),
        AutoImageProcessor.from_pretrained(tmp_path),
    ):
        assert isinstance(loaded, LoratImageProcessor)
        assert loaded.to_dict() == processor.to_dict()
        assert (loaded.template_size, loaded.search_size, loaded.min_object_size) == (28, 56, 2.0)


def test_template_mask_matches_box(processor, frame):
    # wide box (40, 50, 60, 10): crop side 65.4 px, scale 1.713, so the box spans crop pixels
    # x 4.6..107.4 (cells 0..7) and y 47.4..64.6 (cells 3..4); no edge is near a cell boundary
    template = processor.crop_template(frame, (40, 50, 60, 10))
    expected = torch.zeros((8, 8), dtype=torch.long)
    expected[3:5, 0:8] = 1
    torch.testing.assert_close(template["template_mask"], expected)
    # in general: the cells touched by the box mapped into the template crop (a filled rectangle)
    for box in [(30.5, 20.25, 13.0, 41.0), (100, 60, 50, 12), (5, 5, 8, 8)]:
        template = processor.crop_template(frame, box)
        x1, y1, x2, y2 = template["crop_params"].apply_to_boxes(np.array(box, float) + [0, 0, box[0], box[1]])
        cells = [int(np.floor(v / 14)) for v in (x1, y1)] + [int(np.ceil(v / 14)) for v in (x2, y2)]
        cells = np.clip(cells, 0, 8)
        expected = torch.zeros((8, 8), dtype=torch.long)
        expected[cells[1] : cells[3], cells[0] : cells[2]] = 1
        torch.testing.assert_close(template["template_mask"], expected, msg=f"box {box}")


def test_preprocess_batch_shapes(processor):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(100, 120), (64, 200), (90, 90)]]
    boxes = [(10, 10, 30, 20), (50, 20, 40, 30), (30, 30, 20, 25)]
    batch = processor(template_images=frames, template_boxes=boxes, search_images=frames, search_boxes=boxes)
    assert batch["pixel_values_template"].shape == (3, 3, 112, 112)
    assert batch["pixel_values_search"].shape == (3, 3, 224, 224)
    assert batch["template_mask"].shape == (3, 8, 8) and batch["template_mask"].dtype == torch.long
    assert batch["crop_info"].shape == (3, 6) and batch["crop_info"].dtype == np.float64
    single = processor(frames[0], boxes[0], mode="search")
    assert single["pixel_values_search"].shape == (1, 3, 224, 224)
    with pytest.raises(ValueError, match="got 3 image"):
        processor(template_images=frames, template_boxes=boxes[:2], search_images=frames, search_boxes=boxes)


def test_mean_padding_outside_the_frame(processor, frame):
    template = processor.crop_template(frame, (0, 0, 20, 20))  # crop reaches 10 px beyond the corner
    mean = torch.from_numpy(frame.reshape(-1, 3).astype(np.float64).mean(0)).float()
    torch.testing.assert_close(template["image_mean"], mean, rtol=0, atol=1e-3)
    expected = processor.normalize_crop(mean.view(3, 1, 1))[:, 0, 0]
    corner = template["pixel_values"][:, :5, :5].reshape(3, -1)
    torch.testing.assert_close(corner, expected[:, None].expand_as(corner), rtol=0, atol=1e-5)
    # search crops are padded with the template frame's mean, not their own
    grey = torch.full((3, 120, 160), 10.0)
    crop, _ = processor.crop_search(grey, np.array([0.0, 0.0, 20.0, 20.0]), template["image_mean"])
    torch.testing.assert_close(crop[:, 0, 0], expected, rtol=0, atol=1e-5)
