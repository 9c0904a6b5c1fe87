"""`python -m modeling_lorat.cli` (how the demo, the VOT toolkit and accelerate start the CLI) works in a
fresh interpreter, whatever the package's import-time registration hook does with module loaders."""

from __future__ import annotations

import subprocess
import sys


def run_module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_python_m_cli_help():
    result = run_module("modeling_lorat.cli", "--help")
    assert result.returncode == 0, result.stderr
    assert "track" in result.stdout and "evaluate" in result.stdout


def test_python_m_submodule_after_package_import_hook():
    # -m runs a submodule through the hooked loader: it needs the wrapped loader's get_code
    code = "import runpy, modeling_lorat; runpy.run_module('modeling_lorat.cli', run_name='not_main'); print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr
