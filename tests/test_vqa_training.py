"""train_vqa's recipe: one history and one schedule over the curriculum and the main phase,
the best validation epoch's weights kept, BatchNorm statistics recomputed, clear errors."""

from functools import partial

import pytest
import torch

from mmtutorial.data import Curriculum, SortOfClevr
from mmtutorial.data.sort_of_clevr import FAMILY_NAMES
from mmtutorial.models.vqa import FIRST_HOP_ROWS, VQAConfig, VQAModel
from mmtutorial.models.vqa_diagnostics import HOP_STATISTICS, distance_hop_statistics
from mmtutorial.models.vqa_heads import DistanceBiasedHop
from mmtutorial.models.vqa_training import (
    HeldDistanceBias,
    RelationalFirstHopDelay,
    curriculum_switch_epoch,
    evaluate_vqa,
    longest_curriculum,
    make_adamw,
    train_vqa,
)
from mmtutorial.training import History, seed_everything
from mmtutorial.training.schedules import recalibrated_batchnorm

SIZES = {"n_train": 40, "n_val": 10, "n_test": 4, "data_seed": 5}


@pytest.fixture(scope="module")
def data():
    return SortOfClevr("train", tokenizer="words", **SIZES), SortOfClevr("val", tokenizer="words", **SIZES)


def _model(train: SortOfClevr, head: str = "film") -> VQAModel:
    return VQAModel(
        VQAConfig(
            head=head,
            vocab_size=len(train.tokenizer),
            pad_id=train.pad_token_id,
            dim=16,
            hidden=16,
            cnn_channels=8,
            heads=2,
        )
    )


@pytest.mark.parametrize("curriculum_epochs", [0, 2])
def test_one_history_over_both_phases_ending_with_the_best_epochs_weights(data, curriculum_epochs):
    train, val = data
    model = _model(train)
    history = train_vqa(
        model,
        train,
        val,
        images_per_batch=8,
        epochs=3,
        curriculum_epochs=curriculum_epochs,
        lr=3e-3,
        generator=seed_everything(0),
        progress=False,
    )
    assert history.column("epoch") == list(range(1, curriculum_epochs + 4))
    assert history.column("phase") == ["non-relational"] * curriculum_epochs + ["all"] * 3
    accuracies = history.column("val_acc")
    assert history.best_epoch == 1 + accuracies.index(max(accuracies)) and history.restored_best
    # the model holds the best epoch's weights (with the statistics it was evaluated with)
    again = evaluate_vqa(model, val.batches(8, by_image=True))
    assert again["acc"] == pytest.approx(max(accuracies), abs=1e-9)


def test_a_weight_average_is_what_is_validated_and_kept(data):
    """With ``ema_decay`` the BatchNorm-recalibrated average is validated, the best average
    kept, and the training trajectory is the one without it."""
    train, val = data
    runs = {}
    for decay in (None, 0.9):
        model = _model(train)
        runs[decay] = (
            model,
            train_vqa(
                model,
                train,
                val,
                images_per_batch=8,
                epochs=3,
                lr=3e-3,
                ema_decay=decay,
                generator=seed_everything(0),
                progress=False,
            ),
        )
    (_, plain_history), (model, history) = runs[None], runs[0.9]
    assert history.ema_decay == 0.9 and history.column("train_loss") == plain_history.column("train_loss")
    assert history.column("val_acc") != plain_history.column("val_acc")
    accuracies = history.column("val_acc")
    assert history.best_epoch == 1 + accuracies.index(max(accuracies)) and history.restored_best
    again = evaluate_vqa(model, val.batches(8, by_image=True))
    assert again["acc"] == pytest.approx(max(accuracies), abs=1e-9)


