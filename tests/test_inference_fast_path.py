"""Inference fast path: fused model equals the unfused one, no host sync in the forward, CUDA-graph
replay logic (static shapes per batch size) exercised on the CPU with a stand-in capture backend."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

from modeling_lorat import LoratConfig, LoratForTracking
from modeling_lorat.cropping import HostStaging
from modeling_lorat.cuda_graphs import CudaGraphRunner
from modeling_lorat.lora import apply_lora
from modeling_lorat.testing_utils import tiny_model
from modeling_lorat.tracking_lorat import LoratTracker


def merged_model(swiglu: bool, layers: int = 2) -> LoratForTracking:
    """S-224 geometry (8x8 template, 16x16 search tokens), few layers, LoRA and layer scales not trivial."""
    torch.manual_seed(0)
    config = LoratConfig.from_preset("s-224")
    config.backbone_config.num_hidden_layers = layers
    config.backbone_config.use_swiglu_ffn = swiglu
    model = apply_lora(LoratForTracking(config)).merge_and_unload().eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lambda1" in name:
                param.uniform_(0.1, 2.0)
    return model


def inputs(batch: int, config: LoratConfig):
    g = torch.Generator().manual_seed(1)
    t, s, grid = config.template_size, config.search_size, config.template_grid
    return (
        torch.randn(batch, 3, t, t, generator=g),
        torch.randn(batch, 3, s, s, generator=g),
        torch.randint(0, 2, (batch, grid, grid), generator=g),
    )


@pytest.mark.parametrize("swiglu", [False, True], ids=["mlp", "swiglu"])
def test_fused_model_equals_unfused(swiglu):
    model = merged_model(swiglu)
    args = inputs(3, model.config)
    with torch.no_grad():
        want = model(*args)
        fused = copy.deepcopy(model).fuse_for_inference()
        got = fused(*args)
    assert fused.is_fused and not model.is_fused
    assert len(fused.backbone.encoder.layer) == 0  # the unfused projections are freed
    torch.testing.assert_close(got.score_map, want.score_map, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.pred_boxes, want.pred_boxes, atol=1e-6, rtol=0)
    torch.testing.assert_close(got.last_hidden_state, want.last_hidden_state, atol=1e-4, rtol=1e-5)


def test_fused_model_refuses_to_save_or_train(tmp_path):
    model = merged_model(False, layers=1).fuse_for_inference()
    with pytest.raises(RuntimeError, match="fused for inference"):
        model.save_pretrained(tmp_path)
    assert not any(tmp_path.iterdir())
    labels = torch.tensor([[0.4, 0.4, 0.6, 0.6]])
    with pytest.raises(RuntimeError, match="cannot train"):
        model(*inputs(1, model.config), labels=labels)


def test_fuse_needs_merged_lora():
    with pytest.raises(ValueError, match="merged model"):
        tiny_model(seed=0).get_base_model().fuse_for_inference()


@pytest.mark.parametrize("fuse", [False, True], ids=["unfused", "fused"])
def test_forward_has_no_host_sync(fuse):
    """On the meta device every data-dependent host read (``.item()``, ``bool(tensor)``, ``.cpu()``)
    raises, so a forward that completes there never waits for the device (as on a GPU)."""
    model = merged_model(True, layers=1)
    if fuse:
        model.fuse_for_inference()
    meta = model.to("meta")
    template, search, mask = (t.to("meta") for t in inputs(2, model.config))
    with pytest.raises(RuntimeError, match="meta"):  # the probe works: a host read on meta raises
        bool(template.sum() > 0)
    with torch.no_grad():
        output = meta(template, search, mask)
    assert output.score_map.shape == (2, 16, 16) and output.pred_boxes.shape == (2, 16, 16, 4)


def test_forward_still_validates_cpu_values():
    model = merged_model(False, layers=1)
    template, search, mask = inputs(1, model.config)
    with pytest.raises(ValueError, match="NaN or Inf"):
        model(template, search * float("nan"), mask)
    with pytest.raises(ValueError, match="0 \\(background\\) or 1"):
        model(template, search, mask + 1)


class EagerCaptureBackend:
    """Stand-in for CUDA-graph capture on the CPU: "capture" runs ``fn`` once into static outputs,
    "replay" re-runs it on the static inputs and writes into those same output tensors."""

    def __init__(self) -> None:
        self.captures: list[tuple] = []

    def capture(self, fn, static_inputs):
        self.captures.append(tuple(t.shape for t in static_inputs))
        output = fn(*static_inputs)

        def replay():
            output.copy_(fn(*static_inputs))

        return replay, output


def test_graph_runner_captures_once_per_signature_and_copies_inputs():
    backend = EagerCaptureBackend()
    runner = CudaGraphRunner(lambda a, b: a * 2 + b, backend=backend)
    a, b = torch.ones(2, 3), torch.arange(6.0).view(2, 3)
    first = runner(a, b)
    torch.testing.assert_close(first, a * 2 + b)
    second = runner(a * 5, b)  # same signature: no new capture, inputs copied into the static buffers
    assert second is first  # static output, overwritten in place
    torch.testing.assert_close(second, a * 10 + b)
    runner(torch.ones(4, 3), torch.ones(4, 3))  # a new batch size: its own graph
    assert backend.captures == [(torch.Size([2, 3]),) * 2, (torch.Size([4, 3]),) * 2]
    runner(a, b.double())  # a dtype change is a new signature too
    assert len(runner.entries) == 3


def moving_frames(count: int) -> list[np.ndarray]:
    frames = []
    for i in range(count):
        frame = np.full((64, 80, 3), 40, dtype=np.uint8)
        frame[20 + i : 36 + i, 10 + 2 * i : 26 + 2 * i] = (220, 200, 30)
        frames.append(frame)
    return frames


def test_graph_tracker_equals_eager_tracker_for_changing_batch_sizes():
    frames = moving_frames(5)
    eager = LoratTracker(tiny_model(seed=0), device="cpu")
    backend = EagerCaptureBackend()
    graphed = LoratTracker(tiny_model(seed=0), device="cpu", cuda_graphs=True, _graph_backend=backend)
    for batch in (1, 3, 1):
        boxes = [(8 + i, 18, 18, 18) for i in range(batch)]
        states = {t: [t.new_state(frames[0], b) for b in boxes] for t in (eager, graphed)}
        for frame in frames[1:]:
            want = eager.step(states[eager], [frame] * batch)
            got = graphed.step(states[graphed], [frame] * batch)
            for w, g in zip(want, got):
                np.testing.assert_array_equal(g.box_xywh, w.box_xywh)
                assert g.score == w.score
    assert len(backend.captures) == 2  # batch 1 and batch 3, the second batch-1 run replays


def test_cuda_graphs_need_cuda():
    with pytest.raises(ValueError, match="needs a CUDA device"):
        LoratTracker(tiny_model(seed=0), device="cpu", cuda_graphs=True)


DEVICE = os.environ.get("LORAT_TEST_DEVICE", "cpu")
on_cuda = pytest.mark.skipif(not DEVICE.startswith("cuda"), reason="needs LORAT_TEST_DEVICE=cuda")


@on_cuda
def test_fused_model_equals_unfused_in_float16_on_cuda():
    model = merged_model(False, layers=12).to(DEVICE, torch.float16)
    args = [t.to(DEVICE) for t in inputs(4, model.config)]
    args[0], args[1] = args[0].half(), args[1].half()
    with torch.inference_mode():
        want = model(*args)
        got = copy.deepcopy(model).fuse_for_inference()(*args)
    torch.testing.assert_close(got.pred_boxes, want.pred_boxes, atol=1e-3, rtol=0)
    torch.testing.assert_close(got.score_map.sigmoid(), want.score_map.sigmoid(), atol=1e-3, rtol=0)


@on_cuda
def test_cuda_graph_tracker_equals_eager_on_cuda():
    frames = moving_frames(5)
    eager = LoratTracker(tiny_model(seed=0), device=DEVICE)
    graphed = LoratTracker(tiny_model(seed=0), device=DEVICE, cuda_graphs=True)
    for batch in (1, 2):
        boxes = [(8 + i, 18, 18, 18) for i in range(batch)]
        states = {t: [t.new_state(frames[0], b) for b in boxes] for t in (eager, graphed)}
        for frame in frames[1:]:
            want = eager.step(states[eager], [frame] * batch)
            got = graphed.step(states[graphed], [frame] * batch)
            for w, g in zip(want, got):
                np.testing.assert_allclose(g.box_xywh, w.box_xywh, atol=1e-4, rtol=0)
                assert abs(g.score - w.score) < 1e-5
    assert len(graphed._infer.entries) == 2


def test_host_staging_packs_regions_and_grows_without_overwriting():
    staging = HostStaging()
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    regions = [frame[10:300, 20:400], frame[100:700, 0:1280], frame[5:6, 7:9]]  # the 2nd outgrows 1 MiB
    copies = [staging.to_device(region, torch.device("cpu")) for region in regions]
    for region, copy_ in zip(regions, copies):  # earlier copies are intact after the buffer grew
        np.testing.assert_array_equal(copy_.numpy(), region)
    assert len(staging._buffers) == 2
    staging.reset()
    assert len(staging._buffers) == 1 and staging._offset == 0
    again = staging.to_device(regions[0], torch.device("cpu"))
    np.testing.assert_array_equal(again.numpy(), regions[0])


@on_cuda
def test_cuda_tracker_with_pinned_staging_equals_cpu_tracker():
    frames = moving_frames(5)
    cpu = LoratTracker(tiny_model(seed=0), device="cpu")
    gpu = LoratTracker(tiny_model(seed=0), device=DEVICE)
    states = {t: [t.new_state(frames[0], (8 + i, 18, 18, 18)) for i in range(3)] for t in (cpu, gpu)}
    for frame in frames[1:]:
        want = cpu.step(states[cpu], [frame] * 3)
        got = gpu.step(states[gpu], [frame] * 3)
        for w, g in zip(want, got):
            np.testing.assert_allclose(g.box_xywh, w.box_xywh, atol=1e-3, rtol=0)
            assert abs(g.score - w.score) < 1e-4
