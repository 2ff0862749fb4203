"""Training helpers for the VQA model: a fused AdamW, evaluation by question type and
family, time-to-accuracy from a training history, and training throughput.

The fast path on a GPU: ``SortOfClevr.batches(..., device="cuda", by_image=True)`` keeps
the whole split on the GPU as uint8 tensors and indexes batches there (no DataLoader, no
per-sample Python); :func:`mmtutorial.training.fit` with ``precision="bf16"``; a fused AdamW
(:func:`make_adamw`); and optionally ``torch.compile`` (:func:`compile_model`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.batching import Curriculum
from ..data.sort_of_clevr import FAMILY_NAMES, QUESTION_TYPES, SortOfClevr
from ..training import History, evaluate, fit, to_device
from ..training.benchmarking import synchronize
from ..training.distributed import DistributedContext, ShardedBatches, all_reduce_mean, wrap_model
from ..training.loop import _autocast
from ..training.schedules import recalibrated_batchnorm, warmup_cosine
from ..validation import check_choice, check_float, check_nonnegative_int, check_positive_int
from .vqa import FIRST_HOP_ROWS
from .vqa_heads import CrossAttentionHead, DistanceBiasedHop

__all__ = [
    "make_adamw",
    "compile_model",
    "train_vqa",
    "HeldDistanceBias",
    "RelationalFirstHopDelay",
    "curriculum_switch_epoch",
    "longest_curriculum",
    "CURRICULUM_OPTIONS",
    "evaluate_vqa",
    "seconds_to_accuracy",
    "train_throughput",
]


def make_adamw(
    model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.0, head_lr: float | None = None
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, with the fused kernel (one launch for all
    parameters instead of several per parameter) where PyTorch has it for the device.

    Weight decay applies to weight matrices and kernels only: biases and normalisation
    scales and shifts (1-D parameters) are left undecayed, as is usual. ``head_lr`` gives
    the parameters of ``model.head`` (a :class:`VQAModel`'s fusion head) their own learning
    rate; the encoders keep ``lr``. A schedule then scales each group from its own rate.

    Example::

        optimizer = make_adamw(model, lr=2e-3, head_lr=5e-4)  # encoders 2e-3, head 5e-4
    """
    lr = check_float("lr", lr, minimum=0, min_inclusive=False)
    if head_lr is not None:
        head_lr = check_float("head_lr", head_lr, minimum=0, min_inclusive=False)
        if not isinstance(getattr(model, "head", None), nn.Module):
            raise ValueError(
                f"head_lr={head_lr!r} needs a model with a .head module (a VQAModel); got {type(model).__name__}"
            )
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no trainable parameters")
    fused = named[0][1].device.type in ("cuda", "cpu")
    in_head = {id(p) for p in model.head.parameters()} if head_lr is not None else set()
    groups = []
    for rate, part in (
        (lr, [p for _, p in named if id(p) not in in_head]),
        (head_lr, [p for _, p in named if id(p) in in_head]),
    ):
        groups += [
            {"params": [p for p in part if p.dim() >= 2], "weight_decay": weight_decay, "lr": rate},
            {"params": [p for p in part if p.dim() < 2], "weight_decay": 0.0, "lr": rate},
        ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, fused=fused)


def compile_model(model: nn.Module, enabled: bool = True, mode: str | None = None) -> nn.Module:
    """``torch.compile(model, mode=mode)`` when ``enabled`` (the compiled module shares the
    model's parameters; save and load the original ``model``). ``mode="reduce-overhead"``
    replays CUDA graphs: every batch must then have the same shapes (``drop_last=True``)."""
    return torch.compile(model, mode=mode) if enabled else model


