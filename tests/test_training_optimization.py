"""Optimizer groups (official weight-decay rules), official LR schedule, atomic checkpoints."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_lorat.testing_utils import tiny_model  # noqa: E402
from training.checkpointing import (  # noqa: E402
    list_checkpoints,
    read_training_state,
    register_adapter_state_hooks,
    resolve_resume_checkpoint,
    save_checkpoint,
)
from training.optimization import build_lr_scheduler, official_lr_lambda, parameter_groups  # noqa: E402


@pytest.fixture
def accelerator():
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    yield Accelerator(cpu=True)
    AcceleratorState._reset_state(True)


def test_weight_decay_groups_follow_the_official_rules():
    model = tiny_model()
    decay, no_decay = parameter_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decay_names = {names[id(p)] for p in decay["params"]}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert all(".lora_" in n or "head" in n for n in decay_names)
    assert any("lora_A" in n for n in decay_names) and any("lora_B" in n for n in decay_names)
    assert any("token_type_embeddings" in n for n in no_decay_names)  # "embed" -> no decay
    assert all(n.endswith("bias") or "embed" in n or "cls_mlp.layers.2" in n for n in no_decay_names)
    # the (1, hidden) score projection is 1-d after squeeze(): no decay, as in the official rule
    assert any("cls_mlp.layers.2.weight" in n for n in no_decay_names)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert decay_names | no_decay_names == trainable and not decay_names & no_decay_names


def test_official_schedule_warmup_cosine_and_one_step_lag():
    lr, warm, cos = 1e-4, 10, 100
    f = official_lr_lambda(lr, warm, cos)
    lrs = [f(n) * lr for n in range(warm + cos + 5)]
    assert lrs[0] == pytest.approx(1e-7) and lrs[1] == pytest.approx(1e-7)  # the official runner's lag
    assert lrs[2] == pytest.approx(1e-7 + (lr - 1e-7) / warm)
    assert lrs[warm + 1] == pytest.approx(lr)  # warm-up done
    assert lrs[warm + 1 + cos // 2] == pytest.approx((lr + 1e-6) / 2)
    assert lrs[-1] == pytest.approx(1e-6)
    after = lrs[warm + 1 : warm + cos + 1]
    assert all(a >= b for a, b in zip(after, after[1:]))
    assert lrs[warm + 1 + 25] == pytest.approx(1e-6 + 0.5 * (lr - 1e-6) * (1 + math.cos(math.pi * 0.25)))


def test_lr_scheduler_drives_the_optimizer():
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([param], lr=1e-3)
    scheduler = build_lr_scheduler("cosine", optimizer, 1e-3, warmup_steps=2, total_steps=10)
    seen = []
    for _ in range(14):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert (
        seen[0] == pytest.approx(1e-7)
        and max(seen) == pytest.approx(1e-3)
        and seen[-1] == pytest.approx(1e-6)
    )
    linear = build_lr_scheduler("linear", torch.optim.AdamW([param], lr=1e-3), 1e-3, 0, 10)
    assert linear.get_last_lr()[0] == pytest.approx(1e-3)


def test_checkpoints_are_atomic_pruned_and_hold_only_the_adapter(tmp_path, accelerator):
    model = tiny_model()
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.1), lr=1e-3)
    register_adapter_state_hooks(accelerator)
    model, optimizer = accelerator.prepare(model, optimizer)
    (tmp_path / ".tmp-checkpoint-99").mkdir()  # debris of a crash mid-save
    for step in (2, 4, 6):
        save_checkpoint(accelerator, tmp_path, step, {"seed": 0}, total_limit=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [4, 6]
    assert not list(tmp_path.glob(".tmp-*"))
    latest = resolve_resume_checkpoint(tmp_path, "latest")
    assert latest.name == "checkpoint-6" and read_training_state(latest) == {"seed": 0, "global_step": 6}
    files = {p.name for p in latest.iterdir()}
    assert {"adapter_model.safetensors", "optimizer.bin", "training_state.json"} <= files
    assert not {"model.safetensors", "pytorch_model.bin"} & files

    from safetensors.torch import load_file

    keys = load_file(latest / "adapter_model.safetensors").keys()
    assert keys and all("lora_" in k or "token_type" in k or "head" in k for k in keys)

    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(1.0)
    accelerator.load_state(str(latest))
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert torch.equal(p, trained[n]), n


def test_resume_argument_resolution(tmp_path):
    assert resolve_resume_checkpoint(tmp_path, "latest") is None
    assert resolve_resume_checkpoint(tmp_path, None) is None
    (tmp_path / "checkpoint-3").mkdir()
    assert resolve_resume_checkpoint(tmp_path, "checkpoint-3") == tmp_path / "checkpoint-3"
    with pytest.raises(FileNotFoundError, match="checkpoint folder not found"):
        resolve_resume_checkpoint(tmp_path, str(tmp_path / "nope"))
