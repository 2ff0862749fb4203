"""Tests for the notebook plumbing: setup/Param validation, smoke mode, metrics, seeding."""

import json
import math

import numpy as np
import pytest
import torch

from mmtutorial.course.notebook import METRICS_MIMETYPE, Param, read_metrics, record_metrics, setup
from mmtutorial.training import pick_device, seed_everything


def test_setup_validates_and_applies_smoke(monkeypatch, capsys):
    monkeypatch.delenv("MMTUTORIAL_SMOKE", raising=False)
    run = setup(smoke=False, seed=3, epochs=Param(50, int, low=1, smoke=2), lr=Param(1, float, low=0))
    assert (run.smoke, run.epochs, run.lr) == (False, 50, 1.0)
    assert run.device == torch.device("cpu") or run.device.type in ("cuda", "mps")
    out = capsys.readouterr().out
    assert "torch " in out and "epochs=50" in out
    run = setup(smoke=True, epochs=Param(50, int, low=1, smoke=2), quiet=True)
    assert run.smoke and run.epochs == 2


def test_smoke_from_environment(monkeypatch):
    monkeypatch.setenv("MMTUTORIAL_SMOKE", "1")
    run = setup(smoke=False, quiet=True, n=Param(1000, int, smoke=10))
    assert run.smoke and run.n == 10


@pytest.mark.parametrize(
    "param, match",
    [
        (Param("ten", int), r"n='ten': expected int"),
        (Param(True, int), r"n=True: expected int"),
        (Param(-1, int, low=0), r"n=-1: expected a value >= 0"),
        (Param(5, int, high=4), r"n=5: expected a value <= 4"),
        (Param("adam", str, choices=["sgd"]), r"n='adam': expected one of \['sgd'\]"),
        (Param(math.nan, float), r"expected a finite number"),
    ],
)
def test_param_errors_name_value_and_expectation(param, match):
    with pytest.raises(ValueError, match=match):
        setup(quiet=True, n=param)


def test_setup_rejects_bad_core_parameters():
    with pytest.raises(ValueError, match="smoke='yes'"):
        setup(smoke="yes", quiet=True)
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -2"):
        setup(seed=-2, quiet=True)
    with pytest.raises(ValueError, match="device must be one of"):
        setup(device="tpu", quiet=True)
    with pytest.raises(TypeError, match="Param"):
        setup(quiet=True, n=3)


def test_run_unknown_attribute_lists_parameters():
    run = setup(quiet=True, n=Param(3, int))
    with pytest.raises(AttributeError, match=r"no parameter 'm'.*\['n'\]"):
        run.m  # noqa: B018


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert pick_device("auto") in (torch.device("cpu"), torch.device("mps"))
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")


def test_seed_everything_is_repeatable():
    seed_everything(7)
    a = (torch.rand(3), np.random.rand(3))  # noqa: NPY002
    g = seed_everything(7)
    b = (torch.rand(3), np.random.rand(3))  # noqa: NPY002
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert torch.equal(torch.randperm(10, generator=g), torch.randperm(10, generator=seed_everything(7)))


def test_record_and_read_metrics(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    monkeypatch.setenv("MMTUTORIAL_METRICS_PATH", str(path))
    record_metrics({"acc": np.float32(0.5), "n": torch.tensor(3), "ok": True, "per": {"a": 1}})
    clean = {"acc": 0.5, "n": 3, "ok": True, "per": {"a": 1}}
    assert json.loads(path.read_text()) == clean
    notebook = {
        "cells": [
            {"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {METRICS_MIMETYPE: clean}}]}
        ]
    }
    nb_path = tmp_path / "nb.ipynb"
    nb_path.write_text(json.dumps(notebook))
    assert read_metrics(nb_path) == clean


def test_record_metrics_rejects_nan_and_odd_values():
    with pytest.raises(ValueError, match="'loss' is nan"):
        record_metrics({"loss": float("nan")})
    with pytest.raises(ValueError, match="'w': expected a scalar"):
        record_metrics({"w": torch.ones(2)})
    with pytest.raises(ValueError, match="non-empty dict"):
        record_metrics({})


def test_read_metrics_missing(tmp_path):
    nb_path = tmp_path / "nb.ipynb"
    nb_path.write_text(json.dumps({"cells": []}))
    with pytest.raises(ValueError, match="no recorded metrics"):
        read_metrics(nb_path)


def test_clean_notebook_shows_temporary_folders_as_tmpdir(tmp_path):
    import tempfile

    import nbformat

    from mmtutorial.experiments.runner import clean_notebook

    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(path)")
    printed = f"results in {tempfile.gettempdir()}/sweep-abc/fusion/results.csv\n"
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    notebook.cells = [cell]
    nbformat.write(notebook, tmp_path / "n.ipynb")
    clean_notebook(tmp_path / "n.ipynb")
    text = nbformat.read(tmp_path / "n.ipynb", as_version=4).cells[0].outputs[0]["text"]
    assert text == "results in $TMPDIR/sweep-abc/fusion/results.csv\n"
