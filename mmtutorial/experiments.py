"""Run notebooks headless with papermill and collect what they recorded.

Command line::

    python -m mmtutorial.experiments run notebooks/*.ipynb --out build/executed [-p smoke True]
    python -m mmtutorial.experiments run notebooks/*.ipynb --in-place   # refresh committed outputs
    python -m mmtutorial.experiments sweep NOTEBOOK --grid grid.yaml --out runs/NAME [--workers N] [--dry-run]
    python -m mmtutorial.experiments report runs/NAME [--metrics NAME ...] [--html PATH]

Each notebook runs in its own folder as working directory (as in JupyterLab), with
its parameters checked against the notebook's ``parameters`` cell first: papermill
itself only warns about an unknown name, which would silently run the defaults.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cli import ArgumentParser, positive_int
from .notebook import read_metrics
from .outputs import prepare_output_folder

__all__ = ["NotebookResult", "check_notebook_path", "notebook_parameters", "check_parameter_names", "execute_notebook", "environment",
           "child_stderr_to", "clean_notebook", "main"]

#: Seconds one cell may run before papermill gives up (a dead kernel must not hang CI).
CELL_TIMEOUT_S = 1200


@dataclass
class NotebookResult:
    """Outcome of one notebook execution."""

    name: str
    status: str  # "ok" or "failed"
    seconds: float
    output: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def summary_line(self) -> str:
        if self.status != "ok":
            return f"FAILED {self.name:<45} {self.seconds:6.1f}s  {self.error}"
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.metrics.items())
        return f"ok     {self.name:<45} {self.seconds:6.1f}s  {shown}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_notebook_path(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path`` if it names an existing ``.ipynb`` file, else a one-line
    ``FileNotFoundError`` / ``ValueError`` that names it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no notebook at {path}")
    if path.is_dir() or path.suffix != ".ipynb":
        raise ValueError(f"{path} is not a notebook (expected a .ipynb file)")
    return path


def notebook_parameters(path: str | os.PathLike) -> dict[str, Any]:
    """The names and default values of a notebook's ``parameters`` cell.

    Raises a one-line ``FileNotFoundError`` or ``ValueError`` naming the file when it is
    missing, not a notebook, or has no cell tagged ``parameters``.
    """
    import papermill

    path = check_notebook_path(path)
    try:
        found = papermill.inspect_notebook(str(path))
    except (ValueError, KeyError, AttributeError, UnicodeDecodeError) as error:  # NotJSONError is a ValueError
        raise ValueError(f"{path} is not a valid notebook ({type(error).__name__})") from None
    if not found:
        raise ValueError(f"{Path(path).name} has no cell tagged 'parameters'")
    defaults = {}
    for name, info in found.items():
        try:
            defaults[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            defaults[name] = info["default"]
    return defaults


def check_parameter_names(path: str | os.PathLike, parameters: Mapping[str, Any],
                          known: Mapping[str, Any] | None = None) -> None:
    """Raise ``ValueError`` naming the parameters the notebook does not have, and its
    valid parameters with their defaults. ``known``: the notebook's
    :func:`notebook_parameters`, when already read."""
    known = notebook_parameters(path) if known is None else known
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"{Path(path).name}: unknown parameter(s) {unknown}; valid parameters are "
                         f"{', '.join(f'{k}={v!r}' for k, v in known.items())}")


def clean_notebook(path: str | os.PathLike) -> None:
    """Drop papermill's run metadata (machine paths, timings) from a notebook file,
    so committed notebooks hold no absolute paths and diff cleanly."""
    path = Path(path)
    notebook = json.loads(path.read_text())
    notebook.get("metadata", {}).pop("papermill", None)
    for cell in notebook.get("cells", []):
        metadata = cell.get("metadata", {})
        metadata.pop("papermill", None)
        metadata.pop("execution", None)
        tags = metadata.get("tags")
        if tags is not None and "injected-parameters" in tags:
            raise ValueError(f"{path.name}: refusing to clean a notebook with injected parameters")
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


@contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block (processes started in it inherit them),
    then restore the previous values."""
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_stderr_lock = threading.Lock()
_stderr_depth = 0
_saved_stderr_fd: int | None = None


@contextmanager
def child_stderr_to(path: str | os.PathLike) -> Iterator[None]:
    """Inside a Jupyter kernel, send the stderr of processes started in this block (the
    kernels that run notebooks, with their start-up warnings) to ``path`` instead of the
    cell's output. Outside a kernel (a terminal) nothing changes. Nested and concurrent
    uses share the outermost redirection."""
    global _stderr_depth, _saved_stderr_fd
    if not type(sys.stderr).__module__.startswith("ipykernel"):
        yield
        return
    with _stderr_lock:
        _stderr_depth += 1
        if _stderr_depth == 1:
            sys.stderr.flush()
            _saved_stderr_fd = os.dup(2)
            log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, 2)
            os.close(log)
    try:
        yield
    finally:
        with _stderr_lock:
            _stderr_depth -= 1
            if _stderr_depth == 0 and _saved_stderr_fd is not None:
                os.dup2(_saved_stderr_fd, 2)
                os.close(_saved_stderr_fd)
                _saved_stderr_fd = None


