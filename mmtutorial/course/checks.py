"""Self-checks for the notebooks' exercises.

Each ``check_*`` function calls the learner's function on a few named cases and
compares with a reference computed independently (PyTorch built-ins or a direct
formula). On success it prints one line; on failure it raises
:class:`ExerciseCheckError` naming the case, what was expected and what came back,
so the learner knows where to look instead of seeing a bare ``AssertionError``. A
function that still raises ``NotImplementedError`` (the stub of the student edition,
see :mod:`mmtutorial.course.classroom`) is reported as a ``NotImplementedError`` with the
stub's hint, not as a wrong answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

# __all__ is derived at the end: the helpers below and every check_* function.


class ExerciseCheckError(AssertionError):
    """An exercise's answer did not match; the message says which case and how."""


@dataclass
class Case:
    """One input to try: a name a learner understands, arguments, expected result."""

    name: str
    args: tuple
    expected: Any
    kwargs: dict = field(default_factory=dict)
    atol: float = 1e-5


def _preview(t: torch.Tensor) -> str:
    flat = t.detach().flatten()[:6].tolist()
    text = ", ".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in flat)
    return f"[{text}{', ...' if t.numel() > 6 else ''}]"


def _as_number(got: Any) -> float | None:
    """``got`` as a Python number if it is one (int, float, NumPy scalar, 0-d tensor)."""
    if isinstance(got, bool):
        return None
    if isinstance(got, torch.Tensor):
        return got.item() if got.numel() == 1 and got.dim() == 0 and not got.dtype == torch.bool else None
    if isinstance(got, (int, float)) or (hasattr(got, "item") and getattr(got, "shape", None) == ()):
        value = got.item() if hasattr(got, "item") else got
        return None if isinstance(value, bool) else value
    return None


def _compare_tensor(expected: torch.Tensor, got: Any, atol: float) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"expected a torch.Tensor, got {type(got).__name__}"
    if got.shape != expected.shape:
        return f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
    if expected.dtype == torch.bool:
        if got.dtype != torch.bool:
            return f"expected a boolean tensor, got dtype {got.dtype}"
        if not torch.equal(got, expected):
            wrong = (got != expected).nonzero()[0].tolist()
            return f"expected {_preview(expected)}, got {_preview(got)} (first wrong entry at {wrong})"
        return None
    if not got.is_floating_point():
        return f"expected a floating-point tensor, got dtype {got.dtype}"
    got = got.detach().to(expected.dtype)
    if not torch.isfinite(got).all():
        return f"the result contains NaN or inf: {_preview(got)}"
    diff = (got - expected).abs()
    if diff.numel() and diff.max() > atol:
        index = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
        return (
            f"values differ (max abs diff {diff.max().item():.3g} at index {index}): "
            f"expected {_preview(expected)}, got {_preview(got)}"
        )
    return None


def compare(expected: Any, got: Any, atol: float = 1e-5) -> str | None:
    """How ``got`` differs from ``expected``, or None when it is right.

    Tensors (shape, dtype kind, values within ``atol``), numbers (within ``atol``, of
    any numeric type: int, float, NumPy scalar, 0-d tensor), booleans, strings,
    sequences (element by element) and dicts (same keys, then value by value).
    """
    if isinstance(expected, torch.Tensor):
        return _compare_tensor(expected, got, atol)
    if isinstance(expected, bool):
        value = got.item() if isinstance(got, torch.Tensor) and got.numel() == 1 else got
        if not isinstance(value, bool) and type(value).__name__ != "bool_":
            return f"expected True or False, got {type(got).__name__}"
        return None if bool(value) == expected else f"expected {expected}, got {bool(value)}"
    if isinstance(expected, (int, float)):
        value = _as_number(got)
        if value is None:
            return f"expected a number, got {type(got).__name__}"
        if not math.isfinite(value):
            return f"expected a finite number, got {value}"
        return None if abs(value - expected) <= atol else f"expected {expected:.6g}, got {value:.6g}"
    if isinstance(expected, str):
        return None if got == expected else f"expected {expected!r}, got {got!r}"
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return f"expected a dict, got {type(got).__name__}"
        if set(got) != set(expected):
            return f"expected the keys {sorted(expected, key=str)}, got {sorted(got, key=str)}"
        for key in expected:
            problem = compare(expected[key], got[key], atol)
            if problem:
                return f"at key {key!r}: {problem}"
        return None
    if isinstance(expected, Sequence):
        if isinstance(got, (str, bytes)) or not isinstance(got, Sequence):
            return f"expected a sequence of {len(expected)}, got {type(got).__name__}"
        if len(got) != len(expected):
            return f"expected {len(expected)} items, got {len(got)}"
        for i, (want, have) in enumerate(zip(expected, got, strict=True)):
            problem = compare(want, have, atol)
            if problem:
                return f"item {i}: {problem}"
        return None
    return None if got == expected else f"expected {expected!r}, got {got!r}"


