"""Convert official LoRAT checkpoints (github.com/LitingLin/LoRAT) to this package's layouts.

Official state-dict layout (``LoRAT_DINOv2``): ``patch_embed.proj``, ``blocks.N.{norm1,norm2}``,
``blocks.N.attn.qkv`` (fused, or ``qkv.{q,k,v}.linear`` + ``qkv.{q,k,v}.lora.{A,B}`` when LoRA is unmerged),
``blocks.N.attn.proj``, ``blocks.N.ls{1,2}.gamma``, ``blocks.N.mlp.{fc1,fc2}`` (giant: ``w12``, ``w3``),
``norm``, ``pos_embed``, ``token_type_embed``, ``head.{cls,reg}_mlp.layers.K`` and scalars ``lora_alpha``,
``use_rslora``. LoRA-wrapped linears store ``linear.weight`` and ``lora.A`` (r x in), ``lora.B`` (out x r).

Outputs:
* ``full``: a merged ``LoratForTracking`` (``model.safetensors`` + ``config.json`` + preprocessor config);
* ``adapter``: ``adapter_config.json`` + ``adapter_model.safetensors`` (LoRA, token types, head) + ``config.json``
  naming the DINOv2 backbone (its frozen weights must equal the official frozen weights, i.e. the public
  DINOv2 release). Giant's fused ``w12`` LoRA becomes two LoRAs sharing A (gate: ``B[:h]``, up: ``B[h:]``).

CLI: ``lorat convert --original CKPT --preset g-378 --output DIR [--form full|adapter] [--backbone ID]``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from .configuration_lorat import LoratConfig

_LINEAR_MAP = {
    "attn.proj": "attention.o_proj",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
    "mlp.w3": "mlp.down_proj",
}


#: Weights every official LoRAT checkpoint has (besides its ``blocks.N.*``), with what they are.
_REQUIRED_KEYS = {
    "patch_embed.proj.weight": "the patch embedding",
    "patch_embed.proj.bias": "the patch embedding",
    "pos_embed": "the position embedding",
    "norm.weight": "the final norm",
    "norm.bias": "the final norm",
}
# Globals a weights-only torch checkpoint may name; anything else would be imported and called.
_TORCH_PICKLE_GLOBALS = ("torch.", "torch._utils.", "collections.OrderedDict")


def _pickle_globals(path: Path) -> list[str]:
    """``module.name`` of every global a torch file's pickle(s) reference, read without unpickling."""
    import io
    import pickletools
    import zipfile

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(".pkl")]
            streams = [archive.read(n) for n in names]
    else:
        streams = [path.read_bytes()]
    found: list[str] = []
    for data in streams:
        stream = io.BytesIO(data)
        while stream.tell() < len(data):  # legacy torch files hold several pickles in a row
            strings: list[str] = []
            try:
                for opcode, arg, _ in pickletools.genops(stream):
                    if opcode.name == "GLOBAL":
                        found.append(str(arg).replace(" ", "."))
                    elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                        found.append(f"{strings[-2]}.{strings[-1]}")
                    elif isinstance(arg, str):
                        strings.append(arg)
            except Exception:  # not (or no longer) a pickle: stop reading this stream
                break
    return list(dict.fromkeys(found))


