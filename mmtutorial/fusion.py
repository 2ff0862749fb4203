"""Fusion: ways to combine modalities, each with its formula and source.

Vector fusion modules take a list of per-modality feature vectors ``[(B, D_1), ...]``
and an optional ``present`` mask ``(B, M)`` (True = modality available for that sample);
a missing modality's features are replaced by zeros with ``torch.where`` (selected, never
multiplied) before anything reads them, so even a NaN or inf held by a missing modality
changes neither the output nor the gradients. Early, tensor and bilinear fusion then
compute on those zeros (*zero-filling*: nothing tells them the zeros mean "absent");
late, gated and token fusion also *mask* the modality, giving it no weight.

========================  =====================================================================
module                    formula (source)
========================  =====================================================================
EarlyFusion               ``MLP([h_1; ...; h_M])`` (concatenation; e.g. Ngiam et al. 2011)
LateFusion                ``sum_m w_m f_m(h_m)``, w uniform or learned (ensemble of unimodal heads)
HybridFusion              average of the early-fusion logits and the late-fusion logits
GatedFusion               ``alpha = softmax_m(V tanh(W [h_1; ...; h_M]))``, ``z = sum_m alpha_m P_m h_m``
                          (attention over modalities: one weight per modality, a simplification
                          of the per-feature sigmoid gate of GMUs, Arevalo et al. 2017)
TokenFusion               each modality one token + [CLS], a Transformer over the tokens
FiLM                      ``gamma(c) * x + beta(c)`` per channel (Perez et al. 2018)
TensorFusion              ``W vec([h_1; 1] (x) [h_2; 1] (x) ...)`` (Zadeh et al. 2017)
LowRankBilinear           ``SumPool_k(U^T x * V^T y)``, signed sqrt, L2 norm (MFB, Yu et al. 2017)
CrossModalAttention       queries from one modality attend over another's tokens / regions
CoAttention               both directions, two cross-attentions (ViLBERT's co-attention; Lu et al. 2019)
MultiHopAttention         ``q_{t+1} = q_t + Attn(q_t, regions)``, hops stacked (Yang et al. 2016)
ModalityDropout           drop whole modalities in training, ``m ~ Bernoulli(1 - p)`` per sample
========================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import MultiHeadAttention, TransformerEncoder, masked_softmax
from .validation import (
    check_bool,
    check_dims,
    check_input_dtype,
    check_nonnegative_int,
    check_optional_positive_int,
    check_positive_int,
    check_probability,
    check_tensor,
)

__all__ = [
    "EarlyFusion",
    "LateFusion",
    "HybridFusion",
    "GatedFusion",
    "TokenFusion",
    "FiLM",
    "TensorFusion",
    "LowRankBilinear",
    "CrossModalAttention",
    "CoAttention",
    "MultiHopAttention",
    "ModalityDropout",
    "random_missing_mask",
    "check_features",
    "check_present",
]


def check_features(features: Sequence[Tensor], dims: Sequence[int], present: Tensor | None = None) -> Tensor:
    """Validate per-modality vectors and return the ``present`` mask (all True if None)."""
    if not isinstance(features, (list, tuple)):
        raise TypeError(
            f"features={type(features).__name__}: expected a list of (batch, dim) tensors, one per modality"
        )
    if not features:
        raise ValueError(f"features=[]: expected {len(dims)} modalities")
    if len(features) != len(dims):
        raise ValueError(f"expected {len(dims)} modalities, got {len(features)}")
    batch = features[0].shape[0] if isinstance(features[0], Tensor) else 0
    for m, (h, d) in enumerate(zip(features, dims, strict=True)):
        check_tensor(f"features[{m}]", h, dtype="float", layout=f"({batch}, {d})")
        if h.dim() != 2 or h.shape != (batch, d):
            raise ValueError(f"modality {m}: expected features of shape ({batch}, {d}), got {tuple(h.shape)}")
        if h.dtype != features[0].dtype:
            raise TypeError(f"modality {m}: expected dtype {features[0].dtype} like modality 0, got {h.dtype}")
    if present is None:
        return torch.ones(batch, len(dims), dtype=torch.bool, device=features[0].device)
    return check_present(present, batch, len(dims))


def check_present(present: Tensor, batch_size: int, num_modalities: int) -> Tensor:
    """A ``present`` mask must be boolean ``(batch_size, num_modalities)`` (True = available)."""
    expected = f"a boolean mask of shape (batch, modalities) = ({batch_size}, {num_modalities})"
    if not isinstance(present, Tensor) or present.dtype != torch.bool:
        got = present.dtype if isinstance(present, Tensor) else type(present).__name__
        raise TypeError(f"present must be {expected}, got {got}")
    if present.shape != (batch_size, num_modalities):
        raise ValueError(f"present must be {expected}, got {present.dtype} {tuple(present.shape)}")
    return present


def _select_present(features: Sequence[Tensor], present: Tensor) -> list[Tensor]:
    """Each modality's features, zero where missing: selected, not multiplied (0 * NaN = NaN)."""
    return [torch.where(present[:, m : m + 1], h, 0) for m, h in enumerate(features)]


