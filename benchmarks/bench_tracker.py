"""Tracker benchmarks: per-frame overhead, batched stepping, constant cost on long videos.

Usage::

    python benchmarks/bench_tracker.py [--quick] [--device cpu|cuda] [--dtype float16] [--compile] [--threads N]

1. **Overhead** (B-224, random weights, LoRA merged): the time of a tracker ``step`` (frame to
   tensor, search crop, normalisation, peak selection, box mapping) minus the bare model forward on
   the same inputs, as a fraction of the forward. Target: <= 10 %.
2. **Batching** (B-224): one ``step`` over 8 sequences vs 8 single-sequence ``step`` calls, as a
   throughput ratio. Target >= 3x on a GPU; on a CPU the forward is compute bound, so a batch of 8
   costs nearly 8 single forwards and the gain stays small.
3. **Long video** (tiny model): a synthetic video file decoded lazily with PyAV and tracked; the
   per-frame time (50-frame medians, and the least-squares trend over the whole video) and the
   resident memory at frame 100 vs the last frame show constant cost.

Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_lorat import LoratConfig, LoratForTracking  # noqa: E402
from modeling_lorat.lora import apply_lora  # noqa: E402
from modeling_lorat.pipeline_lorat import iter_track  # noqa: E402
from modeling_lorat.testing_utils import tiny_model  # noqa: E402
from modeling_lorat.tracking_lorat import LoratTracker  # noqa: E402
from modeling_lorat.video_io import AnnotatedVideoWriter, open_frames  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rss_mib() -> float:
    """Current resident set size of this process in MiB (Linux)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    """Peak resident set size so far in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def moving_frame(index: int, size: tuple[int, int], rng: np.random.Generator | None = None) -> np.ndarray:
    """Textured background with a bright square moving diagonally (``size`` = (W, H))."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    frame = np.stack([(xx + index) % 256, (yy * 2) % 256, ((xx + yy) // 3) % 256], axis=-1).astype(np.uint8)
    x = int(w * 0.2 + (index * 3) % int(w * 0.5))
    y = int(h * 0.3 + (index * 2) % int(h * 0.3))
    frame[y : y + h // 8, x : x + h // 8] = (250, 240, 30)
    return frame


def base_tracker(device: str, dtype: str = "float32", **options) -> LoratTracker:
    """B-224 with random weights, LoRA applied and merged (as a released tracker runs); ``options`` go
    to `LoratTracker` (``compile``, ``fuse``, ``cuda_graphs``)."""
    torch.manual_seed(0)
    model = apply_lora(LoratForTracking(LoratConfig.from_preset("b-224"))).merge_and_unload()
    return LoratTracker(model, device=device, dtype=dtype, **options)


def bench_overhead(tracker: LoratTracker, steps: int, size=(1280, 720)) -> dict[str, float]:
    """End-to-end step time on in-memory ``size`` frames vs the device step alone (forward + peak
    selection, :meth:`LoratTracker._infer`, CUDA-graph replay when enabled) on the same shapes."""
    frames = [moving_frame(i, size) for i in range(steps + 3)]
    state = tracker.new_state(frames[0], (size[0] * 0.2, size[1] * 0.3, size[1] / 8, size[1] / 8))
    step_times = []
    for i, frame in enumerate(frames[1:]):
        sync(tracker.device)
        start = time.perf_counter()
        tracker.step([state], [frame])
        sync(tracker.device)
        if i >= 2:  # warm-up
            step_times.append(time.perf_counter() - start)
    templates, masks = tracker._templates([state])
    search_size = tracker.processor.search_size
    search = torch.randn(1, 3, search_size, search_size, device=tracker.device).to(tracker.dtype)
    infer_times = []
    with torch.inference_mode():
        for i in range(steps + 2):
            sync(tracker.device)
            start = time.perf_counter()
            tracker._infer(templates, search, masks)
            sync(tracker.device)
            if i >= 2:
                infer_times.append(time.perf_counter() - start)
    forward = statistics.median(infer_times)
    step = statistics.median(step_times)
    overhead = step - forward
    return {
        "forward_ms": forward * 1e3,
        "step_ms": step * 1e3,
        "fps": 1.0 / step,
        "overhead_ms": overhead * 1e3,
        "ratio": overhead / forward,
    }


def bench_batching(tracker: LoratTracker, rounds: int, batch: int = 8, size=(640, 480)) -> dict[str, float]:
    frames = [moving_frame(i, size) for i in range(rounds + 2)]
    box = (size[0] * 0.2, size[1] * 0.3, size[1] / 8, size[1] / 8)
    batched = [tracker.new_state(frames[0], box) for _ in range(batch)]
    single = [tracker.new_state(frames[0], box) for _ in range(batch)]
    tracker.step(batched, [frames[1]] * batch)  # warm-up
    tracker.step(single[:1], [frames[1]])
    batched_time = sequential_time = 0.0
    for r in range(rounds):  # interleaved, so load from other processes hits both alike
        sync(tracker.device)
        start = time.perf_counter()
        tracker.step(batched, [frames[r + 2]] * batch)
        sync(tracker.device)
        batched_time += time.perf_counter() - start
        start = time.perf_counter()
        for state in single:
            tracker.step([state], [frames[r + 2]])
        sync(tracker.device)
        sequential_time += time.perf_counter() - start
    batched_fps = rounds * batch / batched_time
    sequential_fps = rounds * batch / sequential_time
    return {
        "batched_fps": batched_fps,
        "sequential_fps": sequential_fps,
        "ratio": batched_fps / sequential_fps,
    }


def bench_long_video(num_frames: int, early: int, device: str, size=(640, 360)) -> dict[str, float]:
    """Per-frame time (decode + step) and RSS early vs at the end of a long video, plus the fitted trend.

    Per-frame times of a tiny model are a few ms and jitter with the decoder and torch sharing the
    cores, so each point is the median of a 50-frame window and the trend is a least-squares slope.
    """
    tracker = LoratTracker(tiny_model(seed=0), device=device)
    window = 50
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.mp4"
        with AnnotatedVideoWriter(path, fps=30, size=size) as writer:
            for i in range(num_frames):
                writer.write(moving_frame(i, size))
        frames = open_frames(path)
        box = (size[0] * 0.2, size[1] * 0.3, size[1] / 8, size[1] / 8)
        times, marks = [], {}
        start = time.perf_counter()
        for index, _frame, _box, _score in iter_track(tracker, frames, box):
            now = time.perf_counter()
            times.append(now - start)
            start = now
            if index + 1 in (early, num_frames):
                marks[index + 1] = (rss_mib(), peak_rss_mib())
    measured = np.asarray(times[window:]) * 1e3  # after warm-up
    slope = np.polyfit(np.arange(len(measured)), measured, 1)[0]
    return {
        "frames": num_frames,
        "early": early,
        "early_ms": statistics.median(times[early - window : early]) * 1e3,
        "late_ms": statistics.median(times[num_frames - window : num_frames]) * 1e3,
        "slope_ms_per_1000": slope * 1000,
        "mean_ms": float(measured.mean()),
        "early_rss": marks[early][0],
        "late_rss": marks[num_frames][0],
        "early_peak": marks[early][1],
        "late_peak": marks[num_frames][1],
    }


def long_video_rows(long_video: dict) -> list[tuple[str, str, str]]:
    """Table rows of :func:`bench_long_video`'s result."""
    return [
        (
            f"tiny model, frame {long_video['early']} vs {long_video['frames']}: time",
            f"{long_video['early_ms']:.2f} ms vs {long_video['late_ms']:.2f} ms",
            "constant (50-frame medians)",
        ),
        (
            "  trend of per-frame time",
            f"{long_video['slope_ms_per_1000']:+.2f} ms per 1000 frames (mean {long_video['mean_ms']:.2f} ms)",
            "~0",
        ),
        (
            "  RSS (current)",
            f"{long_video['early_rss']:.0f} MiB vs {long_video['late_rss']:.0f} MiB",
            "constant",
        ),
        (
            "  peak RSS",
            f"{long_video['early_peak']:.0f} MiB vs {long_video['late_peak']:.0f} MiB",
            "constant",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (fewer steps and frames)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--compile", action="store_true", help="torch.compile the B-224 forward")
    parser.add_argument("--cuda-graphs", action="store_true", help="replay the device step as CUDA graphs")
    parser.add_argument(
        "--no-fuse", action="store_true", help="keep the unfused model (fuse_for_inference off)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--skip-long-video", action="store_true", help="skip the long-video check (a CPU check; needs PyAV)"
    )
    args = parser.parse_args()
    if args.dtype == "float16" and args.device == "cpu":
        parser.error("--dtype float16 needs --device cuda")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    steps, rounds = (5, 2) if args.quick else (20, 5)
    num_frames, early = (300, 100) if args.quick else (1000, 100)
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    options = dict(compile=args.compile, fuse=not args.no_fuse, cuda_graphs=args.cuda_graphs)
    print(f"device: {where}; torch {torch.__version__}; B-224 {args.dtype}; {options}")

    long_video = (
        None if args.skip_long_video else bench_long_video(num_frames, early, args.device)
    )  # before B-224
    tracker = base_tracker(args.device, args.dtype, **options)
    overhead = bench_overhead(tracker, steps)
    batching = bench_batching(tracker, rounds)

    rows = [
        (f"B-224 device step (forward + peak, {args.dtype})", f"{overhead['forward_ms']:.2f} ms", ""),
        (
            "tracker, 1 sequence, 1280x720 frames, end to end",
            f"{overhead['step_ms']:.2f} ms = {overhead['fps']:.0f} frames/s",
            "target >= 420 frames/s (GPU)",
        ),
        (
            "tracker overhead / forward",
            f"{overhead['overhead_ms']:.2f} ms = {overhead['ratio'] * 100:.1f} %",
            "target <= 10 %",
        ),
        ("8 sequential trackers", f"{batching['sequential_fps']:.2f} frames/s", ""),
        ("1 batched step of 8", f"{batching['batched_fps']:.2f} frames/s", ""),
        (
            "batched / sequential throughput",
            f"{batching['ratio']:.2f}x",
            "target >= 3x, >= 2000 frames/s (GPU)",
        ),
    ]
    if long_video is not None:
        rows += long_video_rows(long_video)
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'value':<{value_width}}  note")
    print("-" * (width + value_width + 20))
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {note}")


if __name__ == "__main__":
    main()
