"""``lorat track VIDEO_OR_FOLDER --box x,y,w,h --model PATH_OR_REPO``: track one object in a video.

Writes an annotated video (``--output``) and/or a benchmark-format result file (``--results``, one
``x,y,w,h`` line per frame, pixels); with neither, prints the boxes to stdout.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

DTYPES = ("float32", "float16", "bfloat16")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def parse_box(text: str) -> tuple[float, float, float, float]:
    """Parse ``"x,y,w,h"`` (pixels; exactly 4 finite numbers, positive w and h) -> tuple of floats."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 4:
        raise ValueError(f"--box must be 4 comma-separated numbers x,y,w,h; got {text!r}")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--box must be 4 comma-separated numbers x,y,w,h; got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"--box values must be finite; got {text!r}")
    if values[2] <= 0 or values[3] <= 0:
        raise ValueError(f"--box width and height must be positive; got {text!r}")
    return values  # type: ignore[return-value]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``track`` sub-command."""
    parser = subparsers.add_parser(
        "track",
        help="track one object through a video or an image folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("video", metavar="VIDEO_OR_FOLDER", help="video file or folder of frames")
    parser.add_argument(
        "--box",
        required=True,
        help="target in the first frame: x,y,w,h in pixels (use --box=-5,10,40,30 for negative x)",
    )
    parser.add_argument("--model", required=True, help="model folder or Hugging Face Hub repo id")
    parser.add_argument("--output", default=None, help="annotated video to write (e.g. annotated.mp4)")
    parser.add_argument("--results", default=None, help="result file to write: one x,y,w,h line per frame")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument(
        "--dtype", default="float32", choices=DTYPES, help="model precision (default float32)"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model forward")
    parser.set_defaults(run=run)


def _check_model_path(model: str) -> None:
    """Raise FileNotFoundError for a model argument that is neither a folder nor a plausible Hub id."""
    path = Path(model).expanduser()
    if path.is_dir():
        return
    if path.exists():
        raise FileNotFoundError(f"model must be a folder or a Hub repo id, got a file: {model}")
    if path.is_absolute() or model.startswith((".", "~")) or not _REPO_ID.match(model):
        raise FileNotFoundError(f"model folder not found: {model}")


def run(args: argparse.Namespace) -> int:
    """Run ``lorat track``; returns the exit code."""
    box = parse_box(args.box)
    _check_model_path(args.model)

    import time

    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from ..pipeline_lorat import iter_track
    from ..tracking_lorat import LoratTracker
    from ..video_io import AnnotatedVideoWriter, open_frames, write_results_txt

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device} requested but CUDA is not available")
    if args.dtype == "float16" and torch.device(device).type != "cuda":
        raise ValueError("--dtype float16 needs --device cuda (use float32 or bfloat16 on CPU)")

    frames = open_frames(args.video)
    try:
        tracker = LoratTracker.from_pretrained(
            args.model, device=device, dtype=args.dtype, compile=args.compile
        )
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise FileNotFoundError(f"cannot load model {args.model!r}: {exc}") from exc

    boxes: list[np.ndarray] = []
    writer = None
    start = time.perf_counter()
    bar = tqdm(total=frames.num_frames, unit="frame", desc="tracking", dynamic_ncols=True)
    try:
        for index, frame, frame_box, score in iter_track(tracker, frames, box):
            if args.output is not None:
                if writer is None:
                    size = (frame.shape[1], frame.shape[0])
                    writer = AnnotatedVideoWriter(args.output, fps=frames.fps or 30.0, size=size).open()
                writer.write(frame, frame_box, score)
            boxes.append(np.asarray(frame_box, dtype=np.float64))
            bar.update(1)
            if index % 10 == 0:
                bar.set_postfix(score=f"{score:.2f}")
    except BaseException:
        if writer is not None:
            writer.close(success=False)
        raise
    finally:
        bar.close()
    if writer is not None:
        writer.close()
    elapsed = time.perf_counter() - start
    stacked = np.stack(boxes)
    if args.results is not None:
        write_results_txt(args.results, stacked)
    if args.output is None and args.results is None:
        for x, y, w, h in stacked:
            print(f"{x:.4f},{y:.4f},{w:.4f},{h:.4f}")
    written = ", ".join(str(p) for p in (args.output, args.results) if p is not None)
    print(
        f"tracked {len(stacked)} frames in {elapsed:.1f} s ({len(stacked) / max(elapsed, 1e-9):.1f} FPS)"
        + (f"; wrote {written}" if written else ""),
        file=sys.stderr,
    )
    return 0
