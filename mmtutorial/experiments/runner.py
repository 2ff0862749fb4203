"""Run notebooks headless with papermill: one notebook into an output file, or many in turn.

Each notebook runs in its own folder as working directory (as in JupyterLab), with its
parameters checked first (:mod:`.parameters`). A failing notebook does not raise: its
:class:`NotebookResult` says "failed" and carries the error of the cell that failed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..outputs import atomic_write_json, atomic_write_text, prepare_output_folder
from .parameters import check_parameters
from .records import RESULT_FILE, SweepPoint, stream_log

__all__ = [
    "NotebookResult",
    "execute_notebook",
    "run_notebooks",
    "output_names",
    "run_point",
    "clean_notebook",
    "environment",
    "CELL_TIMEOUT_S",
]

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


def clean_notebook(path: str | os.PathLike) -> None:
    """Drop papermill's run metadata (machine paths, timings) from a notebook file, and
    show paths under the temporary folder in printed output as ``$TMPDIR/...``, so
    committed notebooks hold no absolute paths and diff cleanly."""
    path = Path(path)
    notebook = json.loads(path.read_text())
    notebook.get("metadata", {}).pop("papermill", None)
    # a run's temporary folders (printed by sweeps, warnings) say nothing about the lesson
    temporary = re.compile(re.escape(tempfile.gettempdir().rstrip("/")) + r"/(?=\w)")
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                text = output.get("text", "")
                text = "".join(text) if isinstance(text, list) else text
                output["text"] = temporary.sub("$TMPDIR/", text)
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


def _logged_kernel_manager(log_path: Path) -> type:
    """A kernel manager whose kernel writes its stdout and stderr to ``log_path``, not to
    the terminal: ipykernel's start-up warning about TCP, the message of the interrupt
    that jupyter_client sends at every shutdown, and anything a crashing kernel says.
    Cell outputs and errors still reach the notebook as usual."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):  # documented as the hook to override
            with open(log_path, "ab") as log:  # the kernel keeps its own copy of the descriptor
                kw.setdefault("stdout", log)
                kw.setdefault("stderr", log)
                await super()._async_launch_kernel(kernel_cmd, **kw)

    return LoggedKernelManager


#: What jupyter_client raises when a kernel dies while starting (before any cell ran).
KERNEL_START_FAILURE = "Kernel died before replying to kernel_info"
#: How many times a notebook's kernel is started before that failure counts.
KERNEL_START_ATTEMPTS = 3


def execute_notebook(
    notebook: str | os.PathLike,
    output: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    *,
    cell_timeout: int = CELL_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    kernel_log: str | os.PathLike | None = None,
    validate: bool = True,
) -> NotebookResult:
    """Execute ``notebook`` with papermill into ``output`` and read its recorded metrics.

    Args:
        parameters: values for names of the notebook's ``parameters`` cell; unknown
            names raise ``ValueError`` before anything runs.
        env: extra environment variables for the kernel (e.g. ``MMTUTORIAL_SMOKE``).
        cwd: the kernel's working directory (default: the notebook's folder, as in
            JupyterLab); a copy of a notebook runs where the original would.
        kernel_log: where the kernel's own stdout and stderr go (default
            ``<output>.kernel.log``).
        validate: check ``parameters`` before the kernel starts (``False`` only where
            they were checked already: a sweep checks every point before any runs).

    A failing notebook does not raise: the result has ``status="failed"`` and the
    error, and the partially executed notebook is still written to ``output``. The
    kernel's own stdout and stderr (start-up warnings, a crash) go to ``kernel_log``,
    not to the terminal.
    """
    import papermill

    notebook, output = Path(notebook).resolve(), Path(output).resolve()
    parameters = dict(parameters or {})
    if validate:
        check_parameters(notebook, parameters)
    output.parent.mkdir(parents=True, exist_ok=True)
    kernel_log = Path(kernel_log) if kernel_log is not None else output.with_suffix(".kernel.log")
    # Text progress bars and static explorer figures (mmtutorial.course.explorers): a saved
    # notebook then shows their final state, not a dead widget.
    env = {"MMTUTORIAL_TEXT_PROGRESS": "1", "MMTUTORIAL_STATIC_WIDGETS": "1", **(env or {})}
    start = time.perf_counter()
    try:
        # the kernel inherits this process's environment
        with environment(env):
            for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
                try:
                    papermill.execute_notebook(
                        str(notebook),
                        str(output),
                        parameters=parameters,
                        kernel_name="python3",
                        cwd=str(Path(cwd).resolve() if cwd is not None else notebook.parent),
                        progress_bar=False,
                        execution_timeout=cell_timeout,
                        kernel_manager_class=_logged_kernel_manager(kernel_log),
                    )
                    break
                except RuntimeError as exc:
                    # Kernels started at once can race for a port the client picked and let go
                    # (papermill#511, jupyter_client#154): the kernel dies before running
                    # anything, so starting it again is safe. Any other failure is the notebook's.
                    if KERNEL_START_FAILURE not in str(exc) or attempt == KERNEL_START_ATTEMPTS:
                        raise
        from ..course.notebook import read_metrics

        metrics, status, error = read_metrics(output), "ok", None
    except Exception as exc:  # papermill raises PapermillExecutionError with the cell's traceback
        metrics, status = {}, "failed"
        # a failing cell: the notebook's own exception (ename), not papermill's wrapper
        name = getattr(exc, "ename", None) or type(exc).__name__
        text = getattr(exc, "evalue", None) or (str(exc).strip().splitlines() or [""])[-1]
        error = f"{name}: {text}"
        if "DeadKernel" in name:  # the kernel itself died: what it said is in its log
            error += f" (see {kernel_log.name})"
    return NotebookResult(
        name=notebook.name,
        status=status,
        seconds=time.perf_counter() - start,
        output=output,
        metrics=metrics,
        error=error,
    )


