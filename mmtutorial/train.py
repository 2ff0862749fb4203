"""Training: seeding, devices, and the ``fit`` / ``evaluate`` loops every notebook uses.

Batches are dicts of tensors (as the course's data sets produce); a model takes the batch
dict and returns logits. ``fit`` keeps a per-epoch history (loss, accuracy, accuracy per
group such as question type), shows progress bars, supports bf16 autocast, gradient
clipping, early stopping and checkpoints that resume to the same result, and stops with a
clear message on a NaN or infinite loss.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import pickle
import random
import re
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .validation import (
    check_bool,
    check_choice,
    check_device,
    check_float,
    check_mapping,
    check_optional_positive_int,
    check_positive_int,
    require_keys,
)

__all__ = [
    "seed_everything",
    "pick_device",
    "seeded_generator",
    "seed_worker",
    "to_device",
    "TensorBatches",
    "evaluate",
    "fit",
    "History",
    "save_checkpoint",
    "load_checkpoint",
]

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) and return a seeded generator.

    With ``deterministic=True`` PyTorch is asked to use deterministic algorithms
    (``warn_only=True``: an op without a deterministic version warns instead of
    failing) and ``CUBLAS_WORKSPACE_CONFIG`` is set so cuBLAS is repeatable on GPU.
    Same seed, same results on CPU; across machines compare with tolerances.

    Returns:
        A ``torch.Generator`` seeded with ``seed``, to pass to a ``DataLoader``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeding the legacy global state is the point
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return seeded_generator(seed)


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (for DataLoader shuffling)."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def seed_worker(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=seed_worker)``: seed NumPy/random in each worker."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)  # noqa: NPY002
    random.seed(worker_seed)


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve a device name: ``"auto"`` picks CUDA, then Apple MPS, then CPU.

    An explicit ``"cuda"`` or ``"mps"`` that is not available raises a clear error
    rather than silently falling back to CPU.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as {DEVICE_CHOICES}, got {device!r}")
    kind = device.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {DEVICE_CHOICES} (optionally 'cuda:N'), got {device!r}")
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but no CUDA GPU is available; use 'auto' or 'cpu'")
    if kind == "mps" and not mps_ok:
        raise ValueError("device='mps' was requested but Apple MPS is not available; use 'auto' or 'cpu'")
    return torch.device(device)


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Move every tensor of a batch dict to ``device`` (other values pass through)."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class TensorBatches:
    """Batches of a dict of equally long tensors, re-iterable like a DataLoader but with no
    per-sample Python: each batch is one indexing operation (on whatever device the
    tensors live, so the whole set can sit on a GPU).

    Args:
        tensors: name -> tensor, all with the same first dimension.
        batch_size: samples per batch (the last batch may be smaller).
        shuffle: a new random order every pass, drawn from ``generator``.
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor], batch_size: int, shuffle: bool = False,
                 generator: torch.Generator | None = None) -> None:
        check_mapping("tensors", tensors, "a dict name -> tensor")
        if not tensors:
            raise ValueError("tensors={}: expected at least one tensor")
        for name, t in tensors.items():
            if not isinstance(t, torch.Tensor) or t.dim() == 0:
                what = f"a {t.dim()}-d tensor" if isinstance(t, torch.Tensor) else type(t).__name__
                raise TypeError(f"tensors[{name!r}] is {what}: expected a tensor with a first (sample) dimension")
        lengths = {name: len(t) for name, t in tensors.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"all tensors must have the same length, got {lengths}")
        check_positive_int("batch_size", batch_size)
        check_bool("shuffle", shuffle)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator={generator!r}: expected None or a torch.Generator")
        self.tensors, self.batch_size, self.shuffle = dict(tensors), batch_size, shuffle
        self.generator = generator
        self.size = next(iter(lengths.values()))

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.size, generator=self.generator)
        else:
            order = torch.arange(self.size)
        for start in range(0, self.size, self.batch_size):
            index = order[start : start + self.batch_size]
            yield {name: t[index.to(t.device)] for name, t in self.tensors.items()}


# ---------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------


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
# Checkpoints
# ---------------------------------------------------------------------------------


def _rng_state(generator: torch.Generator | None) -> dict[str, Any]:
    numpy_state = np.random.get_state()  # noqa: NPY002
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        # weights_only loading accepts tensors and plain containers, not numpy arrays
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "generator": generator.get_state() if generator is not None else None,
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any], generator: torch.Generator | None) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))  # noqa: NPY002
    if generator is not None and state.get("generator") is not None:
        generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


CHECKSUM_KEY = "__checksum__"


