"""Every command line with bad input: exit code 2 and one line on stderr that names the bad
value and what was expected; no traceback, nothing written."""

import json
import runpy
from pathlib import Path

import pytest

from mmtutorial import experiments
from mmtutorial.course import classroom, site
from mmtutorial.models import train_vqa
from mmtutorial.models.vqa import HEADS

ROOT = Path(__file__).resolve().parents[1]
NB00 = str(ROOT / "notebooks" / "00_welcome.ipynb")
EXPERIMENT = str(ROOT / "notebooks" / "experiments" / "fusion_experiment.ipynb")
#: train_vqa's smallest run: errors that only the data and the model reveal come after it is built
TINY_RUN = [
    *("--n-train", "8", "--n-val", "4", "--n-test", "4", "--images-per-batch", "4"),
    *("--epochs", "1", "--curriculum-epochs", "1", "--dim", "16", "--hidden", "16", "--device", "cpu", "--no-progress"),
]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "bad.yaml").write_text("grid:\n  seed: [0, 1\n")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "scalar_axis.yaml").write_text("grid:\n  seed: 3\n")
    (tmp_path / "empty_axis.yaml").write_text("grid:\n  seed: []\n")
    (tmp_path / "sections.yaml").write_text("grid:\n  seed: [0]\naxes:\n  x: [1]\n")
    (tmp_path / "ok.yaml").write_text("fixed:\n  smoke: true\n")
    (tmp_path / "corrupt.ipynb").write_text("{not json")
    (tmp_path / "no_parameters.ipynb").write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "results.csv").write_text('garbage,,\n"')
    return tmp_path


def _benchmark(script):
    return runpy.run_path(str(ROOT / "benchmarks" / script))["main"]


