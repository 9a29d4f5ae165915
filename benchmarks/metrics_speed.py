"""How fast the disentanglement panel is (issue 3), and that its shortcuts change no score.

1. Array functions on N = 10,000 points, 10 codes, 5 factors (dSprites' sizes 3, 6, 40, 32, 32;
   codes: five noisy factors, five mixtures): seconds per metric, and DCI with its per-factor
   fits in parallel against the reference's sequential loop (importances must be identical).
2. The whole registered panel on a dSprites model (dsprites_procedural + beta_vae, trained
   for --train-steps with the project's trainer; 0 = randomly initialised), once with the code
   table and once encoding every sampled image (code_table=False): seconds per metric,
   representation extraction included, the speedup, and the largest score difference.

    python benchmarks/metrics_speed.py                  # published budgets: long on 2 CPU cores
    python benchmarks/metrics_speed.py --scale 0.05 --train-steps 100   # a quick check
    python benchmarks/metrics_speed.py --skip-reference-dci --metrics mig,factorvae_score
    python benchmarks/metrics_speed.py --skip-arrays    # only the panel at published budgets

Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import GradientBoostingClassifier

from vaebench.metrics import EvalContext, dci, explicitness, mig, modularity, sap
from vaebench.registry import DATASETS, METRICS, MODELS
from vaebench.runner.train import Trainer

# The published budgets (disentanglement_lib's study settings) that --scale multiplies.
PANEL = {
    "mig": {"num_train": 10_000},
    "factorvae_score": {"num_train": 10_000, "num_eval": 5_000, "num_variance_estimate": 10_000},
    "betavae_score": {"num_train": 10_000, "num_eval": 5_000},
    "dci": {"num_train": 10_000, "num_test": 5_000},
    "sap": {"num_train": 10_000, "num_test": 5_000},
    "modularity": {"num_train": 10_000, "num_test": 5_000},
}


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def synthetic(n: int, sizes: list[int], seed: int):
    rs = np.random.RandomState(seed)
    factors = np.stack([rs.randint(s, size=n) for s in sizes], axis=1)
    z = (factors - factors.mean(0)) / factors.std(0)
    noisy = z + 0.3 * rs.randn(*z.shape)
    mixed = z @ rs.randn(len(sizes), 10 - len(sizes)) + 0.5 * rs.randn(n, 10 - len(sizes))
    return np.hstack([noisy, mixed]), factors


def array_benchmark(args) -> dict:
    codes, factors = synthetic(args.points, args.factor_sizes, 0)
    test_codes, test_factors = synthetic(args.points // 2, args.factor_sizes, 1)
    out = {"points": args.points, "codes": codes.shape[1], "factor_sizes": args.factor_sizes}
    mig(codes, factors)  # warm up imports and caches
    _, out["mig_s"] = timed(mig, codes, factors)
    _, out["modularity_s"] = timed(modularity, codes, factors)
    out["mig_plus_modularity_s"] = out["mig_s"] + out["modularity_s"]
    _, out["explicitness_s"] = timed(explicitness, codes, factors, test_codes, test_factors)
    _, out["sap_s"] = timed(sap, codes, factors, test_codes, test_factors)
    result, out["dci_parallel_s"] = timed(dci, codes, factors, test_codes, test_factors, n_jobs=-1)
    if not args.skip_reference_dci:
        def reference_loop():  # disentanglement_lib's compute_importance_gbt, seeded alike
            imp = np.zeros((codes.shape[1], factors.shape[1]))
            for j in range(factors.shape[1]):
                model = GradientBoostingClassifier(random_state=0).fit(codes, factors[:, j])
                imp[:, j] = np.abs(model.feature_importances_)
                np.mean(model.predict(codes) == factors[:, j])
                np.mean(model.predict(test_codes) == test_factors[:, j])
            return imp
        reference, out["dci_sequential_s"] = timed(reference_loop)
        same = np.array_equal(reference, result.details["importance"])
        out["dci_importances_identical"] = bool(same)
    for key in ("mig_s", "modularity_s", "mig_plus_modularity_s", "explicitness_s", "sap_s",
                "dci_parallel_s", "dci_sequential_s"):
        if key in out:
            print(f"  {key[:-2]:<24}{out[key]:9.3f} s")
    if "dci_importances_identical" in out:
        print("  DCI importances identical to the sequential loop:",
              out["dci_importances_identical"])
    return out


def dsprites_model(args):
    dataset = DATASETS.get("dsprites_procedural")(Path(args.data_root))
    cls = MODELS.get("beta_vae")
    torch.manual_seed(0)
    model = cls(cls.Config(beta=4.0), dataset.image_shape, dataset.num_classes)
    note = "randomly initialised beta_vae (beta=4)"
    if args.train_steps > 0:
        cfg = {"steps": args.train_steps, "batch_size": 64, "lr": 1e-3, "beta1": 0.9,
               "beta2": 0.999, "checkpoint_every": args.train_steps, "log_every": 50}
        with tempfile.TemporaryDirectory() as run_dir:
            Trainer(model, dataset, cfg, Path(run_dir), seed=0,
                    device=torch.device(args.device), progress=False).run()
        note = f"beta_vae (beta=4) trained {args.train_steps} steps of 64 images"
    return model.eval(), dataset, note


def panel_benchmark(args) -> dict:
    model, dataset, note = dsprites_model(args)
    print(f"  model: {note}; budgets x {args.scale}")
    params = {name: {k: max(2, round(v * args.scale)) for k, v in PANEL[name].items()}
              for name in args.metrics}
    out = {"model": note, "scale": args.scale, "params": params, "batch_size": args.batch_size}
    results = {}
    for code_table in (True, False):
        ctx = EvalContext(model=model, dataset=dataset, device=torch.device(args.device), seed=0,
                          data_root=Path(args.data_root), batch_size=args.batch_size)
        counter = {"images": 0}
        encode = ctx.encode

        def counting_encode(images, labels=None, _encode=encode):
            counter["images"] += len(images)
            return _encode(images, labels)

        ctx.encode = counting_encode
        label = "code_table" if code_table else "per_sample"
        seconds, scores = {}, {}
        for name, p in params.items():
            result, seconds[name] = timed(METRICS.get(name), ctx, **p, code_table=code_table)
            scores.update(result.scores)
        total = sum(seconds.values())
        results[label] = scores
        out[label] = {"seconds": seconds, "total_s": total, "images_encoded": counter["images"]}
        print(f"  {label:<11} total {total:8.1f} s, {counter['images']:>9,} images encoded: "
              + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    out["speedup"] = out["per_sample"]["total_s"] / out["code_table"]["total_s"]
    diffs = {k: abs(v - results["per_sample"][k]) for k, v in results["code_table"].items()}
    out["scores"] = results["code_table"]
    out["max_abs_score_difference"] = max(diffs.values())
    out["scores_identical"] = all(d == 0 for d in diffs.values())
    print(f"  speedup {out['speedup']:.2f}x; scores identical: {out['scores_identical']} "
          f"(largest difference {out['max_abs_score_difference']:.2e})")
    for k, d in diffs.items():
        if d:
            print(f"    {k}: code table {results['code_table'][k]!r} vs per sample "
                  f"{results['per_sample'][k]!r}")
    print("  scores: " + ", ".join(f"{k}={v:.4f}" for k, v in results["code_table"].items()))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--factor-sizes", type=lambda s: [int(v) for v in s.split(",")],
                    default=[3, 6, 40, 32, 32])
    ap.add_argument("--skip-reference-dci", action="store_true")
    ap.add_argument("--skip-panel", action="store_true")
    ap.add_argument("--skip-arrays", action="store_true", help="only the panel (part 2)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the panel's budgets")
    ap.add_argument("--metrics", type=lambda s: s.split(","), default=list(PANEL),
                    help="panel metrics to run, comma-separated (default: all six)")
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--data-root", default="data")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=64,
                    help="EvalContext.batch_size: the code table's encoder batch (on these CPUs "
                         "batches of 64 encode ~2x faster per image than 256)")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when redirected to a file
    print(f"torch threads: {torch.get_num_threads()}")
    report = {"threads": torch.get_num_threads()}
    if not args.skip_arrays:
        print(f"1. array functions, {args.points:,} points, 10 codes, factor sizes "
              f"{args.factor_sizes}")
        report["arrays"] = array_benchmark(args)
    if not args.skip_panel:
        print("2. whole panel on dsprites_procedural: code table vs per-sample encoding")
        report["panel"] = panel_benchmark(args)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
