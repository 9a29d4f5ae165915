"""Aggregate runs into the leaderboard: one row per resolved configuration.

A configuration is everything that determines a run's result except its training seed (model and
every hyperparameter, dataset and its parameters, training budget, metrics, evaluation seed,
config version), so a row holds exactly the seeds of one configuration and two versions of a
suite never pool. Columns: dataset, model, params (the hyperparameters the suite set, e.g.
"beta=4"), any further configuration keys that tell two rows of the same model apart (e.g.
`train.steps`), n_seeds (done + failed), n_done, n_failed, device, then `<score>_mean`,
`<score>_std` and `<score>_n` (how many runs the cell rests on) for every score and cost column.
A configuration whose every seed failed still has its row, with empty scores.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from vaebench.errors import VaebenchError
from vaebench.registry import score_direction
from vaebench.runner.store import RESULTS_SCHEMA_VERSION, DamagedFile, RunStore, atomic_write_bytes
from vaebench.runner.suite import CONFIG_VERSION, RunSpec, config_hash, config_version_of

KEYS = ["dataset", "model", "params"]
COST_COLUMNS = ["train_seconds", "images_per_s", "post_training_seconds", "eval_seconds", "peak_memory_mib"]
# Cost columns where a smaller number is better (images_per_s: higher). Metric scores say
# their own direction where the metric is registered (`register_metric(scores=...)`).
COST_LOWER_IS_BETTER = ("train_seconds", "post_training_seconds", "eval_seconds", "peak_memory_mib")


def lower_is_better(score: str) -> bool:
    """As the score's metric declared it; a score no metric declares counts as higher-is-better."""
    if score in COST_COLUMNS:
        return score in COST_LOWER_IS_BETTER
    return score_direction(score) == "lower"


def params_label(model_params: dict, grid_keys) -> str:
    """The hyperparameters the suite set for this model, e.g. "beta=4,gamma=10" ("" = defaults)."""
    return ",".join(f"{k}={model_params[k]}" for k in sorted(grid_keys) if k in model_params)


def _flatten(obj, prefix="") -> dict:
    """{"train": {"steps": 4}} -> {"train.steps": 4}; lists become JSON text."""
    out = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = json.dumps(v, sort_keys=True) if isinstance(v, list) else v
    return out


class RunRecords:
    """The runs of one suite folder that the leaderboard can use, and those it had to leave out."""

    def __init__(self, suite_dir: Path | str, run_ids=None):
        self.store = RunStore(suite_dir)
        ids = self.store.run_ids() if run_ids is None else [r for r in run_ids if r in set(self.store.run_ids())]
        self.done, self.failed, self.outdated = [], [], []
        self.damaged: list[DamagedFile] = []  # skipped runs: (path, problem) each
        self.configurations: dict[str, dict] = {}  # configuration id -> flattened configuration
        for run_id in ids:
            state = self.store.state(run_id)
            if state == "damaged":
                self.damaged.append(self.store.damage(run_id))
            if state not in ("done", "failed"):
                continue
            try:
                config = self.store.config(run_id)
                metrics = self.store.metrics(run_id) if state == "done" else None
                failure = self.store.failure(run_id) if state == "failed" else None
            except DamagedFile as e:  # named and counted by `status`; not attributable to a row
                self.damaged.append(e)
                continue
            if config_version_of(config) != CONFIG_VERSION or (
                    metrics is not None and metrics.get("schema_version") != RESULTS_SCHEMA_VERSION):
                self.outdated.append(run_id)
                continue
            spec = RunSpec.from_json(config)
            cid = config_hash(spec.configuration())
            self.configurations[cid] = _flatten(spec.configuration())
            base = {"configuration_id": cid, "dataset": spec.dataset, "model": spec.model,
                    "params": params_label(spec.model_params, spec.grid_keys), "seed": spec.seed,
                    "run_id": run_id}
            if state == "failed":
                self.failed.append({**base, "reason": failure.get("reason", "")})
                continue
            cost = metrics["cost"]
            self.done.append({**base, "device": cost["device"],
                              **{k: (np.nan if v is None else v) for k, v in metrics["scores"].items()},
                              "train_seconds": cost["train_seconds"], "images_per_s": cost["images_per_s"],
                              "post_training_seconds": cost.get("post_training_seconds", 0.0),
                              "eval_seconds": cost["eval_seconds"],
                              "peak_memory_mib": cost["peak_memory_bytes"] / 2**20,
                              "metric_errors": len(self.store.metric_errors(run_id))})

    def outdated_message(self) -> str:
        if not self.outdated:
            return ""
        return (f"{len(self.outdated)} run folder(s) in {self.store.root} were written by an older "
                f"vaebench (results schema < {RESULTS_SCHEMA_VERSION}, config version < "
                f"{CONFIG_VERSION}) and are left out of the leaderboard: their numbers were computed "
                f"under a different protocol. Re-run the suite to get them under this one (new run "
                f"ids: the old folders are never reused), or move the old folders aside "
                f"(e.g. {self.outdated[0]}).")


def run_table(suite_dir: Path, run_ids=None) -> pd.DataFrame:
    """One row per finished run: configuration_id, keys, seed, every score, cost columns."""
    return pd.DataFrame(RunRecords(suite_dir, run_ids).done)


def failed_table(suite_dir: Path, run_ids=None) -> pd.DataFrame:
    return pd.DataFrame(RunRecords(suite_dir, run_ids).failed,
                        columns=["configuration_id"] + KEYS + ["seed", "run_id", "reason"])


