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

import ast
import base64
import io
import itertools
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .experiments import (
    check_parameter_names,
    child_stderr_to,
    environment,
    execute_notebook,
    notebook_parameters,
)
from .notebook import Param

__all__ = ["SweepPoint", "load_grid", "expand_grid", "validate_points", "plan_sweep", "run_sweep",
           "collect_results", "sweep_report"]

RESULT_FILE = "result.json"
SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: its folder name and the notebook parameters it sets."""

    name: str
    parameters: dict[str, Any]


def load_grid(grid: str | os.PathLike | Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """``(fixed, axes)`` from a YAML file or a mapping (see the module docstring)."""
    if not isinstance(grid, Mapping):
        import yaml

        path = Path(grid)
        if not path.exists():
            raise FileNotFoundError(f"no grid file at {path}")
        grid = yaml.safe_load(path.read_text()) or {}
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


# ---------------------------------------------------------------------------------
# Validation before anything runs
# ---------------------------------------------------------------------------------

_KINDS = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "tuple": tuple, "dict": dict}


def _declared_params(notebook: Path) -> dict[str, Param]:
    """The ``Param(...)`` declarations of the notebook's ``setup(...)`` call, as far as
    their arguments are literals (a ``choices=`` given by a variable is not checked here;
    the notebook itself still checks it when it runs)."""
    cells = json.loads(notebook.read_text()).get("cells", [])
    declared: dict[str, Param] = {"smoke": Param(False, bool), "device": Param("auto", str),
                                  "seed": Param(0, int, low=0)}
    for cell in cells:
        source = "".join(cell.get("source", []))
        if cell.get("cell_type") != "code" or "setup(" not in source:
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "setup"):
                continue
            for keyword in call.keywords:
                value = keyword.value
                if not (isinstance(value, ast.Call) and getattr(value.func, "id", None) == "Param"):
                    continue
                kind = value.args[1] if len(value.args) > 1 else None
                kinds = kind.elts if isinstance(kind, ast.Tuple) else [kind] if kind is not None else []
                resolved = tuple(_KINDS[k.id] for k in kinds if isinstance(k, ast.Name) and k.id in _KINDS)
                options: dict[str, Any] = {}
                for option in value.keywords:
                    if option.arg in ("low", "high", "choices"):
                        try:
                            options[option.arg] = ast.literal_eval(option.value)
                        except ValueError:
                            pass  # not a literal: left to the notebook
                declared[keyword.arg] = Param(None, resolved or object, **options)
    return declared


def validate_points(notebook: str | os.PathLike, points: Sequence[SweepPoint]) -> None:
    """Raise ``ValueError`` naming the first bad parameter name or value, and the
    notebook's valid parameters, before anything runs."""
    notebook = Path(notebook)
    if not notebook.exists():
        raise FileNotFoundError(f"no notebook at {notebook}")
    known = notebook_parameters(notebook)
    declared = _declared_params(notebook)
    for point in points:
        check_parameter_names(notebook, point.parameters, known)
        for name, value in point.parameters.items():
            if name in declared:
                rule = declared[name]
                try:
                    Param(value, rule.kind, rule.low, rule.high, rule.choices).validate(name)
                except ValueError as error:
                    raise ValueError(f"{notebook.name}, point {point.name}: {error}") from None


# ---------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------


def _is_finished(folder: Path) -> bool:
    path = folder / RESULT_FILE
    return path.exists() and json.loads(path.read_text()).get("status") == "ok"


def plan_sweep(notebook: str | os.PathLike, grid: str | os.PathLike | Mapping[str, Any],
               out: str | os.PathLike) -> tuple[list[SweepPoint], list[SweepPoint]]:
    """Validate the grid and return ``(to_run, already_finished)``."""
    points = expand_grid(grid)
    validate_points(notebook, points)
    out = Path(out)
    done = [p for p in points if _is_finished(out / p.name)]
    return [p for p in points if p not in done], done


def _stream_log(notebook_path: Path) -> str:
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


def _run_point(notebook: Path, point: SweepPoint, out: Path, device: str) -> dict[str, Any]:
    folder = out / point.name
    folder.mkdir(parents=True, exist_ok=True)
    result = execute_notebook(notebook, folder / "notebook.ipynb", point.parameters)
    record = {"point": point.name, "parameters": point.parameters, "status": result.status,
              "error": result.error, "seconds": round(result.seconds, 2), "device": device,
              "metrics": result.metrics}
    (folder / "log.txt").write_text(_stream_log(result.output) + (f"\nERROR {result.error}\n" if result.error else ""))
    (folder / RESULT_FILE).write_text(json.dumps(record, indent=2))
    return record


def collect_results(out: str | os.PathLike):
    """``OUT/results.csv`` rebuilt from every point's ``result.json``; returns the table
    (parameters and numeric/text metrics as columns, plus status, seconds, device, error)."""
    import pandas as pd

    out = Path(out)
    rows = []
    for path in sorted(out.glob(f"*/{RESULT_FILE}")):
        record = json.loads(path.read_text())
        flat = {k: v for k, v in record["metrics"].items() if not isinstance(v, (dict, list))}
        rows.append({"point": record["point"], **record["parameters"], **flat, "status": record["status"],
                     "seconds": record["seconds"], "device": record["device"], "error": record["error"]})
    table = pd.DataFrame(rows)
    table.to_csv(out / "results.csv", index=False)
    return table