class HeldDistanceBias:
    """Training batches whose ``set_epoch`` (called by :func:`~mmtutorial.training.fit` before
    every epoch, also after a resume) holds the ``w`` and ``u`` of ``model``'s distance-biased
    hops until ``curriculum.switch_epoch`` (read every epoch, so the switch of an adaptive
    curriculum moves it too) and lets them learn afterwards; with
    ``whole_hop=True`` it holds every weight of those hops (queries, keys, values, output,
    norm), whose gradients are then zeroed by hooks until the switch.

    At the switch the optimizer forgets the held parameters' moments: they were built from
    zero gradients, and Adam's bias correction, already near 1 by then, would make the first
    real steps several times ``lr``. Whether the hops are held depends on the epoch alone, and
    ``fit`` calls ``set_epoch`` after a resume too, so a resumed run holds them as the first did.
    Zero gradients hold a weight exactly only without weight decay (AdamW decays it anyway), so
    an optimizer that decays a held parameter is refused.
    """

    def __init__(
        self,
        batches: Any,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        curriculum: Curriculum,
        whole_hop: bool = False,
    ) -> None:
        self.hops = [m for m in model.modules() if isinstance(m, DistanceBiasedHop)]
        option = "hold_biased_hop" if whole_hop else "hold_distance_bias"
        if not self.hops:
            raise ValueError(
                f"{option}=True needs a cross_attention model with distance_bias=True "
                "(it has no distance-biased hop to hold)"
            )
        if not isinstance(curriculum, Curriculum):
            raise TypeError(
                f"curriculum={type(curriculum).__name__}: expected the Curriculum whose switch ends the hold"
            )
        if curriculum.switch_epoch < 1:
            raise ValueError(
                f"{option}=True holds the hop's weights during the curriculum: needs curriculum_epochs >= 1, "
                f"got {curriculum.switch_epoch}"
            )
        self.batches, self.optimizer, self.curriculum = batches, optimizer, curriculum
        self.whole_hop = whole_hop
        self._hooks: list[Any] = []
        held = {id(p) for p in self.held_parameters()}
        for group in optimizer.param_groups:
            if group.get("weight_decay") and any(id(p) in held for p in group["params"]):
                raise ValueError(
                    f"{option}=True with weight_decay={group['weight_decay']!r}: AdamW would shrink the held "
                    "weights all the same; hold them with weight_decay=0"
                )

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)

    def held_parameters(self) -> list[nn.Parameter]:
        """The parameters held until the switch."""
        return [p for hop in self.hops for p in (hop.parameters() if self.whole_hop else hop.bias_scales.parameters())]

    def set_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)
        switch_epoch = self.curriculum.switch_epoch
        holding = epoch < switch_epoch
        for hop in self.hops:
            hop.learn_strengths = not holding
        if self.whole_hop and holding and not self._hooks:
            # zeros rather than None, so that DistributedDataParallel sees every parameter used
            self._hooks = [p.register_hook(torch.zeros_like) for p in self.held_parameters()]
        elif not holding:
            for hook in self._hooks:
                hook.remove()
            self._hooks = []
        if epoch == switch_epoch:
            for parameter in self.held_parameters():
                self.optimizer.state.pop(parameter, None)


class RelationalFirstHopDelay:
    """Training batches that tell ``cross_attention``'s first hop which questions may train it
    (``batch["first_hop_rows"]``): the non-relational ones always, the relational ones from
    ``delay`` epochs after ``curriculum.switch_epoch`` on (read every epoch, so the switch of an
    adaptive curriculum moves it too). The others still read the first hop, but their gradient
    through it is cut.

    Why: on their first epoch the relational questions' loss pulls the first hop off the named
    object (the validation probe's ``hop1_peak`` on *closest* and *furthest* fell from
    0.46-0.84 to 0.15-0.58 over 16 runs), while the second hop's ``w`` has yet to learn which
    way to look; on the seeds where it did not come back, ``w`` took one sign for both families
    and the hop was never learned (notebook 09, *The first hop lets go*). Once ``w`` has a sign
    per family, the relational questions sharpen the first hop again.
    """

    def __init__(self, batches: Any, curriculum: Curriculum, delay: int) -> None:
        self.batches, self.curriculum = batches, curriculum
        self.delay = check_positive_int("relational_first_hop_delay", delay)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.batches.set_epoch(epoch)

    def __iter__(self):
        # the key is on every batch, so a compiled model sees one batch structure throughout
        relational_too = self.epoch >= self.curriculum.switch_epoch + self.delay
        for batch in self.batches:
            yield {**batch, FIRST_HOP_ROWS: (batch["qtype"] == 0) | relational_too}


