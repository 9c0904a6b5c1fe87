"""Static-shape CUDA-graph replay of a tensor function (one captured graph per input signature).

A batch-1 LoRAT forward on a GPU is bound by kernel launches: replaying a captured CUDA graph
launches the whole forward at once. Graphs need static shapes and static memory, so
:class:`CudaGraphRunner` keeps, per input signature (shapes, dtypes, device), static input buffers, the
captured graph and its static output; each call copies the new inputs into the buffers and replays.

The returned tensors are the static outputs: they are overwritten by the next call with the same
signature, so consume (or copy) them first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


class CudaGraphBackend:
    """Captures ``fn(*static_inputs)`` into a ``torch.cuda.CUDAGraph`` (warm-up on a side stream first)."""

    def __init__(self, warmup: int = 2) -> None:
        self.warmup = warmup

    def capture(self, fn: Callable[..., Any], static_inputs: tuple[torch.Tensor, ...]):
        """-> ``(replay, static_output)``."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(self.warmup):  # lazy initialisation (cuBLAS handles, autotuning) outside the graph
                fn(*static_inputs)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            output = fn(*static_inputs)
        return graph.replay, output


@dataclass
class _Entry:
    inputs: tuple[torch.Tensor, ...]
    replay: Callable[[], None]
    output: Any


class CudaGraphRunner:
    """Calls ``fn`` through a captured graph per input signature; ``backend`` captures (default: CUDA)."""

    def __init__(self, fn: Callable[..., Any], backend: Any | None = None) -> None:
        self.fn = fn
        self.backend = backend or CudaGraphBackend()
        self.entries: dict[tuple, _Entry] = {}

    @staticmethod
    def signature(inputs: tuple[torch.Tensor, ...]) -> tuple:
        """Shapes, dtypes and devices: one graph each."""
        return tuple((tuple(t.shape), t.dtype, t.device) for t in inputs)

    def __call__(self, *inputs: torch.Tensor) -> Any:
        key = self.signature(inputs)
        entry = self.entries.get(key)
        if entry is None:
            static = tuple(t.clone() for t in inputs)
            replay, output = self.backend.capture(self.fn, static)
            entry = self.entries[key] = _Entry(static, replay, output)
        else:
            for buffer, value in zip(entry.inputs, inputs):
                if buffer is not value:
                    buffer.copy_(value)
        entry.replay()
        return entry.output
