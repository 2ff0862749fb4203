"""What the cross-attention head's distance-biased hop does, question family by family.

Whether the second hop learns to look *near* or *far* from the object the first hop found
decides the closest/furthest accuracy (notebook 09), and it is learned on some seeds and
not on others. :func:`distance_hop_statistics` measures, per family, the numbers that tell
a learned hop from a lost one: the ``w`` (distance) and ``u`` (the found object) terms of
:class:`~mmtutorial.models.vqa_heads.DistanceBiasedHop`, how sharply the first hop finds a
region, and how much of the second hop's weight stays on that region.

Example::

    stats = distance_hop_statistics(model, val.batches(16, by_image=True))
    stats["closest shape"]["w"]  # negative once the hop looks near
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from ..data.sort_of_clevr import FAMILY_NAMES
from ..training import to_device
from .vqa_heads import DistanceBiasedHop

__all__ = ["distance_hop_statistics", "HOP_STATISTICS"]

#: The per-family means :func:`distance_hop_statistics` returns.
HOP_STATISTICS = ("acc", "w", "u", "hop1_peak", "hop2_peak", "hop2_on_found")


@torch.no_grad()
def distance_hop_statistics(
    model: nn.Module, batches: Iterable[Mapping[str, Any]], *, device: torch.device | str = "cpu"
) -> dict[str, dict[str, float]]:
    """Per question family (``"shape"``, ``"closest shape"``, ...; families absent from
    ``batches`` are left out), the means over its questions of:

    - ``acc``: accuracy;
    - ``w``, ``u``: the first distance-biased hop's terms (averaged over its heads);
    - ``hop1_peak``: the largest weight of the hop before it (how sharply it found a region);
    - ``hop2_peak``: the distance-biased hop's largest weight;
    - ``hop2_on_found``: the distance-biased hop's weight on the region the hop before
      weighted most (near 1: it stays on the object already found).

    The model is evaluated in eval mode without gradients and left in the mode it was in;
    nothing it holds changes, so probing during training does not change the training.
    """
    hops = [m for m in model.modules() if isinstance(m, DistanceBiasedHop)]
    if not hops:
        raise ValueError("distance_hop_statistics needs a cross_attention head with distance_bias=True")
    was_training = model.training
    model.eval()
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, int] = {}
    try:
        for batch in batches:
            batch = to_device(batch, device)
            logits, maps = model(batch, return_attention=True)
            names = list(maps)
            first, second = maps[names[0]], maps[names[1]]  # (B, N) each: hop 1 and the first biased hop
            found = first.argmax(-1, keepdim=True)
            w, u = hops[0].bias_terms.float().mean(1).unbind(-1)
            per_question = torch.stack(
                [
                    (logits.argmax(-1) == batch["answer"]).float(),
                    w,
                    u,
                    first.amax(-1),
                    second.amax(-1),
                    second.gather(-1, found)[:, 0],
                ],
                -1,
            ).cpu()
            for family in batch["family"].unique().tolist():
                rows = per_question[(batch["family"] == family).cpu()]
                sums[family] = sums.get(family, 0) + rows.sum(0)
                counts[family] = counts.get(family, 0) + len(rows)
    finally:
        model.train(was_training)
    return {
        FAMILY_NAMES[family]: {
            name: round(float(value) / counts[family], 4)
            for name, value in zip(HOP_STATISTICS, sums[family], strict=True)
        }
        for family in sorted(sums)
    }
