"""GPU speed of lorat against the official LoRAT code, side by side in one run on the same card.

    python benchmarks/bench_vs_official.py --official .official [--sections forward,graphs,train] [--compile]

``--official`` is a checkout of github.com/LitingLin/LoRAT (its ``trackit/`` package is imported
unmodified; the GPU image has timm). Random weights, float16, template/search of the preset.

* **forward**: batch 1 and batch 32, eager, B-224 and L-224: the official merged model vs our merged
  model, unfused and :meth:`fuse_for_inference`; CUDA kernels per batch-1 forward (torch profiler).
* **graphs**: batch-1 forward replayed as a CUDA graph (:class:`CudaGraphRunner`) for both models, and
  with ``--compile`` both through ``torch.compile(mode="reduce-overhead")``.
* **train**: one training step at batch 64 (fp16 autocast + GradScaler + AdamW on the trainable set,
  gradient clipping 1.0, the same loss function on both outputs), samples/s and peak memory: official
  vs ours with frozen weights in float16 (the training default) and float32.

Prints markdown tables with ratios ``ours / official`` (time: lower is better). Asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_lorat import LoratConfig, LoratForTracking  # noqa: E402
from modeling_lorat.cuda_graphs import CudaGraphRunner  # noqa: E402
from modeling_lorat.lora import apply_lora  # noqa: E402
from modeling_lorat.loss_lorat import lorat_loss  # noqa: E402
from training.precision import cast_frozen_parameters_  # noqa: E402

DEVICE = torch.device("cuda")
DTYPE = torch.float16  # inference dtype and autocast dtype (bfloat16 for a CPU smoke run)


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def official_model(config: LoratConfig, train: bool):
    """The official ``LoRAT_DINOv2`` of the preset's size with its LoRA (merged unless ``train``)."""
    from trackit.models.backbone.dinov2.model import DinoVisionTransformer
    from trackit.models.methods.LoRAT.funcs.vit_backbone_freeze import freeze_vit_backbone_
    from trackit.models.methods.LoRAT.funcs.vit_lora_utils import enable_lora_
    from trackit.models.methods.LoRAT.lorat import LoRAT_DINOv2

    bc = config.backbone_config
    with torch.device(DEVICE):
        vit = DinoVisionTransformer(
            img_size=518,
            patch_size=14,
            embed_dim=bc.hidden_size,
            depth=bc.num_hidden_layers,
            num_heads=bc.num_attention_heads,
            mlp_ratio=bc.mlp_ratio,
            init_values=1.0,
            block_chunks=0,
            ffn_layer="swiglufused" if bc.use_swiglu_ffn else "mlp",
            drop_path_rate=bc.drop_path_rate if train else 0.0,
        )
        grids = (config.template_grid,) * 2, (config.search_grid,) * 2
        model = LoRAT_DINOv2(vit, *grids)
        freeze_vit_backbone_(model)
        enable_lora_(model, config.lora_r, config.lora_alpha, 0.0, False)
    if not train:
        for module in model.modules():
            if hasattr(module, "merge") and hasattr(module, "lora"):
                module.merge()
        return model.to(DTYPE).eval()
    return model.train()


def our_model(config: LoratConfig, train: bool, fuse: bool = False):
    with torch.device(DEVICE):
        model = apply_lora(LoratForTracking(config))
    if train:
        return model.train()
    model = model.merge_and_unload().to(DTYPE).eval()
    return model.fuse_for_inference() if fuse else model


