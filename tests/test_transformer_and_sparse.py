"""Positional encodings, the Transformer encoder block, and sparse attention."""

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mmtutorial.attention import (
    AttentionPattern,
    BlockSparse,
    GlobalLocal,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    SlidingWindow,
    SparseSelfAttention,
    TransformerEncoder,
    TransformerEncoderBlock,
    blocked_local_attention,
    dense_sparse_attention,
    flex_sparse_attention,
    sinusoidal_table,
)
from mmtutorial.attention import sparse as sparse_module

TOL = 1e-5


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- positional encodings ---------------------------------------------------------


def test_sinusoidal_table_formula_bounded_and_distinct():
    table = sinusoidal_table(50, 16)
    assert table.shape == (50, 16) and table.abs().max() <= 1.0
    p, i = 7, 3
    assert table[p, 2 * i] == pytest.approx(math.sin(p / 10000 ** (2 * i / 16)), abs=1e-6)
    assert table[p, 2 * i + 1] == pytest.approx(math.cos(p / 10000 ** (2 * i / 16)), abs=1e-6)
    assert torch.cdist(table, table).add(torch.eye(50) * 10).min() > 0.1, "every position distinct"
    assert sinusoidal_table(5, 7).shape == (5, 7)  # odd sizes work


def test_sinusoidal_similarity_depends_only_on_distance():
    table = sinusoidal_table(64, 32).double()
    gram = table @ table.T
    for offset in (1, 5, 20):
        diagonal = torch.diagonal(gram, offset)
        assert torch.allclose(diagonal, diagonal[0].expand_as(diagonal), atol=1e-5)


def test_positional_encodings_add_to_input_and_apply_dropout():
    x = rand(2, 10, 16)
    pe = SinusoidalPositionalEncoding(16, max_len=32)
    assert torch.allclose(pe(x), x + sinusoidal_table(10, 16))
    learned = LearnedPositionalEncoding(16, max_len=32)
    assert torch.allclose(learned(x), x + learned.embedding.weight[:10])
    dropped = SinusoidalPositionalEncoding(16, dropout=0.5).train()
    out = dropped(x)
    assert (out == 0).any() and not torch.allclose(out, x + sinusoidal_table(10, 16))
    with pytest.raises(ValueError, match="sequence length 40 exceeds max_len=32"):
        pe(rand(1, 40, 16))
    with pytest.raises(
        ValueError,
        match=r"x=<tensor of shape \(2, 10, 8\), float32>: expected a floating-point tensor of shape \(batch, length, 16\)",
    ):
        pe(rand(2, 10, 8))


def test_gradcheck_positional_encodings():
    x = rand(2, 5, 6, dtype=torch.float64).requires_grad_()
    learned = LearnedPositionalEncoding(6, max_len=8).double()
    assert torch.autograd.gradcheck(lambda x: learned(x), (x,))
    sinus = SinusoidalPositionalEncoding(6, max_len=8)
    assert torch.autograd.gradcheck(lambda x: sinus(x).double(), (x,))


# --- Transformer encoder block ----------------------------------------------------


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_block_equals_torch(norm_first, activation):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(
        32, 4, dim_feedforward=64, dropout=0.1, activation=activation, batch_first=True, norm_first=norm_first
    ).eval()
    block = TransformerEncoderBlock.from_torch(layer).eval()
    x = rand(3, 9, 32)
    padding = torch.zeros(3, 9, dtype=torch.bool)
    padding[1, 6:] = True
    padding[2, 2:] = True
    for kwargs in ({}, {"src_key_padding_mask": padding}):
        expected = layer(x, **kwargs)  # grad enabled: PyTorch's fused fast path stays off
        got = block(x, key_padding_mask=kwargs.get("src_key_padding_mask"))
        assert (got - expected).abs().max() < TOL


def test_encoder_block_causal_equals_torch_and_keeps_weights():
    torch.manual_seed(1)
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True).eval()
    block = TransformerEncoderBlock.from_torch(layer).eval()
    x = rand(2, 6, 16)
    causal = nn.Transformer.generate_square_subsequent_mask(6)
    expected = layer(x, src_mask=causal, is_causal=True)
    got = block(x, is_causal=True, need_weights=True)
    assert (got - expected).abs().max() < TOL
    assert block.attention_weights.shape == (2, 2, 6, 6)
    assert torch.all(block.attention_weights.triu(1) == 0)