def _checksum(contents: Any) -> str:
    """SHA-256 of every tensor (its place in the contents, dtype, shape and bytes).

    Also rejects NumPy objects, which ``torch.load(weights_only=True)`` refuses: better a
    clear error when saving than a checkpoint that cannot be loaded."""
    digest = hashlib.sha256()

    def visit(value: Any, where: str) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach()
            digest.update(f"{where}|{t.dtype}|{tuple(t.shape)}|".encode())
            if t.device.type != "meta":
                t = t.to_dense() if t.layout != torch.strided else t
                digest.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
        elif isinstance(value, Mapping):
            for k, v in value.items():
                visit(v, f"{where}[{k!r}]")
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                visit(v, f"{where}[{i}]")
        elif type(value).__module__ == "numpy":
            raise TypeError(
                f"checkpoint entry {where} is a numpy {type(value).__name__}: expected a tensor or a plain "
                "Python value (use .item(), .tolist() or torch.from_numpy)"
            )

    visit(contents, "contents")
    return "sha256:" + digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, **contents: Any) -> None:
    """``torch.save`` to a temporary file, then rename: never a half-written checkpoint
    (and no temporary file left behind when the write fails).

    A checksum of the tensors is stored with them (under ``"__checksum__"``), and
    :func:`load_checkpoint` verifies it. The file still loads with plain
    ``torch.load(path, weights_only=True)``, which returns the checksum as one more entry.
    """
    path = Path(path)
    if CHECKSUM_KEY in contents:
        raise ValueError(f"{CHECKSUM_KEY!r} is reserved for the checksum save_checkpoint stores")
    if path.is_dir():
        raise ValueError(f"path={str(path)!r}: expected a file path, got a directory")
    checksum = _checksum(contents)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save({**contents, CHECKSUM_KEY: checksum}, tmp)
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, (pickle.PicklingError, AttributeError, TypeError)):  # an object pickle cannot save
            message = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            raise TypeError(f"could not save a checkpoint to {path}: {type(error).__name__}: {message}") from error
        raise


def _unreadable_reason(path: Path, error: BaseException) -> str:
    """Why torch.load failed, in words (never PyTorch's advice to load unsafely)."""
    if not zipfile.is_zipfile(path):
        return "not a complete zip archive written by torch.save: truncated, or another kind of file"
    refused = re.search(r"Unsupported global: (?:GLOBAL )?([\w.]+)", str(error))
    if refused:
        return f"it holds a {refused.group(1)}, which a safe (weights_only) load refuses"
    return f"corrupted archive ({type(error).__name__})"


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain data only) and
    verify the checksum :func:`save_checkpoint` stored with it.

    Raises ``FileNotFoundError`` if there is no file, and ``ValueError("PATH is not a valid
    checkpoint (why)")`` for a directory, an empty, truncated or corrupted file, another
    kind of file, or tensors that do not match their checksum. Checkpoints written before
    checksums were stored (no ``"__checksum__"`` entry) load without verification.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")

    def invalid(why: str) -> ValueError:
        return ValueError(f"{path} is not a valid checkpoint ({why})")

    if path.is_dir():
        raise invalid("it is a directory")
    if path.stat().st_size == 0:
        raise invalid("the file is empty")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - every failure to read is "not a valid checkpoint"
        raise invalid(_unreadable_reason(path, error)) from None
    if isinstance(state, dict) and CHECKSUM_KEY in state:
        stored = state.pop(CHECKSUM_KEY)
        if stored != _checksum(state):
            raise invalid("its tensors do not match the checksum saved with them: the file is corrupted")
    return state


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


@dataclass
class History:
    """Per-epoch records of :func:`fit` (a list of dicts) plus the best epoch."""

    epochs: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

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
    progress: bool = True,
    description: str = "training",
    max_seconds: float | None = None,
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

    Each epoch's row records ``seconds`` (training + validation) and ``train_seconds``.
    On a GPU the loss is checked for NaN every 32 steps, not every step, so the GPU is
    not stalled by a host sync each step (the error still names the first bad step).

    Raises:
        FloatingPointError: the loss became NaN or infinite (names the epoch and step).
    """
    from .notebook import progress as progress_bar

    check_positive_int("epochs", epochs)
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
    device = check_device("device", device)
    model.to(device)
    history = History()
    best_loss, best_state, stale = math.inf, None, 0
    start_epoch = 0
    if resume:
        if checkpoint_path is None:
            raise ValueError("resume=True needs checkpoint_path")
        if Path(checkpoint_path).exists():
            state = load_checkpoint(checkpoint_path, map_location=device)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
            history = History(epochs=list(state["history"]), best_epoch=state["best_epoch"])
            best_loss, stale = state["best_loss"], state["stale"]
            best_state = state.get("best_model")
            start_epoch = len(history.epochs)
            _set_rng_state(state["rng"], generator)

    check_every = 1 if device.type == "cpu" else 32  # steps between NaN checks (each one syncs a GPU)
    spent = 0.0
    epoch_bar = progress_bar(range(start_epoch, epochs), desc=description, disable=not progress)
    for epoch in epoch_bar:
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
            total_loss += loss.detach() * len(target)
            correct += (logits.argmax(-1) == target).sum()
            count += len(target)
        if count == 0:
            raise ValueError("fit got no training batches")
        _check_finite(unchecked, epoch, step + 2 - len(unchecked))
        if scheduler is not None:
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
            result = evaluate(model, val_batches, target_key=target_key, group_key=group_key,
                              group_names=group_names, device=device, precision=precision, loss_fn=loss_fn)
            row.update(val_loss=result["loss"], val_acc=result["acc"], val_acc_by_group=result["acc_by_group"])
            if result["loss"] < best_loss:
                best_loss, stale, history.best_epoch = result["loss"], 0, epoch + 1
                if early_stopping_patience is not None:
                    best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
        row["seconds"] = time.perf_counter() - started
        spent += row["seconds"]
        history.epochs.append(row)
        epoch_bar.set_postfix({k: round(v, 4) for k, v in row.items() if k in ("train_loss", "val_loss", "val_acc")})
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                model=model.state_dict(),
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict() if scheduler is not None else None,
                history=history.epochs,
                best_epoch=history.best_epoch,
                best_loss=best_loss,
                stale=stale,
                best_model=best_state,
                rng=_rng_state(generator),
            )
        if early_stopping_patience is not None and stale >= early_stopping_patience:
            history.stopped_early = True
            break
        if max_seconds is not None and spent >= max_seconds:
            break
    if early_stopping_patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    return history
