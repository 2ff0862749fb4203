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


def _epanechnikov_reference(queries: torch.Tensor, keys: torch.Tensor, bandwidth: float) -> torch.Tensor:
    u = (queries.unsqueeze(1) - keys.unsqueeze(0)) / bandwidth
    kernel = (1 - u**2).clamp_min(0)
    total = kernel.sum(1, keepdim=True)
    return torch.where(total > 0, kernel / torch.where(total > 0, total, 1.0), 0.0)


def check_epanechnikov_weights(fn: Callable) -> None:
    """Exercise: ``fn(queries (n_q,), keys (n_k,), bandwidth) -> weights (n_q, n_k)``: the
    Epanechnikov kernel :math:`\\max(0, 1 - ((q_i - k_j)/h)^2)` normalised over each query's
    keys; a query with no key closer than ``h`` gets a row of zeros (not NaN)."""
    g = _generator(1)
    q, k = torch.rand(5, generator=g) * 5, torch.rand(7, generator=g) * 5
    lonely_q, lonely_k = torch.tensor([0.0, 2.5, 5.0]), torch.tensor([0.1, 0.3, 4.8])
    cases = [
        Case("5 queries, 7 keys, h=2", (q, k, 2.0), _epanechnikov_reference(q, k, 2.0)),
        Case("wide bandwidth h=50", (q, k, 50.0), _epanechnikov_reference(q, k, 50.0)),
        Case(
            "h=0.5: the query at 2.5 has no key within h (its row must be zeros, not NaN)",
            (lonely_q, lonely_k, 0.5),
            _epanechnikov_reference(lonely_q, lonely_k, 0.5),
        ),
        Case("one query", (q[:1], k, 1.5), _epanechnikov_reference(q[:1], k, 1.5)),
    ]
    run_cases("epanechnikov_weights", fn, cases)


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


def _distance_biased_reference(q: torch.Tensor, k: torch.Tensor, slope: float) -> torch.Tensor:
    positions_q, positions_k = torch.arange(q.shape[-2]), torch.arange(k.shape[-2])
    distance = (positions_q[:, None] - positions_k[None, :]).abs()
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]) - slope * distance, dim=-1)


def check_distance_biased_weights(fn: Callable) -> None:
    """Exercise: ``fn(q (..., L, d), k (..., L, d), slope) -> weights (..., L, L)``:
    :math:`\\mathrm{softmax}_j(q_i \\cdot k_j / \\sqrt d - \\text{slope}\\,|i - j|)`, scaled
    dot-product weights with a linear penalty on the distance (ALiBi, Press et al. 2022)."""
    g = _generator(7)
    q, k = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    q4, k4 = torch.randn(2, 3, 5, 4, generator=g), torch.randn(2, 3, 5, 4, generator=g)
    cases = [
        Case("slope=0 is plain scaled dot-product attention", (q, k, 0.0), _distance_biased_reference(q, k, 0.0)),
        Case("slope=1", (q, k, 1.0), _distance_biased_reference(q, k, 1.0)),
        Case("slope=50: each token attends to itself", (q, k, 50.0), _distance_biased_reference(q, k, 50.0)),
        Case("4-D input (batch, heads, L, d), slope=0.5", (q4, k4, 0.5), _distance_biased_reference(q4, k4, 0.5)),
    ]
    run_cases("distance_biased_weights", fn, cases)


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


def check_receptive_field(fn: Callable) -> None:
    """Exercise: ``fn(layers) -> (size, stride, first_centre)`` for a stack of convolutions
    or poolings given as ``[(kernel, stride, padding), ...]``: how many input pixels one
    output sees (along one axis), how many pixels apart neighbouring outputs' fields are,
    and the input coordinate of the centre of output 0's field."""
    stacks = {
        "the Relation Networks CNN: four (3, 2, 1) convolutions": [(3, 2, 1)] * 4,
        "one 3x3 convolution, stride 1, no padding": [(3, 1, 0)],
        "two 5x5 convolutions, stride 2, padding 2": [(5, 2, 2)] * 2,
        "a 3x3 convolution (stride 1, padding 1), then 2x2 pooling (stride 2)": [(3, 1, 1), (2, 2, 0)],
    }
    from ..encoders import receptive_field  # the package's recurrence is the reference

    cases = [Case(name, (layers,), receptive_field(layers)) for name, layers in stacks.items()]
    run_cases("receptive_field", fn, cases)


# --- notebook 07 ------------------------------------------------------------------


def _gmu_reference(h_img, h_aud, w_img, w_aud, w_gate):
    z = torch.sigmoid(torch.cat([h_img, h_aud], dim=-1) @ w_gate.T)
    return z * torch.tanh(h_img @ w_img.T) + (1 - z) * torch.tanh(h_aud @ w_aud.T)


