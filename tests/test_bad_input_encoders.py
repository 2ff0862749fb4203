"""Bad and edge inputs for mmtutorial.encoders: sizes, names and flags at construction;
dtype, shape and token-id range at the forward boundary; empty batches; padded tokens
that hold NaN."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bad_input_common import POISON, all_finite, backward_grads, raises_clearly

from mmtutorial import encoders as E


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


TOKENS = rand(2, 4, 3)
MASK = torch.tensor([[True, True, False, False], [True, True, True, True]])
IDS = torch.tensor([[2, 3, 4, 0], [2, 5, 6, 7]])
ONE = torch.ones(1, 2, dtype=torch.bool)

BAD = [
    ("coordinate_grid(-1, 5)", lambda: E.coordinate_grid(-1, 5), ValueError, "height=-1"),
    ("coordinate_grid(0, 5)", lambda: E.coordinate_grid(0, 5), ValueError, "height=0"),
    ("coordinate_grid(2.5, 5)", lambda: E.coordinate_grid(2.5, 5), TypeError, "height=2.5"),
    ("coordinate_grid(True, 5)", lambda: E.coordinate_grid(True, 5), TypeError, "height=True"),
    ("coordinate_grid(3, -2)", lambda: E.coordinate_grid(3, -2), ValueError, "width=-2"),
    (
        "ConvRegionEncoder channels=0",
        lambda: E.ConvRegionEncoder(channels=0),
        ValueError,
        "channels=0",
    ),
    (
        "ConvRegionEncoder in_channels=0",
        lambda: E.ConvRegionEncoder(in_channels=0),
        ValueError,
        "in_channels=0",
    ),
    (
        "ConvRegionEncoder layers=True",
        lambda: E.ConvRegionEncoder(layers=True),
        TypeError,
        "layers=True",
    ),
    ("ConvRegionEncoder layers=0", lambda: E.ConvRegionEncoder(layers=0), ValueError, "layers=0"),
    (
        "ConvRegionEncoder layers=2.0",
        lambda: E.ConvRegionEncoder(layers=2.0),
        TypeError,
        "layers=2.0",
    ),
    (
        "ConvRegionEncoder norm='layer'",
        lambda: E.ConvRegionEncoder(norm="layer"),
        ValueError,
        "norm='layer'",
    ),
    (
        "ConvRegionEncoder group norm of 6 channels",
        lambda: E.ConvRegionEncoder(channels=6, norm="group"),
        ValueError,
        "channels=6",
    ),
    ("ConvRegionEncoder merge=0", lambda: E.ConvRegionEncoder(merge=0), ValueError, "merge=0"),
    ("ConvRegionEncoder merge=2.0", lambda: E.ConvRegionEncoder(merge=2.0), TypeError, "merge=2.0"),
    (
        "ConvRegionEncoder add_coordinates='no'",
        lambda: E.ConvRegionEncoder(add_coordinates="no"),
        TypeError,
        "add_coordinates='no'",
    ),
    (
        "ConvRegionEncoder uint8 images",
        lambda: E.ConvRegionEncoder(channels=8, layers=2)(torch.zeros(2, 3, 16, 16, dtype=torch.uint8)),
        TypeError,
        "images.float() / 255",
    ),
    (
        "ConvRegionEncoder float64 images",
        lambda: E.ConvRegionEncoder(channels=8, layers=2)(rand(2, 3, 16, 16, dtype=torch.float64)),
        TypeError,
        "float32",
    ),
    (
        "ConvRegionEncoder 3-D images",
        lambda: E.ConvRegionEncoder(channels=8, layers=2)(rand(3, 16, 16)),
        ValueError,
        "images of shape (batch, 3, height, width)",
    ),
    (
        "ConvRegionEncoder images=list",
        lambda: E.ConvRegionEncoder(channels=8, layers=2)([[1.0]]),
        TypeError,
        "images=",
    ),
    (
        "ResNet18Trunk stop_at='layer5'",
        lambda: E.ResNet18Trunk(stop_at="layer5"),
        ValueError,
        "stop_at='layer5'",
    ),
    (
        "ResNet18Trunk weights_path missing",
        lambda: E.ResNet18Trunk(weights_path="/no/such/weights.pt"),
        FileNotFoundError,
        "weights_path='/no/such/weights.pt'",
    ),
    (
        "ResNet18Trunk pretrained='yes'",
        lambda: E.ResNet18Trunk(pretrained="yes"),
        TypeError,
        "pretrained='yes'",
    ),
    (
        "DigitImageEncoder out_dim=0",
        lambda: E.DigitImageEncoder(out_dim=0),
        ValueError,
        "out_dim=0",
    ),
    (
        "DigitImageEncoder image_size=3",
        lambda: E.DigitImageEncoder(image_size=3),
        ValueError,
        "image_size=3",
    ),
    (
        "DigitImageEncoder image_size=True",
        lambda: E.DigitImageEncoder(image_size=True),
        TypeError,
        "image_size=True",
    ),
    (
        "DigitImageEncoder 32x32 images",
        lambda: E.DigitImageEncoder(16)(rand(2, 1, 32, 32)),
        ValueError,
        "(batch, 1, 28, 28)",
    ),
    (
        "DigitImageEncoder uint8 images",
        lambda: E.DigitImageEncoder(16)(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)),
        TypeError,
        "uint8",
    ),
    (
        "SpectrogramEncoder out_dim=0",
        lambda: E.SpectrogramEncoder(out_dim=0),
        ValueError,
        "out_dim=0",
    ),
    ("SpectrogramEncoder n_mels=0", lambda: E.SpectrogramEncoder(n_mels=0), ValueError, "n_mels=0"),
    (
        "SpectrogramEncoder mel_bins_kept=0",
        lambda: E.SpectrogramEncoder(mel_bins_kept=0),
        ValueError,
        "mel_bins_kept=0",
    ),
    (
        "SpectrogramEncoder uint8",
        lambda: E.SpectrogramEncoder(16)(torch.zeros(2, 1, 40, 101, dtype=torch.uint8)),
        TypeError,
        "spectrogram=",
    ),
    (
        "SpectrogramEncoder 3-D",
        lambda: E.SpectrogramEncoder(16)(rand(2, 40, 101)),
        ValueError,
        "(batch, 1, 40, frames)",
    ),
    (
        "SpectrogramEncoder one frame",
        lambda: E.SpectrogramEncoder(16)(rand(2, 1, 40, 1)),
        ValueError,
        "frames >= 4",
    ),
    (
        "SpectrogramEncoder spectrogram=list",
        lambda: E.SpectrogramEncoder(16)([[1.0]]),
        TypeError,
        "spectrogram=",
    ),
    (
        "masked_mean mask that would broadcast",
        lambda: E.masked_mean(TOKENS, torch.ones(4, dtype=torch.bool)),
        ValueError,
        "attention_mask of shape (4,)",
    ),
    (
        "masked_mean float mask",
        lambda: E.masked_mean(TOKENS, torch.full((2, 4), 0.5)),
        TypeError,
        "attention_mask=",
    ),
    ("masked_mean 2-D tokens", lambda: E.masked_mean(rand(2, 4), MASK), ValueError, "tokens="),
    ("WordTextEncoder vocab_size=0", lambda: E.WordTextEncoder(0), ValueError, "vocab_size=0"),
    (
        "WordTextEncoder vocab_size=True",
        lambda: E.WordTextEncoder(True),
        TypeError,
        "vocab_size=True",
    ),
    ("WordTextEncoder dim=0", lambda: E.WordTextEncoder(10, dim=0), ValueError, "dim=0"),
    (
        "WordTextEncoder odd dim for the GRU",
        lambda: E.WordTextEncoder(10, dim=7),
        ValueError,
        "even",
    ),
    (
        "WordTextEncoder kind='lstm'",
        lambda: E.WordTextEncoder(10, kind="lstm"),
        ValueError,
        "kind='lstm'",
    ),
    (
        "WordTextEncoder pad_id=-1",
        lambda: E.WordTextEncoder(10, pad_id=-1),
        ValueError,
        "pad_id=-1",
    ),
    (
        "WordTextEncoder pad_id=10",
        lambda: E.WordTextEncoder(10, pad_id=10),
        ValueError,
        "pad_id=10",
    ),
    ("WordTextEncoder layers=0", lambda: E.WordTextEncoder(10, layers=0), ValueError, "layers=0"),
    (
        "WordTextEncoder heads do not divide",
        lambda: E.WordTextEncoder(10, dim=64, kind="transformer", heads=3),
        ValueError,
        "heads (3)",
    ),
    (
        "WordTextEncoder max_len=0",
        lambda: E.WordTextEncoder(10, kind="transformer", max_len=0),
        ValueError,
        "max_len=0",
    ),
    (
        "WordTextEncoder dropout=2",
        lambda: E.WordTextEncoder(10, kind="transformer", dropout=2.0),
        ValueError,
        "dropout=2.0",
    ),
    (
        "PretrainedTextEncoder name_or_path=3",
        lambda: E.PretrainedTextEncoder(3),
        TypeError,
        "name_or_path=3",
    ),
    (
        "PretrainedTextEncoder missing model",
        lambda: E.PretrainedTextEncoder("/no/such/model"),
        ValueError,
        "'/no/such/model'",
    ),
    (
        "PretrainedTextEncoder freeze='no'",
        lambda: E.PretrainedTextEncoder(freeze="no"),
        TypeError,
        "freeze='no'",
    ),
]
for kind in ("gru", "transformer"):

    def encoder(kind=kind):
        torch.manual_seed(0)
        return E.WordTextEncoder(10, dim=8, kind=kind, heads=2).eval()

    BAD += [
        (
            f"WordTextEncoder[{kind}] id >= vocabulary",
            lambda e=encoder: e()(torch.tensor([[2, 10]]), ONE),
            ValueError,
            "got values in [2, 10]",
        ),
        (
            f"WordTextEncoder[{kind}] negative id",
            lambda e=encoder: e()(torch.tensor([[2, -1]]), ONE),
            ValueError,
            "input_ids=",
        ),
        (
            f"WordTextEncoder[{kind}] float ids",
            lambda e=encoder: e()(IDS.float(), MASK),
            TypeError,
            "input_ids=",
        ),
        (
            f"WordTextEncoder[{kind}] ids=list",
            lambda e=encoder: e()([[2, 3]], MASK),
            TypeError,
            "input_ids=",
        ),
        (
            f"WordTextEncoder[{kind}] mask shape",
            lambda e=encoder: e()(IDS, MASK[:, :3]),
            ValueError,
            "same shape",
        ),
        (
            f"WordTextEncoder[{kind}] float mask",
            lambda e=encoder: e()(IDS, MASK.float()),
            TypeError,
            "attention_mask=",
        ),
    ]


@pytest.mark.parametrize(("make", "error", "fragment"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_input_raises_a_clear_error(make, error, fragment):
    raises_clearly(error, make, fragment)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_word_text_encoder_edges(kind):
    torch.manual_seed(0)
    encoder = E.WordTextEncoder(10, dim=8, kind=kind, heads=2).eval()
    tokens, pooled = encoder(torch.zeros(0, 4, dtype=torch.long), torch.zeros(0, 4, dtype=torch.bool))
    assert tokens.shape == (0, 4, 8) and pooled.shape == (0, 8), (
        "an empty batch (used to be 'Cannot pack empty tensors')"
    )
    tokens, pooled = encoder(torch.zeros(2, 0, dtype=torch.long), torch.zeros(2, 0, dtype=torch.bool))
    assert tokens.shape == (2, 0, 8) and torch.all(pooled == 0), "no positions: nothing to read"
    _, pooled = encoder(IDS, torch.tensor([[False] * 4, [True] * 4]))
    assert all_finite(pooled) and torch.all(pooled[0] == 0), "a question of padding only pools to zeros"
    _, pooled_int = encoder(IDS, MASK.long())  # Hugging Face masks are 0/1 integers
    assert torch.equal(pooled_int, encoder(IDS, MASK)[1])


def test_pretrained_text_encoder_checks_ids_and_takes_an_empty_batch():
    encoder = E.PretrainedTextEncoder()
    raises_clearly(ValueError, lambda: encoder(torch.tensor([[101, 40000]]), ONE), "input_ids=", "[0, 30521]")
    tokens, pooled = encoder(torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, 3, dtype=torch.bool))
    assert tokens.shape == (0, 3, 384) and pooled.shape == (0, 384)


def test_edge_sizes_that_work():
    assert E.coordinate_grid(1, 1).tolist() == [[0.0, 0.0]]
    cnn = E.ConvRegionEncoder(channels=8, layers=2).eval()
    assert cnn(rand(0, 3, 16, 16)).shape == (0, 16, 10)
    assert E.DigitImageEncoder(16)(rand(0, 1, 28, 28)).shape == (0, 16)
    assert E.SpectrogramEncoder(16)(rand(2, 1, 40, 4)).shape == (2, 16)
    assert E.masked_mean(TOKENS, MASK.long()).shape == (2, 3)


@settings(max_examples=30, deadline=None)
@given(poison=POISON, data=st.data())
def test_masked_mean_ignores_whatever_padded_tokens_hold(poison, data):
    mask = torch.tensor(data.draw(st.lists(st.booleans(), min_size=8, max_size=8))).view(2, 4)
    tokens = TOKENS.masked_fill(~mask[..., None], poison).requires_grad_()
    mean = E.masked_mean(tokens, mask)
    assert torch.equal(mean, E.masked_mean(TOKENS.masked_fill(~mask[..., None], 0.0), mask))
    assert all_finite(mean, *backward_grads(mean, tokens))


def test_transformer_text_encoder_ignores_nan_embeddings_of_padding():
    """Padding ids whose embedding went NaN do not reach the real tokens' pooled vector."""
    torch.manual_seed(0)
    encoder = E.WordTextEncoder(10, dim=8, kind="transformer", heads=2).eval()
    clean = encoder(IDS, MASK)[1]
    with torch.no_grad():
        encoder.embed.weight[0] = math.nan  # the padding id
    ids = IDS.masked_fill(~MASK, 0)
    assert torch.equal(encoder(ids, MASK)[1][1], clean[1])  # row 1 has no padding
    assert all_finite(encoder(ids, MASK)[1])
