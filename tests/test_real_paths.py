"""Real-path tier: the commands README.md and training/README.md print, with only paths replaced, on the
paths real users take: a ``facebook/dinov2-small`` stand-in (full S architecture), LaSOT / GOT-10k /
TrackingNet / COCO trees in their official layouts, ``accelerate launch``, the ``lorat`` console script,
``HF_HUB_OFFLINE=1``. Every command runs in a subprocess, as a user runs it.

Run alone with ``python -m pytest -m realpath``. The tests of this module share the trained run and
the trees (one xdist group, so they run on one worker).
"""

from __future__ import annotations

import json
import re
import warnings
import zipfile

import av
import numpy as np
import pytest
from realpath_fixtures import (
    HUB_BACKBONE,
    NUM_FRAMES,
    README_BOX,
    REPO,
    add_to_hub_cache,
    official_s224_state_dict,
    offline_env,
    readme_command,
    run_command,
    save_dinov2_small_standin,
    write_coco_tree,
    write_got10k_tree,
    write_lasot_tree,
    write_trackingnet_tree,
    write_video,
)

pytestmark = [pytest.mark.realpath, pytest.mark.xdist_group("realpath")]

README = REPO / "README.md"
TRAINING_README = REPO / "training" / "README.md"
LASOT_TEST, LASOT_TRAIN = ["airplane-1", "bear-2"], ["airplane-3", "bear-1"]  # official test / train names


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Backbone stand-in (folder + Hub cache), the four dataset trees and a video, and the environment."""
    root = tmp_path_factory.mktemp("realpath")
    backbone = save_dinov2_small_standin(root / "dinov2-small")
    add_to_hub_cache(root / "hf_home" / "hub", HUB_BACKBONE, backbone)
    return {
        "root": root,
        "backbone": backbone,
        "env": offline_env(root / "hf_home"),
        "lasot": write_lasot_tree(root / "LaSOT", LASOT_TEST, LASOT_TRAIN),
        "got10k": write_got10k_tree(root / "GOT-10k"),
        "trackingnet": write_trackingnet_tree(root / "TrackingNet"),
        "coco": write_coco_tree(root / "COCO"),
        "video_boxes": write_video(root / "video.mp4"),
        "video": root / "video.mp4",
    }


def _train_command(world, output_dir, *extra: str) -> list[str]:
    command = readme_command(
        README,
        "accelerate launch --config_file training/configs/single_gpu.yaml training/train.py",
        [
            ("--config_file training/configs/single_gpu.yaml ", ""),  # a CPU machine: accelerate's defaults
            ("b-224", "s-224"),
            ("/data/LaSOT", str(world["lasot"])),
            ("/data/GOT-10k", str(world["got10k"])),
            ("/data/TrackingNet", str(world["trackingnet"])),
            ("/data/COCO", str(world["coco"])),
            ("runs/lorat-s-224", str(output_dir)),
        ],
    )
    tiny_run = ["--max_train_steps", "4", "--train_batch_size", "2", "--checkpointing_steps", "2"]
    return [
        *command,
        "--pretrained_backbone",
        str(world["backbone"]),
        *tiny_run,
        "--logging_steps",
        "1",
        *extra,
    ]


def test_readme_single_gpu_command_on_a_cpu_only_machine_fails_in_one_line(world):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: single_gpu.yaml applies")
    command = readme_command(
        README,
        "accelerate launch --config_file training/configs/single_gpu.yaml training/train.py",
        [
            ("b-224", "s-224"),
            ("/data/LaSOT", str(world["lasot"])),
            ("/data/GOT-10k", str(world["got10k"])),
            ("/data/TrackingNet", str(world["trackingnet"])),
            ("/data/COCO", str(world["coco"])),
            ("runs/lorat-s-224", str(world["root"] / "runs" / "fp16-on-cpu")),
        ],
    )
    result = run_command(
        [*command, "--pretrained_backbone", str(world["backbone"])], world["env"], check=False
    )
    assert result.returncode != 0
    assert "train.py: error: fp16 mixed precision needs a GPU and this run is on the CPU" in result.stderr
    assert "mat1 and mat2" not in result.stderr  # not a traceback from inside the first step


def _log_steps(output_dir) -> list[int]:
    lines = (output_dir / "train_log.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


@pytest.fixture(scope="module")
def trained(world):
    """``accelerate launch training/train.py --preset s-224 --pretrained_backbone DIR --dataset lasot:...``
    killed after step 3 (checkpoint at step 2), then resumed with ``--resume_from_checkpoint latest``."""
    output_dir = world["root"] / "runs" / "lorat-s-224"
    killed = run_command(
        _train_command(world, output_dir, "--debug_crash_after_step", "3"), world["env"], check=False
    )
    after_kill = {
        "returncode": killed.returncode,
        "checkpoints": sorted(p.name for p in output_dir.glob("checkpoint-*")),
        "log_steps": _log_steps(output_dir),
    }
    resumed = run_command(
        _train_command(world, output_dir, "--resume_from_checkpoint", "latest"), world["env"]
    )
    return {"output_dir": output_dir, "after_kill": after_kill, "resumed": resumed}


def test_readme_training_command_trains_on_all_four_layouts_and_resumes_after_a_kill(trained, world):
    after_kill = trained["after_kill"]
    assert after_kill["returncode"] != 0  # SIGKILLed after step 3
    assert after_kill["checkpoints"] == ["checkpoint-2"]
    assert after_kill["log_steps"] == [1, 2, 3]

    output_dir, log = trained["output_dir"], trained["resumed"].stderr
    assert "resumed from" in log and "checkpoint-2 at step 2" in log
    assert "trainable parameters: 5902853 (expected 5902853)" in log  # the S-224 LoRA + head + token types
    assert "FutureWarning" not in log  # peft's is_gradient_checkpointing read is answered quietly
    # the steps between the checkpoint and the kill are trained again, and logged once
    assert _log_steps(output_dir) == [1, 2, 3, 4]
    assert sorted(p.name for p in output_dir.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    state = json.loads((output_dir / "checkpoint-4" / "training_state.json").read_text())
    assert state["global_step"] == 4 and len(state["datasets"]) == 4
    assert [spec.split(":")[0] for spec in state["datasets"]] == ["lasot", "got10k", "trackingnet", "coco"]
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "config.json",
        "preprocessor_config.json",
    ):
        assert (output_dir / name).is_file(), name
    config = json.loads((output_dir / "config.json").read_text())
    assert config["backbone_name_or_path"] == str(world["backbone"].resolve())
    assert config["search_size"] == 224 and config["backbone_config"]["hidden_size"] == 384
    losses = [json.loads(line)["loss"] for line in (output_dir / "train_log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(losses))


def test_from_pretrained_output_dir_merges_the_trained_adapter(trained, world):
    import torch
    from safetensors.torch import load_file

    from modeling_lorat import LoratForTracking

    output_dir = trained["output_dir"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        merged = LoratForTracking.from_pretrained(output_dir).eval()
        unmerged = LoratForTracking.from_pretrained(output_dir, merge_lora=False).eval()
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]  # no deprecated transformers API
    backbone = load_file(str(world["backbone"] / "model.safetensors"))
    adapter = load_file(str(output_dir / "adapter_model.safetensors"))
    assert any("lora_A" in k for k in adapter) and not any("backbone.embeddings.patch" in k for k in adapter)
    # LoRA was merged into the q projection of the first block: W + B A (scaling 1 for r = alpha = 64)
    q_base = backbone["encoder.layer.0.attention.attention.query.weight"]  # the Hub's Dinov2 names
    q_merged = merged.backbone.encoder.layer[0].attention.q_proj.weight
    a = next(v for k, v in adapter.items() if "layer.0.attention.q_proj.lora_A" in k)
    b = next(v for k, v in adapter.items() if "layer.0.attention.q_proj.lora_B" in k)
    torch.testing.assert_close(q_merged, q_base + b @ a, atol=1e-5, rtol=1e-5)
    g = torch.Generator().manual_seed(0)
    inputs = dict(
        pixel_values_template=torch.randn(1, 3, 112, 112, generator=g),
        pixel_values_search=torch.randn(1, 3, 224, 224, generator=g),
        template_mask=torch.ones(1, 8, 8, dtype=torch.bool),
    )
    with torch.no_grad():
        out_merged, out_unmerged = merged(**inputs), unmerged(**inputs)
    torch.testing.assert_close(out_merged.pred_boxes, out_unmerged.pred_boxes, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out_merged.score_map, out_unmerged.score_map, atol=1e-4, rtol=1e-4)


def test_readme_track_command_on_a_video(trained, world):
    out = world["root"] / "track"
    out.mkdir()
    command = readme_command(
        README,
        "lorat track video.mp4",
        [
            ("annotated.mp4", str(out / "annotated.mp4")),
            ("boxes.txt", str(out / "boxes.txt")),
            ("video.mp4", str(world["video"])),
            ("org/lorat-b-224", str(trained["output_dir"])),
        ],
    )
    result = run_command(command, world["env"])
    frames = len(world["video_boxes"])
    assert f"tracked {frames} frames" in result.stderr
    boxes = np.loadtxt(out / "boxes.txt", delimiter=",", ndmin=2)
    assert boxes.shape == (frames, 4) and np.isfinite(boxes).all()
    np.testing.assert_allclose(boxes[0], README_BOX)
    assert (
        (boxes[:, 2:] > 0).all()
        and (boxes[:, 0] >= 0).all()
        and (boxes[:, 0] + boxes[:, 2] <= 160 + 1e-6).all()
    )
    with av.open(str(out / "annotated.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == frames


@pytest.fixture(scope="module")
def lasot_run(trained, world):
    """``lorat evaluate --model ... --dataset lasot --root LaSOT --output runs/b224-lasot``."""
    output = world["root"] / "runs" / "b224-lasot"
    command = readme_command(
        README,
        "lorat evaluate --model",
        [
            ("org/lorat-b-224", str(trained["output_dir"])),
            ("/data/LaSOT", str(world["lasot"])),
            ("runs/b224-lasot", str(output)),
        ],
    )
    return output, run_command(command, world["env"])


def test_readme_evaluate_command_on_the_lasot_tree(lasot_run, world):
    output, result = lasot_run
    summary = json.loads((output / "summary.json").read_text())
    assert summary["dataset"] == "lasot" and summary["split"] == "test"
    assert set(summary["metrics"]) >= {"success_auc", "precision", "norm_precision"}
    assert all(0.0 <= v <= 1.0 for v in summary["metrics"].values())
    assert sorted(p.stem for p in (output / "results").glob("*-*.txt") if "_time" not in p.stem) == LASOT_TEST
    for name in LASOT_TEST:
        lines = (output / "results" / f"{name}.txt").read_text().splitlines()
        assert len(lines) == NUM_FRAMES
        gt_first = (
            (world["lasot"] / name.split("-")[0] / name / "groundtruth.txt").read_text().splitlines()[0]
        )
        # frame 0 is the given box, written back in LaSOT's 1-based convention
        np.testing.assert_allclose(np.array(lines[0].split(","), float), np.array(gt_first.split(","), float))
    for plot in ("success_plot.png", "precision_plot.png", "norm_precision_plot.png"):
        assert (output / plot).stat().st_size > 1000, plot
    assert f"summary: {output / 'summary.json'}" in result.stdout


def test_readme_plot_command_compares_two_runs(lasot_run, world):
    from modeling_lorat.data import get_dataset
    from modeling_lorat.evaluation.results_io import result_file_offset, write_sequence_results

    output, _ = lasot_run
    other = world["root"] / "runs" / "other-lasot"
    for seq in get_dataset("lasot", world["lasot"]):  # a tracker that repeats the first box
        boxes = np.repeat(seq.boxes[:1], len(seq), axis=0)
        write_sequence_results(
            other / "results", seq.name, boxes, np.zeros(len(seq)), offset=result_file_offset("lasot")
        )
    plots = world["root"] / "plots"
    command = readme_command(
        README,
        "lorat plot",
        [
            ("runs/b224-lasot", str(output)),
            ("runs/other-lasot", str(other)),
            ("/data/LaSOT", str(world["lasot"])),
            ("plots/", str(plots)),
        ],
    )
    result = run_command(command, world["env"])
    assert "b224-lasot" in result.stdout and "other-lasot" in result.stdout
    assert (plots / "success_plot.png").stat().st_size > 1000


def test_readme_evaluate_and_package_submission_on_the_got10k_tree(trained, world):
    output = world["root"] / "runs" / "b224-got10k"
    evaluate = readme_command(
        README,
        "lorat evaluate --model",
        [
            ("org/lorat-b-224", str(trained["output_dir"])),
            ("--dataset lasot", "--dataset got10k"),
            ("/data/LaSOT", str(world["got10k"])),
            ("runs/b224-lasot", str(output)),
        ],
    )
    result = run_command(evaluate, world["env"])
    assert "lorat package-submission --dataset got10k" in result.stdout  # the test split has no ground truth
    zip_path = world["root"] / "got10k_submission.zip"
    package = readme_command(
        README,
        "lorat package-submission",
        [("runs/b224-got10k", str(output)), ("got10k_submission.zip", str(zip_path))],
    )
    assert "wrote" in run_command(package, world["env"]).stdout
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(name for name in archive.namelist() if not name.endswith("/"))
        assert names == sorted(
            f"GOT-10k_Test_00000{i}/GOT-10k_Test_00000{i}_{kind}.txt"
            for i in (1, 2)
            for kind in ("001", "time")
        )
        first = archive.read("GOT-10k_Test_000001/GOT-10k_Test_000001_001.txt").decode().splitlines()
    assert len(first) == NUM_FRAMES
    gt = (world["got10k"] / "test" / "GOT-10k_Test_000001" / "groundtruth.txt").read_text().split(",")
    np.testing.assert_allclose(np.array(first[0].split(","), float), np.round(np.array(gt, float)), atol=1.0)


_COMPARE = """
import sys, torch
from modeling_lorat import LoratForTracking
full = LoratForTracking.from_pretrained(sys.argv[1]).eval()
adapter = LoratForTracking.from_pretrained(sys.argv[2]).eval()
g = torch.Generator().manual_seed(0)
inputs = dict(pixel_values_template=torch.randn(1, 3, 112, 112, generator=g),
              pixel_values_search=torch.randn(1, 3, 224, 224, generator=g),
              template_mask=torch.ones(1, 8, 8, dtype=torch.bool))
