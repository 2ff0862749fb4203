"""Random translation of whole Sort-of-CLEVR images, with the answers it changes recomputed.

Shifting a scene by whole pixels keeps every object's shape, every distance and every
count, so all relational answers (closest, furthest, count, between, on a line, obtuse)
stay true. Only *is the X object on the left / on top?* can change, and its answer is a
function of the shifted centre. A training set of 3,000 scenes then shows the network
every object at many positions, in particular near the middle line where the left/top
answer flips.
"""

from __future__ import annotations

import torch

from ...validation import check_tensor
from .questions import NO, YES

__all__ = ["translation_ranges", "draw_shifts", "translate_batch"]

#: The (question type, subtype) pairs whose answer depends on position: non-relational
#: "on the left" (compares x with the image's middle) and "on top" (compares y).
_LEFT, _TOP = (0, 1), (0, 2)


def translation_ranges(images: torch.Tensor) -> torch.Tensor:
    """For each uint8 image ``(N, 3, H, W)`` (white background), the shifts that keep every
    object pixel inside it: ``(N, 2, 2)`` int64, ``[:, 0]`` = (dx_min, dx_max) and
    ``[:, 1]`` = (dy_min, dy_max). An all-white image stays where it is (``[0, 0]``).

    >>> image = torch.full((1, 3, 8, 8), 255, dtype=torch.uint8)
    >>> image[0, :, 2, 5] = 0  # one object pixel at x = 5, y = 2
    >>> translation_ranges(image).tolist()
    [[[-5, 2], [-2, 5]]]
    """
    check_tensor("images", images, dims=4, layout="(N, 3, H, W)")
    if images.dtype != torch.uint8:
        raise TypeError(f"images has dtype {images.dtype}: expected uint8 images (white background = 255)")
    ink = (images < 255).any(1)  # (N, H, W)
    ranges = []
    for axis in (1, 2):  # x: any ink in a column (reduce over rows); y: in a row
        present = ink.any(axis)  # (N, W) or (N, H)
        first = present.int().argmax(1)  # of an image with no ink: 0, on both ends, so [0, 0]
        from_the_end = present.flip(1).int().argmax(1)  # columns (rows) after the last ink
        ranges.append(torch.stack([-first, from_the_end], 1))
    return torch.stack(ranges, 1).long()


def draw_shifts(ranges: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One shift ``(dx, dy)`` per image, uniform over the whole pixels ``ranges`` allows
    (from :func:`translation_ranges`): ``(N, 2)`` int64."""
    low, high = ranges[..., 0], ranges[..., 1]
    u = torch.rand(low.shape, generator=generator)
    return low + (u * (high - low + 1)).long().clamp(max=high - low)


def translate_batch(batch: dict[str, torch.Tensor], shifts: torch.Tensor) -> dict[str, torch.Tensor]:
    """Shift a whole-image batch (``images`` float ``(B, 3, H, W)`` in [0, 1], white = 1)
    by ``shifts`` ``(B, 2)`` and recompute the answers that depend on position, from each
    question's ``target_xy`` (its named object's centre) and ``image_row``: left/top means
    left of / above the image's middle line. Returns a new batch; uncovered pixels are
    background.
    """
    images = batch["images"]
    b, _, h, w = images.shape
    if shifts.shape != (b, 2):
        raise ValueError(f"shifts has shape {tuple(shifts.shape)}: expected ({b}, 2), one (dx, dy) per image")
    dx, dy = shifts[:, 0], shifts[:, 1]
    source_x = torch.arange(w, device=images.device)[None, :] - dx[:, None]  # output column x reads x - dx
    source_y = torch.arange(h, device=images.device)[None, :] - dy[:, None]
    inside = ((source_y >= 0) & (source_y < h))[:, :, None] & ((source_x >= 0) & (source_x < w))[:, None, :]
    rows = torch.arange(b, device=images.device)[:, None, None]
    moved = images[rows, :, source_y.clamp(0, h - 1)[:, :, None], source_x.clamp(0, w - 1)[:, None, :]]  # (B,H,W,C)
    moved = torch.where(inside[..., None], moved, torch.ones((), dtype=images.dtype, device=images.device))
    out = dict(batch)
    out["images"] = moved.permute(0, 3, 1, 2).contiguous()
    target = batch["target_xy"] + shifts[batch["image_row"]]
    out["target_xy"] = target
    answer = batch["answer"]
    for (qtype, subtype), axis, middle in ((_LEFT, 0, w / 2), (_TOP, 1, h / 2)):
        asks = (batch["qtype"] == qtype) & (batch["subtype"] == subtype)
        recomputed = torch.where(target[:, axis] < middle, YES, NO).to(answer.dtype)
        answer = torch.where(asks, recomputed, answer)
    out["answer"] = answer
    return out
