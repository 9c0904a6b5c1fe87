"""Lazy frame sources, annotated video writing and result files (modeling_lorat.video_io)."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from PIL import Image

from modeling_lorat.video_io import (
    AnnotatedVideoWriter,
    FrameSource,
    natural_sort_key,
    open_frames,
    read_results_txt,
    to_rgb_uint8,
    write_results_txt,
)


def make_frame(i: int, size=(64, 48)) -> np.ndarray:
    """Grey frame with a bright 16x16 square moving right by 2 px per frame."""
    w, h = size
    frame = np.full((h, w, 3), 60, np.uint8)
    frame[16:32, 8 + 2 * i : 24 + 2 * i] = 230
    return frame


def write_video(path, n=10, size=(64, 48), fps=25) -> None:
    """Encode ``n`` frames with plain PyAV (independent of AnnotatedVideoWriter)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "10"}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(make_frame(i, size), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_video_read_back_lazily(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, n=10)
    source = open_frames(path)
    assert source.fps == pytest.approx(25)
    assert len(source) == 10 and source.frame_size == (64, 48)
    iterator = iter(source)
    first = next(iterator)  # lazy: frames come one at a time
    assert first.shape == (48, 64, 3) and first.dtype == np.uint8 and first.flags.writeable
    rest = list(iterator)
    assert len(rest) == 9
    for i, frame in enumerate([first, *rest]):
        assert np.abs(frame.astype(int) - make_frame(i).astype(int)).mean() < 6  # lossy codec
    assert len(list(source)) == 10  # re-iterable


def test_image_folder_natural_sort_and_conversion(tmp_path):
    for i in (10, 2, 1):
        value = np.full((12, 16), i * 10, np.uint8)
        Image.fromarray(value).save(tmp_path / f"{i}.png")  # grayscale files
    Image.fromarray(np.zeros((12, 16, 4), np.uint8), "RGBA").save(tmp_path / "11.png")
    (tmp_path / "notes.txt").write_text("ignored")
    source = open_frames(tmp_path)
    assert [p.name for p in source.files] == ["1.png", "2.png", "10.png", "11.png"]
    frames = list(source)
    assert [f[0, 0, 0] for f in frames] == [10, 20, 100, 0]
    assert all(f.shape == (12, 16, 3) for f in frames)
    assert sorted(["a10", "a2", "a1"], key=natural_sort_key) == ["a1", "a2", "a10"]


def test_in_memory_frames_all_types_agree():
    rgb = np.random.default_rng(0).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    inputs = [rgb, Image.fromarray(rgb), torch.from_numpy(rgb).permute(2, 0, 1), torch.from_numpy(rgb)]
    for frame in open_frames(inputs):
        np.testing.assert_array_equal(frame, rgb)
    gray = to_rgb_uint8(rgb[:, :, 0])
    rgba = to_rgb_uint8(np.dstack([rgb, np.zeros((8, 10), np.uint8)]))
    assert gray.shape == (8, 10, 3) and np.all(gray[:, :, 2] == rgb[:, :, 0])
    np.testing.assert_array_equal(rgba, rgb)
    generator = open_frames(f for f in [rgb, rgb])
    assert generator.num_frames is None
    with pytest.raises(TypeError):
        len(generator)
    assert len(list(generator)) == 2
    stacked = open_frames(np.stack([rgb] * 3))
    assert len(stacked) == 3 and isinstance(stacked, FrameSource) and open_frames(stacked) is stacked


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_frames(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        open_frames(tmp_path / "empty")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 10)
    with pytest.raises(ValueError, match="bad.mp4"):
        open_frames(bad)
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    with pytest.raises(ValueError, match="zero.mp4"):
        open_frames(zero)
    frames = [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)]
    with pytest.raises(ValueError, match="frame 2"):
        list(open_frames(frames))
    with pytest.raises(ValueError, match="no frames"):
        list(open_frames([]))
    with pytest.raises(ValueError):
        open_frames(42)


def test_annotated_writer_roundtrip_and_atomicity(tmp_path):
    out = tmp_path / "annotated.mp4"
    with AnnotatedVideoWriter(out, fps=10, size=(63, 47)) as writer:  # odd size -> padded to even
        for i in range(6):
            writer.write(make_frame(i, (63, 47)), box_xywh=(8 + 2 * i, 16, 16, 16), score=0.9)
        assert not out.exists()  # only the temp file exists while writing
    assert writer.codec in ("libx264", "mpeg4")
    source = open_frames(out)
    frames = list(source)
    assert len(frames) == 6 and frames[0].shape == (48, 64, 3)
    assert source.fps == pytest.approx(10)
    green = frames[0][:, :, 1].astype(int) - frames[0][:, :, 0].astype(int)
    assert green[16:32, 8].mean() > 80  # the box outline is drawn in green
    assert list(tmp_path.iterdir()) == [out]

    failed = tmp_path / "failed.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with AnnotatedVideoWriter(failed, fps=10, size=(64, 48)) as writer:
            writer.write(make_frame(0))
            raise RuntimeError("boom")
    assert not failed.exists() and list(tmp_path.iterdir()) == [out]
    with pytest.raises(ValueError, match="frame 0"):
        with AnnotatedVideoWriter(tmp_path / "size.mp4", fps=10, size=(64, 48)) as writer:
            writer.write(np.zeros((10, 10, 3), np.uint8))
    assert list(tmp_path.iterdir()) == [out]


def test_results_txt_roundtrip(tmp_path):
    boxes = np.array([[1.5, 2.25, 30.0, 40.125], [0.0, 0.0, 5.0, 6.0]])
    path = write_results_txt(tmp_path / "sub" / "boxes.txt", boxes)
    assert path.read_text().splitlines()[0] == "1.5000,2.2500,30.0000,40.1250"
    np.testing.assert_allclose(read_results_txt(path, num_frames=2), boxes)
    with pytest.raises(ValueError):
        read_results_txt(path, num_frames=3)
    with pytest.raises(FileNotFoundError):
        read_results_txt(tmp_path / "none.txt")


def test_pil_modes_keep_their_bit_depth():
    values = np.array([[0, 257, 32896, 65535]], np.uint16)
    expected = np.repeat(np.array([[0, 1, 128, 255]], np.uint8)[:, :, None], 3, axis=2)
    for mode in ("I;16", "I;16B"):
        image = Image.frombytes(mode, (4, 1), values.astype(">u2" if mode.endswith("B") else "<u2").tobytes())
        np.testing.assert_array_equal(to_rgb_uint8(image), expected)
    np.testing.assert_array_equal(to_rgb_uint8(Image.fromarray(values.astype(np.int32), "I")), expected)
    as_float = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), "F")
    np.testing.assert_array_equal(to_rgb_uint8(as_float)[0, :, 0], [0, 128, 255])
    gray_alpha = Image.fromarray(np.dstack([np.full((2, 2), 90, np.uint8), np.zeros((2, 2), np.uint8)]), "LA")
    np.testing.assert_array_equal(to_rgb_uint8(gray_alpha), np.full((2, 2, 3), 90))
    np.testing.assert_array_equal(to_rgb_uint8(np.full((2, 2, 2), 7, np.uint8)), np.full((2, 2, 3), 7))
