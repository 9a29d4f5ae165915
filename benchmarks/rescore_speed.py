"""Re-scoring a finished suite from its kept codes (issue [2·2]): MIG + modularity + SAP at the
published budgets over a 37-run dSprites suite, through `vaebench evaluate`.

The suite's 37 runs (beta_vae x 37 beta values, the size of the disentangle study's grid) are
laid out as finished trainings in the results store's own format: config.json, model.pt (an
untrained beta_vae's weights), trained.json, and codes.npz holding the full code table (737,280
grid rows x 10 float32 codes: a fixed noisy mixing of the factors, different per run) and the test
split's codes. `vaebench evaluate` then scores MIG, modularity and SAP; the model is loaded only if
a metric needs a row that is not kept. Here it never may: model.pt holds no model, so a metric
that tried would fail, and the benchmark counts the failures.
`--explicitness` adds the modularity metric's explicitness half (a multinomial logistic regression
per factor: seconds per run, and ~99% of that metric's time).

    python benchmarks/rescore_speed.py              # 37 runs, published budgets
    python benchmarks/rescore_speed.py --runs 5     # a quick check

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from vaebench.cli import main
from vaebench.data.dsprites_grid import index_to_factors
from vaebench.runner.store import RunStore
from vaebench.runner.suite import expand, load_suite

METRICS = ("[{name: mig, params: {num_train: 10000}}, "
           "{name: modularity, params: {num_train: 10000, num_test: 5000, explicitness: false}}, "
           "{name: sap, params: {num_train: 10000, num_test: 5000}}]")


def finished_suite(root: Path, runs: int) -> Path:
    betas = ", ".join(str(1 + i) for i in range(runs))
    path = root / "rescore.yaml"
    path.write_text(textwrap.dedent(f"""
        name: rescore
        datasets: [dsprites_procedural]
        models: [{{name: beta_vae, grid: {{beta: [{betas}]}}}}]
        seeds: [0]
        metrics: {METRICS}
        """))
    specs = expand(load_suite(path), path)
    store = RunStore(root / "results" / "rescore")
    factors = index_to_factors(np.arange(737_280)).astype(np.float32)
    factors /= factors.max(0)

    state = io.BytesIO()
    state.write(b"no model: re-scoring from kept codes must not load one")
    for i, spec in enumerate(specs):
        rng = np.random.RandomState(i)
        mixing = np.eye(5, 10, dtype=np.float32) + 0.3 * rng.randn(5, 10).astype(np.float32)
        codes = factors @ mixing + 0.05 * rng.randn(len(factors), 10).astype(np.float32)
        from vaebench.runner.store import CONFIG, write_json

        write_json(store.run_dir(spec.run_id) / CONFIG, spec.to_json())
        store.write_trained(spec.run_id, {
            "run_id": spec.run_id, "after_training": {}, "final_loss_terms": {}, "provenance": {},
            "cost": {"train_seconds": 0.0, "images_per_s": 0.0, "post_training_seconds": 0.0,
                     "device": "cpu", "peak_memory_bytes": 0, "peak_memory_kind": "none"}},
            state.getvalue())
        store.write_codes(spec.run_id, np.arange(737_280), codes, codes[:10_000])
    return path


def main_benchmark() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=37)
    ap.add_argument("--explicitness", action="store_true")
    args = ap.parse_args()
    global METRICS
    if args.explicitness:
        METRICS = METRICS.replace(", explicitness: false", "")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        suite = finished_suite(root, args.runs)
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        rc = main(["evaluate", str(suite), "--results", str(root / "results"), "--no-progress",
                   "--no-report"])  # the re-scoring alone; the HTML report is its own step
        seconds = time.perf_counter() - t0  # includes loading the dataset and every codes.npz
        store = RunStore(root / "results" / "rescore")
        per_metric = {m: [] for m in ("mig", "modularity", "sap")}
        errors = 0
        for run_id in store.run_ids():
            summary = store.metrics(run_id)
            for m in per_metric:
                if "error" in summary["metrics"][m]:
                    errors += 1
                else:
                    per_metric[m].append(summary["metrics"][m]["seconds"])
    figures = {"runs": args.runs, "exit_code": rc, "evaluate_seconds": round(seconds, 2),
               "seconds_per_run": round(seconds / args.runs, 3), "metric_errors": errors,
               "setup_seconds": round(setup, 1),
               **{f"{m}_seconds_median": round(float(np.median(v)), 3) for m, v in per_metric.items()},
               "explicitness": args.explicitness, "target_seconds": 30}
    print("\nre-scoring MIG + modularity + SAP (published budgets) from kept codes")
    for k, v in figures.items():
        print(f"  {k:>24}: {v}")
    print(json.dumps(figures))
    return 0 if rc == 0 and errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main_benchmark())
