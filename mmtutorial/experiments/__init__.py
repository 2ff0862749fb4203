"""Notebooks as experiments: run them headless with papermill, sweep them over parameter
grids, and collect what they recorded.

* :mod:`.parameters`: a notebook's parameters, checked (names and values) before a kernel starts;
* :mod:`.runner`: :func:`execute_notebook` (one notebook) and :func:`run_notebooks` (several);
* :mod:`.sweeps`: grids, :func:`plan_sweep`, :func:`run_sweep` (resumable, interruptible),
  :func:`collect_results`; :mod:`.point` is a sweep's per-point child process;
* :mod:`.report`: :func:`sweep_report`, a sweep as one HTML page;
* :mod:`.commands`: ``python -m mmtutorial.experiments run | sweep | report`` (see its usage).
"""

from .commands import main
from .parameters import (
    check_notebook_path,
    check_parameter_names,
    check_parameters,
    declared_parameters,
    notebook_parameters,
)
from .report import sweep_report
from .runner import (
    NotebookResult,
    clean_notebook,
    environment,
    execute_notebook,
    run_notebooks,
    run_point,
)
from .sweeps import (
    SweepInterrupted,
    SweepPoint,
    collect_results,
    expand_grid,
    load_grid,
    plan_sweep,
    run_sweep,
    validate_points,
)

__all__ = [
    "NotebookResult",
    "execute_notebook",
    "run_notebooks",
    "clean_notebook",
    "environment",
    "check_notebook_path",
    "notebook_parameters",
    "check_parameter_names",
    "declared_parameters",
    "check_parameters",
    "SweepPoint",
    "SweepInterrupted",
    "load_grid",
    "expand_grid",
    "validate_points",
    "plan_sweep",
    "run_point",
    "run_sweep",
    "collect_results",
    "sweep_report",
    "main",
]
