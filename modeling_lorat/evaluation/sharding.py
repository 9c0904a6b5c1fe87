"""Sharding an evaluation run over processes (``accelerate launch`` / ``torchrun``) and merging their reports.

Process ``i`` of ``n`` runs the sequences ``k`` with ``k % n == i``; each process writes its report
(skipped sequences, counts) to ``.shard-<i>.json`` in the run folder, and the main process waits for
all of them, merges the reports and deletes the files. Results themselves are one file per sequence,
so the scores do not depend on the sharding.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io_utils import atomic_write_text


def shard_sequences(sequences: Sequence[Any], process_index: int, num_processes: int) -> list[Any]:
    """The sequences process ``process_index`` of ``num_processes`` runs: those with ``i % n == index``."""
    if num_processes < 1 or not 0 <= process_index < num_processes:
        raise ValueError(f"bad shard: process {process_index} of {num_processes}")
    return [seq for i, seq in enumerate(sequences) if i % num_processes == process_index]


def accelerate_state() -> Any:
    """``accelerate.PartialState()``; on machines without CUDA (or with ``ACCELERATE_USE_CPU``) in CPU
    mode, so that ``torchrun`` / ``accelerate launch`` processes shard over gloo."""
    import torch
    from accelerate import PartialState

    use_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    return PartialState(cpu=use_cpu or not torch.cuda.is_available())


def merge_shard_reports(
    output_dir: str | os.PathLike, state: Any, skipped: dict[str, str], run_info: dict[str, Any]
) -> tuple[dict[str, str], dict[str, Any]] | None:
    """Write this process's report, wait for every process and, on the main process, merge them.

    Args:
        output_dir: the run folder (holds the ``.shard-<i>.json`` files while the processes meet).
        state: an ``accelerate.PartialState``-like object (``num_processes``, ``process_index``,
            ``is_main_process``, ``wait_for_everyone()``).
        skipped, run_info: this process's skipped sequences (name -> reason) and counts
            (``tracked``, ``resumed``, ``frames``, ``seconds``).

    Returns:
        On the main process the merged ``(skipped, run_info)`` (counts summed, ``seconds`` the slowest
        process's, ``num_processes``); None on the others. With one process, the inputs unchanged.
    """
    num_processes, index = int(state.num_processes), int(state.process_index)
    if num_processes == 1:
        return skipped, run_info
    output_dir = Path(output_dir)
    atomic_write_text(output_dir / f".shard-{index}.json", json.dumps({"skipped": skipped, "run": run_info}))
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    merged_skipped: dict[str, str] = {}
    merged = {"num_processes": num_processes, "tracked": 0, "resumed": 0, "frames": 0, "seconds": 0.0}
    for i in range(num_processes):
        path = output_dir / f".shard-{i}.json"
        shard = json.loads(path.read_text())
        merged_skipped.update(shard["skipped"])
        for key in ("tracked", "resumed", "frames"):
            merged[key] += shard["run"][key]
        merged["seconds"] = max(merged["seconds"], shard["run"]["seconds"])
        path.unlink(missing_ok=True)
    return merged_skipped, merged