def test_the_schedule_warms_up_then_decays_over_both_phases(data):
    train, val = data
    history = train_vqa(
        _model(train),
        train,
        val,
        images_per_batch=8,
        epochs=3,
        curriculum_epochs=1,
        lr=3e-3,
        warmup_fraction=0.6,
        generator=seed_everything(0),
        progress=False,
    )
    lrs = history.column("lr")
    assert lrs[0] < max(lrs) <= 3e-3 and lrs[-1] < max(lrs) / 10, lrs
    constant = train_vqa(
        _model(train),
        train,
        val,
        images_per_batch=8,
        epochs=2,
        schedule="constant",
        lr=3e-3,
        generator=seed_everything(0),
        progress=False,
    )
    assert constant.column("lr") == [3e-3, 3e-3]


def test_the_curriculum_switches_at_its_epoch():
    curriculum = Curriculum(["first"], ["then", "then"], switch_epoch=2)
    seen = []
    for epoch in range(4):
        curriculum.set_epoch(epoch)
        seen.append((list(curriculum), len(curriculum)))
    assert seen == [(["first"], 1), (["first"], 1), (["then", "then"], 2), (["then", "then"], 2)]


def test_batchnorm_statistics_are_recomputed_from_the_training_batches(data):
    train, _ = data
    model = _model(train, head="concat")
    batches = train.batches(8, by_image=True)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:  # statistics that belong to no data
        norm.running_mean.fill_(5.0)
        norm.running_var.fill_(9.0)
    recalibrated_batchnorm(batches, max_batches=3)(model)
    assert all(n.running_mean.abs().max() < 5.0 for n in norms)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"schedule": "linear"}, "schedule='linear': expected one of"),
        ({"curriculum_epochs": -1}, "curriculum_epochs=-1"),
        ({"epochs": 0}, "epochs=0"),
        ({"ema_decay": 1.0}, "ema_decay=1.0"),
        ({"head_lr": 0.0}, "head_lr=0.0: expected a finite number > 0"),
    ],
)
def test_bad_recipe_values_are_clear_errors(data, overrides, message):
    train, val = data
    with pytest.raises(ValueError, match=message):
        train_vqa(_model(train), train, val, progress=False, **overrides)


def test_the_head_trains_at_its_own_learning_rate_and_the_encoders_at_lr(data):
    """With a near-zero ``head_lr`` the fusion head's weights stay where they started while the
    encoders train; with ``head_lr == lr`` training is exactly that of one learning rate."""
    train, val = data
    options = {"images_per_batch": 8, "epochs": 2, "lr": 3e-3, "keep_best": False, "progress": False}
    seed_everything(0)
    frozen_head = _model(train)
    start = {name: p.detach().clone() for name, p in frozen_head.named_parameters()}
    train_vqa(frozen_head, train, val, head_lr=1e-12, generator=seed_everything(0), **options)
    moved = {name: (p - start[name]).abs().max().item() for name, p in frozen_head.named_parameters()}
    assert max(v for name, v in moved.items() if name.startswith("head.")) < 1e-9
    assert max(v for name, v in moved.items() if name.startswith("image_encoder.")) > 1e-4

    runs = []
    for head_lr in (None, 3e-3):
        seed_everything(0)
        model = _model(train)
        train_vqa(model, train, val, head_lr=head_lr, generator=seed_everything(0), **options)
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_make_adamw_gives_the_head_its_own_rate_and_names_bad_values(data):
    train, _ = data
    model = _model(train)
    optimizer = make_adamw(model, lr=2e-3, head_lr=5e-4)
    head = {id(p) for p in model.head.parameters()}
    for group in optimizer.param_groups:
        in_head = {id(p) in head for p in group["params"]}
        assert len(in_head) == 1  # a group is all head or all encoders
        assert group["lr"] == (5e-4 if in_head.pop() else 2e-3)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="head_lr=0.001 needs a model with a .head module"):
        make_adamw(torch.nn.Linear(3, 2), head_lr=1e-3)
    with pytest.raises(ValueError, match="head_lr=-1.0: expected a finite number > 0"):
        make_adamw(model, head_lr=-1.0)


def test_keeping_the_best_epoch_needs_a_validation_split(data):
    train, _ = data
    with pytest.raises(ValueError, match="keep_best=True needs val"):
        train_vqa(_model(train), train, None, progress=False)


