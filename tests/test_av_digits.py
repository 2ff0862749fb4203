"""AV-Digits: pairing, leakage-free splits, corruption levels, determinism, bad input."""

import pytest
import torch
from sklearn.datasets import load_digits

from mmtutorial.data.av_digits import SAMPLE_RATE, AVDigits, load_spoken_digits

SMALL = {"n_train": 300, "n_val": 60, "n_test": 100}


@pytest.fixture(scope="module")
def splits():
    return {s: AVDigits(s, **SMALL) for s in ("train", "val", "test")}


def test_recordings_manifest():
    rows, waveforms = load_spoken_digits()
    assert len(rows) == len(waveforms) == 400
    per_digit = {d: {r["speaker"] for r in rows if r["digit"] == d} for d in range(10)}
    assert all(len(s) >= 30 for s in per_digit.values()), "at least 30 speakers per digit"
    assert all(0.1 * SAMPLE_RATE < len(w) <= SAMPLE_RATE for w in waveforms)
    assert all(w.abs().max() <= 1.0 for w in waveforms)


def test_image_and_audio_show_the_same_digit(splits):
    rows, _ = load_spoken_digits()
    targets = load_digits().target
    for ds in splits.values():
        assert (targets[ds.image_ids] == ds.labels).all()
        assert all(rows[a]["digit"] == label for a, label in zip(ds.audio_ids, ds.labels, strict=True))


def test_splits_share_no_image_and_no_speaker(splits):
    images = {s: set(ds.image_ids.tolist()) for s, ds in splits.items()}
    speakers = {s: set(ds.speakers) for s, ds in splits.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not images[a] & images[b]
        assert not speakers[a] & speakers[b]
    assert {len(v) for v in speakers.values()} == {28, 6}
    assert set(splits["test"].speaker) <= speakers["test"]


def test_shapes_and_items(splits):
    ds = splits["val"]
    item = ds[3]
    assert item["image"].shape == (1, 28, 28) and item["audio"].shape == (1, 40, 101)
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert torch.isfinite(ds.audio).all()
    assert len(ds) == 60 and set(ds.tensors()) >= {"image", "audio", "label", "snr_db"}
    with pytest.raises(IndexError, match="out of range"):
        ds[60]


def test_deterministic_and_split_sizes_independent():
    a, b = AVDigits("test", **SMALL), AVDigits("test", **{**SMALL, "n_train": 50})
    assert torch.equal(a.images, b.images) and torch.equal(a.audio, b.audio)
    c = AVDigits("test", **{**SMALL, "data_seed": 1})
    assert not torch.equal(a.images, c.images)


def test_snr_is_what_was_asked():
    ds = AVDigits("val", n_val=20, snr_db=(-5.0, -5.0), image_noise=0.0, occlusion=0.0)
    noise = ds.noisy_waveforms - ds.waveforms
    for i in range(20):
        speech = ds.waveforms[i][ds.waveforms[i] != 0]
        measured = 10 * torch.log10(speech.pow(2).mean() / noise[i].pow(2).mean())
        assert measured.item() == pytest.approx(-5.0, abs=0.7)


def test_corruption_knobs_change_the_images():
    clean = AVDigits("val", n_val=50, pca_energy=1.0, image_noise=0.0, occlusion=0.0)
    assert torch.allclose(clean.images, clean.clean_images.clamp(0, 1), atol=1e-6)
    occluded = AVDigits("val", n_val=50, pca_energy=1.0, image_noise=0.0, occlusion=0.25)
    zeros = (occluded.images == 0).flatten(1).float().mean(1)
    assert (zeros >= 0.2).all(), "a quarter of each image is hidden"
    reduced = AVDigits("val", n_val=50, pca_energy=0.5, image_noise=0.0, occlusion=0.0)
    assert reduced.pca_components < AVDigits("val", n_val=50, pca_energy=0.9).pca_components


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pca_energy": 0.0}, r"pca_energy=0.0: expected a fraction in \(0, 1\]"),
        ({"snr_db": (5, -5)}, r"snr_db=\(5, -5\): expected a number or a \(low, high\) pair"),
        ({"occlusion": 1.0}, r"occlusion=1.0: expected fractions in \[0, 1\)"),
        ({"image_noise": -0.1}, "non-negative noise"),
        ({"n_train": -5}, r"n_train=-5: expected a non-negative int"),
        ({"image_size": 4}, "at least 8"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AVDigits("train", **kwargs)


def test_bad_split():
    with pytest.raises(ValueError, match=r"split='dev'"):
        AVDigits("dev")
