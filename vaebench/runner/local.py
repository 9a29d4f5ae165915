"""Run a suite's pending runs one after another in this process (CPU or GPU)."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from vaebench.runner.run import pending_stage, run_job
from vaebench.runner.store import RunStore
from vaebench.runner.suite import RunSpec


def run_local(specs: list[RunSpec], results_dir: Path, data_root: Path, progress: bool = True,
              fid_weights: Path | None = None, train: bool = True,
              metrics: list[str] | None = None) -> list[dict]:
    """Returns one status dict per run ({"run_id", "status", "skipped"/"reason"}). train=False
    evaluates finished trainings only (`vaebench evaluate`)."""
    outcomes = []
    bar = tqdm(specs, desc="runs", unit="run", disable=not progress, dynamic_ncols=True)
    for spec in bar:
        store = RunStore(Path(results_dir) / spec.suite)
        stage = pending_stage(spec, store)
        if stage is None or (stage == "train" and not train):
            outcomes.append({"run_id": spec.run_id, "status": "done" if stage is None else "untrained",
                             "skipped": True})
            continue
        t0 = time.perf_counter()
        out = run_job(spec, results_dir, data_root, progress=progress, fid_weights=fid_weights,
                      train=train, metrics=metrics)
        if out.get("skipped"):
            outcomes.append(out)
            continue
        took = time.perf_counter() - t0
        done = "trained + evaluated" if out.get("trained") else "evaluated"
        line = f"{out['status']:>6}  {spec.run_id}  ({done if out['status'] == 'done' else stage}, {took:.1f} s)"
        if out["status"] == "failed":
            line += f"\n        reason: {out['reason']}"
        for name, reason in out.get("metric_errors", {}).items():
            line += f"\n        metric {name} failed: {reason}"
        tqdm.write(line)
        outcomes.append(out)
    return outcomes
