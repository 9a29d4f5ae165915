"""Aggregate finished runs into the leaderboard: one row per (dataset, model, hyperparameters).

Columns: dataset, model, params (the hyperparameters the suite set, e.g. "beta=4"), n_seeds,
n_failed, then `<score>_mean` / `<score>_std` over seeds for every metric score and cost column.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from vaebench.runner.store import DamagedFile, RunStore, atomic_write_bytes

KEYS = ["dataset", "model", "params"]
COST_COLUMNS = ["train_seconds", "images_per_s", "eval_seconds", "peak_memory_mb"]
# Score columns where a smaller number is better; every other score is higher-is-better.
LOWER_IS_BETTER = ("recon_error", "recon_mse", "elbo_recon", "elbo_kl", "fid",
                   "train_seconds", "eval_seconds", "peak_memory_mb")


def lower_is_better(score: str) -> bool:
    return score.startswith(LOWER_IS_BETTER)


def params_label(model_params: dict, grid_keys) -> str:
    """The hyperparameters the suite set for this model, e.g. "beta=4,gamma=10" ("" = defaults)."""
    return ",".join(f"{k}={model_params[k]}" for k in sorted(grid_keys) if k in model_params)


def run_table(suite_dir: Path) -> pd.DataFrame:
    """One row per finished run: keys, seed, every score, cost columns."""
    store, rows, damaged = RunStore(suite_dir), [], []
    for run_id in store.run_ids():
        state = store.state(run_id)
        if state == "damaged":
            damaged.append(store.damage(run_id))
        if state != "done":
            continue
        m = store.metrics(run_id)
        cost = m["cost"]
        rows.append({"dataset": m["dataset"], "model": m["model"],
                     "params": params_label(m["model_params"], m.get("grid_keys", [])),
                     "seed": m["seed"], "run_id": run_id, "device": cost["device"],
                     **{k: (np.nan if v is None else v) for k, v in m["scores"].items()},
                     "train_seconds": cost["train_seconds"], "images_per_s": cost["images_per_s"],
                     "eval_seconds": cost["eval_seconds"],
                     "peak_memory_mb": cost["peak_memory_bytes"] / 2**20,
                     "metric_errors": len(store.metric_errors(run_id))})
    table = pd.DataFrame(rows)
    table.attrs["damaged"] = damaged  # skipped runs: DamagedFile (path, problem) each
    return table


def failed_table(suite_dir: Path) -> pd.DataFrame:
    store, rows = RunStore(suite_dir), []
    for run_id in store.run_ids():
        if store.state(run_id) == "failed":
            try:
                cfg, fail = store.config(run_id), store.failure(run_id)
            except DamagedFile:
                continue  # not attributable to a row; `vaebench status` lists it
            rows.append({"dataset": cfg["dataset"], "model": cfg["model"],
                         "params": params_label(cfg["model_params"], cfg.get("grid_keys", [])),
                         "seed": cfg["seed"], "run_id": run_id, "reason": fail["reason"]})
    return pd.DataFrame(rows, columns=KEYS + ["seed", "run_id", "reason"])


def leaderboard(suite_dir: Path | str, sort_by: str | None = None) -> pd.DataFrame:
    suite_dir = Path(suite_dir)
    runs, failed = run_table(suite_dir), failed_table(suite_dir)
    if runs.empty:
        board = pd.DataFrame(columns=KEYS + ["n_seeds", "n_failed"])
        board.attrs["damaged"] = runs.attrs["damaged"]
        return board
    values = [c for c in runs.columns if c not in KEYS + ["seed", "run_id", "device", "metric_errors"]]
    grouped = runs.groupby(KEYS, sort=True, dropna=False)
    board = grouped[values].agg(["mean", "std"])
    board.columns = [f"{c}_{stat}" for c, stat in board.columns]
    board.insert(0, "n_seeds", grouped.size())
    n_failed = failed.groupby(KEYS).size() if not failed.empty else pd.Series(dtype=int)
    board.insert(1, "n_failed", n_failed.reindex(board.index).fillna(0).astype(int))
    board.insert(2, "n_metric_errors", grouped["metric_errors"].sum())
    board.insert(3, "device", grouped["device"].first())
    board = board.reset_index()
    board.attrs["damaged"] = runs.attrs["damaged"]
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
    store, damaged = RunStore(suite_dir), []
    try:
        planned = set(store.planned_run_ids())
    except DamagedFile as e:  # pending runs are then unknown; the rest is still counted
        planned = set()
        damaged.append(e)
    ids = sorted(planned | set(store.run_ids()))
    states = {rid: store.state(rid) for rid in ids}
    damaged += [store.damage(rid) for rid, state in states.items() if state == "damaged"]
    return {"states": states, "damaged": damaged,
            "counts": {s: sum(v == s for v in states.values())
                       for s in ("done", "failed", "started", "pending", "damaged")}}
