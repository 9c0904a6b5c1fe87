"""Golden fidelity: official LoRAT outputs (fixtures made by tools/make_golden_fixtures.py from the
official code) are reproduced by conversion + this package's forward, LoRA unmerged and merged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from modeling_lorat import LoratConfig, LoratForTracking
from modeling_lorat import convert_lorat_original_to_hf as convert
from modeling_lorat.cli import main as cli_main

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
META = json.loads((GOLDEN / "meta.json").read_text())
ATOL = 1e-4


def golden_config(variant: str) -> LoratConfig:
    spec = META["variants"][variant]
    backbone = dict(
        hidden_size=META["embed_dim"],
        num_hidden_layers=META["depth"],
        num_attention_heads=META["num_heads"],
        mlp_ratio=int(spec["mlp_ratio"]),
        use_swiglu_ffn=spec["ffn_layer"] != "mlp",
        image_size=META["img_size"],
        patch_size=META["patch_size"],
        layerscale_value=META["layerscale_init"],
    )
    return LoratConfig(
        backbone_config=backbone,
        template_size=META["template_feat"][0] * 14,
        search_size=META["search_feat"][0] * 14,
        lora_r=META["lora_r"],
        lora_alpha=META["lora_alpha"],
    )


def run(model, io):
    with torch.no_grad():
        out = model(io["z"], io["x"], io["z_feat_mask"])
    return out.score_map, out.pred_boxes


def assert_matches(model, io, suffix=""):
    score, boxes = run(model, io)
    assert score.shape == io["score_map" + suffix].shape
    torch.testing.assert_close(score, io["score_map" + suffix], atol=ATOL, rtol=0)
    torch.testing.assert_close(boxes, io["boxes" + suffix], atol=ATOL, rtol=0)


@pytest.fixture(params=["mlp", "swiglu"])
def variant(request):
    return request.param


@pytest.fixture
def golden(variant):
    return (
        golden_config(variant),
        load_file(str(GOLDEN / f"official_{variant}.safetensors")),
        load_file(str(GOLDEN / f"io_{variant}.safetensors")),
    )


def test_full_conversion_matches_official_unmerged_and_merged(golden):
    config, state, io = golden
    model = convert.build_full_model(state, config)
    assert_matches(model, io)
    assert_matches(model, io, "_merged")


def test_outputs_are_not_trivial(golden):
    _, _, io = golden
    # The fixtures must discriminate: scores vary across cells and boxes are not constant.
    assert io["score_map"].std() > 1e-3 and io["boxes"].std() > 1e-3


def test_adapter_conversion_round_trip(golden, variant, tmp_path):
    config, _, io = golden
    vit = load_file(str(GOLDEN / f"official_{variant}_vit.safetensors"))
    backbone_dir = tmp_path / "dinov2"
    convert.dinov2_from_original_vit(vit, config.backbone_config).save_pretrained(backbone_dir)
    out = convert.convert_checkpoint(
        GOLDEN / f"official_{variant}.safetensors",
        tmp_path / "adapter",
        form="adapter",
        backbone=str(backbone_dir),
        backbone_config=config.backbone_config.to_dict(),
        template_size=config.template_size,
        search_size=config.search_size,
        lora_r=config.lora_r,
        lora_alpha=config.lora_alpha,
    )
    files = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "config.json"} <= files
    assert not any(
        name.endswith((".bin", ".pt", ".pth", "model.safetensors")) and name != "adapter_model.safetensors"
        for name in files
    )
    peft_model = LoratForTracking.from_pretrained(out, merge_lora=False).eval()
    assert_matches(peft_model, io)  # unmerged LoRA
    assert_matches(LoratForTracking.from_pretrained(out), io)  # merged on load


def test_swiglu_w12_lora_is_split_with_shared_a(tmp_path):
    config = golden_config("swiglu")
    state = load_file(str(GOLDEN / "official_swiglu.safetensors"))
    _, lora, scaling = convert.convert_state_dict(state, config)
    gate, up = lora["backbone.encoder.layer.0.mlp.gate_proj"], lora["backbone.encoder.layer.0.mlp.up_proj"]
    assert torch.equal(gate[0], up[0])
    b = state["blocks.0.mlp.w12.lora.B"]
    assert torch.equal(torch.cat([gate[1], up[1]]), b)
    assert scaling == pytest.approx(META["lora_alpha"] / META["lora_r"])
    assert len(lora) == 2 * 7  # 2 layers x (q, k, v, o, gate, up, down)


def test_cli_convert_full(tmp_path, capsys):
    # The CLI goes through a preset; give it a config-compatible preset-free path via the API instead,
    # and check the CLI's error for a preset that does not fit the checkpoint.
    code = cli_main(
        [
            "convert",
            "--original",
            str(GOLDEN / "official_mlp.safetensors"),
            "--preset",
            "b-224",
            "--output",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    assert "wrong --preset" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_checkpoint_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="original checkpoint not found"):
        convert.load_original_state_dict(tmp_path / "nope.pth")


def test_conversion_never_overwrites_a_checkpoint_and_writes_atomically(tmp_path, capsys, monkeypatch):
    source = GOLDEN / "official_mlp.safetensors"
    config = golden_config("mlp")
    overrides = dict(
        backbone_config=config.backbone_config.to_dict(),
        template_size=config.template_size,
        search_size=config.search_size,
        lora_r=config.lora_r,
        lora_alpha=config.lora_alpha,
    )
    out = tmp_path / "lorat"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"the user's own checkpoint")
    assert cli_main(["convert", "--original", str(source), "--preset", "b-224", "--output", str(out)]) == 2
    assert "exists and is not empty (pass --overwrite" in capsys.readouterr().err
    with pytest.raises(FileExistsError):
        convert.convert_checkpoint(source, out, **overrides)
    assert (out / "model.safetensors").read_bytes() == b"the user's own checkpoint"
    # --overwrite replaces it with a complete checkpoint
    convert.convert_checkpoint(source, out, overwrite=True, **overrides)
    assert_matches(LoratForTracking.from_pretrained(out), load_file(str(GOLDEN / "io_mlp.safetensors")))

    # a failure while saving leaves neither a half-written folder nor temp files behind
    def broken_save(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(LoratForTracking, "save_pretrained", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        convert.convert_checkpoint(source, tmp_path / "fresh", **overrides)
    with pytest.raises(RuntimeError, match="disk full"):
        convert.convert_checkpoint(source, out, overwrite=True, **overrides)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lorat"]
    assert LoratForTracking.from_pretrained(out) is not None  # the previous checkpoint is intact