def test_a_probe_sees_every_validated_model_and_changes_no_weight(data):
    """``probe`` runs on the average before each validation; its result is kept per epoch,
    and the trained weights are the same as without it (the probe only reads)."""
    train, val = data

    def trained(probe):
        generator = seed_everything(0)
        model = _model(train, head="cross_attention")
        history = train_vqa(
            model,
            train,
            val,
            images_per_batch=8,
            epochs=2,
            curriculum_epochs=1,
            lr=3e-3,
            ema_decay=0.9,
            generator=generator,
            progress=False,
            probe=probe,
        )
        return model, history

    plain, _ = trained(None)
    stats = partial(distance_hop_statistics, batches=val.batches(8, by_image=True))
    probed, history = trained(stats)
    assert all(
        torch.equal(a, b) for a, b in zip(plain.state_dict().values(), probed.state_dict().values(), strict=True)
    )
    assert [set(row["probe"]) for row in history.epochs] == [set(stats(probed))] * 3
    with pytest.raises(TypeError, match="probe=3: expected a function of the model"):
        train_vqa(_model(train), train, val, epochs=1, probe=3, progress=False)


def test_distance_hop_statistics_per_family(data):
    """Per family: accuracy as evaluate_vqa measures it, the biased hop's w and u, and where
    the two hops' weights lie; a head without a biased hop is a clear error."""
    train, val = data
    model = _model(train, head="cross_attention").train()
    stats = distance_hop_statistics(model, val.batches(8, by_image=True))
    assert model.training  # left in the mode it was in
    seen = torch.cat([batch["family"] for batch in val.batches(8, by_image=True)]).unique().tolist()
    families = {FAMILY_NAMES[family] for family in seen}
    assert set(stats) == families and set(stats["closest shape"]) == set(HOP_STATISTICS)
    expected = evaluate_vqa(model, val.batches(8, by_image=True))["acc_by_family"]
    for family, row in stats.items():
        assert row["acc"] == pytest.approx(expected[family], abs=1e-4)
        assert 0 < row["hop2_on_found"] <= row["hop2_peak"] <= 1 and 0 < row["hop1_peak"] <= 1
    hop = model.head.biased_hops[0]
    assert hop.bias_terms.shape == (len(hop.weights), 1, 2)
    with pytest.raises(ValueError, match="needs a cross_attention head with distance_bias=True"):
        distance_hop_statistics(_model(train, head="film"), val.batches(8, by_image=True))


def _hop_weights(model: VQAModel, name: str) -> list[torch.Tensor]:
    """Copies of the parameters of submodule ``name`` (e.g. ``"bias_scales"``: w and u) of
    every distance-biased hop."""
    hops = [m for m in model.modules() if isinstance(m, DistanceBiasedHop)]
    return [p.detach().clone() for hop in hops for p in getattr(hop, name).parameters()]


def _unchanged(before: list[torch.Tensor], after: list[torch.Tensor]) -> bool:
    return all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def _probed_cross_attention(data, snapshot, **options):
    """Train a seeded cross_attention model (by default 2 curriculum epochs and 1 on all
    questions); return it, its history, ``snapshot(model)`` before training and after
    each epoch (taken when the model is validated)."""
    train, val = data
    generator = seed_everything(0)  # before the model: its initial weights too
    model = _model(train, head="cross_attention")
    initial, seen = snapshot(model), []
    recipe = {"images_per_batch": 8, "epochs": 1, "curriculum_epochs": 2, "lr": 3e-3, "keep_best": False}
    history = train_vqa(
        model,
        train,
        val,
        generator=generator,
        progress=False,
        probe=lambda m: seen.append(snapshot(m)),
        **{**recipe, **options},
    )
    return model, history, initial, seen


