"""Bad and edge inputs for the data sets (Sort-of-CLEVR, AV-Digits, tokenizers): config
values, options, indices, empty splits, and a disk cache that cannot be written."""

from __future__ import annotations

import math
import os
import subprocess
import warnings

import numpy as np
import pytest
import torch
from test_bad_input_common import raises_clearly

from mmtutorial.data import av_digits as AV
from mmtutorial.data import sort_of_clevr as S
from mmtutorial.data import text as T

TINY = dict(n_train=4, n_val=2, n_test=2, tokenizer="words", use_cache=False)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMTUTORIAL_CACHE", str(tmp_path / "cache"))
    S.load_sort_of_clevr.cache_clear()
    yield
    S.load_sort_of_clevr.cache_clear()


def tiny(split="train", **overrides) -> S.SortOfClevr:
    return S.SortOfClevr(split, **(TINY | overrides))


def small_av(**overrides) -> AV.AVDigits:
    return AV.AVDigits("train", **({"n_train": 6} | overrides))


SC = S.SortOfClevrConfig
BAD = [
    ("SortOfClevrConfig n_train=-1", lambda: SC(n_train=-1), ValueError, "n_train"),
    ("SortOfClevrConfig n_train=True", lambda: SC(n_train=True), TypeError, "n_train=True"),
    ("SortOfClevrConfig n_train=1.5", lambda: SC(n_train=1.5), TypeError, "n_train=1.5"),
    ("SortOfClevrConfig image_size=10", lambda: SC(image_size=10), ValueError, "image_size=10"),
    ("SortOfClevrConfig num_objects=7", lambda: SC(num_objects=7), ValueError, "num_objects=7"),
    ("SortOfClevrConfig data_seed=-1", lambda: SC(data_seed=-1), ValueError, "data_seed=-1"),
    ("SortOfClevrConfig data_seed=True", lambda: SC(data_seed=True), TypeError, "data_seed=True"),
    ("SortOfClevrConfig ternary='yes'", lambda: SC(ternary="yes"), TypeError, "ternary='yes'"),
    (
        "SortOfClevrConfig questions_per_type=0",
        lambda: SC(questions_per_type=0),
        ValueError,
        "questions_per_type",
    ),
    ("SortOfClevrConfig object_size=0", lambda: SC(object_size=0), ValueError, "object_size"),
    (
        "SortOfClevrConfig no images at all",
        lambda: SC(n_train=0, n_val=0, n_test=0),
        ValueError,
        "at least one",
    ),
    ("SortOfClevr split='dev'", lambda: tiny("dev"), ValueError, "split='dev'"),
    ("SortOfClevr tokenizer=3", lambda: tiny(tokenizer=3), TypeError, "tokenizer=3"),
    (
        "SortOfClevr missing tokenizer",
        lambda: tiny(tokenizer="/no/such/model"),
        ValueError,
        "'/no/such/model'",
    ),
    ("SortOfClevr use_cache='no'", lambda: tiny(use_cache="no"), TypeError, "use_cache='no'"),
    ("SortOfClevr unknown option", lambda: tiny(colour=1), TypeError, "['colour']"),
    ("SortOfClevr index out of range", lambda: tiny()[10**9], IndexError, "out of range"),
    ("SortOfClevr index 'a'", lambda: tiny()["a"], TypeError, "index='a'"),
    ("SortOfClevr index 1.5", lambda: tiny()[1.5], TypeError, "index=1.5"),
    ("SortOfClevr index True", lambda: tiny()[True], TypeError, "index=True"),
    ("SortOfClevr collate([])", lambda: tiny().collate([]), ValueError, "batch=[]"),
    ("SortOfClevr batches(0)", lambda: tiny().batches(0), ValueError, "batch_size=0"),
    ("SortOfClevr batches(True)", lambda: tiny().batches(True), TypeError, "batch_size=True"),
    (
        "SortOfClevr batches(0, by_image=True)",
        lambda: tiny().batches(0, by_image=True),
        ValueError,
        "images_per_batch=0",
    ),
    (
        "SortOfClevr question_types=(5,)",
        lambda: tiny().batches(4, question_types=(5,)),
        ValueError,
        "question_types=",
    ),
    (
        "SortOfClevr question_types=5",
        lambda: tiny().batches(4, question_types=5),
        TypeError,
        "question_types=5",
    ),
    (
        "SortOfClevr device='gpu'",
        lambda: tiny().batches(4, device="gpu"),
        ValueError,
        "device='gpu'",
    ),
    ("SortOfClevr text(10**9)", lambda: tiny().text(10**9), IndexError, "out of range"),
    ("SortOfClevr scene(10**9)", lambda: tiny().scene(10**9), IndexError, "out of range"),
    ("question_text qtype=5", lambda: S.question_text(5, 0, 0), ValueError, "qtype=5"),
    ("question_text color_a=9", lambda: S.question_text(0, 0, 9), ValueError, "color_a=9"),
    ("question_text color_a=-1", lambda: S.question_text(0, 0, -1), ValueError, "color_a=-1"),
    (
        "question_text template=9",
        lambda: S.question_text(0, 0, 0, template=9),
        ValueError,
        "template=9",
    ),
    (
        "question_text ternary without color_b",
        lambda: S.question_text(2, 0, 0),
        ValueError,
        "color_b=-1",
    ),
    (
        "object_region_mask grid=0",
        lambda: S.object_region_mask(torch.tensor([[10, 10]]), grid=0),
        ValueError,
        "grid=0",
    ),
    (
        "object_region_mask image_size=0",
        lambda: S.object_region_mask(torch.tensor([[10, 10]]), image_size=0),
        ValueError,
        "image_size=0",
    ),
    (
        "object_region_mask centers=list",
        lambda: S.object_region_mask([[10, 10]]),
        TypeError,
        "centers=",
    ),
    (
        "object_region_mask centers shape",
        lambda: S.object_region_mask(torch.tensor([1, 2])),
        ValueError,
        "(batch, 2)",
    ),
    (
        "pad_token_ids 2-D sequence",
        lambda: S.pad_token_ids([torch.ones(2, 2, dtype=torch.long)], 0),
        ValueError,
        "sequences[0]=",
    ),
    (
        "pad_token_ids float sequence",
        lambda: S.pad_token_ids([torch.ones(2)], 0),
        TypeError,
        "sequences[0]=",
    ),
    ("load_sort_of_clevr config='x'", lambda: S.load_sort_of_clevr("x"), TypeError, "config='x'"),
    (
        "load_sort_of_clevr unhashable config",
        lambda: S.load_sort_of_clevr([1]),
        TypeError,
        "config=[1]",
    ),
    (
        "generate_sort_of_clevr config=None",
        lambda: S.generate_sort_of_clevr(None),
        TypeError,
        "config=None",
    ),
    (
        "ImageBatches without image_index",
        lambda: S.ImageBatches({"images": torch.zeros(2, 3, 8, 8), "answer": torch.zeros(3)}, 2),
        KeyError,
        "batch['image_index'] is missing",
    ),
    (
        "QuestionBatches without images",
        lambda: S.QuestionBatches({"image_index": torch.zeros(3, dtype=torch.long)}, 2),
        KeyError,
        "batch['images'] is missing",
    ),
    # AV-Digits
    ("AVDigitsConfig n_train=-1", lambda: AV.AVDigitsConfig(n_train=-1), ValueError, "n_train=-1"),
    (
        "AVDigitsConfig n_train=True",
        lambda: AV.AVDigitsConfig(n_train=True),
        TypeError,
        "n_train=True",
    ),
    (
        "AVDigitsConfig pca_energy=0",
        lambda: AV.AVDigitsConfig(pca_energy=0.0),
        ValueError,
        "pca_energy=0.0",
    ),
    (
        "AVDigitsConfig pca_energy='0.5'",
        lambda: AV.AVDigitsConfig(pca_energy="0.5"),
        TypeError,
        "pca_energy='0.5'",
    ),
    (
        "AVDigitsConfig pca_energy=nan",
        lambda: AV.AVDigitsConfig(pca_energy=math.nan),
        ValueError,
        "pca_energy=nan",
    ),
    (
        "AVDigitsConfig image_noise=(1, 0)",
        lambda: AV.AVDigitsConfig(image_noise=(1.0, 0.0)),
        ValueError,
        "image_noise=",
    ),
    (
        "AVDigitsConfig image_noise=(nan, 1)",
        lambda: AV.AVDigitsConfig(image_noise=(math.nan, 1.0)),
        ValueError,
        "image_noise=",
    ),
    (
        "AVDigitsConfig image_noise=True",
        lambda: AV.AVDigitsConfig(image_noise=True),
        ValueError,
        "image_noise=True",
    ),
    (
        "AVDigitsConfig snr_db=(-inf, 0)",
        lambda: AV.AVDigitsConfig(snr_db=(-math.inf, 0.0)),
        ValueError,
        "snr_db=",
    ),
    ("AVDigitsConfig snr_db='5'", lambda: AV.AVDigitsConfig(snr_db="5"), ValueError, "snr_db='5'"),
    (
        "AVDigitsConfig occlusion=1",
        lambda: AV.AVDigitsConfig(occlusion=1.0),
        ValueError,
        "occlusion=1.0",
    ),
    ("AVDigitsConfig n_mels=0", lambda: AV.AVDigitsConfig(n_mels=0), ValueError, "n_mels=0"),
    (
        "AVDigitsConfig image_size=7",
        lambda: AV.AVDigitsConfig(image_size=7),
        ValueError,
        "image_size=7",
    ),
    ("AVDigits split='dev'", lambda: AV.AVDigits("dev"), ValueError, "split='dev'"),
    ("AVDigits unknown option", lambda: small_av(colour=1), TypeError, "['colour']"),
    ("AVDigits index out of range", lambda: small_av()[100], IndexError, "out of range"),
    ("AVDigits index 'a'", lambda: small_av()["a"], TypeError, "index='a'"),
    (
        "AVDigits audio_statistics=(0, 0)",
        lambda: small_av().tensors(audio_statistics=(0.0, 0.0)),
        ValueError,
        "audio_statistics=(0.0, 0.0)",
    ),
    (
        "AVDigits audio_statistics=(0,)",
        lambda: small_av().tensors(audio_statistics=(0.0,)),
        ValueError,
        "audio_statistics=",
    ),
    # tokenizers
    (
        "WordTokenizer of a single string",
        lambda: T.WordTokenizer("what is it"),
        TypeError,
        "corpus=",
    ),
    ("WordTokenizer(None)", lambda: T.WordTokenizer(None), TypeError, "corpus=None"),
    ("WordTokenizer corpus of ints", lambda: T.WordTokenizer(["a", 1]), TypeError, "corpus[1]=1"),
    (
        "WordTokenizer called on a string",
        lambda: T.WordTokenizer(["what is it"])("what"),
        TypeError,
        "single string",
    ),
    (
        "WordTokenizer called on ints",
        lambda: T.WordTokenizer(["what is it"])([1, 2]),
        TypeError,
        "texts[0]=1",
    ),
    (
        "load_tokenizer('words') without corpus",
        lambda: T.load_tokenizer("words"),
        ValueError,
        "corpus",
    ),
    ("load_tokenizer(3)", lambda: T.load_tokenizer(3), TypeError, "name=3"),
    (
        "load_tokenizer missing path",
        lambda: T.load_tokenizer("/no/such/tok"),
        ValueError,
        "'/no/such/tok'",
    ),
]