#: The options of :func:`train_vqa` whose fit :func:`longest_curriculum` checks.
CURRICULUM_OPTIONS = ("curriculum_epochs", "curriculum_until", "max_curriculum_epochs")


def longest_curriculum(
    curriculum_epochs: int,
    epochs: int,
    curriculum_until: float | None = None,
    max_curriculum_epochs: int | None = None,
    names: Mapping[str, str] | None = None,
) -> int:
    """The most epochs :func:`train_vqa`'s curriculum may take: ``curriculum_epochs`` without
    ``curriculum_until``; with it, ``max_curriculum_epochs`` (default ``curriculum_epochs +
    epochs // 2``), which must leave at least one epoch on all questions. Raises a one-line
    ``ValueError`` when the options do not fit together; ``names`` words it with other names
    for the options (the benchmark's flags: ``{"curriculum_until": "--curriculum-until", ...}``).

    Example::

        longest_curriculum(10, 10)  # 10
        longest_curriculum(10, 10, curriculum_until=0.98)  # 15
    """
    name = {**{key: key for key in CURRICULUM_OPTIONS}, **(names or {})}
    if curriculum_until is None:
        if max_curriculum_epochs is not None:
            raise ValueError(
                f"{name['max_curriculum_epochs']}={max_curriculum_epochs!r} bounds {name['curriculum_until']}'s "
                f"extension: set {name['curriculum_until']} too"
            )
        return curriculum_epochs
    if curriculum_epochs < 1:
        raise ValueError(f"{name['curriculum_until']} needs {name['curriculum_epochs']} >= 1, got {curriculum_epochs}")
    if max_curriculum_epochs is None:
        max_curriculum_epochs = curriculum_epochs + epochs // 2
    check_positive_int(name["max_curriculum_epochs"], max_curriculum_epochs)
    if not curriculum_epochs <= max_curriculum_epochs < curriculum_epochs + epochs:
        raise ValueError(
            f"{name['max_curriculum_epochs']}={max_curriculum_epochs}: expected from {name['curriculum_epochs']} "
            f"({curriculum_epochs}) to {curriculum_epochs + epochs - 1}, leaving at least one epoch on all questions"
        )
    return max_curriculum_epochs


def curriculum_switch_epoch(history: History, curriculum_epochs: int, max_curriculum_epochs: int, until: float) -> int:
    """How many epochs the curriculum of :func:`train_vqa` with ``curriculum_until=until``
    lasts, as far as ``history`` tells: the first epoch from the ``curriculum_epochs``-th on
    whose validation non-relational accuracy reached ``until``, else ``max_curriculum_epochs``
    (also while that epoch is still to come: training stays on the curriculum until then).

    Example::

        rows = [{"epoch": e, "val_acc_by_group": {"non-relational": a}} for e, a in [(1, 0.6), (2, 0.99)]]
        curriculum_switch_epoch(History(epochs=rows), 1, 5, 0.98)  # 2: epoch 3 is on all questions
    """
    for row in history.epochs:
        if row["epoch"] >= max_curriculum_epochs:
            break
        if row["epoch"] >= curriculum_epochs and row["val_acc_by_group"][QUESTION_TYPES[0]] >= until:
            return row["epoch"]
    return max_curriculum_epochs


