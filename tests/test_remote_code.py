"""Checkpoints carry their code: ``trust_remote_code=True`` loading without this package.

The slow test creates a fresh virtualenv (``python -m venv``, no system site-packages) with only
``torch transformers peft safetensors pillow numpy`` (pinned by constraints.txt), once per machine and
constraints version (cached in the system temp folder, rebuilt when incomplete), and runs
:data:`TRACK_SCRIPT` there on a full and an adapter checkpoint saved by this package:
``AutoImageProcessor`` + ``AutoModel`` (processor -> model -> ``post_process_tracking``, frame by frame)
and ``pipeline("single-object-tracking", trust_remote_code=True)`` track a synthetic video. The same
script runs in this process with the package installed; every box and score must be equal.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig
from transformers.dynamic_module_utils import get_imports, get_relative_import_files

from modeling_lorat.configuration_lorat import PIPELINE_TASK, remote_code_files
from modeling_lorat.image_processing_lorat import LoratImageProcessor
from modeling_lorat.lora import apply_lora, save_adapter
from modeling_lorat.modeling_lorat import LoratForTracking
from modeling_lorat.testing_utils import tiny_config, tiny_dinov2

REPO = Path(__file__).resolve().parents[1]
CLEAN_PACKAGES = ("torch", "transformers", "peft", "safetensors", "pillow", "numpy")
#: Top-level imports a checkpoint's code may use: what CLEAN_PACKAGES install (and the standard library).
ALLOWED_IMPORTS = {"torch", "transformers", "peft", "safetensors", "PIL", "numpy", "huggingface_hub"}

#: Run by ``exec`` here and as a script in the clean virtualenv: defines ``run(folders, frames, box)``.
TRACK_SCRIPT = '''
import json
import sys

import numpy as np
import torch
from transformers import AutoImageProcessor, AutoModel, pipeline


def run(folders, frames, box, task):
    """Per checkpoint form: a hand-written loop over processor -> model -> post_process_tracking, the
    pipeline's results, the processor's first tensors and where the classes came from."""
    torch.set_num_threads(1)
    results, tensors = {}, {}
    for form, folder in folders.items():
        processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
        model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
        template = processor(images=frames[0], boxes=box)
        previous, loop = list(box), []
        with torch.inference_mode():
            for frame in frames[1:]:
                search = processor(
                    images=frame, boxes=previous, mode="search", background=template["template_image_mean"]
                )
                outputs = model(
                    pixel_values_template=template["pixel_values_template"],
                    template_mask=template["template_mask"],
                    pixel_values_search=search["pixel_values_search"],
                )
                found = processor.post_process_tracking(outputs, search["crop_info"])[0]
                loop.append([*found["box"].tolist(), found["score"].item()])
                if found["box"][2] > 0 and found["box"][3] > 0:
                    previous = found["box"].tolist()
                if form == "full" and len(loop) == 1:
                    tensors["search"] = search["pixel_values_search"]
                    tensors["score_map"] = outputs.score_map
        track = pipeline(task, model=folder, trust_remote_code=True, device="cpu")
        tensors[f"{form}.template"] = template["pixel_values_template"]
        results[form] = {
            "loop": loop,
            "pipeline": track(list(frames), box=box),
            "modules": [type(obj).__module__ for obj in (processor, model, track, track.tracker)],
        }
    return results, tensors


if __name__ == "__main__":
    import importlib.util
    from pathlib import Path

    from safetensors.torch import save_file

    args = json.loads(sys.argv[1])
    absent = {name: importlib.util.find_spec(name) is None for name in args["absent"]}
    results, tensors = run(args["folders"], np.load(args["frames"]), args["box"], args["task"])
    save_file({k: v.contiguous() for k, v in tensors.items()}, args["tensors"])
    repo = str(Path(args["repo"]).resolve())
    from_repo = sorted(
        {f for f in (getattr(m, "__file__", None) for m in list(sys.modules.values())) if f and f.startswith(repo)}
    )
    print(json.dumps({"results": results, "absent": absent, "from_repo": from_repo}))
'''


# ---------------------------------------------------------------------------------------------- fixtures
def synthetic_video(count: int = 8, size=(96, 72)) -> np.ndarray:
    """``(count, H, W, 3)`` uint8: a textured square moving right and down on noise."""
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 90, (count, size[1], size[0], 3), dtype=np.uint8)
    for i in range(count):
        frames[i, 18 + i : 38 + i, 10 + 3 * i : 30 + 3 * i] = (230, 190, 40)
    return frames


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """A full and an adapter checkpoint of one tiny tracker, saved by this package."""
    root = tmp_path_factory.mktemp("remote_code")
    tiny_dinov2(seed=4).save_pretrained(root / "dinov2-tiny")
    config = tiny_config(backbone_name_or_path=str(root / "dinov2-tiny"))
    torch.manual_seed(1)
    model = apply_lora(LoratForTracking.from_backbone(str(root / "dinov2-tiny"), config=config)).eval()
    processor = LoratImageProcessor.from_config(config)
    save_adapter(model, root / "adapter", model.get_base_model().config)
    processor.save_pretrained(root / "adapter")
    model.merge_and_unload().save_pretrained(root / "full")
    processor.save_pretrained(root / "full")
    return {"full": str(root / "full"), "adapter": str(root / "adapter")}


def _build_venv(target: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, capture_output=True)
    install = [str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--no-input"]
    done = subprocess.run(
        [*install, "-c", str(REPO / "constraints.txt"), *CLEAN_PACKAGES], capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"pip install into the clean virtualenv failed:\n{done.stdout}\n{done.stderr}")
    (target / "COMPLETE").write_text("ok")


@pytest.fixture(scope="session")
def clean_python() -> Path:
    """Python of a virtualenv with only CLEAN_PACKAGES (cached per constraints.txt and interpreter)."""
    key = hashlib.sha256((REPO / "constraints.txt").read_bytes() + sys.version.encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"lorat-clean-venv-{key}"
    with open(f"{target}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; the others wait and reuse it
        if not (target / "COMPLETE").is_file():
            shutil.rmtree(target, ignore_errors=True)
            _build_venv(target)
    return target / "bin" / "python"


# ---------------------------------------------------------------------------------------------- fast
def test_shipped_code_is_complete_and_imports_only_a_plain_install(checkpoints):
    """What the Hub's remote-code loader checks file by file: every relative import is shipped, and
    nothing needs a package beyond torch/transformers/peft/safetensors/pillow/numpy."""
    for folder in map(Path, checkpoints.values()):
        config = json.loads((folder / "config.json").read_text())
        references = [*config["auto_map"].values(), config["custom_pipelines"][PIPELINE_TASK]["impl"]]
        assert {ref.split(".")[0] for ref in references} == set(remote_code_files())
        shipped = sorted(folder.glob("*.py"))
        assert {p.name for p in shipped} == {p.name for paths in remote_code_files().values() for p in paths}
        for path in shipped:
            assert all(Path(p).is_file() for p in get_relative_import_files(str(path))), path.name
            foreign = set(get_imports(str(path))) - ALLOWED_IMPORTS - set(sys.stdlib_module_names)
            assert not foreign, f"{path.name} imports {sorted(foreign)}"


def test_saved_task_entry_does_not_shadow_the_installed_pipeline(checkpoints, tmp_path):
    """config.json names the pipeline for remote-code users; with the package installed the task is
    native, so loading drops the entry (no trust_remote_code needed) and saving writes it again."""
    folder = checkpoints["full"]
    assert json.loads(Path(folder, "config.json").read_text())["custom_pipelines"][PIPELINE_TASK] == {
        "impl": "pipeline_lorat.SingleObjectTrackingPipeline",
        "pt": ["AutoModel"],
        "type": "image",
    }
    config = AutoConfig.from_pretrained(folder)
    assert getattr(config, "custom_pipelines", None) is None
    config.save_pretrained(tmp_path)
    assert PIPELINE_TASK in json.loads((tmp_path / "config.json").read_text())["custom_pipelines"]
    assert getattr(config, "custom_pipelines", None) is None
    assert (tmp_path / "pipeline_lorat.py").is_file() and (tmp_path / "modeling_lorat.py").is_file()


# ---------------------------------------------------------------------------------------------- venv
@pytest.mark.slow
def test_checkpoint_alone_tracks_in_a_clean_virtualenv(checkpoints, clean_python, tmp_path):
    frames, box = synthetic_video(), [10.0, 18.0, 20.0, 20.0]
    np.save(tmp_path / "frames.npy", frames)
    args = {
        "folders": checkpoints,
        "frames": str(tmp_path / "frames.npy"),
        "box": box,
        "tensors": str(tmp_path / "remote.safetensors"),
        "repo": str(REPO),
        "task": PIPELINE_TASK,
        "absent": ["modeling_lorat", "hub_cards", "training", "av", "datasets"],  # (peft brings accelerate)
    }
    (tmp_path / "track.py").write_text(TRACK_SCRIPT)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "HF_HOME": str(tmp_path / "hf"),  # fresh remote-code module cache
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    }
    done = subprocess.run(
        [str(clean_python), "-I", str(tmp_path / "track.py"), json.dumps(args)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    remote = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(remote["absent"].values()), remote["absent"]  # the package (and its extras) cannot load
    assert remote["from_repo"] == []  # no module of this repository was loaded
    for form in checkpoints:
        modules = remote["results"][form]["modules"]
        assert all(m.startswith("transformers_modules.") for m in modules), modules

    scope: dict = {}
    exec(compile(TRACK_SCRIPT, "track.py", "exec"), scope)
    with contextlib.redirect_stdout(sys.stderr):
        local, tensors = scope["run"](checkpoints, frames, box, PIPELINE_TASK)
    for form in checkpoints:
        assert local[form]["modules"][0] == "modeling_lorat.image_processing_lorat"
        assert len(local[form]["loop"]) == len(frames) - 1
        assert remote["results"][form]["loop"] == local[form]["loop"]
        assert remote["results"][form]["pipeline"] == local[form]["pipeline"]
        # the pipeline (tracker) and the hand-written processor loop agree
        got = [[*r["box"], r["score"]] for r in local[form]["pipeline"][1:]]
        np.testing.assert_allclose(got, local[form]["loop"], rtol=0, atol=1e-9)
    # the adapter merged on load tracks like the checkpoint merged before saving
    np.testing.assert_allclose(local["adapter"]["loop"], local["full"]["loop"], rtol=0, atol=1e-4)
    remote_tensors = load_file(str(tmp_path / "remote.safetensors"))
    assert set(remote_tensors) == set(tensors)
    for name, value in tensors.items():
        assert torch.equal(remote_tensors[name], value), name
