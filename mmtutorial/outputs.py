"""Output folders and files that nothing can lose: the rules every command that writes follows.

* **Never delete or overwrite a folder the tool did not create.** A command that writes an
  output folder (the site, the classroom editions, executed notebooks, sweeps, benchmark
  results) calls :func:`prepare_output_folder` first. A new or empty folder is taken and
  marked with a small file, :data:`MARKER`, naming the tool; a non-empty folder is used
  (and, if asked, emptied) only when it carries the same tool's marker. Anything else —
  ``--out .``, ``--out notebooks``, a folder another tool made — is refused with a
  one-line :class:`OutputFolderError` before anything is written.
* **Every file a later run reads is written atomically** (:func:`atomic_write_text`,
  :func:`atomic_write_json`): into a temporary file in the same folder, then renamed over
  the target, so a crash or Ctrl-C leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "MARKER",
    "OutputFolderError",
    "prepare_output_folder",
    "atomic_write_text",
    "atomic_write_bytes",
    "atomic_write_json",
]

#: The file that marks a folder as written by one of the course's tools.
MARKER = ".mmtutorial-output"


class OutputFolderError(ValueError):
    """An output folder that a command must not write into (its message is one line)."""


def _marker_tool(folder: Path) -> str | None:
    """The tool named by ``folder``'s marker, ``""`` for an unreadable marker, None without one."""
    path = folder / MARKER
    if not path.is_file():
        return None
    try:
        return str(json.loads(path.read_text()).get("tool", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def _temporary_name(name: str) -> tuple[str, str]:
    """The prefix and suffix of the temporary file :func:`atomic_write_bytes` writes ``name`` through."""
    return f".{name}.", ".tmp"


def _is_marker_in_progress(path: Path) -> bool:
    """Whether ``path`` is the temporary file of a :data:`MARKER` that is being written."""
    prefix, suffix = _temporary_name(MARKER)
    return path.name.startswith(prefix) and path.name.endswith(suffix)


def prepare_output_folder(folder: str | os.PathLike, tool: str, *, clean: bool = False) -> Path:
    """Make ``folder`` ready for ``tool``'s output, or refuse it.

    Args:
        folder: the output folder (created with its parents if missing).
        tool: the command's name, recorded in the marker (``"site"``, ``"sweep"`` ...).
        clean: empty the folder first (only ever a folder this tool marked).

    Returns the folder as a ``Path``. Raises :class:`OutputFolderError` when the path is
    a file, or a non-empty folder without ``tool``'s marker.

    Example::

        out = prepare_output_folder("build/site", "site", clean=True)
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"--out {folder}: is a file, expected a folder")
    # a marker being written by another run of the tool at this moment (its temporary file,
    # see atomic_write_bytes) does not make the folder someone else's
    if folder.is_dir() and any(not _is_marker_in_progress(child) for child in folder.iterdir()):
        owner = _marker_tool(folder)
        if owner != tool:
            made_by = f"it was made by '{owner}'" if owner else f"it has no {MARKER} file, so {tool} did not make it"
            raise OutputFolderError(
                f"--out {folder}: refusing to write into a non-empty folder that {tool} did not create "
                f"({made_by}); choose a new or empty folder"
            )
        if clean:
            for child in folder.iterdir():
                if child.name == MARKER:
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    if _marker_tool(folder) != tool:
        atomic_write_json(
            folder / MARKER,
            {
                "tool": tool,
                "created": dt.datetime.now().isoformat(timespec="seconds"),
                "note": "made by mmtutorial; the tool may empty this folder",
            },
        )
    return folder


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _temporary_name(path.name)
    handle, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C included: leave no temporary file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, value: Any, indent: int | None = 2) -> Path:
    """:func:`atomic_write_text` of ``value`` as JSON (with a final newline)."""
    return atomic_write_text(path, json.dumps(value, indent=indent, ensure_ascii=False) + "\n")
