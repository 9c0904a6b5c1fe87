"""An offline VOT toolkit workspace: local sequences in the toolkit's format and a local stack.

The toolkit normally downloads a stack's sequences; :func:`make_offline_workspace` instead writes

* ``sequences/`` - the toolkit's own ``vot test`` dummy sequence (a cow circling on noise, written by
  ``vot.dataset.dummy``) and sequences from :mod:`modeling_lorat.data.synthetic` written with the
  toolkit's ``write_sequence``, listed in ``list.txt``;
* ``stack.yaml`` - one ``unsupervised`` experiment (see :func:`stack_config`);
* ``config.yaml`` / ``trackers.ini`` / ``results/`` via the toolkit's ``Workspace.initialize``.

Needs ``vot-toolkit`` (``pip install "lorat[vot]"``). Used by the tests; also a quick way to check an
installation before downloading a real stack.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from ..data.synthetic import make_synthetic_sequence


def stack_config() -> dict:
    """The offline stack (``stack.yaml`` content): VOT2022 STB's ``unsupervised`` experiment.

    Short-term accuracy (``average_accuracy`` as in VOT2022 STB, and ``accuracy`` per sequence) and the
    long-term tracking precision / recall / F-score that threshold the reported ``confidence``
    (``average_tpr``, as in VOT2022 LT). VOT2022 STB's ``baseline`` is a multistart experiment, which
    vot-toolkit 0.8-0.9 cannot run with single-object TraX trackers (see the README).
    """
    return {
        "title": "lorat offline short-term rectangle stack",
        "experiments": {
            "unsupervised": {
                "type": "unsupervised",
                "repetitions": 1,
                "analyses": [
                    {"type": "average_accuracy", "name": "accuracy", "burnin": 1},
                    {"type": "accuracy", "name": "sequence_accuracy", "burnin": 1},
                    {"type": "average_tpr", "name": "average_tpr"},
                ],
            },
        },
    }


def write_dummy_sequence(
    directory: str | Path, num_frames: int, frame_size: tuple[int, int] = (320, 260)
) -> Path:
    """The toolkit's ``vot test`` dummy sequence (its generator, unmodified) -> its folder."""
    from vot.dataset.dummy import _generate

    directory = Path(directory)
    _generate(str(directory), num_frames, frame_size, 1)
    return directory


def write_synthetic_sequence(
    directory: str | Path, seed: int, num_frames: int, frame_size: tuple[int, int] = (160, 120)
) -> Path:
    """A :mod:`~modeling_lorat.data.synthetic` sequence in the toolkit's format (its writer) -> its folder."""
    from vot.dataset import InMemorySequence
    from vot.dataset.common import write_sequence
    from vot.region import Rectangle

    directory = Path(directory)
    source = make_synthetic_sequence(seed, num_frames=num_frames, frame_size=frame_size, name=directory.name)
    sequence = InMemorySequence(directory.name, ["color"])
    for index in range(num_frames):
        x, y, w, h = (float(v) for v in np.asarray(source.boxes[index]))
        sequence.append({"color": source.load_frame(index)}, Rectangle(x, y, w, h))
    directory.mkdir(parents=True, exist_ok=True)
    write_sequence(str(directory), sequence)
    return directory


def make_offline_workspace(
    directory: str | Path, num_frames: int = 8, num_synthetic: int = 1, seed: int = 0
) -> tuple[Path, list[str]]:
    """Initialise a toolkit workspace with local sequences and the offline stack -> ``(path, sequence names)``.

    ``directory`` must not hold a workspace yet. One dummy sequence and ``num_synthetic`` synthetic
    ones, each ``num_frames`` long (at least 2).
    """
    from vot.workspace import Workspace

    if num_frames < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    directory = Path(directory).resolve()
    if Workspace.exists(str(directory)):
        raise FileExistsError(f"{directory} already holds a VOT workspace (config.yaml)")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "stack.yaml").write_text(yaml.safe_dump(stack_config(), sort_keys=False))
    Workspace.initialize(
        str(directory), {"stack": "stack.yaml", "registry": ["./trackers.ini"]}, download=False
    )
    sequences = directory / "sequences"
    names = ["dummy"] + [f"synthetic-{seed + i}" for i in range(num_synthetic)]
    write_dummy_sequence(sequences / names[0], num_frames)
    for i, name in enumerate(names[1:]):
        write_synthetic_sequence(sequences / name, seed + i, num_frames)
    (sequences / "list.txt").write_text("\n".join(names) + "\n")
    return directory, names
