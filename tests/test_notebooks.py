"""Execute the example notebooks (tiny mode) with nbclient and check what they produce."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NAMES = ("quickstart", "finetune", "evaluate")


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOK_DIR / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebooks_match_their_generator_and_have_no_outputs():
    assert _builder().main(["--check"]) == 0
    for name in NAMES:
        notebook = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name}: committed with outputs"


def _text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output["text"])
            elif "data" in output and "text/plain" in output["data"]:
                parts.append(output["data"]["text/plain"])
    return "".join(parts)


def _images(notebook) -> int:
    return sum("image/png" in o.get("data", {}) for c in notebook.cells for o in c.get("outputs", []))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes(name, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("LORAT_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    text = _text(notebook)
    assert "tiny mode" in text

    if name == "quickstart":
        assert _images(notebook) == 1
        assert "mean IoU" in text and "wrote quickstart_tracked.mp4 with 8 frames" in text
        assert (tmp_path / "quickstart_tracked.mp4").stat().st_size > 0
    elif name == "finetune":
        assert len(list((tmp_path / "my_videos_parquet" / "data").glob("train-*.parquet"))) == 2
        assert (tmp_path / "lorat-finetuned" / "adapter_model.safetensors").is_file()
        assert "HF_TOKEN is not set: skipping the push" in text
        assert (tmp_path / "export" / "lorat-custom-56" / "model.safetensors").is_file()
        assert (tmp_path / "export" / "lorat-custom-56-adapter" / "adapter_model.safetensors").is_file()
    else:
        assert _images(notebook) == 1
        summary = json.loads((tmp_path / "runs" / "synthetic" / "summary.json").read_text())
        assert summary["num_evaluated"] == 3
        assert f"{100 * summary['metrics']['success_auc']:.1f} %" in text
        assert "type: success_auc" in text  # the model-index printed from the rendered card
