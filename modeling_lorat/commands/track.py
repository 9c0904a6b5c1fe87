"""``lorat track VIDEO_OR_FOLDER --box x,y,w,h --model PATH_OR_REPO``: track one object in a video.

Writes an annotated video (``--output``) and/or a benchmark-format result file (``--results``, one
``x,y,w,h`` line per frame, pixels); with neither, prints the boxes to stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DTYPES = ("float32", "float16", "bfloat16")


def parse_box(text: str) -> tuple[float, float, float, float]:
    """Parse ``"x,y,w,h"`` (pixels: 4 comma-separated numbers) -> a tuple of floats checked like every first
    box (:func:`~modeling_lorat.image_processing_lorat.validate_box_xywh`: finite, positive w and h)."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 4:
        raise ValueError(f"--box must be 4 comma-separated numbers x,y,w,h; got {text!r}")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--box must be 4 comma-separated numbers x,y,w,h; got {text!r}") from None
    from ..image_processing_lorat import validate_box_xywh

    try:
        validate_box_xywh(values)
    except ValueError as exc:
        raise ValueError(f"--box {text!r}: {exc}") from None
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
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1, mps, ... (default: cuda if available, else cpu)"
    )
    parser.add_argument(
        "--dtype", default="float32", choices=DTYPES, help="model precision (default float32)"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model forward")
    parser.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="replay each step as a CUDA graph (CUDA only; fastest on a GPU)",
    )
    parser.set_defaults(run=run)


def _check_model_path(model: str) -> None:
    """Raise ``FileNotFoundError`` for a model that is neither a folder nor a loadable Hub id (fast, offline too)."""
    from ..loading_utils import resolve_model_path

    resolve_model_path(model)


def check_output_path(value: str, option: str, inputs: tuple[Path, ...] = ()) -> Path:
    """Check before tracking that ``value`` can be written as a file; raise ``ValueError`` naming ``option``.

    Refused: an existing folder, a name ending in a separator, the input video itself, a place under a
    file or in a folder where a file cannot be created (permissions, read-only file system).
    """
    import tempfile

    path = Path(value).expanduser()
    if path.is_dir() or value.endswith(("/", os.sep)):
        raise ValueError(f"{option} {value} is a folder; give a file name, e.g. {Path(value) / 'boxes.txt'}")
    if any(path.resolve() == Path(p).resolve() for p in inputs):
        raise ValueError(f"{option} {value} is the input video; choose another file")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{option} {value}: {folder} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise ValueError(f"{option} {value}: cannot write in {folder} ({exc.strerror or exc})") from None
    return path


def check_video_output(path: Path) -> None:
    """Raise ``ValueError`` unless an annotated video can be encoded into a file named like ``path``."""
    import tempfile

    from ..video_io import AnnotatedVideoWriter

    with tempfile.TemporaryDirectory() as tmp:
        writer = AnnotatedVideoWriter(Path(tmp) / f"probe{path.suffix}", fps=30.0, size=(16, 16))
        try:
            writer.open()
        except ValueError as exc:
            detail = str(exc.__cause__) if exc.__cause__ else str(exc).split(": ", 1)[-1]
            kind = f"a {path.suffix} file" if path.suffix else "a file without an extension"
            raise ValueError(
                f"--output {path}: cannot encode a video into {kind} ({detail.replace(tmp, '...')}); "
                "use .mp4, .mkv or .avi"
            ) from None
        writer.close(success=False)


def run(args: argparse.Namespace) -> int:
    """Run ``lorat track``; returns the exit code."""
    box = parse_box(args.box)
    outputs = [(v, o) for v, o in ((args.output, "--output"), (args.results, "--results")) if v is not None]
    if (
        len(outputs) == 2
        and Path(args.output).expanduser().resolve() == Path(args.results).expanduser().resolve()
    ):
        raise ValueError("--output and --results name the same file")
    for value, option in outputs:  # before the first frame: a late failure would lose the whole run
        check_output_path(value, option, inputs=(Path(args.video),))
    if args.output is not None:
        check_video_output(Path(args.output))

    import time
    import warnings

    import numpy as np
    from tqdm.auto import tqdm

    from ..loading_utils import resolve_device
    from ..tracking_lorat import LoratTracker
    from ..tracking_session import iter_track
    from ..video_io import AnnotatedVideoWriter, TruncatedVideoWarning, open_frames, write_results_txt

    _check_model_path(args.model)  # "no such folder" / offline: before anything slow
    if args.device is None:
        import torch

        device = resolve_device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = resolve_device(args.device)
    if args.dtype == "float16" and device.type != "cuda":
        raise ValueError("--dtype float16 needs --device cuda (use float32 or bfloat16 on CPU)")
    if args.cuda_graphs and device.type != "cuda":
        raise ValueError(f"--cuda-graphs needs a CUDA device, got --device {device}")

    frames = open_frames(args.video)
    tracker = LoratTracker.from_pretrained(
        args.model, device=device, dtype=args.dtype, compile=args.compile, cuda_graphs=args.cuda_graphs
    )

    boxes: list[np.ndarray] = []
    writer = None
    start = time.perf_counter()
    bar = tqdm(total=frames.num_frames, unit="frame", desc="tracking", dynamic_ncols=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncatedVideoWarning)  # reported below, in one line
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
    truncated = ""
    if getattr(frames, "truncated", False):
        declared = getattr(frames, "declared_frames", None)
        of = f" of the {declared} frames it declares" if declared else ""
        print(
            f"lorat track: warning: {args.video}: decoded only {len(stacked)} frames{of}; the file is "
            f"truncated or damaged, so the results stop at frame {len(stacked) - 1}",
            file=sys.stderr,
        )
        truncated = f" (TRUNCATED video: {declared or '?'} frames declared)"
    written = ", ".join(str(p) for p in (args.output, args.results) if p is not None)
    print(
        f"tracked {len(stacked)} frames{truncated} in {elapsed:.1f} s "
        f"({len(stacked) / max(elapsed, 1e-9):.1f} FPS)" + (f"; wrote {written}" if written else ""),
        file=sys.stderr,
    )
    return 0
