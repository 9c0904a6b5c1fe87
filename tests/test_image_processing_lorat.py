"""`LoratImageProcessor`: input types, serialisation, template masks, batching, padding, the transformers
call (template / search / pair modes), post-processing against the official tracker, errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from transformers import AutoImageProcessor

import modeling_lorat  # noqa: F401  (registers the Auto classes)
from modeling_lorat.configuration_lorat import PROCESSING_DEFAULTS
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


# ---------------------------------------------------------------------------------------------- transformers API
GOLDEN = Path(__file__).parent / "fixtures" / "golden" / "tracking_geometry.safetensors"


def golden_cases() -> tuple[dict[str, str], list[dict[str, torch.Tensor]]]:
    """The official tracker's crops, head outputs and frame boxes (tools/make_tracking_golden.py)."""
    with safe_open(GOLDEN, "pt") as file:
        meta, tensors = file.metadata(), {key: file.get_tensor(key) for key in file.keys()}
    cases = [
        {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(f"case{i}.")}
        for i in range(int(meta["num_cases"]))
    ]
    return meta, cases


def golden_processor(meta: dict[str, str]) -> LoratImageProcessor:
    return LoratImageProcessor(
        **{
            key: float(meta[key]) for key in ("template_area_factor", "search_area_factor", "min_object_size")
        },
        **{key: int(meta[key]) for key in ("template_size", "search_size", "patch_size")},
        window_penalty=float(meta["window_penalty"]),
    )


def test_pair_batch_and_post_processing_equal_the_official_tracker():
    """All cases as ONE batch: template/search crops and masks, then post_process_tracking of the
    official head outputs gives the official frame boxes (clipped) and confidences."""
    meta, cases = golden_cases()
    processor = golden_processor(meta)
    batch = processor(
        template_images=[c["frames"][0].numpy() for c in cases],
        template_boxes=np.stack([c["template_box_xywh"].numpy() for c in cases]),
        search_images=[c["frames"][1].numpy() for c in cases],
        search_boxes=[c["previous_box_xywh"].numpy() for c in cases],
    )
    torch.testing.assert_close(
        batch["pixel_values_template"], torch.stack([c["template"] for c in cases]), atol=2e-5, rtol=0
    )
    torch.testing.assert_close(
        batch["pixel_values_search"], torch.stack([c["search"] for c in cases]), atol=2e-5, rtol=0
    )
    assert torch.equal(batch["template_mask"], torch.stack([c["template_mask"] for c in cases]))
    np.testing.assert_allclose(
        batch["crop_info"][:, :4],
        np.stack([c["search_params"].numpy().reshape(4) for c in cases]),
        rtol=1e-12,
    )
    sizes = np.array([[c["frames"].shape[2], c["frames"].shape[1]] for c in cases], dtype=np.float64)
    np.testing.assert_array_equal(batch["crop_info"][:, 4:], sizes)

    outputs = SimpleNamespace(
        score_map=torch.stack([c["score_logits"] for c in cases]),
        pred_boxes=torch.stack([c["pred_boxes"] for c in cases]),
    )
    results = processor.post_process_tracking(outputs, batch["crop_info"])
    assert len(results) == len(cases)
    for result, case in zip(results, cases):
        assert result["box"].dtype == torch.float64 and result["score"].dtype == torch.float32
        want = case["frame_box_xyxy"].numpy()
        np.testing.assert_allclose(
            result["box"].numpy(), np.r_[want[:2], want[2:] - want[:2]], atol=1e-4, rtol=0
        )
        assert result["score"].item() == pytest.approx(case["confidence"].item(), abs=1e-6)
    # the same from a return_dict=False tuple, and with the window off the peak is the plain argmax
    again = processor.post_process_tracking((outputs.score_map, outputs.pred_boxes), batch["crop_info"])
    assert all(torch.equal(a["box"], b["box"]) for a, b in zip(again, results))
    plain = processor.select_peaks(outputs.score_map, outputs.pred_boxes, window_penalty=0.0)
    torch.testing.assert_close(plain[:, 4], outputs.score_map.flatten(1).sigmoid().max(dim=1).values)


def test_template_and_search_modes_compose_to_the_pair_call(processor, frame):
    box, previous = (40.3, 30.7, 25.2, 33.9), (44.0, 28.0, 26.0, 30.0)
    template = processor(images=Image.fromarray(frame), boxes=box)
    assert set(template) == {"pixel_values_template", "template_mask", "template_image_mean"}
    single = processor.crop_template(frame, box)
    torch.testing.assert_close(template["template_image_mean"][0], single["image_mean"])
    search = processor(
        images=frame, boxes=previous, mode="search", background=template["template_image_mean"]
    )
    pair = processor(template_images=frame, template_boxes=box, search_images=frame, search_boxes=previous)
    assert torch.equal(pair["pixel_values_template"], template["pixel_values_template"])
    assert torch.equal(pair["pixel_values_search"], search["pixel_values_search"])
    np.testing.assert_array_equal(pair["crop_info"], search["crop_info"])
    # without a background each search crop is padded with its own frame's mean
    own = processor(images=frame, boxes=(0, 0, 20, 20), mode="search")
    expected = processor.normalize_crop(
        torch.from_numpy(frame.reshape(-1, 3).astype(np.float64).mean(0)).float().view(3, 1, 1)
    )
    torch.testing.assert_close(own["pixel_values_search"][0, :, 0, 0], expected[:, 0, 0], atol=1e-4, rtol=0)
    # crop_info stays a float64 host array when the batch moves or changes dtype
    moved = pair.to(torch.float16)
    assert moved["pixel_values_search"].dtype == torch.float16 and moved["crop_info"].dtype == np.float64


def test_model_runs_on_processor_output_and_tracker_agrees(tiny_checkpoint):
    """``model(**processor(...))`` (crop_info is not a model input) + post_process_tracking = the tracker."""
    from modeling_lorat.modeling_lorat import LoratForTracking
    from modeling_lorat.tracking_lorat import LoratTracker

    model = LoratForTracking.from_pretrained(tiny_checkpoint).eval()
    processor = LoratImageProcessor.from_pretrained(tiny_checkpoint)
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 200, (72, 96, 3), dtype=np.uint8) for _ in range(2)]
    box = (20.0, 16.0, 24.0, 20.0)
    inputs = processor(
        template_images=frames[0], template_boxes=box, search_images=frames[1], search_boxes=box
    )
    with torch.no_grad():
        result = processor.post_process_tracking(model(**inputs), inputs["crop_info"])[0]
    tracker = LoratTracker(model, processor, fuse=False)
    tracker.init(frames[0], box)
    want = tracker.track(frames[1])
    np.testing.assert_allclose(result["box"].numpy(), want.box_xywh, rtol=0, atol=1e-9)
    assert result["score"].item() == want.score


def test_settings_come_from_the_config_and_round_trip(tmp_path):
    config = tiny_config(window_penalty=0.3, search_area_factor=5.0)
    processor = LoratImageProcessor.from_config(config)
    for key in PROCESSING_DEFAULTS:
        value = getattr(config, key)
        assert getattr(processor, key) == (list(value) if isinstance(value, tuple) else value), key
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["window_penalty"] == 0.3 and saved["search_area_factor"] == 5.0
    assert saved["auto_map"] == {"AutoImageProcessor": "image_processing_lorat.LoratImageProcessor"}
    assert {"image_processing_lorat.py", "cropping.py", "box_ops.py", "configuration_lorat.py"} <= {
        p.name for p in tmp_path.glob("*.py")
    }
    assert LoratImageProcessor.from_pretrained(tmp_path).window_penalty == 0.3
    default = LoratImageProcessor()
    assert (default.template_size, default.search_size, default.window_penalty) == (112, 224, 0.45)


def test_frames_are_scaled_by_their_dtype(processor):
    """16-bit PIL / uint16 arrays, bool and 0-1 floats give the crop of the equivalent uint8 frame."""
    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, (60, 80), dtype=np.uint8)
    rgb = np.repeat(base[:, :, None], 3, axis=2)
    want = processor(images=rgb, boxes=(20, 15, 30, 25))["pixel_values_template"]
    sixteen = base.astype(np.uint16) * 257
    sixteen_bit_pil = Image.fromarray(sixteen)
    assert sixteen_bit_pil.mode == "I;16"
    for image in (sixteen_bit_pil, sixteen, base.astype(np.float32) / 255.0):
        got = processor(images=image, boxes=(20, 15, 30, 25))["pixel_values_template"]
        torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="NaN or Inf"):
        processor(images=np.full((60, 80, 3), np.nan, np.float32), boxes=(20, 15, 30, 25))


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda p, f: p(images=f, boxes=(1, 2, 3, 4), mode="crop"), "mode must be one of"),
        (lambda p, f: p(images=[f, f], boxes=(1, 2, 3, 4)), r"got 2 image\(s\) but 1 boxes"),
        (lambda p, f: p(images=f), "boxes are required"),
        (lambda p, f: p(boxes=(1, 2, 3, 4)), "images are required"),
        (lambda p, f: p(images=f, boxes=(500, 2, 3, 4), mode="search"), "outside the 160x120 frame"),
        (
            lambda p, f: p(images=f, boxes=(1, 2, 3, 4), mode="search", background=[1, 2]),
            "background must be",
        ),
        (lambda p, f: p(images=f, boxes=(1, 2, 3, 4), template_images=f), "not both"),
        (lambda p, f: p(template_images=f, template_boxes=(1, 2, 3, 4)), "go together"),
        (
            lambda p, f: p.post_process_tracking(
                {"score_map": torch.zeros(2, 16, 16), "pred_boxes": torch.zeros(2, 16, 16, 4)},
                np.zeros((1, 6)),
            ),
            "crop_info has 1 rows but the model outputs hold 2",
        ),
        (
            lambda p, f: p.post_process_tracking(
                {"score_map": torch.zeros(1, 16, 16), "pred_boxes": torch.zeros(1, 16, 16, 4)},
                np.zeros((1, 4)),
            ),
            r"crop_info must be \(B, 6\)",
        ),
    ],
)
def test_bad_arguments_get_one_clear_error(processor, frame, call, message):
    with pytest.raises(ValueError, match=message):
        call(processor, frame)


def test_training_transform_reads_the_processor_geometry():
    """The training crops use the geometry of the processor inference uses (one source: the config)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from training.data.transform import GEOMETRY_KEYS, PairTransform, TransformConfig

    config = tiny_config(search_area_factor=5.0)
    processor = LoratImageProcessor.from_config(config)
    transform = TransformConfig.from_model_config(config)
    assert {key: getattr(transform, key) for key in GEOMETRY_KEYS} == {
        key: getattr(processor, key) for key in GEOMETRY_KEYS
    }
    assert transform.search_area_factor == 5.0 and transform.min_object_size == 2.5  # 10 px at 224, scaled
    assert PairTransform(transform, processor=processor).processor is processor
    with pytest.raises(ValueError, match=r"disagree on search_area_factor \(4.0 vs 5.0\)"):
        PairTransform(transform, processor=LoratImageProcessor.from_config(tiny_config()))
