"""Sparse attention: let each query see only some keys.

Three patterns, each defined twice, on purpose: as a dense boolean ``(L, L)`` mask for
:func:`torch.nn.functional.scaled_dot_product_attention` (the reference, O(L^2) memory)
and as a FlexAttention ``mask_mod`` (Dong et al. 2024), which
``torch.compile(flex_attention)`` turns into a kernel that skips fully masked blocks.

* :class:`SlidingWindow` (local attention, Longformer's sliding window): query ``i``
  sees keys ``j`` with ``|i - j| <= window``.
* :class:`GlobalLocal` (Longformer, Beltagy et al. 2020): the window, plus the first
  ``num_global`` tokens, which see and are seen by every position.
* :class:`BlockSparse` (Sparse Transformer's fixed pattern, Child et al. 2019): blocks of
  ``block_size`` tokens see ``local_blocks`` neighbouring blocks and every ``stride``-th
  block (summary blocks).

:func:`blocked_local_attention` computes sliding-window attention in plain PyTorch by
chunks (Longformer's "sliding chunks"): queries in chunk ``c`` attend to chunks
``c-1, c, c+1`` only, about ``L * 3w`` scores instead of ``L^2``, with autograd. Compiled
FlexAttention is forward-only on CPU in this PyTorch, so CPU training uses this one.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..validation import (
    check_choice,
    check_input_dtype,
    check_int,
    check_nonnegative_int,
    check_positive_int,
    check_tensor,
)
from .core import masked_softmax

__all__ = [
    "AttentionPattern",
    "SlidingWindow",
    "GlobalLocal",
    "BlockSparse",
    "dense_sparse_attention",
    "flex_sparse_attention",
    "blocked_local_attention",
    "SparseSelfAttention",
]


def _positive_int(name: str, value, minimum: int = 1) -> None:
    check_int(name, value, minimum=minimum)


class AttentionPattern:
    """Which keys each query may see, as a dense mask and as a FlexAttention mask_mod."""

    def dense_mask(self, length: int, device=None) -> Tensor:
        """``(length, length)`` boolean mask, True = may attend."""
        check_nonnegative_int("length", length)
        positions = torch.arange(length, device=device)
        return self._allowed(positions[:, None], positions[None, :])

    def mask_mod(self):
        """``mask_mod(b, h, q_idx, kv_idx) -> bool tensor`` for FlexAttention."""

        def mask_mod(b, h, q_idx, kv_idx):
            return self._allowed(q_idx, kv_idx)

        return mask_mod

    def _allowed(self, q_idx: Tensor, kv_idx: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def density(self, length: int) -> float:
        """Fraction of the ``length x length`` scores the pattern keeps."""
        check_positive_int("length", length)
        return self.dense_mask(length).float().mean().item()


@dataclass(frozen=True)
class SlidingWindow(AttentionPattern):
    """Query ``i`` attends to keys ``j`` with ``|i - j| <= window``."""

    window: int

    def __post_init__(self) -> None:
        _positive_int("window", self.window, minimum=0)

    def _allowed(self, q_idx, kv_idx):
        return (q_idx - kv_idx).abs() <= self.window


@dataclass(frozen=True)
class GlobalLocal(AttentionPattern):
    """A sliding window plus ``num_global`` global tokens at the start of the sequence."""

    window: int
    num_global: int = 1

    def __post_init__(self) -> None:
        _positive_int("window", self.window, minimum=0)
        _positive_int("num_global", self.num_global, minimum=0)

    def _allowed(self, q_idx, kv_idx):
        local = (q_idx - kv_idx).abs() <= self.window
        return local | (q_idx < self.num_global) | (kv_idx < self.num_global)


@dataclass(frozen=True)
class BlockSparse(AttentionPattern):
    """Block ``bq`` of queries sees key block ``bk`` if ``|bq - bk| < local_blocks`` or
    ``bk % stride == 0`` (a summary block every ``stride`` blocks)."""

    block_size: int
    local_blocks: int = 1
    stride: int = 4

    def __post_init__(self) -> None:
        _positive_int("block_size", self.block_size)
        _positive_int("local_blocks", self.local_blocks)
        _positive_int("stride", self.stride)

    def _allowed(self, q_idx, kv_idx):
        q_block, kv_block = q_idx // self.block_size, kv_idx // self.block_size
        return ((q_block - kv_block).abs() < self.local_blocks) | (kv_block % self.stride == 0)


def _check_pattern(pattern) -> None:
    if not isinstance(pattern, AttentionPattern):
        raise TypeError(f"pattern={pattern!r}: expected an AttentionPattern (SlidingWindow, GlobalLocal, BlockSparse)")


def _check_qkv(query: Tensor, key: Tensor, value: Tensor) -> None:
    for name, t in (("query", query), ("key", key), ("value", value)):
        check_tensor(name, t, dtype="float", layout="(batch, heads, length, head_dim)")
        if t.dim() != 4:
            raise ValueError(f"{name} must be a float tensor (batch, heads, length, head_dim), got {tuple(t.shape)}")
    if not (query.dtype == key.dtype == value.dtype):
        raise TypeError(f"query, key and value must share a dtype, got {query.dtype}, {key.dtype}, {value.dtype}")
    if not (query.shape[2] == key.shape[2] == value.shape[2]):
        raise ValueError(
            "sparse self-attention needs queries, keys and values of the same length, got "
            f"{query.shape[2]}, {key.shape[2]}, {value.shape[2]}"
        )
    if query.shape[:2] != key.shape[:2] or key.shape[:2] != value.shape[:2] or query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"mismatched shapes: query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}"
        )


def dense_sparse_attention(query: Tensor, key: Tensor, value: Tensor, pattern: AttentionPattern) -> Tensor:
    """The reference: ``scaled_dot_product_attention`` with the pattern's dense mask."""
    _check_pattern(pattern)
    _check_qkv(query, key, value)
    mask = pattern.dense_mask(query.shape[2], device=query.device)
    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask)


