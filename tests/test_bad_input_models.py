"""Bad and edge inputs for the models (VQAModel, AVFusionClassifier) and the VQA
checkpoints: config values, batch keys, dtypes, image rows, token ids, empty batches,
missing modalities holding NaN, and checkpoint files that are corrupted or lie."""

from __future__ import annotations

import math
import zipfile

import numpy as np
import pytest
import torch
from test_bad_input_common import all_finite, backward_grads, raises_clearly

from mmtutorial.models import FUSIONS, AVFusionClassifier
from mmtutorial.models.vqa import (
    HEADS,
    VQAConfig,
    VQAModel,
    load_vqa_checkpoint,
    save_vqa_checkpoint,
)
from mmtutorial.training import load_checkpoint, save_checkpoint

SMALL = dict(
    dim=8,
    hidden=16,
    cnn_channels=8,
    cnn_layers=3,
    heads=2,
    layers=1,
    hops=1,
    num_answers=5,
    vocab_size=12,
)
ANSWERS = ["a", "b", "c", "d", "e"]
IDS = torch.tensor([[2, 3, 4, 0], [2, 5, 6, 7], [2, 8, 0, 0]])
IMAGES = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
BATCH = {"image": IMAGES, "input_ids": IDS, "attention_mask": IDS != 0}
BY_IMAGE = {"images": IMAGES[:2], "input_ids": IDS, "attention_mask": IDS != 0}


def vqa(head="cross_attention", **overrides) -> VQAModel:
    torch.manual_seed(0)
    return VQAModel(VQAConfig(head=head, **(SMALL | overrides)), image_size=32).eval()


STRUCTURED = {k: v for k, v in SMALL.items() if k != "vocab_size"} | {"question_encoder": "structured"}

