"""The ``fit`` / ``evaluate`` loops every notebook uses.

Batches are dicts of tensors (as the course's data sets produce); a model takes the batch
dict and returns logits. ``fit`` keeps a per-epoch history (loss, accuracy, accuracy per
group such as question type), shows progress bars, supports bf16 autocast, gradient
clipping, early stopping and checkpoints that resume to the same result, and stops with a
clear message on a NaN or infinite loss.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..validation import (
    check_bool,
    check_choice,
    check_device,
    check_float,
    check_mapping,
    check_optional_positive_int,
    check_positive_int,
    require_keys,
)
from .checkpoints import _rng_state, _set_rng_state, load_checkpoint, save_checkpoint
from .runtime import progress as progress_bar
from .runtime import to_device, unwrap_model

__all__ = ["evaluate", "fit", "History"]


def _check_batch(batch: Any, target_key: str, group_key: str | None, reader: str) -> None:
    """A batch must be a dict holding the target (and group) key: cheap, once per step."""
    check_mapping("batch", batch, "a dict of tensors (the model is called as model(batch))")
    require_keys(batch, [target_key] if group_key is None else [target_key, group_key], reader=reader)


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[Mapping[str, Any]],
    *,
    target_key: str = "label",
    group_key: str | None = None,
    group_names: Sequence[str] | None = None,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    loss_fn: Callable = F.cross_entropy,
) -> dict[str, Any]:
    """Mean loss, accuracy and (with ``group_key``) accuracy per group over ``batches``.

    Returns ``{"loss", "acc", "n", "acc_by_group": {name: acc}}``.
    """
    device = check_device("device", device)
    check_choice("precision", precision, ("fp32", "bf16"))
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    group_correct: dict[int, int] = {}
    group_count: dict[int, int] = {}
    for batch in batches:
        _check_batch(batch, target_key, group_key, f"evaluate(target_key={target_key!r})")
        batch = to_device(batch, device)
        with _autocast(device, precision):
            logits = model(batch)
        target = batch[target_key]
        total_loss += loss_fn(logits.float(), target, reduction="sum").item()
        hits = logits.argmax(-1) == target
        correct += int(hits.sum())
        count += len(target)
        if group_key is not None:
            for g in batch[group_key].unique().tolist():
                in_group = batch[group_key] == g
                group_correct[g] = group_correct.get(g, 0) + int(hits[in_group].sum())
                group_count[g] = group_count.get(g, 0) + int(in_group.sum())
    model.train(was_training)
    if count == 0:
        raise ValueError("evaluate got no batches")

    def name(g: int) -> str:
        return group_names[g] if group_names is not None else str(g)

    return {
        "loss": total_loss / count,
        "acc": correct / count,
        "n": count,
        "acc_by_group": {name(g): group_correct[g] / group_count[g] for g in sorted(group_count)},
    }


# ---------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------


def _check_finite(losses: list[torch.Tensor], epoch: int, first_step: int) -> None:
    """Raise if any of these consecutive step losses is NaN or infinite (then clear them)."""
    if not losses:
        return
    values = torch.stack(losses)
    losses.clear()
    bad = torch.nonzero(~torch.isfinite(values)).flatten()
    if len(bad):
        i = int(bad[0])
        raise FloatingPointError(
            f"the training loss became {values[i].item()} at epoch {epoch + 1}, step {first_step + i}: "
            "lower the learning rate, clip gradients (clip_grad_norm=1.0) or check the inputs"
        )


def _averaged(model: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of ``model``'s weights, BatchNorm statistics included
    (``use_buffers=True``), so that it can be evaluated even without a recalibration."""
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


@dataclass
class History:
    """Per-epoch records of :func:`fit` (a list of dicts) plus the best epoch."""

    epochs: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    #: True when the model ended with the best epoch's weights (``keep_best`` / early stopping).
    restored_best: bool = False
    #: The decay of the weight average that was validated and kept (``fit(ema_decay=...)``), else None.
    ema_decay: float | None = None

    def column(self, key: str) -> list[Any]:
        return [row.get(key) for row in self.epochs]

    @property
    def last(self) -> dict[str, Any]:
        return self.epochs[-1] if self.epochs else {}


