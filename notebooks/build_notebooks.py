"""Generate the example notebooks (``python notebooks/build_notebooks.py``); ``--check`` verifies them.

The notebooks are written without outputs and with stable cell ids, so diffs stay reviewable: edit the
cells here, not in Jupyter. With ``LORAT_NOTEBOOK_TINY=1`` every notebook uses a tiny random model and
a few frames / training steps (that is how the tests run them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
import os
import sys
from pathlib import Path

import numpy as np

TINY = os.environ.get("LORAT_NOTEBOOK_TINY") == "1"  # tiny random model + data: a smoke test in seconds
try:
    import modeling_lorat
except ImportError:  # a source checkout without `pip install -e .`: add the repository root
    sys.path.insert(0, str(next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "modeling_lorat").is_dir())))
    import modeling_lorat
REPO = Path(modeling_lorat.__file__).resolve().parents[1]  # holds training/ and hub_cards/
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))

import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
print("tiny mode" if TINY else "full mode", "| device:", DEVICE)"""

QUICKSTART = [
    (
        "md",
        """\
# LoRAT quickstart: track an object in a video

[LoRAT](https://arxiv.org/abs/2403.05231) (ECCV 2024) tracks one object through a video, given its box
in the first frame. This notebook loads a model from the Hub, tracks an object in a generated video,
and plots the result. Boxes are always `x, y, w, h` in pixels of the original frame.""",
    ),
    ("code", SETUP),
    (
        "md",
        "## 1. Load a model\n\n`LoratTracker.from_pretrained` takes a Hub id (merged or `-adapter`) or a local folder.",
    ),
    (
        "code",
        """\
from modeling_lorat.tracking_lorat import LoratTracker

if TINY:
    from modeling_lorat.testing_utils import save_tiny_checkpoint

    MODEL_ID = str(save_tiny_checkpoint("quickstart_tiny_model"))  # random weights: the boxes are meaningless
else:
    MODEL_ID = "org/lorat-b-224"  # or "org/lorat-b-224-adapter", "org/lorat-l-378", a local folder, ...
tracker = LoratTracker.from_pretrained(MODEL_ID, device=DEVICE)
print(MODEL_ID, "| search region", tracker.config.search_size, "px | dtype", tracker.dtype)""",
    ),
    (
        "md",
        "## 2. A test video\n\nA generated clip with a striped target moving among distractors (use your own video instead).",
    ),
    (
        "code",
        """\
from modeling_lorat.data.synthetic import make_synthetic_sequence
from modeling_lorat.video_io import AnnotatedVideoWriter

sequence = make_synthetic_sequence(seed=7, num_frames=8 if TINY else 120, frame_size=(160, 120) if TINY else (640, 480))
frames = [sequence.load_frame(i) for i in range(len(sequence))]
height, width = frames[0].shape[:2]
with AnnotatedVideoWriter("quickstart_video.mp4", fps=25, size=(width, height)) as writer:
    for frame in frames:
        writer.write(frame)  # no box given: a plain video
first_box = sequence.boxes[0]
print(len(frames), "frames of", width, "x", height, "| first box x, y, w, h =", first_box)""",
    ),
    ("md", "## 3. Track it\n\nFrame by frame with the tracker (`init` on frame 0, then `track`):"),
    (
        "code",
        """\
from modeling_lorat.video_io import open_frames

boxes, scores = [first_box], [1.0]
for index, frame in enumerate(open_frames("quickstart_video.mp4")):
    if index == 0:
        tracker.init(frame, first_box)
        continue
    box, score = tracker.track(frame)
    boxes.append(box)
    scores.append(score)
boxes = np.array(boxes)
print(boxes[:3].round(1), np.round(scores[:3], 3))""",
    ),
    ("md", "The same with the `single-object-tracking` pipeline (it streams the video lazily):"),
    (
        "code",
        """\
from transformers import pipeline

from modeling_lorat.pipeline_lorat import register_pipeline

register_pipeline()
pipe = pipeline("single-object-tracking", model=MODEL_ID, device=DEVICE)
results = list(pipe("quickstart_video.mp4", box=first_box.tolist()))
print(results[1])
assert np.allclose([r["box"] for r in results], boxes, atol=1e-3)""",
    ),
    (
        "md",
        "## 4. How well did it do?\n\nIntersection over union with the ground truth, and the boxes on the first and last frames.",
    ),
    (
        "code",
        """\
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from modeling_lorat.evaluation import iou_overlap

ious = iou_overlap(boxes, sequence.boxes)
print(f"mean IoU {ious.mean():.3f}")
fig, axes = plt.subplots(1, 3, figsize=(14, 3.5))
for ax, index in zip(axes[:2], (0, len(frames) - 1)):
    ax.imshow(frames[index])
    for box, color, label in ((sequence.boxes[index], "lime", "ground truth"), (boxes[index], "red", "LoRAT")):
        ax.add_patch(Rectangle(box[:2], box[2], box[3], fill=False, color=color, linewidth=2, label=label))
    ax.set_title(f"frame {index}")
    ax.axis("off")
axes[0].legend(loc="lower left", fontsize=8)
axes[2].plot(ious, label="IoU")
axes[2].plot(scores, label="score")
axes[2].set_xlabel("frame")
axes[2].set_ylim(0, 1.05)
axes[2].legend()
plt.tight_layout()
plt.show()""",
    ),
    ("md", "## 5. Save an annotated video"),
    (
        "code",
        """\
with AnnotatedVideoWriter("quickstart_tracked.mp4", fps=25, size=(width, height)) as writer:
    for frame, box, score in zip(frames, boxes, scores):
        writer.write(frame, box, score)
print("wrote quickstart_tracked.mp4 with", writer.frames_written, "frames")""",
    ),
]

