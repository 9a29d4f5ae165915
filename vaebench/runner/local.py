"""Run a suite's pending runs one after another in this process (CPU or GPU)."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from vaebench.runner.run import run_job
from vaebench.runner.store import RunStore
from vaebench.runner.suite import RunSpec


def run_local(specs: list[RunSpec], results_dir: Path, data_root: Path, progress: bool = True,
              fid_weights: Path | None = None) -> list[dict]:
    """Returns one status dict per run ({"run_id", "status", "skipped"/"reason"})."""
    outcomes = []
    bar = tqdm(specs, desc="runs", unit="run", disable=not progress, dynamic_ncols=True)
    for spec in bar:
        store = RunStore(Path(results_dir) / spec.suite)
        if store.state(spec.run_id) == "done":
            outcomes.append({"run_id": spec.run_id, "status": "done", "skipped": True,
                             "metric_errors": store.metric_errors(spec.run_id)})
            continue
        t0 = time.perf_counter()
        out = run_job(spec, results_dir, data_root, progress=progress, fid_weights=fid_weights)
        took = time.perf_counter() - t0
        line = f"{out['status']:>6}  {spec.run_id}  ({took:.1f} s)"
        if out["status"] == "failed":
            line += f"\n        reason: {out['reason']}"
        if out["status"] == "busy":
            line += f"  skipped: another process is training it ({out['holder']})"
        for name, error in out.get("metric_errors", {}).items():
            line += f"\n        metric {name} failed: {error}"
        tqdm.write(line)
        outcomes.append(out)
    return outcomes
