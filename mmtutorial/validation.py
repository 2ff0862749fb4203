"""Argument checks shared by the whole package: one place, one message format.

Every check raises with a one-line message ``name=value: expected ...``:

* ``TypeError`` for a wrong type or dtype (``bool`` is never accepted where a number is
  expected: ``True`` is not a size),
* ``ValueError`` for a wrong value, size or shape,
* ``KeyError`` for a missing batch key (the message names the keys the batch has).

The checks are cheap (no tensor data is read, except by :func:`check_index_range`),
so modules call them at construction and at their public boundary, never inside
inner loops.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "describe",
    "check_int",
    "check_positive_int",
    "check_nonnegative_int",
    "check_optional_positive_int",
    "check_float",
    "check_probability",
    "check_bool",
    "check_choice",
    "check_dims",
    "check_tensor",
    "check_input_dtype",
    "check_index_range",
    "check_mapping",
    "require_keys",
    "check_device",
]


def describe(value: Any) -> str:
    """A short, one-line ``repr`` for messages (tensors by shape and dtype)."""
    if isinstance(value, Tensor):
        return f"<tensor of shape {tuple(value.shape)}, {str(value.dtype).replace('torch.', '')}>"
    text = repr(value)
    text = " ".join(text.split())  # one line
    return text if len(text) <= 80 else text[:77] + "..."


def _fail(error: type[Exception], name: str, value: Any, expected: str) -> Exception:
    return error(f"{name}={describe(value)}: expected {expected}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An ``int`` (not a ``bool``, not a float) in ``[minimum, maximum]``; returns it as ``int``."""
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum}")
    if maximum is not None:
        bounds.append(f"<= {maximum}")
    expected = "an int" + (" " + " and ".join(bounds) if bounds else "")
    if not _is_int(value):
        raise _fail(TypeError, name, value, expected)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _fail(ValueError, name, value, expected)
    return int(value)


def check_positive_int(name: str, value: Any) -> int:
    """An ``int >= 1`` (sizes, counts)."""
    if _is_int(value) and value >= 1:
        return int(value)
    error = TypeError if not _is_int(value) else ValueError
    raise _fail(error, name, value, "a positive int")


def check_nonnegative_int(name: str, value: Any) -> int:
    """An ``int >= 0`` (lengths that may be empty)."""
    if _is_int(value) and value >= 0:
        return int(value)
    error = TypeError if not _is_int(value) else ValueError
    raise _fail(error, name, value, "a non-negative int")


def check_optional_positive_int(name: str, value: Any) -> int | None:
    """None, or an ``int >= 1``."""
    if value is None:
        return None
    if _is_int(value) and value >= 1:
        return int(value)
    error = TypeError if not _is_int(value) else ValueError
    raise _fail(error, name, value, "None or a positive int")


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
    allow_inf: bool = False,
) -> float:
    """A real number (int or float, not bool, not a string), finite unless ``allow_inf``,
    within the given bounds; returns it as ``float``."""
    parts = ["a finite number" if not allow_inf else "a number (not NaN)"]
    if minimum is not None:
        parts.append(f"{'>=' if min_inclusive else '>'} {minimum:g}")
    if maximum is not None:
        parts.append(f"{'<=' if max_inclusive else '<'} {maximum:g}")
    expected = " ".join(parts[:1]) + (" " + " and ".join(parts[1:]) if len(parts) > 1 else "")
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise _fail(TypeError, name, value, expected)
    number = float(value)
    if math.isnan(number) or (not allow_inf and math.isinf(number)):
        raise _fail(ValueError, name, value, expected)
    if minimum is not None and (number < minimum or (not min_inclusive and number == minimum)):
        raise _fail(ValueError, name, value, expected)
    if maximum is not None and (number > maximum or (not max_inclusive and number == maximum)):
        raise _fail(ValueError, name, value, expected)
    return number


