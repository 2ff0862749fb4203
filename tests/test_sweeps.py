"""Sweeps (mmtutorial.experiments.sweeps and `python -m mmtutorial.experiments sweep/report`) on a tiny
notebook: grid expansion and validation, resume, failure isolation, report."""

import json
from pathlib import Path

import nbformat
import pytest

from mmtutorial.experiments import (
    SweepPoint,
    collect_results,
    expand_grid,
    load_grid,
    main,
    plan_sweep,
    run_sweep,
    sweep_report,
)

TOY_CELLS = [
    (
        "code",
        'smoke = False\ndevice = "cpu"\nseed = 0\nrate = 0.5\nname = "a"\nfail = False\nwait = 0.0',
        ["parameters"],
    ),
    (
        "code",
        "import time\nfrom mmtutorial.course.notebook import Param, record_metrics, setup\n"
        "run = setup(smoke=smoke, device=device, seed=seed, quiet=True,\n"
        '            rate=Param(rate, float, low=0.0, high=1.0), name=Param(name, str, choices=["a", "b"]),\n'
        "            fail=Param(fail, bool), wait=Param(wait, float, low=0.0))",
        [],
    ),
    (
        "code",
        "time.sleep(run.wait)\nif run.fail:\n    raise RuntimeError('this point fails on purpose')\n"
        "print('training at rate', run.rate)\n"
        "record_metrics({'score': 10 * run.rate + run.seed, 'name_is_a': run.name == 'a'})",
        [],
    ),
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
        (
            {"grid": {"learning_rate": [0.1]}},
            r"unknown parameter\(s\) \['learning_rate'\]; valid parameters are .*rate=0.5",
        ),
        ({"grid": {"rate": [0.5, 2.0]}}, r"point rate=2.0: parameter rate=2.0: expected a value <= 1.0"),
        ({"grid": {"name": ["a", "c"]}}, r"parameter name='c': expected one of \['a', 'b'\]"),
        ({"grid": {"rate": ["fast"]}}, r"parameter rate='fast': expected float"),
    ],
)
@pytest.mark.slow
def test_bad_names_and_values_are_rejected_before_anything_runs(toy, tmp_path, grid, message):
    out = tmp_path / "runs" / "bad"
    with pytest.raises(ValueError, match=message):
        run_sweep(toy, grid, out, progress=False)
    assert not out.exists(), "nothing ran"


@pytest.mark.slow
def test_sweep_runs_every_point_writes_results_and_resumes_without_rerunning(toy, tmp_path):
    out = tmp_path / "runs" / "rates"
    grid = {"grid": {"rate": [0.1, 0.2], "seed": [0, 1]}}
    table = run_sweep(toy, grid, out, workers=2, progress=False)
    assert len(table) == 4 and (table["status"] == "ok").all()
    assert sorted(table["score"].round(6)) == [1.0, 2.0, 2.0, 3.0]
    assert {"rate", "seed", "score", "status", "seconds", "device", "error"} <= set(table.columns)
    assert (table["device"] == "cpu-" + table["device"].iloc[0].split("-")[1]).all()
    folder = out / "rate=0.1__seed=0"
    assert {p.name for p in folder.iterdir()} == {"notebook.ipynb", "result.json", "log.txt", "stderr.log"}
    assert "eavesdropping" not in (folder / "log.txt").read_text(), "kernel start-up noise stays in stderr.log"
    assert "training at rate 0.1" in (folder / "log.txt").read_text()
    finished_at = (folder / "result.json").stat().st_mtime_ns

    (out / "rate=0.2__seed=1" / "result.json").unlink()  # as if interrupted before this point finished
    table = run_sweep(toy, grid, out, progress=False)
    assert len(table) == 4 and (table["status"] == "ok").all()
    assert (folder / "result.json").stat().st_mtime_ns == finished_at, "finished points are not rerun"


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_result_json_records_parameters_and_metrics(toy, tmp_path):
    out = tmp_path / "runs" / "one"
    run_sweep(toy, {"fixed": {"rate": 0.4}}, out, progress=False)
    record = json.loads((out / "default" / "result.json").read_text())
    assert record["parameters"] == {"rate": 0.4} and record["status"] == "ok"
    assert record["metrics"] == {"score": 4.0, "name_is_a": True} and record["seconds"] > 0


