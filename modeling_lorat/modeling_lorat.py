"""LoRAT: a one-stream tracker on a frozen DINOv2 backbone (transformers `Dinov2Model`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Dinov2Model, PreTrainedModel
from transformers import initialization as init
from transformers.models.dinov2.modeling_dinov2 import (
    Dinov2Attention,
    Dinov2Embeddings,
    Dinov2Layer,
    Dinov2LayerScale,
)
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_lorat import LoratConfig, finish_package_registration
from .loss_lorat import lorat_loss

TEMPLATE_BACKGROUND, TEMPLATE_FOREGROUND, SEARCH_REGION = 0, 1, 2
#: Entries of `LoratImageProcessor` outputs that are not model inputs; ``model(**processor(...))`` drops them.
PROCESSOR_ONLY_KEYS = ("crop_info", "template_image_mean")


@dataclass
class LoratTrackingOutput(ModelOutput):
    """Output of [`LoratForTracking`].

    Args:
        loss: scalar training loss (only with ``labels``).
        loss_dict: ``{"loss_cls", "loss_box"}`` detached parts of the loss (only with ``labels``).
        score_map: ``(B, Hs, Ws)`` float32 classification logits on the search grid.
        pred_boxes: ``(B, Hs, Ws, 4)`` float32 boxes, normalised ``x1, y1, x2, y2`` in the search crop.
        last_hidden_state: ``(B, Hs*Ws, C)`` search tokens after the final layer norm.
        hidden_states: with ``output_hidden_states``: the joint sequence ``(B, Ht*Wt + Hs*Ws, C)``
            (template tokens first) entering the first layer and leaving each layer (before the final norm):
            ``num_hidden_layers + 1`` tensors.
        attentions: with ``output_attentions`` (``attn_implementation="eager"``): each layer's attention
            weights ``(B, heads, N, N)`` over the joint sequence.
    """

    loss: torch.Tensor | None = None
    loss_dict: dict[str, torch.Tensor] | None = None
    score_map: torch.Tensor | None = None
    pred_boxes: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


def interpolate_position_embeddings(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """DINOv2 patch position embeddings ``(1, N, C)`` (no CLS entry, square grid) -> ``(1, grid*grid, C)``.

    Bicubic with an explicit output size, computed in float32 (official ``interpolate_pos_encoding``
    with ``interpolate_offset=0``).
    """
    old = int(round(pos.shape[1] ** 0.5))
    if old * old != pos.shape[1]:
        raise ValueError(f"position embeddings of {pos.shape[1]} entries are not a square grid")
    if old == grid:
        return pos.clone()
    dim = pos.shape[-1]
    grid_pos = pos.float().reshape(1, old, old, dim).permute(0, 3, 1, 2)
    grid_pos = F.interpolate(grid_pos, size=(grid, grid), mode="bicubic")
    return grid_pos.permute(0, 2, 3, 1).reshape(1, grid * grid, dim).to(pos.dtype)


class LoratEmbeddings(nn.Module):
    """Decoupled input embedding: shared search-grid position embedding + token-type embedding.

    The template uses the top-left ``Ht x Wt`` sub-grid of the search position embedding; token types
    are 0 = template background, 1 = template foreground, 2 = search region.
    """

    def __init__(self, config: LoratConfig) -> None:
        super().__init__()
        hidden = config.backbone_config.hidden_size
        self.template_grid = config.template_grid
        self.search_grid = config.search_grid
        self.position_embeddings = nn.Parameter(torch.zeros(1, self.search_grid**2, hidden))
        self.token_type_embeddings = nn.Embedding(3, hidden)

    def forward(
        self, template_tokens: torch.Tensor, search_tokens: torch.Tensor, template_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, Nt, C), (B, Ns, C), (B, Ht, Wt) int`` -> embedded template and search tokens."""
        hidden = self.position_embeddings.shape[-1]
        t, s = self.template_grid, self.search_grid
        pos = self.position_embeddings
        template_pos = pos.view(1, s, s, hidden)[:, :t, :t, :].reshape(1, t * t, hidden)
        template = template_tokens + template_pos + self.token_type_embeddings(template_mask.flatten(1))
        search_ids = template_mask.new_full((1, 1), SEARCH_REGION)
        search = search_tokens + pos + self.token_type_embeddings(search_ids)
        return template, search


