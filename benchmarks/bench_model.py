"""Model benchmark: parameters/GMACs per preset vs the paper, wrapper overhead vs the bare DINOv2
encoder, merged vs unmerged LoRA speed, peak memory. Prints ratios measured side by side in one run.

    python benchmarks/bench_model.py [--preset b-224] [--device cpu|cuda] [--dtype float32] [--rounds 10]
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from modeling_lorat import LORAT_PRESETS, LoratConfig, LoratForTracking
from modeling_lorat.lora import apply_lora, expected_trainable_parameters

PAPER = {"b-224": (99, 30), "g-378": (1216, 1161)}  # params (M), GMACs


def inputs(config: LoratConfig, batch: int, device, dtype):
    t, s, g = config.template_size, config.search_size, config.template_grid
    mask = torch.zeros(batch, g, g, dtype=torch.long, device=device)
    mask[:, g // 4 : 3 * g // 4, g // 4 : 3 * g // 4] = 1
    return (
        torch.randn(batch, 3, t, t, device=device, dtype=dtype),
        torch.randn(batch, 3, s, s, device=device, dtype=dtype),
        mask,
    )


def count_table() -> None:
    print("| preset | params (M, merged) | + LoRA (M) | trainable (M) | GMACs | paper params / GMACs |")
    print("|---|---|---|---|---|---|")
    for name in LORAT_PRESETS:
        config = LoratConfig.from_preset(name)
        with torch.device("meta"):
            model = LoratForTracking(config).eval()
            args = inputs(config, 1, "meta", torch.float32)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        trainable = expected_trainable_parameters(config) / 1e6
        lora = (
            trainable
            - (sum(p.numel() for p in model.head.parameters()) + 3 * config.backbone_config.hidden_size) / 1e6
        )
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(*args)
        paper = "{} M / {}".format(*PAPER[name]) if name in PAPER else ""
        print(
            f"| {name} | {params:.1f} | {lora:.1f} | {trainable:.1f} | {counter.get_total_flops() / 2e9:.1f} | {paper} |"
        )


def timed(fn, rounds: int, sync) -> list[float]:
    out = []
    for _ in range(rounds):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - start)
    return out


def speed(preset: str, device: str, dtype: torch.dtype, rounds: int, batch: int) -> None:
    config = LoratConfig.from_preset(preset)
    torch.manual_seed(0)
    peft_model = apply_lora(LoratForTracking(config)).to(device=device, dtype=dtype).eval()
    merged_model = LoratForTracking(config).to(device=device, dtype=dtype).eval()
    with torch.no_grad():  # a merged copy of the same weights
        peft_model.merge_adapter()
        merged_model.load_state_dict(peft_model.get_base_model().state_dict(), strict=False)
        peft_model.unmerge_adapter()
    z, x, mask = inputs(config, batch, device, dtype)
    tokens = config.template_grid**2 + config.search_grid**2
    hidden = torch.randn(batch, tokens, config.backbone_config.hidden_size, device=device, dtype=dtype)
    backbone = merged_model.backbone
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    variants = {
        "bare Dinov2 encoder + norm": lambda: backbone.layernorm(backbone.encoder(hidden).last_hidden_state),
        "LoratForTracking (merged LoRA)": lambda: merged_model(z, x, mask),
        "LoratForTracking (unmerged peft LoRA)": lambda: peft_model(z, x, mask),
    }
    results: dict[str, list[float]] = {k: [] for k in variants}
    with torch.inference_mode():
        for fn in variants.values():
            timed(fn, 2, sync)  # warm-up
        for _ in range(rounds):  # interleave to share machine noise
            for name, fn in variants.items():
                results[name] += timed(fn, 1, sync)
    base = statistics.median(results["bare Dinov2 encoder + norm"])
    print(f"\n{preset} forward, batch {batch}, {tokens} tokens, {device} {dtype}, median of {rounds}:")
    print("| variant | ms | ratio vs bare encoder |\n|---|---|---|")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"| {name} | {med * 1e3:.1f} | {med / base:.3f} |")
    if device.startswith("cuda"):
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    print(f"peak host RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="b-224")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--skip-counts", action="store_true")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    if not args.skip_counts:
        count_table()
    speed(args.preset, args.device, getattr(torch, args.dtype), args.rounds, args.batch)


if __name__ == "__main__":
    main()
