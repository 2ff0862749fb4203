"""Fusion modules, encoders and the AV-Digits fusion classifier."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmtutorial.attention import MultiHeadAttention
from mmtutorial.encoders import (
    ConvRegionEncoder,
    DigitImageEncoder,
    PretrainedTextEncoder,
    ResNet18Trunk,
    SpectrogramEncoder,
    WordTextEncoder,
    coordinate_grid,
    masked_mean,
)
from mmtutorial.fusion import (
    CoAttention,
    CrossModalAttention,
    EarlyFusion,
    FiLM,
    GatedFusion,
    HybridFusion,
    LateFusion,
    LowRankBilinear,
    ModalityDropout,
    MultiHopAttention,
    TensorFusion,
    TokenFusion,
)
from mmtutorial.models import FUSIONS, AVFusionClassifier


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


VECTOR_FUSIONS = {
    "early": lambda: EarlyFusion([5, 3], 4),
    "late": lambda: LateFusion([5, 3], 4),
    "late_learned": lambda: LateFusion([5, 3], 4, learned=True),
    "hybrid": lambda: HybridFusion([5, 3], 4),
    "gated": lambda: GatedFusion([5, 3], 4),
    "tokens": lambda: TokenFusion([5, 3], 8, heads=2),
    "tensor": lambda: TensorFusion([5, 3], 4),
    "bilinear": lambda: LowRankBilinear([5, 3], 4, factor=2),
}


@pytest.mark.parametrize("name", list(VECTOR_FUSIONS))
def test_vector_fusion_shapes_and_gradcheck(name):
    torch.manual_seed(0)
    module = VECTOR_FUSIONS[name]().double().eval()
    a = rand(3, 5, dtype=torch.float64).requires_grad_()
    b = rand(3, 3, seed=1, dtype=torch.float64).requires_grad_()
    out = module([a, b])
    assert out.shape[0] == 3 and torch.isfinite(out).all()
    assert torch.autograd.gradcheck(lambda a, b: module([a, b]), (a, b))


@pytest.mark.parametrize("name", list(VECTOR_FUSIONS))
def test_a_missing_modality_is_ignored(name):
    torch.manual_seed(0)
    module = VECTOR_FUSIONS[name]().eval()
    a, b = rand(4, 5), rand(4, 3, seed=1)
    present = torch.tensor([[True, False], [True, True], [False, True], [True, False]])
    out = module([a, b], present)
    b_changed = b.clone()
    b_changed[[0, 3]] = 100.0  # rows where the audio is missing: its values must not matter
    a_changed = a.clone()
    a_changed[2] = -50.0
    assert torch.allclose(out[[0, 3]], module([a, b_changed], present)[[0, 3]], atol=1e-5)
    assert torch.allclose(out[2], module([a_changed, b], present)[2], atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), batch=st.integers(1, 6), data=st.data())
def test_gate_weights_are_a_distribution_over_present_modalities(seed, batch, data):
    torch.manual_seed(seed)
    gate = GatedFusion([4, 4, 4], 6)
    present = torch.tensor(
        data.draw(st.lists(st.lists(st.booleans(), min_size=3, max_size=3).filter(any), min_size=batch, max_size=batch))
    )
    gate([rand(batch, 4, seed=seed + i) for i in range(3)], present)
    w = gate.weights
    assert torch.all(w >= 0) and torch.allclose(w.sum(1), torch.ones(batch), atol=1e-6)
    assert torch.all(w[~present] == 0)


def test_gate_renormalises_when_a_modality_goes_missing():
    torch.manual_seed(0)
    gate = GatedFusion([4, 4], 6)
    h = [rand(2, 4), rand(2, 4, seed=1)]
    gate(h)
    both = gate.weights.clone()
    gate(h, torch.tensor([[True, False], [True, True]]))
    assert gate.weights[0].tolist() == [1.0, 0.0]
    assert torch.allclose(gate.weights[1], both[1])


def test_fusion_input_errors():
    with pytest.raises(ValueError, match="expected 2 modalities, got 1"):
        EarlyFusion([5, 3], 4)([rand(2, 5)])
    with pytest.raises(ValueError, match=r"modality 1: expected features of shape \(2, 3\), got \(2, 4\)"):
        GatedFusion([5, 3], 4)([rand(2, 5), rand(2, 4)])
    with pytest.raises(TypeError, match=r"present must be a boolean mask of shape \(batch, modalities\) = \(2, 2\)"):
        EarlyFusion([5, 3], 4)([rand(2, 5), rand(2, 3)], torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"present must be a boolean mask of shape \(batch, modalities\) = \(2, 2\)"):
        EarlyFusion([5, 3], 4)([rand(2, 5), rand(2, 3)], torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="exactly two modalities"):
        LowRankBilinear([2, 2, 2], 4)


def test_single_token_self_attention_is_a_linear_map():
    torch.manual_seed(0)
    mha = MultiHeadAttention(12, 3).eval()
    x = rand(5, 1, 12)  # one concatenated token per sample
    out, weights = mha(x, x, x)
    assert torch.all(weights == 1.0), "a softmax over one key is always 1"
    linear = mha.out_proj(mha.v_proj(x))  # no query or key is involved at all
    assert torch.allclose(out, linear, atol=1e-6)


def test_film_starts_as_identity_and_modulates_channels():
    film = FiLM(3, 4)
    x, c = rand(2, 4, 5, 5), rand(2, 3)
    assert torch.equal(film(x, c), x)
    with torch.no_grad():
        film.to_gamma_beta.bias[:4] = 1.0  # gamma = 1: scale by 2
    assert torch.allclose(film(x, c), 2 * x)
    assert torch.autograd.gradcheck(
        FiLM(3, 4).double(),
        (rand(2, 4, 3, dtype=torch.float64).requires_grad_(), rand(2, 3, dtype=torch.float64).requires_grad_()),
    )
    with pytest.raises(ValueError, match=r"expected x of shape \(batch, 4, ...\)"):
        film(rand(2, 5), c)


def test_cross_co_and_multihop_attention():
    torch.manual_seed(0)
    text, regions = rand(2, 3, 16), rand(2, 25, 10, seed=1)
    cross = CrossModalAttention(16, 10, heads=4).double()
    out = cross(text.double(), regions.double())
    assert out.shape == (2, 3, 16) and cross.weights.shape == (2, 4, 3, 25)
    assert torch.allclose(cross.weights.sum(-1), torch.ones(2, 4, 3, dtype=torch.float64))
    assert torch.autograd.gradcheck(
        lambda t, r: cross(t, r), (text.double().requires_grad_(), regions.double().requires_grad_())
    )
    co = CoAttention(16, heads=2)
    padding = torch.tensor([[False, False, True], [False] * 3])
    new_text, new_regions = co(text, rand(2, 25, 16, seed=2), text_padding=padding)
    assert new_text.shape == (2, 3, 16) and new_regions.shape == (2, 25, 16)
    assert torch.all(co.image_to_text.weights[0, :, :, 2] == 0), "padding words get no attention"
    hop = MultiHopAttention(16, 10, hops=3, heads=2)
    assert hop(text, regions).shape == (2, 3, 16) and len(hop.weights) == 3


def test_modality_dropout():
    dropout = ModalityDropout(0.5, 2)
    torch.manual_seed(0)
    keep = dropout(10_000)
    assert keep.any(1).all(), "every sample keeps at least one modality"
    assert 0.3 < (~keep).float().mean() < 0.45  # 0.5 per modality, minus the rescued ones
    assert dropout.eval()(4).all()
    present = torch.tensor([[True, False]] * 5)
    assert torch.equal(dropout.train()(5, present=present), present)
    with pytest.raises(ValueError, match=r"p=1.0: expected a probability in \[0, 1\)"):
        ModalityDropout(1.0, 2)


# --- encoders -------------------------------------------------------------------------


def test_region_encoders_shapes_and_coordinates():
    cnn = ConvRegionEncoder()
    regions = cnn(rand(2, 3, 75, 75))
    assert regions.shape == (2, 25, 26) and cnn.last_grid == (5, 5)
    assert torch.equal(regions[0, :, -2:], coordinate_grid(5, 5))
    assert coordinate_grid(2, 3).tolist() == [[-1, -1], [0, -1], [1, -1], [-1, 1], [0, 1], [1, 1]]
    resnet = ResNet18Trunk()
    out = resnet(rand(1, 3, 75, 75))
    assert out.shape == (1, 25, 258) and resnet.last_grid == (5, 5)
    with pytest.raises(ValueError, match=r"expected images of shape \(batch, 3, height, width\), got \(2, 1, 75, 75\)"):
        cnn(rand(2, 1, 75, 75))
    group = ConvRegionEncoder(norm="group")
    x = rand(4, 3, 75, 75)
    assert torch.allclose(group.train()(x), group.eval()(x)), "GroupNorm: evaluation behaves like training"
    with pytest.raises(ValueError, match="norm='layer'"):
        ConvRegionEncoder(norm="layer")


def test_merging_keeps_every_sub_cell_of_the_finer_map():
    """``layers=3, merge=2``: the 5x5 grid of 4 layers, each region holding its four cells of
    the 10x10 map unchanged (channel-major, as ``nn.PixelUnshuffle``), and a receptive field
    of two 15-pixel cells 8 apart."""
    merged, fine = ConvRegionEncoder(layers=3, merge=2).eval(), ConvRegionEncoder(layers=3).eval()
    fine.load_state_dict(merged.state_dict())  # the merge has no weights: same convs
    images = rand(2, 3, 75, 75)
    regions, cells = merged(images), fine(images)
    assert regions.shape == (2, 25, 4 * 24 + 2) and merged.out_dim == 98 and merged.last_grid == (5, 5)
    assert torch.equal(regions[..., -2:], coordinate_grid(5, 5).expand(2, -1, -1))
    grid = cells[..., :-2].transpose(1, 2).reshape(2, 24, 10, 10)
    # region (row 1, column 2) holds cells rows 2-3, columns 4-5; sub-cell (dy, dx) of channel c
    # is feature c * 4 + dy * 2 + dx
    region = regions[:, 1 * 5 + 2, :-2].reshape(2, 24, 2, 2)
    assert torch.equal(region, grid[:, :, 2:4, 4:6])
    assert merged.receptive_field() == (23, 16, 4.0) and fine.receptive_field() == (15, 8, 0.0)
    with pytest.raises(ValueError, match=r"merge=3: the convs turn \(75, 75\) images into a \(10, 10\) map"):
        ConvRegionEncoder(layers=3, merge=3)(images)


def test_vector_encoders():
    assert DigitImageEncoder(32)(rand(4, 1, 28, 28)).shape == (4, 32)
    assert SpectrogramEncoder(32)(rand(4, 1, 40, 101)).shape == (4, 32)
    with pytest.raises(ValueError, match=r"\(batch, 1, 40, frames\)"):
        SpectrogramEncoder(32)(rand(4, 1, 20, 101))


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_word_text_encoder_ignores_padding(kind):
    torch.manual_seed(0)
    encoder = WordTextEncoder(20, dim=16, kind=kind).eval()
    ids = torch.tensor([[2, 5, 7, 0, 0], [2, 3, 4, 5, 6]])
    mask = ids != 0
    tokens, pooled = encoder(ids, mask)
    assert tokens.shape == (2, 5, 16) and pooled.shape == (2, 16)
    short_tokens, short_pooled = encoder(ids[:1, :3], mask[:1, :3])
    assert torch.allclose(pooled[0], short_pooled[0], atol=1e-5), "padding must not change the result"
    with pytest.raises(ValueError, match="same shape"):
        encoder(ids, mask[:, :3])


def test_masked_mean():
    tokens = torch.arange(12.0).view(1, 4, 3)
    assert masked_mean(tokens, torch.tensor([[True, True, False, False]])).tolist() == [[1.5, 2.5, 3.5]]


def test_pretrained_text_encoder_minilm_offline():
    encoder = PretrainedTextEncoder("minilm", freeze=True)
    from mmtutorial.data.text import load_tokenizer

    tokenizer = load_tokenizer("minilm")
    batch = tokenizer(
        ["what shape is the red object?", "is the gray thing on the left?"], padding=True, return_tensors="pt"
    )
    tokens, pooled = encoder(batch["input_ids"], batch["attention_mask"].bool())
    assert tokens.shape[-1] == 384 == encoder.out_dim and pooled.shape == (2, 384)
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.model.training, "a frozen encoder stays in eval mode"
    with pytest.raises(ValueError, match="could not load a text model from '/no/such/model'"):
        PretrainedTextEncoder("/no/such/model")


# --- the AV-Digits classifier ---------------------------------------------------------


@pytest.mark.parametrize("fusion", FUSIONS)
def test_av_fusion_classifier_every_fusion(fusion):
    torch.manual_seed(0)
    model = AVFusionClassifier(fusion, dim=16, modality_dropout=0.3)
    batch = {"image": rand(4, 1, 28, 28), "audio": rand(4, 1, 40, 101, seed=1), "label": torch.tensor([0, 1, 2, 3])}
    logits = model(batch)
    assert logits.shape == (4, 10)
    torch.nn.functional.cross_entropy(logits, batch["label"]).backward()
    model.eval()
    present = torch.tensor([[True, False]] * 4)
    out = model({**batch, "present": present})
    if fusion not in ("image", "audio"):
        noisy = model({**batch, "audio": batch["audio"] + 10, "present": present})
        assert torch.allclose(out, noisy, atol=1e-5), f"{fusion}: a missing audio must not matter"


def test_av_fusion_classifier_bad_name():
    with pytest.raises(ValueError, match="fusion='average': expected one of"):
        AVFusionClassifier("average")