def train_vqa(
    model: nn.Module,
    train: SortOfClevr,
    val: SortOfClevr | None = None,
    *,
    images_per_batch: int = 16,
    epochs: int = 10,
    curriculum_epochs: int = 0,
    lr: float = 1e-3,
    head_lr: float | None = None,
    weight_decay: float = 0.0,
    schedule: str = "warmup_cosine",
    warmup_fraction: float = 0.1,
    clip_grad_norm: float | None = None,
    translate: bool = False,
    recalibrate_bn: bool = True,
    keep_best: bool = True,
    ema_decay: float | None = None,
    precision: str = "fp32",
    compile: bool = False,
    budget_seconds: float | None = None,
    generator: torch.Generator | None = None,
    context: DistributedContext | None = None,
    progress: bool = True,
    description: str = "vqa",
    probe: Callable[[nn.Module], Any] | None = None,
    hold_distance_bias: bool = False,
    hold_biased_hop: bool = False,
    curriculum_until: float | None = None,
    max_curriculum_epochs: int | None = None,
    relational_first_hop_delay: int = 0,
) -> History:
    """Train a VQA model on Sort-of-CLEVR with the course's recipe: device-resident
    whole-image batches, fused AdamW, a learning rate that warms up then decays per batch,
    BatchNorm statistics recomputed before every validation, and the best validation
    epoch's weights kept; optional bf16, torch.compile, a wall-clock budget, data-parallel.

    Args:
        epochs: epochs on all questions, after ``curriculum_epochs`` epochs on the
            non-relational questions only (one schedule spans both).
        lr: the peak learning rate (of every part, unless ``head_lr`` is given).
        head_lr: the fusion head's own peak learning rate (:func:`make_adamw`); the image
            and question encoders keep ``lr``. The ``transformer`` head needs a low rate
            (at 2e-3 it fell to chance after its warm-up), and its encoders learned to find
            the named object faster at the rate of the other heads (README).
        schedule: ``"warmup_cosine"`` (:func:`~mmtutorial.training.schedules.warmup_cosine`,
            over every step of both phases) or ``"constant"``.
        translate: shift every training image at random each epoch (objects kept inside)
            and recompute the left/top answers it changes (:class:`~mmtutorial.data.
            sort_of_clevr.ImageBatches`); validation is never shifted.
        recalibrate_bn: recompute BatchNorm running statistics over training batches before
            each validation (:func:`~mmtutorial.training.schedules.recalibrated_batchnorm`).
        keep_best: end with the weights of the epoch with the best validation accuracy
            (``history.best_epoch``), not the last (needs ``val``).
        ema_decay: validate, keep and return an exponential moving average of the weights
            updated after every step (:func:`~mmtutorial.training.fit`'s ``ema_decay``; its
            BatchNorm statistics are the ones recomputed before each validation).
        budget_seconds: stop after the epoch that crosses this much time (the schedule
            then ends early: prefer an epoch count that fits).
        generator: the shuffling generator; under ``torchrun`` every rank must pass one
            seeded alike, so that all ranks cut the same global batches.
        context: from :func:`mmtutorial.training.distributed.init_distributed`; each rank then
            trains on its share of every global batch of ``images_per_batch`` images and
            DDP averages the gradients. Training loss and accuracy in the returned history
            are averaged over the ranks.
        probe: called with the validated model (the average, with ``ema_decay``) after
            the BatchNorm statistics are recomputed, before each validation; what it
            returns is kept as that epoch's ``history.epochs[i]["probe"]``, e.g.
            :func:`~mmtutorial.models.vqa_diagnostics.distance_hop_statistics` of the
            validation split. It must not change the model.
        hold_distance_bias: during the ``curriculum_epochs``, the distance-biased hops of
            ``cross_attention`` (:class:`~mmtutorial.models.vqa_heads.DistanceBiasedHop`) use
            their question-predicted ``w`` and ``u`` without training them; they learn from the
            first epoch on all questions, with fresh optimizer moments. Non-relational questions
            otherwise train ``w`` (*near* or *far*) for their own ends, and the relational
            questions, worded alike, start from it.
        hold_biased_hop: hold every weight of those hops during the curriculum, not only
            ``w`` and ``u`` (:class:`HeldDistanceBias` with ``whole_hop=True``): non-relational
            questions are answered by the first hop, and a free second hop can take over its
            job on the curriculum.
        curriculum_until: end the curriculum only once validation non-relational accuracy
            reaches this: after ``curriculum_epochs``, training stays on the non-relational
            questions while it is lower, up to ``max_curriculum_epochs`` epochs in all
            (default: ``curriculum_epochs + epochs // 2``). The extra epochs come out of
            the phase on all questions, so the total and the learning-rate schedule stay;
            a run that reaches it in time trains exactly as without it. Each epoch's
            ``"phase"`` in the history says where the switch fell
            (:func:`curriculum_switch_epoch`).
        relational_first_hop_delay: for this many epochs from the switch, the relational
            questions read ``cross_attention``'s first hop without training it
            (:class:`RelationalFirstHopDelay`); 0: they train it from the switch on. Needs a
            ``cross_attention`` model with ``distance_bias=True``.

    The model (not a compiled or DDP wrapper) keeps the trained weights.
    """
    check_choice("schedule", schedule, ("warmup_cosine", "constant"))
    check_nonnegative_int("curriculum_epochs", curriculum_epochs)
    check_positive_int("epochs", epochs)
    if keep_best and val is None:
        raise ValueError("keep_best=True needs val (the split that picks the best epoch)")
    if curriculum_until is not None:
        check_float("curriculum_until", curriculum_until, minimum=0.0, maximum=1.0, min_inclusive=False)
        if val is None:
            raise ValueError("curriculum_until needs val (the split whose non-relational accuracy ends the curriculum)")
    max_curriculum_epochs = longest_curriculum(curriculum_epochs, epochs, curriculum_until, max_curriculum_epochs)
    check_nonnegative_int("relational_first_hop_delay", relational_first_hop_delay)
    head = getattr(model, "head", None)
    if relational_first_hop_delay and not (isinstance(head, CrossAttentionHead) and head.biased_hops):
        raise ValueError(
            f"relational_first_hop_delay={relational_first_hop_delay} needs a cross_attention model with "
            "distance_bias=True (its first hop is the one the relational questions wait to train)"
        )
    context = context or DistributedContext(device=next(model.parameters()).device)
    step_model = compile_model(wrap_model(model, context), compile)
    optimizer = make_adamw(model, lr, weight_decay, head_lr=head_lr)

    def shuffled(question_types=None):
        return train.batches(
            images_per_batch,
            shuffle=True,
            generator=generator,
            device=context.device,
            by_image=True,
            question_types=question_types,
            translate=translate,
        )

    # an adaptive curriculum starts as long as it may be; after_epoch shortens it
    curriculum = Curriculum(shuffled((0,)), shuffled(), switch_epoch=max_curriculum_epochs)
    batches = ShardedBatches(curriculum, context)
    if relational_first_hop_delay:
        batches = RelationalFirstHopDelay(batches, curriculum, relational_first_hop_delay)
    if hold_distance_bias or hold_biased_hop:
        batches = HeldDistanceBias(batches, model, optimizer, curriculum, whole_hop=hold_biased_hop)
    total_epochs = curriculum_epochs + epochs

    def after_epoch(history: History) -> None:
        switch = curriculum_switch_epoch(history, curriculum_epochs, max_curriculum_epochs, curriculum_until)
        curriculum.switch_epoch = switch  # the hold and the first-hop delay read it from here

    scheduler = (
        warmup_cosine(optimizer, total_epochs * len(batches), warmup_fraction) if schedule == "warmup_cosine" else None
    )
    # the statistics of the questions being trained on; a few batches give an exact average
    recalibrate = recalibrated_batchnorm(batches, max_batches=32) if recalibrate_bn else None
    probed: list[Any] = []
    if probe is not None and not callable(probe):
        raise TypeError(f"probe={probe!r}: expected a function of the model")

    def before_evaluation(evaluated: nn.Module) -> None:
        if recalibrate is not None:
            recalibrate(evaluated)
        if probe is not None:
            probed.append(probe(evaluated))

    history = fit(
        step_model,
        batches,
        epochs=total_epochs,
        optimizer=optimizer,
        scheduler=scheduler,
        scheduler_interval="step",
        clip_grad_norm=clip_grad_norm,
        val_batches=val.batches(images_per_batch, device=context.device, by_image=True) if val else None,
        monitor="val_acc",
        keep_best=keep_best,
        ema_decay=ema_decay,
        before_evaluation=before_evaluation,
        target_key="answer",
        group_key="qtype",
        group_names=QUESTION_TYPES,
        device=context.device,
        precision=precision,
        progress=progress and context.is_main,
        description=description,
        max_seconds=budget_seconds,
        after_epoch=after_epoch if curriculum_until is not None else None,
    )
    for row in history.epochs:  # each rank saw its own shard: report the mean over ranks
        row["train_loss"] = all_reduce_mean(row["train_loss"], context)
        row["train_acc"] = all_reduce_mean(row["train_acc"], context)
        row["phase"] = "non-relational" if row["epoch"] <= curriculum.switch_epoch else "all"
    for row, result in zip(history.epochs, probed, strict=False):
        row["probe"] = result
    return history


