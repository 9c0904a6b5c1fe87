"""Model card rendering: metadata, model-index from a real ``lorat evaluate`` summary, runnable snippets."""

from __future__ import annotations

import json
import re
import shlex

import pytest
import torch
import yaml
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import model_index_to_eval_results

from hub_cards import export_checkpoint, load_eval_summary, render_model_card
from modeling_lorat import LoratConfig, LoratForTracking
from modeling_lorat.cli import main as cli_main
from modeling_lorat.data.synthetic import make_synthetic_sequence, write_synthetic_benchmark
from modeling_lorat.lora import apply_lora
from modeling_lorat.testing_utils import tiny_config, tiny_dinov2
from modeling_lorat.video_io import AnnotatedVideoWriter

GOT10K_SUMMARY = {"dataset": "got10k", "split": "val", "metrics": {"ao": 0.6612, "sr50": 0.75, "sr75": 0.5}}


@pytest.fixture(scope="module")
def eval_summary(tiny_checkpoint, tmp_path_factory):
    """``summary.json`` written by ``lorat evaluate`` on a 2-sequence synthetic benchmark."""
    root = tmp_path_factory.mktemp("card_eval")
    bench = write_synthetic_benchmark(root / "bench", 2, seed=0, num_frames=5, frame_size=(96, 72))
    args = ["evaluate", "--model", str(tiny_checkpoint), "--dataset", "synthetic", "--root", str(bench)]
    args += ["--output", str(root / "run"), "--batch-size", "2", "--device", "cpu", "--no-progress"]
    assert cli_main(args) == 0
    return root / "run" / "summary.json"


