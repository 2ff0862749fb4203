"""Self-checks must pass right answers and fail wrong ones with a helpful message."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import nbformat
import pytest
import torch
import torch.nn.functional as F

from mmtutorial.attention import causal_mask, masked_softmax
from mmtutorial.course import checks
from mmtutorial.course.classroom import find_exercises
from mmtutorial.course.viz import plot_attention, show_heatmaps

ROOT = Path(__file__).resolve().parents[1]


def epanechnikov(q, k, h):
    kernel = (1 - ((q[:, None] - k[None, :]) / h) ** 2).clamp_min(0)
    total = kernel.sum(1, keepdim=True)
    return torch.where(total > 0, kernel / total.clamp_min(1e-12), 0.0)


def distance_biased(q, k, slope):
    n = q.shape[-2]
    distance = (torch.arange(n)[:, None] - torch.arange(n)).abs()
    return torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5 - slope * distance, -1)


def receptive_field(layers):
    size, jump, start = 1, 1, 0.0
    for kernel, stride, padding in layers:
        size, start, jump = size + (kernel - 1) * jump, start + ((kernel - 1) / 2 - padding) * jump, jump * stride
    return size, jump, start


def gmu(h_img, h_aud, w_img, w_aud, w_gate):
    z = torch.sigmoid(torch.cat([h_img, h_aud], -1) @ w_gate.T)
    return z * torch.tanh(h_img @ w_img.T) + (1 - z) * torch.tanh(h_aud @ w_aud.T)


def impute(features, present, fill):
    return [torch.where(present[:, m : m + 1], h, f) for m, (h, f) in enumerate(zip(features, fill, strict=True))]


def breaking_point(levels, accuracies, threshold):
    if accuracies[0] <= threshold:
        return float(levels[0])
    for i in range(1, len(levels)):
        if accuracies[i] <= threshold:
            x0, x1, y0, y1 = levels[i - 1], levels[i], accuracies[i - 1], accuracies[i]
            return x0 + (x1 - x0) * (y0 - threshold) / (y0 - y1)
    return None


def seeds_needed(std, half_width):
    from scipy import stats

    n = 2
    while stats.t.ppf(0.975, n - 1) * std / n**0.5 > half_width:
        n += 1
    return n


def topk(scores, k):
    top = scores.topk(k, dim=-1)
    return torch.zeros_like(scores).scatter(-1, top.indices, torch.softmax(top.values, -1))


def count_same_shape(objects, color):
    return int((objects[:, 1] == objects[color, 1]).sum())


def closest_object(objects, color):
    d = ((objects[:, 2:] - objects[color, 2:]).float() ** 2).sum(1)
    d[color] = float("inf")
    return int(d.argmin())


def snr_db(clean, noisy):
    return 10 * torch.log10(clean.pow(2).mean() / (noisy - clean).pow(2).mean()).item()


def post_norm_block(x, block):
    x = block.norm1(x + block.self_attn(x, x, x)[0])
    return block.norm2(x + block.linear2(torch.relu(block.linear1(x))))


def global_local_mod(window, num_global):
    def mod(b, h, q, kv):
        return ((q - kv).abs() <= window) | (q < num_global) | (kv < num_global)

    return mod


def single_query_attention(query, regions):
    weights = torch.softmax((regions @ query[..., None])[..., 0] / regions.shape[-1] ** 0.5, -1)
    return (weights[..., None] * regions).sum(1), weights


def relation_pair_scores(regions, question, weight, bias):
    c = regions.shape[-1]
    w_i, w_j, w_q = weight[:, :c], weight[:, c : 2 * c], weight[:, 2 * c :]
    return (regions @ w_i.T)[:, :, None] + (regions @ w_j.T)[:, None] + (question @ w_q.T)[:, None, None] + bias


def family_prior(train_answers, train_family, test_answers, test_family):
    result = {}
    for family in train_family.unique().tolist():
        common = torch.mode(train_answers[train_family == family]).values
        result[family] = (test_answers[test_family == family] == common).float().mean().item()
    return result


def expand(axes):
    import itertools

    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]


RIGHT = {
    checks.check_expand_grid: expand,
    checks.check_seeds_needed: seeds_needed,
    checks.check_relation_pair_scores: relation_pair_scores,
    checks.check_family_prior: family_prior,
    checks.check_single_query_attention: single_query_attention,
    checks.check_receptive_field: receptive_field,
    checks.check_expected_missing_accuracy: lambda both, image, audio, p: (1 - p) * both + p * (image + audio) / 2,
    checks.check_impute_missing: impute,
    checks.check_breaking_point: breaking_point,
    checks.check_gated_multimodal_unit: gmu,
    checks.check_pearson: lambda x, y: torch.corrcoef(torch.stack([x, y]))[0, 1].item(),
    checks.check_tensor_fusion_size: lambda dims: int(torch.tensor([d + 1 for d in dims]).prod()),
    checks.check_sinusoidal_table: lambda n, d: __import__("mmtutorial.attention", fromlist=["x"]).sinusoidal_table(
        n, d
    ),
    checks.check_post_norm_block: post_norm_block,
    checks.check_distance_biased_weights: distance_biased,
    checks.check_sliding_window_mask: lambda n, w: (torch.arange(n)[:, None] - torch.arange(n)).abs() <= w,
    checks.check_window_score_count: lambda n, w: int(((torch.arange(n)[:, None] - torch.arange(n)).abs() <= w).sum()),
    checks.check_global_local_mask_mod: global_local_mod,
    checks.check_count_same_shape: count_same_shape,
    checks.check_closest_object: closest_object,
    checks.check_snr_db: snr_db,
    checks.check_softmax: lambda x: torch.softmax(x, -1),
    checks.check_epanechnikov_weights: epanechnikov,
    checks.check_topk_attention: topk,
    checks.check_softmax_with_temperature: lambda s, t: torch.softmax(s / t, -1),
    checks.check_scaled_dot_product_attention: lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
    checks.check_causal_mask: lambda n: causal_mask(n),
    checks.check_masked_softmax: lambda s, lens: masked_softmax(s, valid_lens=lens),
}

WRONG = {
    # forgets the 1/sqrt(d) scale
    checks.check_single_query_attention: (
        lambda q, r: (
            (torch.softmax((r @ q[..., None])[..., 0], -1)[..., None] * r).sum(1),
            torch.softmax((r @ q[..., None])[..., 0], -1),
        ),
        "case '\\(output, weights\\)': item 0: values differ",
    ),
    # pairs r_i with itself only (forgets the second object)
    checks.check_relation_pair_scores: (
        lambda r, q, w, b: (
            relation_pair_scores(r, q, w, b)
            .diagonal(dim1=1, dim2=2)
            .permute(0, 2, 1)[:, :, None]
            .expand(-1, -1, r.shape[1], -1)
        ),
        "values differ",
    ),
    # the most common *test* answer: peeks at the test set
    checks.check_family_prior: (lambda a, f, ta, tf: family_prior(ta, tf, ta, tf), "two families"),
    # first axis fastest
    checks.check_expand_grid: (
        lambda axes: [
            dict(zip(list(axes)[::-1], v, strict=True))
            for v in __import__("itertools").product(*list(axes.values())[::-1])
        ],
        "axes {'a': \\[1, 2\\], 'b'",
    ),
    # a normal interval (1.96) instead of Student's t: too few seeds
    checks.check_seeds_needed: (
        lambda std, half: next(n for n in range(2, 10_000) if 1.96 * std / n**0.5 <= half),
        "std 0.05, half-width 0.04",
    ),
    # adds kernel - 1 per layer, forgetting that deeper layers step several input pixels at once
    checks.check_receptive_field: (
        lambda layers: (1 + sum(k - 1 for k, _, _ in layers), receptive_field(layers)[1], receptive_field(layers)[2]),
        "the Relation Networks CNN",
    ),
    # counts only the image-only half of the samples that lose a modality
    checks.check_expected_missing_accuracy: (lambda both, image, audio, p: (1 - p) * both + p * image, "p = 1"),
    # multiplies by the mask: 0 * NaN is NaN
    checks.check_impute_missing: (
        lambda features, present, fill: [
            h * present[:, m : m + 1] + f * ~present[:, m : m + 1]
            for m, (h, f) in enumerate(zip(features, fill, strict=True))
        ],
        "holds NaN.*the result contains NaN",
    ),
    # the first measured level at or below the threshold, without interpolating
    checks.check_breaking_point: (
        lambda levels, acc, t: next((float(x) for x, a in zip(levels, acc, strict=True) if a <= t), None),
        "crossing between two levels",
    ),
    # one gate per modality (a softmax over two scores), not one per feature
    checks.check_gated_multimodal_unit: (
        lambda hi, ha, wi, wa, wg: (lambda z: z[:, :1] * torch.tanh(hi @ wi.T) + z[:, 1:] * torch.tanh(ha @ wa.T))(
            torch.softmax(torch.cat([hi, ha], -1) @ wg[:2].T, -1)
        ),
        "case 'batch 4, image 6, audio 3, 5 features': values differ",
    ),
    # covariance instead of correlation
    checks.check_pearson: (lambda x, y: ((x - x.mean()) * (y - y.mean())).mean().item(), "y = 3x"),
    # forgets the appended 1s
    checks.check_tensor_fusion_size: (lambda dims: int(torch.tensor(dims).prod()), "dims=\\[16, 16\\]"),
    # sin and cos swapped
    checks.check_sinusoidal_table: (
        lambda n, d: __import__("mmtutorial.attention", fromlist=["x"]).sinusoidal_table(n, d).roll(1, -1),
        "values differ",
    ),
    # pre-norm instead of post-norm
    checks.check_post_norm_block: (
        lambda x, b: (lambda y: y + b.linear2(torch.relu(b.linear1(b.norm2(y)))))(
            x + b.self_attn(b.norm1(x), b.norm1(x), b.norm1(x))[0]
        ),
        "values differ",
    ),
    # rewards distance (+slope) instead of penalising it
    checks.check_distance_biased_weights: (
        lambda q, k, slope: distance_biased(q, k, -slope),
        "case 'slope=1'",
    ),
    # strict inequality: forgets the keys at exactly `window`
    checks.check_sliding_window_mask: (
        lambda n, w: (torch.arange(n)[:, None] - torch.arange(n)).abs() < w,
        "n=5, window=0",
    ),
    # forgets that windows are cut at the sequence ends
    checks.check_window_score_count: (lambda n, w: n * (2 * w + 1), "n=100, window=3"),
    # global queries only, forgetting global keys
    checks.check_global_local_mask_mod: (
        lambda w, g: lambda b, h, q, kv: ((q - kv).abs() <= w) | (q < g),
        r"first wrong entry at \[2, 0\]",
    ),
    # forgets to count the object itself
    checks.check_count_same_shape: (lambda o, c: count_same_shape(o, c) - 1, r"expected \d, got \d"),
    # forgets to exclude the object itself: always answers its own index
    checks.check_closest_object: (lambda o, c: c, r"expected \d, got \d"),
    # amplitude ratio instead of power ratio
    checks.check_snr_db: (
        lambda c, n: 10 * torch.log10(c.abs().mean() / (n - c).abs().mean()).item(),
        "case 'SNR 20 dB'",
    ),
    # the naive formula overflows for large scores
    checks.check_softmax: (lambda x: x.exp() / x.exp().sum(-1, keepdim=True), "NaN"),
    # normalises without guarding against a query with no key in reach: 0 / 0
    checks.check_epanechnikov_weights: (
        lambda q, k, h: (lambda w: w / w.sum(1, keepdim=True))((1 - ((q[:, None] - k) / h) ** 2).clamp_min(0)),
        "no key within h.*NaN",
    ),
    # keeps the top-k but forgets to renormalise
    checks.check_topk_attention: (
        lambda s, k: torch.softmax(s, -1) * (s >= s.topk(k, -1).values[..., -1:]),
        "values differ",
    ),
    # multiplies by the temperature instead of dividing
    checks.check_softmax_with_temperature: (lambda s, t: torch.softmax(s * t, -1), "case 'T=0.1 sharpens'"),
    # forgets the 1/sqrt(d) scale
    checks.check_scaled_dot_product_attention: (
        lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1), -1) @ v,
        "values differ",
    ),
    # upper instead of lower triangle
    checks.check_causal_mask: (lambda n: torch.ones(n, n, dtype=torch.bool).triu(), "case 'n=2'"),
    # -inf fill gives NaN for an empty sequence
    checks.check_masked_softmax: (
        lambda s, lens: torch.softmax(s.masked_fill(torch.arange(s.shape[-1]) >= lens[:, None, None], -torch.inf), -1),
        "NaN",
    ),
}


@pytest.mark.parametrize("check", list(RIGHT), ids=lambda c: c.__name__)
def test_right_answer_passes(check, capsys):
    check(RIGHT[check])
    assert "✓" in capsys.readouterr().out


def test_every_exercise_self_check_has_a_right_and_a_wrong_answer_test():
    """The checks the notebooks' exercises call are all tested both ways here."""
    used = set()
    for path in sorted(ROOT.glob("notebooks/[0-9][0-9]_*.ipynb")):
        for exercise in find_exercises(nbformat.read(path, as_version=4), path.name):
            used.update(exercise.checks)
    assert used, "no exercises found"
    assert used <= {c.__name__ for c in RIGHT}, sorted(used - {c.__name__ for c in RIGHT})
    assert used <= {c.__name__ for c in WRONG}, sorted(used - {c.__name__ for c in WRONG})


