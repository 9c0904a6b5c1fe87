"""The Space demo: ``track_video`` (plain Python) on a generated video, plus the Space export."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from huggingface_hub import RepoUrl, SpaceCardData

from hub_cards import export_space, push_space
from modeling_lorat.data.synthetic import make_synthetic_sequence
from modeling_lorat.video_io import AnnotatedVideoWriter, open_frames

APP_PATH = Path(__file__).resolve().parents[1] / "hub_cards" / "space" / "app.py"


@pytest.fixture(scope="module")
def app():
    spec = importlib.util.spec_from_file_location("lorat_space_app", APP_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """An 8-frame 96x72 synthetic video and its sequence (ground-truth boxes)."""
    sequence = make_synthetic_sequence(seed=5, num_frames=8, frame_size=(96, 72))
    path = tmp_path_factory.mktemp("space_video") / "clip.mp4"
    with AnnotatedVideoWriter(path, fps=12, size=(96, 72)) as writer:
        for i in range(len(sequence)):
            writer.write(sequence.load_frame(i))
    return path, sequence


def _rows(text: str) -> list[list[float]]:
    lines = text.strip().splitlines()
    assert lines[0] == "frame,x,y,w,h,score"
    return [[float(v) for v in line.split(",")] for line in lines[1:]]


def test_track_video_writes_annotated_video_and_csv(app, video, tiny_checkpoint, tmp_path):
    path, sequence = video
    x, y, w, h = sequence.boxes[0]
    out_path, text = app.track_video(
        str(path), f"{x:g}, {y:g}, {w:g}, {h:g}", str(tiny_checkpoint), 5, tmp_path
    )

    assert Path(out_path) == tmp_path / "clip_tracked.mp4"
    rows = np.array(_rows(text))
    assert rows.shape == (5, 6)
    np.testing.assert_array_equal(rows[:, 0], np.arange(5))
    np.testing.assert_allclose(rows[0, 1:], [x, y, w, h, 1.0])
    assert np.all((rows[:, 5] >= 0) & (rows[:, 5] <= 1))
    assert np.all(rows[:, 1] >= 0) and np.all(rows[:, 1] + rows[:, 3] <= 96 + 0.1)
    assert np.all(rows[:, 2] >= 0) and np.all(rows[:, 2] + rows[:, 4] <= 72 + 0.1)

    source = open_frames(out_path)
    frames = list(source)
    assert len(frames) == 5 and frames[0].shape == (72, 96, 3)
    assert source.fps == pytest.approx(12, rel=0.01)
    # the green box is drawn on frame 0 along the given box's top edge
    top, left, right = int(y), int(x) + 2, int(x + w) - 2
    drawn = frames[0][top, left:right].astype(float)
    original = sequence.load_frame(0)[top, left:right].astype(float)
    assert drawn[:, 1].mean() - original[:, 1].mean() > 40


def test_track_video_validates_inputs_and_caches_the_model(app, video, tiny_checkpoint, tmp_path):
    path, _ = video
    for bad in ("1, 2, 3", "a, b, c, d", "10 10 0 5", ""):
        with pytest.raises(ValueError, match="box"):
            app.track_video(str(path), bad, str(tiny_checkpoint))
    with pytest.raises(ValueError, match="max_frames"):
        app.track_video(str(path), "10,10,20,20", str(tiny_checkpoint), max_frames=0)
    with pytest.raises(FileNotFoundError):
        app.track_video(str(tmp_path / "missing.mp4"), "10,10,20,20", str(tiny_checkpoint))
    np.testing.assert_array_equal(app.parse_box("[1.5; 2, 3 4]"), [1.5, 2, 3, 4])

    app.load_tracker.cache_clear()
    app.track_video(str(path), "30,20,20,16", str(tiny_checkpoint), 2, tmp_path / "a")
    _, text = app.track_video(str(path), "30,20,20,16", str(tiny_checkpoint), None, tmp_path / "b")
    assert app.load_tracker.cache_info().hits == 1
    assert len(_rows(text)) == 8
    image = app.preview_box(str(path), "30,20,20,16")
    assert image.size == (96, 72)


def test_gradio_ui_builds(app):
    gr = pytest.importorskip("gradio")
    demo = app.build_demo("someone/lorat-b-224")
    assert isinstance(demo, gr.Blocks)


class _FakeApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))
        return RepoUrl(f"https://huggingface.co/spaces/{kwargs['repo_id']}")

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        self.calls.append(("upload_folder", dict(kwargs, files=sorted(p.name for p in folder.iterdir()))))


def test_space_export_is_self_contained(video, tiny_checkpoint, tmp_path):
    folder = export_space(tmp_path / "space", "someone/lorat-b-224")
    assert {"app.py", "requirements.txt", "README.md", "modeling_lorat"} <= {p.name for p in folder.iterdir()}
    assert not list(folder.rglob("__pycache__"))
    meta = yaml.safe_load((folder / "README.md").read_text().split("---")[1])
    card = SpaceCardData(**meta)
    assert card.sdk == "gradio" and card.app_file == "app.py" and card.models == ["someone/lorat-b-224"]
    requirements = [
        line for line in (folder / "requirements.txt").read_text().splitlines() if line and line[0] != "#"
    ]
    assert "transformers==5.23.0" in requirements
    assert not any(line.startswith("gradio") for line in requirements)  # the Space sdk provides gradio

    path, _ = video
    code = (
        "import app, modeling_lorat; "
        "assert modeling_lorat.__file__.startswith(app._HERE.as_posix()), modeling_lorat.__file__; "
        f"out, text = app.track_video({str(path)!r}, '30,20,20,16', {str(tiny_checkpoint)!r}, 3, 'out'); "
        "print(len(text.splitlines()))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "4"

    api = _FakeApi()
    url = push_space("someone/lorat-demo", "someone/lorat-b-224", api=api)
    assert url == "https://huggingface.co/spaces/someone/lorat-demo"
    (_, create), (_, upload) = api.calls
    assert create["repo_type"] == "space" and create["space_sdk"] == "gradio" and create["exist_ok"]
    assert upload["repo_type"] == "space" and {"app.py", "modeling_lorat"} <= set(upload["files"])
