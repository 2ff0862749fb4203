"""Where regions are: which grid cells an object covers, which receptive fields see it, and
attention over regions drawn on the pixels they see (to measure and show attention on an object)."""

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


def _field_edges(grid: int, size: int, stride: int, first_centre: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive pixel bounds ``(low, high)`` of each of ``grid`` receptive fields along one axis."""
    centres = first_centre + stride * torch.arange(grid, dtype=torch.float32)
    return centres - (size - 1) / 2, centres + (size - 1) / 2


def regions_seeing_object(
    centers: torch.Tensor,
    size: int = 31,
    stride: int = 16,
    first_centre: float = 0.0,
    grid: int = 5,
    object_size: int = 5,
) -> torch.Tensor:
    """Which regions' receptive fields contain each object's whole bounding box.

    Unlike :func:`object_region_mask`, which cuts the image into ``grid x grid`` disjoint
    cells, this uses what a region of a CNN really sees: a ``size``-pixel field every
    ``stride`` pixels, region 0's centred on pixel ``first_centre``
    (:meth:`mmtutorial.encoders.ConvRegionEncoder.receptive_field`; 31, 16 and 0 for the
    course's CNN). Fields overlap, so one to four regions see a whole object.
    ``centers`` is ``(B, 2)`` integer (x, y) pixel centres; returns ``(B, grid * grid)``
    booleans, row by row like the regions.
    """
    check_tensor("centers", centers, layout="(batch, 2)")
    if centers.dim() != 2 or centers.shape[1] != 2:
        raise ValueError(f"expected centers of shape (batch, 2), got {tuple(centers.shape)}")
    for name, value in (("size", size), ("stride", stride), ("grid", grid)):
        check_positive_int(name, value)
    check_nonnegative_int("object_size", object_size)
    low, high = (edge.to(centers.device) for edge in _field_edges(grid, size, stride, first_centre))
    x, y = centers[:, :1].float(), centers[:, 1:].float()
    cols = (low <= x - object_size) & (x + object_size <= high)
    rows = (low <= y - object_size) & (y + object_size <= high)
    return (rows[:, :, None] & cols[:, None, :]).flatten(1)


def attention_density(
    maps: torch.Tensor,
    size: int = 31,
    stride: int = 16,
    first_centre: float = 0.0,
    image_size: int = 75,
) -> torch.Tensor:
    """Attention over regions drawn on the pixels the regions see: ``(B, grid * grid)`` maps
    -> ``(B, image_size, image_size)``, each region's weight spread evenly over the pixels
    of its receptive field that lie inside the image (see :func:`regions_seeing_object` for
    ``size``, ``stride`` and ``first_centre``). Each map keeps its total, so overlapping
    fields add up and the picture shows where the attended evidence can come from.
    """
    check_tensor("maps", maps, dtype="float", layout="(batch, regions)")
    if maps.dim() != 2:
        raise ValueError(f"expected maps of shape (batch, regions), got {tuple(maps.shape)}")
    grid = int(round(maps.shape[1] ** 0.5))
    if grid * grid != maps.shape[1]:
        raise ValueError(f"expected a square number of regions, got {maps.shape[1]}")
    for name, value in (("size", size), ("stride", stride), ("image_size", image_size)):
        check_positive_int(name, value)
    low, high = _field_edges(grid, size, stride, first_centre)
    pixels = torch.arange(image_size, dtype=torch.float32)
    inside = ((pixels[None, :] >= low[:, None]) & (pixels[None, :] <= high[:, None])).float()  # (grid, image_size)
    inside = inside / inside.sum(1, keepdim=True).clamp_min(1)  # spread evenly within the image, per axis
    inside = inside.to(maps.device, maps.dtype)
    weights = maps.view(-1, grid, grid)  # (B, row, col)
    return torch.einsum("brc,ry,cx->byx", weights, inside, inside)