def test_encoder_stack_and_errors():
    encoder = TransformerEncoder(2, 16, 4, ff_dim=32, dropout=0.0, norm_first=True)
    out = encoder(rand(2, 5, 16), need_weights=True)
    assert out.shape == (2, 5, 16) and len(encoder.attention_weights) == 2
    with pytest.raises(ValueError, match="activation='tanh'"):
        TransformerEncoderBlock(16, 4, activation="tanh")
    with pytest.raises(ValueError, match=r"dim \(10\) must be divisible by num_heads \(4\)"):
        TransformerEncoderBlock(10, 4)
    with pytest.raises(ValueError, match="num_layers"):
        TransformerEncoder(0, 16, 4)


def test_gradcheck_encoder_block():
    block = TransformerEncoderBlock(8, 2, ff_dim=16, dropout=0.0, norm_first=True).double()
    x = rand(2, 4, 8, dtype=torch.float64).requires_grad_()
    padding = torch.tensor([[False, False, False, True], [False] * 4])
    assert torch.autograd.gradcheck(lambda x: block(x, key_padding_mask=padding), (x,))


# --- sparse patterns: dense masks ------------------------------------------------


def brute_force(pattern, n):
    mask = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        for j in range(n):
            if isinstance(pattern, SlidingWindow):
                mask[i, j] = abs(i - j) <= pattern.window
            elif isinstance(pattern, GlobalLocal):
                mask[i, j] = abs(i - j) <= pattern.window or i < pattern.num_global or j < pattern.num_global
            else:
                bi, bj = i // pattern.block_size, j // pattern.block_size
                mask[i, j] = abs(bi - bj) < pattern.local_blocks or bj % pattern.stride == 0
    return mask


@pytest.mark.parametrize(
    "pattern", [SlidingWindow(0), SlidingWindow(3), GlobalLocal(2, 2), BlockSparse(4, 2, 3)], ids=str
)
def test_dense_masks_match_definition(pattern):
    assert torch.equal(pattern.dense_mask(23), brute_force(pattern, 23))
    from torch.nn.attention.flex_attention import create_mask

    assert torch.equal(create_mask(pattern.mask_mod(), None, None, 23, 23, device="cpu")[0, 0], pattern.dense_mask(23))


