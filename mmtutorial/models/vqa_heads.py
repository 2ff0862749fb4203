"""The VQA model's fusion heads, one registry for all of them.

A head answers from the image regions and the question:
``head(regions (B, N, C), grid, tokens (B, L, d), mask (B, L), question (B, d),
return_attention) -> (logits (B, answers), maps)``, where ``maps`` holds attention over
the N regions, each ``(B, N)``, when ``return_attention`` is set (empty for heads that
do not attend). :data:`HEADS` (the names) and :data:`ATTENTION_HEADS` are read off the
registry, so adding a head is one class with ``@register_head("name")``.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import TransformerEncoder
from ..encoders import coordinate_grid, masked_mean
from ..fusion import CoAttention, CrossModalAttention, FiLM, MultiHopAttention
from ..validation import check_choice

if TYPE_CHECKING:  # only for annotations: the config module imports this registry
    from .vqa import VQAConfig

__all__ = [
    "FusionHead",
    "register_head",
    "HEAD_REGISTRY",
    "HEADS",
    "ATTENTION_HEADS",
    "ConcatHead",
    "RelationHead",
    "FiLMHead",
    "DistanceBiasedHop",
    "AVOID_MODES",
    "POSITION_MODES",
    "CrossAttentionHead",
    "CoAttentionHead",
    "TransformerHead",
]

#: Every fusion head by name, in the order they are introduced (notebook 09).
HEAD_REGISTRY: dict[str, type[FusionHead]] = {}


def register_head(name: str):
    """Class decorator: add a :class:`FusionHead` to :data:`HEAD_REGISTRY` under ``name``."""

    def register(cls: type[FusionHead]) -> type[FusionHead]:
        if name in HEAD_REGISTRY:
            raise ValueError(f"a head named {name!r} is already registered ({HEAD_REGISTRY[name].__name__})")
        HEAD_REGISTRY[name] = cls
        cls.name = name
        return cls

    return register


class FusionHead(nn.Module):
    """The interface every VQA fusion head implements (module docstring).

    Args:
        region_dim: features per region (``C``).
        num_regions: regions per image (``N``).
        config: the model's :class:`~mmtutorial.models.vqa.VQAConfig`.
    """

    name: ClassVar[str] = ""
    #: True for heads that fuse by attention over the regions (and so return maps).
    fuses_by_attention: ClassVar[bool] = False

    def __init__(self, region_dim: int, num_regions: int, config: VQAConfig) -> None:
        super().__init__()

    def forward(
        self,
        regions: Tensor,
        grid: tuple[int, int],
        tokens: Tensor,
        mask: Tensor,
        question: Tensor,
        return_attention: bool = False,
    ) -> tuple[Tensor, dict[str, Tensor]]:  # pragma: no cover
        raise NotImplementedError


def _mlp(in_dim: int, hidden: int, out_dim: int, depth: int = 2, dropout: float = 0.0) -> nn.Sequential:
    """``depth`` linear layers with ReLU between (and dropout before the last)."""
    layers: list[nn.Module] = []
    for i in range(depth - 1):
        layers += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden if depth > 1 else in_dim, out_dim))
    return nn.Sequential(*layers)


@register_head("concat")
class ConcatHead(FusionHead):
    """CNN+MLP: every region's features flattened, concatenated with the question."""

    def __init__(self, region_dim: int, num_regions: int, config: VQAConfig) -> None:
        super().__init__(region_dim, num_regions, config)
        self.classify = _mlp(
            num_regions * region_dim + config.dim, config.hidden, config.num_answers, depth=3, dropout=config.dropout
        )

    def forward(self, regions, grid, tokens, mask, question, return_attention=False):
        return self.classify(torch.cat([regions.flatten(1), question], dim=-1)), {}


