"""``lorat evaluate``: run a LoRAT model on a benchmark, write results, plots and ``summary.json``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

_COLUMNS = {
    "ope": [("AUC", "success_auc"), ("P", "precision"), ("P_norm", "norm_precision")],
    "got10k": [("AO", "ao"), ("SR0.5", "sr50"), ("SR0.75", "sr75")],
}
# --protocol names and help, kept here (not imported from evaluation.protocols) so `lorat --help` is light
PROTOCOL_NAMES = ("lorat", "pytracking", "got10k", "lasot-toolkit", "otb-toolkit")
PROTOCOL_HELP = (
    "which reference's rules score the results (default: lorat). lorat: the official LoRAT evaluation, "
    "the paper's numbers; pytracking: pytracking's extract_results (most trackers' papers); got10k: the "
    "GOT-10k toolkit (AO, SR); lasot-toolkit / otb-toolkit: the MATLAB LaSOT / OTB toolkits"
)


def add_protocol_argument(parser: argparse.ArgumentParser) -> None:
    """``--protocol {lorat,pytracking,got10k,lasot-toolkit,otb-toolkit}`` (shared by evaluate and plot)."""
    parser.add_argument("--protocol", default="lorat", choices=PROTOCOL_NAMES, help=PROTOCOL_HELP)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``lorat evaluate``."""
    parser = subparsers.add_parser(
        "evaluate",
        help="run a tracker on a benchmark and score it",
        description="Track every sequence (batched, resumable, sharded under `accelerate launch`), write "
        "result files, summary.json and success/precision plots, and print the metrics.",
    )
    parser.add_argument("--model", required=True, help="model folder or Hugging Face Hub id")
    parser.add_argument(
        "--dataset",
        required=True,
        help="benchmark: lasot, lasot_ext, got10k, trackingnet, tnl2k, otb, parquet (hub schema) or "
        "synthetic (a folder made by lorat demo / write_synthetic_benchmark)",
    )
    parser.add_argument("--root", required=True, help="dataset root folder")
    parser.add_argument("--split", default=None, help="dataset split (default: the reader's default)")
    parser.add_argument("--output", default=None, help="run folder (default: runs/<model>-<dataset>)")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences tracked together (default 8)")
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:1, ... (default: accelerate's device)"
    )
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument(
        "--cuda-graphs", action="store_true", help="replay each tracking step as a CUDA graph (CUDA only)"
    )
    parser.add_argument("--sequences", default=None, help="comma-separated subset of sequence names")
    parser.add_argument(
        "--compare", nargs="+", default=[], metavar="DIR", help="other run folders to plot against"
    )
    add_protocol_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)


def select_sequences(sequences: Sequence, names: str | None) -> list:
    """The sequences named in the comma-separated ``names`` (all when None); unknown names -> ValueError."""
    sequences = list(sequences)
    if not names:
        return sequences
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    by_name = {seq.name: seq for seq in sequences}
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise ValueError(f"unknown sequence(s): {', '.join(unknown)}")
    return [by_name[n] for n in wanted]


def format_table(results: Mapping[str, dict]) -> str:
    """Text table of ``compute_dataset_metrics`` outputs (one row per tracker; scores in %)."""
    rows = []
    family = next((r["family"] for r in results.values()), "ope")
    columns = _COLUMNS[family]
    header = ["Tracker", *[c for c, _ in columns], "FPS", "Sequences"]
    for name, result in results.items():
        metrics = result.get("metrics") or {}
        scores = [f"{metrics[k] * 100:.2f}" if k in metrics else "-" for _, k in columns]
        fps = result.get("fps")
        rows.append(
            [
                name,
                *scores,
                f"{fps:.1f}" if fps else "-",
                f"{result['num_evaluated']}/{result['num_sequences']}",
            ]
        )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(cell).ljust(w) for cell, w in zip(row, widths)) for row in [header, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Evaluate; returns 0 on success, 1 when no sequence could be tracked or none of them scored."""
    from ..data import get_dataset
    from ..data.readers import DEFAULT_SPLITS
    from ..evaluation.plots import compare_result_dirs
    from ..evaluation.runner import evaluate_tracker
    from ..evaluation.sharding import accelerate_state
    from ..evaluation.summary import write_summary
    from ..tracking_lorat import LoratTracker

    dataset = args.dataset.lower().replace("-", "_")
    state = accelerate_state()
    device = str(state.device) if args.device == "auto" else args.device
    if args.cuda_graphs and not device.startswith("cuda"):
        raise ValueError(f"--cuda-graphs needs a CUDA device, got --device {device}")
    sequences = select_sequences(get_dataset(dataset, args.root, args.split), args.sequences)
    if not sequences:
        raise ValueError(f"{dataset}: no sequence found under {args.root}")
    output = Path(args.output or Path("runs") / f"{Path(str(args.model)).name}-{dataset}")
    tracker = LoratTracker.from_pretrained(
        args.model, device=device, dtype=args.dtype, cuda_graphs=args.cuda_graphs
    )
    summary = evaluate_tracker(
        tracker,
        sequences,
        output,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        dataset_name=dataset,
        state=state,
        protocol=args.protocol,
    )
    if not state.is_main_process:
        return 0
    summary = {
        "dataset": dataset,
        "split": args.split or DEFAULT_SPLITS.get(dataset),
        "model": str(args.model),
        **summary,
    }
    path = write_summary(output, summary)
    comparison = compare_result_dirs(
        [output, *args.compare], sequences, dataset, output, protocol=args.protocol
    )
    print(f"protocol: {args.protocol} ({summary['protocol_info']['reproduces']})")
    print(format_table(comparison["results"]))
    for name, reason in summary["skipped"].items():
        print(f"skipped {name}: {reason}")
    for name, message in summary["errors"].items():
        print(
            f"left out of the metrics: {message}"
            if message.startswith(name)
            else f"left out {name}: {message}"
        )
    if summary["metrics"] is None and summary["without_ground_truth"]:
        print(
            f"{len(summary['without_ground_truth'])} sequences have no public ground truth: package them with "
            f"`lorat package-submission --dataset {dataset} --results {output} --output {output}/submission.zip`"
        )
    print(f"summary: {path}")
    for plot in [*comparison["plots"], comparison["attributes"]]:
        if plot:
            print(f"plot: {plot}")
    tracked = summary["run"]["tracked"] + summary["run"]["resumed"]
    scored = summary["metrics"] is not None or not summary["errors"]
    return 0 if tracked and scored else 1
