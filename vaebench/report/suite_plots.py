"""Pictures of a whole suite from `stats.cell_stats` (mean and 95 % bootstrap CI over seeds):
each score against each hyperparameter the suite varied (one line per model), rate-distortion
(KL against reconstruction), and each score against training cost."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from vaebench.report.leaderboard import COST_COLUMNS, lower_is_better  # noqa: E402
from vaebench.runner.store import atomic_write_bytes  # noqa: E402


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _err(cells: pd.DataFrame, s: str) -> np.ndarray:
    """Asymmetric error bars (2, N) from the CI; 0 where there is no CI (one seed)."""
    m = cells[f"{s}_mean"].to_numpy(float)
    lo = (m - cells[f"{s}_ci_low"].to_numpy(float))
    hi = (cells[f"{s}_ci_high"].to_numpy(float) - m)
    return np.nan_to_num(np.vstack([lo, hi]))


def parse_params(label: str) -> dict[str, float]:
    """"beta=4.0,gamma=10" -> {"beta": 4.0, "gamma": 10.0}; values that are not numbers are left out."""
    out = {}
    for part in (label or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def _panels(n: int):
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.0 * rows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def _title(s: str) -> str:
    return f"{s} ({'lower' if lower_is_better(s) else 'higher'} is better)"


def score_vs_hyperparameter(cells: pd.DataFrame, scores: list[str], out_dir: Path) -> list[tuple[str, str]]:
    """One PNG per varied hyperparameter: a panel per score, x = the value, one line per model."""
    written = []
    params = cells["params"].fillna("").map(parse_params)
    keys = sorted({k for p in params for k in p})
    for key in keys:
        x = params.map(lambda p: p.get(key, np.nan))
        if x.nunique() < 2:
            continue
        fig, axes = _panels(len(scores))
        for ax, s in zip(axes, scores):
            for (dataset, model), g in cells.assign(_x=x).dropna(subset=["_x"]).groupby(["dataset", "model"]):
                g = g.sort_values("_x")
                label = model if cells["dataset"].nunique() == 1 else f"{dataset}: {model}"
                ax.errorbar(g["_x"], g[f"{s}_mean"], yerr=_err(g, s), marker="o", capsize=3, label=label)
            ax.set_xlabel(key)
            ax.set_title(_title(s), fontsize=9)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        name = f"score_vs_{key}.png"
        _save(fig, out_dir / name)
        written.append((f"Scores against {key} (mean and 95% CI over seeds)", name))
    return written


def _scatter(ax, cells, xs, ys):
    for (_, row), xe, ye in zip(cells.iterrows(), _err(cells, xs).T, _err(cells, ys).T):
        ax.errorbar(row[f"{xs}_mean"], row[f"{ys}_mean"], xerr=xe[:, None], yerr=ye[:, None],
                    marker="o", capsize=3, label=row["label"])


def rate_distortion(cells: pd.DataFrame, out_dir: Path) -> list[tuple[str, str]]:
    """KL (rate, nats) against reconstruction (distortion, nats) per configuration."""
    rate, dist = "elbo_kl", "elbo_recon"
    if f"{rate}_mean" not in cells or f"{dist}_mean" not in cells or cells[f"{rate}_mean"].isna().all():
        return []
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    _scatter(ax, cells, rate, dist)
    ax.set_xlabel("rate: KL(q(z|x) || p(z)) (nats)")
    ax.set_ylabel("distortion: -log p(x|z) (nats)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, out_dir / "rate_distortion.png")
    return [("Rate-distortion: KL against reconstruction (mean and 95% CI over seeds)", "rate_distortion.png")]


def score_vs_cost(cells: pd.DataFrame, scores: list[str], out_dir: Path) -> list[tuple[str, str]]:
    if "train_seconds_mean" not in cells:
        return []
    scores = [s for s in scores if s not in COST_COLUMNS]
    fig, axes = _panels(len(scores))
    for ax, s in zip(axes, scores):
        _scatter(ax, cells, "train_seconds", s)
        ax.set_xlabel("training time (s)")
        ax.set_title(_title(s), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    _save(fig, out_dir / "score_vs_cost.png")
    return [("Scores against training cost (mean and 95% CI over seeds)", "score_vs_cost.png")]


def suite_plots(cells: pd.DataFrame, scores: list[str], out_dir: Path) -> list[tuple[str, str]]:
    """Every suite picture into out_dir; returns (caption, file name) pairs."""
    scores = [s for s in scores if f"{s}_mean" in cells and cells[f"{s}_mean"].notna().any()]
    if cells.empty or not scores:
        return []
    return (score_vs_hyperparameter(cells, scores, out_dir) + rate_distortion(cells, out_dir)
            + score_vs_cost(cells, scores, out_dir))
