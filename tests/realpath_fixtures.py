"""Stand-ins for what real users have on disk, for the real-path tier (``tests/test_real_paths.py``).

* the Hub backbone ``facebook/dinov2-small``: the full S architecture with random weights, saved with
  ``save_pretrained`` (as ``huggingface-cli download --local-dir`` leaves it) and also placed in a Hub
  cache folder, so ``facebook/dinov2-small`` itself resolves with ``HF_HUB_OFFLINE=1``;
* small trees in the official on-disk layouts of LaSOT, GOT-10k, TrackingNet and COCO (synthetic frames);
* a video whose target starts at the README's example box;
* an official-format LoRAT S-224 checkpoint: the key layout of the golden fixture made from the official
  code by ``tools/make_golden_fixtures.py``, at S size, its frozen weights those of the DINOv2 stand-in
  (as the official checkpoints carry the public DINOv2 weights);
* :func:`readme_command`: a command exactly as a README prints it, with only the named parts replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "fixtures" / "golden"
HUB_BACKBONE = "facebook/dinov2-small"
# facebook/dinov2-small's config.json (architecture fields) and preprocessor_config.json
DINOV2_SMALL = dict(
    hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4, image_size=518, patch_size=14
)
DINOV2_PREPROCESSOR = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "BitImageProcessor",
    "image_std": [0.229, 0.224, 0.225],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 256},
}
FRAME_SIZE = (128, 96)  # W, H of the generated benchmark frames
NUM_FRAMES = 8
README_BOX = (40, 30, 24, 32)  # the first box of README.md's `lorat track` example


# ---------------------------------------------------------------------------------------------- backbone
def save_dinov2_small_standin(folder: Path, seed: int = 0) -> Path:
    """``facebook/dinov2-small`` with random weights: ``config.json``, ``model.safetensors``,
    ``preprocessor_config.json``."""
    import torch
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    Dinov2Model(Dinov2Config(**DINOV2_SMALL)).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(DINOV2_PREPROCESSOR, indent=2))
    return folder


def add_to_hub_cache(cache: Path, repo_id: str, folder: Path) -> Path:
    """Place ``folder``'s files in a Hub cache (``models--org--name/snapshots/<commit>``, ``refs/main``), as
    ``huggingface_hub`` leaves a downloaded repo; returns the snapshot folder."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        (snapshot / path.name).symlink_to(path.resolve())
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


# ---------------------------------------------------------------------------------------------- data
def _sequences(count: int, seed: int, num_frames: int = NUM_FRAMES):
    from modeling_lorat.data.synthetic import synthetic_sequences

    return synthetic_sequences(count, seed=seed, num_frames=num_frames, frame_size=FRAME_SIZE)


def _save_frames(seq, folder: Path, name_of) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(len(seq)):
        Image.fromarray(seq.load_frame(i)).save(folder / name_of(i), quality=92)


def _box_lines(boxes: np.ndarray, offset: float = 0.0) -> str:
    return "".join(f"{x + offset:g},{y + offset:g},{w:g},{h:g}\n" for x, y, w, h in boxes)


def write_lasot_tree(root: Path, test: list[str], train: list[str]) -> Path:
    """``root/<class>/<class>-<n>/img/00000001.jpg``, 1-based ``groundtruth.txt``, ``full_occlusion.txt``,
    ``out_of_view.txt``, ``nlp.txt``; ``testing_set.txt`` lists the test sequences present."""
    names = [*test, *train]
    for seq, name in zip(_sequences(len(names), seed=11), names):
        folder = root / name.rsplit("-", 1)[0] / name
        _save_frames(seq, folder / "img", lambda i: f"{i + 1:08d}.jpg")
        (folder / "groundtruth.txt").write_text(_box_lines(seq.boxes, offset=1.0))  # MATLAB 1-based
        flags = ["0"] * len(seq)
        flags[-1] = "1"  # target out of view in the last frame
        (folder / "full_occlusion.txt").write_text(",".join(["0"] * len(seq)) + "\n")
        (folder / "out_of_view.txt").write_text(",".join(flags) + "\n")
        (folder / "nlp.txt").write_text(f"the {name.rsplit('-', 1)[0]} moving across the frame\n")
    (root / "testing_set.txt").write_text("".join(f"{n}\n" for n in test))
    return root


