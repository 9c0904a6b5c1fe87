"""LoRA for LoRAT with peft: targets, config, official init, adapter checkpoints.

Targets are derived from the backbone's module *types* (the ``nn.Linear`` children of each
``Dinov2Attention`` and of its FFN), never from hard-coded names, and every layer is asserted to have
all six projections adapted: q, k, v, attention output, FFN in and out (for SwiGLU: gate, up, down —
giant's official single LoRA on the fused gate+up ``w12`` becomes two LoRAs; converted official weights
share A between them, fresh training gives each its own A, +r*hidden params per layer).

Saved adapters follow peft's conventions: ``adapter_config.json`` records ``base_model_name_or_path``
(the DINOv2 backbone the frozen weights come from, ``config.backbone_name_or_path``) and an
``init_lora_weights`` that says what was done: ``false`` (A and B random, the adapter starts as no
identity) after the official "bert" init, ``true`` (peft's init, B = 0) otherwise; ``config.json``'s
``lora_init`` names the exact rule.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from torch import nn
from transformers.models.dinov2.modeling_dinov2 import Dinov2Attention, Dinov2MLP, Dinov2SwiGLUFFN
from transformers.utils import cached_file

#: Modules that are trained in full next to LoRA (and saved in the adapter).
MODULES_TO_SAVE = ["token_type_embeddings", "head"]


def lora_target_modules(model: nn.Module) -> list[str]:
    """Full names of every Linear to adapt (attention q/k/v/o + FFN linears of every backbone layer).

    Raises ``ValueError`` when a layer does not expose exactly six projections (e.g. a transformers
    release renamed/fused Dinov2 modules).
    """
    backbone = getattr(model, "backbone", model)
    layers = backbone.encoder.layer
    targets: list[str] = []
    for index, layer in enumerate(layers):
        found = []
        for name, module in layer.named_modules():
            if isinstance(module, (Dinov2Attention, Dinov2MLP, Dinov2SwiGLUFFN)):
                found += [
                    f"{name}.{child}" for child, sub in module.named_children() if isinstance(sub, nn.Linear)
                ]
        if len(found) != 6 and not (len(found) == 7 and isinstance(layer.mlp, Dinov2SwiGLUFFN)):
            raise ValueError(
                f"backbone layer {index} exposes {len(found)} linear projections {found}; LoRAT adapts six "
                "(q, k, v, attention output, FFN in/out). Is the pinned transformers version installed?"
            )
        targets += [f"backbone.encoder.layer.{index}.{name}" for name in found]
    return targets


def build_lora_config(model: nn.Module) -> LoraConfig:
    """The peft ``LoraConfig`` for ``model``: r/alpha/dropout from ``model.config``, all six projections per
    layer as targets, token-type embeddings and head as ``modules_to_save``. peft initialises the layers
    (``init_lora_weights=True``); :func:`apply_lora` applies the official init and records the backbone."""
    cfg = model.config
    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=lora_target_modules(model),
        modules_to_save=list(MODULES_TO_SAVE),
        use_rslora=False,
        bias="none",
        init_lora_weights=True,
    )


def init_lora_bert_(model: nn.Module, std: float = 0.02) -> None:
    """Official "bert" init: every LoRA A and B trunc-normal(std) (peft's default keeps B = 0)."""
    for name, param in model.named_parameters():
        if ".lora_A." in name or ".lora_B." in name:
            with torch.no_grad():
                nn.init.trunc_normal_(param, std=std)


def apply_lora(model: nn.Module, lora_init: str | None = None) -> PeftModel:
    """Wrap ``model`` in a ``PeftModel`` with LoRA on all six projections; asserts the result.

    ``lora_init`` (default ``model.config.lora_init``): ``"bert"`` draws A and B trunc-normal after peft's
    init and records ``init_lora_weights=False`` in the adapter config (peft's name for "A and B random");
    ``"peft"`` keeps peft's init (B = 0, ``init_lora_weights=True``). ``base_model_name_or_path`` is the
    config's backbone. Trainable afterwards: LoRA A/B, token-type embeddings and head; all else frozen.
    """
    config = build_lora_config(model)
    peft_model = get_peft_model(model, config)
    record_base_model(peft_model, model.config.backbone_name_or_path)
    if (lora_init or model.config.lora_init) == "bert":
        init_lora_bert_(peft_model, model.config.initializer_range)
        for adapter in peft_model.peft_config.values():
            adapter.init_lora_weights = False  # what was done: A and B random, not peft's B = 0
    check_lora_coverage(peft_model)
    return peft_model


def record_base_model(peft_model: PeftModel, backbone_name_or_path: str | None) -> None:
    """Set ``base_model_name_or_path`` of every adapter config to the backbone id (peft leaves it ``None``
    for a model built from a config: ``LoratForTracking.from_backbone(...)`` has no name of its own)."""
    for adapter in peft_model.peft_config.values():
        adapter.base_model_name_or_path = str(backbone_name_or_path) if backbone_name_or_path else None


def save_adapter(
    peft_model: PeftModel, folder: str | os.PathLike, config: Any, state_dict: dict | None = None
) -> Path:
    """Write an adapter checkpoint: ``adapter_config.json`` + ``adapter_model.safetensors`` (peft) and
    ``config.json`` with the shipped code (`LoratConfig.save_pretrained`), ``base_model_name_or_path`` =
    ``config.backbone_name_or_path``. ``state_dict``: gathered weights of a sharded model. peft's
    placeholder ``README.md`` is not written."""
    folder = Path(folder)
    readme = folder / "README.md"
    had_readme = readme.exists()
    record_base_model(peft_model, config.backbone_name_or_path)
    peft_model.save_pretrained(str(folder), state_dict=state_dict, safe_serialization=True)
    if not had_readme:
        readme.unlink(missing_ok=True)
    config.save_pretrained(folder)
    return folder


def check_lora_coverage(model: nn.Module) -> None:
    """Assert that every backbone layer of a peft-wrapped tracker has LoRA on all its projections."""
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    for index, layer in enumerate(base.backbone.encoder.layer):
        adapted = [name for name, module in layer.named_modules() if isinstance(module, LoraLayer)]
        expected = 7 if isinstance(layer.mlp, Dinov2SwiGLUFFN) else 6
        if len(adapted) != expected:
            raise ValueError(
                f"backbone layer {index} has LoRA on {len(adapted)} projections {adapted}, expected {expected}"
            )


def expected_trainable_parameters(config: Any) -> int:
    """Number of trainable parameters LoRAT should have: LoRA A/B + token types + head."""
    bb = config.backbone_config
    hidden, r = bb.hidden_size, config.lora_r
    if getattr(bb, "use_swiglu_ffn", False):
        ffn = (int(int(hidden * bb.mlp_ratio) * 2 / 3) + 7) // 8 * 8
        ffn_lora = 2 * r * (hidden + ffn) + r * (ffn + hidden)
    else:
        ffn = int(hidden * bb.mlp_ratio)
        ffn_lora = 2 * r * (hidden + ffn)
    per_layer = 4 * r * 2 * hidden + ffn_lora
    mlp = (config.head_num_layers - 1) * (hidden * hidden + hidden)
    head = 2 * mlp + (hidden + 1) + (4 * hidden + 4)
    return bb.num_hidden_layers * per_layer + 3 * hidden + head


def is_adapter_checkpoint(path: str | os.PathLike, **kwargs: Any) -> bool:
    """True when ``path`` (folder or Hub id) holds an ``adapter_config.json``."""
    hub_kwargs = {k: kwargs[k] for k in ("revision", "token", "cache_dir", "local_files_only") if k in kwargs}
    try:
        found = cached_file(
            str(path),
            "adapter_config.json",
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
            **hub_kwargs,
        )
    except OSError:
        return False
    return found is not None


#: Backbone config entries an adapter depends on (its LoRA, token types and head are shaped by them).
_BACKBONE_SHAPE_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "patch_size",
    "mlp_ratio",
    "use_swiglu_ffn",
)


