"""Plots the notebooks share: attention heatmaps and a readable default style."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..validation import check_positive_int

__all__ = ["use_course_style", "plot_attention", "show_heatmaps", "plot_learning_path"]


def use_course_style() -> None:
    """Readable defaults for every figure in the course (size, fonts, grid)."""
    plt.rcParams.update(
        {
            "figure.figsize": (6.4, 4.0),
            "figure.dpi": 100,
            "axes.titlesize": 12,
            "axes.labelsize": 11,
            "axes.grid": False,
            "legend.frameon": False,
            "savefig.bbox": "tight",
        }
    )


def _as_matrix(weights, name: str = "weights") -> np.ndarray:
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().float().cpu().numpy()
    try:
        matrix = np.asarray(weights, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={weights!r:.60}: expected a 2-D (queries x keys) tensor or array of numbers") from None
    if matrix.ndim != 2:
        raise ValueError(f"expected {name} to be a 2-D (queries x keys) weight matrix, got shape {matrix.shape}")
    if matrix.size == 0:
        raise ValueError(f"{name} of shape {matrix.shape}: expected at least one query and one key")
    return matrix


def _check_cmap(cmap) -> None:
    if isinstance(cmap, str) and cmap not in matplotlib.colormaps:
        raise ValueError(f"cmap={cmap!r}: expected a matplotlib colormap name such as 'viridis' or 'magma'")


def plot_attention(
    weights,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str = "Attention weights",
    xlabel: str = "key",
    ylabel: str = "query",
    cmap: str = "viridis",
    annotate: bool | None = None,
    vmin: float | None = 0.0,
    vmax: float | None = None,
) -> Axes:
    """Heatmap of one attention matrix: a row per query, a column per key.

    Args:
        weights: ``(L_q, L_k)`` tensor or array.
        query_labels, key_labels: tick labels (default: positions).
        annotate: write each weight in its cell (default: only for small matrices).
    """
    matrix = _as_matrix(weights)
    _check_cmap(cmap)
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax={ax!r:.60}: expected None or a matplotlib Axes")
    n_q, n_k = matrix.shape
    for name, labels, n in (("query_labels", query_labels, n_q), ("key_labels", key_labels, n_k)):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{name} has {len(labels)} labels but the matrix has {n} of that axis")
    if ax is None:
        size = (min(max(3.0, 0.5 * n_k + 2), 7.0), min(max(2.5, 0.4 * n_q + 1.5), 5.5))
        _, ax = plt.subplots(figsize=size, layout="constrained")
    image = ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="weight")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if key_labels is not None or n_k <= 20:
        ax.set_xticks(range(n_k), key_labels if key_labels is not None else range(n_k))
    if query_labels is not None or n_q <= 20:
        ax.set_yticks(range(n_q), query_labels if query_labels is not None else range(n_q))
    if annotate or (annotate is None and n_q * n_k <= 64):
        top = matrix.max() if matrix.size else 1.0
        for i in range(n_q):
            for j in range(n_k):
                color = "black" if matrix[i, j] > 0.6 * top else "white"
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=8, color=color)
    return ax


def show_heatmaps(
    matrices: Sequence,
    titles: Sequence[str] | None = None,
    xlabel: str = "key",
    ylabel: str = "query",
    suptitle: str | None = None,
    ncols: int | None = None,
    cmap: str = "viridis",
    share_scale: bool = True,
) -> Figure:
    """A grid of attention heatmaps (e.g. one per head) with a shared colour scale."""
    mats = [_as_matrix(m, f"matrices[{i}]") for i, m in enumerate(matrices)]
    if not mats:
        raise ValueError("matrices=[]: show_heatmaps needs at least one matrix")
    if titles is not None and len(titles) != len(mats):
        raise ValueError(f"got {len(titles)} titles for {len(mats)} matrices")
    _check_cmap(cmap)
    ncols = min(len(mats), 4) if ncols is None else check_positive_int("ncols", ncols)
    nrows = -(-len(mats) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.6 * ncols + 1, 3.2 * nrows + 0.4), squeeze=False, layout="constrained"
    )
    vmax = max(float(m.max()) for m in mats) if share_scale else None
    image = None
    for index, ax in enumerate(axes.flat):
        if index >= len(mats):
            ax.axis("off")
            continue
        image = ax.imshow(mats[index], cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
        n_q, n_k = mats[index].shape
        if n_k <= 20:
            ax.set_xticks(range(n_k))
        if n_q <= 20:
            ax.set_yticks(range(n_q))
        ax.set_title(titles[index] if titles else f"#{index}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.9, label="weight")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_learning_path(lessons, available: set[int] | None = None, per_row: int = 4) -> Figure:
    """Draw the course as a snake of boxes, one per lesson, coloured by part.

    Args:
        lessons: sequence of :class:`mmtutorial.course.Lesson`.
        available: numbers of the lessons whose notebook exists (others drawn hollow).
    """
    if not lessons:
        raise ValueError("lessons=[]: expected at least one lesson (e.g. mmtutorial.course.COURSE)")
    check_positive_int("per_row", per_row)
    parts = list(dict.fromkeys(lesson.part for lesson in lessons))
    colors = dict(zip(parts, plt.cm.tab10.colors, strict=False))
    n_rows = -(-len(lessons) // per_row)
    fig, ax = plt.subplots(figsize=(3.2 * per_row, 1.5 * n_rows + 0.8))
    centers = []
    for index, lesson in enumerate(lessons):
        row, col = divmod(index, per_row)
        col = col if row % 2 == 0 else per_row - 1 - col  # snake: read it like a path
        x, y = col * 3.2, -row * 1.5
        centers.append((x, y))
        ready = available is None or lesson.number in available
        ax.add_patch(
            plt.Rectangle(
                (x - 1.4, y - 0.5),
                2.8,
                1.0,
                facecolor=colors[lesson.part] if ready else "white",
                edgecolor=colors[lesson.part],
                linewidth=2,
                alpha=0.85 if ready else 1.0,
            )
        )
        label = f"{lesson.number:02d} · " + textwrap.fill(lesson.title, 22)
        ax.text(x, y, label if ready else label + "\n(coming)", ha="center", va="center", fontsize=9)
    for (x0, y0), (x1, y1) in zip(centers, centers[1:], strict=False):
        if y0 == y1:
            start, end = (x0 + 1.4 * np.sign(x1 - x0), y0), (x1 - 1.4 * np.sign(x1 - x0), y1)
        else:
            start, end = (x0, y0 - 0.5), (x1, y1 + 0.5)
        ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "lw": 1.5})
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[p]) for p in parts]
    ax.legend(handles, parts, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(parts))
    ax.set_xlim(-1.6, 3.2 * (per_row - 1) + 1.6)
    ax.set_ylim(-1.5 * (n_rows - 1) - 0.7, 0.7)
    ax.set_title("The learning path (filled: notebook available, hollow: coming)")
    ax.axis("off")
    return fig