def write_got10k_tree(root: Path, num_train: int = 2, num_test: int = 2) -> Path:
    """``root/{train,test}/list.txt`` + ``GOT-10k_{Train,Test}_00000N/00000001.jpg``; train has full ground
    truth, ``absence.label``, ``cover.label`` and ``meta_info.ini``; test only the first box."""
    for split, count, seed in (("train", num_train, 21), ("test", num_test, 22)):
        names = [f"GOT-10k_{split.title()}_{i + 1:06d}" for i in range(count)]
        for seq, name in zip(_sequences(count, seed=seed), names):
            folder = root / split / name
            _save_frames(seq, folder, lambda i: f"{i + 1:08d}.jpg")
            boxes = seq.boxes if split == "train" else seq.boxes[:1]
            (folder / "groundtruth.txt").write_text(_box_lines(boxes))
            if split == "train":
                (folder / "absence.label").write_text("0\n" * len(seq))
                (folder / "cover.label").write_text("8\n" * len(seq))
                (folder / "meta_info.ini").write_text(f"[METAINFO]\nurl: synthetic\nmajor_class: {name}\n")
        (root / split / "list.txt").write_text("".join(f"{n}\n" for n in names))
    return root


def write_trackingnet_tree(root: Path) -> Path:
    """``root/TRAIN_0/frames/<seq>/0.jpg ...`` and ``root/TRAIN_0/anno/<seq>.txt`` (YouTube-id names)."""
    names = ["-3TIfnTSM6c_2", "a1qoB1eERn0_0"]
    for seq, name in zip(_sequences(len(names), seed=31), names):
        _save_frames(seq, root / "TRAIN_0" / "frames" / name, lambda i: f"{i}.jpg")
        (root / "TRAIN_0" / "anno").mkdir(parents=True, exist_ok=True)
        (root / "TRAIN_0" / "anno" / f"{name}.txt").write_text(_box_lines(seq.boxes))
    return root


def write_coco_tree(root: Path, num_images: int = 3) -> Path:
    """``root/train2017/<12-digit id>.jpg`` and ``root/annotations/instances_train2017.json`` (one crowd
    annotation, which the reader skips)."""
    images, annotations = [], []
    for index, seq in enumerate(_sequences(num_images, seed=41, num_frames=1)):
        image_id = 9 + 16 * index
        file_name = f"{image_id:012d}.jpg"
        _save_frames(seq, root / "train2017", lambda i, f=file_name: f)
        images.append(
            {"id": image_id, "file_name": file_name, "width": FRAME_SIZE[0], "height": FRAME_SIZE[1]}
        )
        x, y, w, h = (float(v) for v in seq.boxes[0])
        annotations.append(
            {
                "id": 100 + index,
                "image_id": image_id,
                "category_id": 18,
                "bbox": [x, y, w, h],
                "area": w * h,
                "iscrowd": 0,
            }
        )
    annotations.append(
        {
            "id": 999,
            "image_id": 9,
            "category_id": 18,
            "bbox": [1.0, 1.0, 10.0, 10.0],
            "area": 100.0,
            "iscrowd": 1,
        }
    )
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    data = {
        "info": {"description": "COCO 2017 stand-in"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 18, "name": "dog", "supercategory": "animal"}],
    }
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(data))
    return root


