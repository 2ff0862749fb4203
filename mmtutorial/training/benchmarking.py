"""Measuring time and peak memory, and writing benchmark results.

Timings are best-of-N wall times after warm-up (the least disturbed by the rest of the
machine); on a GPU every call is synchronized. Peak memory is the peak of PyTorch's
CUDA allocator on a GPU, and on a CPU the peak resident memory of the process above
its level before the call, sampled by a background thread every 0.2 ms. CPU allocations
have no allocator statistics; freed heap memory is first handed back to the OS
(``malloc_trim``) so that the call's allocations must show up in resident memory, and the
sampler sees every allocation that lives longer than a sample interval, which is what
matters for large attention matrices.

Results files follow the course's format (ARCHITECTURE.md): ``device``, ``processor``,
``torch``, ``created``, ``config``, ``results`` (one row per measurement) and ``summary``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from ..outputs import atomic_write_json, prepare_output_folder

__all__ = [
    "synchronize",
    "best_time",
    "PeakMemory",
    "peak_memory",
    "device_label",
    "processor_name",
    "results_path",
    "results_lock",
    "write_results",
    "loglog_slope",
]


def synchronize(device: torch.device | str) -> None:
    """Wait for queued GPU work (a no-op on CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], Any], repeats: int = 5, warmup: int = 2, device="cpu") -> float:
    """Fastest wall time in seconds of ``repeats`` calls after ``warmup`` calls."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def _release_free_memory() -> None:
    """Give freed heap memory back to the OS (glibc ``malloc_trim``), so that the next
    allocations must fault their pages in again and show up in resident memory."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the measurement is a lower bound
        pass


def _resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Context manager: ``with PeakMemory(device) as peak: ...``; then ``peak.bytes`` is the
    peak memory above the level at entry (CUDA allocator on GPU, sampled RSS on CPU)."""

    def __init__(self, device: torch.device | str = "cpu", interval: float = 2e-4) -> None:
        self.device = torch.device(device)
        self.interval = interval
        self.bytes = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            return self
        if not os.path.exists("/proc/self/statm"):
            raise RuntimeError("CPU peak memory needs Linux's /proc/self/statm")
        _release_free_memory()
        self._start = _resident_bytes()
        self._peak = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, _resident_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self._start
            return
        self._peak = max(self._peak, _resident_bytes())
        self._stop.set()
        self._thread.join()
        self.bytes = max(0, self._peak - self._start)


def peak_memory(fn: Callable[[], Any], device="cpu") -> int:
    """Peak extra memory in bytes of one call of ``fn`` (see :class:`PeakMemory`)."""
    import gc

    gc.collect()
    with PeakMemory(device) as peak:
        fn()
    return peak.bytes


def device_label(device: torch.device | str) -> str:
    """``"cpu-2core"`` or the GPU's name (``"NVIDIA H100 80GB HBM3"``)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type}-{os.cpu_count()}core"


def processor_name() -> str:
    """The CPU's model name (``"AMD EPYC 7B13"``), from ``/proc/cpuinfo`` on Linux and
    :func:`platform.processor` elsewhere: two machines with the same :func:`device_label`
    (``"cpu-2core"``) can train differently (floating-point results differ between CPUs),
    so results files name the processor too."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # not Linux
        pass
    return platform.processor() or platform.machine() or "unknown"


def loglog_slope(xs, ys) -> float:
    """Least-squares slope of log(y) against log(x): 1 = linear growth, 2 = quadratic."""
    import numpy as np

    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if len(xs) < 2 or (ys <= 0).any():
        raise ValueError(f"need at least two positive points to fit a slope, got {list(zip(xs, ys, strict=True))}")
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def results_path(name: str, device, folder="benchmarks/results") -> Path:
    """Where :func:`write_results` puts ``name``'s results for ``device``."""
    return Path(folder) / f"{name}-{re.sub(r'[^A-Za-z0-9._-]+', '-', device_label(device))}.json"


@contextmanager
def results_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the results file ``path`` (waiting for it if another
    process holds it), for a run that reads the rows already there and writes them back
    with its own: two runs sharing an output folder then never lose each other's rows.

    The lock file lives in the temporary folder, named after ``path``, so that results
    folders hold only results. Example::

        with results_lock(path):
            rows = earlier_rows(path) + new_rows
            write_results(...)
    """
    key = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:16]
    with FileLock(Path(tempfile.gettempdir()) / f"mmtutorial-results-{key}.lock"):
        yield


def write_results(
    name: str, device, config: dict, results: list[dict], summary: dict, folder="benchmarks/results"
) -> Path:
    """Write ``<folder>/<name>-<device>.json`` in the course's benchmark format.

    ``folder`` must be new, empty or marked as the benchmarks' own (the committed
    ``benchmarks/results/`` is); the file is written atomically.
    """
    label = device_label(device)
    payload = {
        "name": name,
        "device": label,
        "processor": processor_name(),
        "torch": torch.__version__,
        "created": dt.date.today().isoformat(),
        "config": config,
        "results": results,
        "summary": summary,
    }
    prepare_output_folder(folder, "benchmarks")  # refuses a non-empty folder it did not make
    path = results_path(name, device, folder)
    atomic_write_json(path, payload)
    return path