@pytest.mark.slow
def test_relative_paths_and_parallel_workers_leave_the_working_directory_alone(toy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = run_sweep("toy.ipynb", {"grid": {"seed": [0, 1, 2]}}, "runs/relative", workers=3, progress=False)
    assert (table["status"] == "ok").all() and len(table) == 3
    assert Path.cwd() == tmp_path
    assert (tmp_path / "runs" / "relative" / "results.csv").exists()


@pytest.mark.slow
def test_a_headless_run_keeps_the_kernels_noise_in_its_log(toy, tmp_path, capfd):
    from mmtutorial.experiments import execute_notebook

    result = execute_notebook(toy, tmp_path / "out" / "toy.ipynb", {"rate": 0.3})
    assert result.status == "ok"
    terminal = capfd.readouterr()
    assert "eavesdropping" not in terminal.err and "KeyboardInterrupt" not in terminal.err, terminal.err
    assert "Kernel is running over TCP" in (tmp_path / "out" / "toy.kernel.log").read_text()


def test_a_kernel_that_dies_while_starting_is_started_again(toy, tmp_path, monkeypatch):
    """Kernels started at once can race for a port (papermill#511): such a kernel dies before
    any cell runs, so the notebook is started again; a failure of the notebook's own is not."""
    import papermill

    from mmtutorial.experiments import execute_notebook, runner

    real, calls = papermill.execute_notebook, []

    def flaky(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 1:
            raise RuntimeError(runner.KERNEL_START_FAILURE)
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    result = execute_notebook(toy, tmp_path / "out" / "toy.ipynb", {"rate": 0.3})
    assert result.status == "ok" and len(calls) == 2 and result.metrics["score"] == pytest.approx(3.0)

    def broken(*args, **kwargs):
        calls.append(args[0])
        raise RuntimeError("something else")

    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", broken)
    result = execute_notebook(toy, tmp_path / "out2" / "toy.ipynb", {"rate": 0.3})
    assert result.status == "failed" and len(calls) == 1 and "something else" in result.error


# ---------------------------------------------------------------------------------
# Nothing lost, nothing stale: Ctrl-C, changed parameters, other sweeps, broken files
# ---------------------------------------------------------------------------------


def _processes_with(token: str) -> list[int]:
    """Live processes (the sweep's children and kernels) whose environment holds ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # gone, or not ours to read
                pass
    return found


def _sweep_cli(toy, grid_file, out, *extra):
    import sys

    return [
        sys.executable,
        "-m",
        "mmtutorial.experiments",
        "sweep",
        str(toy),
        "--grid",
        str(grid_file),
        "--out",
        str(out),
        *extra,
    ]


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the kernels through /proc")
@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_and_its_kernels_keeps_what_finished_and_a_rerun_resumes(toy, tmp_path):
    import os
    import signal
    import subprocess
    import time
    import uuid

    grid_file = tmp_path / "grid.yaml"
    # 15 s per point: long enough to interrupt point 2 while it runs, even on a loaded CI
    # machine (with 8 s, one CI run saw the sweep finish all three points first)
    grid_file.write_text("fixed:\n  wait: 15.0\ngrid:\n  seed: [0, 1, 2]\n")
    out = tmp_path / "runs" / "interrupted"
    token = f"MMTUTORIAL_TEST_SWEEP={uuid.uuid4().hex}"
    env = {**os.environ, token.split("=")[0]: token.split("=")[1], "OMP_NUM_THREADS": "1"}
    sweep = subprocess.Popen(
        _sweep_cli(toy, grid_file, out),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a test run started as a background job (`make test &` in a
        # script) inherits SIGINT *ignored*, and Python then keeps ignoring it, so the
        # sweep would never see this Ctrl-C and would finish all three points
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 240
        # wait until point 1 has finished and point 2's kernel runs
        while not (
            (out / "seed=0" / "result.json").exists() and (out / "seed=1").exists() and len(_processes_with(token)) >= 3
        ):  # the sweep, point 2's process, its kernel
            assert sweep.poll() is None, sweep.communicate()
            assert time.monotonic() < deadline, "the sweep did not get to its second point"
            time.sleep(0.2)
        sweep.send_signal(signal.SIGINT)
        stdout, stderr = sweep.communicate(timeout=60)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("interrupted: 1 of 3 points finished;"), stderr
    assert "Traceback" not in stderr and "Traceback" not in stdout
    time.sleep(1.0)
    assert _processes_with(token) == [], "no point process or kernel outlives the sweep"
    table = pd_read(out / "results.csv")
    assert list(table["point"]) == ["seed=0"] and (table["status"] == "ok").all()
    assert not (out / "seed=1" / "result.json").exists(), "a stopped point is not recorded as failed"
    assert not (out / "seed=2").exists(), "a queued point never started"

    # the rerun resumes: only the two missing points run (side by side: the worker count is not part
    # of a sweep), and the table equals an uninterrupted run's
    resumed = subprocess.run(
        _sweep_cli(toy, grid_file, out, "--workers", "2"), env=env, capture_output=True, text=True, timeout=240
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "2 points run" in resumed.stdout and "1 already finished" in resumed.stdout
    table = pd_read(out / "results.csv")
    assert list(table["point"]) == ["seed=0", "seed=1", "seed=2"] and (table["status"] == "ok").all()
    assert list(table["score"]) == [5.0, 6.0, 7.0] and table["name_is_a"].all(), "what an uninterrupted run records"


def pd_read(path):
    import pandas as pd

    return pd.read_csv(path)


@pytest.mark.slow
def test_a_changed_fixed_value_is_a_different_sweep_and_is_refused_before_writing(toy, tmp_path):
    out = tmp_path / "runs" / "fixed"
    run_sweep(toy, {"fixed": {"rate": 0.1}, "grid": {"seed": [0]}}, out, progress=False)
    sweep_json = (out / "sweep.json").read_text()
    with pytest.raises(ValueError, match=r"holds a different sweep \(fixed rate=0.1 vs 0.2\)"):
        run_sweep(toy, {"fixed": {"rate": 0.2}, "grid": {"seed": [0]}}, out, progress=False)
    with pytest.raises(ValueError, match=r"holds a different sweep \(axes \['seed'\] vs \['name'\]\)"):
        run_sweep(toy, {"fixed": {"rate": 0.1}, "grid": {"name": ["a", "b"]}}, out, progress=False)
    assert (out / "sweep.json").read_text() == sweep_json, "nothing is written for a refused sweep"
    # a value rejected by validation does not touch the folder either
    with pytest.raises(ValueError, match="expected a value <= 1.0"):
        run_sweep(toy, {"fixed": {"rate": 2.0}, "grid": {"seed": [0]}}, out, progress=False)
    assert (out / "sweep.json").read_text() == sweep_json


@pytest.mark.slow
def test_a_sweep_may_grow_and_only_its_new_points_run(toy, tmp_path):
    out = tmp_path / "runs" / "grow"
    run_sweep(toy, {"grid": {"seed": [0, 1]}}, out, progress=False)
    first = (out / "seed=0" / "result.json").stat().st_mtime_ns
    table = run_sweep(toy, {"grid": {"seed": [0, 1, 2]}}, out, progress=False)
    assert list(table["point"]) == ["seed=0", "seed=1", "seed=2"]
    assert (out / "seed=0" / "result.json").stat().st_mtime_ns == first
    assert json.loads((out / "sweep.json").read_text())["axes"] == {"seed": [0, 1, 2]}


@pytest.mark.slow
def test_a_result_recorded_with_other_parameters_does_not_count_as_finished(toy, tmp_path):
    out = tmp_path / "runs" / "stale"
    grid = {"grid": {"seed": [0, 1]}}
    run_sweep(toy, grid, out, progress=False)
    path = out / "seed=1" / "result.json"
    record = json.loads(path.read_text())
    record["parameters"]["rate"] = 0.9  # as if an older sweep had written it
    path.write_text(json.dumps(record))
    to_run, done = plan_sweep(toy, grid, out)
    assert [p.name for p in to_run] == ["seed=1"] and [p.name for p in done] == ["seed=0"]


@pytest.mark.slow
def test_a_truncated_result_json_names_its_file_and_that_point_runs_again(toy, tmp_path):
    out = tmp_path / "runs" / "truncated"
    grid = {"grid": {"seed": [0, 1]}}
    run_sweep(toy, grid, out, progress=False)
    broken = out / "seed=1" / "result.json"
    broken.write_text(broken.read_text()[:25])
    with pytest.warns(UserWarning, match=r"seed=1/result.json is unreadable .*runs again"):
        table = run_sweep(toy, grid, out, progress=False)
    assert len(table) == 2 and (table["status"] == "ok").all()
    assert json.loads(broken.read_text())["status"] == "ok"


@pytest.mark.slow
def test_results_and_sweep_files_are_written_atomically(toy, tmp_path, monkeypatch):
    import os

    out = tmp_path / "runs" / "atomic"
    run_sweep(toy, {"grid": {"seed": [0]}}, out, progress=False)
    before = (out / "results.csv").read_text()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        collect_results(out)
    monkeypatch.undo()
    assert (out / "results.csv").read_text() == before, "the old file survives a failed write"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")], "no temporary file is left behind"


@pytest.mark.slow
def test_failed_points_are_listed_with_their_error_at_the_end(toy, tmp_path, capsys):
    run_sweep(toy, {"grid": {"fail": [False, True]}}, tmp_path / "runs" / "listed", progress=False)
    printed = capsys.readouterr().out
    assert "1 failed" in printed
    assert "failed fail=true: RuntimeError: this point fails on purpose" in printed


@pytest.mark.slow
def test_command_line_errors_are_one_line(toy, tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  rate: [0.1, 0.2\n  seed: [0]\n")  # a YAML syntax error
    out = tmp_path / "runs" / "cli"
    assert main(["sweep", str(toy), "--grid", str(grid), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "grid.yaml: not valid YAML" in error and "line 3" in error
    grid.write_text("grid:\n  rate: [0.1]\n")
    for notebook, message in (
        (tmp_path / "toyy.ipynb", "no notebook at"),
        (Path(__file__).parents[1] / "README.md", "is not a notebook"),
    ):
        assert main(["sweep", str(notebook), "--grid", str(grid), "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
        assert main(["run", str(notebook), "--out", str(tmp_path / "executed")]) == 2
        error = capsys.readouterr().err.strip()
        assert message in error and len(error.splitlines()) == 1
    assert not out.exists() and not (tmp_path / "executed").exists()


@pytest.mark.slow
def test_grading_submissions_of_the_same_name_keeps_each_result(toy, tmp_path, capsys):
    import shutil

    for student in ("alice", "bob", "carol"):
        (tmp_path / student).mkdir()
        shutil.copyfile(toy, tmp_path / student / "submission.ipynb")
    graded = tmp_path / "graded"
    argv = [
        "run",
        str(tmp_path / "alice" / "submission.ipynb"),
        str(tmp_path / "bob" / "submission.ipynb"),
        "--out",
        str(graded),
        "-p",
        "rate",
        "0.2",
    ]
    assert main(argv) == 0
    assert {p.name for p in graded.glob("*.ipynb")} == {"alice__submission.ipynb", "bob__submission.ipynb"}
    capsys.readouterr()
    # one submission per call: the second would overwrite the first's result, and is refused
    assert main(["run", str(tmp_path / "carol" / "submission.ipynb"), "--out", str(tmp_path / "one")]) == 0
    assert main(["run", str(tmp_path / "bob" / "submission.ipynb"), "--out", str(tmp_path / "one")]) == 2
    error = capsys.readouterr().err.strip()
    assert "holds the run of" in error and "carol" in error and len(error.splitlines()) == 1
