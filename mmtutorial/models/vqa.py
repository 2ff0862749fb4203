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

from ..encoders import (
    ConvRegionEncoder,
    PretrainedTextEncoder,
    ResNet18Trunk,
    WordTextEncoder,
    masked_mean,
)
from ..training import load_checkpoint, save_checkpoint, unwrap_model
from ..validation import (
    check_bool,
    check_choice,
    check_float,
    check_index_range,
    check_input_dtype,
    check_int,
    check_mapping,
    check_positive_int,
    check_probability,
    check_tensor,
    require_keys,
)
from .vqa_heads import (
    ATTENTION_HEADS,
    AVOID_MODES,
    HEAD_REGISTRY,
    HEADS,
    POSITION_MODES,
    SIGN_MODES,
    CrossAttentionHead,
    check_exclude,
)

__all__ = [
    "HEADS",
    "ATTENTION_HEADS",
    "IMAGE_ENCODERS",
    "QUESTION_ENCODERS",
    "RELATE_HOPS",
    "VQAConfig",
    "VQAModel",
    "save_vqa_checkpoint",
    "load_vqa_checkpoint",
]

IMAGE_ENCODERS = ("cnn", "resnet18")
#: The batch key of the questions whose loss may train cross_attention's first hop (``(B,)``
#: bool; :func:`~mmtutorial.models.vqa_training.train_vqa`'s ``relational_first_hop_delay``).
FIRST_HOP_ROWS = "first_hop_rows"
QUESTION_ENCODERS = ("gru", "transformer", "minilm", "structured")
#: Whose read-out ``cross_attention`` relates to every region (``VQAConfig.relate_hop``).
RELATE_HOPS = ("first", "last", "all")


