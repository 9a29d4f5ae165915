"""Calibration rows for the disentanglement scores, so a reader can tell whether a MIG of 0.05 is
something or nothing: the same registered metrics, at the suite's own budgets and seeds, on three
representations that need no training.

- true factors: the factor values themselves (the ceiling);
- untrained encoder: the suite's first model, freshly initialised at the run's seed (the floor a
  trained model should clear);
- random projection: the flattened pixels times a fixed Gaussian matrix (seeded) to latent_dim
  dimensions, scaled by 1/sqrt(pixels).

Computed per (dataset, metric budgets, seeds) and cached in results/<suite>/baselines.json; the
cache is reused while its key (what the numbers depend on) is unchanged.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vaebench.errors import NotApplicable
from vaebench.runner.store import RunStore, read_json, write_json

BASELINES_FILE = "baselines.json"
BASELINES = ("true factors", "untrained encoder", "random projection")


class _NoModel(torch.nn.Module):
    """Stands in for ctx.model: the metrics read codes from the prepared code table only."""

    conditional = False


class _FactorCodes:
    """codes_of for the ceiling: the factor classes themselves are the codes."""

    def __init__(self, ground_truth):
        self.ground_truth = ground_truth

    def __call__(self, factors: np.ndarray) -> np.ndarray:
        return np.asarray(factors, dtype=np.float64)


def _is_disentanglement(name: str) -> bool:
    from vaebench.registry import METRICS

    return METRICS.get(name).__module__.startswith("vaebench.metrics.disentanglement")


def _codes_of(kind: str, spec, dataset, seed: int):
    """factor rows (N, K) -> codes (N, D) for one baseline."""
    from vaebench.metrics.disentanglement.code_table import CodeTable
    from vaebench.runner.run import build_model
    from vaebench.runner.train import seed_everything

    gt = dataset.factors
    if kind == "true factors":
        return _FactorCodes(gt)
    if kind == "untrained encoder":
        seed_everything(seed)
        model = build_model(spec, dataset).eval()
        if getattr(model, "conditional", False):
            raise NotApplicable("the first model is conditional; no label-free untrained encoder")

        @torch.no_grad()
        def encode(images, rows):
            return torch.cat([model.representation(images[i:i + 256]).double()
                              for i in range(0, len(images), 256)]).numpy()
        return CodeTable(gt, encode)
    pixels = int(np.prod(dataset.image_shape))
    latent_dim = int(spec.model_params.get("latent_dim", 10))
    w = torch.from_numpy(np.random.RandomState(seed).standard_normal((pixels, latent_dim)) / np.sqrt(pixels))
    return CodeTable(gt, lambda images, rows: (images.flatten(1).double() @ w).numpy())


def _score(kind, spec, dataset, metrics, seed, data_root) -> dict:
    from vaebench.metrics.base import EvalContext
    from vaebench.metrics.disentanglement.context import _CACHE_KEY
    from vaebench.registry import METRICS

    # the metrics draw their samples with the suite's evaluation seed, as the runs' metrics do
    ctx = EvalContext(model=_NoModel(), dataset=dataset, device=torch.device("cpu"),
                      seed=spec.eval_seed, data_root=Path(data_root))
    try:
        ctx.cache[_CACHE_KEY] = _codes_of(kind, spec, dataset, seed)
    except NotApplicable:
        return {}
    scores = {}
    for m in metrics:
        # code_table=False would encode images with ctx.model; baselines always use the table
        params = {**m["params"], **({"code_table": True} if "code_table" in m["params"] else {})}
        try:
            scores.update(METRICS.get(m["name"])(ctx, **params).scores)
        except NotApplicable:
            pass
    return scores


def _plan(suite_dir: Path) -> list[dict]:
    """Per dataset with ground truth: the spec of its first finished run, its disentanglement
    metrics and the seeds of its runs."""
    store, by_dataset = RunStore(suite_dir), {}
    order = read_json(suite_dir / "suite.json")["run_ids"] if (suite_dir / "suite.json").is_file() else []
    # the suite's order first, so "the first model" is the suite's first model
    for rid in [r for r in order if r in set(store.run_ids())] + store.run_ids():
        cfg = store.config(rid)
        key = json.dumps([cfg["dataset"], cfg["dataset_params"]], sort_keys=True)
        entry = by_dataset.setdefault(key, {"cfg": cfg, "seeds": set()})
        entry["seeds"].add(cfg["seed"])
    plans = []
    for entry in by_dataset.values():
        cfg = entry["cfg"]
        metrics = [m for m in cfg["metrics"] if _is_disentanglement(m["name"])]
        if metrics:
            plans.append({"cfg": cfg, "metrics": metrics, "seeds": sorted(entry["seeds"])})
    return plans


def _key(plan: dict) -> str:
    cfg = plan["cfg"]
    what = {"dataset": cfg["dataset"], "dataset_params": cfg["dataset_params"], "model": cfg["model"],
            "model_params": cfg["model_params"], "metrics": plan["metrics"], "seeds": plan["seeds"],
            "baselines": BASELINES, "eval_seed": cfg.get("eval_seed", 0), "version": 2}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def baseline_table(suite_dir: Path, data_root: Path, recompute: bool = False) -> pd.DataFrame:
    """Rows like run_table(): dataset, model (the baseline's name), params "", seed, run_id "",
    and its scores; cached in suite_dir/baselines.json."""
    from vaebench.registry import DATASETS  # noqa: F401  (importing run fills the registries)
    from vaebench.runner.run import load_dataset
    from vaebench.runner.suite import RunSpec

    suite_dir = Path(suite_dir)
    path = suite_dir / BASELINES_FILE
    cached = read_json(path) if path.is_file() and not recompute else {}
    out, rows = {}, []
    for plan in _plan(suite_dir):
        cfg, key = plan["cfg"], _key(plan)
        if key in cached:
            out[key] = cached[key]
        else:
            spec = RunSpec.from_json(cfg)
            dataset = load_dataset(spec.dataset, spec.dataset_params, Path(data_root))
            if dataset.factors is None:
                continue
            out[key] = [{"dataset": cfg["dataset"], "model": f"baseline: {kind}", "params": "",
                         "seed": seed, "run_id": "", "device": "cpu",
                         **_score(kind, spec, dataset, plan["metrics"], seed, data_root)}
                        for kind in BASELINES for seed in plan["seeds"]]
        rows += out[key]
    if out != cached:
        write_json(path, out)
    frame = pd.DataFrame(rows)
    return frame.replace({None: np.nan}) if len(frame) else frame
