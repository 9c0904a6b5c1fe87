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
_registering = False


def register() -> None:
    """Register ``"lorat"`` with ``AutoConfig`` / ``AutoModel`` / ``AutoImageProcessor``, the
    ``"single-object-tracking"`` pipeline task and the ``auto_map`` of saved checkpoints (idempotent)."""
    global _registered, _registering
    if _registered or _registering:
        return
    _registering = True
    try:
        _register()
    finally:
        _registering = False
    _registered = True


def _register() -> None:
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


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        register()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


class _RegistrationHook(importlib.abc.MetaPathFinder):
    """Runs :func:`register` once transformers is imported, whichever comes first.

    It wraps the loaders of ``transformers`` and of this package's submodules (``importlib.util.find_spec``
    probes pass through). When transformers is first imported half-way through one of this package's
    modules, that module is not complete yet, so the registration waits until the outermost of this
    package's imports in progress has finished. The hook removes itself once registered.
    """

    depth = 0  # this package's module imports in progress

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        if fullname != "transformers" and not fullname.startswith(f"{__name__}."):
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _HookedLoader(spec.loader, self, own=fullname != "transformers")
                return spec
        return None

    def after_import(self) -> None:
        if self.depth or _registered or _registering or "transformers" not in sys.modules:
            return
        try:
            register()
        except (ImportError, AttributeError):  # a module of this package half-imported: at the next chance
            return
        if self in sys.meta_path:
            sys.meta_path.remove(self)


class _HookedLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, hook: _RegistrationHook, own: bool) -> None:
        self.loader, self.hook, self.own = loader, hook, own

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def __getattr__(self, name: str) -> Any:  # get_code, get_source, is_package...: `python -m` needs them
        return getattr(self.loader, name)

    def exec_module(self, module) -> None:
        if self.own:
            self.hook.depth += 1
        try:
            self.loader.exec_module(module)
        finally:  # the module keeps its own loader
            module.__spec__.loader = module.__loader__ = self.loader
            if self.own:
                self.hook.depth -= 1
        self.hook.after_import()


if "transformers" in sys.modules:
    register()
elif not any(isinstance(finder, _RegistrationHook) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegistrationHook())