def check_gated_multimodal_unit(fn: Callable) -> None:
    """Exercise: ``fn(h_img (B, D_i), h_aud (B, D_a), w_img (H, D_i), w_aud (H, D_a),
    w_gate (H, D_i + D_a)) -> (B, H)``: the gated multimodal unit of Arevalo et al. 2017,
    ``z * tanh(W_img h_img) + (1 - z) * tanh(W_aud h_aud)`` with one gate per feature,
    ``z = sigmoid(W_gate [h_img; h_aud])``."""
    g = _generator(11)
    cases = []
    for b, d_i, d_a, h in ((4, 6, 3, 5), (1, 2, 2, 1), (3, 8, 8, 8)):
        args = (
            torch.randn(b, d_i, generator=g),
            torch.randn(b, d_a, generator=g),
            torch.randn(h, d_i, generator=g),
            torch.randn(h, d_a, generator=g),
            torch.randn(h, d_i + d_a, generator=g),
        )
        cases.append(Case(f"batch {b}, image {d_i}, audio {d_a}, {h} features", args, _gmu_reference(*args)))
    zero_gate = (*cases[0].args[:4], torch.zeros(5, 9))
    cases.append(Case("zero gate weights: z = 1/2 for every feature", zero_gate, _gmu_reference(*zero_gate)))
    run_cases("gated_multimodal_unit", fn, cases)


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


def check_expected_missing_accuracy(fn: Callable) -> None:
    """Exercise: ``fn(acc_both, acc_image_only, acc_audio_only, p) -> float``: the accuracy
    expected when each sample loses one of its two modalities (image or audio, equally
    likely) with probability ``p``, from the accuracies with both, image only, audio only."""
    cases = [
        Case("p = 0: every sample complete", (0.8, 0.6, 0.5, 0.0), 0.8),
        Case("p = 1: every sample has one modality", (0.8, 0.6, 0.5, 1.0), 0.55),
        Case("p = 0.4", (0.8, 0.6, 0.5, 0.4), 0.6 * 0.8 + 0.4 * 0.55),
        Case("a model that ignores the audio: p = 0.5", (0.7, 0.7, 0.1, 0.5), 0.5 * 0.7 + 0.5 * 0.4),
    ]
    run_cases("expected_missing_accuracy", fn, cases)


def check_impute_missing(fn: Callable) -> None:
    """Exercise: ``fn(features, present, fill) -> list``: ``features`` a list of ``(B, D_m)``
    tensors, ``present`` a ``(B, M)`` boolean mask, ``fill`` a list of ``(D_m,)`` vectors;
    every missing modality's row replaced by its fill vector (selected, never multiplied)."""
    g = _generator(12)
    image, audio = torch.randn(4, 3, generator=g), torch.randn(4, 2, generator=g)
    fill = [torch.tensor([0.5, -1.0, 2.0]), torch.tensor([3.0, 0.25])]
    every = torch.ones(4, 2, dtype=torch.bool)
    some = torch.tensor([[True, True], [False, True], [True, False], [False, True]])
    filled_image = torch.where(some[:, :1], image, fill[0])
    filled_audio = torch.where(some[:, 1:], audio, fill[1])
    broken = audio.clone()
    broken[2] = float("nan")  # a dead microphone's features: never to be read
    cases = [
        Case("nothing missing: unchanged", ([image, audio], every, fill), [image, audio]),
        Case(
            "image missing in samples 1 and 3, audio in sample 2",
            ([image, audio], some, fill),
            [filled_image, filled_audio],
        ),
        Case(
            "the missing audio of sample 2 holds NaN (select, do not multiply)",
            ([image, broken], some, fill),
            [filled_image, filled_audio],
        ),
    ]
    run_cases("impute_missing", fn, cases)


def check_breaking_point(fn: Callable) -> None:
    """Exercise: ``fn(levels, accuracies, threshold) -> float | None``: the first level at
    which the accuracy curve, linear between measured levels, falls to ``threshold``;
    ``levels[0]`` if it starts at or below it, None if it never falls that far."""
    cases = [
        Case("crossing between two levels", ([0.0, 0.5, 1.0], [0.9, 0.7, 0.3], 0.5), 0.75),
        Case(
            "a curve that rises first",
            ([0.0, 0.25, 0.5, 0.75, 1.0], [0.87, 0.89, 0.86, 0.77, 0.57], 0.8),
            0.5 + 0.25 * (0.86 - 0.8) / (0.86 - 0.77),
        ),
        Case("exactly at a measured level", ([0, 1, 2], [0.9, 0.6, 0.2], 0.6), 1.0),
        Case("starts below the threshold", ([0, 1, 2], [0.4, 0.3, 0.2], 0.5), 0.0),
        Case("never falls that far", ([0, 1, 2], [0.9, 0.8, 0.7], 0.5), None),
    ]
    run_cases("breaking_point", fn, cases)


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


def _seeds_needed_reference(std: float, half_width: float) -> int:
    from scipy import stats

    n = 2
    while stats.t.ppf(0.975, n - 1) * std / math.sqrt(n) > half_width:
        n += 1
    return n


def check_seeds_needed(fn: Callable) -> None:
    """Exercise: ``fn(std, half_width) -> int``: the fewest seeds ``n >= 2`` whose 95%
    t-interval of the mean, :math:`t_{0.975,\\,n-1}\\, s/\\sqrt n`, is at most ``half_width``."""
    cases = [
        Case(f"std {std}, half-width {half}", (std, half), _seeds_needed_reference(std, half))
        for std, half in ((0.05, 0.04), (0.03, 0.01), (0.01, 0.05), (0.13, 0.05))
    ]
    run_cases("seeds_needed", fn, cases)


__all__ = [
    "ExerciseCheckError",
    "Case",
    "compare",
    "run_cases",
    "not_implemented",
    *(name for name in list(globals()) if name.startswith("check_")),
]
