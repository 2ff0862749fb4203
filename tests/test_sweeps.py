"""Sweeps (mmtutorial.sweeps and `python -m mmtutorial.experiments sweep/report`) on a tiny
notebook: grid expansion and validation, resume, failure isolation, report."""

import json
from pathlib import Path

import nbformat
import pytest

from mmtutorial.experiments import main
from mmtutorial.sweeps import (
    SweepPoint,
    collect_results,
    expand_grid,
    load_grid,
    run_sweep,
    sweep_report,
)

TOY_CELLS = [
    ("code", "smoke = False\ndevice = \"cpu\"\nseed = 0\nrate = 0.5\nname = \"a\"\nfail = False", ["parameters"]),
    ("code", "from mmtutorial.notebook import Param, record_metrics, setup\n"
             "run = setup(smoke=smoke, device=device, seed=seed, quiet=True,\n"
             "            rate=Param(rate, float, low=0.0, high=1.0), name=Param(name, str, choices=[\"a\", \"b\"]),\n"
             "            fail=Param(fail, bool))", []),
    ("code", "if run.fail:\n    raise RuntimeError('this point fails on purpose')\n"
             "print('training at rate', run.rate)\n"
             "record_metrics({'score': 10 * run.rate + run.seed, 'name_is_a': run.name == 'a'})", []),
]


@pytest.fixture
def toy(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source, tags in TOY_CELLS:
        cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
        cell.metadata["tags"] = tags
        notebook.cells.append(cell)
    path = tmp_path / "toy.ipynb"
    nbformat.write(notebook, path)
    return path


def test_grid_expands_every_combination_in_order_with_fixed_values():
    points = expand_grid({"fixed": {"smoke": True}, "grid": {"rate": [0.1, 0.2], "seed": [0, 1, 2]}})
    assert len(points) == 6
    assert points[0] == SweepPoint("rate=0.1__seed=0", {"smoke": True, "rate": 0.1, "seed": 0})
    assert points[-1].name == "rate=0.2__seed=2"
    # flat form: lists are axes, everything else fixed
    assert load_grid({"smoke": True, "seed": [0, 1]}) == ({"smoke": True}, {"seed": [0, 1]})
    assert [p.name for p in expand_grid({"fixed": {"smoke": True}})] == ["default"]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"grid": {"rate": []}}, "non-empty list"),
        ({"fixed": {"rate": 1}, "grid": {"rate": [1, 2]}}, "both fixed and a grid axis"),
        ({"grid": {"rate": [1]}, "axes": {}}, "unknown grid section"),
        ({"grid": {"name": ["a b", "a-b"]}}, "same folder name twice"),
    ],
)
def test_bad_grids_are_rejected(grid, message):
    with pytest.raises(ValueError, match=message):
        expand_grid(grid)


def test_yaml_grid_file(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("fixed:\n  smoke: true\ngrid:\n  seed: [0, 1]\n")
    assert [p.parameters for p in expand_grid(path)] == [{"smoke": True, "seed": 0}, {"smoke": True, "seed": 1}]
    with pytest.raises(FileNotFoundError):
        expand_grid(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"grid": {"learning_rate": [0.1]}}, r"unknown parameter\(s\) \['learning_rate'\]; valid parameters are .*rate=0.5"),
        ({"grid": {"rate": [0.5, 2.0]}}, r"point rate=2.0: parameter rate=2.0: expected a value <= 1.0"),
        ({"grid": {"name": ["a", "c"]}}, r"parameter name='c': expected one of \['a', 'b'\]"),
        ({"grid": {"rate": ["fast"]}}, r"parameter rate='fast': expected float"),
    ],
)
def test_bad_names_and_values_are_rejected_before_anything_runs(toy, tmp_path, grid, message):
    out = tmp_path / "runs" / "bad"
    with pytest.raises(ValueError, match=message):
        run_sweep(toy, grid, out, progress=False)
    assert not out.exists(), "nothing ran"


def test_sweep_runs_every_point_writes_results_and_resumes_without_rerunning(toy, tmp_path):
    out = tmp_path / "runs" / "rates"
    grid = {"grid": {"rate": [0.1, 0.2], "seed": [0, 1]}}
    table = run_sweep(toy, grid, out, workers=2, progress=False)
    assert len(table) == 4 and (table["status"] == "ok").all()
    assert sorted(table["score"].round(6)) == [1.0, 2.0, 2.0, 3.0]
    assert {"rate", "seed", "score", "status", "seconds", "device", "error"} <= set(table.columns)
    assert (table["device"] == "cpu-" + table["device"].iloc[0].split("-")[1]).all()
    folder = out / "rate=0.1__seed=0"
    assert {p.name for p in folder.iterdir()} == {"notebook.ipynb", "result.json", "log.txt"}
    assert "training at rate 0.1" in (folder / "log.txt").read_text()
    finished_at = (folder / "result.json").stat().st_mtime_ns

    (out / "rate=0.2__seed=1" / "result.json").unlink()  # as if interrupted before this point finished
    table = run_sweep(toy, grid, out, progress=False)
    assert len(table) == 4 and (table["status"] == "ok").all()
    assert (folder / "result.json").stat().st_mtime_ns == finished_at, "finished points are not rerun"