def _torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with one clear ``ValueError`` for files it cannot or must not read."""
    import pickle
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Detected pickle protocol 4 ..."
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = [g for g in _pickle_globals(path) if not g.startswith(_TORCH_PICKLE_GLOBALS)]
        if unsafe:
            raise ValueError(
                f"refused to unpickle {path}: it names {', '.join(unsafe[:3])}, which unpickling would "
                "import and call (a pickle can run any code). Only tensors and plain containers are loaded "
                "(torch.load with weights_only=True); official LoRAT checkpoints need nothing more. Save the "
                "state dict alone (torch.save(model.state_dict(), ...)) or as .safetensors"
            ) from None
        noise = ("Weights only load failed", "Please file an issue", "Check the documentation", "Re-running")
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = next((line for line in lines if not line.startswith(noise)), type(exc).__name__)
        detail = detail.removeprefix("WeightsUnpickler error:").strip() or type(exc).__name__
        raise ValueError(f"{path} is not a PyTorch checkpoint (unreadable pickle: {detail})") from None
    except (RuntimeError, EOFError, KeyError, IndexError, ValueError, OSError) as exc:
        with open(path, "rb") as handle:
            head = handle.read(4)
        if not head:
            raise ValueError(f"{path} is empty, not a PyTorch checkpoint") from None
        if head.startswith(b"PK"):
            detail = str(exc).split(". ")[0] if str(exc) else type(exc).__name__
            raise ValueError(f"{path} is a truncated or damaged PyTorch checkpoint ({detail})") from None
        raise ValueError(
            f"{path} is not a PyTorch checkpoint (neither a torch zip archive nor a pickle of tensors)"
        ) from None


def load_original_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an official checkpoint (``.safetensors`` or a torch file, loaded with ``weights_only=True``).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (one line, naming the file) for a
    file that is not a checkpoint, is truncated, is a pickle that would run code, lacks the weights of a
    LoRAT model, or holds NaN/Inf weights.
    """
    from .loading_utils import check_finite_weights

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"original checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as exc:  # SafetensorError
            raise ValueError(
                f"{path} is not a valid safetensors file ({exc}): truncated or damaged"
            ) from None
    else:
        state = _torch_load(path)
    for key in ("model", "state_dict", "module"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of weights")
    state = {str(k).removeprefix("module."): v for k, v in state.items()}
    if not any(k.startswith("blocks.") for k in state):
        raise ValueError(f"{path} does not look like an official LoRAT state dict (no 'blocks.*' keys)")
    for key, what in _REQUIRED_KEYS.items():
        if not isinstance(state.get(key), torch.Tensor):
            raise ValueError(f"{path} has no {key!r} ({what}): an incomplete or non-LoRAT checkpoint")
    check_finite_weights(((k, v) for k, v in state.items() if isinstance(v, torch.Tensor)), str(path))
    return state


def _lora_scaling(state: dict[str, torch.Tensor], config: LoratConfig, rank: int) -> float:
    alpha = float(state["lora_alpha"]) if "lora_alpha" in state else config.lora_alpha
    rs = bool(state["use_rslora"]) if "use_rslora" in state else False
    return alpha / math.sqrt(rank) if rs else alpha / rank


def _split_linear(state: dict, prefix: str) -> tuple[torch.Tensor, torch.Tensor | None, tuple | None]:
    """``(weight, bias, (A, B) or None)`` of an official (possibly LoRA-wrapped) linear."""
    if f"{prefix}.linear.weight" in state:
        lora = (state[f"{prefix}.lora.A"], state[f"{prefix}.lora.B"]) if f"{prefix}.lora.A" in state else None
        return state[f"{prefix}.linear.weight"], state.get(f"{prefix}.linear.bias"), lora
    return state[f"{prefix}.weight"], state.get(f"{prefix}.bias"), None


def convert_state_dict(
    state: dict[str, torch.Tensor], config: LoratConfig
) -> tuple[dict[str, torch.Tensor], dict[str, tuple[torch.Tensor, torch.Tensor]], float]:
    """Official state dict -> ``(frozen base weights in our names, LoRA {our linear name: (A, B)}, scaling)``.

    Base weights are the *unmerged* linear weights; fold LoRA in with :func:`merge_lora_weights`.
    """
    hidden = config.backbone_config.hidden_size
    out: dict[str, torch.Tensor] = {}
    lora: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    rank = None

    def put(name: str, weight: torch.Tensor, bias: torch.Tensor | None, ab: tuple | None) -> None:
        nonlocal rank
        out[f"{name}.weight"] = weight
        if bias is not None:
            out[f"{name}.bias"] = bias
        if ab is not None:
            lora[name] = ab
            rank = ab[0].shape[0]

    out["backbone.embeddings.patch_embeddings.projection.weight"] = state["patch_embed.proj.weight"]
    out["backbone.embeddings.patch_embeddings.projection.bias"] = state["patch_embed.proj.bias"]
    out["backbone.layernorm.weight"] = state["norm.weight"]
    out["backbone.layernorm.bias"] = state["norm.bias"]
    if "token_type_embed" in state:
        out["embeddings.position_embeddings"] = state["pos_embed"]
        out["embeddings.token_type_embeddings.weight"] = state["token_type_embed"]
    for key, value in state.items():
        if key.startswith("head."):
            out[key] = value
    layers = sorted({int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))})
    for i in layers:
        src, dst = f"blocks.{i}", f"backbone.encoder.layer.{i}"
        for norm in ("norm1", "norm2"):
            out[f"{dst}.{norm}.weight"] = state[f"{src}.{norm}.weight"]
            out[f"{dst}.{norm}.bias"] = state[f"{src}.{norm}.bias"]
        out[f"{dst}.layer_scale1.lambda1"] = state[f"{src}.ls1.gamma"]
        out[f"{dst}.layer_scale2.lambda1"] = state[f"{src}.ls2.gamma"]
        if f"{src}.attn.qkv.weight" in state:  # fused (merged checkpoint)
            weight, bias = state[f"{src}.attn.qkv.weight"], state.get(f"{src}.attn.qkv.bias")
            for j, proj in enumerate(("q", "k", "v")):
                b = bias[j * hidden : (j + 1) * hidden] if bias is not None else None
                put(f"{dst}.attention.{proj}_proj", weight[j * hidden : (j + 1) * hidden], b, None)
        else:
            for proj in ("q", "k", "v"):
                put(f"{dst}.attention.{proj}_proj", *_split_linear(state, f"{src}.attn.qkv.{proj}"))
        for official, ours in _LINEAR_MAP.items():
            if any(k.startswith(f"{src}.{official}.") for k in state):
                put(f"{dst}.{ours}", *_split_linear(state, f"{src}.{official}"))
        if any(k.startswith(f"{src}.mlp.w12.") for k in state):
            weight, bias, ab = _split_linear(state, f"{src}.mlp.w12")
            half = weight.shape[0] // 2
            for part, sl in (("gate_proj", slice(0, half)), ("up_proj", slice(half, None))):
                part_ab = (ab[0], ab[1][sl]) if ab is not None else None
                put(f"{dst}.mlp.{part}", weight[sl], bias[sl] if bias is not None else None, part_ab)
    scaling = _lora_scaling(state, config, rank) if rank else 1.0
    return out, lora, scaling


