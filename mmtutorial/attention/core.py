"""Attention from scratch: masked softmax, scoring functions and attention modules.

Conventions used throughout the package
---------------------------------------
* Tensors are batch-first: queries ``(..., L_q, d_q)``, keys ``(..., L_k, d_k)``,
  values ``(..., L_k, d_v)``. Scores and weights are ``(..., L_q, L_k)``.
* A boolean ``mask`` means **True = this query may attend to this key**, the same
  convention as :func:`torch.nn.functional.scaled_dot_product_attention`.
* ``valid_lens`` (as in d2l) gives, per batch element (shape ``(B,)``) or per query
  (shape ``(B, L_q)``), how many leading keys are real; the rest are padding.
* ``key_padding_mask`` (only in :class:`MultiHeadAttention`) follows
  :class:`torch.nn.MultiheadAttention`: **True = padding, ignore this key**.
* A query whose keys are all masked gets all-zero weights (and so a zero output),
  never NaN, and its gradients stay finite.
* Masked keys are *removed*, not multiplied by zero: a NaN or inf in a masked score, or
  in a key or value that no query may attend to (padding), never reaches the output or
  the gradients (IEEE ``0 * NaN`` is NaN, so masks select with ``torch.where``). A key
  masked for some queries only (e.g. causal) is still read by the others, so its value
  must be finite.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..validation import (
    check_bool,
    check_float,
    check_input_dtype,
    check_nonnegative_int,
    check_optional_positive_int,
    check_positive_int,
    check_probability,
)

__all__ = [
    "masked_softmax",
    "valid_lens_to_mask",
    "causal_mask",
    "dot_product_score",
    "scaled_dot_product_score",
    "bilinear_score",
    "additive_score",
    "scaled_dot_product_attention",
    "AdditiveAttention",
    "DotProductAttention",
    "MultiHeadAttention",
]


# ---------------------------------------------------------------------------
# Validation helpers: every public function checks its inputs and names the
# offending shape or dtype, because a silent broadcast is the most common bug
# in hand-written attention.
# ---------------------------------------------------------------------------


def _shape(t: Tensor | tuple) -> str:
    dims = t.shape if isinstance(t, Tensor) else t
    return "(" + ", ".join(str(s) for s in dims) + ")"


def _require_float(name: str, t: Tensor) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")


def _require_same_dtype(name: str, t: Tensor, reference: Tensor) -> None:
    if t.dtype != reference.dtype:
        raise TypeError(f"{name} must have the dtype of the query ({reference.dtype}), got {t.dtype}")


def _require_min_dim(name: str, t: Tensor, n: int, layout: str) -> None:
    if t.dim() < n:
        raise ValueError(f"{name} must have at least {n} dims {layout}, got shape {_shape(t)}")


def _check_qkv(query: Tensor, key: Tensor, value: Tensor, *, same_qk_dim: bool) -> None:
    """Check a (query, key, value) triple for attention and raise a clear error."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        _require_float(name, t)
        _require_min_dim(name, t, 2, "(..., length, features)")
    if not (query.dtype == key.dtype == value.dtype):
        raise TypeError(f"query, key and value must share a dtype, got {query.dtype}, {key.dtype}, {value.dtype}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"key and value must have the same number of positions (dim -2): key {_shape(key)} vs value {_shape(value)}"
        )
    if same_qk_dim and query.shape[-1] != key.shape[-1]:
        raise ValueError(
            "query and key must have the same feature size (dim -1) for dot-product scores: "
            f"query {_shape(query)} vs key {_shape(key)}"
        )
    try:
        torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except RuntimeError:
        raise ValueError(
            "query, key and value batch dims (all but the last two) must broadcast: "
            f"query {_shape(query)}, key {_shape(key)}, value {_shape(value)}"
        ) from None


