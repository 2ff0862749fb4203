"""Where and how a run happens: seeding, the device, and progress bars.

A leaf module (it imports nothing else from the package but validation), so that the
training loop, the data sets and the notebook plumbing can all use it without importing
each other.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from .progressbar import TEXT_PROGRESS_ENV, progress  # re-exported: runtime is where a run's tools live

__all__ = [
    "DEVICE_CHOICES",
    "seed_everything",
    "seeded_generator",
    "seed_worker",
    "pick_device",
    "to_device",
    "unwrap_model",
    "progress",
    "TEXT_PROGRESS_ENV",
]

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) and return a seeded generator.

    With ``deterministic=True`` PyTorch is asked to use deterministic algorithms
    (``warn_only=True``: an op without a deterministic version warns instead of
    failing) and ``CUBLAS_WORKSPACE_CONFIG`` is set so cuBLAS is repeatable on GPU.
    Same seed, same results on CPU; across machines compare with tolerances.

    Returns:
        A ``torch.Generator`` seeded with ``seed``, to pass to a ``DataLoader``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeding the legacy global state is the point
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return seeded_generator(seed)


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (for DataLoader shuffling)."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def seed_worker(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=seed_worker)``: seed NumPy/random in each worker."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)  # noqa: NPY002
    random.seed(worker_seed)


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve a device name: ``"auto"`` picks CUDA, then Apple MPS, then CPU.

    An explicit ``"cuda"`` or ``"mps"`` that is not available raises a clear error
    rather than silently falling back to CPU.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as {DEVICE_CHOICES}, got {device!r}")
    kind = device.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {DEVICE_CHOICES} (optionally 'cuda:N'), got {device!r}")
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but no CUDA GPU is available; use 'auto' or 'cpu'")
    if kind == "mps" and not mps_ok:
        raise ValueError("device='mps' was requested but Apple MPS is not available; use 'auto' or 'cpu'")
    return torch.device(device)


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Move every tensor of a batch dict to ``device`` (other values pass through)."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module under ``torch.compile`` and ``DistributedDataParallel`` wrappers (in either
    order): the one whose weights a checkpoint saves and whose attributes code reads.

    Example::

        >>> net = torch.nn.Linear(2, 2)
        >>> unwrap_model(torch.compile(net)) is net
        True
    """
    model = getattr(model, "_orig_mod", model)  # torch.compile's OptimizedModule
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    return getattr(model, "_orig_mod", model)  # a compiled model inside DistributedDataParallel
