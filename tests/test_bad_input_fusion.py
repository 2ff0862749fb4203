"""Bad and edge inputs for mmtutorial.fusion: constructors reject nonsense sizes and
types, forward passes reject wrong features and masks, and a modality marked missing
is never used: NaN or inf in it changes neither the fused output nor any gradient."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bad_input_common import POISON, all_finite, backward_grads, raises_clearly

from mmtutorial import fusion as F


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


DIMS = [3, 5]
H1, H2 = rand(4, 3), rand(4, 5, seed=1)
PRESENT = torch.tensor([[True, True], [True, False], [False, True], [True, False]])

BAD = [
    (
        "check_features given a tensor",
        lambda: F.check_features(rand(2, 3), [3, 3]),
        TypeError,
        "features=Tensor",
    ),
    ("check_features no modalities", lambda: F.check_features([], []), ValueError, "features=[]"),
    (
        "check_features integer features",
        lambda: F.check_features([H1.long(), H2], DIMS),
        TypeError,
        "features[0]=",
    ),
    (
        "check_features mixed dtypes",
        lambda: F.check_features([H1.double(), H2], DIMS),
        TypeError,
        "modality 1",
    ),
    (
        "check_features present=list",
        lambda: F.check_features([H1, H2], DIMS, [[True, True]] * 4),
        TypeError,
        "present",
    ),
    (
        "check_features integer present",
        lambda: F.check_features([H1, H2], DIMS, PRESENT.long()),
        TypeError,
        "present",
    ),
    (
        "check_features present shape",
        lambda: F.check_features([H1, H2], DIMS, PRESENT[:, :1]),
        ValueError,
        "present",
    ),
    (
        "check_features batch sizes differ",
        lambda: F.check_features([H1, rand(3, 5)], DIMS),
        ValueError,
        "modality 1",
    ),
    (
        "check_features 3-D features",
        lambda: F.check_features([H1[None], H2], DIMS),
        ValueError,
        "modality 0",
    ),
    (
        "check_features count",
        lambda: F.check_features([H1], DIMS),
        ValueError,
        "expected 2 modalities, got 1",
    ),
    ("EarlyFusion hidden=0", lambda: F.EarlyFusion(DIMS, 4, hidden=0), ValueError, "hidden=0"),
    ("EarlyFusion hidden=-1", lambda: F.EarlyFusion(DIMS, 4, hidden=-1), ValueError, "hidden=-1"),
    ("LateFusion num_classes=0", lambda: F.LateFusion(DIMS, 0), ValueError, "num_classes=0"),
    (
        "LateFusion learned='yes'",
        lambda: F.LateFusion(DIMS, 3, learned="yes"),
        TypeError,
        "learned='yes'",
    ),
    ("LateFusion dims=[2, -1]", lambda: F.LateFusion([2, -1], 3), ValueError, "dims=[2, -1]"),
    ("HybridFusion num_classes=0", lambda: F.HybridFusion(DIMS, 0), ValueError, "num_classes=0"),
    ("GatedFusion dim=0", lambda: F.GatedFusion(DIMS, 0), ValueError, "dim=0"),
    ("GatedFusion hidden=0", lambda: F.GatedFusion(DIMS, 4, hidden=0), ValueError, "hidden=0"),
    (
        "TokenFusion heads do not divide",
        lambda: F.TokenFusion(DIMS, 6, heads=4),
        ValueError,
        "divisible by heads (4)",
    ),
    ("TokenFusion layers=0", lambda: F.TokenFusion(DIMS, 8, layers=0), ValueError, "layers=0"),
    (
        "TokenFusion dropout=1.5",
        lambda: F.TokenFusion(DIMS, 8, dropout=1.5),
        ValueError,
        "dropout=1.5",
    ),
    ("FiLM cond_dim=0", lambda: F.FiLM(0, 4), ValueError, "cond_dim=0"),
    ("FiLM channels=0", lambda: F.FiLM(3, 0), ValueError, "channels=0"),
    ("FiLM channels=True", lambda: F.FiLM(3, True), TypeError, "channels=True"),
    (
        "FiLM float64 condition",
        lambda: F.FiLM(3, 4)(rand(2, 4), rand(2, 3, dtype=torch.float64)),
        TypeError,
        "condition=",
    ),
    (
        "FiLM integer x",
        lambda: F.FiLM(3, 4)(torch.ones(2, 4, dtype=torch.long), rand(2, 3)),
        TypeError,
        "x=",
    ),
    (
        "FiLM condition=list",
        lambda: F.FiLM(3, 4)(rand(2, 4), [[1.0, 2.0, 3.0]] * 2),
        TypeError,
        "condition=",
    ),
    (
        "FiLM condition size",
        lambda: F.FiLM(3, 4)(rand(2, 4), rand(2, 5)),
        ValueError,
        "condition of shape (2, 3)",
    ),
    (
        "FiLM x channels",
        lambda: F.FiLM(3, 4)(rand(2, 5), rand(2, 3)),
        ValueError,
        "x of shape (batch, 4, ...)",
    ),
    (
        "LowRankBilinear factor=0",
        lambda: F.LowRankBilinear(DIMS, 4, factor=0),
        ValueError,
        "factor=0",
    ),
    ("LowRankBilinear out_dim=0", lambda: F.LowRankBilinear(DIMS, 0), ValueError, "out_dim=0"),
    (
        "LowRankBilinear one modality",
        lambda: F.LowRankBilinear([3], 4),
        ValueError,
        "exactly two modalities",
    ),
    (
        "LowRankBilinear dims=[3, 0]",
        lambda: F.LowRankBilinear([3, 0], 4),
        ValueError,
        "dims=[3, 0]",
    ),
    (
        "LowRankBilinear dropout=1",
        lambda: F.LowRankBilinear(DIMS, 4, dropout=1.0),
        ValueError,
        "dropout=1.0",
    ),
    (
        "CrossModalAttention query_dim=0",
        lambda: F.CrossModalAttention(0, 4),
        ValueError,
        "query_dim=0",
    ),
    (
        "CrossModalAttention context_dim=-1",
        lambda: F.CrossModalAttention(8, -1),
        ValueError,
        "context_dim=-1",
    ),
    (
        "CrossModalAttention heads=0",
        lambda: F.CrossModalAttention(8, 4, heads=0),
        ValueError,
        "heads=0",
    ),
    (
        "CrossModalAttention heads do not divide",
        lambda: F.CrossModalAttention(8, 4, heads=3),
        ValueError,
        "heads (3)",
    ),
    ("CoAttention dim=0", lambda: F.CoAttention(0), ValueError, "dim=0"),
    ("MultiHopAttention hops=0", lambda: F.MultiHopAttention(8, 8, hops=0), ValueError, "hops=0"),
    (
        "MultiHopAttention hops=True",
        lambda: F.MultiHopAttention(8, 8, hops=True),
        TypeError,
        "hops=True",
    ),
    (
        "MultiHopAttention hops=2.5",
        lambda: F.MultiHopAttention(8, 8, hops=2.5),
        TypeError,
        "hops=2.5",
    ),
    ("random_missing_mask p=1.5", lambda: F.random_missing_mask(4, 1.5), ValueError, "p=1.5"),
    ("random_missing_mask p=nan", lambda: F.random_missing_mask(4, math.nan), ValueError, "p=nan"),
    ("random_missing_mask p='0.5'", lambda: F.random_missing_mask(4, "0.5"), TypeError, "p='0.5'"),
    (
        "random_missing_mask batch_size=-1",
        lambda: F.random_missing_mask(-1, 0.5),
        ValueError,
        "batch_size=-1",
    ),
    (
        "random_missing_mask batch_size=2.5",
        lambda: F.random_missing_mask(2.5, 0.5),
        TypeError,
        "batch_size=2.5",
    ),
    (
        "random_missing_mask num_modalities=0",
        lambda: F.random_missing_mask(4, 0.5, num_modalities=0),
        ValueError,
        "num_modalities=0",
    ),
    (
        "random_missing_mask num_modalities=True",
        lambda: F.random_missing_mask(4, 0.5, num_modalities=True),
        TypeError,
        "num_modalities=True",
    ),
    (
        "random_missing_mask generator=0",
        lambda: F.random_missing_mask(4, 0.5, generator=0),
        TypeError,
        "generator=0",
    ),
    ("ModalityDropout p=1", lambda: F.ModalityDropout(1.0, 2), ValueError, "p=1.0"),
    ("ModalityDropout p='0.1'", lambda: F.ModalityDropout("0.1", 2), TypeError, "p='0.1'"),
    (
        "ModalityDropout num_modalities=0",
        lambda: F.ModalityDropout(0.5, 0),
        ValueError,
        "num_modalities=0",
    ),
    (
        "ModalityDropout num_modalities=True",
        lambda: F.ModalityDropout(0.5, True),
        TypeError,
        "num_modalities=True",
    ),
    (
        "ModalityDropout present shape",
        lambda: F.ModalityDropout(0.5, 2)(3, present=torch.ones(3, 3, dtype=torch.bool)),
        ValueError,
        "present",
    ),
    (
        "ModalityDropout integer present",
        lambda: F.ModalityDropout(0.5, 2)(3, present=torch.ones(3, 2, dtype=torch.long)),
        TypeError,
        "present",
    ),
    (
        "ModalityDropout batch_size=-1",
        lambda: F.ModalityDropout(0.5, 2)(-1),
        ValueError,
        "batch_size=-1",
    ),
    (
        "ModalityDropout batch_size vs present",
        lambda: F.ModalityDropout(0.5, 2)(5, present=torch.ones(3, 2, dtype=torch.bool)),
        ValueError,
        "(5, 2)",
    ),
]
for cls in (F.EarlyFusion, F.TensorFusion):
    name = cls.__name__
    BAD += [
        (f"{name} dims=[0, 3]", lambda cls=cls: cls([0, 3], 4), ValueError, "dims=[0, 3]"),
        (f"{name} dims=[True, 2]", lambda cls=cls: cls([True, 2], 4), TypeError, "dims=[True, 2]"),
        (f"{name} dims=3", lambda cls=cls: cls(3, 4), TypeError, "dims=3"),
        (f"{name} dims=[]", lambda cls=cls: cls([], 4), ValueError, "dims=[]"),
        (f"{name} out_dim=0", lambda cls=cls: cls(DIMS, 0), ValueError, "out_dim=0"),
        (f"{name} out_dim=2.0", lambda cls=cls: cls(DIMS, 2.0), TypeError, "out_dim=2.0"),
    ]


@pytest.mark.parametrize(("make", "error", "fragment"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_input_raises_a_clear_error(make, error, fragment):
    raises_clearly(error, make, fragment)


def make_modules() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    modules = {
        "early": F.EarlyFusion(DIMS, 4),
        "late": F.LateFusion(DIMS, 4),
        "late learned": F.LateFusion(DIMS, 4, learned=True),
        "hybrid": F.HybridFusion(DIMS, 4),
        "gated": F.GatedFusion(DIMS, 4),
        "tokens": F.TokenFusion(DIMS, 8, heads=2),
        "tensor": F.TensorFusion(DIMS, 4),
        "bilinear": F.LowRankBilinear(DIMS, 4),
    }
    return {name: module.eval() for name, module in modules.items()}


MODULES = make_modules()


@pytest.mark.parametrize("name", sorted(MODULES))
@settings(max_examples=20, deadline=None)
@given(poison=POISON, data=st.data())
def test_a_missing_modality_is_never_used(name, poison, data):
    """Whatever a missing modality holds (NaN, inf, huge, random), the output is the one
    computed with zeros there, and every gradient (inputs and parameters) is finite."""
    module = MODULES[name]
    present = torch.tensor(data.draw(st.lists(st.booleans(), min_size=8, max_size=8))).view(4, 2)
    seed = data.draw(st.integers(0, 50))
    h1, h2 = rand(4, 3, seed=seed), rand(4, 5, seed=seed + 1)
    poisoned = [
        h1.masked_fill(~present[:, :1], poison).requires_grad_(),
        h2.masked_fill(~present[:, 1:], poison).requires_grad_(),
    ]
    out = module(poisoned, present)
    clean = module([h1.masked_fill(~present[:, :1], 0.0), h2.masked_fill(~present[:, 1:], 0.0)], present)
    assert torch.equal(out, clean)
    other = module([torch.where(present[:, :1], h1, 7.0), torch.where(present[:, 1:], h2, -3.0)], present)
    assert torch.equal(out, other)
    params = [p for p in module.parameters() if p.requires_grad]
    assert all_finite(out, *backward_grads(out, *poisoned, *params))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_empty_batches_fuse_to_empty_outputs(name):
    out = MODULES[name]([rand(0, 3), rand(0, 5)], torch.zeros(0, 2, dtype=torch.bool))
    assert out.shape[0] == 0


def test_gated_weights_and_late_weights_stay_on_the_present_modalities_with_nan():
    gated = MODULES["gated"]
    gated([H1, H2.masked_fill(~PRESENT[:, 1:], math.nan)], PRESENT)
    assert torch.all(gated.weights[~PRESENT] == 0) and torch.allclose(gated.weights.sum(1), torch.ones(4))


@pytest.mark.parametrize("poison", [math.nan, math.inf])
def test_cross_modal_and_multi_hop_attention_ignore_padded_context(poison):
    torch.manual_seed(0)
    pad = torch.tensor([[False, False, True, True, True], [False] * 5])
    queries, context = rand(2, 3, 8), rand(2, 5, 6, seed=1)
    for module in (
        F.CrossModalAttention(8, 6, heads=2).eval(),
        F.MultiHopAttention(8, 6, hops=2, heads=2).eval(),
    ):
        inputs = [
            queries.clone().requires_grad_(),
            context.masked_fill(pad[..., None], poison).requires_grad_(),
        ]
        out = module(*inputs, pad)
        assert torch.equal(out, module(queries, context.masked_fill(pad[..., None], 0.0), pad))
        assert all_finite(out, *backward_grads(out, *inputs, *module.parameters()))


def test_co_attention_regions_ignore_nan_in_padded_words():
    torch.manual_seed(0)
    co = F.CoAttention(8, heads=2).eval()
    pad = torch.tensor([[False, False, True, True, True], [False] * 5])
    text, regions = rand(2, 5, 8), rand(2, 4, 8, seed=1)
    _, new_regions = co(text.masked_fill(pad[..., None], math.nan), regions, pad)
    assert torch.equal(new_regions, co(text.masked_fill(pad[..., None], 0.0), regions, pad)[1])


def test_modality_dropout_with_a_sample_that_has_no_modality():
    """Used to crash ('invalid multinomial distribution'); such a sample keeps none."""
    dropout = F.ModalityDropout(0.5, 2).train()
    present = torch.tensor([[False, False], [True, True], [False, True]] * 50)
    torch.manual_seed(0)
    keep = dropout(150, present=present)
    assert not keep[0::3].any(), "nothing present: nothing kept"
    assert keep[1::3].any(1).all(), "every sample that had an input keeps one"
    assert torch.equal(keep[2::3], present[2::3]), "the only modality present is kept"
    assert not (keep & ~present).any()


def test_random_missing_mask_edges():
    assert F.random_missing_mask(0, 0.5).shape == (0, 2)
    assert F.random_missing_mask(5, 1.0).sum(1).eq(1).all()
    assert F.random_missing_mask(5, 0.0).all()
