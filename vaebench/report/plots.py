"""Leaderboard picture: one panel per score, a bar per (model, hyperparameters), std over seeds."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on clusters and CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from vaebench.report.leaderboard import COST_COLUMNS, lower_is_better  # noqa: E402
from vaebench.runner.store import atomic_write_bytes  # noqa: E402


def plot_leaderboard(board: pd.DataFrame, path: Path, max_panels: int = 12) -> bool:
    """Write a PNG of the leaderboard; returns False when there is nothing to plot."""
    scores = [c[:-5] for c in board.columns if c.endswith("_mean") and c[:-5] not in COST_COLUMNS]
    scores = [s for s in scores if board[f"{s}_mean"].notna().any()][:max_panels]
    if board.empty or not scores:
        return False
    labels = [f"{m}\n{p}" if p else m for m, p in zip(board["model"], board["params"])]
    if board["dataset"].nunique() > 1:
        labels = [f"{d}: {lab}" for d, lab in zip(board["dataset"], labels)]
    cols = min(3, len(scores))
    rows = -(-len(scores) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 0.35 * len(board) * rows + 2.2 * rows),
                             squeeze=False)
    for ax, s in zip(axes.flat, scores):
        ax.barh(range(len(board)), board[f"{s}_mean"], xerr=board[f"{s}_std"].fillna(0),
                color="tab:blue", alpha=0.8, capsize=3)
        ax.set_yticks(range(len(board)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{s} ({'lower' if lower_is_better(s) else 'higher'} is better)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(scores):]:
        ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return True
