"""Training infrastructure: where a run happens, the loops, checkpoints, data parallelism
and measurements.

* :mod:`.runtime`: seeding, device choice and progress bars (a leaf module);
* :mod:`.progressbar`: the progress bar alone (no torch: the course plumbing uses it);
* :mod:`.loop`: :func:`fit` and :func:`evaluate`, the loops every notebook uses;
* :mod:`.checkpoints`: safe, atomic, checksummed checkpoints;
* :mod:`.distributed`: ``torchrun`` / DistributedDataParallel helpers;
* :mod:`.benchmarking`: timing, peak memory and the benchmark results format.

The names below load their module on first use (PEP 562), so importing one torch-free
submodule (``progressbar``, as every sweep point's process does) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Each public name and the submodule that defines it.
_WHERE = {
    "seed_everything": "runtime",
    "seeded_generator": "runtime",
    "seed_worker": "runtime",
    "pick_device": "runtime",
    "to_device": "runtime",
    "unwrap_model": "runtime",
    "progress": "progressbar",
    "fit": "loop",
    "evaluate": "loop",
    "History": "loop",
    "save_checkpoint": "checkpoints",
    "load_checkpoint": "checkpoints",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
