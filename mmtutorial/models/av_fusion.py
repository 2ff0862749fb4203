"""Audio-visual digit classifiers for AV-Digits: the same two encoders, one fusion each."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ..encoders import DigitImageEncoder, SpectrogramEncoder
from ..fusion import (
    EarlyFusion,
    FiLM,
    GatedFusion,
    HybridFusion,
    LateFusion,
    LowRankBilinear,
    ModalityDropout,
    TensorFusion,
    TokenFusion,
    check_present,
)
from ..validation import (
    check_choice,
    check_int,
    check_mapping,
    check_positive_int,
    check_probability,
    check_tensor,
    require_keys,
)

__all__ = ["AVFusionClassifier", "FUSIONS"]

#: Fusion strategies by name; "image" and "audio" are the unimodal baselines.
FUSIONS = ("image", "audio", "early", "late", "late_learned", "hybrid", "gated", "film", "tensor", "bilinear", "tokens")


class AVFusionClassifier(nn.Module):
    """Digit classifier over an image and a spectrogram, fused by ``fusion`` (see :data:`FUSIONS`).

    Args:
        fusion: the strategy's name.
        dim: size of each encoder's output vector.
        modality_dropout: probability of dropping each modality per sample in training.

    ``forward(batch)`` reads ``batch["image"] (B, 1, 28, 28)``, ``batch["audio"]
    (B, 1, n_mels, T)`` and optionally ``batch["present"] (B, 2)`` (image, audio; True =
    available) and returns logits ``(B, num_classes)``. ``modality_weights`` holds the
    per-sample weights of the gated (and late) fusions after a forward pass.

    A modality marked missing is replaced by zeros (selected, not multiplied) before its
    encoder reads it, so whatever it holds, even NaN, changes neither the logits nor the
    gradients; a unimodal baseline whose modality is missing answers from zeros. The
    unimodal baselines read only their own modality and no modality dropout.
    """

    def __init__(self, fusion: str, dim: int = 64, num_classes: int = 10, modality_dropout: float = 0.0,
                 n_mels: int = 40, image_size: int = 28, tensor_dim: int = 16) -> None:
        super().__init__()
        check_choice("fusion", fusion, FUSIONS)
        check_positive_int("dim", dim)
        check_positive_int("num_classes", num_classes)
        check_probability("modality_dropout", modality_dropout)
        check_int("n_mels", n_mels, minimum=4)
        check_int("image_size", image_size, minimum=4)
        check_positive_int("tensor_dim", tensor_dim)
        self.fusion_name = fusion
        self.image_encoder = DigitImageEncoder(dim, image_size) if fusion != "audio" else None
        self.audio_encoder = SpectrogramEncoder(dim, n_mels) if fusion != "image" else None
        self.modality_dropout = ModalityDropout(modality_dropout, 2)
        dims = [dim, dim]
        if fusion in ("image", "audio"):
            self.fusion, self.head = None, nn.Linear(dim, num_classes)
        elif fusion == "early":
            self.fusion, self.head = EarlyFusion(dims, num_classes, hidden=dim), None
        elif fusion in ("late", "late_learned"):
            self.fusion, self.head = LateFusion(dims, num_classes, learned=fusion == "late_learned"), None
        elif fusion == "hybrid":
            self.fusion, self.head = HybridFusion(dims, num_classes, hidden=dim), None
        elif fusion == "gated":
            self.fusion, self.head = GatedFusion(dims, dim), nn.Linear(dim, num_classes)
        elif fusion == "film":
            # the audio vector modulates the image CNN's 32 feature maps before its last layer
            self.fusion, self.head = FiLM(dim, 32), nn.Linear(dim, num_classes)
        elif fusion == "tensor":
            self.reduce = nn.ModuleList(nn.Linear(dim, tensor_dim) for _ in range(2))
            self.fusion, self.head = TensorFusion([tensor_dim, tensor_dim], dim), nn.Sequential(nn.ReLU(), nn.Linear(dim, num_classes))
        elif fusion == "bilinear":
            self.fusion, self.head = LowRankBilinear(dims, dim), nn.Linear(dim, num_classes)
        else:  # tokens
            self.fusion, self.head = TokenFusion(dims, dim, heads=4, layers=1), nn.Linear(dim, num_classes)
        self.modality_weights: Tensor | None = None

    def _inputs(self, batch: Mapping[str, Tensor], names: tuple[str, ...]) -> tuple[list[Tensor], Tensor | None]:
        """The modalities ``names`` and the ``present`` mask of the batch, checked."""
        check_mapping("batch", batch)
        require_keys(batch, names, reader=f"AVFusionClassifier(fusion={self.fusion_name!r})")
        inputs = [check_tensor(name, batch[name], dtype="float", dims=4) for name in names]
        for name, x in zip(names[1:], inputs[1:], strict=True):
            if len(x) != len(inputs[0]):
                raise ValueError(f"batch[{name!r}] has {len(x)} samples but batch[{names[0]!r}] has {len(inputs[0])}")
        return inputs, batch.get("present")

    @staticmethod
    def _keep(x: Tensor, present: Tensor, m: int) -> Tensor:
        """``x`` with the samples missing modality ``m`` replaced by zeros (by selection)."""
        return torch.where(present[:, m].view(-1, *([1] * (x.dim() - 1))), x, 0)

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        if self.fusion_name in ("image", "audio"):
            m = 0 if self.fusion_name == "image" else 1
            (x,), present = self._inputs(batch, (self.fusion_name,))
            encoder = self.image_encoder if m == 0 else self.audio_encoder
            if present is not None:  # only the given mask: no modality dropout for one modality
                check_present(present, len(x), 2)
                x = self._keep(x, present, m)
            return self.head(encoder(x))
        (image, audio), present = self._inputs(batch, ("image", "audio"))
        present = self.modality_dropout(len(image), image.device, present)
        image, audio = self._keep(image, present, 0), self._keep(audio, present, 1)
        audio_vec = self.audio_encoder(audio)
        if self.fusion_name == "film":
            maps = self.image_encoder.net[:6](image)  # conv/pool stages: (B, 32, 7, 7)
            condition = self._keep(audio_vec, present, 1)  # no audio: no modulation input
            maps = self.fusion(maps, condition)
            image_vec = self._keep(self.image_encoder.net[6:](maps), present, 0)
            return self.head(image_vec)
        features = [self.image_encoder(image), audio_vec]
        if self.fusion_name == "tensor":
            features = [reduce(h) for reduce, h in zip(self.reduce, features, strict=True)]
        fused = self.fusion(features, present)
        self.modality_weights = getattr(self.fusion, "weights", None)
        return fused if self.head is None else self.head(fused)
