"""Positional encodings: self-attention is blind to order, these put it back.

Both modules *add* the encoding to the input and return the dropout of the sum, as
in Vaswani et al. (2017), section 3.5.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["sinusoidal_table", "SinusoidalPositionalEncoding", "LearnedPositionalEncoding"]


def sinusoidal_table(length: int, dim: int, base: float = 10_000.0) -> Tensor:
    r"""The sinusoidal encoding table ``(length, dim)``:

    .. math::
        PE_{p, 2i} = \sin(p\, \omega_i), \quad PE_{p, 2i+1} = \cos(p\, \omega_i), \quad
        \omega_i = \mathrm{base}^{-2i/\mathrm{dim}}

    Every entry lies in [-1, 1]; the frequency term multiplies the position ``p``, so
    each position gets its own pattern, and ``PE_p · PE_q`` depends only on ``p - q``.
    """
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive int, got {length!r}")
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}")
    position = torch.arange(length, dtype=torch.float64)[:, None]  # (length, 1)
    frequency = torch.exp(-math.log(base) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = position * frequency  # (length, ceil(dim / 2)): position times frequency
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles[:, : dim // 2])
    return table.float()


def _check_input(x: Tensor, dim: int, max_len: int) -> None:
    if x.dim() != 3 or x.shape[-1] != dim:
        raise ValueError(f"expected input of shape (batch, length, {dim}), got {tuple(x.shape)}")
    if x.shape[1] > max_len:
        raise ValueError(f"sequence length {x.shape[1]} exceeds max_len={max_len} of the positional encoding")


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table to a batch-first input ``(B, L, dim)``.

    Args:
        dim: model size.
        max_len: longest sequence the table covers.
        dropout: dropout applied to ``x + PE`` (the returned tensor).
    """

    def __init__(self, dim: int, max_len: int = 4096, dropout: float = 0.0, base: float = 10_000.0) -> None:
        super().__init__()
        self.dim, self.max_len = dim, max_len
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
        if not isinstance(max_len, int) or max_len < 1:
            raise ValueError(f"max_len must be a positive int, got {max_len!r}")
        self.dim, self.max_len = dim, max_len
        self.embedding = nn.Embedding(max_len, dim)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.dim, self.max_len)
        positions = torch.arange(x.shape[1], device=x.device)
        return self.dropout(x + self.embedding(positions))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_len={self.max_len}"
