"""Audio-visual digit classifiers for AV-Digits: the same two encoders, one fusion each."""

from __future__ import annotations

from collections.abc import Mapping

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
    """

    def __init__(self, fusion: str, dim: int = 64, num_classes: int = 10, modality_dropout: float = 0.0,
                 n_mels: int = 40, image_size: int = 28, tensor_dim: int = 16) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion={fusion!r}: expected one of {FUSIONS}")
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

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        if self.fusion_name == "image":
            return self.head(self.image_encoder(batch["image"]))
        if self.fusion_name == "audio":
            return self.head(self.audio_encoder(batch["audio"]))
        image, audio = batch["image"], batch["audio"]
        present = self.modality_dropout(len(image), image.device, batch.get("present"))
        audio_vec = self.audio_encoder(audio)
        if self.fusion_name == "film":
            maps = self.image_encoder.net[:6](image)  # conv/pool stages: (B, 32, 7, 7)
            condition = audio_vec * present[:, 1:2].to(audio_vec.dtype)  # no audio: no modulation input
            maps = self.fusion(maps, condition)
            image_vec = self.image_encoder.net[6:](maps) * present[:, 0:1].to(maps.dtype)
            return self.head(image_vec)
        features = [self.image_encoder(image), audio_vec]
        if self.fusion_name == "tensor":
            features = [reduce(h) for reduce, h in zip(self.reduce, features, strict=True)]
        fused = self.fusion(features, present)
        self.modality_weights = getattr(self.fusion, "weights", None)
        return fused if self.head is None else self.head(fused)
