"""``lorat convert`` on files that are not official checkpoints, and ``lorat track`` output paths that
cannot be written: one ``lorat ...: error:`` line and exit code 2, before any work is lost."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from modeling_lorat.cli import main
from modeling_lorat.video_io import AnnotatedVideoWriter

GOLDEN = Path(__file__).parent / "fixtures" / "golden" / "official_mlp.safetensors"
PRESET = "s-224"  # a real preset; every bad file below must be refused before the preset is compared


def run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "it/s]" not in line]
    return code, "\n".join(lines)


def convert(capsys, original, tmp_path) -> str:
    code, err = run(
        capsys, "convert", "--original", original, "--preset", PRESET, "--output", tmp_path / "out"
    )
    assert code == 2 and "\n" not in err and err.startswith("lorat convert: error: ")
    assert not (tmp_path / "out").exists()
    return err.removeprefix("lorat convert: error: ")


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def test_convert_random_bytes_text_and_empty_files(tmp_path, capsys):
    (tmp_path / "random.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "notes.pth").write_text("LoRAT-B-224 weights: see the release page\n" * 20)
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "random.safetensors").write_bytes(np.random.default_rng(1).bytes(4096))
    assert convert(capsys, tmp_path / "random.pth", tmp_path).startswith(
        f"{tmp_path / 'random.pth'} is not a PyTorch checkpoint (unreadable pickle: "
    )
    assert convert(capsys, tmp_path / "notes.pth", tmp_path).startswith(
        f"{tmp_path / 'notes.pth'} is not a PyTorch checkpoint ("
    )
    assert (
        convert(capsys, tmp_path / "empty.pth", tmp_path)
        == f"{tmp_path / 'empty.pth'} is empty, not a PyTorch checkpoint"
    )
    assert convert(capsys, tmp_path / "random.safetensors", tmp_path).startswith(
        f"{tmp_path / 'random.safetensors'} is not a valid safetensors file ("
    )


def test_convert_truncated_pth(tmp_path, capsys):
    path = tmp_path / "LoRAT_S_224.pth"
    torch.save(load_file(str(GOLDEN)), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert convert(capsys, path, tmp_path).startswith(
        f"{path} is a truncated or damaged PyTorch checkpoint ("
    )


def test_convert_state_dict_without_patch_embedding(tmp_path, capsys):
    state = load_file(str(GOLDEN))
    del state["patch_embed.proj.weight"]
    torch.save({"model": state}, tmp_path / "partial.pth")
    assert convert(capsys, tmp_path / "partial.pth", tmp_path) == (
        f"{tmp_path / 'partial.pth'} has no 'patch_embed.proj.weight' (the patch embedding): an incomplete "
        "or non-LoRAT checkpoint"
    )


def test_convert_state_dict_with_nan_weight(tmp_path, capsys):
    state = load_file(str(GOLDEN))
    state["blocks.1.attn.proj.lora.B"][0, 0] = float("nan")
    torch.save(state, tmp_path / "diverged.pth")
    assert convert(capsys, tmp_path / "diverged.pth", tmp_path).startswith(
        f"{tmp_path / 'diverged.pth'}: weight 'blocks.1.attn.proj.lora.B' has 1 NaN/Inf value(s)"
    )


@pytest.mark.parametrize("form", ["plain pickle", "torch zip"])
def test_convert_refuses_a_pickle_that_would_run_code(tmp_path, capsys, form):
    path = tmp_path / "LoRAT_B_224.pth"
    state = {"blocks.0.norm1.weight": torch.ones(2), "hook": RunsCode()}
    if form == "plain pickle":
        path.write_bytes(pickle.dumps(state))
    else:
        torch.save(state, path)
    message = convert(capsys, path, tmp_path)
    assert message.startswith(
        f"refused to unpickle {path}: it names {os.system.__module__}.system, which unpickling"
    )
    assert "torch.load with weights_only=True" in message


# ------------------------------------------------------------------ lorat track output paths
@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    for i in range(3):
        Image.fromarray(np.full((40, 56, 3), 50 + 40 * i, np.uint8)).save(folder / f"{i}.png")
    return folder


def track(capsys, frames, model, *extra) -> tuple[int, str]:
    return run(capsys, "track", frames, "--box=5,5,20,20", "--model", model, "--device", "cpu", *extra)


def test_track_results_pointing_at_a_folder_fails_before_the_first_frame(
    frames_dir, tiny_checkpoint, tmp_path, capsys, monkeypatch
):
    import modeling_lorat.tracking_lorat as tracking

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the output paths were checked")

    monkeypatch.setattr(tracking.LoratTracker, "from_pretrained", no_model)
    (tmp_path / "results").mkdir()
    (tmp_path / "a_file").write_text("keep me")
    cases = [
        (
            ["--results", tmp_path / "results"],
            f"--results {tmp_path / 'results'} is a folder; give a file name",
        ),
        (
            ["--output", tmp_path / "results"],
            f"--output {tmp_path / 'results'} is a folder; give a file name",
        ),
        (["--results", tmp_path / "a_file" / "boxes.txt"], f"{tmp_path / 'a_file'} is a file, not a folder"),
        (["--output", tmp_path / "out.txt"], "cannot encode a video into a .txt file"),
        (["--results", frames_dir], f"--results {frames_dir} is a folder"),
        (["--output", tmp_path / "x.mp4", "--results", tmp_path / "x.mp4"], "name the same file"),
    ]
    for extra, message in cases:
        code, err = track(capsys, frames_dir, tiny_checkpoint, *extra)
        assert code == 2 and "\n" not in err and err.startswith("lorat track: error: ") and message in err
    assert (tmp_path / "a_file").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "results"]  # no probe files left
    video = tmp_path / "clip.mp4"
    with AnnotatedVideoWriter(video, fps=10, size=(56, 40)) as writer:
        for _ in range(3):
            writer.write(np.zeros((40, 56, 3), np.uint8))
    before = video.read_bytes()
    same = f"{tmp_path}/results/../clip.mp4"  # another spelling of the input video
    code, err = track(capsys, video, tiny_checkpoint, "--output", same)
    expected = f"--output {same} is the input video; choose another file"
    assert code == 2 and err == f"lorat track: error: {expected}"
    assert video.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_track_results_in_a_read_only_folder(frames_dir, tiny_checkpoint, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, err = track(capsys, frames_dir, tiny_checkpoint, "--results", locked / "boxes.txt")
    finally:
        locked.chmod(0o700)
    assert code == 2 and err.startswith(
        f"lorat track: error: --results {locked / 'boxes.txt'}: cannot write in {locked}"
    )


def test_track_into_a_new_folder_still_works(frames_dir, tiny_checkpoint, tmp_path, capsys):
    results, video = tmp_path / "new" / "deeper" / "boxes.txt", tmp_path / "new" / "annotated.mkv"
    code, _ = track(capsys, frames_dir, tiny_checkpoint, "--results", results, "--output", video)
    assert code == 0 and len(results.read_text().splitlines()) == 3 and video.stat().st_size > 0
