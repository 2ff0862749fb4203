"""Notebook 05: window size, global tokens and block pattern; the mask and its measured cost.

Left: the pattern's mask over a short sequence (bright = may attend), as notebook 05
draws it. Right: the cost of the same pattern on a long sequence, relative to full
attention (1 = the cost of attending everywhere): the fraction of the ``L x L`` scores it
keeps (what an ideal sparse kernel computes), the fraction of ``128 x 128`` blocks with
any kept score (what a block-skipping kernel such as FlexAttention computes), and two
measured times: the dense mask handed to ``scaled_dot_product_attention`` (every score
computed, then most thrown away) and the kept blocks only, gathered block by block in
plain PyTorch (the idea of FlexAttention, without its compiler).
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from ...attention import BlockSparse, GlobalLocal, SlidingWindow
from ...validation import check_choice, check_int
from .base import Explorer

__all__ = ["SparsePatternExplorer", "explore_sparse_patterns", "block_skipping_attention", "PATTERNS"]

PATTERNS = ("sliding window", "global + local", "block-sparse")
BLOCK = 128  # FlexAttention's block size


def kept_blocks(mask: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """``(n_blocks, n_blocks)`` booleans: which ``block x block`` tiles of ``mask`` keep a score."""
    length = mask.shape[-1]
    n = math.ceil(length / block)
    padded = F.pad(mask, (0, n * block - length, 0, n * block - length))
    return padded.view(n, block, n, block).any(dim=3).any(dim=1)


def _plan(mask: torch.Tensor, block: int = BLOCK) -> list[tuple[slice, torch.Tensor, torch.Tensor]]:
    """Per block of queries: its rows, the key positions of its kept blocks, and their mask."""
    length, keep = mask.shape[-1], kept_blocks(mask, block)
    plan = []
    for i in range(keep.shape[0]):
        rows = slice(i * block, min(length, (i + 1) * block))
        columns = torch.cat(
            [torch.arange(j * block, min(length, (j + 1) * block)) for j in keep[i].nonzero().flatten().tolist()]
        )
        plan.append((rows, columns, mask[rows][:, columns]))
    return plan


def block_skipping_attention(query, key, value, mask: torch.Tensor, block: int = BLOCK, plan=None) -> torch.Tensor:
    """Attention restricted to ``mask`` that computes only the ``block x block`` tiles
    holding a kept score (every query must keep at least one key). Equal to
    ``scaled_dot_product_attention(query, key, value, attn_mask=mask)``."""
    plan = _plan(mask, block) if plan is None else plan
    out = query.new_empty(*query.shape[:-1], value.shape[-1])
    for rows, columns, part in plan:
        out[:, :, rows] = F.scaled_dot_product_attention(
            query[:, :, rows], key[:, :, columns], value[:, :, columns], attn_mask=part
        )
    return out


def _best_time(fn, repeats: int = 3) -> float:
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


class SparsePatternExplorer(Explorer):
    """A sparse attention pattern, drawn and measured."""

    def __init__(
        self,
        pattern: str = "sliding window",
        window: int = 4,
        num_global: int = 2,
        block_size: int = 8,
        stride: int = 3,
        local_blocks: int = 1,
        draw_length: int = 64,
        cost_length: int = 1024,
        heads: int = 1,
        head_dim: int = 64,
        seed: int = 0,
    ):
        super().__init__(figsize=(11, 4.2))
        self.draw_length = check_int("draw_length", draw_length, minimum=2, maximum=512)
        check_int("heads", heads, minimum=1)
        check_int("head_dim", head_dim, minimum=1)
        self.heads, self.head_dim, self.seed = heads, head_dim, seed
        self.state = {
            "pattern": pattern,
            "window": window,
            "num_global": num_global,
            "block_size": block_size,
            "stride": stride,
            "local_blocks": local_blocks,
            "cost_length": cost_length,
        }
        self.state = {name: self.validate(name, value) for name, value in self.state.items()}
        self._qkv: dict[int, list[torch.Tensor]] = {}
        self.costs: dict[str, float] = {}
        self.times_ms: dict[str, float] = {}
        self._build()
        self.refresh()

    def validate(self, name, value):
        if name == "pattern":
            return check_choice("pattern", value, PATTERNS)
        if name == "cost_length":
            return check_choice("cost_length", value, (256, 512, 1024, 2048))
        if name == "block_size":
            return check_choice("block_size", value, (2, 4, 8, 16, 32, 64))
        limits = {"window": (0, 512), "num_global": (0, 64), "stride": (1, 64), "local_blocks": (1, 16)}
        return check_int(name, value, minimum=limits[name][0], maximum=limits[name][1])

    def pattern(self):
        """The current :class:`~mmtutorial.attention.AttentionPattern`."""
        s = self.state
        if s["pattern"] == "sliding window":
            return SlidingWindow(s["window"])
        if s["pattern"] == "global + local":
            return GlobalLocal(s["window"], s["num_global"])
        return BlockSparse(s["block_size"], s["local_blocks"], s["stride"])

    def _inputs(self, length: int) -> list[torch.Tensor]:
        if length not in self._qkv:
            generator = torch.Generator().manual_seed(self.seed)
            self._qkv[length] = [
                torch.randn(1, self.heads, length, self.head_dim, generator=generator) for _ in range(3)
            ]
        return self._qkv[length]

    def measure(self) -> dict[str, float]:
        """The pattern's cost at ``cost_length``, relative to full attention (see the module)."""
        length, pattern = self.state["cost_length"], self.pattern()
        mask = pattern.dense_mask(length)
        q, k, v = self._inputs(length)
        plan = _plan(mask)
        with torch.inference_mode():
            full = _best_time(lambda: F.scaled_dot_product_attention(q, k, v))
            dense = _best_time(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
            blocks = _best_time(lambda: block_skipping_attention(q, k, v, mask, plan=plan))
        self.times_ms = {"full": 1e3 * full, "dense mask": 1e3 * dense, "kept blocks only": 1e3 * blocks}
        return {
            "scores kept": mask.float().mean().item(),
            "128-blocks kept": kept_blocks(mask).float().mean().item(),
            "time: dense mask": dense / full,
            "time: kept blocks only": blocks / full,
        }

    LIMIT = 3.0  # the cost axis ends here; a longer bar is cut and labelled

    def _build(self) -> None:
        left, right = self.figure.subplots(1, 2, width_ratios=(1, 1.5))
        n = self.draw_length
        self.mask_image = left.imshow(
            torch.zeros(n, n).numpy(), cmap="magma", vmin=0, vmax=1, interpolation="nearest", animated=True
        )
        left.set_xlabel("key position")
        left.set_ylabel("query position")
        left.title.set_animated(True)
        names = ["scores kept", "128-blocks kept", "time: dense mask", "time: kept blocks only"]
        colors = ["tab:gray", "tab:gray", "tab:orange", "tab:green"]
        self.cost_bars = right.barh(range(4), [0.0] * 4, color=colors, animated=True)
        self.cost_labels = [right.text(0, i, "", va="center", fontsize=9, animated=True) for i in range(4)]
        right.set_yticks(range(4), names)
        right.invert_yaxis()
        right.axvline(1.0, color="black", linestyle=":", label="full attention")
        right.set_xlim(0, self.LIMIT)
        right.set_xlabel("relative to full attention (1 = attend everywhere)")
        right.legend(loc="lower right")
        right.title.set_animated(True)
        self.left, self.right = left, right

    def draw(self) -> None:
        s, pattern = self.state, self.pattern()
        self.mask_image.set_data(pattern.dense_mask(self.draw_length).float().numpy())
        self.left.set_title(f"{s['pattern']}, {self.draw_length} tokens")
        self.costs = self.measure()
        for i, (bar, (name, value)) in enumerate(zip(self.cost_bars, self.costs.items(), strict=True)):
            bar.set_width(min(value, self.LIMIT))
            unit = f" ({self.times_ms[name.split(': ')[1]]:.1f} ms)" if name.startswith("time") else ""
            self.cost_labels[i].set_text(f" {value:.3g}{unit}")
            self.cost_labels[i].set_x(min(value, self.LIMIT * 0.75))
        self.right.set_title(f"cost at L = {s['cost_length']} (full attention: {self.times_ms['full']:.1f} ms)")
        self.status = (
            f"{pattern}: keeps {self.costs['scores kept']:.1%} of the scores and "
            f"{self.costs['128-blocks kept']:.0%} of the 128-blocks at L = {s['cost_length']}; dense mask "
            f"{self.times_ms['dense mask']:.1f} ms, kept blocks only {self.times_ms['kept blocks only']:.1f} ms, "
            f"full attention {self.times_ms['full']:.1f} ms"
        )
        self._enable_controls()

    def _enable_controls(self) -> None:
        if not self.controls:
            return
        uses = {
            "sliding window": {"window"},
            "global + local": {"window", "num_global"},
            "block-sparse": {"block_size", "stride", "local_blocks"},
        }[self.state["pattern"]]
        for name in ("window", "num_global", "block_size", "stride", "local_blocks"):
            self.controls[name].disabled = name not in uses

    def make_controls(self, widgets) -> list:
        s, style = self.state, {"description_width": "initial"}
        controls = [
            self.bind(widgets.Dropdown(options=PATTERNS, value=s["pattern"], description="pattern"), "pattern"),
            self.bind(
                widgets.IntSlider(value=s["window"], min=0, max=32, description="window w", style=style), "window"
            ),
            self.bind(
                widgets.IntSlider(value=s["num_global"], min=0, max=8, description="global tokens", style=style),
                "num_global",
            ),
            self.bind(
                widgets.Dropdown(options=[4, 8, 16, 32], value=s["block_size"], description="block", style=style),
                "block_size",
            ),
            self.bind(widgets.IntSlider(value=s["stride"], min=1, max=8, description="stride", style=style), "stride"),
            self.bind(
                widgets.IntSlider(value=s["local_blocks"], min=1, max=4, description="local blocks", style=style),
                "local_blocks",
            ),
            self.bind(
                widgets.Dropdown(
                    options=[256, 512, 1024], value=s["cost_length"], description="cost at L", style=style
                ),
                "cost_length",
            ),
        ]
        self._enable_controls()
        return controls


def explore_sparse_patterns(pattern: str = "sliding window", window: int = 4, num_global: int = 2, **options):
    """Notebook 05's explorer: choose a pattern (``"sliding window"``, ``"global + local"``,
    ``"block-sparse"``) and its window, global tokens and blocks; see its mask and its cost
    measured at ``cost_length`` tokens (default 1024). Display it to get the widget."""
    return SparsePatternExplorer(pattern=pattern, window=window, num_global=num_global, **options)
