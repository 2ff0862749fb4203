"""Parameter sweeps: one notebook executed with papermill at every point of a grid.

A grid is a mapping (or a YAML file) of notebook parameters. Under ``grid:`` every name
has a list of values and the sweep runs every combination; under ``fixed:`` every name
has one value used at every point. (A flat mapping works too: lists are axes, anything
else is fixed.)::

    fixed:
      smoke: true
    grid:
      fusions: [["early"], ["late"]]
      missing_rate: [0.0, 0.5]
      seed: [0, 1, 2]

:func:`run_sweep` validates every point against the notebook's ``parameters`` cell and
its ``Param`` declarations *before* running anything, then executes each point into
``OUT/<point>/`` (``notebook.ipynb``, ``result.json`` with the recorded metrics, status,
duration and device, and ``log.txt``) and keeps ``OUT/results.csv`` up to date, one row
per point. A rerun skips finished points and retries failed ones; a failing point is
recorded with its error and never stops the others. :func:`sweep_report` summarizes a
sweep (mean ± std over seeds, seaborn plots) as a self-contained HTML page.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..outputs import atomic_write_json, atomic_write_text, prepare_output_folder
from .executors import DaskExecutor, LocalExecutor, connect_dask
from .parameters import check_parameters, declared_parameters, notebook_parameters
from .records import (
    RESULT_FILE,
    SWEEP_FILE,
    SweepPoint,
    finished_record,
    normalized,
    read_record,
)

__all__ = [
    "SweepPoint",
    "SweepInterrupted",
    "load_grid",
    "expand_grid",
    "validate_points",
    "plan_sweep",
    "run_sweep",
    "collect_results",
]


def load_grid(grid: str | os.PathLike | Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """``(fixed, axes)`` from a YAML file or a mapping (see the module docstring)."""
    if not isinstance(grid, Mapping):
        import yaml

        path = Path(grid)
        if not path.is_file():
            raise FileNotFoundError(f"no grid file at {path}")
        try:
            grid = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ValueError(f"{path}: not valid YAML ({getattr(error, 'problem', None) or error}{where})") from None
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a text file") from None
        if not isinstance(grid, Mapping):
            raise ValueError(f"{path}: expected a mapping of parameters, got {type(grid).__name__}")
    if set(grid) & {"grid", "fixed"}:
        unknown = sorted(set(grid) - {"grid", "fixed"})
        if unknown:
            raise ValueError(f"unknown grid section(s) {unknown}: expected 'grid' and 'fixed'")
        fixed, axes = dict(grid.get("fixed") or {}), dict(grid.get("grid") or {})
    else:
        fixed = {k: v for k, v in grid.items() if not isinstance(v, list)}
        axes = {k: v for k, v in grid.items() if isinstance(v, list)}
    for name, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid axis {name!r}: expected a non-empty list of values, got {values!r}")
    both = sorted(set(fixed) & set(axes))
    if both:
        raise ValueError(f"parameter(s) {both} are both fixed and a grid axis")
    return fixed, axes


def _slug(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "x"


def expand_grid(grid: str | os.PathLike | Mapping[str, Any]) -> list[SweepPoint]:
    """Every combination of the axes (in the order given, last axis fastest), each with
    the fixed values, named after its axis values (``missing_rate=0.5__seed=1``)."""
    fixed, axes = load_grid(grid)
    points = []
    for combination in itertools.product(*axes.values()):
        chosen = dict(zip(axes, combination, strict=True))
        name = "__".join(f"{k}={_slug(v)}" for k, v in chosen.items()) or "default"
        points.append(SweepPoint(name, {**fixed, **chosen}))
    names = [p.name for p in points]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"grid values give the same folder name twice: {duplicates}; use distinct values")
    return points


def validate_points(notebook: str | os.PathLike, points: Sequence[SweepPoint]) -> None:
    """Raise a one-line error naming the first bad parameter name or value (and the
    notebook's valid parameters) before anything runs."""
    known, declared = notebook_parameters(notebook), declared_parameters(notebook)
    for point in points:
        try:
            check_parameters(notebook, point.parameters, known, declared)
        except ValueError as error:
            message = str(error)
            if "unknown parameter" not in message:
                message = message.replace(": ", f", point {point.name}: ", 1)
            raise ValueError(message) from None


# ---------------------------------------------------------------------------------
# Which points are finished, and whether a folder holds this sweep
# ---------------------------------------------------------------------------------


def _merge_axes(old: Mapping[str, list[Any]], new: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """Each axis' values in the order first seen, old then new (a sweep may grow)."""
    merged = {}
    for name in new:
        values = list(old.get(name, []))
        values += [v for v in new[name] if normalized(v) not in normalized(values)]
        merged[name] = values
    return merged


def _sweep_record(out: Path, notebook: Path, fixed: dict[str, Any], axes: dict[str, list[Any]]) -> dict[str, Any]:
    """What ``OUT/sweep.json`` will hold: this sweep, merged with the one already in ``out``.

    The same sweep means the same notebook, the same fixed values and the same axis names;
    its axes may gain or lose values (more seeds, say). A different sweep is refused, so
    its results never mix with this one's in ``results.csv``.
    """
    new = {"notebook": notebook.name, "fixed": normalized(fixed), "axes": normalized(axes)}
    path = out / SWEEP_FILE
    if not path.exists():
        return new
    try:
        old = json.loads(path.read_text())
        old_fixed, old_axes, old_notebook = old["fixed"], old["axes"], old["notebook"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is unreadable ({type(error).__name__}); use a new --out folder") from None
    differences = []
    if old_notebook != new["notebook"]:
        differences.append(f"notebook {old_notebook} vs {new['notebook']}")
    if old_fixed != new["fixed"]:
        changed = sorted(k for k in set(old_fixed) | set(new["fixed"]) if old_fixed.get(k) != new["fixed"].get(k))
        differences.append(
            "fixed " + ", ".join(f"{k}={old_fixed.get(k)!r} vs {new['fixed'].get(k)!r}" for k in changed)
        )
    if list(old_axes) != list(new["axes"]):
        differences.append(f"axes {list(old_axes)} vs {list(new['axes'])}")
    if differences:
        raise ValueError(
            f"{out} holds a different sweep ({'; '.join(differences)}): use a new --out folder, "
            "or the same notebook, fixed values and axes"
        )
    return {**new, "axes": _merge_axes(old_axes, new["axes"])}


def plan_sweep(
    notebook: str | os.PathLike, grid: str | os.PathLike | Mapping[str, Any], out: str | os.PathLike
) -> tuple[list[SweepPoint], list[SweepPoint]]:
    """Validate the grid (and that ``out`` holds no other sweep) and return
    ``(to_run, already_finished)``. Writes nothing.

    A point is finished when its ``result.json`` says "ok" and records exactly the
    point's parameters; a point that failed, was interrupted or ran with other values
    runs again.
    """
    fixed, axes = load_grid(grid)
    points = expand_grid({"fixed": fixed, "grid": axes})
    validate_points(notebook, points)
    out = Path(out)
    _sweep_record(out, Path(notebook), fixed, axes)
    done = [p for p in points if finished_record(out, p) is not None]
    return [p for p in points if p not in done], done


# ---------------------------------------------------------------------------------
# Running: each point in its own process (and kernel), so Ctrl-C can stop it
# ---------------------------------------------------------------------------------


def _row(record: Mapping[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in record["metrics"].items() if not isinstance(v, (dict, list))}
    return {
        "point": record["point"],
        **record["parameters"],
        **flat,
        "status": record["status"],
        "seconds": record["seconds"],
        "device": record["device"],
        "error": record["error"],
    }


def _write_table(out: Path, records: Sequence[Mapping[str, Any]]):
    import pandas as pd

    table = pd.DataFrame([_row(r) for r in sorted(records, key=lambda r: r["point"])])
    atomic_write_text(out / "results.csv", table.to_csv(index=False))
    return table


def collect_results(out: str | os.PathLike):
    """``OUT/results.csv`` rebuilt from the points' ``result.json`` files; returns the table
    (parameters and numeric/text metrics as columns, plus status, seconds, device, error).

    Only the points of the sweep recorded in ``OUT/sweep.json`` whose recorded parameters
    match count; an unreadable ``result.json`` is skipped with a warning naming it.
    """
    out = Path(out)
    sweep_file = out / SWEEP_FILE
    if sweep_file.exists():
        sweep = json.loads(sweep_file.read_text())
        points = expand_grid({"fixed": sweep["fixed"], "grid": sweep["axes"]})
        records = []
        for point in points:
            record = read_record(out / point.name / RESULT_FILE)
            if record is not None and normalized(record["parameters"]) == normalized(point.parameters):
                records.append(record)
    else:
        records = [r for r in (read_record(p) for p in sorted(out.glob(f"*/{RESULT_FILE}"))) if r is not None]
    return _write_table(out, records)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a sweep: ``finished`` of ``total`` points are recorded; a rerun runs the rest."""

    def __init__(self, finished: int, total: int, out: Path) -> None:
        super().__init__(
            f"interrupted: {finished} of {total} points finished; results so far in "
            f"{out / 'results.csv'}; run the same command again to resume"
        )
        self.finished, self.total, self.out = finished, total, out


def run_sweep(
    notebook: str | os.PathLike,
    grid: str | os.PathLike | Mapping[str, Any],
    out: str | os.PathLike,
    *,
    workers: int = 1,
    dry_run: bool = False,
    progress: bool = True,
    scheduler: str | None = None,
    gpus: int | None = None,
    points_per_gpu: int = 1,
):
    """Run (or, with ``dry_run``, print the plan of) a sweep; return the results table.

    Args:
        notebook: the notebook to execute at every point.
        grid: a YAML file or mapping (module docstring).
        out: the sweep's folder (``runs/NAME``): new, empty, or holding this same sweep.
        workers: points run at once on this machine (each in its own process and kernel).
        scheduler: run the points on a Dask cluster instead: the scheduler's address
            (``tcp://host:8786``), or ``"local"`` for a ``LocalCluster`` of ``workers``
            processes on this machine (see :mod:`.executors`).
        gpus: GPUs to hand out on this machine, one per running point (default: all that
            PyTorch sees); ``points_per_gpu`` points may share one when asked.

    Everything is validated (and a Dask scheduler reached) before anything is written.
    ``results.csv`` is rewritten as each point finishes. Ctrl-C (``KeyboardInterrupt``)
    cancels the queued points, stops the running ones (their kernels included), writes
    ``results.csv`` from what finished and raises :class:`SweepInterrupted`; running the
    sweep again resumes it.
    """
    from ..course.notebook import progress as progress_bar

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r}: expected a positive int")
    shown = Path(out)  # messages name the folder as the user did
    notebook, out = Path(notebook).resolve(), Path(out).resolve()
    fixed, axes = load_grid(grid)  # read a YAML file once
    to_run, done = plan_sweep(notebook, {"fixed": fixed, "grid": axes}, out)
    if dry_run:
        print(f"{notebook.name}: {len(to_run) + len(done)} points, {len(done)} finished, {len(to_run)} to run")
        for point in to_run:
            print(f"  run   {point.name}: {point.parameters}")
        for point in done:
            print(f"  skip  {point.name} (finished)")
        return None
    sweep = _sweep_record(out, notebook, fixed, axes)
    client = connect_dask(scheduler, workers=workers) if scheduler else None  # unreachable: fails here
    try:
        prepare_output_folder(out, "sweep")  # refuses a folder that is not this tool's
        atomic_write_json(out / SWEEP_FILE, sweep)
        if client is not None:
            executor = DaskExecutor(client, notebook, out)
        else:
            # Text progress bars in the saved notebooks, and the CPU cores split between the
            # workers instead of each kernel taking them all.
            env = {**os.environ, "MMTUTORIAL_TEXT_PROGRESS": "1"}
            if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
                env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
            executor = LocalExecutor(notebook, out, env, workers, gpus=gpus, points_per_gpu=points_per_gpu)
        return _run_points(
            executor,
            to_run,
            done,
            out,
            shown,
            progress_bar(total=len(to_run), desc=f"sweep {out.name}", disable=not progress),
        )
    finally:
        if client is not None:
            cluster = client.cluster if scheduler == "local" else None
            client.close()
            if cluster is not None:
                cluster.close()


def _run_points(executor, to_run: list[SweepPoint], done: list[SweepPoint], out: Path, shown: Path, bar):
    """Run ``to_run`` on ``executor``, keeping ``results.csv`` current; Ctrl-C stops it all."""
    records = {p.name: finished_record(out, p) for p in done}
    started, futures = time.perf_counter(), []
    try:
        futures = [executor.submit(p) for p in to_run]
        for future in executor.as_completed(futures):
            record = executor.result(future)
            if record is not None:
                records[record["point"]] = record
                _write_table(out, list(records.values()))  # an interrupted sweep keeps what finished
                bar.update(1)
                bar.set_postfix(last=f"{record['point']} {record['status']}")
    except KeyboardInterrupt:
        executor.stop()
        bar.close()
        _write_table(out, list(records.values()))
        finished = sum(r["status"] == "ok" for r in records.values())
        raise SweepInterrupted(finished, len(to_run) + len(done), shown) from None
    finally:
        executor.close()
        bar.close()
    table = _write_table(out, list(records.values()))
    failed = [r for r in records.values() if r["status"] != "ok"]
    print(
        f"{len(to_run)} points run in {time.perf_counter() - started:.0f}s ({len(done)} already finished); "
        f"{len(failed)} failed; results in {shown / 'results.csv'}"
    )
    for record in sorted(failed, key=lambda r: r["point"]):
        print(f"  failed {record['point']}: {record['error']}")
    return table
