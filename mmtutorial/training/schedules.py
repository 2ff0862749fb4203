"""The training recipe's pieces, from PyTorch's own toolbox: a learning rate that warms up
then decays (per batch), and BatchNorm statistics recomputed before an evaluation.

Why both matter for the VQA capstone (notebook 09 measures it): with a constant learning
rate, BatchNorm's running statistics trail the weights they normalise, so an evaluation
reads a model that never existed; warm-up and a decaying learning rate keep the weights
moving slowly enough at the end for the statistics to follow, and recomputing the
statistics over training data removes what lag is left.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from itertools import islice
from typing import Any

import torch
from torch import nn

from ..validation import check_float, check_optional_positive_int, check_positive_int

__all__ = ["warmup_cosine", "recalibrated_batchnorm", "has_batchnorm"]


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float = 0.1, final_fraction: float = 0.01
) -> torch.optim.lr_scheduler.OneCycleLR:
    """A learning rate that rises along a half cosine from ``lr / 25`` to the optimizer's
    ``lr`` over the first ``warmup_fraction`` of ``total_steps``, then falls along a cosine
    to ``final_fraction`` of it: PyTorch's ``OneCycleLR`` with ``anneal_strategy="cos"``
    (which shapes both phases) and without its momentum cycle. Step
    it after every optimizer step (``fit(..., scheduler_interval="step")``).

    Example::

        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
        scheduler = warmup_cosine(optimizer, total_steps=epochs * len(batches))
        fit(model, batches, epochs=epochs, optimizer=optimizer, scheduler=scheduler, scheduler_interval="step")
    """
    check_positive_int("total_steps", total_steps)
    check_float("warmup_fraction", warmup_fraction, minimum=0.0, maximum=1.0, min_inclusive=False, max_inclusive=False)
    check_float("final_fraction", final_fraction, minimum=0.0, maximum=1.0, min_inclusive=False)
    peak = optimizer.param_groups[0]["lr"]
    start = 25.0  # OneCycleLR's default: warm-up starts at lr / 25
    if warmup_fraction * total_steps == 1.0:
        # OneCycleLR divides by zero on its first step when the warm-up is exactly one step
        # (its phase then ends at step 0); a hair longer gives the same rates
        warmup_fraction = math.nextafter(warmup_fraction, 1.0)
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[g["lr"] for g in optimizer.param_groups],
        total_steps=total_steps,
        pct_start=warmup_fraction,
        anneal_strategy="cos",
        cycle_momentum=False,
        div_factor=start,
        final_div_factor=peak / start / (peak * final_fraction),
    )


def has_batchnorm(model: nn.Module) -> bool:
    """True if ``model`` has BatchNorm layers that keep running statistics."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in model.modules())


def recalibrated_batchnorm(
    batches: Iterable[Mapping[str, Any]], max_batches: int | None = None
) -> Callable[[nn.Module], None]:
    """A ``fit(before_evaluation=...)`` hook: recompute every BatchNorm layer's running
    statistics as exact averages over (the first ``max_batches`` of) ``batches``, with
    ``torch.optim.swa_utils.update_bn``, so the evaluated model normalises with statistics
    of its current weights rather than a lagging moving average."""
    check_optional_positive_int("max_batches", max_batches)

    def recalibrate(model: nn.Module) -> None:
        if not has_batchnorm(model):
            return
        chosen = batches if max_batches is None else list(islice(iter(batches), max_batches))
        torch.optim.swa_utils.update_bn(chosen, model)

    return recalibrate