@pytest.mark.parametrize("hold", [False, True])
def test_a_held_distance_bias_trains_only_after_the_curriculum(data, hold):
    """``hold_distance_bias``: w and u of the biased hop keep their initial weights through
    the curriculum (every other weight trains) and train from the first epoch on all questions."""

    def snapshot(m):
        return _hop_weights(m, "bias_scales"), [p.detach().clone() for p in m.image_encoder.parameters()]

    _, _, (initial, others), seen = _probed_cross_attention(data, snapshot, hold_distance_bias=hold)
    for epoch, (strengths, cnn) in enumerate(seen, 1):
        assert not _unchanged(others, cnn)  # the rest trains
        assert _unchanged(initial, strengths) == (hold and epoch <= 2), f"epoch {epoch}"


def test_the_held_strengths_start_with_fresh_optimizer_moments_at_the_switch(data):
    train, _ = data
    model = _model(train, head="cross_attention")
    optimizer = torch.optim.AdamW(model.parameters(), weight_decay=0.0)  # AdamW's default 0.01 is refused
    batches = Curriculum([], [], switch_epoch=2)
    held = HeldDistanceBias(batches, model, optimizer, batches)
    (hop,) = held.hops
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()
    held.set_epoch(1)
    assert not hop.learn_strengths and all(p in optimizer.state for p in hop.bias_scales.parameters())
    held.set_epoch(2)
    assert hop.learn_strengths and batches.epoch == 2
    assert not any(p in optimizer.state for p in hop.bias_scales.parameters())
    assert all(p in optimizer.state for p in model.image_encoder.parameters())  # the rest keep theirs


def test_the_hold_ends_where_the_curriculum_switches_even_when_the_switch_moves(data):
    """An adaptive curriculum moves its switch; the hold reads it, so it ends there too."""
    train, _ = data
    model = _model(train, head="cross_attention")
    optimizer = torch.optim.AdamW(model.parameters(), weight_decay=0.0)
    curriculum = Curriculum([], [], switch_epoch=5)
    held = HeldDistanceBias(curriculum, model, optimizer, curriculum)
    (hop,) = held.hops
    held.set_epoch(3)
    assert not hop.learn_strengths
    curriculum.switch_epoch = 3  # what train_vqa's after_epoch does when the curriculum ends early
    held.set_epoch(3)
    assert hop.learn_strengths
    with pytest.raises(TypeError, match="curriculum=int: expected the Curriculum whose switch ends the hold"):
        HeldDistanceBias(curriculum, model, optimizer, 3)


@pytest.mark.parametrize("whole_hop", [False, True])
def test_a_held_biased_hop_keeps_every_weight_through_the_curriculum(data, whole_hop):
    """``hold_biased_hop``: the hop's queries, keys, values, output and norm keep their
    initial weights through the curriculum as w and u do (``hold_distance_bias`` alone
    trains them), and all of them train on all questions."""
    parts = ("bias_scales", "query", "key", "value", "out", "norm")
    model, _, initial, seen = _probed_cross_attention(
        data,
        lambda m: {name: _hop_weights(m, name) for name in parts},
        hold_distance_bias=not whole_hop,
        hold_biased_hop=whole_hop,
    )
    for epoch, weights in enumerate(seen, 1):
        for name in parts:
            held = epoch <= 2 and (whole_hop or name == "bias_scales")
            assert _unchanged(initial[name], weights[name]) == held, f"{name}, epoch {epoch}"
    hop = next(m for m in model.modules() if isinstance(m, DistanceBiasedHop))
    assert all(p.grad is None or p.grad.abs().sum() > 0 for p in hop.parameters())  # no hook left behind


def test_a_held_biased_hop_starts_with_fresh_optimizer_moments_and_no_hooks_at_the_switch(data):
    train, _ = data
    model = _model(train, head="cross_attention")
    optimizer = torch.optim.AdamW(model.parameters(), weight_decay=0.0)
    curriculum = Curriculum([], [], switch_epoch=1)
    held = HeldDistanceBias(curriculum, model, optimizer, curriculum, whole_hop=True)
    (hop,) = held.hops
    held.set_epoch(0)
    model(next(iter(train.batches(4, by_image=True)))).sum().backward()
    assert all(p.grad is not None and not p.grad.any() for p in hop.parameters())  # zeros, not None (DDP)
    assert any(p.grad.any() for p in model.image_encoder.parameters())  # the rest trains
    optimizer.step()
    held.set_epoch(1)
    assert not any(p in optimizer.state for p in hop.parameters()) and not held._hooks
    optimizer.zero_grad()
    model(next(iter(train.batches(4, by_image=True)))).sum().backward()
    assert any(p.grad.any() for p in hop.query.parameters())


