"""Batches straight from tensors: re-iterable like a DataLoader, with no per-sample Python."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..validation import check_bool, check_mapping, check_nonnegative_int, check_positive_int

__all__ = ["TensorBatches", "Curriculum"]


class TensorBatches:
    """Batches of a dict of equally long tensors, re-iterable like a DataLoader but with no
    per-sample Python: each batch is one indexing operation (on whatever device the
    tensors live, so the whole set can sit on a GPU).

    Args:
        tensors: name -> tensor, all with the same first dimension.
        batch_size: samples per batch (the last batch may be smaller).
        shuffle: a new random order every pass, drawn from ``generator``.
    """

    def __init__(
        self,
        tensors: Mapping[str, torch.Tensor],
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        check_mapping("tensors", tensors, "a dict name -> tensor")
        if not tensors:
            raise ValueError("tensors={}: expected at least one tensor")
        for name, t in tensors.items():
            if not isinstance(t, torch.Tensor) or t.dim() == 0:
                what = f"a {t.dim()}-d tensor" if isinstance(t, torch.Tensor) else type(t).__name__
                raise TypeError(f"tensors[{name!r}] is {what}: expected a tensor with a first (sample) dimension")
        lengths = {name: len(t) for name, t in tensors.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"all tensors must have the same length, got {lengths}")
        check_positive_int("batch_size", batch_size)
        check_bool("shuffle", shuffle)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator={generator!r}: expected None or a torch.Generator")
        self.tensors, self.batch_size, self.shuffle = dict(tensors), batch_size, shuffle
        self.generator = generator
        self.size = next(iter(lengths.values()))

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.size, generator=self.generator)
        else:
            order = torch.arange(self.size)
        # the epoch's order goes to each device once, not once per batch (no per-step sync on a GPU)
        on_device = {t.device: order.to(t.device, non_blocking=True) for t in self.tensors.values()}
        for start in range(0, self.size, self.batch_size):
            yield {name: t[on_device[t.device][start : start + self.batch_size]] for name, t in self.tensors.items()}


class Curriculum:
    """Batches that change with the epoch: ``first`` for the first ``switch_epoch`` epochs,
    then ``then`` (the VQA capstone starts on non-relational questions only).

    :func:`mmtutorial.training.fit` calls :meth:`set_epoch` before every epoch, also after a
    resume (as with PyTorch's ``DistributedSampler``); outside ``fit``, call it yourself.

    Example::

        batches = Curriculum(train.batches(16, question_types=(0,)), train.batches(16), switch_epoch=3)
    """

    def __init__(self, first, then, switch_epoch: int) -> None:
        check_nonnegative_int("switch_epoch", switch_epoch)
        self.first, self.then, self.switch_epoch = first, then, switch_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = check_nonnegative_int("epoch", epoch)

    @property
    def current(self):
        """The batches of the current epoch."""
        return self.first if self.epoch < self.switch_epoch else self.then

    def __len__(self) -> int:
        return len(self.current)

    def __iter__(self):
        return iter(self.current)
