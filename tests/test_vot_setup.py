"""`lorat vot-setup`: the toolkit's trackers.ini entry, read back with the toolkit's own registry."""

from __future__ import annotations

import shlex
import sys

import pytest

pytest.importorskip("vot")

from vot.tracker import Registry  # noqa: E402

from modeling_lorat.cli import main  # noqa: E402


def _command(workspace, name="lorat") -> list[str]:
    tracker = Registry([str(workspace)], root=str(workspace))[name]
    assert tracker.protocol == "trax"
    return shlex.split(tracker.describe()["command"])


def test_entry_runs_this_interpreter_on_the_absolute_model(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tiny_checkpoint.parent)
    workspace = tmp_path / "workspace"
    code = main(
        ["vot-setup", str(workspace), "--model", tiny_checkpoint.name, "--device", "cpu", "--timeout", "45"]
    )
    assert code == 0
    assert "vot evaluate --workspace" in capsys.readouterr().err
    assert _command(workspace) == [
        sys.executable, "-m", "modeling_lorat.cli", "vot-server",
        "--model", str(tiny_checkpoint.absolute()), "--device", "cpu", "--dtype", "float32",
    ]  # fmt: skip
    tracker = Registry([str(workspace)], root=str(workspace))["lorat"]
    assert tracker.describe()["timeout"] == "45"
    assert tracker.label == "lorat"


def test_paths_with_spaces_and_percent_survive_the_toolkit_parser(tiny_checkpoint, tmp_path):
    model = tmp_path / "my 100% model"
    model.symlink_to(tiny_checkpoint, target_is_directory=True)
    workspace = tmp_path / "ws"
    assert (
        main(
            ["vot-setup", str(workspace), "--model", str(model), "--name", "lorat-b", "--label", "LoRAT 50%"]
        )
        == 0
    )
    command = _command(workspace, "lorat-b")
    assert command[command.index("--model") + 1] == str(model)
    assert Registry([str(workspace)], root=str(workspace))["lorat-b"].label == "LoRAT 50%"


def test_other_entries_are_kept_and_a_same_name_entry_needs_overwrite(tiny_checkpoint, tmp_path, capsys):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    registry = workspace / "trackers.ini"
    before = "# my trackers\n[other]\nprotocol = trax\ncommand = other_tracker --fast\n"
    registry.write_text(before)
    assert main(["vot-setup", str(workspace), "--model", str(tiny_checkpoint), "--dtype", "bfloat16"]) == 0
    text = registry.read_text()
    assert text.startswith(before)
    assert _command(workspace, "other") == ["other_tracker", "--fast"]
    assert _command(workspace)[-2:] == ["--dtype", "bfloat16"]

    assert main(["vot-setup", str(workspace), "--model", str(tiny_checkpoint), "--dtype", "float32"]) == 2
    assert "already has a tracker named 'lorat' (use --overwrite" in capsys.readouterr().err
    assert registry.read_text() == text  # untouched

    registry.write_text(text + "\n[third]\nprotocol = trax\ncommand = third\n")
    args = ["vot-setup", str(workspace), "--model", str(tiny_checkpoint), "--dtype", "float32", "--overwrite"]
    assert main(args) == 0
    assert _command(workspace)[-2:] == ["--dtype", "float32"]
    assert _command(workspace, "other") == ["other_tracker", "--fast"]
    assert _command(workspace, "third") == ["third"]
    assert registry.read_text().count("[lorat]") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "lo rat"], "is not a VOT identifier"),
        (["--timeout", "0"], "timeout must be at least 1 second"),
        (["--dtype", "float16", "--device", "cpu"], "--dtype float16 needs --device cuda"),
    ],
)
def test_bad_arguments_write_nothing(tiny_checkpoint, tmp_path, capsys, args, message):
    workspace = tmp_path / "ws"
    assert main(["vot-setup", str(workspace), "--model", str(tiny_checkpoint), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (workspace / "trackers.ini").exists()


def test_missing_model_and_broken_registry_are_errors(tiny_checkpoint, tmp_path, capsys):
    workspace = tmp_path / "ws"
    assert main(["vot-setup", str(workspace), "--model", str(tmp_path / "nope")]) == 2
    assert "model folder not found" in capsys.readouterr().err
    workspace.mkdir()
    (workspace / "trackers.ini").write_text("command = no section header\n")
    assert main(["vot-setup", str(workspace), "--model", str(tiny_checkpoint)]) == 2
    assert "is not a valid trackers.ini" in capsys.readouterr().err
    assert (workspace / "trackers.ini").read_text() == "command = no section header\n"
