"""Golden fixtures for the tracker's geometry from the OFFICIAL LoRAT evaluation code (run by hand).

    python tools/make_tracking_golden.py --official /path/to/LitingLin/LoRAT --out tests/fixtures/golden

For a handful of frames and boxes (edges, partly outside, tiny, larger than the frame) it runs the
official evaluation path and saves what it produces:

* template: ``get_siamfc_cropping_params`` + ``apply_siamfc_cropping`` (area factor 2, bilinear,
  ``align_corners=False``), ImageNet normalisation, the frame mean, and the template foreground mask
  of the ``TemplateFeatForegroundMaskGeneration`` plugin (``get_foreground_bounding_box`` + clip);
* search: ``SiamFCCroppingParameterSimpleProvider`` (area factor 4, min object size 10) around a
  previous box, cropped with the template frame's mean as padding, and the adjusted crop parameters;
* training crops: ``prepare_siamfc_cropping_with_augmentation`` (search: area factor 4, scale jitter
  0.25, translation jitter 3, min object size 10, as the LoRAT config) for random boxes, each with a
  fresh ``np.random.default_rng(seed)``: the parameters and the positive flag;
* post-processing: ``PostProcessing_BoxWithScoreMap`` (Hann window penalty 0.45) on random score
  logits and boxes, the box mapped back with ``reverse_siamfc_cropping_params`` and clipped, and the
  box the provider keeps for the next frame (``update``).

Crops are small (template 28, search 56, patch 14) to keep the fixture small; the template masks are
also generated at the real size (template 112, 8x8 cells) for many random boxes and frame sizes. The official code is
imported from ``--official``; two of its dependencies this tool does not need for real are stubbed
when absent: ``timm`` (``to_2tuple`` and the ImageNet constants) and torchvision's ``Normalize``
(replaced by the same in-place ``sub_(mean).div_(std)``). Nothing of the official code is copied here.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import torch
from official_checkout import parse_args
from safetensors.torch import save_file

TEMPLATE, SEARCH, PATCH = 28, 56, 14
MASK_TEMPLATE, NUM_MASK_CASES = 112, 64
SCALE_JITTER, TRANSLATION_JITTER, NUM_TRAIN_CROPS = 0.25, 3.0, 48
TEMPLATE_FACTOR, SEARCH_FACTOR, MIN_SIZE, PENALTY = 2.0, 4.0, 10.0, 0.45
# (frame W, H), template box xywh, previous box xywh (centre of the search crop)
CASES = [
    ((90, 70), (30.0, 20.0, 24.5, 17.25), (33.0, 22.0, 22.0, 18.0)),
    (
        (61, 103),
        (0.0, 80.3, 15.0, 22.7),
        (-6.0, 85.0, 14.0, 20.0),
    ),  # template on the edge, search partly outside
    ((110, 40), (60.2, 10.1, 3.0, 4.0), (61.0, 11.0, 2.0, 2.0)),  # tiny: min object size kicks in
    ((40, 40), (5.0, 5.0, 30.0, 30.0), (-10.0, -12.0, 70.0, 66.0)),  # previous box larger than the frame
    ((160, 96), (110.75, 60.5, 49.25, 29.5), (90.0, 50.0, 60.0, 45.0)),
]


def stub_missing_modules() -> None:
    try:
        import timm  # noqa: F401
    except ImportError:
        timm = types.ModuleType("timm")
        layers = types.ModuleType("timm.layers")
        layers.to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)
        data = types.ModuleType("timm.data")
        constants = types.ModuleType("timm.data.constants")
        constants.IMAGENET_DEFAULT_MEAN, constants.IMAGENET_DEFAULT_STD = (
            (0.485, 0.456, 0.406),
            (0.229, 0.224, 0.225),
        )
        constants.OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
        constants.OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
        timm.layers, timm.data, data.constants = layers, data, constants
        sys.modules.update(
            {"timm": timm, "timm.layers": layers, "timm.data": data, "timm.data.constants": constants}
        )
    try:
        import torchvision  # noqa: F401
    except ImportError:

        class Normalize:  # torchvision.transforms.Normalize, tensor path
            def __init__(self, mean, std, inplace=False):
                self.mean, self.std, self.inplace = mean, std, inplace

            def __call__(self, x):
                x = x if self.inplace else x.clone()
                mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
                std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
                return x.sub_(mean).div_(std)

        tv = types.ModuleType("torchvision")
        transforms = types.ModuleType("torchvision.transforms")
        transforms.Normalize, transforms.Lambda = Normalize, lambda fn: fn
        tv.transforms = transforms
        sys.modules.update({"torchvision": tv, "torchvision.transforms": transforms})


def main() -> None:
    args = parse_args(__doc__)
    stub_missing_modules()
    from trackit.core.operator.numpy.bbox.format import bbox_xywh_to_xyxy
    from trackit.core.operator.numpy.bbox.utility.image import bbox_clip_to_image_boundary_
    from trackit.core.transforms.dataset_norm_stats import get_dataset_norm_stats_transform
    from trackit.core.utils.siamfc_cropping import (
        apply_siamfc_cropping,
        apply_siamfc_cropping_to_boxes,
        get_siamfc_cropping_params,
        prepare_siamfc_cropping_with_augmentation,
        reverse_siamfc_cropping_params,
    )
    from trackit.runners.evaluation.common.siamfc_search_region_cropping_params_provider.simple import (
        SiamFCCroppingParameterSimpleProvider,
    )
    from trackit.runners.evaluation.distributed.tracker_evaluator.components.post_process.box_with_score_map import (
        PostProcessing_BoxWithScoreMap,
    )
    from trackit.runners.evaluation.distributed.tracker_evaluator.default.pipelines.utils.bbox_mask_gen import (
        get_foreground_bounding_box,
    )

    normalize = get_dataset_norm_stats_transform("imagenet", inplace=True)
    grid_t, grid_s = TEMPLATE // PATCH, SEARCH // PATCH
    post = PostProcessing_BoxWithScoreMap(torch.device("cpu"), (grid_s, grid_s), (SEARCH, SEARCH), PENALTY)
    post.start()
    rng = np.random.default_rng(0)
    tensors: dict[str, torch.Tensor] = {}
    for k, ((w, h), template_box, previous_box) in enumerate(CASES):
        frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(2)]
        images = [torch.from_numpy(f).permute(2, 0, 1).to(torch.float32) for f in frames]
        # --- template (official eval data transform + mask plugin)
        z_box = bbox_xywh_to_xyxy(np.array(template_box, dtype=np.float64))
        z_params = get_siamfc_cropping_params(z_box, TEMPLATE_FACTOR, np.array((TEMPLATE, TEMPLATE)))
        z, z_mean, z_params = apply_siamfc_cropping(
            images[0], np.array((TEMPLATE, TEMPLATE)), z_params, "bilinear", False
        )
        z.div_(255.0)
        normalize(z)
        fg = get_foreground_bounding_box(z_box, z_params, (TEMPLATE / grid_t, TEMPLATE / grid_t))
        bbox_clip_to_image_boundary_(fg, np.array((grid_t, grid_t)))
        mask = torch.zeros((grid_t, grid_t), dtype=torch.long)
        mask[fg[1] : fg[3], fg[0] : fg[2]] = 1
        # --- search crop around the previous box (official provider + pipeline)
        provider = SiamFCCroppingParameterSimpleProvider(SEARCH_FACTOR, MIN_SIZE)
        provider.initialize(bbox_xywh_to_xyxy(np.array(previous_box, dtype=np.float64)))
        x_params = provider.get(np.array((SEARCH, SEARCH)))
        x = torch.empty((3, SEARCH, SEARCH))
        _, _, x_params = apply_siamfc_cropping(
            images[1], np.array((SEARCH, SEARCH)), x_params, "bilinear", False, z_mean, out_image=x
        )
        x = x / 255.0
        normalize(x)
        # --- post-processing on random head outputs
        logits = torch.from_numpy(rng.normal(0.0, 2.0, (1, grid_s, grid_s))).float()
        corners = np.sort(rng.uniform(-0.1, 1.1, (1, grid_s, grid_s, 2, 2)), axis=-2)  # [min/max, x/y]
        boxes = torch.from_numpy(corners.reshape(1, grid_s, grid_s, 4)).float()  # x1, y1, x2, y2
        if k == 3:  # every box below the frame: clipped to nothing, the provider keeps its box
            boxes[..., 1::2] += 1.0
        out = post({"score_map": logits, "boxes": boxes})
        full = apply_siamfc_cropping_to_boxes(
            out["box"].to(torch.float64).numpy(), reverse_siamfc_cropping_params(x_params[None])
        )[0]
        bbox_clip_to_image_boundary_(full, np.array((w, h)))
        provider.update(out["confidence"].item(), full, np.array((w, h)))
        case = {
            "frames": torch.from_numpy(np.stack(frames)),
            "template_box_xywh": torch.tensor(template_box, dtype=torch.float64),
            "previous_box_xywh": torch.tensor(previous_box, dtype=torch.float64),
            "template": z,
            "template_mean": z_mean,
            "template_mask": mask,
            "template_params": torch.from_numpy(z_params),
            "search": x,
            "search_params": torch.from_numpy(x_params),
            "score_logits": logits[0],
            "pred_boxes": boxes[0],
            "confidence": out["confidence"],
            "frame_box_xyxy": torch.from_numpy(full),
            "next_center_box_xyxy": torch.from_numpy(provider.cached_bbox.copy()),
        }
        tensors.update({f"case{k}.{name}": t.contiguous() for name, t in case.items()})
        print(
            k,
            "box",
            np.round(full, 3),
            "confidence",
            round(out["confidence"].item(), 4),
            "mask",
            mask.tolist(),
        )
    # --- template masks at the real template size (8x8 cells), many boxes and frame sizes
    mask_grid = MASK_TEMPLATE // PATCH
    sizes, mask_boxes, masks = [], [], []
    for _ in range(NUM_MASK_CASES):
        w, h = (int(v) for v in rng.integers(16, 400, 2))
        bw, bh = rng.uniform(1.0, w), rng.uniform(1.0, h)
        x0, y0 = rng.uniform(-0.3 * bw, w - 0.7 * bw), rng.uniform(-0.3 * bh, h - 0.7 * bh)
        box = np.round(np.array([x0, y0, bw, bh]), int(rng.integers(0, 3)))  # some on whole pixels
        z_box = bbox_xywh_to_xyxy(box)
        params = get_siamfc_cropping_params(z_box, TEMPLATE_FACTOR, np.array((MASK_TEMPLATE, MASK_TEMPLATE)))
        _, _, params = apply_siamfc_cropping(
            torch.zeros((3, h, w)), np.array((MASK_TEMPLATE, MASK_TEMPLATE)), params, "bilinear", False
        )
        fg = get_foreground_bounding_box(z_box, params, (PATCH, PATCH))
        bbox_clip_to_image_boundary_(fg, np.array((mask_grid, mask_grid)))
        mask = torch.zeros((mask_grid, mask_grid), dtype=torch.uint8)
        mask[fg[1] : fg[3], fg[0] : fg[2]] = 1
        sizes.append((w, h))
        mask_boxes.append(box)
        masks.append(mask)
    tensors["masks.frame_size"] = torch.tensor(sizes, dtype=torch.int64)
    tensors["masks.box_xywh"] = torch.from_numpy(np.stack(mask_boxes))
    tensors["masks.mask"] = torch.stack(masks)
    print("mask foreground cells:", sorted(int(m.sum()) for m in masks))
    # --- training search-crop sampling (jitter + retry rule), one seeded generator per case
    train_boxes, train_params, train_positive = [], [], []
    for seed in range(NUM_TRAIN_CROPS):
        w, h = rng.uniform(0.5, 300.0, 2) if seed % 6 else rng.uniform(0.5, 4.0, 2)  # some too small to see
        x, y = rng.uniform(0.0, 640.0, 2)
        box = np.array([x, y, x + w, y + h])
        params, positive = prepare_siamfc_cropping_with_augmentation(
            box,
            SEARCH_FACTOR,
            np.array((224, 224)),
            SCALE_JITTER,
            TRANSLATION_JITTER,
            np.random.default_rng(seed),
            min_object_size=np.array((MIN_SIZE, MIN_SIZE)),
        )
        train_boxes.append(box)
        train_params.append(params)
        train_positive.append(positive)
    tensors["train_crops.box_xyxy"] = torch.from_numpy(np.stack(train_boxes))
    tensors["train_crops.params"] = torch.from_numpy(np.stack(train_params))
    tensors["train_crops.positive"] = torch.tensor(train_positive)
    print("training crops positive:", sum(train_positive), "of", NUM_TRAIN_CROPS)
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(
        tensors,
        args.out / "tracking_geometry.safetensors",
        metadata={
            "template_size": str(TEMPLATE),
            "search_size": str(SEARCH),
            "patch_size": str(PATCH),
            "template_area_factor": str(TEMPLATE_FACTOR),
            "search_area_factor": str(SEARCH_FACTOR),
            "min_object_size": str(MIN_SIZE),
            "window_penalty": str(PENALTY),
            "num_cases": str(len(CASES)),
            "mask_template_size": str(MASK_TEMPLATE),
            "train_search_size": "224",
            "scale_jitter": str(SCALE_JITTER),
            "translation_jitter": str(TRANSLATION_JITTER),
        },
    )


if __name__ == "__main__":
    main()
