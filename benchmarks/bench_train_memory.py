"""Host memory of ``training/train.py`` over many steps (tiny config): the RSS should stay flat.

    python benchmarks/bench_train_memory.py [--steps 400] [--workers 0] [--dataset synthetic]
                                            [--batch_size 4] [--threads 1]

Runs the real script in a subprocess (``--tiny``, checkpoints every ``--steps // 4`` steps) and samples
the resident set size of it and its dataloader workers while it trains; the step is read from its
``train_log.jsonl``. Prints RSS at a few points and the growth after warm-up per 100 steps. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def tree_rss(proc: psutil.Process) -> int:
    """RSS in bytes of ``proc`` and its children (dataloader workers)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def current_step(log: Path) -> int:
    try:
        return sum(1 for _ in log.open())
    except FileNotFoundError:
        return 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the training process")
    p.add_argument("--interval", type=float, default=0.25, help="seconds between RSS samples")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, str(ROOT / "training" / "train.py"), "--tiny", "--output_dir", str(out)]
        cmd += ["--max_train_steps", str(args.steps), "--train_batch_size", str(args.batch_size)]
        cmd += [
            "--dataloader_num_workers",
            str(args.workers),
            "--dataset",
            args.dataset,
            "--report_to",
            "none",
        ]
        cmd += ["--checkpointing_steps", str(max(1, args.steps // 4)), "--checkpoints_total_limit", "1"]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), HF_HUB_OFFLINE="1")
        errors = open(Path(tmp) / "stderr.txt", "w+")  # a pipe would fill up and block the trainer
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        handle = psutil.Process(proc.pid)
        samples: list[tuple[int, int]] = []
        start = time.perf_counter()
        while proc.poll() is None:
            step = current_step(out / "train_log.jsonl")
            if step:
                samples.append((step, tree_rss(handle)))
            time.sleep(args.interval)
        elapsed = time.perf_counter() - start
        errors.seek(0)
        tail = errors.read()[-3000:]
        errors.close()
        if proc.returncode != 0:
            print(tail)
            raise SystemExit(f"train.py failed with exit code {proc.returncode}")

    print(f"tiny config, {args.steps} steps, batch {args.batch_size}, {args.workers} workers, {args.dataset}")
    print(f"wall {elapsed:.1f} s (incl. start-up), {len(samples)} RSS samples\n")
    print(f"{'step':>6} {'RSS MiB':>9}")
    marks = sorted({max(1, args.steps * k // 8) for k in range(1, 8)})
    for mark in marks:
        at = [rss for step, rss in samples if step >= mark]
        if at:
            print(f"{mark:>6} {at[0] / 2**20:>9.1f}")
    # after warm-up and before the end (workers exit and the adapter is saved at the last step)
    warm = [(s, r) for s, r in samples if args.steps // 8 <= s < args.steps]
    if len(warm) >= 2 and warm[-1][0] > warm[0][0]:
        growth = (warm[-1][1] - warm[0][1]) / 2**20 / (warm[-1][0] - warm[0][0]) * 100
        peak = max(r for _, r in warm) / 2**20
        print(f"\ngrowth after warm-up: {growth:+.2f} MiB per 100 steps (peak {peak:.1f} MiB)")


if __name__ == "__main__":
    main()
