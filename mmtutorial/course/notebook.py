"""Notebook plumbing shared by every notebook: parameter validation, smoke mode,
seeding and device choice (:func:`setup`), and recording key metrics
(:func:`record_metrics`) so tests, ``make run`` and papermill sweeps can read a
run's results without scraping its printed output.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..training.progressbar import progress  # re-exported: the notebooks' progress bar

if TYPE_CHECKING:  # torch is imported where it is used: reading metrics needs no torch
    import torch

__all__ = [
    "Param",
    "Run",
    "setup",
    "smoke_from_env",
    "record_metrics",
    "read_metrics",
    "METRICS_MIMETYPE",
    "progress",
]

#: Output mimetype under which :func:`record_metrics` stores a notebook's metrics.
METRICS_MIMETYPE = "application/vnd.mmtutorial.metrics+json"
#: Environment variable: also write the metrics as JSON to this file.
METRICS_PATH_ENV = "MMTUTORIAL_METRICS_PATH"
#: Environment variable: ``1`` forces smoke mode (nbval cannot inject parameters).
SMOKE_ENV = "MMTUTORIAL_SMOKE"

_UNSET = object()


@dataclass(frozen=True)
class Param:
    """A notebook parameter with its allowed values.

    Args:
        value: the value from the ``parameters`` cell (or papermill).
        kind: allowed Python type(s); ``int`` values are accepted for ``float``.
        low, high: inclusive bounds for numbers.
        choices: the allowed values, for strings and other enumerations.
        smoke: the value to use in smoke mode (omit to keep ``value``).
    """

    value: Any
    kind: type | tuple[type, ...] = object
    low: float | None = None
    high: float | None = None
    choices: Sequence[Any] | None = None
    smoke: Any = _UNSET

    def validate(self, name: str) -> Any:
        value = self.value
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        type_ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not type_ok:
            names = " or ".join(k.__name__ for k in kinds)
            raise ValueError(f"parameter {name}={value!r}: expected {names}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"parameter {name}={value!r}: expected one of {list(self.choices)}")
        if self.low is not None and value < self.low:
            raise ValueError(f"parameter {name}={value!r}: expected a value >= {self.low}")
        if self.high is not None and value > self.high:
            raise ValueError(f"parameter {name}={value!r}: expected a value <= {self.high}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"parameter {name}={value!r}: expected a finite number")
        return value


@dataclass
class Run:
    """What :func:`setup` hands back: the resolved settings of one notebook run.

    Parameters are readable as attributes (``run.epochs``) or from ``run.params``.
    """

    smoke: bool
    device: torch.device
    seed: int
    generator: torch.Generator
    params: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        params = self.__dict__.get("params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"this run has no parameter {name!r}; it has {sorted(params)}")


def smoke_from_env() -> bool:
    """True if the environment asks for smoke mode (``MMTUTORIAL_SMOKE=1``)."""
    return os.environ.get(SMOKE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def setup(
    smoke: bool = False,
    device: str = "auto",
    seed: int = 0,
    quiet: bool = False,
    **params: Param,
) -> Run:
    """Validate a notebook's parameters, apply smoke mode, seed everything, pick the device.

    Smoke mode is on if ``smoke`` is True *or* the environment sets
    ``MMTUTORIAL_SMOKE=1``; then each :class:`Param` with a ``smoke`` value uses it.
    Prints the library versions, the device and the effective parameters.

    Example::

        run = setup(smoke=smoke, device=device, seed=seed,
                    epochs=Param(epochs, int, low=1, smoke=2))
        run.epochs  # 2 in smoke mode
    """
    from ..training.runtime import pick_device, seed_everything

    if not isinstance(smoke, bool):
        raise ValueError(f"parameter smoke={smoke!r}: expected True or False")
    smoke = smoke or smoke_from_env()
    resolved_device = pick_device(device)
    generator = seed_everything(seed)
    values: dict[str, Any] = {}
    for name, param in params.items():
        if not isinstance(param, Param):
            raise TypeError(f"parameter {name} must be declared as Param(value, ...), got {param!r}")
        values[name] = param.validate(name)
        if smoke and param.smoke is not _UNSET:
            values[name] = Param(param.smoke, param.kind, param.low, param.high, param.choices).validate(name)
    run = Run(smoke=smoke, device=resolved_device, seed=seed, generator=generator, params=values)
    if not quiet:
        print(describe_environment(resolved_device))
        shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
        print(f"smoke={smoke}  seed={seed}  {shown}")
    return run


def describe_environment(device: torch.device) -> str:
    """One line with the Python, PyTorch and mmtutorial versions and the device."""
    import torch

    from .. import __version__

    if device.type == "cuda":
        where = f"cuda ({torch.cuda.get_device_name(device)})"
    else:
        where = f"{device.type} ({torch.get_num_threads()} threads)"
    return (
        f"python {platform.python_version()} | torch {torch.__version__} | mmtutorial {__version__} | device: {where}"
    )


def _to_json_value(key: str, value: Any) -> Any:
    """Convert numpy / torch scalars to plain Python and refuse NaN or odd types."""
    torch = sys.modules.get("torch")  # a tensor can only come from an imported torch
    if torch is not None and isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"metric {key!r}: expected a scalar, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        value = value.item()
    if isinstance(value, Mapping):
        return {str(k): _to_json_value(f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json_value(f"{key}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"metric {key!r} is {value}: a NaN or infinite metric means a bug upstream")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"metric {key!r}: expected a number, string, bool, list or dict, got {type(value).__name__}")


def record_metrics(metrics: Mapping[str, Any]) -> None:
    """Record a notebook's key metrics (call once, in the last cell).

    The metrics are displayed as a small table and stored in the cell's output under
    the mimetype :data:`METRICS_MIMETYPE`, so :func:`read_metrics` finds them in an
    executed notebook. If ``MMTUTORIAL_METRICS_PATH`` is set they are also written
    there as JSON (used by papermill sweeps). Returns nothing, so the cell shows
    only the table.
    """
    if not isinstance(metrics, Mapping) or not metrics:
        raise ValueError(f"metrics must be a non-empty dict, got {metrics!r}")
    clean = {str(k): _to_json_value(str(k), v) for k, v in metrics.items()}
    width = max(len(k) for k in clean)
    table = "\n".join(f"{k:<{width}}  {_fmt(v)}" for k, v in clean.items())
    try:
        from IPython.display import display

        display({METRICS_MIMETYPE: clean, "text/plain": "Recorded metrics\n" + table}, raw=True)
    except ImportError:  # plain Python: just print
        print("Recorded metrics\n" + table)
    path = os.environ.get(METRICS_PATH_ENV)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(clean, indent=2))


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)


def read_metrics(notebook_path: str | os.PathLike) -> dict[str, Any]:
    """Read the metrics recorded by :func:`record_metrics` from an executed notebook."""
    path = Path(notebook_path)
    notebook = json.loads(path.read_text())
    found = None
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if METRICS_MIMETYPE in data:
                found = data[METRICS_MIMETYPE]
    if found is None:
        raise ValueError(f"{path.name} has no recorded metrics: did its last cell call record_metrics?")
    return found
