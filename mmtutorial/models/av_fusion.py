"""Audio-visual digit classifiers for AV-Digits: the same two encoders, one fusion each."""

from __future__ import annotations

from collections.abc import Callable, Mapping

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

__all__ = ["AVFusionClassifier", "FUSIONS", "FUSION_REGISTRY"]


#: Fusion strategies by name; "image" and "audio" are the unimodal baselines.
def _tensor_fusion(dim: int, num_classes: int, tensor_dim: int) -> tuple[nn.Module, nn.Module]:
    # each vector reduced to tensor_dim first: the outer product grows as (tensor_dim + 1)^2
    reduce = nn.ModuleList(nn.Linear(dim, tensor_dim) for _ in range(2))
    return (
        _Reduced(reduce, TensorFusion([tensor_dim, tensor_dim], dim)),
        nn.Sequential(nn.ReLU(), nn.Linear(dim, num_classes)),
    )


class _Reduced(nn.Module):
    """A vector fusion applied to each modality's vector after its own linear reduction."""

    def __init__(self, reduce: nn.ModuleList, fusion: nn.Module) -> None:
        super().__init__()
        self.reduce, self.fusion = reduce, fusion

    def forward(self, features, present):
        return self.fusion([r(h) for r, h in zip(self.reduce, features, strict=True)], present)


#: Every fusion strategy by name: ``build(dim, num_classes, tensor_dim, image_channels)`` gives
#: ``(fusion module or None, classifier head or None)``. "image" and "audio" are the
#: unimodal baselines; "film" modulates the image encoder's feature maps with the audio.
FUSION_REGISTRY: dict[str, Callable[[int, int, int, int], tuple[nn.Module | None, nn.Module | None]]] = {
    "image": lambda dim, classes, tensor_dim, channels: (None, nn.Linear(dim, classes)),
    "audio": lambda dim, classes, tensor_dim, channels: (None, nn.Linear(dim, classes)),
    "early": lambda dim, classes, tensor_dim, channels: (EarlyFusion([dim, dim], classes, hidden=dim), None),
    "late": lambda dim, classes, tensor_dim, channels: (LateFusion([dim, dim], classes), None),
    "late_learned": lambda dim, classes, tensor_dim, channels: (LateFusion([dim, dim], classes, learned=True), None),
    "hybrid": lambda dim, classes, tensor_dim, channels: (HybridFusion([dim, dim], classes, hidden=dim), None),
    "gated": lambda dim, classes, tensor_dim, channels: (GatedFusion([dim, dim], dim), nn.Linear(dim, classes)),
    "film": lambda dim, classes, tensor_dim, channels: (FiLM(dim, channels), nn.Linear(dim, classes)),
    "tensor": lambda dim, classes, tensor_dim, channels: _tensor_fusion(dim, classes, tensor_dim),
    "bilinear": lambda dim, classes, tensor_dim, channels: (LowRankBilinear([dim, dim], dim), nn.Linear(dim, classes)),
    "tokens": lambda dim, classes, tensor_dim, channels: (
        TokenFusion([dim, dim], dim, heads=4, layers=1),
        nn.Linear(dim, classes),
    ),
}
#: The strategies' names, from the registry.
FUSIONS: tuple[str, ...] = tuple(FUSION_REGISTRY)


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

    def __init__(
        self,
        fusion: str,
        dim: int = 64,
        num_classes: int = 10,
        modality_dropout: float = 0.0,
        n_mels: int = 40,
        image_size: int = 28,
        tensor_dim: int = 16,
    ) -> None:
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
        channels = self.image_encoder.feature_channels if self.image_encoder is not None else 0
        self.fusion, self.head = FUSION_REGISTRY[fusion](dim, num_classes, tensor_dim, channels)
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
            maps = self.image_encoder.feature_maps(image)  # (B, channels, 7, 7)
            condition = self._keep(audio_vec, present, 1)  # no audio: no modulation input
            maps = self.fusion(maps, condition)
            image_vec = self._keep(self.image_encoder.project(maps), present, 0)
            return self.head(image_vec)
        fused = self.fusion([self.image_encoder(image), audio_vec], present)
        self.modality_weights = getattr(self.fusion, "weights", None)
        return fused if self.head is None else self.head(fused)