class LoratMLP(nn.Module):
    """``num_layers`` Linear layers, GELU between them (official ``Mlp``)."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_features] + [hidden_features] * (num_layers - 1) + [out_features]
        self.layers = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(num_layers))
        self.act = nn.GELU()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            hidden_states = layer(hidden_states)
            if i != len(self.layers) - 1:
                hidden_states = self.act(hidden_states)
        return hidden_states


class LoratHead(nn.Module):
    """Anchor-free MLP head: per search token one logit and a ``(l, t, r, b)`` distance box."""

    def __init__(self, config: LoratConfig) -> None:
        super().__init__()
        hidden = config.backbone_config.hidden_size
        self.grid = config.search_grid
        self.cls_mlp = LoratMLP(hidden, hidden, 1, config.head_num_layers)
        self.reg_mlp = LoratMLP(hidden, hidden, 4, config.head_num_layers)
        self.register_buffer("cell_centers", self.compute_cell_centers(self.grid), persistent=False)

    @staticmethod
    def compute_cell_centers(grid: int) -> torch.Tensor:
        """``(grid, grid, 2)`` normalised ``(x, y)`` centres of the response-map cells."""
        centers = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid
        cy, cx = torch.meshgrid(centers, centers, indexing="ij")
        return torch.stack((cx, cy), dim=-1)

    def forward(self, search_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, H*W, C)`` -> score logits ``(B, H, W)`` and normalised xyxy boxes ``(B, H, W, 4)`` (float32)."""
        batch = search_tokens.shape[0]
        score_map = self.cls_mlp(search_tokens).float().view(batch, self.grid, self.grid)
        ltrb = self.reg_mlp(search_tokens).float().view(batch, self.grid, self.grid, 4).sigmoid()
        centers = self.cell_centers.to(ltrb.dtype)
        boxes = torch.cat((centers - ltrb[..., :2], centers + ltrb[..., 2:]), dim=-1)
        return score_map, boxes


class LoratPreTrainedModel(PreTrainedModel):
    """Weight init and loading conventions shared by LoRAT models."""

    config_class = LoratConfig
    config: LoratConfig
    # There is no base LoRAT model: the prefix names none of this class's attributes, as Dinov2Model's
    # "dinov2" does. It cannot be "backbone": transformers' loader strips/adds the base-model prefix per key
    # whenever the other form exists in the model, and LoRAT's own "embeddings.position_embeddings" is the
    # stripped form of the backbone's "backbone.embeddings.position_embeddings", so the two would be swapped.
    base_model_prefix = "lorat"
    main_input_name = "pixel_values_search"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["Dinov2Layer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    # recorded by the backbone encoder's ``capture_outputs`` and returned in `LoratTrackingOutput`
    _can_record_outputs = {"hidden_states": Dinov2Layer, "attentions": Dinov2Attention}

    @property
    def is_gradient_checkpointing(self) -> bool:
        """transformers' deprecated alias of ``is_activation_checkpointing``, answered without its
        ``FutureWarning``: peft (0.21) still reads it whenever it wraps or loads an adapter."""
        return self.is_activation_checkpointing

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init.trunc_normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.trunc_normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, LoratHead):
            init.copy_(module.cell_centers, module.compute_cell_centers(module.grid))
        elif isinstance(module, LoratEmbeddings):
            init.trunc_normal_(module.position_embeddings, mean=0.0, std=std)
        elif isinstance(module, Dinov2Embeddings):
            init.trunc_normal_(module.position_embeddings, mean=0.0, std=std)
            init.trunc_normal_(module.cls_token, mean=0.0, std=std)
            if module.mask_token is not None:
                init.zeros_(module.mask_token)
        elif isinstance(module, Dinov2LayerScale):
            init.constant_(module.lambda1, self.config.backbone_config.layerscale_value)


