"""Which cells of a region grid an object covers: to measure attention on the named object."""

from __future__ import annotations

import torch

from ...validation import (
    check_nonnegative_int,
    check_positive_int,
    check_tensor,
)


def object_region_mask(
    centers: torch.Tensor, grid: int = 5, image_size: int = 75, object_size: int = 5
) -> torch.Tensor:
    """Which cells of a ``grid x grid`` region map overlap each object's bounding box.

    ``centers`` is ``(B, 2)`` integer (x, y) pixel centres (e.g. ``dataset.centers[image,
    colour]``); returns ``(B, grid * grid)`` booleans, row by row, like the regions of
    :class:`mmtutorial.encoders.ConvRegionEncoder`. Summing an attention map over the mask
    measures how much attention lands on the object; ``mask.sum(1) / grid**2`` is what a
    uniform map would put there.
    """
    check_tensor("centers", centers, layout="(batch, 2)")
    if centers.dim() != 2 or centers.shape[1] != 2:
        raise ValueError(f"expected centers of shape (batch, 2), got {tuple(centers.shape)}")
    check_positive_int("grid", grid)
    check_positive_int("image_size", image_size)
    check_nonnegative_int("object_size", object_size)
    cell = image_size / grid
    edges = torch.arange(grid, device=centers.device) * cell
    x, y = centers[:, :1].float(), centers[:, 1:].float()
    # the object covers pixels [c - s, c + s]; a cell covers [edge, edge + cell)
    cols = (edges < x + object_size + 1) & (edges + cell > x - object_size)
    rows = (edges < y + object_size + 1) & (edges + cell > y - object_size)
    return (rows[:, :, None] & cols[:, None, :]).flatten(1)
