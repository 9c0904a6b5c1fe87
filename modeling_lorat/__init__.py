"""lorat: the LoRAT visual object tracker (ECCV 2024) on transformers, peft and accelerate.

Importing this package registers ``model_type="lorat"`` with the transformers Auto classes and the
``"single-object-tracking"`` pipeline task. The import itself stays light (the ``lorat`` command line
answers ``--help`` without loading torch or transformers): the public names are loaded on first use, and
the registration runs as soon as transformers is imported, before or after this package.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "LORAT_PRESETS": "configuration_lorat",
    "LoratConfig": "configuration_lorat",
    "LoratImageProcessor": "image_processing_lorat",
    "LoratForTracking": "modeling_lorat",
    "LoratPreTrainedModel": "modeling_lorat",
    "LoratTrackingOutput": "modeling_lorat",
}
__all__ = list(_EXPORTS)
_registered = False


def register() -> None:
    """Register ``"lorat"`` with ``AutoConfig`` / ``AutoModel`` / ``AutoImageProcessor``, the
    ``"single-object-tracking"`` pipeline task and the ``auto_map`` of saved checkpoints (idempotent)."""
    global _registered
    if _registered:
        return
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    from .configuration_lorat import LoratConfig
    from .image_processing_lorat import LoratImageProcessor
    from .modeling_lorat import LoratForTracking
    from .pipeline_lorat import register_pipeline

    AutoConfig.register("lorat", LoratConfig, exist_ok=True)
    AutoModel.register(LoratConfig, LoratForTracking, exist_ok=True)
    register_pipeline()
    AutoImageProcessor.register(LoratConfig, slow_image_processor_class=LoratImageProcessor, exist_ok=True)
    # Checkpoints carry ``auto_map`` + the modeling files, so users without this package can load them
    # with ``trust_remote_code=True``.
    LoratConfig.register_for_auto_class()
    LoratForTracking.register_for_auto_class("AutoModel")
    _registered = True


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        register()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


class _RegisterAfterTransformers(importlib.abc.MetaPathFinder):
    """Runs :func:`register` right after ``import transformers`` completes, when this package was imported
    first (``importlib.util.find_spec`` probes pass through); removes itself after that import."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        if fullname != "transformers":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisteringLoader(spec.loader, self)
                return spec
        return None


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, finder: _RegisterAfterTransformers) -> None:
        self.loader, self.finder = loader, finder

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        try:
            self.loader.exec_module(module)
        finally:  # transformers keeps its own loader; the hook is done
            module.__spec__.loader = module.__loader__ = self.loader
            if self.finder in sys.meta_path:
                sys.meta_path.remove(self.finder)
        try:
            register()
        except (ImportError, AttributeError):  # transformers imported half-way through another package's
            pass  # import: the registration then happens on first use of this package's names


if "transformers" in sys.modules:
    register()
elif not any(isinstance(finder, _RegisterAfterTransformers) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterTransformers())