def valid_lens_to_mask(valid_lens: Tensor, num_keys: int) -> Tensor:
    """Turn valid lengths into a boolean key mask (True = real key).

    ``valid_lens`` of shape ``(B,)`` gives a mask ``(B, 1, L_k)``; of shape ``(B, L_q)``
    a mask ``(B, L_q, L_k)``. Either broadcasts against scores ``(B, L_q, L_k)``.
    """
    check_nonnegative_int("num_keys", num_keys)
    if not isinstance(valid_lens, Tensor):
        valid_lens = torch.as_tensor(valid_lens)
    if valid_lens.is_floating_point() or valid_lens.dtype == torch.bool:
        raise TypeError(f"valid_lens must be an integer tensor, got dtype {valid_lens.dtype}")
    if valid_lens.dim() not in (1, 2):
        raise ValueError(f"valid_lens must have shape (batch,) or (batch, num_queries), got {_shape(valid_lens)}")
    if valid_lens.numel() and (valid_lens.min() < 0 or valid_lens.max() > num_keys):
        raise ValueError(
            f"valid_lens must lie in [0, {num_keys}] (the number of keys), "
            f"got values in [{int(valid_lens.min())}, {int(valid_lens.max())}]"
        )
    positions = torch.arange(num_keys, device=valid_lens.device)
    if valid_lens.dim() == 1:
        return positions < valid_lens[:, None, None]
    return positions < valid_lens[..., None]


def causal_mask(num_queries: int, num_keys: int | None = None, device=None) -> Tensor:
    """Lower-triangular boolean mask: query i may attend to keys 0..i (True = attend).

    With ``num_keys > num_queries`` the mask is aligned to the top left, as in
    :func:`torch.nn.functional.scaled_dot_product_attention` with ``is_causal=True``.
    """
    check_nonnegative_int("num_queries", num_queries)
    num_keys = num_queries if num_keys is None else check_nonnegative_int("num_keys", num_keys)
    return torch.ones(num_queries, num_keys, dtype=torch.bool, device=device).tril()


def _check_mask(name: str, mask, shape: torch.Size) -> Tensor:
    """A boolean mask (True = attend) that broadcasts to ``shape`` without enlarging it."""
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise TypeError(f"{name} must be a boolean tensor (True = attend), got {got}")
    try:
        broadcast = torch.broadcast_shapes(mask.shape, shape)
    except RuntimeError:
        broadcast = None
    if broadcast != shape:
        raise ValueError(
            f"{name} of shape {_shape(mask)} does not broadcast to the scores' shape "
            f"{_shape(shape)} (..., num_queries, num_keys)"
        )
    return mask


def _combine_masks(
    shape: torch.Size, device: torch.device, mask: Tensor | None, valid_lens: Tensor | None
) -> Tensor | None:
    """Return one boolean mask broadcastable to scores of ``shape`` (or None), checking shapes."""
    if mask is not None:
        _check_mask("mask", mask, shape)
    if valid_lens is not None:
        if not isinstance(valid_lens, Tensor):
            valid_lens = torch.as_tensor(valid_lens)
        if len(shape) < 3:
            raise ValueError(
                f"valid_lens needs scores of shape (batch, ..., num_queries, num_keys), got {_shape(shape)}"
            )
        lens_mask = valid_lens_to_mask(valid_lens.to(device), shape[-1])
        if lens_mask.shape[0] != shape[0] or (lens_mask.shape[1] != 1 and lens_mask.shape[1] != shape[-2]):
            raise ValueError(
                f"valid_lens of shape {_shape(valid_lens)} does not match scores of shape "
                f"{_shape(shape)}: expected (batch,) or (batch, num_queries)"
            )
        # Scores may carry extra dims between batch and queries (e.g. heads).
        lens_mask = lens_mask.view(lens_mask.shape[0], *([1] * (len(shape) - 3)), *lens_mask.shape[1:])
        mask = lens_mask if mask is None else mask & lens_mask
    return mask


