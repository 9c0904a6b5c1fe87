"""LoRAT tracking demo (Gradio Space): upload a video, give the target's first box, get it tracked.

The work is done by :func:`track_video`, a plain function (no Gradio needed) that the tests call;
``python app.py`` builds and launches the UI. The model defaults to ``$LORAT_MODEL_ID`` (else
``org/lorat-b-224``): any merged or adapter LoRAT checkpoint, Hub id or local folder.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

# In a Space the ``modeling_lorat`` package is copied next to this file (``hub_cards.export_space``).
_HERE = Path(__file__).resolve().parent
if (_HERE / "modeling_lorat").is_dir() and str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

DEFAULT_MODEL_ID = os.environ.get("LORAT_MODEL_ID", "org/lorat-b-224")
DEFAULT_FPS = 25.0


def parse_box(box_text: str) -> np.ndarray:
    """``"x, y, w, h"`` (commas and/or spaces, pixels) -> float64 ``(4,)``; ``ValueError`` otherwise."""
    parts = [p for p in re.split(r"[\s,;]+", (box_text or "").strip().strip("[]()")) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError as exc:
        raise ValueError(f"the box must be four numbers 'x, y, w, h' in pixels; got {box_text!r}") from exc
    if len(values) != 4:
        raise ValueError(
            f"the box must be four numbers 'x, y, w, h' in pixels; got {len(values)}: {box_text!r}"
        )
    box = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
        raise ValueError(f"the box needs finite values and a positive width and height; got {box_text!r}")
    return box


@functools.lru_cache(maxsize=2)
def load_tracker(model_id_or_path: str) -> Any:
    """A cached ``LoratTracker`` for a Hub id or local folder (GPU + float16 when available)."""
    import torch

    from modeling_lorat.tracking_lorat import LoratTracker

    if torch.cuda.is_available():
        return LoratTracker.from_pretrained(model_id_or_path, device="cuda", dtype="float16")
    return LoratTracker.from_pretrained(model_id_or_path)


def format_results(rows: list[tuple[int, np.ndarray, float]]) -> str:
    """CSV text ``frame,x,y,w,h,score`` (pixels, score in [0, 1]), one line per frame."""
    lines = ["frame,x,y,w,h,score"]
    lines += [f"{i},{b[0]:.1f},{b[1]:.1f},{b[2]:.1f},{b[3]:.1f},{s:.3f}" for i, b, s in rows]
    return "\n".join(lines) + "\n"


def track_video(
    video_path: str | os.PathLike,
    box_text: str,
    model_id_or_path: str = DEFAULT_MODEL_ID,
    max_frames: int | None = None,
    output_dir: str | os.PathLike | None = None,
) -> tuple[str, str]:
    """Track the object ``box_text`` (``x, y, w, h`` in frame 0) through the video.

    Args:
        video_path: a video file (or a folder of frames).
        box_text: the first box as ``"x, y, w, h"`` pixels.
        model_id_or_path: LoRAT checkpoint (Hub id or folder).
        max_frames: track at most this many frames (frame 0 included); None = all.
        output_dir: where to write the annotated video (default: a new temporary folder).

    Returns:
        ``(annotated_video_path, results_text)``: an MP4 with the box and score drawn on every frame,
        and the track as CSV text (``frame,x,y,w,h,score``; frame 0 is the given box with score 1).
    """
    from modeling_lorat.video_io import AnnotatedVideoWriter, open_frames

    if not video_path:
        raise ValueError("upload a video first")
    if max_frames is not None and int(max_frames) < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    box = parse_box(box_text)
    frames = open_frames(video_path)
    tracker = load_tracker(str(model_id_or_path))
    out_dir = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="lorat_"))
    out_path = out_dir / f"{Path(video_path).stem}_tracked.mp4"
    rows: list[tuple[int, np.ndarray, float]] = []
    writer = None
    state = None
    try:
        for index, frame in enumerate(frames):
            if max_frames is not None and index >= int(max_frames):
                break
            if state is None:
                state = tracker.new_state(frame, box)
                result_box, score = box, 1.0
                writer = AnnotatedVideoWriter(
                    out_path, fps=frames.fps or DEFAULT_FPS, size=(frame.shape[1], frame.shape[0])
                ).open()
            else:
                result = tracker.step([state], [frame])[0]
                result_box, score = result.box_xywh, result.score
            writer.write(frame, result_box, score)
            rows.append((index, np.asarray(result_box, dtype=np.float64), float(score)))
    except BaseException:
        if writer is not None:
            writer.close(success=False)
        raise
    writer.close()
    return str(out_path), format_results(rows)


def preview_box(video_path: str | os.PathLike, box_text: str) -> Any:
    """The first frame with ``box_text`` drawn on it (a PIL image), to check the box before tracking."""
    from modeling_lorat.video_io import AnnotatedVideoWriter, open_frames

    first = next(iter(open_frames(video_path)))
    box = parse_box(box_text) if box_text and box_text.strip() else None
    painter = AnnotatedVideoWriter(
        Path(tempfile.gettempdir()) / "preview.mp4", fps=1.0, size=first.shape[1::-1]
    )
    return painter.annotate(first, box)  # the writer is never opened: nothing is written


def build_demo(model_id: str = DEFAULT_MODEL_ID) -> Any:
    """The Gradio Blocks UI around :func:`track_video` (imports gradio)."""
    import gradio as gr

    def run(video: str, box_text: str, model: str, max_frames: float | None) -> tuple[str, str]:
        try:
            limit = int(max_frames) if max_frames else None
            return track_video(video, box_text, model or model_id, limit)
        except (ValueError, FileNotFoundError) as exc:
            raise gr.Error(str(exc)) from exc

    with gr.Blocks(title="LoRAT tracker") as demo:
        gr.Markdown(
            "# LoRAT single-object tracker\nUpload a video and type the target's box in the first frame as "
            "`x, y, w, h` (pixels, top-left corner + size). Check it with *Preview*, then *Track*."
        )
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="Video", sources=["upload"])
                box = gr.Textbox(label="First box x, y, w, h", placeholder="120, 80, 60, 40")
                model = gr.Textbox(label="Model (Hub id or folder)", value=model_id)
                max_frames = gr.Number(label="Max frames (empty = all)", precision=0, value=None)
                with gr.Row():
                    preview_button = gr.Button("Preview box")
                    track_button = gr.Button("Track", variant="primary")
            with gr.Column():
                preview = gr.Image(label="First frame", type="pil")
                tracked = gr.Video(label="Tracked")
                table = gr.Textbox(label="Boxes (frame,x,y,w,h,score)", lines=12)
        preview_button.click(preview_box, [video, box], preview)
        track_button.click(run, [video, box, model, max_frames], [tracked, table])
    return demo


if __name__ == "__main__":
    build_demo().launch()
