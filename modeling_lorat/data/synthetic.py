"""Deterministic synthetic tracking sequences (numpy only, nothing downloaded).

Each sequence shows a smooth random background (upsampled colour noise + a linear gradient +
small static blobs), 1-2 plainly coloured distractor shapes and one target: a striped or checkered
rectangle/ellipse (12-40 px, smaller on tiny frames) with its own two colours, moving with a
random velocity, bouncing at the borders and slowly changing size. The target is drawn last, so
it is never occluded, and its box ``x, y, w, h`` (integer pixels, float64) is exact: the target
covers precisely the pixel columns ``[x, x + w)`` and rows ``[y, y + h)``.

Frames are rendered lazily by picklable callables; the same seed gives bit-identical frames and
boxes. Streaming rows (:func:`synthetic_iterable_dataset`) use the hub schema without pixels:
``attributes["synthetic"] = {"seed", "num_frames", "frame_size"}`` tells
:func:`~modeling_lorat.data.hub_schema.row_to_sequence` how to regenerate the frames.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from ..io_utils import atomic_write_bytes, atomic_write_text
from .sequence import TrackingSequence


def sequence_seed(seed: int, index: int) -> int:
    """Seed of sequence ``index`` of a synthetic set with base ``seed`` (63-bit, well mixed)."""
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def _vivid_color(rng: np.random.Generator) -> np.ndarray:
    color = rng.uniform(0, 60, size=3)
    color[rng.integers(3)] = rng.uniform(200, 255)
    if rng.random() < 0.5:
        color[rng.integers(3)] = rng.uniform(150, 255)
    return color


def _far_color(rng: np.random.Generator, avoid: list[np.ndarray]) -> np.ndarray:
    for _ in range(64):
        color = rng.uniform(0, 255, size=3)
        if all(np.abs(color - other).max() > 110 for other in avoid):
            return color
    return 255.0 - avoid[0]


def _upsample(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of a small ``(h, w, C)`` grid to ``(height, width, C)``."""
    gh, gw = grid.shape[:2]
    ys, xs = np.linspace(0, gh - 1, height), np.linspace(0, gw - 1, width)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, gh - 1), np.minimum(x0 + 1, gw - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - wx) + grid[y0][:, x1] * wx
    bottom = grid[y1][:, x0] * (1 - wx) + grid[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def _shape_mask(kind: str, w: int, h: int) -> np.ndarray:
    if kind == "rect":
        return np.ones((h, w), dtype=bool)
    v = (np.arange(h) + 0.5 - h / 2) / (h / 2)
    u = (np.arange(w) + 0.5 - w / 2) / (w / 2)
    return v[:, None] ** 2 + u[None, :] ** 2 <= 1.0


class _Mover:
    """A shape moving with constant speed, bouncing at the frame borders, with a size oscillation."""

    def __init__(self, rng: np.random.Generator, frame_size: tuple[int, int], lo: float, hi: float) -> None:
        width, height = frame_size
        self.base = rng.uniform(lo, hi, size=2)
        self.amp, self.freq, self.phase = (
            rng.uniform(0.04, 0.15),
            rng.uniform(0.01, 0.05),
            rng.uniform(0, 6.3),
        )
        speed, angle = rng.uniform(0.8, 2.5), rng.uniform(0, 2 * np.pi)
        self.velocity = np.array([np.cos(angle), np.sin(angle)]) * speed
        self.center = np.array([rng.uniform(hi / 2, width - hi / 2), rng.uniform(hi / 2, height - hi / 2)])
        self.frame_size = frame_size

    def boxes(self, num_frames: int) -> np.ndarray:
        width, height = self.frame_size
        limits = np.array([width, height], dtype=np.float64)
        out = np.empty((num_frames, 4), dtype=np.float64)
        center, velocity = self.center.copy(), self.velocity.copy()
        for t in range(num_frames):
            scale = 1.0 + self.amp * np.sin(2 * np.pi * self.freq * t + self.phase)
            size = np.clip(np.round(self.base * scale), 4, limits - 2)
            for axis in range(2):
                if center[axis] - size[axis] / 2 < 0:
                    center[axis], velocity[axis] = size[axis] / 2, abs(velocity[axis])
                elif center[axis] + size[axis] / 2 > limits[axis]:
                    center[axis], velocity[axis] = limits[axis] - size[axis] / 2, -abs(velocity[axis])
            corner = np.clip(np.round(center - size / 2), 0, limits - size)
            out[t] = [corner[0], corner[1], size[0], size[1]]
            center = center + velocity
        return out


class SyntheticScene:
    """All random choices of one synthetic sequence; renders frame ``i`` on demand."""

    def __init__(self, seed: int, num_frames: int = 60, frame_size: tuple[int, int] = (160, 120)) -> None:
        width, height = (int(v) for v in frame_size)
        if width < 16 or height < 16:
            raise ValueError(f"frame_size must be at least (16, 16) pixels, got {frame_size}")
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.seed, self.num_frames, self.frame_size = int(seed), int(num_frames), (width, height)
        rng = np.random.default_rng(self.seed)
        hi = min(40.0, 0.4 * min(width, height))
        lo = min(12.0, hi)
        self.target_kind = "rect" if rng.random() < 0.5 else "ellipse"
        self.target_colors = np.stack([_vivid_color(rng), _vivid_color(rng)])
        while np.abs(self.target_colors[0] - self.target_colors[1]).max() < 80:
            self.target_colors[1] = _vivid_color(rng)
        self.pattern = ("stripes", "checker")[int(rng.integers(2))]
        self.period, self.angle = rng.uniform(3, 7), rng.uniform(0, np.pi)
        self.boxes = _Mover(rng, self.frame_size, lo, hi).boxes(self.num_frames)
        self.distractors = []
        for _ in range(int(rng.integers(1, 3))):
            kind = "rect" if rng.random() < 0.5 else "ellipse"
            color = _far_color(rng, list(self.target_colors))
            boxes = _Mover(rng, self.frame_size, 0.6 * lo, hi).boxes(self.num_frames)
            self.distractors.append((kind, color, boxes))
        self.background_seed = int(rng.integers(2**62))
        self._background: np.ndarray | None = None

    def background(self) -> np.ndarray:
        """``(H, W, 3)`` float32 static background (built once, cached)."""
        if self._background is None:
            width, height = self.frame_size
            rng = np.random.default_rng(self.background_seed)
            grid = rng.uniform(30, 200, size=(int(rng.integers(3, 7)), int(rng.integers(3, 7)), 3))
            image = _upsample(grid, height, width)
            gy, gx = np.mgrid[0:height, 0:width]
            direction = rng.uniform(-1, 1, size=2)
            ramp = (gx * direction[0] / width + gy * direction[1] / height)[:, :, None]
            image = image + ramp * rng.uniform(-40, 40, size=3)
            for _ in range(int(rng.integers(6, 16))):
                cx, cy, radius = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(1.5, 5)
                blob = (gx - cx) ** 2 + (gy - cy) ** 2 <= radius**2
                image[blob] = rng.uniform(30, 200, size=3)
            self._background = np.clip(image, 0, 255).astype(np.float32)
        return self._background

    def _paste(self, image: np.ndarray, kind: str, box: np.ndarray, texture: np.ndarray) -> None:
        x, y, w, h = (int(v) for v in box)
        mask = _shape_mask(kind, w, h)
        region = image[y : y + h, x : x + w]
        region[mask] = texture[mask]

    def _target_texture(self, w: int, h: int) -> np.ndarray:
        v, u = np.mgrid[0:h, 0:w].astype(np.float64)
        if self.pattern == "stripes":
            phase = (u * np.cos(self.angle) + v * np.sin(self.angle)) / self.period
            select = np.floor(phase).astype(int) % 2
        else:
            select = (np.floor(u / self.period) + np.floor(v / self.period)).astype(int) % 2
        return self.target_colors[select]

    def render(self, index: int) -> np.ndarray:
        """Frame ``index`` as ``(H, W, 3)`` uint8 RGB."""
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} out of range for a {self.num_frames}-frame synthetic sequence")
        image = self.background().copy()
        for kind, color, boxes in self.distractors:
            box = boxes[index]
            self._paste(image, kind, box, np.broadcast_to(color, (int(box[3]), int(box[2]), 3)))
        box = self.boxes[index]
        self._paste(image, self.target_kind, box, self._target_texture(int(box[2]), int(box[3])))
        noise = np.random.default_rng([self.seed, index]).integers(-3, 4, size=image.shape)
        return np.clip(np.rint(image) + noise, 0, 255).astype(np.uint8)