def _drop_unused_keys(mask: Tensor | None, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
    """Zero the keys and values that no query may attend to (padding), by selection.

    Their weights are exactly 0, but ``0 * NaN`` is NaN: a NaN or inf in a padded value
    row would reach every output through ``weights @ value``, and one in a padded key row
    would reach the gradients through ``query @ key^T``. ``torch.where`` removes them.
    """
    if mask is None:
        return key, value
    used = (mask.any(dim=-2) if mask.dim() >= 2 else mask).unsqueeze(-1)  # (..., L_k, 1)
    return torch.where(used, key, 0), torch.where(used, value, 0)


def _softmax_with_mask(scores: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return F.softmax(scores, dim=-1)
    # Filling with the most negative finite number (not -inf) keeps a fully masked row
    # finite: its softmax is uniform, and the selection below zeroes it. In any row with
    # at least one real key, exp(min - max) underflows to exactly 0. Selecting (not
    # multiplying by the mask) keeps a NaN or inf in a masked score out of the output.
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.where(mask, F.softmax(filled, dim=-1), 0.0)


def _check_scale(scale) -> float | None:
    if scale is None:
        return None
    return check_float("scale", scale, minimum=0.0, min_inclusive=False)


def masked_softmax(
    scores: Tensor,
    mask: Tensor | None = None,
    valid_lens: Tensor | None = None,
) -> Tensor:
    r"""Softmax over the last dim (keys) that ignores masked keys.

    .. math:: \alpha_{ij} = \frac{m_{ij}\, \exp(s_{ij})}{\sum_{j'} m_{ij'} \exp(s_{ij'})}

    Args:
        scores: ``(..., L_q, L_k)`` attention scores.
        mask: boolean, broadcastable to ``scores``; True = key may be attended to.
        valid_lens: ``(B,)`` or ``(B, L_q)`` integer lengths; keys at positions
            ``>= valid_len`` are masked. May be combined with ``mask``.

    Returns:
        Weights of the same shape as ``scores``. Masked keys get exactly 0, the
        unmasked weights of each row sum to 1, and a row with every key masked is
        all zeros (never NaN), with finite gradients.
    """
    _require_float("scores", scores)
    _require_min_dim("scores", scores, 1, "(..., num_keys)")
    mask = _combine_masks(scores.shape, scores.device, mask, valid_lens)
    return _softmax_with_mask(scores, mask)


# ---------------------------------------------------------------------------
# Scoring functions e(q, k): one number per (query, key) pair.
# ---------------------------------------------------------------------------


def dot_product_score(query: Tensor, key: Tensor) -> Tensor:
    r"""Dot-product score (Luong et al. 2015): :math:`e_{ij} = q_i^\top k_j`.

    ``query (..., L_q, d)``, ``key (..., L_k, d)`` -> scores ``(..., L_q, L_k)``.
    """
    _check_qkv(query, key, key, same_qk_dim=True)
    return query @ key.transpose(-2, -1)


def scaled_dot_product_score(query: Tensor, key: Tensor, scale: float | None = None) -> Tensor:
    r"""Scaled dot-product score (Vaswani et al. 2017): :math:`e_{ij} = q_i^\top k_j / \sqrt{d}`.

    Dividing by :math:`\sqrt{d}` keeps the scores' variance near 1 when the entries of
    q and k have unit variance, so the softmax does not saturate as ``d`` grows.
    ``scale`` overrides :math:`1/\sqrt{d}`.
    """
    _check_qkv(query, key, key, same_qk_dim=True)
    scale = _check_scale(scale)
    return _scaled_scores(query, key, scale)


def _scaled_scores(query: Tensor, key: Tensor, scale: float | None) -> Tensor:
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    # Scaling the (L_q, d) queries instead of the (L_q, L_k) scores saves a pass over
    # the largest tensor in attention; the result is the same up to rounding.
    return (query * scale) @ key.transpose(-2, -1)


def bilinear_score(query: Tensor, key: Tensor, weight: Tensor) -> Tensor:
    r"""General / bilinear score (Luong et al. 2015): :math:`e_{ij} = q_i^\top W k_j`.

    ``query (..., L_q, d_q)``, ``key (..., L_k, d_k)``, ``weight (d_q, d_k)``.
    Lets queries and keys live in spaces of different sizes.
    """
    _check_qkv(query, key, key, same_qk_dim=False)
    _require_float("weight", weight)
    _require_same_dtype("weight", weight, query)
    if weight.shape != (query.shape[-1], key.shape[-1]):
        raise ValueError(
            f"weight must have shape (d_q, d_k) = ({query.shape[-1]}, {key.shape[-1]}), got {_shape(weight)}"
        )
    return query @ weight @ key.transpose(-2, -1)


def additive_score(
    query: Tensor,
    key: Tensor,
    w_query: Tensor,
    w_key: Tensor,
    v: Tensor,
    bias: Tensor | None = None,
) -> Tensor:
    r"""Additive score (Bahdanau et al. 2015): :math:`e_{ij} = v^\top \tanh(W q_i + U k_j + b)`.

    Shapes: ``query (..., L_q, d_q)``, ``key (..., L_k, d_k)``, ``w_query (h, d_q)``,
    ``w_key (h, d_k)`` (the ``nn.Linear`` weight layout), ``v (h,)``, ``bias (h,)``.
    The ``(L_q, L_k, h)`` intermediate is why additive attention costs more memory
    than dot-product attention.
    """
    _check_qkv(query, key, key, same_qk_dim=False)
    for name, t in (("w_query", w_query), ("w_key", w_key), ("v", v), ("bias", bias)):
        if t is not None:
            _require_float(name, t)
            _require_same_dtype(name, t, query)
    hidden = v.shape[-1]
    expected = {
        "w_query": (hidden, query.shape[-1]),
        "w_key": (hidden, key.shape[-1]),
        "v": (hidden,),
    }
    tensors = {"w_query": w_query, "w_key": w_key, "v": v}
    if bias is not None:
        expected["bias"] = (hidden,)
        tensors["bias"] = bias
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {_shape(tensors[name])}")
    q = query @ w_query.T  # (..., L_q, h)
    k = key @ w_key.T  # (..., L_k, h)
    features = q.unsqueeze(-2) + k.unsqueeze(-3)  # (..., L_q, L_k, h)
    if bias is not None:
        features = features + bias
    return torch.tanh(features) @ v


# ---------------------------------------------------------------------------
# Attention = weighted average of values, weights = masked softmax of scores.
# ---------------------------------------------------------------------------


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    mask: Tensor | None = None,
    *,
    valid_lens: Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    dropout_p: float = 0.0,
    training: bool = True,
) -> tuple[Tensor, Tensor]:
    r"""From-scratch :math:`\mathrm{softmax}(QK^\top/\sqrt{d} + \text{mask})\,V`.

    Gives the same output as :func:`torch.nn.functional.scaled_dot_product_attention`
    (same boolean mask convention: True = attend) and also returns the weights. Keys and
    values that no query may attend to are removed by selection, so a NaN or inf in
    padding changes neither the output nor the gradients.

    Returns:
        ``(output (..., L_q, d_v), weights (..., L_q, L_k))``.
    """
    _check_qkv(query, key, value, same_qk_dim=True)
    dropout_p = check_probability("dropout_p", dropout_p)
    check_bool("is_causal", is_causal)
    check_bool("training", training)
    scale = _check_scale(scale)
    num_queries, num_keys = query.shape[-2], key.shape[-2]
    shape = torch.Size((*torch.broadcast_shapes(query.shape[:-2], key.shape[:-2]), num_queries, num_keys))
    mask = _combine_masks(shape, query.device, mask, valid_lens)
    if is_causal:
        causal = causal_mask(num_queries, num_keys, device=query.device)
        mask = causal if mask is None else mask & causal
    key, value = _drop_unused_keys(mask, key, value)
    weights = _softmax_with_mask(_scaled_scores(query, key, scale), mask)
    if dropout_p > 0.0 and training:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ value, weights


class AdditiveAttention(nn.Module):
    r"""Additive (Bahdanau) attention: :math:`\mathrm{softmax}_j(v^\top\tanh(W q_i + U k_j))\,v_j`.

    Works when queries and keys have different sizes, at the cost of an
    ``(L_q, L_k, hidden)`` intermediate.

    Args:
        query_dim: size of each query vector.
        key_dim: size of each key vector.
        hidden_dim: size ``h`` of the hidden layer inside the score.
        dropout: dropout on the attention weights.
        bias: add a learned bias ``b`` inside the tanh.

    Shape:
        ``forward(query (B, L_q, d_q), key (B, L_k, d_k), value (B, L_k, d_v))``
        returns ``(output (B, L_q, d_v), weights (B, L_q, L_k) or None)``.
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int, dropout: float = 0.0, bias: bool = False) -> None:
        super().__init__()
        self.query_dim = check_positive_int("query_dim", query_dim)
        self.key_dim = check_positive_int("key_dim", key_dim)
        check_positive_int("hidden_dim", hidden_dim)
        check_probability("dropout", dropout)
        check_bool("bias", bias)
        self.w_query = nn.Linear(query_dim, hidden_dim, bias=False)
        self.w_key = nn.Linear(key_dim, hidden_dim, bias=False)
        self.v = nn.Linear(hidden_dim, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(hidden_dim)) if bias else None
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        mask: Tensor | None = None,
        valid_lens: Tensor | None = None,
        need_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        _check_qkv(query, key, value, same_qk_dim=False)
        for name, t, size in (("query", query, self.query_dim), ("key", key, self.key_dim)):
            if t.shape[-1] != size:
                raise ValueError(f"{name} must have shape (..., length, {size}), got {_shape(t)}")
        check_input_dtype("query", query, self.w_query.weight.dtype)
        shape = torch.Size((*torch.broadcast_shapes(query.shape[:-2], key.shape[:-2]), query.shape[-2], key.shape[-2]))
        mask = _combine_masks(shape, query.device, mask, valid_lens)
        key, value = _drop_unused_keys(mask, key, value)
        scores = additive_score(query, key, self.w_query.weight, self.w_key.weight, self.v.weight[0], self.bias)
        weights = _softmax_with_mask(scores, mask)
        output = self.dropout(weights) @ value
        return output, (weights if need_weights else None)


class DotProductAttention(nn.Module):
    r"""Dot-product attention :math:`\mathrm{softmax}(QK^\top / s)\,V`, no parameters.

    Args:
        scaled: divide scores by :math:`\sqrt{d}` (Vaswani et al.) or not (Luong et al.).
        dropout: dropout on the attention weights.

    Shape:
        ``forward(query (..., L_q, d), key (..., L_k, d), value (..., L_k, d_v))``
        returns ``(output (..., L_q, d_v), weights (..., L_q, L_k) or None)``.
    """

    def __init__(self, scaled: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.scaled = check_bool("scaled", scaled)
        check_probability("dropout", dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        mask: Tensor | None = None,
        valid_lens: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        output, weights = scaled_dot_product_attention(
            query,
            key,
            value,
            mask,
            valid_lens=valid_lens,
            is_causal=is_causal,
            scale=None if self.scaled else 1.0,
            dropout_p=self.dropout.p,
            training=self.training,
        )
        return output, (weights if need_weights else None)

    def extra_repr(self) -> str:
        return f"scaled={self.scaled}, dropout={self.dropout.p}"


class MultiHeadAttention(nn.Module):
    r"""Multi-head attention, batch-first, from scratch.

    .. math::
        \mathrm{MHA}(Q, K, V) = [\mathrm{head}_1; \dots; \mathrm{head}_h] W^O,\quad
        \mathrm{head}_i = \mathrm{softmax}\!\left(\frac{Q W_i^Q (K W_i^K)^\top}{\sqrt{d/h}}\right) V W_i^V

    Numerically equal to :class:`torch.nn.MultiheadAttention` (``batch_first=True``)
    once weights are copied with :meth:`from_torch`.

    Args:
        embed_dim: model size ``d`` (the query size and the output size).
        num_heads: number of heads ``h``; must divide ``embed_dim``.
        dropout: dropout on the attention weights.
        bias: learn biases in the four projections.
        kdim, vdim: key / value sizes if they differ from ``embed_dim`` (cross-attention).

    Shape:
        ``query (B, L_q, d)``, ``key (B, L_k, kdim)``, ``value (B, L_k, vdim)`` ->
        ``output (B, L_q, d)``, weights ``(B, L_q, L_k)`` averaged over heads or
        ``(B, h, L_q, L_k)`` with ``average_attn_weights=False``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("embed_dim", embed_dim)
        check_positive_int("num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        check_probability("dropout", dropout)
        check_bool("bias", bias)
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else check_optional_positive_int("kdim", kdim)
        self.vdim = embed_dim if vdim is None else check_optional_positive_int("vdim", vdim)
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(self.kdim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(self.vdim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.dropout = dropout

    def _split_heads(self, x: Tensor) -> Tensor:
        # (B, L, d) -> (B, h, L, d/h): each head attends in its own subspace.
        b, length, _ = x.shape
        return x.reshape(b, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = True,
        average_attn_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` to ``key``/``value``.

        Args:
            key_padding_mask: ``(B, L_k)`` boolean, **True = padding** (ignored), as in
                :class:`torch.nn.MultiheadAttention`.
            mask: boolean, broadcastable to ``(B, h, L_q, L_k)`` (e.g. ``(L_q, L_k)``),
                **True = may attend**, as in ``scaled_dot_product_attention``.
            is_causal: also forbid attending to later positions.
            need_weights: return the attention weights (else ``None``).
            average_attn_weights: average the weights over heads.
        """
        for name, t, size in (
            ("query", query, self.embed_dim),
            ("key", key, self.kdim),
            ("value", value, self.vdim),
        ):
            _require_float(name, t)
            if t.dim() != 3 or t.shape[-1] != size:
                raise ValueError(f"{name} must have shape (batch, length, {size}), got {_shape(t)}")
            check_input_dtype(name, t, self.q_proj.weight.dtype)
        check_bool("is_causal", is_causal)
        if not (query.shape[0] == key.shape[0] == value.shape[0]):
            raise ValueError(
                f"query, key and value must share the batch size, got {_shape(query)}, {_shape(key)}, {_shape(value)}"
            )
        if key.shape[1] != value.shape[1]:
            raise ValueError(f"key and value must have the same length, got {_shape(key)} vs {_shape(value)}")
        batch, num_queries, num_keys = query.shape[0], query.shape[1], key.shape[1]

        allowed = None
        if key_padding_mask is not None:
            expected = f"a boolean tensor of shape (batch, num_keys) = ({batch}, {num_keys}), True = padding"
            if not isinstance(key_padding_mask, Tensor) or key_padding_mask.dtype != torch.bool:
                got = (
                    key_padding_mask.dtype if isinstance(key_padding_mask, Tensor) else type(key_padding_mask).__name__
                )
                raise TypeError(f"key_padding_mask must be {expected}, got {got}")
            if key_padding_mask.shape != (batch, num_keys):
                raise ValueError(f"key_padding_mask must be {expected}, got {_shape(key_padding_mask)}")
            allowed = ~key_padding_mask[:, None, None, :]  # (B, 1, 1, L_k)
        if mask is not None:
            if isinstance(mask, Tensor) and mask.dim() == 3:  # (B, L_q, L_k) -> (B, 1, L_q, L_k), shared by the heads
                mask = mask.unsqueeze(1)
            _check_mask("mask", mask, torch.Size((batch, self.num_heads, num_queries, num_keys)))
            allowed = mask if allowed is None else allowed & mask
        if allowed is not None:
            # Remove the keys no head and no query may see before projecting them: their
            # projections' weight gradients would otherwise read a NaN held in padding.
            used = allowed.expand(batch, self.num_heads, num_queries, num_keys).any(dim=(1, 2))
            key = torch.where(used[..., None], key, 0)
            value = torch.where(used[..., None], value, 0)

        q = self._split_heads(self.q_proj(query))
        k = self._split_heads(self.k_proj(key))
        v = self._split_heads(self.v_proj(value))
        heads, weights = scaled_dot_product_attention(
            q,
            k,
            v,
            allowed,
            is_causal=is_causal,
            dropout_p=self.dropout,
            training=self.training,
        )
        # (B, h, L_q, d/h) -> (B, L_q, d): concatenate the heads, then mix them.
        output = self.out_proj(heads.transpose(1, 2).reshape(batch, num_queries, self.embed_dim))
        if not need_weights:
            return output, None
        return output, (weights.mean(dim=1) if average_attn_weights else weights)

    @classmethod
    def from_torch(cls, module: nn.MultiheadAttention) -> MultiHeadAttention:
        """Build a :class:`MultiHeadAttention` with the weights of a PyTorch module."""
        if not isinstance(module, nn.MultiheadAttention):
            raise TypeError(f"expected torch.nn.MultiheadAttention, got {type(module).__name__}")
        if not module.batch_first:
            raise ValueError("from_torch expects nn.MultiheadAttention(batch_first=True)")
        has_bias = module.in_proj_bias is not None
        mha = cls(
            module.embed_dim,
            module.num_heads,
            dropout=module.dropout,
            bias=has_bias,
            kdim=module.kdim,
            vdim=module.vdim,
        ).to(module.out_proj.weight.dtype)
        with torch.no_grad():
            if module._qkv_same_embed_dim:
                w_q, w_k, w_v = module.in_proj_weight.chunk(3)
            else:
                w_q, w_k, w_v = module.q_proj_weight, module.k_proj_weight, module.v_proj_weight
            mha.q_proj.weight.copy_(w_q)
            mha.k_proj.weight.copy_(w_k)
            mha.v_proj.weight.copy_(w_v)
            mha.out_proj.weight.copy_(module.out_proj.weight)
            if has_bias:
                b_q, b_k, b_v = module.in_proj_bias.chunk(3)
                mha.q_proj.bias.copy_(b_q)
                mha.k_proj.bias.copy_(b_k)
                mha.v_proj.bias.copy_(b_v)
                mha.out_proj.bias.copy_(module.out_proj.bias)
        return mha

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
            f"kdim={self.kdim}, vdim={self.vdim}"
        )