def output_names(notebooks: Sequence[str | os.PathLike]) -> dict[Path, str]:
    """Each notebook's file name in an output folder: its own name, or
    ``<folder>__<name>`` when two of them share a name (``alice/07.ipynb`` and
    ``bob/07.ipynb`` become ``alice__07.ipynb`` and ``bob__07.ipynb``)."""
    paths = [Path(p) for p in notebooks]
    names = [p.name for p in paths]
    return {p: f"{p.resolve().parent.name}__{p.name}" if names.count(p.name) > 1 else p.name for p in paths}


def _source_of(executed: Path) -> str | None:
    """The notebook an executed copy was made from (papermill's ``input_path``)."""
    try:
        return json.loads(executed.read_text())["metadata"]["papermill"]["input_path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_notebooks(
    notebooks: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike | None,
    parameters: Mapping[str, Any],
    in_place: bool = False,
) -> list[NotebookResult]:
    """Execute notebooks one after another, printing a summary line per notebook.

    Every notebook and parameter is checked, and ``out_dir`` prepared (see
    :func:`mmtutorial.outputs.prepare_output_folder`), before the first one runs. Outputs
    are named by :func:`output_names`; an output made from *another* notebook (grading
    ``bob/07.ipynb`` into the folder that holds ``alice/07.ipynb``'s run) is never
    overwritten: that is refused before anything runs.
    """
    for path in notebooks:
        check_parameters(path, parameters)
    names = output_names(notebooks)
    if not in_place:
        for path, name in names.items():
            source = _source_of(Path(out_dir) / name)
            if source is not None and Path(source) != path.resolve():
                raise ValueError(
                    f"{Path(out_dir) / name} holds the run of {source}, not of {path}: "
                    "use another --out folder (one per submission, say)"
                )
        prepare_output_folder(out_dir, "run")
    results = []
    for path, name in names.items():
        if in_place:
            with tempfile.TemporaryDirectory() as tmp:
                result = execute_notebook(path, Path(tmp) / path.name, parameters)
                if result.status == "ok":
                    shutil.copyfile(result.output, path)
                    clean_notebook(path)
                result.output = path
        else:
            result = execute_notebook(path, Path(out_dir) / name, parameters)
        print(result.summary_line(), flush=True)
        results.append(result)
    return results


def run_point(notebook: str | os.PathLike, point: SweepPoint, out: str | os.PathLike, device: str) -> dict[str, Any]:
    """Execute one point into ``OUT/<point>/`` and record it (``notebook.ipynb``,
    ``log.txt``, then ``result.json``, written last and atomically). Returns the record.

    :func:`run_sweep` calls this in a child process per point (``python -m
    mmtutorial.experiments.point``), so that an interrupted sweep can stop the point's kernel.
    """
    folder = Path(out) / point.name
    folder.mkdir(parents=True, exist_ok=True)
    # validate=False: the sweep checked every point before starting any, and checking
    # again here would import torch (choices such as FUSIONS) into every point's process
    result = execute_notebook(
        notebook, folder / "notebook.ipynb", point.parameters, kernel_log=folder / "stderr.log", validate=False
    )  # the kernel's log, next to this process's
    record = {
        "point": point.name,
        "notebook": Path(notebook).name,
        "parameters": point.parameters,
        "status": result.status,
        "error": result.error,
        "seconds": round(result.seconds, 2),
        "device": device,
        "metrics": result.metrics,
    }
    atomic_write_text(
        folder / "log.txt", stream_log(result.output) + (f"\nERROR {result.error}\n" if result.error else "")
    )
    atomic_write_json(folder / RESULT_FILE, record)
    return record
