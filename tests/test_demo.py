"""`lorat demo` end to end with a tiny budget: every artefact exists and loads; a rerun reuses them."""

from __future__ import annotations

import json

import av
import pytest

from modeling_lorat import LoratForTracking
from modeling_lorat.cli import main as cli_main


@pytest.mark.slow
def test_demo_pipeline_small_budget(tmp_path, capsys):
    args = [
        "demo",
        "--workdir",
        str(tmp_path),
        "--train-steps",
        "6",
        "--test-sequences",
        "2",
        "--test-frames",
        "8",
    ]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    for step in range(1, 7):
        assert f"[{step}/6]" in out
    model_dir = tmp_path / "model"
    assert (model_dir / "adapter_model.safetensors").is_file() and (
        model_dir / "adapter_config.json"
    ).is_file()
    assert not list(model_dir.glob("*.bin"))
    model = LoratForTracking.from_pretrained(model_dir)
    assert model.config.backbone_config.num_hidden_layers == 4

    summary = json.loads((tmp_path / "eval" / "lorat" / "summary.json").read_text())
    assert set(summary["metrics"]) == {"success_auc", "precision", "norm_precision"}
    assert 0.0 <= summary["metrics"]["success_auc"] <= 1.0
    assert (tmp_path / "eval" / "lorat" / "success_plot.png").stat().st_size > 1000
    assert "first_box" in out and "SUC" in out  # both trackers printed side by side
    with av.open(str(tmp_path / "annotated.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 8

    # a second run reuses the data, the adapter and the results
    assert cli_main(args) == 0
    assert "reusing the trained adapter" in capsys.readouterr().out