BAD = [
    (
        "VQAConfig dropout='0.1'",
        lambda: VQAConfig(dropout="0.1", vocab_size=12),
        TypeError,
        "dropout='0.1'",
    ),
    (
        "VQAConfig dropout=True",
        lambda: VQAConfig(dropout=True, vocab_size=12),
        TypeError,
        "dropout=True",
    ),
    (
        "VQAConfig dropout=nan",
        lambda: VQAConfig(dropout=math.nan, vocab_size=12),
        ValueError,
        "dropout=nan",
    ),
    (
        "VQAConfig head='concat '",
        lambda: VQAConfig(head="concat ", vocab_size=12),
        ValueError,
        "head='concat '",
    ),
    ("VQAConfig cnn_merge=0", lambda: VQAConfig(cnn_merge=0, vocab_size=12), ValueError, "cnn_merge=0"),
    ("VQAConfig head=None", lambda: VQAConfig(head=None, vocab_size=12), ValueError, "head=None"),
    (
        "VQAConfig num_answers=True",
        lambda: VQAConfig(num_answers=True, vocab_size=12),
        TypeError,
        "num_answers=True",
    ),
    ("VQAConfig no vocab_size", lambda: VQAConfig(), ValueError, "needs vocab_size"),
    ("VQAConfig vocab_size=2.0", lambda: VQAConfig(vocab_size=2.0), ValueError, "vocab_size"),
    (
        "VQAConfig pad_id=True",
        lambda: VQAConfig(vocab_size=12, pad_id=True),
        TypeError,
        "pad_id=True",
    ),
    ("VQAConfig pad_id='0'", lambda: VQAConfig(vocab_size=12, pad_id="0"), TypeError, "pad_id='0'"),
    (
        "VQAConfig pad_id outside",
        lambda: VQAConfig(vocab_size=12, pad_id=12),
        ValueError,
        "pad_id=12",
    ),
    (
        "VQAConfig text_model=3",
        lambda: VQAConfig(question_encoder="minilm", text_model=3),
        TypeError,
        "text_model=3",
    ),
    (
        "VQAConfig finetune_text='yes'",
        lambda: VQAConfig(question_encoder="minilm", finetune_text="yes"),
        TypeError,
        "finetune_text='yes'",
    ),
    (
        "VQAConfig invert_images='no'",
        lambda: VQAConfig(vocab_size=12, invert_images="no"),
        TypeError,
        "invert_images='no'",
    ),
    (
        "VQAConfig image_encoder='resnet'",
        lambda: VQAConfig(vocab_size=12, image_encoder="resnet"),
        ValueError,
        "image_encoder='resnet'",
    ),
    (
        "VQAConfig group norm of 6 channels",
        lambda: VQAConfig(vocab_size=12, cnn_channels=6, cnn_norm="group"),
        ValueError,
        "cnn_channels=6",
    ),
    (
        "VQAConfig relate_hop='middle'",
        lambda: VQAConfig(vocab_size=12, relate_hop="middle"),
        ValueError,
        "relate_hop='middle'",
    ),
    (
        "VQAConfig distance_bias='yes'",
        lambda: VQAConfig(vocab_size=12, distance_bias="yes"),
        TypeError,
        "distance_bias='yes'",
    ),
    (
        "VQAConfig distance_bias_avoid='max'",
        lambda: VQAConfig(vocab_size=12, distance_bias_avoid="max"),
        ValueError,
        "distance_bias_avoid='max': expected one of ('weights', 'peak', 'radius')",
    ),
    (
        "VQAConfig distance_bias_scale=0",
        lambda: VQAConfig(vocab_size=12, distance_bias_scale=0),
        ValueError,
        "distance_bias_scale=0",
    ),
    (
        "VQAConfig distance_bias_scale='4'",
        lambda: VQAConfig(vocab_size=12, distance_bias_scale="4"),
        TypeError,
        "distance_bias_scale='4'",
    ),
    (
        "VQAConfig distance_positions='grid'",
        lambda: VQAConfig(vocab_size=12, distance_positions="grid"),
        ValueError,
        "distance_positions='grid': expected one of ('centres', 'learned')",
    ),
    (
        "VQAConfig distance_bias_heads=0",
        lambda: VQAConfig(vocab_size=12, distance_bias_heads=0),
        ValueError,
        "distance_bias_heads=0",
    ),
    (
        "VQAConfig distance_bias_heads do not divide",
        lambda: VQAConfig(vocab_size=12, dim=6, distance_bias_heads=4),
        ValueError,
        "dim=6 must be divisible by distance_bias_heads=4",
    ),
    (
        "VQAConfig distance_bias_signs='up'",
        lambda: VQAConfig(vocab_size=12, distance_bias_signs="up"),
        ValueError,
        "distance_bias_signs='up': expected one of ('learned', 'fixed')",
    ),
    (
        "VQAConfig fixed signs with one head",
        lambda: VQAConfig(vocab_size=12, distance_bias_signs="fixed"),
        ValueError,
        "distance_bias_signs='fixed' needs an even distance_bias_heads (half near, half far), got 1",
    ),
    (
        "VQAConfig distance_bias_exclude=-1",
        lambda: VQAConfig(vocab_size=12, distance_bias_exclude=-1.0),
        ValueError,
        "distance_bias_exclude=-1.0: expected None (u is free) or a number >= 0 (u <= -exclude)",
    ),
    (
        "VQAConfig distance_bias_exclude=True",
        lambda: VQAConfig(vocab_size=12, distance_bias_exclude=True),
        ValueError,
        "distance_bias_exclude=True: expected None",
    ),
    (
        "VQAConfig heads do not divide",
        lambda: VQAConfig(vocab_size=12, dim=6, heads=4),
        ValueError,
        "divisible by heads",
    ),
    (
        "VQAConfig structured_dim=0",
        lambda: VQAConfig(question_encoder="structured", structured_dim=0),
        ValueError,
        "structured_dim=0",
    ),
    ("VQAConfig.from_dict(None)", lambda: VQAConfig.from_dict(None), TypeError, "values=None"),
    (
        "VQAConfig.from_dict unknown field",
        lambda: VQAConfig.from_dict({"colour": 1}),
        ValueError,
        "['colour']",
    ),
    ("VQAModel config='x'", lambda: VQAModel("x"), TypeError, "config='x'"),
    (
        "VQAModel image_size=0",
        lambda: VQAModel(VQAConfig(**SMALL), image_size=0),
        ValueError,
        "image_size=0",
    ),
    (
        "VQAModel image_size=True",
        lambda: VQAModel(VQAConfig(**SMALL), image_size=True),
        TypeError,
        "image_size=True",
    ),
    (
        "VQAModel uint8 image",
        lambda: vqa()({**BATCH, "image": (IMAGES * 255).to(torch.uint8)}),
        TypeError,
        "images.float() / 255",
    ),
    (
        "VQAModel float64 image",
        lambda: vqa()({**BATCH, "image": IMAGES.double()}),
        TypeError,
        "image=",
    ),
    (
        "VQAModel one-channel image",
        lambda: vqa()({**BATCH, "image": IMAGES[:, :1]}),
        ValueError,
        "(batch, 3,",
    ),
    (
        "VQAModel image size",
        lambda: vqa()({**BATCH, "image": torch.rand(3, 3, 30, 30)}),
        ValueError,
        "expected 32x32 images",
    ),
    (
        "VQAModel image_row out of range",
        lambda: vqa()({**BY_IMAGE, "image_row": torch.tensor([0, 1, 5])}),
        ValueError,
        "image_row=",
    ),
    (
        "VQAModel negative image_row",
        lambda: vqa()({**BY_IMAGE, "image_row": torch.tensor([0, -1, 1])}),
        ValueError,
        "image_row=",
    ),
    (
        "VQAModel float image_row",
        lambda: vqa()({**BY_IMAGE, "image_row": torch.tensor([0.0, 1.0, 1.0])}),
        TypeError,
        "image_row=",
    ),
    (
        "VQAModel image_row length",
        lambda: vqa()({**BY_IMAGE, "image_row": torch.tensor([0, 1])}),
        ValueError,
        "3 questions but batch['image_row'] gives 2",
    ),
    (
        "VQAModel images without image_row",
        lambda: vqa()(BY_IMAGE),
        KeyError,
        "batch['image_row'] is missing",
    ),
    (
        "VQAModel token id >= vocabulary",
        lambda: vqa()({**BATCH, "input_ids": IDS + 10}),
        ValueError,
        "input_ids=",
    ),
    (
        "VQAModel negative token id",
        lambda: vqa()({**BATCH, "input_ids": IDS - 1}),
        ValueError,
        "input_ids=",
    ),
    ("VQAModel batch=tensor", lambda: vqa()(IMAGES), TypeError, "batch="),
    (
        "VQAModel no input_ids",
        lambda: vqa()({"image": IMAGES, "attention_mask": IDS != 0}),
        KeyError,
        "input_ids",
    ),
    (
        "VQAModel questions vs images",
        lambda: vqa()({**BATCH, "input_ids": IDS[:2], "attention_mask": IDS[:2] != 0}),
        ValueError,
        "2 questions but batch['image'] gives 3",
    ),
    (
        "VQAModel attention_mask shape",
        lambda: vqa()({**BATCH, "attention_mask": IDS[:, :3] != 0}),
        ValueError,
        "same shape",
    ),
    (
        "VQAModel[structured] no structured",
        lambda: VQAModel(VQAConfig(**STRUCTURED), image_size=32)({"image": IMAGES}),
        KeyError,
        "batch['structured'] is missing",
    ),
    (
        "VQAModel[structured] structured size",
        lambda: VQAModel(VQAConfig(**STRUCTURED), image_size=32)({"image": IMAGES, "structured": torch.zeros(3, 5)}),
        ValueError,
        "(batch, 11)",
    ),
    (
        "save_vqa_checkpoint answers='abcde'",
        lambda: save_vqa_checkpoint("unused.pt", vqa(), "abcde"),
        TypeError,
        "answers='abcde'",
    ),
    (
        "save_vqa_checkpoint 3 answers for 5",
        lambda: save_vqa_checkpoint("unused.pt", vqa(), ANSWERS[:3]),
        ValueError,
        "got 3 answers",
    ),
    (
        "save_vqa_checkpoint model=Linear",
        lambda: save_vqa_checkpoint("unused.pt", torch.nn.Linear(2, 2), ANSWERS),
        TypeError,
        "model=Linear",
    ),
    (
        "save_vqa_checkpoint metrics=list",
        lambda: save_vqa_checkpoint("unused.pt", vqa(), ANSWERS, metrics=[1]),
        TypeError,
        "metrics=",
    ),
    # AVFusionClassifier
    (
        "AVFusionClassifier fusion='average'",
        lambda: AVFusionClassifier("average"),
        ValueError,
        "fusion='average'",
    ),
    ("AVFusionClassifier fusion=None", lambda: AVFusionClassifier(None), ValueError, "fusion=None"),
    ("AVFusionClassifier dim=0", lambda: AVFusionClassifier("early", dim=0), ValueError, "dim=0"),
    (
        "AVFusionClassifier dim=True",
        lambda: AVFusionClassifier("early", dim=True),
        TypeError,
        "dim=True",
    ),
    (
        "AVFusionClassifier num_classes=0",
        lambda: AVFusionClassifier("early", num_classes=0),
        ValueError,
        "num_classes=0",
    ),
    (
        "AVFusionClassifier modality_dropout=1",
        lambda: AVFusionClassifier("early", modality_dropout=1.0),
        ValueError,
        "modality_dropout=1.0",
    ),
    (
        "AVFusionClassifier n_mels=0",
        lambda: AVFusionClassifier("early", n_mels=0),
        ValueError,
        "n_mels=0",
    ),
    (
        "AVFusionClassifier image_size=2",
        lambda: AVFusionClassifier("early", image_size=2),
        ValueError,
        "image_size=2",
    ),
    (
        "AVFusionClassifier tensor_dim=0",
        lambda: AVFusionClassifier("tensor", tensor_dim=0),
        ValueError,
        "tensor_dim=0",
    ),
]

