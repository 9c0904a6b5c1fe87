"""Data-pipeline throughput vs the model's training step rate, in one run.

    python benchmarks/bench_data.py [--preset b-224] [--workers 0 1 2] [--batch_size 8] [--batches 6]
                                    [--dataset synthetic] [--device cpu|cuda] [--mixed_precision fp16]
                                    [--threads N]

For the tiny test config (and the preset, when given) it measures

* data: training pairs per second produced by ``training.data`` (sampling, decoding, SiamFC crops,
  augmentation, labels) through a ``DataLoader`` with each number of workers;
* model: pairs per second of a full training step (forward, loss, backward, AdamW) of the LoRA model
  with random weights (no download) at the same batch size;

and prints ``data / model``: above 1 the data pipeline keeps up with that many workers. Asserts nothing.
On a busy small CPU machine pass ``--threads 1``: oversubscribed OpenMP threads can slow tiny models
down by two orders of magnitude.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_lorat import LoratConfig, LoratForTracking  # noqa: E402
from modeling_lorat.lora import apply_lora  # noqa: E402
from modeling_lorat.testing_utils import tiny_config  # noqa: E402
from training.data import (  # noqa: E402
    PairAugmentation,
    PairSampler,
    PairTransform,
    StreamLayout,
    TrainingPairDataset,
    TransformConfig,
    build_source,
    make_dataloader,
    parse_dataset_spec,
)


def data_rate(config: LoratConfig, spec: str, workers: int, batch_size: int, batches: int) -> float:
    """Pairs/s of the data pipeline after one warm-up batch per worker."""
    source = build_source(parse_dataset_spec(spec), seed=0)
    transform = PairTransform(TransformConfig.from_model_config(config), augmentation=PairAugmentation())
    warmup = max(1, workers)
    layout = StreamLayout(seed=0, batch_size=batch_size)
    dataset = TrainingPairDataset(PairSampler([source]), transform, layout, num_batches=warmup + batches)
    iterator = iter(make_dataloader(dataset, workers))
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    elapsed = time.perf_counter() - start
    del iterator
    return batches * batch_size / elapsed


def model_rate(config: LoratConfig, batch_size: int, steps: int, device: str, mixed_precision: str) -> float:
    """Pairs/s of full training steps (fp32, or autocast fp16/bf16 on CUDA) with random weights."""
    torch.manual_seed(0)
    model = apply_lora(LoratForTracking(config)).to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    g = config.template_grid
    mask = torch.zeros(batch_size, g, g, dtype=torch.long, device=device)
    mask[:, g // 4 : 3 * g // 4 + 1, g // 4 : 3 * g // 4 + 1] = 1
    inputs = {
        "pixel_values_template": torch.randn(
            batch_size, 3, config.template_size, config.template_size, device=device
        ),
        "pixel_values_search": torch.randn(
            batch_size, 3, config.search_size, config.search_size, device=device
        ),
        "template_mask": mask,
        "labels": torch.tensor([[0.3, 0.3, 0.6, 0.7]], device=device).repeat(batch_size, 1),
    }
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed_precision)
    scaler = torch.amp.GradScaler(device, enabled=mixed_precision == "fp16")

    def step() -> None:
        with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = model(**inputs).loss
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default=None, help="also benchmark this preset (e.g. b-224), random weights")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--batches", type=int, default=6, help="measured batches per data run")
    p.add_argument("--steps", type=int, default=5, help="measured training steps per model run")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--mixed_precision", default="no", choices=("no", "fp16", "bf16"))
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    configs = [("tiny", tiny_config())]
    if args.preset:
        configs.append((args.preset, LoratConfig.from_preset(args.preset)))
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    print(
        f"device {args.device} ({device_name}), {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}"
    )
    print(f"dataset {args.dataset}, batch {args.batch_size}, mixed precision {args.mixed_precision}\n")
    header = f"{'config':<8} {'workers':>7} {'data pairs/s':>13} {'model pairs/s':>14} {'data/model':>11}"
    print(header)
    print("-" * len(header))
    for name, config in configs:
        model = model_rate(config, args.batch_size, args.steps, args.device, args.mixed_precision)
        for workers in args.workers:
            data = data_rate(config, args.dataset, workers, args.batch_size, args.batches)
            print(f"{name:<8} {workers:>7} {data:>13.1f} {model:>14.1f} {data / model:>11.2f}")


if __name__ == "__main__":
    main()
