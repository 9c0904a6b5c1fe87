"""Frozen weights stored in the compute dtype give the same loss and gradients as float32 frozen
weights under autocast (within the compute dtype's rounding), and leave the trainable set float32."""

from __future__ import annotations

import copy

import torch

from modeling_lorat.testing_utils import tiny_model
from training.precision import cast_frozen_parameters_, compute_dtype


def batch(size: int = 4):
    g = torch.Generator().manual_seed(3)
    mask = torch.zeros(size, 2, 2, dtype=torch.long)
    mask[:, :1, :1] = 1
    labels = torch.tensor([[0.3, 0.35, 0.6, 0.7]]).repeat(size, 1)
    labels[-1] = float("nan")  # a negative pair
    return dict(
        pixel_values_template=torch.randn(size, 3, 28, 28, generator=g),
        pixel_values_search=torch.randn(size, 3, 56, 56, generator=g),
        template_mask=mask,
        labels=labels,
    )


def loss_and_grads(model, inputs):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(**inputs).loss
    loss.backward()
    grads = {n: p.grad.float().clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach().float(), grads


def test_cast_frozen_weights_keeps_loss_and_gradients():
    reference = tiny_model(seed=0)
    cast = copy.deepcopy(reference)
    count = cast_frozen_parameters_(cast, torch.bfloat16)
    frozen = [p for p in cast.parameters() if not p.requires_grad]
    projections = [p for n, p in cast.named_parameters() if ".base_layer." in n]
    trainable = [p for p in cast.parameters() if p.requires_grad]
    assert projections and all(p.dtype == torch.bfloat16 for p in projections)  # q/k/v/o/fc1/fc2
    assert (
        cast.base_model.model.backbone.embeddings.patch_embeddings.projection.weight.dtype == torch.bfloat16
    )
    assert count == sum(p.numel() for p in frozen if p.dtype == torch.bfloat16)
    assert trainable and all(p.dtype == torch.float32 for p in trainable)  # master weights
    inputs = batch()
    want_loss, want_grads = loss_and_grads(reference.train(), inputs)
    got_loss, got_grads = loss_and_grads(cast.train(), inputs)
    torch.testing.assert_close(got_loss, want_loss, rtol=2e-2, atol=1e-3)
    assert want_grads.keys() == got_grads.keys()
    for name, want in want_grads.items():
        got = got_grads[name]
        assert torch.linalg.vector_norm(got - want) <= 5e-2 * torch.linalg.vector_norm(want) + 1e-6, name


def test_compute_dtype_names():
    assert compute_dtype("fp16") is torch.float16 and compute_dtype("bf16") is torch.bfloat16
    assert compute_dtype("no") is None and compute_dtype(None) is None
