"""A configurable visual-question-answering model for Sort-of-CLEVR.

image encoder -> region grid ``(B, N, C)``; question encoder -> word tokens ``(B, L, d)``
and a question vector ``(B, d)``; a fusion *head*, chosen by name, answers:

=================== =========================================================================
head                how image and question meet
=================== =========================================================================
``concat``          flattened CNN features + question vector -> MLP (the paper's CNN+MLP)
``relation``        Relation Network: an MLP ``g`` on every *pair* of regions with the
                    question, summed, then ``f`` (the paper's CNN+RN); N^2 pairs
``film``            the question predicts a scale and shift for every channel of residual
                    conv blocks (FiLM, Perez et al. 2018)
``cross_attention`` the question attends over the regions (``hops`` times); the object it
                    finds is then compared with every region by a small relation MLP (N
                    pairs, not N^2)
``co_attention``    words attend over regions and regions over words (``layers`` times),
                    then the question reads the co-attended regions
``transformer``     question tokens and region tokens in one Transformer: every layer's
                    self-attention holds the question-to-region cross-attention
=================== =========================================================================

Everything is set by :class:`VQAConfig`, a plain dataclass (``to_dict`` / ``from_dict``),
so papermill parameters and checkpoints carry it. :func:`save_vqa_checkpoint` stores
config, weights, answer vocabulary and metrics; :func:`load_vqa_checkpoint` rebuilds the
model with ``torch.load(..., weights_only=True)``.

``model(batch)`` returns logits; ``model(batch, return_attention=True)`` returns
``(logits, maps)`` with ``maps`` a dict of attention over image regions, each ``(B, N)``.
A batch is either one image per question (``batch["image"]``, from ``SortOfClevr.collate``
or ``SortOfClevr.batches()``) or whole images with all their questions
(``batch["images"]`` + ``batch["image_row"]``, from ``batches(by_image=True)``): then each
image is encoded once and its regions are shared by its questions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from ..attention import TransformerEncoder
from ..encoders import (
    ConvRegionEncoder,
    PretrainedTextEncoder,
    ResNet18Trunk,
    WordTextEncoder,
    masked_mean,
)
from ..fusion import CoAttention, CrossModalAttention, FiLM, MultiHopAttention
from ..train import load_checkpoint, save_checkpoint
from ..validation import (
    check_bool,
    check_choice,
    check_index_range,
    check_input_dtype,
    check_int,
    check_mapping,
    check_positive_int,
    check_probability,
    check_tensor,
    require_keys,
)

__all__ = [
    "HEADS",
    "ATTENTION_HEADS",
    "IMAGE_ENCODERS",
    "QUESTION_ENCODERS",
    "VQAConfig",
    "VQAModel",
    "save_vqa_checkpoint",
    "load_vqa_checkpoint",
]

HEADS = ("concat", "relation", "film", "cross_attention", "co_attention", "transformer")
#: The heads that fuse by attention (and return attention maps over the regions).
ATTENTION_HEADS = ("cross_attention", "co_attention", "transformer")
IMAGE_ENCODERS = ("cnn", "resnet18")
QUESTION_ENCODERS = ("gru", "transformer", "minilm", "structured")


@dataclass
class VQAConfig:
    """Everything that builds a :class:`VQAModel`.

    Args:
        head: the fusion head, one of :data:`HEADS`.
        image_encoder: ``"cnn"`` (4 stride-2 convs: a 5x5 grid for 75x75 images) or
            ``"resnet18"`` (torchvision's trunk to layer3, random weights).
        question_encoder: ``"gru"`` / ``"transformer"`` (word ids, from scratch; need
            ``vocab_size``), ``"minilm"`` (pretrained, ``text_model``; frozen unless
            ``finetune_text``) or ``"structured"`` (the paper's one-hot question vector).
        num_answers: size of the answer vocabulary.
        vocab_size, pad_id: the word tokenizer's size and padding id.
        structured_dim: length of the structured question vector (11, or 18 with ternary).
        cnn_channels, cnn_layers: the CNN's width and depth.
        cnn_norm: ``"batch"`` (as the paper) or ``"group"`` (no batch statistics: the
            same result however a batch is split, e.g. across data-parallel processes).
        dim: width of the question vector, projected regions and attention.
        hidden: width of the MLPs (relation ``g`` and ``f``, classifiers).
        layers: FiLM blocks / co-attention layers / Transformer layers.
        hops: attention hops of ``cross_attention``.
        heads: attention heads.
        dropout: dropout in the classifier (and attention).
        invert_images: feed ``1 - image`` (the white background becomes zero input).
    """

    head: str = "cross_attention"
    image_encoder: str = "cnn"
    question_encoder: str = "gru"
    num_answers: int = 10
    vocab_size: int | None = None
    pad_id: int = 0
    structured_dim: int = 11
    text_model: str = "minilm"
    finetune_text: bool = False
    cnn_channels: int = 24
    cnn_layers: int = 4
    cnn_norm: str = "batch"
    dim: int = 64
    hidden: int = 256
    layers: int = 2
    hops: int = 2
    heads: int = 1
    dropout: float = 0.0
    invert_images: bool = True

    def __post_init__(self) -> None:
        for name, allowed in (("head", HEADS), ("image_encoder", IMAGE_ENCODERS),
                              ("question_encoder", QUESTION_ENCODERS), ("cnn_norm", ("batch", "group"))):
            check_choice(name, getattr(self, name), allowed)
        for name in ("num_answers", "structured_dim", "cnn_channels", "cnn_layers", "dim", "hidden", "layers",
                     "hops", "heads"):
            check_positive_int(name, getattr(self, name))
        for name in ("finetune_text", "invert_images"):
            check_bool(name, getattr(self, name))
        if not isinstance(self.text_model, str):
            raise TypeError(f"text_model={self.text_model!r}: expected 'minilm', a local folder or a model name")
        check_int("pad_id", self.pad_id, minimum=0)
        if self.question_encoder in ("gru", "transformer"):
            if isinstance(self.vocab_size, bool) or not isinstance(self.vocab_size, int) or self.vocab_size < 2:
                raise ValueError(
                    f"question_encoder={self.question_encoder!r} needs vocab_size (the tokenizer's size, >= 2), "
                    f"got {self.vocab_size!r}"
                )
            if not self.pad_id < self.vocab_size:
                raise ValueError(f"pad_id={self.pad_id} is outside the vocabulary of {self.vocab_size} ids")
        elif self.vocab_size is not None:
            check_positive_int("vocab_size", self.vocab_size)
        if self.dim % self.heads:
            raise ValueError(f"dim={self.dim} must be divisible by heads={self.heads}")
        if self.question_encoder == "gru" and self.dim % 2:
            raise ValueError(f"dim must be even for the bidirectional GRU question encoder, got {self.dim}")
        if self.cnn_norm == "group" and self.cnn_channels % 4:
            raise ValueError(f"cnn_channels={self.cnn_channels}: expected a multiple of 4 with cnn_norm='group'")
        check_probability("dropout", self.dropout)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values only: safe in a ``weights_only`` checkpoint and in JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> VQAConfig:
        """The config of a dict of its fields (as :meth:`to_dict` writes it)."""
        check_mapping("values", values, "a dict of VQAConfig fields")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown VQAConfig fields {unknown}; expected some of {sorted(known)}")
        return cls(**values)


def _mlp(in_dim: int, hidden: int, out_dim: int, depth: int = 2, dropout: float = 0.0) -> nn.Sequential:
    """``depth`` linear layers with ReLU between (and dropout before the last)."""
    layers: list[nn.Module] = []
    for i in range(depth - 1):
        layers += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden if depth > 1 else in_dim, out_dim))
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------------
# Question encoder
# ---------------------------------------------------------------------------------


class QuestionEncoder(nn.Module):
    """Question -> ``(tokens (B, L, dim), mask (B, L) True = token, vector (B, dim))``."""

    def __init__(self, config: VQAConfig) -> None:
        super().__init__()
        self.kind, dim = config.question_encoder, config.dim
        if self.kind in ("gru", "transformer"):
            self.encoder = WordTextEncoder(config.vocab_size, dim, kind=self.kind, pad_id=config.pad_id,
                                           heads=config.heads if self.kind == "transformer" else 4)
        elif self.kind == "minilm":
            self.encoder = PretrainedTextEncoder(config.text_model, freeze=not config.finetune_text)
            self.project = nn.Linear(self.encoder.out_dim, dim)
        else:
            self.project = nn.Linear(config.structured_dim, dim)

    def forward(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        if self.kind == "structured":
            require_keys(batch, ("structured",), reader="question_encoder='structured'")
            size = self.project.in_features
            structured = check_tensor("structured", batch["structured"], layout=f"(batch, {size})")
            if structured.dim() != 2 or structured.shape[1] != size:
                raise ValueError(f"expected batch['structured'] of shape (batch, {size}), got {tuple(structured.shape)}")
            token = self.project(structured.float())[:, None]  # the whole question as one token
            mask = torch.ones(token.shape[:2], dtype=torch.bool, device=token.device)
            return token, mask, token[:, 0]
        for key in ("input_ids", "attention_mask"):
            if key not in batch:
                raise KeyError(f"question_encoder={self.kind!r} reads batch[{key!r}]; the batch has {sorted(batch)}")
        mask = batch["attention_mask"].bool()
        tokens, vector = self.encoder(batch["input_ids"], mask)
        if self.kind == "minilm":
            tokens = self.project(tokens)
            vector = masked_mean(tokens, mask)
        return tokens, mask, vector


# ---------------------------------------------------------------------------------
# Fusion heads: (regions (B, N, C), grid, tokens, mask, question) -> (logits, maps)
# ---------------------------------------------------------------------------------


class ConcatHead(nn.Module):
    """CNN+MLP: every region's features flattened, concatenated with the question."""

    def __init__(self, region_dim: int, num_regions: int, config: VQAConfig) -> None:
        super().__init__()
        self.classify = _mlp(num_regions * region_dim + config.dim, config.hidden, config.num_answers, depth=3,
                             dropout=config.dropout)

    def forward(self, regions, grid, tokens, mask, question):
        return self.classify(torch.cat([regions.flatten(1), question], dim=-1)), {}


class RelationHead(nn.Module):
    """Relation Network (Santoro et al. 2017): ``f(sum_ij g(r_i, r_j, q))``.

    ``g``'s first layer is linear in ``[r_i; r_j; q]``, so it is computed as
    ``W_i r_i + W_j r_j + W_q q`` and broadcast over the N x N pairs: the same function
    as concatenating every pair, without building the ``(B, N^2, 2C + d)`` input.
    """

    def __init__(self, region_dim: int, config: VQAConfig) -> None:
        super().__init__()
        h = config.hidden
        self.first_i = nn.Linear(region_dim, h)
        self.first_j = nn.Linear(region_dim, h, bias=False)
        self.first_q = nn.Linear(config.dim, h, bias=False)
        self.g = nn.Sequential(nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h),
                               nn.ReLU())
        self.f = _mlp(h, h, config.num_answers, depth=3, dropout=config.dropout)

    def forward(self, regions, grid, tokens, mask, question):
        pairs = (self.first_i(regions)[:, :, None] + self.first_j(regions)[:, None, :]
                 + self.first_q(question)[:, None, None])  # (B, N, N, h)
        return self.f(self.g(pairs).sum(dim=(1, 2))), {}


class FiLMBlock(nn.Module):
    """FiLM's residual block: 1x1 conv, ReLU, 3x3 conv, BatchNorm (no affine), FiLM, ReLU, + input."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.film = FiLM(cond_dim, channels)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        hidden = torch.relu(self.conv1(x))
        return x + torch.relu(self.film(self.norm(self.conv2(hidden)), condition))


class FiLMHead(nn.Module):
    """Question-conditioned residual conv blocks over the region grid, then max-pool + MLP."""

    def __init__(self, region_dim: int, config: VQAConfig) -> None:
        super().__init__()
        self.stem = nn.Conv2d(region_dim, config.dim, 1)
        self.blocks = nn.ModuleList(FiLMBlock(config.dim, config.dim) for _ in range(config.layers))
        self.pool = nn.Conv2d(config.dim, config.hidden, 1)
        self.classify = _mlp(config.hidden, config.hidden, config.num_answers, depth=2, dropout=config.dropout)

    def forward(self, regions, grid, tokens, mask, question):
        b, n, c = regions.shape
        x = torch.relu(self.stem(regions.transpose(1, 2).reshape(b, c, *grid)))
        for block in self.blocks:
            x = block(x, question)
        return self.classify(torch.relu(self.pool(x)).amax(dim=(2, 3))), {}


class CrossAttentionHead(nn.Module):
    """The question attends over the regions ``hops`` times (stacked attention); the
    first hop's read-out (the object the question names) is then related to every region
    by an MLP and summed: N object-region pairs instead of the relation head's N^2."""

    def __init__(self, region_dim: int, config: VQAConfig) -> None:
        super().__init__()
        d, h = config.dim, config.hidden
        # an MLP per region, so keys can be non-linear in the coordinates (distances)
        self.regions = _mlp(region_dim, d, d, depth=2)
        self.attend = MultiHopAttention(d, d, hops=config.hops, heads=config.heads, dropout=config.dropout)
        self.relate = nn.Sequential(nn.Linear(3 * d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.classify = _mlp(h + 2 * d, h, config.num_answers, depth=2, dropout=config.dropout)

    def forward(self, regions, grid, tokens, mask, question):
        regions = self.regions(regions)
        final = self.attend(question[:, None], regions)[:, 0]
        found = self.attend.hops[0].attended[:, 0]  # what hop 1 read, before the residual
        n = regions.shape[1]
        pairs = torch.cat([regions, found[:, None].expand(-1, n, -1), question[:, None].expand(-1, n, -1)], -1)
        related = self.relate(pairs).sum(1)
        maps = {f"hop{i + 1}": w.mean(1)[:, 0] for i, w in enumerate(self.attend.weights)}
        return self.classify(torch.cat([related, final, question], dim=-1)), maps


class CoAttentionHead(nn.Module):
    """``layers`` of parallel co-attention (words <-> regions), then the pooled question
    reads the co-attended regions."""

    def __init__(self, region_dim: int, config: VQAConfig) -> None:
        super().__init__()
        d = config.dim
        self.regions = _mlp(region_dim, d, d, depth=2)
        self.layers = nn.ModuleList(CoAttention(d, heads=config.heads, dropout=config.dropout)
                                    for _ in range(config.layers))
        self.read = CrossModalAttention(d, d, heads=config.heads, dropout=config.dropout)
        self.classify = _mlp(2 * d, config.hidden, config.num_answers, depth=2, dropout=config.dropout)

    def forward(self, regions, grid, tokens, mask, question):
        regions = self.regions(regions)
        maps = {}
        for i, layer in enumerate(self.layers):
            tokens, regions = layer(tokens, regions, text_padding=~mask)
            word_maps = layer.text_to_image.weights.mean(1)  # (B, L, N): each word over the regions
            maps[f"words{i + 1}"] = masked_mean(word_maps, mask)
        pooled = masked_mean(tokens, mask)
        read = self.read(pooled[:, None], regions)[:, 0]
        maps["read"] = self.read.weights.mean(1)[:, 0]
        return self.classify(torch.cat([read, pooled], dim=-1)), maps


class TransformerHead(nn.Module):
    """One Transformer over ``[CLS; question tokens; region tokens]`` (each kind with its
    own learned type embedding); the answer is read from CLS. Its maps are CLS's attention
    to the region tokens, renormalised over the regions."""

    def __init__(self, region_dim: int, config: VQAConfig) -> None:
        super().__init__()
        d = config.dim
        self.regions = nn.Linear(region_dim, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.types = nn.Parameter(torch.zeros(2, d))  # 0 question, 1 region
        nn.init.normal_(self.types, std=0.02)
        self.encoder = TransformerEncoder(config.layers, d, config.heads, ff_dim=4 * d, dropout=config.dropout,
                                          norm_first=True)
        self.classify = _mlp(d, config.hidden, config.num_answers, depth=2, dropout=config.dropout)
        self.keep_weights = False

    def forward(self, regions, grid, tokens, mask, question):
        b, n, _ = regions.shape
        words, regions = tokens + self.types[0], self.regions(regions) + self.types[1]
        x = torch.cat([self.cls.expand(b, -1, -1), words, regions], dim=1)
        keep = torch.ones(b, 1, dtype=torch.bool, device=x.device)
        padding = ~torch.cat([keep, mask, keep.expand(b, n)], dim=1)
        out = self.encoder(x, key_padding_mask=padding, need_weights=self.keep_weights)
        maps = {}
        if self.keep_weights:
            for i, weights in enumerate(self.encoder.attention_weights):  # (B, h, 1 + L + N, 1 + L + N)
                to_regions = weights.mean(1)[:, 0, -n:]  # CLS -> regions (CLS also attends to words)
                maps[f"layer{i + 1}"] = to_regions / to_regions.sum(-1, keepdim=True).clamp_min(1e-12)
        return self.classify(out[:, 0]), maps


# ---------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------


class VQAModel(nn.Module):
    """Image encoder + question encoder + fusion head (see the module docstring).

    Args:
        config: a :class:`VQAConfig` or a dict of its fields.
        image_size: side of the (square) input images, to size the region grid.
    """

    def __init__(self, config: VQAConfig | Mapping[str, Any], image_size: int = 75) -> None:
        super().__init__()
        if not isinstance(config, (VQAConfig, Mapping)):
            raise TypeError(f"config={config!r}: expected a VQAConfig or a dict of its fields")
        self.config = config if isinstance(config, VQAConfig) else VQAConfig.from_dict(config)
        check_positive_int("image_size", image_size)
        config = self.config
        if config.image_encoder == "cnn":
            self.image_encoder = ConvRegionEncoder(channels=config.cnn_channels, layers=config.cnn_layers,
                                                   norm=config.cnn_norm)
        else:
            self.image_encoder = ResNet18Trunk()
        with torch.no_grad():  # one dummy image tells the grid size
            was_training = self.image_encoder.training
            self.image_encoder.eval()
            num_regions = self.image_encoder(torch.zeros(1, 3, image_size, image_size)).shape[1]
            self.image_encoder.train(was_training)
        self.grid = self.image_encoder.last_grid
        self.image_size = image_size
        self.question_encoder = QuestionEncoder(config)
        region_dim = self.image_encoder.out_dim
        if config.head == "concat":
            self.head = ConcatHead(region_dim, num_regions, config)
        else:
            head = {"relation": RelationHead, "film": FiLMHead, "cross_attention": CrossAttentionHead,
                    "co_attention": CoAttentionHead, "transformer": TransformerHead}[config.head]
            self.head = head(region_dim, config)

    def encode_regions(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Region features ``(B_questions, N, C)``: each image encoded once, then shared by
        its questions when the batch holds ``images`` + ``image_row``."""
        check_mapping("batch", batch)
        if "images" in batch:
            name = "images"
            require_keys(batch, ("image_row",), reader="a VQA batch with 'images'")
            images, row = batch["images"], batch["image_row"]
        elif "image" in batch:
            name = "image"
            images, row = batch["image"], None
        else:
            raise KeyError(f"a VQA batch needs 'image' or 'images' + 'image_row'; it has {sorted(batch)}")
        size = self.image_size
        check_tensor(name, images, dtype="float", layout=f"(batch, 3, {size}, {size}), values in [0, 1]")
        if images.shape[-2:] != (size, size):
            raise ValueError(f"expected {size}x{size} images, got batch[{name!r}] of shape {tuple(images.shape)}")
        check_input_dtype(name, images, next(self.image_encoder.parameters()).dtype)
        if row is not None:
            check_tensor("image_row", row, dtype="int", dims=1, layout="(questions,)")
            check_index_range("image_row", row, len(images), what="positions in batch['images']")
        if self.config.invert_images:
            images = 1 - images
        regions = self.image_encoder(images)
        return regions if row is None else regions[row]

    def forward(self, batch: Mapping[str, Tensor], return_attention: bool = False):
        """Logits ``(B, num_answers)``; with ``return_attention=True`` also a dict of
        attention maps over the image regions, each ``(B, N)`` (empty for heads without
        attention)."""
        regions = self.encode_regions(batch)
        tokens, mask, question = self.question_encoder(batch)
        if len(question) != len(regions):
            source = "image_row" if "images" in batch else "image"
            raise ValueError(
                f"the batch has {len(question)} questions but batch[{source!r}] gives {len(regions)} "
                "(one per question): expected equal lengths"
            )
        if isinstance(self.head, TransformerHead):
            self.head.keep_weights = return_attention
        logits, maps = self.head(regions, self.grid, tokens, mask, question)
        return (logits, maps) if return_attention else logits


# ---------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------


def save_vqa_checkpoint(path: str | os.PathLike, model: VQAModel, answers: Sequence[str],
                        metrics: Mapping[str, Any] | None = None, vocabulary: Sequence[str] | None = None) -> None:
    """Save config + weights + answer vocabulary (+ metrics, + the word vocabulary).

    ``metrics`` values may be numbers, strings, lists or dicts of them (NumPy scalars are
    stored as Python numbers, so the file loads with ``weights_only=True``)."""
    model = getattr(model, "_orig_mod", model)  # a torch.compile'd model saves its original's weights
    if not isinstance(model, VQAModel):
        raise TypeError(f"model={type(model).__name__}: expected a VQAModel (or its torch.compile wrapper)")
    _check_strings("answers", answers)
    if len(answers) != model.config.num_answers:
        raise ValueError(f"got {len(answers)} answers for a model with num_answers={model.config.num_answers}")
    if vocabulary is not None:
        _check_strings("vocabulary", vocabulary)
    if metrics is not None:
        check_mapping("metrics", metrics, "a dict of metric values")
    save_checkpoint(path, config=model.config.to_dict(), image_size=model.image_size,
                    model={k: v.detach().cpu() for k, v in model.state_dict().items()},
                    answers=list(answers), metrics=_plain(dict(metrics or {})),
                    vocabulary=list(vocabulary) if vocabulary is not None else None)


def _check_strings(name: str, values: Any) -> None:
    if isinstance(values, str) or not isinstance(values, Sequence) or not all(isinstance(v, str) for v in values):
        raise TypeError(f"{name}={values!r:.80}: expected a list of strings")


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as Python numbers and lists, recursively (for weights_only)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if type(value).__module__ == "numpy":
        return value.tolist() if hasattr(value, "tolist") else value.item()
    return value


def load_vqa_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                        ) -> tuple[VQAModel, dict[str, Any]]:
    """Rebuild the model from :func:`save_vqa_checkpoint`'s file (``weights_only=True``).

    Returns ``(model, info)`` with ``info`` holding ``config``, ``answers``, ``metrics``
    and ``vocabulary``. The model is in eval mode on ``map_location``.

    Raises ``ValueError("PATH is not a valid VQA checkpoint (why)")`` when the file is not
    a checkpoint (see :func:`mmtutorial.train.load_checkpoint`: corrupted, truncated, ...)
    or does not describe a model: missing entries, a bad config, an answer list that does
    not match ``num_answers``, weights that do not fit the config.
    """
    state = load_checkpoint(path, map_location=map_location)

    def invalid(why: str) -> ValueError:
        return ValueError(f"{path} is not a valid VQA checkpoint ({why})")

    missing = {"config", "model", "answers"} - set(state)
    if missing:
        raise invalid(f"it lacks {sorted(missing)}")
    if not isinstance(state["config"], Mapping) or not isinstance(state["model"], Mapping):
        raise invalid("its config and model must be dicts")
    try:
        config = VQAConfig.from_dict(state["config"])
        model = VQAModel(config, image_size=state.get("image_size", 75))
    except (TypeError, ValueError) as error:
        raise invalid(f"bad config: {error}") from None
    answers = state["answers"]
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise invalid("answers must be a list of strings")
    if len(answers) != config.num_answers:
        raise invalid(f"{len(answers)} answers for a model with num_answers={config.num_answers}")
    try:
        incompatible = model.load_state_dict(state["model"], strict=False)
    except RuntimeError as error:  # size mismatches: one line per tensor, keep the first
        lines = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
        raise invalid(f"its weights do not match its config: {lines[0] if lines else error}") from None
    problems = [f"missing {incompatible.missing_keys[:3]}" if incompatible.missing_keys else "",
                f"unexpected {incompatible.unexpected_keys[:3]}" if incompatible.unexpected_keys else ""]
    if any(problems):
        raise invalid("its weights do not match its config: " + ", ".join(p for p in problems if p))
    info = {k: state.get(k) for k in ("config", "answers", "metrics", "vocabulary")}
    return model.to(map_location).eval(), info
