"""Unit tests for mmtutorial.attention: built-in equivalence, gradcheck, properties, errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mmtutorial.attention import (
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

TOL = 1e-5


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- masked_softmax ---------------------------------------------------------------


def test_masked_softmax_without_mask_is_softmax():
    scores = rand(2, 3, 5)
    assert torch.allclose(masked_softmax(scores), torch.softmax(scores, -1))


def test_masked_softmax_valid_lens_per_batch_and_per_query():
    scores = rand(2, 3, 4)
    w = masked_softmax(scores, valid_lens=torch.tensor([2, 4]))
    assert torch.all(w[0, :, 2:] == 0)
    assert torch.allclose(w[0, :, :2], torch.softmax(scores[0, :, :2], -1))
    assert torch.allclose(w[1], torch.softmax(scores[1], -1))
    w = masked_softmax(scores, valid_lens=torch.tensor([[1, 2, 3], [4, 3, 2]]))
    assert torch.all(w[0, 0, 1:] == 0) and w[0, 0, 0] == 1
    assert torch.all(w[1, 2, 2:] == 0)


def test_masked_softmax_fully_masked_row_is_zero_with_finite_grad():
    scores = rand(2, 3, 4, dtype=torch.float64).requires_grad_()
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[0, 1] = False
    w = masked_softmax(scores, mask)
    assert torch.all(w[0, 1] == 0)
    assert torch.isfinite(w).all()
    (w * rand(2, 3, 4, seed=1, dtype=torch.float64)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert torch.all(scores.grad[0, 1] == 0)
    w = masked_softmax(scores.detach(), valid_lens=torch.tensor([0, 4]))
    assert torch.all(w[0] == 0) and torch.allclose(w[1].sum(-1), torch.ones(3, dtype=torch.float64))


def test_masked_softmax_extreme_scores_stay_finite():
    scores = torch.tensor([[[1e30, -1e30, 0.0]]])
    w = masked_softmax(scores, torch.tensor([[[False, True, True]]]))
    assert torch.isfinite(w).all() and w[0, 0, 0] == 0


def test_masked_softmax_combines_mask_and_valid_lens_and_heads():
    scores = rand(2, 4, 3, 5)  # (B, heads, L_q, L_k)
    mask = causal_mask(3, 5)
    w = masked_softmax(scores, mask, valid_lens=torch.tensor([2, 5]))
    assert torch.all(w[0, ..., 2:] == 0)
    assert torch.all(w[1, :, 0, 1:] == 0)
    assert torch.allclose(w.sum(-1), torch.ones(2, 4, 3))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"mask": torch.ones(2, 3, 4)}, TypeError, "boolean"),
        ({"mask": torch.ones(2, 3, 5, dtype=torch.bool)}, ValueError, r"\(2, 3, 5\).*\(2, 3, 4\)"),
        ({"valid_lens": torch.tensor([1.0, 2.0])}, TypeError, "integer"),
        ({"valid_lens": torch.tensor([1, 9])}, ValueError, r"\[0, 4\]"),
        ({"valid_lens": torch.tensor([1, 2, 3])}, ValueError, "does not match"),
    ],
)
def test_masked_softmax_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        masked_softmax(rand(2, 3, 4), **kwargs)


def test_masked_softmax_rejects_integer_scores():
    with pytest.raises(TypeError, match="floating-point"):
        masked_softmax(torch.ones(2, 3, dtype=torch.long))


def test_valid_lens_to_mask_shapes():
    assert valid_lens_to_mask(torch.tensor([1, 3]), 4).shape == (2, 1, 4)
    assert valid_lens_to_mask(torch.tensor([[1, 3]]), 4).tolist() == [
        [[True, False, False, False], [True, True, True, False]]
    ]


# --- scoring functions ------------------------------------------------------------


def test_dot_and_scaled_scores():
    q, k = rand(2, 3, 8), rand(2, 5, 8, seed=1)
    assert torch.allclose(dot_product_score(q, k), torch.einsum("bqd,bkd->bqk", q, k))
    assert torch.allclose(scaled_dot_product_score(q, k), dot_product_score(q, k) / math.sqrt(8))
    assert torch.allclose(scaled_dot_product_score(q, k, scale=0.5), dot_product_score(q, k) / 2)


def test_bilinear_score_with_identity_is_dot_product():
    q, k = rand(2, 3, 4), rand(2, 5, 4, seed=1)
    assert torch.allclose(bilinear_score(q, k, torch.eye(4)), dot_product_score(q, k))
    w = rand(4, 6, seed=2)
    k6 = rand(2, 5, 6, seed=3)
    assert torch.allclose(bilinear_score(q, k6, w), torch.einsum("bqi,ij,bkj->bqk", q, w, k6), atol=TOL)


def test_additive_score_matches_loop():
    q, k = rand(2, 3, 4), rand(2, 5, 6, seed=1)
    wq, wk, v, b = rand(7, 4, seed=2), rand(7, 6, seed=3), rand(7, seed=4), rand(7, seed=5)
    got = additive_score(q, k, wq, wk, v, b)
    expected = torch.empty(2, 3, 5)
    for bi in range(2):
        for i in range(3):
            for j in range(5):
                expected[bi, i, j] = v @ torch.tanh(wq @ q[bi, i] + wk @ k[bi, j] + b)
    assert torch.allclose(got, expected, atol=TOL)


@pytest.mark.parametrize(
    "fn, args, match",
    [
        (dot_product_score, (rand(2, 3, 4), rand(2, 5, 6)), r"query \(2, 3, 4\) vs key \(2, 5, 6\)"),
        (dot_product_score, (rand(4), rand(4)), r"at least 2 dims.*\(4\)"),
        (bilinear_score, (rand(2, 3, 4), rand(2, 5, 6), rand(6, 4)), r"\(4, 6\).*\(6, 4\)"),
        (additive_score, (rand(1, 2, 3), rand(1, 2, 3), rand(5, 4), rand(5, 3), rand(5)), r"w_query.*\(5, 3\)"),
        (
            scaled_dot_product_attention,
            (rand(2, 3, 4), rand(2, 5, 4), rand(2, 6, 4)),
            r"key \(2, 5, 4\) vs value \(2, 6, 4\)",
        ),
        (scaled_dot_product_attention, (rand(2, 3, 4), rand(3, 5, 4), rand(3, 5, 4)), "broadcast"),
    ],
)
def test_scores_bad_shapes_name_the_shapes(fn, args, match):
    with pytest.raises(ValueError, match=match):
        fn(*args)


def test_dtype_mismatch_is_reported():
    with pytest.raises(TypeError, match="share a dtype"):
        scaled_dot_product_attention(rand(1, 2, 4), rand(1, 2, 4, dtype=torch.float64), rand(1, 2, 4))


# --- equivalence with PyTorch -----------------------------------------------------


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_scaled_dot_product_attention_equals_torch(masked, causal):
    q, k, v = rand(2, 4, 6, 16), rand(2, 4, 9, 16, seed=1), rand(2, 4, 9, 8, seed=2)
    mask = None
    if masked:
        mask = torch.rand(2, 1, 6, 9, generator=torch.Generator().manual_seed(3)) > 0.3
        mask[..., 0] = True  # every query keeps at least one key (PyTorch gives NaN otherwise)
    ours, weights = scaled_dot_product_attention(q, k, v, mask, is_causal=causal)
    if causal:
        c = causal_mask(6, 9)
        mask = c if mask is None else mask & c
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert (ours - theirs).abs().max() < TOL
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 6))


def test_dot_product_attention_module_scaled_and_unscaled():
    q, k, v = rand(2, 3, 8), rand(2, 5, 8, seed=1), rand(2, 5, 4, seed=2)
    out, w = DotProductAttention(scaled=True)(q, k, v)
    assert (out - F.scaled_dot_product_attention(q, k, v)).abs().max() < TOL
    out, w = DotProductAttention(scaled=False)(q, k, v, valid_lens=torch.tensor([2, 5]))
    assert (
        out - F.scaled_dot_product_attention(q, k, v, scale=1.0, attn_mask=valid_lens_to_mask(torch.tensor([2, 5]), 5))
    ).abs().max() < TOL
    assert DotProductAttention()(q, k, v, need_weights=False)[1] is None


def _torch_mha(embed_dim=16, heads=4, kdim=None, vdim=None, bias=True, seed=0):
    torch.manual_seed(seed)
    module = nn.MultiheadAttention(embed_dim, heads, batch_first=True, kdim=kdim, vdim=vdim, bias=bias)
    with torch.no_grad():  # non-zero biases so copying them is actually tested
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return module.eval()


@pytest.mark.parametrize("kdim, vdim", [(None, None), (12, 10)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("masks", ["none", "padding", "causal", "both"])
def test_multihead_attention_equals_torch(kdim, vdim, bias, masks):
    torch_mha = _torch_mha(kdim=kdim, vdim=vdim, bias=bias)
    ours = MultiHeadAttention.from_torch(torch_mha).eval()
    q = rand(3, 7, 16)
    k = rand(3, 7, kdim or 16, seed=1)
    v = rand(3, 7, vdim or 16, seed=2)
    padding = torch.zeros(3, 7, dtype=torch.bool)
    padding[0, 5:] = True
    padding[2, 1:] = True
    use_pad = masks in ("padding", "both")
    use_causal = masks in ("causal", "both")
    torch_attn_mask = ~causal_mask(7) if use_causal else None  # PyTorch: True = masked out
    expected, expected_w = torch_mha(
        q,
        k,
        v,
        key_padding_mask=padding if use_pad else None,
        attn_mask=torch_attn_mask,
        average_attn_weights=False,
    )
    got, got_w = ours(
        q,
        k,
        v,
        key_padding_mask=padding if use_pad else None,
        is_causal=use_causal,
        average_attn_weights=False,
    )
    assert (got - expected).abs().max() < TOL
    assert (got_w - expected_w).abs().max() < TOL
    _, mean_w = ours(q, k, v, key_padding_mask=padding if use_pad else None, is_causal=use_causal)
    assert torch.allclose(mean_w, got_w.mean(1))


def test_multihead_attention_explicit_mask_equals_is_causal():
    mha = MultiHeadAttention(8, 2).eval()
    x = rand(2, 5, 8)
    a, _ = mha(x, x, x, is_causal=True)
    b, _ = mha(x, x, x, mask=causal_mask(5))
    c, _ = mha(x, x, x, mask=causal_mask(5).expand(2, 5, 5))
    assert torch.equal(a, b) and torch.equal(a, c)


def test_multihead_attention_fully_padded_sequence_is_finite():
    mha = MultiHeadAttention(8, 2)
    x = rand(2, 4, 8)
    padding = torch.tensor([[True] * 4, [False] * 4])
    out, w = mha(x, x, x, key_padding_mask=padding)
    assert torch.isfinite(out).all() and torch.all(w[0] == 0)
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in mha.parameters())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"embed_dim": 10, "num_heads": 3}, r"embed_dim \(10\).*num_heads \(3\)"),
        ({"embed_dim": 0, "num_heads": 1}, "positive int"),
    ],
)
def test_multihead_attention_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiHeadAttention(**kwargs)


def test_multihead_attention_bad_inputs():
    mha = MultiHeadAttention(8, 2)
    x = rand(2, 4, 8)
    with pytest.raises(ValueError, match=r"query must have shape \(batch, length, 8\), got \(2, 4, 6\)"):
        mha(rand(2, 4, 6), x, x)
    with pytest.raises(ValueError, match="key_padding_mask.*\\(2, 4\\)"):
        mha(x, x, x, key_padding_mask=torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="batch size"):
        mha(x, rand(3, 4, 8), rand(3, 4, 8))


def test_from_torch_rejects_sequence_first():
    with pytest.raises(ValueError, match="batch_first=True"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2))


# --- gradcheck (float64) ----------------------------------------------------------


def _gradcheck(fn, *inputs):
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


def test_gradcheck_masked_softmax():
    scores = rand(2, 3, 4, dtype=torch.float64).requires_grad_()
    mask = torch.tensor([[True, True, False, True]]).expand(3, 4).clone()
    mask[0] = False  # include a fully masked row
    _gradcheck(lambda s: masked_softmax(s, mask), scores)


def test_gradcheck_scaled_dot_product_attention():
    q, k, v = (rand(2, 3, 4, seed=i, dtype=torch.float64).requires_grad_() for i in range(3))
    _gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True)[0], q, k, v)


def test_gradcheck_additive_attention_module():
    module = AdditiveAttention(4, 5, 6, bias=True).double()
    q = rand(2, 3, 4, dtype=torch.float64).requires_grad_()
    k = rand(2, 4, 5, seed=1, dtype=torch.float64).requires_grad_()
    v = rand(2, 4, 2, seed=2, dtype=torch.float64).requires_grad_()
    _gradcheck(lambda q, k, v: module(q, k, v, valid_lens=torch.tensor([2, 4]))[0], q, k, v)
    # and with respect to the module's own parameters
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]
    _gradcheck(
        lambda *ps: torch.func.functional_call(module, dict(zip(names, ps, strict=True)), (q, k, v))[0],
        *params,
    )


def test_gradcheck_dot_product_attention_module():
    module = DotProductAttention(scaled=False)
    q, k, v = (rand(2, 3, 4, seed=i, dtype=torch.float64).requires_grad_() for i in range(3))
    _gradcheck(lambda q, k, v: module(q, k, v, valid_lens=torch.tensor([1, 3]))[0], q, k, v)


def test_gradcheck_multihead_attention_module():
    module = MultiHeadAttention(8, 2).double()
    x = rand(2, 4, 8, dtype=torch.float64).requires_grad_()
    padding = torch.tensor([[False, False, True, True], [False] * 4])
    _gradcheck(lambda x: module(x, x, x, key_padding_mask=padding, is_causal=True)[0], x)
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]
    _gradcheck(
        lambda *ps: torch.func.functional_call(module, dict(zip(names, ps, strict=True)), (x, x, x))[0],
        *params,
    )


# --- hypothesis property tests ----------------------------------------------------

dims = st.integers(min_value=1, max_value=6)


@settings(max_examples=60, deadline=None)
@given(batch=dims, n_q=dims, n_k=dims, seed=st.integers(0, 10_000), data=st.data())
def test_property_masked_weights(batch, n_q, n_k, seed, data):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, n_q, n_k, generator=g) * data.draw(st.sampled_from([0.1, 1.0, 30.0]))
    mask = torch.rand(batch, n_q, n_k, generator=g) > data.draw(st.sampled_from([0.0, 0.5, 0.9]))
    w = masked_softmax(scores, mask)
    assert torch.all(w[~mask] == 0), "masked keys must get exactly 0"
    sums = w.sum(-1)
    has_key = mask.any(-1)
    assert torch.allclose(sums[has_key], torch.ones_like(sums[has_key]), atol=1e-5)
    assert torch.all(sums[~has_key] == 0)
    assert torch.all(w >= 0)


@settings(max_examples=40, deadline=None)
@given(n_q=dims, n_k=st.integers(2, 8), d=dims, seed=st.integers(0, 10_000))
def test_property_permuting_keys_and_values_together(n_q, n_k, d, seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (
        torch.randn(2, n_q, d, generator=g),
        torch.randn(2, n_k, d, generator=g),
        torch.randn(2, n_k, 3, generator=g),
    )
    mask = torch.rand(2, 1, n_k, generator=g) > 0.3
    perm = torch.randperm(n_k, generator=g)
    out, w = scaled_dot_product_attention(q, k, v, mask)
    out_p, w_p = scaled_dot_product_attention(q, k[:, perm], v[:, perm], mask[..., perm])
    assert torch.allclose(out, out_p, atol=1e-5)
    assert torch.allclose(w[..., perm], w_p, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 6), seed=st.integers(0, 10_000))
def test_property_permuting_keys_mha_and_additive(n, seed):
    torch.manual_seed(seed)
    mha = MultiHeadAttention(8, 2).eval()
    additive = AdditiveAttention(8, 8, 5).eval()
    q, kv = torch.randn(1, 3, 8), torch.randn(1, n, 8)
    perm = torch.randperm(n)
    for module in (mha, additive):
        out = module(q, kv, kv)[0]
        assert torch.allclose(out, module(q, kv[:, perm], kv[:, perm])[0], atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(lens=st.lists(st.integers(0, 5), min_size=1, max_size=4), n_q=dims)
def test_property_valid_lens_equals_boolean_mask(lens, n_q):
    scores = torch.randn(len(lens), n_q, 5)
    valid = torch.tensor(lens)
    mask = torch.arange(5)[None, None, :] < valid[:, None, None]
    assert torch.equal(masked_softmax(scores, valid_lens=valid), masked_softmax(scores, mask))
