"""Notebook 02: why divide by sqrt(d), by moving d and switching the scaling on and off.

For ``samples`` random queries, each with ``num_keys`` random keys whose entries have mean
0 and variance 1, the explorer computes the scores ``q . k`` (divided by ``sqrt(d)`` when
scaling is on), their softmax and the gradient a random linear read-out sends back to
the scores: the three quantities notebook 02 measures. Left: the average softmax row,
keys sorted from the largest weight down (one bar near 1 = a saturated, almost one-hot
softmax). Right: the mean largest weight against ``d`` for both settings, with the
current one marked. Every ``d`` is computed once, up front, so moving a control only
redraws.
"""

from __future__ import annotations

import math

import torch

from ...validation import check_bool, check_choice, check_positive_int
from .base import Explorer

__all__ = ["ScalingExplorer", "explore_scaling", "saturation_statistics"]

DIMS = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def saturation_statistics(queries: torch.Tensor, keys: torch.Tensor, scaled: bool, generator=None) -> dict:
    """Score variance, mean largest weight, mean |gradient| on the scores and the mean
    sorted softmax row, for queries ``(N, d)`` against their keys ``(N, K, d)``."""
    dim = queries.shape[-1]
    scores = torch.einsum("nd,nkd->nk", queries, keys) / (math.sqrt(dim) if scaled else 1.0)
    scores.requires_grad_()
    weights = torch.softmax(scores, dim=-1)
    (weights * torch.randn(weights.shape, generator=generator)).sum().backward()
    return {
        "score variance": scores.detach().var().item(),
        "mean max weight": weights.detach().max(dim=-1).values.mean().item(),
        "mean |grad| on scores": scores.grad.abs().mean().item(),
        "sorted weights": weights.detach().sort(dim=-1, descending=True).values.mean(0),
    }


class ScalingExplorer(Explorer):
    """The dimension ``d`` and scaling on/off; the softmax's saturation follows."""

    def __init__(
        self,
        dims=DIMS,
        num_keys: int = 16,
        samples: int = 256,
        dim: int | None = None,
        scaled: bool = False,
        seed: int = 0,
    ):
        super().__init__(figsize=(11, 3.6))
        dims = tuple(dims)
        if not dims or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
            raise ValueError(f"dims={dims!r}: expected a non-empty list of positive ints")
        self.dims = tuple(sorted(set(dims)))
        self.num_keys = check_positive_int("num_keys", num_keys)
        check_positive_int("samples", samples)
        generator = torch.Generator().manual_seed(seed)
        largest = max(self.dims)
        # The first d entries of iid vectors are iid vectors of size d: one draw serves every d.
        queries = torch.randn(samples, largest, generator=generator)
        keys = torch.randn(samples, self.num_keys, largest, generator=generator)
        self.table = {
            (d, scaled_): saturation_statistics(queries[:, :d], keys[:, :, :d], scaled_, generator)
            for d in self.dims
            for scaled_ in (False, True)
        }
        dim = max(self.dims) if dim is None else dim
        self.state = {"dim": self.validate("dim", dim), "scaled": self.validate("scaled", scaled)}
        self._build()
        self.refresh()

    def validate(self, name, value):
        if name == "dim":
            return check_choice("dim", value, self.dims)
        return check_bool("scaled", value)

    def statistics(self) -> dict:
        """The measured quantities at the current ``d`` and scaling."""
        return self.table[(self.state["dim"], self.state["scaled"])]

    def _build(self) -> None:
        left, right = self.figure.subplots(1, 2)
        k = self.num_keys
        self.bars = left.bar(range(1, k + 1), [1 / k] * k, color="tab:blue", animated=True)
        left.axhline(1 / k, color="gray", linestyle=":", label=f"uniform 1/{k}")
        left.set_ylim(0, 1.05)
        left.set_xlabel("key, sorted by weight")
        left.set_ylabel("mean softmax weight")
        left.legend(loc="upper right")
        left.title.set_animated(True)
        for scaled, style in ((False, "o-"), (True, "s--")):
            right.semilogx(
                self.dims,
                [self.table[(d, scaled)]["mean max weight"] for d in self.dims],
                style,
                label="scaled (1/sqrt d)" if scaled else "unscaled",
            )
        (self.marker,) = right.plot([], [], "o", color="tab:red", markersize=12, fillstyle="none", animated=True)
        right.axhline(1 / k, color="gray", linestyle=":")
        right.set_xticks(self.dims, [str(d) for d in self.dims], fontsize=8)
        right.minorticks_off()
        right.set_ylim(0, 1.05)
        right.set_xlabel("vector size d")
        right.set_ylabel(f"largest weight (of {k} keys)")
        right.set_title("an unscaled softmax saturates as d grows")
        right.legend(loc="center right")
        self.left = left

    def draw(self) -> None:
        s, stats = self.state, self.statistics()
        for bar, weight in zip(self.bars, stats["sorted weights"].tolist(), strict=True):
            bar.set_height(weight)
        self.marker.set_data([s["dim"]], [stats["mean max weight"]])
        label = "scaled" if s["scaled"] else "unscaled"
        self.left.set_title(f"d = {s['dim']}, {label}: score variance {stats['score variance']:.3g}")
        self.status = (
            f"d = {s['dim']}, {label}: score variance {stats['score variance']:.3g}, mean largest weight "
            f"{stats['mean max weight']:.3f}, mean |gradient| on a score {stats['mean |grad| on scores']:.2e}"
        )

    def make_controls(self, widgets) -> list:
        style = {"description_width": "initial"}
        return [
            self.bind(
                widgets.SelectionSlider(
                    options=list(self.dims), value=self.state["dim"], description="vector size d", style=style
                ),
                "dim",
            ),
            self.bind(
                widgets.ToggleButton(
                    value=self.state["scaled"], description="divide by sqrt(d)", icon="check", style=style
                ),
                "scaled",
            ),
        ]


def explore_scaling(dims=DIMS, num_keys: int = 16, samples: int = 256, dim: int | None = None, scaled: bool = False):
    """Notebook 02's explorer: a slider for the vector size ``d`` (one of ``dims``; starts at
    ``dim``, default the largest) and a switch for the ``1/sqrt(d)`` scaling; shows the
    average softmax row and the largest weight against ``d``. Display it (the last line of
    a cell) to get the widget."""
    return ScalingExplorer(dims=dims, num_keys=num_keys, samples=samples, dim=dim, scaled=scaled)
