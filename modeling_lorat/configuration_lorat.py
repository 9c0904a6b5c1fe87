"""`LoratConfig`: the single source of truth for a LoRAT tracker, plus official presets.

A saved config is self-contained for users without this package: :meth:`LoratConfig.save_pretrained`
writes the Python files of the config, the model, the image processor and the
``"single-object-tracking"`` pipeline next to ``config.json`` and names them in its ``auto_map`` and
``custom_pipelines``, so ``AutoModel`` / ``AutoImageProcessor`` / ``pipeline(...)`` load the folder with
``trust_remote_code=True``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
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
#: Crop, normalisation and post-processing settings shared by `LoratConfig`, `LoratImageProcessor` and
#: the training transform (the values of the *-224 presets). The processor reads them from the config.
PROCESSING_DEFAULTS: dict[str, Any] = dict(
    template_size=112,
    search_size=224,
    template_area_factor=2.0,
    search_area_factor=4.0,
    min_object_size=10.0,
    window_penalty=0.45,
    patch_size=14,
    image_mean=(0.485, 0.456, 0.406),
    image_std=(0.229, 0.224, 0.225),
)

#: The pipeline task and its implementation, as ``custom_pipelines`` of a saved ``config.json`` names it.
PIPELINE_TASK = "single-object-tracking"
CUSTOM_PIPELINE = {
    "impl": "pipeline_lorat.SingleObjectTrackingPipeline",
    "pt": ["AutoModel"],
    "type": "image",
}
#: ``auto_map`` entries of a saved ``config.json``: Auto class -> ``module.Class`` shipped next to it.
AUTO_MAP = {
    "AutoConfig": "configuration_lorat.LoratConfig",
    "AutoModel": "modeling_lorat.LoratForTracking",
    "AutoImageProcessor": "image_processing_lorat.LoratImageProcessor",
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
        template_size: int = PROCESSING_DEFAULTS["template_size"],
        search_size: int = PROCESSING_DEFAULTS["search_size"],
        template_area_factor: float = PROCESSING_DEFAULTS["template_area_factor"],
        search_area_factor: float = PROCESSING_DEFAULTS["search_area_factor"],
        min_object_size: float = PROCESSING_DEFAULTS["min_object_size"],
        window_penalty: float = PROCESSING_DEFAULTS["window_penalty"],
        lora_r: int = 64,
        lora_alpha: float = 64.0,
        lora_dropout: float = 0.0,
        lora_init: str = "bert",
        head_num_layers: int = 3,
        cls_loss_weight: float = 1.0,
        box_loss_weight: float = 1.0,
        initializer_range: float = 0.02,
        image_mean: tuple[float, float, float] = PROCESSING_DEFAULTS["image_mean"],
        image_std: tuple[float, float, float] = PROCESSING_DEFAULTS["image_std"],
        **kwargs: Any,
    ) -> None:
        if _pipeline_task_is_native(kwargs.get("custom_pipelines")):
            # this package registers the task itself: a saved config's remote-code entry would make
            # ``pipeline("single-object-tracking", model=...)`` ask for trust_remote_code
            kwargs.pop("custom_pipelines")
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

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs: Any):
        """Write ``config.json`` plus the code that loads the folder without this package (see the module
        docstring): the files of :data:`AUTO_MAP` and of the pipeline, with their relative imports."""
        folder = Path(save_directory)
        if folder.is_file():
            raise ValueError(f"save_directory {folder} is a file, expected a folder")
        folder.mkdir(parents=True, exist_ok=True)
        shipped = ship_remote_code(folder)
        self.auto_map = {
            **(getattr(self, "auto_map", None) or {}),
            **{key: ref for key, ref in AUTO_MAP.items() if ref.split(".")[0] in shipped},
        }
        ship_pipeline = CUSTOM_PIPELINE["impl"].split(".")[0] in shipped
        if ship_pipeline:
            self.custom_pipelines = {PIPELINE_TASK: dict(CUSTOM_PIPELINE)}
        try:
            return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        finally:  # only the file names the pipeline: an in-memory config keeps the native task
            if ship_pipeline and _pipeline_task_is_native(self.custom_pipelines):
                del self.custom_pipelines

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


def remote_code_files() -> dict[str, list[Path]]:
    """Per shipped module (``configuration_lorat``, ``modeling_lorat``, ``image_processing_lorat``,
    ``pipeline_lorat``) the files it needs: itself and, recursively, its relative imports.

    Modules absent from this folder are left out (a remote-code copy holds only what it loaded).
    Raises ``FileNotFoundError`` when a present module imports a sibling that is missing.
    """
    from transformers.dynamic_module_utils import get_relative_import_files

    here = Path(__file__).resolve().parent
    modules = {ref.split(".")[0] for ref in AUTO_MAP.values()} | {CUSTOM_PIPELINE["impl"].split(".")[0]}
    files: dict[str, list[Path]] = {}
    for module in sorted(modules):
        path = here / f"{module}.py"
        if not path.is_file():
            continue
        needed = [path] + [Path(p) for p in get_relative_import_files(path)]
        missing = [p.name for p in needed if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{module}.py imports {', '.join(missing)}, which is not a file next to it: code shipped with "
                "checkpoints must import its siblings only (no sub-packages)"
            )
        files[module] = needed
    return files


def ship_remote_code(folder: str | os.PathLike) -> set[str]:
    """Copy :func:`remote_code_files` into ``folder``; returns the names of the modules shipped."""
    folder = Path(folder)
    files = remote_code_files()
    for path in sorted({p for paths in files.values() for p in paths}):
        target = folder / path.name
        if target.resolve() != path:
            shutil.copyfile(path, target)
    return set(files)


def _pipeline_task_is_native(custom_pipelines: Any) -> bool:
    """True when ``custom_pipelines`` names only this package's task and this package registered it
    with transformers (so the Python process does not need the remote copy)."""
    if not isinstance(custom_pipelines, dict) or set(custom_pipelines) != {PIPELINE_TASK}:
        return False
    pipelines = sys.modules.get("transformers.pipelines")
    registry = getattr(pipelines, "PIPELINE_REGISTRY", None)
    return registry is not None and PIPELINE_TASK in registry.supported_tasks


def finish_package_registration() -> None:
    """Register the package's Auto classes now if its import-time registration could not run.

    ``modeling_lorat/__init__.py`` registers as soon as transformers is imported; when that import comes
    from inside one of the modules the registration needs (e.g. ``from modeling_lorat.tracking_lorat
    import ...`` as the first import), that module is half-done and the registration is skipped. The
    config, model and image-processor modules call this at their end: the whole registration is retried,
    and where another module is still half-done, the Auto classes that are complete are registered
    (``AutoConfig``, ``AutoModel``, ``AutoImageProcessor``), so a saved folder's ``auto_map`` is never
    mistaken for foreign remote code. Nothing happens in a checkpoint's copy of this file (no package).
    """
    package = sys.modules.get(__name__.rpartition(".")[0])
    if getattr(package, "_registered", True) is not False or not callable(getattr(package, "register", None)):
        return
    try:
        package.register()
        return
    except ImportError:  # another of those modules is still half-done
        pass
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    AutoConfig.register(LoratConfig.model_type, LoratConfig, exist_ok=True)
    model = getattr(sys.modules.get(f"{package.__name__}.modeling_lorat"), "LoratForTracking", None)
    if model is not None:
        AutoModel.register(LoratConfig, model, exist_ok=True)
    processing = sys.modules.get(f"{package.__name__}.image_processing_lorat")
    processor = getattr(processing, "LoratImageProcessor", None)
    if processor is not None:
        AutoImageProcessor.register(LoratConfig, slow_image_processor_class=processor, exist_ok=True)


finish_package_registration()
