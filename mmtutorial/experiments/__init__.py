"""Notebooks as experiments: run them headless with papermill, sweep them over parameter
grids, and collect what they recorded.

Command line::

    python -m mmtutorial.experiments run notebooks/*.ipynb --out build/executed [-p smoke True]
    python -m mmtutorial.experiments run notebooks/*.ipynb --in-place   # refresh committed outputs
    python -m mmtutorial.experiments sweep NOTEBOOK --grid grid.yaml --out runs/NAME [--workers N] [--dry-run]
    python -m mmtutorial.experiments report runs/NAME [--metrics NAME ...] [--html PATH]

Each notebook runs in its own folder as working directory (as in JupyterLab), with
its parameters checked against the notebook's ``parameters`` cell first: papermill
itself only warns about an unknown name, which would silently run the defaults.
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
)
from .sweeps import (
    SweepInterrupted,
    SweepPoint,
    collect_results,
    expand_grid,
    load_grid,
    plan_sweep,
    run_point,
    run_sweep,
    validate_points,
)

__all__ = [
    "NotebookResult", "execute_notebook", "run_notebooks", "clean_notebook", "environment",
    "check_notebook_path", "notebook_parameters", "check_parameter_names", "declared_parameters", "check_parameters",
    "SweepPoint", "SweepInterrupted", "load_grid", "expand_grid", "validate_points", "plan_sweep", "run_point",
    "run_sweep", "collect_results", "sweep_report", "main",
]
