"""Training throughput: a step with the data pipeline vs. the same step on a pre-made batch,
and the cost per step of every registered variant relative to plain `vae`.

    python benchmarks/train_throughput.py [--dataset dsprites_procedural] [--rounds 5] [--steps 4] [--json out.json]

Prints a table and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from vaebench.registry import MODELS
from vaebench.runner.run import load_dataset
from vaebench.runner.train import resolve_device, seed_everything


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model, optimizers, get_batch, steps, device, warmup=3) -> float:
    """Seconds per training step (median of `steps`)."""
    times = []
    for i in range(warmup + steps):
        sync(device)
        t0 = time.perf_counter()
        x, y = get_batch()
        model.training_step(x, y, i, optimizers)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="dsprites_procedural")
    p.add_argument("--data-root", default=os.environ.get("VAEBENCH_DATA", "data"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=4, help="steps per variant per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--variants", nargs="*", help="default: every registered model")
    p.add_argument("--json", metavar="PATH", help="also write the figures to this file")
    args = p.parse_args()

    device = resolve_device(args.device)
    t0 = time.perf_counter()
    dataset = load_dataset(args.dataset, {}, Path(args.data_root))
    load_s = time.perf_counter() - t0
    n = dataset.num_examples("train")
    gen = torch.Generator().manual_seed(0)

    def pipeline_batch():
        return dataset.batch("train", torch.randint(0, n, (args.batch_size,), generator=gen), device)

    fixed = pipeline_batch()
    data_only = []
    for _ in range(50):
        sync(device)
        t = time.perf_counter()
        pipeline_batch()
        sync(device)
        data_only.append(time.perf_counter() - t)
    data_only.sort()

    # Variants are timed round-robin on the same pre-made batch (`--rounds` rounds of `--steps`
    # steps after a warm-up round), so a load spike on a shared machine hits every variant alike.
    names = args.variants or [e.name for e in MODELS.entries()]
    names = names if "vae" in names else ["vae", *names]
    runs = {}
    for name in names:
        cls = MODELS.get(name)
        seed_everything(0)
        model = cls(cls.Config(), dataset.image_shape, dataset.num_classes).to(device).train()
        runs[name] = (model, model.make_optimizers(1e-4), [])
    for rnd in range(args.rounds + 1):
        for name, (model, opts, times) in runs.items():
            step_s = time_steps(model, opts, lambda: fixed, args.steps, device, warmup=0)
            if rnd:
                times.append(step_s)
    results = {name: {"step_s_premade": statistics.median(times)}
               for name, (_, _, times) in runs.items()}
    model, opts, _ = runs["vae"]
    results["vae"]["step_s_pipeline"] = time_steps(model, opts, pipeline_batch,
                                                   args.rounds * args.steps, device)
    vae = results["vae"]
    report = {
        "benchmark": "train_throughput", "dataset": args.dataset, "device": str(device),
        "cpu_threads": torch.get_num_threads(), "machine": platform.machine(), "batch_size": args.batch_size,
        "dataset_load_s": load_s, "batch_fetch_ms": 1000 * data_only[len(data_only) // 2],
        "vae_images_per_s_pipeline": args.batch_size / vae["step_s_pipeline"],
        "vae_images_per_s_premade": args.batch_size / vae["step_s_premade"],
        "pipeline_share_of_step": 1 - vae["step_s_premade"] / vae["step_s_pipeline"],
        "fetch_share_of_step": data_only[len(data_only) // 2] / vae["step_s_pipeline"],
        "variants": {k: {"step_ms": 1000 * v["step_s_premade"],
                         "relative_to_vae": v["step_s_premade"] / vae["step_s_premade"]}
                     for k, v in results.items()},
    }
    print(f"{args.dataset} on {device}, batch {args.batch_size}, {report['cpu_threads']} threads; "
          f"dataset ready in {load_s:.1f} s")
    print(f"vae step with data pipeline : {1000 * vae['step_s_pipeline']:8.2f} ms "
          f"({report['vae_images_per_s_pipeline']:.0f} images/s)")
    print(f"vae step on a pre-made batch: {1000 * vae['step_s_premade']:8.2f} ms "
          f"({report['vae_images_per_s_premade']:.0f} images/s)")
    print(f"batch fetch alone            : {report['batch_fetch_ms']:8.2f} ms = "
          f"{100 * report['fetch_share_of_step']:.1f}% of a step (target < 10%)")
    print(f"\n{'variant':<14}{'ms/step':>10}{'x vae':>8}")
    for k, v in report["variants"].items():
        print(f"{k:<14}{v['step_ms']:>10.2f}{v['relative_to_vae']:>8.2f}")
    line = json.dumps(report)
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