@pytest.mark.parametrize("option", ["hold_biased_hop", "hold_distance_bias"])
def test_holding_the_hop_refuses_weight_decay(data, option):
    train, val = data
    with pytest.raises(ValueError, match=f"{option}=True with weight_decay=0.01: AdamW would shrink"):
        train_vqa(
            _model(train, head="cross_attention"),
            train,
            val,
            curriculum_epochs=1,
            weight_decay=0.01,
            progress=False,
            **{option: True},
        )


def test_a_hold_built_directly_refuses_an_optimizer_that_decays_a_held_weight(data):
    """The check is the hold's own: only a group that decays a held parameter is refused."""
    train, _ = data
    model = _model(train, head="cross_attention")
    (hop,) = [m for m in model.modules() if isinstance(m, DistanceBiasedHop)]
    held = list(hop.bias_scales.parameters())
    others = [p for p in model.parameters() if all(p is not q for q in held)]
    batches = train.batches(4, by_image=True)
    decays_others = torch.optim.AdamW([{"params": others, "weight_decay": 0.1}, {"params": held, "weight_decay": 0.0}])
    curriculum = Curriculum([], [], switch_epoch=1)
    HeldDistanceBias(batches, model, decays_others, curriculum)  # the held weights are not decayed
    with pytest.raises(ValueError, match="hold_distance_bias=True with weight_decay=0.1: AdamW"):
        HeldDistanceBias(batches, model, torch.optim.AdamW(model.parameters(), weight_decay=0.1), curriculum)


@pytest.mark.parametrize(
    ("head", "curriculum_epochs", "message"),
    [
        ("film", 2, "hold_distance_bias=True needs a cross_attention model with distance_bias=True"),
        ("cross_attention", 0, "needs curriculum_epochs >= 1, got 0"),
    ],
)
def test_holding_the_distance_bias_needs_a_biased_hop_and_a_curriculum(data, head, curriculum_epochs, message):
    train, val = data
    with pytest.raises(ValueError, match=message):
        train_vqa(
            _model(train, head=head),
            train,
            val,
            curriculum_epochs=curriculum_epochs,
            hold_distance_bias=True,
            progress=False,
        )


def _history(nonrelational: list[float]) -> History:
    rows = [{"epoch": e, "val_acc_by_group": {"non-relational": a}} for e, a in enumerate(nonrelational, 1)]
    return History(epochs=rows)


@pytest.mark.parametrize(
    ("nonrelational", "switch"),
    [
        ([0.5, 0.99, 0.99], 2),  # reached at the minimum: the curriculum ends there
        ([0.99, 0.5, 0.7, 0.98], 4),  # reached before the minimum does not count
        ([0.5, 0.6, 0.7], 5),  # not yet reached: as long as it may be
        ([0.5, 0.6, 0.7, 0.8, 0.99, 0.99], 5),  # never in time: the maximum
        ([], 5),
    ],
)
def test_an_adaptive_curriculum_ends_at_the_first_good_epoch_from_its_minimum(nonrelational, switch):
    assert curriculum_switch_epoch(_history(nonrelational), 2, 5, 0.98) == switch


def _adaptive_run(data, **options):
    return _probed_cross_attention(
        data,
        lambda m: _hop_weights(m, "bias_scales"),
        epochs=3,
        curriculum_epochs=1,
        hold_distance_bias=True,
        **options,
    )


def test_a_curriculum_reached_in_time_trains_exactly_as_a_fixed_one(data):
    fixed, fixed_history, _, _ = _adaptive_run(data)
    adaptive, adaptive_history, _, _ = _adaptive_run(data, curriculum_until=1e-6)
    assert adaptive_history.column("phase") == fixed_history.column("phase") == ["non-relational"] + ["all"] * 3
    assert _unchanged(list(fixed.state_dict().values()), list(adaptive.state_dict().values()))