def test_pattern_density_shrinks_with_length():
    window = SlidingWindow(8)
    assert window.density(64) > window.density(512) > 0
    assert window.density(512) == pytest.approx((17 * 512 - 8 * 9) / 512**2)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: SlidingWindow(-1), ValueError, "window=-1: expected an int >= 0"),
        (lambda: SlidingWindow(2.5), TypeError, "window=2.5: expected an int"),
        (lambda: GlobalLocal(4, -2), ValueError, "num_global=-2: expected an int >= 0"),
        (lambda: BlockSparse(0), ValueError, "block_size=0: expected an int >= 1"),
    ],
)
def test_bad_pattern_parameters(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_mismatched_lengths_and_shapes():
    q, k = rand(1, 2, 10, 8), rand(1, 2, 12, 8)
    with pytest.raises(ValueError, match="same length, got 10, 12, 12"):
        dense_sparse_attention(q, k, k, SlidingWindow(2))
    with pytest.raises(ValueError, match="same length"):
        blocked_local_attention(q, k, k, 2)
    with pytest.raises(ValueError, match=r"\(batch, heads, length, head_dim\), got \(2, 10, 8\)"):
        blocked_local_attention(rand(2, 10, 8), rand(2, 10, 8), rand(2, 10, 8), 2)
    with pytest.raises(ValueError, match="window=-3: expected an int >= 0"):
        blocked_local_attention(q, q, q, -3)


# --- blocked local attention ------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(length=st.integers(1, 70), window=st.integers(0, 20), seed=st.integers(0, 1000))
def test_blocked_equals_dense_any_length(length, window, seed):
    q, k, v = (rand(2, 2, length, 8, seed=seed + i) for i in range(3))
    expected = dense_sparse_attention(q, k, v, SlidingWindow(window))
    assert (blocked_local_attention(q, k, v, window) - expected).abs().max() < TOL


def test_blocked_gradients_equal_dense_gradients():
    inputs = [rand(1, 2, 37, 8, seed=i).requires_grad_() for i in range(3)]
    blocked_local_attention(*inputs, 5).pow(2).sum().backward()
    blocked_grads = [t.grad.clone() for t in inputs]
    for t in inputs:
        t.grad = None
    dense_sparse_attention(*inputs, SlidingWindow(5)).pow(2).sum().backward()
    for got, expected in zip(blocked_grads, (t.grad for t in inputs), strict=True):
        assert (got - expected).abs().max() < 1e-5


def test_gradcheck_blocked_local_attention():
    q, k, v = (rand(1, 2, 11, 4, seed=i, dtype=torch.float64).requires_grad_() for i in range(3))
    assert torch.autograd.gradcheck(lambda q, k, v: blocked_local_attention(q, k, v, 3), (q, k, v))


def test_gradcheck_sparse_self_attention_module():
    for backend, pattern in (("blocked", SlidingWindow(2)), ("dense", GlobalLocal(1, 1))):
        module = SparseSelfAttention(8, 2, pattern, backend=backend).double()
        x = rand(2, 7, 8, dtype=torch.float64).requires_grad_()
        assert torch.autograd.gradcheck(module, (x,))
    with pytest.raises(ValueError, match="SlidingWindow only"):
        SparseSelfAttention(8, 2, GlobalLocal(2), backend="blocked")
    with pytest.raises(ValueError, match="backend='sparse'"):
        SparseSelfAttention(8, 2, SlidingWindow(2), backend="sparse")


# --- FlexAttention ----------------------------------------------------------------


class TableMask(AttentionPattern):
    """An arbitrary (random) mask, to test FlexAttention beyond structured patterns."""

    def __init__(self, table):
        self.table = table

    def _allowed(self, q_idx, kv_idx):
        return self.table[q_idx, kv_idx]


# FlexAttention and the dense reference read the same ``_allowed``, so these check the
# FlexAttention path itself (block masks, partial blocks, the compiled kernel): one
# structured pattern and an arbitrary table (below). Each pattern compiles a kernel of its
# own (10-16 s here), so the other patterns are checked against their masks elsewhere.
@pytest.mark.parametrize(
    "pattern, length",
    [(SlidingWindow(16), 200)],  # 200 is not a multiple of the 128-token block
    ids=lambda p: str(p),
)
def test_flex_equals_dense(pattern, length):
    q, k, v = (rand(1, 2, length, 16, seed=i) for i in range(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no silent fallback allowed here
        got = flex_sparse_attention(q, k, v, pattern)
    assert (got - dense_sparse_attention(q, k, v, pattern)).abs().max() < TOL


def test_flex_equals_dense_on_a_random_mask():
    table = torch.rand(200, 200, generator=torch.Generator().manual_seed(0)) > 0.7
    table[torch.arange(200), torch.arange(200)] = True  # every query keeps one key
    pattern = TableMask(table)
    q, k, v = (rand(1, 2, 200, 16, seed=i) for i in range(3))
    got = flex_sparse_attention(q, k, v, pattern)
    assert (got - dense_sparse_attention(q, k, v, pattern)).abs().max() < TOL


def test_flex_falls_back_with_a_warning(monkeypatch):
    q = rand(1, 1, 20, 8)
    monkeypatch.setitem(sparse_module._flex_state, "broken", None)

    def broken_compile():
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(sparse_module, "_compiled_flex_attention", broken_compile)
    with pytest.warns(UserWarning, match="could not be compiled .*no C\\+\\+ compiler found.*dense masked reference"):
        out = flex_sparse_attention(q, q, q, SlidingWindow(3))
    assert torch.allclose(out, dense_sparse_attention(q, q, q, SlidingWindow(3)))
    q_grad = q.clone().requires_grad_()
    monkeypatch.setitem(sparse_module._flex_state, "broken", None)
    with pytest.warns(UserWarning, match="no backward on CPU"):
        flex_sparse_attention(q_grad, q_grad, q_grad, SlidingWindow(3))