@pytest.fixture(scope="module")
def adapter_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("card_adapter")
    tiny_dinov2(seed=1).save_pretrained(root / "dinov2")
    base = LoratForTracking.from_backbone(
        str(root / "dinov2"), config=tiny_config(backbone_name_or_path=str(root / "dinov2"))
    )
    return export_checkpoint(apply_lora(base), root / "adapter", "adapter", model_card=False)


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _front_matter(text: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", text, flags=re.S)
    assert match, "the card must start with YAML front matter"
    return yaml.safe_load(match.group(1))


def test_card_metadata_and_model_index_round_trip(tiny_checkpoint, eval_summary):
    summary = json.loads(eval_summary.read_text())
    assert summary["dataset"] == "synthetic" and set(summary["metrics"]) == {
        "success_auc",
        "precision",
        "norm_precision",
    }
    card = render_model_card(tiny_checkpoint, "me/lorat-tiny", [eval_summary.parent, GOT10K_SUMMARY])

    data = card.data.to_dict()
    assert data["license"] == "apache-2.0"
    assert data["pipeline_tag"] == "object-detection"
    assert data["library_name"] == "transformers"
    assert {"tracking", "single-object-tracking", "lora", "dinov2"} <= set(data["tags"])
    assert "base_model" not in data  # the tiny checkpoint has no Hub backbone id

    name, results = model_index_to_eval_results(data["model-index"])
    assert name == "lorat-tiny"
    got = {(r.dataset_type, r.metric_type): r.metric_value for r in results}
    expected = {("synthetic", k): round(v * 100, 2) for k, v in summary["metrics"].items()}
    expected |= {("got10k", "ao"): 66.12, ("got10k", "sr50"): 75.0, ("got10k", "sr75"): 50.0}
    assert got == expected
    assert {r.task_type for r in results} == {"object-detection"}
    assert {r.dataset_split for r in results if r.dataset_type == "got10k"} == {"val"}
    assert [r.metric_name for r in results if r.dataset_type == "got10k"] == ["AO", "SR@0.5", "SR@0.75"]

    # what the Hub parses back: YAML front matter -> ModelCardData with the same eval results
    text = str(card)
    reparsed = ModelCardData(**_front_matter(text))
    assert reparsed.eval_results == results and reparsed.model_name == "lorat-tiny"
    assert ModelCard(text).data.to_dict() == data
    auc = round(summary["metrics"]["success_auc"] * 100, 1)
    assert "| Synthetic | " in text and f"Success AUC {auc:.1f}" in text
    assert "| GOT-10k | val | AO 66.1, SR@0.5 75.0, SR@0.75 50.0 |" in text
    for needle in (
        "Tracking Meets LoRA",
        "Oquab",
        "## Limitations",
        "## Training",
        "## Speed",
        "lorat-b-224-adapter",
    ):
        assert needle in text


def test_preset_card_names_its_dinov2_base(tmp_path):
    folder = tmp_path / "b224"
    LoratConfig.from_preset("b-224").save_pretrained(folder)
    records = [{"step": 10, "loss": 3.0}, {"step": 20, "loss": 1.23456, "loss_cls": 0.5, "loss_box": 0.73456}]
    (folder / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    card = render_model_card(folder, "me/lorat-b-224")
    data = card.data.to_dict()
    assert data["base_model"] == "facebook/dinov2-base" and data["base_model_relation"] == "finetune"
    assert "model-index" not in data
    text = str(card)
    assert "**LoRAT-B-224**" in text and "| b-224 (this variant) | 71.7 |" in text
    assert "| b-224 (this variant) | 209 | 30 | 99M |" in text
    assert "me/lorat-b-224-adapter" in text
    assert "This checkpoint: 20 optimisation steps" in text
    assert "final\ntraining loss 1.2346 (classification 0.5000, box 0.7346)." in text


def test_bad_summaries_are_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="summary.json"):
        load_eval_summary(tmp_path)
    with pytest.raises(ValueError, match="dataset"):
        load_eval_summary({"metrics": {"ao": 0.5}})
    with pytest.raises(ValueError, match="metrics"):
        load_eval_summary({"dataset": "lasot", "metrics": {"accuracy": 0.5}})
    with pytest.raises(FileNotFoundError, match="config.json"):
        render_model_card(tmp_path, "me/x")


def _write_video(path, frames) -> None:
    with AnnotatedVideoWriter(path, fps=10, size=(frames[0].shape[1], frames[0].shape[0])) as writer:
        for frame in frames:
            writer.write(frame)


@pytest.mark.parametrize("form", ["merged", "adapter"])
def test_card_snippets_run(form, tiny_checkpoint, adapter_checkpoint, tmp_path, monkeypatch, capsys):
    folder = tiny_checkpoint if form == "merged" else adapter_checkpoint
    repo_id = "someone/lorat-tiny" + ("-adapter" if form == "adapter" else "")
    text = str(render_model_card(folder, repo_id))
    blocks = _python_blocks(text)
    assert len(blocks) == 3 and all(repo_id in block for block in blocks)
    sequence = make_synthetic_sequence(seed=2, num_frames=4, frame_size=(96, 72))
    monkeypatch.chdir(tmp_path)
    _write_video(tmp_path / "video.mp4", [sequence.load_frame(i) for i in range(len(sequence))])

    outputs = []
    for block in blocks:
        code = block.replace(f'"{repo_id}"', repr(str(folder)))
        exec(compile(code, f"<card snippet {form}>", "exec"), {"__name__": "__card__"})
        outputs.append(capsys.readouterr().out.strip().splitlines())
    tracker_lines, pipeline_lines, extra_lines = outputs
    (command,) = re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)
    argv = shlex.split(command.replace(repo_id, str(folder)))
    assert argv[0] == "lorat" and cli_main(argv[1:]) == 0
    assert (tmp_path / "tracked.mp4").stat().st_size > 0
    assert len((tmp_path / "boxes.txt").read_text().splitlines()) == 4
    assert [line.split()[0] for line in tracker_lines] == [str(i) for i in range(1, 8)]
    assert len(pipeline_lines) == 4 and pipeline_lines[0] == "0 [40.0, 30.0, 32.0, 32.0] 1.0"
    if form == "merged":
        assert extra_lines == [f"{torch.Size([1, 4, 4])} {torch.Size([1, 4, 4, 4])}"]
    else:
        assert extra_lines[0].startswith("trainable params:")
