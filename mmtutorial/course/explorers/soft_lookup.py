"""Notebook 01: one query over a fixed set of keys; temperature and top-k move the weights.

Scores are the negative squared distance of notebook 01's soft lookup, ``-(q - k)^2 / 2``,
divided by the temperature ``T``; top-k keeps the ``k`` largest and gives the others a
weight of exactly 0. Left: each key's weight for the chosen query. Right: the value read
out for every query (the whole soft-lookup curve at this ``T`` and ``k``), with the
chosen query marked, next to the (key, value) pairs.
"""

from __future__ import annotations

import math

import torch

from ...attention import masked_softmax
from ...validation import check_float, check_int, check_tensor
from .base import Explorer

__all__ = ["SoftLookupExplorer", "explore_soft_lookup", "lookup_weights"]


def lookup_weights(queries: torch.Tensor, keys: torch.Tensor, temperature: float, top_k: int) -> torch.Tensor:
    """``(n_queries, n_keys)`` weights: softmax of ``-(q - k)^2 / 2T`` over the ``top_k``
    closest keys of each query, exactly 0 elsewhere (the package's masked softmax)."""
    scores = -((queries[:, None] - keys[None, :]) ** 2) / 2 / temperature
    kept = torch.zeros_like(scores, dtype=torch.bool).scatter(1, scores.topk(top_k, dim=1).indices, True)
    return masked_softmax(scores, kept)


class SoftLookupExplorer(Explorer):
    """Temperature, top-k and the query of a soft lookup; the weights and output follow."""

    def __init__(self, keys, values, query: float | None = None, temperature: float = 1.0, top_k: int | None = None):
        super().__init__(figsize=(11, 3.6))
        keys = check_tensor("keys", torch.as_tensor(keys), dtype="float", layout="(n_keys,)")
        values = check_tensor("values", torch.as_tensor(values), dtype="float", layout="(n_keys,)")
        if keys.dim() != 1 or values.shape != keys.shape or len(keys) < 2:
            raise ValueError(
                f"keys and values: expected two 1-D tensors of the same length >= 2, got shapes "
                f"{tuple(keys.shape)} and {tuple(values.shape)}"
            )
        self.keys, self.values = keys.detach().float().cpu(), values.detach().float().cpu()
        low, high = self.keys.min().item(), self.keys.max().item()
        margin = max(0.5, 0.1 * (high - low))
        self.query_range = (low - margin, high + margin)
        self.queries = torch.linspace(*self.query_range, 201)
        n = len(self.keys)
        self.state = {
            "query": (low + high) / 2 + 0.4 if query is None else query,
            "temperature": temperature,
            "top_k": n if top_k is None else top_k,
        }
        self.state = {name: self.validate(name, value) for name, value in self.state.items()}
        self._build()
        self.refresh()

    def validate(self, name, value):
        if name == "query":
            return check_float("query", value)
        if name == "temperature":
            return check_float("temperature", value, minimum=0.0, min_inclusive=False)
        return check_int("top_k", value, minimum=1, maximum=len(self.keys))

    def weights(self) -> torch.Tensor:
        """The chosen query's weight on each key."""
        s = self.state
        return lookup_weights(torch.tensor([s["query"]]), self.keys, s["temperature"], s["top_k"])[0]

    def output(self) -> float:
        """The value read out for the chosen query."""
        return float(self.weights() @ self.values)

    def _build(self) -> None:
        n = len(self.keys)
        left, right = self.figure.subplots(1, 2, width_ratios=(1, 1.4))
        self.bars = left.bar(range(n), torch.full((n,), 1 / n).numpy(), color="tab:blue", animated=True)
        left.set_xticks(range(n), [f"{k:.3g}" for k in self.keys.tolist()])
        left.set_ylim(0, 1.05)
        left.set_xlabel("key")
        left.set_ylabel("attention weight")
        left.title.set_animated(True)
        (self.curve,) = right.plot(
            self.queries, self.queries * 0, color="tab:red", label="value read out at this T and top-k", animated=True
        )
        right.scatter(self.keys, self.values, color="black", zorder=3, label="(key, value) pairs")
        self.marker = right.scatter([0.0], [0.0], color="tab:red", s=60, zorder=4, label="this query", animated=True)
        self.query_line = right.axvline(0.0, color="gray", linestyle=":", animated=True)
        low, high = self.values.min().item(), self.values.max().item()
        pad = max(0.25, 0.1 * (high - low))
        right.set_ylim(low - pad, high + pad)
        right.set_xlim(*self.query_range)
        right.set_xlabel("query")
        right.set_ylabel("value read out")
        right.set_title("the soft lookup for every query")
        right.legend(loc="upper left", fontsize=8)
        self.left = left

    def draw(self) -> None:
        s, n = self.state, len(self.keys)
        weights = self.weights()
        output = float(weights @ self.values)
        curve = lookup_weights(self.queries, self.keys, s["temperature"], s["top_k"]) @ self.values
        entropy = -(weights * weights.clamp_min(1e-12).log()).sum().item()
        for bar, weight in zip(self.bars, weights.tolist(), strict=True):
            bar.set_height(weight)
        self.left.set_title(f"query {s['query']:.2f}: entropy {entropy:.2f} (uniform {math.log(n):.2f})")
        self.curve.set_ydata(curve.numpy())
        self.marker.set_offsets([[s["query"], output]])
        self.query_line.set_xdata([s["query"], s["query"]])
        self.status = (
            f"query {s['query']:.2f}, T = {s['temperature']:.3g}, top-{s['top_k']} of {n} keys: "
            f"output {output:.3f}, largest weight {weights.max().item():.3f}"
        )

    def make_controls(self, widgets) -> list:
        s, style = self.state, {"description_width": "initial"}
        low, high = self.query_range
        return [
            self.bind(
                widgets.FloatSlider(
                    value=s["query"],
                    min=low,
                    max=high,
                    step=0.05,
                    description="query",
                    style=style,
                    continuous_update=True,
                ),
                "query",
            ),
            self.bind(
                widgets.FloatLogSlider(
                    value=s["temperature"],
                    base=10,
                    min=-2,
                    max=2,
                    step=0.05,
                    description="temperature T",
                    style=style,
                ),
                "temperature",
            ),
            self.bind(
                widgets.IntSlider(value=s["top_k"], min=1, max=len(self.keys), description="top-k", style=style),
                "top_k",
            ),
        ]


def explore_soft_lookup(keys, values, query: float | None = None, temperature: float = 1.0, top_k: int | None = None):
    """Notebook 01's explorer: a query over ``keys`` holding ``values``, with sliders for the
    query, the softmax temperature and top-k (default: every key). Display it (the last
    line of a cell) to get the widget, or its static figure in a headless run."""
    return SoftLookupExplorer(keys, values, query=query, temperature=temperature, top_k=top_k)