def merge_lora_weights(
    base: dict[str, torch.Tensor], lora: dict[str, tuple[torch.Tensor, torch.Tensor]], scaling: float
) -> dict[str, torch.Tensor]:
    """Fold LoRA into the weights: ``W + (B @ A) * scaling``, computed in float32 (official ``lora_merge``)."""
    merged = dict(base)
    for name, (a, b) in lora.items():
        weight = merged[f"{name}.weight"]
        merged[f"{name}.weight"] = (weight.float() + (b.float() @ a.float()) * scaling).to(weight.dtype)
    return merged


def dinov2_from_original_vit(vit_state: dict[str, torch.Tensor], backbone_config: Any):
    """A transformers ``Dinov2Model`` from an official/facebookresearch ``DinoVisionTransformer`` state dict."""
    from transformers import Dinov2Model

    state = {k: v for k, v in vit_state.items() if k not in ("pos_embed", "cls_token", "mask_token")}
    base, _, _ = convert_state_dict(state, LoratConfig(backbone_config=backbone_config))
    weights = {k.removeprefix("backbone."): v for k, v in base.items() if k.startswith("backbone.")}
    weights["embeddings.position_embeddings"] = vit_state["pos_embed"]
    weights["embeddings.cls_token"] = vit_state["cls_token"]
    weights["embeddings.mask_token"] = vit_state["mask_token"].reshape(1, -1)
    model = Dinov2Model(backbone_config)
    model.load_state_dict(weights, strict=True)
    return model.eval()


def config_for_original(
    state: dict[str, torch.Tensor], preset: str | None = None, **overrides: Any
) -> LoratConfig:
    """A `LoratConfig` for an official checkpoint: from ``preset`` (plus ``overrides``), checked against shapes."""
    config = LoratConfig.from_preset(preset, **overrides) if preset else LoratConfig(**overrides)
    hidden = state["patch_embed.proj.weight"].shape[0]
    grid = int(round(state["pos_embed"].shape[1] ** 0.5))
    if hidden != config.backbone_config.hidden_size or grid != config.search_grid:
        raise ValueError(
            f"checkpoint has hidden size {hidden} and a {grid}x{grid} search grid but the config expects "
            f"{config.backbone_config.hidden_size} and {config.search_grid}x{config.search_grid}: wrong --preset?"
        )
    return config


def build_full_model(state: dict[str, torch.Tensor], config: LoratConfig):
    """Merged ``LoratForTracking`` carrying the official weights."""
    from .modeling_lorat import LoratForTracking

    base, lora, scaling = convert_state_dict(state, config)
    model = LoratForTracking(config)
    missing, unexpected = model.load_state_dict(merge_lora_weights(base, lora, scaling), strict=False)
    allowed = {
        "backbone.embeddings.cls_token",
        "backbone.embeddings.mask_token",
        "backbone.embeddings.position_embeddings",
    }
    if unexpected or set(missing) - allowed:
        raise ValueError(
            f"conversion mismatch: missing {sorted(set(missing) - allowed)}, unexpected {unexpected}"
        )
    return model.eval()