def evaluate_vqa(
    model: nn.Module,
    batches: Iterable[Mapping[str, Any]],
    *,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    question_types: int = 2,
) -> dict[str, Any]:
    """Accuracy overall, per question type (``"non-relational"``, ``"relational"``) and per
    family (``"shape"``, ``"closest shape"``, ...), over ``batches`` of Sort-of-CLEVR."""
    by_type = evaluate(
        model,
        batches,
        target_key="answer",
        group_key="qtype",
        group_names=QUESTION_TYPES,
        device=device,
        precision=precision,
    )
    by_family = evaluate(
        model,
        batches,
        target_key="answer",
        group_key="family",
        group_names=FAMILY_NAMES[: 3 * question_types],
        device=device,
        precision=precision,
    )
    return {
        "acc": by_type["acc"],
        "loss": by_type["loss"],
        "n": by_type["n"],
        "acc_by_type": by_type["acc_by_group"],
        "acc_by_family": by_family["acc_by_group"],
    }


def seconds_to_accuracy(history: History, group: str, threshold: float, key: str = "val_acc_by_group") -> float | None:
    """Wall-clock seconds of training (validation included) until the end of the first
    epoch whose validation accuracy on ``group`` reached ``threshold``; None if none did."""
    elapsed = 0.0
    for row in history.epochs:
        elapsed += row["seconds"]
        if row.get(key, {}).get(group, -1.0) >= threshold:
            return elapsed
    return None