def check_probability(name: str, value: Any, *, allow_one: bool = False) -> float:
    """A probability in ``[0, 1)`` (dropout rates: 1 would drop everything) or ``[0, 1]``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        if 0.0 <= number < 1.0 or (allow_one and number == 1.0):
            return number
        error = ValueError
    else:
        error = TypeError
    raise _fail(error, name, value, f"a probability in [0, 1{']' if allow_one else ')'}")


def check_bool(name: str, value: Any) -> bool:
    """``True`` or ``False`` (a string such as ``"no"`` would be truthy)."""
    if isinstance(value, bool):
        return value
    raise _fail(TypeError, name, value, "True or False")


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """One of ``choices`` (compared with ``==``, types included: ``1`` is not ``"1"``)."""
    try:
        if any(type(value) is type(choice) and value == choice for choice in choices):
            return value
    except Exception:  # an object whose __eq__ fails is not one of the choices
        pass
    raise _fail(ValueError, name, value, f"one of {tuple(choices)}")


def check_dims(name: str, dims: Any, *, count: int | None = None) -> list[int]:
    """A non-empty list or tuple of positive ints (per-modality sizes); ``count`` fixes its length."""
    expected = "a list of positive ints" + (f" with {count} entries" if count else "")
    if not isinstance(dims, (list, tuple)):
        raise _fail(TypeError, name, dims, expected)
    if not dims or (count is not None and len(dims) != count):
        raise _fail(ValueError, name, dims, expected)
    for d in dims:
        if not _is_int(d):
            raise _fail(TypeError, name, dims, expected)
        if d < 1:
            raise _fail(ValueError, name, dims, expected)
    return [int(d) for d in dims]


_DTYPE_KINDS = {
    "float": ("a floating-point", lambda t: t.is_floating_point()),
    "int": (
        "an integer",
        lambda t: not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool,
    ),
    "bool": ("a boolean", lambda t: t.dtype == torch.bool),
    "int_or_bool": (
        "an integer or boolean",
        lambda t: not t.is_floating_point() and not t.is_complex(),
    ),
}


def check_tensor(
    name: str,
    value: Any,
    *,
    dtype: str | None = None,
    dims: int | Iterable[int] | None = None,
    shape: Sequence[int | None] | None = None,
    layout: str | None = None,
) -> Tensor:
    """A ``torch.Tensor`` of a dtype kind (``"float"``, ``"int"``, ``"bool"``,
    ``"int_or_bool"``), a number of dims, and a ``shape`` (``None`` = any size);
    ``layout`` names the dims in the message, e.g. ``"(batch, length, 64)"``."""
    kind = _DTYPE_KINDS[dtype][0] if dtype else "a"
    if layout is None and shape is not None:
        layout = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
    described = f" of shape {layout}" if layout else (f" with {dims} dims" if isinstance(dims, int) else "")
    expected = f"{kind} tensor{described}"
    if not isinstance(value, Tensor):
        raise _fail(TypeError, name, value, expected)
    if dtype and not _DTYPE_KINDS[dtype][1](value):
        hint = ""
        if dtype == "float" and value.dtype == torch.uint8:
            hint = " (uint8 images: convert with images.float() / 255)"
        raise _fail(TypeError, name, value, expected + hint)
    if dims is not None:
        allowed = (dims,) if isinstance(dims, int) else tuple(dims)
        if value.dim() not in allowed:
            raise _fail(ValueError, name, value, expected)
    if shape is not None and (
        value.dim() != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape, strict=True))
    ):
        raise _fail(ValueError, name, value, expected)
    return value


def check_input_dtype(name: str, value: Tensor, expected: torch.dtype) -> None:
    """The input's floating dtype must be the module's parameter dtype (a float64 input to a
    float32 module fails deep in a matmul otherwise). Skipped under autocast, which casts."""
    if value.dtype != expected and not torch.is_autocast_enabled(value.device.type):
        wanted = str(expected).replace("torch.", "")
        raise _fail(
            TypeError,
            name,
            value,
            f"dtype {wanted}, the dtype of the module's parameters (convert the input or the module)",
        )


def check_index_range(name: str, value: Tensor, size: int, *, what: str = "ids") -> None:
    """Every entry of the integer tensor ``value`` lies in ``[0, size)``.

    Reads the tensor (a min/max reduction): cheap next to a model, but on a GPU it would
    force a host sync every call, and under ``torch.compile`` a graph break. So it runs
    only for CPU tensors outside compilation; on a GPU an out-of-range index still stops
    the kernel (a device-side assert), just with a less helpful message.
    """
    if value.device.type != "cpu" or value.numel() == 0 or torch.compiler.is_compiling():
        return
    low, high = int(value.min()), int(value.max())
    if low < 0 or high >= size:
        raise ValueError(f"{name}={describe(value)}: expected {what} in [0, {size - 1}], got values in [{low}, {high}]")


def check_mapping(name: str, value: Any, what: str = "a dict of tensors") -> Mapping:
    """A mapping (a batch dict)."""
    if not isinstance(value, Mapping):
        raise _fail(TypeError, name, value, what)
    return value


def require_keys(batch: Mapping, keys: Iterable[str], *, reader: str) -> None:
    """Raise ``KeyError`` naming the first missing key, who reads it and the keys present."""
    for key in keys:
        if key not in batch:
            present = sorted(str(k) for k in batch)
            raise KeyError(f"batch[{key!r}] is missing: {reader} reads it; the batch has {present}")


def check_device(name: str, value: Any) -> torch.device:
    """A ``torch.device`` or a device string torch understands (``"cpu"``, ``"cuda:0"``)."""
    if isinstance(value, torch.device):
        return value
    if not isinstance(value, str):
        raise _fail(TypeError, name, value, "a device such as 'cpu' or 'cuda'")
    try:
        return torch.device(value)
    except RuntimeError:
        raise _fail(ValueError, name, value, "a device such as 'cpu', 'cuda' or 'cuda:1'") from None