@pytest.mark.parametrize(("make", "error", "fragment"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_input_raises_a_clear_error(make, error, fragment):
    raises_clearly(error, make, fragment)


# --- empty splits work ----------------------------------------------------------------


def test_an_empty_sort_of_clevr_split_gives_no_batches():
    """Used to crash ('max(): Expected reduction dim ...')."""
    empty = S.SortOfClevr("train", n_train=0, n_val=2, n_test=0, tokenizer="words", use_cache=False)
    assert len(empty) == 0
    assert list(empty.batches(4)) == [] and len(empty.batches(4)) == 0
    assert list(empty.batches(4, by_image=True)) == [] and len(empty.batches(4, by_image=True)) == 0
    tensors = empty.as_tensors()
    assert tensors["answer"].shape == (0,) and tensors["input_ids"].shape[0] == 0
    ids, mask = S.pad_token_ids([], 0)
    assert ids.shape == (0, 0) and mask.shape == (0, 0) and mask.dtype == torch.bool


def test_an_empty_av_digits_split():
    empty = AV.AVDigits("train", n_train=0)
    assert len(empty) == 0
    tensors = empty.tensors()
    assert tensors["image"].shape == (0, 1, 28, 28) and tensors["audio"].shape == (0, 1, 40, 101)


def test_indices_work_as_python_ints_numpy_ints_and_from_the_end():
    import numpy as np

    ds = tiny()
    assert ds[np.int64(1)]["answer"] == ds[1]["answer"] == ds[1 - len(ds)]["answer"]
    assert ds.text(-1) == ds.text(len(ds) - 1)
    assert S.object_region_mask(torch.zeros(0, 2, dtype=torch.long)).shape == (0, 25)
    assert S.question_text(2, 0, 0, 1).endswith("green object?")


# --- a cache that cannot be written -----------------------------------------------------


def load_with_cache(monkeypatch, folder) -> tuple[S.SortOfClevr, list[str]]:
    monkeypatch.setenv("MMTUTORIAL_CACHE", str(folder))
    S.load_sort_of_clevr.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = S.SortOfClevr("train", n_train=3, n_val=1, n_test=1, data_seed=5, tokenizer="words")
    return data, [str(w.message) for w in caught]


def key() -> str:
    return S.SortOfClevrConfig(n_train=3, n_val=1, n_test=1, data_seed=5).key()


@pytest.mark.parametrize("kind", ["a file", "a directory where the .npz goes", "read-only (under /proc)"])
def test_an_unwritable_cache_falls_back_to_memory_with_one_warning(tmp_path, monkeypatch, kind):
    """Used to crash the data set (FileExistsError, IsADirectoryError, ...)."""
    if kind == "a file":
        folder = tmp_path / "cache_file"
        folder.write_text("not a folder")
    elif kind == "a directory where the .npz goes":
        folder = tmp_path / "cache"
        (folder / f"sort_of_clevr-{key()}.npz").mkdir(parents=True)
    else:
        if not os.path.isdir("/proc/self"):
            pytest.skip("no /proc on this system")
        folder = "/proc/mmtutorial-cache"
    data, warned = load_with_cache(monkeypatch, folder)
    assert len(data) == 60 and data.generation_seconds is not None
    assert len(warned) == 1 and "cannot write the Sort-of-CLEVR cache" in warned[0], warned
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_temporary_files_of_killed_writes_are_removed(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    folder.mkdir()
    dead = subprocess.Popen(["true"])  # a pid that is certainly gone
    dead.wait()
    stale = folder / f".sort_of_clevr-{key()}.npz.{dead.pid}.tmp"
    stale.write_bytes(b"half a file")
    live = folder / f".sort_of_clevr-{key()}.npz.{os.getppid()}.tmp"  # a writer still running: left alone
    live.write_bytes(b"being written")
    data, warned = load_with_cache(monkeypatch, folder)
    assert not warned and len(data) == 60
    assert not stale.exists() and live.exists()
    assert (folder / f"sort_of_clevr-{key()}.npz").is_file()


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    folder = tmp_path / "cache"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full_disk)
    data, warned = load_with_cache(monkeypatch, folder)
    assert len(data) == 60 and len(warned) == 1 and "No space left on device" in warned[0]
    assert os.listdir(folder) == []