def train_throughput(
    model: nn.Module,
    batches: Iterable[Mapping[str, Any]],
    *,
    device: torch.device | str,
    precision: str = "fp32",
    compile: bool = False,
    compile_mode: str | None = None,
    channels_last: bool = False,
    steps: int = 20,
    warmup: int = 3,
    lr: float = 1e-3,
    profile: bool = False,
) -> dict[str, Any]:
    """Training samples (questions) per second over ``steps`` optimizer steps, after
    ``warmup`` steps (which include ``torch.compile``'s compilation, reported apart).

    Args:
        compile_mode: ``torch.compile``'s mode (``"reduce-overhead"``: CUDA graphs).
        channels_last: images and the image encoder in channels-last memory format.
        profile: also run ``torch.profiler`` over the measured steps and return its ten
            most expensive operators (``"profile"``: name, self time in ms, calls).

    Trains ``model`` in place: pass a fresh copy if its weights matter.
    """
    device = torch.device(device)
    model.to(device).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    step_model = compile_model(model, compile, compile_mode)
    optimizer = make_adamw(model, lr)
    iterator = iter(_cycle(batches))

    def one_step() -> int:
        batch = to_device(next(iterator), device)
        if channels_last:
            batch["images"] = batch["images"].contiguous(memory_format=torch.channels_last)
        with _autocast(device, precision):
            logits = step_model(batch)
        loss = F.cross_entropy(logits.float(), batch["answer"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(batch["answer"])

    started = time.perf_counter()
    for _ in range(warmup):
        one_step()
    synchronize(device)
    warmup_seconds = time.perf_counter() - started
    profiler = None
    if profile:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        profiler = torch.profiler.profile(activities=activities)
        profiler.__enter__()
    started = time.perf_counter()
    samples = sum(one_step() for _ in range(steps))
    synchronize(device)
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "samples_per_s": samples / seconds,
        "seconds": seconds,
        "warmup_seconds": warmup_seconds,
        "samples": samples,
    }
    if profiler is not None:
        profiler.__exit__(None, None, None)
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        events = sorted(profiler.key_averages(), key=lambda e: getattr(e, key, 0.0), reverse=True)[:10]
        result["profile"] = [
            {
                "name": e.key,
                "self_ms": round(getattr(e, key, 0.0) / 1000 / steps, 4),
                "calls_per_step": round(e.count / steps, 2),
            }
            for e in events
        ]
    return result


def _cycle(batches: Iterable[Mapping[str, Any]]):
    while True:
        yielded = False
        for batch in batches:
            yielded = True
            yield batch
        if not yielded:
            raise ValueError("train_throughput got no batches")
