"""`pipeline("single-object-tracking")`: the transformers Pipeline contract on image folders, video files
and in-memory frames; one video -> a list of per-frame dicts, a list of videos -> a list of those."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from PIL import Image
from transformers import Pipeline, pipeline

from modeling_lorat.pipeline_lorat import SingleObjectTrackingPipeline, register_pipeline


def moving_square(i: int, size=(96, 72)) -> np.ndarray:
    frame = np.full((size[1], size[0], 3), 40, np.uint8)
    frame[20:40, 10 + 3 * i : 30 + 3 * i] = (230, 200, 50)
    return frame


def write_video(path, n: int) -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 96, 72, "yuv420p"
        for i in range(n):
            for packet in stream.encode(av.VideoFrame.from_ndarray(moving_square(i), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


@pytest.fixture(scope="module")
def tracker_pipe(tiny_checkpoint):
    register_pipeline()
    register_pipeline()  # idempotent
    return pipeline("single-object-tracking", model=str(tiny_checkpoint), device="cpu")


@pytest.fixture()
def spy(tracker_pipe, monkeypatch):
    """Counts ``Pipeline.forward`` calls and the batch size of every tracker step."""
    calls = {"forward": 0, "steps": []}
    forward, step = tracker_pipe.forward, tracker_pipe.tracker.step

    def counting_forward(*args, **kwargs):
        calls["forward"] += 1
        return forward(*args, **kwargs)

    def counting_step(states, frames):
        calls["steps"].append(len(states))
        return step(states, frames)

    monkeypatch.setattr(tracker_pipe, "forward", counting_forward)
    monkeypatch.setattr(tracker_pipe.tracker, "step", counting_step)
    return calls


def check_results(results, n, box):
    assert isinstance(results, list)
    assert [r["frame_index"] for r in results] == list(range(n))
    assert results[0] == {"frame_index": 0, "box": [float(v) for v in box], "score": 1.0}
    for r in results[1:]:
        assert len(r["box"]) == 4 and all(isinstance(v, float) for v in r["box"])
        assert 0.0 <= r["score"] <= 1.0


def test_pipeline_contract_is_the_transformers_one():
    assert issubclass(SingleObjectTrackingPipeline, Pipeline)
    for name in ("_sanitize_parameters", "preprocess", "_forward", "postprocess"):
        assert name in vars(SingleObjectTrackingPipeline)
    assert "forward" not in vars(SingleObjectTrackingPipeline)  # Pipeline.forward runs _forward


def test_pipeline_on_image_folder_runs_through_pipeline_forward(tracker_pipe, spy, tmp_path):
    assert isinstance(tracker_pipe, SingleObjectTrackingPipeline)
    for i in range(6):
        Image.fromarray(moving_square(i)).save(tmp_path / f"{i + 1}.jpg")
    output = tracker_pipe(str(tmp_path), box=(10, 20, 20, 20))
    check_results(output, 6, (10, 20, 20, 20))
    assert spy["forward"] == 1 and spy["steps"] == [1] * 5
    # the same video as in-memory frames, a generator of frames and an (N, H, W, 3) array
    frames = [np.asarray(Image.open(tmp_path / f"{i + 1}.jpg")) for i in range(6)]
    for video in (frames, (f for f in frames), np.stack(frames), torch.from_numpy(np.stack(frames))):
        assert tracker_pipe(video, box=(10, 20, 20, 20)) == output


def test_pipeline_on_video_file(tracker_pipe, tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, 8)
    output = tracker_pipe(path, box=[10, 20, 20, 20])
    check_results(output, 8, (10, 20, 20, 20))
    assert list(tracker_pipe(path, box=[10, 20, 20, 20])) == output  # README: list(track(...))


def test_several_videos_batched_in_lock_step_equal_one_at_a_time(tracker_pipe, spy):
    videos = [[moving_square(i) for i in range(5)], [moving_square(i, (120, 80)) for i in range(3)]]
    boxes = [(10, 20, 20, 20), (12, 18, 22, 24)]
    together = tracker_pipe(videos, box=boxes, batch_size=2)
    assert spy["forward"] == 1 and spy["steps"] == [2, 2, 1, 1]  # one batched forward per frame
    assert isinstance(together, list) and [len(r) for r in together] == [5, 3]
    for video, box, batched in zip(videos, boxes, together):
        single = tracker_pipe(video, box=box)
        check_results(single, len(video), box)
        assert [r["frame_index"] for r in batched] == [r["frame_index"] for r in single]
        for a, b in zip(single, batched):
            np.testing.assert_allclose(a["box"], b["box"], atol=1e-4)
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)
    # dict items carry their own boxes; batch_size 1 gives the same, one video per forward
    spy["forward"] = 0
    items = [{"video": v, "box": b} for v, b in zip(videos, boxes)]
    one_by_one = tracker_pipe(items)
    assert spy["forward"] == 2
    for a, b in zip(one_by_one, together):
        np.testing.assert_allclose([r["box"] for r in a], [r["box"] for r in b], atol=1e-4)


def test_num_workers_and_streams(tracker_pipe, tmp_path):
    paths = [tmp_path / f"clip{i}.mp4" for i in range(3)]
    for i, path in enumerate(paths):
        write_video(path, 4 + i)
    box = (10, 20, 20, 20)
    plain = tracker_pipe([str(p) for p in paths], box=box)
    workers = tracker_pipe([str(p) for p in paths], box=box, num_workers=2, batch_size=2)
    assert [len(r) for r in plain] == [4, 5, 6]
    for a, b in zip(plain, workers):
        np.testing.assert_allclose([r["box"] for r in a], [r["box"] for r in b], atol=1e-4)
    stream = tracker_pipe({"video": str(p), "box": box} for p in paths)
    assert not isinstance(stream, list)  # a generator of videos gives a lazy iterator of outputs
    assert [len(r) for r in stream] == [4, 5, 6]


def test_pipeline_errors_and_options(tiny_checkpoint, tracker_pipe, tmp_path):
    with pytest.raises(ValueError, match="box"):
        tracker_pipe([moving_square(0)])
    with pytest.raises(ValueError, match="4 values"):
        tracker_pipe([moving_square(0)], box=(1, 2, 3))
    with pytest.raises(FileNotFoundError):
        tracker_pipe(tmp_path / "missing.mp4", box=(1, 2, 3, 4))
    with pytest.raises(ValueError, match="outside"):
        tracker_pipe([moving_square(0)], box=(500, 2, 3, 4))
    with pytest.raises(ValueError, match="got 2 boxes: pass a list of as many videos"):
        tracker_pipe([[moving_square(0)]], box=[(1, 2, 3, 4), (1, 2, 3, 4)])
    with pytest.raises(ValueError, match="an input dict needs a 'video'"):
        tracker_pipe({"frames": [moving_square(0)], "box": (1, 2, 3, 4)})
    with pytest.raises(TypeError, match="unexpected arguments: boxes"):
        tracker_pipe([moving_square(0)], boxes=(1, 2, 3, 4))
    bf16 = pipeline("single-object-tracking", model=str(tiny_checkpoint), device="cpu", dtype="bfloat16")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16 and bf16.tracker.dtype == torch.bfloat16
    assert len(bf16([moving_square(i) for i in range(3)], box=(10, 20, 20, 20))) == 3