#: Fields added after checkpoints were first saved, with the value that reproduces how a
#: model behaved before each existed (today's defaults differ: the measurements that
#: changed them are in ``benchmarks/results/ablations``).
FIELDS_ADDED_LATER: dict[str, Any] = {"relate_hop": "first", "distance_bias": False, "distance_bias_scale": 1.0}


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
        cnn_merge: stack each ``cnn_merge x cnn_merge`` block of the CNN's last map into one
            region (:class:`~mmtutorial.encoders.ConvRegionEncoder`'s ``merge``); 1 merges
            nothing. ``cnn_layers=3, cnn_merge=2`` is the 5x5 grid of 4 layers with each
            region's four sub-cells kept apart.
        cnn_norm: ``"batch"`` (as the paper) or ``"group"`` (no batch statistics: the
            same result however a batch is split, e.g. across data-parallel processes).
        dim: width of the question vector, projected regions and attention.
        hidden: width of the MLPs (relation ``g`` and ``f``, classifiers).
        layers: FiLM blocks / co-attention layers / Transformer layers.
        hops: attention hops of ``cross_attention``.
        relate_hop: which hop's read-out ``cross_attention`` compares with every region:
            ``"last"`` (the object the stacked attention ends on), ``"first"``, or ``"all"``
            (every hop's read-out, side by side; with the distance bias it kept closest /
            furthest at the no-bias level on every seed, ``benchmarks/results/ablations``).
        distance_bias: ``cross_attention``'s hops after the first add a question-scaled
            bias from each region's distance to what the hop before found
            (:class:`~mmtutorial.models.vqa_heads.DistanceBiasedHop`; with ``hops=1``
            there is no later hop to bias). On by default: it is what lifts closest /
            furthest from ~0.67 to 0.84 / 0.93 (``benchmarks/results/ablations``).
        distance_bias_scale: a fixed factor on the two numbers (``w``, ``u``) the question
            predicts for the distance bias. Adam moves each weight by about the learning
            rate per step, so a larger factor lets the bias become decisive in fewer steps.
            1 by default; at 4 with 24 relational epochs all four seeds on a 2-core CPU
            reached >= 0.9165 relational (``benchmarks/results/ablations/distance-bias-scale-4``).
        distance_bias_avoid: what the biased hop's ``u`` multiplies: ``"weights"`` (the
            previous hop's weights) or ``"peak"`` (those weights over their maximum: the
            object found counts fully however many regions it covers, as on a finer grid)
            or ``"radius"`` (a kernel on the distance from the found position: every region
            on the object found, whatever weight the previous hop gave it).
        distance_bias_heads: heads of the biased hop, each with its own ``w`` and ``u``,
            their ``w`` starting spread from near to far (1: one head, as before).
        distance_positions: where the biased hop measures distances from: ``"centres"``
            (the region grid's, as before) or ``"learned"`` (each centre moved by an offset
            the region predicts from its features, up to 0.5 either way).
        distance_bias_signs: what sets the sign of each biased head's ``w``: ``"learned"``
            (the question, as before) or ``"fixed"`` (the head: half the heads look near,
            half far; needs an even ``distance_bias_heads``).
        distance_bias_exclude: ``None`` (``u`` is free, as before) or a number ``e >= 0``:
            ``u <= -e``, so the biased hop never turns back to the object the hop before
            found (:class:`~mmtutorial.models.vqa_heads.DistanceBiasedHop`).
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
    cnn_merge: int = 1
    cnn_norm: str = "batch"
    dim: int = 64
    hidden: int = 256
    layers: int = 2
    hops: int = 2
    relate_hop: str = "last"
    distance_bias: bool = True
    distance_bias_scale: float = 1.0
    distance_bias_avoid: str = "weights"
    distance_bias_heads: int = 1
    distance_positions: str = "centres"
    distance_bias_signs: str = "learned"
    distance_bias_exclude: float | None = None
    heads: int = 1
    dropout: float = 0.0
    invert_images: bool = True

    def __post_init__(self) -> None:
        for name, allowed in (
            ("head", HEADS),
            ("image_encoder", IMAGE_ENCODERS),
            ("question_encoder", QUESTION_ENCODERS),
            ("cnn_norm", ("batch", "group")),
            ("relate_hop", RELATE_HOPS),
            ("distance_bias_avoid", AVOID_MODES),
            ("distance_positions", POSITION_MODES),
            ("distance_bias_signs", SIGN_MODES),
        ):
            check_choice(name, getattr(self, name), allowed)
        for name in (
            "num_answers",
            "structured_dim",
            "cnn_channels",
            "cnn_layers",
            "cnn_merge",
            "dim",
            "hidden",
            "layers",
            "hops",
            "heads",
            "distance_bias_heads",
        ):
            check_positive_int(name, getattr(self, name))
        for name in ("finetune_text", "invert_images", "distance_bias"):
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
        if self.dim % self.distance_bias_heads:
            raise ValueError(f"dim={self.dim} must be divisible by distance_bias_heads={self.distance_bias_heads}")
        if self.distance_bias_signs == "fixed" and self.distance_bias_heads % 2:
            raise ValueError(
                f"distance_bias_signs='fixed' needs an even distance_bias_heads (half near, half far), "
                f"got {self.distance_bias_heads}"
            )
        check_exclude("distance_bias_exclude", self.distance_bias_exclude)
        if self.dim % self.heads:
            raise ValueError(f"dim={self.dim} must be divisible by heads={self.heads}")
        if self.question_encoder == "gru" and self.dim % 2:
            raise ValueError(f"dim must be even for the bidirectional GRU question encoder, got {self.dim}")
        if self.cnn_norm == "group" and self.cnn_channels % 4:
            raise ValueError(f"cnn_channels={self.cnn_channels}: expected a multiple of 4 with cnn_norm='group'")
        check_probability("dropout", self.dropout)
        check_float("distance_bias_scale", self.distance_bias_scale, minimum=0.0, min_inclusive=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values only: safe in a ``weights_only`` checkpoint and in JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> VQAConfig:
        """The config of a dict of its fields (as :meth:`to_dict` writes it). A field the
        dict lacks because it was written before the field existed gets the behaviour of
        that time (:data:`FIELDS_ADDED_LATER`), not today's default, so an old checkpoint
        answers as it did."""
        check_mapping("values", values, "a dict of VQAConfig fields")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown VQAConfig fields {unknown}; expected some of {sorted(known)}")
        return cls(**{**FIELDS_ADDED_LATER, **values})


# ---------------------------------------------------------------------------------
# Question encoder
# ---------------------------------------------------------------------------------


class QuestionEncoder(nn.Module):
    """Question -> ``(tokens (B, L, dim), mask (B, L) True = token, vector (B, dim))``."""

    def __init__(self, config: VQAConfig) -> None:
        super().__init__()
        self.kind, dim = config.question_encoder, config.dim
        if self.kind in ("gru", "transformer"):
            self.encoder = WordTextEncoder(
                config.vocab_size,
                dim,
                kind=self.kind,
                pad_id=config.pad_id,
                heads=config.heads if self.kind == "transformer" else 4,
            )
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
                raise ValueError(
                    f"expected batch['structured'] of shape (batch, {size}), got {tuple(structured.shape)}"
                )
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
            self.image_encoder = ConvRegionEncoder(
                channels=config.cnn_channels, layers=config.cnn_layers, norm=config.cnn_norm, merge=config.cnn_merge
            )
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
        self.head = HEAD_REGISTRY[config.head](region_dim, num_regions, config)

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
        # train_vqa's relational_first_hop_delay: which questions may train the first hop
        extra = {FIRST_HOP_ROWS: batch[FIRST_HOP_ROWS]} if FIRST_HOP_ROWS in batch else {}
        if extra and not isinstance(self.head, CrossAttentionHead):
            raise ValueError(
                f"batch[{FIRST_HOP_ROWS!r}] is read by the cross_attention head only; this model's head is "
                f"{self.config.head!r}"
            )
        logits, maps = self.head(regions, self.grid, tokens, mask, question, return_attention=return_attention, **extra)
        return (logits, maps) if return_attention else logits


# ---------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------


def save_vqa_checkpoint(
    path: str | os.PathLike,
    model: VQAModel,
    answers: Sequence[str],
    metrics: Mapping[str, Any] | None = None,
    vocabulary: Sequence[str] | None = None,
) -> None:
    """Save config + weights + answer vocabulary (+ metrics, + the word vocabulary).

    ``metrics`` values may be numbers, strings, lists or dicts of them (NumPy scalars are
    stored as Python numbers, so the file loads with ``weights_only=True``)."""
    model = unwrap_model(model)  # a compiled or data-parallel model saves its VQAModel's weights
    if not isinstance(model, VQAModel):
        raise TypeError(
            f"model={type(model).__name__}: expected a VQAModel (or its torch.compile or DistributedDataParallel wrapper)"
        )
    _check_strings("answers", answers)
    if len(answers) != model.config.num_answers:
        raise ValueError(f"got {len(answers)} answers for a model with num_answers={model.config.num_answers}")
    if vocabulary is not None:
        _check_strings("vocabulary", vocabulary)
    if metrics is not None:
        check_mapping("metrics", metrics, "a dict of metric values")
    save_checkpoint(
        path,
        config=model.config.to_dict(),
        image_size=model.image_size,
        model={k: v.detach().cpu() for k, v in model.state_dict().items()},
        answers=list(answers),
        metrics=_plain(dict(metrics or {})),
        vocabulary=list(vocabulary) if vocabulary is not None else None,
    )


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


def load_vqa_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[VQAModel, dict[str, Any]]:
    """Rebuild the model from :func:`save_vqa_checkpoint`'s file (``weights_only=True``).

    Returns ``(model, info)`` with ``info`` holding ``config``, ``answers``, ``metrics``
    and ``vocabulary``. The model is in eval mode on ``map_location``.

    Raises ``ValueError("PATH is not a valid VQA checkpoint (why)")`` when the file is not
    a checkpoint (see :func:`mmtutorial.training.load_checkpoint`: corrupted, truncated, ...)
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
    problems = [
        f"missing {incompatible.missing_keys[:3]}" if incompatible.missing_keys else "",
        f"unexpected {incompatible.unexpected_keys[:3]}" if incompatible.unexpected_keys else "",
    ]
    if any(problems):
        raise invalid("its weights do not match its config: " + ", ".join(p for p in problems if p))
    info = {k: state.get(k) for k in ("config", "answers", "metrics", "vocabulary")}
    return model.to(map_location).eval(), info
