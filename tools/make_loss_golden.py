"""Golden fixture for the training loss from the OFFICIAL LoRAT criterion (run by hand, output committed).

    python tools/make_loss_golden.py --official /path/to/LitingLin/LoRAT --out tests/fixtures/golden

Builds the official ``SimpleCriteria`` exactly as ``build_box_with_score_map_criteria`` does for the
LoRAT config (BCE-with-logits, IoU-aware classification target, GIoU regression, weights 1) and the
official labels (``positive_sample_assignment`` on search-crop pixel boxes clipped to the crop, boxes
normalised and cast to float32, collated as the official collator does), on random head outputs for
a B-224-sized response map (16x16 cells, search 224). Saves inputs, the two loss terms and the
gradients with respect to the score map and the boxes to ``loss.safetensors``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from official_checkout import parse_args
from safetensors.torch import save_file

SEARCH, GRID, BATCH = 224, 16, 6


def load_label_assignment(official: Path):
    """The official ``positive_sample_assignment``, loaded from its file alone (its package's
    ``__init__`` pulls in the whole training worker: torchvision, tabulate, ...)."""
    import importlib.util
    import types

    for name in ("trackit.data.utils.collation_helper", "trackit.data.protocol.train_input"):
        stub = types.ModuleType(name)  # only used by the collator, which this tool does not call
        stub.collate_element_as_torch_tensor = stub.TrainData = None
        sys.modules.setdefault(name, stub)
    path = official / "trackit/data/methods/siamese_tracker_train/transform/default/plugin"
    spec = importlib.util.spec_from_file_location(
        "official_label_gen", path / "box_with_score_map_label_gen/__init__.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.positive_sample_assignment


def main() -> None:
    args = parse_args(__doc__)
    from trackit.core.operator.numpy.bbox.utility.image import bbox_clip_to_image_boundary_
    from trackit.criteria.methods.box_with_score_map import SimpleCriteria
    from trackit.criteria.modules.iou_loss import GIoULoss

    positive_sample_assignment = load_label_assignment(args.official)

    rng = np.random.default_rng(0)
    gt_boxes, batch_ids, cell_ids = [], [], []
    for b in range(BATCH):
        # a crop-pixel box, sometimes hanging over the crop edge (the official pipeline clips it)
        w, h = rng.uniform(4.0, 150.0, 2)
        x, y = rng.uniform(-0.4 * w, SEARCH - 0.6 * w), rng.uniform(-0.4 * h, SEARCH - 0.6 * h)
        box = np.array([x, y, x + w, y + h])
        if b == 0:
            box = np.array([16.0, 32.0, 48.0, 47.99995])  # edges exactly on / just inside cell boundaries
        bbox_clip_to_image_boundary_(box, np.array((SEARCH, SEARCH)))
        cells = positive_sample_assignment(box, np.array((GRID, GRID)), np.array((SEARCH, SEARCH)))
        gt_boxes.append((box / SEARCH).astype(np.float32))
        batch_ids.append(torch.full((len(cells),), b, dtype=torch.long))
        cell_ids.append(torch.from_numpy(cells).long())
    target_boxes = torch.from_numpy(np.stack(gt_boxes))
    g = torch.Generator().manual_seed(0)
    score_map = (torch.randn(BATCH, GRID, GRID, generator=g) * 2).requires_grad_()
    corners = torch.sort(torch.rand(BATCH, GRID, GRID, 2, 2, generator=g) * 1.2 - 0.1, dim=-2).values
    pred_boxes = corners.reshape(BATCH, GRID, GRID, 4).requires_grad_()  # x1, y1, x2, y2

    criteria = SimpleCriteria(
        torch.nn.BCEWithLogitsLoss(reduction="none"), GIoULoss(), True, 1.0, 1.0, "bce", "iou"
    )
    batch_idx, cell_idx = torch.cat(batch_ids), torch.cat(cell_ids)
    targets = {
        "num_positive_samples": torch.tensor([float(len(batch_idx))]),
        "positive_sample_batch_dim_indices": batch_idx,
        "positive_sample_map_dim_indices": cell_idx,
        "boxes": target_boxes,
    }
    out = criteria({"score_map": score_map, "boxes": pred_boxes}, targets)
    out.loss.backward()
    metrics = out.metrics
    print("loss", out.loss.item(), {k: v.item() for k, v in metrics.items()}, "positives", len(batch_idx))
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(
        {
            "score_map": score_map.detach(),
            "pred_boxes": pred_boxes.detach(),
            "target_boxes": target_boxes,
            "positive_batch": batch_idx,
            "positive_cell": cell_idx,
            "loss": out.loss.detach().reshape(1),
            "loss_cls": metrics["Loss/bce"].reshape(1),
            "loss_box": metrics["Loss/iou"].reshape(1),
            "grad_score_map": score_map.grad,
            "grad_pred_boxes": pred_boxes.grad,
        },
        args.out / "loss.safetensors",
    )


if __name__ == "__main__":
    main()
