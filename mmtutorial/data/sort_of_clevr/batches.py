"""Batches straight from a split's tensors: one question per row, or whole images with all
their questions (each image encoded once)."""

from __future__ import annotations

import torch

from ...validation import (
    check_bool,
    check_positive_int,
    check_tensor,
    require_keys,
)
from ..batching import TensorBatches
from .augment import draw_shifts, translate_batch, translation_ranges


class QuestionBatches:
    """Re-iterable batches of a :meth:`SortOfClevr.as_tensors` dict moved to ``device``.

    The question rows are batched by :class:`mmtutorial.data.TensorBatches`; each batch
    also gets ``image`` (float in [0, 1], gathered from the uint8 images by
    ``image_index``), so a model sees the same keys as with ``collate``.
    """

    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        require_keys(tensors, ("images", "image_index"), reader="QuestionBatches")
        rows = {k: v.to(device) for k, v in tensors.items()}
        self.images = rows.pop("images")
        self.rows = TensorBatches(rows, batch_size, shuffle=shuffle, generator=generator)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        for batch in self.rows:
            batch["image"] = self.images[batch["image_index"]].float() / 255.0
            yield batch


class ImageBatches:
    """Re-iterable batches of whole images, each with all its (kept) questions.

    A batch holds ``images`` ``(B_images, 3, H, W)`` float in [0, 1] and one row per
    question with the usual keys plus ``image_row``: the position of that question's
    image in ``images``. A model encodes ``images`` once and gathers the result with
    ``image_row``: with 10–20 questions per image that is 10–20x fewer image-encoder
    passes than one image per question, the dominant cost of training on a CPU.

    With ``translate=True`` (training) every image is shifted by a random whole number of
    pixels that keeps its objects inside, a new shift each epoch, and the left/top answers
    are recomputed from the shifted centres (:mod:`~mmtutorial.data.sort_of_clevr.augment`;
    needs the ``target_xy`` and ``subtype`` rows of :meth:`SortOfClevr.as_tensors`).
    """

    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        images_per_batch: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        drop_last: bool = False,
        translate: bool = False,
    ) -> None:
        check_positive_int("images_per_batch", images_per_batch)
        check_bool("drop_last", drop_last)
        check_bool("translate", translate)
        require_keys(tensors, ("images", "image_index"), reader="ImageBatches")
        if translate:
            require_keys(tensors, ("target_xy", "qtype", "subtype", "answer"), reader="ImageBatches(translate=True)")
            # per image, computed once on the CPU: the shifts that keep its objects inside
            self.ranges = translation_ranges(tensors["images"].cpu())
        rows = {k: v.to(device) for k, v in tensors.items()}
        self.images = rows.pop("images")
        # sort the questions by image once, so a batch's rows are contiguous runs
        order = torch.argsort(rows["image_index"], stable=True)
        self.rows = {k: v[order] for k, v in rows.items()}
        # the bookkeeping stays on the CPU: a batch's size is then known without asking the GPU
        counts = torch.bincount(self.rows["image_index"].cpu(), minlength=len(self.images))
        self.image_ids = torch.nonzero(counts).flatten()  # images that have kept questions
        self.starts = torch.cumsum(counts, 0) - counts
        self.counts = counts
        self.images_per_batch, self.shuffle, self.generator = images_per_batch, shuffle, generator
        self.drop_last, self.translate = drop_last, translate

    def __len__(self) -> int:
        n = len(self.image_ids)
        return n // self.images_per_batch if self.drop_last else -(-n // self.images_per_batch)

    def __iter__(self):
        # One epoch's indices are computed on the CPU and moved to the device at once; each
        # step then only slices them: no host-device synchronisation per step on a GPU.
        n, size = len(self.image_ids), self.images_per_batch
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        chosen = self.image_ids[order]
        counts = self.counts[chosen]
        image_row = torch.repeat_interleave(torch.arange(n) % size, counts)  # position within its batch
        first = torch.repeat_interleave(self.starts[chosen] - (torch.cumsum(counts, 0) - counts), counts)
        index = torch.arange(int(counts.sum())) + first  # every question of every image, in epoch order
        question_ends = torch.cumsum(counts, 0).tolist()
        device = self.images.device
        if self.translate:  # drawn after the order, so translate=False keeps the shuffling stream it always had
            shifts = draw_shifts(self.ranges[chosen], self.generator).to(device, non_blocking=True)
        chosen, image_row, index = (t.to(device, non_blocking=True) for t in (chosen, image_row, index))
        for start in range(0, n, size):
            stop = min(start + size, n)
            if self.drop_last and stop - start < size:
                break
            begin, end = (question_ends[start - 1] if start else 0), question_ends[stop - 1]
            batch = {k: v[index[begin:end]] for k, v in self.rows.items()}
            batch["images"] = self.images[chosen[start:stop]].float() / 255.0
            batch["image_row"] = image_row[begin:end]
            if self.translate:
                batch = translate_batch(batch, shifts[start:stop])
            yield batch


def pad_token_ids(sequences: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-D id tensors to one ``(B, L_max)`` tensor plus a boolean mask (True = token);
    no sequences give ``(0, 0)``."""
    for i, seq in enumerate(sequences):
        check_tensor(f"sequences[{i}]", seq, dtype="int", dims=1, layout="(length,)")
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    longest = int(lengths.max()) if len(sequences) else 0
    ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
    mask = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
    return ids, mask
