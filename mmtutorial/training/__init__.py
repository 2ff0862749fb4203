"""Training infrastructure: where a run happens, the loops, checkpoints, data parallelism
and measurements.

* :mod:`.runtime`: seeding, device choice and progress bars (a leaf module);
* :mod:`.loop`: :func:`fit` and :func:`evaluate`, the loops every notebook uses;
* :mod:`.checkpoints`: safe, atomic, checksummed checkpoints;
* :mod:`.distributed`: ``torchrun`` / DistributedDataParallel helpers;
* :mod:`.benchmarking`: timing, peak memory and the benchmark results format.
"""

from .checkpoints import load_checkpoint, save_checkpoint
from .loop import History, evaluate, fit
from .runtime import (
    pick_device,
    progress,
    seed_everything,
    seed_worker,
    seeded_generator,
    to_device,
)

__all__ = [
    "seed_everything",
    "seeded_generator",
    "seed_worker",
    "pick_device",
    "to_device",
    "progress",
    "fit",
    "evaluate",
    "History",
    "save_checkpoint",
    "load_checkpoint",
]
