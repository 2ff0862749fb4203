"""Train several VQA models side by side, each in its own process with its own threads.

A small model cannot keep two CPU cores busy: on the course's 2-core machine a training
step of the cross-attention model with two threads was 1.46x faster than with one (45 ms
against 66 ms; notebook 09 times it). Two models trained at once, one thread each, finish
in about the time of the slower one instead of the sum of both. This is how notebook 09 trains its baseline and its
attention head, and how the benchmark runs seeds (it starts whole scripts instead).

Every child rebuilds its data from the same :class:`~mmtutorial.data.SortOfClevr`
arguments (the data depend on ``data_seed``, never on the run's seed), seeds itself with
the run's ``seed`` exactly as :func:`mmtutorial.training.runtime.seed_everything` does,
trains with :func:`~mmtutorial.models.vqa_training.train_vqa` and sends back the kept
weights and the history. Same runs, same results, whether trained here or in a child.

Example::

    runs = {head: VQARun(config=make_config(head), seed=0, data={"n_train": 3000},
                         training={"curriculum_epochs": 20, "epochs": 16, "lr": 2e-3})
            for head in ("concat", "cross_attention")}
    trained = train_in_processes(runs)          # both at once, one thread each
    model, history = trained["concat"].model, trained["concat"].history
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

from ..data.sort_of_clevr import SortOfClevr
from ..training import History
from ..training.distributed import DistributedContext
from ..training.runtime import seed_everything
from ..validation import check_positive_int
from .vqa import VQAConfig, VQAModel
from .vqa_training import train_vqa

__all__ = ["VQARun", "TrainedVQA", "train_in_processes", "train_one"]

#: ``train_vqa`` arguments a :class:`VQARun` sets itself (from its other fields).
_SET_BY_RUN = ("generator", "context", "progress")


@dataclass(frozen=True)
class VQARun:
    """One training run, in values a child process can receive (no tensors, no functions).

    Args:
        config: the model to build.
        seed: initialisation and shuffling (``seed_everything(seed)``, its generator).
        data: :class:`~mmtutorial.data.SortOfClevr` keyword arguments shared by the train
            and validation splits (``n_train``, ``n_val``, ``tokenizer``, ``data_seed`` ...).
        training: :func:`~mmtutorial.models.vqa_training.train_vqa` keyword arguments
            (``curriculum_epochs``, ``epochs``, ``lr``, ``ema_decay`` ...), except those the
            run sets itself: ``generator``, ``context``, ``progress``.
        device: where the child trains (``"cpu"``, ``"cuda"``...).
    """

    config: VQAConfig
    seed: int
    data: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not isinstance(self.config, VQAConfig):
            raise TypeError(f"config={type(self.config).__name__}: expected a VQAConfig")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r}: expected a non-negative int")
        reserved = sorted(set(self.training) & set(_SET_BY_RUN))
        if reserved:
            raise ValueError(f"training sets {reserved}: the run sets these itself; expected none of {_SET_BY_RUN}")
        if "split" in self.data:
            raise ValueError("data sets 'split': the run builds the 'train' and 'val' splits itself")


@dataclass
class TrainedVQA:
    """What a run returns: the model with its kept weights (in eval mode), the training
    history, and the seconds the child took from start to end (data included)."""

    model: VQAModel
    history: History
    seconds: float


def train_one(run: VQARun, threads: int | None = None) -> tuple[dict[str, torch.Tensor], History, float]:
    """Train ``run`` in this process (with ``threads`` torch threads, if given); return the
    kept weights (on the CPU), the history and the seconds taken. A child's whole job."""
    started = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(threads)
    train, val = (SortOfClevr(split, **run.data) for split in ("train", "val"))
    generator = seed_everything(run.seed)
    device = torch.device(run.device)
    model = VQAModel(run.config).to(device)
    history = train_vqa(
        model,
        train,
        val,
        generator=generator,
        context=DistributedContext(device=device),
        progress=False,
        **run.training,
    )
    weights = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    return weights, history, time.perf_counter() - started


def train_in_processes(
    runs: Mapping[str, VQARun], *, threads: int = 1, max_workers: int | None = None
) -> dict[str, TrainedVQA]:
    """Train every run at once, each in a fresh (spawned) process with ``threads`` torch
    threads; ``max_workers`` processes at a time (default: all runs).

    Returns the trained models by the runs' names, in eval mode, each on its run's device.
    A run that fails raises here, with its name, once all runs have ended.
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError(f"runs={runs!r}: expected a non-empty mapping of names to VQARun")
    for name, run in runs.items():
        if not isinstance(run, VQARun):
            raise TypeError(f"runs[{name!r}]={type(run).__name__}: expected a VQARun")
    check_positive_int("threads", threads)
    if max_workers is not None:
        check_positive_int("max_workers", max_workers)
    # spawn, not fork: a forked child of a process whose OpenMP threads have run can hang
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max_workers or len(runs), mp_context=context) as pool:
        futures = {name: pool.submit(train_one, run, threads) for name, run in runs.items()}
        outcomes = {name: future.exception() or future.result() for name, future in futures.items()}
    failed = {name: error for name, error in outcomes.items() if isinstance(error, BaseException)}
    if failed:
        name, error = next(iter(failed.items()))
        raise RuntimeError(f"run {name!r} failed: {type(error).__name__}: {error}") from error
    trained = {}
    for name, (weights, history, seconds) in outcomes.items():
        model = VQAModel(runs[name].config)
        model.load_state_dict(weights)
        trained[name] = TrainedVQA(model.to(runs[name].device).eval(), history, seconds)
    return trained
