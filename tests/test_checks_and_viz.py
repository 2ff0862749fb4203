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


def gaussian(q, k, h):
    return torch.softmax(-((q[:, None] - k[None, :]) ** 2) / (2 * h**2), dim=1)


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


def missing_mask(batch, p, generator):
    present = torch.ones(batch, 2, dtype=torch.bool)
    drop = torch.rand(batch, generator=generator) < p
    which = torch.randint(0, 2, (batch,), generator=generator)
    present[drop.nonzero().squeeze(1), which[drop]] = False
    return present


def relative_robustness(levels, accuracies):
    x = torch.tensor(levels, dtype=torch.float64)
    x = (x - x[0]) / (x[-1] - x[0])
    return torch.trapezoid(torch.tensor(accuracies, dtype=torch.float64), x).item()


def effective_robustness(model, late):
    m, b = torch.tensor(model, dtype=torch.float64), torch.tensor(late, dtype=torch.float64)
    return ((m[1:] - m[0]) - (b[1:] - b[0])).mean().item()


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


def ci95(values):
    from scipy import stats

    half = stats.t.ppf(0.975, len(values) - 1) * values.std() / len(values) ** 0.5
    return values.mean() - half, values.mean() + half


RIGHT = {
    checks.check_expand_grid: expand,
    checks.check_ci95: ci95,
    checks.check_relation_pair_scores: relation_pair_scores,
    checks.check_family_prior: family_prior,
    checks.check_single_query_attention: single_query_attention,
    checks.check_grid_cell: lambda x, y, image_size=75, grid=5: int(y // 15) * 5 + int(x // 15),
    checks.check_missing_mask: missing_mask,
    checks.check_relative_robustness: relative_robustness,
    checks.check_effective_robustness: effective_robustness,
    checks.check_gate_weights: lambda s, p: masked_softmax(s, p),
    checks.check_pearson: lambda x, y: torch.corrcoef(torch.stack([x, y]))[0, 1].item(),
    checks.check_tensor_fusion_size: lambda dims: int(torch.tensor([d + 1 for d in dims]).prod()),
    checks.check_sinusoidal_table: lambda n, d: __import__("mmtutorial.attention", fromlist=["x"]).sinusoidal_table(
        n, d
    ),
    checks.check_post_norm_block: post_norm_block,
    checks.check_sequence_accuracy: lambda logits, t: (logits.argmax(-1) == t).all(-1).float().mean().item(),
    checks.check_sliding_window_mask: lambda n, w: (torch.arange(n)[:, None] - torch.arange(n)).abs() <= w,
    checks.check_window_score_count: lambda n, w: int(((torch.arange(n)[:, None] - torch.arange(n)).abs() <= w).sum()),
    checks.check_global_local_mask_mod: global_local_mod,
    checks.check_count_same_shape: count_same_shape,
    checks.check_closest_object: closest_object,
    checks.check_snr_db: snr_db,
    checks.check_softmax: lambda x: torch.softmax(x, -1),
    checks.check_gaussian_kernel_weights: gaussian,
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
    # a normal interval (1.96) instead of Student's t: too narrow for 3 seeds
    checks.check_ci95: (
        lambda x: (x.mean() - 1.96 * x.std() / len(x) ** 0.5, x.mean() + 1.96 * x.std() / len(x) ** 0.5),
        "3 seeds",
    ),
    # swaps rows and columns
    checks.check_grid_cell: (lambda x, y, image_size=75, grid=5: int(x // 15) * 5 + int(y // 15), "x=74, y=0"),
    # drops each modality independently: sometimes both
    checks.check_missing_mask: (lambda b, p, g: torch.rand(b, 2, generator=g) >= p, "p = 0.5"),
    # plain mean of the accuracies, ignoring uneven levels
    checks.check_relative_robustness: (lambda x, y: sum(y) / len(y), "uneven levels"),
    # compares raw accuracies instead of drops
    checks.check_effective_robustness: (
        lambda m, b: sum(x - y for x, y in zip(m[1:], b[1:], strict=True)) / (len(m) - 1),
        "higher start",
    ),
    # softmax over every modality, ignoring which are present
    checks.check_gate_weights: (lambda s, p: torch.softmax(s, -1), "some modalities missing"),
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
    # per-token accuracy instead of per-sequence
    checks.check_sequence_accuracy: (
        lambda logits, t: (logits.argmax(-1) == t).float().mean().item(),
        "one position wrong",
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
    # forgot the factor 2 in the Gaussian
    checks.check_gaussian_kernel_weights: (
        lambda q, k, h: torch.softmax(-((q[:, None] - k) ** 2) / h**2, 1),
        "values differ",
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
