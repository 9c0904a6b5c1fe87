"""Where the host time of one tracker step goes (cProfile, B-224, 1280x720 frames, CUDA graphs on CUDA).

python benchmarks/profile_tracker_step.py [--device cuda] [--no-graphs]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tracker import base_tracker, moving_frame, sync  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--no-graphs", action="store_true")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    tracker = base_tracker(
        args.device, "float16" if cuda else "float32", cuda_graphs=cuda and not args.no_graphs
    )
    frames = [moving_frame(i, (1280, 720)) for i in range(args.steps + 5)]
    state = tracker.new_state(frames[0], (256, 216, 90, 90))
    for frame in frames[1:5]:
        tracker.step([state], [frame])
    device = torch.device(args.device)
    sync(device)
    start = time.perf_counter()
    profiler = cProfile.Profile()
    profiler.enable()
    for frame in frames[5:]:
        tracker.step([state], [frame])
    profiler.disable()
    sync(device)
    print(f"{(time.perf_counter() - start) / args.steps * 1e3:.3f} ms per step (under cProfile)")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    main()
