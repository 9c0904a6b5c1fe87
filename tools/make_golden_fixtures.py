"""Generate golden fixtures from the OFFICIAL LoRAT implementation (run by hand, outputs committed).

    python tools/make_golden_fixtures.py --official /path/to/LitingLin/LoRAT --out tests/fixtures/golden

Builds the official ``LoRAT_DINOv2`` (trackit/models/methods/LoRAT/lorat.py) on a tiny random DINOv2
(one MLP variant, one SwiGLU "giant-style" variant), enables the official LoRA (r=4, alpha=8 so the
scaling is 2, "bert" init), randomises every weight, and saves as safetensors:

* ``official_<variant>.safetensors``  — the official tracker state dict (LoRA unmerged, with lora_alpha);
* ``official_<variant>_vit.safetensors`` — the tiny DINOv2 (``DinoVisionTransformer``) it was built from;
* ``io_<variant>.safetensors`` — inputs (z, x, z_feat_mask) and outputs (score_map, boxes), unmerged and merged;
* ``meta.json`` — the tiny sizes, so the tests can build the matching ``LoratConfig``.

Nothing of the official code is copied into this repository; it is imported from ``--official``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from official_checkout import parse_args
from safetensors.torch import save_file

TINY = dict(embed_dim=32, depth=2, num_heads=2, img_size=70, patch_size=14)
TEMPLATE_FEAT, SEARCH_FEAT = (2, 2), (4, 4)
LORA_R, LORA_ALPHA = 4, 8.0
VARIANTS = {
    "mlp": dict(ffn_layer="mlp", mlp_ratio=2.0),
    "swiglu": dict(ffn_layer="swiglufused", mlp_ratio=4.0),
}


def build(official: Path, variant: str, seed: int):
    sys.path.insert(0, str(official))
    from trackit.models.backbone.dinov2.model import DinoVisionTransformer
    from trackit.models.methods.LoRAT.funcs.vit_backbone_freeze import freeze_vit_backbone_
    from trackit.models.methods.LoRAT.funcs.vit_lora_utils import enable_lora_
    from trackit.models.methods.LoRAT.lorat import LoRAT_DINOv2

    torch.manual_seed(seed)
    vit = DinoVisionTransformer(init_values=1.0, block_chunks=0, **TINY, **VARIANTS[variant])
    with torch.no_grad():
        for p in vit.parameters():
            p.normal_(0, 0.2)
    vit_state = {k: v.clone().contiguous() for k, v in vit.state_dict().items()}
    model = LoRAT_DINOv2(vit, TEMPLATE_FEAT, SEARCH_FEAT)
    freeze_vit_backbone_(model)
    enable_lora_(model, LORA_R, LORA_ALPHA, 0.0, False)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("token_type_embed", "head.")) or ".lora." in name:
                p.normal_(0, 0.2)
    return model.eval(), vit_state


def main() -> None:
    args = parse_args(__doc__)
    args.out.mkdir(parents=True, exist_ok=True)
    for index, variant in enumerate(VARIANTS):
        model, vit_state = build(args.official, variant, seed=index)
        g = torch.Generator().manual_seed(100 + index)
        z = torch.randn(2, 3, TEMPLATE_FEAT[1] * 14, TEMPLATE_FEAT[0] * 14, generator=g)
        x = torch.randn(2, 3, SEARCH_FEAT[1] * 14, SEARCH_FEAT[0] * 14, generator=g)
        mask = torch.randint(0, 2, (2, TEMPLATE_FEAT[1], TEMPLATE_FEAT[0]), generator=g)
        with torch.no_grad():
            out = model(z, x, mask)
            state = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
            for module in model.modules():
                if hasattr(module, "merge") and hasattr(module, "lora"):
                    module.merge()
            merged = model(z, x, mask)
        save_file(state, args.out / f"official_{variant}.safetensors")
        save_file(vit_state, args.out / f"official_{variant}_vit.safetensors")
        save_file(
            {
                "z": z,
                "x": x,
                "z_feat_mask": mask,
                "score_map": out["score_map"],
                "boxes": out["boxes"],
                "score_map_merged": merged["score_map"],
                "boxes_merged": merged["boxes"],
            },
            args.out / f"io_{variant}.safetensors",
        )
        print(
            variant,
            "keys:",
            len(state),
            "score range",
            out["score_map"].min().item(),
            out["score_map"].max().item(),
        )
    meta = dict(
        TINY,
        template_feat=TEMPLATE_FEAT,
        search_feat=SEARCH_FEAT,
        lora_r=LORA_R,
        lora_alpha=LORA_ALPHA,
        variants=VARIANTS,
        layerscale_init=1.0,
    )
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
