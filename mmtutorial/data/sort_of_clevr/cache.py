"""The disk cache (``data/cache/``, git-ignored): keyed by every parameter, verified on
load, written atomically, and never needed: an unwritable cache falls back to memory."""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...validation import (
    check_bool,
)
from .config import GENERATOR_VERSION, SortOfClevrConfig
from .generate import _check_config, generate_sort_of_clevr

# --------------------------------------------------------------------------------
# Cache: data/cache/ (git-ignored), keyed by every parameter, verified on load
# --------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where generated data is cached: ``$MMTUTORIAL_CACHE``, else the repository's
    ``data/cache/`` when running from a checkout, else ``~/.cache/mmtutorial``."""
    if os.environ.get("MMTUTORIAL_CACHE"):
        return Path(os.environ["MMTUTORIAL_CACHE"])
    repo_data = Path(__file__).resolve().parents[3] / "data"  # the checkout's data/, not the package's
    if repo_data.is_dir():
        return repo_data / "cache"
    return Path.home() / ".cache" / "mmtutorial"


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(str(arrays[name].dtype).encode() + str(arrays[name].shape).encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def _read_cache(path: Path, config: SortOfClevrConfig) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None (with a warning) if stale or corrupted; None without a
    warning if there is no cache file (``_write_cache`` says why it cannot write one)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["__meta__"]))
            arrays = {name: stored[name] for name in stored.files if name != "__meta__"}
        expected = {"version": GENERATOR_VERSION, "config": asdict(config)}
        if {"version": meta.get("version"), "config": meta.get("config")} != expected:
            warnings.warn(
                f"stale Sort-of-CLEVR cache {path.name} (other version or parameters): rebuilding", stacklevel=4
            )
            return None
        if meta.get("checksum") != _checksum(arrays):
            warnings.warn(f"corrupted Sort-of-CLEVR cache {path.name} (checksum mismatch): rebuilding", stacklevel=4)
            return None
        return arrays
    except Exception as error:  # truncated zip, bad JSON, missing arrays ...
        warnings.warn(f"unreadable Sort-of-CLEVR cache {path.name} ({type(error).__name__}): rebuilding", stacklevel=4)
        return None


def _process_alive(pid: int, tmp: Path) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows: go by age
        return time.time() - tmp.stat().st_mtime < 3600
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _remove_stale_temp_files(path: Path) -> None:
    """Remove the ``.NAME.<pid>.tmp`` files that killed writes (of dead processes) left."""
    try:
        for tmp in path.parent.glob(f".{path.name}.*.tmp"):
            pid = tmp.name[len(path.name) + 2 : -len(".tmp")]
            if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid), tmp):
                tmp.unlink(missing_ok=True)
    except OSError:  # no folder, or not a folder: nothing to clean
        pass


def _write_cache(path: Path, config: SortOfClevrConfig, arrays: dict[str, np.ndarray]) -> None:
    """Write the cache file (to a temporary file, then rename: never half a file). A cache
    that cannot be written (read-only folder, a file or folder in the way) is not an
    error: the data stay in memory, with one warning."""
    meta = {"version": GENERATOR_VERSION, "config": asdict(config), "checksum": _checksum(arrays)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, __meta__=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        warnings.warn(
            f"cannot write the Sort-of-CLEVR cache {path} ({reason}): the data stay in memory only "
            "(set MMTUTORIAL_CACHE to a writable folder to keep them)",
            stacklevel=5,
        )
    finally:
        try:
            tmp.unlink(missing_ok=True)  # after a failed write (a successful one renamed it)
        except OSError:
            pass


def load_sort_of_clevr(config: SortOfClevrConfig, use_cache: bool = True) -> dict[str, np.ndarray]:
    """Arrays for ``config``: from memory, from the disk cache, or freshly generated
    (then cached). Also reports how long generation took in ``arrays["__seconds__"]``.
    ``load_sort_of_clevr.cache_clear()`` empties the in-memory cache."""
    _check_config(config)
    check_bool("use_cache", use_cache)
    return _load_sort_of_clevr(config, use_cache)


@lru_cache(maxsize=4)
def _load_sort_of_clevr(config: SortOfClevrConfig, use_cache: bool) -> dict[str, np.ndarray]:
    path = cache_dir() / f"sort_of_clevr-{config.key()}.npz"
    if use_cache:
        _remove_stale_temp_files(path)
    arrays = _read_cache(path, config) if use_cache else None
    if arrays is None:
        start = time.perf_counter()
        arrays = generate_sort_of_clevr(config)
        seconds = time.perf_counter() - start
        if use_cache:
            _write_cache(path, config, arrays)
        arrays["__seconds__"] = np.array(seconds)
    for array in arrays.values():
        array.setflags(write=False)  # shared between datasets: nobody may modify it
    return arrays


load_sort_of_clevr.cache_clear = _load_sort_of_clevr.cache_clear
