"""`lorat track` end to end: annotated video, result file, errors with exit code 2."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from modeling_lorat.cli import main
from modeling_lorat.commands.track import parse_box
from modeling_lorat.video_io import open_frames, read_results_txt


def track(video, box, model, *extra) -> int:
    """Run ``lorat track`` on CPU (``--box=...`` form so negative numbers parse too)."""
    argv = ["track", str(video), f"--box={box}", "--model", str(model), "--device", "cpu"]
    return main(argv + [str(e) for e in extra])


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    for i in range(9):
        frame = np.full((70, 90, 3), 50, np.uint8)
        frame[15:35, 10 + 4 * i : 30 + 4 * i] = 220
        Image.fromarray(frame).save(folder / f"{i}.png")
    return folder


def test_track_writes_video_and_results(tiny_checkpoint, frames_dir, tmp_path, capsys):
    video, results = tmp_path / "annotated.mp4", tmp_path / "boxes.txt"
    code = track(frames_dir, "10,15,20,20", tiny_checkpoint, "--output", video, "--results", results)
    assert code == 0
    assert len(list(open_frames(video))) == 9  # decodable with PyAV
    boxes = read_results_txt(results, num_frames=9)
    np.testing.assert_allclose(boxes[0], [10, 15, 20, 20])
    assert "tracked 9 frames" in capsys.readouterr().err


def test_track_to_stdout_and_re_encoded_video(tiny_checkpoint, tmp_path, capsys):
    source = tmp_path / "in.mp4"
    from modeling_lorat.video_io import AnnotatedVideoWriter

    with AnnotatedVideoWriter(source, fps=12, size=(64, 48)) as writer:
        for _ in range(4):
            writer.write(np.full((48, 64, 3), 90, np.uint8))
    assert track(source, "5,5,20,20", tiny_checkpoint, "--dtype", "bfloat16") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0] == "5.0000,5.0000,20.0000,20.0000"


@pytest.mark.parametrize("box", ["1,2,3", "1,2,3,4,5", "a,b,c,d", "1,2,0,4", "1,2,nan,4", "1;2;3;4"])
def test_bad_box_exits_2_with_one_line(tiny_checkpoint, frames_dir, box, capsys):
    assert track(frames_dir, box, tiny_checkpoint) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lorat track: error: --box") and "\n" not in err


def test_missing_model_and_video_exit_2(tiny_checkpoint, frames_dir, tmp_path, capsys):
    assert track(frames_dir, "1,2,3,4", tmp_path / "nope") == 2
    assert "model folder not found" in capsys.readouterr().err
    assert track(tmp_path / "none.mp4", "1,2,3,4", tiny_checkpoint) == 2
    assert "not found" in capsys.readouterr().err
    assert track(frames_dir, "1,2,3,4", tiny_checkpoint, "--dtype", "float16") == 2
    assert "float16" in capsys.readouterr().err


def test_parse_box():
    assert parse_box(" 1.5, 2,3,4 ") == (1.5, 2.0, 3.0, 4.0)
    with pytest.raises(ValueError, match="4 comma-separated"):
        parse_box("1 2 3 4")
    # the numbers are checked by the one first-box validator the tracker and the pipeline use too
    with pytest.raises(ValueError, match=r"^--box '1,2,0,4': box width and height must be positive; got w=0"):
        parse_box("1,2,0,4")
    with pytest.raises(ValueError, match=r"^--box '1,nan,3,4': box has non-finite values"):
        parse_box("1,nan,3,4")


def test_cuda_graphs_without_a_gpu_exit_2_with_one_line(tiny_checkpoint, frames_dir, tmp_path, capsys):
    assert track(frames_dir, "10,15,20,20", tiny_checkpoint, "--cuda-graphs") == 2
    err = capsys.readouterr().err.strip()
    assert err == "lorat track: error: --cuda-graphs needs a CUDA device, got --device cpu"
    args = ["evaluate", "--model", str(tiny_checkpoint), "--dataset", "synthetic", "--root", str(tmp_path)]
    assert main(args + ["--device", "cpu", "--cuda-graphs", "--output", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--cuda-graphs needs a CUDA device" in err and "\n" not in err