def _distinguishing_columns(records: RunRecords, labels: dict[str, tuple]) -> list[str]:
    """Configuration keys whose values differ between configurations that share a label."""
    by_label: dict[tuple, list[str]] = {}
    for cid, label in labels.items():
        by_label.setdefault(label, []).append(cid)
    keys = set()
    for cids in by_label.values():
        if len(cids) < 2:
            continue
        flat = [records.configurations[c] for c in cids]
        for key in set().union(*flat):
            if len({json.dumps(f.get(key), sort_keys=True) for f in flat}) > 1:
                keys.add(key)
    return sorted(keys)


def leaderboard(suite_dir: Path | str, sort_by: str | None = None, run_ids=None) -> pd.DataFrame:
    """The leaderboard of a suite folder; `run_ids` limits it to those runs (the suite as it
    stands), else every run folder is used, one row per configuration. `.attrs["notes"]` holds
    what was left out and why."""
    records = RunRecords(Path(suite_dir), run_ids)
    runs, failed = pd.DataFrame(records.done), pd.DataFrame(records.failed)
    every = pd.concat([runs, failed], ignore_index=True) if not failed.empty else runs
    if every.empty:
        board = pd.DataFrame(columns=KEYS + ["n_seeds", "n_done", "n_failed"])
        board.attrs["notes"] = [m for m in [records.outdated_message()] if m]
        board.attrs["damaged"] = records.damaged
        return board
    first = every.drop_duplicates("configuration_id").set_index("configuration_id")
    labels = {cid: tuple(first.loc[cid, KEYS]) for cid in first.index}
    extra = _distinguishing_columns(records, labels)
    rows = []
    values = [c for c in runs.columns
              if c not in ["configuration_id"] + KEYS + ["seed", "run_id", "device", "metric_errors"]]
    for cid in first.index:
        done = runs[runs["configuration_id"] == cid] if not runs.empty else runs
        n_failed = int((failed["configuration_id"] == cid).sum()) if not failed.empty else 0
        row = {"configuration_id": cid, **dict(zip(KEYS, labels[cid])),
               **{k: records.configurations[cid].get(k) for k in extra},
               "n_seeds": len(done) + n_failed, "n_done": len(done), "n_failed": n_failed,
               "n_metric_errors": int(done["metric_errors"].sum()) if len(done) else 0,
               "device": done["device"].iloc[0] if len(done) else None}
        for v in values:
            col = done[v].astype(float) if len(done) else pd.Series(dtype=float)
            row[f"{v}_mean"] = col.mean() if col.notna().any() else np.nan
            row[f"{v}_std"] = col.std(ddof=1) if col.notna().sum() > 1 else np.nan
            row[f"{v}_n"] = int(col.notna().sum())
        rows.append(row)
    board = pd.DataFrame(rows).sort_values(KEYS + extra, kind="stable").reset_index(drop=True)
    # The configuration id is the last column: a join key, not something to read first.
    board = board[[c for c in board.columns if c != "configuration_id"] + ["configuration_id"]]
    if sort_by:
        col = sort_by if sort_by in board.columns else f"{sort_by}_mean"
        if col not in board.columns:
            known = sorted(c[:-5] for c in board.columns if c.endswith("_mean"))
            raise VaebenchError(f"--sort-by {sort_by!r}: no such column; choose one of {', '.join(known)}")
        board = board.sort_values(col, ascending=lower_is_better(sort_by), kind="stable",
                                  na_position="last").reset_index(drop=True)
    board.attrs["notes"] = [m for m in [records.outdated_message()] if m]
    board.attrs["damaged"] = records.damaged
    return board


def write_csv(board: pd.DataFrame, path: Path) -> None:
    atomic_write_bytes(Path(path), board.to_csv(index=False, float_format="%.6g").encode())


def score_columns(board: pd.DataFrame) -> list[str]:
    return [c[:-5] for c in board.columns if c.endswith("_mean") and c[:-5] not in COST_COLUMNS]


def format_table(board: pd.DataFrame, max_scores: int = 8) -> str:
    """A terminal-width table: keys, seeds, then "mean ± std" for the first scores; a cell that
    rests on fewer runs than the row's seeds says so as [k/n]."""
    notes = list(board.attrs.get("notes", []))
    if board.empty:
        return "\n".join(["(no finished runs yet)"] + notes)
    scores = score_columns(board)
    shown = scores[:max_scores] + [c for c in ("train_seconds", "images_per_s") if f"{c}_mean" in board.columns]
    fixed = [c for c in board.columns if c not in ("configuration_id", "device") and not any(
        c.startswith(f"{s}_") for s in scores + COST_COLUMNS)]
    out = board[fixed].copy()
    partial = False
    for s in shown:
        cells = []
        for m, d, k, n in zip(board[f"{s}_mean"], board[f"{s}_std"], board[f"{s}_n"], board["n_seeds"]):
            cell = "n/a" if pd.isna(m) else f"{m:.4g}" + ("" if pd.isna(d) else f" ± {d:.2g}")
            if 0 < k < n:
                cell += f" [{int(k)}/{int(n)}]"
                partial = True
            cells.append(cell)
        out[s] = cells
    buf = io.StringIO()
    buf.write(out.to_string(index=False))
    if len(scores) > max_scores:
        buf.write(f"\n(+{len(scores) - max_scores} more score columns in the CSV)")
    if partial:
        buf.write("\n[k/n]: the cell rests on k of the row's n seeds (the others failed or lack "
                  "that score); see <score>_n in the CSV.")
    for note in notes:
        buf.write(f"\n{note}")
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