# ---------------------------------------------------------------------------------
# FlexAttention: compiled once, block masks cached per (pattern, length, device)
# ---------------------------------------------------------------------------------

_flex_state: dict = {"compiled": None, "broken": None}


def _compiled_flex_attention():
    if _flex_state["compiled"] is None:
        from torch.nn.attention.flex_attention import flex_attention

        # On a CPU-only machine the C++ toolchain lookup logs "No CUDA runtime is found,
        # using CUDA_HOME=..." while compiling: true and irrelevant for a CPU kernel.
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        _flex_state["compiled"] = torch.compile(flex_attention)
    return _flex_state["compiled"]


@lru_cache(maxsize=64)
def _block_mask(pattern: AttentionPattern, length: int, device: str):
    from torch.nn.attention.flex_attention import create_block_mask

    # create_block_mask's default device is cuda: say where the mask lives.
    return create_block_mask(pattern.mask_mod(), None, None, length, length, device=device)


def flex_sparse_attention(query: Tensor, key: Tensor, value: Tensor, pattern: AttentionPattern) -> Tensor:
    """Sparse attention with compiled FlexAttention, skipping fully masked blocks.

    The compiled kernel and the block mask for each (pattern, length, device) are cached,
    so compilation is paid once per shape. Falls back to :func:`dense_sparse_attention`
    with a warning when compilation is unavailable, or when gradients are needed on CPU
    (FlexAttention has no CPU backward in this PyTorch: use :func:`blocked_local_attention`).
    """
    _check_pattern(pattern)  # before anything is compiled: a bad pattern is not a broken compiler
    _check_qkv(query, key, value)
    if query.shape[2] == 0:  # nothing to attend: no block mask for an empty sequence
        return dense_sparse_attention(query, key, value, pattern)
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    if needs_grad and query.device.type == "cpu":
        warnings.warn(
            "FlexAttention has no backward on CPU: using the dense masked reference "
            "(for training on CPU use blocked_local_attention)",
            stacklevel=2,
        )
        return dense_sparse_attention(query, key, value, pattern)
    if _flex_state["broken"] is None:
        try:
            block_mask = _block_mask(pattern, query.shape[2], str(query.device))
            return _compiled_flex_attention()(query, key, value, block_mask=block_mask)
        except Exception as error:  # no C++ compiler, unsupported platform, ...
            _flex_state["broken"] = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200]}"
            warnings.warn(
                f"FlexAttention could not be compiled ({_flex_state['broken']}): "
                "using the dense masked reference instead",
                stacklevel=2,
            )
    return dense_sparse_attention(query, key, value, pattern)