@pytest.mark.parametrize("check", list(WRONG), ids=lambda c: c.__name__)
def test_wrong_answer_fails_with_message(check):
    wrong, match = WRONG[check]
    with pytest.raises(checks.ExerciseCheckError, match=match):
        check(wrong)


def test_not_implemented_and_crashing_answers():
    def stub(*args):
        raise NotImplementedError

    def stub_with_hint(*args):
        raise NotImplementedError("use torch.tril")

    # an unfinished exercise stays a NotImplementedError (not a wrong answer) and keeps its hint
    with pytest.raises(NotImplementedError, match="causal_mask: not implemented yet - replace the"):
        checks.check_causal_mask(stub)
    with pytest.raises(NotImplementedError, match="causal_mask: not implemented yet - use torch.tril"):
        checks.check_causal_mask(stub_with_hint)
    with pytest.raises(NotImplementedError, match="expand_grid: not implemented yet - use torch.tril"):
        checks.check_expand_grid(stub_with_hint)
    with pytest.raises(checks.ExerciseCheckError, match="raised ZeroDivisionError"):
        checks.check_causal_mask(lambda n: 1 / 0)
    with pytest.raises(checks.ExerciseCheckError, match=r"expected shape \(1, 1\), got shape \(2, 2\)"):
        checks.check_causal_mask(lambda n: causal_mask(n + 1))
    with pytest.raises(checks.ExerciseCheckError, match="boolean"):
        checks.check_causal_mask(lambda n: causal_mask(n).float())


