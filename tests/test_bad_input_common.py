"""The shared argument checks (mmtutorial.validation), and the helpers every
test_bad_input_*.py file uses to say what a *clear* error is.

A clear error is a ``ValueError`` / ``TypeError`` / ``KeyError`` (or ``IndexError`` /
``FileNotFoundError`` where Python's protocols want one) raised by an explicit ``raise``
in the package, whose message is one line naming the argument, the value and what was
expected. Anything else (a ``RuntimeError`` from deep inside torch, a bare ``KeyError:
'label'``, a ``ZeroDivisionError``) is an obscure error, and a test here fails on it.
"""

from __future__ import annotations

import linecache
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mmtutorial import validation as V


def _innermost(tb):
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def raises_clearly(error: type[Exception], fn, *fragments: str) -> str:
    """``fn()`` raises exactly ``error`` from an explicit ``raise`` in the package, with a
    one-line message that contains every fragment; returns the message."""
    with pytest.raises(error) as info:
        fn()
    exc = info.value
    assert type(exc) is error, f"expected {error.__name__}, got {type(exc).__name__}: {exc}"
    tb = _innermost(exc.__traceback__)
    filename = tb.tb_frame.f_code.co_filename
    line = linecache.getline(filename, tb.tb_lineno).strip()
    assert "/mmtutorial/" in filename and line.startswith("raise"), (
        f"raised at {filename}:{tb.tb_lineno} ({line!r}), not by an explicit raise in the package: {exc}"
    )
    message = exc.args[0] if exc.args else ""
    assert isinstance(message, str) and message and "\n" not in message.strip(), f"not a one-line message: {message!r}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def backward_grads(output: torch.Tensor, *tensors: torch.Tensor, seed: int = 0) -> list[torch.Tensor]:
    """Gradients of a random projection of ``output`` with respect to ``tensors``."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.randn(output.shape, generator=g, dtype=output.dtype)
    grads = torch.autograd.grad((output * weights).sum(), tensors, allow_unused=True)
    return [torch.zeros_like(t) if grad is None else grad for t, grad in zip(tensors, grads, strict=True)]


def all_finite(*tensors: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


POISON = st.sampled_from([math.nan, math.inf, -math.inf, 1e30, -1e30])


# --- the checks themselves ------------------------------------------------------------


@pytest.mark.parametrize("check", [V.check_positive_int, V.check_nonnegative_int, V.check_int])
@pytest.mark.parametrize("value", [True, False, 2.0, "3", None, np.float64(1.0)])
def test_an_int_is_an_int_not_a_bool_a_float_or_a_string(check, value):
    raises_clearly(TypeError, lambda: check("size", value), "size=")


def test_int_checks_accept_numpy_ints_and_name_the_bounds():
    assert V.check_positive_int("n", np.int64(3)) == 3 and type(V.check_positive_int("n", np.int64(3))) is int
    assert raises_clearly(ValueError, lambda: V.check_positive_int("n", 0)) == "n=0: expected a positive int"
    assert raises_clearly(ValueError, lambda: V.check_nonnegative_int("n", -1)) == "n=-1: expected a non-negative int"
    assert raises_clearly(ValueError, lambda: V.check_int("n", 9, minimum=0, maximum=5)) == (
        "n=9: expected an int >= 0 and <= 5"
    )
    assert V.check_optional_positive_int("n", None) is None


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5)))
def test_probability_accepts_exactly_0_to_1(p):
    ok = 0 <= p < 1
    if ok:
        assert V.check_probability("p", p) == float(p)
    else:
        raises_clearly(ValueError, lambda: V.check_probability("p", p), "p=", "[0, 1)")
    if 0 <= p <= 1:
        assert V.check_probability("p", p, allow_one=True) == float(p)


@pytest.mark.parametrize("value", ["0.1", True, None, [0.1]])
def test_probability_of_the_wrong_type(value):
    raises_clearly(TypeError, lambda: V.check_probability("dropout", value), "dropout=")


@pytest.mark.parametrize(
    "value, error",
    [
        (math.nan, ValueError),
        (math.inf, ValueError),
        (0.0, ValueError),
        ("1", TypeError),
        (True, TypeError),
    ],
)
def test_float_checks_reject_nan_inf_and_bounds(value, error):
    raises_clearly(error, lambda: V.check_float("scale", value, minimum=0.0, min_inclusive=False), "scale=")


def test_bool_choice_and_dims():
    assert V.check_bool("flag", False) is False
    raises_clearly(TypeError, lambda: V.check_bool("flag", "no"), "flag='no': expected True or False")
    assert V.check_choice("kind", "gru", ("gru", "transformer")) == "gru"
    raises_clearly(ValueError, lambda: V.check_choice("kind", 1, ("1", "2")), "kind=1")
    assert V.check_dims("dims", (2, 3)) == [2, 3]
    raises_clearly(TypeError, lambda: V.check_dims("dims", 3), "dims=3")
    raises_clearly(ValueError, lambda: V.check_dims("dims", [2, 0]), "dims=[2, 0]")
    raises_clearly(ValueError, lambda: V.check_dims("dims", [2], count=2), "with 2 entries")


def test_tensor_checks_name_shape_and_dtype():
    raises_clearly(TypeError, lambda: V.check_tensor("x", [1.0], dtype="float"), "x=[1.0]")
    message = raises_clearly(
        TypeError,
        lambda: V.check_tensor("images", torch.zeros(2, dtype=torch.uint8), dtype="float"),
    )
    assert "images.float() / 255" in message
    raises_clearly(
        ValueError,
        lambda: V.check_tensor("x", torch.zeros(2, 3), shape=(None, 4)),
        "x=<tensor of shape (2, 3)",
    )
    raises_clearly(
        TypeError,
        lambda: V.check_input_dtype("x", torch.zeros(1, dtype=torch.float64), torch.float32),
        "float32",
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts: no dtype complaint
        V.check_input_dtype("x", torch.zeros(1, dtype=torch.bfloat16), torch.float32)


def test_index_range_and_keys():
    V.check_index_range("ids", torch.tensor([0, 4]), 5)
    message = raises_clearly(ValueError, lambda: V.check_index_range("ids", torch.tensor([0, 5]), 5))
    assert re.search(r"in \[0, 4\], got values in \[0, 5\]", message)
    message = raises_clearly(KeyError, lambda: V.require_keys({"x": 1}, ["label"], reader="fit"))
    assert message == "batch['label'] is missing: fit reads it; the batch has ['x']"
    raises_clearly(ValueError, lambda: V.check_device("device", "gpu"), "device='gpu'")
    assert V.check_device("device", "cpu") == torch.device("cpu")
