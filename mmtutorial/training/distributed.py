"""Data-parallel training with PyTorch's own engine (``torch.distributed`` + DDP).

Launch any training entry point with ``torchrun --nproc_per_node N ...``: every process
(rank) builds the same data and the same shuffled order from the same seed, takes its
share of each *global* batch (:func:`shard_batch`), and DDP averages the gradients, so N
processes take the same steps as one process with the whole global batch. NCCL is used
on GPUs, gloo on CPU. Without ``torchrun`` everything runs as one ordinary process.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistributedContext",
    "init_distributed",
    "shard_batch",
    "ShardedBatches",
    "wrap_model",
    "all_reduce_mean",
    "cleanup",
    "exit_process",
]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: ``rank`` of ``world_size``, its device, and whether it
    is the main process (rank 0, which writes files and prints)."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1), else
    return a single-process context. Rank r uses GPU ``LOCAL_RANK`` (NCCL) when CUDA is
    available and ``device`` allows it, otherwise the CPU (gloo)."""
    from .runtime import pick_device

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistributedContext(device=pick_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistributedContext(rank=rank, world_size=world_size, device=chosen)


def shard_batch(batch: Mapping[str, torch.Tensor], rank: int, world_size: int) -> dict[str, torch.Tensor]:
    """This rank's share of a global batch: a contiguous block of its images (with all
    their questions, ``image_row`` renumbered) for whole-image batches, else a
    contiguous block of its rows."""
    if world_size == 1:
        return dict(batch)
    if "images" in batch:
        blocks = torch.tensor_split(torch.arange(len(batch["images"]), device=batch["images"].device), world_size)
        mine = blocks[rank]
        keep = (
            (batch["image_row"] >= mine[0]) & (batch["image_row"] <= mine[-1])
            if len(mine)
            else torch.zeros_like(batch["image_row"], dtype=torch.bool)
        )
        shard = {k: v[keep] for k, v in batch.items() if k not in ("images", "image_row")}
        shard["images"] = batch["images"][mine]
        shard["image_row"] = batch["image_row"][keep] - (mine[0] if len(mine) else 0)
        return shard
    size = len(next(iter(batch.values())))
    rows = torch.tensor_split(torch.arange(size), world_size)[rank]
    return {k: v[rows.to(v.device)] if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class ShardedBatches:
    """Re-iterable: each global batch of ``batches`` reduced to this rank's share. Every
    rank must iterate the same global batches (same data, same seed)."""

    def __init__(self, batches: Iterable[Mapping[str, torch.Tensor]], context: DistributedContext) -> None:
        self.batches, self.context = batches, context

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        """Passed on to the batches (a :class:`~mmtutorial.data.Curriculum` needs it)."""
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for batch in self.batches:
            yield shard_batch(batch, self.context.rank, self.context.world_size)


def wrap_model(model: nn.Module, context: DistributedContext) -> nn.Module:
    """``model`` on its device, wrapped in DistributedDataParallel when distributed
    (BatchNorm becomes SyncBatchNorm on GPUs, so statistics cover the global batch)."""
    model = model.to(context.device)
    if not context.distributed:
        return model
    if context.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def all_reduce_mean(value: float, context: DistributedContext) -> float:
    """The mean of ``value`` over all ranks (``value`` itself in one process)."""
    if not context.distributed:
        return value
    tensor = torch.tensor([float(value)], device=context.device)
    dist.all_reduce(tensor)
    return tensor.item() / context.world_size


def cleanup(context: DistributedContext, *, failed: bool = False) -> None:
    """Leave the process group (call once at the end of a distributed run, on every rank).

    After a normal run every rank first waits at a barrier, so no rank leaves while another
    still works (rank 0 evaluates and saves after training). After a failure
    (``failed=True``) the rank leaves at once: the others may never reach the barrier, and
    torchrun stops them when this rank exits with its error."""
    if context.distributed and dist.is_initialized():
        if not failed:
            dist.barrier()
        dist.destroy_process_group()


def exit_process(status: int) -> NoReturn:
    """End a ``torchrun`` worker with exit code ``status``, skipping the interpreter's teardown.

    Gloo's worker threads release their last finished collectives (tensors that hold Python
    references) in the background, even after :func:`cleanup`; when that overlaps Python's
    finalization the process aborts with "terminate called without an active exception"
    (a core dump shows ``ProcessGroupGloo::runLoop`` destroying an ``AsyncWork`` that
    needs the GIL during ``Py_FinalizeEx``; the same race as pytorch/pytorch#179291). It
    hit 3 of ~120 two-process runs on a loaded 2-core machine. Call this last, after
    everything is written: the standard streams and logging are flushed first."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(status)