def test_plot_attention_labels_and_errors():
    ax = plot_attention(torch.rand(3, 4), ["a", "b", "c"], list("wxyz"), title="t")
    assert ax.get_title() == "t" and [t.get_text() for t in ax.get_xticklabels()] == list("wxyz")
    with pytest.raises(ValueError, match="2 labels but the matrix has 3"):
        plot_attention(torch.rand(3, 4), ["a", "b"])
    with pytest.raises(ValueError, match="2-D"):
        plot_attention(torch.rand(3))
    fig = show_heatmaps([torch.rand(2, 2)] * 3, titles=["h1", "h2", "h3"], ncols=2)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["h1", "h2", "h3"]
    plt.close("all")


def test_compare_handles_numbers_sequences_and_dicts():
    import numpy as np

    assert checks.compare(3, 3.0) is None and checks.compare(0.5, np.float64(0.5)) is None
    assert checks.compare(0.5, torch.tensor(0.5)) is None
    assert checks.compare(3, 2) == "expected 3, got 2"
    assert checks.compare(1.0, float("nan")) == "expected a finite number, got nan"
    assert checks.compare(1, "1") == "expected a number, got str"
    assert checks.compare(True, 1) == "expected True or False, got int"
    assert checks.compare([1, (2, 3)], [1, [2, 4]]) == "item 1: item 1: expected 3, got 4"
    assert checks.compare({0: 0.5, 1: 1.0}, {0: 0.5}) == "expected the keys [0, 1], got [0]"
    assert checks.compare({"a": [torch.ones(2)]}, {"a": [torch.zeros(2)]}).startswith(
        "at key 'a': item 0: values differ"
    )
    assert checks.compare((1.0, 2.0), (1.0 + 1e-7, 2.0)) is None