def _cases(t):
    """(command, argv, expected text in the error line)."""
    run = experiments.main
    return {
        "run: missing notebook": (run, ["run", "nope.ipynb", "--out", f"{t}/o"], "no notebook at nope.ipynb"),
        "run: not a notebook": (run, ["run", str(ROOT / "README.md"), "--out", f"{t}/o"], "is not a notebook"),
        "run: a folder": (run, ["run", str(ROOT / "notebooks"), "--out", f"{t}/o"], "is not a notebook"),
        "run: corrupt notebook": (run, ["run", f"{t}/corrupt.ipynb", "--out", f"{t}/o"], "is not a valid notebook"),
        "run: no parameters cell": (
            run,
            ["run", f"{t}/no_parameters.ipynb", "--out", f"{t}/o"],
            "has no cell tagged 'parameters'",
        ),
        "run: unknown parameter": (
            run,
            ["run", NB00, "--out", f"{t}/o", "-p", "smok", "True"],
            "unknown parameter(s) ['smok']; valid parameters are smoke=False",
        ),
        "run: --out is a file": (run, ["run", NB00, "--out", f"{t}/a_file"], "is a file, expected a folder"),
        "run: no --out": (run, ["run", NB00], "one of the arguments --out --in-place is required"),
        "sweep: YAML syntax": (
            run,
            ["sweep", EXPERIMENT, "--grid", f"{t}/bad.yaml", "--out", f"{t}/s"],
            "bad.yaml: not valid YAML",
        ),
        "sweep: YAML list": (
            run,
            ["sweep", EXPERIMENT, "--grid", f"{t}/list.yaml", "--out", f"{t}/s"],
            "expected a mapping of parameters, got list",
        ),
        "sweep: scalar axis": (
            run,
            ["sweep", EXPERIMENT, "--grid", f"{t}/scalar_axis.yaml", "--out", f"{t}/s"],
            "grid axis 'seed': expected a non-empty list of values, got 3",
        ),
        "sweep: empty axis": (
            run,
            ["sweep", EXPERIMENT, "--grid", f"{t}/empty_axis.yaml", "--out", f"{t}/s"],
            "expected a non-empty list",
        ),
        "sweep: unknown section": (
            run,
            ["sweep", EXPERIMENT, "--grid", f"{t}/sections.yaml", "--out", f"{t}/s"],
            "unknown grid section(s) ['axes']",
        ),
        "sweep: missing grid": (
            run,
            ["sweep", EXPERIMENT, "--grid", f"{t}/nope.yaml", "--out", f"{t}/s"],
            "no grid file at",
        ),
        "sweep: workers 0": (
            run,
            ["sweep", EXPERIMENT, "--grid", f"{t}/ok.yaml", "--out", f"{t}/s", "--workers", "0"],
            "argument --workers: expected an int >= 1, got '0'",
        ),
        "sweep: --out is a file": (
            run,
            ["sweep", EXPERIMENT, "--grid", f"{t}/ok.yaml", "--out", f"{t}/a_file"],
            "is a file, expected a folder",
        ),
        "report: no sweep": (run, ["report", f"{t}/nothing"], "holds no results.csv"),
        "report: corrupt results.csv": (run, ["report", f"{t}/report"], "results.csv is unreadable"),
        "unknown command": (run, ["sweeep"], "argument command: invalid choice: 'sweeep'"),
        "site: no notebooks": (site.main, ["--notebooks", f"{t}/nope", "--out", f"{t}/site"], "no course notebooks"),
        "site: --out is a file": (
            site.main,
            ["--notebooks", str(ROOT / "notebooks"), "--out", f"{t}/a_file"],
            "is a file, expected a folder",
        ),
        "classroom: missing path": (classroom.main, ["nowhere", "--out", f"{t}/c"], "not a notebook or a folder"),
        "classroom: corrupt notebook": (
            classroom.main,
            [f"{t}/corrupt.ipynb", "--out", f"{t}/c"],
            "corrupt.ipynb is not a valid notebook",
        ),
        "classroom: --out is a file": (classroom.main, [NB00, "--out", f"{t}/a_file"], "is a file, expected a folder"),
        "train_vqa: n-train 0": (
            train_vqa.main,
            ["--n-train", "0", "--checkpoint", f"{t}/x.pt"],
            "argument --n-train: expected an int >= 1, got '0'",
        ),
        "train_vqa: images-per-batch 0": (
            train_vqa.main,
            ["--images-per-batch", "0", "--checkpoint", f"{t}/x.pt"],
            "argument --images-per-batch: expected an int >= 1",
        ),
        "train_vqa: lr -1": (
            train_vqa.main,
            ["--lr", "-1", "--checkpoint", f"{t}/x.pt"],
            "argument --lr: expected a positive finite number, got '-1'",
        ),
        "train_vqa: lr nan": (train_vqa.main, ["--lr", "nan", "--checkpoint", f"{t}/x.pt"], "got 'nan'"),
        "train_vqa: head-lr 0": (
            train_vqa.main,
            ["--head-lr", "0", "--checkpoint", f"{t}/x.pt"],
            "argument --head-lr: expected a positive finite number, got '0'",
        ),
        "train_vqa: ema-decay 1": (
            train_vqa.main,
            ["--ema-decay", "1", "--checkpoint", f"{t}/x.pt"],
            "argument --ema-decay: expected a number strictly between 0 and 1, got '1'",
        ),
        "train_vqa: budget 0": (
            train_vqa.main,
            ["--budget-seconds", "0", "--checkpoint", f"{t}/x.pt"],
            "argument --budget-seconds",
        ),
        "train_vqa: relational-first-hop-delay -1": (
            train_vqa.main,
            ["--relational-first-hop-delay", "-1", "--checkpoint", f"{t}/x.pt"],
            "argument --relational-first-hop-delay: expected an int >= 0, got '-1'",
        ),
        "train_vqa: distance-bias-exclude -1": (
            train_vqa.main,
            ["--distance-bias-exclude", "-1", "--checkpoint", f"{t}/x.pt"],
            "argument --distance-bias-exclude",
        ),
        "train_vqa: relate-hop": (
            train_vqa.main,
            ["--relate-hop", "second", "--checkpoint", f"{t}/x.pt"],
            "argument --relate-hop: invalid choice: 'second'",
        ),
        "train_vqa: distance-bias-avoid": (
            train_vqa.main,
            ["--distance-bias-avoid", "max", "--checkpoint", f"{t}/x.pt"],
            "argument --distance-bias-avoid: invalid choice: 'max'",
        ),
        "train_vqa: distance-positions": (
            train_vqa.main,
            ["--distance-positions", "grid", "--checkpoint", f"{t}/x.pt"],
            "argument --distance-positions: invalid choice: 'grid'",
        ),
        "train_vqa: hold without a distance-biased hop": (
            train_vqa.main,
            ["--head", "concat", "--hold-distance-bias", *TINY_RUN, "--checkpoint", f"{t}/x.pt"],
            "hold_distance_bias=True needs a cross_attention model with distance_bias=True",
        ),
        "train_vqa: first-hop delay without a distance-biased hop": (
            train_vqa.main,
            ["--head", "film", "--relational-first-hop-delay", "1", *TINY_RUN, "--checkpoint", f"{t}/x.pt"],
            "relational_first_hop_delay=1 needs a cross_attention model with distance_bias=True",
        ),
        "train_vqa: head": (
            train_vqa.main,
            ["--head", "mlp", "--checkpoint", f"{t}/x.pt"],
            "argument --head: invalid choice: 'mlp'",
        ),
        "train_vqa: curriculum-until 1": (
            train_vqa.main,
            ["--curriculum-until", "1", "--checkpoint", f"{t}/x.pt"],
            "argument --curriculum-until: expected a number strictly between 0 and 1, got '1'",
        ),
        "train_vqa: max-curriculum-epochs alone": (
            train_vqa.main,
            ["--max-curriculum-epochs", "25", "--n-train", "4", "--checkpoint", f"{t}/x.pt"],
            "max_curriculum_epochs=25 bounds curriculum_until's extension: set curriculum_until too",
        ),
        "train_vqa: checkpoint is a folder": (train_vqa.main, ["--checkpoint", str(t)], "is a folder, expected a file"),
        "train_vqa: odd dim": (
            train_vqa.main,
            ["--dim", "7", "--n-train", "4", "--checkpoint", f"{t}/x.pt"],
            "dim must be even",
        ),
        "train_vqa: device": (
            train_vqa.main,
            ["--device", "tpu", "--n-train", "4", "--checkpoint", f"{t}/x.pt"],
            "device must be one of",
        ),
        "benchmark vqa: n-train 0": (
            _benchmark("vqa_sort_of_clevr.py"),
            ["--n-train", "0", "--out", f"{t}/b"],
            "argument --n-train: expected an int >= 1",
        ),
        "benchmark vqa: num-objects 7": (
            _benchmark("vqa_sort_of_clevr.py"),
            ["--num-objects", "7", "--out", f"{t}/b"],
            "argument --num-objects: invalid choice: 7 (choose from 2, 3, 4, 5, 6)",
        ),
        "benchmark vqa: relational-first-hop-delay -1": (
            _benchmark("vqa_sort_of_clevr.py"),
            ["--relational-first-hop-delay", "-1", "--out", f"{t}/b"],
            "argument --relational-first-hop-delay: expected an int >= 0, got '-1'",
        ),
        "benchmark vqa: n-val 0": (
            _benchmark("vqa_sort_of_clevr.py"),
            ["--n-val", "0", "--out", f"{t}/b"],
            "argument --n-val: expected an int >= 1",
        ),
        "benchmark vqa: budget -1": (
            _benchmark("vqa_sort_of_clevr.py"),
            ["--budget-seconds", "-1", "--out", f"{t}/b"],
            "argument --budget-seconds",
        ),
        "benchmark vqa: merge and summarize": (
            _benchmark("vqa_sort_of_clevr.py"),
            ["--merge", f"{t}/a.json", "--summarize-only", "--out", f"{t}/b"],
            "argument --merge: not with --summarize-only or --throughput-only",
        ),
        "benchmark vqa: avoid mode": (
            _benchmark("vqa_sort_of_clevr.py"),
            ["--distance-bias-avoid", "max", "--out", f"{t}/b"],
            "argument --distance-bias-avoid: invalid choice: 'max'",
        ),
        "benchmark vqa: distance positions": (
            _benchmark("vqa_sort_of_clevr.py"),
            ["--distance-positions", "grid", "--out", f"{t}/b"],
            "argument --distance-positions: invalid choice: 'grid'",
        ),
        "benchmark vqa: distance-bias heads 0": (
            _benchmark("vqa_sort_of_clevr.py"),
            ["--distance-bias-heads", "0", "--out", f"{t}/b"],
            "argument --distance-bias-heads: expected an int >= 1",
        ),
        "benchmark vqa: device": (
            _benchmark("vqa_sort_of_clevr.py"),
            ["--device", "tpu", "--out", f"{t}/b"],
            "device must be one of",
        ),
        # one flag of the VQA benchmark, one bad value, the whole expected reason
        **{
            f"benchmark vqa: {flag} {value}": (
                _benchmark("vqa_sort_of_clevr.py"),
                [f"--{flag}", value, "--out", f"{t}/b"],
                f"argument --{flag}: expected {expected}, got {value!r}",
            )
            for flag, value, expected in (
                ("distance-bias-scale", "0", "a positive finite number"),
                ("distance-bias-scale", "-1", "a positive finite number"),
                ("distance-bias-scale", "nan", "a positive finite number"),
                ("distance-bias-scale", "big", "a positive number"),
                ("cnn-layers", "0", "an int >= 1"),
                ("cnn-layers", "deep", "an int >= 1"),
                ("cnn-merge", "0", "an int >= 1"),
                ("ema-decay", "0", "a number strictly between 0 and 1 or 'none'"),
                ("ema-decay", "1", "a number strictly between 0 and 1 or 'none'"),
                ("ema-decay", "nan", "a number strictly between 0 and 1 or 'none'"),
                ("ema-decay", "slow", "a number strictly between 0 and 1 or 'none'"),
                ("head-hidden", "concat", "HEAD=WIDTH with WIDTH an int >= 1"),
                ("head-hidden", "concat=0", "HEAD=WIDTH with WIDTH an int >= 1"),
                ("head-hidden", "concat=wide", "HEAD=WIDTH with WIDTH an int >= 1"),
                ("head-hidden", "mlp=512", f"HEAD=WIDTH with HEAD one of {list(HEADS)}"),
                ("head-dropout", "concat=1", "HEAD=P with P a number in [0, 1)"),
                ("head-dropout", "concat=-0.1", "HEAD=P with P a number in [0, 1)"),
                ("head-dropout", "concat=nan", "HEAD=P with P a number in [0, 1)"),
                ("head-dropout", "concat", "HEAD=P with P a number in [0, 1)"),
                ("head-dropout", "mlp=0.5", f"HEAD=P with HEAD one of {list(HEADS)}"),
                ("head-epochs", "concat=30", "HEAD=C+E with C an int >= 0 and E an int >= 1"),
                ("head-epochs", "concat=30+0", "HEAD=C+E with C an int >= 0 and E an int >= 1"),
                ("head-epochs", "concat=-1+5", "HEAD=C+E with C an int >= 0 and E an int >= 1"),
                ("head-epochs", "mlp=3+2", f"HEAD=C+E with HEAD one of {list(HEADS)}"),
                ("fusion-lr", "transformer=0", "HEAD=LR with LR a positive finite number"),
                ("fusion-lr", "transformer=inf", "HEAD=LR with LR a positive finite number"),
                ("fusion-lr", "transformer", "HEAD=LR with LR a positive finite number"),
                ("fusion-lr", "mlp=5e-4", f"HEAD=LR with HEAD one of {list(HEADS)}"),
            )
        },
        "benchmark attention: length 0": (
            _benchmark("attention_scaling.py"),
            ["--lengths", "0", "--out", f"{t}/b"],
            "argument --lengths: expected an int >= 1",
        ),
        "benchmark attention: window -1": (
            _benchmark("attention_scaling.py"),
            ["--window", "-1", "--out", f"{t}/b"],
            "argument --window: expected an int >= 0",
        ),
    }


CASES = sorted(_cases(Path("/placeholder")))


@pytest.mark.parametrize("case", CASES)
def test_bad_command_line_input_gives_one_clear_line(files, capsys, case):
    command, argv, expected = _cases(files)[case]
    before = sorted(p.name for p in files.iterdir())
    try:
        code = command(argv)
    except SystemExit as exit:  # argparse errors exit from inside main
        code = exit.code
    captured = capsys.readouterr()
    error = captured.err.strip()
    assert code == 2, (code, captured)
    assert len(error.splitlines()) == 1, error
    assert error.startswith("error: ") and expected in error, error
    assert "Traceback" not in captured.out + captured.err
    assert sorted(p.name for p in files.iterdir()) == before, "a rejected command writes nothing"