def test_a_curriculum_not_reached_lasts_its_maximum_and_holds_the_distance_bias_throughout(data):
    _, history, initial, seen = _adaptive_run(data, curriculum_until=1.0, max_curriculum_epochs=3)
    assert max(history.column("val_acc_by_group"), key=lambda g: g["non-relational"])["non-relational"] < 1.0
    assert history.column("phase") == ["non-relational"] * 3 + ["all"]
    assert [_unchanged(initial, s) for s in seen] == [True] * 3 + [False]  # held while on the curriculum
    assert history.column("epoch") == [1, 2, 3, 4]  # the total stays curriculum_epochs + epochs


def test_the_longest_curriculum_is_the_fixed_one_or_the_bound_and_errors_use_the_callers_names():
    """Without curriculum_until the curriculum is curriculum_epochs long; with it, at most
    max_curriculum_epochs (default half the epochs more); errors name the options as asked."""
    assert longest_curriculum(10, 10) == 10
    assert longest_curriculum(10, 10, curriculum_until=0.98) == 15
    assert longest_curriculum(10, 10, curriculum_until=0.98, max_curriculum_epochs=19) == 19
    flags = {"max_curriculum_epochs": "--max-curriculum-epochs", "curriculum_epochs": "--curriculum-epochs"}
    with pytest.raises(
        ValueError, match=r"^--max-curriculum-epochs=20: expected from --curriculum-epochs \(10\) to 19"
    ):
        longest_curriculum(10, 10, curriculum_until=0.98, max_curriculum_epochs=20, names=flags)
    with pytest.raises(ValueError, match="^max_curriculum_epochs=12 bounds curriculum_until's extension"):
        longest_curriculum(10, 10, max_curriculum_epochs=12)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_curriculum_epochs": 3}, "max_curriculum_epochs=3 bounds curriculum_until's extension"),
        ({"curriculum_until": 0.0}, "curriculum_until=0.0"),
        ({"curriculum_until": 1.5}, "curriculum_until=1.5"),
        ({"curriculum_until": 0.9, "max_curriculum_epochs": 4}, "max_curriculum_epochs=4: expected from"),
        ({"curriculum_until": 0.9, "curriculum_epochs": 0}, "curriculum_until needs curriculum_epochs >= 1, got 0"),
        ({"curriculum_until": 0.9, "val": None, "keep_best": False}, "curriculum_until needs val"),
    ],
)
def test_bad_adaptive_curriculum_values_are_clear_errors(data, options, message):
    train, val = data
    options = {"val": val, "curriculum_epochs": 1, "epochs": 3, **options}
    with pytest.raises(ValueError, match=message):
        train_vqa(_model(train), train, progress=False, **options)


def _first_hop_gradient(model: VQAModel, batch: dict, rows: torch.Tensor | None, which: torch.Tensor) -> float:
    """The size of the gradient that the loss of the questions ``which`` sends the first hop."""
    model.zero_grad()
    given = batch if rows is None else {**batch, FIRST_HOP_ROWS: rows}
    logits = model(given)
    torch.nn.functional.cross_entropy(logits[which], batch["answer"][which]).backward()
    return sum(float(p.grad.abs().sum()) for p in model.head.attend.parameters() if p.grad is not None)


