"""Bad and edge inputs for mmtutorial.training (TensorBatches, evaluate's and fit's inputs,
checkpoints) and mmtutorial.course.viz."""

from __future__ import annotations

import math
import os
import zipfile

import matplotlib
import numpy as np
import pytest
import torch
from test_bad_input_common import raises_clearly
from torch import nn

from mmtutorial import training as TR
from mmtutorial.course import COURSE
from mmtutorial.course import viz as VZ
from mmtutorial.data.batching import TensorBatches

matplotlib.use("Agg")
X = torch.arange(10.0)
DATA = [
    {
        "x": torch.randn(4, 2, generator=torch.Generator().manual_seed(0)),
        "label": torch.tensor([0, 1, 2, 0]),
    }
]


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 3)

    def forward(self, batch):
        return self.layer(batch["x"])


def fit(batches, **kwargs):
    model = Linear()
    kwargs.setdefault("optimizer", torch.optim.SGD(model.parameters(), lr=0.1))
    return TR.fit(model, batches, progress=False, **kwargs)


W = np.random.default_rng(0).random((3, 4))
BAD = [
    ("TensorBatches({})", lambda: TensorBatches({}, 2), ValueError, "tensors={}"),
    (
        "TensorBatches batch_size=True",
        lambda: TensorBatches({"x": X}, True),
        TypeError,
        "batch_size=True",
    ),
    (
        "TensorBatches batch_size=0",
        lambda: TensorBatches({"x": X}, 0),
        ValueError,
        "batch_size=0",
    ),
    (
        "TensorBatches 0-d tensor",
        lambda: TensorBatches({"x": torch.tensor(1.0)}, 2),
        TypeError,
        "tensors['x']",
    ),
    (
        "TensorBatches a list",
        lambda: TensorBatches({"x": [1, 2, 3]}, 2),
        TypeError,
        "tensors['x']",
    ),
    (
        "TensorBatches lengths differ",
        lambda: TensorBatches({"x": X, "y": X[:3]}, 2),
        ValueError,
        "same length",
    ),
    (
        "TensorBatches shuffle='yes'",
        lambda: TensorBatches({"x": X}, 2, shuffle="yes"),
        TypeError,
        "shuffle='yes'",
    ),
    (
        "TensorBatches generator='g'",
        lambda: TensorBatches({"x": X}, 2, shuffle=True, generator="g"),
        TypeError,
        "generator='g'",
    ),
    ("TensorBatches tensors=list", lambda: TensorBatches([X], 2), TypeError, "tensors="),
    (
        "evaluate without the target key",
        lambda: TR.evaluate(Linear(), [{"x": torch.randn(4, 2)}]),
        KeyError,
        "batch['label'] is missing: evaluate(target_key='label') reads it; the batch has ['x']",
    ),
    (
        "evaluate without the group key",
        lambda: TR.evaluate(Linear(), DATA, group_key="qtype"),
        KeyError,
        "batch['qtype'] is missing",
    ),
    (
        "evaluate precision='fp16'",
        lambda: TR.evaluate(Linear(), DATA, precision="fp16"),
        ValueError,
        "precision='fp16'",
    ),
    (
        "evaluate device='gpu'",
        lambda: TR.evaluate(Linear(), DATA, device="gpu"),
        ValueError,
        "device='gpu'",
    ),
    ("evaluate no batches", lambda: TR.evaluate(Linear(), []), ValueError, "no batches"),
    (
        "evaluate a tensor batch",
        lambda: TR.evaluate(Linear(), [torch.randn(4, 2)]),
        TypeError,
        "batch=",
    ),
    (
        "fit without the target key",
        lambda: fit([{"x": torch.randn(4, 2)}], epochs=1),
        KeyError,
        "batch['label'] is missing: fit(target_key='label') reads it",
    ),
    ("fit epochs=True", lambda: fit(DATA, epochs=True), TypeError, "epochs=True"),
    ("fit epochs=0", lambda: fit(DATA, epochs=0), ValueError, "epochs=0"),
    (
        "fit clip_grad_norm=-1",
        lambda: fit(DATA, epochs=1, clip_grad_norm=-1.0),
        ValueError,
        "clip_grad_norm=-1.0",
    ),
    (
        "fit clip_grad_norm=nan",
        lambda: fit(DATA, epochs=1, clip_grad_norm=math.nan),
        ValueError,
        "clip_grad_norm=nan",
    ),
    (
        "fit early_stopping_patience=0",
        lambda: fit(DATA, epochs=2, val_batches=DATA, early_stopping_patience=0),
        ValueError,
        "early_stopping_patience=0",
    ),
    (
        "fit max_seconds=-1",
        lambda: fit(DATA, epochs=1, max_seconds=-1.0),
        ValueError,
        "max_seconds=-1.0",
    ),
    (
        "fit optimizer=None",
        lambda: fit(DATA, epochs=1, optimizer=None),
        TypeError,
        "optimizer=None",
    ),
    ("fit device='gpu'", lambda: fit(DATA, epochs=1, device="gpu"), ValueError, "device='gpu'"),
    ("fit no batches", lambda: fit([], epochs=1), ValueError, "no training batches"),
    # viz
    ("plot_attention 3-D", lambda: VZ.plot_attention(np.zeros((2, 3, 4))), ValueError, "2-D"),
    (
        "plot_attention labels",
        lambda: VZ.plot_attention(W, query_labels=["a"]),
        ValueError,
        "query_labels",
    ),
    (
        "plot_attention cmap='nope'",
        lambda: VZ.plot_attention(W, cmap="nope"),
        ValueError,
        "cmap='nope'",
    ),
    ("plot_attention ax='x'", lambda: VZ.plot_attention(W, ax="x"), TypeError, "ax='x'"),
    ("plot_attention weights='abc'", lambda: VZ.plot_attention("abc"), TypeError, "weights='abc'"),
    (
        "plot_attention empty",
        lambda: VZ.plot_attention(np.zeros((0, 0))),
        ValueError,
        "weights of shape (0, 0)",
    ),
    ("show_heatmaps []", lambda: VZ.show_heatmaps([]), ValueError, "matrices=[]"),
    (
        "show_heatmaps titles",
        lambda: VZ.show_heatmaps([W], titles=["a", "b"]),
        ValueError,
        "2 titles for 1 matrices",
    ),
    ("show_heatmaps ncols=0", lambda: VZ.show_heatmaps([W], ncols=0), ValueError, "ncols=0"),
    ("show_heatmaps ncols=-1", lambda: VZ.show_heatmaps([W], ncols=-1), ValueError, "ncols=-1"),
    (
        "plot_learning_path per_row=0",
        lambda: VZ.plot_learning_path(COURSE, per_row=0),
        ValueError,
        "per_row=0",
    ),
    ("plot_learning_path no lessons", lambda: VZ.plot_learning_path([]), ValueError, "lessons=[]"),
]