def check_backbone_fits(adapter: str, config: Any, backbone: str, **hub_kwargs: Any) -> None:
    """Raise ``ModelLoadError`` when the DINOv2 named ``backbone`` is not the size the adapter was made for.

    Compares the backbone's own ``config.json`` with the adapter config's ``backbone_config`` (width,
    depth, heads, patch size, FFN) before any weights are loaded.
    """
    from transformers import Dinov2Config

    from .loading_utils import ModelLoadError

    try:
        found = Dinov2Config.from_pretrained(backbone, **hub_kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"adapter {adapter}: cannot read the config of its backbone {backbone}: {exc}"
        ) from None
    expected = config.backbone_config
    diff = [
        f"{key}={getattr(found, key, None)} (adapter expects {getattr(expected, key, None)})"
        for key in _BACKBONE_SHAPE_KEYS
        if getattr(found, key, None) != getattr(expected, key, None)
    ]
    if diff:
        raise ModelLoadError(
            f"adapter {adapter} does not fit backbone {backbone}: the backbone has {', '.join(diff)}; "
            "the adapter's config.json names a DINOv2 of another size"
        )


def load_backbone(backbone: str, **kwargs: Any) -> Any:
    """``Dinov2Model.from_pretrained(backbone, **kwargs)`` with its files checked (damaged, NaN/Inf -> ``ModelLoadError``)."""
    from safetensors import SafetensorError
    from transformers import Dinov2Model

    from .loading_utils import ModelLoadError, check_finite_weights, check_safetensors_file

    for file in sorted(Path(backbone).glob("model*.safetensors")) if Path(backbone).is_dir() else []:
        check_safetensors_file(file)
    try:
        model = Dinov2Model.from_pretrained(backbone, **kwargs)
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(f"cannot load backbone {backbone}: {exc}") from None
    check_finite_weights(model.state_dict().items(), f"backbone {backbone}")
    return model