def not_implemented(exercise: str, stub: NotImplementedError) -> NotImplementedError:
    """The error a check raises for a stub: still a ``NotImplementedError`` (an
    unfinished exercise is not a wrong answer), carrying the stub's own hint."""
    hint = str(stub) or "replace the `raise NotImplementedError` with your code"
    return NotImplementedError(f"{exercise}: not implemented yet - {hint}")


def run_cases(exercise: str, fn: Callable, cases: list[Case]) -> None:
    """Run ``fn`` on every case; print a tick or raise :class:`ExerciseCheckError`."""
    if not callable(fn):
        raise ExerciseCheckError(f"{exercise}: expected a function, got {type(fn).__name__}")
    for case in cases:
        try:
            got = fn(*case.args, **case.kwargs)
        except NotImplementedError as stub:
            raise not_implemented(exercise, stub) from None
        except Exception as error:  # show the learner's own error in context
            raise ExerciseCheckError(
                f"{exercise}, case '{case.name}': your function raised {type(error).__name__}: {error}"
            ) from error
        problem = compare(case.expected, got, case.atol)
        if problem:
            raise ExerciseCheckError(f"{exercise}, case '{case.name}': {problem}")
    print(f"✓ {exercise}: all {len(cases)} cases passed")


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- notebook 00 ------------------------------------------------------------------


def check_softmax(fn: Callable) -> None:
    """Exercise: ``fn(x) -> softmax(x)`` over the last dim, stable for large inputs."""
    g = _generator(0)
    x = torch.randn(3, 5, generator=g)
    cases = [
        Case("a vector", (x[0],), torch.softmax(x[0], -1)),
        Case("a batch of rows", (x,), torch.softmax(x, -1)),
        Case("equal scores give equal weights", (torch.zeros(4),), torch.full((4,), 0.25)),
        Case(
            "large scores (subtract the max first)",
            (torch.tensor([1000.0, 1001.0, 1002.0]),),
            torch.softmax(torch.tensor([0.0, 1.0, 2.0]), -1),
        ),
    ]
    run_cases("softmax", fn, cases)


# --- notebook 01 ------------------------------------------------------------------


def _gaussian_reference(queries: torch.Tensor, keys: torch.Tensor, bandwidth: float) -> torch.Tensor:
    distances = queries[:, None] - keys[None, :]
    return torch.softmax(-(distances**2) / (2 * bandwidth**2), dim=1)


def check_gaussian_kernel_weights(fn: Callable) -> None:
    """Exercise: ``fn(queries (n_q,), keys (n_k,), bandwidth) -> weights (n_q, n_k)``,
    the Nadaraya–Watson weights :math:`\\mathrm{softmax}_j(-(q_i-k_j)^2 / 2h^2)`."""
    g = _generator(1)
    q, k = torch.rand(5, generator=g) * 5, torch.rand(7, generator=g) * 5
    cases = [
        Case("5 queries, 7 keys, h=1", (q, k, 1.0), _gaussian_reference(q, k, 1.0)),
        Case("narrow bandwidth h=0.1", (q, k, 0.1), _gaussian_reference(q, k, 0.1)),
        Case("wide bandwidth h=10", (q, k, 10.0), _gaussian_reference(q, k, 10.0)),
        Case("one query", (q[:1], k, 0.5), _gaussian_reference(q[:1], k, 0.5)),
    ]
    run_cases("gaussian_kernel_weights", fn, cases)


def _topk_reference(scores: torch.Tensor, k: int) -> torch.Tensor:
    top = scores.topk(k, dim=-1)
    kept = torch.full_like(scores, -math.inf).scatter(-1, top.indices, top.values)
    return torch.softmax(kept, dim=-1)


