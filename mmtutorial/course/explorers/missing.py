"""Notebook 08: drop or corrupt each modality and watch every fusion model's answer.

One AV-Digits test sample (a handwritten digit and a spoken one) is rebuilt from its
clean parts with the corruption the controls set, the way :class:`~mmtutorial.data.AVDigits`
corrupts its samples: Gaussian pixel noise of a given standard deviation and an occluded
square of a given area for the image, white noise at a given signal-to-noise ratio for
the audio. The noise patterns are fixed per sample, so moving a slider changes only the
level. Dropping a modality marks it absent in the ``present`` mask, as notebook 08 does.
Shown: the image and spectrogram the models get, each model's probability for every
digit, and the modality weights of the models that have them (gated and late fusion).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict

import numpy as np
import torch

from ...data import AVDigits
from ...validation import check_bool, check_float, check_int
from .base import Explorer

__all__ = ["MissingModalityExplorer", "explore_missing_modalities"]


class MissingModalityExplorer(Explorer):
    """Present/absent and corruption of each modality; every model's prediction follows."""

    def __init__(
        self,
        models: Mapping[str, torch.nn.Module],
        test_set: AVDigits,
        audio_statistics: tuple[float, float],
        index: int = 0,
        image_noise: float = 0.2,
        occlusion: float = 0.1,
        snr_db: float = 0.0,
    ):
        super().__init__(figsize=(13, 3.8))
        if not isinstance(models, Mapping) or not models:
            raise TypeError(f"models={models!r:.60}: expected a dict of name -> AVFusionClassifier")
        if not isinstance(test_set, AVDigits) or len(test_set) == 0:
            raise TypeError(f"test_set={test_set!r:.60}: expected a non-empty AVDigits split")
        if not (isinstance(audio_statistics, (tuple, list)) and len(audio_statistics) == 2):
            raise ValueError(
                f"audio_statistics={audio_statistics!r}: expected (mean, std), as the training split's "
                "audio_statistics() returns"
            )
        self.models = dict(models)
        self.test_set = test_set
        self.mean, self.std = (float(v) for v in audio_statistics)
        # The same samples (labels, images, recordings, offsets come first from the split's
        # random stream) without corruption: the images keep only the PCA reduction.
        clean = AVDigits(
            test_set.split, **{**asdict(test_set.config), "image_noise": 0.0, "occlusion": 0.0, "snr_db": 0.0}
        )
        if not (np.array_equal(clean.labels, test_set.labels) and np.array_equal(clean.image_ids, test_set.image_ids)):
            raise ValueError("could not rebuild the test set's clean samples (its config changed?)")
        self.clean_images = clean.images
        self.waveforms = test_set.waveforms
        self.device = next(next(iter(self.models.values())).parameters()).device
        self.state = {
            "index": index,
            "image_present": True,
            "audio_present": True,
            "image_noise": image_noise,
            "occlusion": occlusion,
            "snr_db": snr_db,
        }
        self.state = {name: self.validate(name, value) for name, value in self.state.items()}
        self.probabilities: dict[str, torch.Tensor] = {}
        self.weights: dict[str, torch.Tensor] = {}
        self._build()
        self.refresh()

    def validate(self, name, value):
        if name == "index":
            return check_int("index", value, minimum=0, maximum=len(self.test_set) - 1)
        if name in ("image_present", "audio_present"):
            return check_bool(name, value)
        if name == "image_noise":
            return check_float(name, value, minimum=0.0, maximum=5.0)
        if name == "occlusion":
            return check_float(name, value, minimum=0.0, maximum=0.9)
        return check_float(name, value, minimum=-40.0, maximum=60.0)

    # -- the sample --------------------------------------------------------------------

    def _noise(self, index: int):
        generator = torch.Generator().manual_seed(int(self.test_set.config.data_seed) * 100_003 + index)
        return (
            torch.randn(self.clean_images.shape[1:], generator=generator),
            torch.rand(2, generator=generator),
            torch.randn(self.waveforms.shape[1:], generator=generator),
        )

    def inputs(self) -> dict[str, torch.Tensor]:
        """The batch of one sample the models get: ``image``, ``audio`` (standardised
        log-mel), ``present``."""
        s = self.state
        image_noise, corner, audio_noise = self._noise(s["index"])
        image = self.clean_images[s["index"]].clone()
        size = image.shape[-1]
        side = int(round(np.sqrt(s["occlusion"]) * size))
        if side > 0:
            top, left = (corner * (size - side + 1)).long().tolist()
            image[:, top : top + side, left : left + side] = 0.0
        image = (image + s["image_noise"] * image_noise).clamp(0.0, 1.0)
        wave = self.waveforms[s["index"]]
        spoken = wave.nonzero().flatten()
        speech = wave[spoken[0] : spoken[-1] + 1] if len(spoken) else wave
        power = speech.pow(2).mean().clamp_min(1e-10)
        noisy = wave + audio_noise * torch.sqrt(power / 10 ** (s["snr_db"] / 10))
        audio = (self.test_set.log_mel(noisy[None]) - self.mean) / self.std
        present = torch.tensor([[s["image_present"], s["audio_present"]]])
        return {"image": image[None], "audio": audio, "present": present}

    def predict(self) -> None:
        """Every model's probabilities (and modality weights, where it has them) for :meth:`inputs`."""
        batch = {k: v.to(self.device) for k, v in self.inputs().items()}
        self.batch = batch
        self.probabilities, self.weights = {}, {}
        for name, model in self.models.items():
            was_training = model.training
            model.eval()
            with torch.no_grad():
                self.probabilities[name] = torch.softmax(model(batch), dim=-1)[0].cpu()
            model.train(was_training)
            weights = getattr(model, "modality_weights", None)
            if weights is not None:
                self.weights[name] = weights[0].detach().cpu()

    # -- the figure ---------------------------------------------------------------------

    def _build(self) -> None:
        self.predict()
        names = list(self.models)
        weighted = list(self.weights)
        image_ax, audio_ax, prob_ax, gate_ax = self.figure.subplots(1, 4, width_ratios=(1.3, 1.4, 2.4, 1.5))
        size = self.clean_images.shape[-1]
        self.image = image_ax.imshow(np.zeros((size, size)), cmap="gray", vmin=0, vmax=1, animated=True)
        image_ax.set_xticks([])
        image_ax.set_yticks([])
        image_ax.title.set_animated(True)
        audio = self.batch["audio"][0, 0].cpu().numpy()
        self.spectrogram = audio_ax.imshow(
            np.zeros_like(audio), origin="lower", aspect="auto", cmap="magma", vmin=-2.5, vmax=2.5, animated=True
        )
        audio_ax.set_xlabel("time (10 ms frames)")
        audio_ax.set_ylabel("mel band")
        audio_ax.title.set_animated(True)
        self.heatmap = prob_ax.imshow(
            np.zeros((len(names), 10)), cmap="viridis", vmin=0, vmax=1, aspect="auto", animated=True
        )
        prob_ax.set_xticks(range(10))
        prob_ax.set_yticks(range(len(names)), names, fontsize=8)
        prob_ax.set_xlabel("digit")
        (self.picks,) = prob_ax.plot([], [], "o", color="white", markersize=5, animated=True)
        self.truth = prob_ax.axvline(0, color="tab:red", linewidth=2, animated=True)
        prob_ax.set_title("probability of each digit (dot: prediction, red: truth)", fontsize=9)
        self.figure.colorbar(self.heatmap, ax=prob_ax, fraction=0.05)
        rows = [f"{name}: {m}" for name in weighted for m in ("image", "audio")]
        self.gate_bars = gate_ax.barh(
            range(len(rows)), [0.0] * len(rows), color=["tab:blue", "tab:orange"] * len(weighted), animated=True
        )
        gate_ax.set_yticks(range(len(rows)), rows, fontsize=7)
        gate_ax.invert_yaxis()
        gate_ax.set_xlim(0, 1)
        gate_ax.set_xlabel("modality weight")
        gate_ax.set_title("weights over the modalities present", fontsize=9)
        self.image_ax, self.audio_ax = image_ax, audio_ax

    def draw(self) -> None:
        s = self.state
        self.predict()
        image, audio = self.batch["image"][0, 0].cpu().numpy(), self.batch["audio"][0, 0].cpu().numpy()
        self.image.set_data(image if s["image_present"] else np.full_like(image, 0.5))
        self.spectrogram.set_data(audio if s["audio_present"] else np.zeros_like(audio))
        hidden = f"{s['image_noise']:.2f} noise, {s['occlusion']:.0%} hidden"
        self.image_ax.set_title(f"image\n{hidden}" if s["image_present"] else "image\nabsent", fontsize=9)
        self.audio_ax.set_title(
            f"audio\n{s['snr_db']:.0f} dB SNR" if s["audio_present"] else "audio\nabsent", fontsize=9
        )
        table = torch.stack(list(self.probabilities.values())).numpy()
        self.heatmap.set_data(table)
        picks = table.argmax(1)
        self.picks.set_data(picks, np.arange(len(picks)))
        label = int(self.test_set.labels[s["index"]])
        self.truth.set_xdata([label, label])
        values = [w for name in self.weights for w in self.weights[name].tolist()]
        for bar, value in zip(self.gate_bars, values, strict=False):
            bar.set_width(value)
        answers = ", ".join(f"{name} {int(p.argmax())} ({p.max():.2f})" for name, p in self.probabilities.items())
        gates = "; ".join(f"{name} weights image {w[0]:.2f} / audio {w[1]:.2f}" for name, w in self.weights.items())
        self.status = f"sample {s['index']}, digit {label}: {answers}" + (f" | {gates}" if gates else "")

    def make_controls(self, widgets) -> list:
        s, style = self.state, {"description_width": "initial"}
        return [
            self.bind(
                widgets.IntSlider(
                    value=s["index"], min=0, max=len(self.test_set) - 1, description="test sample", style=style
                ),
                "index",
            ),
            self.bind(widgets.Checkbox(value=s["image_present"], description="image present"), "image_present"),
            self.bind(widgets.Checkbox(value=s["audio_present"], description="audio present"), "audio_present"),
            self.bind(
                widgets.FloatSlider(
                    value=s["image_noise"], min=0.0, max=1.5, step=0.05, description="image noise", style=style
                ),
                "image_noise",
            ),
            self.bind(
                widgets.FloatSlider(
                    value=s["occlusion"], min=0.0, max=0.6, step=0.05, description="occluded area", style=style
                ),
                "occlusion",
            ),
            self.bind(
                widgets.FloatSlider(
                    value=s["snr_db"], min=-20.0, max=30.0, step=1.0, description="audio SNR (dB)", style=style
                ),
                "snr_db",
            ),
        ]


def explore_missing_modalities(models, test_set, audio_statistics, **settings):
    """Notebook 08's explorer: pick a test sample, drop the image or the audio, set the image
    noise, the occluded area and the audio's signal-to-noise ratio; see each of ``models``
    (name -> trained ``AVFusionClassifier``) answer, and the gate's weights. ``audio_statistics``
    is the training split's ``(mean, std)`` the models were trained with."""
    return MissingModalityExplorer(models, test_set, audio_statistics, **settings)
