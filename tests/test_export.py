"""``lorat export``: ONNX (onnxruntime) and ``torch.export`` graphs of the merged model equal the eager
model to 1e-4 at the full S-224 architecture, with a dynamic batch; the export folder's contract, and
the command's refusals (one error line, nothing half-written)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from modeling_lorat.cli import main
from modeling_lorat.exporting import CONTRACT_FILE, export_model

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

ATOL = 1e-4
NAMES = ("pixel_values_template", "pixel_values_search", "template_mask")


def random_inputs(config, batch: int, seed: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    t, s, g = config.template_size, config.search_size, config.template_grid
    return (
        torch.randn(batch, 3, t, t, generator=generator),
        torch.randn(batch, 3, s, s, generator=generator),
        torch.randint(0, 2, (batch, g, g), generator=generator),
    )


@pytest.fixture(scope="module")
def s224():
    """S-224 with random weights: LoRA (official init) merged, head re-drawn so the logits spread over
    O(1) (at the default init they stay within +-0.2, which would make 1e-4 a loose bound); the eager,
    unfused outputs at batch 1 and 3 are the reference."""
    from modeling_lorat.configuration_lorat import LoratConfig
    from modeling_lorat.lora import apply_lora
    from modeling_lorat.modeling_lorat import LoratForTracking

    torch.manual_seed(0)
    model = apply_lora(LoratForTracking(LoratConfig.from_preset("s-224"))).merge_and_unload().eval()
    with torch.no_grad():
        for layer in model.head.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.weight.normal_(0.0, 2.0 / math.sqrt(layer.in_features))
                layer.bias.normal_(0.0, 0.5)
    cases = []
    for batch, seed in ((1, 10), (3, 11)):
        inputs = random_inputs(model.config, batch, seed)
        with torch.no_grad():
            out = model(*inputs, return_dict=True)
        cases.append((inputs, out.score_map.numpy(), out.pred_boxes.numpy()))
    assert cases[1][1].std() > 0.3 and cases[1][2].std() > 0.1  # outputs far from constant
    return model, cases


@pytest.mark.slow
@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("format", ["onnx", "torch-export"])
def test_s224_export_equals_eager_at_batch_1_and_3(s224, tmp_path, format, fuse):
    model, cases = s224
    result = export_model(model, tmp_path / "out", format=format, fuse=fuse, verify=False)
    assert not model.is_fused  # the caller's model is exported from a copy
    if format == "onnx":
        graph = onnx.load(str(result.model_file), load_external_data=False).graph
        dims = {
            v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in graph.input
        }
        assert dims == {
            "pixel_values_template": ["batch", 3, 112, 112],
            "pixel_values_search": ["batch", 3, 224, 224],
            "template_mask": ["batch", 8, 8],
        }
        session = onnxruntime.InferenceSession(str(result.model_file), providers=["CPUExecutionProvider"])

        def run(inputs):
            return session.run(["score_map", "pred_boxes"], dict(zip(NAMES, (x.numpy() for x in inputs))))
    else:
        program = torch.export.load(result.model_file).module()

        def run(inputs):
            with torch.no_grad():
                return [x.numpy() for x in program(*inputs)]

    for inputs, score_map, pred_boxes in cases:
        got_scores, got_boxes = run(inputs)
        assert got_scores.shape == score_map.shape == (inputs[0].shape[0], 16, 16)
        assert got_boxes.shape == pred_boxes.shape == (inputs[0].shape[0], 16, 16, 4)
        np.testing.assert_allclose(got_scores, score_map, rtol=0, atol=ATOL)
        np.testing.assert_allclose(got_boxes, pred_boxes, rtol=0, atol=ATOL)


# --------------------------------------------------------------------------------------- command line
def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    err = "\n".join(
        line
        for line in captured.err.splitlines()
        if line.strip() and "it/s]" not in line and "\r" not in line
    )
    return code, captured.out, err


def folder_files(folder) -> set[str]:
    """The export folder's files other than the image processor's shipped code (checked to be there)."""
    names = {p.name for p in folder.iterdir()}
    assert "image_processing_lorat.py" in names
    assert "auto_map" in json.loads((folder / "preprocessor_config.json").read_text())
    assert "auto_map" not in json.loads((folder / "config.json").read_text())
    return {name for name in names if not name.endswith(".py")}


def test_cli_onnx_folder_contract_and_verification(tiny_checkpoint, tmp_path, capsys):
    from modeling_lorat.configuration_lorat import LoratConfig
    from modeling_lorat.image_processing_lorat import LoratImageProcessor

    out = tmp_path / "exported"
    code, stdout, _ = run_cli(
        capsys, "export", "--model", tiny_checkpoint, "--format", "onnx", "--output", out, "--opset", "18"
    )
    assert code == 0 and f"wrote {out / 'model.onnx'}" in stdout and "verified at batch 1 and 3" in stdout
    assert folder_files(out) == {"config.json", CONTRACT_FILE, "model.onnx", "preprocessor_config.json"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    assert onnx.load(str(out / "model.onnx")).opset_import[0].version == 18
    config = LoratConfig.from_pretrained(tiny_checkpoint)
    contract = json.loads((out / CONTRACT_FILE).read_text())
    assert contract["format"] == "onnx" and contract["fused"] is True and contract["onnx_opset"] == 18
    assert [(i["name"], i["dtype"], i["shape"]) for i in contract["inputs"]] == [
        ("pixel_values_template", "float32", ["batch", 3, 28, 28]),
        ("pixel_values_search", "float32", ["batch", 3, 56, 56]),
        ("template_mask", "int64", ["batch", 2, 2]),
    ]
    assert [(o["name"], o["shape"]) for o in contract["outputs"]] == [
        ("score_map", ["batch", 4, 4]),
        ("pred_boxes", ["batch", 4, 4, 4]),
    ]
    pre = contract["preprocessing"]
    assert (pre["template_size"], pre["search_size"], pre["patch_size"]) == (28, 56, 14)
    assert (pre["search_area_factor"], pre["min_object_size"]) == (config.search_area_factor, 2.0)
    assert pre["image_mean"] == pytest.approx(config.image_mean)
    assert contract["postprocessing"]["window_penalty"] == config.window_penalty
    verification = contract["verification"]
    assert verification["batch_sizes"] == [1, 3] and verification["atol"] == ATOL
    assert 0 <= max(verification["max_abs_diff"].values()) <= ATOL
    processor = LoratImageProcessor.from_pretrained(out)
    assert (processor.template_size, processor.search_size) == (28, 56)

    # the graph the folder holds tracks any batch: batch 5 equals the checkpoint's eager model
    from modeling_lorat.modeling_lorat import LoratForTracking

    model = LoratForTracking.from_pretrained(tiny_checkpoint).eval()
    inputs = random_inputs(config, 5, seed=3)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    scores, boxes = session.run(None, dict(zip(NAMES, (x.numpy() for x in inputs))))
    with torch.no_grad():
        expected = model(*inputs, return_dict=True)
    np.testing.assert_allclose(scores, expected.score_map.numpy(), rtol=0, atol=ATOL)
    np.testing.assert_allclose(boxes, expected.pred_boxes.numpy(), rtol=0, atol=ATOL)


def test_cli_refuses_to_overwrite_and_replaces_with_overwrite(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "exported"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    argv = ("export", "--model", tiny_checkpoint, "--format", "torch-export", "--output", out)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert (
        err == f"lorat export: error: output {out} exists and is not empty (pass --overwrite to replace it)"
    )
    assert (out / "keep.txt").read_text() == "mine"
    code, stdout, _ = run_cli(capsys, *argv, "--overwrite", "--no-fuse")
    assert code == 0 and "verified" in stdout
    assert folder_files(out) == {"config.json", CONTRACT_FILE, "model.pt2", "preprocessor_config.json"}
    assert json.loads((out / CONTRACT_FILE).read_text())["fused"] is False
    assert [p.name for p in tmp_path.iterdir()] == ["exported"]  # old folder and temp folder removed


def test_cli_failed_verification_writes_nothing(tiny_checkpoint, tmp_path, capsys):
    # the fused graph differs from the eager unfused model by rounding (~1e-8), more than atol 1e-15
    out = tmp_path / "exported"
    code, _, err = run_cli(
        capsys, "export", "--model", tiny_checkpoint, "--format", "onnx", "--output", out, "--atol", "1e-15"
    )
    assert code == 2 and "\n" not in err
    assert err.startswith("lorat export: error: the exported model differs from the eager model by ")
    assert err.endswith("; nothing was written")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--model", "{tmp}/missing"), "{tmp}/missing"),
        (("--output", "{tmp}/model.onnx"), "looks like a file name; give a folder"),
        (("--format", "torch-export", "--opset", "18"), "--opset applies to --format onnx only"),
        (("--atol", "0"), "--atol must be positive, got 0.0"),
        (
            ("--output", "{tmp}/notes.txt/out"),
            "cannot create --output {tmp}/notes.txt/out: {tmp}/notes.txt is a file",
        ),
    ],
    ids=["missing-model", "file-output", "opset-torch-export", "atol", "parent-is-file"],
)
def test_cli_bad_arguments_one_line(tiny_checkpoint, tmp_path, capsys, extra, message):
    (tmp_path / "notes.txt").write_text("not a folder")
    options = {"--model": str(tiny_checkpoint), "--format": "onnx", "--output": str(tmp_path / "out")}
    extra = [e.format(tmp=tmp_path) for e in extra]
    options.update(dict(zip(extra[::2], extra[1::2])))
    code, _, err = run_cli(capsys, "export", *[x for kv in options.items() for x in kv])
    assert code == 2 and "\n" not in err and err.startswith("lorat export: error: ")
    assert message.format(tmp=tmp_path) in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert not (tmp_path / "out").exists()


def test_cli_missing_exporter_package_names_the_extra(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxscript", None)  # `import onnxscript` -> ModuleNotFoundError
    code, _, err = run_cli(
        capsys, "export", "--model", tiny_checkpoint, "--format", "onnx", "--output", tmp_path / "out"
    )
    assert code == 2
    assert (
        err
        == "lorat export: error: --format onnx needs the package 'onnxscript': pip install 'lorat[export]'"
    )
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------ README example
def readme_deploy_block() -> str:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    marker = "<!-- test_export.py runs this block -->"
    assert readme.count(marker) == 1
    return readme.split(marker, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_deploy_example_tracks_like_the_tracker_without_the_package(tiny_checkpoint, tmp_path):
    """The README's onnxruntime loop, run where ``import modeling_lorat`` fails (the folder's shipped
    processor only), gives the boxes and scores of ``LoratTracker`` on the checkpoint."""
    import os
    import subprocess
    import sys

    import av

    from modeling_lorat.data.synthetic import make_synthetic_sequence
    from modeling_lorat.tracking_lorat import LoratTracker
    from modeling_lorat.video_io import AnnotatedVideoWriter

    sequence = make_synthetic_sequence(seed=5, num_frames=6, frame_size=(96, 72))
    with AnnotatedVideoWriter(tmp_path / "video.mp4", fps=10, size=(96, 72)) as writer:
        for i in range(len(sequence)):
            writer.write(sequence.load_frame(i), None, None)
    argv = [
        "export",
        "--model",
        tiny_checkpoint,
        "--format",
        "onnx",
        "--output",
        tmp_path / "lorat-b-224-onnx",
    ]
    assert main([str(a) for a in argv]) == 0
    script = tmp_path / "deploy.py"
    script.write_text(
        "import sys\nsys.modules['modeling_lorat'] = None  # the package cannot be imported\n"
        + readme_deploy_block()
        + "\nprint(json.dumps(results))\n"
    )
    env = dict(
        os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), OMP_NUM_THREADS="1"
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])

    frames = [
        frame.to_ndarray(format="rgb24") for frame in av.open(str(tmp_path / "video.mp4")).decode(video=0)
    ]
    tracker = LoratTracker.from_pretrained(tiny_checkpoint)
    tracker.init(frames[0], (40, 30, 24, 32))
    expected = [tracker.track(frame) for frame in frames[1:]]
    assert len(results) == len(expected) == 5
    for (box, score), want in zip(results, expected):
        np.testing.assert_allclose(box, want.box_xywh, rtol=0, atol=1e-3)
        assert score == pytest.approx(want.score, abs=1e-5)
    assert len({tuple(np.round(box, 3)) for box, _ in results}) > 1  # the box moves
