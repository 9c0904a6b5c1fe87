"""Golden fixture of pytracking's OPE analysis, run unmodified (run by hand).

    python tools/make_pytracking_golden.py --reference /path/to/visionml/pytracking \\
        --out tests/fixtures/protocols

For every sequence of ``cases.npz`` (``tools/make_protocol_cases.py``) it writes the predictions to a
result file, runs ``pytracking.analysis.extract_results.extract_results`` (default options:
``exclude_invalid_frames=False``) on that one sequence, and saves the per-sequence success,
precision and normalised-precision curves and average overlap, or an error flag where pytracking
raises (NaN ground truth outside UAV, NaN / negative-size predictions, LaSOT results shorter than
the ground truth). Then it runs ``extract_results`` on all accepted sequences of each flavour and
``plot_results.get_auc_curve`` / ``get_prec_curve`` on the result, as ``print_results`` does, and
saves the dataset curves and scores (divided by 100: fractions).

Sequences get pytracking's dataset names (``lasot``, ``lasot_extension_subset``, ``uav``, ``otb``)
and, as pytracking's LaSOT and LaSOT-extension loaders do, target-visibility flags. Imports that the
analysis does not use and this machine may lack (``jpeg4py``, ``visdom``, ``tikzplotlib``) are
stubbed when absent, and so is the user-written ``pytracking/evaluation/local.py`` (its
``result_plot_path`` points to a temporary folder). Nothing of pytracking is copied here.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
from make_protocol_cases import load_cases, parse_reference_args

PYTRACKING_DATASETS = {"lasot": "lasot", "lasot_ext": "lasot_extension_subset", "uav": "uav", "otb": "otb"}
WITH_VISIBILITY = ("lasot", "lasot_ext")


def stub_missing_modules(result_plot_path: Path) -> None:
    for name in ("jpeg4py", "visdom", "visdom.server", "tikzplotlib"):
        try:
            importlib.import_module(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__path__ = []
            sys.modules[name] = module
    local = types.ModuleType("pytracking.evaluation.local")

    def local_env_settings():
        from pytracking.evaluation.environment import EnvSettings

        settings = EnvSettings()
        settings.result_plot_path = str(result_plot_path)
        return settings

    local.local_env_settings = local_env_settings
    sys.modules["pytracking.evaluation.local"] = local


def main() -> None:
    args = parse_reference_args(__doc__, "pytracking/analysis/extract_results.py", "visionml/pytracking")
    cases = load_cases(args.out / "cases.npz")
    work = Path(tempfile.mkdtemp(prefix="pytracking_golden_"))
    stub_missing_modules(work / "plots")
    import torch
    from pytracking.analysis.extract_results import extract_results
    from pytracking.analysis.plot_results import get_auc_curve, get_prec_curve
    from pytracking.evaluation.data import Sequence

    out: dict[str, np.ndarray] = {"meta/source": np.asarray(args.source)}
    for flavour, sequences in cases.items():
        tracker = types.SimpleNamespace(
            name="golden", parameter_name="default", run_id=None, display_name="golden",
            results_dir=str(work / flavour),
        )  # fmt: skip
        (work / flavour).mkdir()
        pyt_sequences = []
        for i, case in enumerate(sequences):
            name = f"{flavour}-{i}"
            np.savetxt(work / flavour / f"{name}.txt", case["pred"], fmt="%.17g", delimiter=",")
            visible = case["visible"].astype(np.uint8) if flavour in WITH_VISIBILITY else None
            seq = Sequence(name, [None] * len(case["gt"]), PYTRACKING_DATASETS[flavour], case["gt"].copy(),
                           target_visible=visible)  # fmt: skip
            key = f"{flavour}/{i}"
            try:
                data = extract_results([tracker], [seq], f"{flavour}_{i}", verbose=False)
            except Exception as exc:  # noqa: BLE001 - pytracking raises plain Exceptions
                out[f"{key}/error"] = np.asarray(str(exc))
                continue
            pyt_sequences.append(seq)
            out[f"{key}/success"] = np.asarray(data["ave_success_rate_plot_overlap"][0][0], dtype=np.float64)
            out[f"{key}/precision"] = np.asarray(data["ave_success_rate_plot_center"][0][0], dtype=np.float64)
            out[f"{key}/norm_precision"] = np.asarray(
                data["ave_success_rate_plot_center_norm"][0][0], dtype=np.float64
            )
            out[f"{key}/avg_overlap"] = np.asarray(data["avg_overlap_all"][0][0], dtype=np.float64)
        data = extract_results([tracker], pyt_sequences, f"{flavour}_all", verbose=False)
        valid = torch.tensor(data["valid_sequence"], dtype=torch.bool)
        auc_curve, auc = get_auc_curve(torch.tensor(data["ave_success_rate_plot_overlap"]), valid)
        prec_curve, prec = get_prec_curve(torch.tensor(data["ave_success_rate_plot_center"]), valid)
        norm_curve, norm = get_prec_curve(torch.tensor(data["ave_success_rate_plot_center_norm"]), valid)
        out[f"{flavour}/mean/sequences"] = np.asarray([s.name for s in pyt_sequences])
        for field, value in (
            ("success", auc_curve[0]), ("success_auc", auc[0]), ("precision", prec_curve[0]),
            ("precision_score", prec[0]), ("norm_precision", norm_curve[0]), ("norm_precision_score", norm[0]),
        ):  # fmt: skip
            out[f"{flavour}/mean/{field}"] = value.double().numpy() / 100.0
    np.savez_compressed(args.out / "pytracking.npz", **out)
    print(f"wrote {args.out / 'pytracking.npz'} ({args.source})")


if __name__ == "__main__":
    main()
