"""Suite throughput of the local executor: `vaebench run --jobs 1` vs `--jobs 2`.

A suite of 4 runs (vae and beta_vae x 2 seeds on procedural dSprites, STEPS steps of batch 64)
is run through the real CLI, each repetition into a fresh results folder, the two schedules
interleaved (1, 2, 2, 1, 1, 2 ...). Suite images/s = training images of all runs / wall-clock
seconds of the whole `vaebench run` (process start-up, data, training, evaluation, leaderboard).
Also reported: the mean per-run training images/s from the runs' metrics.json.

    python benchmarks/jobs_throughput.py [STEPS=300] [REPS=3]

Prints a table and a final JSON line (ratio = jobs 2 / jobs 1, median over repetitions, and the
min-max spread of the per-repetition ratios).
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BATCH = 64

SUITE = """
name: jobs
datasets: [{{name: dsprites_procedural, params: {{train_size: 4096, test_size: 256}}}}]
models: [vae, {{name: beta_vae, params: {{beta: 4}}}}]
seeds: [0, 1]
train: {{steps: {steps}, batch_size: {batch}, lr: 1.0e-3, checkpoint_every: {steps}, log_every: 50}}
metrics: [{{name: elbo, params: {{num_examples: 256}}}}]
"""


def run_suite(suite: Path, results: Path, jobs: int) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "vaebench.cli", "run", str(suite), "--results",
                          str(results), "--no-progress", "--jobs", str(jobs)],
                         cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"vaebench run --jobs {jobs} failed:\n{out.stdout}\n{out.stderr}")
    metrics = [json.loads(p.read_text()) for p in (results / "jobs").glob("*/metrics.json")]
    assert len(metrics) == 4
    images = sum(m["cost"]["steps"] for m in metrics) * BATCH
    return {"wall_s": wall, "suite_images_per_s": images / wall,
            "run_images_per_s": statistics.mean(m["cost"]["images_per_s"] for m in metrics),
            "peak_rss_mb": max(m["cost"]["peak_memory_bytes"] for m in metrics) / 2**20}


def main(steps: int = 300, reps: int = 3) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "suite.yaml"
        suite.write_text(SUITE.format(steps=steps, batch=BATCH))
        for rep in range(reps):
            for jobs in ((1, 2) if rep % 2 == 0 else (2, 1)):
                r = run_suite(suite, Path(tmp) / f"r{rep}-j{jobs}", jobs)
                rows.append({"rep": rep, "jobs": jobs, **r})
                print(f"rep {rep}  --jobs {jobs}: {r['wall_s']:6.1f} s  suite {r['suite_images_per_s']:6.1f} "
                      f"img/s  per run (training) {r['run_images_per_s']:6.1f} img/s  "
                      f"peak rss {r['peak_rss_mb']:.0f} MB", flush=True)
    ratios = []
    for rep in range(reps):
        one, two = (next(r for r in rows if r["rep"] == rep and r["jobs"] == j) for j in (1, 2))
        ratios.append(two["suite_images_per_s"] / one["suite_images_per_s"])
    by_jobs = {j: statistics.median(r["suite_images_per_s"] for r in rows if r["jobs"] == j)
               for j in (1, 2)}
    print(f"\n{'jobs':>4}  {'suite img/s (median)':>20}")
    for j, v in by_jobs.items():
        print(f"{j:>4}  {v:>20.1f}")
    print(f"ratio jobs 2 / jobs 1 per repetition: {', '.join(f'{r:.2f}' for r in ratios)}")
    print(json.dumps({"steps": steps, "batch_size": BATCH, "runs": 4, "reps": reps,
                      "suite_images_per_s": by_jobs, "ratio_median": statistics.median(ratios),
                      "ratio_min": min(ratios), "ratio_max": max(ratios), "rows": rows}))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
