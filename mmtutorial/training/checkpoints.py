"""Checkpoints that load safely (``torch.load(..., weights_only=True)``), are written
atomically, carry a checksum of their tensors, and say clearly when a file is not one."""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["save_checkpoint", "load_checkpoint", "CHECKSUM_KEY"]


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
