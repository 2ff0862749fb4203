"""Longest tests first, so that with ``pytest -n 2`` no worker sits idle while the other
runs a multi-minute notebook at the end (``--dist worksteal`` rebalances what is left):
notebooks in smoke mode (slowest first), then the other ``browser``, ``slow`` and
``notebook`` tests, then the quick ones. The order is deterministic, as pytest-xdist
requires of every worker's collection."""

from __future__ import annotations

#: Notebooks in smoke mode, slowest first (seconds measured on 2 cores; only the order matters).
SLOWEST_NOTEBOOKS = ("10_", "08_", "05_", "07_", "03_", "04_", "09_", "02_", "01_", "06_", "00_")


def _cost(item) -> tuple[int, int]:
    name = item.nodeid
    if "test_notebook_in_smoke_mode" in name:
        rank = next((i for i, prefix in enumerate(SLOWEST_NOTEBOOKS) if f"[{prefix}" in name), len(SLOWEST_NOTEBOOKS))
        return (0, rank)
    if "test_readme_block_runs" in name:
        return (1, 0)
    if item.get_closest_marker("browser") or item.get_closest_marker("notebook"):
        return (2, 0)
    if item.get_closest_marker("slow"):
        return (3, 0)
    return (4, 0)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_cost)  # stable: ties keep their collection order