class SyntheticFrame:
    """Picklable zero-argument frame reference: ``SyntheticFrame(scene, i)() -> (H, W, 3) uint8``."""

    __slots__ = ("scene", "index")

    def __init__(self, scene: SyntheticScene, index: int) -> None:
        self.scene, self.index = scene, index

    def __call__(self) -> np.ndarray:
        return self.scene.render(self.index)

    def __repr__(self) -> str:
        return f"SyntheticFrame(seed={self.scene.seed}, index={self.index})"


def make_synthetic_sequence(
    seed: int,
    num_frames: int = 60,
    frame_size: tuple[int, int] = (160, 120),
    name: str | None = None,
) -> TrackingSequence:
    """One synthetic sequence of ``num_frames`` frames of ``frame_size = (W, H)`` pixels.

    Boxes are exact integer ``x, y, w, h`` pixels; frames are rendered lazily. The same arguments
    always give bit-identical frames and boxes. ``attributes["synthetic"]`` holds the arguments
    needed to regenerate it; ``attributes["target_colors"]`` the two target colours (RGB).
    """
    scene = SyntheticScene(seed, num_frames, frame_size)
    frames = [SyntheticFrame(scene, i) for i in range(scene.num_frames)]
    attributes = {
        "synthetic": {
            "seed": scene.seed,
            "num_frames": scene.num_frames,
            "frame_size": list(scene.frame_size),
        },
        "target_colors": np.round(scene.target_colors).astype(int).tolist(),
    }
    return TrackingSequence(
        name or f"synthetic-{scene.seed}",
        frames,
        scene.boxes.copy(),
        dataset="synthetic",
        attributes=attributes,
    )


