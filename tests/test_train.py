"""fit / evaluate: learning, per-group accuracy, NaN detection, early stopping, resume."""

import pytest
import torch
from torch import nn

from mmtutorial.training import evaluate, fit, load_checkpoint, seed_everything, seeded_generator


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 3)

    def forward(self, batch):
        return self.layer(batch["x"])


def toy_data(n=240, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    label = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    group = (x[:, 2] > 0).long()
    return {"x": x, "label": label, "group": group}


def loader(data, batch_size=32, generator=None):
    dataset = torch.utils.data.StackDataset(**data)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=generator is not None, generator=generator
    )


def test_fit_learns_and_reports_groups():
    seed_everything(0)
    model = Linear()
    history = fit(
        model,
        loader(toy_data(), generator=seeded_generator(0)),
        epochs=15,
        optimizer=torch.optim.Adam(model.parameters(), lr=0.05),
        val_batches=loader(toy_data(seed=1)),
        group_key="group",
        group_names=["neg", "pos"],
        progress=False,
    )
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]
    assert history.last["val_acc"] > 0.7  # the majority class is 0.5
    assert set(history.last["val_acc_by_group"]) == {"neg", "pos"}
    result = evaluate(model, loader(toy_data(seed=1)), group_key="group")
    assert result["acc"] == pytest.approx(history.last["val_acc"]) and result["n"] == 240


def test_nan_loss_stops_with_a_clear_message():
    model = Linear()
    data = toy_data()
    data["x"][5, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"loss became nan at epoch 1, step 1"):
        fit(model, loader(data), epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)


def test_nan_in_a_later_step_is_named_exactly():
    model = Linear()
    data = toy_data()
    data["x"][100, 0] = float("nan")  # batch 4 of 32
    with pytest.raises(FloatingPointError, match=r"at epoch 1, step 4:"):
        fit(model, loader(data), epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)


def test_max_seconds_stops_after_the_epoch_that_crosses_the_budget():
    model = Linear()
    history = fit(
        model,
        loader(toy_data()),
        epochs=50,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        max_seconds=0.0,
        progress=False,
    )
    assert len(history.epochs) == 1
    row = history.last
    assert 0 < row["train_seconds"] <= row["seconds"]


def test_early_stopping_restores_the_best_weights():
    seed_everything(0)
    model = Linear()
    history = fit(
        model,
        loader(toy_data(), generator=seeded_generator(0)),
        epochs=40,
        optimizer=torch.optim.SGD(model.parameters(), lr=2.0),  # far too high: validation gets worse
        val_batches=loader(toy_data(seed=1)),
        early_stopping_patience=2,
        progress=False,
    )
    best = min(history.column("val_loss"))
    assert history.stopped_early and len(history.epochs) < 40
    assert evaluate(model, loader(toy_data(seed=1)))["loss"] == pytest.approx(best, rel=1e-5)
    with pytest.raises(ValueError, match="early stopping needs val_batches"):
        fit(
            model,
            loader(toy_data()),
            epochs=1,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            early_stopping_patience=2,
            progress=False,
        )


def run_training(tmp_path, epochs, resume, name="ckpt.pt", after_epoch=None):
    seed_everything(0)
    model = Linear()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    generator = seeded_generator(0)
    history = fit(
        model,
        loader(toy_data(), generator=generator),
        epochs=epochs,
        optimizer=optimizer,
        val_batches=loader(toy_data(seed=1)),
        checkpoint_path=tmp_path / name,
        resume=resume,
        generator=generator,
        progress=False,
        after_epoch=after_epoch,
    )
    return model, history


def test_resume_reaches_the_same_result_as_an_uninterrupted_run(tmp_path):
    full_model, full_history = run_training(tmp_path, epochs=6, resume=False, name="full.pt")
    run_training(tmp_path, epochs=3, resume=False)  # interrupted after 3 epochs
    resumed_model, resumed_history = run_training(tmp_path, epochs=6, resume=True)
    assert len(resumed_history.epochs) == 6
    for a, b in zip(full_model.parameters(), resumed_model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert resumed_history.column("val_loss") == full_history.column("val_loss")
    state = load_checkpoint(tmp_path / "ckpt.pt")  # weights_only=True
    assert set(state) >= {"model", "optimizer", "history", "rng"}


def test_after_epoch_sees_every_finished_epoch_and_the_restored_ones_after_a_resume(tmp_path):
    seen = []

    def after_epoch(history):
        seen.append([row["epoch"] for row in history.epochs])
        assert all("val_acc" in row for row in history.epochs)  # validation included

    run_training(tmp_path, epochs=2, resume=False, after_epoch=after_epoch)
    assert seen == [[1], [1, 2]]
    seen.clear()
    run_training(tmp_path, epochs=3, resume=True, after_epoch=after_epoch)
    assert seen == [[1, 2], [1, 2, 3]]  # once for the restored epochs, then after the new one
    with pytest.raises(TypeError, match="after_epoch=3: expected a function of the history"):
        run_training(tmp_path, epochs=1, resume=False, after_epoch=3)


def test_bad_arguments():
    model = Linear()
    with pytest.raises(ValueError, match="epochs=0: expected a positive int"):
        fit(model, [], epochs=0, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="precision='fp16'"):
        fit(model, [], epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), precision="fp16")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint("/nonexistent/ckpt.pt")