def write_video(path: Path, num_frames: int = 12, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """An mp4 of a red block on a textured background moving right, starting at :data:`README_BOX`;
    returns its ``(num_frames, 4)`` ground-truth boxes."""
    from modeling_lorat.video_io import AnnotatedVideoWriter

    rng = np.random.default_rng(5)
    background = rng.integers(40, 200, size=(size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    background = np.kron(background, np.ones((8, 8, 1), dtype=np.uint8))
    x, y, w, h = README_BOX
    boxes = []
    with AnnotatedVideoWriter(path, fps=10, size=size) as writer:
        for t in range(num_frames):
            frame = background.copy()
            left = x + 2 * t
            frame[y : y + h, left : left + w] = (220, 30, 30)
            writer.write(frame)
            boxes.append((left, y, w, h))
    return np.asarray(boxes, dtype=np.float64)


# ---------------------------------------------------------------------------------------------- official
def official_s224_state_dict(backbone: Path, seed: int = 0) -> dict:
    """An official ``LoRAT_DINOv2`` S-224 state dict (LoRA unmerged, r = alpha = 64): every key of the
    golden fixture ``official_mlp.safetensors`` at S size, 12 blocks, random LoRA / token types / head;
    the frozen weights are ``backbone``'s (put in place through this package's converter)."""
    import torch
    from safetensors.torch import load_file

    from modeling_lorat import LoratConfig, LoratForTracking
    from modeling_lorat.convert_lorat_original_to_hf import convert_state_dict

    meta = json.loads((GOLDEN / "meta.json").read_text())
    tiny_hidden = meta["embed_dim"]
    tiny_mlp = int(tiny_hidden * meta["variants"]["mlp"]["mlp_ratio"])
    hidden, rank = DINOV2_SMALL["hidden_size"], 64
    width = {tiny_hidden: hidden, tiny_mlp: hidden * DINOV2_SMALL["mlp_ratio"]}
    config = LoratConfig.from_preset("s-224")
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, tensor in load_file(str(GOLDEN / "official_mlp.safetensors")).items():
        block = re.match(r"blocks\.(\d+)\.(.+)$", key)
        if block and block.group(1) != "0":
            continue
        if key.endswith(".lora.A"):
            shape = (rank, width[tensor.shape[1]])
        elif key.endswith(".lora.B"):
            shape = (width[tensor.shape[0]], rank)
        elif key == "pos_embed":
            shape = (1, config.search_grid**2, hidden)
        else:
            shape = tuple(width.get(d, d) for d in tensor.shape)
        if key == "lora_alpha":
            value = torch.tensor(float(rank))
        elif tensor.ndim == 0:
            value = tensor.clone()
        else:
            value = torch.randn(shape, generator=generator) * 0.02
        names = (
            [f"blocks.{i}.{block.group(2)}" for i in range(DINOV2_SMALL["num_hidden_layers"])]
            if block
            else [key]
        )
        for name in names:
            state[name] = value.clone()
    reference = LoratForTracking.from_backbone(str(backbone), preset="s-224").state_dict()
    base, _, _ = convert_state_dict(state, config)
    with torch.no_grad():
        for key, value in base.items():  # the converter hands back the checkpoint's own tensors
            if key.startswith("backbone.") or key == "embeddings.position_embeddings":
                value.copy_(reference[key])
    base, _, _ = convert_state_dict(state, config)
    mismatched = [
        k for k, v in base.items() if k.startswith("backbone.") and not torch.equal(v, reference[k])
    ]
    assert not mismatched, f"frozen weights not taken from the backbone: {mismatched[:3]}"
    return state


# ---------------------------------------------------------------------------------------------- commands
def readme_command(
    markdown: Path, prefix: str, replacements: list[tuple[str, str]], contains: str = ""
) -> list[str]:
    """The first command in ``markdown`` that starts with ``prefix`` and contains ``contains``
    (continuation lines joined, trailing ``# comment`` dropped), with each ``(old, new)`` replaced in
    turn; every ``old`` must occur."""
    text = markdown.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        line = re.sub(r"\s+#\s.*$", "", line).strip()
        if line.startswith(prefix) and contains in line:
            command = re.sub(r"\s+", " ", line)
            break
    else:
        raise AssertionError(f"{markdown.name} prints no command starting with {prefix!r}")
    for old, new in replacements:
        assert old in command, f"{markdown.name}: {old!r} is not in {command!r}"
        command = command.replace(old, new)
    return shlex.split(command)


def executable(name: str) -> str:
    """The console script ``name`` of this Python's environment (a virtualenv need not be activated)."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.is_file() else shutil.which(name)
    assert found, f"{name} is not installed next to {sys.executable}"
    return found


def run_command(
    argv: list[str], env: dict[str, str], cwd: Path = REPO, check: bool = True, timeout: float = 600
):
    """Run ``argv`` (``python`` is this interpreter, other first words resolved with :func:`executable`);
    returns the completed process (``AssertionError`` with its output when ``check`` and it fails)."""
    argv = [sys.executable if argv[0] == "python" else executable(argv[0]), *argv[1:]]
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{shlex.join(argv)} exited {result.returncode}\n--- stdout\n{result.stdout[-3000:]}\n"
            f"--- stderr\n{result.stderr[-6000:]}"
        )
    return result


def offline_env(hf_home: Path) -> dict[str, str]:
    """The environment of a user without network whose Hugging Face folder is ``hf_home`` (Hub cache in
    ``hf_home/hub``, no accelerate config: ``accelerate launch`` uses its defaults)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HF_", "ACCELERATE_"))}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    env.update(TOKENIZERS_PARALLELISM="false")
    return env
