"""Every README block marked ``<!-- readme-test: run -->`` is executed (python blocks as code, bash blocks
through the ``lorat`` CLI), against a tiny local checkpoint and a generated video."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from modeling_lorat.cli import main as cli_main
from modeling_lorat.data.synthetic import make_synthetic_sequence
from modeling_lorat.video_io import AnnotatedVideoWriter

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"<!-- readme-test: run -->\s*```(python|bash)\n(.*?)```", re.S)


def runnable_blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(README.read_text())


def test_readme_starts_with_the_two_setup_commands():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (README.parent / ".ci" / "run").read_text()


def test_readme_has_runnable_blocks():
    kinds = [kind for kind, _ in runnable_blocks()]
    assert kinds.count("python") >= 2 and "bash" in kinds


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("readme")
    sequence = make_synthetic_sequence(seed=5, num_frames=6, frame_size=(96, 72))
    with AnnotatedVideoWriter(root / "video.mp4", fps=10, size=(96, 72)) as writer:
        for i in range(len(sequence)):
            writer.write(sequence.load_frame(i), None, None)
    return root


def substitute(code: str, workdir: Path, checkpoint: Path) -> str:
    return code.replace("org/lorat-b-224", str(checkpoint)).replace("video.mp4", str(workdir / "video.mp4"))


@pytest.mark.parametrize("index", range(len(runnable_blocks())))
def test_readme_block_runs(index, workdir, tiny_checkpoint, monkeypatch, capsys):
    kind, code = runnable_blocks()[index]
    monkeypatch.chdir(workdir)
    code = substitute(code, workdir, tiny_checkpoint)
    if kind == "python":
        namespace: dict = {}
        exec(compile(code, f"README block {index}", "exec"), namespace)
        if "results" in namespace:
            assert len(namespace["results"]) == 6 and namespace["results"][0]["score"] == 1.0
        return
    for line in code.replace("\\\n", " ").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        argv = shlex.split(line)
        assert argv[0] == "lorat", f"runnable bash blocks may only call lorat: {line}"
        assert cli_main(argv[1:]) == 0, line
