"""The VOT toolkit's ``trackers.ini`` entry for a lorat model (written by ``lorat vot-setup``).

The toolkit starts ``command`` (split with ``shlex``, run in a temporary folder) and talks TraX to it::

    [lorat]
    label = LoRAT
    protocol = trax
    command = /path/to/python -m modeling_lorat.cli vot-server --model /abs/model --dtype float32
    timeout = 120

Other entries and comments of the file are kept; an entry of the same name is only replaced with
``overwrite=True``. The file is written atomically.
"""

from __future__ import annotations

import configparser
import re
import shlex
import sys
from pathlib import Path

from ..evaluation.results_io import atomic_write_text

TRACKER_NAME = re.compile(r"^[a-zA-Z0-9-_]+$")  # the toolkit's VALID_IDENTIFIER
_HEADER = re.compile(r"^\s*\[(?P<name>[^\]]*)\]\s*$")


def server_command(
    model: str, device: str | None = None, dtype: str = "float32", python: str | None = None
) -> str:
    """The shell-quoted ``vot-server`` command line for ``model`` (a local folder must be absolute)."""
    args = [python or sys.executable, "-m", "modeling_lorat.cli", "vot-server", "--model", model]
    if device is not None:
        args += ["--device", device]
    args += ["--dtype", dtype]
    return shlex.join(args)


def tracker_entry(name: str, command: str, label: str | None = None, timeout: int = 120) -> str:
    """The ``trackers.ini`` section text (``%`` escaped for the toolkit's ConfigParser)."""
    check_tracker_name(name)
    if timeout < 1:
        raise ValueError(f"timeout must be at least 1 second, got {timeout}")
    lines = [
        f"[{name}]",
        f"label = {label or name}",
        "protocol = trax",
        f"command = {command}",
        f"timeout = {int(timeout)}",
    ]
    return "\n".join(line.replace("%", "%%") for line in lines) + "\n"


def check_tracker_name(name: str) -> str:
    """Raise ValueError unless ``name`` is a valid toolkit tracker identifier (letters, digits, ``-``, ``_``)."""
    if not TRACKER_NAME.match(name):
        raise ValueError(
            f"tracker name {name!r} is not a VOT identifier: use letters, digits, '-' and '_' only"
        )
    return name


def _split_sections(text: str, name: str) -> tuple[str, str, bool]:
    """``(before, after, found)`` around section ``name`` of an ini text (the section itself removed)."""
    lines = text.splitlines(keepends=True)
    start = end = None
    for index, line in enumerate(lines):
        match = _HEADER.match(line)
        if match is None:
            continue
        if start is not None:
            end = index
            break
        if match.group("name").strip() == name:
            start = index
    if start is None:
        return text, "", False
    end = len(lines) if end is None else end
    return "".join(lines[:start]), "".join(lines[end:]), True


def write_tracker_entry(registry: str | Path, name: str, entry: str, overwrite: bool = False) -> Path:
    """Add (or with ``overwrite`` replace) section ``name`` of ``registry`` (a ``trackers.ini``) -> its path.

    Raises FileExistsError when the section exists and ``overwrite`` is False, ValueError when the
    existing file is not a valid ini file (it is left untouched in both cases).
    """
    path = Path(registry)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    try:
        configparser.ConfigParser().read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ValueError(f"{path} is not a valid trackers.ini: {exc}") from None
    before, after, found = _split_sections(text, name)
    if found and not overwrite:
        raise FileExistsError(f"{path} already has a tracker named {name!r} (use --overwrite to replace it)")
    before = before.rstrip("\n") + "\n\n" if before.strip() else ""
    after = "\n" + after.lstrip("\n") if after.strip() else ""
    new_text = before + entry + after
    configparser.ConfigParser().read_string(new_text, source=str(path))  # what the toolkit will parse
    atomic_write_text(path, new_text)
    return path
