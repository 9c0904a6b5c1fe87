"""`LoratTracker`: exact box mapping, peak selection, batching, oracle tracking and input validation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from modeling_lorat.box_ops import xywh_to_xyxy
from modeling_lorat.cropping import crop_image, crop_params_from_box
from modeling_lorat.image_processing_lorat import LoratImageProcessor
from modeling_lorat.testing_utils import tiny_model
from modeling_lorat.tracking_lorat import LoratTracker, hann_window_2d, select_peak


@pytest.fixture(scope="module")
def tracker() -> LoratTracker:
    return LoratTracker(tiny_model(seed=0), device="cpu", dtype=torch.float32)


def square_frame(box_xywh, size=(160, 120)) -> np.ndarray:
    """Dark frame with a bright textured rectangle at ``box_xywh`` (pixels)."""
    w, h = size
    frame = np.full((h, w, 3), 30, np.uint8)
    x, y, bw, bh = (int(round(v)) for v in box_xywh)
    frame[max(y, 0) : max(y + bh, 0), max(x, 0) : max(x + bw, 0)] = (220, 180, 40)
    return frame


# ---------------------------------------------------------------------------------------------- geometry
def test_crop_uncrop_round_trip_is_exact():
    rng = np.random.default_rng(0)
    image = torch.rand(3, 240, 320) * 255
    for _ in range(50):
        x1, y1 = rng.uniform(60, 200), rng.uniform(60, 140)
        box = np.array([x1, y1, x1 + rng.uniform(5, 50), y1 + rng.uniform(5, 40)])
        params = crop_params_from_box(box, rng.choice([2.0, 4.0, 5.0]), (224, 224))
        _, _, adjusted = crop_image(image, params, (224, 224))
        for p in (params, adjusted):
            back = p.inverse().apply_to_boxes(p.apply_to_boxes(box))
            np.testing.assert_allclose(back, box, rtol=0, atol=1e-9)
        # the processor's mapping from normalised crop coordinates is the same exact inverse
        processor = LoratImageProcessor(search_size=224)
        normalised = adjusted.apply_to_boxes(box) / 224
        np.testing.assert_allclose(processor.boxes_to_frame(normalised, adjusted), box, rtol=0, atol=1e-9)


def test_hann_window_selection_rule():
    grid = 8
    window = hann_window_2d(grid)
    assert window.shape == (grid, grid) and window[0].abs().max() == 0  # zero at the border
    torch.testing.assert_close(window, window.T)
    probabilities = torch.full((grid, grid), 0.05)
    probabilities[0, 7] = 0.90  # border: highest raw score
    probabilities[4, 3] = 0.80  # centre: slightly lower
    logits = torch.logit(probabilities)[None]
    index, confidence = select_peak(logits, window, penalty=0.45)
    assert divmod(index.item(), grid) == (4, 3)
    assert confidence.item() == pytest.approx(0.80, abs=1e-6)  # the un-penalised score
    index, confidence = select_peak(logits, window, penalty=0.0)
    assert divmod(index.item(), grid) == (0, 7) and confidence.item() == pytest.approx(0.90, abs=1e-6)


# ---------------------------------------------------------------------------------------------- oracle
class Oracle:
    """Stands in for the model forward: predicts the true box at the cell containing its centre.

    Records the search-crop parameters the tracker used so the true frame box can be expressed in
    normalised crop coordinates, exactly what a perfect model would output.
    """

    def __init__(self, tracker: LoratTracker, truth: list[np.ndarray]) -> None:
        self.tracker, self.truth, self.frame = tracker, truth, 0
        self.crop_params, self.templates = [], []
        original = tracker.processor.crop_search

        def crop_search(image, box_xyxy, background=None, **kwargs):
            crop, params = original(image, box_xyxy, background, **kwargs)
            self.crop_params.append((np.array(box_xyxy), params))
            return crop, params

        tracker.processor.crop_search = crop_search

    def __call__(self, pixel_values_template, pixel_values_search, template_mask):
        self.frame += 1
        self.templates.append(pixel_values_template.clone())
        grid, size = self.tracker.config.search_grid, self.tracker.config.search_size
        _, params = self.crop_params[-1]
        box = params.apply_to_boxes(xywh_to_xyxy(self.truth[self.frame])) / size
        logits = torch.full((1, grid, grid), -4.0)
        col, row = (np.clip((box[:2] + box[2:]) / 2 * grid, 0, grid - 1)).astype(int)
        logits[0, row, col] = 4.0
        boxes = torch.zeros((1, grid, grid, 4), dtype=torch.float64)  # float64: no rounding at all
        boxes[0, row, col] = torch.from_numpy(box)
        return SimpleNamespace(score_map=logits, pred_boxes=boxes)


def oracle_tracker(truth):
    tracker = LoratTracker(tiny_model(seed=1, lora=False), device="cpu")
    oracle = Oracle(tracker, truth)
    tracker._forward = oracle
    return tracker, oracle


def test_oracle_follows_moving_square_exactly():
    truth = [np.array([20.0 + 3.5 * i, 30.0 + 1.25 * i, 24.0, 18.0]) for i in range(25)]
    tracker, oracle = oracle_tracker(truth)
    state = tracker.new_state(square_frame(truth[0]), truth[0])
    template, mask = state.template.clone(), state.template_mask.clone()
    for i in range(1, len(truth)):
        previous = state.box_xyxy.copy()
        result = tracker.step([state], [square_frame(truth[i])])[0]
        np.testing.assert_allclose(result.box_xywh, truth[i], rtol=0, atol=1e-9)
        assert result.score == pytest.approx(torch.sigmoid(torch.tensor(4.0)).item(), abs=1e-6)
        np.testing.assert_allclose(oracle.crop_params[-1][0], previous)  # crop centred on the last box
    # the template is never updated
    assert torch.equal(state.template, template) and torch.equal(state.template_mask, mask)
    assert all(torch.equal(t[0], template) for t in oracle.templates)
    assert state.frame_index == len(truth) - 1


def test_target_leaving_the_frame_is_clipped_and_tracking_continues():
    size = (160, 120)
    truth = [np.array([100.0 + 15 * i, 50.0, 30.0, 20.0]) for i in range(8)]  # exits on the right
    tracker, _ = oracle_tracker(truth)
    state = tracker.new_state(square_frame(truth[0], size), truth[0])
    for i in range(1, len(truth)):
        x, y, w, h = tracker.step([state], [square_frame(truth[i], size)])[0].box_xywh
        assert 0 <= x <= size[0] and 0 <= y <= size[1] and x + w <= size[0] + 1e-9 and w >= 0 and h >= 0
        expected_w = np.clip(truth[i][0] + truth[i][2], 0, size[0]) - min(truth[i][0], size[0])
        assert w == pytest.approx(expected_w, abs=1e-9)
        x1, y1, x2, y2 = state.box_xyxy
        assert x1 < x2 and y1 < y2  # the next crop is always centred on a valid box
    assert state.box_xyxy[2] == size[0]  # last valid (clipped) prediction kept once fully outside


# ---------------------------------------------------------------------------------------------- batching
def test_batched_step_equals_sequential(tracker):
    rng = np.random.default_rng(3)
    sizes = [(160, 120), (96, 200), (300, 90)]
    boxes = [(30, 40, 25, 20), (20, 60, 30, 40), (150, 30, 40, 25)]
    videos = [[rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(4)] for w, h in sizes]
    batched = [tracker.new_state(v[0], b) for v, b in zip(videos, boxes)]
    single = [tracker.new_state(v[0], b) for v, b in zip(videos, boxes)]
    for t in range(1, 4):
        together = tracker.step(batched, [v[t] for v in videos])
        apart = [tracker.step([s], [v[t]])[0] for s, v in zip(single, videos)]
        for a, b in zip(together, apart):
            np.testing.assert_allclose(a.box_xywh, b.box_xywh, rtol=0, atol=1e-4)
            assert a.score == pytest.approx(b.score, abs=1e-5)
    assert tracker.step([], []) == []
    with pytest.raises(ValueError, match="states"):
        tracker.step(batched, [videos[0][0]])


# ---------------------------------------------------------------------------------------------- inputs
@pytest.mark.parametrize(
    "box, match",
    [
        ((200, 10, 20, 20), "outside"),
        ((-50, 10, 20, 20), "outside"),
        ((10, 10, 0, 20), "positive"),
        ((10, 10, 20, -3), "positive"),
        ((10, float("nan"), 20, 20), "non-finite"),
        ((10, 10, 20), "4 values"),
        ((10, 10, 20, 20, 5), "4 values"),
        ("abc", "4"),
    ],
)
def test_bad_boxes(tracker, box, match):
    with pytest.raises(ValueError, match=match):
        tracker.new_state(np.zeros((100, 150, 3), np.uint8), box)


def test_frames_of_changing_size(tracker):
    state = tracker.new_state(np.zeros((100, 150, 3), np.uint8), (10, 10, 20, 20))
    tracker.step([state], [np.zeros((100, 150, 3), np.uint8)])
    with pytest.raises(ValueError, match="frame size changed .* at frame 2"):
        tracker.step([state], [np.zeros((101, 150, 3), np.uint8)])


def test_grayscale_and_rgba_frames_are_converted(tracker):
    rng = np.random.default_rng(5)
    gray = [rng.integers(0, 256, (90, 120), dtype=np.uint8) for _ in range(3)]
    rgb = [np.repeat(g[:, :, None], 3, axis=2) for g in gray]
    rgba = [np.dstack([f, np.full((90, 120), 7, np.uint8)]) for f in rgb]
    outputs = []
    for frames in (rgb, gray, rgba):
        tracker.init(frames[0], (30, 30, 20, 25))
        outputs.append([tracker.track(f) for f in frames[1:]])
    for other in outputs[1:]:
        for a, b in zip(outputs[0], other):
            np.testing.assert_array_equal(a.box_xywh, b.box_xywh)


def test_single_sequence_api_and_missing_model(tmp_path, tracker):
    fresh = LoratTracker(tiny_model(seed=2))
    with pytest.raises(RuntimeError, match="init"):
        fresh.track(np.zeros((50, 50, 3), np.uint8))
    with pytest.raises(FileNotFoundError):
        LoratTracker.from_pretrained(tmp_path / "does-not-exist")
    with pytest.raises(FileNotFoundError):
        LoratTracker.from_pretrained(str(tmp_path / "does-not-exist"))