@pytest.mark.parametrize(("make", "error", "fragment"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_input_raises_a_clear_error(make, error, fragment):
    raises_clearly(error, make, fragment)
    matplotlib.pyplot.close("all")


def test_empty_tensors_give_no_batches_and_max_seconds_zero_is_one_epoch():
    assert list(TensorBatches({"x": X[:0]}, 2)) == []
    assert len(fit(DATA, epochs=3, max_seconds=0.0).epochs) == 1


# --- checkpoints ------------------------------------------------------------------------


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    TR.save_checkpoint(path, model=Linear().state_dict(), history=[{"loss": 1.0}], step=torch.tensor(3))
    return path


def test_round_trip_verifies_and_hides_the_checksum(checkpoint):
    state = TR.load_checkpoint(checkpoint)
    assert set(state) == {"model", "history", "step"}
    assert "__checksum__" in torch.load(checkpoint, weights_only=True)


def test_flipped_bytes_in_the_tensor_data_are_detected(checkpoint):
    with zipfile.ZipFile(checkpoint) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(checkpoint.read_bytes())
    h = info.header_offset
    start = h + 30 + int.from_bytes(data[h + 26 : h + 28], "little") + int.from_bytes(data[h + 28 : h + 30], "little")
    data[start] ^= 0xFF
    checkpoint.write_bytes(bytes(data))
    raises_clearly(
        ValueError,
        lambda: TR.load_checkpoint(checkpoint),
        f"{checkpoint} is not a valid checkpoint (",
        "checksum",
    )


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda raw: raw[: len(raw) // 2], "truncated"),
        (lambda raw: b"", "the file is empty"),
        (lambda raw: b"hello world\n", "another kind of file"),
        (lambda raw: b"XY" + raw[2:], "corrupted archive"),
    ],
    ids=["truncated", "empty", "text", "corrupt zip header"],
)
def test_unreadable_files_say_why_and_never_suggest_an_unsafe_load(checkpoint, damage, why):
    """Used to be OSError [Errno 22], a bare EOFError, KeyError: 101, and PyTorch's advice
    to retry with weights_only=False."""
    checkpoint.write_bytes(damage(checkpoint.read_bytes()))
    message = raises_clearly(ValueError, lambda: TR.load_checkpoint(checkpoint), "is not a valid checkpoint (", why)
    assert "weights_only" not in message


def test_directories_and_missing_files(tmp_path):
    raises_clearly(
        ValueError,
        lambda: TR.load_checkpoint(tmp_path),
        f"{tmp_path} is not a valid checkpoint (it is a directory)",
    )
    raises_clearly(FileNotFoundError, lambda: TR.load_checkpoint(tmp_path / "none.pt"), "no checkpoint at")
    raises_clearly(ValueError, lambda: TR.save_checkpoint(tmp_path, x=1), "got a directory")


def test_a_file_holding_objects_a_safe_load_refuses(tmp_path):
    torch.save({"value": np.float64(1.0)}, tmp_path / "numpy.pt")
    message = raises_clearly(
        ValueError,
        lambda: TR.load_checkpoint(tmp_path / "numpy.pt"),
        "a safe (weights_only) load refuses",
    )
    assert "weights_only=False" not in message


def test_saving_what_cannot_be_loaded_safely_fails_early_and_leaves_nothing(tmp_path):
    raises_clearly(
        TypeError,
        lambda: TR.save_checkpoint(tmp_path / "np.pt", metrics={"acc": np.float64(0.5)}),
        "contents['metrics']['acc'] is a numpy float64",
    )
    raises_clearly(
        TypeError,
        lambda: TR.save_checkpoint(tmp_path / "fn.pt", fn=lambda: 1),
        "could not save a checkpoint",
    )
    raises_clearly(ValueError, lambda: TR.save_checkpoint(tmp_path / "c.pt", __checksum__="x"), "reserved")
    assert os.listdir(tmp_path) == [], "no checkpoint and no temporary file"


def test_an_interrupted_write_leaves_the_old_checkpoint_and_no_temporary_file(checkpoint, monkeypatch):
    before = checkpoint.read_bytes()

    def interrupted(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        TR.save_checkpoint(checkpoint, model=Linear().state_dict())
    assert checkpoint.read_bytes() == before
    assert sorted(os.listdir(checkpoint.parent)) == [checkpoint.name]


def test_an_old_checkpoint_without_a_checksum_loads_unverified(tmp_path):
    torch.save({"model": Linear().state_dict()}, tmp_path / "old.pt")
    assert set(TR.load_checkpoint(tmp_path / "old.pt")) == {"model"}


def test_fit_resumes_from_a_checksummed_checkpoint(tmp_path):
    path = tmp_path / "fit.pt"
    model = Linear()
    TR.fit(
        model,
        DATA,
        epochs=1,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        checkpoint_path=path,
        progress=False,
    )
    history = TR.fit(
        model,
        DATA,
        epochs=2,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        checkpoint_path=path,
        resume=True,
        progress=False,
    )
    assert len(history.epochs) == 2
