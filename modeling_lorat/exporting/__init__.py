"""Export a merged LoRAT model for deployment: ONNX (onnxruntime, TensorRT, ...) or ``torch.export``.

``export_model(checkpoint, "out/", format="onnx")`` writes ``out/model.onnx`` (or ``model.pt2``) with a
dynamic batch, ``out/lorat_export.json`` (the input/output contract and the crop settings) and the
checkpoint's ``config.json`` / ``preprocessor_config.json``; ``lorat export`` is its command line.
The exporters themselves are imported only when a model is exported.
"""

from .contract import CONTRACT_FILE, MODEL_FILES, export_contract
from .exporter import DEFAULT_ATOL, FORMATS, ExportResult, check_output_dir, export_model

__all__ = [
    "CONTRACT_FILE",
    "DEFAULT_ATOL",
    "FORMATS",
    "MODEL_FILES",
    "ExportResult",
    "check_output_dir",
    "export_contract",
    "export_model",
]
