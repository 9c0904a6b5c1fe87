r"""Golden fixture of the OTB toolkit (MATLAB), run unmodified under GNU Octave (by hand).

    python tools/make_otb_toolkit_golden.py --reference /path/to/tracker_benchmark_v1.0 \\
        --out tests/fixtures/protocols

The OTB benchmark code (Wu, Lim, Yang, "Online Object Tracking: A Benchmark", tracker_benchmark_v1.0
from visual-tracking.net; a copy of the original release is commit 9b953cd of
github.com/hedes1992/tracker_benchmark_v1.0) exists only in MATLAB. This tool writes the ``otb`` and
``uav`` flavours of ``cases.npz`` (``tools/make_protocol_cases.py``) as the toolkit reads them
(``anno/<seq>.txt``; the OPE result ``.mat`` file of a ``rect`` tracker under the toolkit's literal
``.\results\results_TRE_CVPR13\`` name) and calls its ``genPerfMat.m`` (which calls
``util/splitSeqTRE.m`` and ``calcSeqErrRobust.m`` / ``calcRectInt.m``, with ``util`` and ``rstEval`` on
the path as ``main_running.m`` sets it) on one sequence at a time. It saves the per-sequence success
and precision curves of the ``aveSuccessRatePlot_*_OPE.mat`` files, or an error flag where the
toolkit fails. Needs ``octave`` on PATH; nothing of the toolkit is copied here. See
``make_lasot_toolkit_golden.py`` on Octave's thresholds.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from make_lasot_toolkit_golden import read_matrix, run_octave
from make_protocol_cases import load_cases, parse_reference_args

FLAVOURS = ("otb", "uav")
DRIVER = r"""
addpath('{toolkit}'); addpath('{toolkit}/util'); addpath('{toolkit}/rstEval');
names = strsplit(fileread('names.txt'), "\n");
names = names(~cellfun(@isempty, names));
lengths = dlmread('lengths.txt');
n = numel(names);
overlap = nan(n, 21); err = nan(n, 51); failed = zeros(n, 1);
trackers = {{struct('name', 'golden')}};
for i = 1:n
  s = struct('name', names{{i}}, 'path', 'img/', 'startFrame', 1, 'endFrame', lengths(i), 'nz', 4, 'ext', 'jpg');
  perf_dir = sprintf('perf/%d/', i);
  mkdir(perf_dir);
  try
    genPerfMat({{s}}, trackers, 'OPE', {{'golden'}}, perf_dir);
    o = load([perf_dir 'aveSuccessRatePlot_1alg_overlap_OPE.mat']);
    e = load([perf_dir 'aveSuccessRatePlot_1alg_error_OPE.mat']);
    overlap(i, :) = o.aveSuccessRatePlot(1, 1, :);
    err(i, :) = e.aveSuccessRatePlot(1, 1, :);
  catch
    failed(i) = 1;
  end
end
dlmwrite('overlap.csv', overlap, 'precision', '%.17g');
dlmwrite('error.csv', err, 'precision', '%.17g');
dlmwrite('failed.csv', failed);
"""
WRITE_RESULT = r"""
names = strsplit(fileread('names.txt'), "\n");
names = names(~cellfun(@isempty, names));
for i = 1:numel(names)
  res = dlmread(['pred/' names{i} '.txt']);
  results = {struct('type', 'rect', 'res', res, 'len', size(res, 1), 'startFrame', 1, 'annoBegin', 1)};
  save('-v6', ['.\results\results_TRE_CVPR13\' names{i} '_golden.mat'], 'results');
end
dlmwrite('failed.csv', 0);
"""


def main() -> None:
    args = parse_reference_args(__doc__, "genPerfMat.m", "Wu-Lim-Yang OTB tracker_benchmark_v1.0")
    cases = load_cases(args.out / "cases.npz")
    out: dict[str, np.ndarray] = {"meta/source": np.asarray(args.source)}
    for flavour in FLAVOURS:
        sequences = cases[flavour]
        work = Path(tempfile.mkdtemp(prefix=f"otb_toolkit_{flavour}_"))
        (work / "anno").mkdir()
        (work / "pred").mkdir()
        names = [f"{flavour}-{i}" for i in range(len(sequences))]
        for name, case in zip(names, sequences):
            np.savetxt(work / "anno" / f"{name}.txt", case["gt"], fmt="%.17g", delimiter=",")
            np.savetxt(work / "pred" / f"{name}.txt", case["pred"], fmt="%.17g", delimiter=",")
        (work / "names.txt").write_text("\n".join(names) + "\n")
        np.savetxt(work / "lengths.txt", [len(c["gt"]) for c in sequences], fmt="%d")
        run_octave(WRITE_RESULT, work)
        (work / "failed.csv").unlink()
        run_octave(DRIVER.format(toolkit=args.reference.resolve()), work)
        overlap, err = read_matrix(work / "overlap.csv"), read_matrix(work / "error.csv")
        failed = read_matrix(work / "failed.csv").reshape(-1)
        for i in range(len(sequences)):
            key = f"{flavour}/{i}"
            if failed[i]:
                out[f"{key}/error"] = np.asarray("the toolkit failed on this sequence")
                continue
            out[f"{key}/success"] = overlap[i]
            out[f"{key}/precision"] = err[i]
        shutil.rmtree(work)
    np.savez_compressed(args.out / "otb_toolkit.npz", **out)
    print(f"wrote {args.out / 'otb_toolkit.npz'} ({args.source})")


if __name__ == "__main__":
    main()
