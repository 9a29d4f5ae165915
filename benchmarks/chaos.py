"""Chaos: `kill -9` a small suite's `vaebench run` at random moments, N times, then let it finish.

Asserts that the final scores equal those of an uninterrupted run of the same suite (training
resumes bit for bit from checkpoints; evaluation is seeded), and prints the cycles survived, where
each kill landed (training, during a checkpoint write, evaluation) and the bytes left behind
(temporary files, files set aside) next to the uninterrupted run's folder size.

    PYTHONPATH=. python benchmarks/chaos.py --cycles 16 --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SUITE = """
name: chaos
datasets: [{name: mnist, params: {train_size: 512}}]
models: [{name: vae, params: {latent_dim: 4}}, {name: beta_vae, params: {latent_dim: 4, beta: 4}}]
seeds: [0]
train: {steps: %(steps)d, batch_size: 32, lr: 1.0e-3, checkpoint_every: 5, log_every: 5}
metrics: [{name: elbo, params: {num_examples: 2000}}, {name: recon_error, params: {num_examples: 2000}}]
"""


def command(suite: Path, results: Path, data_root: str) -> list[str]:
    return [sys.executable, "-m", "vaebench.cli", "run", str(suite), "--results", str(results),
            "--data-root", data_root, "--no-progress"]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def scores(suite_dir: Path) -> dict:
    return {p.parent.name: json.loads(p.read_text())["scores"]
            for p in sorted(suite_dir.glob("*/metrics.json"))}


def wait_for_temp_file(proc: subprocess.Popen, suite_dir: Path, until: float) -> None:
    """Return (raising TimeoutExpired, to be killed) the moment a `.checkpoint.pt.*.tmp` exists."""
    while time.perf_counter() < until and proc.poll() is None:
        if suite_dir.exists() and list(suite_dir.glob("*/.checkpoint.pt.*.tmp")):
            raise subprocess.TimeoutExpired(proc.args, 0)
        time.sleep(0.002)


def phase(suite_dir: Path) -> str:
    """Where a kill landed, from what the unfinished run's folder shows right after it."""
    unfinished = [d for d in suite_dir.iterdir() if d.is_dir() and (d / "config.json").is_file()
                  and not (d / "metrics.json").is_file()]
    if not unfinished:
        return "between runs"
    if any(list(d.glob(".*.tmp")) for d in unfinished):
        return "checkpoint write"
    steps = 0
    for d in unfinished:
        lines = (d / "train_log.csv").read_text().strip().splitlines() if (d / "train_log.csv").is_file() else []
        if len(lines) > 1:
            steps = max(steps, int(float(lines[-1].split(",")[0])))
    return "evaluation" if steps >= STEPS else "training"


STEPS = 200


def main() -> int:
    global STEPS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=12)
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    STEPS = args.steps
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="vaebench-chaos-"))
    suite = work / "chaos.yaml"
    suite.write_text(textwrap.dedent(SUITE % {"steps": args.steps}))

    ref_dir = work / "ref" / "chaos"
    t0 = time.perf_counter()
    ref = subprocess.Popen(command(suite, work / "ref", args.data_root), env=env(), cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not (ref_dir / "suite.json").exists() and ref.poll() is None:
        time.sleep(0.05)
    startup = time.perf_counter() - t0  # imports, data loading, checks
    _, ref_err = ref.communicate()
    ref_seconds = time.perf_counter() - t0
    assert ref.returncode == 0, ref_err[-2000:]
    work_seconds = ref_seconds - startup

    chaos_dir = work / "chaos" / "chaos"
    rows, survived, tmp_by_kills = [], 0, 0
    for cycle in range(args.cycles):
        # after start-up, within the first 30% of the work: each cycle makes some progress,
        # and a cycle that finishes before its kill ends the loop; every third cycle is killed
        # the moment a checkpoint write has begun
        delay = startup + rng.uniform(0.0, 0.3 * work_seconds)
        started = time.perf_counter()
        proc = subprocess.Popen(command(suite, work / "chaos", args.data_root), env=env(), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if cycle % 3 == 2:  # aim at a checkpoint write: kill as soon as a temporary file shows
                wait_for_temp_file(proc, chaos_dir, time.perf_counter() + delay)
            proc.wait(timeout=max(0.0, delay - (time.perf_counter() - started)))
            rows.append((cycle, f"{delay:.1f}", "finished before the kill"))
            break
        except subprocess.TimeoutExpired:
            delay = time.perf_counter() - started
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            survived += 1
            tmp_by_kills += sum(p.stat().st_size for p in chaos_dir.rglob(".*.tmp")) if chaos_dir.exists() else 0
            rows.append((cycle, f"{delay:.1f}", phase(chaos_dir) if chaos_dir.exists() else "start-up"))
    left_after_kills = sum(p.stat().st_size for p in chaos_dir.rglob(".*.tmp")) if chaos_dir.exists() else 0
    final = subprocess.run(command(suite, work / "chaos", args.data_root), env=env(), cwd=REPO,
                           capture_output=True, text=True)
    assert final.returncode == 0, final.stderr[-2000:]

    want, got = scores(ref_dir), scores(chaos_dir)
    assert want == got, f"scores differ:\n{want}\n{got}"
    sessions = {p.parent.name: json.loads(p.read_text())["cost"]["sessions"]
                for p in chaos_dir.glob("*/metrics.json")}
    leftovers = [p for p in chaos_dir.rglob("*") if p.is_file() and (
        p.name.endswith(".tmp") or ".damaged-" in p.name)]
    left_bytes = sum(p.stat().st_size for p in leftovers)

    print(f"{'cycle':>5}  {'kill at s':>9}  landed in")
    for cycle, delay, where in rows:
        print(f"{cycle:>5}  {delay:>9}  {where}")
    kinds = {}
    for _, _, where in rows:
        kinds[where] = kinds.get(where, 0) + 1
    print(f"\nuninterrupted run: {ref_seconds:.1f} s ({startup:.1f} s start-up); {survived} kill -9 cycles survived; "
          f"training sessions per run {sessions}")
    print(f"temporary files left by the kills: {tmp_by_kills} bytes in all (after the last kill: "
          f"{left_after_kills}), each removed when the run started again; left behind after "
          f"completion: {left_bytes} bytes in {len(leftovers)} file(s); result folder "
          f"{folder_bytes(chaos_dir)} bytes (uninterrupted: {folder_bytes(ref_dir)})")
    print("final scores equal the uninterrupted run's: yes")
    print(json.dumps({"cycles": args.cycles, "survived": survived, "kills_by_phase": kinds,
                      "scores_equal": True, "bytes_left_behind": left_bytes,
                      "tmp_bytes_after_last_kill": left_after_kills,
                      "tmp_bytes_left_by_kills": tmp_by_kills,
                      "folder_bytes": folder_bytes(chaos_dir), "ref_folder_bytes": folder_bytes(ref_dir),
                      "ref_seconds": round(ref_seconds, 1), "sessions": sessions}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