def test_bf16_autocast_runs_on_cpu():
    seed_everything(0)
    model = Linear()
    history = fit(
        model,
        loader(toy_data()),
        epochs=2,
        optimizer=torch.optim.Adam(model.parameters(), lr=0.05),
        precision="bf16",
        progress=False,
    )
    assert torch.isfinite(torch.tensor(history.column("train_loss"))).all()


def test_tensor_batches_cover_every_sample_once_and_shuffle_repeatably():
    from mmtutorial.data.batching import TensorBatches

    data = {"x": torch.arange(10), "y": torch.arange(10) * 2}
    batches = list(TensorBatches(data, 4))
    assert [len(b["x"]) for b in batches] == [4, 4, 2] and len(TensorBatches(data, 4)) == 3
    shuffled = TensorBatches(data, 3, shuffle=True, generator=seeded_generator(0))
    first, second = [torch.cat([b["x"] for b in shuffled]) for _ in range(2)]
    assert sorted(first.tolist()) == list(range(10)) and not torch.equal(first, second)
    assert all(torch.equal(b["y"], b["x"] * 2) for b in shuffled)
    again = TensorBatches(data, 3, shuffle=True, generator=seeded_generator(0))
    assert torch.equal(torch.cat([b["x"] for b in again]), first)
    with pytest.raises(ValueError, match="same length"):
        TensorBatches({"x": torch.arange(3), "y": torch.arange(4)}, 2)


# ---------------------------------------------------------------------------------
# The recipe: a per-batch schedule, the best epoch's weights, a curriculum, resume
# ---------------------------------------------------------------------------------


class CountingCurriculum:
    """Records which epochs fit announced (a Curriculum would switch batches on them)."""

    def __init__(self, batches):
        self.batches, self.epochs = batches, []

    def set_epoch(self, epoch):
        self.epochs.append(epoch)

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def run_recipe(tmp_path, epochs, resume, name, total_epochs=6):
    from mmtutorial.training.schedules import warmup_cosine

    seed_everything(0)
    model = Linear()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    generator = seeded_generator(0)
    batches = CountingCurriculum(loader(toy_data(), generator=generator))
    scheduler = warmup_cosine(optimizer, total_epochs * len(batches), warmup_fraction=0.25)
    history = fit(
        model,
        batches,
        epochs=epochs,
        optimizer=optimizer,
        scheduler=scheduler,
        scheduler_interval="step",
        val_batches=loader(toy_data(seed=1)),
        monitor="val_acc",
        keep_best=True,
        checkpoint_path=tmp_path / name,
        resume=resume,
        generator=generator,
        progress=False,
    )
    return model, history, batches, scheduler


def test_the_schedule_steps_per_batch_and_resumes_exactly(tmp_path):
    full, full_history, full_batches, scheduler = run_recipe(tmp_path, 6, False, "full.pt")
    assert scheduler.last_epoch == 6 * len(full_batches), "one scheduler step per optimizer step"
    lrs = full_history.column("lr")
    assert lrs[0] > lrs[-1] and max(lrs) <= 0.05 + 1e-9, "warm-up, then decay"
    run_recipe(tmp_path, 3, False, "cut.pt")  # interrupted after 3 epochs
    resumed, resumed_history, resumed_batches, _ = run_recipe(tmp_path, 6, True, "cut.pt")
    assert resumed_batches.epochs == [3, 4, 5], "set_epoch tells the batches where training resumed"
    for a, b in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    assert resumed_history.column("val_acc") == full_history.column("val_acc")
    assert resumed_history.best_epoch == full_history.best_epoch


def test_keep_best_ends_with_the_best_epochs_weights():
    seed_everything(0)
    model = Linear()
    history = fit(
        model,
        loader(toy_data(), generator=seeded_generator(0)),
        epochs=8,
        optimizer=torch.optim.SGD(model.parameters(), lr=3.0),  # too high: accuracy jumps around
        val_batches=loader(toy_data(seed=1)),
        monitor="val_acc",
        keep_best=True,
        progress=False,
    )
    accuracies = history.column("val_acc")
    assert history.best_epoch == 1 + accuracies.index(max(accuracies)) and history.restored_best
    assert evaluate(model, loader(toy_data(seed=1)))["acc"] == max(accuracies)
    assert max(accuracies) > accuracies[-1], "the test needs a last epoch worse than the best"


def test_recipe_arguments_are_checked():
    model = Linear()
    common = {"epochs": 1, "optimizer": torch.optim.SGD(model.parameters(), lr=0.1), "progress": False}
    with pytest.raises(ValueError, match="scheduler_interval='batch': expected one of"):
        fit(model, loader(toy_data()), scheduler_interval="batch", **common)
    with pytest.raises(ValueError, match="monitor='accuracy': expected one of"):
        fit(model, loader(toy_data()), monitor="accuracy", **common)
    with pytest.raises(ValueError, match="need val_batches"):
        fit(model, loader(toy_data()), keep_best=True, **common)


