"""``python -m mmtutorial.experiments``: the run, sweep and report commands.

Command line::

    python -m mmtutorial.experiments run notebooks/*.ipynb --out build/executed [-p smoke True]
    python -m mmtutorial.experiments run notebooks/*.ipynb --in-place   # refresh committed outputs
    python -m mmtutorial.experiments sweep NOTEBOOK --grid grid.yaml --out runs/NAME [--workers N] [--dry-run]
    python -m mmtutorial.experiments report runs/NAME [--metrics NAME ...] [--html PATH]

Each notebook runs in its own folder as working directory (as in JupyterLab), with its
parameter names and values checked against the notebook first: papermill itself only
warns about an unknown name, which would silently run the defaults.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence
from typing import Any

from ..cli import ArgumentParser, int_at_least, positive_int
from .runner import run_notebooks

__all__ = ["main"]


def _parse_value(text: str) -> Any:
    """``-p name value``: Python literals (``True``, ``3``, ``[1, 2]``) or a plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m mmtutorial.experiments",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute notebooks headless and print their metrics")
    run.add_argument("notebooks", nargs="+", help="notebook files, in the order to run them")
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="folder for the executed copies")
    where.add_argument("--in-place", action="store_true", help="replace each notebook by its executed version")
    run.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a notebook parameter (Python literal), e.g. -p smoke True",
    )
    sweep = commands.add_parser("sweep", help="run a notebook at every point of a parameter grid (resumable)")
    sweep.add_argument("notebook")
    sweep.add_argument("--grid", required=True, help="YAML file: 'grid:' axes (lists) and 'fixed:' values")
    sweep.add_argument("--out", required=True, help="the sweep's folder, e.g. runs/NAME")
    sweep.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="points run at once on this machine (or the LocalCluster's size with --scheduler local)",
    )
    sweep.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the points on a Dask cluster: its scheduler's address (tcp://host:8786), "
        "or 'local' for a LocalCluster on this machine",
    )
    sweep.add_argument(
        "--gpus",
        type=int_at_least(0),
        default=None,
        help="GPUs to hand out on this machine, one per running point (default: all)",
    )
    sweep.add_argument("--points-per-gpu", type=positive_int, default=1, help="points that may share one GPU")
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
    print(
        f"{len(results) - len(failed)} of {len(results)} notebooks ok in {total:.0f}s"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


def _sweep_command(args: argparse.Namespace) -> int:
    from .report import sweep_report
    from .sweeps import SweepInterrupted, run_sweep

    try:
        if args.command == "report":
            print(f"wrote {sweep_report(args.folder, args.metrics, args.html, over=args.over)}")
            return 0
        table = run_sweep(
            args.notebook,
            args.grid,
            args.out,
            workers=args.workers,
            dry_run=args.dry_run,
            scheduler=args.scheduler,
            gpus=args.gpus,
            points_per_gpu=args.points_per_gpu,
        )
    except (ValueError, FileNotFoundError, ConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SweepInterrupted as interrupted:
        print(interrupted, file=sys.stderr)
        return 130  # the shell's code for a command stopped by Ctrl-C
    return 0 if table is None or (table["status"] == "ok").all() else 1


if __name__ == "__main__":
    sys.exit(main())
