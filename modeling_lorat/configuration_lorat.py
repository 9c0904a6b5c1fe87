"""`LoratConfig`: the single source of truth for a LoRAT tracker, plus official presets."""

from __future__ import annotations

from typing import Any

from transformers import Dinov2Config, PretrainedConfig

# DINOv2 backbone sizes (facebook/dinov2-{small,base,large,giant}).
_BACKBONES: dict[str, dict[str, Any]] = {
    "s": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, drop_path_rate=0.0),
    "b": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, drop_path_rate=0.0),
    "l": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, drop_path_rate=0.1),
    "g": dict(
        hidden_size=1536,
        num_hidden_layers=40,
        num_attention_heads=24,
        drop_path_rate=0.4,
        use_swiglu_ffn=True,
    ),
}
_BACKBONE_IDS = {
    "s": "facebook/dinov2-small",
    "b": "facebook/dinov2-base",
    "l": "facebook/dinov2-large",
    "g": "facebook/dinov2-giant",
}
# search size -> (template px, search px, search area factor)
_RESOLUTIONS = {224: (112, 224, 4.0), 378: (196, 378, 5.0)}

#: Official variants: ``{"b-224": {...LoratConfig kwargs...}, ...}`` (S/B/L/g x 224/378).
LORAT_PRESETS: dict[str, dict[str, Any]] = {
    f"{size}-{res}": dict(
        backbone_config=dict(
            _BACKBONES[size], image_size=518, patch_size=14, layerscale_value=1.0, mlp_ratio=4
        ),
        backbone_name_or_path=_BACKBONE_IDS[size],
        template_size=_RESOLUTIONS[res][0],
        search_size=_RESOLUTIONS[res][1],
        search_area_factor=_RESOLUTIONS[res][2],
    )
    for size in _BACKBONES
    for res in _RESOLUTIONS
}


class LoratConfig(PretrainedConfig):
    r"""Configuration of [`LoratForTracking`].

    Args:
        backbone_config (`Dinov2Config` or `dict`): the DINOv2 ViT (patch size, width, depth, SwiGLU for giant).
        backbone_name_or_path (`str`, *optional*): Hub id / folder of the pretrained DINOv2 the tracker was
            built from; adapter checkpoints rebuild the frozen backbone from it.
        template_size (`int`): template crop side in pixels (112 for *-224, 196 for *-378).
        search_size (`int`): search-region crop side in pixels (224 or 378).
        template_area_factor (`float`): template crop context factor (2).
        search_area_factor (`float`): search crop context factor (4 for *-224, 5 for *-378).
        min_object_size (`float`): boxes are enlarged to at least this many pixels before cropping (10).
        window_penalty (`float`): weight of the Hann window in the inference peak selection (0.45).
        lora_r, lora_alpha, lora_dropout: LoRA rank, alpha (scaling = alpha / r) and dropout (64, 64, 0).
        lora_init (`str`): ``"bert"`` (official: A and B trunc-normal std 0.02) or ``"peft"`` (peft default, B = 0).
        head_num_layers (`int`): layers of each head MLP (3).
        cls_loss_weight, box_loss_weight (`float`): weights of the IoU-aware BCE and GIoU losses (1, 1).
        initializer_range (`float`): std of trunc-normal inits (0.02).
        image_mean, image_std: input normalisation (ImageNet).
    """

    model_type = "lorat"
    sub_configs = {"backbone_config": Dinov2Config}

    def __init__(
        self,
        backbone_config: Dinov2Config | dict | None = None,
        backbone_name_or_path: str | None = None,
        template_size: int = 112,
        search_size: int = 224,
        template_area_factor: float = 2.0,
        search_area_factor: float = 4.0,
        min_object_size: float = 10.0,
        window_penalty: float = 0.45,
        lora_r: int = 64,
        lora_alpha: float = 64.0,
        lora_dropout: float = 0.0,
        lora_init: str = "bert",
        head_num_layers: int = 3,
        cls_loss_weight: float = 1.0,
        box_loss_weight: float = 1.0,
        initializer_range: float = 0.02,
        image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
        image_std: tuple[float, float, float] = (0.229, 0.224, 0.225),
        **kwargs: Any,
    ) -> None:
        if backbone_config is None:
            backbone_config = Dinov2Config(**LORAT_PRESETS["b-224"]["backbone_config"])
        elif isinstance(backbone_config, dict):
            backbone_config = Dinov2Config(**{k: v for k, v in backbone_config.items() if k != "model_type"})
        self.backbone_config = backbone_config
        self.backbone_name_or_path = backbone_name_or_path
        self.template_size = int(template_size)
        self.search_size = int(search_size)
        self.template_area_factor = float(template_area_factor)
        self.search_area_factor = float(search_area_factor)
        self.min_object_size = float(min_object_size)
        self.window_penalty = float(window_penalty)
        self.lora_r = int(lora_r)
        self.lora_alpha = float(lora_alpha)
        self.lora_dropout = float(lora_dropout)
        self.lora_init = lora_init
        self.head_num_layers = int(head_num_layers)
        self.cls_loss_weight = float(cls_loss_weight)
        self.box_loss_weight = float(box_loss_weight)
        self.initializer_range = float(initializer_range)
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        super().__init__(**kwargs)
        self._validate()

    def _validate(self) -> None:
        patch = self.patch_size
        for name in ("template_size", "search_size"):
            value = getattr(self, name)
            if value <= 0 or value % patch:
                raise ValueError(f"{name}={value} must be a positive multiple of the patch size {patch}")
        if self.template_size > self.search_size:
            raise ValueError(
                f"template_size ({self.template_size}) must not exceed search_size ({self.search_size})"
            )
        if self.lora_init not in ("bert", "peft"):
            raise ValueError(f"lora_init must be 'bert' or 'peft', got {self.lora_init!r}")
        if not 0.0 <= self.window_penalty <= 1.0:
            raise ValueError(f"window_penalty must be in [0, 1], got {self.window_penalty}")

    @property
    def patch_size(self) -> int:
        """ViT patch size in pixels (14 for DINOv2)."""
        patch = self.backbone_config.patch_size
        return int(patch[0] if isinstance(patch, (list, tuple)) else patch)

    @property
    def template_grid(self) -> int:
        """Template tokens per side (8 for *-224)."""
        return self.template_size // self.patch_size

    @property
    def search_grid(self) -> int:
        """Search tokens per side = response-map side (16 for *-224)."""
        return self.search_size // self.patch_size

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> LoratConfig:
        """Config of an official variant: ``s-224 b-224 l-224 g-224 s-378 b-378 l-378 g-378`` (case-insensitive)."""
        key = name.lower().removeprefix("lorat-")
        if key not in LORAT_PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {sorted(LORAT_PRESETS)}")
        kwargs = {**LORAT_PRESETS[key], **overrides}
        kwargs["backbone_config"] = dict(
            LORAT_PRESETS[key]["backbone_config"], **overrides.get("backbone_config", {})
        )
        return cls(**kwargs)