def inputs(config: LoratConfig, batch: int, dtype: torch.dtype | None = None):
    dtype = dtype or DTYPE
    t, s, g = config.template_size, config.search_size, config.template_grid
    mask = torch.zeros(batch, g, g, dtype=torch.long, device=DEVICE)
    mask[:, g // 4 : 3 * g // 4, g // 4 : 3 * g // 4] = 1
    z = torch.randn(batch, 3, t, t, device=DEVICE, dtype=dtype)
    x = torch.randn(batch, 3, s, s, device=DEVICE, dtype=dtype)
    return z, x, mask


def official_fn(model):
    return lambda z, x, m: model(z, x, m)["score_map"]


def our_fn(model):
    return lambda z, x, m: model(pixel_values_template=z, pixel_values_search=x, template_mask=m).score_map


def timed_ms(fns: dict, args, rounds: int) -> dict[str, float]:
    """Median ms per call of each function, interleaved round by round (same card state for all)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.inference_mode():
        for fn in fns.values():
            for _ in range(3):
                fn(*args)
        sync()
        for _ in range(rounds):
            for name, fn in fns.items():
                start = time.perf_counter()
                for _ in range(10):
                    fn(*args)
                sync()
                times[name].append((time.perf_counter() - start) * 100)  # ms per call
    return {name: statistics.median(values) for name, values in times.items()}


def kernel_count(fn, args) -> int:
    """CUDA kernels launched by one call (torch profiler)."""
    from torch.profiler import ProfilerActivity, profile

    if DEVICE.type != "cuda":
        return -1  # CPU smoke run: no kernels to count
    with torch.inference_mode():
        fn(*args)
        sync()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn(*args)
            sync()
    return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)


def table(title: str, rows: list[tuple], header: tuple) -> None:
    print(f"\n### {title}\n| {' | '.join(header)} |\n|{'---|' * len(header)}")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    sys.stdout.flush()


def bench_forward(presets: list[str], rounds: int) -> None:
    rows, kernels = [], []
    for preset in presets:
        config = LoratConfig.from_preset(preset)
        torch.manual_seed(0)
        fns = {
            "official": official_fn(official_model(config, train=False)),
            "lorat": our_fn(our_model(config, train=False)),
            "lorat fused": our_fn(our_model(config, train=False, fuse=True)),
        }
        for batch in (1, 32):
            ms = timed_ms(fns, inputs(config, batch), rounds)
            ref = ms["official"]
            rows.append(
                (
                    preset,
                    batch,
                    *(f"{ms[k]:.2f} ({ms[k] / ref:.2f}x)" for k in ("official", "lorat", "lorat fused")),
                )
            )
        if preset == presets[0]:
            kernels = [(name, kernel_count(fn, inputs(config, 1))) for name, fn in fns.items()]
        del fns
        gc.collect()
        if DEVICE.type == "cuda":
            torch.cuda.empty_cache()
    table(
        "model forward, eager, float16: ms per call (ratio vs official)",
        rows,
        ("preset", "batch", "official", "lorat (unfused)", "lorat fused"),
    )
    table(f"CUDA kernels per batch-1 forward ({presets[0]})", kernels, ("model", "kernels"))


def bench_graphs(preset: str, rounds: int, compile: bool) -> None:
    config = LoratConfig.from_preset(preset)
    official = official_model(config, train=False)
    ours = our_model(config, train=False, fuse=True)
    args = inputs(config, 1)
    fns = {
        "official eager": official_fn(official),
        "official CUDA graph": CudaGraphRunner(official_fn(official)),
        "lorat fused CUDA graph": CudaGraphRunner(our_fn(ours)),
    }
    if compile:
        fns["official compile reduce-overhead"] = torch.compile(official_fn(official), mode="reduce-overhead")
        fns["lorat fused compile reduce-overhead"] = torch.compile(our_fn(ours), mode="reduce-overhead")
    ms = timed_ms(fns, args, rounds)
    ref = ms["official CUDA graph"]
    table(
        f"{preset} batch-1 forward without launch overhead, float16",
        [(name, f"{value:.3f}", f"{value / ref:.2f}x") for name, value in ms.items()],
        ("variant", "ms", "vs official CUDA graph"),
    )


def train_step_fn(model, forward, params, config, batch: int):
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1)
    scaler = torch.amp.GradScaler(DEVICE.type, enabled=DTYPE == torch.float16)
    z, x, mask = inputs(config, batch, dtype=torch.float32)
    labels = torch.rand(batch, 4, device=DEVICE) * 0.4
    labels[:, 2:] += 0.5
    labels[-batch // 8 :] = float("nan")  # some negative pairs

    def step():
        with torch.autocast(DEVICE.type, dtype=DTYPE):
            score_map, boxes = forward(z, x, mask)
            loss, _ = lorat_loss(score_map, boxes, labels, config.cls_loss_weight, config.box_loss_weight)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(optimizer)
        scaler.update()

    return step


def bench_train(preset: str, batch: int, steps: int, compile: bool) -> None:
    config = LoratConfig.from_preset(preset)
    variants = ["official", "lorat", "lorat (frozen float32)"] + (["lorat compiled"] if compile else [])
    rows, reference = [], None
    for name in variants:
        gc.collect()
        if DEVICE.type == "cuda":
            torch.cuda.empty_cache()
        torch.manual_seed(0)
        if name == "official":
            model = official_model(config, train=True)
            forward = lambda z, x, m, model=model: tuple(model(z, x, m).values())  # noqa: E731
        else:
            model = our_model(config, train=True)
            if name != "lorat (frozen float32)":
                cast_frozen_parameters_(model, DTYPE)
            run = torch.compile(model) if name == "lorat compiled" else model
            forward = lambda z, x, m, run=run: run(z, x, m, return_dict=False)[:2]  # noqa: E731
        params = [p for p in model.parameters() if p.requires_grad]
        step = train_step_fn(model, forward, params, config, batch)
        if DEVICE.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for _ in range(3):
            step()
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        ms = (time.perf_counter() - start) / steps * 1e3
        peak = torch.cuda.max_memory_allocated() / 2**30 if DEVICE.type == "cuda" else float("nan")
        reference = reference or (ms, peak)
        rows.append(
            (
                name,
                f"{ms:.1f}",
                f"{batch / ms * 1e3:.0f}",
                f"{reference[0] / ms:.2f}x",
                f"{peak:.2f}",
                f"{peak / reference[1]:.2f}x",
            )
        )
        del model, step, params, forward
    table(
        f"{preset} training step, batch {batch}, fp16 autocast + GradScaler + AdamW",
        rows,
        ("variant", "ms/step", "samples/s", "speed vs official", "peak GiB", "memory vs official"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of LitingLin/LoRAT")
    parser.add_argument("--sections", default="forward,graphs,train")
    parser.add_argument("--presets", default="b-224,l-224")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="add torch.compile variants (slow to build)")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of the script (bfloat16)")
    args = parser.parse_args()
    global DEVICE, DTYPE
    DEVICE = torch.device(args.device)
    DTYPE = torch.float16 if DEVICE.type == "cuda" else torch.bfloat16
    if not (args.official / "trackit").is_dir():
        parser.error(f"--official {args.official}: no trackit/ package there")
    sys.path.insert(0, str(args.official))
    torch.backends.cuda.matmul.allow_tf32 = True
    name = torch.cuda.get_device_name() if DEVICE.type == "cuda" else "CPU (smoke run)"
    print(f"device: {name}; torch {torch.__version__}; {DTYPE}")
    sections = args.sections.split(",")
    presets = args.presets.split(",")
    if "forward" in sections:
        bench_forward(presets, args.rounds)
    if "graphs" in sections:
        bench_graphs(presets[0], args.rounds, args.compile)
    if "train" in sections:
        bench_train(presets[0], args.train_batch, args.train_steps, args.compile)


if __name__ == "__main__":
    main()
