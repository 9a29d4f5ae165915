"""`vaebench report`: a static, self-contained HTML report of one suite.

DIR/index.html      leaderboard (mean, std, 95 % CI over seeds; sortable), calibration baselines,
                    mean ranks, paired comparisons, suite pictures, failed runs and why
DIR/runs/<run_id>.html  one page per finished run: config, scores, training curves, traversals,
                    reconstructions and samples
DIR/img/...         every picture, copied or drawn here, so DIR opens from disk with no network
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from vaebench.report.leaderboard import COST_COLUMNS, failed_table, lower_is_better, run_table
from vaebench.report.stats import (cell_stats, config_keys, mean_ranks, paired_comparisons,
                                   resolve_reference, score_columns)
from vaebench.report.suite_plots import suite_plots
from vaebench.runner.store import CHECKPOINT, RunStore, atomic_write_bytes, read_json

RUN_PICTURES = [("Training curves", "training_curves.png"), ("Latent traversal", "traversal.png"),
                ("Latent traversal (animated)", "traversal.gif"), ("Reconstructions (top: input)", "recon.png"),
                ("Samples", "samples.png"), ("Samples from the prior", "prior_samples.png")]


def suite_order(suite_dir: Path) -> list[str]:
    """Run ids in the suite's own order (suite.json, written by `vaebench run`), else []."""
    path = Path(suite_dir) / "suite.json"
    return list(read_json(path)["run_ids"]) if path.is_file() else []


def _fmt(v, digits: int = 4) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{digits}g}"


def _cell(row, s: str) -> dict:
    """What the template shows for one score of one configuration."""
    mean = row.get(f"{s}_mean", np.nan)
    lo, hi, sd = row.get(f"{s}_ci_low", np.nan), row.get(f"{s}_ci_high", np.nan), row.get(f"{s}_std", np.nan)
    return {"sort": "" if not np.isfinite(mean) else repr(float(mean)), "mean": _fmt(mean),
            "std": "" if not np.isfinite(sd) else _fmt(sd, 2),
            "ci": "" if not np.isfinite(lo) else f"[{_fmt(lo, 3)}, {_fmt(hi, 3)}]"}


def _table_rows(cells: pd.DataFrame, scores: list[str], run_pages: dict[str, str]) -> list[dict]:
    rows = []
    for _, r in cells.iterrows():
        runs = [{"id": rid, "seed": i, "href": run_pages[rid]} for i, rid in enumerate(r.get("run_ids") or [])
                if rid in run_pages]
        rows.append({"label": r["label"], "dataset": r["dataset"], "n": int(r["n_seeds"]),
                     "n_failed": int(r.get("n_failed", 0) or 0), "runs": runs,
                     "cells": [_cell(r, s) for s in scores]})
    return rows


