"""AV-Digits: a handwritten digit image paired with a spoken recording of the same digit,
in the spirit of the AV-MNIST benchmark (Vielzeuf et al. 2018; MultiBench).

* Images: scikit-learn's bundled 8x8 handwritten digits (``load_digits``, 1,797 images
  from 43 writers; UCI Optical Recognition of Handwritten Digits), upscaled to 28x28.
* Audio: ``data/spoken_digits/``, 400 recordings (40 synthetic speakers x 10 digits) made
  once with espeak-ng by ``data/make_spoken_digits.py``; 16 kHz mono WAV.

Each split pairs images and recordings of the same digit, drawn from disjoint pools:
images are split by image, recordings by speaker, so nothing seen in training leaks
into validation or test. Corruption makes each modality alone ambiguous, and varies per
sample (recorded with every sample), so a fusion model can learn which modality to trust:

* image: keep only a fraction of the PCA energy (as AV-MNIST does), occlude a random
  square, add Gaussian noise;
* audio: add white noise at a signal-to-noise ratio drawn per sample.
"""

from __future__ import annotations

import csv
import math
import numbers
import operator
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from torch.utils.data import Dataset

from ..validation import check_nonnegative_int

__all__ = ["AVDigitsConfig", "AVDigits", "spoken_digits_dir", "load_spoken_digits", "SAMPLE_RATE"]

SAMPLE_RATE = 16_000
SPLITS = ("train", "val", "test")


def spoken_digits_dir() -> Path:
    """The committed recordings: ``data/spoken_digits/`` next to the package."""
    folder = Path(__file__).resolve().parents[2] / "data" / "spoken_digits"
    if not (folder / "manifest.csv").exists():
        raise FileNotFoundError(
            "data/spoken_digits/manifest.csv not found: AV-Digits reads the recordings committed "
            "in the repository (regenerate them with data/make_spoken_digits.py)"
        )
    return folder


