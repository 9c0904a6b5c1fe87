"""Success / precision plots comparing result folders, and a per-attribute breakdown (PNG, Agg).

Plots are drawn as tracking papers (and pytracking) draw them: one curve per tracker, the legend
sorted by score, ``name [score]`` with the score in percent (AUC for success plots, the value at
20 px / 0.2 for precision plots, AO for GOT-10k). Uses matplotlib's object API with the Agg canvas,
so the global backend is left untouched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..data.sequence import TrackingSequence
from ..io_utils import atomic_write_bytes, atomic_write_text
from .protocols import DEFAULT_PROTOCOL
from .results_io import resolve_results_dir
from .scoring import compute_dataset_metrics

# LaSOT's 14 attributes (abbreviation -> full name), as in the LaSOT paper.
LASOT_ATTRIBUTES = {
    "IV": "Illumination Variation",
    "POC": "Partial Occlusion",
    "DEF": "Deformation",
    "MB": "Motion Blur",
    "CM": "Camera Motion",
    "ROT": "Rotation",
    "BC": "Background Clutter",
    "VC": "Viewpoint Change",
    "SV": "Scale Variation",
    "FOC": "Full Occlusion",
    "FM": "Fast Motion",
    "OV": "Out-of-View",
    "LR": "Low Resolution",
    "ARC": "Aspect Ratio Change",
}
_COLORS = [
    (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, 0.0), (1.0, 0.0, 1.0), (0.0, 1.0, 1.0),
    (0.5, 0.5, 0.5), (136 / 255, 0.0, 21 / 255), (1.0, 127 / 255, 39 / 255), (0.0, 162 / 255, 232 / 255),
    (0.0, 0.5, 0.0), (1.0, 0.5, 0.2), (0.1, 0.4, 0.0), (0.6, 0.3, 0.9), (0.4, 0.7, 0.1), (0.2, 0.1, 0.7),
]  # fmt: skip


def _figure(width: float = 6.4, height: float = 4.8):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig, path: str | Path) -> Path:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def legend_entries(scores: Mapping[str, float]) -> list[tuple[str, str]]:
    """``[(tracker, "tracker [score%]")]`` sorted by score, best first (score a fraction, shown in %)."""
    order = sorted(scores, key=lambda name: scores[name], reverse=True)
    return [(name, f"{name} [{scores[name] * 100:.1f}]") for name in order]


def plot_curves(
    curves: Mapping[str, Sequence[float]],
    scores: Mapping[str, float],
    thresholds: Sequence[float],
    path: str | Path,
    title: str,
    xlabel: str,
    ylabel: str,
    legend_loc: str = "lower left",
) -> Path:
    """Draw one curve per tracker (values are fractions, shown in %), legend sorted by ``scores``.

    Returns the PNG path. Raises ``ValueError`` when ``curves`` is empty.
    """
    if not curves:
        raise ValueError("nothing to plot: no curves")
    fig, ax = _figure()
    x = np.asarray(thresholds, dtype=float)
    for rank, (name, label) in enumerate(legend_entries({n: scores[n] for n in curves})):
        ax.plot(
            x,
            np.asarray(curves[name], dtype=float) * 100.0,
            linewidth=2,
            color=_COLORS[rank % len(_COLORS)],
            linestyle="-" if rank < len(_COLORS) else "--",
            label=label,
        )
    ax.legend(loc=legend_loc, fancybox=False, edgecolor="black", framealpha=1.0)
    ax.set(xlabel=xlabel, ylabel=ylabel, xlim=(x.min(), x.max()), ylim=(0, 100), title=title)
    ax.grid(True, linestyle="-.")
    return _save(fig, path)


def plot_results(results: Mapping[str, dict], output_dir: str | Path, dataset_name: str = "") -> list[Path]:
    """Success (and, for OPE benchmarks, precision and normalised precision) plots of several trackers.

    Args:
        results: tracker label -> :func:`compute_dataset_metrics` output (trackers without metrics
            are left out; all scored under one protocol).
        output_dir: where ``success_plot.png``, ``precision_plot.png``, ``norm_precision_plot.png`` go
            (no normalised-precision plot under a protocol without it).
        dataset_name: shown in the titles, with the protocol.
    """
    scored = {name: r for name, r in results.items() if r.get("metrics")}
    if not scored:
        return []
    output_dir = Path(output_dir)
    first = next(iter(scored.values()))
    suffix = f" on {dataset_name}" if dataset_name else ""
    suffix += f" ({first['protocol']} protocol)" if first.get("protocol") else ""
    paths = []
    if first["family"] == "got10k":
        paths.append(
            plot_curves(
                {n: r["curves"]["success"] for n, r in scored.items()},
                {n: r["metrics"]["ao"] for n, r in scored.items()},
                first["curves"]["overlap_thresholds"],
                output_dir / "success_plot.png",
                f"Success plot{suffix} (AO)",
                "Overlap threshold",
                "Success rate [%]",
            )
        )
        return paths
    specs = [
        ("success", "success_auc", "overlap_thresholds", "success_plot.png", "Success plot", "Overlap threshold",
         "Overlap Precision [%]", "lower left"),
        ("precision", "precision", "center_thresholds", "precision_plot.png", "Precision plot",
         "Location error threshold [pixels]", "Distance Precision [%]", "lower right"),
        ("norm_precision", "norm_precision", "norm_center_thresholds", "norm_precision_plot.png",
         "Normalized Precision plot", "Location error threshold", "Distance Precision [%]", "lower right"),
    ]  # fmt: skip
    for curve_key, score_key, thr_key, filename, title, xlabel, ylabel, loc in specs:
        if curve_key not in first["curves"]:
            continue
        paths.append(
            plot_curves(
                {n: r["curves"][curve_key] for n, r in scored.items()},
                {n: r["metrics"][score_key] for n, r in scored.items()},
                first["curves"][thr_key],
                output_dir / filename,
                title + suffix,
                xlabel,
                ylabel,
                loc,
            )
        )
    return paths


def sequence_attribute_flags(sequence: TrackingSequence) -> dict[str, bool]:
    """Per-sequence attribute flags from ``sequence.attributes``.

    Looks for a dict under ``"attribute_flags"`` / ``"flags"`` / ``"attributes"``, else top-level
    keys named like LaSOT's attributes (``"IV"``, ``"POC"``, ... or their full names) with 0/1/bool
    values. Returns ``{}`` when there are none.
    """
    attrs = sequence.attributes or {}
    for key in ("attribute_flags", "flags", "attributes"):
        if isinstance(attrs.get(key), Mapping):
            return {str(k): bool(v) for k, v in attrs[key].items()}
    known = set(LASOT_ATTRIBUTES) | set(LASOT_ATTRIBUTES.values())
    return {
        str(k): bool(v)
        for k, v in attrs.items()
        if k in known and isinstance(v, (bool, int, np.bool_, np.integer)) and int(v) in (0, 1)
    }


def attribute_scores(
    sequences: Sequence[TrackingSequence],
    per_sequence: Mapping[str, Mapping[str, float]],
    metric: str = "success_auc",
) -> dict[str, dict]:
    """Mean per-sequence ``metric`` over the sequences having each attribute.

    Returns ``{attribute: {"score": float, "num_sequences": int}}`` (attributes in first-seen order,
    NaN per-sequence values ignored); ``{}`` without attribute flags.
    """
    values: dict[str, list[float]] = {}
    for seq in sequences:
        score = per_sequence.get(seq.name, {}).get(metric)
        if score is None or not np.isfinite(score):
            continue
        for attribute, flag in sequence_attribute_flags(seq).items():
            values.setdefault(attribute, [])
            if flag:
                values[attribute].append(float(score))
    return {a: {"score": float(np.mean(v)), "num_sequences": len(v)} for a, v in values.items() if v}


def plot_attributes(
    results: Mapping[str, dict],
    sequences: Sequence[TrackingSequence],
    output_dir: str | Path,
    dataset_name: str = "",
) -> Path | None:
    """Grouped bar chart (+ ``attributes.json``) of per-attribute AUC (AO on GOT-10k) per tracker.

    Returns the PNG path, or None when no sequence carries attribute flags.
    """
    table: dict[str, dict[str, dict]] = {}
    metric_label = "AUC"
    for name, result in results.items():
        if not result.get("metrics"):
            continue
        metric = "ao" if result["family"] == "got10k" else "success_auc"
        metric_label = "AO" if metric == "ao" else "AUC"
        scores = attribute_scores(sequences, result["per_sequence"], metric)
        if scores:
            table[name] = scores
    if not table:
        return None
    output_dir = Path(output_dir)
    atomic_write_text(output_dir / "attributes.json", json.dumps(table, indent=2) + "\n")
    attributes = list(dict.fromkeys(a for scores in table.values() for a in scores))
    trackers = sorted(
        table,
        key=lambda n: np.nanmean([table[n].get(a, {}).get("score", np.nan) for a in attributes]),
        reverse=True,
    )
    fig, ax = _figure(width=max(6.4, 0.6 * len(attributes) * max(1, len(trackers)) / 2 + 2), height=4.8)
    width = 0.8 / len(trackers)
    x = np.arange(len(attributes))
    for rank, name in enumerate(trackers):
        heights = [table[name].get(a, {}).get("score", np.nan) * 100 for a in attributes]
        ax.bar(
            x + (rank - (len(trackers) - 1) / 2) * width,
            heights,
            width,
            color=_COLORS[rank % len(_COLORS)],
            label=name,
        )
    labels = [
        f"{a}\n({max(table[n].get(a, {}).get('num_sequences', 0) for n in trackers)})" for a in attributes
    ]
    ax.set_xticks(x, labels, fontsize=7)
    ax.set(
        ylabel=f"{metric_label} [%]",
        ylim=(0, 100),
        title=f"Per-attribute success{' on ' + dataset_name if dataset_name else ''}",
    )
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(True, axis="y", linestyle="-.")
    return _save(fig, output_dir / "attributes_plot.png")


def label_for(result_dir: str | Path) -> str:
    """Legend label of a run/results folder: the run folder's name."""
    path = Path(result_dir).resolve()
    return path.parent.name if path.name == "results" else path.name


def compare_result_dirs(
    result_dirs: Sequence[str | Path],
    sequences: Sequence[TrackingSequence],
    dataset_name: str,
    output_dir: str | Path,
    labels: Sequence[str] | None = None,
    protocol: str = DEFAULT_PROTOCOL,
) -> dict:
    """Score each folder (run folder or results folder) under ``protocol`` and draw the comparison plots.

    Returns ``{"results": {label: metrics dict}, "plots": [paths], "attributes": path or None}``.
    """
    results: dict[str, dict] = {}
    for i, directory in enumerate(result_dirs):
        label = labels[i] if labels else label_for(directory)
        while label in results:
            label = f"{label}_{i}"
        results[label] = compute_dataset_metrics(
            dataset_name, sequences, resolve_results_dir(directory), protocol=protocol
        )
    plots = plot_results(results, output_dir, dataset_name)
    attributes = plot_attributes(results, sequences, output_dir, dataset_name)
    return {"results": results, "plots": plots, "attributes": attributes}
