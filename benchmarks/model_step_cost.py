"""Cost of one training step of every registered variant relative to plain `vae`.

    python benchmarks/model_step_cost.py [--batch-size 64] [--size 64] [--rounds 5] [--steps 4]
                                         [--device auto] [--variants vae factor_vae ...] [--json out.json]

Each variant runs its own make_optimizers / training_step on the same pre-made batch of binary
64x64 shape images (the data pipeline is not timed). Variants are timed round-robin (`rounds`
rounds of `steps` steps each, after one warm-up round), so a load spike on a shared machine
hits every variant alike; the figure is the median step time. Prints a table and, last, one
JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

import vaebench.models  # noqa: F401  (registers models)
from vaebench.registry import MODELS


def shapes_batch(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """(n, 1, size, size) float images in {0, 1}: one filled square each, random size and place."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, size, size)
    for i in range(n):
        s = int(torch.randint(size // 8, size // 3, (1,), generator=g))
        r, c = (int(v) for v in torch.randint(0, size - s, (2,), generator=g))
        x[i, 0, r:r + s, c:c + s] = 1.0
    return x


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--size", type=int, default=64, choices=[28, 64], help="image side")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=4, help="steps per variant per round")
    p.add_argument("--device", default="auto")
    p.add_argument("--variants", nargs="*", help="default: every registered model")
    p.add_argument("--json", metavar="PATH", help="also write the figures to this file")
    args = p.parse_args()

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    names = args.variants or [e.name for e in MODELS.entries()]
    if "vae" not in names:
        names = ["vae"] + names
    x = shapes_batch(args.batch_size, args.size).to(device)
    y = torch.zeros(args.batch_size, dtype=torch.long, device=device)
    shape = (1, args.size, args.size)

    runs = {}
    for name in names:
        torch.manual_seed(0)
        cls = MODELS.get(name)
        model = cls(cls.Config(), shape, 1).to(device).train()
        runs[name] = {"model": model, "opts": model.make_optimizers(1e-4), "step": 0, "times": []}

    for rnd in range(args.rounds + 1):  # round 0 warms up (allocations, lazy imports)
        for name, r in runs.items():
            for _ in range(args.steps):
                sync(device)
                t0 = time.perf_counter()
                r["model"].training_step(x, y, r["step"], r["opts"])
                sync(device)
                r["step"] += 1
                if rnd:
                    r["times"].append(time.perf_counter() - t0)

    vae_s = statistics.median(runs["vae"]["times"])
    report = {
        "benchmark": "model_step_cost", "device": str(device),
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else platform.processor() or platform.machine()),
        "cpu_threads": torch.get_num_threads(), "batch_size": args.batch_size, "image_shape": list(shape),
        "steps_timed_per_variant": args.rounds * args.steps,
        "variants": {n: {"step_ms": 1000 * statistics.median(r["times"]),
                         "relative_to_vae": statistics.median(r["times"]) / vae_s,
                         "spread_ms": 1000 * (max(r["times"]) - min(r["times"]))}
                     for n, r in runs.items()},
    }
    print(f"one training step, batch {args.batch_size} of {shape} images, on {device} "
          f"({report['cpu_threads']} threads); median of {report['steps_timed_per_variant']} steps")
    print(f"{'variant':<14}{'ms/step':>10}{'x vae':>8}")
    for n, v in report["variants"].items():
        print(f"{n:<14}{v['step_ms']:>10.2f}{v['relative_to_vae']:>8.2f}")
    line = json.dumps(report)
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