@lru_cache(maxsize=1)
def load_spoken_digits() -> tuple[list[dict], list[torch.Tensor]]:
    """The manifest rows and the waveforms (1-D float tensors at 16 kHz), in manifest order."""
    import wave

    folder = spoken_digits_dir()
    with open(folder / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    waveforms = []
    for row in rows:
        with wave.open(str(folder / row["file"]), "rb") as wav:  # stdlib: no audio backend needed
            if wav.getframerate() != SAMPLE_RATE or wav.getnchannels() != 1 or wav.getsampwidth() != 2:
                raise ValueError(f"{row['file']}: expected 16 kHz mono 16-bit WAV")
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        waveforms.append(torch.from_numpy(pcm.astype(np.float32) / 32768.0))
        row["digit"] = int(row["digit"])
    return rows, waveforms


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _range(name: str, value) -> tuple[float, float]:
    original = value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = (value, value)
    if not (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(_is_number(v) for v in value)
        and value[0] <= value[1]
    ):
        raise ValueError(f"{name}={original!r}: expected a number or a (low, high) pair with low <= high, all finite")
    return float(value[0]), float(value[1])


@dataclass(frozen=True)
class AVDigitsConfig:
    """Sizes, corruption knobs and data seed of AV-Digits.

    Ranges ``(low, high)`` are sampled uniformly per sample; a single number fixes the level.
    The defaults make each modality alone clearly ambiguous (notebook 03 measures it).
    """

    n_train: int = 3000
    n_val: int = 600
    n_test: int = 1000
    image_size: int = 28
    pca_energy: float = 0.6  # fraction of the images' PCA energy kept (1.0 = no reduction)
    image_noise: tuple[float, float] | float = (0.0, 0.8)  # Gaussian noise std (pixels in [0, 1])
    occlusion: tuple[float, float] | float = (0.0, 0.5)  # fraction of the image area hidden
    snr_db: tuple[float, float] | float = (-12.0, 8.0)  # audio signal-to-noise ratio in dB
    n_mels: int = 40
    data_seed: int = 0  # draws the data; a notebook's `seed` (initialisation, shuffling) never changes it

    def __post_init__(self) -> None:
        for name in ("n_train", "n_val", "n_test", "image_size", "n_mels", "data_seed"):
            check_nonnegative_int(name, getattr(self, name))
        if self.image_size < 8:
            raise ValueError(f"image_size={self.image_size}: expected at least 8 (the source images are 8x8)")
        if self.n_mels < 1:
            raise ValueError(f"n_mels={self.n_mels}: expected a positive int")
        if not isinstance(self.pca_energy, numbers.Real) or isinstance(self.pca_energy, bool):
            raise TypeError(f"pca_energy={self.pca_energy!r}: expected a fraction in (0, 1]")
        if not 0.0 < self.pca_energy <= 1.0:
            raise ValueError(f"pca_energy={self.pca_energy}: expected a fraction in (0, 1]")
        noise, occ = _range("image_noise", self.image_noise), _range("occlusion", self.occlusion)
        _range("snr_db", self.snr_db)
        if noise[0] < 0:
            raise ValueError(f"image_noise={self.image_noise!r}: expected non-negative noise levels")
        if occ[0] < 0 or occ[1] >= 1:
            raise ValueError(f"occlusion={self.occlusion!r}: expected fractions in [0, 1)")


def _split_indices(n: int, fractions: tuple[float, float], rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n)
    n_train, n_val = int(round(fractions[0] * n)), int(round(fractions[1] * n))
    return [np.sort(order[:n_train]), np.sort(order[n_train : n_train + n_val]), np.sort(order[n_train + n_val :])]


def _pca_reconstruct(images: np.ndarray, train_images: np.ndarray, energy: float) -> tuple[np.ndarray, int]:
    """Project onto the fewest principal components (fitted on training images) that keep
    ``energy`` of the variance, and reconstruct."""
    if energy >= 1.0:
        return images, images.shape[1]
    mean = train_images.mean(0)
    _, singular, components = np.linalg.svd(train_images - mean, full_matrices=False)
    explained = np.cumsum(singular**2) / np.sum(singular**2)
    k = int(np.searchsorted(explained, energy) + 1)
    basis = components[:k]
    return (images - mean) @ basis.T @ basis + mean, k


class AVDigits(Dataset):
    """One split of AV-Digits as a ``torch.utils.data.Dataset``.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        **config: fields of :class:`AVDigitsConfig`.

    Each item is a dict: ``image`` ``(1, S, S)``, ``audio`` log-mel ``(1, n_mels, 101)``,
    ``label`` (the digit), and the per-sample corruption: ``image_noise`` (std),
    ``occlusion`` (fraction hidden), ``snr_db``; plus ``image_id`` and ``speaker``.
    Features are computed once, deterministically from ``data_seed``.
    """

    def __init__(self, split: str = "train", **config) -> None:
        if split not in SPLITS:
            raise ValueError(f"split={split!r}: expected one of {SPLITS}")
        known = {f.name for f in fields(AVDigitsConfig)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise TypeError(
                f"unknown AVDigits option(s) {unknown}: expected split or fields of AVDigitsConfig {sorted(known)}"
            )
        from sklearn.datasets import load_digits

        self.config = AVDigitsConfig(**config)
        self.split = split
        cfg = self.config
        rng = np.random.default_rng(cfg.data_seed)
        digits = load_digits()
        pixels, labels = digits.data.astype(np.float64) / 16.0, digits.target
        image_splits = _split_indices(len(labels), (0.6, 0.15), rng)
        rows, waveforms = load_spoken_digits()
        speakers = sorted({r["speaker"] for r in rows})
        speaker_splits = _split_indices(len(speakers), (0.7, 0.15), rng)
        split_id = SPLITS.index(split)
        self.speakers = [speakers[i] for i in speaker_splits[split_id]]

        # Each split draws its own stream, so sizes of one split never change another.
        rng = np.random.default_rng([cfg.data_seed, split_id])
        n = (cfg.n_train, cfg.n_val, cfg.n_test)[split_id]
        self.labels = rng.integers(0, 10, size=n)
        pool_images = image_splits[split_id]
        pool_audio = np.array([i for i, r in enumerate(rows) if r["speaker"] in set(self.speakers)])
        # int64 even when empty (a split of 0 samples), so the ids always index
        self.image_ids = np.array(
            [rng.choice(pool_images[labels[pool_images] == d]) for d in self.labels], dtype=np.int64
        )
        audio_digits = np.array([rows[i]["digit"] for i in pool_audio])
        self.audio_ids = np.array([rng.choice(pool_audio[audio_digits == d]) for d in self.labels], dtype=np.int64)
        self.speaker = [rows[i]["speaker"] for i in self.audio_ids]

        self.image_noise = rng.uniform(*_range("image_noise", cfg.image_noise), size=n)
        self.occlusion = rng.uniform(*_range("occlusion", cfg.occlusion), size=n)
        self.snr_db = rng.uniform(*_range("snr_db", cfg.snr_db), size=n)
        reduced, self.pca_components = _pca_reconstruct(pixels, pixels[image_splits[0]], cfg.pca_energy)
        self.clean_images = self._upscale(pixels[self.image_ids])
        self.images = self._corrupt_images(self._upscale(reduced[self.image_ids]), rng)
        self.waveforms, offsets = self._place_words(waveforms, rng)
        self.noisy_waveforms = self._add_noise(
            self.waveforms, offsets, [len(waveforms[i]) for i in self.audio_ids], rng
        )
        self.audio = self.log_mel(self.noisy_waveforms)

    # -- features ---------------------------------------------------------------------

    def _upscale(self, flat: np.ndarray) -> torch.Tensor:
        images = torch.from_numpy(flat.astype(np.float32)).view(len(flat), 1, 8, 8)
        size = self.config.image_size
        return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)

    def _corrupt_images(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        n, size = images.shape[0], self.config.image_size
        images = images.clone()
        for i in range(n):
            side = int(round(np.sqrt(self.occlusion[i]) * size))  # a square covering that area
            if side > 0:
                top, left = rng.integers(0, size - side + 1, size=2)
                images[i, :, top : top + side, left : left + side] = 0.0
        noise = torch.from_numpy(rng.standard_normal(images.shape).astype(np.float32))
        images = images + noise * torch.from_numpy(self.image_noise.astype(np.float32)).view(-1, 1, 1, 1)
        return images.clamp(0.0, 1.0)

    def _place_words(self, waveforms, rng) -> tuple[torch.Tensor, np.ndarray]:
        """Put each recording at a random offset in a 1-second window."""
        out = torch.zeros(len(self.audio_ids), SAMPLE_RATE)
        offsets = np.zeros(len(self.audio_ids), dtype=np.int64)
        for i, a in enumerate(self.audio_ids):
            wav = waveforms[a][:SAMPLE_RATE]
            offsets[i] = rng.integers(0, SAMPLE_RATE - len(wav) + 1)
            out[i, offsets[i] : offsets[i] + len(wav)] = wav
        return out, offsets

    def _add_noise(self, clean: torch.Tensor, offsets, lengths, rng) -> torch.Tensor:
        """White noise at the sample's SNR, measured against the speech's own power."""
        noisy = clean.clone()
        noise = torch.from_numpy(rng.standard_normal(clean.shape).astype(np.float32))
        for i in range(len(clean)):
            speech = clean[i, offsets[i] : offsets[i] + lengths[i]]
            power = speech.pow(2).mean().clamp_min(1e-10)
            noisy[i] += noise[i] * torch.sqrt(power / 10 ** (self.snr_db[i] / 10))
        return noisy

    def log_mel(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Log-mel spectrograms ``(N, 1, n_mels, 101)`` of 1-second 16 kHz waveforms ``(N, 16000)``."""
        mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE, n_fft=400, hop_length=160, n_mels=self.config.n_mels
        )  # 25 ms windows, 10 ms hop -> 101 frames per second
        if len(waveforms) == 0:  # an empty split: (0, 1, n_mels, 101)
            frames = SAMPLE_RATE // 160 + 1
            return torch.zeros(0, 1, self.config.n_mels, frames)
        with torch.no_grad():
            spectra = torch.cat([mel(chunk) for chunk in waveforms.split(512)])
        return torch.log(spectra + 1e-6).unsqueeze(1)

    # -- Dataset ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        try:
            if isinstance(index, bool):
                raise TypeError
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"index={index!r}: expected an int") from None
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a split of {len(self)} samples")
        return {
            "image": self.images[index],
            "audio": self.audio[index],
            "label": int(self.labels[index]),
            "image_noise": float(self.image_noise[index]),
            "occlusion": float(self.occlusion[index]),
            "snr_db": float(self.snr_db[index]),
            "image_id": int(self.image_ids[index]),
            "speaker": self.speaker[index],
        }

    def audio_statistics(self) -> tuple[float, float]:
        """Mean and standard deviation of this split's log-mel values (use the training
        split's to normalise every split)."""
        return self.audio.mean().item(), self.audio.std().item()

    def tensors(self, audio_statistics: tuple[float, float] | None = None) -> dict[str, torch.Tensor]:
        """The whole split as tensors (features, labels and corruption levels); with
        ``audio_statistics=(mean, std)`` the spectrograms are standardised."""
        audio = self.audio
        if audio_statistics is not None:
            if not (
                isinstance(audio_statistics, (tuple, list))
                and len(audio_statistics) == 2
                and all(_is_number(v) for v in audio_statistics)
                and audio_statistics[1] > 0
            ):
                raise ValueError(
                    f"audio_statistics={audio_statistics!r}: expected (mean, std), finite, with std > 0, "
                    "as the training split's audio_statistics() returns"
                )
            mean, std = audio_statistics
            audio = (audio - mean) / std
        return {
            "image": self.images,
            "audio": audio,
            "label": torch.from_numpy(self.labels.astype(np.int64)),
            "image_noise": torch.from_numpy(self.image_noise.astype(np.float32)),
            "occlusion": torch.from_numpy(self.occlusion.astype(np.float32)),
            "snr_db": torch.from_numpy(self.snr_db.astype(np.float32)),
        }

    def __repr__(self) -> str:
        return (
            f"AVDigits(split={self.split!r}, samples={len(self)}, images={len(set(self.image_ids.tolist()))}, "
            f"speakers={len(self.speakers)}, pca_components={self.pca_components})"
        )
