"""What a suite will cost before it runs: a few timed training steps of each distinct variant on
this machine's device, times the steps of its pending runs (`vaebench run --dry-run`).

The probe measures the training step only (no evaluation, no checkpoint writes) after one
warm-up step; it is a floor, good to a factor of about 2 on a shared machine, and exists so
nobody submits a 40-day suite by accident.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import torch

PROBE_STEPS = 3


def probe_step_seconds(spec, data_root: Path, steps: int = PROBE_STEPS) -> float:
    """Median seconds of one training step of `spec`'s model and batch size on its device."""
    from vaebench.runner.run import build_model, load_dataset
    from vaebench.runner.train import resolve_device

    device = resolve_device(spec.device)
    dataset = load_dataset(spec.dataset, spec.dataset_params, Path(data_root))
    torch.manual_seed(0)
    model = build_model(spec, dataset).to(device).train()
    optimizers = model.make_optimizers(spec.train["lr"], (spec.train["beta1"], spec.train["beta2"]))
    gen = torch.Generator().manual_seed(0)
    n_train, batch = dataset.num_examples("train"), spec.train["batch_size"]
    times = []
    for i in range(steps + 1):  # the first step warms up allocators and kernels
        x, y = dataset.batch("train", torch.randint(0, n_train, (batch,), generator=gen), device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        model.training_step(x, y, 0, optimizers)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            times.append(time.perf_counter() - t0)
    return float(sorted(times)[len(times) // 2])


def estimate(specs, store, data_root: Path) -> pd.DataFrame:
    """One row per distinct (dataset, model, params, batch size) with pending runs: runs,
    step seconds (probed), steps per run, estimated hours for those runs."""
    groups: dict[str, list] = {}
    for s in specs:
        if store.state(s.run_id) == "done":
            continue
        key = json.dumps([s.dataset, s.dataset_params, s.model, s.model_params, s.train["batch_size"],
                          s.device], sort_keys=True)
        groups.setdefault(key, []).append(s)
    from vaebench.report.leaderboard import params_label

    rows, t0 = [], time.perf_counter()
    for group in groups.values():
        s = group[0]
        step_s = probe_step_seconds(s, data_root)
        steps = sum(g.train["steps"] for g in group)
        rows.append({"dataset": s.dataset, "model": s.model, "params": params_label(s.model_params, s.grid_keys),
                     "runs": len(group), "steps_per_run": s.train["steps"],
                     "step_ms": round(1000 * step_s, 2), "hours": steps * step_s / 3600})
    table = pd.DataFrame(rows, columns=["dataset", "model", "params", "runs", "steps_per_run", "step_ms", "hours"])
    table.attrs["probe_seconds"] = time.perf_counter() - t0
    return table


def format_estimate(table: pd.DataFrame, device: str) -> str:
    if table.empty:
        return "every run is done: nothing to train"
    total = table["hours"].sum()
    shown = table.assign(hours=[f"{h:.3g}" for h in table["hours"]])
    return (f"estimated training compute of the runs not done yet on {device} (probe: {PROBE_STEPS} steps "
            f"after 1 warm-up; evaluation not included):\n{shown.to_string(index=False)}\n"
            f"total: {total:.3g} hours ({total / 24:.3g} days) on one such device "
            f"(probing took {table.attrs.get('probe_seconds', 0):.1f} s)")