def synthetic_sequences(num_sequences: int, seed: int = 0, **kwargs) -> list[TrackingSequence]:
    """``num_sequences`` synthetic sequences named ``synth_<seed>_<i:04d>`` (kwargs: ``num_frames``, ``frame_size``)."""
    return [
        make_synthetic_sequence(sequence_seed(seed, i), name=f"synth_{seed}_{i:04d}", **kwargs)
        for i in range(num_sequences)
    ]


def _encode(frame: np.ndarray, image_format: str) -> bytes:
    import io

    buffer = io.BytesIO()
    if image_format == "jpg":
        Image.fromarray(frame).save(buffer, format="JPEG", quality=95)
    else:
        Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def _is_complete(seq_dir: Path, num_frames: int, image_format: str) -> bool:
    gt = seq_dir / "groundtruth.txt"
    if not gt.is_file() or len(gt.read_text().split()) != num_frames:
        return False
    return all((seq_dir / f"{i:08d}.{image_format}").is_file() for i in range(1, num_frames + 1))


def write_synthetic_benchmark(
    root: str | Path,
    num_sequences: int,
    seed: int = 0,
    num_frames: int = 60,
    frame_size: tuple[int, int] = (160, 120),
    image_format: str = "jpg",
) -> Path:
    """Write a GOT-10k-like folder: ``root/<seq>/00000001.jpg ...``, ``groundtruth.txt``, ``list.txt``.

    Ground truth is ``x,y,w,h`` pixels, comma separated. JPEG quality 95 (``image_format="jpg"``)
    or lossless PNG (``"png"``). Complete sequences already on disk are kept (reruns reuse data);
    every file is written to a temporary name and renamed, ground truth last. Read it back with
    ``get_dataset("synthetic", root)``. Returns ``root``.
    """
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    sequences = synthetic_sequences(num_sequences, seed, num_frames=num_frames, frame_size=frame_size)
    for seq in sequences:
        seq_dir = root / seq.name
        if _is_complete(seq_dir, num_frames, image_format):
            continue
        seq_dir.mkdir(exist_ok=True)
        (seq_dir / "groundtruth.txt").unlink(missing_ok=True)
        for i in range(len(seq)):
            atomic_write_bytes(
                seq_dir / f"{i + 1:08d}.{image_format}", _encode(seq.load_frame(i), image_format), fsync=False
            )
        lines = "".join(",".join(f"{v:g}" for v in box) + "\n" for box in seq.boxes)
        atomic_write_text(seq_dir / "groundtruth.txt", lines, fsync=False)
    atomic_write_text(root / "list.txt", "".join(f"{s.name}\n" for s in sequences), fsync=False)
    return root


def _generate_rows(
    shards: list[int], seed: int, num_shards: int, num_sequences: int | None, num_frames: int, frame_size
) -> Iterator[dict]:
    from .hub_schema import sequence_to_row

    for k in itertools.count():
        emitted = False
        for shard in shards:
            index = shard + k * num_shards
            if num_sequences is not None and index >= num_sequences:
                continue
            emitted = True
            seq = make_synthetic_sequence(
                sequence_seed(seed, index), num_frames, frame_size, name=f"synth_{seed}_{index:06d}"
            )
            yield sequence_to_row(seq, embed_frames=False)
        if not emitted:
            return


def synthetic_iterable_dataset(
    seed: int = 0,
    num_sequences: int | None = None,
    num_shards: int = 8,
    num_frames: int = 60,
    frame_size: tuple[int, int] = (160, 120),
):
    """A streaming ``datasets.IterableDataset`` of synthetic sequences in the hub schema.

    Rows carry boxes and the synthetic spec but no pixels (decode them with ``row_to_sequence``).
    Sequence ``i`` belongs to shard ``i % num_shards``; ``num_sequences=None`` streams forever.
    With ``num_shards`` divisible by the world size, ``datasets.distributed.split_dataset_by_node``
    gives every rank different sequences.
    """
    from datasets import IterableDataset

    from .hub_schema import hub_features

    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    return IterableDataset.from_generator(
        _generate_rows,
        features=hub_features(),
        gen_kwargs={
            "shards": list(range(num_shards)),
            "seed": int(seed),
            "num_shards": num_shards,
            "num_sequences": num_sequences,
            "num_frames": num_frames,
            "frame_size": tuple(frame_size),
        },
    )