def test_every_check_is_exported():
    names = [n for n in dir(checks) if n.startswith("check_") and callable(getattr(checks, n))]
    assert sorted(names) == sorted(n for n in checks.__all__ if n.startswith("check_"))


def test_receptive_field_of_the_region_cnn_and_footprint_helpers():
    """Notebook 06's helpers: the CNN's receptive field computed from its layers, the regions
    whose fields contain an object, and attention spread over the pixels the regions see."""
    from torch import nn

    from mmtutorial.data.sort_of_clevr import attention_density, regions_seeing_object
    from mmtutorial.encoders import ConvRegionEncoder, receptive_field

    assert ConvRegionEncoder().receptive_field() == (31, 16, 0.0)
    assert ConvRegionEncoder(layers=3).receptive_field() == (15, 8, 0.0)
    stack = [nn.Conv2d(1, 1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    assert receptive_field(stack) == receptive_field([(3, 1, 1), (2, 2, 0)]) == (4, 2, 0.5)
    with pytest.raises(ValueError, match="dilated"):
        receptive_field([nn.Conv2d(1, 1, 3, dilation=2)])
    # fields centred on 0, 16, ..., 64, 31 pixels wide: a region sees a whole 11-pixel object
    # when its centre is within 10 pixels of the object's, so one to four regions do
    seeing = regions_seeing_object(torch.tensor([[5, 5], [37, 37], [24, 40], [69, 69]]))
    assert seeing.shape == (4, 25) and seeing.sum(1).tolist() == [1, 1, 4, 1]
    assert seeing[0, 0] and seeing[1, 12] and seeing[3, 24]
    assert seeing[2].view(5, 5)[2:4, 1:3].all()
    every = regions_seeing_object(
        torch.stack(torch.meshgrid(torch.arange(5, 70), torch.arange(5, 70), indexing="ij"), -1).view(-1, 2)
    )
    assert (every.sum(1) >= 1).all(), "every object inside the image is seen whole by some region"
    maps = torch.softmax(torch.randn(3, 25), -1)
    density = attention_density(maps)
    assert density.shape == (3, 75, 75) and torch.allclose(density.sum((1, 2)), torch.ones(3))
    one_region = torch.zeros(1, 25)
    one_region[0, 12] = 1.0  # the centre region sees pixels 17..47
    lit = attention_density(one_region)[0] > 0
    assert lit[17:48, 17:48].all() and lit.sum() == 31 * 31
    with pytest.raises(ValueError, match="square number"):
        attention_density(torch.ones(2, 24))