IMG = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
AUD = torch.randn(4, 1, 40, 101, generator=torch.Generator().manual_seed(2))
PRESENT = torch.tensor([[True, True], [True, False], [False, True], [True, False]])
BAD += [
    (
        "AV no audio",
        lambda: AVFusionClassifier("early", dim=16)({"image": IMG}),
        KeyError,
        "batch['audio'] is missing",
    ),
    (
        "AV uint8 image",
        lambda: AVFusionClassifier("early", dim=16)({"image": (IMG * 255).to(torch.uint8), "audio": AUD}),
        TypeError,
        "image=",
    ),
    (
        "AV 32x32 image",
        lambda: AVFusionClassifier("early", dim=16)({"image": torch.rand(4, 1, 32, 32), "audio": AUD}),
        ValueError,
        "(batch, 1, 28, 28)",
    ),
    (
        "AV present (4, 3)",
        lambda: AVFusionClassifier("early", dim=16)(
            {"image": IMG, "audio": AUD, "present": torch.ones(4, 3, dtype=torch.bool)}
        ),
        ValueError,
        "present",
    ),
    (
        "AV film present (4, 3)",
        lambda: AVFusionClassifier("film", dim=16)(
            {"image": IMG, "audio": AUD, "present": torch.ones(4, 3, dtype=torch.bool)}
        ),
        ValueError,
        "present",
    ),
    (
        "AV film integer present",
        lambda: AVFusionClassifier("film", dim=16)({"image": IMG, "audio": AUD, "present": PRESENT.long()}),
        TypeError,
        "present",
    ),
    (
        "AV image baseline integer present",
        lambda: AVFusionClassifier("image", dim=16)({"image": IMG, "present": PRESENT.long()}),
        TypeError,
        "present",
    ),
    (
        "AV batch sizes differ",
        lambda: AVFusionClassifier("early", dim=16)({"image": IMG, "audio": AUD[:3]}),
        ValueError,
        "batch['audio'] has 3 samples",
    ),
    ("AV batch=list", lambda: AVFusionClassifier("early", dim=16)([IMG, AUD]), TypeError, "batch="),
]


