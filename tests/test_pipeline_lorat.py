"""`pipeline("single-object-tracking")` on image folders, video files and in-memory frames."""

from __future__ import annotations

import types

import av
import numpy as np
import pytest
from PIL import Image
from transformers import pipeline

from modeling_lorat.pipeline_lorat import SingleObjectTrackingPipeline, register_pipeline


def moving_square(i: int, size=(96, 72)) -> np.ndarray:
    frame = np.full((size[1], size[0], 3), 40, np.uint8)
    frame[20:40, 10 + 3 * i : 30 + 3 * i] = (230, 200, 50)
    return frame


@pytest.fixture(scope="module")
def tracker_pipe(tiny_checkpoint):
    register_pipeline()
    register_pipeline()  # idempotent
    return pipeline("single-object-tracking", model=str(tiny_checkpoint), device="cpu")


def check_results(results, n, box):
    assert [r["frame_index"] for r in results] == list(range(n))
    assert results[0] == {"frame_index": 0, "box": [float(v) for v in box], "score": 1.0}
    for r in results[1:]:
        assert len(r["box"]) == 4 and all(isinstance(v, float) for v in r["box"])
        assert 0.0 <= r["score"] <= 1.0


def test_pipeline_on_image_folder(tracker_pipe, tmp_path):
    assert isinstance(tracker_pipe, SingleObjectTrackingPipeline)
    for i in range(6):
        Image.fromarray(moving_square(i)).save(tmp_path / f"{i + 1}.jpg")
    output = tracker_pipe(str(tmp_path), box=(10, 20, 20, 20))
    assert isinstance(output, types.GeneratorType)  # lazy
    check_results(list(output), 6, (10, 20, 20, 20))


def test_pipeline_on_video_file_is_lazy(tracker_pipe, tmp_path):
    path = tmp_path / "clip.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 96, 72, "yuv420p"
        for i in range(8):
            for packet in stream.encode(av.VideoFrame.from_ndarray(moving_square(i), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    output = tracker_pipe(path, box=[10, 20, 20, 20])
    first = next(output)
    assert first["frame_index"] == 0 and first["score"] == 1.0
    check_results([first, *output], 8, (10, 20, 20, 20))


def test_pipeline_several_videos_batched_matches_single(tracker_pipe):
    videos = [[moving_square(i) for i in range(5)], [moving_square(i, (120, 80)) for i in range(3)]]
    boxes = [(10, 20, 20, 20), (12, 18, 22, 24)]
    together = tracker_pipe(videos, box=boxes, batch_size=2)
    assert [len(r) for r in together] == [5, 3]
    for video, box, batched in zip(videos, boxes, together):
        single = list(tracker_pipe(video, box=box))
        for a, b in zip(single, batched):
            np.testing.assert_allclose(a["box"], b["box"], atol=1e-4)


def test_pipeline_errors_and_options(tiny_checkpoint, tracker_pipe, tmp_path):
    with pytest.raises(ValueError, match="box"):
        tracker_pipe([moving_square(0)])
    with pytest.raises(ValueError, match="4 values"):
        tracker_pipe([moving_square(0)], box=(1, 2, 3))
    with pytest.raises(FileNotFoundError):
        tracker_pipe(tmp_path / "missing.mp4", box=(1, 2, 3, 4))
    with pytest.raises(ValueError, match="outside"):
        next(tracker_pipe([moving_square(0)], box=(500, 2, 3, 4)))
    bf16 = pipeline("single-object-tracking", model=str(tiny_checkpoint), device="cpu", dtype="bfloat16")
    assert next(bf16.model.parameters()).dtype.is_floating_point and bf16.tracker.dtype.itemsize == 2
    assert len(list(bf16([moving_square(i) for i in range(3)], box=(10, 20, 20, 20)))) == 3
