"""Tracking sessions: the per-sequence state of the videos being tracked, and the one lock-step loop.

Like transformers' ``Sam2VideoInferenceSession`` (which holds the per-object inputs and outputs of a
video while the model stays stateless), a :class:`LoratTrackingSession` holds the state of each
sequence it tracks (template, template mask, padding colour, last box, frame index), keyed by any
hashable id; the tracker is the stateless part that runs the batched step on a list of states.

:func:`track_lockstep` is the loop that every driver shares — ``LoratTracker.init``/``track``, the
``single-object-tracking`` pipeline, ``lorat track`` and the benchmark runner: it keeps up to
``batch_size`` videos in one session, fetches each one's next frame (in threads when asked), advances
them all with ONE batched ``tracker.step`` per round, and starts queued videos as others end.

Nothing here imports torch; any object with ``new_state(frame, box) -> state`` (or the older name
``initialize``) and ``step(states, frames) -> [result with .box_xywh, .score]`` can be driven
(``LoratTracker`` has both).
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np


class TrackResult(NamedTuple):
    """One frame's prediction: ``box_xywh`` float64 pixels (clipped to the frame) and ``score`` in [0, 1]."""

    box_xywh: np.ndarray
    score: float


class SteppingTracker(Protocol):
    """What a session needs from a tracker (``LoratTracker`` has it)."""

    def new_state(self, frame: Any, box_xywh: Any) -> Any: ...

    def step(self, states: list[Any], frames: list[Any]) -> list[Any]: ...


class LoratTrackingSession:
    """The sequences being tracked together, each with its state (cf. ``Sam2VideoInferenceSession``).

    ```python
    session = LoratTrackingSession(tracker)  # or tracker.new_session()
    session.add("cat", frame0_a, (40, 30, 24, 32))  # frame 0 of each sequence + its box
    session.add("dog", frame0_b, (10, 12, 30, 30))
    results = session.step({"cat": frame1_a, "dog": frame1_b})  # ONE batched forward for both
    session.remove("dog")  # its sequence ended; the others go on
    ```

    Args:
        tracker: runs the batched step (a ``LoratTracker``, or anything with ``new_state`` and ``step``).
    """

    def __init__(self, tracker: SteppingTracker) -> None:
        self.tracker = tracker
        self.states: dict[Hashable, Any] = {}
        self.frame_indices: dict[Hashable, int] = {}

    def add(self, key: Hashable, frame: Any, box_xywh: Any) -> TrackResult:
        """Start sequence ``key`` on its first ``frame`` with the target box ``x, y, w, h`` (pixels).

        Returns frame 0's result: the given box (float64) with score 1.0. Raises ``ValueError`` for a key
        already in the session and whatever the tracker raises for a bad frame or box (the session is
        left unchanged then).
        """
        if key in self.states:
            raise ValueError(f"sequence {key!r} is already in the session; remove it first")
        new_state = getattr(self.tracker, "new_state", None)
        if new_state is None:  # trackers written for the older protocol name
            new_state = self.tracker.initialize
        self.states[key] = new_state(frame, box_xywh)
        self.frame_indices[key] = 0
        return TrackResult(np.asarray(box_xywh, dtype=np.float64).reshape(4).copy(), 1.0)

    def remove(self, key: Hashable) -> None:
        """Forget sequence ``key`` (``KeyError`` when it is not in the session)."""
        del self.states[key]
        del self.frame_indices[key]

    def step(self, frames: Mapping[Hashable, Any]) -> dict[Hashable, TrackResult]:
        """Advance the sequences named in ``frames`` (key -> next frame) with one batched tracker step.

        Sequences not named keep their state. Returns key -> :class:`TrackResult`, in the order of
        ``frames``.
        """
        unknown = [key for key in frames if key not in self.states]
        if unknown:
            raise KeyError(f"not in the session: {', '.join(map(repr, unknown))}; add() them first")
        keys = list(frames)
        results = self.tracker.step([self.states[key] for key in keys], [frames[key] for key in keys])
        if len(results) != len(keys):
            raise RuntimeError(f"tracker.step returned {len(results)} results for {len(keys)} frames")
        for key in keys:
            self.frame_indices[key] += 1
        return {key: _as_track_result(result) for key, result in zip(keys, results)}

    def keys(self) -> list[Hashable]:
        """Ids of the sequences in the session, in the order they were added."""
        return list(self.states)

    def __len__(self) -> int:
        return len(self.states)

    def __contains__(self, key: object) -> bool:
        return key in self.states


