"""peft LoRA on LoRAT: targets, coverage assertion, trainable count, init, merge, adapter round trip."""

from __future__ import annotations

import json

import pytest
import torch
from peft import LoraConfig, PeftModel
from safetensors.torch import load_file

from modeling_lorat import LoratConfig, LoratForTracking
from modeling_lorat.lora import (
    apply_lora,
    build_lora_config,
    check_lora_coverage,
    expected_trainable_parameters,
    lora_target_modules,
    save_adapter,
)
from modeling_lorat.testing_utils import tiny_config, tiny_dinov2, tiny_model


def inputs():
    g = torch.Generator().manual_seed(7)
    mask = torch.tensor([[[1, 0], [0, 0]]])
    return torch.randn(1, 3, 28, 28, generator=g), torch.randn(1, 3, 56, 56, generator=g), mask


@pytest.mark.parametrize("swiglu", [False, True])
def test_targets_cover_all_projections_of_every_layer(swiglu):
    model = LoratForTracking(tiny_config(backbone_config={"use_swiglu_ffn": swiglu}))
    targets = lora_target_modules(model)
    per_layer = 7 if swiglu else 6
    assert len(targets) == per_layer * 2
    names = {t.split(".", 4)[-1] for t in targets}
    expected = {"attention.q_proj", "attention.k_proj", "attention.v_proj", "attention.o_proj"}
    expected |= {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"} if swiglu else {"mlp.fc1", "mlp.fc2"}
    assert names == expected


def test_stale_module_names_fail_loudly():
    model = LoratForTracking(tiny_config())
    # Simulate a transformers release that renamed/fused attention projections.
    attention = model.backbone.encoder.layer[1].attention
    attention.qkv = torch.nn.Linear(32, 96)
    del attention.q_proj, attention.k_proj, attention.v_proj
    with pytest.raises(ValueError, match="layer 1 exposes 4 linear projections"):
        lora_target_modules(model)


def test_coverage_check_detects_missing_lora():
    model = LoratForTracking(tiny_config())
    config = build_lora_config(model)
    config.target_modules = [t for t in config.target_modules if not t.endswith("v_proj")]
    from peft import get_peft_model

    with pytest.raises(ValueError, match="has LoRA on 5 projections"):
        check_lora_coverage(get_peft_model(model, config))


@pytest.mark.parametrize("swiglu", [False, True])
def test_trainable_parameters_are_exactly_lora_token_types_and_head(swiglu):
    model = tiny_model(backbone_config={"use_swiglu_ffn": swiglu})
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    assert sum(trainable.values()) == expected_trainable_parameters(model.config)
    assert all(("lora_" in n) or ("token_type_embeddings" in n) or (".head." in n) for n in trainable)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert any("position_embeddings" in n for n in frozen) and any("layernorm" in n for n in frozen)


def test_expected_counts_for_paper_variants():
    # B-224: 12 layers x 18 r C LoRA + token types + head; g-378 gate/up each get their own A.
    b = expected_trainable_parameters(LoratConfig.from_preset("b-224"))
    assert b == 12 * 18 * 64 * 768 + 3 * 768 + 2 * 2 * (768 * 768 + 768) + 769 + 4 * 768 + 4
    g = expected_trainable_parameters(LoratConfig.from_preset("g-378"))
    assert 80e6 < g < 90e6  # paper: 80M with one LoRA on the fused w12; +r*C per layer here


def test_bert_init_makes_both_a_and_b_random_and_peft_init_zero_b():
    model = tiny_model()
    b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert all(p.abs().sum() > 0 for p in b)
    assert 0.01 < torch.cat([p.flatten() for p in b]).std() < 0.03
    peft_init = apply_lora(LoratForTracking(tiny_config()), lora_init="peft")
    assert all(p.abs().sum() == 0 for n, p in peft_init.named_parameters() if "lora_B" in n)


def test_merge_equals_unmerged():
    model = tiny_model().eval()
    with torch.no_grad():
        unmerged = model(*inputs()).score_map
        merged = model.merge_and_unload()(*inputs()).score_map
    assert merged.abs().max() > 0
    torch.testing.assert_close(merged, unmerged, rtol=1e-5, atol=1e-6)


def test_adapter_round_trip(tmp_path):
    dinov2 = tiny_dinov2(seed=1)
    dinov2.save_pretrained(tmp_path / "dinov2")
    base = LoratForTracking.from_backbone(
        str(tmp_path / "dinov2"), template_size=28, search_size=56, lora_r=4, lora_alpha=4
    )
    model = apply_lora(base).eval()
    model.save_pretrained(tmp_path / "adapter")
    model.get_base_model().config.save_pretrained(tmp_path / "adapter")
    files = sorted(p.name for p in (tmp_path / "adapter").iterdir() if not p.name.endswith((".py", ".md")))
    assert files == ["adapter_config.json", "adapter_model.safetensors", "config.json"]
    weights = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    assert all(("lora_" in k) or ("token_type_embeddings" in k) or (".head." in k) for k in weights)
    assert not any("q_proj.weight" in k and "lora" not in k for k in weights)  # no frozen weights
    adapter_config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["r"] == 4 and sorted(adapter_config["modules_to_save"]) == [
        "head",
        "token_type_embeddings",
    ]

    with torch.no_grad():
        reference = model(*inputs()).score_map
        reloaded = LoratForTracking.from_pretrained(tmp_path / "adapter", merge_lora=False)
        assert isinstance(reloaded, PeftModel)
        torch.testing.assert_close(reloaded.eval()(*inputs()).score_map, reference, rtol=0, atol=0)
        merged = LoratForTracking.from_pretrained(tmp_path / "adapter")
        assert isinstance(merged, LoratForTracking)
        torch.testing.assert_close(merged(*inputs()).score_map, reference, rtol=1e-5, atol=1e-6)
        via_peft = PeftModel.from_pretrained(
            LoratForTracking.from_backbone(str(tmp_path / "dinov2"), config=base.config), tmp_path / "adapter"
        )
        torch.testing.assert_close(via_peft.eval()(*inputs()).score_map, reference, rtol=0, atol=0)


def test_full_checkpoint_round_trip(tmp_path):
    model = tiny_model().eval().merge_and_unload()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
    with torch.no_grad():
        torch.testing.assert_close(
            LoratForTracking.from_pretrained(tmp_path)(*inputs()).score_map, model(*inputs()).score_map
        )


@pytest.mark.parametrize("lora_init,recorded", [("bert", False), ("peft", True)])
def test_saved_adapter_config_says_what_was_done(tmp_path, lora_init, recorded):
    """peft's own fields: the backbone as ``base_model_name_or_path`` (not null) and ``init_lora_weights``
    false after the official bert init (A and B random: not an identity at init), true for peft's."""
    tiny_dinov2(seed=2).save_pretrained(tmp_path / "dinov2")
    config = tiny_config(lora_init=lora_init, backbone_name_or_path=str(tmp_path / "dinov2"))
    base = LoratForTracking.from_backbone(str(tmp_path / "dinov2"), config=config)
    model = apply_lora(base).eval()
    save_adapter(model, tmp_path / "adapter", base.config)
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["base_model_name_or_path"] == str(tmp_path / "dinov2")
    assert saved["init_lora_weights"] is recorded
    assert json.loads((tmp_path / "adapter" / "config.json").read_text())["lora_init"] == lora_init
    names = {p.name for p in (tmp_path / "adapter").iterdir()}
    assert {"adapter_model.safetensors", "config.json", "modeling_lorat.py", "pipeline_lorat.py"} <= names
    assert "README.md" not in names  # no peft placeholder card
    b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert all(p.abs().sum() > 0 for p in b) is (lora_init == "bert")
    # peft reads the config back and loads the weights exactly
    config = LoraConfig.from_pretrained(str(tmp_path / "adapter"))
    assert config.init_lora_weights is recorded and config.base_model_name_or_path == str(tmp_path / "dinov2")
    with torch.no_grad():
        reference = model(*inputs()).score_map
        fresh = LoratForTracking.from_backbone(str(tmp_path / "dinov2"), config=base.config)
        loaded = PeftModel.from_pretrained(fresh, str(tmp_path / "adapter")).eval()
        torch.testing.assert_close(loaded(*inputs()).score_map, reference, rtol=0, atol=0)
