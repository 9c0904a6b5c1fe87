"""Bad frames through the public entry points: 16-bit images, out-of-range arrays, a frame file missing
from a benchmark sequence, a video cut in half. Each gives a correct result or one clear error."""

from __future__ import annotations

import warnings
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from transformers import pipeline

from modeling_lorat.cli import main
from modeling_lorat.data import get_dataset
from modeling_lorat.pipeline_lorat import register_pipeline
from modeling_lorat.tracking_lorat import LoratTracker
from modeling_lorat.video_io import TruncatedVideoWarning, open_frames, read_results_txt, to_rgb_uint8

W, H = 64, 48


def scene(i: int) -> np.ndarray:
    """uint8 RGB frame: dark textured background, a bright square moving right by 3 px per frame."""
    rng = np.random.default_rng(i)
    frame = rng.integers(20, 60, (H, W, 3), dtype=np.uint8)
    frame[14:30, 6 + 3 * i : 22 + 3 * i] = (230, 190, 60)
    return frame


@pytest.fixture(scope="module")
def tracker_pipe(tiny_checkpoint):
    register_pipeline()
    return pipeline("single-object-tracking", model=str(tiny_checkpoint), device="cpu")


# ------------------------------------------------------------------ 16-bit images and arrays
def test_16bit_png_frames_are_scaled_not_white(tmp_path, tiny_checkpoint, capsys):
    gray = np.stack([scene(i)[:, :, 0] for i in range(4)])  # 8-bit reference
    for i, frame in enumerate(gray):
        Image.fromarray(frame.astype(np.uint16) * 257).save(tmp_path / f"{i + 1}.png")  # 16-bit gray PNG
    rgb16 = scene(0).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "5.png"), rgb16[:, :, ::-1])  # 48-bit RGB PNG
    assert Image.open(tmp_path / "1.png").mode == "I;16"

    frames = list(open_frames(tmp_path))
    for i in range(4):
        np.testing.assert_array_equal(frames[i], np.repeat(gray[i][:, :, None], 3, axis=2))
    np.testing.assert_array_equal(frames[4], scene(0))
    assert frames[0].max() < 255  # the bug read every pixel as 255

    results = tmp_path / "out" / "boxes.txt"
    assert main(["track", str(tmp_path), "--box=6,14,16,16", "--model", str(tiny_checkpoint), "--device", "cpu",
                 "--results", str(results)]) == 0  # fmt: skip
    assert read_results_txt(results, num_frames=5).shape == (5, 4)


def test_uint16_float_and_bool_arrays_track_like_their_uint8_frames(tracker_pipe):
    frames = [scene(i) for i in range(5)]
    reference = list(tracker_pipe(frames, box=(6, 14, 16, 16)))
    as_uint16 = [f.astype(np.uint16) * 257 for f in frames]
    as_float = [f.astype(np.float32) / 255.0 for f in frames]
    for variant in (as_uint16, as_float):
        assert list(tracker_pipe(variant, box=(6, 14, 16, 16))) == reference
    np.testing.assert_array_equal(to_rgb_uint8(np.array([[True, False]])), [[[255] * 3, [0] * 3]])
    np.testing.assert_array_equal(to_rgb_uint8(np.full((2, 2), 65535, np.uint16)), np.full((2, 2, 3), 255))


def test_tracker_api_takes_16bit_frames_by_their_range(tiny_checkpoint):
    tracker = LoratTracker.from_pretrained(tiny_checkpoint, device="cpu")
    frames = [scene(i) for i in range(4)]

    def run(convert):
        tracker.init(convert(frames[0]), (6, 14, 16, 16))
        return [tracker.track(convert(f)).box_xywh for f in frames[1:]]

    rgb, gray = run(lambda f: f), run(lambda f: f[:, :, 0])
    cases = [
        (lambda f: f.astype(np.uint16) * 257, rgb),  # 16-bit numpy
        (
            lambda f: torch.from_numpy(f.astype(np.int32) * 257).to(torch.uint16).permute(2, 0, 1),
            rgb,
        ),  # torch
        (lambda f: Image.fromarray(f[:, :, 0].astype(np.uint16) * 257), gray),  # 16-bit PIL ("I;16")
    ]
    for convert, expected in cases:
        np.testing.assert_allclose(run(convert), expected, atol=1e-4)
    with pytest.raises(ValueError, match=r"^frame has int64 values in \[0, 1000\]"):
        tracker.init(np.full((H, W, 3), 1000, np.int64) * (np.arange(W)[None, :, None] > 0), (6, 14, 16, 16))


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.full((H, W, 3), 300, np.int32), r"has int32 values in \[300, 300\].*uint16"),
        (np.full((H, W, 3), np.nan, np.float32), "contains NaN or Inf"),
        (np.full((H, W, 3), -2.1, np.float32), r"has float values in \[-2.1, -2.1\].*un-normalise"),
        (np.full((H, W, 3), 4000.0), r"has float values in \[4000, 4000\]"),
    ],
)
def test_arrays_outside_any_image_range_are_refused(tracker_pipe, frame, message):
    with pytest.raises(ValueError, match=rf"^frame 0 {message}"):
        list(tracker_pipe([frame, frame], box=(6, 14, 16, 16)))


