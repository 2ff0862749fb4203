"""A sweep's child process: ``python -m mmtutorial.experiments.point SPEC`` runs one point.

:func:`~mmtutorial.experiments.sweeps.run_sweep` starts one of these per point, in its own
session, so that Ctrl-C in the terminal reaches the sweep, which then stops its points
(and their kernels) itself. ``SPEC`` is JSON: notebook, out, point, parameters, device.
"""

from __future__ import annotations

import json
import sys

from .records import SweepPoint
from .runner import run_point


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    run_point(spec["notebook"], SweepPoint(spec["point"], spec["parameters"]), spec["out"], spec["device"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