def test_a_failing_point_is_recorded_and_the_others_keep_their_results(toy, tmp_path):
    out = tmp_path / "runs" / "fail"
    table = run_sweep(toy, {"grid": {"fail": [False, True]}}, out, progress=False)
    by_point = table.set_index("point")
    assert by_point.loc["fail=false", "status"] == "ok" and by_point.loc["fail=false", "score"] == 5.0
    assert by_point.loc["fail=true", "status"] == "failed"
    assert "this point fails on purpose" in by_point.loc["fail=true", "error"]
    assert "RuntimeError" in (out / "fail=true" / "log.txt").read_text()
    # a rerun retries only the failed point
    ok_mtime = (out / "fail=false" / "result.json").stat().st_mtime_ns
    run_sweep(toy, {"grid": {"fail": [False, True]}}, out, progress=False)
    assert (out / "fail=false" / "result.json").stat().st_mtime_ns == ok_mtime
    assert collect_results(out).shape[0] == 2


def test_report_summarizes_over_seeds_with_plots(toy, tmp_path):
    out = tmp_path / "runs" / "report"
    run_sweep(toy, {"grid": {"rate": [0.1, 0.3], "seed": [0, 1]}}, out, workers=2, progress=False)
    path = sweep_report(out)
    html = path.read_text()
    assert path == out / "report.html"
    assert "score" in html and "mean" in html and "std" in html
    assert html.count("<img") == 2, "one plot per numeric metric (score, name_is_a)"
    assert "1.5" in html, "mean score at rate 0.1 over seeds 0 and 1 is 1.5"
    with pytest.raises(ValueError, match=r"metric\(s\) \['accuracy'\] not in the results"):
        sweep_report(out, metrics=["accuracy"])


def test_command_line_dry_run_and_errors(toy, tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  rate: [0.1, 0.2]\n")
    out = tmp_path / "runs" / "cli"
    assert main(["sweep", str(toy), "--grid", str(grid), "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "2 points, 0 finished, 2 to run" in printed and "rate=0.2" in printed
    assert not out.exists()
    grid.write_text("grid:\n  speed: [1]\n")
    assert main(["sweep", str(toy), "--grid", str(grid), "--out", str(out)]) == 2
    assert "unknown parameter(s) ['speed']" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nothing")]) == 2


def test_result_json_records_parameters_and_metrics(toy, tmp_path):
    out = tmp_path / "runs" / "one"
    run_sweep(toy, {"fixed": {"rate": 0.4}}, out, progress=False)
    record = json.loads((out / "default" / "result.json").read_text())
    assert record["parameters"] == {"rate": 0.4} and record["status"] == "ok"
    assert record["metrics"] == {"score": 4.0, "name_is_a": True} and record["seconds"] > 0


def test_relative_paths_and_parallel_workers_leave_the_working_directory_alone(toy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = run_sweep("toy.ipynb", {"grid": {"seed": [0, 1, 2]}}, "runs/relative", workers=3, progress=False)
    assert (table["status"] == "ok").all() and len(table) == 3
    assert Path.cwd() == tmp_path
    assert (tmp_path / "runs" / "relative" / "results.csv").exists()


def test_child_stderr_goes_to_a_log_inside_jupyter_only(tmp_path, monkeypatch, capfd):
    import subprocess
    import sys

    from mmtutorial.experiments import child_stderr_to

    def child_says(text):
        subprocess.run([sys.executable, "-c", f"import sys; sys.stderr.write({text!r})"], check=True)

    log = tmp_path / "kernels.log"
    with child_stderr_to(log):  # a terminal: the child's stderr stays where it was
        child_says("terminal warning")
    assert not log.exists() and "terminal warning" in capfd.readouterr().err

    class KernelStream:  # what sys.stderr looks like inside a Jupyter kernel
        __module__ = "ipykernel.iostream"

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stderr", KernelStream())
    with child_stderr_to(log), child_stderr_to(tmp_path / "nested.log"):
        child_says("kernel warning")
    monkeypatch.undo()
    child_says("after")
    assert log.read_text() == "kernel warning" and not (tmp_path / "nested.log").exists()
    assert capfd.readouterr().err == "after", "stderr is restored afterwards"
