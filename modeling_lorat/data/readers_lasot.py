"""LaSOT and LaSOT_ext readers (official layout).

Layout::

    root/<class>/<class>-<n>/img/00000001.jpg ...
    root/<class>/<class>-<n>/groundtruth.txt      # x,y,w,h per line (pixels)
    root/<class>/<class>-<n>/full_occlusion.txt   # one line, comma separated 0/1
    root/<class>/<class>-<n>/out_of_view.txt      # one line, comma separated 0/1
    root/<class>/<class>-<n>/nlp.txt              # optional language description

A flat layout (``root/<class>-<n>/...``) is accepted too. ``absent = full_occlusion | out_of_view``.

Coordinates: LaSOT's ground truth is 1-based (MATLAB). Like the official LoRAT loader, LaSOT boxes are
converted to 0-based pixels on reading (``x - 1, y - 1``), so the tracker and training see the same
pixels as the official code; result files are written back in the toolkit's 1-based convention
(``evaluation.results_io.RESULT_FILE_OFFSETS``). LaSOT_ext is read as is, as the official loader does.

Attributes: the LaSOT evaluation toolkit ships one file per sequence, ``annos/att/<class>-<n>.txt``,
holding 14 comma-separated 0/1 flags in the order of :data:`LASOT_ATTRIBUTE_NAMES`. When that
folder is found at ``root/att`` or ``root/annos/att`` (or passed as ``attributes_dir``), each
sequence gets ``attributes["attribute_flags"] = {"IV": bool, ...}``, which the per-attribute
plot of ``lorat evaluate`` / ``lorat plot`` reads. Sequences without a file get no flags.

Splits (LaSOT): ``"test"`` is the official 280-sequence protocol-II test set (embedded below, in
the order of the official ``testing_set.txt``; a ``root/testing_set.txt`` file, when present,
overrides it), ``"train"`` is every other sequence found under ``root`` and ``"all"`` is
everything. LaSOT_ext (150 sequences) is test-only: its splits ``"test"``/``"all"`` both return
every sequence found.
"""

from __future__ import annotations

import re
from pathlib import Path

from .readers_common import (
    align_boxes,
    list_frames,
    natural_key,
    read_boxes,
    read_flags,
    read_name_list,
    read_optional_text,
    require_dir,
)
from .sequence import TrackingSequence

