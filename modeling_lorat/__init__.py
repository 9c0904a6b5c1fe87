"""lorat: the LoRAT visual object tracker (ECCV 2024) on transformers, peft and accelerate.

Importing this package registers ``model_type="lorat"`` with the transformers Auto classes.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel

from .configuration_lorat import LORAT_PRESETS, LoratConfig
from .image_processing_lorat import LoratImageProcessor
from .modeling_lorat import LoratForTracking, LoratPreTrainedModel, LoratTrackingOutput
from .pipeline_lorat import register_pipeline

AutoConfig.register("lorat", LoratConfig, exist_ok=True)
AutoModel.register(LoratConfig, LoratForTracking, exist_ok=True)
register_pipeline()
AutoImageProcessor.register(LoratConfig, slow_image_processor_class=LoratImageProcessor, exist_ok=True)

__all__ = [
    "LORAT_PRESETS",
    "LoratConfig",
    "LoratImageProcessor",
    "LoratForTracking",
    "LoratPreTrainedModel",
    "LoratTrackingOutput",
]
__version__ = "0.1.0"

# Checkpoints carry ``auto_map`` + the modeling files, so users without this package can load them
# with ``trust_remote_code=True``.
LoratConfig.register_for_auto_class()
LoratForTracking.register_for_auto_class("AutoModel")
