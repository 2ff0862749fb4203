"""Positional encodings: self-attention is blind to order, these put it back.

Both modules *add* the encoding to the input and return the dropout of the sum, as
in Vaswani et al. (2017), section 3.5.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..validation import check_float, check_positive_int, check_probability, check_tensor

__all__ = ["sinusoidal_table", "SinusoidalPositionalEncoding", "LearnedPositionalEncoding"]


def sinusoidal_table(length: int, dim: int, base: float = 10_000.0) -> Tensor:
    r"""The sinusoidal encoding table ``(length, dim)``:

    .. math::
        PE_{p, 2i} = \sin(p\, \omega_i), \quad PE_{p, 2i+1} = \cos(p\, \omega_i), \quad
        \omega_i = \mathrm{base}^{-2i/\mathrm{dim}}

    Every entry lies in [-1, 1]; the frequency term multiplies the position ``p``, so
    each position gets its own pattern, and ``PE_p · PE_q`` depends only on ``p - q``.
    ``base`` must exceed 1: at 1 every frequency is 1 and all pairs of dims are equal.
    """
    check_positive_int("length", length)
    check_positive_int("dim", dim)
    base = check_float("base", base, minimum=1.0, min_inclusive=False)
    position = torch.arange(length, dtype=torch.float64)[:, None]  # (length, 1)
    frequency = torch.exp(-math.log(base) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = position * frequency  # (length, ceil(dim / 2)): position times frequency
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles[:, : dim // 2])
    return table.float()


def _check_input(x: Tensor, dim: int, max_len: int) -> None:
    check_tensor("x", x, dtype="float", shape=(None, None, dim), layout=f"(batch, length, {dim})")
    if x.shape[1] > max_len:
        raise ValueError(f"sequence length {x.shape[1]} exceeds max_len={max_len} of the positional encoding")


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table to a batch-first input ``(B, L, dim)``.

    Args:
        dim: model size.
        max_len: longest sequence the table covers.
        dropout: dropout applied to ``x + PE`` (the returned tensor).
        base: the wavelength scale of :func:`sinusoidal_table` (> 1).
    """

    def __init__(self, dim: int, max_len: int = 4096, dropout: float = 0.0, base: float = 10_000.0) -> None:
        super().__init__()
        self.dim = check_positive_int("dim", dim)
        self.max_len = check_positive_int("max_len", max_len)
        check_probability("dropout", dropout)
        self.dropout = nn.Dropout(dropout)
        # A buffer: moves with .to(device), not a parameter, not saved (it is a formula).
        self.register_buffer("table", sinusoidal_table(max_len, dim, base), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.dim, self.max_len)
        return self.dropout(x + self.table[: x.shape[1]].to(x.dtype))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_len={self.max_len}"


class LearnedPositionalEncoding(nn.Module):
    """Adds a learned vector per position (as in BERT) to ``(B, L, dim)``."""

    def __init__(self, dim: int, max_len: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        self.dim = check_positive_int("dim", dim)
        self.max_len = check_positive_int("max_len", max_len)
        check_probability("dropout", dropout)
        self.embedding = nn.Embedding(max_len, dim)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.dim, self.max_len)
        positions = torch.arange(x.shape[1], device=x.device)
        return self.dropout(x + self.embedding(positions))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_len={self.max_len}"