def _as_track_result(result: Any) -> TrackResult:
    if isinstance(result, TrackResult):
        return result
    box = getattr(result, "box_xywh", None)
    score = getattr(result, "score", None)
    if box is None:
        box, score = result[0], result[1]
    return TrackResult(np.asarray(box, dtype=np.float64).reshape(4), float(score))


# ---------------------------------------------------------------------------------------------- lock-step
@dataclass
class TrackEvent:
    """What :func:`track_lockstep` reports, in order, for each video.

    ``kind``: ``"frame"`` (``frame_index``, the decoded ``frame``, its ``result`` and the ``seconds`` the
    tracker spent on it: the ``add`` time for frame 0, the batched step time shared equally by the
    batch otherwise), ``"end"`` (the video has no more frames) or ``"error"`` (the video was dropped:
    ``error`` says why, ``frame_index`` is the frame that failed; only with ``skip_errors``).
    """

    key: Hashable
    kind: Literal["frame", "end", "error"]
    frame_index: int
    frame: Any = None
    result: TrackResult | None = None
    seconds: float = 0.0
    error: str | None = None


_END = object()


def _next_frame(frames: Iterator[Any]) -> tuple[Any, BaseException | None]:
    try:
        return next(frames, _END), None
    except Exception as exc:  # noqa: BLE001 - reported (or re-raised) by the loop
        return None, exc


