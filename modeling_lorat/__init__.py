"""lorat: the LoRAT visual object tracker (ECCV 2024) on transformers, peft and accelerate.

Importing this package registers ``model_type="lorat"`` with the transformers Auto classes.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel

from .configuration_lorat import LORAT_PRESETS, LoratConfig
from .image_processing_lorat import LoratImageProcessor
from .modeling_lorat import LoratForTracking, LoratPreTrainedModel, LoratTrackingOutput

AutoConfig.register("lorat", LoratConfig, exist_ok=True)
AutoModel.register(LoratConfig, LoratForTracking, exist_ok=True)
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
