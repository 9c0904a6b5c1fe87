"""`lorat demo`: the whole life of a tracker on CPU, with nothing downloaded, in the six steps it prints:

1. synthetic test videos (deterministic);
2. a small random DINOv2-architecture backbone, then LoRAT training with ``accelerate launch
   training/train.py`` on the synthetic stream;
3. the adapter loaded back with ``LoratForTracking.from_pretrained``;
4. a baseline tracker that repeats the first box;
5. ``lorat evaluate`` of both (metrics table, success / precision / normalised precision plots);
6. an annotated video of one test video.

Re-running reuses every finished step. Training runs on one thread per process and tracking on one
thread (``--threads`` to change), so a run on the same machine and torch build repeats its numbers.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

# A reduced DINOv2 (same architecture as facebook/dinov2-*): 4 layers, width 128, patch 14.
DEMO_BACKBONE = dict(
    hidden_size=128,
    num_hidden_layers=4,
    num_attention_heads=4,
    mlp_ratio=4,
    image_size=112,
    patch_size=14,
    layerscale_value=0.1,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``lorat demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="train + evaluate a small LoRAT on synthetic videos (CPU)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workdir", default="demo_output", help="where data, model and results go")
    parser.add_argument("--train-steps", type=int, default=4200, help="optimisation steps (batch 16)")
    parser.add_argument("--test-sequences", type=int, default=12, help="synthetic test videos")
    parser.add_argument("--test-frames", type=int, default=60, help="frames per test video")
    parser.add_argument("--num-processes", type=int, default=1, help="accelerate processes for training")
    parser.set_defaults(run=run)


def _step(index: int, title: str) -> None:
    print(f"\n[{index}/6] {title}", flush=True)


def sincos_position_embeddings(grid: int, dim: int, scale: float = 2.0):
    """``(grid * grid, dim)`` fixed 2-D sine-cosine position embedding (x in the first half, y in the second)."""
    import torch

    ys, xs = torch.meshgrid(torch.arange(grid).float(), torch.arange(grid).float(), indexing="ij")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4).float() / (dim // 4))
    parts = [f(c.flatten()[:, None] * omega) for c in (xs, ys) for f in (torch.sin, torch.cos)]
    return torch.cat(parts, dim=1) * scale


def make_demo_backbone(path: Path, seed: int = 0) -> Path:
    """Save a random reduced DINOv2 with fixed 2-D sine-cosine position embeddings (there are no
    pretrained weights offline; the sine-cosine grid gives the frozen backbone usable positions)."""
    import torch
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    model = Dinov2Model(Dinov2Config(**DEMO_BACKBONE))
    grid = DEMO_BACKBONE["image_size"] // DEMO_BACKBONE["patch_size"]
    with torch.no_grad():
        model.embeddings.position_embeddings[0, 1:] = sincos_position_embeddings(
            grid, DEMO_BACKBONE["hidden_size"]
        )
    tmp = path.with_name(f".{path.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)  # never a half-written backbone at ``path``
    return path


def _train_script() -> Path:
    """``training/train.py`` of this installation (a clone, an editable or a regular ``pip install``)."""
    import importlib.util

    spec = importlib.util.find_spec("training.train")
    if spec is None or spec.origin is None or not Path(spec.origin).is_file():
        raise FileNotFoundError("training/train.py is not installed with this package: reinstall lorat")
    return Path(spec.origin)


def _train(workdir: Path, args: argparse.Namespace) -> Path:
    from .. import LoratConfig

    model_dir = workdir / "model"
    if (model_dir / "adapter_model.safetensors").is_file():
        print(f"reusing the trained adapter in {model_dir}")
        return model_dir
    train_script = _train_script()
    backbone = workdir / "backbone"
    if not (backbone / "model.safetensors").is_file():
        make_demo_backbone(backbone)
    config = LoratConfig(
        backbone_config=DEMO_BACKBONE,
        backbone_name_or_path=str(backbone.resolve()),
        template_size=56,
        search_size=112,
        lora_r=16,
        lora_alpha=16,
    )
    config.save_pretrained(workdir / "lorat_config")
    launch = f"--num_processes {args.num_processes} --num_machines 1 --mixed_precision no --dynamo_backend no"
    launch += " --cpu" if args.num_processes == 1 else " --multi_gpu"
    # Demo-specific choices (documented in the README): a higher learning rate and no augmentation so that a
    # random backbone learns within minutes; gap <= 30 frames on 60-frame videos.
    train = (
        f"--model_config {shlex.quote(str(workdir / 'lorat_config'))} --dataset synthetic:400 "
        f"--output_dir {shlex.quote(str(model_dir))} "
        f"--max_train_steps {args.train_steps} --train_batch_size 16 --learning_rate 3e-3 --lr_warmup_steps 50 "
        f"--weight_decay 0.01 --no_augmentation --max_gap 30 --dataloader_num_workers 1 "
        f"--checkpointing_steps {max(50, args.train_steps // 4)} --checkpoints_total_limit 1 "
        "--resume_from_checkpoint latest --report_to none --mixed_precision no --seed 0"
    )
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *launch.split(),
        str(train_script),
        *shlex.split(train),
    ]
    print("$ accelerate launch training/train.py --model_config ... (see training/README.md)", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if args.num_processes > 1:
        env["ACCELERATE_USE_CPU"] = "1"
    subprocess.run(command, check=True, cwd=workdir, env=env)
    return model_dir


def _first_box_baseline(sequences, out: Path) -> None:
    import numpy as np

    from ..evaluation.results_io import has_complete_results, write_sequence_results

    for seq in sequences:
        if not has_complete_results(out / "results", seq.name, len(seq)):
            boxes = np.repeat(seq.boxes[:1], len(seq), axis=0)
            write_sequence_results(out / "results", seq.name, boxes, np.zeros(len(seq)))


def run(args: argparse.Namespace) -> int:
    """Run (or resume) the six demo steps and print where the artefacts are."""
    from ..cli import main as cli_main
    from ..data import get_dataset
    from ..data.synthetic import write_synthetic_benchmark

    threads = ["--threads", str(args.threads)] if getattr(args, "threads", None) else []

    start = time.time()
    workdir = Path(args.workdir).resolve()  # the training subprocess runs in it
    workdir.mkdir(parents=True, exist_ok=True)

    _step(1, "synthetic test videos")
    data = write_synthetic_benchmark(
        workdir / "data" / "synthetic_test", args.test_sequences, seed=2026, num_frames=args.test_frames
    )
    sequences = get_dataset("synthetic", data)
    print(f"{len(sequences)} videos x {args.test_frames} frames in {data}")

    _step(2, f"training a small LoRAT ({args.train_steps} steps) with accelerate on CPU")
    model_dir = _train(workdir, args)

    _step(3, "loading the adapter back with LoratForTracking.from_pretrained")
    from .. import LoratForTracking

    model = LoratForTracking.from_pretrained(model_dir)
    lora_files = sorted(p.name for p in model_dir.glob("adapter_*"))
    print(
        f"loaded {type(model).__name__} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, "
        f"LoRA merged) from {model_dir} [{', '.join(lora_files)}]"
    )

    _step(4, "baseline: repeat the first box")
    baseline = workdir / "eval" / "first_box"
    _first_box_baseline(sequences, baseline)

    _step(5, "lorat evaluate on the synthetic test set")
    eval_dir = workdir / "eval" / "lorat"
    code = cli_main(
        [
            "evaluate",
            "--model",
            str(model_dir),
            "--dataset",
            "synthetic",
            "--root",
            str(data),
            "--output",
            str(eval_dir),
            "--device",
            "cpu",
            "--compare",
            str(baseline),
            *threads,
        ]
    )
    if code:
        return code

    _step(6, "annotated video of one test video")
    first = sequences[0]
    video = workdir / "annotated.mp4"
    box = ",".join(f"{v:g}" for v in first.boxes[0])
    if not video.is_file():
        cli_main(
            [
                "track",
                str(data / first.name),
                f"--box={box}",
                "--model",
                str(model_dir),
                "--output",
                str(video),
                "--results",
                str(workdir / f"{first.name}_boxes.txt"),
                "--device",
                "cpu",
                *threads,
            ]
        )
    _print_summary(eval_dir, baseline, workdir, video, time.time() - start)
    return 0


def _print_summary(eval_dir: Path, baseline: Path, workdir: Path, video: Path, seconds: float) -> None:
    import json

    metrics = json.loads((eval_dir / "summary.json").read_text())["metrics"]
    plots = sorted(str(p) for p in eval_dir.glob("*.png"))
    print("\n" + "=" * 72)
    print(
        f"SUC {metrics['success_auc'] * 100:.1f}  P {metrics['precision'] * 100:.1f}  "
        f"P_norm {metrics['norm_precision'] * 100:.1f}  (LoRAT, synthetic test set; baseline in the table above)"
    )
    print(f"metrics:  {eval_dir / 'summary.json'}")
    for plot in plots:
        print(f"plot:     {plot}")
    print(f"video:    {video}")
    print(f"model:    {workdir / 'model'}  (load with LoratForTracking.from_pretrained)")
    print(f"time:     {math.ceil(seconds)} s")