def run_sweep(notebook: str | os.PathLike, grid: str | os.PathLike | Mapping[str, Any], out: str | os.PathLike,
              *, workers: int = 1, dry_run: bool = False, progress: bool = True):
    """Run (or, with ``dry_run``, print the plan of) a sweep; return the results table.

    Args:
        notebook: the notebook to execute at every point.
        grid: a YAML file or mapping (module docstring).
        out: the sweep's folder (``runs/NAME``).
        workers: points run at once (each in its own Jupyter kernel).
    """
    from .benchmarking import device_label
    from .notebook import progress as progress_bar
    from .train import pick_device

    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    # Absolute paths: papermill changes the process's working directory while it runs a
    # point, so with parallel workers a relative path would resolve against the wrong one.
    notebook, out, cwd = Path(notebook).resolve(), Path(out).resolve(), os.getcwd()
    fixed, axes = load_grid(grid)  # read a YAML file once
    to_run, done = plan_sweep(notebook, {"fixed": fixed, "grid": axes}, out)
    if dry_run:
        print(f"{notebook.name}: {len(to_run) + len(done)} points, {len(done)} finished, {len(to_run)} to run")
        for point in to_run:
            print(f"  run   {point.name}: {point.parameters}")
        for point in done:
            print(f"  skip  {point.name} (finished)")
        return None
    out.mkdir(parents=True, exist_ok=True)
    (out / SWEEP_FILE).write_text(json.dumps({"notebook": notebook.name, "fixed": fixed, "axes": axes}, indent=2))
    devices = {p.name: device_label(pick_device(p.parameters.get("device", "auto"))) for p in to_run}
    # Set once for all kernels (workers share this process's environment): text progress
    # bars, and the CPU cores split between the workers instead of each kernel taking all.
    env = {"MMTUTORIAL_TEXT_PROGRESS": "1"}
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    bar = progress_bar(total=len(to_run), desc=f"sweep {out.name}", disable=not progress)
    started = time.perf_counter()
    try:
        with (environment(env), child_stderr_to(out / "kernels.log"),
              ThreadPoolExecutor(max_workers=workers) as pool):
            # each point runs in its own kernel process
            futures = {pool.submit(_run_point, notebook, p, out, devices[p.name]): p for p in to_run}
            for future in as_completed(futures):
                record = future.result()
                collect_results(out)  # results.csv stays current: an interrupted sweep keeps what finished
                bar.update(1)
                bar.set_postfix(last=f"{record['point']} {record['status']}")
    finally:
        bar.close()
        os.chdir(cwd)  # parallel papermill runs may restore each other's working directory out of order
    table = collect_results(out)
    failed = int((table["status"] != "ok").sum()) if len(table) else 0
    print(f"{len(to_run)} points run in {time.perf_counter() - started:.0f}s ({len(done)} already finished); "
          f"{failed} failed; results in {out.name}/results.csv")
    return table


# ---------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------


def _figure_html(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="{fig.axes[0].get_title()}" src="data:image/png;base64,{data}">'


def sweep_report(out: str | os.PathLike, metrics: Sequence[str] | None = None, html: str | os.PathLike | None = None,
                 over: str = "seed") -> Path:
    """Write a self-contained HTML summary of a sweep: per setting (every axis but
    ``over``), mean ± std and count of each metric over ``over``, and a seaborn plot per
    metric (mean with a ±1 std bar). Returns the HTML path (default ``OUT/report.html``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    out = Path(out)
    if not (out / "results.csv").exists():
        raise FileNotFoundError(f"{out} holds no results.csv: run the sweep first")
    table = pd.read_csv(out / "results.csv")
    sweep = json.loads((out / SWEEP_FILE).read_text()) if (out / SWEEP_FILE).exists() else {"axes": {}}
    axes = [a for a in sweep["axes"] if a != over and a in table]
    ok = table[table["status"] == "ok"]
    if ok.empty:
        raise ValueError(f"{out}: no finished point to report ({len(table)} points, all failed)")
    known = {"point", "status", "seconds", "device", "error", *sweep.get("fixed", {}), *sweep["axes"]}
    numeric = [c for c in ok.columns if c not in known and pd.api.types.is_numeric_dtype(ok[c])]
    metrics = list(metrics) if metrics else numeric
    missing = [m for m in metrics if m not in ok]
    if missing:
        raise ValueError(f"metric(s) {missing} not in the results; available: {numeric}")
    keys = [ok[a].astype(str) for a in axes] if axes else [pd.Series("all", index=ok.index, name="setting")]
    summary = ok.groupby(keys)[metrics].agg(["mean", "std", "count"])
    parts = [f"<h1>Sweep {out.name}</h1>",
             f"<p>notebook {sweep.get('notebook', '?')}; {len(table)} points, {len(ok)} finished, "
             f"{len(table) - len(ok)} failed; mean ± std over {over!r}</p>", summary.round(4).to_html()]
    plotted = ok.assign(**{a: ok[a].astype(str) for a in axes})
    for metric in metrics:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        x = axes[0] if axes else None
        hue = axes[1] if len(axes) > 1 else None
        sns.pointplot(data=plotted, x=x, y=metric, hue=hue, errorbar="sd", capsize=0.1, ax=ax, linestyle="none",
                      dodge=0.3 if hue else False)
        ax.set_title(f"{metric} (mean ± 1 std over {over})")
        parts.append(_figure_html(fig))
        plt.close(fig)
    failed = table[table["status"] != "ok"]
    if len(failed):
        parts.append("<h2>Failed points</h2>" + failed[["point", "error"]].to_html(index=False))
    path = Path(html) if html else out / "report.html"
    path.write_text("<!doctype html><html><head><meta charset='utf-8'><title>Sweep report</title></head><body>"
                    + "\n".join(parts) + "</body></html>\n")
    return path
