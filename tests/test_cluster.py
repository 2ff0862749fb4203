"""Sweeps beyond one process: on a Dask cluster (a LocalCluster here), with a worker killed
mid-point, with an unreachable scheduler, and with GPUs handed out one per point."""

import json
import os
import signal
import threading
import time

import nbformat
import pandas as pd
import pytest

from mmtutorial.experiments import main, run_sweep
from mmtutorial.experiments.executors import GPUPool

pytestmark = pytest.mark.slow

TOY = [
    ('smoke = False\ndevice = "cpu"\nseed = 0\nwait = 0.0', ["parameters"]),
    (
        "import os, time\nfrom mmtutorial.course.notebook import Param, record_metrics, setup\n"
        "run = setup(smoke=smoke, device=device, seed=seed, quiet=True, wait=Param(wait, float, low=0.0))\n"
        "started = time.time()\ntime.sleep(run.wait)\n"
        "record_metrics({'score': 10 + run.seed, 'gpu': os.environ.get('CUDA_VISIBLE_DEVICES', 'none'),\n"
        "                'started': started, 'ended': time.time()})",
        [],
    ),
]


@pytest.fixture
def toy(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for source, tags in TOY:
        notebook.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags}))
    path = tmp_path / "toy.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def cluster():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local,
        Client(local) as client,
    ):
        yield local, client


def test_a_sweep_on_a_local_dask_cluster_equals_the_local_pool(toy, tmp_path):
    """The same command line with and without ``--scheduler local``: the same table, and each
    point's files come back by value. (The README's own two sweeps run as written in
    tests/test_readme.py, and notebook 10 compares real training results both ways.)"""
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  seed: [0, 1, 2]\n")
    common = ["sweep", str(toy), "--grid", str(grid), "--workers", "2"]
    assert main([*common, "--out", str(tmp_path / "dask"), "--scheduler", "local"]) == 0
    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    on_dask, locally = (pd.read_csv(tmp_path / name / "results.csv") for name in ("dask", "local"))
    columns = ["point", "seed", "score", "status"]
    assert len(on_dask) == 3 and (on_dask["status"] == "ok").all()
    pd.testing.assert_frame_equal(on_dask[columns], locally[columns])
    record = json.loads((tmp_path / "dask" / "seed=0" / "result.json").read_text())
    assert " on " in record["device"], "a point run on a worker names the machine it ran on"
    assert {p.name for p in (tmp_path / "dask" / "seed=0").iterdir()} >= {
        "notebook.ipynb",
        "result.json",
        "log.txt",
        "stderr.log",
    }, "the point's files come back by value"


def test_a_killed_worker_loses_no_point_and_records_none_twice(toy, tmp_path, cluster):
    local, client = cluster
    out = tmp_path / "runs" / "killed"
    grid = {"fixed": {"wait": 4.0}, "grid": {"seed": [0, 1, 2, 3]}}
    outcome = {}
    sweep = threading.Thread(
        target=lambda: outcome.update(
            table=run_sweep(toy, grid, out, scheduler=local.scheduler_address, progress=False)
        )
    )
    sweep.start()
    deadline = time.monotonic() + 120
    while not any(client.processing().values()):  # wait until a worker runs a point
        assert time.monotonic() < deadline and sweep.is_alive()
        time.sleep(0.2)
    time.sleep(2.0)  # the point's process and kernel are up
    busy = next(address for address, tasks in client.processing().items() if tasks)
    pid = client.run(os.getpid, workers=[busy])[busy]
    os.kill(pid, signal.SIGKILL)
    sweep.join(timeout=240)
    assert not sweep.is_alive(), "the sweep finished"
    table = outcome["table"]
    assert sorted(table["point"]) == ["seed=0", "seed=1", "seed=2", "seed=3"], "every point exactly once"
    assert (table["status"] == "ok").all() and sorted(table["score"]) == [10, 11, 12, 13]
    written = pd.read_csv(out / "results.csv")
    assert len(written) == 4 and written["point"].is_unique


def test_an_unreachable_scheduler_is_one_line_before_anything_runs(toy, tmp_path, capsys):
    out = tmp_path / "runs" / "nowhere"
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  seed: [0]\n")
    started = time.monotonic()
    assert main(["sweep", str(toy), "--grid", str(grid), "--out", str(out), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in error
    assert not out.exists(), "nothing is written"
    assert time.monotonic() - started < 30


def test_gpus_are_handed_out_one_per_running_point(toy, tmp_path):
    """Four points, four workers, two (pretend) GPUs: each point is given one GPU through
    CUDA_VISIBLE_DEVICES, and no two points hold the same GPU at the same time."""
    out = tmp_path / "runs" / "gpus"
    table = run_sweep(
        toy,
        {"fixed": {"device": "auto", "wait": 1.5}, "grid": {"seed": [0, 1, 2, 3]}},
        out,
        workers=4,
        gpus=2,
        progress=False,
    )
    assert (table["status"] == "ok").all()
    assert set(table["gpu"].astype(str)) == {"0", "1"}
    for gpu, runs in table.groupby(table["gpu"].astype(str)):
        spans = sorted(zip(runs["started"], runs["ended"], strict=True))
        assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)), gpu
    record = json.loads((out / "seed=0" / "result.json").read_text())
    assert record["device"].startswith("cuda:"), "the record names the GPU the point was given"


def test_the_gpu_pool_shares_a_gpu_only_when_asked():
    pool = GPUPool(2)
    assert [pool.acquire(), pool.acquire()] == [0, 1]
    taken = []
    waiter = threading.Thread(target=lambda: taken.append(pool.acquire()))
    waiter.start()
    time.sleep(0.2)
    assert not taken, "a third point waits for a free GPU"
    pool.release(1)
    waiter.join(timeout=5)
    assert taken == [1]
    shared = GPUPool(1, points_per_gpu=2)
    assert [shared.acquire(), shared.acquire()] == [0, 0]
    with pytest.raises(ValueError, match="points_per_gpu=0: expected an int >= 1"):
        GPUPool(1, points_per_gpu=0)
