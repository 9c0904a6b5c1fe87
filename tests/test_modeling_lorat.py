"""LoratForTracking: shapes, registration, presets, from_backbone, attention backends, dtypes, bad input,
transformers conventions (hidden states / attentions, return_dict, compile, shipped code)."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoConfig, AutoModel

from modeling_lorat import LORAT_PRESETS, LoratConfig, LoratForTracking
from modeling_lorat.modeling_lorat import interpolate_position_embeddings
from modeling_lorat.testing_utils import tiny_config, tiny_dinov2


def inputs(batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, 2, 2, dtype=torch.long)
    mask[:, 0, :] = 1
    return torch.randn(batch, 3, 28, 28, generator=g), torch.randn(batch, 3, 56, 56, generator=g), mask


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LoratForTracking(tiny_config()).eval()


def test_output_shapes_and_box_geometry(model):
    out = model(*inputs(3))
    assert out.score_map.shape == (3, 4, 4) and out.score_map.dtype == torch.float32
    assert out.pred_boxes.shape == (3, 4, 4, 4)
    boxes = out.pred_boxes
    centers = model.head.cell_centers
    # every box contains its own cell centre and spans at most one crop on each side of it
    assert torch.all(boxes[..., 0] <= centers[..., 0]) and torch.all(boxes[..., 2] >= centers[..., 0])
    assert torch.all(boxes[..., 1] <= centers[..., 1]) and torch.all(boxes[..., 3] >= centers[..., 1])
    assert torch.allclose(centers[0, 0], torch.tensor([0.125, 0.125])) and torch.allclose(
        centers[3, 1], torch.tensor([0.375, 0.875])
    )
    assert out.loss is None


def test_batch_elements_are_independent(model):
    z, x, m = inputs(2)
    full = model(z, x, m).score_map
    single = model(z[1:], x[1:], m[1:]).score_map
    torch.testing.assert_close(full[1:], single, atol=1e-5, rtol=0)


def test_template_mask_changes_output(model):
    z, x, m = inputs(1)
    a = model(z, x, m).score_map
    b = model(z, x, torch.zeros_like(m)).score_map
    assert not torch.allclose(a, b)


def test_template_uses_top_left_subgrid_of_search_position_embedding(model):
    emb = model.embeddings
    z_tokens = torch.zeros(1, 4, 32)
    x_tokens = torch.zeros(1, 16, 32)
    mask = torch.zeros(1, 2, 2, dtype=torch.long)
    template, search = emb(z_tokens, x_tokens, mask)
    pos = emb.position_embeddings.view(4, 4, 32)
    expected_template = pos[:2, :2].reshape(4, 32) + emb.token_type_embeddings.weight[0]
    torch.testing.assert_close(template[0], expected_template)
    torch.testing.assert_close(search[0], pos.reshape(16, 32) + emb.token_type_embeddings.weight[2])


def test_auto_classes_round_trip(model, tmp_path):
    model.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, LoratConfig) and config.model_type == "lorat"
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, LoratForTracking)
    torch.testing.assert_close(loaded(*inputs()).score_map, model(*inputs()).score_map)
    assert (tmp_path / "model.safetensors").exists() and config.auto_map[
        "AutoModel"
    ] == "modeling_lorat.LoratForTracking"


@pytest.mark.parametrize(
    "name,hidden,layers,template,search,factor,drop",
    [
        ("s-224", 384, 12, 112, 224, 4.0, 0.0),
        ("b-224", 768, 12, 112, 224, 4.0, 0.0),
        ("l-224", 1024, 24, 112, 224, 4.0, 0.1),
        ("g-224", 1536, 40, 112, 224, 4.0, 0.4),
        ("b-378", 768, 12, 196, 378, 5.0, 0.0),
        ("g-378", 1536, 40, 196, 378, 5.0, 0.4),
    ],
)
def test_presets_match_official_sizes(name, hidden, layers, template, search, factor, drop):
    config = LoratConfig.from_preset(name)
    assert config.backbone_config.hidden_size == hidden and config.backbone_config.num_hidden_layers == layers
    assert (config.template_size, config.search_size, config.search_area_factor) == (template, search, factor)
    assert config.backbone_config.drop_path_rate == drop
    assert config.backbone_config.use_swiglu_ffn == name.startswith("g")
    assert (config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_init) == (64, 64, 0.0, "bert")
    assert (config.template_area_factor, config.min_object_size, config.window_penalty) == (2.0, 10.0, 0.45)
    assert config.template_grid == template // 14 and config.search_grid == search // 14


def test_all_eight_presets_exist():
    assert sorted(LORAT_PRESETS) == sorted(f"{s}-{r}" for s in "sblg" for r in (224, 378))
    with pytest.raises(ValueError, match="unknown preset"):
        LoratConfig.from_preset("x-999")


def test_from_backbone_uses_real_from_pretrained_and_interpolates_once(tmp_path):
    dinov2 = tiny_dinov2(seed=3, image_size=70)  # 5x5 pretrained grid -> 4x4 search grid
    dinov2.save_pretrained(tmp_path / "dinov2")
    model = LoratForTracking.from_backbone(
        str(tmp_path / "dinov2"), config=None, template_size=28, search_size=56
    )
    assert model.config.backbone_name_or_path == str(tmp_path / "dinov2")
    expected = interpolate_position_embeddings(dinov2.embeddings.position_embeddings.detach()[:, 1:], 4)
    torch.testing.assert_close(model.embeddings.position_embeddings.detach(), expected)
    torch.testing.assert_close(
        model.backbone.encoder.layer[1].attention.q_proj.weight,
        dinov2.encoder.layer[1].attention.q_proj.weight,
    )


def test_from_backbone_rejects_mismatched_preset(tmp_path):
    tiny_dinov2().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="preset 'b-224' expects 768"):
        LoratForTracking.from_backbone(str(tmp_path), preset="b-224")


def test_position_interpolation_is_bicubic_with_explicit_size():
    pos = torch.randn(1, 25, 8)
    out = interpolate_position_embeddings(pos, 4)
    ref = torch.nn.functional.interpolate(
        pos.reshape(1, 5, 5, 8).permute(0, 3, 1, 2), size=(4, 4), mode="bicubic"
    )
    torch.testing.assert_close(out, ref.permute(0, 2, 3, 1).reshape(1, 16, 8))


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_attention_implementations_agree(model, impl, tmp_path):
    model.save_pretrained(tmp_path)
    other = LoratForTracking.from_pretrained(tmp_path, attn_implementation=impl).eval()
    torch.testing.assert_close(other(*inputs()).score_map, model(*inputs()).score_map, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_runs(model, dtype):
    half = LoratForTracking(model.config).eval()
    half.load_state_dict(model.state_dict())
    half = half.to(dtype)
    z, x, m = inputs()
    out = half(z.to(dtype), x.to(dtype), m)
    assert out.score_map.dtype == torch.float32 and torch.isfinite(out.score_map).all()
    torch.testing.assert_close(out.score_map, model(z, x, m).score_map, atol=5e-2, rtol=0)


def test_gradient_checkpointing_gives_same_loss(model):
    config = tiny_config()
    torch.manual_seed(1)
    a = LoratForTracking(config).train()
    b = LoratForTracking(config).train()
    b.load_state_dict(a.state_dict())
    b.activation_checkpointing_enable()
    labels = torch.tensor([[0.1, 0.2, 0.6, 0.7], [0.3, 0.3, 0.5, 0.9]])
    la, lb = a(*inputs(), labels=labels).loss, b(*inputs(), labels=labels).loss
    la.backward()
    lb.backward()
    torch.testing.assert_close(la, lb)
    torch.testing.assert_close(a.head.cls_mlp.layers[0].weight.grad, b.head.cls_mlp.layers[0].weight.grad)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda z, x, m: (z[:, :, :14], x, m), r"pixel_values_template must have shape \(B, 3, 28, 28\)"),
        (lambda z, x, m: (z, x[:1], m), "batch sizes differ"),
        (lambda z, x, m: (z, x, m[:, :1]), r"template_mask must have shape \(B, 2, 2\)"),
        (lambda z, x, m: (z, x, m.float()), "template_mask must be an integer or bool"),
        (lambda z, x, m: (z, x, m * 3), "must be 0 .background. or 1"),
        (lambda z, x, m: (z.to(torch.uint8), x, m), "pixel_values_template must be a floating-point tensor"),
        (lambda z, x, m: (z, x.masked_fill(x > 1, float("nan")), m), "NaN or Inf"),
    ],
)
def test_bad_inputs_raise_clear_errors(model, mutate, message):
    with pytest.raises(ValueError, match=message):
        model(*mutate(*inputs()))


def test_labels_shape_checked(model):
    with pytest.raises(ValueError, match=r"labels must have shape \(B, 4\)"):
        model(*inputs(), labels=torch.zeros(2, 5))


def test_config_validation():
    with pytest.raises(ValueError, match="multiple of the patch size"):
        tiny_config(search_size=50)
    with pytest.raises(ValueError, match="must not exceed"):
        tiny_config(template_size=70, search_size=56)
    with pytest.raises(ValueError, match="lora_init"):
        tiny_config(lora_init="kaiming")


# ---------------------------------------------------------------------------------------------- conventions
def test_hidden_states_are_the_joint_sequence_after_each_layer(model):
    z, x, m = inputs(2)
    out = model(z, x, m, output_hidden_states=True)
    layers = model.config.backbone_config.num_hidden_layers
    assert len(out.hidden_states) == layers + 1 and out.attentions is None
    assert all(h.shape == (2, 4 + 16, 32) for h in out.hidden_states)
    patch = model.backbone.embeddings.patch_embeddings
    template, search = model.embeddings(patch(z), patch(x), m)
    torch.testing.assert_close(out.hidden_states[0], torch.cat((template, search), dim=1))
    torch.testing.assert_close(out.hidden_states[1], model.backbone.encoder.layer[0](out.hidden_states[0]))
    torch.testing.assert_close(model.backbone.layernorm(out.hidden_states[-1][:, 4:]), out.last_hidden_state)
    torch.testing.assert_close(out.score_map, model(z, x, m).score_map)


def test_output_flags_default_to_the_config_and_can_be_turned_off(tmp_path):
    torch.manual_seed(0)
    recording = LoratForTracking(tiny_config(output_hidden_states=True)).eval()
    assert len(recording(*inputs()).hidden_states) == 3
    assert recording(*inputs(), output_hidden_states=False).hidden_states is None


def test_attentions_need_eager_attention(model, tmp_path):
    with pytest.raises(ValueError, match="output_attentions needs attn_implementation='eager'"):
        model(*inputs(), output_attentions=True)
    model.save_pretrained(tmp_path)
    eager = LoratForTracking.from_pretrained(tmp_path, attn_implementation="eager").eval()
    out = eager(*inputs(), output_attentions=True)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (2, 2, 20, 20)  # (B, heads, N, N)
    torch.testing.assert_close(out.attentions[1].sum(-1), torch.ones(2, 2, 20))
    torch.testing.assert_close(out.score_map, model(*inputs()).score_map, atol=1e-5, rtol=0)


def test_return_dict_false_gives_the_tuple_of_set_fields(model):
    out = model(*inputs(), return_dict=False)
    assert isinstance(out, tuple) and len(out) == 3
    want = model(*inputs())
    for got, field in zip(out, (want.score_map, want.pred_boxes, want.last_hidden_state)):
        torch.testing.assert_close(got, field)
    with_labels = model(*inputs(), labels=torch.tensor([[0.1, 0.2, 0.6, 0.7]] * 2), return_dict=False)
    assert len(with_labels) == 5 and with_labels[0].ndim == 0  # loss, loss_dict, score_map, boxes, tokens


def test_fused_model_refuses_to_record_and_still_returns_tuples(model):
    import copy

    fused = copy.deepcopy(model).fuse_for_inference()
    with pytest.raises(ValueError, match="fused for inference .* does not record hidden states"):
        fused(*inputs(), output_hidden_states=True)
    out = fused(*inputs(), return_dict=False)
    assert isinstance(out, tuple) and len(out) == 3
    torch.testing.assert_close(out[0], model(*inputs()).score_map, atol=1e-5, rtol=0)


def test_processor_bookkeeping_is_not_a_model_input(model):
    z, x, m = inputs(1)
    out = model(
        pixel_values_template=z,
        pixel_values_search=x,
        template_mask=m,
        crop_info=torch.zeros(1, 6).numpy(),
        template_image_mean=torch.zeros(1, 3),
    )
    torch.testing.assert_close(out.score_map, model(z, x, m).score_map)


def test_conventions_are_declared(model):
    from transformers.models.dinov2.modeling_dinov2 import Dinov2Attention, Dinov2Layer

    assert LoratForTracking._can_compile_fullgraph is True
    assert LoratForTracking._can_record_outputs == {
        "hidden_states": Dinov2Layer,
        "attentions": Dinov2Attention,
    }
    # no LoRAT base model: the prefix names no attribute (see the comment on base_model_prefix)
    assert model.base_model is model and not hasattr(model, model.base_model_prefix)


@pytest.mark.slow
def test_inference_forward_compiles_as_one_graph(model):
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        got, want = compiled(*inputs()), model(*inputs())
    torch.testing.assert_close(got.score_map, want.score_map, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.pred_boxes, want.pred_boxes, atol=1e-6, rtol=0)


def test_saved_checkpoint_names_its_code(model, tmp_path):
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_lorat.LoratConfig",
        "AutoModel": "modeling_lorat.LoratForTracking",
        "AutoImageProcessor": "image_processing_lorat.LoratImageProcessor",
    }
    assert (
        config["custom_pipelines"]["single-object-tracking"]["impl"]
        == "pipeline_lorat.SingleObjectTrackingPipeline"
    )
    for reference in [*config["auto_map"].values(), "pipeline_lorat.X"]:
        assert (tmp_path / f"{reference.split('.')[0]}.py").is_file()
    assert (
        getattr(model.config, "custom_pipelines", None) is None
    )  # the in-memory config keeps the native task
