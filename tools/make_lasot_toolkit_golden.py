"""Golden fixture of the LaSOT evaluation toolkit (MATLAB), run unmodified under GNU Octave (by hand).

    python tools/make_lasot_toolkit_golden.py --reference /path/to/HengLan/LaSOT_Evaluation_Toolkit \\
        --out tests/fixtures/protocols

The toolkit (github.com/HengLan/LaSOT_Evaluation_Toolkit) exists only in MATLAB. This tool lays the
sequences of ``cases.npz`` (``tools/make_protocol_cases.py``; file coordinates, 1-based as the
toolkit's ``annos/``) out as the toolkit expects them (``annos/<seq>.txt``, ``annos/absent/<seq>.txt``
with ``absent = ~visible``, ``<tracker>_tracking_result/<seq>.txt``) and calls its
``utils/eval_tracker.m`` (which calls ``calc_seq_err_robust.m`` / ``calc_rect_int.m``) on one
sequence at a time, with ``norm_dst`` false (success and precision plots) and true (normalised
precision), as ``run_tracker_performance_evaluation.m`` does. It saves the per-sequence curves the
toolkit writes to its ``aveSuccessRatePlot_*.mat`` files, or an error flag where the toolkit fails
(results shorter than the ground truth). Needs ``octave`` on PATH (Debian: ``apt-get install
octave``); nothing of the toolkit is copied here.

Octave vs MATLAB: the toolkit's thresholds ``0:0.05:1`` are computed by Octave as ``k * 0.05``
(equal to ``numpy.linspace(0, 1, 21)``); MATLAB's colon operator may round some of them one ulp
differently, which can only matter for an IoU exactly equal to a threshold.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from make_protocol_cases import load_cases, parse_reference_args

DRIVER = r"""
addpath('{toolkit}/utils');
names = strsplit(fileread('names.txt'), "\n");
names = names(~cellfun(@isempty, names));
n = numel(names);
overlap = nan(n, 21); err = nan(n, 51); err_norm = nan(n, 51); failed = zeros(n, 1);
trackers = {{struct('name', 'golden')}};
for i = 1:n
  try
    for norm_dst = [false, true]
      mat_dir = sprintf('mat/%d_%d/', i, norm_dst);
      eval_tracker(names(i), trackers, 'OPE', {{'golden'}}, mat_dir, 'annos/', 'results/', norm_dst);
      e = load([mat_dir 'aveSuccessRatePlot_1alg_error_OPE.mat']);
      if norm_dst
        err_norm(i, :) = e.ave_success_rate_plot(1, 1, :);
      else
        o = load([mat_dir 'aveSuccessRatePlot_1alg_overlap_OPE.mat']);
        overlap(i, :) = o.ave_success_rate_plot(1, 1, :);
        err(i, :) = e.ave_success_rate_plot(1, 1, :);
      end
    end
  catch
    failed(i) = 1;
  end
end
dlmwrite('overlap.csv', overlap, 'precision', '%.17g');
dlmwrite('error.csv', err, 'precision', '%.17g');
dlmwrite('error_norm.csv', err_norm, 'precision', '%.17g');
dlmwrite('failed.csv', failed);
"""


def run_octave(script: str, cwd: Path) -> None:
    """Run ``script`` with ``octave`` in ``cwd``; raises with Octave's output when it fails to start."""
    if shutil.which("octave") is None:
        raise SystemExit("octave not found on PATH (Debian/Ubuntu: apt-get install octave)")
    (cwd / "driver.m").write_text(script)
    proc = subprocess.run(
        ["octave", "--no-gui", "--no-window-system", "--quiet", "driver.m"],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if not (cwd / "failed.csv").is_file():
        raise RuntimeError(f"octave failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def read_matrix(path: Path) -> np.ndarray:
    """A ``dlmwrite`` CSV file as a 2-D float64 array."""
    return np.atleast_2d(np.loadtxt(path, delimiter=","))


def main() -> None:
    args = parse_reference_args(__doc__, "utils/calc_seq_err_robust.m", "HengLan/LaSOT_Evaluation_Toolkit")
    cases = load_cases(args.out / "cases.npz")
    out: dict[str, np.ndarray] = {"meta/source": np.asarray(args.source)}
    for flavour, sequences in cases.items():
        work = Path(tempfile.mkdtemp(prefix=f"lasot_toolkit_{flavour}_"))
        (work / "annos" / "absent").mkdir(parents=True)
        (work / "results" / "golden_tracking_result").mkdir(parents=True)
        names = [f"{flavour}-{i}" for i in range(len(sequences))]
        for name, case in zip(names, sequences):
            np.savetxt(work / "annos" / f"{name}.txt", case["gt"], fmt="%.17g", delimiter=",")
            np.savetxt(work / "annos" / "absent" / f"{name}.txt", (~case["visible"]).astype(int), fmt="%d")
            np.savetxt(
                work / "results" / "golden_tracking_result" / f"{name}.txt",
                case["pred"],
                fmt="%.17g",
                delimiter=",",
            )
        (work / "names.txt").write_text("\n".join(names) + "\n")
        run_octave(DRIVER.format(toolkit=args.reference.resolve()), work)
        overlap, err, err_norm = (
            read_matrix(work / f) for f in ("overlap.csv", "error.csv", "error_norm.csv")
        )
        failed = read_matrix(work / "failed.csv").reshape(-1)
        for i in range(len(sequences)):
            key = f"{flavour}/{i}"
            if failed[i]:
                out[f"{key}/error"] = np.asarray("the toolkit failed on this sequence")
                continue
            out[f"{key}/success"] = overlap[i]
            out[f"{key}/precision"] = err[i]
            out[f"{key}/norm_precision"] = err_norm[i]
        shutil.rmtree(work)
    np.savez_compressed(args.out / "lasot_toolkit.npz", **out)
    print(f"wrote {args.out / 'lasot_toolkit.npz'} ({args.source})")


if __name__ == "__main__":
    main()
