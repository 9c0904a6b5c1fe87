"""The real VOT toolkit drives lorat through TraX, offline: ``vot evaluate`` then ``vot analysis``.

The workspace holds the toolkit's own dummy sequence and a synthetic one in the toolkit's format, and a
local stack (no downloads). Every toolkit command runs in a subprocess with a timeout.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("vot")
pytest.importorskip("trax")

from modeling_lorat.cli import main  # noqa: E402
from modeling_lorat.vot.testing import make_offline_workspace  # noqa: E402

TOOLKIT_TIMEOUT_S = 240
# The toolkit asks GitHub for a newer version on every command (5 s timeout); a proxy on a closed local
# port makes that request fail at once, so nothing leaves the machine.
NO_NETWORK = {
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
}


def _vot(workspace, *args: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", **NO_NETWORK)
    run = subprocess.run(
        [sys.executable, "-m", "vot", *args, "--workspace", str(workspace)],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=TOOLKIT_TIMEOUT_S,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    return output


def _finite_fraction(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0


@pytest.mark.slow
def test_vot_evaluate_and_analysis_offline(tiny_checkpoint, tmp_path):
    from vot.tracker.results import Trajectory
    from vot.workspace import Workspace

    from modeling_lorat.tracking_lorat import LoratTracker
    from modeling_lorat.video_io import read_image_file

    workspace, names = make_offline_workspace(tmp_path / "workspace", num_frames=6, num_synthetic=1)
    assert main(["vot-setup", str(workspace), "--model", str(tiny_checkpoint), "--device", "cpu"]) == 0

    output = _vot(workspace, "evaluate", "lorat")
    assert "Evaluation concluded successfuly" in output, output  # (sic)
    output = _vot(workspace, "analysis", "--format", "json", "--name", "report", "lorat")
    assert "Analysis successful" in output, output

    report = json.loads((workspace / "analysis" / "report.json").read_text())
    assert list(report["sequences"]) == names
    assert list(report["trackers"]) == ["lorat"]
    accuracy, sequence_accuracy, precision_recall = report["results"]["unsupervised"]["results"]
    assert len(accuracy) == 1 and _finite_fraction(accuracy[0][0])
    assert len(sequence_accuracy) == len(names)  # one value per sequence, in list.txt order
    assert all(len(row) == 1 and _finite_fraction(row[0]) for row in sequence_accuracy)
    assert len(precision_recall[0]) == 3 and all(_finite_fraction(v) for v in precision_recall[0])

    # the stored trajectories are the tracker's own output on the frames the toolkit sent
    reference = LoratTracker.from_pretrained(tiny_checkpoint, device="cpu", dtype="float32")
    loaded = Workspace.load(str(workspace))
    experiment = loaded.stack.experiments["unsupervised"]
    tracker = loaded.registry["lorat"]
    for sequence in loaded.dataset:
        trajectory = Trajectory.read(experiment.results(tracker, sequence), f"{sequence.name}_001")
        assert len(trajectory) == len(sequence) == 6
        first = sequence.groundtruth(0)
        reference.init(
            read_image_file(sequence.frame(0).filename()), [first.x, first.y, first.width, first.height]
        )
        for index in range(1, len(sequence)):
            expected = reference.track(read_image_file(sequence.frame(index).filename()))
            region = trajectory.region(index)
            box = [region.x, region.y, region.width, region.height]
            np.testing.assert_allclose(
                box, expected.box_xywh, atol=1e-3, err_msg=f"{sequence.name} frame {index}"
            )
            confidence = trajectory.properties(index)["confidence"]
            assert confidence == pytest.approx(expected.score, abs=1e-6)