def fit(
    model: nn.Module,
    train_batches: Iterable[Mapping[str, Any]],
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    val_batches: Iterable[Mapping[str, Any]] | None = None,
    target_key: str = "label",
    group_key: str | None = None,
    group_names: Sequence[str] | None = None,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    clip_grad_norm: float | None = None,
    early_stopping_patience: int | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    resume: bool = False,
    generator: torch.Generator | None = None,
    loss_fn: Callable = F.cross_entropy,
    scheduler: Any = None,
    scheduler_interval: str = "epoch",
    monitor: str = "val_loss",
    keep_best: bool = False,
    before_evaluation: Callable[[nn.Module], Any] | None = None,
    ema_decay: float | None = None,
    progress: bool = True,
    description: str = "training",
    max_seconds: float | None = None,
    after_epoch: Callable[[History], Any] | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    Args:
        train_batches: re-iterable batches of dicts (a DataLoader, or a list); the model
            is called as ``model(batch)`` and must return logits.
        val_batches: evaluated after every epoch (loss, accuracy, per-group accuracy).
        precision: ``"fp32"`` or ``"bf16"`` (autocast where the device supports it).
        clip_grad_norm: clip the global gradient norm to this value.
        early_stopping_patience: stop after this many epochs without a better validation
            loss; the best weights are restored at the end.
        checkpoint_path: save model, optimizer, history and random states after every
            epoch; with ``resume=True`` training continues from it and ends where an
            uninterrupted run with the same seed would (pass the DataLoader's
            ``generator`` so its shuffling resumes too).
        max_seconds: a wall-clock budget: stop after the first epoch that ends past it
            (training and validation time, summed over the epochs of this call).
        scheduler: a ``torch.optim.lr_scheduler`` scheduler of ``optimizer``, stepped after
            every optimizer step (``scheduler_interval="step"``: warm-up and decay per batch,
            see :mod:`mmtutorial.training.schedules`) or after every epoch (``"epoch"``).
        monitor: what makes an epoch the best: ``"val_loss"`` (lowest) or ``"val_acc"``
            (highest); the history's ``best_epoch`` names it.
        keep_best: end with the best epoch's weights, not the last epoch's (early stopping
            always does).
        before_evaluation: called with the model before each validation, e.g.
            :func:`~mmtutorial.training.schedules.recalibrated_batchnorm` statistics.
        ema_decay: also keep an exponential moving average of the weights (PyTorch's
            ``AveragedModel`` with ``get_ema_multi_avg_fn(ema_decay)``), updated after every
            optimizer step: each step moves it ``1 - ema_decay`` of the way to the current
            weights (0.995: an average over the last ~200 steps). Validation, ``monitor``,
            ``keep_best`` and the returned model then use the *averaged* weights, which
            smooth out the swings of single steps; training itself is unchanged. The
            average is saved in checkpoints, so a resume stays exact.
        after_epoch: called with the history after every epoch (its last row complete,
            validation included), and once after a resume with the restored history, before
            training goes on: e.g. to end a curriculum when validation accuracy is high
            enough (:func:`~mmtutorial.models.vqa_training.train_vqa`'s ``curriculum_until``).

    ``train_batches`` may have a ``set_epoch(epoch)`` method (like PyTorch's
    ``DistributedSampler``): it is called before each epoch, also after a resume, so a
    curriculum (:class:`~mmtutorial.data.batching.Curriculum`) knows where training is.

    Each epoch's row records ``seconds`` (training + validation) and ``train_seconds``.
    On a GPU the loss is checked for NaN every 32 steps, not every step, so the GPU is
    not stalled by a host sync each step (the error still names the first bad step).

    Raises:
        FloatingPointError: the loss became NaN or infinite (names the epoch and step).
    """
    check_positive_int("epochs", epochs)
    check_choice("scheduler_interval", scheduler_interval, ("step", "epoch"))
    check_choice("monitor", monitor, ("val_loss", "val_acc"))
    check_bool("keep_best", keep_best)
    if (keep_best or monitor != "val_loss") and val_batches is None:
        raise ValueError(f"keep_best / monitor={monitor!r} need val_batches to watch")
    if before_evaluation is not None and not callable(before_evaluation):
        raise TypeError(f"before_evaluation={before_evaluation!r}: expected a function of the model")
    if after_epoch is not None and not callable(after_epoch):
        raise TypeError(f"after_epoch={after_epoch!r}: expected a function of the history")
    better = (lambda new, old: new < old) if monitor == "val_loss" else (lambda new, old: new > old)
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision={precision!r}: expected 'fp32' or 'bf16'")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer={optimizer!r}: expected a torch.optim.Optimizer")
    if clip_grad_norm is not None:
        check_float("clip_grad_norm", clip_grad_norm, minimum=0.0, min_inclusive=False)
    check_optional_positive_int("early_stopping_patience", early_stopping_patience)
    if max_seconds is not None:
        check_float("max_seconds", max_seconds, minimum=0.0)  # 0: one epoch
    if early_stopping_patience is not None and val_batches is None:
        raise ValueError("early stopping needs val_batches to watch")
    if ema_decay is not None:
        check_float("ema_decay", ema_decay, minimum=0.0, maximum=1.0, min_inclusive=False, max_inclusive=False)
    device = check_device("device", device)
    model.to(device)
    trained = unwrap_model(model)  # the module whose weights are averaged and, at the end, replaced
    averaged = _averaged(trained, ema_decay) if ema_decay is not None else None
    # what is validated, kept as the best and returned: the average when there is one
    evaluated = averaged.module if averaged is not None else model
    history = History(ema_decay=ema_decay)
    best_score, best_state, stale = (math.inf if monitor == "val_loss" else -math.inf), None, 0
    start_epoch = 0
    if resume:
        if checkpoint_path is None:
            raise ValueError("resume=True needs checkpoint_path")
        if Path(checkpoint_path).exists():
            state = load_checkpoint(checkpoint_path, map_location=device)
            if state.get("ema_decay") != ema_decay:
                raise ValueError(
                    f"{checkpoint_path} was saved with ema_decay={state.get('ema_decay')!r}: "
                    f"resume with the same value, got ema_decay={ema_decay!r}"
                )
            model.load_state_dict(state["model"])
            if averaged is not None:
                averaged.load_state_dict(state["ema"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
            history = History(epochs=list(state["history"]), best_epoch=state["best_epoch"], ema_decay=ema_decay)
            best_score, stale = (
                state.get("best_score", state.get("best_loss")),
                state["stale"],
            )  # older files: best_loss
            best_state = state.get("best_model")
            start_epoch = len(history.epochs)
            _set_rng_state(state["rng"], generator)
            if after_epoch is not None:
                after_epoch(history)  # what it decided from the restored epochs, decided again

    check_every = 1 if device.type == "cpu" else 32  # steps between NaN checks (each one syncs a GPU)
    spent = 0.0
    epoch_bar = progress_bar(range(start_epoch, epochs), desc=description, disable=not progress)
    for epoch in epoch_bar:
        if hasattr(train_batches, "set_epoch"):
            train_batches.set_epoch(epoch)
        model.train()
        started = time.perf_counter()
        # running sums stay on the device: no host sync per step
        total_loss, correct, count = torch.zeros((), device=device), torch.zeros((), device=device), 0
        unchecked: list[torch.Tensor] = []
        for step, batch in enumerate(train_batches):
            _check_batch(batch, target_key, None, f"fit(target_key={target_key!r})")
            batch = to_device(batch, device)
            with _autocast(device, precision):
                logits = model(batch)
            target = batch[target_key]
            loss = loss_fn(logits.float(), target)
            unchecked.append(loss.detach())
            if len(unchecked) >= check_every:
                _check_finite(unchecked, epoch, step + 2 - len(unchecked))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(trained)
            if scheduler is not None and scheduler_interval == "step":
                scheduler.step()
            total_loss += loss.detach() * len(target)
            correct += (logits.argmax(-1) == target).sum()
            count += len(target)
        if count == 0:
            raise ValueError("fit got no training batches")
        _check_finite(unchecked, epoch, step + 2 - len(unchecked))
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": total_loss.item() / count,
            "train_acc": correct.item() / count,
            "lr": optimizer.param_groups[0]["lr"],
            "train_seconds": time.perf_counter() - started,
        }
        if val_batches is not None:
            if before_evaluation is not None:
                before_evaluation(evaluated)
            result = evaluate(
                evaluated,
                val_batches,
                target_key=target_key,
                group_key=group_key,
                group_names=group_names,
                device=device,
                precision=precision,
                loss_fn=loss_fn,
            )
            row.update(val_loss=result["loss"], val_acc=result["acc"], val_acc_by_group=result["acc_by_group"])
            score = result["loss"] if monitor == "val_loss" else result["acc"]
            if better(score, best_score):
                best_score, stale, history.best_epoch = score, 0, epoch + 1
                if early_stopping_patience is not None or keep_best:
                    best_state = {k: v.detach().clone() for k, v in evaluated.state_dict().items()}
            else:
                stale += 1
        row["seconds"] = time.perf_counter() - started
        spent += row["seconds"]
        history.epochs.append(row)
        if after_epoch is not None:
            after_epoch(history)
        epoch_bar.set_postfix({k: round(v, 4) for k, v in row.items() if k in ("train_loss", "val_loss", "val_acc")})
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                model=model.state_dict(),
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict() if scheduler is not None else None,
                history=history.epochs,
                best_epoch=history.best_epoch,
                best_score=best_score,
                stale=stale,
                best_model=best_state,
                ema_decay=ema_decay,
                ema=averaged.state_dict() if averaged is not None else None,
                rng=_rng_state(generator),
            )
        if early_stopping_patience is not None and stale >= early_stopping_patience:
            history.stopped_early = True
            break
        if max_seconds is not None and spent >= max_seconds:
            break
    if (early_stopping_patience is not None or keep_best) and best_state is not None:
        evaluated.load_state_dict(best_state)
        history.restored_best = True
    if averaged is not None:
        trained.load_state_dict(averaged.module.state_dict())
    return history