def track_lockstep(
    tracker: SteppingTracker | LoratTrackingSession,
    videos: Iterable[tuple[Hashable, Iterable[Any], Any]],
    batch_size: int | None = None,
    skip_errors: bool = False,
    io_workers: int = 0,
) -> Iterator[TrackEvent]:
    """Track ``videos`` (``(key, frames, first_box)`` each) in lock-step, lazily; yields :class:`TrackEvent`.

    Up to ``batch_size`` videos (all when None) are active; each round fetches every active video's next
    frame, then advances them all with ONE ``session.step`` (one batched forward). A video that ends
    frees its slot for the next queued one in the same round, so the batch stays full while videos are
    queued. ``videos`` is read lazily, one item when a slot frees.

    Args:
        tracker: a tracker with ``new_state`` / ``step``, or a session to add the videos to.
        videos: ``(key, frames, box_xywh)``: a unique id, an iterable of frames (its first frame starts
            the video with ``box_xywh``) and the target box in that frame.
        batch_size: the most videos stepped together.
        skip_errors: a video whose frame cannot be read, whose start fails or whose step fails is dropped
            with an ``"error"`` event (a failing batched step is retried one video at a time to find the
            culprit) and the others go on; without it the exception propagates.
        io_workers: threads fetching the active videos' next frames concurrently (0/1: in this thread).
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    session = tracker if isinstance(tracker, LoratTrackingSession) else LoratTrackingSession(tracker)
    pending: Iterator[tuple[Hashable, Iterable[Any], Any]] | None = iter(videos)
    active: dict[Hashable, Iterator[Any]] = {}
    pool = ThreadPoolExecutor(max_workers=io_workers) if io_workers > 1 else None
    try:
        while True:
            ready: dict[Hashable, Any] = {}
            events: list[TrackEvent] = []
            fetched = pool.map(_next_frame, active.values()) if pool else map(_next_frame, active.values())
            for key, (frame, exc) in zip(list(active), list(fetched)):
                index = session.frame_indices[key] + 1
                if frame is _END or exc is not None:
                    del active[key]
                    session.remove(key)
                    if exc is None:
                        events.append(TrackEvent(key, "end", index))
                    elif skip_errors:
                        events.append(
                            TrackEvent(key, "error", index, error=f"cannot load frame {index}: {exc}")
                        )
                    else:
                        raise exc
                else:
                    ready[key] = frame
            yield from events
            while pending is not None and (batch_size is None or len(active) < batch_size):
                item = next(pending, None)
                if item is None:
                    pending = None
                    break
                yield from _start(session, item, active, ready, skip_errors)
            if not active:
                return
            yield from _step(session, ready, active, skip_errors)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def _start(
    session: LoratTrackingSession,
    item: tuple[Hashable, Iterable[Any], Any],
    active: dict[Hashable, Iterator[Any]],
    ready: dict[Hashable, Any],
    skip_errors: bool,
) -> Iterator[TrackEvent]:
    """Start one video: frame 0 + ``session.add``, then fetch its frame 1 for this round's step."""
    key, frames, box = item
    if key in session or key in active:
        raise ValueError(f"two videos have the same key {key!r}")
    frames = iter(frames)
    frame, exc = _next_frame(frames)
    if exc is None and frame is _END:
        exc = ValueError("the video has no frames")
    if exc is not None:
        if not skip_errors:
            raise exc
        yield TrackEvent(key, "error", 0, error=f"cannot load frame 0: {exc}")
        return
    started = time.perf_counter()
    try:
        result = session.add(key, frame, box)
    except Exception as exc:  # noqa: BLE001
        if not skip_errors:
            raise
        yield TrackEvent(key, "error", 0, error=f"tracker failed to initialise: {exc}")
        return
    yield TrackEvent(key, "frame", 0, frame, result, time.perf_counter() - started)
    following, exc = _next_frame(frames)
    if following is _END or exc is not None:
        session.remove(key)
        if exc is None:
            yield TrackEvent(key, "end", 1)
        elif skip_errors:
            yield TrackEvent(key, "error", 1, error=f"cannot load frame 1: {exc}")
        else:
            raise exc
        return
    active[key] = frames
    ready[key] = following


def _step(
    session: LoratTrackingSession,
    ready: dict[Hashable, Any],
    active: dict[Hashable, Iterator[Any]],
    skip_errors: bool,
) -> Iterator[TrackEvent]:
    """One batched ``session.step``; with ``skip_errors`` a failure is retried one video at a time."""
    if not ready:
        return
    started = time.perf_counter()
    try:
        results = session.step(ready)
    except Exception as exc:  # noqa: BLE001
        if not skip_errors:
            raise
        if len(ready) == 1:
            key = next(iter(ready))
            index = session.frame_indices[key] + 1
            del active[key]
            session.remove(key)
            yield TrackEvent(key, "error", index, error=f"tracker failed at frame {index}: {exc}")
            return
        for key, frame in ready.items():
            yield from _step(session, {key: frame}, active, skip_errors)
        return
    seconds = (time.perf_counter() - started) / len(ready)
    for key, result in results.items():
        yield TrackEvent(key, "frame", session.frame_indices[key], ready[key], result, seconds)


def iter_track(
    tracker: SteppingTracker, frames: Iterable[Any], box_xywh: Any
) -> Iterator[tuple[int, Any, np.ndarray, float]]:
    """Track one object through ``frames`` lazily: yields ``(frame_index, frame, box_xywh (4,), score)``.

    Frame 0 yields the given box with score 1.0. One frame is read and tracked per step (memory does not
    grow with the video), through :func:`track_lockstep`.
    """
    for event in track_lockstep(tracker, [(0, frames, box_xywh)], batch_size=1):
        if event.kind == "frame":
            yield event.frame_index, event.frame, event.result.box_xywh, event.result.score
