"""Evaluation analysis (metrics, protocols, result files, scoring, summaries, plots, submissions, `lorat
plot`) runs without importing the running code (tracker, model, lock-step loop, accelerate sharding)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

RUNNING = (
    "modeling_lorat.tracking_lorat",
    "modeling_lorat.tracking_session",
    "modeling_lorat.modeling_lorat",
    "modeling_lorat.pipeline_lorat",
    "modeling_lorat.image_processing_lorat",
    "modeling_lorat.fused_inference",
    "modeling_lorat.cuda_graphs",
    "modeling_lorat.evaluation.runner",
    "modeling_lorat.evaluation.sharding",
    "transformers",
    "peft",
    "accelerate",
)

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    out = Path(sys.argv[1])
    import modeling_lorat.evaluation as E
    from modeling_lorat.evaluation import metrics, protocols, results_io, scoring, summary, plots, submission
    from modeling_lorat.data.synthetic import write_synthetic_benchmark
    from modeling_lorat.data import get_dataset

    root = write_synthetic_benchmark(out / "synth", 2, seed=3, num_frames=5, frame_size=(64, 48))
    sequences = get_dataset("synthetic", root)
    for seq in sequences:  # a tracker that is exact up to 1 px in x
        results_io.write_sequence_results(out / "run" / "results", seq.name, seq.boxes + [1, 0, 0, 0])
    scored = E.compute_dataset_metrics("synthetic", sequences, out / "run" / "results")
    E.write_summary(out / "run", {"dataset": "synthetic", **scored})
    read = E.read_summary(out / "run")
    comparison = plots.compare_result_dirs([out / "run"], sequences, "synthetic", out / "plots")
    from modeling_lorat.cli import main
    code = main(["plot", str(out / "run"), "--dataset", "synthetic", "--root", str(root), "--output",
                 str(out / "cli_plots")])
    print("RESULT=" + json.dumps({
        "loaded": sorted(name for name in sys.modules if name in RUNNING),
        "auc": read["metrics"]["success_auc"],
        "plots": [Path(p).name for p in comparison["plots"]],
        "cli": code,
    }))
    """
)


def test_analysis_does_not_import_the_running_code(tmp_path):
    script = f"RUNNING = {RUNNING!r}\n{SCRIPT}"
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT="))
    result = json.loads(line[len("RESULT=") :])
    assert result["loaded"] == []  # none of the running modules (nor transformers / accelerate)
    assert 0.5 < result["auc"] <= 1.0  # real scores came out of the files
    assert result["plots"] == ["success_plot.png", "precision_plot.png", "norm_precision_plot.png"]
    assert result["cli"] == 0 and (tmp_path / "cli_plots" / "success_plot.png").is_file()


def test_running_names_stay_reachable_from_the_package():
    code = (
        "import sys, modeling_lorat.evaluation as E\n"
        "assert 'modeling_lorat.evaluation.runner' not in sys.modules\n"
        "from modeling_lorat.evaluation.runner import compute_dataset_metrics, write_summary, shard_sequences\n"
        "assert E.evaluate_tracker.__module__ == 'modeling_lorat.evaluation.runner'\n"
        "assert compute_dataset_metrics is E.compute_dataset_metrics and write_summary is E.write_summary\n"
        "assert shard_sequences is E.shard_sequences\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