FINETUNE = [
    (
        "md",
        """\
# Fine-tune LoRAT on your own videos

From a folder of frames to a fine-tuned adapter on the Hub: convert the data to parquet (the Hub
schema), train LoRA + head with `training/train.py` (frozen DINOv2), check the result, then export
the adapter and the merged model and push them (only when `HF_TOKEN` is set).""",
    ),
    ("code", SETUP),
    (
        "md",
        """\
## 1. The data: one folder of frames per sequence

```
my_videos/
  list.txt                 # optional: sequence names, one per line
  sequence_a/00000001.jpg  # frames, in order
  sequence_a/groundtruth.txt  # one "x,y,w,h" line per frame (pixels)
```

Here a few synthetic sequences stand in for your videos.""",
    ),
    (
        "code",
        """\
from modeling_lorat.data import write_synthetic_benchmark
from modeling_lorat.data.readers_got10k import read_got10k_folder

DATA_DIR = Path("my_videos")
write_synthetic_benchmark(DATA_DIR, 3 if TINY else 50, seed=0, num_frames=12 if TINY else 150)
sequences = read_got10k_folder(DATA_DIR, dataset="my_videos")
for seq in sequences:
    print(seq.name, len(seq), "frames | first box", seq.boxes[0])""",
    ),
    (
        "md",
        """\
## 2. Convert to parquet

One row per sequence (encoded frames, boxes, absent flags): the format `training/train.py` streams,
locally or from the Hub (`python training/prepare_dataset.py ... --push_to_hub USER/my-videos` uploads it
with a dataset card).""",
    ),
    (
        "code",
        """\
from modeling_lorat.data import iter_sequences, load_sequences, write_parquet_shards

PARQUET_DIR = Path("my_videos_parquet")
shards = write_parquet_shards(sequences, PARQUET_DIR, max_rows_per_shard=2)
print([shard.name for shard in shards])
first = next(iter_sequences(load_sequences(PARQUET_DIR, split="train")))
print(first.name, first.load_frame(0).shape, first.boxes[:2].tolist())""",
    ),
    (
        "md",
        """\
## 3. Train

`training/train.py` is an accelerate script (`accelerate launch training/train.py ...` for several GPUs).
Tiny mode trains a random tiny model for three steps; the full settings fine-tune LoRAT-B-224 from
`facebook/dinov2-base`.""",
    ),
    (
        "code",
        """\
import subprocess

OUTPUT_DIR = Path("lorat-finetuned")
cmd = [sys.executable, str(REPO / "training" / "train.py"), "--dataset", f"parquet:{PARQUET_DIR}"]
cmd += ["--output_dir", str(OUTPUT_DIR), "--report_to", "none"]
if TINY:
    cmd += ["--tiny", "--max_train_steps", "3", "--train_batch_size", "2", "--lr_warmup_steps", "1"]
    cmd += ["--dataloader_num_workers", "0", "--mixed_precision", "no"]
else:
    cmd += ["--preset", "b-224", "--max_train_steps", "2000", "--train_batch_size", "32", "--lr_warmup_steps", "100"]
print(" ".join(cmd))
run = subprocess.run(cmd, capture_output=True, text=True)
print(run.stderr[-1500:])
run.check_returncode()
print(sorted(p.name for p in OUTPUT_DIR.iterdir()))""",
    ),
    (
        "md",
        "## 4. Load the adapter and track\n\n`from_pretrained` rebuilds the backbone named in `config.json`, applies the adapter and merges it.",
    ),
    (
        "code",
        """\
from modeling_lorat import LoratForTracking
from modeling_lorat.evaluation import iou_overlap
from modeling_lorat.tracking_lorat import LoratTracker

model = LoratForTracking.from_pretrained(OUTPUT_DIR)
tracker = LoratTracker(model, device=DEVICE)
seq = sequences[0]
tracker.init(seq.load_frame(0), seq.boxes[0])
predicted = [seq.boxes[0]] + [tracker.track(seq.load_frame(i)).box_xywh for i in range(1, len(seq))]
print(f"{seq.name}: mean IoU {iou_overlap(np.array(predicted), seq.boxes).mean():.3f}")""",
    ),
    (
        "md",
        """\
## 5. Export and push

Two repositories per model: `USER/lorat-b-224` (merged: no peft needed) and `USER/lorat-b-224-adapter`
(LoRA + head; its config names the DINOv2 backbone). Only safetensors, json, md and the modeling code
are uploaded. The push runs only when `HF_TOKEN` is set.""",
    ),
    (
        "code",
        """\
from hub_cards import export_checkpoint, files_to_upload, push_to_hub, repo_name_for

name = repo_name_for(model.config)
exports = {
    f"{name}-adapter": export_checkpoint(OUTPUT_DIR, Path("export") / f"{name}-adapter", "adapter", repo_id=f"USER/{name}-adapter"),
    name: export_checkpoint(OUTPUT_DIR, Path("export") / name, "merged", repo_id=f"USER/{name}"),
}
for repo_name, folder in exports.items():
    print(repo_name, files_to_upload(folder))

if os.environ.get("HF_TOKEN"):
    from huggingface_hub import whoami

    user = whoami()["name"]
    for repo_name, folder in exports.items():
        print("pushed", push_to_hub(folder, f"{user}/{repo_name}", private=True))
else:
    print("HF_TOKEN is not set: skipping the push")""",
    ),
]

