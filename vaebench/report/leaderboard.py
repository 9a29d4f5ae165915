"""Aggregate finished runs into the leaderboard: one row per (dataset, model, hyperparameters).

Columns: dataset, model, params (the hyperparameters the suite set, e.g. "beta=4"), n_seeds,
n_failed, then `<score>_mean` / `<score>_std` over seeds for every metric score and cost column.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from vaebench.registry import score_direction
from vaebench.runner.store import FAILED, METRICS, RunStore, atomic_write_bytes, read_json

KEYS = ["dataset", "model", "params"]
COST_COLUMNS = ["train_seconds", "images_per_s", "eval_seconds", "peak_memory_mb"]
# Cost columns where a smaller number is better (images_per_s: higher). Metric scores say
# their own direction where the metric is registered (`register_metric(scores=...)`).
COST_LOWER_IS_BETTER = ("train_seconds", "eval_seconds", "peak_memory_mb")


def lower_is_better(score: str) -> bool:
    """As the score's metric declared it; a score no metric declares counts as higher-is-better."""
    if score in COST_COLUMNS:
        return score in COST_LOWER_IS_BETTER
    return score_direction(score) == "lower"


def params_label(model_params: dict, grid_keys) -> str:
    """The hyperparameters the suite set for this model, e.g. "beta=4,gamma=10" ("" = defaults)."""
    return ",".join(f"{k}={model_params[k]}" for k in sorted(grid_keys) if k in model_params)


def run_table(suite_dir: Path) -> pd.DataFrame:
    """One row per finished run: keys, seed, every score, cost columns."""
    store, rows = RunStore(suite_dir), []
    for run_id in store.run_ids():
        if store.state(run_id) != "done":
            continue
        m = read_json(store.run_dir(run_id) / METRICS)
        cost = m["cost"]
        rows.append({"dataset": m["dataset"], "model": m["model"],
                     "params": params_label(m["model_params"], m.get("grid_keys", [])),
                     "seed": m["seed"], "run_id": run_id, "device": cost["device"],
                     **{k: (np.nan if v is None else v) for k, v in m["scores"].items()},
                     "train_seconds": cost["train_seconds"], "images_per_s": cost["images_per_s"],
                     "eval_seconds": cost["eval_seconds"],
                     "peak_memory_mb": cost["peak_memory_bytes"] / 2**20})
    return pd.DataFrame(rows)


def failed_table(suite_dir: Path) -> pd.DataFrame:
    store, rows = RunStore(suite_dir), []
    for run_id in store.run_ids():
        if store.state(run_id) == "failed":
            cfg, fail = store.config(run_id), read_json(store.run_dir(run_id) / FAILED)
            rows.append({"dataset": cfg["dataset"], "model": cfg["model"],
                         "params": params_label(cfg["model_params"], cfg.get("grid_keys", [])),
                         "seed": cfg["seed"], "run_id": run_id, "reason": fail["reason"]})
    return pd.DataFrame(rows, columns=KEYS + ["seed", "run_id", "reason"])


def leaderboard(suite_dir: Path | str, sort_by: str | None = None) -> pd.DataFrame:
    suite_dir = Path(suite_dir)
    runs, failed = run_table(suite_dir), failed_table(suite_dir)
    if runs.empty:
        return pd.DataFrame(columns=KEYS + ["n_seeds", "n_failed"])
    values = [c for c in runs.columns if c not in KEYS + ["seed", "run_id", "device"]]
    grouped = runs.groupby(KEYS, sort=True, dropna=False)
    board = grouped[values].agg(["mean", "std"])
    board.columns = [f"{c}_{stat}" for c, stat in board.columns]
    board.insert(0, "n_seeds", grouped.size())
    n_failed = failed.groupby(KEYS).size() if not failed.empty else pd.Series(dtype=int)
    board.insert(1, "n_failed", n_failed.reindex(board.index).fillna(0).astype(int))
    board.insert(2, "device", grouped["device"].first())
    board = board.reset_index()
    if sort_by:
        col = sort_by if sort_by in board.columns else f"{sort_by}_mean"
        if col not in board.columns:
            from vaebench.errors import VaebenchError

            known = sorted(c[:-5] for c in board.columns if c.endswith("_mean"))
            raise VaebenchError(f"--sort-by {sort_by!r}: no such column; choose one of {', '.join(known)}")
        board = board.sort_values(col, ascending=lower_is_better(sort_by), kind="stable")
    return board


def write_csv(board: pd.DataFrame, path: Path) -> None:
    atomic_write_bytes(Path(path), board.to_csv(index=False, float_format="%.6g").encode())


def format_table(board: pd.DataFrame, max_scores: int = 8) -> str:
    """A terminal-width table: keys, seeds, then "mean ± std" for the first scores."""
    if board.empty:
        return "(no finished runs yet)"
    scores = [c[:-5] for c in board.columns if c.endswith("_mean") and c[:-5] not in COST_COLUMNS]
    shown = scores[:max_scores] + ["train_seconds", "images_per_s"]
    out = board[KEYS + ["n_seeds", "n_failed"]].copy()
    for s in shown:
        mean, std = board[f"{s}_mean"], board[f"{s}_std"]
        out[s] = [("n/a" if pd.isna(m) else f"{m:.4g}" + ("" if pd.isna(d) else f" ± {d:.2g}"))
                  for m, d in zip(mean, std)]
    buf = io.StringIO()
    buf.write(out.to_string(index=False))
    if len(scores) > max_scores:
        buf.write(f"\n(+{len(scores) - max_scores} more score columns in the CSV)")
    return buf.getvalue()


def suite_summary(suite_dir: Path) -> dict:
    """Counts by state, using results/<suite>/suite.json (written by `run`) to know pending runs."""
    store = RunStore(suite_dir)
    planned = set()
    if (Path(suite_dir) / "suite.json").is_file():
        planned = set(json.loads((Path(suite_dir) / "suite.json").read_text())["run_ids"])
    ids = sorted(planned | set(store.run_ids()))
    states = {rid: store.state(rid) for rid in ids}
    return {"states": states,
            "counts": {s: sum(v == s for v in states.values()) for s in ("done", "failed", "started", "pending")}}
