"""Progress bars for loops in notebooks and headless runs (a leaf module without torch, so
the notebook plumbing and the sweep machinery can show progress without importing it)."""

from __future__ import annotations

import os

__all__ = ["progress", "TEXT_PROGRESS_ENV"]

#: Environment variable: ``1`` makes :func:`progress` print text bars (headless runs).
TEXT_PROGRESS_ENV = "MMTUTORIAL_TEXT_PROGRESS"


def progress(iterable=None, **kwargs):
    """A progress bar: ``tqdm.auto`` (a widget in JupyterLab), or a plain text bar when
    ``MMTUTORIAL_TEXT_PROGRESS=1``. Headless runs (``make run``, the tests, sweeps) set
    it, so a saved notebook shows the bar's final state instead of an empty widget."""
    if os.environ.get(TEXT_PROGRESS_ENV) == "1":
        from tqdm.std import tqdm

        kwargs.setdefault("mininterval", 30.0)  # a saved notebook needs the end state, not every tick
    else:
        from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)