# ------------------------------------------------------------------ a frame missing from a sequence
def write_got10k_test(root, missing: int | None = None):
    seq = root / "test" / "GOT-10k_Test_000001"
    seq.mkdir(parents=True)
    (root / "test" / "list.txt").write_text("GOT-10k_Test_000001\n")
    (seq / "groundtruth.txt").write_text("6,14,16,16\n")  # the test split publishes the first box only
    for i in range(8):
        if i + 1 != missing:
            Image.fromarray(scene(i)).save(seq / f"{i + 1:08d}.jpg")
    return seq


def write_lasot(root, missing: int | None = None):
    seq = root / "bird" / "bird-2"
    (seq / "img").mkdir(parents=True)
    (root / "testing_set.txt").write_text("bird-2\n")
    (seq / "groundtruth.txt").write_text("".join("7,15,16,16\n" for _ in range(8)))
    for i in range(8):
        if i + 1 != missing:
            Image.fromarray(scene(i)).save(seq / "img" / f"{i + 1:08d}.jpg")
    return seq


def test_got10k_frame_missing_in_the_middle_stops_evaluate(tmp_path, tiny_checkpoint, capsys):
    root = tmp_path / "GOT-10k"
    write_got10k_test(root, missing=4)
    code = main(["evaluate", "--model", str(tiny_checkpoint), "--dataset", "got10k", "--root", str(root),
                 "--output", str(tmp_path / "run"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith(
        "lorat evaluate: error: sequence 'GOT-10k_Test_000001': frame 00000004.jpg is missing"
    )
    assert not (tmp_path / "run").exists()  # nothing written with shifted frames


def test_lasot_frame_missing_names_it_and_complete_sequences_read(tmp_path):
    write_lasot(tmp_path / "gap", missing=5)
    with pytest.raises(FileNotFoundError, match=r"'bird-2': frame 00000005\.jpg is missing from .*img"):
        get_dataset("lasot", tmp_path / "gap")
    write_lasot(tmp_path / "ok")
    (sequence,) = get_dataset("lasot", tmp_path / "ok")
    assert len(sequence) == 8 and sequence.frames[4].name == "00000005.jpg"


def test_trackingnet_zero_based_numbering_and_duplicates(tmp_path):
    frames = tmp_path / "TEST" / "frames" / "seq"
    frames.mkdir(parents=True)
    (tmp_path / "TEST" / "anno").mkdir()
    (tmp_path / "TEST" / "anno" / "seq.txt").write_text("1,2,3,4\n")
    for i in (0, 1, 2, 4, 5):
        Image.fromarray(scene(i)).save(frames / f"{i}.jpg")
    with pytest.raises(FileNotFoundError, match=r"frame 3\.jpg is missing"):
        get_dataset("trackingnet", tmp_path)
    Image.fromarray(scene(3)).save(frames / "3.jpg")
    assert len(get_dataset("trackingnet", tmp_path)[0]) == 6
    Image.fromarray(scene(3)).save(frames / "03.jpg")
    with pytest.raises(ValueError, match="two frame files are numbered 3"):
        get_dataset("trackingnet", tmp_path)


# ------------------------------------------------------------------ a video cut in half
def write_video(path, n=40, options=None) -> None:
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream("libx264", rate=Fraction(20))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(n):
            for packet in stream.encode(av.VideoFrame.from_ndarray(scene(i % 12), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("name", "options"), [("faststart.mp4", {"movflags": "faststart"}), ("clip.mkv", {})]
)
def test_truncated_video_warns_and_is_marked(tmp_path, name, options):
    path = tmp_path / name
    write_video(path, options=options)
    whole = open_frames(path)
    assert len(list(whole)) == 40 and whole.declared_frames == 40 and not whole.truncated
    cut_in_half(path)
    source = open_frames(path)
    with pytest.warns(TruncatedVideoWarning, match=r"decoded only (\d+) of the 40 frames .* truncated"):
        decoded = list(source)
    assert 0 < len(decoded) < 30
    assert source.truncated and source.declared_frames == 40 and source.decoded_frames == len(decoded)


def test_track_reports_a_truncated_video_in_one_line(tmp_path, tiny_checkpoint, capsys):
    path = tmp_path / "cut.mkv"
    write_video(path)
    cut_in_half(path)
    results = tmp_path / "boxes.txt"
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedVideoWarning)  # track reports it itself
        code = main(["track", str(path), "--box=6,14,16,16", "--model", str(tiny_checkpoint), "--device", "cpu",
                     "--results", str(results)])  # fmt: skip
    assert code == 0
    decoded = len(read_results_txt(results))  # one line per decoded frame: indices never shift
    err = [
        line for line in capsys.readouterr().err.splitlines() if "lorat track" in line or "tracked" in line
    ]
    assert err[0] == (
        f"lorat track: warning: {path}: decoded only {decoded} frames of the 40 frames it declares; the file "
        f"is truncated or damaged, so the results stop at frame {decoded - 1}"
    )
    assert err[1].startswith(f"tracked {decoded} frames (TRUNCATED video: 40 frames declared)")