@register_head("relation")
class RelationHead(FusionHead):
    """Relation Network (Santoro et al. 2017): ``f(sum_ij g(r_i, r_j, q))``.

    ``g``'s first layer is linear in ``[r_i; r_j; q]``, so it is computed as
    ``W_i r_i + W_j r_j + W_q q`` and broadcast over the N x N pairs: the same function
    as concatenating every pair, without building the ``(B, N^2, 2C + d)`` input.
    """

    def __init__(self, region_dim: int, num_regions: int, config: VQAConfig) -> None:
        super().__init__(region_dim, num_regions, config)
        h = config.hidden
        self.first_i = nn.Linear(region_dim, h)
        self.first_j = nn.Linear(region_dim, h, bias=False)
        self.first_q = nn.Linear(config.dim, h, bias=False)
        self.g = nn.Sequential(
            nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU()
        )
        self.f = _mlp(h, h, config.num_answers, depth=3, dropout=config.dropout)

    def forward(self, regions, grid, tokens, mask, question, return_attention=False):
        pairs = (
            self.first_i(regions)[:, :, None]
            + self.first_j(regions)[:, None, :]
            + self.first_q(question)[:, None, None]
        )  # (B, N, N, h)
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


@register_head("film")
class FiLMHead(FusionHead):
    """Question-conditioned residual conv blocks over the region grid, then max-pool + MLP."""

    def __init__(self, region_dim: int, num_regions: int, config: VQAConfig) -> None:
        super().__init__(region_dim, num_regions, config)
        self.stem = nn.Conv2d(region_dim, config.dim, 1)
        self.blocks = nn.ModuleList(FiLMBlock(config.dim, config.dim) for _ in range(config.layers))
        self.pool = nn.Conv2d(config.dim, config.hidden, 1)
        self.classify = _mlp(config.hidden, config.hidden, config.num_answers, depth=2, dropout=config.dropout)

    def forward(self, regions, grid, tokens, mask, question, return_attention=False):
        b, n, c = regions.shape
        x = torch.relu(self.stem(regions.transpose(1, 2).reshape(b, c, *grid)))
        for block in self.blocks:
            x = block(x, question)
        return self.classify(torch.relu(self.pool(x)).amax(dim=(2, 3))), {}


#: What a :class:`DistanceBiasedHop`'s ``u`` multiplies (its ``avoid`` argument).
AVOID_MODES = ("weights", "peak", "radius")
#: The width of ``avoid="radius"``'s kernel ``exp(-d^2 / r^2)`` in the regions' coordinates
#: (the 5x5 grid's centres, 0 to 64 px, span [-1, 1]: one unit is 32 px): 4.5 px, about a
#: Sort-of-CLEVR object's radius (5 px). Where the nearest other object can be (centres at
#: least 11 px apart, 0.34) the kernel is 0.003.
AVOID_RADIUS = 0.14
#: Where :class:`DistanceBiasedHop` measures distances from: the region centres, or the
#: centres moved by an offset each region predicts from its features.
POSITION_MODES = ("centres", "learned")
#: What decides the sign of each head's ``w`` in :class:`DistanceBiasedHop`: the question
#: (``"learned"``), or the head (``"fixed"``: the first half of the heads can only look near,
#: ``w <= 0``, the second half only far, ``w >= 0``; the question sets how strongly).
SIGN_MODES = ("learned", "fixed")