def build_adapter_model(state: dict[str, torch.Tensor], config: LoratConfig, backbone: str | Any):
    """``PeftModel`` = DINOv2 ``backbone`` (Hub id, folder or model) + the official LoRA/token types/head.

    Raises ``ValueError`` when the checkpoint has no unmerged LoRA or the backbone's frozen weights differ
    from the checkpoint's.
    """
    from .lora import apply_lora
    from .modeling_lorat import LoratForTracking

    base, lora, scaling = convert_state_dict(state, config)
    if not lora:
        raise ValueError("this checkpoint has LoRA merged into its weights; only --form full is possible")
    model = LoratForTracking.from_backbone(backbone, config=config)
    reference = model.state_dict()
    for key, value in base.items():
        if key.startswith("backbone.") and not torch.allclose(
            reference[key].float(), value.float(), atol=1e-6
        ):
            raise ValueError(
                f"backbone weight {key} differs from the checkpoint's frozen weight: wrong --backbone?"
            )
    if not torch.allclose(
        reference["embeddings.position_embeddings"], base["embeddings.position_embeddings"], atol=1e-5
    ):
        raise ValueError(
            "the backbone's interpolated position embedding differs from the checkpoint's pos_embed"
        )
    if (
        abs(scaling - config.lora_alpha / config.lora_r) > 1e-9
        or next(iter(lora.values()))[0].shape[0] != config.lora_r
    ):
        raise ValueError(
            f"checkpoint LoRA (rank/scaling {scaling}) does not match config r={config.lora_r}, alpha={config.lora_alpha}"
        )
    peft_model = apply_lora(model)
    params = dict(peft_model.named_parameters())
    with torch.no_grad():
        for name, (a, b) in lora.items():
            params[f"base_model.model.{name}.lora_A.default.weight"].copy_(a)
            params[f"base_model.model.{name}.lora_B.default.weight"].copy_(b)
        for key, value in base.items():
            if key.startswith("head."):
                params[f"base_model.model.head.modules_to_save.default.{key[5:]}"].copy_(value)
        params["base_model.model.embeddings.token_type_embeddings.modules_to_save.default.weight"].copy_(
            base["embeddings.token_type_embeddings.weight"]
        )
    return peft_model.eval()


def convert_checkpoint(
    original: str | Path,
    output_dir: str | Path,
    preset: str | None = None,
    form: str = "full",
    backbone: str | None = None,
    overwrite: bool = False,
    **overrides: Any,
) -> Path:
    """Convert ``original`` to ``output_dir`` (``form`` = ``full`` or ``adapter``) with the image processor config.

    The checkpoint is written to a temporary sibling folder and moved into place when complete, so an
    interrupted conversion leaves nothing half-written. Raises ``FileExistsError`` when ``output_dir``
    exists and is not empty (a checkpoint is never overwritten unless ``overwrite=True``).
    """
    import shutil
    import tempfile

    from .image_processing_lorat import LoratImageProcessor
    from .loading_utils import resolve_model_path

    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())) and not overwrite:
        raise FileExistsError(
            f"output folder {output_dir} exists and is not empty (pass --overwrite to replace it)"
        )
    if form not in ("full", "adapter"):
        raise ValueError(f"form must be 'full' or 'adapter', got {form!r}")
    state = load_original_state_dict(original)
    config = config_for_original(state, preset, **overrides)
    if "lora_alpha" in state and state["lora_alpha"].numel() == 1:
        config.lora_alpha = float(state["lora_alpha"])
    try:
        if form == "full":
            model = build_full_model(state, config)
        else:
            config.backbone_name_or_path = backbone or config.backbone_name_or_path
            resolve_model_path(config.backbone_name_or_path, what="--backbone")  # fails fast offline
            model = build_adapter_model(state, config, config.backbone_name_or_path)
    except KeyError as exc:
        raise ValueError(
            f"{original} has no weight {exc.args[0]!r}: an incomplete or non-LoRAT checkpoint"
        ) from None
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}.partial-"))
    try:
        if form == "adapter":
            model.get_base_model().config.save_pretrained(tmp)
        model.save_pretrained(tmp)
        LoratImageProcessor.from_config(config).save_pretrained(tmp)
        old = None
        if output_dir.exists():  # --overwrite: keep the old one until the new one is in place
            old = output_dir.with_name(f".{output_dir.name}.old-{tmp.name[-8:]}")
            output_dir.rename(old)
        tmp.rename(output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    return output_dir
