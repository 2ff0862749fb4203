"""Attention, from scratch: masked softmax, scores and attention modules (``core``),
positional encodings (``positional``), the Transformer encoder block (``transformer``)
and sparse attention patterns with FlexAttention (``sparse``).

Everything is importable from ``mmtutorial.attention`` directly.
"""

from .core import (
    AdditiveAttention,
    DotProductAttention,
    MultiHeadAttention,
    additive_score,
    bilinear_score,
    causal_mask,
    dot_product_score,
    masked_softmax,
    scaled_dot_product_attention,
    scaled_dot_product_score,
    valid_lens_to_mask,
)
from .positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding, sinusoidal_table
from .sparse import (
    AttentionPattern,
    BlockSparse,
    GlobalLocal,
    SlidingWindow,
    SparseSelfAttention,
    blocked_local_attention,
    dense_sparse_attention,
    flex_sparse_attention,
)
from .transformer import TransformerEncoder, TransformerEncoderBlock

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
    "sinusoidal_table",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEncoding",
    "TransformerEncoderBlock",
    "TransformerEncoder",
    "AttentionPattern",
    "SlidingWindow",
    "GlobalLocal",
    "BlockSparse",
    "dense_sparse_attention",
    "flex_sparse_attention",
    "blocked_local_attention",
    "SparseSelfAttention",
]