EVALUATE = [
    (
        "md",
        """\
# Evaluate LoRAT on a benchmark

Runs `lorat evaluate` (batched tracking, result files in the benchmarks' formats, `summary.json`),
reads the metrics and plots the success curve. A synthetic benchmark stands in for LaSOT / GOT-10k /
TrackingNet here: pass `--dataset lasot --root /data/LaSOT` for the real ones.""",
    ),
    ("code", SETUP),
    ("md", "## 1. A benchmark and a model"),
    (
        "code",
        """\
from modeling_lorat.data import write_synthetic_benchmark

BENCHMARK = write_synthetic_benchmark("synthetic_benchmark", 3 if TINY else 30, seed=1, num_frames=10 if TINY else 150)
if TINY:
    from modeling_lorat.testing_utils import save_tiny_checkpoint

    MODEL_ID = str(save_tiny_checkpoint("evaluate_tiny_model"))
else:
    MODEL_ID = "org/lorat-b-224"
print(sorted(p.name for p in BENCHMARK.iterdir())[:5], MODEL_ID)""",
    ),
    (
        "md",
        """\
## 2. `lorat evaluate`

The same as the shell command
`lorat evaluate --model MODEL --dataset synthetic --root synthetic_benchmark --output runs/synthetic`
(under `accelerate launch`, the sequences are split across processes).""",
    ),
    (
        "code",
        """\
from modeling_lorat.cli import main as lorat

RUN_DIR = Path("runs/synthetic")
args = ["evaluate", "--model", MODEL_ID, "--dataset", "synthetic", "--root", str(BENCHMARK), "--output", str(RUN_DIR)]
args += ["--batch-size", "4", "--no-progress", "--device", DEVICE]
assert lorat(args) == 0""",
    ),
    (
        "md",
        "## 3. Metrics\n\nSuccess AUC, precision (20 px) and normalised precision, as fractions; per sequence too.",
    ),
    (
        "code",
        """\
import json

summary = json.loads((RUN_DIR / "summary.json").read_text())
for key, value in summary["metrics"].items():
    print(f"{key:>15}: {100 * value:.1f} %")
for name, scores in summary["per_sequence"].items():
    print(name, {k: round(v, 3) for k, v in scores.items() if isinstance(v, float)})""",
    ),
    ("md", "## 4. Success plot"),
    (
        "code",
        """\
import matplotlib.pyplot as plt

curves = summary["curves"]
fig, ax = plt.subplots(figsize=(5, 4))
ax.plot(curves["overlap_thresholds"], curves["success"], label=f"LoRAT [{100 * summary['metrics']['success_auc']:.1f}]")
ax.set_xlabel("overlap threshold")
ax.set_ylabel("success rate")
ax.set_title("Success plot (synthetic)")
ax.set_xlim(0, 1)
ax.set_ylim(0, 1.02)
ax.legend()
plt.show()
print("plots written by lorat evaluate:", sorted(p.name for p in RUN_DIR.glob("*.png")))""",
    ),
    (
        "md",
        "## 5. On the model card\n\n`lorat push --eval-summary runs/synthetic/summary.json` puts these numbers in the card's `model-index`:",
    ),
    (
        "code",
        """\
from huggingface_hub import snapshot_download

from hub_cards import render_model_card

model_dir = MODEL_ID if Path(MODEL_ID).is_dir() else snapshot_download(MODEL_ID, allow_patterns=["*.json"])
card = render_model_card(model_dir, "USER/lorat-b-224", [RUN_DIR])
print(str(card).split("---")[1])""",
    ),
]

NOTEBOOKS = {"quickstart": QUICKSTART, "finetune": FINETUNE, "evaluate": EVALUATE}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` (no outputs, stable cell ids ``<name>-<index>``)."""
    cells = []
    for index, (kind, source) in enumerate(NOTEBOOKS[name]):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell["id"] = f"{name}-{index:02d}"
        cells.append(cell)
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def main(argv: list[str] | None = None) -> int:
    """Write ``notebooks/<name>.ipynb``; with ``--check`` only report the ones that differ."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook is not up to date")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        path = HERE / f"{name}.ipynb"
        text = nbformat.writes(build(name)) + "\n"
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"out of date (run python notebooks/build_notebooks.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