def load_adapter_checkpoint(model_cls: type, path: str | os.PathLike, merge: bool = True, **kwargs: Any):
    """Rebuild the frozen backbone named in the adapter's ``config.json`` and apply the adapter.

    Returns the merged ``LoratForTracking`` (``merge=True``) or the ``PeftModel``. Raises
    ``FileNotFoundError`` when the backbone cannot be found and ``ModelLoadError`` (one line) for a
    backbone of another size, a damaged ``adapter_model.safetensors``, NaN/Inf weights or adapter
    weights that do not fit the model.
    """
    from safetensors import SafetensorError

    from .configuration_lorat import LoratConfig
    from .loading_utils import ModelLoadError, check_safetensors_weights, checkpoint_file, resolve_model_path

    hub_kwargs = {k: kwargs[k] for k in ("revision", "token", "cache_dir", "local_files_only") if k in kwargs}
    try:
        config = LoratConfig.from_pretrained(path, **hub_kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"adapter {path}: cannot read its config.json: {exc}") from None
    if not config.backbone_name_or_path:
        raise ModelLoadError(f"adapter checkpoint {path} has no backbone_name_or_path in its config.json")
    extra = {k: kwargs[k] for k in ("attn_implementation", "dtype") if k in kwargs}
    backbone = config.backbone_name_or_path
    beside = Path(str(path)) / backbone
    if not Path(backbone).is_absolute() and beside.is_dir():
        backbone = str(beside)  # a backbone folder shipped next to the adapter (e.g. random demo backbones)
    backbone, local_only = resolve_model_path(
        backbone, what=f"backbone of adapter {path}", local_files_only=bool(kwargs.get("local_files_only"))
    )
    backbone_kwargs = {"local_files_only": True} if local_only else {}
    check_backbone_fits(str(path), config, backbone, **backbone_kwargs)
    weights = checkpoint_file(str(path), "adapter_model.safetensors", **hub_kwargs)
    if weights is not None:
        check_safetensors_weights(weights)
    dinov2 = load_backbone(backbone, **extra, **backbone_kwargs)
    base = model_cls.from_backbone(dinov2, config=config, **extra)
    try:
        peft_model = PeftModel.from_pretrained(base, str(path), is_trainable=not merge, **hub_kwargs)
    except (RuntimeError, SafetensorError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"adapter {path} does not fit its model: {first}") from None
    return peft_model.merge_and_unload() if merge else peft_model
