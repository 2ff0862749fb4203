"""A sweep's results as one self-contained HTML page: mean ± std over seeds, with plots."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

from .sweeps import SWEEP_FILE

__all__ = ["sweep_report"]


def _figure_html(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="{fig.axes[0].get_title()}" src="data:image/png;base64,{data}">'


def sweep_report(
    out: str | os.PathLike,
    metrics: Sequence[str] | None = None,
    html: str | os.PathLike | None = None,
    over: str = "seed",
) -> Path:
    """Write a self-contained HTML summary of a sweep: per setting (every axis but
    ``over``), mean ± std and count of each metric over ``over``, and a seaborn plot per
    metric (mean with a ±1 std bar). Returns the HTML path (default ``OUT/report.html``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    out = Path(out)
    if not (out / "results.csv").exists():
        raise FileNotFoundError(f"{out} holds no results.csv: run the sweep first")
    try:
        table = pd.read_csv(out / "results.csv")
    except (ValueError, OSError) as error:  # pandas' ParserError is a ValueError
        raise ValueError(
            f"{out / 'results.csv'} is unreadable ({str(error).strip()[:80]}); rerun the sweep to rebuild it"
        ) from None
    sweep = json.loads((out / SWEEP_FILE).read_text()) if (out / SWEEP_FILE).exists() else {"axes": {}}
    axes = [a for a in sweep["axes"] if a != over and a in table]
    ok = table[table["status"] == "ok"]
    if ok.empty:
        raise ValueError(f"{out}: no finished point to report ({len(table)} points, all failed)")
    known = {"point", "status", "seconds", "device", "error", *sweep.get("fixed", {}), *sweep["axes"]}
    numeric = [c for c in ok.columns if c not in known and pd.api.types.is_numeric_dtype(ok[c])]
    metrics = list(metrics) if metrics else numeric
    missing = [m for m in metrics if m not in ok]
    if missing:
        raise ValueError(f"metric(s) {missing} not in the results; available: {numeric}")
    keys = [ok[a].astype(str) for a in axes] if axes else [pd.Series("all", index=ok.index, name="setting")]
    summary = ok.groupby(keys)[metrics].agg(["mean", "std", "count"])
    parts = [
        f"<h1>Sweep {out.name}</h1>",
        f"<p>notebook {sweep.get('notebook', '?')}; {len(table)} points, {len(ok)} finished, "
        f"{len(table) - len(ok)} failed; mean ± std over {over!r}</p>",
        summary.round(4).to_html(),
    ]
    plotted = ok.assign(**{a: ok[a].astype(str) for a in axes})
    for metric in metrics:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        x = axes[0] if axes else None
        hue = axes[1] if len(axes) > 1 else None
        sns.pointplot(
            data=plotted,
            x=x,
            y=metric,
            hue=hue,
            errorbar="sd",
            capsize=0.1,
            ax=ax,
            linestyle="none",
            dodge=0.3 if hue else False,
        )
        ax.set_title(f"{metric} (mean ± 1 std over {over})")
        parts.append(_figure_html(fig))
        plt.close(fig)
    failed = table[table["status"] != "ok"]
    if len(failed):
        parts.append("<h2>Failed points</h2>" + failed[["point", "error"]].to_html(index=False))
    path = Path(html) if html else out / "report.html"
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Sweep report</title></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )
    return path
