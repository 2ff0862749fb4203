"""What a sweep leaves on disk: its points, their ``result.json`` records, and reading them back.

A point's folder ``OUT/<point>/`` holds ``notebook.ipynb`` (the executed notebook),
``log.txt`` (what it printed), ``stderr.log`` (its process's and kernel's own messages)
and ``result.json``, written last and atomically: a point is finished when its
``result.json`` says "ok" *and* records exactly the point's parameters.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SweepPoint", "RESULT_FILE", "SWEEP_FILE", "normalized", "read_record", "finished_record", "stream_log"]

RESULT_FILE = "result.json"
SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: its folder name and the notebook parameters it sets."""

    name: str
    parameters: dict[str, Any]


def normalized(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(value))


def read_record(path: Path) -> dict[str, Any] | None:
    """A point's ``result.json``, or None when missing or unreadable (with a warning naming
    the file: the point then runs again instead of blocking the sweep)."""
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or not {"status", "parameters", "metrics"} <= set(record):
            raise ValueError("not a sweep result")
        return record
    except (OSError, ValueError) as error:
        warnings.warn(
            f"{path} is unreadable ({type(error).__name__}: {str(error)[:80]}); that point runs again", stacklevel=3
        )
        return None


def finished_record(out: Path, point: SweepPoint) -> dict[str, Any] | None:
    """The point's record if it finished ("ok") *with exactly this point's parameters*."""
    record = read_record(out / point.name / RESULT_FILE)
    if record is None or record.get("status") != "ok":
        return None
    return record if normalized(record["parameters"]) == normalized(point.parameters) else None


def stream_log(notebook_path: Path) -> str:
    """The text a notebook printed, cell by cell (its 'log')."""
    if not notebook_path.exists():
        return ""
    lines = []
    for i, cell in enumerate(json.loads(notebook_path.read_text()).get("cells", [])):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                lines.append(f"[cell {i}] {''.join(output.get('text', ''))}".rstrip())
            elif output.get("output_type") == "error":
                lines.append(f"[cell {i}] {output.get('ename')}: {output.get('evalue')}")
                lines.extend(re.sub(r"\x1b\[[0-9;]*m", "", t) for t in output.get("traceback", []))
    return "\n".join(lines) + "\n"