@pytest.mark.parametrize(("make", "error", "fragment"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_input_raises_a_clear_error(make, error, fragment):
    raises_clearly(error, make, fragment)


# --- edges that work ------------------------------------------------------------------


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("question_encoder", ["gru", "transformer"])
def test_every_head_answers_an_empty_batch(head, question_encoder):
    """Used to crash in the GRU ('Cannot pack empty tensors')."""
    model = vqa(head, question_encoder=question_encoder)
    empty = {
        "image": torch.rand(0, 3, 32, 32),
        "input_ids": torch.zeros(0, 4, dtype=torch.long),
        "attention_mask": torch.zeros(0, 4, dtype=torch.bool),
    }
    logits, maps = model(empty, return_attention=True)
    assert logits.shape == (0, 5)
    assert all(m.shape[0] == 0 for m in maps.values())


def test_whole_image_batches_and_structured_questions_work():
    model = vqa("relation")
    out = model({**BY_IMAGE, "image_row": torch.tensor([0, 0, 1])})
    assert out.shape == (3, 5) and all_finite(out)
    structured = VQAModel(VQAConfig(head="film", **STRUCTURED), image_size=32).eval()
    assert structured({"image": IMAGES, "structured": torch.zeros(3, 11, dtype=torch.float64)}).shape == (3, 5)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_a_missing_modality_is_never_used_by_any_fusion(fusion):
    """NaN in a missing image and inf in a missing audio clip: the logits equal those with
    zeros there, and every gradient is finite (the inputs are selected before encoding)."""
    torch.manual_seed(0)
    model = AVFusionClassifier(fusion, dim=16).eval()
    bad_img = IMG.masked_fill(~PRESENT[:, 0, None, None, None], math.nan).requires_grad_()
    bad_aud = AUD.masked_fill(~PRESENT[:, 1, None, None, None], math.inf).requires_grad_()
    logits = model({"image": bad_img, "audio": bad_aud, "present": PRESENT})
    clean = model(
        {
            "image": IMG.masked_fill(~PRESENT[:, 0, None, None, None], 0.0),
            "audio": AUD.masked_fill(~PRESENT[:, 1, None, None, None], 0.0),
            "present": PRESENT,
        }
    )
    assert torch.equal(logits, clean)
    params = [p for p in model.parameters() if p.requires_grad]
    assert all_finite(logits, *backward_grads(logits, bad_img, bad_aud, *params))


def test_modality_dropout_in_training_never_reads_a_dropped_modality():
    torch.manual_seed(0)
    model = AVFusionClassifier("gated", dim=16, modality_dropout=0.5).train()
    present = torch.tensor([[True, False]] * 4)  # the audio is missing and holds NaN
    logits = model(
        {
            "image": IMG,
            "audio": AUD.masked_fill(torch.ones_like(AUD, dtype=torch.bool), math.nan),
            "present": present,
        }
    )
    assert all_finite(logits, *backward_grads(logits, *[p for p in model.parameters() if p.requires_grad]))


def test_av_classifier_takes_an_empty_batch_and_extra_keys():
    model = AVFusionClassifier("early", dim=16).eval()
    assert model({"image": torch.rand(0, 1, 28, 28), "audio": torch.randn(0, 1, 40, 101)}).shape == (0, 10)
    assert model({"image": IMG, "audio": AUD, "label": torch.zeros(4), "snr_db": torch.zeros(4)}).shape == (4, 10)


# --- checkpoints ------------------------------------------------------------------------


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "vqa.pt"
    save_vqa_checkpoint(path, vqa(), ANSWERS, metrics={"acc": np.float64(0.5), "by": {"x": np.int64(3)}})
    return path


def _data_offset(path) -> tuple[int, int]:
    """Start and size of the largest tensor record inside a torch.save zip."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = path.read_bytes()
    header = info.header_offset
    start = (
        header
        + 30
        + int.from_bytes(raw[header + 26 : header + 28], "little")
        + int.from_bytes(raw[header + 28 : header + 30], "little")
    )
    return start, info.file_size


def test_round_trip_with_numpy_metrics_and_plain_torch_load(checkpoint):
    model, info = load_vqa_checkpoint(checkpoint)
    assert info["answers"] == ANSWERS and info["metrics"] == {"acc": 0.5, "by": {"x": 3}}
    assert type(info["metrics"]["acc"]) is float
    with torch.no_grad():
        torch.testing.assert_close(model(BATCH), vqa()(BATCH))
    state = torch.load(checkpoint, weights_only=True)  # still a plain weights_only checkpoint
    assert state["__checksum__"].startswith("sha256:") and "model" in state


def test_flipped_bytes_in_the_tensor_data_are_detected(checkpoint):
    """Used to load silently with changed weights."""
    start, size = _data_offset(checkpoint)
    data = bytearray(checkpoint.read_bytes())
    for i in range(start + size // 2, start + size // 2 + 16):
        data[i] ^= 0x5A
    checkpoint.write_bytes(bytes(data))
    raises_clearly(
        ValueError,
        lambda: load_vqa_checkpoint(checkpoint),
        f"{checkpoint} is not a valid checkpoint (its tensors do not match the checksum",
    )


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda raw: raw[: len(raw) // 2], "truncated"),
        (lambda raw: b"", "the file is empty"),
        (lambda raw: b"epoch,loss\n1,0.5\n", "another kind of file"),
        (lambda raw: b"XX" + raw[2:], "corrupted archive"),
    ],
    ids=["truncated", "empty", "text", "corrupt zip header"],
)
def test_unreadable_files_are_not_valid_checkpoints(checkpoint, damage, why):
    checkpoint.write_bytes(damage(checkpoint.read_bytes()))
    message = raises_clearly(
        ValueError,
        lambda: load_vqa_checkpoint(checkpoint),
        f"{checkpoint} is not a valid checkpoint (",
        why,
    )
    assert "weights_only=False" not in message


def test_a_directory_and_a_missing_file(tmp_path):
    raises_clearly(ValueError, lambda: load_vqa_checkpoint(tmp_path), "it is a directory")
    raises_clearly(FileNotFoundError, lambda: load_vqa_checkpoint(tmp_path / "none.pt"), "no checkpoint at")
    raises_clearly(ValueError, lambda: save_vqa_checkpoint(tmp_path, vqa(), ANSWERS), "got a directory")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda s: s | {"answers": ANSWERS[:3]}, "3 answers for a model with num_answers=5"),
        (lambda s: s | {"answers": [1, 2, 3, 4, 5]}, "answers must be a list of strings"),
        (
            lambda s: s | {"config": s["config"] | {"hidden": 32}},
            "its weights do not match its config: size mismatch",
        ),
        (lambda s: s | {"config": s["config"] | {"head": "lstm"}}, "bad config: head='lstm'"),
        (
            lambda s: s | {"model": {k: v for k, v in list(s["model"].items())[1:]}},
            "its weights do not match its config",
        ),
        (lambda s: {k: v for k, v in s.items() if k != "answers"}, "it lacks ['answers']"),
    ],
    ids=[
        "short answers",
        "answers not strings",
        "weights vs config",
        "bad config",
        "missing weight",
        "no answers",
    ],
)
def test_checkpoints_that_do_not_describe_a_model(checkpoint, tmp_path, change, why):
    state = load_checkpoint(checkpoint)
    save_checkpoint(tmp_path / "lie.pt", **change(state))
    raises_clearly(
        ValueError,
        lambda: load_vqa_checkpoint(tmp_path / "lie.pt"),
        "is not a valid VQA checkpoint (",
        why,
    )


def test_an_old_checkpoint_without_a_checksum_loads_unverified(checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    del state["__checksum__"]
    torch.save(state, tmp_path / "old.pt")
    model, info = load_vqa_checkpoint(tmp_path / "old.pt")
    assert info["answers"] == ANSWERS and isinstance(model, VQAModel)
