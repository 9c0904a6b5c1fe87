"""`torch.compile` and reduced precision in the tracker (CPU here; `LORAT_TEST_DEVICE=cuda` on a GPU).

On CPU the low-precision check uses bfloat16; on CUDA float16 (what `lorat track --dtype` offers).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from modeling_lorat.testing_utils import tiny_model
from modeling_lorat.tracking_lorat import LoratTracker

DEVICE = os.environ.get("LORAT_TEST_DEVICE", "cpu")
HALF = torch.float16 if DEVICE.startswith("cuda") else torch.bfloat16


def square_frames(count: int, size=(96, 72)) -> list[np.ndarray]:
    """Noise background with a bright square moving right (``size`` = (W, H))."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(count):
        frame = rng.integers(0, 120, (size[1], size[0], 3), dtype=np.uint8)
        frame[20:36, 10 + 3 * i : 26 + 3 * i] = (250, 230, 20)
        frames.append(frame)
    return frames


def track_batch(tracker: LoratTracker, frames: list[np.ndarray], batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Track ``batch`` sequences (different first boxes) in batched steps -> boxes (T, B, 4), scores (T, B)."""
    states = [tracker.new_state(frames[0], (10 + i, 20, 16, 16)) for i in range(batch)]
    boxes, scores = [], []
    for frame in frames[1:]:
        results = tracker.step(states, [frame] * batch)
        boxes.append([r.box_xywh for r in results])
        scores.append([r.score for r in results])
    return np.asarray(boxes), np.asarray(scores)


@pytest.mark.slow
def test_compiled_tracker_matches_eager():
    frames = square_frames(4)
    eager = LoratTracker(tiny_model(seed=0), device=DEVICE)
    compiled = LoratTracker(tiny_model(seed=0), device=DEVICE, compile=True)
    assert compiled._infer._torchdynamo_orig_callable == compiled._infer_eager  # really compiled
    for batch in (1, 3):  # a second batch size recompiles (dynamic batch) and must still agree
        want_boxes, want_scores = track_batch(eager, frames, batch)
        got_boxes, got_scores = track_batch(compiled, frames, batch)
        np.testing.assert_allclose(got_boxes, want_boxes, atol=1e-3, rtol=0)
        np.testing.assert_allclose(got_scores, want_scores, atol=1e-4, rtol=0)


def test_half_precision_tracker_close_to_float32():
    frames = square_frames(2)
    full = LoratTracker(tiny_model(seed=0), device=DEVICE)
    half = LoratTracker(tiny_model(seed=0), device=DEVICE, dtype=HALF)
    assert next(half.model.parameters()).dtype == HALF
    state_full = full.new_state(frames[0], (10, 20, 16, 16))
    state_half = half.new_state(frames[0], (10, 20, 16, 16))
    assert state_half.template.dtype == HALF
    search, _ = full.processor.crop_search(full._frame(frames[1]), state_full.box_xyxy, state_full.image_mean)
    with torch.inference_mode():
        want = full.model(state_full.template[None], search[None], state_full.template_mask[None])
        got = half.model(state_half.template[None], search[None].to(HALF), state_half.template_mask[None])
    assert got.score_map.dtype == torch.float32  # the head's outputs come back in float32
    torch.testing.assert_close(got.score_map.sigmoid(), want.score_map.sigmoid(), atol=3e-2, rtol=0)
    torch.testing.assert_close(got.pred_boxes.float(), want.pred_boxes, atol=3e-2, rtol=0)
    result = half.step([state_half], [frames[1]])[0]
    assert np.all(np.isfinite(result.box_xywh)) and 0.0 <= result.score <= 1.0
