"""``lorat_export.json``: what an exported LoRAT graph takes and returns, and how to crop and read it.

Everything here is derived from the checkpoint's `LoratConfig` (the one source of the crop settings),
so a deployer without this package knows the contract from the export folder alone.
"""

from __future__ import annotations

from typing import Any

CONTRACT_FILE = "lorat_export.json"
#: The model file inside an export folder, per format.
MODEL_FILES = {"onnx": "model.onnx", "torch-export": "model.pt2"}


def export_contract(
    config: Any,
    format: str,
    fused: bool,
    opset: int | None = None,
    verification: dict[str, Any] | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """The JSON-ready contract of an export of a model with `LoratConfig` ``config``."""
    import torch

    from .. import __version__

    t, s = config.template_size, config.search_size
    g, grid = config.template_grid, config.search_grid
    contract: dict[str, Any] = {
        "format": format,
        "model_file": MODEL_FILES[format],
        "fused": fused,
        "source_model": source,
        "lorat_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "inputs": [
            {
                "name": "pixel_values_template",
                "dtype": "float32",
                "shape": ["batch", 3, t, t],
                "description": "template crop (first frame, area factor template_area_factor), RGB, "
                "normalised (pixel / 255 - image_mean) / image_std",
            },
            {
                "name": "pixel_values_search",
                "dtype": "float32",
                "shape": ["batch", 3, s, s],
                "description": "search-region crop of the current frame (area factor search_area_factor), "
                "normalised like the template",
            },
            {
                "name": "template_mask",
                "dtype": "int64",
                "shape": ["batch", g, g],
                "description": "1 on template patches covered by the target box, 0 elsewhere",
            },
        ],
        "outputs": [
            {
                "name": "score_map",
                "dtype": "float32",
                "shape": ["batch", grid, grid],
                "description": "classification logits per search patch (confidence = sigmoid)",
            },
            {
                "name": "pred_boxes",
                "dtype": "float32",
                "shape": ["batch", grid, grid, 4],
                "description": "box per search patch: x1, y1, x2, y2 normalised to the search crop "
                "(multiply by search_size for crop pixels)",
            },
        ],
        "preprocessing": {
            "channel_order": "RGB",
            "rescale_factor": 1 / 255,
            "image_mean": list(config.image_mean),
            "image_std": list(config.image_std),
            "template_size": t,
            "search_size": s,
            "template_area_factor": config.template_area_factor,
            "search_area_factor": config.search_area_factor,
            "min_object_size": config.min_object_size,
            "patch_size": config.patch_size,
            "crop": "square crop centred on the box (x1, y1, x2, y2 pixels) with side "
            "sqrt((w + p) * (h + p)), p = (area_factor - 1) * (w + h) / 2, resized bilinearly to the crop "
            "size; the part outside the frame is filled with the template frame's per-channel mean. Search "
            "crops centre on the previous box, first enlarged to min_object_size pixels",
        },
        "postprocessing": {
            "window_penalty": config.window_penalty,
            "peak": "argmax over patches of sigmoid(score_map) * (1 - window_penalty) + hann * window_penalty, "
            "hann = outer product of the symmetric Hann window of length search_grid",
            "search_grid": grid,
            "box": "pred_boxes at the peak * search_size, mapped to the frame by the inverse crop transform "
            "and clipped to the frame; confidence = sigmoid(score_map) at the peak",
        },
    }
    if opset is not None:
        contract["onnx_opset"] = opset
    if verification is not None:
        contract["verification"] = verification
    return contract