def test_rows_left_out_of_first_hop_rows_read_the_first_hop_but_cannot_train_it(data):
    """``batch["first_hop_rows"]``: the same answers; the relational questions left out send
    the first hop no gradient, the non-relational ones still do."""
    train, _ = data
    torch.manual_seed(0)
    model = _model(train, head="cross_attention")
    assert model.head.biased_hops  # the distance-biased head, as train_vqa's option needs
    batch = next(iter(train.batches(4, by_image=True)))
    relational = batch["qtype"] == 1
    with torch.no_grad():
        assert torch.equal(model(batch), model({**batch, FIRST_HOP_ROWS: ~relational}))
    assert _first_hop_gradient(model, batch, None, relational) > 0
    assert _first_hop_gradient(model, batch, ~relational, relational) == 0.0
    assert _first_hop_gradient(model, batch, ~relational, ~relational) > 0


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (torch.ones(3, dtype=torch.bool), r"first_hop_rows: expected a bool tensor of shape \(80,\), got torch.bool"),
        (torch.ones(80), r"expected a bool tensor of shape \(80,\), got torch.float32 of shape \(80,\)"),
    ],
)
def test_first_hop_rows_of_the_wrong_kind_are_refused(data, rows, message):
    train, _ = data
    batch = next(iter(train.batches(4, by_image=True)))
    assert len(batch["qtype"]) == 80
    with pytest.raises(ValueError, match=message):
        _model(train, head="cross_attention")({**batch, FIRST_HOP_ROWS: rows})
    with pytest.raises(ValueError, match="read by the cross_attention head only; this model's head is 'film'"):
        _model(train, head="film")({**batch, FIRST_HOP_ROWS: rows})


def test_relational_first_hop_delay_marks_relational_rows_from_the_switch_plus_the_delay():
    """Non-relational rows always train the first hop; relational ones from epoch
    ``switch_epoch + delay`` (0-based) on; ``set_epoch`` reaches the batches it wraps."""
    batch = {"qtype": torch.tensor([0, 1, 1, 0])}
    inner = Curriculum([batch], [batch], switch_epoch=2)
    delayed = RelationalFirstHopDelay(inner, inner, delay=2)
    marked = []
    for epoch in range(6):
        delayed.set_epoch(epoch)
        (seen,) = list(delayed)
        marked.append(seen[FIRST_HOP_ROWS].tolist())
    assert inner.epoch == 5 and len(delayed) == 1
    assert marked == [[True, False, False, True]] * 4 + [[True] * 4] * 2
    with pytest.raises(ValueError, match="relational_first_hop_delay"):
        RelationalFirstHopDelay(inner, inner, delay=0)


def test_train_vqa_leaves_the_relational_questions_out_of_the_first_hop_for_the_delay(data):
    """Through ``train_vqa`` (1 curriculum epoch, a delay of 1, 2 epochs on all questions):
    every training batch carries the rows; in the first epoch on all questions exactly the
    relational ones are left out, in the next none is."""
    train, val = data
    model = _model(train, head="cross_attention")
    forward, seen = model.forward, []

    def recording(batch, **options):
        if FIRST_HOP_ROWS in batch:  # training batches (validation ones never carry it)
            seen.append((batch[FIRST_HOP_ROWS].clone(), batch["qtype"].clone()))
        return forward(batch, **options)

    model.forward = recording
    train_vqa(
        model,
        train,
        val,
        images_per_batch=8,
        epochs=2,
        curriculum_epochs=1,
        relational_first_hop_delay=1,
        generator=seed_everything(0),
        recalibrate_bn=False,
        progress=False,
    )
    per_epoch = len(seen) // 3
    assert len(seen) == 3 * per_epoch > 0
    curriculum, delayed, free = seen[:per_epoch], seen[per_epoch : 2 * per_epoch], seen[2 * per_epoch :]
    assert all(rows.all() and (qtype == 0).all() for rows, qtype in curriculum)
    assert all(torch.equal(rows, qtype == 0) for rows, qtype in delayed)
    assert any((qtype == 1).any() for _, qtype in delayed)
    assert all(rows.all() for rows, _ in free)


@pytest.mark.parametrize(
    ("head", "delay", "message"),
    [
        ("film", 1, "relational_first_hop_delay=1 needs a cross_attention model with distance_bias=True"),
        ("cross_attention", -1, "relational_first_hop_delay"),
    ],
)
def test_a_relational_first_hop_delay_needs_a_biased_cross_attention_head(data, head, delay, message):
    train, val = data
    with pytest.raises(ValueError, match=message):
        train_vqa(_model(train, head=head), train, val, relational_first_hop_delay=delay, progress=False)
