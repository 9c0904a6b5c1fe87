"""Checkpoint export + push to a local stand-in for the Hub transport, then reload and compare outputs."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, RepoUrl
from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS
from huggingface_hub.utils import filter_repo_objects
from peft import PeftModel

from hub_cards import export_checkpoint, files_to_upload, push_to_hub, repo_name_for
from modeling_lorat import LoratConfig, LoratForTracking
from modeling_lorat.cli import main as cli_main
from modeling_lorat.configuration_lorat import remote_code_files
from modeling_lorat.lora import apply_lora
from modeling_lorat.testing_utils import tiny_config, tiny_dinov2

#: The code every checkpoint ships (tests/test_remote_code.py proves it loads without the package).
CODE_FILES = {path.name for paths in remote_code_files().values() for path in paths}
COMMON = {"README.md", "config.json", "preprocessor_config.json"} | CODE_FILES
ADAPTER_FILES = COMMON | {"adapter_config.json", "adapter_model.safetensors"}
MERGED_FILES = COMMON | {"model.safetensors"}
PICKLES = (".bin", ".pt", ".pth", ".ckpt")


class LocalHub:
    """Stand-in for ``HfApi``: ``upload_folder`` filters files exactly like the real client
    (``filter_repo_objects`` + the default ignore patterns) and copies them into ``root/<repo_id>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.created: list[dict] = []
        self.uploads: list[dict] = []

    def create_repo(self, repo_id: str, **kwargs) -> RepoUrl:
        self.created.append({"repo_id": repo_id, **kwargs})
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(
        self, *, repo_id: str, folder_path: str, allow_patterns=None, ignore_patterns=None, **kwargs
    ):
        folder = Path(folder_path)
        paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        kept = list(
            filter_repo_objects(
                paths,
                allow_patterns=allow_patterns,
                ignore_patterns=list(ignore_patterns or []) + DEFAULT_IGNORE_PATTERNS,
            )
        )
        remote = self.root / repo_id
        for rel in kept:
            (remote / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / rel, remote / rel)
        self.uploads.append({"repo_id": repo_id, "files": kept, **kwargs})
        return None


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A peft-wrapped tiny tracker built on a locally saved tiny DINOv2 (its ``backbone_name_or_path``)."""
    root = tmp_path_factory.mktemp("hub_push")
    backbone_dir = root / "dinov2-tiny"
    tiny_dinov2(seed=3).save_pretrained(backbone_dir)
    base = LoratForTracking.from_backbone(
        str(backbone_dir), config=tiny_config(backbone_name_or_path=str(backbone_dir))
    )
    torch.manual_seed(0)
    model = apply_lora(base).eval()
    return model, root


def _inputs(config, batch: int = 2, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    t, s, g = config.template_size, config.search_size, config.template_grid
    return {
        "pixel_values_template": torch.randn(batch, 3, t, t, generator=gen),
        "pixel_values_search": torch.randn(batch, 3, s, s, generator=gen),
        "template_mask": torch.randint(0, 2, (batch, g, g), generator=gen),
    }


@torch.no_grad()
def _outputs(model, inputs) -> tuple[torch.Tensor, torch.Tensor]:
    out = model.eval()(**inputs)
    return out.score_map, out.pred_boxes


def _add_junk(folder: Path) -> None:
    """Files a training output folder may hold next to the checkpoint; none of them may be uploaded."""
    for name in ("optimizer.bin", "pytorch_model.bin", "model.pt", "scheduler.pth", "last.ckpt", "notes.txt"):
        (folder / name).write_bytes(b"not uploaded")
    (folder / ".hidden.json").write_text("{}")
    (folder / "checkpoint-10").mkdir(exist_ok=True)
    (folder / "checkpoint-10" / "model.safetensors").write_bytes(b"nested checkpoint")


def test_shipped_code_covers_config_model_processor_and_pipeline():
    modules = {"configuration_lorat", "modeling_lorat", "image_processing_lorat", "pipeline_lorat"}
    assert set(remote_code_files()) == modules
    # each module with what it imports: the pipeline needs the tracker, the processor its crop geometry
    assert {f"{m}.py" for m in modules} | {
        "tracking_lorat.py",
        "cropping.py",
        "box_ops.py",
        "lora.py",
    } <= CODE_FILES
    assert "video_io.py" not in CODE_FILES  # PyAV and a sub-package import: never shipped


def test_repo_names_follow_the_scheme():
    assert repo_name_for(LoratConfig.from_preset("b-224")) == "lorat-b-224"
    assert repo_name_for(LoratConfig.from_preset("b-224"), "adapter") == "lorat-b-224-adapter"
    assert repo_name_for(LoratConfig.from_preset("g-378"), "merged") == "lorat-g-378"
    assert repo_name_for(LoratConfig.from_preset("s-378"), "adapter") == "lorat-s-378-adapter"
    assert repo_name_for(tiny_config()) == "lorat-custom-56"


def test_push_adapter_uploads_safe_files_and_reloads(source, tmp_path):
    model, root = source
    inputs = _inputs(model.config)
    reference = _outputs(model, inputs)
    folder = export_checkpoint(model, tmp_path / "adapter", "adapter", repo_id="me/lorat-custom-56-adapter")
    _add_junk(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["backbone_name_or_path"] == str(root / "dinov2-tiny")
    assert config["auto_map"] == {
        "AutoConfig": "configuration_lorat.LoratConfig",
        "AutoModel": "modeling_lorat.LoratForTracking",
        "AutoImageProcessor": "image_processing_lorat.LoratImageProcessor",
    }
    assert config["custom_pipelines"]["single-object-tracking"]["impl"] == (
        "pipeline_lorat.SingleObjectTrackingPipeline"
    )
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    assert processor["auto_map"] == {"AutoImageProcessor": "image_processing_lorat.LoratImageProcessor"}
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(root / "dinov2-tiny")  # peft's field, not null

    hub = LocalHub(tmp_path / "remote")
    url = push_to_hub(
        folder, "me/lorat-custom-56-adapter", private=True, commit_message="adapter v1", api=hub
    )

    assert url == "https://huggingface.co/me/lorat-custom-56-adapter"
    assert hub.created == [
        {"repo_id": "me/lorat-custom-56-adapter", "private": True, "exist_ok": True, "repo_type": "model"}
    ]
    assert hub.uploads[0]["commit_message"] == "adapter v1"
    remote = tmp_path / "remote" / "me" / "lorat-custom-56-adapter"
    uploaded = {p.relative_to(remote).as_posix() for p in remote.rglob("*") if p.is_file()}
    assert uploaded == ADAPTER_FILES
    assert not any(name.endswith(PICKLES) for name in uploaded)
    weights = {n for n in uploaded if n not in COMMON and n != "adapter_config.json"}
    assert weights == {"adapter_model.safetensors"}
    assert "peft" in (remote / "README.md").read_text()

    merged = LoratForTracking.from_pretrained(str(remote))
    assert not any("lora_" in name for name, _ in merged.named_parameters())
    for got, want in zip(_outputs(merged, inputs), reference):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    unmerged = LoratForTracking.from_pretrained(str(remote), merge_lora=False)
    assert isinstance(unmerged, PeftModel)
    for got, want in zip(_outputs(unmerged, inputs), reference):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_push_merged_is_exact_and_leaves_the_source_untouched(source, tmp_path):
    model, _ = source
    inputs = _inputs(model.config, seed=1)
    reference = _outputs(model, inputs)
    expected = _outputs(copy.deepcopy(model).merge_and_unload(), inputs)
    folder = export_checkpoint(model, tmp_path / "merged", "merged", repo_id="me/lorat-custom-56")
    _add_junk(folder)
    hub = LocalHub(tmp_path / "remote")
    push_to_hub(folder, "me/lorat-custom-56", api=hub)

    remote = tmp_path / "remote" / "me" / "lorat-custom-56"
    uploaded = {p.name for p in remote.iterdir()}
    assert uploaded == MERGED_FILES
    assert set(hub.uploads[0]["files"]) == MERGED_FILES
    loaded = LoratForTracking.from_pretrained(str(remote))
    assert type(loaded) is LoratForTracking
    for got, want in zip(_outputs(loaded, inputs), expected):
        assert torch.equal(got, want)
    for got, want in zip(_outputs(loaded, inputs), reference):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    # the export merged a copy: the source still has its LoRA layers and its outputs
    assert any("lora_A" in name for name, _ in model.named_parameters())
    for got, want in zip(_outputs(model, inputs), reference):
        assert torch.equal(got, want)


def test_full_form_from_an_adapter_folder_equals_merged(source, tmp_path):
    model, _ = source
    adapter = export_checkpoint(model, tmp_path / "adapter", "adapter", model_card=False)
    assert not (adapter / "README.md").exists()  # peft's placeholder card is removed
    full = export_checkpoint(adapter, tmp_path / "full", "full", model_card=False)
    assert {p.name for p in full.iterdir()} == MERGED_FILES - {"README.md"}
    inputs = _inputs(model.config, seed=2)
    for got, want in zip(
        _outputs(LoratForTracking.from_pretrained(str(full)), inputs), _outputs(model, inputs)
    ):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="full checkpoint"):
        export_checkpoint(full, tmp_path / "again", "adapter")


def test_adapter_export_needs_lora_and_a_backbone_id(source, tmp_path):
    model, _ = source
    merged = copy.deepcopy(model).merge_and_unload()
    with pytest.raises(ValueError, match="form='merged'"):
        export_checkpoint(merged, tmp_path / "a", "adapter")
    with pytest.raises(ValueError, match="unknown checkpoint form"):
        export_checkpoint(model, tmp_path / "b", "pickle")
    no_id = copy.deepcopy(model)
    no_id.get_base_model().config.backbone_name_or_path = None
    with pytest.raises(ValueError, match="backbone_name_or_path"):
        export_checkpoint(no_id, tmp_path / "c", "adapter")
    folder = export_checkpoint(
        no_id, tmp_path / "d", "adapter", backbone_name_or_path="facebook/dinov2-small"
    )
    assert (
        json.loads((folder / "config.json").read_text())["backbone_name_or_path"] == "facebook/dinov2-small"
    )
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "facebook/dinov2-small"  # peft's field follows the override
    with pytest.raises(FileNotFoundError, match="not found"):
        export_checkpoint(tmp_path / "missing", tmp_path / "e", "merged")


def test_pickle_only_folder_is_refused(source, tmp_path):
    model, _ = source
    folder = tmp_path / "pickled"
    folder.mkdir()
    model.get_base_model().config.save_pretrained(folder)
    torch.save({"w": torch.zeros(1)}, folder / "pytorch_model.bin")
    hub = LocalHub(tmp_path / "remote")
    with pytest.raises(ValueError, match=r"no safetensors weights.*pytorch_model\.bin"):
        push_to_hub(folder, "me/bad", api=hub)
    assert hub.created == [] and hub.uploads == []


def test_default_api_writes_missing_card_and_sends_allow_patterns(source, tmp_path, monkeypatch):
    model, _ = source
    folder = export_checkpoint(model, tmp_path / "merged", "merged", model_card=False)
    (folder / "optimizer.pt").write_bytes(b"x")
    calls = {}

    def create_repo(self, **kwargs):
        calls["create"] = kwargs
        return RepoUrl(f"https://huggingface.co/{kwargs['repo_id']}")

    def upload_folder(self, **kwargs):
        calls["upload"] = kwargs

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    summary = {"dataset": "got10k", "split": "val", "metrics": {"ao": 0.5, "sr50": 0.6, "sr75": 0.25}}
    url = push_to_hub(folder, "me/m", eval_summaries=[summary])

    assert url == "https://huggingface.co/me/m"
    assert calls["create"] == {"repo_id": "me/m", "private": False, "exist_ok": True, "repo_type": "model"}
    upload = calls["upload"]
    assert sorted(upload["allow_patterns"]) == sorted(MERGED_FILES)
    assert {"*.bin", "*.pt", "*.pth", "*.ckpt"} <= set(upload["ignore_patterns"])
    assert upload["folder_path"] == str(folder) and upload["repo_id"] == "me/m"
    card = (folder / "README.md").read_text()
    assert "type: ao" in card and "value: 50.0" in card and "# m\n" in card
    assert files_to_upload(folder) == sorted(MERGED_FILES)


def test_cli_push(source, tmp_path, monkeypatch, capsys):
    model, _ = source
    adapter = export_checkpoint(model, tmp_path / "adapter", "adapter", model_card=False)
    code = cli_main(
        ["push", "--model", str(adapter), "--repo-id", "me/x-adapter", "--adapter-only", "--dry-run"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "would upload to me/x-adapter" in out
    assert {line.strip() for line in out.splitlines()[1:]} == ADAPTER_FILES

    uploads = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # the Hub API is mocked; offline, push refuses to upload
    monkeypatch.setattr(
        HfApi, "create_repo", lambda self, **kw: RepoUrl(f"https://huggingface.co/{kw['repo_id']}")
    )
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: uploads.append(kw))
    keep = tmp_path / "staged"
    code = cli_main(
        [
            "push",
            "--model",
            str(adapter),
            "--repo-id",
            "me/x",
            "--merged",
            "--private",
            "--output-dir",
            str(keep),
        ]
    )
    assert code == 0
    assert "pushed" in capsys.readouterr().out
    assert sorted(uploads[0]["allow_patterns"]) == sorted(MERGED_FILES)
    assert (keep / "model.safetensors").is_file() and "me/x" in (keep / "README.md").read_text()

    assert cli_main(["push", "--model", str(tmp_path / "nope"), "--repo-id", "me/x"]) == 2
    assert "lorat push: error: model folder not found" in capsys.readouterr().err
