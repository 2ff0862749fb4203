"""The Transformer encoder block, built from the package's own multi-head attention.

Post-norm (Vaswani et al. 2017)::

    x = LayerNorm(x + Dropout(SelfAttention(x)))
    x = LayerNorm(x + Dropout(FeedForward(x)))

Pre-norm (Xiong et al. 2020; GPT-2, ViT), easier to train deep::

    x = x + Dropout(SelfAttention(LayerNorm(x)))
    x = x + Dropout(FeedForward(LayerNorm(x)))

with ``FeedForward(x) = W2 Dropout(act(W1 x + b1)) + b2``. Numerically equal to
:class:`torch.nn.TransformerEncoderLayer` (``batch_first=True``) with copied weights.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..validation import (
    check_bool,
    check_choice,
    check_float,
    check_input_dtype,
    check_positive_int,
    check_probability,
    check_tensor,
)
from .core import MultiHeadAttention

__all__ = ["TransformerEncoderBlock", "TransformerEncoder"]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}
_BLOCK_OPTIONS = {"ff_dim", "dropout", "activation", "norm_first", "layer_norm_eps", "bias"}


def _check_block_input(block: TransformerEncoderBlock, args: tuple, kwargs: dict) -> None:
    """The block's input ``x`` must be a float ``(batch, length, dim)`` tensor of the block's dtype."""
    x = args[0] if args else kwargs.get("x")
    check_tensor("x", x, dtype="float", shape=(None, None, block.dim), layout=f"(batch, length, {block.dim})")
    check_input_dtype("x", x, block.linear1.weight.dtype)


class TransformerEncoderBlock(nn.Module):
    """One Transformer encoder layer (self-attention + feed-forward, residuals, norms).

    Args:
        dim: model size ``d``.
        num_heads: attention heads (must divide ``dim``).
        ff_dim: hidden size of the feed-forward network.
        dropout: dropout on attention weights, after each sub-layer and inside the FFN.
        activation: ``"relu"`` or ``"gelu"``.
        norm_first: pre-norm (True) or post-norm (False, the original Transformer).

    ``forward(x (B, L, d), key_padding_mask (B, L) True = padding, mask, is_causal,
    need_weights)`` returns ``(B, L, d)``; with ``need_weights=True`` the per-head
    attention weights ``(B, h, L, L)`` are kept in ``self.attention_weights``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ff_dim: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.dim = check_positive_int("dim", dim)
        check_positive_int("num_heads", num_heads)
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        check_positive_int("ff_dim", ff_dim)
        check_probability("dropout", dropout)
        check_choice("activation", activation, sorted(_ACTIVATIONS))
        check_bool("norm_first", norm_first)
        check_float("layer_norm_eps", layer_norm_eps, minimum=0.0, min_inclusive=False)
        check_bool("bias", bias)
        self.self_attn = MultiHeadAttention(dim, num_heads, dropout=dropout, bias=bias)
        self.linear1 = nn.Linear(dim, ff_dim, bias=bias)
        self.linear2 = nn.Linear(ff_dim, dim, bias=bias)
        self.norm1 = nn.LayerNorm(dim, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(dim, eps=layer_norm_eps, bias=bias)
        self.dropout = nn.Dropout(dropout)  # inside the feed-forward network
        self.dropout1 = nn.Dropout(dropout)  # after attention
        self.dropout2 = nn.Dropout(dropout)  # after the feed-forward network
        self.activation_name = activation
        self.norm_first = norm_first
        self.attention_weights: Tensor | None = None
        # Checked in a hook, so forward (printed in notebook 04) shows only the computation.
        self.register_forward_pre_hook(_check_block_input, with_kwargs=True)

    def _attend(self, x, key_padding_mask, mask, is_causal, need_weights) -> Tensor:
        out, weights = self.self_attn(
            x,
            x,
            x,
            key_padding_mask=key_padding_mask,
            mask=mask,
            is_causal=is_causal,
            need_weights=need_weights,
            average_attn_weights=False,
        )
        self.attention_weights = weights
        return self.dropout1(out)

    def _feed_forward(self, x: Tensor) -> Tensor:
        hidden = self.dropout(_ACTIVATIONS[self.activation_name](self.linear1(x)))
        return self.dropout2(self.linear2(hidden))

    def forward(
        self,
        x: Tensor,
        key_padding_mask: Tensor | None = None,
        mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
    ) -> Tensor:
        if self.norm_first:
            x = x + self._attend(self.norm1(x), key_padding_mask, mask, is_causal, need_weights)
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self._attend(x, key_padding_mask, mask, is_causal, need_weights))
        return self.norm2(x + self._feed_forward(x))

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> TransformerEncoderBlock:
        """A block with the weights and settings of a PyTorch encoder layer."""
        if not isinstance(layer, nn.TransformerEncoderLayer):
            raise TypeError(f"expected torch.nn.TransformerEncoderLayer, got {type(layer).__name__}")
        activation = {F.relu: "relu", F.gelu: "gelu"}.get(layer.activation)
        if activation is None:
            raise ValueError(f"unsupported activation {layer.activation!r}: expected relu or gelu")
        block = cls(
            layer.self_attn.embed_dim,
            layer.self_attn.num_heads,
            ff_dim=layer.linear1.out_features,
            dropout=layer.dropout.p,
            activation=activation,
            norm_first=layer.norm_first,
            layer_norm_eps=layer.norm1.eps,
            bias=layer.linear1.bias is not None,
        )
        block.self_attn = MultiHeadAttention.from_torch(layer.self_attn)
        for name in ("linear1", "linear2", "norm1", "norm2"):
            getattr(block, name).load_state_dict(getattr(layer, name).state_dict())
        return block.to(layer.linear1.weight.dtype)


class TransformerEncoder(nn.Module):
    """A stack of :class:`TransformerEncoderBlock` (plus a final LayerNorm for pre-norm).

    ``block_kwargs`` are the block's keyword arguments (``ff_dim``, ``dropout``,
    ``activation``, ``norm_first``, ``layer_norm_eps``, ``bias``).

    ``forward(x, key_padding_mask=None, mask=None, is_causal=False, need_weights=False)``;
    with ``need_weights`` each block keeps its weights in ``block.attention_weights``.
    """

    def __init__(self, num_layers: int, dim: int, num_heads: int, **block_kwargs) -> None:
        super().__init__()
        check_positive_int("num_layers", num_layers)
        unknown = sorted(set(block_kwargs) - _BLOCK_OPTIONS)
        if unknown:
            raise TypeError(
                f"unknown TransformerEncoder option(s) {unknown}: expected some of {sorted(_BLOCK_OPTIONS)}"
            )
        self.layers = nn.ModuleList(TransformerEncoderBlock(dim, num_heads, **block_kwargs) for _ in range(num_layers))
        self.norm = nn.LayerNorm(dim) if block_kwargs.get("norm_first", False) else nn.Identity()

    def forward(self, x: Tensor, key_padding_mask=None, mask=None, is_causal=False, need_weights=False) -> Tensor:
        for layer in self.layers:
            x = layer(x, key_padding_mask=key_padding_mask, mask=mask, is_causal=is_causal, need_weights=need_weights)
        return self.norm(x)

    @property
    def attention_weights(self) -> list[Tensor | None]:
        """Per layer, the weights kept by the last forward with ``need_weights=True``."""
        return [layer.attention_weights for layer in self.layers]