def execute_notebook(
    notebook: str | os.PathLike,
    output: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    *,
    cell_timeout: int = CELL_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
) -> NotebookResult:
    """Execute ``notebook`` with papermill into ``output`` and read its recorded metrics.

    Args:
        parameters: values for names of the notebook's ``parameters`` cell; unknown
            names raise ``ValueError`` before anything runs.
        env: extra environment variables for the kernel (e.g. ``MMTUTORIAL_SMOKE``).
        cwd: the kernel's working directory (default: the notebook's folder, as in
            JupyterLab); a copy of a notebook runs where the original would.

    A failing notebook does not raise: the result has ``status="failed"`` and the
    error, and the partially executed notebook is still written to ``output``.
    """
    import papermill

    notebook, output = Path(notebook).resolve(), Path(output).resolve()
    parameters = dict(parameters or {})
    check_parameter_names(notebook, parameters)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Text progress bars: a saved notebook then shows their final state, not a dead widget.
    env = {"MMTUTORIAL_TEXT_PROGRESS": "1", **(env or {})}
    start = time.perf_counter()
    try:
        # the kernel inherits this process's environment
        with environment(env), child_stderr_to(output.with_suffix(".kernel.log")):
            papermill.execute_notebook(
                str(notebook),
                str(output),
                parameters=parameters,
                kernel_name="python3",
                cwd=str(Path(cwd).resolve() if cwd is not None else notebook.parent),
                progress_bar=False,
                execution_timeout=cell_timeout,
            )
        metrics, status, error = read_metrics(output), "ok", None
    except Exception as exc:  # papermill raises PapermillExecutionError with the cell's traceback
        metrics, status = {}, "failed"
        # a failing cell: the notebook's own exception (ename), not papermill's wrapper
        name = getattr(exc, "ename", None) or type(exc).__name__
        text = getattr(exc, "evalue", None) or (str(exc).strip().splitlines() or [""])[-1]
        error = f"{name}: {text}"
    return NotebookResult(
        name=notebook.name,
        status=status,
        seconds=time.perf_counter() - start,
        output=output,
        metrics=metrics,
        error=error,
    )


def _parse_value(text: str) -> Any:
    """``-p name value``: Python literals (``True``, ``3``, ``[1, 2]``) or a plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def run_notebooks(
    notebooks: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike | None,
    parameters: Mapping[str, Any],
    in_place: bool = False,
) -> list[NotebookResult]:
    """Execute notebooks one after another, printing a summary line per notebook.

    Every notebook and parameter name is checked, and ``out_dir`` prepared (see
    :func:`mmtutorial.outputs.prepare_output_folder`), before the first one runs.
    """
    for path in notebooks:
        check_parameter_names(path, parameters)
    if not in_place:
        prepare_output_folder(out_dir, "run")
    results = []
    for path in notebooks:
        path = Path(path)
        if in_place:
            with tempfile.TemporaryDirectory() as tmp:
                result = execute_notebook(path, Path(tmp) / path.name, parameters)
                if result.status == "ok":
                    shutil.copyfile(result.output, path)
                    clean_notebook(path)
                result.output = path
        else:
            result = execute_notebook(path, Path(out_dir) / path.name, parameters)
        print(result.summary_line(), flush=True)
        results.append(result)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m mmtutorial.experiments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute notebooks headless and print their metrics")
    run.add_argument("notebooks", nargs="+", help="notebook files, in the order to run them")
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="folder for the executed copies")
    where.add_argument("--in-place", action="store_true", help="replace each notebook by its executed version")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="set a notebook parameter (Python literal), e.g. -p smoke True")
    sweep = commands.add_parser("sweep", help="run a notebook at every point of a parameter grid (resumable)")
    sweep.add_argument("notebook")
    sweep.add_argument("--grid", required=True, help="YAML file: 'grid:' axes (lists) and 'fixed:' values")
    sweep.add_argument("--out", required=True, help="the sweep's folder, e.g. runs/NAME")
    sweep.add_argument("--workers", type=positive_int, default=1, help="points run at once (CPU)")
    sweep.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    report = commands.add_parser("report", help="summarize a sweep as HTML (mean ± std over seeds, plots)")
    report.add_argument("folder")
    report.add_argument("--metrics", nargs="+", default=None, help="metrics to report (default: all numeric)")
    report.add_argument("--html", default=None, help="output file (default FOLDER/report.html)")
    report.add_argument("--over", default="seed", help="the axis averaged over (default: seed)")
    args = parser.parse_args(argv)
    if args.command in ("sweep", "report"):
        return _sweep_command(args)

    parameters = {name: _parse_value(value) for name, value in args.parameter}
    notebooks = sorted(p for p in args.notebooks if ".ipynb_checkpoints" not in p)
    try:
        results = run_notebooks(notebooks, args.out, parameters, in_place=args.in_place)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = [r.name for r in results if r.status != "ok"]
    total = sum(r.seconds for r in results)
    print(f"{len(results) - len(failed)} of {len(results)} notebooks ok in {total:.0f}s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _sweep_command(args: argparse.Namespace) -> int:
    from .sweeps import SweepInterrupted, run_sweep, sweep_report

    try:
        if args.command == "report":
            print(f"wrote {sweep_report(args.folder, args.metrics, args.html, over=args.over)}")
            return 0
        table = run_sweep(args.notebook, args.grid, args.out, workers=args.workers, dry_run=args.dry_run)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SweepInterrupted as interrupted:
        print(interrupted, file=sys.stderr)
        return 130  # the shell's code for a command stopped by Ctrl-C
    return 0 if table is None or (table["status"] == "ok").all() else 1


if __name__ == "__main__":
    sys.exit(main())
