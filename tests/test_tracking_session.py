"""`LoratTrackingSession` and `track_lockstep`: the one per-sequence state holder and lock-step loop that
`LoratTracker.init/track`, the pipeline, `lorat track` and the benchmark runner share."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modeling_lorat.testing_utils import tiny_model
from modeling_lorat.tracking_lorat import LoratTracker, TrackerState
from modeling_lorat.tracking_session import LoratTrackingSession, TrackResult, iter_track, track_lockstep


class CountingTracker(LoratTracker):
    """The real tiny tracker, recording the batch size of every step."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []

    def step(self, states, frames):
        self.batches.append(len(states))
        return super().step(states, frames)


@pytest.fixture(scope="module")
def tracker() -> CountingTracker:
    return CountingTracker(tiny_model(seed=0), device="cpu", dtype=torch.float32)


def video(seed: int, length: int, size=(96, 72)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return [np.roll(base, 2 * i, axis=1) for i in range(length)]


BOXES = [(20, 20, 24, 18), (30, 10, 20, 30), (5, 30, 30, 20)]
VIDEOS = [video(0, 6), video(1, 3), video(2, 5, size=(80, 100))]


def one_at_a_time(tracker, frames, box) -> list[tuple[np.ndarray, float]]:
    state = tracker.new_state(frames[0], box)
    out = [(np.asarray(box, dtype=np.float64), 1.0)]
    for frame in frames[1:]:
        result = tracker.step([state], [frame])[0]
        out.append((result.box_xywh, result.score))
    return out


def test_session_steps_sequences_together_and_equals_one_at_a_time(tracker):
    session = tracker.new_session()
    assert isinstance(session, LoratTrackingSession) and len(session) == 0
    first = session.add("a", VIDEOS[0][0], BOXES[0])
    session.add("b", VIDEOS[1][0], BOXES[1])
    assert first == TrackResult(first.box_xywh, 1.0) and first.box_xywh.tolist() == list(map(float, BOXES[0]))
    assert session.keys() == ["a", "b"] and "a" in session and isinstance(session.states["a"], TrackerState)
    tracker.batches.clear()
    together = [session.step({"a": VIDEOS[0][t], "b": VIDEOS[1][t]}) for t in (1, 2)]
    assert tracker.batches == [2, 2]  # one batched step per frame
    assert session.frame_indices == {"a": 2, "b": 2}
    session.remove("b")
    alone = session.step({"a": VIDEOS[0][3]})
    assert list(alone) == ["a"] and session.frame_indices == {"a": 3}
    for key, index in (("a", 0), ("b", 1)):
        expected = one_at_a_time(tracker, VIDEOS[index], BOXES[index])
        for t, results in enumerate(together, start=1):
            np.testing.assert_allclose(results[key].box_xywh, expected[t][0], rtol=0, atol=1e-4)
            assert results[key].score == pytest.approx(expected[t][1], abs=1e-5)
    np.testing.assert_allclose(
        alone["a"].box_xywh, one_at_a_time(tracker, VIDEOS[0], BOXES[0])[3][0], atol=1e-4
    )


def test_session_refuses_unknown_and_duplicate_keys_and_bad_boxes(tracker):
    session = tracker.new_session()
    session.add(1, VIDEOS[0][0], BOXES[0])
    with pytest.raises(ValueError, match="sequence 1 is already in the session"):
        session.add(1, VIDEOS[0][0], BOXES[0])
    with pytest.raises(KeyError, match="not in the session: 2"):
        session.step({2: VIDEOS[0][1]})
    with pytest.raises(ValueError, match="outside the 96x72 frame"):
        session.add(3, VIDEOS[0][0], (500, 5, 10, 10))
    assert session.keys() == [1]  # a failed add leaves the session as it was


def test_init_track_is_a_one_sequence_session_and_initialize_is_deprecated(tracker):
    tracker.init(VIDEOS[0][0], BOXES[0])
    tracked = [tracker.track(frame) for frame in VIDEOS[0][1:]]
    expected = one_at_a_time(tracker, VIDEOS[0], BOXES[0])[1:]
    for result, (box, score) in zip(tracked, expected):
        np.testing.assert_array_equal(result.box_xywh, box)
        assert result.score == score
    with pytest.warns(FutureWarning, match=r"initialize\(frame, box\) is deprecated: use new_state"):
        state = tracker.initialize(VIDEOS[0][0], BOXES[0])
    assert isinstance(state, TrackerState)
    assert torch.equal(state.template, tracker.new_state(VIDEOS[0][0], BOXES[0]).template)


def test_lockstep_refills_the_batch_and_equals_one_at_a_time(tracker):
    tracker.batches.clear()
    events = list(track_lockstep(tracker, [(i, v, b) for i, (v, b) in enumerate(zip(VIDEOS, BOXES))], 2))
    # 6, 3 and 5 frames: video 2 takes video 1's slot in the round video 1 ends, so no step runs short
    # while a video is queued; only the last step (video 2's frame 4, video 0 done) runs alone
    assert sum(tracker.batches) == sum(len(v) - 1 for v in VIDEOS) and max(tracker.batches) == 2
    assert tracker.batches == [2, 2, 2, 2, 2, 1]
    for key, (frames, box) in enumerate(zip(VIDEOS, BOXES)):
        mine = [e for e in events if e.key == key]
        assert [e.kind for e in mine] == ["frame"] * len(frames) + ["end"]
        assert [e.frame_index for e in mine] == [*range(len(frames)), len(frames)]
        expected = one_at_a_time(tracker, frames, box)
        for event, (want_box, want_score) in zip(mine, expected):
            assert event.frame is frames[event.frame_index] and event.seconds >= 0
            np.testing.assert_allclose(event.result.box_xywh, want_box, rtol=0, atol=1e-4)
            assert event.result.score == pytest.approx(want_score, abs=1e-5)


def test_lockstep_errors_raise_or_drop_the_video(tracker):
    def broken(frames, at):
        for index, frame in enumerate(frames):
            if index == at:
                raise OSError(f"disk gone at {index}")
            yield frame

    videos = [(0, VIDEOS[0], BOXES[0]), (1, broken(VIDEOS[1], 2), BOXES[1]), (2, VIDEOS[2], (900, 1, 5, 5))]
    with pytest.raises(OSError, match="disk gone at 2"):
        list(track_lockstep(tracker, videos[:2]))
    videos[1] = (1, broken(VIDEOS[1], 2), BOXES[1])
    events = list(track_lockstep(tracker, videos, skip_errors=True, io_workers=2))
    errors = {e.key: (e.frame_index, e.error) for e in events if e.kind == "error"}
    assert errors[1] == (2, "cannot load frame 2: disk gone at 2")
    assert errors[2][0] == 0 and errors[2][1].startswith("tracker failed to initialise: box [900.0")
    assert [e.frame_index for e in events if e.key == 0 and e.kind == "frame"] == list(range(6))
    with pytest.raises(ValueError, match="the video has no frames"):
        list(track_lockstep(tracker, [(0, [], BOXES[0])]))
    with pytest.raises(ValueError, match="two videos have the same key 0"):
        list(track_lockstep(tracker, [(0, VIDEOS[0], BOXES[0]), (0, VIDEOS[1], BOXES[1])]))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        list(track_lockstep(tracker, [], batch_size=0))


def test_iter_track_is_lazy(tracker):
    pulled = []

    def frames():
        for index, frame in enumerate(VIDEOS[0]):
            pulled.append(index)
            yield frame

    stream = iter_track(tracker, frames(), BOXES[0])
    index, frame, box, score = next(stream)
    assert (index, score) == (0, 1.0) and box.tolist() == list(map(float, BOXES[0]))
    assert pulled == [0]  # frame 1 is read only when its result is asked for
    rest = list(stream)
    assert [r[0] for r in rest] == list(range(1, 6)) and pulled == list(range(6))