class Normalised(nn.Module):
    """A model with BatchNorm running statistics, which the weight average carries too."""

    def __init__(self):
        super().__init__()
        self.layer, self.norm, self.out = nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)

    def forward(self, batch):
        return self.out(torch.relu(self.norm(self.layer(batch["x"]))))


def run_averaged(tmp_path=None, epochs=4, ema_decay=0.9, resume=False, name="ema.pt", keep_best=False):
    seed_everything(0)
    model = Normalised()
    generator = seeded_generator(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    steps = []  # the raw weights after every optimizer step
    optimizer.register_step_post_hook(lambda *_: steps.append([p.detach().clone() for p in model.parameters()]))
    history = fit(
        model,
        loader(toy_data(), generator=generator),
        epochs=epochs,
        optimizer=optimizer,
        val_batches=loader(toy_data(seed=1)),
        monitor="val_acc",
        keep_best=keep_best,
        ema_decay=ema_decay,
        checkpoint_path=None if tmp_path is None else tmp_path / name,
        resume=resume,
        generator=generator,
        progress=False,
    )
    return model, history, steps


def test_the_weight_average_is_validated_and_returned_while_training_is_unchanged():
    plain, plain_history, plain_steps = run_averaged(ema_decay=None)
    model, history, steps = run_averaged(ema_decay=0.9)
    assert history.ema_decay == 0.9 and plain_history.ema_decay is None
    for a, b in zip(plain_steps[-1], steps[-1], strict=True):
        assert torch.equal(a, b), "the average never feeds back into training"
    expected = [w.clone() for w in steps[0]]  # starts at the first step's weights
    for weights in steps[1:]:
        expected = [0.9 * e + 0.1 * w for e, w in zip(expected, weights, strict=True)]
    for e, p in zip(expected, model.parameters(), strict=True):
        assert torch.allclose(e, p, atol=1e-6), "the model ends with the average, updated every step"
    assert not torch.equal(next(model.parameters()), steps[-1][0])
    # what was validated last is what the model now computes (with the same BatchNorm statistics)
    assert evaluate(model, loader(toy_data(seed=1)))["acc"] == history.column("val_acc")[-1]
    assert history.column("val_acc") != plain_history.column("val_acc")


def test_keep_best_with_a_weight_average_keeps_the_best_average():
    model, history, _ = run_averaged(epochs=6, ema_decay=0.99, keep_best=True)
    accuracies = history.column("val_acc")
    assert history.best_epoch == 1 + accuracies.index(max(accuracies)) and history.restored_best
    assert evaluate(model, loader(toy_data(seed=1)))["acc"] == max(accuracies)


def test_a_weight_average_resumes_exactly_and_only_with_the_same_decay(tmp_path):
    full, full_history, _ = run_averaged(tmp_path, epochs=5, name="full.pt")
    run_averaged(tmp_path, epochs=2)  # interrupted after 2 epochs
    resumed, resumed_history, _ = run_averaged(tmp_path, epochs=5, resume=True)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert resumed_history.column("val_acc") == full_history.column("val_acc")
    assert load_checkpoint(tmp_path / "ema.pt")["ema_decay"] == 0.9
    with pytest.raises(ValueError, match=r"ema.pt was saved with ema_decay=0.9: resume with the same value, got "):
        run_averaged(tmp_path, epochs=6, ema_decay=0.99, resume=True)
    with pytest.raises(ValueError, match="saved with ema_decay=0.9: .* got ema_decay=None"):
        run_averaged(tmp_path, epochs=6, ema_decay=None, resume=True)


@pytest.mark.parametrize("decay", [0, 1, 1.5, -0.1, float("nan"), "0.9"])
def test_bad_ema_decays_are_clear_errors(decay):
    model = Linear()
    with pytest.raises((ValueError, TypeError), match=f"ema_decay={decay!r}"):
        fit(model, loader(toy_data()), epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), ema_decay=decay)


@pytest.mark.parametrize(("total_steps", "warmup_fraction"), [(10, 0.1), (4, 0.25), (20, 0.05)])
def test_a_one_step_warm_up_rises_to_the_peak_and_decays_without_error(total_steps, warmup_fraction):
    """OneCycleLR divides by zero when its warm-up is exactly one step; warmup_cosine does not."""
    from mmtutorial.training.schedules import warmup_cosine

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = warmup_cosine(optimizer, total_steps, warmup_fraction=warmup_fraction)
    lrs = []
    for _ in range(total_steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.1 / 25), "the warm-up starts at lr / 25"
    assert lrs[1] == max(lrs) > lrs[0], "one step later, the highest rate"
    assert all(a > b for a, b in zip(lrs[1:], lrs[2:], strict=False)), "then it decays"
    assert lrs[-1] == pytest.approx(0.1 * 0.01), "to final_fraction of the peak at the last step"
