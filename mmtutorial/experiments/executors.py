"""Where a sweep's points run: processes on this machine, or tasks on a Dask cluster.

Every point runs in a child process of its own (``python -m mmtutorial.experiments.point``,
in its own session) that starts the point's Jupyter kernel, so a point can always be
stopped, its kernel with it. Two executors hand those processes out:

* :class:`LocalExecutor`: a pool of ``workers`` threads on this machine, each waiting on
  one point's process; the point writes straight into ``OUT/<point>/``. On a machine with
  GPUs each running point gets one GPU of its own (``CUDA_VISIBLE_DEVICES``), or
  ``points_per_gpu`` points share one when asked.
* :class:`DaskExecutor`: one task per point on a running Dask ``distributed`` cluster. A
  task runs the point's process in a temporary folder on its worker and sends the point's
  files back **by value** (the executed notebook, its logs, ``result.json``), and this
  process writes them into ``OUT/<point>/``: workers need the package and its
  environment, not a filesystem shared with the machine that runs the sweep. A worker
  that dies mid-point has its task rerun by Dask on another worker; since only this
  process writes results, a point is recorded exactly once. On workers started with
  ``--resources GPU=1`` a point that uses a GPU asks for one, so no two points share it.

Both stop on :meth:`stop` (Ctrl-C): queued points are cancelled and running ones are
sent SIGTERM, on which the point's process shuts its kernel down.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from ..outputs import atomic_write_bytes
from .records import RESULT_FILE, SweepPoint, normalized, read_record

__all__ = ["LocalExecutor", "DaskExecutor", "GPUPool", "connect_dask", "point_device"]

#: Seconds a stopped point's process gets to shut its kernel down before it is killed.
STOP_GRACE_S = 20.0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the point's process gets SIGTERM if the process that started it dies (a
    Dask worker killed mid-point), so no orphan keeps running its kernel."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _start_point(
    spec: Mapping[str, Any], folder: Path, env: Mapping[str, str], cwd: Path | None = None
) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "stderr.log", "ab") as log:
        # its own session: Ctrl-C in a terminal reaches the sweep, which stops its points itself
        return subprocess.Popen(
            [sys.executable, "-m", "mmtutorial.experiments.point", json.dumps(spec)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def _stop_process(process: subprocess.Popen, grace_seconds: float = STOP_GRACE_S) -> None:
    """SIGTERM (the point shuts its kernel down), then SIGKILL after ``grace_seconds``."""
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _failed_record(point: SweepPoint, notebook: str, device: str, why: str) -> dict[str, Any]:
    return {
        "point": point.name,
        "notebook": notebook,
        "parameters": point.parameters,
        "status": "failed",
        "error": why,
        "seconds": 0.0,
        "device": device,
        "host": socket.gethostname(),
        "metrics": {},
    }


def point_device(parameters: Mapping[str, Any], gpu: int | None = None) -> str:
    """What a point runs on, as recorded in its result: ``"cpu-16core"``, or the GPU's
    name with the index this process sees (``"cuda:0 NVIDIA H100 80GB HBM3"``)."""
    from ..training.benchmarking import device_label
    from ..training.runtime import pick_device

    choice = parameters.get("device", "auto")
    if gpu is not None and choice in ("auto", "cuda"):
        return f"cuda:{gpu}"  # named by index: this process may not see that GPU itself
    device = pick_device(choice)
    label = device_label(device)
    return f"cuda:{device.index or 0} {label}" if device.type == "cuda" else label


def _uses_gpu(parameters: Mapping[str, Any]) -> bool:
    return str(parameters.get("device", "auto")).split(":")[0] in ("auto", "cuda")


class GPUPool:
    """GPU indices handed to running points: each GPU to at most ``points_per_gpu``
    points at a time (1: a GPU of its own). ``acquire`` blocks until one is free."""

    def __init__(self, gpus: int, points_per_gpu: int = 1) -> None:
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
            raise ValueError(f"gpus={gpus!r}: expected an int >= 0")
        if isinstance(points_per_gpu, bool) or not isinstance(points_per_gpu, int) or points_per_gpu < 1:
            raise ValueError(f"points_per_gpu={points_per_gpu!r}: expected an int >= 1")
        self.gpus, self.points_per_gpu = gpus, points_per_gpu
        self.in_use = [0] * gpus
        self.condition = threading.Condition()

    def acquire(self) -> int:
        with self.condition:
            while True:
                free = [i for i, n in enumerate(self.in_use) if n < self.points_per_gpu]
                if free:
                    chosen = min(free, key=lambda i: (self.in_use[i], i))  # the least used first
                    self.in_use[chosen] += 1
                    return chosen
                self.condition.wait()

    def release(self, gpu: int) -> None:
        with self.condition:
            self.in_use[gpu] -= 1
            self.condition.notify()


class LocalExecutor:
    """Points as processes on this machine, ``workers`` at a time (module docstring).

    Args:
        gpus: GPUs to hand out (default: as many as PyTorch sees); points whose
            ``device`` is ``auto``/``cuda`` each get one through ``CUDA_VISIBLE_DEVICES``.
        points_per_gpu: points that may share one GPU.
    """

    def __init__(
        self,
        notebook: Path,
        out: Path,
        env: Mapping[str, str],
        workers: int,
        gpus: int | None = None,
        points_per_gpu: int = 1,
    ) -> None:
        if gpus is None:
            import torch

            gpus = torch.cuda.device_count()
        self.notebook, self.out, self.env = notebook, out, dict(env)
        self.gpu_pool = GPUPool(gpus, points_per_gpu) if gpus else None
        self.pool = ThreadPoolExecutor(max_workers=workers)
        self.running: dict[str, subprocess.Popen] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def submit(self, point: SweepPoint) -> Future:
        return self.pool.submit(self._run, point)

    def as_completed(self, futures: Iterable[Future]) -> Iterator[Future]:
        return as_completed(futures)

    def result(self, future: Future) -> dict[str, Any] | None:
        return future.result()

    def _run(self, point: SweepPoint) -> dict[str, Any] | None:
        """The point's record, or None when it was cancelled or stopped."""
        gpu = self.gpu_pool.acquire() if self.gpu_pool and _uses_gpu(point.parameters) else None
        try:
            env = dict(self.env) if gpu is None else {**self.env, "CUDA_VISIBLE_DEVICES": str(gpu)}
            device = point_device(point.parameters, gpu)
            spec = {
                "notebook": str(self.notebook),
                "out": str(self.out),
                "point": point.name,
                "parameters": point.parameters,
                "device": device,
            }
            folder = self.out / point.name
            with self.lock:
                if self.stopping.is_set():
                    return None
                process = _start_point(spec, folder, env)
                self.running[point.name] = process
            process.wait()
            with self.lock:
                self.running.pop(point.name, None)
        finally:
            if gpu is not None:
                self.gpu_pool.release(gpu)
        record = read_record(folder / RESULT_FILE)
        finished = record is not None and normalized(record["parameters"]) == normalized(point.parameters)
        if self.stopping.is_set() and not (finished and record["status"] == "ok"):
            (folder / RESULT_FILE).unlink(missing_ok=True)  # stopped, not failed: it runs again next time
            return None
        if not finished:
            log = (folder / "stderr.log").read_text(errors="replace").strip().splitlines()
            record = _failed_record(
                point,
                self.notebook.name,
                device,
                f"the point's process exited with code {process.returncode}: {log[-1] if log else 'no output'}",
            )
            atomic_write_bytes(folder / RESULT_FILE, (json.dumps(record, indent=2) + "\n").encode())
        return record

    def stop(self) -> None:
        """Cancel the queued points and stop the running ones (Ctrl-C)."""
        with self.lock:
            self.stopping.set()
            processes = list(self.running.values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for process in processes:
            _stop_process(process, max(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        self.pool.shutdown(wait=True)


# ---------------------------------------------------------------------------------
# Dask
# ---------------------------------------------------------------------------------


def connect_dask(address: str, workers: int = 1, timeout: float = 10.0):
    """A ``distributed.Client`` for the scheduler at ``address`` (``"local"``: a new
    ``LocalCluster`` of ``workers`` one-thread processes on this machine), or a
    one-line ``ConnectionError`` naming the address."""
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("--scheduler needs Dask: pip install -e '.[cluster]'") from None
    if address == "local":
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster)
    try:
        return Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as error:
        raise ConnectionError(
            f"cannot reach the Dask scheduler at {address} ({type(error).__name__}): start one "
            "with `dask scheduler` and workers with `dask worker ADDRESS`"
        ) from None


def _point_task(spec: dict[str, Any], notebook_bytes: bytes, stop_event: str) -> dict[str, bytes] | None:
    """Runs on a Dask worker: the point's process in a temporary folder; returns the
    point's files by value, or None when the sweep was stopped."""
    from distributed import Event

    stop = Event(stop_event)
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
    spec = {**spec, "device": point_device(spec["parameters"]) + f" on {socket.gethostname()}"}
    with tempfile.TemporaryDirectory(prefix="mmtutorial-point-") as tmp:
        notebook = Path(tmp) / spec["notebook_name"]
        notebook.write_bytes(notebook_bytes)
        spec = {**spec, "notebook": str(notebook), "out": tmp}
        folder = Path(tmp) / spec["point"]
        env = {**os.environ, "MMTUTORIAL_TEXT_PROGRESS": "1"}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        process = _start_point(spec, folder, env, cwd=Path(tmp))
        while process.poll() is None:
            if stop.wait(timeout=1.0):  # the sweep was stopped: stop this point and its kernel
                _stop_process(process)
                return None
        return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


class DaskExecutor:
    """Points as tasks on a Dask cluster (module docstring)."""

    def __init__(self, client, notebook: Path, out: Path) -> None:
        self.client, self.notebook, self.out = client, notebook, out
        self.notebook_bytes = notebook.read_bytes()
        self.sweep_id = uuid.uuid4().hex[:12]
        self.stop_event = f"mmtutorial-stop-{self.sweep_id}"
        workers = client.scheduler_info().get("workers", {}).values()
        self.has_gpus = any(w.get("resources", {}).get("GPU", 0) for w in workers)
        self.points: dict[str, SweepPoint] = {}
        self.futures: list = []

    def submit(self, point: SweepPoint):
        self.points[point.name] = point
        spec = {"notebook_name": self.notebook.name, "point": point.name, "parameters": point.parameters}
        resources = {"GPU": 1} if self.has_gpus and _uses_gpu(point.parameters) else None
        future = self.client.submit(
            _point_task,
            spec,
            self.notebook_bytes,
            self.stop_event,
            pure=False,
            key=f"mmtutorial-{self.sweep_id}-{point.name}",
            resources=resources,
        )
        self.futures.append(future)
        return future

    def as_completed(self, futures):
        from distributed import as_completed

        return as_completed(futures)

    def result(self, future) -> dict[str, Any] | None:
        """Write the point's files (sent back by value) into ``OUT/<point>/``; its record."""
        point = self.points[future.key.removeprefix(f"mmtutorial-{self.sweep_id}-")]
        try:
            files = future.result()
        except Exception as error:  # the task itself failed (e.g. a worker died too often)
            record = _failed_record(point, self.notebook.name, "dask", f"{type(error).__name__}: {error}")
            files = {RESULT_FILE: (json.dumps(record, indent=2) + "\n").encode()}
        if files is None:
            return None
        folder = self.out / point.name
        folder.mkdir(parents=True, exist_ok=True)
        for name in sorted(files, key=lambda n: n == RESULT_FILE):  # result.json last: it marks the point done
            atomic_write_bytes(folder / name, files[name])
        record = read_record(folder / RESULT_FILE)
        if record is None or normalized(record["parameters"]) != normalized(point.parameters):
            record = _failed_record(point, self.notebook.name, "dask", "the point's process wrote no result")
            atomic_write_bytes(folder / RESULT_FILE, (json.dumps(record, indent=2) + "\n").encode())
        return record

    def stop(self) -> None:
        from distributed import Event

        Event(self.stop_event, client=self.client).set()
        queued = [f for f in self.futures if f.status == "pending"]
        self.client.cancel(queued)
        deadline = time.monotonic() + STOP_GRACE_S + 5
        while any(f.status == "pending" for f in self.futures) and time.monotonic() < deadline:
            time.sleep(0.2)  # running points see the event, stop their kernels and return None

    def close(self) -> None:
        pass