class EarlyFusion(nn.Module):
    """Concatenate the modalities' vectors, then a small MLP. A missing modality is zeros."""

    def __init__(self, dims: Sequence[int], out_dim: int, hidden: int | None = None) -> None:
        super().__init__()
        self.dims = check_dims("dims", dims)
        check_positive_int("out_dim", out_dim)
        hidden = out_dim if check_optional_positive_int("hidden", hidden) is None else hidden
        self.mlp = nn.Sequential(nn.Linear(sum(self.dims), hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, features: Sequence[Tensor], present: Tensor | None = None) -> Tensor:
        present = check_features(features, self.dims, present)
        return self.mlp(torch.cat(_select_present(features, present), dim=-1))


class LateFusion(nn.Module):
    """One classifier per modality; combine their logits by a (learned or uniform) weighted
    average over the modalities present. ``weights`` returns the weights used."""

    def __init__(self, dims: Sequence[int], num_classes: int, learned: bool = False) -> None:
        super().__init__()
        self.dims = check_dims("dims", dims)
        check_positive_int("num_classes", num_classes)
        check_bool("learned", learned)
        self.heads = nn.ModuleList(nn.Linear(d, num_classes) for d in self.dims)
        self.learned = learned
        self.log_weights = nn.Parameter(torch.zeros(len(self.dims)), requires_grad=learned)

    def unimodal_logits(self, features: Sequence[Tensor]) -> list[Tensor]:
        return [head(h) for head, h in zip(self.heads, features, strict=True)]

    def forward(self, features: Sequence[Tensor], present: Tensor | None = None) -> Tensor:
        present = check_features(features, self.dims, present)
        logits = torch.stack(self.unimodal_logits(_select_present(features, present)), dim=1)  # (B, M, C)
        scores = self.log_weights.expand(present.shape)
        self.weights = masked_softmax(scores, present)  # renormalised over present modalities
        return (self.weights.unsqueeze(-1) * logits).sum(1)


class HybridFusion(nn.Module):
    """Average of an early-fusion classifier's logits and a late-fusion classifier's."""

    def __init__(self, dims: Sequence[int], num_classes: int, hidden: int | None = None) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        self.early = EarlyFusion(dims, num_classes, hidden)
        self.late = LateFusion(dims, num_classes)

    def forward(self, features: Sequence[Tensor], present: Tensor | None = None) -> Tensor:
        return 0.5 * (self.early(features, present) + self.late(features, present))


class GatedFusion(nn.Module):
    """Attention over modalities: a weight per modality and per sample.

    ``alpha = softmax_m(V tanh(W [h_1; ...; h_M]))`` over the modalities present (the gate
    sees every present modality, as in gated multimodal units, Arevalo et al. 2017, whose
    gate is instead a sigmoid per *feature*; a softmax over modalities gives one
    interpretable weight per modality and renormalises over the modalities present), so
    the weights are non-negative and sum to 1 for every sample; the fused vector is
    ``sum_m alpha_m P_m h_m``. The last weights are kept in ``self.weights`` ``(B, M)``.
    """

    def __init__(self, dims: Sequence[int], dim: int, hidden: int = 32) -> None:
        super().__init__()
        self.dims = check_dims("dims", dims)
        check_positive_int("dim", dim)
        check_positive_int("hidden", hidden)
        self.project = nn.ModuleList(nn.Linear(d, dim) for d in self.dims)
        self.score = nn.Sequential(nn.Linear(sum(self.dims), hidden), nn.Tanh(), nn.Linear(hidden, len(self.dims)))
        self.weights: Tensor | None = None

    def forward(self, features: Sequence[Tensor], present: Tensor | None = None) -> Tensor:
        present = check_features(features, self.dims, present)
        features = _select_present(features, present)
        context = torch.cat(features, dim=-1)  # a missing modality says nothing
        self.weights = masked_softmax(self.score(context), present)
        projected = torch.stack([p(h) for p, h in zip(self.project, features, strict=True)], dim=1)  # (B, M, dim)
        return (self.weights.unsqueeze(-1) * projected).sum(1)


class TokenFusion(nn.Module):
    """Modalities as tokens: each modality is projected to one token, a learned [CLS]
    token is prepended, and a Transformer encoder attends across them; the [CLS] output
    is the fused vector. Missing modalities are masked out as padding.

    Each modality must be its *own* token: self-attention over a single concatenated
    token is only a linear map (a softmax over one key is always 1).
    """

    def __init__(self, dims: Sequence[int], dim: int, heads: int = 4, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.dims = check_dims("dims", dims)
        check_positive_int("dim", dim)
        check_positive_int("heads", heads)
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        check_positive_int("layers", layers)
        check_probability("dropout", dropout)
        self.project = nn.ModuleList(nn.Linear(d, dim) for d in self.dims)
        self.modality_embedding = nn.Parameter(torch.randn(len(self.dims), dim) * 0.02)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.encoder = TransformerEncoder(layers, dim, heads, ff_dim=2 * dim, dropout=dropout, norm_first=True)

    def forward(self, features: Sequence[Tensor], present: Tensor | None = None) -> Tensor:
        present = check_features(features, self.dims, present)
        features = _select_present(features, present)
        tokens = (
            torch.stack([p(h) for p, h in zip(self.project, features, strict=True)], dim=1) + self.modality_embedding
        )
        tokens = torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], dim=1)
        padding = torch.cat([torch.zeros_like(present[:, :1]), ~present], dim=1)  # [CLS] is always there
        return self.encoder(tokens, key_padding_mask=padding)[:, 0]


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al. 2018): a conditioning vector ``c``
    predicts a scale and a shift for every channel of ``x``:
    ``FiLM(x | c) = (1 + gamma(c)) * x + beta(c)`` (the ``1 +`` starts it as identity).

    ``x`` is ``(B, C)`` or ``(B, C, ...)`` (e.g. a CNN feature map); ``c`` is ``(B, cond_dim)``.
    """

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.cond_dim = check_positive_int("cond_dim", cond_dim)
        self.channels = check_positive_int("channels", channels)
        self.to_gamma_beta = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.to_gamma_beta.weight)
        nn.init.zeros_(self.to_gamma_beta.bias)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        check_tensor("x", x, dtype="float", layout=f"(batch, {self.channels}, ...)")
        check_tensor("condition", condition, dtype="float", layout=f"(batch, {self.cond_dim})")
        if x.dim() < 2 or x.shape[1] != self.channels:
            raise ValueError(f"expected x of shape (batch, {self.channels}, ...), got {tuple(x.shape)}")
        if condition.shape != (x.shape[0], self.cond_dim):
            raise ValueError(
                f"expected condition of shape ({x.shape[0]}, {self.cond_dim}) = (batch, cond_dim), "
                f"got {tuple(condition.shape)}"
            )
        check_input_dtype("condition", condition, self.to_gamma_beta.weight.dtype)
        gamma, beta = self.to_gamma_beta(condition).chunk(2, dim=-1)
        view = (x.shape[0], self.channels) + (1,) * (x.dim() - 2)
        return (1 + gamma.view(view)) * x + beta.view(view)


class TensorFusion(nn.Module):
    """Tensor fusion (Zadeh et al. 2017): the outer product of every modality's vector with
    a 1 appended, so unimodal, bimodal (and higher) interactions all appear, then a linear
    layer. Size grows as the product of the dims: keep them small."""

    def __init__(self, dims: Sequence[int], out_dim: int) -> None:
        super().__init__()
        self.dims = check_dims("dims", dims)
        check_positive_int("out_dim", out_dim)
        size = 1
        for d in self.dims:
            size *= d + 1
        self.linear = nn.Linear(size, out_dim)

    def forward(self, features: Sequence[Tensor], present: Tensor | None = None) -> Tensor:
        present = check_features(features, self.dims, present)
        outer = None
        for h in _select_present(features, present):
            h1 = torch.cat([h, torch.ones_like(h[:, :1])], dim=-1)
            outer = h1 if outer is None else (outer.unsqueeze(-1) * h1.unsqueeze(1)).flatten(1)
        return self.linear(outer)


class LowRankBilinear(nn.Module):
    """Multi-modal factorized bilinear pooling (MFB, Yu et al. 2017) of two vectors:
    ``z = SumPool_k((U^T x) * (V^T y))``, then signed square root and L2 normalisation.
    A rank-``k`` factorisation of a full bilinear map ``x^T W_i y`` per output ``i``."""

    def __init__(self, dims: Sequence[int], out_dim: int, factor: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        check_dims("dims", dims)
        if len(dims) != 2:
            raise ValueError(f"LowRankBilinear fuses exactly two modalities, got {len(dims)}: dims={list(dims)}")
        check_positive_int("out_dim", out_dim)
        check_positive_int("factor", factor)
        check_probability("dropout", dropout)
        self.dims, self.out_dim, self.factor = list(dims), out_dim, factor
        self.u = nn.Linear(dims[0], out_dim * factor)
        self.v = nn.Linear(dims[1], out_dim * factor)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: Sequence[Tensor], present: Tensor | None = None) -> Tensor:
        present = check_features(features, self.dims, present)
        x, y = _select_present(features, present)
        joint = self.dropout(self.u(x) * self.v(y)).view(-1, self.out_dim, self.factor).sum(-1)
        joint = torch.sign(joint) * torch.sqrt(joint.abs() + 1e-8)  # power normalisation
        return F.normalize(joint, dim=-1)


class CrossModalAttention(nn.Module):
    """Queries from one modality attend over the tokens of another (e.g. question words or
    a pooled question over image regions): multi-head attention plus a residual and norm.

    ``forward(queries (B, Lq, query_dim), context (B, N, context_dim), context_padding)``
    returns ``(B, Lq, query_dim)``; the weights ``(B, heads, Lq, N)`` are in ``self.weights``
    and what was read (before the residual and norm) in ``self.attended``.
    """

    def __init__(self, query_dim: int, context_dim: int, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        check_positive_int("query_dim", query_dim)
        check_positive_int("context_dim", context_dim)
        check_positive_int("heads", heads)
        if query_dim % heads:
            raise ValueError(f"query_dim ({query_dim}) must be divisible by heads ({heads})")
        self.attention = MultiHeadAttention(query_dim, heads, dropout=dropout, kdim=context_dim, vdim=context_dim)
        self.norm = nn.LayerNorm(query_dim)
        self.weights: Tensor | None = None
        self.attended: Tensor | None = None

    def forward(self, queries: Tensor, context: Tensor, context_padding: Tensor | None = None) -> Tensor:
        self.attended, self.weights = self.attention(
            queries, context, context, key_padding_mask=context_padding, average_attn_weights=False
        )
        return self.norm(queries + self.attended)


class CoAttention(nn.Module):
    """Co-attention: text attends over image regions *and* regions attend over text, in
    one step, as two multi-head cross-attentions side by side (each modality's queries
    against the other's keys and values): the co-attentional layer of ViLBERT (Lu et al.
    2019). The *parallel co-attention* of Lu et al. 2016 differs: it derives both
    directions' weights from one shared affinity matrix between words and regions.

    ``forward(text (B, L, dim), regions (B, N, dim), text_padding)`` returns
    ``(text', regions')``; the weights are in ``text_to_image.weights`` and ``image_to_text.weights``.
    """

    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        check_positive_int("dim", dim)
        self.text_to_image = CrossModalAttention(dim, dim, heads, dropout)
        self.image_to_text = CrossModalAttention(dim, dim, heads, dropout)

    def forward(self, text: Tensor, regions: Tensor, text_padding: Tensor | None = None) -> tuple[Tensor, Tensor]:
        new_text = self.text_to_image(text, regions)
        new_regions = self.image_to_text(regions, text, context_padding=text_padding)
        return new_text, new_regions


class MultiHopAttention(nn.Module):
    """Stacked attention (Yang et al. 2016): a query attends over regions, adds what it
    read to itself, and asks again, ``hops`` times. ``self.weights`` holds each hop's
    weights ``(B, heads, Lq, N)``."""

    def __init__(self, query_dim: int, context_dim: int, hops: int = 2, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        check_positive_int("hops", hops)
        self.hops = nn.ModuleList(CrossModalAttention(query_dim, context_dim, heads, dropout) for _ in range(hops))
        self.weights: list[Tensor] = []

    def forward(self, queries: Tensor, context: Tensor, context_padding: Tensor | None = None) -> Tensor:
        self.weights = []
        for hop in self.hops:
            queries = hop(queries, context, context_padding)
            self.weights.append(hop.weights)
        return queries


def random_missing_mask(
    batch_size: int, p: float, generator: torch.Generator | None = None, num_modalities: int = 2
) -> Tensor:
    """A test-time ``present`` mask ``(B, M)``: with probability ``p`` a sample loses one of
    its modalities (chosen uniformly), so at ``p = 1`` every sample has all but one."""
    check_nonnegative_int("batch_size", batch_size)
    check_probability("p", p, allow_one=True)
    check_positive_int("num_modalities", num_modalities)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator={generator!r}: expected None or a torch.Generator")
    present = torch.ones(batch_size, num_modalities, dtype=torch.bool)
    drop = torch.rand(batch_size, generator=generator) < p
    which = torch.randint(0, num_modalities, (batch_size,), generator=generator)
    present[drop.nonzero().squeeze(1), which[drop]] = False
    return present


class ModalityDropout(nn.Module):
    """Drop whole modalities during training (Neverova et al. 2016, "ModDrop").

    In training each modality of each sample is kept with probability ``1 - p``
    (``m ~ Bernoulli(1 - p)``); if all would be dropped, one of the modalities present is
    kept at random, so every sample that had an input still has one (a sample given
    with no modality present keeps none). In eval mode nothing is dropped. Returns the
    ``present`` mask ``(B, M)``, combined (AND) with a given one.
    """

    def __init__(self, p: float, num_modalities: int) -> None:
        super().__init__()
        self.p = check_probability("p", p)
        self.num_modalities = check_positive_int("num_modalities", num_modalities)

    def forward(self, batch_size: int, device=None, present: Tensor | None = None) -> Tensor:
        check_nonnegative_int("batch_size", batch_size)
        if present is None:
            present = torch.ones(batch_size, self.num_modalities, dtype=torch.bool, device=device)
        check_present(present, batch_size, self.num_modalities)
        if not self.training or self.p == 0.0:
            return present
        keep = torch.rand(batch_size, self.num_modalities, device=present.device) >= self.p
        keep &= present
        empty = ~keep.any(dim=1) & present.any(dim=1)  # lost everything it had
        if empty.any():  # rescue: keep one of the modalities that are actually present
            choice = torch.multinomial(present[empty].float(), 1).squeeze(1)
            keep[empty.nonzero().squeeze(1), choice] = True
        return keep

    def extra_repr(self) -> str:
        return f"p={self.p}, num_modalities={self.num_modalities}"