# Official LaSOT test set: class -> sequence numbers, in the order of testing_set.txt.
_LASOT_TEST = {
    "airplane": (1, 9, 13, 15),
    "basketball": (1, 6, 7, 11),
    "bear": (2, 4, 6, 17),
    "bicycle": (2, 7, 9, 18),
    "bird": (2, 3, 15, 17),
    "boat": (3, 4, 12, 17),
    "book": (3, 10, 11, 19),
    "bottle": (1, 12, 14, 18),
    "bus": (2, 5, 17, 19),
    "car": (2, 6, 9, 17),
    "cat": (1, 3, 18, 20),
    "cattle": (2, 7, 12, 13),
    "spider": (14, 16, 18, 20),
    "coin": (3, 6, 7, 18),
    "crab": (3, 6, 12, 18),
    "surfboard": (12, 4, 5, 8),
    "cup": (1, 4, 7, 17),
    "deer": (4, 8, 10, 14),
    "dog": (1, 7, 15, 19),
    "guitar": (3, 8, 10, 16),
    "person": (1, 5, 10, 12),
    "pig": (2, 10, 13, 18),
    "rubicCube": (1, 6, 14, 19),
    "swing": (10, 14, 17, 20),
    "drone": (13, 15, 2, 7),
    "pool": (12, 15, 3, 7),
    "rabbit": (10, 13, 17, 19),
    "racing": (10, 15, 16, 20),
    "robot": (1, 19, 5, 8),
    "sepia": (13, 16, 6, 8),
    "sheep": (3, 5, 7, 9),
    "skateboard": (16, 19, 3, 8),
    "tank": (14, 16, 6, 9),
    "tiger": (12, 18, 4, 6),
    "train": (1, 11, 20, 7),
    "truck": (16, 3, 6, 7),
    "turtle": (16, 5, 8, 9),
    "umbrella": (17, 19, 2, 9),
    "yoyo": (15, 17, 19, 7),
    "zebra": (10, 14, 16, 17),
    "elephant": (1, 12, 16, 18),
    "goldfish": (3, 7, 8, 10),
    "hat": (1, 2, 5, 18),
    "kite": (4, 6, 10, 15),
    "motorcycle": (1, 3, 9, 18),
    "mouse": (1, 8, 9, 17),
    "flag": (3, 9, 5, 2),
    "frog": (3, 4, 20, 9),
    "gametarget": (1, 2, 7, 13),
    "hand": (2, 3, 9, 16),
    "helmet": (5, 11, 19, 13),
    "licenseplate": (6, 12, 13, 15),
    "electricfan": (1, 10, 18, 20),
    "chameleon": (3, 6, 11, 20),
    "crocodile": (3, 4, 10, 14),
    "gecko": (1, 5, 16, 19),
    "fox": (2, 3, 5, 20),
    "giraffe": (2, 10, 13, 15),
    "gorilla": (4, 6, 9, 13),
    "hippo": (1, 7, 9, 20),
    "horse": (1, 4, 12, 15),
    "kangaroo": (2, 5, 11, 14),
    "leopard": (1, 7, 16, 20),
    "lion": (1, 5, 12, 20),
    "lizard": (1, 3, 6, 13),
    "microphone": (2, 6, 14, 16),
    "monkey": (3, 4, 9, 17),
    "shark": (2, 3, 5, 6),
    "squirrel": (8, 11, 13, 19),
    "volleyball": (1, 13, 18, 19),
}
LASOT_TEST_SEQUENCES: tuple[str, ...] = tuple(
    f"{cls}-{number}" for cls, numbers in _LASOT_TEST.items() for number in numbers
)
LASOT_SPLITS = ("test", "train", "all")
# Attribute order of the toolkit's annos/att/*.txt files (its `att_fig_name`).
LASOT_ATTRIBUTE_NAMES: tuple[str, ...] = tuple("IV POC DEF MB CM ROT BC VC SV FOC FM OV LR ARC".split())
_ATTRIBUTE_DIRS = ("att", "annos/att")
_SEQUENCE_NAME = re.compile(r"^(?P<cls>.+)-\d+$")


def _sequence_dir(root: Path, name: str) -> Path:
    cls = name.rsplit("-", 1)[0]
    for candidate in (root / cls / name, root / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"sequence {name!r}: folder not found under {root} (expected {root / cls / name})"
    )


def _discover(root: Path) -> list[str]:
    """Names of every ``<class>-<n>`` folder holding a ``groundtruth.txt``, in natural order."""
    names: set[str] = set()
    for entry in root.iterdir():
        if not entry.is_dir():
            continue
        if _SEQUENCE_NAME.match(entry.name) and (entry / "groundtruth.txt").is_file():
            names.add(entry.name)
            continue
        for sub in entry.iterdir():
            if sub.is_dir() and sub.name.startswith(entry.name + "-") and (sub / "groundtruth.txt").is_file():
                names.add(sub.name)
    return sorted(names, key=natural_key)


def read_attribute_flags(path: str | Path) -> dict[str, bool]:
    """The 14 LaSOT attribute flags of one toolkit file (``annos/att/<seq>.txt``) as ``{"IV": bool, ...}``.

    Raises ``ValueError`` naming the file unless it holds exactly 14 values, each 0 or 1.
    """
    text = Path(path).read_text(encoding="utf-8", errors="replace").strip()
    values = [v for v in re.split(r"[,\s]+", text) if v]
    if len(values) != len(LASOT_ATTRIBUTE_NAMES) or any(v not in ("0", "1") for v in values):
        raise ValueError(
            f"{path}: expected {len(LASOT_ATTRIBUTE_NAMES)} comma-separated 0/1 attribute flags "
            f"({','.join(LASOT_ATTRIBUTE_NAMES)}), got {text[:80]!r}"
        )
    return {name: value == "1" for name, value in zip(LASOT_ATTRIBUTE_NAMES, values)}


