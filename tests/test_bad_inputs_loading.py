"""Bad models, devices and boxes through the public entry points: each fails at once with one clear line
(``lorat ...: error: ...`` and exit code 2 on the CLI, one exception with the whole story in the API)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import pipeline

from modeling_lorat import LoratForTracking, loading_utils
from modeling_lorat.cli import main
from modeling_lorat.loading_utils import ModelLoadError
from modeling_lorat.lora import apply_lora
from modeling_lorat.pipeline_lorat import register_pipeline
from modeling_lorat.testing_utils import tiny_dinov2
from modeling_lorat.tracking_lorat import LoratTracker

FRAMES = [np.full((48, 64, 3), 60, np.uint8)] * 3


def track(capsys, model, *extra) -> tuple[int, str]:
    """``lorat track`` on ``extra[0]``; returns (exit code, stderr without progress bars, stripped)."""
    code = main(["track", str(extra[0]), "--box=5,5,20,20", "--model", str(model), *map(str, extra[1:])])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "it/s]" not in line]
    return code, "\n".join(lines)


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("frames")
    for i, frame in enumerate(FRAMES):
        Image.fromarray(frame).save(folder / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """A tiny adapter checkpoint whose config names a tiny local DINOv2 folder, plus a wider DINOv2."""
    root = tmp_path_factory.mktemp("adapter")
    tiny_dinov2(seed=1).save_pretrained(root / "dinov2")
    tiny_dinov2(seed=1, hidden_size=64).save_pretrained(root / "dinov2-wide")
    base = LoratForTracking.from_backbone(
        str(root / "dinov2"), template_size=28, search_size=56, lora_r=4, lora_alpha=4
    )
    model = apply_lora(base)
    model.save_pretrained(root / "adapter")
    model.get_base_model().config.save_pretrained(root / "adapter")
    return root


def copy_with(source, target, filename, mutate) -> str:
    shutil.copytree(source, target)
    path = target / filename
    path.write_bytes(mutate(path.read_bytes()))
    return str(path)


def with_nonfinite(source, target, filename, value) -> str:
    shutil.copytree(source, target)
    weights = load_file(str(target / filename))
    name = sorted(weights)[2]
    weights[name].view(-1)[1] = value
    save_file(weights, str(target / filename), metadata={"format": "pt"})
    return name


# ------------------------------------------------------------------ damaged and non-finite checkpoints
@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda data: data[: len(data) // 2], "incomplete metadata"),  # truncated download
        (lambda data: bytes(len(data)), "header"),  # zeroed / garbled
        (lambda data: b"version https://git-lfs.github.com/spec/v1\n", "header"),  # an LFS pointer
    ],
)
def test_damaged_model_safetensors_is_named(tiny_checkpoint, tmp_path, capsys, frames_dir, mutate, reason):
    path = copy_with(tiny_checkpoint, tmp_path / "ckpt", "model.safetensors", mutate)
    with pytest.raises(ModelLoadError, match=rf"^{path} is not a valid safetensors file \(.*{reason}"):
        LoratForTracking.from_pretrained(tmp_path / "ckpt")
    code, err = track(capsys, tmp_path / "ckpt", frames_dir)
    assert (
        code == 2
        and err
        == f"lorat track: error: {path} is not a valid safetensors file"
        + err.split("is not a valid safetensors file", 1)[1]
    )
    assert "\n" not in err and "truncated or damaged" in err


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_full_checkpoint_with_nonfinite_weight_is_refused(
    tiny_checkpoint, tmp_path, capsys, frames_dir, value
):
    name = with_nonfinite(tiny_checkpoint, tmp_path / "ckpt", "model.safetensors", value)
    with pytest.raises(ModelLoadError, match=rf"weight '{name}' has 1 NaN/Inf value\(s\)"):
        LoratTracker.from_pretrained(tmp_path / "ckpt")
    code, err = track(capsys, tmp_path / "ckpt", frames_dir)
    assert code == 2 and "\n" not in err and f"weight '{name}' has 1 NaN/Inf" in err


def test_adapter_with_nonfinite_weight_is_refused(adapter, tmp_path):
    name = with_nonfinite(
        adapter / "adapter", tmp_path / "adapter", "adapter_model.safetensors", float("nan")
    )
    config = json.loads((tmp_path / "adapter" / "config.json").read_text())
    assert config["backbone_name_or_path"] == str(adapter / "dinov2")
    file = tmp_path / "adapter" / "adapter_model.safetensors"
    with pytest.raises(ModelLoadError, match=rf"^{file}: weight '{name}' has 1 NaN/Inf"):
        LoratForTracking.from_pretrained(tmp_path / "adapter")
    assert isinstance(LoratForTracking.from_pretrained(adapter / "adapter"), LoratForTracking)  # intact


def test_truncated_adapter_weights_are_named(adapter, tmp_path):
    path = copy_with(
        adapter / "adapter", tmp_path / "adapter", "adapter_model.safetensors", lambda d: d[:100]
    )
    with pytest.raises(ModelLoadError, match=rf"^{path} is not a valid safetensors file"):
        LoratForTracking.from_pretrained(tmp_path / "adapter")


def test_adapter_whose_config_names_a_backbone_of_another_size(adapter, tmp_path):
    shutil.copytree(adapter / "adapter", tmp_path / "adapter")
    config_file = tmp_path / "adapter" / "config.json"
    config = json.loads(config_file.read_text())
    config["backbone_name_or_path"] = str(adapter / "dinov2-wide")
    config_file.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as info:
        LoratForTracking.from_pretrained(tmp_path / "adapter")
    assert str(info.value) == (
        f"adapter {tmp_path / 'adapter'} does not fit backbone {adapter / 'dinov2-wide'}: the backbone has "
        "hidden_size=64 (adapter expects 32); the adapter's config.json names a DINOv2 of another size"
    )


# ------------------------------------------------------------------ model names that lead nowhere
def test_unknown_model_name_fails_fast_offline(capsys, frames_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        FileNotFoundError, match=r"no Hub repo 'org/lorat-b-224' in the local cache while HF_HUB_OFFLINE"
    ):
        LoratTracker.from_pretrained("org/lorat-b-224")
    code, err = track(capsys, "org/lorat-b-224", frames_dir)
    assert code == 2 and err.startswith(
        "lorat track: error: model folder not found: org/lorat-b-224 (no such folder)"
    )


def test_unreachable_hub_fails_fast_without_retries(capsys, frames_dir, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: connection refused
    monkeypatch.setattr(loading_utils, "_REACHABLE", {})
    code, err = track(capsys, "org/lorat-b-224", frames_dir)
    assert code == 2 and "\n" not in err
    assert err.endswith("in the local cache while the Hugging Face Hub (http://127.0.0.1:9) is unreachable")


@pytest.mark.parametrize("name", ["demo_output/modl", "./demo_output/modl", "demo_output/model/extra"])
def test_typo_in_a_local_folder_says_no_such_folder(
    tiny_checkpoint, tmp_path, capsys, frames_dir, monkeypatch, name
):
    shutil.copytree(tiny_checkpoint, tmp_path / "demo_output" / "model")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, err = track(capsys, name, frames_dir)
    assert code == 2 and err.startswith(f"lorat track: error: model folder not found: {name} (no such folder")
    assert main(["track", str(frames_dir), "--box=5,5,20,20", "--model", "demo_output/model"]) == 0


# ------------------------------------------------------------------ devices
def test_cli_device_gpu_lists_valid_devices(tiny_checkpoint, capsys, frames_dir):
    code, err = track(capsys, tiny_checkpoint, frames_dir, "--device", "gpu")
    assert code == 2
    assert (
        err
        == f"lorat track: error: unknown device 'gpu'; valid devices here: {', '.join(loading_utils.available_devices())}"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_api_cuda_without_gpu_is_one_clear_error(tiny_checkpoint):
    with pytest.raises(
        ValueError, match=r"^device 'cuda' requested but no cuda device is available; valid devices here: cpu"
    ):
        LoratTracker.from_pretrained(tiny_checkpoint, device="cuda")
    with pytest.raises(ValueError, match=r"^device 'cuda' requested but no cuda device is available"):
        pipeline("single-object-tracking", model=str(tiny_checkpoint), device="cuda")


def test_api_device_index_out_of_range_and_unknown_names(tiny_checkpoint):
    with pytest.raises(ValueError, match=r"^device 'cuda:99' (requested but no cuda|does not exist)"):
        LoratTracker.from_pretrained(tiny_checkpoint, device="cuda:99")
    register_pipeline()
    with pytest.raises(ValueError, match=r"^unknown device 'gpu'; valid devices here: cpu"):
        pipeline("single-object-tracking", model=str(tiny_checkpoint), device="gpu")


# ------------------------------------------------------------------ boxes
@pytest.mark.parametrize(
    ("box", "shown"),
    [(("40", "30", "24", "32"), "'40'"), ("40,30,24,32", "'40,30,24,32'"), (["a", "b", "c", "d"], "'a'")],
)
def test_pipeline_box_of_strings_is_one_clear_error(tiny_checkpoint, box, shown):
    register_pipeline()
    pipe = pipeline("single-object-tracking", model=str(tiny_checkpoint), device="cpu")
    with pytest.raises(
        ValueError, match=rf"^box must be numbers x, y, w, h \(pixels\), got the string {shown} in "
    ):
        pipe(FRAMES, box=box)
    assert len(list(pipe(FRAMES, box=(40, 30, 24, 32)))) == 3
