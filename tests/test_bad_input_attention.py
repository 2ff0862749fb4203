"""Bad and edge inputs for mmtutorial.attention: every public function and module gets
wrong types, sizes, shapes, dtypes, NaN/inf and empty inputs, and must either raise a
clear error or give the right result. Masks must *remove* what they mask: NaN or inf in
masked scores, padded keys or padded values changes neither outputs nor gradients."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bad_input_common import POISON, all_finite, backward_grads, raises_clearly
from torch import nn

from mmtutorial import attention as A


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


S = rand(2, 3, 4)
Q, K, V = rand(2, 3, 8), rand(2, 5, 8, seed=1), rand(2, 5, 6, seed=2)
Q4 = rand(2, 2, 10, 4)
LENS = torch.tensor([2, 5])
PAD = torch.arange(5)[None, :] >= LENS[:, None]  # (2, 5), True = padding
sdpa = A.scaled_dot_product_attention

BAD = [
    # masked_softmax, valid_lens_to_mask, causal_mask
    ("masked_softmax scores=list", lambda: A.masked_softmax([[1.0, 2.0]]), TypeError, "scores"),
    (
        "masked_softmax integer scores",
        lambda: A.masked_softmax(torch.ones(2, 3, dtype=torch.long)),
        TypeError,
        "scores",
    ),
    (
        "masked_softmax bool scores",
        lambda: A.masked_softmax(torch.ones(2, 3, dtype=torch.bool)),
        TypeError,
        "scores",
    ),
    (
        "masked_softmax 0-d scores",
        lambda: A.masked_softmax(torch.tensor(1.0)),
        ValueError,
        "scores",
    ),
    (
        "masked_softmax float mask",
        lambda: A.masked_softmax(S, torch.ones(2, 3, 4)),
        TypeError,
        "mask must be a boolean",
    ),
    ("masked_softmax list mask", lambda: A.masked_softmax(S, [[True]]), TypeError, "mask"),
    (
        "masked_softmax mask of the wrong shape",
        lambda: A.masked_softmax(S, torch.ones(2, 3, 5, dtype=torch.bool)),
        ValueError,
        "mask of shape (2, 3, 5)",
    ),
    (
        "masked_softmax float valid_lens",
        lambda: A.masked_softmax(S, valid_lens=torch.tensor([1.0, 2.0])),
        TypeError,
        "valid_lens",
    ),
    (
        "masked_softmax valid_lens > keys",
        lambda: A.masked_softmax(S, valid_lens=torch.tensor([1, 9])),
        ValueError,
        "valid_lens must lie in [0, 4]",
    ),
    (
        "masked_softmax negative valid_lens",
        lambda: A.masked_softmax(S, valid_lens=torch.tensor([-1, 2])),
        ValueError,
        "valid_lens",
    ),
    (
        "masked_softmax valid_lens batch",
        lambda: A.masked_softmax(S, valid_lens=torch.tensor([1, 2, 3])),
        ValueError,
        "valid_lens",
    ),
    (
        "masked_softmax 3-D valid_lens",
        lambda: A.masked_softmax(S, valid_lens=torch.ones(2, 3, 1, dtype=torch.long)),
        ValueError,
        "valid_lens",
    ),
    (
        "masked_softmax valid_lens with 2-D scores",
        lambda: A.masked_softmax(rand(3, 4), valid_lens=torch.tensor([1, 2, 3])),
        ValueError,
        "valid_lens",
    ),
    (
        "valid_lens_to_mask num_keys=-1",
        lambda: A.valid_lens_to_mask(torch.tensor([1]), -1),
        ValueError,
        "num_keys=-1",
    ),
    (
        "valid_lens_to_mask num_keys=True",
        lambda: A.valid_lens_to_mask(torch.tensor([1]), True),
        TypeError,
        "num_keys=True",
    ),
    (
        "valid_lens_to_mask num_keys=2.5",
        lambda: A.valid_lens_to_mask(torch.tensor([1]), 2.5),
        TypeError,
        "num_keys=2.5",
    ),
    (
        "valid_lens_to_mask float lens",
        lambda: A.valid_lens_to_mask(torch.tensor([1.0]), 3),
        TypeError,
        "valid_lens",
    ),
    ("causal_mask -1", lambda: A.causal_mask(-1), ValueError, "num_queries=-1"),
    ("causal_mask 2.5", lambda: A.causal_mask(2.5), TypeError, "num_queries=2.5"),
    ("causal_mask True", lambda: A.causal_mask(True), TypeError, "num_queries=True"),
    ("causal_mask num_keys=-2", lambda: A.causal_mask(3, -2), ValueError, "num_keys=-2"),
    # scores
    (
        "dot_product_score feature sizes differ",
        lambda: A.dot_product_score(rand(2, 3, 4), rand(2, 5, 6)),
        ValueError,
        "query (2, 3, 4) vs key (2, 5, 6)",
    ),
    (
        "dot_product_score integer query",
        lambda: A.dot_product_score(torch.ones(2, 3, 4, dtype=torch.long), rand(2, 5, 4)),
        TypeError,
        "query",
    ),
    (
        "dot_product_score 1-D query",
        lambda: A.dot_product_score(rand(4), rand(2, 5, 4)),
        ValueError,
        "query",
    ),
    (
        "dot_product_score key=list",
        lambda: A.dot_product_score(rand(2, 3, 4), [[1.0]]),
        TypeError,
        "key",
    ),
    (
        "dot_product_score float64 query",
        lambda: A.dot_product_score(rand(2, 3, 4, dtype=torch.float64), rand(2, 5, 4)),
        TypeError,
        "share a dtype",
    ),
    (
        "dot_product_score batch dims",
        lambda: A.dot_product_score(rand(2, 3, 4), rand(3, 5, 4)),
        ValueError,
        "broadcast",
    ),
    (
        "scaled score scale=nan",
        lambda: A.scaled_dot_product_score(Q, K, scale=math.nan),
        ValueError,
        "scale=nan",
    ),
    (
        "scaled score scale=inf",
        lambda: A.scaled_dot_product_score(Q, K, scale=math.inf),
        ValueError,
        "scale=inf",
    ),
    (
        "scaled score scale='2'",
        lambda: A.scaled_dot_product_score(Q, K, scale="2"),
        TypeError,
        "scale='2'",
    ),
    (
        "scaled score scale=True",
        lambda: A.scaled_dot_product_score(Q, K, scale=True),
        TypeError,
        "scale=True",
    ),
    (
        "scaled score scale=-1",
        lambda: A.scaled_dot_product_score(Q, K, scale=-1.0),
        ValueError,
        "scale=-1.0",
    ),
    (
        "bilinear_score weight shape",
        lambda: A.bilinear_score(Q, K, torch.eye(3)),
        ValueError,
        "weight",
    ),
    (
        "bilinear_score integer weight",
        lambda: A.bilinear_score(Q, K, torch.eye(8, dtype=torch.long)),
        TypeError,
        "weight",
    ),
    ("bilinear_score weight=list", lambda: A.bilinear_score(Q, K, [[1.0]]), TypeError, "weight"),
    (
        "bilinear_score float64 weight",
        lambda: A.bilinear_score(Q, K, torch.eye(8, dtype=torch.float64)),
        TypeError,
        "weight must have the dtype of the query",
    ),
    (
        "additive_score 2-D v",
        lambda: A.additive_score(Q, K, rand(5, 8), rand(5, 8), rand(1, 5)),
        ValueError,
        "v must",
    ),
    (
        "additive_score v=list",
        lambda: A.additive_score(Q, K, rand(5, 8), rand(5, 8), [1.0] * 5),
        TypeError,
        "v must",
    ),
    (
        "additive_score w_query shape",
        lambda: A.additive_score(Q, K, rand(5, 7), rand(5, 8), rand(5)),
        ValueError,
        "w_query",
    ),
    (
        "additive_score bias shape",
        lambda: A.additive_score(Q, K, rand(5, 8), rand(5, 8), rand(5), rand(4)),
        ValueError,
        "bias",
    ),
    (
        "additive_score float64 w_key",
        lambda: A.additive_score(Q, K, rand(5, 8), rand(5, 8).double(), rand(5)),
        TypeError,
        "w_key",
    ),
    # scaled_dot_product_attention
    ("sdpa dropout_p=1", lambda: sdpa(Q, K, V, dropout_p=1.0), ValueError, "dropout_p=1.0"),
    ("sdpa dropout_p='0.1'", lambda: sdpa(Q, K, V, dropout_p="0.1"), TypeError, "dropout_p='0.1'"),
    ("sdpa dropout_p=nan", lambda: sdpa(Q, K, V, dropout_p=math.nan), ValueError, "dropout_p=nan"),
    ("sdpa scale=nan", lambda: sdpa(Q, K, V, scale=math.nan), ValueError, "scale=nan"),
    ("sdpa is_causal='yes'", lambda: sdpa(Q, K, V, is_causal="yes"), TypeError, "is_causal='yes'"),
    (
        "sdpa float mask with is_causal",
        lambda: sdpa(Q, K, V, torch.ones(3, 5), is_causal=True),
        TypeError,
        "mask must be a boolean",
    ),
    (
        "sdpa key/value lengths",
        lambda: sdpa(Q, K, rand(2, 4, 6)),
        ValueError,
        "key (2, 5, 8) vs value (2, 4, 6)",
    ),
    ("sdpa float64 value", lambda: sdpa(Q, K, V.double()), TypeError, "share a dtype"),
    # AdditiveAttention, DotProductAttention
    (
        "AdditiveAttention query_dim=True",
        lambda: A.AdditiveAttention(True, 4, 8),
        TypeError,
        "query_dim=True",
    ),
    (
        "AdditiveAttention query_dim=0",
        lambda: A.AdditiveAttention(0, 4, 8),
        ValueError,
        "query_dim=0",
    ),
    (
        "AdditiveAttention hidden_dim=2.0",
        lambda: A.AdditiveAttention(4, 4, 2.0),
        TypeError,
        "hidden_dim=2.0",
    ),
    (
        "AdditiveAttention dropout=1.5",
        lambda: A.AdditiveAttention(4, 4, 8, dropout=1.5),
        ValueError,
        "dropout=1.5",
    ),
    (
        "AdditiveAttention dropout='0.1'",
        lambda: A.AdditiveAttention(4, 4, 8, dropout="0.1"),
        TypeError,
        "dropout='0.1'",
    ),
    (
        "AdditiveAttention bias='yes'",
        lambda: A.AdditiveAttention(4, 4, 8, bias="yes"),
        TypeError,
        "bias='yes'",
    ),
    (
        "AdditiveAttention query size",
        lambda: A.AdditiveAttention(8, 8, 16)(rand(2, 3, 5), K, V),
        ValueError,
        "query must have shape (..., length, 8)",
    ),
    (
        "AdditiveAttention float64 inputs",
        lambda: A.AdditiveAttention(8, 8, 16)(Q.double(), K.double(), V.double()),
        TypeError,
        "float32",
    ),
    (
        "DotProductAttention scaled='no'",
        lambda: A.DotProductAttention(scaled="no"),
        TypeError,
        "scaled='no'",
    ),
    (
        "DotProductAttention dropout=-0.1",
        lambda: A.DotProductAttention(dropout=-0.1),
        ValueError,
        "dropout=-0.1",
    ),
    # MultiHeadAttention
    ("MHA embed_dim=True", lambda: A.MultiHeadAttention(True, 1), TypeError, "embed_dim=True"),
    ("MHA embed_dim=8.0", lambda: A.MultiHeadAttention(8.0, 2), TypeError, "embed_dim=8.0"),
    ("MHA num_heads=0", lambda: A.MultiHeadAttention(8, 0), ValueError, "num_heads=0"),
    (
        "MHA heads do not divide",
        lambda: A.MultiHeadAttention(8, 3),
        ValueError,
        "divisible by num_heads (3)",
    ),
    ("MHA kdim=-1", lambda: A.MultiHeadAttention(8, 2, kdim=-1), ValueError, "kdim=-1"),
    ("MHA kdim=0", lambda: A.MultiHeadAttention(8, 2, kdim=0), ValueError, "kdim=0"),
    ("MHA vdim=2.5", lambda: A.MultiHeadAttention(8, 2, vdim=2.5), TypeError, "vdim=2.5"),
    ("MHA dropout=2", lambda: A.MultiHeadAttention(8, 2, dropout=2), ValueError, "dropout=2"),
    ("MHA bias='no'", lambda: A.MultiHeadAttention(8, 2, bias="no"), TypeError, "bias='no'"),
    (
        "MHA float64 inputs",
        lambda: A.MultiHeadAttention(8, 2)(Q.double(), K.double(), K.double()),
        TypeError,
        "query=<tensor of shape (2, 3, 8), float64>",
    ),
    (
        "MHA 2-D query",
        lambda: A.MultiHeadAttention(8, 2)(rand(3, 8), K, K),
        ValueError,
        "query must have shape",
    ),
    ("MHA query=list", lambda: A.MultiHeadAttention(8, 2)([[1.0]], K, K), TypeError, "query"),
    (
        "MHA float key_padding_mask",
        lambda: A.MultiHeadAttention(8, 2)(Q, K, K, key_padding_mask=torch.zeros(2, 5)),
        TypeError,
        "key_padding_mask",
    ),
    (
        "MHA list key_padding_mask",
        lambda: A.MultiHeadAttention(8, 2)(Q, K, K, key_padding_mask=[[False] * 5] * 2),
        TypeError,
        "key_padding_mask",
    ),
    (
        "MHA key_padding_mask shape",
        lambda: A.MultiHeadAttention(8, 2)(Q, K, K, key_padding_mask=PAD[:, :4]),
        ValueError,
        "key_padding_mask",
    ),
    (
        "MHA float mask with key_padding_mask",
        lambda: A.MultiHeadAttention(8, 2)(Q, K, K, key_padding_mask=PAD, mask=torch.ones(3, 5)),
        TypeError,
        "mask must be a boolean",
    ),
    (
        "MHA float mask",
        lambda: A.MultiHeadAttention(8, 2)(Q, K, K, mask=torch.ones(3, 5)),
        TypeError,
        "mask",
    ),
    (
        "MHA mask shape",
        lambda: A.MultiHeadAttention(8, 2)(Q, K, K, mask=torch.ones(3, 6, dtype=torch.bool)),
        ValueError,
        "mask of shape (3, 6)",
    ),
    (
        "MHA 3-D mask batch",
        lambda: A.MultiHeadAttention(8, 2)(Q, K, K, mask=torch.ones(3, 3, 5, dtype=torch.bool)),
        ValueError,
        "mask of shape",
    ),
    (
        "MHA batch sizes differ",
        lambda: A.MultiHeadAttention(8, 2)(Q, rand(3, 5, 8), rand(3, 5, 8)),
        ValueError,
        "batch size",
    ),
    (
        "MHA is_causal='no'",
        lambda: A.MultiHeadAttention(8, 2)(Q, K, K, is_causal="no"),
        TypeError,
        "is_causal",
    ),
    (
        "MHA from_torch(Linear)",
        lambda: A.MultiHeadAttention.from_torch(nn.Linear(2, 2)),
        TypeError,
        "MultiheadAttention",
    ),
    # positional encodings
    ("sinusoidal_table length=0", lambda: A.sinusoidal_table(0, 4), ValueError, "length=0"),
    ("sinusoidal_table length=True", lambda: A.sinusoidal_table(True, 4), TypeError, "length=True"),
    ("sinusoidal_table dim=3.0", lambda: A.sinusoidal_table(3, 3.0), TypeError, "dim=3.0"),
    (
        "sinusoidal_table base=1",
        lambda: A.sinusoidal_table(4, 4, base=1),
        ValueError,
        "base=1: expected a finite number > 1",
    ),
    ("sinusoidal_table base=0", lambda: A.sinusoidal_table(4, 4, base=0), ValueError, "base=0"),
    ("sinusoidal_table base=-5", lambda: A.sinusoidal_table(4, 4, base=-5), ValueError, "base=-5"),
    (
        "sinusoidal_table base=nan",
        lambda: A.sinusoidal_table(4, 4, base=math.nan),
        ValueError,
        "base=nan",
    ),
    (
        "sinusoidal_table base='1e4'",
        lambda: A.sinusoidal_table(4, 4, base="1e4"),
        TypeError,
        "base='1e4'",
    ),
    ("SinusoidalPE dim=0", lambda: A.SinusoidalPositionalEncoding(0), ValueError, "dim=0"),
    (
        "SinusoidalPE max_len=0",
        lambda: A.SinusoidalPositionalEncoding(8, max_len=0),
        ValueError,
        "max_len=0",
    ),
    (
        "SinusoidalPE dropout=2",
        lambda: A.SinusoidalPositionalEncoding(8, dropout=2),
        ValueError,
        "dropout=2",
    ),
    (
        "SinusoidalPE base=1",
        lambda: A.SinusoidalPositionalEncoding(8, base=1),
        ValueError,
        "base=1",
    ),
    (
        "SinusoidalPE integer x",
        lambda: A.SinusoidalPositionalEncoding(8)(torch.ones(2, 3, 8, dtype=torch.long)),
        TypeError,
        "x=<tensor of shape (2, 3, 8), int64>",
    ),
    ("SinusoidalPE x=list", lambda: A.SinusoidalPositionalEncoding(8)([[1.0]]), TypeError, "x="),
    (
        "SinusoidalPE 2-D x",
        lambda: A.SinusoidalPositionalEncoding(8)(rand(3, 8)),
        ValueError,
        "(batch, length, 8)",
    ),
    (
        "SinusoidalPE too long",
        lambda: A.SinusoidalPositionalEncoding(8, max_len=16)(rand(1, 17, 8)),
        ValueError,
        "max_len=16",
    ),
    ("LearnedPE dim=0", lambda: A.LearnedPositionalEncoding(0), ValueError, "dim=0"),
    ("LearnedPE dim=-1", lambda: A.LearnedPositionalEncoding(-1), ValueError, "dim=-1"),
    (
        "LearnedPE max_len=True",
        lambda: A.LearnedPositionalEncoding(8, max_len=True),
        TypeError,
        "max_len=True",
    ),
    (
        "LearnedPE integer x",
        lambda: A.LearnedPositionalEncoding(8)(torch.ones(2, 3, 8, dtype=torch.long)),
        TypeError,
        "x=",
    ),
    # Transformer
    ("TransformerEncoderBlock dim=0", lambda: A.TransformerEncoderBlock(0, 1), ValueError, "dim=0"),
    (
        "TransformerEncoderBlock heads do not divide",
        lambda: A.TransformerEncoderBlock(8, 3),
        ValueError,
        "num_heads (3)",
    ),
    (
        "TransformerEncoderBlock ff_dim=True",
        lambda: A.TransformerEncoderBlock(8, 2, ff_dim=True),
        TypeError,
        "ff_dim=True",
    ),
    (
        "TransformerEncoderBlock dropout=1",
        lambda: A.TransformerEncoderBlock(8, 2, dropout=1.0),
        ValueError,
        "dropout=1.0",
    ),
    (
        "TransformerEncoderBlock activation",
        lambda: A.TransformerEncoderBlock(8, 2, activation="tanh"),
        ValueError,
        "activation='tanh'",
    ),
    (
        "TransformerEncoderBlock layer_norm_eps=-1",
        lambda: A.TransformerEncoderBlock(8, 2, layer_norm_eps=-1.0),
        ValueError,
        "layer_norm_eps=-1.0",
    ),
    (
        "TransformerEncoderBlock norm_first='yes'",
        lambda: A.TransformerEncoderBlock(8, 2, norm_first="yes"),
        TypeError,
        "norm_first='yes'",
    ),
    (
        "TransformerEncoderBlock 2-D x",
        lambda: A.TransformerEncoderBlock(8, 2)(rand(3, 8)),
        ValueError,
        "x=",
    ),
    (
        "TransformerEncoderBlock x size",
        lambda: A.TransformerEncoderBlock(8, 2)(rand(2, 3, 6)),
        ValueError,
        "x=",
    ),
    (
        "TransformerEncoderBlock float64 x",
        lambda: A.TransformerEncoderBlock(8, 2)(rand(2, 3, 8, dtype=torch.float64)),
        TypeError,
        "x=",
    ),
    (
        "TransformerEncoderBlock from_torch(Linear)",
        lambda: A.TransformerEncoderBlock.from_torch(nn.Linear(2, 2)),
        TypeError,
        "TransformerEncoderLayer",
    ),
    (
        "TransformerEncoder num_layers=True",
        lambda: A.TransformerEncoder(True, 8, 2),
        TypeError,
        "num_layers=True",
    ),
    (
        "TransformerEncoder num_layers=0",
        lambda: A.TransformerEncoder(0, 8, 2),
        ValueError,
        "num_layers=0",
    ),
    ("TransformerEncoder dim=0", lambda: A.TransformerEncoder(1, 0, 1), ValueError, "dim=0"),
    (
        "TransformerEncoder unknown option",
        lambda: A.TransformerEncoder(1, 8, 2, ffdim=16),
        TypeError,
        "['ffdim']",
    ),
    # sparse attention
    ("SlidingWindow -1", lambda: A.SlidingWindow(-1), ValueError, "window=-1"),
    ("SlidingWindow True", lambda: A.SlidingWindow(True), TypeError, "window=True"),
    ("SlidingWindow 2.0", lambda: A.SlidingWindow(2.0), TypeError, "window=2.0"),
    ("GlobalLocal num_global=-1", lambda: A.GlobalLocal(2, -1), ValueError, "num_global=-1"),
    ("BlockSparse block_size=0", lambda: A.BlockSparse(0), ValueError, "block_size=0"),
    ("BlockSparse stride=0", lambda: A.BlockSparse(4, stride=0), ValueError, "stride=0"),
    ("dense_mask(-1)", lambda: A.SlidingWindow(2).dense_mask(-1), ValueError, "length=-1"),
    ("dense_mask(2.5)", lambda: A.SlidingWindow(2).dense_mask(2.5), TypeError, "length=2.5"),
    ("density(0)", lambda: A.SlidingWindow(2).density(0), ValueError, "length=0"),
    (
        "dense_sparse_attention pattern='window'",
        lambda: A.dense_sparse_attention(Q4, Q4, Q4, "window"),
        TypeError,
        "pattern='window'",
    ),
    (
        "dense_sparse_attention integer query",
        lambda: A.dense_sparse_attention(Q4.long(), Q4, Q4, A.SlidingWindow(2)),
        TypeError,
        "query=",
    ),
    (
        "dense_sparse_attention float64 key",
        lambda: A.dense_sparse_attention(Q4, Q4.double(), Q4, A.SlidingWindow(2)),
        TypeError,
        "share a dtype",
    ),
    (
        "dense_sparse_attention 3-D",
        lambda: A.dense_sparse_attention(rand(2, 10, 4), rand(2, 10, 4), rand(2, 10, 4), A.SlidingWindow(2)),
        ValueError,
        "query",
    ),
    (
        "flex_sparse_attention pattern=None",
        lambda: A.flex_sparse_attention(Q4, Q4, Q4, None),
        TypeError,
        "pattern=None",
    ),
    (
        "blocked_local_attention window=-1",
        lambda: A.blocked_local_attention(Q4, Q4, Q4, -1),
        ValueError,
        "window=-1",
    ),
    (
        "blocked_local_attention window=True",
        lambda: A.blocked_local_attention(Q4, Q4, Q4, True),
        TypeError,
        "window=True",
    ),
    (
        "SparseSelfAttention num_heads=0",
        lambda: A.SparseSelfAttention(8, 0, A.SlidingWindow(2)),
        ValueError,
        "num_heads=0",
    ),
    (
        "SparseSelfAttention num_heads=True",
        lambda: A.SparseSelfAttention(8, True, A.SlidingWindow(2)),
        TypeError,
        "num_heads=True",
    ),
    (
        "SparseSelfAttention dim=0",
        lambda: A.SparseSelfAttention(0, 1, A.SlidingWindow(2)),
        ValueError,
        "dim=0",
    ),
    (
        "SparseSelfAttention pattern='window'",
        lambda: A.SparseSelfAttention(8, 2, "window"),
        TypeError,
        "pattern=",
    ),
    (
        "SparseSelfAttention blocked needs SlidingWindow",
        lambda: A.SparseSelfAttention(8, 2, A.GlobalLocal(2), backend="blocked"),
        ValueError,
        "SlidingWindow only",
    ),
    (
        "SparseSelfAttention backend='sparse'",
        lambda: A.SparseSelfAttention(8, 2, A.SlidingWindow(2), backend="sparse"),
        ValueError,
        "backend='sparse'",
    ),
    (
        "SparseSelfAttention float64 x",
        lambda: A.SparseSelfAttention(8, 2, A.SlidingWindow(2))(rand(2, 10, 8).double()),
        TypeError,
        "x=",
    ),
    (
        "SparseSelfAttention 2-D x",
        lambda: A.SparseSelfAttention(8, 2, A.SlidingWindow(2))(rand(10, 8)),
        ValueError,
        "x=",
    ),
]


@pytest.mark.parametrize(("make", "error", "fragment"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_input_raises_a_clear_error(make, error, fragment):
    raises_clearly(error, make, fragment)


# --- legitimate edge inputs work ------------------------------------------------------


def test_empty_inputs_give_empty_or_zero_results():
    assert A.causal_mask(0).shape == (0, 0)
    assert A.SlidingWindow(2).dense_mask(0).shape == (0, 0)
    assert A.masked_softmax(rand(2, 3, 0), torch.ones(2, 3, 0, dtype=torch.bool)).shape == (2, 3, 0)
    assert sdpa(rand(2, 0, 8), K, V)[0].shape == (2, 0, 6)
    out, weights = sdpa(Q, rand(2, 0, 8), rand(2, 0, 6))  # no keys: every query reads nothing
    assert out.shape == (2, 3, 6) and torch.all(out == 0) and weights.shape == (2, 3, 0)
    assert sdpa(rand(0, 3, 8), rand(0, 5, 8), rand(0, 5, 6))[0].shape == (0, 3, 6)
    mha = A.MultiHeadAttention(8, 2)
    assert mha(rand(0, 3, 8), rand(0, 5, 8), rand(0, 5, 8))[0].shape == (0, 3, 8)
    assert all_finite(mha(Q, rand(2, 0, 8), rand(2, 0, 8))[0])


def test_blocked_local_attention_at_length_zero():
    """Used to crash ('maximum size for tensor at dimension 2 is 4 but size is 6')."""
    empty = rand(1, 1, 0, 4)
    assert A.blocked_local_attention(empty, empty, empty, 2).shape == (1, 1, 0, 4)
    assert A.dense_sparse_attention(empty, empty, empty, A.SlidingWindow(2)).shape == (1, 1, 0, 4)


@pytest.mark.parametrize("backend", ["dense", "blocked"])
def test_sparse_self_attention_at_length_zero(backend):
    module = A.SparseSelfAttention(8, 2, A.SlidingWindow(2), backend=backend)
    assert module(rand(2, 0, 8)).shape == (2, 0, 8)


def test_valid_lens_may_be_a_list_and_a_window_longer_than_the_sequence_is_dense():
    assert torch.equal(A.masked_softmax(S, valid_lens=[1, 2]), A.masked_softmax(S, valid_lens=torch.tensor([1, 2])))
    dense = A.dense_sparse_attention(Q4, Q4, Q4, A.SlidingWindow(50))
    assert torch.allclose(A.blocked_local_attention(Q4, Q4, Q4, 50), dense, atol=1e-5)
    values = rand(2, 2, 10, 3, seed=4)  # values may have their own size
    assert torch.allclose(
        A.blocked_local_attention(Q4, Q4, values, 2),
        A.dense_sparse_attention(Q4, Q4, values, A.SlidingWindow(2)),
        atol=1e-5,
    )


def test_other_float_dtypes_work_where_nothing_is_learned():
    x = rand(2, 3, 8, dtype=torch.float64)
    assert A.SinusoidalPositionalEncoding(8)(x).dtype == torch.float64
    assert A.LearnedPositionalEncoding(8)(x).dtype == torch.float64
    assert A.sinusoidal_table(4, 5).shape == (4, 5)


def test_a_float64_module_takes_float64_and_autocast_mixes_dtypes():
    mha = A.MultiHeadAttention(8, 2).double()
    assert mha(Q.double(), K.double(), K.double())[0].dtype == torch.float64
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = A.MultiHeadAttention(8, 2)(Q.bfloat16(), K, K)
    assert out.dtype == torch.bfloat16


# --- masks remove what they mask --------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(data=st.data(), poison=POISON)
def test_masked_softmax_ignores_whatever_masked_scores_hold(data, poison):
    b, q, k = (
        data.draw(st.integers(1, 3)),
        data.draw(st.integers(1, 4)),
        data.draw(st.integers(1, 5)),
    )
    mask = torch.tensor(data.draw(st.lists(st.booleans(), min_size=b * q * k, max_size=b * q * k))).view(b, q, k)
    scores = rand(b, q, k, seed=data.draw(st.integers(0, 100)), dtype=torch.float64)
    poisoned = scores.masked_fill(~mask, poison).requires_grad_()
    weights = A.masked_softmax(poisoned, mask)
    assert torch.equal(weights, A.masked_softmax(scores.masked_fill(~mask, 0.0), mask))
    assert torch.all(weights[~mask] == 0) and all_finite(weights)
    (grad,) = backward_grads(weights, poisoned)
    assert all_finite(grad) and torch.all(grad[~mask] == 0)


def _padding_case(data):
    b, q, k = (
        data.draw(st.integers(1, 3)),
        data.draw(st.integers(1, 4)),
        data.draw(st.integers(1, 6)),
    )
    lens = torch.tensor(data.draw(st.lists(st.integers(0, k), min_size=b, max_size=b)))
    pad = torch.arange(k)[None, :] >= lens[:, None]
    seed = data.draw(st.integers(0, 100))
    return (
        lens,
        pad,
        rand(b, q, 8, seed=seed),
        rand(b, k, 8, seed=seed + 1),
        rand(b, k, 6, seed=seed + 2),
    )


def _fill(t, pad, value):
    return t.masked_fill(pad[..., None], value)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), poison=POISON, where=st.sampled_from(["key", "value", "both"]))
def test_sdpa_with_valid_lens_ignores_whatever_padding_holds(data, poison, where):
    lens, pad, q, k, v = _padding_case(data)
    bad_k = _fill(k, pad, poison) if where != "value" else k
    bad_v = _fill(v, pad, poison) if where != "key" else v
    inputs = [t.clone().requires_grad_() for t in (q, bad_k, bad_v)]
    out, weights = sdpa(*inputs, valid_lens=lens)
    other = rand(*k.shape, seed=99) * 1e3  # any finite padding gives the same result
    for filler_k, filler_v in (
        (_fill(k, pad, 0.0), _fill(v, pad, 0.0)),
        (torch.where(pad[..., None], other, k), torch.where(pad[..., None], other[..., :6], v)),
    ):
        reference, _ = sdpa(q, filler_k, filler_v, valid_lens=lens)
        assert torch.equal(out, reference)
    assert all_finite(out, weights, *backward_grads(out, *inputs))
    # the same through a boolean mask (True = attend) that masks the padding
    assert torch.equal(sdpa(q, bad_k, bad_v, ~pad[:, None, :])[0], out)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), poison=POISON, where=st.sampled_from(["key", "value", "both"]))
def test_multihead_attention_ignores_whatever_padded_keys_and_values_hold(data, poison, where):
    _, pad, q, k, _ = _padding_case(data)
    torch.manual_seed(0)
    mha = A.MultiHeadAttention(8, 2).eval()
    bad_k = _fill(k, pad, poison) if where != "value" else k
    bad_v = _fill(k, pad, poison) if where != "key" else k
    inputs = [t.clone().requires_grad_() for t in (q, bad_k, bad_v)]
    out, weights = mha(*inputs, key_padding_mask=pad)
    reference, _ = mha(q, _fill(k, pad, 0.0), _fill(k, pad, 0.0), key_padding_mask=pad)
    assert torch.equal(out, reference)
    grads = backward_grads(out, *inputs, *mha.parameters())
    assert all_finite(out, weights, *grads)


def test_additive_and_dot_product_attention_ignore_nan_in_padding():
    q, k, v = Q, K, V
    for module in (A.AdditiveAttention(8, 8, 16), A.DotProductAttention()):
        inputs = [t.clone().requires_grad_() for t in (q, _fill(k, PAD, math.inf), _fill(v, PAD, math.nan))]
        out, _ = module(*inputs, valid_lens=LENS)
        assert torch.equal(out, module(q, _fill(k, PAD, 0.0), _fill(v, PAD, 0.0), valid_lens=LENS)[0])
        assert all_finite(out, *backward_grads(out, *inputs, *module.parameters()))


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_real_tokens_ignore_nan_in_padded_tokens(norm_first):
    """A padded token is never *read* by a real one (its own row is unspecified)."""
    torch.manual_seed(0)
    encoder = A.TransformerEncoder(2, 8, 2, ff_dim=16, dropout=0.0, norm_first=norm_first).eval()
    x = rand(2, 5, 8)
    out = encoder(_fill(x, PAD, math.nan), key_padding_mask=PAD)
    reference = encoder(_fill(x, PAD, 0.0), key_padding_mask=PAD)
    assert all_finite(out[~PAD]) and torch.equal(out[~PAD], reference[~PAD])