# ---------------------------------------------------------------------------------
# Blocked local attention in plain PyTorch (with autograd)
# ---------------------------------------------------------------------------------


def blocked_local_attention(query: Tensor, key: Tensor, value: Tensor, window: int) -> Tensor:
    """Sliding-window attention (``|i - j| <= window``) by chunks of ``window`` tokens.

    Each chunk of queries attends to its own chunk and the two neighbouring chunks (which
    contain every key within ``window``), so the score tensor is ``(L/w) x w x 3w`` = about
    ``3 w L`` instead of ``L^2``. Same output as :func:`dense_sparse_attention` with
    :class:`SlidingWindow`, for any length (the last chunk is padded and masked).
    """
    _check_qkv(query, key, value)
    _positive_int("window", window, minimum=0)
    batch, heads, length, dim = query.shape
    value_dim = value.shape[-1]
    if length == 0:  # no chunks: unfold needs at least one window
        return value.new_zeros(batch, heads, 0, value_dim)
    chunk = max(window, 1)
    n_chunks = math.ceil(length / chunk)
    pad = n_chunks * chunk - length

    q = F.pad(query, (0, 0, 0, pad)).view(batch, heads, n_chunks, chunk, dim)
    # Keys/values get one chunk of padding on each side, then overlapping windows of 3 chunks.
    k = F.pad(key, (0, 0, chunk, chunk + pad)).unfold(2, 3 * chunk, chunk)  # (B, H, n, dim, 3c)
    v = F.pad(value, (0, 0, chunk, chunk + pad)).unfold(2, 3 * chunk, chunk).transpose(-1, -2)

    scores = (q * dim**-0.5) @ k  # (B, H, n, c, 3c)
    chunk_start = torch.arange(n_chunks, device=query.device)[:, None, None] * chunk
    q_pos = chunk_start + torch.arange(chunk, device=query.device)[None, :, None]
    k_pos = chunk_start - chunk + torch.arange(3 * chunk, device=query.device)[None, None, :]
    allowed = ((q_pos - k_pos).abs() <= window) & (k_pos >= 0) & (k_pos < length)
    weights = masked_softmax(scores, allowed)
    out = weights @ v  # (B, H, n, c, value_dim)
    return out.reshape(batch, heads, n_chunks * chunk, value_dim)[:, :, :length]


class SparseSelfAttention(nn.Module):
    """Multi-head self-attention restricted to a pattern, with a choice of kernel.

    Args:
        dim, num_heads: model size and heads (``dim % num_heads == 0``).
        pattern: an :class:`AttentionPattern`.
        backend: ``"dense"`` (masked SDPA, any pattern, autograd), ``"blocked"``
            (:func:`blocked_local_attention`, :class:`SlidingWindow` only, autograd), or
            ``"flex"`` (compiled FlexAttention, any pattern; forward-only on CPU).

    ``forward(x (B, L, dim)) -> (B, L, dim)``.
    """

    backends = ("dense", "blocked", "flex")

    def __init__(self, dim: int, num_heads: int, pattern: AttentionPattern, backend: str = "dense") -> None:
        super().__init__()
        check_positive_int("dim", dim)
        check_positive_int("num_heads", num_heads)
        _check_pattern(pattern)
        check_choice("backend", backend, self.backends)
        if backend == "blocked" and not isinstance(pattern, SlidingWindow):
            raise ValueError(f"backend='blocked' supports SlidingWindow only, got {pattern!r}")
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim, self.num_heads, self.pattern, self.backend = dim, num_heads, pattern, backend
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        check_tensor("x", x, dtype="float", shape=(None, None, self.dim), layout=f"(batch, length, {self.dim})")
        check_input_dtype("x", x, self.qkv.weight.dtype)
        batch, length, _ = x.shape
        head_dim = self.dim // self.num_heads
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)
        if self.backend == "blocked":
            heads = blocked_local_attention(q, k, v, self.pattern.window)
        elif self.backend == "flex":
            heads = flex_sparse_attention(q, k, v, self.pattern)
        else:
            heads = dense_sparse_attention(q, k, v, self.pattern)
        return self.out(heads.transpose(1, 2).reshape(batch, length, self.dim))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, pattern={self.pattern}, backend={self.backend!r}"