def check_topk_attention(fn: Callable) -> None:
    """Exercise: ``fn(scores (..., n_k), k) -> weights``: softmax over the k largest
    scores of each row, exactly 0 for the others."""
    g = _generator(2)
    scores = torch.randn(3, 6, generator=g)
    cases = [
        Case("k=2", (scores, 2), _topk_reference(scores, 2)),
        Case("k=1 is hard attention (one-hot)", (scores, 1), _topk_reference(scores, 1)),
        Case("k = all keys is plain softmax", (scores, 6), torch.softmax(scores, -1)),
        Case("batched 3-D scores", (scores.view(1, 3, 6), 3), _topk_reference(scores.view(1, 3, 6), 3)),
    ]
    run_cases("topk_attention", fn, cases)


def check_softmax_with_temperature(fn: Callable) -> None:
    """Exercise: ``fn(scores, temperature) -> softmax(scores / temperature)`` over the last dim."""
    g = _generator(3)
    scores = torch.randn(4, 5, generator=g) * 3
    cases = [
        Case("T=1 is plain softmax", (scores, 1.0), torch.softmax(scores, -1)),
        Case("T=0.1 sharpens", (scores, 0.1), torch.softmax(scores / 0.1, -1)),
        Case("T=10 flattens", (scores, 10.0), torch.softmax(scores / 10.0, -1)),
        Case("large scores stay finite", (scores * 100, 0.5), torch.softmax(scores * 200, -1)),
    ]
    run_cases("softmax_with_temperature", fn, cases)


# --- notebook 02 ------------------------------------------------------------------


def check_scaled_dot_product_attention(fn: Callable) -> None:
    """Exercise: ``fn(q (..., L_q, d), k (..., L_k, d), v (..., L_k, d_v)) -> output``,
    compared with :func:`torch.nn.functional.scaled_dot_product_attention`."""
    g = _generator(4)
    q, k, v = (torch.randn(2, 4, 8, generator=g) for _ in range(3))
    q_big = torch.randn(2, 3, 64, generator=g) * 4
    k_big = torch.randn(2, 5, 64, generator=g) * 4
    v_small = torch.randn(2, 5, 3, generator=g)
    cases = [
        Case("square: 4 queries, 4 keys, d=8", (q, k, v), F.scaled_dot_product_attention(q, k, v)),
        Case(
            "3 queries, 5 keys, d=64, d_v=3 (is the scale 1/sqrt(d)?)",
            (q_big, k_big, v_small),
            F.scaled_dot_product_attention(q_big, k_big, v_small),
        ),
        Case(
            "4-D input (batch, heads, length, d)",
            (q.view(1, 2, 4, 8), k.view(1, 2, 4, 8), v.view(1, 2, 4, 8)),
            F.scaled_dot_product_attention(q.view(1, 2, 4, 8), k.view(1, 2, 4, 8), v.view(1, 2, 4, 8)),
        ),
    ]
    run_cases("scaled_dot_product_attention", fn, cases)


def check_causal_mask(fn: Callable) -> None:
    """Exercise: ``fn(n) -> (n, n)`` boolean mask, True where query i may see key j (j <= i)."""
    cases = [Case(f"n={n}", (n,), torch.ones(n, n, dtype=torch.bool).tril()) for n in (1, 2, 5)]
    run_cases("causal_mask", fn, cases)