class LoratForTracking(LoratPreTrainedModel):
    """LoRAT tracker: DINOv2 patch embedding -> decoupled embeddings -> DINOv2 blocks on
    ``concat(template, search)`` -> final norm -> MLP head on the search tokens.

    LoRA is added with peft (see :mod:`modeling_lorat.lora`); everything in this class except the
    token-type embeddings and the head is frozen during training.
    """

    def __init__(self, config: LoratConfig) -> None:
        super().__init__(config)
        self.backbone = Dinov2Model(config.backbone_config)
        self.embeddings = LoratEmbeddings(config)
        self.head = LoratHead(config)
        self._fused: nn.Module | None = None
        self.post_init()

    # ------------------------------------------------------------------ inference fast path
    @torch.no_grad()
    def fuse_for_inference(self) -> LoratForTracking:
        """Fuse the merged model for inference, in place (see :mod:`modeling_lorat.fused_inference`):
        q/k/v in one projection, layer scales folded, embeddings precomputed. Fewer kernels per forward
        (the batch-1 GPU forward is bound by kernel launches); outputs equal the unfused model up to
        rounding. The model can no longer train or ``save_pretrained``: reload the checkpoint for that.
        """
        from .fused_inference import FusedLoratInference

        if self._fused is None:
            self._fused = FusedLoratInference(self.eval())
            self.backbone.encoder.layer = nn.ModuleList()  # the fused layers hold what is still needed
        return self

    @property
    def is_fused(self) -> bool:
        """Whether :meth:`fuse_for_inference` was applied."""
        return self._fused is not None

    def save_pretrained(self, *args: Any, **kwargs: Any) -> Any:
        if self._fused is not None:
            raise RuntimeError(
                "this model was fused for inference (fuse_for_inference) and no longer has the standard "
                "Dinov2 layout; save the checkpoint it was loaded from instead"
            )
        return super().save_pretrained(*args, **kwargs)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_backbone(
        cls,
        backbone: str | os.PathLike | Dinov2Model,
        preset: str | None = None,
        config: LoratConfig | None = None,
        **kwargs: Any,
    ) -> LoratForTracking:
        """A fresh tracker on pretrained DINOv2 weights (e.g. ``"facebook/dinov2-base"`` or a local folder).

        The shared search position embedding is DINOv2's patch position embedding interpolated once to the
        search grid. ``preset`` picks template/search sizes (``"b-224"``...); extra ``kwargs`` go to the
        config (or to ``Dinov2Model.from_pretrained`` for ``attn_implementation``/``dtype``).
        """
        load_kwargs = {
            k: kwargs.pop(k) for k in ("attn_implementation", "dtype", "revision", "token") if k in kwargs
        }
        if isinstance(backbone, Dinov2Model):
            dinov2, name = backbone, getattr(backbone, "name_or_path", None)
        else:
            dinov2, name = Dinov2Model.from_pretrained(backbone, **load_kwargs), str(backbone)
        backbone_cfg = dinov2.config.to_dict()
        if config is None:
            if preset is not None:
                preset_cfg = LoratConfig.from_preset(preset)
                for key in ("hidden_size", "num_hidden_layers", "use_swiglu_ffn"):
                    if getattr(preset_cfg.backbone_config, key) != backbone_cfg.get(key):
                        raise ValueError(
                            f"backbone {name!r} has {key}={backbone_cfg.get(key)} but preset {preset!r} "
                            f"expects {getattr(preset_cfg.backbone_config, key)}"
                        )
                backbone_cfg["drop_path_rate"] = preset_cfg.backbone_config.drop_path_rate
                kwargs = {**preset_cfg.to_diff_dict(), **kwargs}
                # the backbone (config and name) is the one loaded here, not the preset's default
                for key in ("backbone_config", "backbone_name_or_path", "model_type", "transformers_version"):
                    kwargs.pop(key, None)
            config = LoratConfig(backbone_config=backbone_cfg, backbone_name_or_path=name, **kwargs)
        model = cls(config)
        if "attn_implementation" in load_kwargs:
            model.set_attn_implementation(load_kwargs["attn_implementation"])
        missing, unexpected = model.backbone.load_state_dict(dinov2.state_dict(), strict=False)
        if missing or unexpected:
            raise ValueError(f"backbone weights do not fit: missing {missing}, unexpected {unexpected}")
        patch_pos = dinov2.embeddings.position_embeddings.detach()[:, 1:]
        model.embeddings.position_embeddings.data.copy_(
            interpolate_position_embeddings(patch_pos, config.search_grid)
        )
        return model.to(dinov2.dtype)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any):
        """Load a full checkpoint (``model.safetensors``) or an adapter checkpoint (``adapter_config.json`` +
        ``adapter_model.safetensors`` + ``config.json``), from a local folder or the Hub.

        Adapter checkpoints rebuild the frozen backbone from ``config.backbone_name_or_path`` and apply the
        adapter; LoRA is merged into the weights unless ``merge_lora=False`` (then a ``PeftModel`` is returned).

        Raises ``FileNotFoundError`` at once for a missing folder or an uncached Hub id while offline, and
        :class:`~modeling_lorat.loading_utils.ModelLoadError` for damaged files, NaN/Inf weights or an
        adapter that does not fit its backbone (see :mod:`modeling_lorat.loading_utils`).
        """
        from .loading_utils import load_lorat_checkpoint

        return load_lorat_checkpoint(
            cls, super().from_pretrained, pretrained_model_name_or_path, *args, **kwargs
        )

    # ------------------------------------------------------------------ forward
    def _check_inputs(self, template: torch.Tensor, search: torch.Tensor, mask: torch.Tensor) -> None:
        cfg = self.config
        for name, tensor, size in (
            ("pixel_values_template", template, cfg.template_size),
            ("pixel_values_search", search, cfg.search_size),
        ):
            if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
                raise ValueError(
                    f"{name} must be a floating-point tensor, got {getattr(tensor, 'dtype', type(tensor))}"
                )
            if tensor.ndim != 4 or tuple(tensor.shape[1:]) != (cfg.backbone_config.num_channels, size, size):
                raise ValueError(f"{name} must have shape (B, 3, {size}, {size}), got {tuple(tensor.shape)}")
        if template.shape[0] != search.shape[0]:
            raise ValueError(f"batch sizes differ: template {template.shape[0]} vs search {search.shape[0]}")
        grid = cfg.template_grid
        if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != (template.shape[0], grid, grid):
            raise ValueError(
                f"template_mask must have shape (B, {grid}, {grid}), got {tuple(getattr(mask, 'shape', ()))}"
            )
        if mask.is_floating_point() or mask.is_complex():
            raise ValueError(f"template_mask must be an integer or bool tensor of 0/1, got {mask.dtype}")
        # value checks read the data: only on CPU tensors, so a GPU forward never waits on the host
        if not torch.compiler.is_compiling() and template.device.type == "cpu":
            if not (torch.isfinite(template).all() and torch.isfinite(search).all()):
                raise ValueError("pixel values contain NaN or Inf")
            if ((mask < 0) | (mask > 1)).any():
                raise ValueError("template_mask values must be 0 (background) or 1 (foreground)")

    def _recording(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``output_hidden_states`` / ``output_attentions`` for the encoder (defaults from the config);
        raises ``ValueError`` where they cannot be honoured instead of returning nothing."""
        flags = {
            key: kwargs.pop(key) if key in kwargs else getattr(self.config, key, False)
            for key in ("output_hidden_states", "output_attentions")
        }
        if self._fused is not None and any(flags.values()):
            raise ValueError(
                "a model fused for inference (fuse_for_inference) does not record hidden states or attentions; "
                "reload the checkpoint without fusing to get them"
            )
        implementation = self.backbone.config._attn_implementation
        if flags["output_attentions"] and implementation != "eager":
            raise ValueError(
                f"output_attentions needs attn_implementation='eager' (the {implementation!r} kernels do not "
                "return attention weights): load the model with attn_implementation='eager'"
            )
        return {key: value for key, value in flags.items() if value}

    @can_return_tuple
    def forward(
        self,
        pixel_values_template: torch.Tensor,
        pixel_values_search: torch.Tensor,
        template_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> LoratTrackingOutput | tuple:
        r"""
        Args:
            pixel_values_template: ``(B, 3, Ht, Wt)`` normalised template crops.
            pixel_values_search: ``(B, 3, Hs, Ws)`` normalised search-region crops.
            template_mask: ``(B, Ht/14, Wt/14)`` int/bool, 1 where the template cell is on the target.
            labels: optional ``(B, 4)`` normalised xyxy target boxes in the search crop (NaN row = negative pair).
            output_hidden_states, output_attentions: record the joint sequence after every layer / the
                attention weights (eager attention only); not available on a fused model.
            return_dict: ``False`` returns a tuple of the non-``None`` fields.
            kwargs: further transformers attention kwargs. ``crop_info`` and ``template_image_mean`` (the
                processor's bookkeeping) are ignored, so ``model(**processor(...))`` works.

        Returns:
            [`LoratTrackingOutput`] with ``score_map`` (logits) and ``pred_boxes``; ``loss`` when ``labels``.
        """
        for key in PROCESSOR_ONLY_KEYS:
            kwargs.pop(key, None)
        self._check_inputs(pixel_values_template, pixel_values_search, template_mask)
        recording = self._recording(kwargs)
        if self._fused is not None:
            if labels is not None or self.training:
                raise RuntimeError("a model fused for inference cannot train; reload it to train")
            score_map, pred_boxes, search_tokens = self._fused(
                pixel_values_template, pixel_values_search, template_mask
            )
            return LoratTrackingOutput(
                score_map=score_map, pred_boxes=pred_boxes, last_hidden_state=search_tokens
            )
        patch_embed = self.backbone.embeddings.patch_embeddings
        template, search = self.embeddings(
            patch_embed(pixel_values_template), patch_embed(pixel_values_search), template_mask.long()
        )
        hidden = torch.cat((template, search), dim=1)
        encoded = self.backbone.encoder(hidden, **recording, **kwargs)
        search_tokens = self.backbone.layernorm(encoded.last_hidden_state[:, template.shape[1] :])
        score_map, pred_boxes = self.head(search_tokens)

        loss = loss_dict = None
        if labels is not None:
            if labels.shape != (score_map.shape[0], 4):
                raise ValueError(
                    f"labels must have shape (B, 4) = ({score_map.shape[0]}, 4), got {tuple(labels.shape)}"
                )
            loss, loss_dict = lorat_loss(
                score_map,
                pred_boxes,
                labels.to(pred_boxes.device),
                self.config.cls_loss_weight,
                self.config.box_loss_weight,
            )
        return LoratTrackingOutput(
            loss=loss,
            loss_dict=loss_dict,
            score_map=score_map,
            pred_boxes=pred_boxes,
            last_hidden_state=search_tokens,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )


finish_package_registration()
