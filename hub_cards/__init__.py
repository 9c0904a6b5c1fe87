"""Hub publishing for LoRAT trackers: checkpoint export, model cards, pushing, and the Space demo.

Repository naming scheme (one model repo per variant, plus an adapter-only sibling)::

    USER/lorat-{s,b,l,g}-{224,378}            merged checkpoint (LoRA folded in; loads without peft)
    USER/lorat-{s,b,l,g}-{224,378}-adapter    LoRA + token-type embeddings + head only; its config.json
                                              names the DINOv2 backbone (``backbone_name_or_path``),
                                              which ``LoratForTracking.from_pretrained`` downloads and
                                              wraps with the adapter

``export_checkpoint`` writes either form, ``render_model_card`` writes the README.md, and
``push_to_hub`` uploads only safetensors / json / md files and the ``auto_map`` modeling code.
"""

from .model_card import load_eval_summary, render_model_card, repo_name_for, variant_of
from .push import (
    FORMS,
    export_checkpoint,
    export_space,
    files_to_upload,
    push_space,
    push_to_hub,
)

__all__ = [
    "FORMS",
    "export_checkpoint",
    "export_space",
    "files_to_upload",
    "load_eval_summary",
    "push_space",
    "push_to_hub",
    "render_model_card",
    "repo_name_for",
    "variant_of",
]