with torch.no_grad():
    a, b = full(**inputs), adapter(**inputs)
print(adapter.config.backbone_name_or_path)
print(max((a.pred_boxes - b.pred_boxes).abs().max().item(), (a.score_map - b.score_map).abs().max().item()))
print(a.score_map.std().item())
"""


def _compare(world, first, second) -> tuple[str, float, float]:
    result = run_command(["python", "-c", _COMPARE, str(first), str(second)], world["env"])
    name, diff, spread = result.stdout.strip().splitlines()[-3:]
    return name, float(diff), float(spread)


@pytest.fixture(scope="module")
def converted(world):
    """``lorat convert`` (full and adapter form) of an official-format S-224 checkpoint."""
    import torch

    original = world["root"] / "LoRAT_S_224.pth"
    torch.save(official_s224_state_dict(world["backbone"]), original)
    outputs, results = {}, {}
    for form, output, contains in (
        ("full", "lorat-b-224", ""),
        ("adapter", "lorat-b-224-adapter", "--form adapter"),
    ):
        outputs[form] = world["root"] / output.replace("b-224", "s-224")
        command = readme_command(
            README,
            "lorat convert --original",
            [
                ("LoRAT_B_224.pth", str(original)),
                ("--preset b-224", "--preset s-224"),
                (f"--output {output}", f"--output {outputs[form]}"),
            ],
            contains=contains,
        )
        results[form] = run_command(command, world["env"])
    return outputs, results


def test_readme_convert_commands_on_an_official_s224_checkpoint(converted, world):
    outputs, results = converted
    for form in ("full", "adapter"):
        assert f"wrote {form} checkpoint to {outputs[form]}" in results[form].stdout
    assert (outputs["full"] / "model.safetensors").is_file()
    assert (outputs["adapter"] / "adapter_model.safetensors").is_file()
    assert not (outputs["adapter"] / "model.safetensors").exists()
    # the adapter names the Hub backbone, which loads offline from the Hub cache, and equals the full form
    name, diff, spread = _compare(world, outputs["full"], outputs["adapter"])
    assert name == HUB_BACKBONE
    assert diff < 1e-4 < spread


def test_readme_push_command_offline_dry_run_and_export_to_a_local_folder(
    converted, trained, lasot_run, world
):
    summary_path = lasot_run[0] / "summary.json"
    model = converted[0]["full"]
    command = readme_command(
        README,
        "lorat push",
        [
            ("org/lorat-b-224", "org/lorat-s-224"),
            ("--model lorat-b-224", f"--model {model}"),
            ("runs/b224-lasot/summary.json", str(summary_path)),
        ],
    )
    # offline, the upload itself is refused in one line and nothing is sent
    refused = run_command(command, world["env"], check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "HF_HUB_OFFLINE is set, nothing was uploaded" in refused.stderr.strip().splitlines()[-1]
    dry = run_command([*command, "--dry-run"], world["env"])
    assert dry.stdout.startswith("would upload to org/lorat-s-224")
    listed = [line.strip() for line in dry.stdout.splitlines()[1:]]
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md"} <= set(listed)
    assert not [name for name in listed if name.endswith((".bin", ".pth", ".pt"))]
    summary = json.loads(summary_path.read_text())
    card_auc = re.search(r"\| LaSOT \| test \| Success AUC ([\d.]+)", (model / "README.md").read_text())
    assert card_auc and abs(float(card_auc.group(1)) - summary["metrics"]["success_auc"] * 100) < 0.06

    # the trained adapter exported to a local folder in its Hub form, naming the Hub backbone: it loads
    # offline (the backbone from the Hub cache) and equals the training output
    exported = world["root"] / "pushed-adapter"
    adapter = trained["output_dir"]
    export = readme_command(
        README,
        "lorat push",
        [
            ("org/lorat-b-224", "org/lorat-s-224-adapter"),
            ("--model lorat-b-224", f"--model {adapter}"),
            ("runs/b224-lasot/summary.json", str(summary_path)),
        ],
    )
    run_command(
        [*export, "--adapter-only", "--base-model", HUB_BACKBONE, "--output-dir", str(exported), "--dry-run"],
        world["env"],
    )
    assert json.loads((exported / "config.json").read_text())["backbone_name_or_path"] == HUB_BACKBONE
    name, diff, spread = _compare(world, adapter, exported)
    assert name == HUB_BACKBONE and diff < 1e-4 < spread