def _masked_softmax_reference(scores: torch.Tensor, valid_lens: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(scores)
    for b in range(scores.shape[0]):
        n = int(valid_lens[b])
        if n > 0:
            out[b, :, :n] = torch.softmax(scores[b, :, :n], dim=-1)
    return out


def check_masked_softmax(fn: Callable) -> None:
    """Exercise: ``fn(scores (B, L_q, L_k), valid_lens (B,)) -> weights``: softmax over
    the first ``valid_lens[b]`` keys, exactly 0 beyond, all-zero rows if ``valid_lens[b]==0``."""
    g = _generator(5)
    scores = torch.randn(3, 2, 4, generator=g)
    cases = [
        Case("no padding", (scores, torch.tensor([4, 4, 4])), torch.softmax(scores, -1)),
        Case(
            "padding: lengths 2, 3, 1",
            (scores, torch.tensor([2, 3, 1])),
            _masked_softmax_reference(scores, torch.tensor([2, 3, 1])),
        ),
        Case(
            "an empty sequence (length 0) must give zeros, not NaN",
            (scores, torch.tensor([0, 4, 2])),
            _masked_softmax_reference(scores, torch.tensor([0, 4, 2])),
        ),
    ]
    run_cases("masked_softmax", fn, cases)


# --- notebook 03 ------------------------------------------------------------------


def _scene_cases(question_type: int, subtype: int, count: int = 6) -> list[tuple]:
    """(objects, colour, answer text) for a few freshly generated Sort-of-CLEVR questions."""
    from ..data.sort_of_clevr import SortOfClevr

    data = SortOfClevr("val", tokenizer=None, use_cache=False, n_train=0, n_val=30, n_test=0, data_seed=11)
    rows = [i for i in range(len(data)) if data.qtype[i] == question_type and data.subtype[i] == subtype][:count]
    return [(data[i]["objects"], data[i]["target"], data.answers[data[i]["answer"]], data.text(i)) for i in rows]


def check_count_same_shape(fn: Callable) -> None:
    """Exercise: ``fn(objects (k, 4), color) -> int``: how many objects share the shape of
    the object of that colour (counting it), from the scene graph rows (colour, shape, x, y)."""
    cases = [Case(text, (objects, color), int(answer)) for objects, color, answer, text in _scene_cases(1, 2)]
    run_cases("count_same_shape", fn, cases)


def check_closest_object(fn: Callable) -> None:
    """Exercise: ``fn(objects (k, 4), color) -> int``: the colour index of the object whose
    centre is closest to the centre of the object of colour ``color``."""
    cases = []
    for objects, color, _, text in _scene_cases(1, 0):
        distances = torch.cdist(objects[:, 2:].double(), objects[color : color + 1, 2:].double())[:, 0]
        distances[color] = float("inf")
        cases.append(Case(text, (objects, color), int(distances.argmin())))
    run_cases("closest_object", fn, cases)


def check_snr_db(fn: Callable) -> None:
    """Exercise: ``fn(clean, noisy) -> float``: the signal-to-noise ratio in decibels,
    :math:`10 \\log_{10}(P_{clean} / P_{noise})` with :math:`P` the mean squared amplitude."""
    g = _generator(6)
    clean = torch.sin(torch.linspace(0, 200, 16000))
    cases = []
    for snr in (20.0, 0.0, -10.0):
        noise = torch.randn(16000, generator=g)
        noise = noise * torch.sqrt(clean.pow(2).mean() / noise.pow(2).mean() / 10 ** (snr / 10))
        cases.append(Case(f"SNR {snr:g} dB", (clean, clean + noise), snr, atol=1e-3))
    run_cases("snr_db", fn, cases)


# --- notebook 04 ------------------------------------------------------------------


def check_sinusoidal_table(fn: Callable) -> None:
    """Exercise: ``fn(length, dim) -> (length, dim)`` sinusoidal positional encodings:
    sin at even dims, cos at odd dims, of ``position * 10000^(-2i/dim)``."""
    from ..attention import sinusoidal_table

    cases = [
        Case(f"length={n}, dim={d}", (n, d), sinusoidal_table(n, d), atol=1e-4) for n, d in ((4, 4), (50, 16), (10, 64))
    ]
    run_cases("sinusoidal_table", fn, cases)


def check_post_norm_block(fn: Callable) -> None:
    """Exercise: ``fn(x, block) -> Tensor``: the post-norm encoder block written out with
    ``block.self_attn``, ``block.linear1``, ``block.linear2``, ``block.norm1``, ``block.norm2``
    (eval mode, no dropout), compared with ``block(x)``."""
    from ..attention import TransformerEncoderBlock

    torch.manual_seed(0)
    block = TransformerEncoderBlock(16, 4, ff_dim=32, dropout=0.0).eval()
    g = _generator(7)
    cases = [
        Case(f"batch of {b} sequences of {n} tokens", (torch.randn(b, n, 16, generator=g), block), None)
        for b, n in ((1, 3), (2, 5))
    ]
    for case in cases:
        with torch.no_grad():
            case.expected = block(case.args[0])
    with torch.no_grad():
        run_cases("post_norm_block", fn, cases)


def check_sequence_accuracy(fn: Callable) -> None:
    """Exercise: ``fn(logits (B, L, C), targets (B, L)) -> float``: the fraction of
    sequences whose every position is predicted correctly."""
    targets = torch.tensor([[1, 2, 3], [0, 0, 1], [2, 2, 2], [1, 0, 2]])
    right = torch.nn.functional.one_hot(targets, 4).float()
    one_wrong = right.clone()
    one_wrong[1, 2] = torch.tensor([0.0, 0.0, 0.0, 5.0])
    cases = [
        Case("all correct", (right, targets), 1.0),
        Case("one position wrong in one sequence", (one_wrong, targets), 0.75),
        Case("everything wrong", (right.roll(1, dims=-1), targets), 0.0),
    ]
    run_cases("sequence_accuracy", fn, cases)


# --- notebook 05 ------------------------------------------------------------------


def check_sliding_window_mask(fn: Callable) -> None:
    """Exercise: ``fn(n, window) -> (n, n)`` boolean, True where ``|i - j| <= window``."""
    from ..attention import SlidingWindow

    cases = [Case(f"n={n}, window={w}", (n, w), SlidingWindow(w).dense_mask(n)) for n, w in ((5, 0), (8, 2), (6, 10))]
    run_cases("sliding_window_mask", fn, cases)


def check_window_score_count(fn: Callable) -> None:
    """Exercise: ``fn(n, window) -> int``: how many (query, key) scores a sliding window keeps."""
    from ..attention import SlidingWindow

    cases = [
        Case(f"n={n}, window={w}", (n, w), int(SlidingWindow(w).dense_mask(n).sum()))
        for n, w in ((10, 0), (100, 3), (4096, 128), (5, 10))
    ]
    run_cases("window_score_count", fn, cases)


def check_global_local_mask_mod(fn: Callable) -> None:
    """Exercise: ``fn(window, num_global)`` returns a FlexAttention ``mask_mod(b, h, q_idx, kv_idx)``
    for a sliding window plus ``num_global`` global tokens at the start."""
    from torch.nn.attention.flex_attention import create_mask

    from ..attention import GlobalLocal

    def dense(window, num_global, n):
        return create_mask(fn(window, num_global), None, None, n, n, device="cpu")[0, 0]

    cases = [
        Case(f"window={w}, num_global={g}, n={n}", (w, g, n), GlobalLocal(w, g).dense_mask(n))
        for w, g, n in ((1, 1, 8), (3, 2, 20), (0, 0, 6))
    ]
    run_cases("global_local_mask_mod", dense, cases)


# --- notebook 06 ------------------------------------------------------------------


def check_single_query_attention(fn: Callable) -> None:
    """Exercise: ``fn(query (B, d), regions (B, N, d)) -> (output (B, d), weights (B, N))``,
    scaled dot-product attention of one query over the regions, no projections."""
    g = _generator(10)
    query, regions = torch.randn(3, 8, generator=g), torch.randn(3, 25, 8, generator=g)
    expected = F.scaled_dot_product_attention(query[:, None], regions, regions)[:, 0]
    weights = torch.softmax((regions @ query[..., None])[..., 0] / 8**0.5, -1)
    run_cases("single_query_attention", fn, [Case("(output, weights)", (query, regions), (expected, weights))])


def check_grid_cell(fn: Callable) -> None:
    """Exercise: ``fn(x, y, image_size=75, grid=5) -> int``: the row-major index of the grid
    cell containing pixel (x, y)."""
    points = [((0, 0), 0), ((74, 0), 4), ((0, 74), 20), ((37, 37), 12), ((15, 14), 1), ((44, 45), 17)]
    cases = [Case(f"pixel (x={x}, y={y})", (x, y), cell) for (x, y), cell in points]
    run_cases("grid_cell", fn, cases)


# --- notebook 07 ------------------------------------------------------------------


def check_gate_weights(fn: Callable) -> None:
    """Exercise: ``fn(scores (B, M), present (B, M) bool) -> weights (B, M)``: a softmax over
    the modalities present only; missing modalities get exactly 0."""
    g = _generator(8)
    scores = torch.randn(4, 3, generator=g)
    every = torch.ones(4, 3, dtype=torch.bool)
    some = torch.tensor([[True, False, True], [False, True, False], [True, True, True], [False, False, True]])
    expected = torch.softmax(scores.masked_fill(~some, float("-inf")), dim=-1)
    cases = [
        Case("all modalities present", (scores, every), torch.softmax(scores, -1)),
        Case("some modalities missing", (scores, some), expected),
    ]
    run_cases("gate_weights", fn, cases)


def check_pearson(fn: Callable) -> None:
    """Exercise: ``fn(x, y) -> float``: the Pearson correlation coefficient of two 1-D tensors."""
    g = _generator(9)
    x = torch.randn(500, generator=g, dtype=torch.float64)
    noise = torch.randn(500, generator=g, dtype=torch.float64)

    def pearson(a, b):
        return torch.corrcoef(torch.stack([a, b]))[0, 1]

    cases = [
        Case("perfectly correlated (y = 3x + 1)", (x, 3 * x + 1), 1.0),
        Case("anti-correlated", (x, -x), -1.0),
        Case("partly correlated", (x, x + 2 * noise), pearson(x, x + 2 * noise).item()),
    ]
    run_cases("pearson", fn, cases)


def check_tensor_fusion_size(fn: Callable) -> None:
    """Exercise: ``fn(dims) -> int``: the length of the tensor-fusion vector, the outer
    product of every modality's vector with a 1 appended."""
    cases = [Case(f"dims={dims}", (dims,), expected) for dims, expected in (([16, 16], 289), ([4], 5), ([2, 3, 4], 60))]
    run_cases("tensor_fusion_size", fn, cases)


# --- notebook 08 ------------------------------------------------------------------


def check_missing_mask(fn: Callable) -> None:
    """Exercise: ``fn(batch, p, generator) -> present (batch, 2)`` bool: each sample loses
    exactly one of its two modalities (chosen at random) with probability ``p``."""

    def statistics(batch, p, seed):
        present = fn(batch, p, torch.Generator().manual_seed(seed))
        if not isinstance(present, torch.Tensor) or present.dtype != torch.bool or present.shape != (batch, 2):
            got = (present.dtype, tuple(present.shape)) if isinstance(present, torch.Tensor) else type(present).__name__
            raise ValueError(f"expected a boolean tensor of shape ({batch}, 2), got {got}")
        missing_rows = (~present).any(1)
        image_share = (~present[:, 0]).float().sum() / missing_rows.float().sum().clamp_min(1)
        # rounded so that sampling noise does not fail a right answer
        return torch.tensor(
            [
                round(missing_rows.float().mean().item(), 1),
                round(image_share.item(), 1) if missing_rows.any() else 0.5,
                present.sum(1).min().item(),
            ]
        )

    cases = [
        Case("p = 0: nothing missing", (4000, 0.0, 0), torch.tensor([0.0, 0.5, 2.0])),
        Case(
            "p = 0.5: half the samples miss one modality, image or audio equally often",
            (4000, 0.5, 1),
            torch.tensor([0.5, 0.5, 1.0]),
        ),
        Case("p = 1: every sample misses exactly one", (4000, 1.0, 2), torch.tensor([1.0, 0.5, 1.0])),
    ]
    run_cases("missing_mask", statistics, cases)


def check_relative_robustness(fn: Callable) -> None:
    """Exercise: ``fn(levels, accuracies) -> float``: the area under the accuracy curve
    (trapezoid rule) with the noise levels rescaled to [0, 1]."""
    cases = [
        Case("flat curve", ([0, 1, 2], [0.8, 0.8, 0.8]), 0.8),
        Case("linear drop to zero", ([0.0, 0.5, 1.0], [1.0, 0.5, 0.0]), 0.5),
        Case("uneven levels", ([0, 1, 4], [0.9, 0.7, 0.1]), 0.25 * 0.8 + 0.75 * 0.4),
    ]
    run_cases("relative_robustness", fn, cases)


def check_effective_robustness(fn: Callable) -> None:
    """Exercise: ``fn(model_accuracies, late_accuracies) -> float``: the mean over the noisy
    levels (all but the first, clean, one) of the model's drop from its clean accuracy
    minus late fusion's drop from its own clean accuracy."""
    cases = [
        Case("same curve", ([0.9, 0.8, 0.6], [0.9, 0.8, 0.6]), 0.0),
        Case("same drops from a higher start", ([0.95, 0.85, 0.65], [0.9, 0.8, 0.6]), 0.0),
        Case("drops less", ([0.9, 0.85, 0.8], [0.9, 0.8, 0.6]), 0.125),
    ]
    run_cases("effective_robustness", fn, cases)


# --- notebook 09 ------------------------------------------------------------------


def check_relation_pair_scores(fn: Callable) -> None:
    """Exercise: ``fn(regions (B, N, C), question (B, d), weight (h, 2C + d), bias (h,))
    -> (B, N, N, h)``: the Relation Network's first layer on every pair, ``weight @
    [r_i; r_j; q] + bias`` at ``[b, i, j]``, computed without building the pairs."""
    g = _generator(7)
    cases = []
    for b, n, c, d, h in [(1, 2, 1, 1, 1), (2, 4, 3, 2, 5), (3, 25, 6, 4, 8)]:
        regions, question = torch.randn(b, n, c, generator=g), torch.randn(b, d, generator=g)
        weight, bias = torch.randn(h, 2 * c + d, generator=g), torch.randn(h, generator=g)
        pairs = torch.cat(
            [
                regions[:, :, None].expand(-1, -1, n, -1),
                regions[:, None].expand(-1, n, -1, -1),
                question[:, None, None].expand(-1, n, n, -1),
            ],
            dim=-1,
        )
        cases.append(
            Case(
                f"{b} image(s), {n} regions of {c}, question of {d}, {h} units",
                (regions, question, weight, bias),
                pairs @ weight.T + bias,
                atol=1e-4,
            )
        )
    run_cases("relation_pair_scores", fn, cases)


def check_family_prior(fn: Callable) -> None:
    """Exercise: ``fn(train_answers, train_family, test_answers, test_family) -> dict``:
    per family, the test accuracy of always answering that family's most common training
    answer (all arguments are 1-D integer tensors)."""
    cases = [
        Case(
            "one family, answer 1 most common",
            (torch.tensor([1, 1, 0]), torch.tensor([0, 0, 0]), torch.tensor([1, 0, 1, 1]), torch.tensor([0, 0, 0, 0])),
            {0: 0.75},
        ),
        Case(
            "two families",
            (
                torch.tensor([2, 2, 3, 5, 5, 4]),
                torch.tensor([0, 0, 0, 1, 1, 1]),
                torch.tensor([3, 3, 2, 5, 5]),
                torch.tensor([0, 0, 0, 1, 1]),
            ),
            {0: 1 / 3, 1: 1.0},
        ),
    ]

    run_cases("family_prior", fn, cases)


# --- notebook 10 ------------------------------------------------------------------


def check_expand_grid(fn: Callable) -> None:
    """Exercise: ``fn(axes: dict[str, list]) -> list[dict]``: every combination, in order,
    the last axis changing fastest."""
    cases = [
        ({"a": [1, 2]}, [{"a": 1}, {"a": 2}]),
        ({"a": [1, 2], "b": ["x", "y", "z"]}, [{"a": a, "b": b} for a in (1, 2) for b in "xyz"]),
        (
            {"fusion": ["early"], "rate": [0.0, 0.5], "seed": [0, 1]},
            [{"fusion": "early", "rate": r, "seed": s} for r in (0.0, 0.5) for s in (0, 1)],
        ),
    ]
    run_cases("expand_grid", fn, [Case(f"axes {axes}", (axes,), expected) for axes, expected in cases])


def check_ci95(fn: Callable) -> None:
    """Exercise: ``fn(values (n,)) -> (low, high)``: the 95% t-interval of the mean."""
    from scipy import stats

    cases = []
    for values in ([0.8, 0.82, 0.79], [0.5, 0.6, 0.55, 0.65, 0.7], [1.0, 3.0]):
        x = torch.tensor(values, dtype=torch.float64)
        half = stats.t.ppf(0.975, len(values) - 1) * x.std() / len(values) ** 0.5
        cases.append(Case(f"{len(values)} seeds {values}", (x,), ((x.mean() - half).item(), (x.mean() + half).item())))
    run_cases("ci95", fn, cases)


__all__ = [
    "ExerciseCheckError",
    "Case",
    "compare",
    "run_cases",
    "not_implemented",
    *(name for name in list(globals()) if name.startswith("check_")),
]