def _attribute_dir(root: Path, attributes_dir: str | Path | None) -> Path | None:
    if attributes_dir is not None:
        return require_dir(attributes_dir, "LaSOT attribute folder")
    return next((root / d for d in _ATTRIBUTE_DIRS if (root / d).is_dir()), None)


def read_lasot_sequence(
    seq_dir: str | Path, dataset: str = "lasot", attributes_dir: str | Path | None = None
) -> TrackingSequence:
    """Read one LaSOT-layout sequence folder (frames listed lazily as paths).

    For ``dataset="lasot"`` the 1-based ground truth is shifted to 0-based pixels (see the module
    docstring); other datasets in this layout (``"lasot_ext"``) are read as is.

    With ``attributes_dir``, the sequence's attribute flags are read from ``<attributes_dir>/<name>.txt``
    when that file exists.
    """
    seq_dir = Path(seq_dir)
    name = seq_dir.name
    require_dir(seq_dir, f"sequence {name!r}")
    boxes = read_boxes(seq_dir / "groundtruth.txt")
    frames = list_frames(seq_dir / "img", name, consecutive=True)
    # monkey-17 has more images than ground-truth rows: the LaSOT toolkit, pytracking and the official
    # LoRAT loader all use the first len(groundtruth) frames
    frames = frames[: len(boxes)]
    boxes = align_boxes(name, frames, boxes)
    if dataset == "lasot":
        boxes = boxes.copy()
        boxes[:, :2] -= 1.0  # official LoRAT: 1-based (MATLAB) -> 0-based pixels
    absent = read_flags(seq_dir / "full_occlusion.txt", len(boxes)) | read_flags(
        seq_dir / "out_of_view.txt", len(boxes)
    )
    attributes: dict = {"class": name.rsplit("-", 1)[0]}
    language = read_optional_text(seq_dir / "nlp.txt")
    if language:
        attributes["language"] = language
    if attributes_dir is not None and (Path(attributes_dir) / f"{name}.txt").is_file():
        attributes["attribute_flags"] = read_attribute_flags(Path(attributes_dir) / f"{name}.txt")
    return TrackingSequence(name, frames, boxes, absent, dataset=dataset, attributes=attributes)


def read_lasot(
    root: str | Path, split: str = "test", dataset: str = "lasot", attributes_dir: str | Path | None = None
) -> list[TrackingSequence]:
    """Read LaSOT sequences for ``split`` in ``{"test", "train", "all"}``.

    Boxes are ``x, y, w, h`` 0-based pixels (the 1-based ground truth shifted, as the official
    loader does). Attribute flags come from ``attributes_dir`` (default: ``root/att`` or
    ``root/annos/att`` when present; see the module docstring). Raises ``FileNotFoundError``
    naming a test sequence that is missing, ``ValueError`` for an unknown split.
    """
    if split not in LASOT_SPLITS:
        raise ValueError(f"unknown LaSOT split {split!r}; valid: {', '.join(LASOT_SPLITS)}")
    root = require_dir(root, dataset)
    list_file = root / "testing_set.txt"
    test_names = read_name_list(list_file) if list_file.is_file() else list(LASOT_TEST_SEQUENCES)
    if split == "test":
        names = test_names
    else:
        names = _discover(root)
        if split == "train":
            excluded = set(test_names)
            names = [name for name in names if name not in excluded]
    att = _attribute_dir(root, attributes_dir)
    return [read_lasot_sequence(_sequence_dir(root, name), dataset, att) for name in names]


def read_lasot_ext(
    root: str | Path, split: str = "test", attributes_dir: str | Path | None = None
) -> list[TrackingSequence]:
    """Read every LaSOT_ext sequence (dataset name ``"lasot_ext"``); ``split`` is ``"test"``/``"all"``.

    Attribute flags as for :func:`read_lasot`.
    """
    if split not in ("test", "all"):
        raise ValueError(f"unknown LaSOT_ext split {split!r}; valid: test, all")
    root = require_dir(root, "lasot_ext")
    att = _attribute_dir(root, attributes_dir)
    return [read_lasot_sequence(_sequence_dir(root, name), "lasot_ext", att) for name in _discover(root)]