def check_exclude(name: str, value: Any) -> float | None:
    """``None`` or a finite number ``>= 0``: the bound ``u <= -value`` of a
    :class:`DistanceBiasedHop` (``exclude``; ``VQAConfig.distance_bias_exclude``)."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < math.inf
    ):
        raise ValueError(f"{name}={value!r}: expected None (u is free) or a number >= 0 (u <= -exclude)")
    return value


class DistanceBiasedHop(nn.Module):
    """A hop of attention over the regions whose scores also see *where* each region is
    relative to what the previous hop found:

    ``score_i = q . k_i / sqrt(d) + w(question) * |p_i - p_found|^2 + u(question) * a_i``

    where ``a`` are the previous hop's weights, ``p_found = sum_i a_i p_i`` the position
    they point at, ``p_i`` the region centres in [-1, 1], and ``w``, ``u`` two numbers the
    question predicts (``w < 0``: prefer near regions, as "closest" needs; ``w > 0``: far
    ones; ``u < 0``: not the object already found). It is a distance bias like ALiBi's
    (notebook 04's exercise), with the distance measured in the image and its sign and
    strength chosen by the question; ``scale`` multiplies ``w`` and ``u`` so that they can
    grow decisive in fewer steps (:attr:`~mmtutorial.models.vqa.VQAConfig.distance_bias_scale`).
    ``avoid="peak"`` uses ``a_i / max_j a_j`` in the last term, so the object found counts
    fully however many regions it covers (on a 10x10 grid it covers about four, each with
    a quarter of the weight); ``"weights"`` (the default) uses ``a_i`` itself;
    ``avoid="radius"`` uses ``exp(-|p_i - p_found|^2 / r^2)`` (``r`` = :data:`AVOID_RADIUS`):
    every region whose position lies on the object found, whatever weight the previous hop
    gave it, so that a strong "near" ``w`` cannot pull the hop back onto that object's
    other regions (which lie at distance ~0 from it).
    With ``heads > 1`` each head has its own query and key slice and its own ``w`` and
    ``u``, and the heads' ``w`` start spread from near to far (``-1`` to ``1`` for a
    question that predicts zero), like ALiBi's per-head slopes. With
    ``positions="learned"`` the distances are measured between *refined* positions: each
    region's centre plus an offset it predicts from its own features (at most 0.5 either
    way, one step of the 5x5 grid; zero at the start), so two objects seen by neighbouring regions
    can be told apart by more than the grid's step.
    With ``signs="fixed"`` (``heads`` even) the sign of each head's ``w`` is the head's, not
    the question's: ``w = -scale * softplus(.)`` for the first half of the heads and
    ``+scale * softplus(.)`` for the second, so one half always reads what is near the found
    object and the other what is far, and the question only has to weigh the two read-outs
    (a learned sign can settle on "far" for *closest* and *furthest* alike and stay there
    once the softmax is sharp: :func:`~mmtutorial.models.vqa_diagnostics.distance_hop_statistics`).
    With ``exclude`` a number, ``u = -(exclude + scale * softplus(.))``: at most
    ``-exclude``, so the hop can never turn back to the object already found (a free ``u``
    grew positive on the non-relational curriculum in runs with fixed signs, so a relational
    question started from a hop that re-read the named object).
    With ``learn_strengths = False`` the question's ``w`` and ``u`` are used but not trained
    (:func:`~mmtutorial.models.vqa_training.train_vqa`'s ``hold_distance_bias`` sets it during
    the non-relational curriculum, whose questions otherwise train ``w`` into values that the
    relational questions then inherit).
    ``forward`` returns ``LayerNorm(x + read)`` like :class:`~mmtutorial.fusion.CrossModalAttention`, and keeps
    ``weights (B, heads, 1, N)`` and ``attended (B, 1, d)`` in that class's shapes (one query),
    and ``bias_terms (B, heads, 2)``: the ``w`` and ``u`` it used (scale included).
    """

    def __init__(
        self,
        dim: int,
        scale: float = 1.0,
        avoid: str = "weights",
        heads: int = 1,
        positions: str = "centres",
        signs: str = "learned",
        exclude: float | None = None,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.signs = check_choice("signs", signs, SIGN_MODES)
        if signs == "fixed" and (heads < 2 or heads % 2):
            raise ValueError(
                f"signs='fixed' needs an even number of heads >= 2 (half near, half far), got heads={heads}"
            )
        self.exclude = check_exclude("exclude", exclude)
        self.scale = scale
        self.avoid = check_choice("avoid", avoid, AVOID_MODES)
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.bias_scales = nn.Linear(dim, 2 * heads)  # w and u per head, from the question
        if signs == "fixed":
            # |w| = scale * softplus(raw) starts at 1, as the spread start below: -1 near, +1 far
            self.register_buffer("w_signs", torch.tensor([-1.0] * (heads // 2) + [1.0] * (heads // 2)))
            with torch.no_grad():
                self.bias_scales.bias.view(heads, 2)[:, 0] = math.log(math.expm1(1.0 / scale))
        elif heads > 1:
            # like ALiBi's per-head slopes: the heads start from near (w < 0) to far (w > 0),
            # so some head already looks the way each question needs; the question still scales them
            with torch.no_grad():
                self.bias_scales.bias.view(heads, 2)[:, 0] = torch.linspace(-1.0, 1.0, heads) / scale
        self.positions = check_choice("positions", positions, POSITION_MODES)
        if positions == "learned":
            # zero at the start: every region begins at its centre, then learns where in its
            # field the object it sees lies (a grid of centres cannot tell two near objects apart)
            self.offset = nn.Linear(dim, 2)
            nn.init.zeros_(self.offset.weight)
            nn.init.zeros_(self.offset.bias)
        self.weights: Tensor | None = None
        self.attended: Tensor | None = None
        self.region_positions: Tensor | None = None
        self.bias_terms: Tensor | None = None  # (B, heads, 2): the last forward's w and u, for diagnostics
        # False: w and u pass on their values but take no gradient (train_vqa's hold_distance_bias
        # sets it during the non-relational curriculum, where no question asks about distance)
        self.learn_strengths = True

    def _raw_strengths(self, question: Tensor) -> Tensor:
        """The question's raw ``w`` and ``u`` (``(B, 2 * heads)``), cut from the gradient while
        ``learn_strengths`` is False."""
        raw = self.bias_scales(question)
        if not self.learn_strengths:
            # zero gradients rather than none, so that DistributedDataParallel sees every parameter used
            raw = raw.detach() + 0.0 * raw
        return raw

    def _bounded_u(self, raw_u: Tensor) -> Tensor:
        """``u = -(exclude + scale * softplus(raw_u))``: never above ``-exclude``."""
        return -(self.exclude + self.scale * F.softplus(raw_u))

    def forward(self, x: Tensor, regions: Tensor, question: Tensor, previous: Tensor, centres: Tensor) -> Tensor:
        if self.positions == "centres":
            found_at = previous @ centres  # (B, 2): where the previous hop looked
            distance2 = ((centres[None] - found_at[:, None]) ** 2).sum(-1)  # (B, N)
        else:
            # an offset of up to 0.5 either way (the image spans [-1, 1]; one step of the 5x5 grid):
            # a region sees 31 pixels, so an object it sees can lie up to about a step from its centre
            positions = centres[None] + 0.5 * torch.tanh(self.offset(regions))  # (B, N, 2)
            self.region_positions = positions
            found_at = torch.einsum("bn,bnc->bc", previous, positions)
            distance2 = ((positions - found_at[:, None]) ** 2).sum(-1)
        if self.avoid == "peak":
            found = previous / previous.amax(-1, keepdim=True)
        elif self.avoid == "radius":
            found = torch.exp(-distance2 / AVOID_RADIUS**2)
        else:
            found = previous
        if self.heads == 1:  # kept apart so that one-head runs replay exactly as before the option
            raw = self._raw_strengths(question)
            w, u = (self.scale * raw).unbind(-1)
            if self.exclude is not None:
                u = self._bounded_u(raw[..., 1])
            self.bias_terms = torch.stack([w, u], -1)[:, None].detach()
            scores = torch.einsum("bd,bnd->bn", self.query(x), self.key(regions)) / math.sqrt(x.shape[-1])
            weights = (scores + w[:, None] * distance2 + u[:, None] * found).softmax(-1)
            self.weights = weights[:, None, None]
            read = self.out(torch.einsum("bn,bnd->bd", weights, self.value(regions)))
        else:
            b, n, d = regions.shape
            h = self.heads
            raw = self._raw_strengths(question).view(b, h, 2)
            w, u = (self.scale * raw).unbind(-1)  # (B, H) each
            if self.signs == "fixed":
                w = self.w_signs * self.scale * F.softplus(raw[..., 0])
            if self.exclude is not None:
                u = self._bounded_u(raw[..., 1])
            self.bias_terms = torch.stack([w, u], -1).detach()
            query = self.query(x).view(b, h, d // h)
            key, value = (proj(regions).view(b, n, h, d // h) for proj in (self.key, self.value))
            scores = torch.einsum("bhd,bnhd->bhn", query, key) / math.sqrt(d // h)
            weights = (scores + w[..., None] * distance2[:, None] + u[..., None] * found[:, None]).softmax(-1)
            self.weights = weights[:, :, None]  # (B, H, 1, N)
            read = self.out(torch.einsum("bhn,bnhd->bhd", weights, value).reshape(b, d))
        self.attended = read[:, None]
        return self.norm(x + read)


@register_head("cross_attention")
class CrossAttentionHead(FusionHead):
    """The question attends over the regions ``hops`` times (stacked attention); one hop's
    read-out (``config.relate_hop``: by default the last, the object the attention ends
    on; ``"all"``: every hop's, side by side) is then related to every region by an MLP
    and summed: N object-region pairs instead of the relation head's N^2. With
    ``config.distance_bias`` every hop after the first is a :class:`DistanceBiasedHop`: it
    can look for the region nearest to (or furthest from) what the hop before found."""

    fuses_by_attention = True

    def __init__(self, region_dim: int, num_regions: int, config: VQAConfig) -> None:
        super().__init__(region_dim, num_regions, config)
        d, h = config.dim, config.hidden
        # an MLP per region, so keys can be non-linear in the coordinates (distances)
        self.regions = _mlp(region_dim, d, d, depth=2)
        plain_hops = 1 if config.distance_bias else config.hops
        self.attend = MultiHopAttention(d, d, hops=plain_hops, heads=config.heads, dropout=config.dropout)
        self.biased_hops = nn.ModuleList(
            DistanceBiasedHop(
                d,
                config.distance_bias_scale,
                config.distance_bias_avoid,
                config.distance_bias_heads,
                config.distance_positions,
                config.distance_bias_signs,
                config.distance_bias_exclude,
            )
            for _ in range(config.hops - plain_hops)
        )
        # "all": every hop's read-out meets every region (what each hop found, side by side)
        self.related_hops = {"first": [0], "last": [-1], "all": list(range(config.hops))}[config.relate_hop]
        width = (2 + len(self.related_hops)) * d
        self.relate = nn.Sequential(nn.Linear(width, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.classify = _mlp(h + 2 * d, h, config.num_answers, depth=2, dropout=config.dropout)

    def forward(self, regions, grid, tokens, mask, question, return_attention=False, first_hop_rows=None):
        """``first_hop_rows`` (``(B,)`` bool, optional, with ``distance_bias``): the questions whose
        loss may train the first hop; the others read it unchanged but send it no gradient
        (:func:`~mmtutorial.models.vqa_training.train_vqa`'s ``relational_first_hop_delay``)."""
        regions = self.regions(regions)
        final = self.attend(question[:, None], regions)[:, 0]
        if first_hop_rows is not None:
            final = self._cut_first_hop_gradient(final, first_hop_rows)
        hops = [*self.attend.hops, *self.biased_hops]
        if self.biased_hops:
            centres = coordinate_grid(*grid, device=regions.device).to(regions.dtype)
            for i, hop in enumerate(self.biased_hops, start=len(self.attend.hops)):
                previous = hops[i - 1].weights.mean(1)[:, 0]  # (B, N), averaged over heads
                final = hop(final, regions, question, previous, centres)
        n = regions.shape[1]
        found = [hops[i].attended[:, 0] for i in self.related_hops]  # what those hops read, before the residual
        pairs = torch.cat(
            [regions, *(f[:, None].expand(-1, n, -1) for f in found), question[:, None].expand(-1, n, -1)], -1
        )
        related = self.relate(pairs).sum(1)
        maps = {f"hop{i + 1}": hop.weights.mean(1)[:, 0] for i, hop in enumerate(hops)}
        return self.classify(torch.cat([related, final, question], dim=-1)), maps

    def _cut_first_hop_gradient(self, final: Tensor, rows: Tensor) -> Tensor:
        """The first hop's output, weights and read-out, unchanged, with the gradient cut on
        the rows where ``rows`` is False: all the first hop gives the rest of the model passes
        through these three, so those questions cannot move it."""
        if not self.biased_hops:
            raise ValueError(
                "first_hop_rows needs distance_bias=True (the first hop is then the only plain hop, "
                "and the distance-biased hops read it)"
            )
        if rows.dtype != torch.bool or rows.shape != final.shape[:1]:
            raise ValueError(
                f"first_hop_rows: expected a bool tensor of shape ({final.shape[0]},), "
                f"got {rows.dtype} of shape {tuple(rows.shape)}"
            )

        def cut(t: Tensor) -> Tensor:
            return torch.where(rows.view(-1, *[1] * (t.dim() - 1)), t, t.detach())

        first = self.attend.hops[0]
        first.weights, first.attended = cut(first.weights), cut(first.attended)
        return cut(final)


@register_head("co_attention")
class CoAttentionHead(FusionHead):
    """``layers`` of parallel co-attention (words <-> regions), then the pooled question
    reads the co-attended regions."""

    fuses_by_attention = True

    def __init__(self, region_dim: int, num_regions: int, config: VQAConfig) -> None:
        super().__init__(region_dim, num_regions, config)
        d = config.dim
        self.regions = _mlp(region_dim, d, d, depth=2)
        self.layers = nn.ModuleList(
            CoAttention(d, heads=config.heads, dropout=config.dropout) for _ in range(config.layers)
        )
        self.read = CrossModalAttention(d, d, heads=config.heads, dropout=config.dropout)
        self.classify = _mlp(2 * d, config.hidden, config.num_answers, depth=2, dropout=config.dropout)

    def forward(self, regions, grid, tokens, mask, question, return_attention=False):
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


@register_head("transformer")
class TransformerHead(FusionHead):
    """One pre-norm Transformer over ``[CLS; question tokens; region tokens]``; the answer
    is read from CLS. Its maps are CLS's attention to the region tokens, renormalised
    over the regions.

    Three choices together make it learn on a few thousand images (measured while
    building it, not one by one: README, "The VQA model and its training recipe"):
    every region gets a learned position embedding (ViT's), so *where* is a first-class
    signal and not two of 26 input features; regions pass through an MLP, as in
    ``cross_attention``; and CLS starts as the question vector instead of a constant, so
    the first layer's CLS query already asks the question.
    """

    fuses_by_attention = True

    def __init__(self, region_dim: int, num_regions: int, config: VQAConfig) -> None:
        super().__init__(region_dim, num_regions, config)
        d = config.dim
        self.regions = _mlp(region_dim, d, d, depth=2)
        self.positions = nn.Parameter(torch.zeros(1, num_regions, d))
        self.types = nn.Parameter(torch.zeros(3, d))  # 0 CLS, 1 question word, 2 region
        nn.init.normal_(self.positions, std=0.02)
        nn.init.normal_(self.types, std=0.02)
        self.encoder = TransformerEncoder(
            config.layers, d, config.heads, ff_dim=4 * d, dropout=config.dropout, norm_first=True
        )
        self.classify = _mlp(d, config.hidden, config.num_answers, depth=2, dropout=config.dropout)

    def forward(self, regions, grid, tokens, mask, question, return_attention=False):
        b, n, _ = regions.shape
        cls = (question + self.types[0])[:, None]
        words = tokens + self.types[1]
        regions = self.regions(regions) + self.positions + self.types[2]
        x = torch.cat([cls, words, regions], dim=1)
        keep = torch.ones(b, 1, dtype=torch.bool, device=x.device)
        padding = ~torch.cat([keep, mask, keep.expand(b, n)], dim=1)
        out = self.encoder(x, key_padding_mask=padding, need_weights=return_attention)
        maps = {}
        if return_attention:
            for i, weights in enumerate(self.encoder.attention_weights):  # (B, h, 1 + L + N, 1 + L + N)
                to_regions = weights.mean(1)[:, 0, -n:]  # CLS -> regions (CLS also attends to words)
                maps[f"layer{i + 1}"] = to_regions / to_regions.sum(-1, keepdim=True).clamp_min(1e-12)
        return self.classify(out[:, 0]), maps


#: The heads' names, from the registry.
HEADS: tuple[str, ...] = tuple(HEAD_REGISTRY)
#: The heads that fuse by attention (and return attention maps over the regions).
ATTENTION_HEADS: tuple[str, ...] = tuple(name for name, head in HEAD_REGISTRY.items() if head.fuses_by_attention)