def _env() -> Environment:
    env = Environment(loader=PackageLoader("vaebench.report", "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = _fmt
    return env


def _copy_picture(src: Path, dst: Path) -> bool:
    if not src.is_file():
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return True


def run_pictures(run_dir: Path, data_root: Path, redraw: bool = False) -> None:
    """Draw the pictures a run page shows that the run itself does not write (traversals, curves)."""
    from vaebench.report.traversals import save_training_curves, save_traversals

    if redraw or not (run_dir / "training_curves.png").is_file():
        save_training_curves(run_dir)
    has = (run_dir / "traversal.png").is_file() or (run_dir / "prior_samples.png").is_file() \
        or any(run_dir.glob("traversal_layer*.png"))
    if (run_dir / CHECKPOINT).is_file() and (redraw or not has):
        save_traversals(run_dir, data_root)


def write_report(suite_dir: Path, out_dir: Path | None = None, data_root: Path = Path("data"),
                 reference: str | None = None, scores: list[str] | None = None,
                 baselines: bool = True) -> Path:
    """Write the report; returns the path of index.html."""
    suite_dir = Path(suite_dir)
    out_dir = Path(out_dir) if out_dir else suite_dir / "report"
    store = RunStore(suite_dir)
    runs, failed = run_table(suite_dir), failed_table(suite_dir)
    env = _env()
    (out_dir / "img").mkdir(parents=True, exist_ok=True)
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)

    all_scores = score_columns(runs) if not runs.empty else []
    scores = [s for s in (scores or all_scores) if s in all_scores]
    costs = [c for c in COST_COLUMNS if c in runs.columns]
    cells = cell_stats(runs, scores + costs) if not runs.empty else pd.DataFrame()
    if not cells.empty and not failed.empty:
        keys = [k for k in config_keys(runs) if k in failed.columns] or ["dataset", "model", "params"]
        n_failed = failed.groupby(keys).size()
        cells["n_failed"] = [n_failed.get(tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]], 0)
                             for _, r in cells.iterrows()]

    # Run pages
    run_pages, data_root = {}, Path(data_root)
    ordered = runs.sort_values(["dataset", "model", "params", "seed"]) if not runs.empty else runs
    for _, r in ordered.iterrows():
        rid, run_dir = r["run_id"], store.run_dir(r["run_id"])
        try:
            run_pictures(run_dir, data_root)
        except Exception as e:  # a picture that cannot be drawn must not cost the report
            print(f"warning: pictures of {rid}: {type(e).__name__}: {e}")
        pics = []
        for caption, name in RUN_PICTURES + [(f"Latent traversal, {p.stem[10:]}", p.name)
                                             for p in sorted(run_dir.glob("traversal_layer*.*"))]:
            if _copy_picture(run_dir / name, out_dir / "img" / rid / name):
                pics.append({"caption": caption, "src": f"../img/{rid}/{name}"})
        metrics = store.metrics(rid)
        score_rows = [{"name": k, "value": _fmt(v), "direction": "lower" if lower_is_better(k) else "higher"}
                      for k, v in sorted(metrics.get("scores", {}).items())]
        notes = [{"metric": k, "why": v.get("not_applicable") or v.get("error")}
                 for k, v in metrics.get("metrics", {}).items() if "not_applicable" in v or "error" in v]
        page = env.get_template("run.html").render(
            title=f"{r['model']} {r['params']} seed {r['seed']}", run=r.to_dict(),
            label=f"{r['model']} {r['params']}".strip(), run_id=rid, suite=suite_dir.name,
            config=json.dumps(store.config(rid), indent=2, sort_keys=True), scores=score_rows,
            notes=notes, cost=metrics.get("cost", {}), pictures=pics)
        atomic_write_bytes(out_dir / "runs" / f"{rid}.html", page.encode())
        run_pages[rid] = f"runs/{rid}.html"

    # Baselines, comparisons, ranks, pictures
    base_rows, base_scores, base_error = [], [], None
    if baselines and not runs.empty:
        from vaebench.report.baselines import baseline_table

        try:
            base = baseline_table(suite_dir, data_root)
            base_scores = [s for s in scores if s in base.columns and base[s].notna().any()]
            if base_scores:
                base_rows = _table_rows(cell_stats(base, base_scores), base_scores, {})
        except Exception as e:
            base_error = f"{type(e).__name__}: {e}"
    comparisons, ref_label = [], None
    if not runs.empty and len(cells) > 1:
        order = suite_order(suite_dir)
        ref_label = resolve_reference(runs, reference, order)
        for s in scores:
            table = paired_comparisons(runs, s, ref_label)
            comparisons.append({"score": s, "direction": "lower" if lower_is_better(s) else "higher",
                                "rows": [{**row, "mean_diff": _fmt(row["mean_diff"]),
                                          "ci": "" if not np.isfinite(row["ci_low"])
                                          else f"[{_fmt(row['ci_low'], 3)}, {_fmt(row['ci_high'], 3)}]",
                                          "p_value": _fmt(row["p_value"], 3), "p_holm": _fmt(row["p_holm"], 3)}
                                         for row in table.to_dict("records")]})
    ranks = mean_ranks(cells, scores).to_dict("records") if not cells.empty else []
    plots = suite_plots(cells, scores, out_dir / "img") if not cells.empty else []
    if (suite_dir / "leaderboard.png").is_file():
        shutil.copyfile(suite_dir / "leaderboard.png", out_dir / "img" / "leaderboard.png")
        plots.insert(0, ("Leaderboard (mean and std over seeds)", "leaderboard.png"))

    summary = {"runs": len(runs), "failed": len(failed), "configs": len(cells),
               "datasets": sorted(runs["dataset"].unique()) if not runs.empty else []}
    index = env.get_template("index.html").render(
        title=f"vaebench report: {suite_dir.name}", suite=suite_dir.name, summary=summary,
        columns=[{"name": s, "direction": "lower" if lower_is_better(s) else "higher"} for s in scores + costs],
        rows=_table_rows(cells, scores + costs, run_pages) if not cells.empty else [],
        baselines=base_rows, baseline_columns=base_scores if base_rows else [], baseline_error=base_error, reference=ref_label, comparisons=comparisons,
        ranks=[{**r, "mean_rank": _fmt(r["mean_rank"], 3)} for r in ranks],
        plots=[{"caption": c, "src": f"img/{n}"} for c, n in plots],
        failed=failed.to_dict("records"),
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    atomic_write_bytes(out_dir / "index.html", index.encode())
    return out_dir / "index.html"
